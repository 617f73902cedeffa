//! Conformance of [`crate::store::PrivacyRepo`]: a person's records by each key, whatever their
//! state, and the statements that erase what is kept beside invitations.

use super::{accepted, email, insert, message, pending, t0, uid};
use crate::domain::*;
use crate::store::*;
use std::sync::Arc;

pub(super) async fn a_persons_records_are_found_by_each_key_and_erased(store: Arc<dyn Store>) {
    // Parent: linked to s1 (with another profile address), a link to s2 that ended, a pending
    // invitation to s3. Someone else accepted an invitation sent to the parent's address.
    let link = accepted(pending("s1", "parent@example.org"), "g-parent");
    let mut ended = accepted(pending("s2", "parent@example.org"), "g-parent");
    ended.state = InvitationState::Removed(RemovalReason::GuardianRemoved);
    let waiting = pending("s3", "parent@example.org");
    let taken = accepted(pending("s4", "parent@example.org"), "g-other");
    let unrelated = pending("s1", "stranger@example.org");
    let mut link = link;
    if let Some(profile) = link.guardian.as_mut() {
        profile.email = email("own@example.org");
    }
    for inv in [&link, &ended, &waiting, &taken, &unrelated] {
        insert(&store, inv).await.unwrap();
    }
    let ids = |list: Vec<Invitation>| {
        let mut ids: Vec<InvitationId> = list.into_iter().map(|i| i.id).collect();
        ids.sort();
        ids
    };
    let sorted = |mut list: Vec<InvitationId>| {
        list.sort();
        list
    };
    let mut s = store.session().await.unwrap();
    assert_eq!(
        ids(s.invitations_of_guardian(&uid("g-parent")).await.unwrap()),
        sorted(vec![link.id, ended.id]),
        "every state, not only links"
    );
    assert_eq!(
        ids(s
            .invitations_of_address(&email("parent@example.org"))
            .await
            .unwrap()),
        sorted(vec![link.id, ended.id, waiting.id, taken.id]),
        "sent to the address, whoever accepted"
    );
    assert_eq!(
        ids(s
            .invitations_of_address(&email("own@example.org"))
            .await
            .unwrap()),
        vec![link.id],
        "accepted with it as the profile address"
    );
    assert_eq!(
        ids(s.invitations_of_student(&uid("s1")).await.unwrap()),
        sorted(vec![link.id, unrelated.id])
    );

    // Events by invitation and by student; the actor is replaced in one invitation's events.
    let event = |inv: &Invitation, action: &str, actor: &str| AuditEvent {
        event_id: 0,
        domain: inv.domain.clone(),
        student_id: Some(inv.student_id.clone()),
        invitation_id: Some(inv.id),
        action: action.into(),
        actor_id: actor.into(),
        request_id: None,
        create_time: t0(),
        details: AuditDetails::default(),
    };
    for e in [
        event(&link, "invitation.created", "teacher-1"),
        event(&link, "invitation.accepted", "g-parent"),
        event(&unrelated, "invitation.created", "teacher-1"),
    ] {
        s.append_event(&e).await.unwrap();
    }
    let of_link = s.events_of_invitation(&link).await.unwrap();
    assert_eq!(
        of_link
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        ["invitation.created", "invitation.accepted"]
    );
    assert_eq!(
        s.events_of_student(&link.domain, &uid("s1"))
            .await
            .unwrap()
            .len(),
        3
    );
    s.replace_event_actor(&link, "g-parent", "erased-1")
        .await
        .unwrap();
    let actors: Vec<String> = s
        .events_of_invitation(&link)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.actor_id)
        .collect();
    assert_eq!(actors, ["teacher-1", "erased-1"], "only the person's own");

    // Mail: found by invitation, family or id, once each; erased with or without a stand-in.
    let mut to_parent = message(1);
    to_parent.invitation_id = Some(waiting.id);
    to_parent.last_error = Some("452 parent@example.org mailbox full".into());
    let mut sent = message(2);
    sent.invitation_id = Some(link.id);
    sent.status = DeliveryStatus::Sent;
    let mut to_student = message(3);
    to_student.invitation_id = Some(link.id);
    to_student.recipient = email("s1@school.example");
    let mut family = message(4);
    family.invitation_id = None;
    family.family_id = Some("family-1".into());
    for m in [&to_parent, &sent, &to_student, &family] {
        s.enqueue_message(m).await.unwrap();
    }
    let found = s
        .messages_of(
            &[waiting.id, link.id],
            &["family-1".into()],
            &[sent.message_id.clone()],
        )
        .await
        .unwrap();
    let mut found_ids: Vec<&str> = found.iter().map(|m| m.message_id.as_str()).collect();
    found_ids.sort_unstable();
    let mut expected = vec![
        to_parent.message_id.as_str(),
        sent.message_id.as_str(),
        to_student.message_id.as_str(),
        family.message_id.as_str(),
    ];
    expected.sort_unstable();
    assert_eq!(found_ids, expected, "each once");
    let stand_in = email("p-1@erased.invalid");
    assert!(
        s.erase_message(&to_parent.message_id, Some(&stand_in))
            .await
            .unwrap(),
        "a queued one is cancelled"
    );
    assert!(
        !s.erase_message(&sent.message_id, Some(&stand_in))
            .await
            .unwrap()
    );
    assert!(s.erase_message(&to_student.message_id, None).await.unwrap());
    let read = s.get_message(&to_parent.message_id).await.unwrap().unwrap();
    assert_eq!(read.status, DeliveryStatus::Failed);
    assert_eq!(read.recipient, stand_in);
    assert_eq!(
        (
            read.subject.as_str(),
            read.body_text.as_str(),
            read.body_html.as_str()
        ),
        ("", "", "")
    );
    assert!(
        read.last_error.unwrap().starts_with("cancelled:"),
        "the server's answer quoting the address is gone"
    );
    let read = s.get_message(&sent.message_id).await.unwrap().unwrap();
    assert_eq!((read.status, read.last_error), (DeliveryStatus::Sent, None));
    let read = s
        .get_message(&to_student.message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.recipient,
        email("s1@school.example"),
        "kept without one"
    );
    assert_eq!(read.body_text, "");

    // Per address and per account.
    let mut tx = store.begin().await.unwrap();
    tx.lock_address(&email("parent@example.org")).await.unwrap();
    tx.commit().await.unwrap();
    let prefs = crate::domain::summary::PreferencesPatch {
        frequency: Some(Some(crate::domain::summary::Frequency::Weekly)),
        ..Default::default()
    };
    s.patch_summary_preferences(&uid("g-parent"), &prefs, t0())
        .await
        .unwrap();
    s.put_idempotency(&IdempotencyRecord {
        principal: "guardian::g-parent".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        method: "AcceptGuardianInvitation".into(),
        request_hash: "h".into(),
        response: b"reply".to_vec(),
        create_time: t0(),
    })
    .await
    .unwrap();
    s.erase_address(&email("parent@example.org"), &stand_in)
        .await
        .unwrap();
    s.erase_guardian_account(&uid("g-parent"), &uid("erased-1"), "guardian::g-parent")
        .await
        .unwrap();
    assert_eq!(
        s.get_summary_preferences(&uid("g-parent")).await.unwrap(),
        None
    );
    assert!(
        s.summary_deliveries_of(&uid("g-parent"))
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn access_records_page_by_domain_and_student_and_age_out(store: Arc<dyn Store>) {
    let short = DomainName::parse("short.example").unwrap();
    let school = DomainName::parse("school.example").unwrap();
    let mut s = store.session().await.unwrap();
    let mut settings = DomainSettings::defaults(short.clone());
    settings.audit_retention_days = 30;
    s.put_settings(&settings, 0).await.unwrap();
    let record = |domain: &DomainName, student: Option<&str>, days: i64| AccessRecord {
        record_id: 0,
        domain: domain.clone(),
        caller: "admin@school.example".into(),
        caller_role: CallerRole::Admin,
        method: "ListGuardianInvitations".into(),
        student_id: student.map(uid),
        rows: 3,
        create_time: t0() + chrono::TimeDelta::days(days),
    };
    s.insert_access_records(&[
        record(&school, Some("s1"), 0),
        record(&school, Some("s2"), 1),
        record(&school, None, 2),
        record(&short, Some("s9"), 0),
    ])
    .await
    .unwrap();
    s.insert_access_records(&[]).await.unwrap();
    let all = s
        .list_access_records(&school, None, None, 10)
        .await
        .unwrap();
    let students: Vec<Option<&str>> = all
        .iter()
        .map(|r| r.student_id.as_ref().map(UserId::as_str))
        .collect();
    assert_eq!(students, [None, Some("s2"), Some("s1")], "newest first");
    assert_eq!(
        all[2],
        AccessRecord {
            record_id: all[2].record_id,
            ..record(&school, Some("s1"), 0)
        }
    );
    let older = s
        .list_access_records(&school, None, Some(all[0].record_id), 1)
        .await
        .unwrap();
    assert_eq!(older[0].record_id, all[1].record_id);
    let of_s1 = s
        .list_access_records(&school, Some(&uid("s1")), None, 10)
        .await
        .unwrap();
    assert_eq!(of_s1.len(), 1);
    // 31 days on: the short domain's record goes, the default domain keeps 400 days.
    let at = t0() + chrono::TimeDelta::days(31);
    assert_eq!(s.purge_access_records(at, 10).await.unwrap(), 1);
    assert!(
        s.list_access_records(&short, None, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let late = t0() + chrono::TimeDelta::days(403);
    assert_eq!(
        s.purge_access_records(late, 2).await.unwrap(),
        2,
        "a batch at a time"
    );
    assert_eq!(s.purge_access_records(late, 2).await.unwrap(), 1);
}

pub(super) async fn old_sent_emails_are_found_until_they_name_nobody(store: Arc<dyn Store>) {
    let mut s = store.session().await.unwrap();
    let at = |days: i64, status: DeliveryStatus, n: usize| {
        let mut m = message(n);
        m.create_time = t0() + chrono::TimeDelta::days(days);
        m.status = status;
        m
    };
    let old_sent = at(0, DeliveryStatus::Sent, 1);
    let old_failed = at(1, DeliveryStatus::Failed, 2);
    let old_queued = at(0, DeliveryStatus::Queued, 3);
    let new_sent = at(10, DeliveryStatus::Sent, 4);
    for m in [&old_sent, &old_failed, &old_queued, &new_sent] {
        s.enqueue_message(m).await.unwrap();
    }
    let before = t0() + chrono::TimeDelta::days(5);
    let found = s.identified_messages(before, 10).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [old_sent.message_id.as_str(), old_failed.message_id.as_str()],
        "oldest first; a queued one waits for its sending"
    );
    assert_eq!(found[0].1, email("parent@example.org"));
    assert_eq!(s.identified_messages(before, 1).await.unwrap().len(), 1);
    let stand_in = email("p-1@erased.invalid");
    for (id, _) in &found {
        assert!(!s.erase_message(id, Some(&stand_in)).await.unwrap());
    }
    assert!(s.identified_messages(before, 10).await.unwrap().is_empty());
    let kept = s
        .get_message(&old_failed.message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (kept.status, kept.recipient, kept.subject.as_str()),
        (DeliveryStatus::Failed, stand_in, "")
    );
}
