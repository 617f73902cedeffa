//! A family of invitations: those to one address for students of one domain, made within a
//! short window, which share one email naming every child and one "accept for all" link.

use super::email::Email;
use super::ids::DomainName;
use chrono::{DateTime, Utc};

/// A family, open for more invitations until `open_until`, then sent once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// Server-assigned id (a UUID).
    pub id: String,
    /// The students' domain.
    pub domain: DomainName,
    /// The address every invitation of the family goes to.
    pub invited_email: Email,
    /// Who made its first invitation; the email names them.
    pub inviter_id: String,
    /// Invitations made before this join it; from then on the upkeep sends its email.
    pub open_until: DateTime<Utc>,
    /// When opened.
    pub create_time: DateTime<Utc>,
    /// When its email was queued; `None` while open.
    pub sent_time: Option<DateTime<Utc>>,
}

impl Family {
    /// A family opened now by the first of its invitations, open for `window`.
    pub fn open(
        domain: DomainName,
        invited_email: Email,
        inviter_id: String,
        now: DateTime<Utc>,
        window: chrono::TimeDelta,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            domain,
            invited_email,
            inviter_id,
            open_until: now + window,
            create_time: now,
            sent_time: None,
        }
    }

    /// Whether an invitation made at `now` may still join it.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.sent_time.is_none() && now < self.open_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    #[test]
    fn a_family_takes_invitations_until_its_window_closes_or_it_is_sent() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap();
        let mut family = Family::open(
            DomainName::parse("school.example").unwrap(),
            Email::parse("parent@example.org").unwrap(),
            "t1".into(),
            now,
            TimeDelta::seconds(60),
        );
        assert!(family.is_open(now));
        assert!(family.is_open(now + TimeDelta::seconds(59)));
        assert!(!family.is_open(now + TimeDelta::seconds(60)));
        family.sent_time = Some(now);
        assert!(!family.is_open(now));
    }
}
