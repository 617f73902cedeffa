//! The lifecycle table written out, and properties of event sequences and of time.

// The expected table is written to be read, with "every other event" where the contract says so.
#![allow(clippy::wildcard_enum_match_arm)]

use super::*;
use InvitationEvent as E;
use InvitationState as S;
use RemovalReason as R;
use TransitionError as T;

fn all_states() -> Vec<InvitationState> {
    let mut states = vec![S::Pending, S::Accepted, S::Expired];
    states.extend(R::ALL.map(S::Removed));
    states
}

/// The whole table, written out: one expectation for every (state, event) pair.
fn expected(state: InvitationState, event: InvitationEvent) -> Result<InvitationState, T> {
    match state {
        S::Pending => match event {
            E::Accept => Ok(S::Accepted),
            E::Decline => Ok(S::Removed(R::Declined)),
            E::Cancel => Ok(S::Removed(R::Cancelled)),
            E::Resend => Ok(S::Pending),
            E::Expire => Ok(S::Expired),
            E::RemoveStudent => Ok(S::Removed(R::StudentRemoved)),
            E::EraseGuardian => Ok(S::Removed(R::GuardianErased)),
            E::DeleteGuardian => Err(T::NotPending),
        },
        S::Accepted => match event {
            E::DeleteGuardian => Ok(S::Removed(R::GuardianRemoved)),
            E::RemoveStudent => Ok(S::Removed(R::StudentRemoved)),
            E::EraseGuardian => Ok(S::Removed(R::GuardianErased)),
            _ => Err(T::NotPending),
        },
        S::Expired => match event {
            E::Accept | E::Decline => Err(T::Expired),
            _ => Err(T::NotPending),
        },
        S::Removed(_) => Err(T::NotPending),
    }
}

#[test]
fn every_state_event_pair_follows_the_table() {
    let mut pairs = 0;
    for state in all_states() {
        for event in E::ALL {
            assert_eq!(
                transition(state, event),
                expected(state, event),
                "{state:?} + {event:?}"
            );
            pairs += 1;
        }
    }
    assert_eq!(pairs, 8 * 8);
}

#[test]
fn accepting_after_expiry_is_expired_even_before_the_sweeper_runs() {
    let expire = chrono::Utc::now();
    let observed = S::Pending.observed_at(expire, expire);
    assert_eq!(observed, S::Expired);
    assert_eq!(transition(observed, E::Accept), Err(T::Expired));
    let before = S::Pending.observed_at(expire, expire - chrono::TimeDelta::microseconds(1));
    assert_eq!(transition(before, E::Accept), Ok(S::Accepted));
}

#[test]
fn only_pending_is_touched_by_time() {
    let expire = chrono::Utc::now();
    let later = expire + chrono::TimeDelta::days(1);
    for state in all_states().into_iter().filter(|s| *s != S::Pending) {
        assert_eq!(state.observed_at(expire, later), state);
    }
}

fn event() -> impl proptest::strategy::Strategy<Value = InvitationEvent> {
    proptest::sample::select(E::ALL.to_vec())
}

proptest::proptest! {
    // A fixed seed: the same sequences every run, so the test cannot pass by chance.
    #![proptest_config(proptest::test_runner::Config {
        cases: 512,
        rng_seed: proptest::test_runner::RngSeed::Fixed(120),
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })]

    /// Any sequence of events from PENDING: a refused event changes nothing; ACCEPTED is
    /// entered only by Accept and left only for REMOVED; EXPIRED and REMOVED are final; a
    /// REMOVED state carries the reason of the event that ended it.
    #[test]
    fn event_sequences_keep_the_lifecycle(events in proptest::collection::vec(event(), 0..24)) {
        let mut state = S::Pending;
        for event in events {
            match transition(state, event) {
                Err(_) => {}
                Ok(next) => {
                    proptest::prop_assert!(
                        !matches!(state, S::Expired | S::Removed(_)),
                        "{state:?} is final but {event:?} left it"
                    );
                    if next == S::Accepted {
                        proptest::prop_assert_eq!((state, event), (S::Pending, E::Accept));
                    }
                    if state == S::Accepted {
                        proptest::prop_assert!(matches!(next, S::Removed(_)));
                    }
                    if let S::Removed(reason) = next {
                        let expected = match event {
                            E::Decline => R::Declined,
                            E::Cancel => R::Cancelled,
                            E::DeleteGuardian => R::GuardianRemoved,
                            E::RemoveStudent => R::StudentRemoved,
                            E::EraseGuardian => R::GuardianErased,
                            other => {
                                return Err(proptest::test_runner::TestCaseError::fail(
                                    format!("{other:?} removed an invitation"),
                                ));
                            }
                        };
                        proptest::prop_assert_eq!(reason, expected);
                    }
                    if next == state {
                        proptest::prop_assert_eq!((state, event), (S::Pending, E::Resend));
                    }
                    state = next;
                }
            }
        }
    }

    /// Time turns PENDING into EXPIRED exactly at the expiry instant, and nothing else.
    #[test]
    fn time_expires_exactly_pending(expire_s in 0i64..4_000_000_000, offset in -1_000_000i64..1_000_000) {
        let expire = chrono::DateTime::from_timestamp(expire_s, 0).expect("in range");
        let now = expire + chrono::TimeDelta::microseconds(offset);
        let observed = S::Pending.observed_at(expire, now);
        proptest::prop_assert_eq!(observed == S::Expired, offset >= 0);
        proptest::prop_assert_eq!(observed == S::Pending, offset < 0);
        for state in all_states().into_iter().filter(|s| *s != S::Pending) {
            proptest::prop_assert_eq!(state.observed_at(expire, now), state);
        }
    }
}

#[test]
fn stored_parts_round_trip() {
    for state in all_states() {
        let reason = state.removal_reason().map(R::as_str);
        assert_eq!(S::from_parts(state.name(), reason), Some(state));
    }
    assert_eq!(S::from_parts("REMOVED", None), None);
    assert_eq!(S::from_parts("LOST", None), None);
}
