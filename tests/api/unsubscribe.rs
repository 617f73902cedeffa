//! The unsubscribe page end to end: a real summary email (built by `summaries run-once`,
//! delivered as an .eml file by the dispatcher), its link opened in headless Chromium, the
//! button pressed; the one-click POST of RFC 8058; and what a GET alone must not do.

use crate::browser::{Browser, http_client, send};
use crate::helpers::{TestApp, spawn_app_with_web};
use crate::mail::dispatcher;
use crate::summaries::{friday_evening, run_once_linking_to, school_with_activity};
use bytes::Bytes;
use guardian_service::domain::clock::ManualClock;
use guardian_service::mail::{DispatchPolicy, FolderTransport};
use guardian_service::proto::*;
use http_body_util::Full;
use std::sync::Arc;

/// The summary email delivered to `recipient` in `folder`, with its headers unfolded.
fn delivered_to(folder: &std::path::Path, recipient: &str) -> String {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder).expect("mail folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "eml") {
            let raw = std::fs::read_to_string(&path).expect("eml");
            let unfolded = raw.replace("\r\n ", " ").replace("\r\n\t", " ");
            if unfolded.contains(&format!("To: {recipient}"))
                && unfolded.contains("List-Unsubscribe:")
            {
                found.push(unfolded);
            }
        }
    }
    assert_eq!(found.len(), 1, "one summary to {recipient}");
    found.remove(0)
}

/// The value of header `name` in `message`.
fn header<'a>(message: &'a str, name: &str) -> &'a str {
    message
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} header"))
        .trim()
}

/// The URL of a message's List-Unsubscribe header (`<url>`).
fn unsubscribe_link(message: &str) -> String {
    header(message, "List-Unsubscribe")
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

async fn frequency_of(app: &TestApp, guardian: &str) -> (i32, Vec<String>) {
    let prefs = app
        .summaries()
        .get_summary_preferences(GetSummaryPreferencesRequest {
            guardian_id: guardian.into(),
        })
        .await
        .expect("preferences")
        .into_inner()
        .preferences
        .expect("preferences");
    (prefs.frequency, prefs.explicitly_set)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_of_a_real_email_unsubscribes_in_a_browser_and_by_one_click() {
    let clock = Arc::new(ManualClock::new(friday_evening()));
    let (app, web) = spawn_app_with_web(clock.clone()).await;
    school_with_activity(&app).await;
    // g1 reads Dutch; g2 follows the domain (English).
    app.summaries()
        .update_summary_preferences(UpdateSummaryPreferencesRequest {
            preferences: Some(SummaryPreferences {
                guardian_id: "g1".into(),
                locale: "nl".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["locale".into()],
            }),
        })
        .await
        .expect("locale");
    let said = run_once_linking_to(&app, friday_evening(), &web);
    assert!(said.contains("2 summaries queued"), "{said}");
    let folder = guardian_service::testing::TempDir::new();
    let transport = Arc::new(FolderTransport::new(
        folder.path.clone(),
        "School <no-reply@school.example>".parse().unwrap(),
    ));
    let sent = dispatcher(&app, transport, clock.clone(), DispatchPolicy::default())
        .await
        .dispatch_due()
        .await
        .expect("dispatch");
    assert!(sent.sent >= 2, "{sent:?}");

    let to_g1 = delivered_to(&folder.path, "g1@example.org");
    assert_eq!(
        header(&to_g1, "List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    let link = unsubscribe_link(&to_g1);
    assert!(
        link.starts_with(&format!("{web}/summaries/unsubscribe?token=")),
        "{link}"
    );

    // Opening the link shows the question in the guardian's language and changes nothing.
    let browser = Browser::start().await;
    browser.open(&link).await;
    let page = browser.wait_for("Geen e-mailoverzichten meer?").await;
    assert!(
        page.contains("lang=\"nl\"") && page.contains("Afmelden"),
        "{page}"
    );
    assert_eq!(frequency_of(&app, "g1").await.1, ["locale"]);
    // The button applies it.
    browser.click("#unsubscribe").await;
    browser.wait_for("U bent afgemeld").await;
    assert_eq!(
        frequency_of(&app, "g1").await,
        (
            SummaryFrequency::Never as i32,
            vec!["frequency".into(), "locale".into()]
        )
    );
    // The link again: done already, and no button.
    browser.open(&link).await;
    let again = browser.wait_for("U was al afgemeld").await;
    assert!(!again.contains("<button"), "{again}");

    // g2's mail provider uses the one-click POST; a GET before it changes nothing.
    let to_g2 = delivered_to(&folder.path, "g2@example.org");
    let link2 = unsubscribe_link(&to_g2);
    let client = http_client();
    let get = http::Request::get(&link2)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, headers, body) = send(&client, get).await;
    assert_eq!(status, http::StatusCode::OK);
    assert!(body.contains("Stop email summaries?"), "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(
        frequency_of(&app, "g2").await.0,
        SummaryFrequency::Weekly as i32
    );
    let one_click = http::Request::post(&link2)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(b"List-Unsubscribe=One-Click")))
        .unwrap();
    let (status, _, body) = send(&client, one_click).await;
    assert_eq!(status, http::StatusCode::OK);
    assert!(body.contains("You are unsubscribed"), "{body}");
    assert_eq!(
        frequency_of(&app, "g2").await.0,
        SummaryFrequency::Never as i32
    );

    // A made-up link is not found, in both languages.
    let unknown = http::Request::get(format!("{web}/summaries/unsubscribe?token=made-up"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _, body) = send(&client, unknown).await;
    assert_eq!(status, http::StatusCode::NOT_FOUND);
    assert!(body.contains("Deze link is niet geldig"), "{body}");
}
