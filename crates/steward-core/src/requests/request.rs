//! A data-subject request: its kind, where it is in its lifecycle, its due date on the declared
//! calendar, and what was done. The workflow over the vault, the ledger and the mail lives in
//! [`crate::requests`]; this module is the model, with no I/O.
//!
//! Lifecycle: `received` → `awaiting-verification` → `verified` → `awaiting-approval` (when the
//! declaration asks for approval) → `executing` → `completed` | `denied` | `expired`. A request
//! is only `completed` once the person has been told; while a mail cannot be sent it stays
//! `executing` and the mail is retried.

use std::fmt;

use serde::{Deserialize, Serialize};
use steward_policy::declaration::{Right, Rights};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::consent::names;
use crate::requests::storage::RequestRecord;
use crate::storage::StoreError;
use crate::subject::SubjectId;
use crate::time_math;
use crate::vault::Retained;

names! {
    /// Where a request is in its lifecycle.
    Status {
        /// Taken in; nothing decided yet.
        Received = "received",
        /// Waiting for the person to prove who they are.
        AwaitingVerification = "awaiting-verification",
        /// The person is verified.
        Verified = "verified",
        /// Waiting for staff approval.
        AwaitingApproval = "awaiting-approval",
        /// Being carried out, or done and waiting to tell the person.
        Executing = "executing",
        /// Done, and the person told.
        Completed = "completed",
        /// Refused, with the reason told to the person.
        Denied = "denied",
        /// Never verified in the declared time.
        Expired = "expired",
    }
}

impl Status {
    /// Whether nothing more happens to a request in this status.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Denied | Self::Expired)
    }

    /// The statuses still open.
    pub fn open() -> Vec<Self> {
        Self::ALL
            .iter()
            .copied()
            .filter(|s| !s.is_final())
            .collect()
    }

    /// Reads a comma-separated list of statuses, as a request filter takes them; `open`
    /// stands for every open status. The error says what to write instead.
    pub fn parse_list(text: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for s in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if s == "open" {
                out.extend(Self::open().iter().map(|s| s.as_str().to_owned()));
            } else if Self::parse(s).is_some() {
                out.push(s.to_owned());
            } else {
                return Err(format!(
                    "`{s}` is not a status; use open or one of {}",
                    Self::names()
                ));
            }
        }
        Ok(out)
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The kinds of request: the rights of the declaration's vocabulary.
pub type Kind = Right;

/// Whether a kind needs the person verified before it is carried out (an opt-out of sale or
/// sharing does not: CCPA §1798.135 forbids asking for verification).
pub fn needs_verification(kind: Kind) -> bool {
    kind != Right::OptOutSaleShare
}

/// Whether a kind names a purpose (restriction, objection and withdrawal may; none of the
/// others do).
pub fn takes_purpose(kind: Kind) -> bool {
    matches!(
        kind,
        Right::Restriction | Right::Objection | Right::WithdrawConsent
    )
}

/// How the person is verified.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// `email-link`, `email-code`, `account` (vouched for by the operator's application) or
    /// `none` (an opt-out).
    pub method: String,
    /// Changes whenever a new link or code is sent, so an older one stops working. Never
    /// shown (0 in a view).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nonce: u64,
    /// Until when the link or code works.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub expires_at: Option<OffsetDateTime>,
    /// A keyed digest of the code sent (never the code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Wrong codes tried.
    #[serde(default)]
    pub attempts: u32,
    /// The privacy-centre session this verification opened (its token's nonce); 0 once signed
    /// out. Never shown (0 in a view).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub session: u64,
    /// When the person was verified.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub verified_at: Option<OffsetDateTime>,
    /// Who vouched for the person (an API key), for `account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vouched_by: Option<String>,
    /// Why the request waits for approval although the declaration does not ask for it: who
    /// vouched for the person may not do this directly, so a role that may (dpo, admin) must
    /// approve it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_needed: Option<String>,
}

/// An extension of the deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    /// Why, as told to the person.
    pub reason: String,
    /// Who extended it.
    pub by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A decision by staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Who decided.
    pub by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Why (a denial's reason is told to the person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What carrying out the request did. Categories and codes only, never values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Whether the person was found in the vault.
    pub found: bool,
    /// Categories removed (erasure).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Categories kept, each with the reason (erasure).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retained: Vec<Retained>,
    /// Categories changed (rectification).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// Changes that could not be made (rectification): the category and why (an error code,
    /// e.g. `duplicate-identity` when the new address belongs to someone else). The person is
    /// told which, never why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_changed: Vec<(String, String)>,
    /// Purposes whose permit changed (restriction, objection, withdrawal, opt-out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purposes: Vec<String>,
    /// Consent-ledger events written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ledger: Vec<u64>,
    /// Account closure: when the erasure is scheduled.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub erase_at: Option<OffsetDateTime>,
    /// The erasure receipt's digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// What erasure did in the operator's own databases, a line per table
    /// (`wordpress.wp_users: 1 deleted`; kept fields with why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<String>,
}

/// The link to an access package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Download {
    /// Binds the link to this issue of it. Never shown (0 in a view).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nonce: u64,
    /// Until when it works.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Times the package was downloaded.
    #[serde(default)]
    pub downloads: u32,
}

/// A recipient told of a rectification, erasure or restriction (GDPR Art. 19).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The processor's id in the declaration.
    pub recipient: String,
    /// `webhook` or `email`.
    pub channel: String,
    /// The categories concerned.
    pub categories: Vec<String>,
    /// `pending`, `delivered` (the webhook answered 2xx, or the mail was sent) or
    /// `acknowledged` (the recipient confirmed it acted).
    pub status: String,
    /// When it was delivered.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub delivered_at: Option<OffsetDateTime>,
    /// When the recipient acknowledged it.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub acknowledged_at: Option<OffsetDateTime>,
    /// How many times delivery was tried.
    #[serde(default)]
    pub attempts: u32,
    /// Why the last attempt failed (`webhook-unreachable`, `webhook-status-503`,
    /// `mail-failed`); `None` once delivered.
    #[serde(default)]
    pub last_error: Option<String>,
    /// What the recipient needs to act (the identities it knows the person by, and for a
    /// correction the new values of what it receives), sealed under the request's key
    /// (base64) until delivered, then dropped. Never in a view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
}

/// One step of the lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// From which status (`None` at intake).
    pub from: Option<Status>,
    /// To which status.
    pub to: Status,
    /// Who: an API key, a staff member, `person` (by link or code), `steward` (the scheduler).
    pub actor: String,
    /// Why, in a few words.
    pub reason: String,
}

/// Everything about a request that is not personal data, kept as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    /// The purpose (restriction, objection, withdrawal); all applicable ones when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Categories to correct (rectification; the new values are sealed apart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Erasure by closing the account: erased after the declared delay.
    #[serde(default)]
    pub close_account: bool,
    /// Verification state.
    pub verification: Verification,
    /// The due date before any extension.
    #[serde(with = "time::serde::rfc3339")]
    pub due_original: OffsetDateTime,
    /// When receipt must be acknowledged, where the declaration asks for it.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub acknowledge_by: Option<OffsetDateTime>,
    /// When receipt was acknowledged (the mail was sent).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub acknowledged_at: Option<OffsetDateTime>,
    /// The extension, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<Extension>,
    /// The approval, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Decision>,
    /// The denial, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denial: Option<Decision>,
    /// What was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The access package's link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<Download>,
    /// Recipients told (Art. 19).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<Notification>,
    /// Every status change.
    pub history: Vec<Transition>,
}

impl Default for Details {
    fn default() -> Self {
        Self {
            purpose: None,
            categories: Vec::new(),
            close_account: false,
            verification: Verification::default(),
            due_original: OffsetDateTime::UNIX_EPOCH,
            acknowledge_by: None,
            acknowledged_at: None,
            extension: None,
            approval: None,
            denial: None,
            outcome: None,
            download: None,
            notifications: Vec::new(),
            history: Vec::new(),
        }
    }
}

/// A request, as the workflow handles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its id.
    pub id: Uuid,
    /// Its kind.
    pub kind: Kind,
    /// Its status.
    pub status: Status,
    /// The subject, when the address belongs to one.
    pub subject: Option<SubjectId>,
    /// When it was received.
    pub received_at: OffsetDateTime,
    /// When it must be answered (extension included).
    pub due_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// Its revision.
    pub revision: i64,
    /// The address, sealed.
    pub contact: Vec<u8>,
    /// New values, sealed.
    pub payload: Option<Vec<u8>>,
    /// The rest.
    pub details: Details,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("a stored request has {what}"))
}

impl Request {
    /// Reads a stored request.
    pub fn from_record(r: RequestRecord) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.id,
            kind: Right::parse(&r.kind).ok_or_else(|| corrupt("an unknown kind"))?,
            status: Status::parse(&r.status).ok_or_else(|| corrupt("an unknown status"))?,
            subject: r.subject,
            received_at: r.received_at,
            due_at: r.due_at,
            updated_at: r.updated_at,
            revision: r.revision,
            contact: r.contact,
            payload: r.payload,
            details: serde_json::from_str(&r.body)
                .map_err(|e| corrupt(&format!("an unreadable body ({e})")))?,
        })
    }

    /// The stored form.
    pub fn to_record(&self) -> RequestRecord {
        RequestRecord {
            id: self.id,
            kind: self.kind.as_str().to_owned(),
            status: self.status.as_str().to_owned(),
            subject: self.subject,
            received_at: self.received_at,
            due_at: self.due_at,
            updated_at: self.updated_at,
            revision: self.revision,
            contact: self.contact.clone(),
            payload: self.payload.clone(),
            body: serde_json::to_string(&self.details).unwrap_or_else(|_| "{}".to_owned()),
        }
    }

    /// Moves to `to`, recording who and why.
    pub fn transition(&mut self, to: Status, actor: &str, reason: &str, at: OffsetDateTime) {
        self.details.history.push(Transition {
            at,
            from: Some(self.status),
            to,
            actor: actor.to_owned(),
            reason: reason.to_owned(),
        });
        self.status = to;
        self.updated_at = at;
    }

    /// Whether it is past its due date at `now` and still open.
    pub fn overdue(&self, now: OffsetDateTime) -> bool {
        !self.status.is_final() && self.due_at < now
    }

    /// The staff view: everything but the sealed address and values, and the nonces and code
    /// digest that bind links and codes.
    pub fn view(&self, now: OffsetDateTime) -> RequestView {
        let mut details = self.details.clone();
        details.verification.nonce = 0;
        details.verification.session = 0;
        details.verification.code = None;
        if let Some(d) = &mut details.download {
            d.nonce = 0;
        }
        for n in &mut details.notifications {
            n.sealed = None;
        }
        RequestView {
            id: self.id,
            kind: self.kind,
            status: self.status,
            subject: self.subject,
            received_at: self.received_at,
            due_at: self.due_at,
            updated_at: self.updated_at,
            overdue: self.overdue(now),
            details,
        }
    }
}

impl RequestView {
    /// The view for a caller who may not look people up: nothing in it tells whether the
    /// address belongs to anyone (no subject, no outcome, no recipients told).
    #[must_use]
    pub fn without_subject(mut self) -> Self {
        self.subject = None;
        self.details.outcome = None;
        self.details.notifications.clear();
        self
    }
}

/// A request as shown to staff: no address, no values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestView {
    /// Its id.
    pub id: Uuid,
    /// Its kind.
    pub kind: Kind,
    /// Its status.
    pub status: Status,
    /// The subject (pseudonymous id), when known.
    pub subject: Option<SubjectId>,
    /// When it was received.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// When it must be answered.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Whether it is open and past its due date.
    pub overdue: bool,
    /// The rest.
    #[serde(flatten)]
    pub details: Details,
}

/// The due date of a request of `kind` received at `at`: the declared deadline (an opt-out has
/// its own, CCPA's 15 business days), counted on the declared calendar.
pub fn due(kind: Kind, at: OffsetDateTime, rights: &Rights) -> OffsetDateTime {
    let deadline = if kind == Right::OptOutSaleShare {
        rights.opt_out_deadline
    } else {
        rights.deadline
    };
    time_math::add(at, deadline, &rights.holidays)
}

/// The due date after the declared extension (GDPR: two further months from the first due
/// date; CCPA: 45 more days), or `None` when the declaration allows none.
pub fn extended(due_original: OffsetDateTime, rights: &Rights) -> Option<OffsetDateTime> {
    rights
        .extension
        .map(|e| time_math::add(due_original, e, &rights.holidays))
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} request {} ({})", self.kind, self.id, self.status)
    }
}

#[cfg(test)]
mod tests {
    use steward_policy::{Duration, Unit};
    use time::macros::{date, datetime};

    use super::*;

    fn rights(deadline: Duration, extension: Option<Duration>) -> Rights {
        Rights {
            available: Right::ALL.iter().map(|(r, _)| *r).collect(),
            deadline,
            extension,
            acknowledge: None,
            opt_out_deadline: Duration::new(15, Unit::BusinessDay),
            holidays: Vec::new(),
            verification: Vec::new(),
            verification_expires: Duration::new(24, Unit::Hour),
            unverified_expire: Duration::new(30, Unit::Day),
            approval: false,
            notify_identity_change: false,
            immutable: Vec::new(),
            languages: Vec::new(),
            contact: String::new(),
            url: None,
            export_formats: Vec::new(),
        }
    }

    #[test]
    fn one_month_from_the_31st_of_january_is_the_end_of_february() {
        let r = rights(
            Duration::new(1, Unit::Month),
            Some(Duration::new(2, Unit::Month)),
        );
        let d = due(Right::Access, datetime!(2027-01-31 15:00 UTC), &r);
        assert_eq!(d, datetime!(2027-02-28 15:00 UTC));
        assert_eq!(extended(d, &r), Some(datetime!(2027-04-28 15:00 UTC)));
    }

    #[test]
    fn ccpa_counts_45_calendar_days_and_an_opt_out_15_business_days() {
        let mut r = rights(
            Duration::new(45, Unit::Day),
            Some(Duration::new(45, Unit::Day)),
        );
        r.opt_out_deadline = Duration::new(15, Unit::BusinessDay);
        let at = datetime!(2026-11-20 09:00 UTC);
        assert_eq!(due(Right::Erasure, at, &r), datetime!(2027-01-04 09:00 UTC));
        // Friday 20 Nov + 15 business days = Friday 11 Dec.
        assert_eq!(
            due(Right::OptOutSaleShare, at, &r),
            datetime!(2026-12-11 09:00 UTC)
        );
    }

    #[test]
    fn seven_business_days_skip_the_declared_holidays() {
        let mut r = rights(Duration::new(7, Unit::BusinessDay), None);
        r.holidays = vec![date!(2026 - 12 - 25), date!(2026 - 12 - 28)];
        assert_eq!(
            due(Right::Access, datetime!(2026-12-18 09:00 UTC), &r),
            datetime!(2026-12-31 09:00 UTC)
        );
        assert_eq!(extended(datetime!(2026-12-31 09:00 UTC), &r), None);
    }

    #[test]
    fn a_stored_request_reads_back_the_same() {
        let at = datetime!(2026-11-22 10:00 UTC);
        let mut req = Request {
            id: Uuid::from_u128(7),
            kind: Right::Erasure,
            status: Status::Received,
            subject: None,
            received_at: at,
            due_at: at,
            updated_at: at,
            revision: 1,
            contact: vec![1, 2, 3],
            payload: None,
            details: Details {
                due_original: at,
                ..Details::default()
            },
        };
        req.transition(Status::AwaitingVerification, "person", "sent a link", at);
        let back = Request::from_record(req.to_record()).ok();
        assert_eq!(back.as_ref(), Some(&req));
        assert!(req.overdue(at + time::Duration::seconds(1)));
        assert!(!Status::open().contains(&Status::Completed));
        assert!(Status::open().contains(&Status::AwaitingApproval));
    }
}
