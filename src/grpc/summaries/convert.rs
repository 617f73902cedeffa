//! Proto <-> domain for SummaryService: activity items, preferences and their mask, previews
//! and delivery records.

use crate::app::{ItemOutcome, PreferencesView, SummaryPreview};
use crate::domain::summary::schedule::{parse_weekday, parse_zone, weekday_name};
use crate::domain::summary::{
    ActivityItem, Announcement, CourseWork, ItemState, PreferencesPatch, Submission,
    SubmissionState, SummaryDelivery, SummaryOutcome,
};
use crate::domain::{CourseId, Locale, UserId, ValidationError};
use crate::grpc::convert::{
    frequency_from_proto, frequency_to_proto, instant, missing, parse_field, timestamp,
};
use crate::grpc::status::error_fields;
use crate::proto;
use chrono::{DateTime, Utc};

/// One item of a PublishClassActivity request; errors name the item's fields by index.
pub(super) fn activity_from_proto(
    index: usize,
    item: proto::ActivityItem,
) -> Result<ActivityItem, ValidationError> {
    use proto::activity_item::Item;
    let at = |field: &str| format!("items[{index}].{field}");
    match item
        .item
        .ok_or_else(|| missing(&format!("items[{index}].item")))?
    {
        Item::CourseWork(w) => Ok(ActivityItem::CourseWork(CourseWork {
            course_id: parse_field(&at("course_work.course_id"), &w.course_id, CourseId::parse)?,
            course_work_id: w.course_work_id,
            title: w.title,
            due_time: w
                .due_time
                .map(|t| instant(&at("course_work.due_time"), t))
                .transpose()?,
            state: item_state(&at("course_work.state"), w.state)?,
            update_time: required_instant(&at("course_work.update_time"), w.update_time)?,
            publish_time: None,
        })),
        Item::Submission(s) => Ok(ActivityItem::Submission(Submission {
            course_id: parse_field(&at("submission.course_id"), &s.course_id, CourseId::parse)?,
            course_work_id: s.course_work_id,
            student_id: parse_field(&at("submission.student_id"), &s.student_id, UserId::parse)?,
            state: submission_state(&at("submission.state"), s.state)?,
            update_time: required_instant(&at("submission.update_time"), s.update_time)?,
        })),
        Item::Announcement(a) => Ok(ActivityItem::Announcement(Announcement {
            course_id: parse_field(&at("announcement.course_id"), &a.course_id, CourseId::parse)?,
            announcement_id: a.announcement_id,
            text: a.text,
            state: item_state(&at("announcement.state"), a.state)?,
            update_time: required_instant(&at("announcement.update_time"), a.update_time)?,
            publish_time: None,
        })),
    }
}

fn item_state(field: &str, raw: i32) -> Result<ItemState, ValidationError> {
    match proto::ActivityState::try_from(raw) {
        Ok(proto::ActivityState::Published) => Ok(ItemState::Published),
        Ok(proto::ActivityState::Deleted) => Ok(ItemState::Deleted),
        Ok(proto::ActivityState::Unspecified) | Err(_) => Err(ValidationError::invalid(
            field,
            "state must be PUBLISHED or DELETED",
        )),
    }
}

fn submission_state(field: &str, raw: i32) -> Result<SubmissionState, ValidationError> {
    use proto::SubmissionState as P;
    match P::try_from(raw) {
        Ok(P::Assigned) => Ok(SubmissionState::Assigned),
        Ok(P::TurnedIn) => Ok(SubmissionState::TurnedIn),
        Ok(P::Returned) => Ok(SubmissionState::Returned),
        Ok(P::Excused) => Ok(SubmissionState::Excused),
        Ok(P::Unspecified) | Err(_) => Err(ValidationError::invalid(
            field,
            "state must be ASSIGNED, TURNED_IN, RETURNED or EXCUSED",
        )),
    }
}

fn required_instant(
    field: &str,
    raw: Option<prost_types::Timestamp>,
) -> Result<DateTime<Utc>, ValidationError> {
    instant(field, raw.ok_or_else(|| missing(field))?)
}

/// The result of one published item.
pub(super) fn item_result(index: usize, outcome: ItemOutcome) -> proto::ActivityItemResult {
    match outcome {
        Ok(applied) => proto::ActivityItemResult {
            index: index as i32,
            applied,
            ..Default::default()
        },
        Err(err) => {
            let (code, reason, message) = error_fields(err);
            proto::ActivityItemResult {
                index: index as i32,
                code,
                reason,
                message,
                applied: false,
            }
        }
    }
}

/// The proto form of the preferences in force.
pub(super) fn preferences_to_proto(view: &PreferencesView) -> proto::SummaryPreferences {
    let chosen = &view.chosen;
    let explicitly_set = [
        ("frequency", chosen.frequency.is_some()),
        ("weekly_day", chosen.weekly_day.is_some()),
        ("time_zone", chosen.time_zone.is_some()),
        ("locale", chosen.locale.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(name, _)| name.to_owned())
    .collect();
    proto::SummaryPreferences {
        guardian_id: chosen.guardian_id.to_string(),
        frequency: frequency_to_proto(view.schedule.frequency) as i32,
        weekly_day: weekday_name(view.schedule.weekly_day).to_owned(),
        time_zone: view.schedule.zone.name().to_owned(),
        locale: view.locale.as_str().to_owned(),
        explicitly_set,
    }
}

/// The fields a preferences mask may name.
const PREFERENCE_FIELDS: [&str; 4] = ["frequency", "weekly_day", "time_zone", "locale"];

/// A preferences change from the request's values and mask (AIP-134: without a mask, the
/// populated fields). An empty value of a named field clears the choice.
pub(super) fn preferences_patch(
    values: &proto::SummaryPreferences,
    mask: Option<prost_types::FieldMask>,
) -> Result<PreferencesPatch, ValidationError> {
    let paths: Vec<String> = match mask {
        Some(mask) if mask.paths.iter().any(|p| p == "*") => {
            PREFERENCE_FIELDS.iter().map(|p| p.to_string()).collect()
        }
        Some(mask) if !mask.paths.is_empty() => mask.paths,
        _ => {
            let populated = [
                values.frequency != 0,
                !values.weekly_day.is_empty(),
                !values.time_zone.is_empty(),
                !values.locale.is_empty(),
            ];
            PREFERENCE_FIELDS
                .iter()
                .zip(populated)
                .filter(|(_, set)| *set)
                .map(|(p, _)| p.to_string())
                .collect()
        }
    };
    let mut patch = PreferencesPatch::default();
    for path in &paths {
        let field = format!("preferences.{path}");
        match path.as_str() {
            "frequency" => {
                patch.frequency = Some(if values.frequency == 0 {
                    None
                } else {
                    Some(frequency_from_proto(&field, values.frequency)?)
                });
            }
            "weekly_day" => {
                patch.weekly_day = Some(if values.weekly_day.trim().is_empty() {
                    None
                } else {
                    Some(parse_weekday(&field, &values.weekly_day)?)
                });
            }
            "time_zone" => {
                patch.time_zone = Some(if values.time_zone.trim().is_empty() {
                    None
                } else {
                    Some(parse_zone(&field, &values.time_zone)?)
                });
            }
            "locale" => {
                patch.locale = Some(if values.locale.trim().is_empty() {
                    None
                } else {
                    Some(parse_field(&field, &values.locale, Locale::parse)?)
                });
            }
            other => {
                return Err(ValidationError::invalid(
                    "update_mask",
                    format!("{other:?} is not a writable field of SummaryPreferences"),
                ));
            }
        }
    }
    Ok(patch)
}

/// The proto form of a preview.
pub(super) fn preview_to_proto(preview: SummaryPreview) -> proto::PreviewGuardianSummaryResponse {
    proto::PreviewGuardianSummaryResponse {
        subject: preview.subject,
        text_body: preview.text,
        html_body: preview.html,
        empty: preview.empty,
        student_ids: preview
            .student_ids
            .iter()
            .map(ToString::to_string)
            .collect(),
    }
}

/// The proto form of a delivery record.
pub(super) fn delivery_to_proto(d: &SummaryDelivery) -> proto::SummaryDelivery {
    use proto::summary_delivery::Outcome;
    proto::SummaryDelivery {
        guardian_id: d.guardian_id.to_string(),
        period: d.period_key.clone(),
        frequency: frequency_to_proto(d.frequency) as i32,
        period_start: Some(timestamp(d.period_start)),
        period_end: Some(timestamp(d.period_end)),
        student_ids: d.student_ids.iter().map(ToString::to_string).collect(),
        missing_count: count(d.counts.missing),
        upcoming_count: count(d.counts.upcoming),
        activity_count: count(d.counts.activity),
        outcome: match d.outcome {
            SummaryOutcome::Queued => Outcome::Queued,
            SummaryOutcome::Sent => Outcome::Sent,
            SummaryOutcome::Failed => Outcome::Failed,
            SummaryOutcome::SkippedEmpty => Outcome::SkippedEmpty,
        } as i32,
        create_time: Some(timestamp(d.create_time)),
    }
}

fn count(n: impl TryInto<i32>) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}
