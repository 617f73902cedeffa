//! A person's rights over what the service holds about them (PrivacyService): gathering every
//! record about one guardian or student that the caller may see, its export, and its erasure.
//! An administrator sees and erases their own domain's records; records kept per person rather
//! than per domain (summary preferences and deliveries, address locks) only when every record
//! of the person is in the caller's domains.

mod document;
mod erase;
mod gather;

pub use document::{ExportFormat, Exported};
pub use erase::Erased;
pub use gather::PersonSelector;

use super::access::require;
use super::directory::directory_event;
use super::{App, AppError, AppResult, Missing};
use crate::auth::Authorized;
use crate::domain::AuditDetails;
use crate::domain::audit::actions;
use crate::domain::policy::Permission;

impl App {
    /// ExportPersonData: every record about the person the caller may see, as one document.
    /// The export is audited (in each domain it read from, with counts only).
    pub async fn export_person(
        &self,
        who: &Authorized,
        person: &PersonSelector,
        format: ExportFormat,
    ) -> AppResult<Exported> {
        let caller = require(who, Permission::PrivacyAdmin)?;
        let mut session = self.store.session().await?;
        let records = gather::gather(session.as_mut(), caller, person).await?;
        drop(session);
        if records.is_empty() {
            return Err(AppError::NotFound(Missing::Person));
        }
        let now = self.clock.now();
        let exported = document::render(person, &records, format, now)?;
        let mut tx = self.store.begin().await?;
        for domain in records.domains() {
            let details = AuditDetails::counts([
                ("invitations", records.invitations.len() as i64),
                ("events", records.events.len() as i64),
                ("messages", records.messages.len() as i64),
                ("summary_deliveries", records.deliveries.len() as i64),
            ]);
            let event = directory_event(&domain, actions::PERSON_EXPORTED, caller, details, now);
            tx.append_event(&event).await?;
        }
        tx.commit().await?;
        let rows = records
            .invitations
            .iter()
            .map(|i| (&i.domain, &i.student_id));
        self.note_address_reads(caller, "ExportPersonData", rows)
            .await?;
        metrics::counter!("guardians_privacy_requests_total", "request" => "export").increment(1);
        Ok(exported)
    }
}
