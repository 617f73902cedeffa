//! Positions in the change feed and the consistency tokens that carry them (freshness.md).
//!
//! A change's position is its revision (on Postgres the id of the transaction that wrote it, on
//! SQLite its event id) and then its event id, so the changes of one transaction keep their
//! order. A reader only ever returns changes below a *watermark*: a revision under which every
//! transaction has finished. That is what makes the feed gap-free under concurrent writers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Where a change sits in the feed, or where a reader stands: "every change up to here".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The writing transaction's revision.
    pub revision: i64,
    /// The event's id within its revision.
    pub event: i64,
}

/// The first byte of a token: its format, so that a later format can be told apart.
const TOKEN_FORMAT: u8 = 1;

impl Position {
    /// Before every change.
    pub const ORIGIN: Self = Self {
        revision: i64::MIN,
        event: i64::MIN,
    };

    /// The position after every change of every revision below `watermark`.
    pub fn below(watermark: i64) -> Self {
        Self {
            revision: watermark.saturating_sub(1),
            event: i64::MAX,
        }
    }

    /// The watermark a reader needs to have passed to include everything up to here: every
    /// revision up to and including this one finished.
    pub fn needed_watermark(self) -> i64 {
        self.revision.saturating_add(1)
    }

    /// The opaque token form: a format byte, then both numbers, base64url.
    pub fn to_token(self) -> String {
        let mut bytes = Vec::with_capacity(17);
        bytes.push(TOKEN_FORMAT);
        bytes.extend_from_slice(&self.revision.to_be_bytes());
        bytes.extend_from_slice(&self.event.to_be_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads a token; `None` for anything this build did not make.
    pub fn from_token(token: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let (&format, rest) = bytes.split_first()?;
        if format != TOKEN_FORMAT || rest.len() != 16 {
            return None;
        }
        let (revision, event) = rest.split_at(8);
        Some(Self {
            revision: i64::from_be_bytes(revision.try_into().ok()?),
            event: i64::from_be_bytes(event.try_into().ok()?),
        })
    }
}

/// What a change in the feed means to a consumer that keeps a copy of the links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// An invitation was accepted: the guardian is now linked.
    LinkAdded,
    /// A link was removed.
    LinkRemoved,
    /// An invitation was created, resent, declined, cancelled or expired.
    InvitationChanged,
    /// The student left the directory; their invitations and links are gone.
    StudentRemoved,
    /// The domain's settings changed (access, who manages, limits).
    SettingsChanged,
}

impl ChangeKind {
    /// The kind of an audit action; `None` for changes the feed does not carry (directory and
    /// class summaries: they change no link).
    pub fn of_action(action: &str) -> Option<Self> {
        Some(match action {
            "invitation.accepted" => Self::LinkAdded,
            // An erased guardian's pending invitations end the same way: nothing to keep.
            "guardian.removed" | "guardian.erased" => Self::LinkRemoved,
            "student.removed" => Self::StudentRemoved,
            "invitation.created"
            | "invitation.declined"
            | "invitation.cancelled"
            | "invitation.resent"
            | "invitation.expired" => Self::InvitationChanged,
            super::audit::actions::SETTINGS_UPDATED => Self::SettingsChanged,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::InvitationEvent;

    #[test]
    fn tokens_round_trip_and_reject_what_they_did_not_make() {
        for position in [
            Position::ORIGIN,
            Position::below(0),
            Position::below(i64::MAX),
            Position {
                revision: 812_334,
                event: 17,
            },
        ] {
            assert_eq!(Position::from_token(&position.to_token()), Some(position));
        }
        let token = Position::below(10).to_token();
        assert_eq!(Position::from_token(&token[1..]), None, "cut short");
        assert_eq!(Position::from_token("not base64!"), None);
        assert_eq!(Position::from_token(""), None);
        let mut other_format = URL_SAFE_NO_PAD.decode(&token).unwrap();
        other_format[0] = 2;
        assert_eq!(
            Position::from_token(&URL_SAFE_NO_PAD.encode(other_format)),
            None
        );
    }

    #[test]
    fn positions_order_by_revision_then_event() {
        let a = Position {
            revision: 5,
            event: 900,
        };
        let b = Position {
            revision: 6,
            event: 1,
        };
        assert!(
            a < b,
            "a later transaction's change comes after, whatever its id"
        );
        assert!(Position::below(6) > a && Position::below(6) < b);
        assert_eq!(a.needed_watermark(), 6);
        assert!(Position::below(a.needed_watermark()) >= a);
    }

    #[test]
    fn every_invitation_transition_has_a_kind() {
        for event in InvitationEvent::ALL {
            assert!(
                ChangeKind::of_action(event.audit_action()).is_some(),
                "{event:?}"
            );
        }
        assert_eq!(
            ChangeKind::of_action("invitation.created"),
            Some(ChangeKind::InvitationChanged)
        );
        assert_eq!(
            ChangeKind::of_action(super::super::audit::actions::USERS_UPSERTED),
            None
        );
    }
}
