//! Persistence: the repository traits the use cases talk to, their error contract, and the two
//! backends (Postgres for production, SQLite embedded) held to one conformance suite.
//!
//! A use case opens a [`Session`] (autocommit reads) or a [`Transaction`] (load, decide, write
//! atomically), and calls the repository methods on it. Every invariant that concurrency could
//! break (one PENDING per student and address, legal transitions) is decided by the database:
//! unique indexes and compare-and-set updates, never a read-then-write in Rust.

#[macro_use]
mod shared;
pub mod diagnose;
mod error;
mod migrations;
mod model;
pub mod postgres;
mod replicas;
mod rows;
pub mod sqlite;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod data_map;

pub use error::{StoreError, StoreResult, UniqueKey};
pub use model::{
    ChangePage, ChangeScope, EndedInvitation, GuardianKey, InvitationFilter, InvitationScope,
    LinkFilter, LinkScope, RecordedChange, StateFilter, StudentLinks,
};

use crate::domain::summary::{
    Announcement, CourseWork, PreferencesPatch, Submission, SummaryDelivery, SummaryPreferences,
};
use crate::domain::{
    AccessRecord, AuditEvent, Course, CourseId, DeliveryStatus, DomainName, DomainSettings, Email,
    IdempotencyRecord, Invitation, InvitationId, Locale, OutboxMessage, Position, Role, User,
    UserId,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Domain settings. Absent settings mean "defaults" (the use case supplies them).
#[async_trait]
pub trait SettingsRepo {
    /// The stored settings of `domain`, or `None` if it never stored any.
    async fn get_settings(&mut self, domain: &DomainName) -> StoreResult<Option<DomainSettings>>;

    /// Stores `settings` as version `expected_version + 1`, but only if the stored version is
    /// still `expected_version` (0: nothing stored yet). Errors: [`StoreError::Conflict`] when
    /// another writer got there first.
    async fn put_settings(
        &mut self,
        settings: &DomainSettings,
        expected_version: i64,
    ) -> StoreResult<DomainSettings>;
}

/// Users and courses, pushed in by other systems.
#[async_trait]
pub trait DirectoryRepo {
    /// Creates or replaces a user. Errors: [`StoreError::AlreadyExists`] with
    /// [`UniqueKey::UserEmail`] when another user has the address.
    async fn upsert_user(&mut self, user: &User, now: DateTime<Utc>) -> StoreResult<()>;
    /// Deletes a user; `false` if there was none.
    async fn delete_user(&mut self, user_id: &UserId) -> StoreResult<bool>;
    /// One user by id.
    async fn get_user(&mut self, user_id: &UserId) -> StoreResult<Option<User>>;
    /// One user by address.
    async fn get_user_by_email(&mut self, email: &Email) -> StoreResult<Option<User>>;
    /// Users of a domain with ids after `after`, by id, at most `limit`.
    async fn list_users(
        &mut self,
        domain: &DomainName,
        role: Option<Role>,
        after: Option<&UserId>,
        limit: u32,
    ) -> StoreResult<Vec<User>>;
    /// Creates a course or replaces it and its membership.
    async fn upsert_course(&mut self, course: &Course, now: DateTime<Utc>) -> StoreResult<()>;
    /// Deletes a course; `false` if there was none.
    async fn delete_course(&mut self, course_id: &CourseId) -> StoreResult<bool>;
    /// One course with its membership.
    async fn get_course(&mut self, course_id: &CourseId) -> StoreResult<Option<Course>>;
    /// The courses (with their domains) in which `teacher` teaches `student`.
    async fn courses_teaching(
        &mut self,
        teacher: &UserId,
        student: &UserId,
    ) -> StoreResult<Vec<(CourseId, DomainName)>>;
}

/// A person's records, for their export and erasure (PrivacyService). Lookups by one key each:
/// a person has few records, and each query walks an index.
#[async_trait]
pub trait PrivacyRepo {
    /// Every invitation a guardian account accepted, whatever its state now, by id.
    async fn invitations_of_guardian(&mut self, guardian: &UserId) -> StoreResult<Vec<Invitation>>;
    /// Every invitation sent to `email` or accepted with it as the profile address, by id.
    async fn invitations_of_address(&mut self, email: &Email) -> StoreResult<Vec<Invitation>>;
    /// Every invitation of a student, whatever its state, by id.
    async fn invitations_of_student(&mut self, student: &UserId) -> StoreResult<Vec<Invitation>>;
    /// The audit events of one invitation, oldest first.
    async fn events_of_invitation(
        &mut self,
        invitation: &Invitation,
    ) -> StoreResult<Vec<AuditEvent>>;
    /// The audit events about a student in a domain, oldest first.
    async fn events_of_student(
        &mut self,
        domain: &DomainName,
        student: &UserId,
    ) -> StoreResult<Vec<AuditEvent>>;
    /// The emails of an invitation, of a family, or with these ids, oldest first.
    async fn messages_of(
        &mut self,
        invitations: &[InvitationId],
        families: &[String],
        message_ids: &[String],
    ) -> StoreResult<Vec<OutboxMessage>>;
    /// Every summary built for a guardian, oldest period first.
    async fn summary_deliveries_of(
        &mut self,
        guardian: &UserId,
    ) -> StoreResult<Vec<SummaryDelivery>>;
    /// Replaces `actor` by `stand_in` as the actor of an invitation's events.
    async fn replace_event_actor(
        &mut self,
        invitation: &Invitation,
        actor: &str,
        stand_in: &str,
    ) -> StoreResult<()>;
    /// Erases one email's personal data: the subject (it names the child), the bodies, the
    /// unsubscribe link and the server's answer go, the recipient becomes `stand_in` if one is given, and a QUEUED one fails as
    /// cancelled. True when it was QUEUED.
    async fn erase_message(
        &mut self,
        message_id: &str,
        stand_in: Option<&Email>,
    ) -> StoreResult<bool>;
    /// Erases what is kept per address beyond invitations: its families' address becomes
    /// `stand_in` and its row lock goes.
    async fn erase_address(&mut self, email: &Email, stand_in: &Email) -> StoreResult<()>;
    /// Erases what is kept per guardian account beyond invitations: preferences go, summary
    /// deliveries name `stand_in`, stored replies to the guardian's own requests go.
    async fn erase_guardian_account(
        &mut self,
        guardian: &UserId,
        stand_in: &UserId,
        principal: &str,
    ) -> StoreResult<()>;
    /// Deletes a student's hand-in states.
    async fn delete_submissions_of(&mut self, student: &UserId) -> StoreResult<u64>;
}

/// Records of who read guardians' addresses (see [`crate::domain::AccessRecord`]).
#[async_trait]
pub trait AccessRepo {
    /// Stores records in one statement.
    async fn insert_access_records(&mut self, records: &[AccessRecord]) -> StoreResult<()>;
    /// A domain's records, newest first, before `before` (a record id), of one student if
    /// given.
    async fn list_access_records(
        &mut self,
        domain: &DomainName,
        student: Option<&UserId>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AccessRecord>>;
    /// Deletes up to `limit` records older than their domain's `audit_retention_days` at `now`,
    /// oldest first; how many went.
    async fn purge_access_records(&mut self, now: DateTime<Utc>, limit: u32) -> StoreResult<u64>;
}

/// Retention: ended invitations whose personal data is due to be replaced by stand-ins, and
/// audit events past their domain's retention.
#[async_trait]
pub trait RetentionRepo {
    /// Ended (REMOVED, EXPIRED) invitations that still hold personal data and whose last change
    /// is older than their domain's `ended_retention_days` at `now`, oldest first, up to
    /// `limit`, locked for this transaction and skipped by other sweepers.
    async fn claim_ended_identified(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Invitation>>;
    /// Replaces an ended invitation's invited address, and its guardian's id and address, by
    /// the stand-ins given, and clears the guardian's name.
    async fn anonymise_invitation(
        &mut self,
        id: InvitationId,
        invited: &Email,
        guardian: Option<(&UserId, &Email)>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Deletes up to `limit` audit events older than their domain's `audit_retention_days` at
    /// `now`, oldest first; how many went.
    async fn purge_audit_events(&mut self, now: DateTime<Utc>, limit: u32) -> StoreResult<u64>;
    /// Deletes up to `limit` families whose email went before `before`; how many went.
    async fn purge_sent_families(&mut self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64>;
    /// Emails no longer queued, made before `before`, whose recipient is still a person's
    /// address, oldest first, up to `limit`: (message id, recipient). Erased with
    /// [`PrivacyRepo::erase_message`].
    async fn identified_messages(
        &mut self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(String, Email)>>;
}

/// Families: invitations to one address sent as one email (see [`crate::domain::Family`]).
#[async_trait]
pub trait FamilyRepo {
    /// The families still open at `now` of any of `emails` (in any domain).
    async fn open_families(
        &mut self,
        emails: &[Email],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<crate::domain::Family>>;
    /// Stores new families (the caller holds their addresses' locks).
    async fn insert_families(&mut self, families: &[crate::domain::Family]) -> StoreResult<()>;
    /// Unsent families whose window has closed at `now`, oldest first, up to `limit`, locked
    /// for this transaction and skipped by other senders (Postgres `FOR UPDATE SKIP LOCKED`).
    async fn claim_due_families(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<crate::domain::Family>>;
    /// Records that the emails of `families` were queued, those not yet recorded (another
    /// sender may have been first); returns the ids this call recorded.
    async fn mark_families_sent(
        &mut self,
        families: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>>;
    /// Sets the hash of a family's accept-all token (families of several children).
    async fn set_family_token(&mut self, family_id: &str, token_hash: &str) -> StoreResult<()>;
    /// The family whose accept-all token hashes to `token_hash`.
    async fn family_by_token_hash(
        &mut self,
        token_hash: &str,
    ) -> StoreResult<Option<crate::domain::Family>>;
    /// Every invitation of `families`, oldest first.
    async fn family_invitations(&mut self, families: &[String]) -> StoreResult<Vec<Invitation>>;
    /// Gives each invitation a new token (hashed): a family's email carries fresh links, the
    /// first tokens never having left the server. Keeps the version (no client-visible change).
    async fn replace_token_hashes(&mut self, tokens: &[(InvitationId, String)]) -> StoreResult<()>;
}

/// Invitations and the guardian links they become.
#[async_trait]
pub trait InvitationRepo {
    /// Stores a new invitation. Errors: [`StoreError::AlreadyExists`] with
    /// [`UniqueKey::PendingInvitation`] (a PENDING one exists for the student and address),
    /// [`UniqueKey::GuardianLink`] or [`UniqueKey::InvitationToken`].
    async fn insert_invitation(&mut self, invitation: &Invitation) -> StoreResult<()>;
    /// One invitation by id.
    async fn get_invitation(&mut self, id: InvitationId) -> StoreResult<Option<Invitation>>;
    /// The invitation whose token hashes to `token_hash`.
    async fn get_invitation_by_token_hash(
        &mut self,
        token_hash: &str,
    ) -> StoreResult<Option<Invitation>>;
    /// Compare-and-set: writes every mutable field of `next` (state, guardian, token, times) and
    /// bumps the version, only if the stored row still has `expected_version`. Errors:
    /// [`StoreError::Conflict`] when it changed in between (zero rows updated),
    /// [`StoreError::AlreadyExists`] as for insert when the new state collides.
    async fn update_invitation(
        &mut self,
        next: &Invitation,
        expected_version: i64,
    ) -> StoreResult<Invitation>;
    /// Invitations matching `filter`, in id (= creation) order, after `filter.after`.
    async fn list_invitations(&mut self, filter: &InvitationFilter)
    -> StoreResult<Vec<Invitation>>;
    /// ACCEPTED links matching `filter`, ordered by (student, invitation) for reverse lookups
    /// and by invitation id otherwise.
    async fn list_links(&mut self, filter: &LinkFilter) -> StoreResult<Vec<Invitation>>;
    /// Whether an ACCEPTED link joins `student` and the guardian with this account id.
    async fn is_linked_by_id(&mut self, student: &UserId, guardian: &UserId) -> StoreResult<bool>;
    /// Whether an ACCEPTED link joins `student` and a guardian whose profile or invited
    /// address is `email`.
    async fn is_linked_by_email(&mut self, student: &UserId, email: &Email) -> StoreResult<bool>;
    /// ACCEPTED plus not-yet-expired PENDING invitations of a student.
    async fn count_active_for_student(
        &mut self,
        student: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<i64>;
    /// Distinct students an address is linked to (as invited or profile address) or has a
    /// not-yet-expired PENDING invitation for.
    async fn count_students_for_address(
        &mut self,
        email: &Email,
        now: DateTime<Utc>,
    ) -> StoreResult<i64>;
    /// The ACCEPTED links of a domain's students (a sync's safety limit is a share of them).
    async fn count_domain_links(&mut self, domain: &DomainName) -> StoreResult<i64>;
    /// How many invitations of `student` to `email` were declined.
    async fn count_declines(&mut self, student: &UserId, email: &Email) -> StoreResult<i64>;
    /// The ACCEPTED link of `student` and the guardian with this account id.
    async fn find_link(
        &mut self,
        student: &UserId,
        guardian: &UserId,
    ) -> StoreResult<Option<Invitation>>;
    /// The hot path in one round trip: the student's domain (`None` if the directory does not
    /// know the student) and whether an ACCEPTED link to the guardian exists.
    async fn check_guardianship(
        &mut self,
        student: &UserId,
        guardian: &GuardianKey,
    ) -> StoreResult<Option<(DomainName, bool)>>;
    /// The link reads (checks, a student's guardians) in one round trip: each of `students`
    /// the directory knows, by id, with their record and ACCEPTED links in invitation id order.
    async fn student_links(&mut self, students: &[UserId]) -> StoreResult<Vec<StudentLinks>>;
    /// Stored PENDING and ACCEPTED rows, counted on their partial indexes.
    async fn count_live_invitations(&mut self) -> StoreResult<(i64, i64)>;
    /// PENDING invitations whose expiry has passed, up to `limit`, locked for this transaction
    /// and skipped by other sweepers (Postgres `FOR UPDATE SKIP LOCKED`).
    async fn claim_expired_pending(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Invitation>>;
    /// PENDING, unexpired invitations whose reminder is due at `now`, soonest first, up to
    /// `limit`, locked for this transaction and skipped by other sweepers (as expiry's).
    async fn claim_due_reminders(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Invitation>>;
    /// Records that the reminders of `reminders` went out, each with its token's hash (`None`:
    /// none went out, as when reminders were turned off), for those still PENDING and still due
    /// at `now`; returns those recorded (another replica may have reminded some, or a resend
    /// moved their reminder on). The version stays: a reminder changes nothing a client sees,
    /// so an etag a client holds stays good.
    async fn mark_reminded(
        &mut self,
        reminders: &[(InvitationId, Option<String>)],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Invitation>>;
}

/// The audit trail.
#[async_trait]
pub trait EventRepo {
    /// Appends an event; returns its id. The trail is read through [`FeedRepo`].
    async fn append_event(&mut self, event: &AuditEvent) -> StoreResult<i64>;
}

/// The change feed (freshness.md), read from the audit trail in revision order.
#[async_trait]
pub trait FeedRepo {
    /// Up to `limit` changes in `scope` after `after`, in position order, all below the
    /// page's watermark: every transaction with a lower revision has finished, so no change
    /// can later appear before the last one returned.
    async fn changes_after(
        &mut self,
        scope: &ChangeScope,
        after: Position,
        limit: u32,
    ) -> StoreResult<ChangePage>;
    /// A position that includes every change committed before the call (a write's
    /// consistency token).
    async fn committed_head(&mut self) -> StoreResult<Position>;
    /// When the first change after `after` was recorded (any scope); `None` if none is.
    async fn first_change_time(&mut self, after: Position) -> StoreResult<Option<DateTime<Utc>>>;
    /// The invitations with these ids that exist, in any order.
    async fn invitations_by_id(&mut self, ids: &[InvitationId]) -> StoreResult<Vec<Invitation>>;
}

/// Emails waiting to be delivered.
#[async_trait]
pub trait OutboxRepo {
    /// Queues a message. Errors: [`StoreError::AlreadyExists`] with [`UniqueKey::OutboxMessage`]
    /// for a message id already queued.
    async fn enqueue_message(&mut self, message: &OutboxMessage) -> StoreResult<()>;
    /// Queues several messages in one statement (all or, on an error, none).
    async fn enqueue_messages(&mut self, messages: &[OutboxMessage]) -> StoreResult<()>;
    /// Claims up to `limit` QUEUED messages due at `now` by moving their next attempt to
    /// `lease_until`, so no other dispatcher takes them meanwhile. Safe to call from many
    /// dispatchers at once: each message is claimed by one.
    async fn claim_due_messages(
        &mut self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>>;
    /// Records a delivery attempt's outcome: SENT (dropping the bodies, which may carry a
    /// token), QUEUED again with a new due time, or FAILED.
    async fn record_delivery(
        &mut self,
        message_id: &str,
        status: DeliveryStatus,
        next_attempt_time: DateTime<Utc>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Moves the next attempt of each still-QUEUED message in `message_ids` to `at`: renews a
    /// dispatcher's lease on what it claimed, or (with `at` = now) gives the claim back.
    /// Messages already recorded SENT or FAILED are left alone.
    async fn reschedule_messages(
        &mut self,
        message_ids: &[String],
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// One message by id.
    async fn get_message(&mut self, message_id: &str) -> StoreResult<Option<OutboxMessage>>;
    /// How many messages wait to be sent.
    async fn count_queued_messages(&mut self) -> StoreResult<i64>;
    /// The status of the newest message about an invitation.
    async fn latest_delivery_status(
        &mut self,
        invitation_id: InvitationId,
    ) -> StoreResult<Option<DeliveryStatus>>;
    /// [`OutboxRepo::latest_delivery_status`] of each of `invitation_ids` (a page's worth) in
    /// one query; invitations with no message are absent from the answer.
    async fn latest_delivery_statuses(
        &mut self,
        invitation_ids: &[InvitationId],
    ) -> StoreResult<std::collections::HashMap<InvitationId, DeliveryStatus>>;
}

/// First responses to client request ids.
#[async_trait]
pub trait IdempotencyRepo {
    /// The record for (principal, request id), if any.
    async fn get_idempotency(
        &mut self,
        principal: &str,
        request_id: &str,
    ) -> StoreResult<Option<IdempotencyRecord>>;
    /// Stores a record. Errors: [`StoreError::AlreadyExists`] with
    /// [`UniqueKey::IdempotencyKey`] when a concurrent request stored the same key first.
    async fn put_idempotency(&mut self, record: &IdempotencyRecord) -> StoreResult<()>;
    /// Deletes records created before `before`; returns how many.
    async fn purge_idempotency(&mut self, before: DateTime<Utc>) -> StoreResult<u64>;
}

/// Set-based reads and writes of bulk calls: one statement for a chunk of rows, where the
/// single-row methods above would take one each.
#[async_trait]
pub trait BulkRepo {
    /// The users with these addresses (unknown addresses are left out).
    async fn users_by_email(&mut self, emails: &[Email]) -> StoreResult<Vec<User>>;
    /// Every invitation, in any state, of these students.
    async fn invitations_of_students(
        &mut self,
        students: &[UserId],
    ) -> StoreResult<Vec<Invitation>>;
    /// Each (address, student) pair where the address is invited (live PENDING at `now`, or
    /// ACCEPTED) or is an accepted guardian's profile address: what the per-address limit counts.
    async fn students_of_addresses(
        &mut self,
        emails: &[Email],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(Email, UserId)>>;
    /// A domain's live PENDING invitations (unexpired at `now`) last sent (created or resent)
    /// before `before`, the longest-waiting first, at most `limit`.
    async fn pending_sent_before(
        &mut self,
        domain: &DomainName,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Invitation>>;
    /// The language chosen by the guardian (summary preferences) who has each of these
    /// addresses, as invited or as their own, on an ACCEPTED link; addresses of nobody who
    /// chose are left out.
    async fn guardian_locales(&mut self, emails: &[Email]) -> StoreResult<Vec<(Email, Locale)>>;
    /// The stored responses of these request ids of one caller.
    async fn get_idempotency_many(
        &mut self,
        principal: &str,
        request_ids: &[String],
    ) -> StoreResult<Vec<IdempotencyRecord>>;
    /// Inserts new invitations. Errors: [`StoreError::AlreadyExists`] when any row breaks a
    /// unique rule (which one is not told: the caller retries row by row).
    async fn insert_invitations(&mut self, invitations: &[Invitation]) -> StoreResult<()>;
    /// Ends invitations (cancel, remove) as one compare-and-set write: each row's state,
    /// removal reason and update time are set and its version raised where the stored version
    /// is still `expected_version`. Returns how many rows were written: fewer than given means
    /// some changed underneath, and the caller rolls back.
    async fn end_invitations(&mut self, ended: &[EndedInvitation]) -> StoreResult<u64>;
    /// Appends audit events.
    async fn append_events(&mut self, events: &[AuditEvent]) -> StoreResult<()>;
    /// Stores first responses. Errors: [`StoreError::AlreadyExists`] when any is stored already.
    async fn put_idempotency_many(&mut self, records: &[IdempotencyRecord]) -> StoreResult<()>;
}

/// Everything a use case can do on one connection.
pub trait Session:
    SettingsRepo
    + BulkRepo
    + DirectoryRepo
    + InvitationRepo
    + FamilyRepo
    + RetentionRepo
    + PrivacyRepo
    + AccessRepo
    + EventRepo
    + FeedRepo
    + OutboxRepo
    + IdempotencyRepo
    + SummaryRepo
    + Send
{
}

/// Class activity, summary preferences and summary deliveries (summaries.md).
#[async_trait]
pub trait SummaryRepo {
    /// Stores course work unless the stored item is as new or newer; true when it was stored.
    async fn upsert_course_work(&mut self, work: &CourseWork) -> StoreResult<bool>;
    /// Stores a submission unless the stored one is as new or newer.
    async fn upsert_submission(&mut self, submission: &Submission) -> StoreResult<bool>;
    /// Stores an announcement unless the stored one is as new or newer.
    async fn upsert_announcement(&mut self, announcement: &Announcement) -> StoreResult<bool>;
    /// One piece of course work.
    async fn get_course_work(
        &mut self,
        course_id: &CourseId,
        course_work_id: &str,
    ) -> StoreResult<Option<CourseWork>>;
    /// The published work and announcements of `courses` updated at or after `since`, and
    /// every published work item due at or after `since` (for missing and upcoming work).
    async fn class_activity(
        &mut self,
        courses: &[CourseId],
        since: DateTime<Utc>,
    ) -> StoreResult<(Vec<CourseWork>, Vec<Announcement>)>;
    /// The submissions of `students` in `courses`.
    async fn submissions_of(
        &mut self,
        students: &[UserId],
        courses: &[CourseId],
    ) -> StoreResult<Vec<Submission>>;
    /// Deletes activity last updated before `before`; how many rows went.
    async fn purge_activity(&mut self, before: DateTime<Utc>) -> StoreResult<u64>;
    /// The courses `students` attend: (student, course, course's domain), by student and
    /// course.
    async fn courses_of_students(
        &mut self,
        students: &[UserId],
    ) -> StoreResult<Vec<(UserId, CourseId, DomainName)>>;
    /// The directory records of `users` that exist, in any order.
    async fn users_by_id(&mut self, users: &[UserId]) -> StoreResult<Vec<User>>;
    /// The ACCEPTED links of `guardians`, by guardian and invitation id.
    async fn links_of_guardians(&mut self, guardians: &[UserId]) -> StoreResult<Vec<Invitation>>;
    /// The stored preferences of those of `guardians` who have any.
    async fn summary_preferences_of(
        &mut self,
        guardians: &[UserId],
    ) -> StoreResult<Vec<SummaryPreferences>>;
    /// The newest summary built for each of `guardians` that has one.
    async fn last_summary_deliveries(
        &mut self,
        guardians: &[UserId],
    ) -> StoreResult<Vec<SummaryDelivery>>;
    /// Sets whether a class appears in summaries.
    async fn set_course_summaries(
        &mut self,
        course_id: &CourseId,
        enabled: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Which of `courses` teachers left out of summaries.
    async fn courses_without_summaries(
        &mut self,
        courses: &[CourseId],
    ) -> StoreResult<Vec<CourseId>>;
    /// A guardian's stored preferences.
    async fn get_summary_preferences(
        &mut self,
        guardian: &UserId,
    ) -> StoreResult<Option<SummaryPreferences>>;
    /// Changes the fields `patch` names of a guardian's preferences in one statement (creating
    /// them), so that two changes of different fields at once both stay.
    async fn patch_summary_preferences(
        &mut self,
        guardian: &UserId,
        patch: &PreferencesPatch,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Guardians with at least one accepted link, by id, after `after`.
    async fn linked_guardians(
        &mut self,
        after: Option<&UserId>,
        limit: u32,
    ) -> StoreResult<Vec<UserId>>;
    /// Records a built summary; [`StoreError::AlreadyExists`] when one exists for the
    /// guardian and period (another replica, or an earlier run, built it).
    async fn insert_summary_delivery(&mut self, delivery: &SummaryDelivery) -> StoreResult<()>;
    /// Records built summaries in one statement; the guardians whose records were new (the
    /// others existed for their period and are left as they are).
    async fn insert_summary_deliveries(
        &mut self,
        deliveries: &[SummaryDelivery],
    ) -> StoreResult<Vec<UserId>>;
    /// The newest summary built for a guardian.
    async fn last_summary_delivery(
        &mut self,
        guardian: &UserId,
    ) -> StoreResult<Option<SummaryDelivery>>;
    /// A guardian's summaries, newest first, with period keys before `before`.
    async fn list_summary_deliveries(
        &mut self,
        guardian: &UserId,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<SummaryDelivery>>;
    /// Marks an unused unsubscribe token used and returns its guardian; `None` for a token
    /// that is unknown or already used.
    async fn use_unsubscribe_token(&mut self, token_hash: &str) -> StoreResult<Option<UserId>>;
    /// The guardian of an unsubscribe token and whether it was used, without using it.
    async fn find_unsubscribe_token(
        &mut self,
        token_hash: &str,
    ) -> StoreResult<Option<(UserId, bool)>>;
}

/// A [`Session`] inside a transaction: nothing it wrote is visible to others until commit, and
/// dropping it without commit rolls back.
#[async_trait]
pub trait Transaction: Session {
    /// Serialises writers of one student's records until commit (a row lock on Postgres; SQLite
    /// transactions already hold the database's write lock).
    async fn lock_student(&mut self, student: &UserId) -> StoreResult<()>;
    /// Serialises invitations to one guardian address until commit, for the per-address limit.
    /// Callers lock the student first, then the address, so two transactions never wait on
    /// each other in opposite orders.
    async fn lock_address(&mut self, email: &Email) -> StoreResult<()>;
    /// [`Transaction::lock_student`] for many students, in one order every writer shares (by
    /// id), so two bulk transactions never wait on each other in a cycle.
    async fn lock_students(&mut self, students: &[UserId]) -> StoreResult<()>;
    /// [`Transaction::lock_address`] for many addresses, in address order. Taken after the
    /// students, as single writers do.
    async fn lock_addresses(&mut self, emails: &[Email]) -> StoreResult<()>;
    /// Makes the writes durable and visible.
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}

/// Wakes a feed follower when changes may have been committed: on Postgres a `LISTEN` on the
/// channel a trigger notifies at every commit that wrote events; on SQLite the store's own
/// commits.
#[async_trait]
pub trait ChangeSignal: Send {
    /// Returns when changes may have been committed since the last return, or when signals
    /// may have been lost (a dropped connection), so that the caller looks either way.
    async fn changed(&mut self);
}

tokio::task_local! {
    /// The newest revision committed by the task that set it (a request), for its response's
    /// consistency token without asking the database again.
    pub static COMMITTED_REVISION: std::cell::Cell<Option<i64>>;
}

/// Records that the current task committed changes at `revision` (no-op outside a scope).
pub(crate) fn note_commit(revision: i64) {
    let _ = COMMITTED_REVISION.try_with(|c| c.set(c.get().max(Some(revision))));
}

/// Connection pool occupancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections.
    pub size: u32,
    /// Open and idle.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// Which backend a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// Embedded SQLite.
    Sqlite,
}

/// A connected, migrated store.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// A connection for autocommit reads (and single-statement writes).
    async fn session(&self) -> StoreResult<Box<dyn Session>>;
    /// A connection for a read that must include every change below `needed` (a revision
    /// watermark): a read replica that has replayed that far, when one is configured and up,
    /// else the primary. The default is the primary.
    async fn read_session(&self, needed: i64) -> StoreResult<ReadSession> {
        let _ = needed;
        Ok(ReadSession {
            session: self.session().await?,
            replica_watermark: None,
        })
    }
    /// A transaction for load-decide-write use cases.
    async fn begin(&self) -> StoreResult<Box<dyn Transaction>>;
    /// Answers when the database is reachable.
    async fn ping(&self) -> StoreResult<()>;
    /// Which backend this is.
    fn backend(&self) -> Backend;
    /// The connection pool's occupancy, for metrics.
    fn pool_stats(&self) -> PoolStats;
    /// Applies pending migrations, under the database's own lock so that any number of
    /// replicas may start at once.
    async fn migrate(&self) -> StoreResult<()>;
    /// Whether every migration this build knows has been applied.
    async fn is_migrated(&self) -> StoreResult<bool>;
    /// Closes the pool, waiting for connections in use to return.
    async fn close(&self);
    /// A signal of commits that wrote changes, for the feed.
    async fn change_signal(&self) -> StoreResult<Box<dyn ChangeSignal>>;
}

/// A session for a read, and where it reads.
pub struct ReadSession {
    /// The connection.
    pub session: Box<dyn Session>,
    /// On a read replica: the watermark every read on it includes; `None` on the primary.
    pub replica_watermark: Option<i64>,
}

impl std::fmt::Debug for ReadSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadSession")
            .field("replica_watermark", &self.replica_watermark)
            .finish_non_exhaustive()
    }
}

/// Connection settings shared by both backends.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `postgres://...`, `sqlite://path` or `sqlite::memory:`.
    pub url: String,
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a connection before the store reports it unavailable.
    pub acquire_timeout: std::time::Duration,
    /// Longest one statement may run (or wait for a lock) on Postgres before the server
    /// cancels it; `None` for no limit. Kept below the RPC deadline, so that a call stuck on a
    /// slow or locked database fails UNAVAILABLE and gives its connection back.
    pub statement_timeout: Option<std::time::Duration>,
    /// Read replicas of a Postgres primary (`GUARDIANS_READ_DATABASE_URL`); none for SQLite.
    pub read_urls: Vec<String>,
}

impl ConnectOptions {
    /// Options for tools and tests: up to `max_connections` to `url`, waiting at most
    /// `acquire_timeout` for one; no statement limit and no read replicas.
    pub fn plain(
        url: impl Into<String>,
        max_connections: u32,
        acquire_timeout: std::time::Duration,
    ) -> Self {
        Self {
            url: url.into(),
            max_connections,
            acquire_timeout,
            statement_timeout: None,
            read_urls: Vec::new(),
        }
    }
}

/// Connects to the store the URL names (without migrating it).
pub async fn connect(options: &ConnectOptions) -> StoreResult<Arc<dyn Store>> {
    if options.url.starts_with("postgres://") || options.url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresStore::connect(options).await?))
    } else if options.url.starts_with("sqlite:") {
        if !options.read_urls.is_empty() {
            return Err(StoreError::Config(
                "read replicas (GUARDIANS_READ_DATABASE_URL) need a Postgres primary".into(),
            ));
        }
        Ok(Arc::new(sqlite::SqliteStore::connect(options).await?))
    } else {
        Err(StoreError::Config(
            "database URL must start with postgres://, postgresql:// or sqlite:".into(),
        ))
    }
}
