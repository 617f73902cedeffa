//! Email templates: files compiled into the binary, one per kind and language, each holding a
//! subject line, a plain-text body and an HTML body. Values are inserted as they are into the
//! text, escaped into the HTML, and stripped of line breaks in the subject (no header injection).

use crate::domain::Locale;
use chrono::{DateTime, Datelike, Utc};

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
}

fn source(template: Template, locale: Locale) -> &'static str {
    use Template as T;
    match (locale, template) {
        (Locale::En, T::Invitation) => include_str!("templates/en/invitation.txt"),
        (Locale::En, T::Cancellation) => include_str!("templates/en/cancellation.txt"),
        (Locale::En, T::AcceptedToStudent) => include_str!("templates/en/accepted_student.txt"),
        (Locale::En, T::WelcomeGuardian) => include_str!("templates/en/welcome_guardian.txt"),
        (Locale::En, T::Removed) => include_str!("templates/en/removed.txt"),
        (Locale::Nl, T::Invitation) => include_str!("templates/nl/invitation.txt"),
        (Locale::Nl, T::Cancellation) => include_str!("templates/nl/cancellation.txt"),
        (Locale::Nl, T::AcceptedToStudent) => include_str!("templates/nl/accepted_student.txt"),
        (Locale::Nl, T::WelcomeGuardian) => include_str!("templates/nl/welcome_guardian.txt"),
        (Locale::Nl, T::Removed) => include_str!("templates/nl/removed.txt"),
    }
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

/// Renders `template` in `locale` with `values` for its `{{name}}` placeholders.
pub fn render(template: Template, locale: Locale, values: &[(&str, &str)]) -> Rendered {
    let src = source(template, locale);
    let (head, rest) = src.split_once("\n--- text\n").unwrap_or((src, ""));
    let (text, html) = rest.split_once("\n--- html\n").unwrap_or((rest, ""));
    let subject = head.trim().strip_prefix("Subject:").unwrap_or(head).trim();
    let one_line = |v: &str| v.replace(['\r', '\n'], " ");
    Rendered {
        subject: fill(subject, values, one_line),
        text: fill(text.trim_end(), values, str::to_owned),
        html: fill(html.trim_end(), values, escape_html),
    }
}

/// Fills `{{name}}` placeholders in one pass over the template: an inserted value is never
/// scanned again, so a value that looks like a placeholder (a display name of
/// `{{accept_url}}`) stays the text it is. Unknown placeholders are left as they are.
fn fill(template: &str, values: &[(&str, &str)], encode: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let found = after.find("}}").and_then(|close| {
            let name = &after[..close];
            let value = values.iter().find(|(n, _)| *n == name)?.1;
            Some((value, close))
        });
        match found {
            Some((value, close)) => {
                out.push_str(&encode(value));
                rest = &after[close + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes a value for HTML text and attribute context.
pub fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
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
mod tests {
    use super::*;
    use chrono::TimeZone;

    const ALL: [Template; 5] = [
        Template::Invitation,
        Template::Cancellation,
        Template::AcceptedToStudent,
        Template::WelcomeGuardian,
        Template::Removed,
    ];

    #[test]
    fn values_that_look_like_placeholders_are_never_expanded() {
        let values = [
            ("student_name", "{{accept_url}}"),
            ("school", "{{decline_url}}"),
            ("inviter_name", "{{inviter_name}}"),
            ("expire_date", "1 March 2027"),
            ("accept_url", "https://x.example/accept?token=secret-token"),
            (
                "decline_url",
                "https://x.example/decline?token=secret-token",
            ),
        ];
        for locale in [Locale::En, Locale::Nl] {
            let r = render(Template::Invitation, locale, &values);
            assert!(!r.subject.contains("secret-token"), "{}", r.subject);
            assert!(r.subject.contains("{{accept_url}}") || r.subject.contains("{{decline_url}}"));
            // The links appear where the template puts them, and only there.
            assert_eq!(r.text.matches("accept?token=secret-token").count(), 1);
        }
        assert_eq!(fill("{{a}} {{b", &[("a", "{{b")], str::to_owned), "{{b {{b");
        assert_eq!(fill("x}} {{", &[], str::to_owned), "x}} {{");
    }

    #[test]
    fn every_template_has_subject_text_and_html_and_no_placeholder_left() {
        let values = [
            ("student_name", "Emma"),
            ("school", "lincoln.k12.example"),
            ("inviter_name", "J. Jansen"),
            ("guardian_name", "P. de Vries"),
            ("expire_date", "1 March 2027"),
            ("accept_url", "https://x.example/accept?token=t"),
            ("decline_url", "https://x.example/decline?token=t"),
        ];
        for locale in [Locale::En, Locale::Nl] {
            for template in ALL {
                let r = render(template, locale, &values);
                assert!(
                    !r.subject.is_empty() && !r.text.is_empty() && !r.html.is_empty(),
                    "{template:?} {locale:?}"
                );
                for part in [&r.subject, &r.text, &r.html] {
                    assert!(!part.contains("{{"), "{template:?} {locale:?}: {part}");
                }
            }
        }
    }

    #[test]
    fn html_escapes_user_values_and_subjects_stay_on_one_line() {
        let r = render(
            Template::Invitation,
            Locale::En,
            &[
                ("student_name", "<script>alert(1)</script>"),
                ("school", "a\r\nBcc: x@y"),
            ],
        );
        assert!(!r.html.contains("<script>"));
        assert!(r.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(
            r.text.contains("<script>alert(1)</script>"),
            "plain text is not HTML"
        );
        assert!(!r.subject.contains('\n') && !r.subject.contains('\r'));
    }

    #[test]
    fn dates_are_written_in_the_locale() {
        let t = Utc.with_ymd_and_hms(2027, 3, 1, 12, 0, 0).unwrap();
        assert_eq!(format_date(t, Locale::En), "1 March 2027");
        assert_eq!(format_date(t, Locale::Nl), "1 maart 2027");
        let nl = render(Template::Invitation, Locale::Nl, &[]);
        assert!(nl.subject.starts_with("Uitnodiging"));
    }
}
