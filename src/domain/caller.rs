//! Who is calling: the principal a verified token describes.

use super::email::Email;
use super::ids::DomainName;

/// The role claim of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallerRole {
    /// A domain administrator.
    Admin,
    /// A teacher (verified or not: the directory decides, never the token).
    Teacher,
    /// A student.
    Student,
    /// A guardian, who belongs to no domain.
    Guardian,
    /// Another backend or microservice, limited by its scopes.
    Service,
}

impl CallerRole {
    /// Every role, for exhaustive tests.
    pub const ALL: [Self; 5] = [
        Self::Admin,
        Self::Teacher,
        Self::Student,
        Self::Guardian,
        Self::Service,
    ];

    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Teacher => "teacher",
            Self::Student => "student",
            Self::Guardian => "guardian",
            Self::Service => "service",
        }
    }

    /// Parses a claim value.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

/// A scope a service token may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Read guardians and invitations.
    GuardiansRead,
    /// Manage guardians and invitations.
    GuardiansWrite,
    /// Read domain settings.
    SettingsRead,
    /// Change domain settings.
    SettingsWrite,
    /// Push the directory.
    DirectoryWrite,
    /// Accept or decline invitations on a guardian's behalf.
    InvitationsAccept,
    /// Publish class activity for summaries.
    ActivityWrite,
    /// Export and erase a person's records.
    PrivacyAdmin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Self; 8] = [
        Self::GuardiansRead,
        Self::GuardiansWrite,
        Self::SettingsRead,
        Self::SettingsWrite,
        Self::DirectoryWrite,
        Self::InvitationsAccept,
        Self::ActivityWrite,
        Self::PrivacyAdmin,
    ];

    /// The scope's name in the `scope` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GuardiansRead => "guardians.read",
            Self::GuardiansWrite => "guardians.write",
            Self::SettingsRead => "settings.read",
            Self::SettingsWrite => "settings.write",
            Self::DirectoryWrite => "directory.write",
            Self::InvitationsAccept => "invitations.accept",
            Self::ActivityWrite => "activity.write",
            Self::PrivacyAdmin => "privacy.admin",
        }
    }

    /// Parses a scope name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// The domains a caller acts in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerDomains {
    /// `*`: a platform service acting in every domain.
    All,
    /// The listed domains (one for people; none for guardians).
    Only(Vec<DomainName>),
}

/// An authenticated principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The `sub` claim: a user id, a guardian's account id or a service name.
    pub subject: String,
    /// The `role` claim.
    pub role: CallerRole,
    /// The `domain` claim.
    pub domains: CallerDomains,
    /// The `email` claim (required for guardians).
    pub email: Option<Email>,
    /// The `scope` claim (services only).
    pub scopes: Vec<Scope>,
}

impl Caller {
    /// Whether the caller acts in `domain`.
    pub fn acts_in(&self, domain: &DomainName) -> bool {
        match &self.domains {
            CallerDomains::All => true,
            CallerDomains::Only(list) => list.contains(domain),
        }
    }

    /// Whether the token holds `scope`.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Who the caller is, for scoping request ids: role, domains and subject. Two tenants'
    /// tokens may share a `sub` (each tenant names its own users), so the domains belong in it.
    pub fn principal_key(&self) -> String {
        let domains = match &self.domains {
            CallerDomains::All => "*".to_owned(),
            CallerDomains::Only(list) => {
                let mut names: Vec<&str> = list.iter().map(DomainName::as_str).collect();
                names.sort_unstable();
                names.join(",")
            }
        };
        format!("{}:{domains}:{}", self.role.as_str(), self.subject)
    }

    /// The caller's one home domain, for people.
    pub fn home_domain(&self) -> Option<&DomainName> {
        match &self.domains {
            CallerDomains::Only(list) if list.len() == 1 => list.first(),
            CallerDomains::Only(_) | CallerDomains::All => None,
        }
    }
}
