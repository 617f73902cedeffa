//! Email templates: minijinja files compiled into the binary, one per kind and language, each
//! holding a subject line, a plain-text body and an HTML body (and the summary's, in
//! `templates/summary/`). Values are inserted as they are into the text, auto-escaped into the
//! HTML, and stripped of line breaks in the subject (no header injection).

use crate::domain::Locale;
use chrono::{DateTime, Datelike, Utc};
use minijinja::{Environment, UndefinedBehavior};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Which email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// To the invitee: accept and decline links.
    Invitation,
    /// To the invitee: the invitation was withdrawn.
    Cancellation,
    /// To the student: a guardian accepted.
    AcceptedToStudent,
    /// To the guardian: welcome.
    WelcomeGuardian,
    /// To the guardian: the link was removed.
    Removed,
    /// To the inviter: the invitee said they are not the guardian (never naming the address).
    DeclinedToInviter,
    /// To the invitee, days before a PENDING invitation expires: accept and decline links.
    Reminder,
    /// To the invitee of several children at once: one accept-all link, a decline link each.
    Family,
}

impl Template {
    /// Every kind, for building the environment and for tests.
    pub const ALL: [Template; 8] = [
        Template::Invitation,
        Template::Cancellation,
        Template::AcceptedToStudent,
        Template::WelcomeGuardian,
        Template::Removed,
        Template::DeclinedToInviter,
        Template::Reminder,
        Template::Family,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Invitation => "invitation",
            Self::Cancellation => "cancellation",
            Self::AcceptedToStudent => "accepted_student",
            Self::WelcomeGuardian => "welcome_guardian",
            Self::Removed => "removed",
            Self::DeclinedToInviter => "declined_inviter",
            Self::Reminder => "reminder",
            Self::Family => "family",
        }
    }
}

/// A template file: `Subject: ...`, then `--- text`, then `--- html`.
fn source(template: Template, locale: Locale) -> &'static str {
    use Template as T;
    match (locale, template) {
        (Locale::En, T::Invitation) => include_str!("templates/en/invitation.txt"),
        (Locale::En, T::Cancellation) => include_str!("templates/en/cancellation.txt"),
        (Locale::En, T::AcceptedToStudent) => include_str!("templates/en/accepted_student.txt"),
        (Locale::En, T::WelcomeGuardian) => include_str!("templates/en/welcome_guardian.txt"),
        (Locale::En, T::Removed) => include_str!("templates/en/removed.txt"),
        (Locale::En, T::DeclinedToInviter) => include_str!("templates/en/declined_inviter.txt"),
        (Locale::En, T::Reminder) => include_str!("templates/en/reminder.txt"),
        (Locale::En, T::Family) => include_str!("templates/en/family.txt"),
        (Locale::Nl, T::Invitation) => include_str!("templates/nl/invitation.txt"),
        (Locale::Nl, T::Cancellation) => include_str!("templates/nl/cancellation.txt"),
        (Locale::Nl, T::AcceptedToStudent) => include_str!("templates/nl/accepted_student.txt"),
        (Locale::Nl, T::WelcomeGuardian) => include_str!("templates/nl/welcome_guardian.txt"),
        (Locale::Nl, T::Removed) => include_str!("templates/nl/removed.txt"),
        (Locale::Nl, T::DeclinedToInviter) => include_str!("templates/nl/declined_inviter.txt"),
        (Locale::Nl, T::Reminder) => include_str!("templates/nl/reminder.txt"),
        (Locale::Nl, T::Family) => include_str!("templates/nl/family.txt"),
    }
}

/// Every email template, parsed once. Names ending in `.html` are auto-escaped for HTML; the
/// subject and text parts are not. A value a template names but the caller did not give is an
/// error, never an empty gap in a sent email.
pub(super) fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let summary = [
            ("summary.en.txt", include_str!("templates/summary/en.txt")),
            ("summary.en.html", include_str!("templates/summary/en.html")),
            ("summary.nl.txt", include_str!("templates/summary/nl.txt")),
            ("summary.nl.html", include_str!("templates/summary/nl.html")),
        ];
        let letters = Template::ALL.into_iter().flat_map(|template| {
            [Locale::En, Locale::Nl]
                .into_iter()
                .flat_map(move |locale| {
                    let (subject, text, html) = sections(source(template, locale));
                    let name =
                        |part: &str| format!("{}.{}.{part}", template.name(), locale.as_str());
                    [
                        (name("subject"), subject),
                        (name("txt"), text),
                        (name("html"), html),
                    ]
                })
        });
        let all = summary
            .into_iter()
            .map(|(name, source)| (name.to_owned(), source))
            .chain(letters);
        for (name, source) in all {
            // The templates are part of the binary and rendered by the tests: a parse error
            // is a build defect.
            if let Err(e) = env.add_template_owned(name.clone(), source) {
                panic!("email template {name} does not parse: {e}");
            }
        }
        env
    })
}

/// The subject, text and HTML sections of a template file.
fn sections(src: &'static str) -> (&'static str, &'static str, &'static str) {
    let (head, rest) = src.split_once("\n--- text\n").unwrap_or((src, ""));
    let (text, html) = rest.split_once("\n--- html\n").unwrap_or((rest, ""));
    let subject = head.trim();
    (
        subject.strip_prefix("Subject:").unwrap_or(subject).trim(),
        text,
        html,
    )
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// Renders `template` in `locale` with `values`. Values are inserted as they are into the
/// text, escaped into the HTML, and never read as template code.
pub fn render(
    template: Template,
    locale: Locale,
    values: &[(&str, &str)],
) -> Result<Rendered, String> {
    render_context(template, locale, context_of(values))
}

/// One child of a family email.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FamilyChild {
    /// The child's name.
    pub name: String,
    /// The link that declines this child's invitation alone.
    pub decline_url: String,
}

/// Renders the family email: `values` as [`render`] takes them, and the children as the
/// list `children` the template walks through.
pub fn render_family(
    locale: Locale,
    values: &[(&str, &str)],
    children: &[FamilyChild],
) -> Result<Rendered, String> {
    let mut context = context_of(values);
    let children = serde_json::to_value(children).map_err(|e| e.to_string())?;
    context.insert("children", children);
    render_context(Template::Family, locale, context)
}

fn context_of<'a>(values: &[(&'a str, &str)]) -> BTreeMap<&'a str, serde_json::Value> {
    values
        .iter()
        .map(|(k, v)| (*k, serde_json::Value::from(*v)))
        .collect()
}

fn render_context(
    template: Template,
    locale: Locale,
    context: BTreeMap<&str, serde_json::Value>,
) -> Result<Rendered, String> {
    let part = |part: &str| -> Result<String, String> {
        let name = format!("{}.{}.{part}", template.name(), locale.as_str());
        environment()
            .get_template(&name)
            .and_then(|t| t.render(minijinja::value::Serde(&context)))
            .map_err(|e| format!("cannot render {name}: {e}"))
    };
    Ok(Rendered {
        // No header injection: the subject is one line whatever the values hold.
        subject: part("subject")?.replace(['\r', '\n'], " "),
        text: part("txt")?.trim_end().to_owned(),
        html: part("html")?.trim_end().to_owned(),
    })
}

/// How often a new guardian will hear from the school, for the welcome email: the domain's
/// default schedule in words ("every Friday at 17:00"); empty when it sends none.
pub fn schedule_phrase(settings: &crate::domain::DomainSettings, locale: Locale) -> String {
    use crate::domain::summary::Frequency;
    use crate::domain::summary::schedule::{DEFAULT_WEEKLY_DAY, weekday_name};
    let hour = settings.summary_send_hour;
    let zone = settings.summary_time_zone.name();
    // A domain's weekly summaries go on the default day; a guardian may choose another later.
    let day = match (locale, DEFAULT_WEEKLY_DAY) {
        (Locale::En, chrono::Weekday::Fri) => "Friday",
        (Locale::Nl, chrono::Weekday::Fri) => "vrijdag",
        (_, other) => weekday_name(other),
    };
    match (settings.default_summary_frequency, locale) {
        (Frequency::Never, _) => String::new(),
        (Frequency::Weekly, Locale::En) => format!("every {day} at {hour}:00 ({zone} time)"),
        (Frequency::Weekly, Locale::Nl) => format!("elke {day} om {hour}:00 ({zone})"),
        (Frequency::Daily, Locale::En) => {
            format!("every school day (Monday to Friday) at {hour}:00 ({zone} time)")
        }
        (Frequency::Daily, Locale::Nl) => {
            format!("elke schooldag (maandag tot en met vrijdag) om {hour}:00 ({zone})")
        }
    }
}

/// A date as people of `locale` write it: "29 November 2026" / "29 november 2026".
pub fn format_date(t: DateTime<Utc>, locale: Locale) -> String {
    const EN: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const NL: [&str; 12] = [
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ];
    let month = t.month0() as usize;
    match locale {
        Locale::En => format!("{} {} {}", t.day(), EN[month], t.year()),
        Locale::Nl => format!("{} {} {}", t.day(), NL[month], t.year()),
    }
}

#[cfg(test)]
mod tests;
