//! PrivacyService: a person's export, streamed in chunks, and their erasure.

use super::convert::{missing, parse_field, scoped, stamped, timestamp};
use super::guardians::convert::{request_key, respond};
use crate::app::{AccessQuery, App, Erased, ExportFormat, PersonSelector};
use crate::domain::{AccessRecord, DomainName, Email, UserId, ValidationError};
use crate::grpc::authorized;
use crate::proto::{self, person_selector::Person, privacy_service_server::PrivacyService};
use futures_util::Stream;
use prost::Message;
use std::pin::Pin;
use tonic::{Request, Response, Status};

/// Most bytes of the export in one message.
const CHUNK: usize = 64 * 1024;

/// The stream of one export.
pub type ExportStream =
    Pin<Box<dyn Stream<Item = Result<proto::ExportPersonDataResponse, Status>> + Send>>;

/// The privacy service over the use cases.
#[derive(Debug, Clone)]
pub struct PrivacyApi {
    app: App,
}

impl PrivacyApi {
    /// Serves `app`.
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl PrivacyService for PrivacyApi {
    type ExportPersonDataStream = ExportStream;

    async fn export_person_data(
        &self,
        request: Request<proto::ExportPersonDataRequest>,
    ) -> Result<Response<Self::ExportPersonDataStream>, Status> {
        let who = authorized(&request)?;
        let proto::ExportPersonDataRequest { person, format } = request.into_inner();
        let person = person_selector(person)?;
        let format = match proto::ExportFormat::try_from(format) {
            Ok(proto::ExportFormat::Unspecified | proto::ExportFormat::Json) => ExportFormat::Json,
            Ok(proto::ExportFormat::CsvZip) => ExportFormat::CsvZip,
            Err(_) => {
                return Err(ValidationError::invalid("format", "unknown export format").into());
            }
        };
        let exported = self.app.export_person(&who, &person, format).await?;
        // The whole export is built before the first message: an error is the call's status,
        // never a stream cut halfway through a file.
        let mut messages: Vec<Result<proto::ExportPersonDataResponse, Status>> = exported
            .bytes
            .chunks(CHUNK)
            .map(|chunk| {
                Ok(proto::ExportPersonDataResponse {
                    data: chunk.to_vec(),
                    ..Default::default()
                })
            })
            .collect();
        // The first message names the export (a document is never empty, so there is one).
        if let Some(Ok(first)) = messages.first_mut() {
            first.content_type = exported.content_type.into();
            first.file_name = exported.file_name;
        }
        Ok(Response::new(Box::pin(futures_util::stream::iter(
            messages,
        ))))
    }

    async fn erase_person_data(
        &self,
        request: Request<proto::ErasePersonDataRequest>,
    ) -> Result<Response<proto::ErasePersonDataResponse>, Status> {
        scoped(async move {
            let who = authorized(&request)?;
            let req = request.into_inner();
            let proto::ErasePersonDataRequest { person, request_id } = &req;
            let key = request_key(&who, "ErasePersonData", request_id, &req)?;
            let person = person_selector(person.clone())?;
            let result = self
                .app
                .erase_person(&who, &person, key.as_ref(), &|e| {
                    erased_to_proto(e).encode_to_vec()
                })
                .await?;
            stamped(&self.app, respond(result, erased_to_proto)?).await
        })
        .await
    }

    async fn list_access_records(
        &self,
        request: Request<proto::ListAccessRecordsRequest>,
    ) -> Result<Response<proto::ListAccessRecordsResponse>, Status> {
        let who = authorized(&request)?;
        let proto::ListAccessRecordsRequest {
            domain,
            student_id,
            page_size,
            page_token,
        } = request.into_inner();
        let query = AccessQuery {
            domain: parse_field("domain", &domain, DomainName::parse)?,
            student: if student_id.trim().is_empty() {
                None
            } else {
                Some(parse_field("student_id", student_id.trim(), UserId::parse)?)
            },
            page_size,
            page_token,
        };
        let page = self.app.list_access_records(&who, query).await?;
        Ok(Response::new(proto::ListAccessRecordsResponse {
            access_records: page.records.iter().map(access_record_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

fn access_record_to_proto(record: &AccessRecord) -> proto::AccessRecord {
    proto::AccessRecord {
        record_id: record.record_id,
        domain: record.domain.to_string(),
        caller: record.caller.clone(),
        caller_role: record.caller_role.as_str().into(),
        method: record.method.clone(),
        student_id: record
            .student_id
            .as_ref()
            .map(UserId::to_string)
            .unwrap_or_default(),
        row_count: i32::try_from(record.rows).unwrap_or(i32::MAX),
        create_time: Some(timestamp(record.create_time)),
    }
}

fn erased_to_proto(erased: &Erased) -> proto::ErasePersonDataResponse {
    proto::ErasePersonDataResponse {
        links_removed: erased.links_removed as i32,
        invitations_cancelled: erased.invitations_cancelled as i32,
        invitations_anonymised: erased.invitations_anonymised as i32,
        messages_cancelled: erased.messages_cancelled as i32,
        already_erased: erased.already_erased,
        consistency_token: String::new(),
    }
}

fn person_selector(
    person: Option<proto::PersonSelector>,
) -> Result<PersonSelector, ValidationError> {
    match person.and_then(|p| p.person) {
        None => Err(missing("person")),
        Some(Person::GuardianId(id)) => parse_field("person.guardian_id", id.trim(), UserId::parse)
            .map(PersonSelector::Guardian),
        Some(Person::GuardianEmailAddress(email)) => {
            parse_field("person.guardian_email_address", &email, Email::parse)
                .map(PersonSelector::GuardianEmail)
        }
        Some(Person::StudentId(id)) => {
            parse_field("person.student_id", id.trim(), UserId::parse).map(PersonSelector::Student)
        }
    }
}
