//! Reminders: one email to the invitee of a PENDING invitation, the domain's
//! `invitation_reminder_days` before it expires, exactly once across replicas.
//!
//! When an invitation is sent (or resent) its reminder time is fixed from the settings of that
//! moment, as its expiry is. The sweep claims what is due, and the batch's reminders are recorded
//! by a conditional write that only one sweeper can win for each, in the same transaction as
//! their audit events and queued emails: a crash before the commit leaves them due, a commit
//! sends each once.

use super::lifecycle::{Addressees, InvitationLetter, audit_event, new_token};
use super::{App, AppResult};
use crate::domain::audit::actions;
use crate::domain::{DomainName, DomainSettings, Email, Invitation, InvitationId};
use crate::mail::Template;
use crate::store::Transaction;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

impl App {
    /// Sends the reminders due now, `batch` per transaction; returns how many went out.
    pub(crate) async fn send_due_reminders(&self, batch: u32) -> AppResult<usize> {
        let mut sent = 0;
        loop {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let due = tx.claim_due_reminders(now, batch).await?;
            if due.is_empty() {
                break;
            }
            let claimed = due.len();
            sent += self.remind(tx.as_mut(), due, now).await?;
            tx.commit().await?;
            if claimed < batch as usize {
                break;
            }
        }
        Ok(sent)
    }

    /// Reminds the invitees of a batch of due invitations, set-based (the reminders of a bulk
    /// import all fall due on one day): a handful of statements whatever the batch's size. A
    /// domain that has since turned reminders or guardian access off gets none (the reminder is
    /// dropped, not kept for later). Returns how many went out.
    async fn remind(
        &self,
        tx: &mut dyn Transaction,
        due: Vec<Invitation>,
        now: DateTime<Utc>,
    ) -> AppResult<usize> {
        let mut tokens: HashMap<InvitationId, String> = HashMap::new();
        let mut marks = Vec::with_capacity(due.len());
        let mut settings_of: HashMap<DomainName, DomainSettings> = HashMap::new();
        for invitation in &due {
            if !settings_of.contains_key(&invitation.domain) {
                let settings = self.settings_via(tx, &invitation.domain).await?;
                settings_of.insert(invitation.domain.clone(), settings);
            }
            let settings = &settings_of[&invitation.domain];
            let wanted = settings.invitation_reminder_days > 0 && settings.guardian_access_enabled;
            let hash = if wanted {
                let (token, hash) = new_token();
                tokens.insert(invitation.id, token);
                Some(hash)
            } else {
                None
            };
            marks.push((invitation.id, hash));
        }
        // Those another sweeper reminded, or a resend moved on, are not among these.
        let reminded: Vec<Invitation> = tx
            .mark_reminded(&marks, now)
            .await?
            .into_iter()
            .filter(|i| tokens.contains_key(&i.id))
            .collect();
        let addresses: Vec<Email> = reminded.iter().map(|i| i.invited_email.clone()).collect();
        let people = reminded
            .iter()
            .flat_map(|i| [i.student_id.as_str(), i.inviter_id.as_str()]);
        let known = Addressees::read(tx, people, &addresses).await?;
        let (mut events, mut messages) = (Vec::new(), Vec::new());
        for invitation in &reminded {
            let settings = &settings_of[&invitation.domain];
            events.push(audit_event(
                invitation,
                actions::INVITATION_REMINDED,
                super::audit::SYSTEM_ACTOR,
                None,
                now,
            ));
            let message = self.invitation_message(
                &InvitationLetter {
                    template: Template::Reminder,
                    settings,
                    invitation,
                    token: &tokens[&invitation.id],
                    student_name: &known.name(invitation.student_id.as_str()),
                    inviter_name: &known.name(&invitation.inviter_id),
                    locale: known.language(&invitation.invited_email),
                },
                now,
            )?;
            messages.extend(message);
        }
        tx.append_events(&events).await?;
        tx.enqueue_messages(&messages).await?;
        Ok(reminded.len())
    }
}
