//! Guardian links: reading them, removing them, and the hot-path check.

use super::access::require;
use super::check::Answered;
use super::freshness::Consistency;
use super::idempotency::{Encoder, Replay, RequestKey};
use super::invitation_reads::StudentSelector;
use super::lifecycle::{apply, audit, language_of_guardian, removal_notice};
use super::read_models::{GuardianView, Page, StudentLabel, student_labels};
use super::write::{Ending, Reply, end_write, lock_for_write};
use super::{App, AppError, AppResult, Missing};
use crate::auth::Authorized;
use crate::domain::policy::{Permission, StudentAccess};
use crate::domain::{
    Caller, CallerDomains, CallerRole, DomainName, Email, InvitationEvent, InvitationId, Role,
    StudentRef, UserId, paging,
};
use crate::store::{
    InvitationFilter, InvitationScope, LinkFilter, LinkScope, StateFilter, Transaction,
};

/// How a request names a guardian: an id, or `me` for a guardian caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardianRef {
    /// An account id.
    Id(UserId),
    /// The calling guardian.
    Me,
}

impl GuardianRef {
    /// The account id meant, for `caller`.
    pub(crate) fn resolve(&self, caller: &Caller) -> AppResult<UserId> {
        match self {
            Self::Id(id) => Ok(id.clone()),
            Self::Me if caller.role == CallerRole::Guardian => UserId::parse(&caller.subject)
                .map_err(|_| {
                    AppError::Unauthenticated(
                        "the guardian's subject is not a valid account id".into(),
                    )
                }),
            Self::Me => Err(crate::domain::ValidationError::invalid(
                "guardian_id",
                "\"me\" is only for guardian callers",
            )
            .into()),
        }
    }
}

/// A ListGuardians request.
#[derive(Debug, Clone)]
pub struct GuardianQuery {
    /// Whose.
    pub student: StudentSelector,
    /// Only links from invitations to this address (admins and services).
    pub invited_email: Option<Email>,
    /// Only this guardian's links: the reverse lookup.
    pub guardian: Option<GuardianRef>,
    /// Raw page size.
    pub page_size: i32,
    /// Previous page's token.
    pub page_token: String,
    /// How fresh the answer must be (the replica it may come from).
    pub consistency: Consistency,
}

/// Which link a removal names.
#[derive(Debug, Clone)]
pub(crate) enum RemovalTarget {
    /// The guardian's account id.
    Id(UserId),
    /// The guardian's invited or profile address.
    Email(Email),
}

/// How a link is removed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Removal {
    /// A missing link is success, not GUARDIAN_NOT_FOUND.
    pub allow_missing: bool,
    /// Check and roll back.
    pub dry_run: bool,
    /// The link, the pair's pending invitations, or both.
    pub what: PairRemoval,
}

/// What a removal of a (student, guardian) pair ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PairRemoval {
    /// The ACCEPTED link only (DeleteGuardian, and bulk removal unless asked for more).
    #[default]
    LinkOnly,
    /// The PENDING invitations to the address only.
    PendingOnly,
    /// Both: nothing of the pair is left waiting (what an operator removing a guardian means).
    LinkAndPending,
}

impl PairRemoval {
    /// Whether the ACCEPTED link is ended.
    pub(crate) fn link(self) -> bool {
        self != Self::PendingOnly
    }

    /// Whether the PENDING invitations are cancelled.
    pub(crate) fn pending(self) -> bool {
        self != Self::LinkOnly
    }
}

impl App {
    /// GetGuardian.
    pub async fn get_guardian(
        &self,
        who: &Authorized,
        student: &StudentRef,
        guardian: &GuardianRef,
    ) -> AppResult<GuardianView> {
        let caller = require(who, Permission::ReadGuardians)?;
        let guardian_id = guardian.resolve(caller)?;
        let ctx = self
            .authorize_student(caller, student, StudentAccess::Read)
            .await?;
        if caller.role == CallerRole::Guardian && guardian_id.as_str() != caller.subject {
            return Err(AppError::NotAllowed(
                "guardians may only see their own links".into(),
            ));
        }
        let mut session = self.store.session().await?;
        let link = session
            .find_link(&ctx.student.user_id, &guardian_id)
            .await?
            .ok_or(AppError::NotFound(Missing::Guardian))?;
        let view = GuardianView::of_link(
            &link,
            ctx.grant.may_manage,
            Some(StudentLabel::of(&ctx.student)),
        )?;
        self.note_guardian_reads(caller, "GetGuardian", std::slice::from_ref(&view))
            .await?;
        Ok(view)
    }

    /// Notes the reads of links whose invited address the caller sees.
    async fn note_guardian_reads(
        &self,
        caller: &Caller,
        method: &'static str,
        views: &[GuardianView],
    ) -> AppResult<()> {
        let rows = views
            .iter()
            .filter(|v| v.show_invited_email)
            .map(|v| (&v.domain, &v.student_id));
        self.note_address_reads(caller, method, rows).await
    }

    /// ListGuardians: by student, by domain (`-`), or by guardian (the reverse lookup).
    pub async fn list_guardians(
        &self,
        who: &Authorized,
        query: GuardianQuery,
    ) -> AppResult<Answered<Page<GuardianView>>> {
        let caller = require(who, Permission::ReadGuardians)?;
        let size = paging::page_size(query.page_size)?;
        let mut guardian = query
            .guardian
            .as_ref()
            .map(|g| g.resolve(caller))
            .transpose()?;
        if caller.role == CallerRole::Guardian {
            // A guardian sees only their own links, whatever the request asks for.
            match &guardian {
                Some(g) if g.as_str() != caller.subject => {
                    return Err(AppError::NotAllowed(
                        "guardians may only see their own links".into(),
                    ));
                }
                _ => guardian = Some(GuardianRef::Me.resolve(caller)?),
            }
        }
        let privileged = matches!(caller.role, CallerRole::Admin | CallerRole::Service);
        if query.invited_email.is_some() && !privileged {
            return Err(AppError::NotAllowed(
                "only administrators and services filter by invited address".into(),
            ));
        }
        if let (StudentSelector::One(StudentRef::Id(student)), true) = (&query.student, privileged)
        {
            return self
                .student_guardians_at_once(caller, student, &query, guardian.as_ref(), size)
                .await;
        }
        let (scope, domain, show_email) = match (&query.student, &guardian) {
            (StudentSelector::One(student), _) => {
                let ctx = self
                    .authorize_student(caller, student, StudentAccess::Read)
                    .await?;
                (
                    LinkScope::Student(ctx.student.user_id),
                    None,
                    ctx.grant.may_manage,
                )
            }
            (StudentSelector::All, Some(guardian)) => match caller.role {
                CallerRole::Guardian if guardian.as_str() == caller.subject => {
                    (LinkScope::Guardian(guardian.clone()), None, false)
                }
                CallerRole::Admin => (
                    LinkScope::Guardian(guardian.clone()),
                    caller.home_domain().cloned(),
                    true,
                ),
                CallerRole::Service => (
                    LinkScope::Guardian(guardian.clone()),
                    single_domain(caller)?,
                    true,
                ),
                _ => {
                    return Err(AppError::NotAllowed(
                        "this caller may not look up a guardian's students".into(),
                    ));
                }
            },
            (StudentSelector::All, None) => match caller.role {
                CallerRole::Admin => (
                    LinkScope::Domain(caller.home_domain().cloned().ok_or_else(|| {
                        AppError::NotAllowed("an admin token must name one domain".into())
                    })?),
                    None,
                    true,
                ),
                CallerRole::Service => match single_domain(caller)? {
                    Some(domain) => (LinkScope::Domain(domain), None, true),
                    None => (LinkScope::All, None, true),
                },
                _ => return Err(AppError::NotAllowed(
                    "\"-\" is for administrators, services, and guardians with guardian_id \"me\""
                        .into(),
                )),
            },
        };
        let (filter, filters) = self.link_page(scope, domain, &query, guardian.as_ref(), size)?;
        let route = match query.student {
            // Decided on the primary: the links come from there too.
            StudentSelector::One(_) => self.primary_route().await?,
            StudentSelector::All => self.read_route(query.consistency).await?,
        };
        let (links, mut route) = read_on!(self, route, |s| s.list_links(&filter));
        let views = links
            .iter()
            .map(|link| GuardianView::of_link(link, show_email, None))
            .collect::<AppResult<Vec<_>>>()?;
        let labels =
            student_labels(route.session.as_mut(), views.iter().map(|v| &v.student_id)).await?;
        let page = self.page_of_views(views, size, &filters, guardian.as_ref());
        let page = labelled(page, |student| labels.get(student).cloned());
        self.note_guardian_reads(caller, "ListGuardians", &page.items)
            .await?;
        Ok(Answered {
            answer: page,
            at: route.at,
        })
    }

    /// ListGuardians of one student for admins and services: the student and all their links
    /// (at most the domain's guardian limit) as the hot path's checks read them: from this
    /// replica's cache when the consistency allows, else in one statement (fully consistent
    /// reads shared with the others waiting), which fills the cache. The page is cut from them
    /// in memory, and the decision needs only cached settings.
    async fn student_guardians_at_once(
        &self,
        caller: &Caller,
        student: &UserId,
        query: &GuardianQuery,
        guardian: Option<&UserId>,
        size: u32,
    ) -> AppResult<Answered<Page<GuardianView>>> {
        let scope = LinkScope::Student(student.clone());
        let (filter, filters) = self.link_page(scope, None, query, guardian, size)?;
        let mut session = None;
        let read = self
            .student_links_of(
                std::slice::from_ref(student),
                query.consistency,
                &mut session,
            )
            .await?;
        let found = read
            .links
            .get(student)
            .filter(|l| l.student.role == Role::Student);
        let record = found.map(|l| l.student.clone());
        let ctx = self
            .decide_as_manager(caller, record, &mut session, StudentAccess::Read)
            .await?;
        let label = StudentLabel::of(&ctx.student);
        let views = found
            .map(|l| filter.page_of(&l.links))
            .unwrap_or_default()
            .into_iter()
            .map(|link| GuardianView {
                student_id: ctx.student.user_id.clone(),
                domain: ctx.student.domain.clone(),
                link,
                show_invited_email: ctx.grant.may_manage,
                student: Some(label.clone()),
            })
            .collect();
        let page = self.page_of_views(views, size, &filters, guardian);
        self.note_guardian_reads(caller, "ListGuardians", &page.items)
            .await?;
        Ok(Answered {
            answer: page,
            at: read.at,
        })
    }

    /// The store filter of a ListGuardians page, and the request's filters its page token is
    /// bound to.
    fn link_page(
        &self,
        scope: LinkScope,
        domain: Option<DomainName>,
        query: &GuardianQuery,
        guardian: Option<&UserId>,
        size: u32,
    ) -> AppResult<(LinkFilter, [String; 2])> {
        let scope_key = format!("{scope:?}/{domain:?}/{guardian:?}");
        let email_key = query
            .invited_email
            .as_ref()
            .map(Email::to_string)
            .unwrap_or_default();
        let filters = [scope_key, email_key];
        let after = self
            .page_tokens
            .decode(&query.page_token, &[&filters[0], &filters[1]])?
            .map(|k| InvitationId::parse(&k).map_err(|_| AppError::InvalidPageToken))
            .transpose()?;
        let filter = LinkFilter {
            scope,
            invited_email: query.invited_email.clone(),
            domain,
            after,
            limit: size + 1,
        };
        Ok((filter, filters))
    }

    /// A page of links as the caller sees them (`views`: one more than the page, if there
    /// is more), with the next page's token; `guardian` keeps only that guardian's.
    fn page_of_views(
        &self,
        mut views: Vec<GuardianView>,
        size: u32,
        filters: &[String; 2],
        guardian: Option<&UserId>,
    ) -> Page<GuardianView> {
        let next_page_token = self.page_tokens.cut(
            &mut views,
            size,
            |last| last.link.invitation_id.to_text(),
            &[&filters[0], &filters[1]],
        );
        views.retain(|v| guardian.is_none_or(|g| &v.link.guardian.guardian_id == g));
        Page {
            items: views,
            next_page_token,
        }
    }

    /// DeleteGuardian: ACCEPTED -> REMOVED(GUARDIAN_REMOVED); the guardian is told.
    pub async fn delete_guardian(
        &self,
        who: &Authorized,
        student: &StudentRef,
        guardian: &GuardianRef,
        allow_missing: bool,
        key: Option<&RequestKey>,
        encode: Encoder<'_, ()>,
    ) -> AppResult<Replay<()>> {
        let caller = require(who, Permission::ManageGuardians)?;
        let guardian_id = guardian.resolve(caller)?;
        let mut tx = self.store.begin().await?;
        let access = StudentAccess::DeleteLink(guardian_id.clone());
        let ctx = self
            .authorize_in(tx.as_mut(), caller, student, access)
            .await?;
        let how = Removal {
            allow_missing,
            dry_run: false,
            what: PairRemoval::LinkOnly,
        };
        let target = RemovalTarget::Id(guardian_id);
        self.remove_link(tx, caller, &ctx, &target, how, Reply { key, encode })
            .await
    }

    /// Removes one link of a student the caller may manage (single, bulk and sync calls).
    pub(crate) async fn remove_link(
        &self,
        mut tx: Box<dyn Transaction>,
        caller: &Caller,
        ctx: &super::students::StudentContext,
        target: &RemovalTarget,
        how: Removal,
        reply: Reply<'_, ()>,
    ) -> AppResult<Replay<()>> {
        let key = reply.key;
        let Removal {
            allow_missing,
            dry_run,
            what,
        } = how;
        let student = &ctx.student.user_id;
        if let Some(bytes) = lock_for_write(tx.as_mut(), student, key).await? {
            return Ok(Replay::Replayed(bytes));
        }
        let now = self.clock.now();
        let ending = Ending {
            student,
            reply,
            now,
            dry_run,
        };
        let found = match target {
            _ if !what.link() => None,
            RemovalTarget::Id(guardian_id) => tx.find_link(student, guardian_id).await?,
            RemovalTarget::Email(email) => link_by_email(tx.as_mut(), student, email).await?,
        };
        // A pending invitation is known by its address only: an account id names no invitation.
        let waiting = match target {
            RemovalTarget::Email(email) if what.pending() => {
                tx.list_invitations(&InvitationFilter {
                    scope: InvitationScope::Student(student.clone()),
                    invited_email: Some(email.clone()),
                    states: StateFilter::pending_only(),
                    now,
                    after: None,
                    limit: 100,
                })
                .await?
            }
            _ => Vec::new(),
        };
        if found.is_none() && waiting.is_empty() {
            return if allow_missing {
                end_write(self, tx, (), ending).await
            } else if what == PairRemoval::PendingOnly {
                Err(AppError::NotFound(Missing::Invitation))
            } else {
                Err(AppError::NotFound(Missing::Guardian))
            };
        }
        let request_id = key.map(|k| k.request_id.as_str());
        for invitation in waiting {
            self.manage_in(
                tx.as_mut(),
                caller,
                ctx,
                invitation,
                InvitationEvent::Cancel,
                request_id,
            )
            .await?;
        }
        let Some(link) = found else {
            return end_write(self, tx, (), ending).await;
        };
        let removed = apply(
            tx.as_mut(),
            link,
            InvitationEvent::DeleteGuardian,
            now,
            &|_| {},
        )
        .await?;
        audit(
            tx.as_mut(),
            &removed,
            InvitationEvent::DeleteGuardian.audit_action(),
            &caller.subject,
            request_id,
            now,
        )
        .await?;
        if let Some(profile) = &removed.guardian {
            let locale = language_of_guardian(tx.as_mut(), &profile.guardian_id).await?;
            let notice = removal_notice(
                &ctx.settings,
                &ctx.student.display_name,
                &removed,
                locale,
                now,
            )?;
            if let Some(message) = notice {
                tx.enqueue_message(&message).await?;
            }
        }
        end_write(self, tx, (), ending).await
    }
}

/// The link of `student` whose invited or profile address is `email`.
async fn link_by_email(
    tx: &mut dyn Transaction,
    student: &UserId,
    email: &Email,
) -> AppResult<Option<crate::domain::Invitation>> {
    let links = links_of(tx, student).await?;
    Ok(links.into_iter().find(|l| {
        &l.invited_email == email || l.guardian.as_ref().is_some_and(|g| &g.email == email)
    }))
}

/// Every link of `student`.
pub(crate) async fn links_of(
    session: &mut dyn crate::store::Session,
    student: &UserId,
) -> AppResult<Vec<crate::domain::Invitation>> {
    // A student has at most 20 guardians; 100 leaves room for lowered limits.
    Ok(session
        .list_links(&LinkFilter {
            scope: LinkScope::Student(student.clone()),
            invited_email: None,
            domain: None,
            after: None,
            limit: 100,
        })
        .await?)
}

/// The one domain a service token names, `None` for `*`; several are refused.
fn single_domain(caller: &Caller) -> AppResult<Option<crate::domain::DomainName>> {
    match &caller.domains {
        CallerDomains::All => Ok(None),
        CallerDomains::Only(list) if list.len() == 1 => Ok(Some(list[0].clone())),
        CallerDomains::Only(_) => Err(crate::domain::ValidationError::invalid(
            "student_id",
            "\"-\" needs a service token of one domain or of every domain (\"*\")",
        )
        .into()),
    }
}

/// The page with each link's student label, as `label` gives it.
fn labelled(
    mut page: Page<GuardianView>,
    label: impl Fn(&UserId) -> Option<StudentLabel>,
) -> Page<GuardianView> {
    for view in &mut page.items {
        view.student = label(&view.student_id);
    }
    page
}
