//! The one conformance suite: every case runs against Postgres and SQLite, each on a fresh
//! database. A behaviour that differs between the two backends is a bug and becomes a case here.

use super::*;
use crate::domain::*;
use chrono::{TimeDelta, TimeZone};
use std::collections::BTreeSet;

/// Declares each case once per backend.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (store, _db) = crate::testing::postgres_store().await;
                    super::$case(store).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (store, _dir) = crate::testing::sqlite_store().await.expect("sqlite store");
                    super::$case(store).await;
                }
            )*
        }
    };
}

conformance!(
    settings_are_absent_until_stored_then_versioned,
    settings_writes_with_a_stale_version_conflict,
    users_round_trip_update_page_and_delete,
    user_email_is_unique_across_users,
    courses_replace_membership_and_answer_who_teaches_whom,
    invitations_round_trip_by_id_and_token,
    one_pending_invitation_per_student_and_address,
    one_accepted_link_per_student_and_guardian,
    updates_are_compare_and_set_on_the_version,
    set_based_ends_write_only_rows_still_at_their_version,
    concurrent_updates_from_one_version_let_exactly_one_win,
    listings_observe_expiry_at_the_given_instant,
    keyset_paging_sees_each_existing_item_once_despite_concurrent_inserts,
    links_are_found_by_student_guardian_domain_and_email,
    events_append_in_order_and_read_back_by_scope,
    domain_wide_events_keep_their_details,
    outbox_claims_are_disjoint_and_outcomes_recorded,
    rescheduling_renews_or_gives_back_claims_but_leaves_settled_messages,
    a_pages_delivery_statuses_are_each_invitations_newest_message,
    idempotency_records_are_unique_and_purged_by_age,
    dropping_a_transaction_rolls_it_back,
    the_hot_path_check_reads_the_student_domain_and_the_link_at_once,
    counts_for_limits_cover_addresses_and_declines,
    expired_pending_invitations_are_claimed_once_by_concurrent_sweepers,
    due_reminders_are_claimed_and_marked_once,
    families_open_close_and_are_sent_once,
    retention_follows_each_domains_days,
    activity_ends_in_the_newest_state_whatever_the_order,
    class_activity_is_purged_by_age_and_goes_with_its_course,
    one_summary_per_guardian_and_period_and_tokens_work_once,
    preference_patches_change_only_their_fields_even_at_once,
    the_feed_pages_in_commit_order_by_scope_and_resumes,
    a_change_committed_late_is_held_back_never_skipped,
    concurrent_writers_are_followed_without_gaps_or_repeats,
    the_first_change_after_a_position_tells_its_age,
    invitations_are_read_by_id_in_one_go,
    a_students_record_and_links_come_in_one_statement,
    a_persons_records_are_found_by_each_key_and_erased,
    access_records_page_by_domain_and_student_and_age_out,
    old_sent_emails_are_found_until_they_name_nobody,
);

mod feed;
mod privacy;
mod summaries;
use feed::*;
use privacy::*;
use summaries::*;

fn t0() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap() + TimeDelta::microseconds(123_456)
}

fn domain(name: &str) -> DomainName {
    DomainName::parse(name).unwrap()
}

fn uid(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn email(address: &str) -> Email {
    Email::parse(address).unwrap()
}

fn student(id: &str) -> User {
    User {
        user_id: uid(id),
        domain: domain("school.example"),
        email: email(&format!("{id}@school.example")),
        role: Role::Student,
        verified_teacher: false,
        display_name: format!("Student {id}"),
        locale: None,
    }
}

fn pending(student: &str, address: &str) -> Invitation {
    let now = t0();
    Invitation {
        id: InvitationId::generate(),
        domain: domain("school.example"),
        student_id: uid(student),
        invited_email: email(address),
        state: InvitationState::Pending,
        inviter_id: "teacher-1".into(),
        guardian: None,
        token_hash: uuid::Uuid::new_v4().simple().to_string(),
        create_time: now,
        update_time: now,
        expire_time: now + TimeDelta::days(120),
        accept_time: None,
        version: 1,
        source: crate::domain::InvitationSource::Manual,
        remind_time: None,
        reminder_token_hash: None,
        family_id: None,
    }
}

fn accepted(mut inv: Invitation, guardian: &str) -> Invitation {
    inv.state = InvitationState::Accepted;
    inv.guardian = Some(GuardianProfile {
        guardian_id: uid(guardian),
        email: inv.invited_email.clone(),
        display_name: "A Parent".into(),
    });
    inv.accept_time = Some(t0());
    inv
}

async fn insert(store: &Arc<dyn Store>, inv: &Invitation) -> StoreResult<()> {
    let mut s = store.session().await.unwrap();
    s.insert_invitation(inv).await
}

async fn settings_are_absent_until_stored_then_versioned(store: Arc<dyn Store>) {
    let d = domain("school.example");
    let mut s = store.session().await.unwrap();
    assert_eq!(s.get_settings(&d).await.unwrap(), None);
    let mut wanted = DomainSettings::defaults(d.clone());
    wanted.who_can_manage = WhoCanManage::DomainAdminsOnly;
    wanted.allowlisted_domains = vec![domain("a.example"), domain("b.example")];
    wanted.default_locale = Locale::Nl;
    wanted.update_time = Some(t0());
    let stored = s.put_settings(&wanted, 0).await.unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(
        stored,
        DomainSettings {
            version: 1,
            ..wanted.clone()
        }
    );
    assert_eq!(s.get_settings(&d).await.unwrap(), Some(stored.clone()));
    let mut next = stored.clone();
    next.guardian_access_enabled = false;
    let again = s.put_settings(&next, 1).await.unwrap();
    assert_eq!(again.version, 2);
    assert!(!again.guardian_access_enabled);
}

async fn settings_writes_with_a_stale_version_conflict(store: Arc<dyn Store>) {
    let d = domain("school.example");
    let mut s = store.session().await.unwrap();
    let defaults = DomainSettings::defaults(d.clone());
    s.put_settings(&defaults, 0).await.unwrap();
    // A second "first write" and a write from an old version both lose.
    assert!(matches!(
        s.put_settings(&defaults, 0).await,
        Err(StoreError::Conflict)
    ));
    s.put_settings(&defaults, 1).await.unwrap();
    assert!(matches!(
        s.put_settings(&defaults, 1).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.get_settings(&d).await.unwrap().unwrap().version, 2);
}

async fn users_round_trip_update_page_and_delete(store: Arc<dyn Store>) {
    let mut s = store.session().await.unwrap();
    for i in 0..25 {
        s.upsert_user(&student(&format!("s{i:02}")), t0())
            .await
            .unwrap();
    }
    let mut teacher = student("t1");
    teacher.role = Role::Teacher;
    teacher.verified_teacher = true;
    teacher.locale = Some(Locale::Nl);
    s.upsert_user(&teacher, t0()).await.unwrap();
    assert_eq!(s.get_user(&uid("t1")).await.unwrap(), Some(teacher.clone()));
    assert_eq!(
        s.get_user_by_email(&teacher.email).await.unwrap(),
        Some(teacher.clone())
    );

    let mut renamed = teacher.clone();
    renamed.display_name = "Ms T".into();
    renamed.verified_teacher = false;
    s.upsert_user(&renamed, t0()).await.unwrap();
    assert_eq!(s.get_user(&uid("t1")).await.unwrap(), Some(renamed));

    let d = domain("school.example");
    let mut seen = Vec::new();
    let mut after: Option<UserId> = None;
    loop {
        let page = s
            .list_users(&d, Some(Role::Student), after.as_ref(), 10)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|u| u.user_id.clone());
        seen.extend(page.into_iter().map(|u| u.user_id));
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(s.list_users(&d, None, None, 100).await.unwrap().len(), 26);
    assert!(
        s.list_users(&domain("other.example"), None, None, 100)
            .await
            .unwrap()
            .is_empty()
    );

    assert!(s.delete_user(&uid("s00")).await.unwrap());
    assert!(!s.delete_user(&uid("s00")).await.unwrap());
    assert_eq!(s.get_user(&uid("s00")).await.unwrap(), None);
}

async fn user_email_is_unique_across_users(store: Arc<dyn Store>) {
    let mut s = store.session().await.unwrap();
    s.upsert_user(&student("s1"), t0()).await.unwrap();
    let mut clash = student("s2");
    clash.email = student("s1").email;
    let err = s.upsert_user(&clash, t0()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists(UniqueKey::UserEmail)),
        "{err:?}"
    );
    assert_eq!(s.get_user(&uid("s2")).await.unwrap(), None);
}

async fn courses_replace_membership_and_answer_who_teaches_whom(store: Arc<dyn Store>) {
    let mut s = store.session().await.unwrap();
    let course = Course {
        course_id: CourseId::parse("math-1").unwrap(),
        domain: domain("school.example"),
        teacher_ids: vec![uid("t1")],
        student_ids: vec![uid("s1"), uid("s2")],
    };
    s.upsert_course(&course, t0()).await.unwrap();
    assert_eq!(
        s.get_course(&course.course_id).await.unwrap(),
        Some(course.clone())
    );
    let teaching = s.courses_teaching(&uid("t1"), &uid("s2")).await.unwrap();
    assert_eq!(
        teaching,
        vec![(course.course_id.clone(), domain("school.example"))]
    );
    assert!(
        s.courses_teaching(&uid("s1"), &uid("s2"))
            .await
            .unwrap()
            .is_empty()
    );

    let replaced = Course {
        teacher_ids: vec![uid("t2")],
        student_ids: vec![uid("s2")],
        ..course.clone()
    };
    s.upsert_course(&replaced, t0()).await.unwrap();
    assert_eq!(
        s.get_course(&course.course_id).await.unwrap(),
        Some(replaced)
    );
    assert!(
        s.courses_teaching(&uid("t1"), &uid("s2"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.courses_teaching(&uid("t2"), &uid("s2"))
            .await
            .unwrap()
            .len(),
        1
    );

    assert!(s.delete_course(&course.course_id).await.unwrap());
    assert!(!s.delete_course(&course.course_id).await.unwrap());
    assert!(
        s.courses_teaching(&uid("t2"), &uid("s2"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn invitations_round_trip_by_id_and_token(store: Arc<dyn Store>) {
    let inv = pending("s1", "Parent@Example.org");
    insert(&store, &inv).await.unwrap();
    let mut s = store.session().await.unwrap();
    assert_eq!(s.get_invitation(inv.id).await.unwrap(), Some(inv.clone()));
    assert_eq!(
        s.get_invitation_by_token_hash(&inv.token_hash)
            .await
            .unwrap(),
        Some(inv.clone())
    );
    assert_eq!(
        s.get_invitation(InvitationId::generate()).await.unwrap(),
        None
    );
    assert_eq!(s.get_invitation_by_token_hash("nope").await.unwrap(), None);
    let mut same_token = pending("s2", "other@example.org");
    same_token.token_hash = inv.token_hash.clone();
    let err = s.insert_invitation(&same_token).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists(UniqueKey::InvitationToken)),
        "{err:?}"
    );
    let mut same_id = pending("s3", "third@example.org");
    same_id.id = inv.id;
    let err = s.insert_invitation(&same_id).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists(UniqueKey::InvitationId)),
        "{err:?}"
    );
}

async fn one_pending_invitation_per_student_and_address(store: Arc<dyn Store>) {
    let first = pending("s1", "parent@example.org");
    insert(&store, &first).await.unwrap();
    let err = insert(&store, &pending("s1", "PARENT@example.org"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists(UniqueKey::PendingInvitation)),
        "{err:?}"
    );
    // Another student, or another address, is no clash.
    insert(&store, &pending("s2", "parent@example.org"))
        .await
        .unwrap();
    insert(&store, &pending("s1", "other@example.org"))
        .await
        .unwrap();
    // Once the first is no longer pending, the address may be invited again.
    let mut s = store.session().await.unwrap();
    let mut cancelled = first.clone();
    cancelled.state = InvitationState::Removed(RemovalReason::Cancelled);
    s.update_invitation(&cancelled, first.version)
        .await
        .unwrap();
    insert(&store, &pending("s1", "parent@example.org"))
        .await
        .unwrap();
}

async fn one_accepted_link_per_student_and_guardian(store: Arc<dyn Store>) {
    insert(&store, &accepted(pending("s1", "a@example.org"), "g1"))
        .await
        .unwrap();
    let err = insert(&store, &accepted(pending("s1", "b@example.org"), "g1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists(UniqueKey::GuardianLink)),
        "{err:?}"
    );
    // Accepting a second invitation as the same guardian collides on update too.
    let second = pending("s1", "c@example.org");
    insert(&store, &second).await.unwrap();
    let mut s = store.session().await.unwrap();
    let err = s
        .update_invitation(&accepted(second.clone(), "g1"), second.version)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists(UniqueKey::GuardianLink)),
        "{err:?}"
    );
}

async fn updates_are_compare_and_set_on_the_version(store: Arc<dyn Store>) {
    let inv = pending("s1", "p@example.org");
    insert(&store, &inv).await.unwrap();
    let mut s = store.session().await.unwrap();
    let mut next = accepted(inv.clone(), "g1");
    next.update_time = t0() + TimeDelta::minutes(5);
    let stored = s.update_invitation(&next, 1).await.unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.state, InvitationState::Accepted);
    assert_eq!(stored.guardian, next.guardian);
    assert_eq!(stored.update_time, next.update_time);
    // The same expectation again finds the row changed: zero rows, a conflict.
    let mut cancel = inv.clone();
    cancel.state = InvitationState::Removed(RemovalReason::Cancelled);
    assert!(matches!(
        s.update_invitation(&cancel, 1).await,
        Err(StoreError::Conflict)
    ));
    // A missing row is a conflict as well: there is nothing in the expected version.
    let ghost = pending("s9", "x@example.org");
    assert!(matches!(
        s.update_invitation(&ghost, 1).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        s.get_invitation(inv.id).await.unwrap().unwrap().state,
        InvitationState::Accepted
    );
}

async fn set_based_ends_write_only_rows_still_at_their_version(store: Arc<dyn Store>) {
    let waiting = pending("s1", "p@example.org");
    let linked = accepted(pending("s1", "q@example.org"), "g1");
    let moved = pending("s2", "r@example.org");
    for inv in [&waiting, &linked, &moved] {
        insert(&store, inv).await.unwrap();
    }
    let later = t0() + TimeDelta::minutes(5);
    let end = |inv: &Invitation, state, expected_version| crate::store::EndedInvitation {
        id: inv.id,
        expected_version,
        state,
        update_time: later,
    };
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.end_invitations(&[]).await.unwrap(), 0);
    let written = tx
        .end_invitations(&[
            end(
                &waiting,
                InvitationState::Removed(RemovalReason::Cancelled),
                1,
            ),
            end(
                &linked,
                InvitationState::Removed(RemovalReason::GuardianRemoved),
                1,
            ),
            // Read at a version it no longer has: left alone, and not counted.
            end(
                &moved,
                InvitationState::Removed(RemovalReason::Cancelled),
                7,
            ),
        ])
        .await
        .unwrap();
    assert_eq!(written, 2);
    tx.commit().await.unwrap();
    let mut s = store.session().await.unwrap();
    let cancelled = s.get_invitation(waiting.id).await.unwrap().unwrap();
    assert_eq!(
        cancelled.state,
        InvitationState::Removed(RemovalReason::Cancelled)
    );
    assert_eq!((cancelled.version, cancelled.update_time), (2, later));
    let removed = s.get_invitation(linked.id).await.unwrap().unwrap();
    assert_eq!(
        removed.state,
        InvitationState::Removed(RemovalReason::GuardianRemoved)
    );
    assert_eq!(removed.version, 2);
    assert_eq!(
        removed.guardian, linked.guardian,
        "the guardian stays on the ended link"
    );
    assert_eq!(removed.accept_time, linked.accept_time);
    let untouched = s.get_invitation(moved.id).await.unwrap().unwrap();
    assert_eq!(untouched, moved);
    // The one-pending rule no longer holds the cancelled pair: it may be invited again.
    let again = pending("s1", "p@example.org");
    s.insert_invitation(&again).await.unwrap();
}

async fn concurrent_updates_from_one_version_let_exactly_one_win(store: Arc<dyn Store>) {
    let inv = pending("s1", "p@example.org");
    insert(&store, &inv).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let mut next = inv.clone();
        next.state = if i % 2 == 0 {
            InvitationState::Removed(RemovalReason::Cancelled)
        } else {
            InvitationState::Removed(RemovalReason::Declined)
        };
        tasks.push(tokio::spawn(async move {
            let mut tx = store.begin().await?;
            let result = tx.update_invitation(&next, 1).await;
            if result.is_ok() {
                tx.commit().await?;
            }
            result.map(|_| ())
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => wins += 1,
            Err(StoreError::Conflict) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wins, 1);
    let mut s = store.session().await.unwrap();
    assert_eq!(s.get_invitation(inv.id).await.unwrap().unwrap().version, 2);
}

async fn listings_observe_expiry_at_the_given_instant(store: Arc<dyn Store>) {
    let live = pending("s1", "live@example.org");
    let mut old = pending("s1", "old@example.org");
    old.expire_time = t0() + TimeDelta::days(1);
    let gone = accepted(pending("s1", "acc@example.org"), "g1");
    for inv in [&live, &old, &gone] {
        insert(&store, inv).await.unwrap();
    }
    let mut s = store.session().await.unwrap();
    let ids = |list: Vec<Invitation>| list.into_iter().map(|i| i.id).collect::<Vec<_>>();
    let filter = |states, now| InvitationFilter {
        scope: InvitationScope::Student(uid("s1")),
        invited_email: None,
        states,
        now,
        after: None,
        limit: 50,
    };
    let before = t0() + TimeDelta::hours(1);
    let after_expiry = t0() + TimeDelta::days(1);
    let p = s
        .list_invitations(&filter(StateFilter::pending_only(), before))
        .await
        .unwrap();
    assert_eq!(ids(p), vec![live.id, old.id]);
    // At the expiry instant the old one is no longer PENDING but EXPIRED.
    let p = s
        .list_invitations(&filter(StateFilter::pending_only(), after_expiry))
        .await
        .unwrap();
    assert_eq!(ids(p), vec![live.id]);
    let expired = StateFilter::default().with(InvitationState::Expired);
    let e = s
        .list_invitations(&filter(expired, after_expiry))
        .await
        .unwrap();
    assert_eq!(ids(e), vec![old.id]);
    let all = s
        .list_invitations(&filter(StateFilter::all(), after_expiry))
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(
        s.count_active_for_student(&uid("s1"), before)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        s.count_active_for_student(&uid("s1"), after_expiry)
            .await
            .unwrap(),
        2
    );
    let mut by_email = filter(StateFilter::all(), before);
    by_email.invited_email = Some(email("OLD@example.org"));
    assert_eq!(
        ids(s.list_invitations(&by_email).await.unwrap()),
        vec![old.id]
    );
    let mut by_domain = filter(StateFilter::all(), before);
    by_domain.scope = InvitationScope::Domain(domain("school.example"));
    assert_eq!(s.list_invitations(&by_domain).await.unwrap().len(), 3);
}

async fn keyset_paging_sees_each_existing_item_once_despite_concurrent_inserts(
    store: Arc<dyn Store>,
) {
    let mut existing = BTreeSet::new();
    for i in 0..120 {
        let inv = pending("s1", &format!("p{i}@example.org"));
        existing.insert(inv.id);
        insert(&store, &inv).await.unwrap();
    }
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..60 {
                insert(&store, &pending("s1", &format!("late{i}@example.org")))
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let mut s = store.session().await.unwrap();
        let page = s
            .list_invitations(&InvitationFilter {
                scope: InvitationScope::Student(uid("s1")),
                invited_email: None,
                states: StateFilter::pending_only(),
                now: t0(),
                after,
                limit: 7,
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|i| i.id);
        seen.extend(page.into_iter().map(|i| i.id));
    }
    writer.await.unwrap();
    let unique: BTreeSet<_> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "an item was served twice");
    assert!(
        existing.is_subset(&unique),
        "an item that existed before paging was missed"
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

async fn links_are_found_by_student_guardian_domain_and_email(store: Arc<dyn Store>) {
    let a = accepted(pending("s1", "invited@example.org"), "g1");
    let mut b = accepted(pending("s2", "g1-other@example.org"), "g1");
    b.guardian.as_mut().unwrap().email = email("own@example.org");
    let c = accepted(pending("s1", "second@example.org"), "g2");
    let open = pending("s1", "waiting@example.org");
    for inv in [&a, &b, &c, &open] {
        insert(&store, inv).await.unwrap();
    }
    let mut s = store.session().await.unwrap();
    assert!(s.is_linked_by_id(&uid("s1"), &uid("g1")).await.unwrap());
    assert!(!s.is_linked_by_id(&uid("s3"), &uid("g1")).await.unwrap());
    // By email: the invited address and the guardian's own address both count; pending does not.
    assert!(
        s.is_linked_by_email(&uid("s1"), &email("invited@example.org"))
            .await
            .unwrap()
    );
    assert!(
        s.is_linked_by_email(&uid("s2"), &email("own@example.org"))
            .await
            .unwrap()
    );
    assert!(
        !s.is_linked_by_email(&uid("s1"), &email("waiting@example.org"))
            .await
            .unwrap()
    );

    let list = |scope| LinkFilter {
        scope,
        invited_email: None,
        domain: None,
        after: None,
        limit: 50,
    };
    let of_s1 = s
        .list_links(&list(LinkScope::Student(uid("s1"))))
        .await
        .unwrap();
    assert_eq!(
        of_s1.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![a.id, c.id]
    );
    let of_g1 = s
        .list_links(&list(LinkScope::Guardian(uid("g1"))))
        .await
        .unwrap();
    assert_eq!(
        of_g1.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![a.id, b.id]
    );
    let all = s
        .list_links(&list(LinkScope::Domain(domain("school.example"))))
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let mut filtered = list(LinkScope::Student(uid("s1")));
    filtered.invited_email = Some(email("second@example.org"));
    assert_eq!(s.list_links(&filtered).await.unwrap()[0].id, c.id);
    let mut paged = list(LinkScope::Student(uid("s1")));
    paged.after = Some(a.id);
    assert_eq!(s.list_links(&paged).await.unwrap()[0].id, c.id);
    assert_eq!(s.list_links(&list(LinkScope::All)).await.unwrap().len(), 3);
    let mut elsewhere = list(LinkScope::Guardian(uid("g1")));
    elsewhere.domain = Some(domain("other.example"));
    assert!(s.list_links(&elsewhere).await.unwrap().is_empty());
    // A page of guardians at once (the summaries' scheduler): accepted links only, by guardian.
    let of_page = s
        .links_of_guardians(&[uid("g2"), uid("g1"), uid("g9")])
        .await
        .unwrap();
    assert_eq!(
        of_page.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![a.id, b.id, c.id]
    );

    assert_eq!(
        s.find_link(&uid("s1"), &uid("g2"))
            .await
            .unwrap()
            .map(|i| i.id),
        Some(c.id)
    );
    assert_eq!(s.find_link(&uid("s2"), &uid("g2")).await.unwrap(), None);
}

async fn the_hot_path_check_reads_the_student_domain_and_the_link_at_once(store: Arc<dyn Store>) {
    let mut s = store.session().await.unwrap();
    s.upsert_user(&student("s1"), t0()).await.unwrap();
    s.upsert_user(&student("s2"), t0()).await.unwrap();
    let mut link = accepted(pending("s1", "invited@example.org"), "g1");
    link.guardian.as_mut().unwrap().email = email("own@example.org");
    s.insert_invitation(&link).await.unwrap();
    s.insert_invitation(&pending("s2", "waiting@example.org"))
        .await
        .unwrap();
    let d = domain("school.example");
    let by_id = |g: &str| GuardianKey::Id(uid(g));
    let by_email = |e: &str| GuardianKey::Email(email(e));
    assert_eq!(
        s.check_guardianship(&uid("s1"), &by_id("g1"))
            .await
            .unwrap(),
        Some((d.clone(), true))
    );
    assert_eq!(
        s.check_guardianship(&uid("s1"), &by_id("g2"))
            .await
            .unwrap(),
        Some((d.clone(), false))
    );
    assert_eq!(
        s.check_guardianship(&uid("s1"), &by_email("own@example.org"))
            .await
            .unwrap(),
        Some((d.clone(), true))
    );
    assert_eq!(
        s.check_guardianship(&uid("s1"), &by_email("invited@example.org"))
            .await
            .unwrap(),
        Some((d.clone(), true))
    );
    assert_eq!(
        s.check_guardianship(&uid("s2"), &by_email("waiting@example.org"))
            .await
            .unwrap(),
        Some((d, false))
    );
    assert_eq!(
        s.check_guardianship(&uid("nobody"), &by_id("g1"))
            .await
            .unwrap(),
        None
    );
    // The batch form (CheckGuardianships) answers every question as the single check does.
    let batch = s
        .student_links(&[uid("s1"), uid("s2"), uid("nobody")])
        .await
        .unwrap();
    assert_eq!(
        batch.iter().map(|b| b.id().as_str()).collect::<Vec<_>>(),
        ["s1", "s2"]
    );
    for b in &batch {
        assert_eq!(b.domain(), &domain("school.example"));
        for key in [
            by_id("g1"),
            by_id("g2"),
            by_email("own@example.org"),
            by_email("invited@example.org"),
            by_email("waiting@example.org"),
        ] {
            let single = s.check_guardianship(b.id(), &key).await.unwrap();
            assert_eq!(Some(b.has(&key)), single.map(|(_, l)| l), "{key:?}");
        }
        assert_eq!(
            b.stored_access, None,
            "no settings stored: the defaults apply"
        );
    }
    // The domain's stored access switch comes with the links.
    let mut off = DomainSettings::defaults(domain("school.example"));
    off.guardian_access_enabled = false;
    s.put_settings(&off, 0).await.unwrap();
    let batch = s.student_links(&[uid("s1")]).await.unwrap();
    assert_eq!(batch[0].stored_access, Some(false));
}

async fn counts_for_limits_cover_addresses_and_declines(store: Arc<dyn Store>) {
    let mut s = store.session().await.unwrap();
    let mut own = accepted(pending("s1", "first@example.org"), "g1");
    own.guardian.as_mut().unwrap().email = email("parent@example.org");
    s.insert_invitation(&own).await.unwrap();
    s.insert_invitation(&pending("s2", "parent@example.org"))
        .await
        .unwrap();
    s.insert_invitation(&pending("s3", "parent@example.org"))
        .await
        .unwrap();
    let mut old = pending("s4", "parent@example.org");
    old.expire_time = t0() + TimeDelta::hours(1);
    s.insert_invitation(&old).await.unwrap();
    for _ in 0..2 {
        let mut declined = pending("s5", "parent@example.org");
        declined.state = InvitationState::Removed(RemovalReason::Declined);
        s.insert_invitation(&declined).await.unwrap();
    }
    let later = t0() + TimeDelta::hours(2);
    // s1 through the profile address, s2 and s3 pending; s4 expired and s5 declined do not count.
    assert_eq!(
        s.count_students_for_address(&email("parent@example.org"), later)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        s.count_students_for_address(&email("first@example.org"), later)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.count_declines(&uid("s5"), &email("parent@example.org"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.count_declines(&uid("s2"), &email("parent@example.org"))
            .await
            .unwrap(),
        0
    );

    let by_address = InvitationFilter {
        scope: InvitationScope::Address(email("parent@example.org")),
        invited_email: None,
        states: StateFilter::all(),
        now: later,
        after: None,
        limit: 50,
    };
    assert_eq!(s.list_invitations(&by_address).await.unwrap().len(), 5);
    let everything = InvitationFilter {
        scope: InvitationScope::All,
        ..by_address
    };
    assert_eq!(s.list_invitations(&everything).await.unwrap().len(), 6);
}

async fn expired_pending_invitations_are_claimed_once_by_concurrent_sweepers(
    store: Arc<dyn Store>,
) {
    let mut expired = BTreeSet::new();
    for i in 0..30 {
        let mut inv = pending("s1", &format!("p{i}@example.org"));
        inv.expire_time = t0() + TimeDelta::minutes(i);
        expired.insert(inv.id);
        insert(&store, &inv).await.unwrap();
    }
    insert(&store, &pending("s1", "fresh@example.org"))
        .await
        .unwrap();
    let now = t0() + TimeDelta::hours(1);
    let mut sweepers = Vec::new();
    for _ in 0..3 {
        let store = store.clone();
        sweepers.push(tokio::spawn(async move {
            let mut claimed = Vec::new();
            loop {
                let mut tx = store.begin().await.unwrap();
                let batch = tx.claim_expired_pending(now, 4).await.unwrap();
                if batch.is_empty() {
                    return claimed;
                }
                for inv in batch {
                    let mut next = inv.clone();
                    next.state = InvitationState::Expired;
                    tx.update_invitation(&next, inv.version).await.unwrap();
                    claimed.push(inv.id);
                }
                tx.commit().await.unwrap();
            }
        }));
    }
    let mut all = Vec::new();
    for sweeper in sweepers {
        all.extend(sweeper.await.unwrap());
    }
    let unique: BTreeSet<_> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "an invitation was expired twice");
    assert_eq!(unique, expired);
}

async fn due_reminders_are_claimed_and_marked_once(store: Arc<dyn Store>) {
    let now = t0() + TimeDelta::days(113);
    let mut due = pending("s1", "due@example.org");
    due.remind_time = Some(now - TimeDelta::minutes(1));
    let mut later = pending("s1", "later@example.org");
    later.remind_time = Some(now + TimeDelta::minutes(1));
    let mut expired = pending("s1", "gone@example.org");
    expired.remind_time = Some(now - TimeDelta::days(2));
    expired.expire_time = now - TimeDelta::days(1);
    let none = pending("s1", "none@example.org");
    for inv in [&due, &later, &expired, &none] {
        insert(&store, inv).await.unwrap();
    }
    let mut tx = store.begin().await.unwrap();
    let claimed: Vec<_> = tx
        .claim_due_reminders(now, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(claimed, [due.id], "only the due, unexpired, PENDING one");
    let marked = tx
        .mark_reminded(
            &[
                (due.id, Some("reminder-hash".to_owned())),
                (later.id, Some("early".to_owned())),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        marked.len(),
        1,
        "not yet due (as after a resend moved it on)"
    );
    let marked = &marked[0];
    assert_eq!(marked.id, due.id);
    assert_eq!(marked.remind_time, None);
    assert_eq!(marked.reminder_token_hash.as_deref(), Some("reminder-hash"));
    assert_eq!(marked.version, due.version, "a reminder keeps the etag");
    assert!(
        tx.mark_reminded(&[(due.id, Some("again".to_owned()))], now)
            .await
            .unwrap()
            .is_empty(),
        "a second sweeper finds it reminded"
    );
    tx.commit().await.unwrap();
    let mut s = store.session().await.unwrap();
    assert!(s.claim_due_reminders(now, 10).await.unwrap().is_empty());
    // The reminder's token finds the invitation, as the first one does.
    let by_reminder = s
        .get_invitation_by_token_hash("reminder-hash")
        .await
        .unwrap()
        .expect("found by the reminder's token");
    assert_eq!(by_reminder.id, due.id);
    assert_eq!(
        s.get_invitation_by_token_hash(&due.token_hash)
            .await
            .unwrap()
            .map(|i| i.id),
        Some(due.id)
    );
}

async fn families_open_close_and_are_sent_once(store: Arc<dyn Store>) {
    let now = t0();
    let window = TimeDelta::seconds(60);
    let family = crate::domain::Family::open(
        domain("school.example"),
        email("mother@example.org"),
        "t1".into(),
        now,
        window,
    );
    let other = crate::domain::Family::open(
        domain("school.example"),
        email("father@example.org"),
        "t1".into(),
        now - TimeDelta::hours(1),
        window,
    );
    let mut members = Vec::new();
    {
        let mut tx = store.begin().await.unwrap();
        tx.insert_families(&[family.clone(), other.clone()])
            .await
            .unwrap();
        for student in ["s1", "s2"] {
            let mut inv = pending(student, "mother@example.org");
            inv.family_id = Some(family.id.clone());
            tx.insert_invitation(&inv).await.unwrap();
            members.push(inv);
        }
        tx.commit().await.unwrap();
    }
    let mut s = store.session().await.unwrap();
    let open = s
        .open_families(
            &[email("mother@example.org"), email("father@example.org")],
            now + TimeDelta::seconds(59),
        )
        .await
        .unwrap();
    assert_eq!(
        open,
        std::slice::from_ref(&family),
        "the father's window has closed"
    );
    assert!(
        s.open_families(&[email("mother@example.org")], now + window)
            .await
            .unwrap()
            .is_empty(),
        "closed at open_until"
    );
    let listed: Vec<_> = s
        .family_invitations(std::slice::from_ref(&family.id))
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.id, i.family_id))
        .collect();
    assert_eq!(
        listed,
        members
            .iter()
            .map(|m| (m.id, Some(family.id.clone())))
            .collect::<Vec<_>>()
    );
    // Open, the family's invitations are to be sent: queued.
    let statuses = s
        .latest_delivery_statuses(&[members[0].id, members[1].id])
        .await
        .unwrap();
    assert_eq!(statuses[&members[0].id], DeliveryStatus::Queued);
    drop(s);

    let later = now + window;
    let mut tx = store.begin().await.unwrap();
    let due: Vec<_> = tx
        .claim_due_families(later, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(due, [other.id.clone(), family.id.clone()], "oldest first");
    assert_eq!(
        tx.mark_families_sent(std::slice::from_ref(&family.id), later)
            .await
            .unwrap(),
        std::slice::from_ref(&family.id)
    );
    assert!(
        tx.mark_families_sent(std::slice::from_ref(&family.id), later)
            .await
            .unwrap()
            .is_empty(),
        "sent once"
    );
    tx.set_family_token(&family.id, "family-hash")
        .await
        .unwrap();
    tx.replace_token_hashes(&[
        (members[0].id, "fresh-hash".to_owned()),
        (members[1].id, "fresh-hash-2".to_owned()),
    ])
    .await
    .unwrap();
    tx.enqueue_message(&OutboxMessage {
        invitation_id: None,
        family_id: Some(family.id.clone()),
        status: DeliveryStatus::Sent,
        ..message(7)
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut s = store.session().await.unwrap();
    assert_eq!(
        s.family_by_token_hash("family-hash")
            .await
            .unwrap()
            .map(|f| f.id),
        Some(family.id.clone())
    );
    let renewed = s
        .get_invitation_by_token_hash("fresh-hash")
        .await
        .unwrap()
        .expect("the new token finds it");
    assert_eq!(
        (renewed.id, renewed.version),
        (members[0].id, members[0].version),
        "a new token is no change a client sees"
    );
    assert_eq!(
        s.get_invitation_by_token_hash("fresh-hash-2")
            .await
            .unwrap()
            .map(|i| i.id),
        Some(members[1].id),
        "each its own"
    );
    assert_eq!(
        s.get_invitation_by_token_hash(&members[0].token_hash)
            .await
            .unwrap(),
        None,
        "the first token is gone"
    );
    assert_eq!(
        s.latest_delivery_status(members[1].id).await.unwrap(),
        Some(DeliveryStatus::Sent),
        "the family's email is each of its invitations'"
    );
    let due: Vec<_> = s
        .claim_due_families(later, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(due, [other.id], "the sent one is no longer due");
    // Long after its email, the family goes (the unsent one stays).
    assert_eq!(s.purge_sent_families(later, 10).await.unwrap(), 0);
    assert_eq!(
        s.purge_sent_families(later + TimeDelta::seconds(1), 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.family_by_token_hash("family-hash").await.unwrap(), None);
}

async fn retention_follows_each_domains_days(store: Arc<dyn Store>) {
    let short = domain("short.example");
    let mut s = store.session().await.unwrap();
    let mut settings = DomainSettings::defaults(short.clone());
    settings.ended_retention_days = 10;
    settings.audit_retention_days = 30;
    s.put_settings(&settings, 0).await.unwrap();
    drop(s);
    let ended = |d: &DomainName, student: &str, address: &str, days: i64| {
        let mut inv = accepted(pending(student, address), "g1");
        inv.domain = d.clone();
        inv.state = InvitationState::Removed(crate::domain::RemovalReason::GuardianRemoved);
        inv.update_time = t0() + TimeDelta::days(days);
        inv
    };
    // Short domain: 10 days. The default domain: 90 days.
    let old_short = ended(&short, "s1", "a@example.org", 0);
    let new_short = ended(&short, "s2", "b@example.org", 5);
    let old_default = ended(&domain("school.example"), "s3", "c@example.org", 0);
    let live = pending("s4", "d@example.org");
    for inv in [&old_short, &new_short, &old_default, &live] {
        insert(&store, inv).await.unwrap();
    }
    let now = t0() + TimeDelta::days(10) + TimeDelta::seconds(1);
    let mut tx = store.begin().await.unwrap();
    let due: Vec<_> = tx
        .claim_ended_identified(now, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(due, [old_short.id]);
    let (stand_in_id, stand_in) = (uid("erased-1"), email("p-1@erased.invalid"));
    tx.anonymise_invitation(
        old_short.id,
        &email("p-0@erased.invalid"),
        Some((&stand_in_id, &stand_in)),
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut s = store.session().await.unwrap();
    let read = s.get_invitation(old_short.id).await.unwrap().unwrap();
    assert_eq!(read.invited_email, email("p-0@erased.invalid"));
    let profile = read.guardian.expect("a stand-in profile");
    assert_eq!(
        (profile.guardian_id, profile.email, profile.display_name),
        (stand_in_id, stand_in, String::new())
    );
    assert!(s.claim_ended_identified(now, 10).await.unwrap().is_empty());
    let late = t0() + TimeDelta::days(91);
    let due: Vec<_> = s
        .claim_ended_identified(late, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(due, [old_default.id, new_short.id], "oldest change first");

    let event = |d: &DomainName, days: i64| AuditEvent {
        event_id: 0,
        domain: d.clone(),
        student_id: None,
        invitation_id: None,
        action: "settings.updated".into(),
        actor_id: "admin-1".into(),
        request_id: None,
        create_time: t0() + TimeDelta::days(days),
        details: AuditDetails::default(),
    };
    for e in [
        event(&short, 0),
        event(&short, 20),
        event(&domain("school.example"), 0),
    ] {
        s.append_event(&e).await.unwrap();
    }
    let at = t0() + TimeDelta::days(31);
    assert_eq!(
        s.purge_audit_events(at, 10).await.unwrap(),
        1,
        "the short domain's old one"
    );
    assert_eq!(s.purge_audit_events(at, 10).await.unwrap(), 0);
    assert_eq!(
        s.purge_audit_events(t0() + TimeDelta::days(401), 1)
            .await
            .unwrap(),
        1,
        "a batch at a time"
    );
    assert_eq!(
        s.purge_audit_events(t0() + TimeDelta::days(401), 10)
            .await
            .unwrap(),
        1
    );
}

async fn events_append_in_order_and_read_back_by_scope(store: Arc<dyn Store>) {
    let mut s = store.session().await.unwrap();
    let inv = InvitationId::generate();
    let mut ids = Vec::new();
    for i in 0..5 {
        let event = AuditEvent {
            event_id: 0,
            domain: domain("school.example"),
            student_id: Some(uid(if i % 2 == 0 { "s1" } else { "s2" })),
            invitation_id: Some(inv),
            action: format!("invitation.step{i}"),
            actor_id: "admin-1".into(),
            request_id: (i == 0).then(|| "req-1".to_string()),
            create_time: t0(),
            details: AuditDetails::default(),
        };
        ids.push(s.append_event(&event).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    // Read back through the feed, as every reader of the trail does now.
    let scope = |domain_name: &str, student: Option<&str>| ChangeScope {
        domain: Some(domain(domain_name)),
        student: student.map(uid),
    };
    let (all, _) = feed::follow(&mut s, &scope("school.example", None), Position::ORIGIN).await;
    let listed: Vec<i64> = all.iter().map(|c| c.event.event_id).collect();
    assert_eq!(listed, ids, "every event, in the order appended");
    assert_eq!(all[0].event.request_id.as_deref(), Some("req-1"));
    let (s1, _) = feed::follow(
        &mut s,
        &scope("school.example", Some("s1")),
        Position::ORIGIN,
    )
    .await;
    assert_eq!(s1.len(), 3);
    let (other, _) = feed::follow(&mut s, &scope("other.example", None), Position::ORIGIN).await;
    assert!(other.is_empty());
}

async fn domain_wide_events_keep_their_details(store: Arc<dyn Store>) {
    let mut s = store.session().await.unwrap();
    let d = domain("school.example");
    let student_event = AuditEvent {
        event_id: 0,
        domain: d.clone(),
        student_id: Some(uid("s1")),
        invitation_id: Some(InvitationId::generate()),
        action: "invitation.created".into(),
        actor_id: "admin-1".into(),
        request_id: None,
        create_time: t0(),
        details: AuditDetails::default(),
    };
    let settings_event = AuditEvent {
        event_id: 0,
        domain: d.clone(),
        student_id: None,
        invitation_id: None,
        action: "settings.updated".into(),
        actor_id: "admin-1".into(),
        request_id: None,
        create_time: t0(),
        details: AuditDetails {
            setting_changes: vec![SettingChange {
                field: "guardian_access_enabled".into(),
                old_value: "true".into(),
                new_value: "false".into(),
            }],
            counts: Default::default(),
        },
    };
    let directory_event = AuditEvent {
        action: "directory.users_upserted".into(),
        details: AuditDetails::counts([("created", 3), ("replaced", 0)]),
        ..settings_event.clone()
    };
    for event in [&student_event, &settings_event, &directory_event] {
        s.append_event(event).await.unwrap();
    }
    let everything = ChangeScope {
        domain: Some(d.clone()),
        student: None,
    };
    let (all, _) = feed::follow(&mut s, &everything, Position::ORIGIN).await;
    let stored: Vec<AuditEvent> = all
        .into_iter()
        .map(|c| AuditEvent {
            event_id: 0,
            ..c.event
        })
        .collect();
    assert_eq!(stored, [student_event, settings_event, directory_event]);
    // A student's trail holds only what concerns that student.
    let one = ChangeScope {
        domain: Some(d),
        student: Some(uid("s1")),
    };
    let (s1, _) = feed::follow(&mut s, &one, Position::ORIGIN).await;
    assert_eq!(s1.len(), 1);
    assert_eq!(s1[0].event.action, "invitation.created");
}

fn message(n: usize) -> OutboxMessage {
    OutboxMessage {
        message_id: format!("{}-{n:03}", uuid::Uuid::now_v7()),
        invitation_id: Some(InvitationId::generate()),
        recipient: email("parent@example.org"),
        subject: "Invitation".into(),
        body_text: "text".into(),
        body_html: "<p>html</p>".into(),
        status: DeliveryStatus::Queued,
        attempts: 0,
        next_attempt_time: t0(),
        last_error: None,
        create_time: t0(),
        sent_time: None,
        list_unsubscribe: None,
        // Half carry a school's sender, so the claims read both kinds back.
        from_name: (n % 2 == 1).then(|| "Lincoln High".to_owned()),
        reply_to: (n % 2 == 1).then(|| email("office@school.example")),
        family_id: None,
    }
}

async fn outbox_claims_are_disjoint_and_outcomes_recorded(store: Arc<dyn Store>) {
    let messages: Vec<_> = (0..40).map(message).collect();
    {
        let mut s = store.session().await.unwrap();
        for m in &messages {
            s.enqueue_message(m).await.unwrap();
        }
        let err = s.enqueue_message(&messages[0]).await.unwrap_err();
        assert!(
            matches!(err, StoreError::AlreadyExists(UniqueKey::OutboxMessage)),
            "{err:?}"
        );
    }
    let now = t0() + TimeDelta::seconds(1);
    let lease = now + TimeDelta::minutes(1);
    let mut claimers = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            let claimed = tx.claim_due_messages(now, lease, 15).await.unwrap();
            tx.commit().await.unwrap();
            claimed
                .into_iter()
                .map(|m| m.message_id)
                .collect::<Vec<_>>()
        }));
    }
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.await.unwrap());
    }
    let unique: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(unique.len(), all.len(), "a message was claimed twice");
    assert_eq!(unique.len(), 40);
    // Leased messages are not due again until the lease ends.
    let mut s = store.session().await.unwrap();
    assert!(
        s.claim_due_messages(now, lease, 100)
            .await
            .unwrap()
            .is_empty()
    );

    let first = &messages[0];
    // Due again before the other messages' leases end, so only this one is claimed.
    let retry_at = now + TimeDelta::seconds(30);
    s.record_delivery(
        &first.message_id,
        DeliveryStatus::Queued,
        retry_at,
        Some("421 busy"),
        now,
    )
    .await
    .unwrap();
    let again = s.get_message(&first.message_id).await.unwrap().unwrap();
    assert_eq!((again.status, again.attempts), (DeliveryStatus::Queued, 1));
    assert_eq!(again.last_error.as_deref(), Some("421 busy"));
    let due = s
        .claim_due_messages(retry_at, retry_at + TimeDelta::seconds(10), 100)
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|m| &m.message_id).collect::<Vec<_>>(),
        vec![&first.message_id]
    );
    s.record_delivery(
        &first.message_id,
        DeliveryStatus::Sent,
        retry_at,
        None,
        retry_at,
    )
    .await
    .unwrap();
    let sent = s.get_message(&first.message_id).await.unwrap().unwrap();
    assert_eq!(
        (sent.status, sent.attempts, sent.sent_time),
        (DeliveryStatus::Sent, 2, Some(retry_at))
    );
    let bodies = (sent.body_text.as_str(), sent.body_html.as_str());
    assert_eq!(bodies, ("", ""), "bodies are dropped once sent");
    assert_eq!(again.body_text, "text", "and kept while queued");
    assert_eq!(
        s.latest_delivery_status(first.invitation_id.unwrap())
            .await
            .unwrap(),
        Some(DeliveryStatus::Sent)
    );
    assert_eq!(
        s.latest_delivery_status(InvitationId::generate())
            .await
            .unwrap(),
        None
    );
}

async fn rescheduling_renews_or_gives_back_claims_but_leaves_settled_messages(
    store: Arc<dyn Store>,
) {
    let messages: Vec<_> = (0..4).map(message).collect();
    let ids: Vec<String> = messages.iter().map(|m| m.message_id.clone()).collect();
    let mut s = store.session().await.unwrap();
    for m in &messages {
        s.enqueue_message(m).await.unwrap();
    }
    let now = t0() + TimeDelta::seconds(1);
    let lease = now + TimeDelta::minutes(1);
    assert_eq!(s.claim_due_messages(now, lease, 10).await.unwrap().len(), 4);
    // One is sent and one failed while the dispatcher still holds the claims.
    s.record_delivery(&ids[0], DeliveryStatus::Sent, now, None, now)
        .await
        .unwrap();
    s.record_delivery(&ids[1], DeliveryStatus::Failed, now, Some("550"), now)
        .await
        .unwrap();
    // Renewing the lease moves only the still-QUEUED ones.
    let renewed = now + TimeDelta::minutes(2);
    s.reschedule_messages(&ids, renewed).await.unwrap();
    for id in &ids[2..] {
        let m = s.get_message(id).await.unwrap().unwrap();
        assert_eq!(
            (m.status, m.next_attempt_time),
            (DeliveryStatus::Queued, renewed)
        );
    }
    for (id, status) in [
        (&ids[0], DeliveryStatus::Sent),
        (&ids[1], DeliveryStatus::Failed),
    ] {
        let m = s.get_message(id).await.unwrap().unwrap();
        assert_eq!(
            (m.status, m.next_attempt_time),
            (status, now),
            "{status:?} moved"
        );
    }
    // Still leased at the old lease's end; given back, due at once (and only those two).
    let later = lease + TimeDelta::seconds(1);
    assert!(
        s.claim_due_messages(later, later, 10)
            .await
            .unwrap()
            .is_empty()
    );
    s.reschedule_messages(&ids[2..3], later).await.unwrap();
    let due = s.claim_due_messages(later, later, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|m| &m.message_id).collect::<Vec<_>>(),
        vec![&ids[2]]
    );
    // An empty list, and ids that do not exist, change nothing and are no error.
    s.reschedule_messages(&[], later).await.unwrap();
    s.reschedule_messages(&["no-such-message".to_owned()], later)
        .await
        .unwrap();
    assert_eq!(s.count_queued_messages().await.unwrap(), 2);
}

async fn a_pages_delivery_statuses_are_each_invitations_newest_message(store: Arc<dyn Store>) {
    let mut s = store.session().await.unwrap();
    let (sent_then_queued, only_failed, silent) = (
        InvitationId::generate(),
        InvitationId::generate(),
        InvitationId::generate(),
    );
    let at =
        |n: usize, invitation: InvitationId, seconds: i64, status: DeliveryStatus| OutboxMessage {
            invitation_id: Some(invitation),
            create_time: t0() + TimeDelta::seconds(seconds),
            status,
            ..message(n)
        };
    for m in [
        at(1, sent_then_queued, 0, DeliveryStatus::Sent),
        // A resend: the newer message is the one that counts.
        at(2, sent_then_queued, 5, DeliveryStatus::Queued),
        at(3, only_failed, 0, DeliveryStatus::Failed),
    ] {
        s.enqueue_message(&m).await.unwrap();
    }
    let found = s
        .latest_delivery_statuses(&[sent_then_queued, only_failed, silent])
        .await
        .unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[&sent_then_queued], DeliveryStatus::Queued);
    assert_eq!(found[&only_failed], DeliveryStatus::Failed);
    for id in [sent_then_queued, only_failed] {
        assert_eq!(
            s.latest_delivery_status(id).await.unwrap().as_ref(),
            found.get(&id),
            "one message, one answer"
        );
    }
    assert!(s.latest_delivery_statuses(&[]).await.unwrap().is_empty());
}

async fn idempotency_records_are_unique_and_purged_by_age(store: Arc<dyn Store>) {
    let mut s = store.session().await.unwrap();
    let record = IdempotencyRecord {
        principal: "svc-1".into(),
        request_id: "6f1c2a9e-0000-4000-8000-000000000001".into(),
        method: "CreateGuardianInvitation".into(),
        request_hash: "abc".into(),
        response: vec![1, 2, 3, 0, 255],
        create_time: t0(),
    };
    s.put_idempotency(&record).await.unwrap();
    assert_eq!(
        s.get_idempotency("svc-1", &record.request_id)
            .await
            .unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        s.get_idempotency("svc-2", &record.request_id)
            .await
            .unwrap(),
        None
    );
    let err = s.put_idempotency(&record).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists(UniqueKey::IdempotencyKey)),
        "{err:?}"
    );
    let newer = IdempotencyRecord {
        request_id: "second".into(),
        create_time: t0() + TimeDelta::hours(25),
        ..record.clone()
    };
    s.put_idempotency(&newer).await.unwrap();
    assert_eq!(
        s.purge_idempotency(t0() + TimeDelta::hours(24))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.get_idempotency("svc-1", &record.request_id)
            .await
            .unwrap(),
        None
    );
    assert!(
        s.get_idempotency("svc-1", "second")
            .await
            .unwrap()
            .is_some()
    );
}

async fn dropping_a_transaction_rolls_it_back(store: Arc<dyn Store>) {
    let inv = pending("s1", "p@example.org");
    {
        let mut tx = store.begin().await.unwrap();
        tx.lock_student(&uid("s1")).await.unwrap();
        tx.insert_invitation(&inv).await.unwrap();
        tx.upsert_user(&student("s1"), t0()).await.unwrap();
    }
    let mut s = store.session().await.unwrap();
    assert_eq!(s.get_invitation(inv.id).await.unwrap(), None);
    assert_eq!(s.get_user(&uid("s1")).await.unwrap(), None);
    let mut tx = store.begin().await.unwrap();
    tx.insert_invitation(&inv).await.unwrap();
    tx.commit().await.unwrap();
    assert!(s.get_invitation(inv.id).await.unwrap().is_some());
}
