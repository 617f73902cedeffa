//! SummaryService: class activity in, preferences, previews and deliveries out, and the
//! unsubscribe link (the one call that needs no bearer token; see `auth::gate`).

mod convert;

use self::convert::{
    activity_from_proto, delivery_to_proto, item_result, preferences_patch, preferences_to_proto,
    preview_to_proto,
};
use super::convert::{frequency_from_proto, frequency_to_proto, missing, parse_field};
use super::guardians::convert::guardian_ref;
use crate::app::{App, DeliveryQuery, PreviewTarget};
use crate::domain::{CourseId, UserId};
use crate::grpc::authorized;
use crate::grpc::status::log_server_errors;
use crate::proto::{self, summary_service_server::SummaryService};
use tonic::{Request, Response, Status};

/// The summary service over the use cases.
#[derive(Debug, Clone)]
pub struct SummariesApi {
    app: App,
}

impl SummariesApi {
    /// Serves `app`.
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl SummaryService for SummariesApi {
    async fn publish_class_activity(
        &self,
        request: Request<proto::PublishClassActivityRequest>,
    ) -> Result<Response<proto::PublishClassActivityResponse>, Status> {
        let who = authorized(&request)?;
        let proto::PublishClassActivityRequest { items } = request.into_inner();
        let items = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| activity_from_proto(i, item))
            .collect();
        let outcomes = self.app.publish_activity(&who, items).await?;
        log_server_errors(outcomes.iter().filter_map(|o| o.as_ref().err()));
        Ok(Response::new(proto::PublishClassActivityResponse {
            results: outcomes
                .into_iter()
                .enumerate()
                .map(|(i, o)| item_result(i, o))
                .collect(),
        }))
    }

    async fn update_course_summary_settings(
        &self,
        request: Request<proto::UpdateCourseSummarySettingsRequest>,
    ) -> Result<Response<proto::UpdateCourseSummarySettingsResponse>, Status> {
        let who = authorized(&request)?;
        let proto::UpdateCourseSummarySettingsRequest {
            course_id,
            guardian_summaries_enabled,
        } = request.into_inner();
        let course = parse_field("course_id", &course_id, CourseId::parse)?;
        let enabled = self
            .app
            .set_course_summaries(&who, &course, guardian_summaries_enabled)
            .await?;
        Ok(Response::new(proto::UpdateCourseSummarySettingsResponse {
            course_id: course.to_string(),
            guardian_summaries_enabled: enabled,
        }))
    }

    async fn get_summary_preferences(
        &self,
        request: Request<proto::GetSummaryPreferencesRequest>,
    ) -> Result<Response<proto::GetSummaryPreferencesResponse>, Status> {
        let who = authorized(&request)?;
        let guardian = guardian_ref(&request.get_ref().guardian_id)?;
        let view = self.app.summary_preferences(&who, &guardian).await?;
        Ok(Response::new(proto::GetSummaryPreferencesResponse {
            preferences: Some(preferences_to_proto(&view)),
        }))
    }

    async fn update_summary_preferences(
        &self,
        request: Request<proto::UpdateSummaryPreferencesRequest>,
    ) -> Result<Response<proto::UpdateSummaryPreferencesResponse>, Status> {
        let who = authorized(&request)?;
        let proto::UpdateSummaryPreferencesRequest {
            preferences,
            update_mask,
        } = request.into_inner();
        let values = preferences.ok_or_else(|| missing("preferences"))?;
        let guardian = guardian_ref(&values.guardian_id)
            .map_err(|e| e.for_field("preferences.guardian_id"))?;
        let patch = preferences_patch(&values, update_mask)?;
        let view = self
            .app
            .update_summary_preferences(&who, &guardian, &patch)
            .await?;
        Ok(Response::new(proto::UpdateSummaryPreferencesResponse {
            preferences: Some(preferences_to_proto(&view)),
        }))
    }

    async fn preview_guardian_summary(
        &self,
        request: Request<proto::PreviewGuardianSummaryRequest>,
    ) -> Result<Response<proto::PreviewGuardianSummaryResponse>, Status> {
        let who = authorized(&request)?;
        let proto::PreviewGuardianSummaryRequest {
            guardian_id,
            student_id,
            frequency,
        } = request.into_inner();
        let target = match (guardian_id.trim().is_empty(), student_id.trim().is_empty()) {
            (false, true) => PreviewTarget::Guardian(guardian_ref(&guardian_id)?),
            (true, false) => {
                PreviewTarget::Student(parse_field("student_id", &student_id, UserId::parse)?)
            }
            _ => {
                return Err(crate::domain::ValidationError::invalid(
                    "guardian_id",
                    "give guardian_id or student_id, not both",
                )
                .into());
            }
        };
        let frequency = match frequency {
            0 => None,
            raw => Some(frequency_from_proto("frequency", raw)?),
        };
        let preview = self.app.preview_summary(&who, &target, frequency).await?;
        Ok(Response::new(preview_to_proto(preview)))
    }

    async fn list_summary_deliveries(
        &self,
        request: Request<proto::ListSummaryDeliveriesRequest>,
    ) -> Result<Response<proto::ListSummaryDeliveriesResponse>, Status> {
        let who = authorized(&request)?;
        let proto::ListSummaryDeliveriesRequest {
            guardian_id,
            page_size,
            page_token,
        } = request.into_inner();
        let query = DeliveryQuery {
            guardian: guardian_ref(&guardian_id)?,
            page_size,
            page_token,
        };
        let page = self.app.list_summary_deliveries(&who, &query).await?;
        Ok(Response::new(proto::ListSummaryDeliveriesResponse {
            deliveries: page.items.iter().map(delivery_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn unsubscribe_from_summaries(
        &self,
        request: Request<proto::UnsubscribeFromSummariesRequest>,
    ) -> Result<Response<proto::UnsubscribeFromSummariesResponse>, Status> {
        // No `authorized`: the link's token in the request is the credential.
        let frequency = self.app.unsubscribe(&request.get_ref().token).await?;
        Ok(Response::new(proto::UnsubscribeFromSummariesResponse {
            frequency: frequency_to_proto(frequency) as i32,
        }))
    }
}
