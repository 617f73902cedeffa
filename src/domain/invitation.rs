//! The invitation lifecycle as one pure transition function. An ACCEPTED invitation is the
//! guardian link; every (state, event) pair is decided here and nowhere else.

use chrono::{DateTime, Utc};

/// Why an invitation or link ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemovalReason {
    /// A manager cancelled the pending invitation.
    Cancelled,
    /// The invitee said "I am not the guardian".
    Declined,
    /// A manager or the guardian removed the link.
    GuardianRemoved,
    /// The student left the directory.
    StudentRemoved,
}

impl RemovalReason {
    /// Every reason, for exhaustive tests.
    pub const ALL: [Self; 4] = [
        Self::Cancelled,
        Self::Declined,
        Self::GuardianRemoved,
        Self::StudentRemoved,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cancelled => "CANCELLED",
            Self::Declined => "DECLINED",
            Self::GuardianRemoved => "GUARDIAN_REMOVED",
            Self::StudentRemoved => "STUDENT_REMOVED",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// Where an invitation is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvitationState {
    /// Waiting for the invitee.
    Pending,
    /// Accepted: the guardian link exists.
    Accepted,
    /// Nobody answered in time.
    Expired,
    /// Ended, for the reason held.
    Removed(RemovalReason),
}

impl InvitationState {
    /// The stored and wire name of the state (without the removal reason).
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Accepted => "ACCEPTED",
            Self::Expired => "EXPIRED",
            Self::Removed(_) => "REMOVED",
        }
    }

    /// The removal reason, for REMOVED.
    pub fn removal_reason(self) -> Option<RemovalReason> {
        match self {
            Self::Removed(reason) => Some(reason),
            Self::Pending | Self::Accepted | Self::Expired => None,
        }
    }

    /// Rebuilds a state from its stored parts.
    pub fn from_parts(name: &str, reason: Option<&str>) -> Option<Self> {
        match name {
            "PENDING" => Some(Self::Pending),
            "ACCEPTED" => Some(Self::Accepted),
            "EXPIRED" => Some(Self::Expired),
            "REMOVED" => reason.and_then(RemovalReason::from_name).map(Self::Removed),
            _ => None,
        }
    }

    /// The state a reader must see at `now`: a PENDING invitation past its expiry is EXPIRED,
    /// whether or not the sweeper has written that yet.
    pub fn observed_at(self, expire_time: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        match self {
            Self::Pending if now >= expire_time => Self::Expired,
            other => other,
        }
    }
}

/// Something that happens to an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvitationEvent {
    /// The invitee accepts with the token.
    Accept,
    /// The invitee declines with the token.
    Decline,
    /// A manager cancels.
    Cancel,
    /// A manager sends it again (new token, new expiry).
    Resend,
    /// The expiry time passed.
    Expire,
    /// A manager or the guardian removes the link.
    DeleteGuardian,
    /// The student was deleted from the directory.
    RemoveStudent,
}

impl InvitationEvent {
    /// Every event, for exhaustive tests.
    pub const ALL: [Self; 7] = [
        Self::Accept,
        Self::Decline,
        Self::Cancel,
        Self::Resend,
        Self::Expire,
        Self::DeleteGuardian,
        Self::RemoveStudent,
    ];
}

impl InvitationEvent {
    /// The audit trail's name for this event.
    pub fn audit_action(self) -> &'static str {
        match self {
            Self::Accept => "invitation.accepted",
            Self::Decline => "invitation.declined",
            Self::Cancel => "invitation.cancelled",
            Self::Resend => "invitation.resent",
            Self::Expire => "invitation.expired",
            Self::DeleteGuardian => "guardian.removed",
            Self::RemoveStudent => "student.removed",
        }
    }
}

/// A transition the lifecycle does not allow; both are FAILED_PRECONDITION to a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionError {
    /// `INVITATION_NOT_PENDING`: the state does not allow the event.
    NotPending,
    /// `INVITATION_EXPIRED`: accept or decline after the expiry time.
    Expired,
}

/// The lifecycle: the state after `event` happens in `state`, or why it cannot. Callers pass the
/// *observed* state (see [`InvitationState::observed_at`]) so that time is accounted for.
pub fn transition(
    state: InvitationState,
    event: InvitationEvent,
) -> Result<InvitationState, TransitionError> {
    use InvitationEvent as E;
    use InvitationState as S;
    match (state, event) {
        (S::Pending, E::Accept) => Ok(S::Accepted),
        (S::Pending, E::Decline) => Ok(S::Removed(RemovalReason::Declined)),
        (S::Pending, E::Cancel) => Ok(S::Removed(RemovalReason::Cancelled)),
        (S::Pending, E::Resend) => Ok(S::Pending),
        (S::Pending, E::Expire) => Ok(S::Expired),
        (S::Pending, E::RemoveStudent) => Ok(S::Removed(RemovalReason::StudentRemoved)),
        (S::Pending, E::DeleteGuardian) => Err(TransitionError::NotPending),

        (S::Accepted, E::DeleteGuardian) => Ok(S::Removed(RemovalReason::GuardianRemoved)),
        (S::Accepted, E::RemoveStudent) => Ok(S::Removed(RemovalReason::StudentRemoved)),
        (S::Accepted, E::Accept | E::Decline | E::Cancel | E::Resend | E::Expire) => {
            Err(TransitionError::NotPending)
        }

        // The invitee who comes too late is told so, not that the invitation is "not pending".
        (S::Expired, E::Accept | E::Decline) => Err(TransitionError::Expired),
        (S::Expired, E::Cancel | E::Resend | E::Expire | E::DeleteGuardian | E::RemoveStudent) => {
            Err(TransitionError::NotPending)
        }

        (
            S::Removed(_),
            E::Accept
            | E::Decline
            | E::Cancel
            | E::Resend
            | E::Expire
            | E::DeleteGuardian
            | E::RemoveStudent,
        ) => Err(TransitionError::NotPending),
    }
}

#[cfg(test)]
mod tests {
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
                E::DeleteGuardian => Err(T::NotPending),
            },
            S::Accepted => match event {
                E::DeleteGuardian => Ok(S::Removed(R::GuardianRemoved)),
                E::RemoveStudent => Ok(S::Removed(R::StudentRemoved)),
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
        assert_eq!(pairs, 7 * 7);
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
}
