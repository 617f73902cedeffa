//! Use cases on the embedded SQLite store with a manual clock: the rules of inviting,
//! answering and expiring, tested without gRPC. (The same rules over the wire, on Postgres,
//! are in `tests/api`.)

use super::*;
use crate::auth::Authorized;
use crate::auth::gate::admit;
use crate::domain::clock::ManualClock;
use crate::domain::{
    Caller, CallerDomains, CallerRole, DomainName, Email, InvitationState, Role, Scope, StudentRef,
    User, UserId,
};
use chrono::TimeDelta;
use std::sync::Arc;

const DOMAIN: &str = "school.example";
const SERVICE: &str = "/guardians.v1.GuardianService/";
const DIRECTORY: &str = "/guardians.v1.DirectoryService/";

/// A use-case world: the app, its clock, and the folder that holds its database.
struct World {
    app: App,
    clock: Arc<ManualClock>,
    _dir: crate::testing::TempDir,
}

/// The platform service, admitted for `method` (as the gate would for a real call).
fn platform(method: &str) -> Authorized {
    let caller = Caller {
        subject: "platform".into(),
        role: CallerRole::Service,
        domains: CallerDomains::All,
        email: None,
        scopes: vec![
            Scope::GuardiansRead,
            Scope::GuardiansWrite,
            Scope::DirectoryWrite,
            Scope::InvitationsAccept,
        ],
    };
    admit(caller, method).expect("the platform is admitted")
}

/// A guardian with account `id` and address `email`, admitted for `method`.
fn guardian(id: &str, email: &str, method: &str) -> Authorized {
    let caller = Caller {
        subject: id.into(),
        role: CallerRole::Guardian,
        domains: CallerDomains::Only(Vec::new()),
        email: Some(Email::parse(email).unwrap()),
        scopes: Vec::new(),
    };
    admit(caller, &format!("{SERVICE}{method}")).expect("a guardian is admitted")
}

async fn world() -> World {
    let (store, dir) = crate::testing::sqlite_store().await.expect("sqlite store");
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = App::new(store, clock.clone(), AppConfig::default());
    let student = User {
        user_id: UserId::parse("s1").unwrap(),
        domain: DomainName::parse(DOMAIN).unwrap(),
        email: Email::parse("s1@school.example").unwrap(),
        role: Role::Student,
        verified_teacher: false,
        display_name: "Student One".into(),
        locale: None,
    };
    app.upsert_users(&platform(&format!("{DIRECTORY}UpsertUsers")), vec![student])
        .await
        .expect("seed");
    World {
        app,
        clock,
        _dir: dir,
    }
}

/// An app on `w`'s store with its own cache and staleness bound `max_staleness`. Tests that
/// fill the cache by hand use an hour, so that a slow machine cannot let the bound pass under
/// them.
fn with_staleness(w: &World, max_staleness: std::time::Duration) -> App {
    App::new(
        w.app.store().clone(),
        w.clock.clone(),
        AppConfig {
            freshness: crate::app::freshness::FreshnessConfig {
                max_staleness,
                ..Default::default()
            },
            ..AppConfig::default()
        },
    )
}

impl World {
    async fn invite(&self, email: &str) -> AppResult<InvitationView> {
        let who = platform(&format!("{SERVICE}CreateGuardianInvitation"));
        let student = StudentRef::Id(UserId::parse("s1").unwrap());
        let invited = Email::parse(email).unwrap();
        match self
            .app
            .create_invitation(&who, &student, &invited, None, &|_| Vec::new())
            .await?
        {
            Replay::Fresh(view) => Ok(view),
            Replay::Replayed(_) => panic!("no request id, no replay"),
        }
    }

    /// The token of the newest invitation email to `email`, read from the outbox.
    async fn token_for(&self, email: &str) -> String {
        let mut session = self.app.store().session().await.unwrap();
        let far = self.clock.now() + TimeDelta::days(10_000);
        let mut mails = session.claim_due_messages(far, far, 1_000).await.unwrap();
        // Give every claim back at once, so a later read finds all the mail again.
        let ids: Vec<String> = mails.iter().map(|m| m.message_id.clone()).collect();
        session
            .reschedule_messages(&ids, self.clock.now())
            .await
            .unwrap();
        mails.retain(|m| m.recipient.as_str() == email && m.body_text.contains("token="));
        mails.sort_by_key(|m| m.create_time);
        let body = &mails.last().expect("an invitation email").body_text;
        let start = body.find("token=").unwrap() + "token=".len();
        body[start..].split_whitespace().next().unwrap().to_owned()
    }

    async fn accept(&self, id: &str, email: &str) -> AppResult<GuardianView> {
        let answer = Answer {
            token: self.token_for(email).await,
            guardian_id: None,
            email: None,
            display_name: "A Parent".into(),
        };
        let who = guardian(id, email, "AcceptGuardianInvitation");
        match self
            .app
            .accept_invitation(&who, &answer, None, &|_| Vec::new())
            .await?
            .first
        {
            Replay::Fresh(view) => Ok(view),
            Replay::Replayed(_) => panic!("no request id, no replay"),
        }
    }

    async fn decline(&self, email: &str) -> AppResult<()> {
        let answer = Answer {
            token: self.token_for(email).await,
            guardian_id: None,
            email: None,
            display_name: String::new(),
        };
        let who = guardian("someone", email, "DeclineGuardianInvitation");
        self.app
            .decline_invitation(&who, &answer, None, &|_| Vec::new())
            .await
            .map(drop)
    }
}

#[tokio::test]
async fn an_invitation_is_accepted_until_its_expiry_and_then_expired() {
    let w = world().await;
    let early = w.invite("early@family.example").await.unwrap();
    let late = w.invite("late@family.example").await.unwrap();
    assert_eq!(
        early.invitation.expire_time - early.invitation.create_time,
        TimeDelta::days(120)
    );
    w.clock
        .advance(TimeDelta::days(120) - TimeDelta::microseconds(1));
    w.accept("g-early", "early@family.example").await.unwrap();
    w.clock.advance(TimeDelta::microseconds(1));
    let refused = w.accept("g-late", "late@family.example").await.unwrap_err();
    assert!(
        matches!(refused, AppError::InvitationExpired),
        "{refused:?}"
    );
    // Upkeep writes down what readers already saw, once.
    assert_eq!(w.app.run_upkeep(100).await.unwrap().expired, 1);
    assert_eq!(w.app.run_upkeep(100).await.unwrap().expired, 0);
    let mut session = w.app.store().session().await.unwrap();
    let stored = session
        .get_invitation(late.invitation.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, InvitationState::Expired);
}

#[tokio::test]
async fn the_limit_counts_live_invitations_and_links_only() {
    let w = world().await;
    for n in 0..20 {
        w.invite(&format!("p{n}@family.example")).await.unwrap();
    }
    let full = w.invite("p20@family.example").await.unwrap_err();
    assert!(
        matches!(
            full,
            AppError::StudentGuardianLimitReached {
                limit: 20,
                current: 20
            }
        ),
        "{full:?}"
    );
    // Once the invitations have expired they no longer count.
    w.clock.advance(TimeDelta::days(121));
    w.invite("p20@family.example").await.unwrap();
}

#[tokio::test]
async fn an_address_that_declined_three_times_cannot_be_invited_again() {
    let w = world().await;
    for _ in 0..3 {
        w.invite("no@family.example").await.unwrap();
        w.decline("no@family.example").await.unwrap();
    }
    let refused = w.invite("no@family.example").await.unwrap_err();
    assert!(matches!(refused, AppError::TooManyDeclines), "{refused:?}");
    // Another address for the same student is not affected.
    w.invite("yes@family.example").await.unwrap();
}

/// The cache answers `minimize_latency` while the follower is caught up within the bound, and
/// `at_least_as_fresh` only once it has applied the token; `fully_consistent` never. A stale
/// entry (the cache says linked, the store does not) shows which one answered.
#[tokio::test]
async fn the_cache_answers_only_the_reads_it_is_fresh_enough_for() {
    use crate::app::freshness::Consistency;
    use crate::domain::Position;
    use std::time::{Duration, Instant};
    let w = world().await;
    let who = platform(&format!("{SERVICE}CheckGuardianship"));
    let s1 = UserId::parse("s1").unwrap();
    let g1 = CheckSubject::Id(UserId::parse("g1").unwrap());
    let stale = crate::store::StudentLinks::sample("s1", DOMAIN, &["g1"]);
    let app = with_staleness(&w, Duration::from_secs(3600));
    let freshness = app.freshness();
    freshness.advance(10, Some(Instant::now()));
    freshness.cache().expect("a cache").fill(10, stale.clone());
    let ask = |consistency| app.check_guardianship(&who, &s1, &g1, consistency);
    let cached = ask(Consistency::MinimizeLatency).await.unwrap();
    assert!(cached.answer.linked, "from memory");
    assert_eq!(cached.at, Some(Position::below(10)));
    let applied = Position {
        revision: 9,
        event: 3,
    };
    assert!(
        ask(Consistency::AtLeastAsFresh(applied))
            .await
            .unwrap()
            .answer
            .linked
    );
    let not_yet = Position {
        revision: 10,
        event: 1,
    };
    assert!(
        !ask(Consistency::AtLeastAsFresh(not_yet))
            .await
            .unwrap()
            .answer
            .linked
    );
    assert!(
        !ask(Consistency::FullyConsistent)
            .await
            .unwrap()
            .answer
            .linked
    );
    // The follower last caught up longer ago than the bound: the cache is bypassed.
    let stalled = with_staleness(&w, Duration::from_millis(100));
    stalled
        .freshness()
        .advance(10, Some(Instant::now() - Duration::from_millis(100)));
    stalled.freshness().cache().unwrap().fill(10, stale.clone());
    let answer = stalled
        .check_guardianship(&who, &s1, &g1, Consistency::MinimizeLatency)
        .await
        .unwrap();
    assert!(!answer.answer.linked, "past the bound: the store answered");
}

/// ListGuardians of one student reads what the checks read: the replica's cache in
/// `minimize_latency` (a stale entry shows which answered), the store in `fully_consistent`;
/// and a page is cut from the cached links as the store would cut it.
#[tokio::test]
async fn a_students_guardians_are_listed_from_the_cache_when_it_may_answer() {
    use crate::app::freshness::Consistency;
    use crate::app::{GuardianQuery, StudentSelector};
    use std::time::{Duration, Instant};
    let w = world().await;
    let app = with_staleness(&w, Duration::from_secs(3600));
    let who = platform(&format!("{SERVICE}ListGuardians"));
    let list = |consistency, page_size, page_token: String| {
        app.list_guardians(
            &who,
            GuardianQuery {
                student: StudentSelector::One(StudentRef::Id(UserId::parse("s1").unwrap())),
                invited_email: None,
                guardian: None,
                page_size,
                page_token,
                consistency,
            },
        )
    };
    let ids = |page: &Page<GuardianView>| {
        page.items
            .iter()
            .map(|v| v.link.guardian.guardian_id.to_string())
            .collect::<Vec<_>>()
    };
    // The store has no links; the cache says g1 and g2 (as if a removal had not reached it).
    let stale = crate::store::StudentLinks::sample("s1", DOMAIN, &["g1", "g2"]);
    let freshness = app.freshness();
    freshness.advance(10, Some(Instant::now()));
    freshness.cache().expect("a cache").fill(10, stale);
    let cached = list(Consistency::MinimizeLatency, 0, String::new())
        .await
        .unwrap();
    assert_eq!(ids(&cached.answer), ["g1", "g2"], "from memory");
    assert!(cached.answer.next_page_token.is_empty());
    let label = cached.answer.items[0].student.as_ref().expect("labelled");
    assert_eq!(label.email.as_str(), "s1@school.example");
    assert_eq!(cached.answer.items[0].student_id.as_str(), "s1");
    assert_eq!(cached.answer.items[0].domain.as_str(), DOMAIN);
    assert!(
        cached.answer.items[0].show_invited_email,
        "a service manages"
    );
    // Paged from memory: one at a time, the token leading to the second.
    let first = list(Consistency::MinimizeLatency, 1, String::new())
        .await
        .unwrap()
        .answer;
    assert_eq!(ids(&first), ["g1"]);
    let second = list(Consistency::MinimizeLatency, 1, first.next_page_token)
        .await
        .unwrap()
        .answer;
    assert_eq!(ids(&second), ["g2"]);
    assert!(second.next_page_token.is_empty());
    let primary = list(Consistency::FullyConsistent, 0, String::new())
        .await
        .unwrap();
    assert!(primary.answer.items.is_empty(), "from the store");
    // An id that is not a student's is unknown, from memory too.
    let teacher = crate::store::StudentLinks {
        student: User {
            role: Role::Teacher,
            ..crate::store::StudentLinks::sample("t1", DOMAIN, &[]).student
        },
        links: Vec::new(),
        stored_access: None,
    };
    freshness.cache().unwrap().fill(10, teacher);
    let listed = app
        .list_guardians(
            &who,
            GuardianQuery {
                student: StudentSelector::One(StudentRef::Id(UserId::parse("t1").unwrap())),
                invited_email: None,
                guardian: None,
                page_size: 0,
                page_token: String::new(),
                consistency: Consistency::MinimizeLatency,
            },
        )
        .await;
    assert!(matches!(listed, Err(AppError::NotFound(Missing::Student))));
}
