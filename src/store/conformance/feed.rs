//! Conformance of [`crate::store::FeedRepo`]: the change feed is ordered, scoped, resumable,
//! and never skips a change that a slower transaction commits after a faster one.

use super::{domain, t0, uid};
use crate::domain::*;
use crate::store::*;
use chrono::TimeDelta;
use std::collections::BTreeSet;
use std::sync::Arc;

fn event(domain_name: &str, student: &str, action: &str) -> AuditEvent {
    AuditEvent {
        event_id: 0,
        domain: domain(domain_name),
        student_id: Some(uid(student)),
        invitation_id: Some(InvitationId::generate()),
        action: action.into(),
        actor_id: "admin-1".into(),
        request_id: None,
        create_time: t0(),
        details: AuditDetails::default(),
    }
}

/// Appends `events` in one transaction; their ids.
async fn commit_events(store: &Arc<dyn Store>, events: &[AuditEvent]) -> Vec<i64> {
    let mut tx = store.begin().await.unwrap();
    let mut ids = Vec::new();
    for e in events {
        ids.push(tx.append_event(e).await.unwrap());
    }
    tx.commit().await.unwrap();
    ids
}

/// Follows the feed from `from` until it has passed everything committed before the call,
/// checking the order as it goes. The watermark is the whole server's (transaction ids are),
/// so it may wait a moment for transactions of other tests' databases.
pub(super) async fn follow(
    s: &mut Box<dyn Session>,
    scope: &ChangeScope,
    from: Position,
) -> (Vec<RecordedChange>, Position) {
    let target = s.committed_head().await.unwrap();
    let mut at = from;
    let mut seen = Vec::new();
    loop {
        let page = s.changes_after(scope, at, 3).await.unwrap();
        for change in &page.changes {
            assert!(change.position > at, "out of order or repeated");
            assert!(change.position.revision < page.watermark);
            at = change.position;
        }
        if page.changes.len() == 3 {
            seen.extend(page.changes);
            continue;
        }
        seen.extend(page.changes);
        at = at.max(Position::below(page.watermark));
        if at >= target {
            return (seen, at);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

pub(super) async fn the_feed_pages_in_commit_order_by_scope_and_resumes(store: Arc<dyn Store>) {
    let mut s = store.session().await.unwrap();
    let start = s.committed_head().await.unwrap();
    let first = commit_events(
        &store,
        &[
            event("school.example", "s1", "invitation.created"),
            event("other.example", "s9", "invitation.created"),
        ],
    )
    .await;
    let second = commit_events(
        &store,
        &[event("school.example", "s2", "invitation.accepted")],
    )
    .await;
    let head = s.committed_head().await.unwrap();
    assert!(head > start);

    let (all, end) = follow(&mut s, &ChangeScope::default(), start).await;
    let ids: Vec<i64> = all.iter().map(|c| c.event.event_id).collect();
    assert_eq!(ids, [first[0], first[1], second[0]]);
    if store.backend() == Backend::Postgres {
        // One transaction, one revision (SQLite numbers each event: one writer at a time).
        assert_eq!(all[0].position.revision, all[1].position.revision);
    }
    assert_eq!(all[2].event.action, "invitation.accepted");
    assert!(
        end >= head,
        "a reader that caught up stands at or past the head"
    );

    let school = ChangeScope {
        domain: Some(domain("school.example")),
        student: None,
    };
    let (mine, _) = follow(&mut s, &school, start).await;
    assert_eq!(mine.len(), 2);
    assert!(
        mine.iter()
            .all(|c| c.event.domain.as_str() == "school.example")
    );
    let one_student = ChangeScope {
        domain: Some(domain("school.example")),
        student: Some(uid("s2")),
    };
    let (theirs, _) = follow(&mut s, &one_student, start).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].event.event_id, second[0]);

    // Resuming from the first change gives the rest, and from the end, nothing.
    let (rest, _) = follow(&mut s, &ChangeScope::default(), all[0].position).await;
    assert_eq!(rest.len(), 2);
    assert!(
        follow(&mut s, &ChangeScope::default(), end)
            .await
            .0
            .is_empty()
    );
    // When the first change after a position was recorded: what tells an expired token.
    assert_eq!(s.first_change_time(start).await.unwrap(), Some(t0()));
    assert_eq!(s.first_change_time(end).await.unwrap(), None);
}

pub(super) async fn a_change_committed_late_is_held_back_never_skipped(store: Arc<dyn Store>) {
    let mut reader = store.session().await.unwrap();
    let start = reader.committed_head().await.unwrap();
    let mut slow = store.begin().await.unwrap();
    let slow_id = slow
        .append_event(&event("school.example", "s1", "invitation.created"))
        .await
        .unwrap();
    // On Postgres a second writer commits while the first is still open, with a later
    // transaction; SQLite has one writer at a time, so there the open one is alone.
    let fast_ids = if store.backend() == Backend::Postgres {
        commit_events(
            &store,
            &[event("school.example", "s2", "invitation.created")],
        )
        .await
    } else {
        Vec::new()
    };
    let page = reader
        .changes_after(&ChangeScope::default(), start, 100)
        .await
        .unwrap();
    assert!(
        page.changes.is_empty(),
        "nothing may pass a transaction still running"
    );
    assert_eq!(page.pending, !fast_ids.is_empty());
    slow.commit().await.unwrap();
    let (seen, _) = follow(&mut reader, &ChangeScope::default(), start).await;
    let ids: Vec<i64> = seen.iter().map(|c| c.event.event_id).collect();
    let mut expected = vec![slow_id];
    expected.extend(fast_ids);
    assert_eq!(
        ids, expected,
        "the slow one first: its transaction began first"
    );
}

pub(super) async fn concurrent_writers_are_followed_without_gaps_or_repeats(store: Arc<dyn Store>) {
    let start = store
        .session()
        .await
        .unwrap()
        .committed_head()
        .await
        .unwrap();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut committed = Vec::new();
                for i in 0..15 {
                    let student = format!("s{w}");
                    // Some transactions write two events, some one.
                    let mut batch = vec![event("school.example", &student, "invitation.created")];
                    if i % 3 == 0 {
                        batch.push(event("school.example", &student, "invitation.resent"));
                    }
                    committed.extend(commit_events(&store, &batch).await);
                }
                committed
            })
        })
        .collect();
    // A reader follows while they write, and once more after they are done.
    let mut reader = store.session().await.unwrap();
    let mut at = start;
    let mut seen = Vec::new();
    let mut done = false;
    while !done {
        done = writers.iter().all(|w| w.is_finished());
        let (more, next) = follow(&mut reader, &ChangeScope::default(), at).await;
        seen.extend(more);
        at = next;
        tokio::task::yield_now().await;
    }
    let mut stored = BTreeSet::new();
    for w in writers {
        stored.extend(w.await.unwrap());
    }
    let (last, _) = follow(&mut reader, &ChangeScope::default(), at).await;
    seen.extend(last);
    let ids: Vec<i64> = seen.iter().map(|c| c.event.event_id).collect();
    let unique: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a change was seen twice");
    assert_eq!(stored.len(), 8 * 15 + 8 * 5);
    assert_eq!(unique, stored, "every committed change, none missed");
}

pub(super) async fn the_first_change_after_a_position_tells_its_age(store: Arc<dyn Store>) {
    let mut s = store.session().await.unwrap();
    let start = s.committed_head().await.unwrap();
    let mut old = event("school.example", "s1", "invitation.created");
    old.create_time = t0() - TimeDelta::days(8);
    commit_events(&store, &[old]).await;
    let after_old = s.committed_head().await.unwrap();
    commit_events(
        &store,
        &[event("school.example", "s1", "invitation.accepted")],
    )
    .await;
    assert_eq!(
        s.first_change_time(start).await.unwrap(),
        Some(t0() - TimeDelta::days(8))
    );
    assert_eq!(s.first_change_time(after_old).await.unwrap(), Some(t0()));
}

pub(super) async fn invitations_are_read_by_id_in_one_go(store: Arc<dyn Store>) {
    let mut s = store.session().await.unwrap();
    let a = super::pending("s1", "a@example.org");
    let b = super::pending("s1", "b@example.org");
    s.insert_invitation(&a).await.unwrap();
    s.insert_invitation(&b).await.unwrap();
    let mut found = s
        .invitations_by_id(&[b.id, InvitationId::generate(), a.id])
        .await
        .unwrap();
    found.sort_by_key(|i| i.invited_email.as_str().to_owned());
    assert_eq!(found, [a, b]);
    assert!(s.invitations_by_id(&[]).await.unwrap().is_empty());
}

pub(super) async fn a_students_record_and_links_come_in_one_statement(store: Arc<dyn Store>) {
    let mut s = store.session().await.unwrap();
    s.upsert_user(&super::student("s1"), t0()).await.unwrap();
    s.upsert_user(&super::student("s2"), t0()).await.unwrap();
    let a = super::accepted(super::pending("s1", "a@example.org"), "g1");
    let b = super::accepted(super::pending("s1", "b@example.org"), "g2");
    let waiting = super::pending("s1", "c@example.org");
    for inv in [&a, &b, &waiting] {
        s.insert_invitation(inv).await.unwrap();
    }
    let read = s
        .student_links(&[uid("s2"), uid("nobody"), uid("s1")])
        .await
        .unwrap();
    assert_eq!(
        read.iter().map(|r| r.id().as_str()).collect::<Vec<_>>(),
        ["s1", "s2"],
        "the known students, by id"
    );
    assert_eq!(read[0].student, super::student("s1"));
    let mut expected: Vec<Link> = [&a, &b].iter().filter_map(|i| Link::of(i)).collect();
    expected.sort_by_key(|l| l.invitation_id);
    assert_eq!(expected.len(), 2);
    assert_eq!(read[0].links, expected, "accepted links only, by id");
    assert!(read[1].links.is_empty(), "a student without links");
    // A page cut from them is what list_links gives, page by page and by address.
    let filter = |after, invited_email, limit| LinkFilter {
        scope: LinkScope::Student(uid("s1")),
        invited_email,
        domain: None,
        after,
        limit,
    };
    for f in [
        filter(None, None, 10),
        filter(None, None, 1),
        filter(Some(expected[0].invitation_id), None, 10),
        filter(None, Some(super::email("b@example.org")), 10),
    ] {
        let listed: Vec<Link> = s
            .list_links(&f)
            .await
            .unwrap()
            .iter()
            .filter_map(Link::of)
            .collect();
        assert_eq!(f.page_of(&read[0].links), listed, "{f:?}");
    }
    assert_eq!(filter(None, None, 1).page_of(&read[0].links), expected[..1]);
    assert_eq!(
        filter(None, Some(super::email("b@example.org")), 10).page_of(&read[0].links),
        [Link::of(&b).unwrap()]
    );
}
