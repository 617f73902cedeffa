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

use super::lifecycle::{Addressees, InvitationLetter, family_message, new_token};
use super::{App, AppResult};
use crate::domain::{Email, Family, Invitation, InvitationState};
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
            sent += self.send_families(tx.as_mut(), due, now).await?;
            tx.commit().await?;
            if claimed < batch as usize {
                break;
            }
        }
        Ok(sent)
    }

    /// The emails of a batch of families, set-based: a handful of statements whatever the
    /// batch's size (a bulk import closes thousands of families at once). A family of one gets
    /// the invitation email itself, a larger one the family email; one with no invitation
    /// still PENDING (all cancelled, say) gets none. Every invitation gets a fresh token: the
    /// first ones never left the server.
    async fn send_families(
        &self,
        tx: &mut dyn Transaction,
        due: Vec<Family>,
        now: DateTime<Utc>,
    ) -> AppResult<usize> {
        let ids: Vec<String> = due.iter().map(|f| f.id.clone()).collect();
        // Another sender may have marked some first (SQLite takes no row locks).
        let marked: std::collections::HashSet<String> = tx
            .mark_families_sent(&ids, now)
            .await?
            .into_iter()
            .collect();
        let families: Vec<Family> = due.into_iter().filter(|f| marked.contains(&f.id)).collect();
        let mut waiting: HashMap<String, Vec<Invitation>> = HashMap::new();
        for invitation in tx.family_invitations(&ids).await? {
            if invitation.observed_state(now) == InvitationState::Pending
                && let Some(family) = invitation.family_id.clone()
            {
                waiting.entry(family).or_default().push(invitation);
            }
        }
        // Everyone the emails name, and the addressees' languages, read once.
        let addresses: Vec<Email> = families.iter().map(|f| f.invited_email.clone()).collect();
        let people = waiting
            .values()
            .flatten()
            .map(|i| i.student_id.as_str())
            .chain(families.iter().map(|f| f.inviter_id.as_str()));
        let known = Addressees::read(tx, people, &addresses).await?;
        let base = self.config.accept_url.trim_end_matches('/').to_owned();
        let (mut tokens, mut messages, mut sent) = (Vec::new(), Vec::new(), 0);
        for family in &families {
            let Some(members) = waiting.get(&family.id) else {
                continue;
            };
            let settings = self.settings_via(tx, &family.domain).await?;
            let inviter_name = known.name(&family.inviter_id);
            let locale = known.language(&family.invited_email);
            let mut children = Vec::with_capacity(members.len());
            for invitation in members {
                let (token, hash) = new_token();
                tokens.push((invitation.id, hash));
                children.push((
                    invitation,
                    known.name(invitation.student_id.as_str()),
                    token,
                ));
            }
            let message = if let [(invitation, student_name, token)] = children.as_slice() {
                self.invitation_message(
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
                )?
            } else {
                let (family_token, family_hash) = new_token();
                tx.set_family_token(&family.id, &family_hash).await?;
                family_message(
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
                )?
            };
            messages.extend(message);
            sent += 1;
        }
        tx.replace_token_hashes(&tokens).await?;
        tx.enqueue_messages(&messages).await?;
        Ok(sent)
    }
}
