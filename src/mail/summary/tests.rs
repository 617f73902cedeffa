//! Snapshots of rendered summaries in both languages, and what teachers' texts cannot do to
//! them.

use super::*;
use crate::domain::summary::content::{ActivityLine, ClassSummary};
use crate::domain::{CourseId, UserId};

fn at(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
}

fn line(title: &str, due: DateTime<Utc>, turned_in: bool) -> WorkLine {
    WorkLine {
        title: title.into(),
        due_time: due,
        turned_in,
    }
}

/// Two children: one with a missing, an upcoming (turned in) and new work and an
/// announcement with markup; one with only an announcement.
fn summary() -> Summary {
    let mut summary = Summary::default();
    summary.add_child(
        UserId::parse("s1").unwrap(),
        "Emma".into(),
        vec![ClassSummary {
            course_id: CourseId::parse("math-3b").unwrap(),
            missing: vec![line("Essay on autumn", at(25, 9), false)],
            upcoming: vec![
                line("Fractions worksheet", at(30, 9), false),
                line("Reading log", at(30, 12), true),
            ],
            activity: vec![
                ActivityLine {
                    kind: ActivityKind::NewWork,
                    text: "Fractions worksheet".into(),
                    time: at(25, 8),
                },
                ActivityLine {
                    kind: ActivityKind::Announcement,
                    text: "Bring your <b>recorder</b> & music book on Monday".into(),
                    time: at(26, 8),
                },
            ],
        }],
    );
    summary.add_child(
        UserId::parse("s2").unwrap(),
        "Noah".into(),
        vec![ClassSummary {
            course_id: CourseId::parse("art-1a").unwrap(),
            missing: vec![],
            upcoming: vec![],
            activity: vec![ActivityLine {
                kind: ActivityKind::Announcement,
                text: "The museum trip moves to Thursday.".into(),
                time: at(24, 8),
            }],
        }],
    );
    summary
}

fn letter(summary: &Summary, locale: Locale, frequency: Frequency) -> Rendered {
    render_summary(&SummaryLetter {
        summary,
        guardian_name: "Pat",
        locale,
        frequency,
        period_end: at(27, 16),
        zone: chrono_tz::Europe::Amsterdam,
        unsubscribe_url: "https://guardians.example/summaries/unsubscribe?token=t0k3n",
    })
    .unwrap()
}

#[test]
fn weekly_summaries_in_english_and_dutch() {
    let summary = summary();
    for locale in [Locale::En, Locale::Nl] {
        let r = letter(&summary, locale, Frequency::Weekly);
        insta::assert_snapshot!(
            format!("summary_weekly_{}", locale.as_str()),
            format!(
                "Subject: {}\n\n{}\n\n--- html\n{}",
                r.subject, r.text, r.html
            )
        );
    }
}

#[test]
fn a_daily_subject_and_markup_kept_out_of_the_html() {
    let summary = summary();
    let r = letter(&summary, Locale::Nl, Frequency::Daily);
    assert_eq!(r.subject, "Dagoverzicht voor 2 kinderen, 27 november 2026");
    assert!(!r.html.contains("<b>recorder"));
    assert!(r.html.contains("&lt;b&gt;recorder"));
    assert!(r.text.contains("Bring your <b>recorder</b> & music book"));
    for part in [&r.text, &r.html] {
        assert!(!part.to_lowercase().contains("grade:"), "never grades");
    }
}
