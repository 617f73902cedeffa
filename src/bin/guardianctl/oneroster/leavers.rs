//! Who and what leaves the directory with an export: the users it marks `tobedeleted`, the
//! classes it marks so, and, when asked (`--remove-unlisted`) and users.csv is a bulk (whole)
//! file, the students and teachers the directory holds for the domain that the export does not
//! list (not by default: a domain may hold schools that another export covers).
//! Administrators are left unless marked: they are often made outside the information system. Leaving students
//! are held to the safety limit, as the links a sync removes are: an export cut short must
//! not empty a school.

use super::roster::Roster;
use crate::client::Client;
use guardian_service::domain::sync_rules::check_removals;
use guardian_service::proto::{
    DeleteCourseRequest, DeleteUsersRequest, ListUsersRequest, User, UserRole,
};
use std::collections::BTreeSet;

/// Ids per DeleteUsers call (the server's limit).
const IDS_PER_CALL: usize = 1000;

/// What leaves the directory.
#[derive(Debug, Default)]
pub(crate) struct Leavers {
    /// Users to delete from the directory (each ends their links as STUDENT_REMOVED).
    pub(crate) users: Vec<String>,
    /// How many of them are students, and how many teachers.
    pub(crate) students: usize,
    pub(crate) teachers: usize,
    /// The domain's students before the import.
    pub(crate) domain_students: usize,
    /// Classes to delete.
    pub(crate) classes: Vec<String>,
}

impl Leavers {
    /// Finds them: the domain's directory read page by page.
    pub(crate) async fn find(
        client: &Client,
        roster: &Roster,
        domain: &str,
        remove_unlisted: bool,
    ) -> Result<Self, String> {
        let held = directory_users(client, domain).await?;
        let listed: BTreeSet<&str> = roster.users.iter().map(|u| u.user_id.as_str()).collect();
        let marked: BTreeSet<&str> = roster.users_deleted.iter().map(String::as_str).collect();
        let mut leavers = Leavers {
            classes: roster.classes_deleted.clone(),
            ..Leavers::default()
        };
        for user in &held {
            let role = UserRole::try_from(user.role).unwrap_or(UserRole::Unspecified);
            if role == UserRole::Student {
                leavers.domain_students += 1;
            }
            let unlisted = remove_unlisted
                && !roster.users_delta
                && matches!(role, UserRole::Student | UserRole::Teacher)
                && !listed.contains(user.user_id.as_str());
            if marked.contains(user.user_id.as_str()) || unlisted {
                leavers.users.push(user.user_id.clone());
                match role {
                    UserRole::Student => leavers.students += 1,
                    UserRole::Teacher => leavers.teachers += 1,
                    _ => {}
                }
            }
        }
        Ok(leavers)
    }

    /// The refusal when more students would leave than the safety limit allows.
    pub(crate) fn over_limit(&self, percent: u32, force: bool) -> Option<String> {
        let (leaving, of) = (self.students as i64, self.domain_students as i64);
        check_removals(leaving, of, percent, force).err().map(|e| {
            format!(
                "the export would remove {leaving} of the domain's {of} students from the \
                 directory (the limit is {}, {percent}%), so nothing was changed; check that the \
                 export is whole, or run again with --force",
                e.limit
            )
        })
    }

    /// The plan's line.
    pub(crate) fn describe(&self) -> String {
        format!(
            "leaving the directory: {} students, {} teachers, {} others; {} classes deleted",
            self.students,
            self.teachers,
            self.users.len() - self.students - self.teachers,
            self.classes.len()
        )
    }

    /// Deletes them: users in calls of a thousand, then each class (one already gone is no
    /// failure).
    pub(crate) async fn remove(&self, client: &Client) -> Result<(), String> {
        for chunk in self.users.chunks(IDS_PER_CALL) {
            client
                .directory()
                .delete_users(DeleteUsersRequest {
                    user_ids: chunk.to_vec(),
                })
                .await
                .map_err(|s| format!("users were not removed: {}", crate::client::describe(&s)))?;
        }
        for class in &self.classes {
            let done = client
                .directory()
                .delete_course(DeleteCourseRequest {
                    course_id: class.clone(),
                })
                .await;
            match done {
                Ok(_) => {}
                Err(status) if status.code() == tonic::Code::NotFound => {}
                Err(status) => {
                    return Err(format!(
                        "class {class} was not removed: {}",
                        crate::client::describe(&status)
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Every user the directory holds for `domain`.
async fn directory_users(client: &Client, domain: &str) -> Result<Vec<User>, String> {
    let mut users = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .directory()
            .list_users(ListUsersRequest {
                domain: domain.to_owned(),
                role: UserRole::Unspecified as i32,
                page_size: 500,
                page_token,
            })
            .await
            .map_err(|s| {
                format!(
                    "the directory was not read: {}",
                    crate::client::describe(&s)
                )
            })?
            .into_inner();
        users.extend(page.users);
        if page.next_page_token.is_empty() {
            return Ok(users);
        }
        page_token = page.next_page_token;
    }
}
