//! Family invitations: invitations to one address for students of one domain, made within
//! `family_window` of the first (by one call with several students, by separate calls, or by
//! rows of a bulk call), go out as one email naming every child, with one link that accepts
//! them all and a link per child to say "I am not the guardian of this one".
//!
//! An invitation joins its address's open family when it is written (under the address lock
//! every invitation takes, so two writers never open two families for one address), and no
//! email is queued then. When the window closes, the upkeep claims the family and queues its
//! one email in the same transaction as the mark that it was sent: a conditional write only one
//! replica can win. Each invitation keeps its own states, limits, expiry and events.

use super::lifecycle::{InvitationLetter, family_message, language_of_address, new_token};
use super::{App, AppResult};
use crate::domain::{Email, Family, Invitation, InvitationState, UserId};
use crate::mail::Template;
use crate::store::Transaction;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// The open families of the addresses a write invites, and those it opens: each new invitation
/// joins its address's family in the domain, or opens one. The caller holds the lock of every
/// address (so two writers never open two families for one address) and queues no email for
/// them: the family's email comes when its window closes.
pub(crate) struct Families {
    window: chrono::TimeDelta,
    open: HashMap<(String, Email), String>,
    opened: Vec<Family>,
}

impl Families {
    /// Reads the families still open at `now` for `emails`; `None` when families are off.
    pub(crate) async fn load(
        app: &App,
        tx: &mut dyn Transaction,
        emails: &[Email],
        now: DateTime<Utc>,
    ) -> AppResult<Option<Self>> {
        if !app.families_on() {
            return Ok(None);
        }
        let open = tx
            .open_families(emails, now)
            .await?
            .into_iter()
            .map(|f| ((f.domain.to_string(), f.invited_email), f.id))
            .collect();
        Ok(Some(Self {
            window: chrono::TimeDelta::from_std(app.config.family_window)
                .unwrap_or(chrono::TimeDelta::MAX),
            open,
            opened: Vec::new(),
        }))
    }

    /// Puts `invitation` (new, not yet stored) into its family.
    pub(crate) fn join(&mut self, invitation: &mut Invitation, now: DateTime<Utc>) {
        let key = (
            invitation.domain.to_string(),
            invitation.invited_email.clone(),
        );
        let id = self.open.entry(key).or_insert_with(|| {
            let family = Family::open(
                invitation.domain.clone(),
                invitation.invited_email.clone(),
                invitation.inviter_id.clone(),
                now,
                self.window,
            );
            let id = family.id.clone();
            self.opened.push(family);
            id
        });
        invitation.family_id = Some(id.clone());
    }

    /// Stores the families this write opened (before its invitations, which name them).
    pub(crate) async fn store(self, tx: &mut dyn Transaction) -> AppResult<()> {
        tx.insert_families(&self.opened).await?;
        Ok(())
    }
}

impl App {
    /// Whether invitations gather into families (a non-zero window).
    pub(crate) fn families_on(&self) -> bool {
        !self.config.family_window.is_zero()
    }

    /// Queues the email of every family whose window has closed, `batch` families per
    /// transaction; returns how many families were sent an email.
    pub(crate) async fn send_due_families(&self, batch: u32) -> AppResult<usize> {
        let mut sent = 0;
        loop {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let due = tx.claim_due_families(now, batch).await?;
            if due.is_empty() {
                break;
            }
            let claimed = due.len();
            for family in &due {
                if self.send_family(tx.as_mut(), family, now).await? {
                    sent += 1;
                }
            }
            tx.commit().await?;
            if claimed < batch as usize {
                break;
            }
        }
        Ok(sent)
    }

    /// One family's email: the invitation email itself for a family of one, else the family
    /// email; nothing when none of its invitations is still PENDING (all cancelled, say). Every
    /// invitation gets a fresh token: the first ones never left the server.
    async fn send_family(
        &self,
        tx: &mut dyn Transaction,
        family: &Family,
        now: DateTime<Utc>,
    ) -> AppResult<bool> {
        let waiting: Vec<Invitation> = tx
            .family_invitations(&family.id)
            .await?
            .into_iter()
            .filter(|i| i.observed_state(now) == InvitationState::Pending)
            .collect();
        let (family_token, family_hash) = new_token();
        let hash = (waiting.len() > 1).then_some(family_hash.as_str());
        if !tx.mark_family_sent(&family.id, now, hash).await? || waiting.is_empty() {
            return Ok(false);
        }
        let settings = self.settings_via(tx, &family.domain).await?;
        let inviter_name = match UserId::parse(&family.inviter_id) {
            Ok(id) => tx.get_user(&id).await?.map(|u| u.display_name),
            Err(_) => None,
        }
        .unwrap_or_default();
        let locale = language_of_address(tx, &family.invited_email).await?;
        let mut children = Vec::with_capacity(waiting.len());
        for invitation in &waiting {
            let (token, hash) = new_token();
            tx.replace_token_hash(invitation.id, &hash).await?;
            let name = tx
                .get_user(&invitation.student_id)
                .await?
                .map(|s| s.display_name)
                .unwrap_or_default();
            children.push((invitation, name, token));
        }
        if let [(invitation, student_name, token)] = children.as_slice() {
            self.queue_invitation_mail(
                tx,
                &InvitationLetter {
                    template: Template::Invitation,
                    settings: &settings,
                    invitation,
                    token,
                    student_name,
                    inviter_name: &inviter_name,
                    locale,
                },
                now,
            )
            .await?;
            return Ok(true);
        }
        let base = self.config.accept_url.trim_end_matches('/');
        let message = family_message(
            &settings,
            family,
            &inviter_name,
            &format!("{base}/accept?token={family_token}"),
            &children
                .iter()
                .map(|(invitation, name, token)| {
                    (
                        name.clone(),
                        format!("{base}/decline?token={token}"),
                        invitation.expire_time,
                    )
                })
                .collect::<Vec<_>>(),
            locale,
            now,
        )?;
        if let Some(message) = message {
            tx.enqueue_message(&message).await?;
        }
        Ok(true)
    }
}
