//! The invitation-side emails: every kind in both languages, snapshots of what they say, and
//! what values can and cannot do to them.

use super::*;
use chrono::TimeZone;

/// Values as the use cases give them, with a Dutch or English date.
fn values(locale: Locale) -> Vec<(&'static str, String)> {
    let mut settings = crate::domain::DomainSettings::defaults(
        crate::domain::DomainName::parse("lincoln.k12.example").unwrap(),
    );
    settings.summary_time_zone = chrono_tz::Europe::Amsterdam;
    let expires = Utc.with_ymd_and_hms(2027, 3, 1, 12, 0, 0).unwrap();
    vec![
        ("student_name", "Emma de Vries".into()),
        ("school", "lincoln.k12.example".into()),
        ("inviter_name", "J. Jansen".into()),
        (
            "children_names",
            "Emma de Vries, Liam de Vries and Noah de Vries".into(),
        ),
        ("guardian_name", "Pat de Vries".into()),
        ("expire_date", format_date(expires, locale)),
        ("accept_url", "https://x.example/accept?token=t0k3n".into()),
        (
            "decline_url",
            "https://x.example/decline?token=t0k3n".into(),
        ),
        ("schedule", schedule_phrase(&settings, locale)),
    ]
}

fn render_with(template: Template, locale: Locale, values: &[(&'static str, String)]) -> Rendered {
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if template == Template::Family {
        return render_family(locale, &pairs, &children()).unwrap();
    }
    render(template, locale, &pairs).unwrap()
}

/// Three children of one family, as the family email lists them.
fn children() -> Vec<FamilyChild> {
    ["Emma de Vries", "Liam de Vries", "Noah de Vries"]
        .iter()
        .enumerate()
        .map(|(i, name)| FamilyChild {
            name: (*name).to_owned(),
            decline_url: format!("https://x.example/decline?token=child{i}"),
        })
        .collect()
}

#[test]
fn every_email_in_both_languages() {
    for locale in [Locale::En, Locale::Nl] {
        for template in Template::ALL {
            let r = render_with(template, locale, &values(locale));
            assert!(!r.subject.is_empty() && !r.text.is_empty() && !r.html.is_empty());
            insta::assert_snapshot!(
                format!("{}_{}", template.name(), locale.as_str()),
                format!(
                    "Subject: {}\n\n{}\n\n--- html\n{}",
                    r.subject, r.text, r.html
                )
            );
        }
    }
}

#[test]
fn a_domain_without_summaries_is_said_so_in_the_welcome() {
    let mut values = values(Locale::En);
    values.retain(|(k, _)| *k != "schedule");
    values.push(("schedule", String::new()));
    let r = render_with(Template::WelcomeGuardian, Locale::En, &values);
    assert!(
        r.text
            .contains("does not send email summaries at the moment"),
        "{}",
        r.text
    );
}

#[test]
fn values_are_never_read_as_template_code() {
    let mut values = values(Locale::En);
    for (k, v) in &mut values {
        if *k == "student_name" {
            *v = "{{ accept_url }} {% if true %}x{% endif %}".into();
        }
    }
    for locale in [Locale::En, Locale::Nl] {
        let r = render_with(Template::Invitation, locale, &values);
        assert!(
            r.subject
                .contains("{{ accept_url }} {% if true %}x{% endif %}")
        );
        // The link appears where the template puts it, and only there.
        assert_eq!(r.text.matches("accept?token=t0k3n").count(), 1);
    }
}

#[test]
fn a_value_the_template_needs_but_was_not_given_is_an_error() {
    let err = render(
        Template::Invitation,
        Locale::En,
        &[("student_name", "Emma")],
    )
    .unwrap_err();
    assert!(err.contains("invitation.en"), "{err}");
}

#[test]
fn html_escapes_values_and_subjects_stay_on_one_line() {
    let mut values = values(Locale::En);
    for (k, v) in &mut values {
        match *k {
            "student_name" => *v = "<script>alert(1)</script>".into(),
            "school" => *v = "a\r\nBcc: x@y".into(),
            _ => {}
        }
    }
    let r = render_with(Template::Invitation, Locale::En, &values);
    assert!(!r.html.contains("<script>"));
    assert!(
        r.html
            .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{}",
        r.html
    );
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
}

#[test]
fn an_inviter_who_is_not_a_person_is_named_by_role_not_by_domain() {
    for (locale, role) in [
        (
            Locale::En,
            "The administration of lincoln.k12.example invites you",
        ),
        (
            Locale::Nl,
            "De schoolleiding van lincoln.k12.example nodigt u",
        ),
    ] {
        let mut values = values(locale);
        for (k, v) in &mut values {
            if *k == "inviter_name" {
                v.clear();
            }
        }
        let r = render_with(Template::Invitation, locale, &values);
        assert!(r.text.contains(role), "{}", r.text);
        assert!(r.html.contains(role), "{}", r.html);
    }
}

#[test]
fn a_family_email_has_one_accept_link_and_a_decline_link_per_child() {
    for locale in [Locale::En, Locale::Nl] {
        let r = render_with(Template::Family, locale, &values(locale));
        assert_eq!(r.text.matches("accept?token=t0k3n").count(), 1);
        for (i, child) in children().iter().enumerate() {
            assert!(
                r.text.contains(&format!(
                    "- {}: https://x.example/decline?token=child{i}",
                    child.name
                )),
                "{}",
                r.text
            );
            assert!(r.html.contains(&format!("decline?token=child{i}")));
        }
        assert!(r.text.contains(" 3 "), "the count of children: {}", r.text);
    }
    let mut hostile = children();
    hostile[0].name = "<b>Emma</b>".into();
    let pairs: Vec<(&str, String)> = values(Locale::En);
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = render_family(Locale::En, &pairs, &hostile).unwrap();
    assert!(!r.html.contains("<b>Emma</b>"), "names are escaped in HTML");
}
