//! The summary email: subject, text and HTML in the guardian's language, rendered from
//! templates with loops and HTML auto-escaping (minijinja), so that a title or announcement
//! text can never inject markup.

use super::templates::{Rendered, environment, format_date};
use crate::domain::Locale;
use crate::domain::summary::Frequency;
use crate::domain::summary::content::{ActivityKind, Summary, WorkLine};
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// What one summary email is made of.
#[derive(Debug, Clone, Copy)]
pub struct SummaryLetter<'a> {
    /// The summary.
    pub summary: &'a Summary,
    /// How to greet the guardian.
    pub guardian_name: &'a str,
    /// Their language.
    pub locale: Locale,
    /// The frequency it was built for.
    pub frequency: Frequency,
    /// The send instant of its period.
    pub period_end: DateTime<Utc>,
    /// The zone dates are shown in.
    pub zone: Tz,
    /// The one-click unsubscribe page.
    pub unsubscribe_url: &'a str,
}

#[derive(Serialize)]
struct Item {
    title: String,
    due: String,
    turned_in: bool,
}

#[derive(Serialize)]
struct Activity {
    text: String,
    new_work: bool,
}

#[derive(Serialize)]
struct Class {
    course: String,
    missing: Vec<Item>,
    upcoming: Vec<Item>,
    activity: Vec<Activity>,
}

#[derive(Serialize)]
struct Child {
    name: String,
    classes: Vec<Class>,
}

#[derive(Serialize)]
struct Context<'a> {
    guardian_name: &'a str,
    period_word: &'a str,
    period_date: String,
    child_count: usize,
    children: Vec<Child>,
    unsubscribe_url: &'a str,
}

/// A date in `zone` as people of `locale` write it.
fn local_date(t: DateTime<Utc>, zone: Tz, locale: Locale) -> String {
    let local = t.with_timezone(&zone).naive_local();
    format_date(Utc.from_utc_datetime(&local), locale)
}

/// Renders the summary email.
pub fn render_summary(letter: &SummaryLetter<'_>) -> Result<Rendered, String> {
    let locale = letter.locale;
    let date = |t| local_date(t, letter.zone, locale);
    let item = |line: &WorkLine| Item {
        title: line.title.clone(),
        due: date(line.due_time),
        turned_in: line.turned_in,
    };
    let children: Vec<Child> = letter
        .summary
        .children
        .iter()
        .map(|child| Child {
            name: child.display_name.clone(),
            classes: child
                .classes
                .iter()
                .map(|class| Class {
                    course: class.course_id.to_string(),
                    missing: class.missing.iter().map(item).collect(),
                    upcoming: class.upcoming.iter().map(item).collect(),
                    activity: class
                        .activity
                        .iter()
                        .map(|a| Activity {
                            text: a.text.clone(),
                            new_work: a.kind == ActivityKind::NewWork,
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    let daily = letter.frequency == Frequency::Daily;
    let (period_word, subject_word) = match (locale, daily) {
        (Locale::En, true) => ("daily", "Daily summary"),
        (Locale::En, false) => ("weekly", "Weekly summary"),
        (Locale::Nl, true) => ("dagelijkse", "Dagoverzicht"),
        (Locale::Nl, false) => ("wekelijkse", "Weekoverzicht"),
    };
    let count = children.len();
    let whom = match (locale, count) {
        (Locale::En, 1) => "1 child".to_owned(),
        (Locale::En, n) => format!("{n} children"),
        (Locale::Nl, 1) => "1 kind".to_owned(),
        (Locale::Nl, n) => format!("{n} kinderen"),
    };
    let period_date = date(letter.period_end);
    let subject = format!(
        "{subject_word} {} {whom}, {period_date}",
        if locale == Locale::En { "for" } else { "voor" }
    )
    .replace(['\r', '\n'], " ");
    let context = Context {
        guardian_name: letter.guardian_name,
        period_word,
        period_date,
        child_count: count,
        children,
        unsubscribe_url: letter.unsubscribe_url,
    };
    let env = environment();
    let render = |name: &str| -> Result<String, String> {
        env.get_template(name)
            .and_then(|t| t.render(minijinja::value::Serde(&context)))
            .map_err(|e| format!("cannot render {name}: {e}"))
    };
    Ok(Rendered {
        subject,
        text: render(&format!("summary.{}.txt", locale.as_str()))?,
        html: render(&format!("summary.{}.html", locale.as_str()))?,
    })
}

#[cfg(test)]
mod tests;
