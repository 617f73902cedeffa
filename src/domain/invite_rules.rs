//! The rules for inviting one more address for a student, decided from the student's
//! invitations (a student has a few dozen at most, so they are read whole).

use super::email::Email;
use super::invitation::{Invitation, InvitationState, RemovalReason};
use chrono::{DateTime, Utc};

/// Declines by one address for one student after which it cannot be invited again.
pub const MAX_DECLINES: i64 = 3;

/// Why an invitation may not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteRefusal {
    /// `TOO_MANY_DECLINES`.
    TooManyDeclines,
    /// `GUARDIAN_ALREADY_LINKED`.
    AlreadyLinked,
    /// `INVITATION_ALREADY_PENDING`.
    AlreadyPending,
    /// `STUDENT_GUARDIAN_LIMIT_REACHED`.
    StudentLimitReached {
        /// The limit.
        limit: i64,
        /// ACCEPTED plus live PENDING invitations.
        current: i64,
    },
}

/// What a student's invitations say about inviting one more address.
#[derive(Debug)]
pub struct InviteFacts<'a> {
    /// PENDING rows of this address whose expiry passed.
    pub stale: Vec<&'a Invitation>,
    /// Times this address declined.
    pub declines: i64,
    /// The address is an accepted guardian (invited or profile address).
    pub linked: bool,
    /// A live PENDING invitation to this address exists.
    pub pending: bool,
    /// ACCEPTED plus live PENDING invitations of the student.
    pub active: i64,
}

impl<'a> InviteFacts<'a> {
    /// The facts about inviting `invited` at `now`, from all of the student's invitations.
    /// `stand_in` is what the address became in invitations past their retention: their
    /// declines still count.
    pub fn of(
        records: &'a [Invitation],
        invited: &Email,
        stand_in: &Email,
        now: DateTime<Utc>,
    ) -> Self {
        let mut facts = Self {
            stale: Vec::new(),
            declines: 0,
            linked: false,
            pending: false,
            active: 0,
        };
        for r in records {
            let observed = r.observed_state(now);
            let same_address = &r.invited_email == invited;
            match observed {
                InvitationState::Accepted => {
                    facts.active += 1;
                    facts.linked |=
                        same_address || r.guardian.as_ref().is_some_and(|g| &g.email == invited);
                }
                InvitationState::Pending => {
                    facts.active += 1;
                    facts.pending |= same_address;
                }
                InvitationState::Expired if same_address && r.state == InvitationState::Pending => {
                    facts.stale.push(r);
                }
                InvitationState::Removed(RemovalReason::Declined)
                    if same_address || &r.invited_email == stand_in =>
                {
                    facts.declines += 1;
                }
                InvitationState::Expired | InvitationState::Removed(_) => {}
            }
        }
        facts
    }

    /// Whether one more invitation to this address is allowed, checked in the order api.md
    /// gives: declines, an existing link, a pending invitation, the student's limit.
    pub fn may_invite(&self, max_guardians: i64) -> Result<(), InviteRefusal> {
        if self.declines >= MAX_DECLINES {
            Err(InviteRefusal::TooManyDeclines)
        } else if self.linked {
            Err(InviteRefusal::AlreadyLinked)
        } else if self.pending {
            Err(InviteRefusal::AlreadyPending)
        } else if self.active >= max_guardians {
            Err(InviteRefusal::StudentLimitReached {
                limit: max_guardians,
                current: self.active,
            })
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(declines: i64, linked: bool, pending: bool, active: i64) -> InviteFacts<'static> {
        InviteFacts {
            stale: Vec::new(),
            declines,
            linked,
            pending,
            active,
        }
    }

    #[test]
    fn refusals_come_in_the_contracts_order() {
        use InviteRefusal as R;
        let cases = [
            (facts(0, false, false, 19), Ok(())),
            (
                facts(0, false, false, 20),
                Err(R::StudentLimitReached {
                    limit: 20,
                    current: 20,
                }),
            ),
            (facts(0, false, true, 20), Err(R::AlreadyPending)),
            (facts(0, true, true, 20), Err(R::AlreadyLinked)),
            (facts(3, true, true, 20), Err(R::TooManyDeclines)),
            (facts(2, false, false, 0), Ok(())),
        ];
        for (facts, want) in cases {
            assert_eq!(facts.may_invite(20), want, "{facts:?}");
        }
    }
}
