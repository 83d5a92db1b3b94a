//! Least privilege: who may do what, for which purposes, over which categories.
//!
//! A [`Principal`] is an API key or a staff account with a [`Role`]; the role bounds the
//! operations, and a [`Scope`] narrows them further (to some purposes, some categories, some
//! operations). Every access to the vault goes through [`Access`], which carries the principal,
//! the request id and, for support staff, the ticket they work on; the vault checks it and writes
//! the audit entry, allowed or not.
//!
//! The access context owns roles and scopes (here), API keys ([`api_key`]), staff accounts and
//! sessions ([`staff`]), password rules ([`password`]) and rate limits ([`rate_limit`]). It
//! uses only `audit` (an access makes its audit entry) and the shared words.

pub mod api_key;
pub mod password;
pub mod rate_limit;
pub mod staff;
pub mod storage;

use std::fmt;
use std::str::FromStr;

use steward_policy::declaration::Purpose;
use steward_policy::taxonomy::covers;
use uuid::Uuid;

use crate::audit::{AuditEntry, Outcome};

/// A role: the most a principal may ever do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: personal data, erasure, keys, staff, audit.
    Admin,
    /// The data protection officer: personal data, exports, erasure and the audit; no keys.
    Dpo,
    /// Support staff: look up, read and correct, each time for a ticket, never for marketing
    /// purposes unless a scope names them; every such access is flagged for review.
    Support,
    /// The operator's application: create, look up, read for a purpose, rectify.
    Service,
    /// An auditor: the audit trail and its verification; no personal data.
    Auditor,
}

/// Something a principal may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Create subjects (and import them).
    Create,
    /// Find a subject by identity.
    Lookup,
    /// Read a subject's data for a purpose.
    Read,
    /// Correct a subject's data.
    Rectify,
    /// Erase a subject.
    Erase,
    /// Export everything held on a subject (the right of access).
    Export,
    /// Read and verify the audit trail.
    Audit,
    /// Create and revoke API keys, rotate the master key.
    Keys,
    /// Create and manage staff accounts.
    Staff,
    /// Record consent, objections, restrictions and signals for a person or browser.
    Consent,
    /// Ask permit decisions.
    Permit,
    /// Take in data-subject requests (and vouch for a signed-in person), acknowledge
    /// recipients' notices.
    Request,
    /// List, show, approve, deny and extend data-subject requests.
    Decide,
    /// Record a disclosure of personal data to a partner, processor or authority.
    Disclose,
    /// Keep the breach register (incidents, their affected people and notifications), read
    /// the disclosure log and make aggregates to share.
    Incident,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Self; 15] = [
        Self::Create,
        Self::Lookup,
        Self::Read,
        Self::Rectify,
        Self::Erase,
        Self::Export,
        Self::Audit,
        Self::Keys,
        Self::Staff,
        Self::Consent,
        Self::Permit,
        Self::Request,
        Self::Decide,
        Self::Disclose,
        Self::Incident,
    ];

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Lookup => "lookup",
            Self::Read => "read",
            Self::Rectify => "rectify",
            Self::Erase => "erase",
            Self::Export => "export",
            Self::Audit => "audit",
            Self::Keys => "keys",
            Self::Staff => "staff",
            Self::Consent => "consent",
            Self::Permit => "permit",
            Self::Request => "request",
            Self::Decide => "decide",
            Self::Disclose => "disclose",
            Self::Incident => "incident",
        }
    }

    /// Whether it touches a subject's personal data (support staff name a ticket for these):
    /// a permit tells the state of a person's consent, a request acts for a person.
    pub fn is_personal(self) -> bool {
        matches!(
            self,
            Self::Lookup
                | Self::Read
                | Self::Rectify
                | Self::Erase
                | Self::Export
                | Self::Consent
                | Self::Permit
                | Self::Request
                | Self::Disclose
        )
    }
}

impl FromStr for Operation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown operation `{s}`; use one of {}",
                    Self::ALL.map(Self::as_str).join(", ")
                )
            })
    }
}

impl Role {
    /// Every role.
    pub const ALL: [Self; 5] = [
        Self::Admin,
        Self::Dpo,
        Self::Support,
        Self::Service,
        Self::Auditor,
    ];

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Dpo => "dpo",
            Self::Support => "support",
            Self::Service => "service",
            Self::Auditor => "auditor",
        }
    }

    /// Reads a role's name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The operations the role allows at most.
    pub fn operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            Self::Admin => &Operation::ALL,
            Self::Dpo => &[
                Create, Lookup, Read, Rectify, Erase, Export, Audit, Consent, Permit, Request,
                Decide, Disclose, Incident,
            ],
            Self::Support => &[Lookup, Read, Rectify, Consent, Permit, Request],
            Self::Service => &[
                Create, Lookup, Read, Rectify, Consent, Permit, Request, Disclose,
            ],
            Self::Auditor => &[Audit],
        }
    }

    /// Whether the role allows `op`.
    pub fn allows(self, op: Operation) -> bool {
        self.operations().contains(&op)
    }

    /// Whether each access of personal data needs a ticket and is flagged for review.
    pub fn needs_ticket(self) -> bool {
        self == Self::Support
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A narrowing of a role. An empty list means "whatever the role allows".
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scope {
    /// Only these purposes (ids).
    pub purposes: Vec<String>,
    /// Only these categories (taxonomy keys; a key covers its children).
    pub categories: Vec<String>,
    /// Only these operations.
    pub operations: Vec<Operation>,
}

impl Scope {
    /// Encodes a list for a database column.
    pub fn join<T: AsRef<str>>(items: &[T]) -> String {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Decodes a list from a database column.
    pub fn split(text: &str) -> Vec<String> {
        text.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Whether the scope lets `category` through.
    pub fn allows_category(&self, category: &str) -> bool {
        self.categories.is_empty() || self.categories.iter().any(|c| covers(c, category))
    }
}

/// Who acts: an API key, a staff member or the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// How the audit names them: `key:stw_1a2b3c4d`, `staff:alice`, `cli`.
    pub actor: String,
    /// Their role.
    pub role: Role,
    /// Their narrowing.
    pub scope: Scope,
}

/// Why an access was refused: a stable code and a sentence that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    /// `operation-not-allowed`, `purpose-out-of-scope`, `category-out-of-scope`,
    /// `ticket-required`, `marketing-purpose` …
    pub code: &'static str,
    /// What went wrong and how to fix it.
    pub message: String,
}

fn is_marketing(purpose: &Purpose) -> bool {
    covers("marketing", &purpose.data_use)
}

impl Principal {
    /// How the audit names the role: the role itself, except for a person acting through a
    /// link or form (`person`, `public:…`: `person`) and Steward acting on its own (`steward`,
    /// `steward:…`: `system`), whose roles only bound what they may do.
    pub fn audit_role(&self) -> &str {
        let a = self.actor.as_str();
        if a == "person" || a.starts_with("public:") {
            "person"
        } else if a == "steward" || a.starts_with("steward:") {
            "system"
        } else if a.starts_with("recipient:") {
            "recipient"
        } else {
            self.role.as_str()
        }
    }

    /// Steward acting on its own, as its `part` (`requests`, `store`, `retention` …): the
    /// audit names it `steward:PART`, with the role `system` (see [`Principal::audit_role`]).
    pub fn steward(part: &str) -> Self {
        Self {
            actor: format!("steward:{part}"),
            role: Role::Admin,
            scope: Scope::default(),
        }
    }

    /// The operator at the command line: they hold the master key, so they are admin.
    pub fn cli() -> Self {
        Self {
            actor: "cli".to_owned(),
            role: Role::Admin,
            scope: Scope::default(),
        }
    }

    /// Checks that the principal may do `op`.
    pub fn may(&self, op: Operation) -> Result<(), Denied> {
        if !self.role.allows(op) {
            return Err(Denied {
                code: "operation-not-allowed",
                message: format!(
                    "the {} role may not {}; it may: {}",
                    self.role,
                    op.as_str(),
                    self.role
                        .operations()
                        .iter()
                        .map(|o| o.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        if !self.scope.operations.is_empty() && !self.scope.operations.contains(&op) {
            return Err(Denied {
                code: "operation-out-of-scope",
                message: format!(
                    "{} is scoped to {}; {} is not among them",
                    self.actor,
                    Scope::join(
                        &self
                            .scope
                            .operations
                            .iter()
                            .map(|o| o.as_str())
                            .collect::<Vec<_>>()
                    ),
                    op.as_str()
                ),
            });
        }
        Ok(())
    }

    /// Checks that the principal may act for `purpose`.
    pub fn may_use(&self, purpose: &Purpose) -> Result<(), Denied> {
        if self.scope.purposes.is_empty() {
            if self.role == Role::Support && is_marketing(purpose) {
                return Err(Denied {
                    code: "marketing-purpose",
                    message: format!(
                        "support staff may not act for the marketing purpose `{}`; an admin can name it in the key's purposes if support must",
                        purpose.id
                    ),
                });
            }
            return Ok(());
        }
        if self.scope.purposes.iter().any(|p| p == &purpose.id) {
            Ok(())
        } else {
            Err(Denied {
                code: "purpose-out-of-scope",
                message: format!(
                    "{} may act only for {}; `{}` is not among them",
                    self.actor,
                    self.scope.purposes.join(", "),
                    purpose.id
                ),
            })
        }
    }

    /// Checks that the principal may touch `category`.
    pub fn may_touch(&self, category: &str) -> Result<(), Denied> {
        if self.scope.allows_category(category) {
            Ok(())
        } else {
            Err(Denied {
                code: "category-out-of-scope",
                message: format!(
                    "{} may touch only {}; `{category}` is not among them",
                    self.actor,
                    self.scope.categories.join(", ")
                ),
            })
        }
    }
}

/// What an act reaches of a person's data: the thing every check weighs beside the operation.
#[derive(Debug, Clone, Copy)]
pub enum Reach<'a> {
    /// No personal data (the audit trail, keys, staff, deciding on requests).
    Nothing,
    /// Data of these purposes (none named: no particular purpose) and these categories.
    Data {
        /// The declared purposes the act is for.
        purposes: &'a [&'a Purpose],
        /// The categories it touches (taxonomy keys).
        categories: &'a [&'a str],
    },
    /// Everything held on a person, for every purpose and category: an export, an erasure,
    /// a restriction or objection of all processing. Only an unnarrowed key reaches this far.
    Everything,
}

/// One access: who, within which request, and for support staff, for which ticket.
#[derive(Debug, Clone)]
pub struct Access {
    /// Who.
    pub principal: Principal,
    /// The request it belongs to.
    pub request: Uuid,
    /// The ticket (support), checked by [`crate::audit::ticket`].
    pub ticket: Option<String>,
}

impl Access {
    /// An access by `principal` in a new request.
    pub fn new(principal: Principal) -> Self {
        Self {
            principal,
            request: Uuid::new_v4(),
            ticket: None,
        }
    }

    /// The same access with a ticket.
    #[must_use]
    pub fn with_ticket(mut self, ticket: Option<String>) -> Self {
        self.ticket = ticket;
        self
    }

    /// An audit entry for `action` by this access, to be filled in.
    pub fn entry(&self, action: &str, at: time::OffsetDateTime) -> AuditEntry {
        AuditEntry {
            at,
            request: self.request,
            actor: self.principal.actor.clone(),
            role: self.principal.audit_role().to_owned(),
            action: action.to_owned(),
            purpose: None,
            subject: None,
            categories: Vec::new(),
            outcome: Outcome::Ok,
            code: None,
            ticket: self.ticket.clone(),
            flagged: self.principal.role.needs_ticket(),
            detail: None,
        }
    }

    /// The one check every path calls — a direct endpoint, a request made on someone's behalf,
    /// its approval, a job, an export: may this access do `op` over `reach`? The role bounds
    /// the operations, the scope narrows them, support staff name a ticket for personal data
    /// and stay away from marketing purposes, and [`Reach::Everything`] needs a key that no
    /// purpose or category narrows. `Denied` carries a stable code and what to do.
    pub fn authorize(&self, op: Operation, reach: Reach<'_>) -> Result<(), Denied> {
        self.may(op)?;
        let p = &self.principal;
        match reach {
            Reach::Nothing => Ok(()),
            Reach::Data {
                purposes,
                categories,
            } => {
                for purpose in purposes {
                    p.may_use(purpose)?;
                }
                for category in categories {
                    p.may_touch(category)?;
                }
                Ok(())
            }
            Reach::Everything => {
                let narrowed = [
                    ("purposes", p.scope.purposes.join(", ")),
                    ("categories", p.scope.categories.join(", ")),
                ];
                match narrowed.iter().find(|(_, list)| !list.is_empty()) {
                    None => Ok(()),
                    Some((what, list)) => Err(Denied {
                        code: "scope-too-narrow",
                        message: format!(
                            "{} covers everything held on a person, but {} is narrowed to the {what} {list}; use a key or account without --purpose or --category",
                            op.as_str(),
                            p.actor
                        ),
                    }),
                }
            }
        }
    }

    /// Checks `op` and, for support staff on personal data, that a ticket was given: the first
    /// part of [`Access::authorize`], which every path calls.
    fn may(&self, op: Operation) -> Result<(), Denied> {
        self.principal.may(op)?;
        if op.is_personal() {
            self.ticket_given()?;
        }
        Ok(())
    }

    /// For roles that work on tickets (support), that this access names one.
    pub fn ticket_given(&self) -> Result<(), Denied> {
        if self.principal.role.needs_ticket() && self.ticket.is_none() {
            return Err(Denied {
                code: "ticket-required",
                message: "support staff name the ticket they work on in the `Steward-Reason` header (for example `Steward-Reason: ZD-4821`)".to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_bound_operations() {
        assert!(Role::Admin.allows(Operation::Keys));
        assert!(!Role::Service.allows(Operation::Export));
        assert!(!Role::Service.allows(Operation::Erase));
        assert!(!Role::Auditor.allows(Operation::Read));
        assert!(Role::Dpo.allows(Operation::Export));
        assert!(!Role::Dpo.allows(Operation::Keys));
        assert!(!Role::Support.allows(Operation::Erase));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!("export".parse::<Operation>(), Ok(Operation::Export));
        assert!("exfiltrate".parse::<Operation>().is_err());
    }

    #[test]
    fn a_scope_narrows_and_covers_children() {
        let p = Principal {
            actor: "key:stw_00000000".into(),
            role: Role::Dpo,
            scope: Scope {
                purposes: vec![],
                categories: vec!["user.contact".into()],
                operations: vec![Operation::Read],
            },
        };
        assert!(p.may(Operation::Read).is_ok());
        assert_eq!(
            p.may(Operation::Export).unwrap_err().code,
            "operation-out-of-scope"
        );
        assert!(p.may_touch("user.contact.email").is_ok());
        assert_eq!(
            p.may_touch("user.financial").unwrap_err().code,
            "category-out-of-scope"
        );
    }

    #[test]
    fn support_needs_a_ticket_for_personal_data() {
        let support = Principal {
            actor: "staff:sam".into(),
            role: Role::Support,
            scope: Scope::default(),
        };
        let access = Access::new(support.clone());
        assert_eq!(
            access.may(Operation::Read).unwrap_err().code,
            "ticket-required"
        );
        let access = Access::new(support).with_ticket(Some("ZD-1".into()));
        assert!(access.may(Operation::Read).is_ok());
        assert!(
            access
                .entry("subject.read", time::OffsetDateTime::UNIX_EPOCH)
                .flagged
        );
    }
}
