//! Reminders: one email to the invitee of a PENDING invitation, the domain's
//! `invitation_reminder_days` before it expires, exactly once across replicas.
//!
//! When an invitation is sent (or resent) its reminder time is fixed from the settings of that
//! moment, as its expiry is. The sweep claims what is due, and each reminder is recorded by a
//! conditional write that only one sweeper can win, in the same transaction as its audit event
//! and its queued email: a crash before the commit leaves it due, a commit sends it once.

use super::lifecycle::{InvitationLetter, audit, language_of_address, new_token};
use super::{App, AppResult};
use crate::domain::audit::actions;
use crate::domain::{Invitation, UserId};
use crate::mail::Template;
use crate::store::Transaction;
use chrono::{DateTime, Utc};

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
            for invitation in due {
                if self.remind(tx.as_mut(), &invitation, now).await? {
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

    /// Reminds the invitee of one due invitation, unless the domain has since turned reminders
    /// or guardian access off (then the reminder is dropped, not kept for later). `false` when
    /// nothing was sent.
    async fn remind(
        &self,
        tx: &mut dyn Transaction,
        due: &Invitation,
        now: DateTime<Utc>,
    ) -> AppResult<bool> {
        let settings = self.settings_via(tx, &due.domain).await?;
        let wanted = settings.invitation_reminder_days > 0 && settings.guardian_access_enabled;
        let (token, token_hash) = new_token();
        let hash = wanted.then_some(token_hash.as_str());
        let Some(reminded) = tx.mark_reminded(due.id, now, hash).await? else {
            // Another sweeper reminded it, or a resend moved its reminder on.
            return Ok(false);
        };
        if !wanted {
            return Ok(false);
        }
        audit(
            tx,
            &reminded,
            actions::INVITATION_REMINDED,
            super::audit::SYSTEM_ACTOR,
            None,
            now,
        )
        .await?;
        let student_name = tx
            .get_user(&reminded.student_id)
            .await?
            .map(|s| s.display_name)
            .unwrap_or_default();
        let inviter_name = match UserId::parse(&reminded.inviter_id) {
            Ok(id) => tx.get_user(&id).await?.map(|u| u.display_name),
            Err(_) => None,
        }
        .unwrap_or_default();
        let locale = language_of_address(tx, &reminded.invited_email).await?;
        self.queue_invitation_mail(
            tx,
            &InvitationLetter {
                template: Template::Reminder,
                settings: &settings,
                invitation: &reminded,
                token: &token,
                student_name: &student_name,
                inviter_name: &inviter_name,
                locale,
            },
            now,
        )
        .await?;
        Ok(true)
    }
}
