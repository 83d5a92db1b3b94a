//! The data-subject request workflow: intake, verification, approval, execution over the
//! vault and the consent ledger, the person told by mail, recipients told (GDPR Art. 19), and
//! the durable jobs that retry what failed.
//!
//! Nothing here tells a caller whether an address belongs to anyone: a request for an unknown
//! address is taken in, verified and answered exactly like a known one (the answer is that
//! nothing is held).
//!
//! The requests context owns data-subject requests ([`request`]: kinds, states, deadlines) and
//! their workflow (here): verification, jobs, notices to recipients. It is the top of the
//! domain: it uses every other context, and none uses it.

pub mod request;
mod session;
pub use session::{PERSON_SESSION, PersonSession};
pub mod storage;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use steward_crypto::{Aad, open, seal};
use steward_policy::declaration::{LawfulBasis, Purpose, Right, Verification as Method};
use steward_policy::retention::{Retention, Trigger};
use steward_policy::taxonomy::covers;
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::access::{Access, Denied, Operation, Principal, Reach, Role, Scope};
use crate::audit::Outcome as AuditOutcome;
use crate::consent::{Action, Evidence, Method as ConsentMethod, Party, TokenError};
use crate::identity::{Identity, IdentityKind};
use crate::ledger::{ConsentError, History, Ledger, Record};
use crate::mail::Mail;
use crate::request::{
    Decision, Details, Download, Extension, Kind, Notification, Outcome, Request, RequestView,
    Status, Transition, Verification, due, extended, needs_verification, takes_purpose,
};
use crate::requests::storage::{Job, NewJob, RequestFilter, RequestStore};
use crate::storage::StoreError;
use crate::subject::{FieldSource, SubjectId};
use crate::time_math;
use crate::vault::{ErasureReceipt, FieldView, Inventory, TrailEntry, VaultError};

/// Wrong codes allowed before a code stops working.
pub const MAX_CODE_ATTEMPTS: u32 = 5;
/// How long an access package's link works.
pub const DOWNLOAD_FOR: time::Duration = time::Duration::days(3);
/// The longest new value a rectification may carry, in characters.
pub const MAX_VALUE: usize = 4096;
/// The most categories one rectification may change.
pub const MAX_CHANGES: usize = 50;
/// The longest reason staff may give.
pub const MAX_REASON: usize = 1000;
const TOKEN_LEN: usize = 1 + 16 + 8 + 8;
const LEASE: time::Duration = time::Duration::minutes(5);

/// Why a request operation failed: a stable code and a sentence that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The kind is not one Steward knows.
    #[error("`{0}` is not a kind of request; use one of {1}")]
    UnknownKind(String, String),
    /// The declaration does not offer this right.
    #[error("the declaration does not offer the `{0}` right; it offers: {1}")]
    NotOffered(String, String),
    /// The address is not an e-mail address.
    #[error("`email` is not a valid e-mail address: write it like name@example.com")]
    BadEmail,
    /// The purpose is not declared.
    #[error("`{0}` is not a declared purpose: use a purpose id from the declaration")]
    UnknownPurpose(String),
    /// The purpose does not fit the kind.
    #[error("{0}")]
    PurposeNotApplicable(String),
    /// A field the request does not take.
    #[error("{0}")]
    Shape(String),
    /// A category that can never be changed.
    #[error("`{category}` can never be changed: the declaration makes `{rule}` immutable")]
    Immutable {
        /// The category asked for.
        category: String,
        /// The declared rule.
        rule: String,
    },
    /// A category no purpose collects.
    #[error("`{0}` is not a category any purpose collects: use a category from the declaration")]
    UnknownCategory(String),
    /// The verification method is not offered.
    #[error(
        "verification by `{0}` is not offered by the declaration, which offers {1}: add \"{0}\" to `verification` in [rights] to offer it (`account` is how a vouched request is verified — `steward request create --vouch`, `\"vouch\": true` — by you or your application, for a person you know)"
    )]
    MethodNotOffered(String, String),
    /// A code for a request that is confirmed by link.
    #[error("this request is confirmed with the link sent by e-mail, not with a code")]
    NotByCode,
    /// No such request.
    #[error("no request has this id")]
    NotFound,
    /// The request is not in a status that allows this.
    #[error("the request is {status}: it cannot be {action} now")]
    WrongState {
        /// Its status.
        status: Status,
        /// What was tried.
        action: &'static str,
    },
    /// A link or code was refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A link that was already used, or replaced by a newer one.
    #[error(
        "this link was already used or replaced by a newer one: use the newest link you were sent"
    )]
    UsedToken,
    /// A download link for another request.
    #[error("this link belongs to another request")]
    WrongRequest,
    /// A wrong verification code.
    #[error("the code is wrong: {0} attempts left")]
    WrongCode(u32),
    /// Too many wrong codes.
    #[error("too many wrong codes: this code no longer works; make a new request")]
    TooManyAttempts,
    /// The deadline was already extended.
    #[error("the deadline was already extended once, to the most the law allows")]
    AlreadyExtended,
    /// The declaration allows no extension.
    #[error("the declaration allows no extension: declare `rights.extension` (e.g. \"2 months\")")]
    NoExtension,
    /// A staff decision without a reason.
    #[error("give a reason (1 to {MAX_REASON} characters): the person is told it")]
    ReasonRequired,
    /// Another writer kept changing the request.
    #[error("the request changed while this was done: try again")]
    Conflict,
    /// The recipient was not told of this request.
    #[error("`{0}` was not told of this request")]
    UnknownRecipient(String),
    /// An acknowledgement link that does not belong to this request and recipient (or no
    /// such request): the same answer for each.
    #[error(
        "this acknowledgement link does not work: use the link from the notice exactly as it was sent"
    )]
    UnknownNotice,
    /// The recipient's secret was already shown; it is shown once.
    #[error(
        "the signing secret of `{recipient}` was already shown; it is shown once: give the recipient a new one with `steward recipient secret {recipient} --rotate` (the old one keeps signing for a day)"
    )]
    SecretShown {
        /// The recipient's id.
        recipient: String,
    },
    /// A notice could not be delivered: its cause (`webhook-unreachable`,
    /// `webhook-status-503`, `mail-failed`).
    #[error("the notice could not be delivered: {0}")]
    Delivery(String),
    /// One of the operator's own databases could not be searched or erased: its name and why
    /// (never a row's value or its connection URL); the request is tried again.
    #[error("{0}")]
    Dataset(String),
    /// Not allowed.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The vault failed or refused.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The ledger failed or refused.
    #[error(transparent)]
    Consent(#[from] ConsentError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing failed.
    #[error("sealing failed: {0}")]
    Crypto(#[from] steward_crypto::CryptoError),
}

impl RequestError {
    /// A stable code for the API and the audit.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownKind(..) => "unknown-kind",
            Self::NotOffered(..) => "right-not-offered",
            Self::BadEmail => "invalid-email",
            Self::UnknownPurpose(_) => "unknown-purpose",
            Self::PurposeNotApplicable(_) => "purpose-not-applicable",
            Self::Shape(_) => "invalid-request",
            Self::Immutable { .. } => "immutable",
            Self::UnknownCategory(_) => "unknown-category",
            Self::MethodNotOffered(..) => "verification-not-offered",
            Self::NotByCode => "not-by-code",
            Self::NotFound => "unknown-request",
            Self::WrongState { .. } => "wrong-state",
            Self::Token(e) => e.code(),
            Self::UsedToken => "used-token",
            Self::WrongRequest => "wrong-request",
            Self::WrongCode(_) => "wrong-code",
            Self::TooManyAttempts => "too-many-attempts",
            Self::AlreadyExtended => "already-extended",
            Self::NoExtension => "no-extension",
            Self::ReasonRequired => "reason-required",
            Self::Conflict => "conflict",
            Self::UnknownRecipient(_) => "unknown-recipient",
            Self::UnknownNotice => "unknown-notice",
            Self::SecretShown { .. } => "secret-already-shown",
            Self::Delivery(_) => "delivery-failed",
            Self::Dataset(_) => "dataset-failed",
            Self::Denied(d) => d.code,
            Self::Vault(e) => e.code(),
            Self::Consent(e) => e.code(),
            Self::Store(_) => "store-failed",
            Self::Crypto(_) => "crypto-failed",
        }
    }

    /// Why a job failed, as its `last_error` and a notice's: the delivery's own cause
    /// (`webhook-status-503`), else the code. Never personal data.
    pub fn failure(&self) -> String {
        match self {
            Self::Delivery(cause) => cause.clone(),
            // The job and the request's history say which database, and why.
            Self::Dataset(cause) => format!("dataset-failed: {cause}"),
            Self::Consent(ConsentError::Mail(_)) => "mail-failed".to_owned(),
            other => other.code().to_owned(),
        }
    }

    /// Whether it is a refusal (the caller's fault) rather than a failure.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            Self::Store(_)
                | Self::Crypto(_)
                | Self::Conflict
                | Self::Delivery(_)
                | Self::Dataset(_)
        ) && !matches!(
            self,
            Self::Vault(VaultError::Store(_) | VaultError::Crypto(_))
        ) && !matches!(self, Self::Consent(e) if !e.is_refusal())
    }
}

/// A request as taken in.
#[derive(Debug, Clone, Default)]
pub struct Intake {
    /// The kind (`access`, `erasure` …).
    pub kind: String,
    /// The person's e-mail address.
    pub email: String,
    /// The purpose (restriction, objection, withdrawal).
    pub purpose: Option<String>,
    /// New values by category (rectification).
    pub changes: Vec<(String, String)>,
    /// Erase by closing the account, after the declared delay (erasure).
    pub close_account: bool,
    /// `email-link` or `email-code` (default: the first the declaration offers).
    pub verification: Option<String>,
}

/// Who speaks for the person a request is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vouch {
    /// Nobody: the person verifies by link or code.
    No,
    /// The operator's application (an API key), for a person signed in to it.
    Application,
    /// The person themself, in a privacy-centre session opened by verifying request `0`.
    Session(Uuid),
}

/// An erasure done for a batch of closed accounts: its result, and what the person's data was
/// before it (category, purpose of collection), for telling recipients.
type Erasing = (Result<ErasureReceipt, VaultError>, Inventory);

/// `title: k = v` lines of a JSON object, for a notice by mail; empty when there are none.
fn lines(title: &str, object: &serde_json::Value) -> String {
    let Some(map) = object.as_object().filter(|m| !m.is_empty()) else {
        return String::new();
    };
    let mut out = format!("{title}:\n");
    for (k, v) in map {
        out.push_str(&format!("  {k}: {}\n", v.as_str().unwrap_or_default()));
    }
    out
}

/// How long the previous secret keeps signing beside a rotated one.
pub const ROTATION_OVERLAP: time::Duration = time::Duration::hours(24);

/// HMAC-SHA256 of `message` under `key`.
fn mac(key: &[u8; 32], message: &[u8]) -> Result<[u8; 32], RequestError> {
    use hmac::{KeyInit, Mac};
    let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .map_err(|_| steward_crypto::CryptoError::Corrupt)?;
    m.update(message);
    Ok(m.finalize().into_bytes().into())
}

/// `parts` joined with each one's length before it, so that no two lists give one message.
fn framed(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u64).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// A recipient's webhook signing secret, as shown once by `steward recipient secret`.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientSecret {
    /// The recipient's id in the declaration.
    pub recipient: String,
    /// Which generation it is (1, then one more per rotation).
    pub generation: u32,
    /// The secret, 64 hex digits: the HMAC-SHA256 key for `Steward-Signature`.
    pub secret: String,
}

/// A key that never shows in a log line.
struct Sealed(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(<redacted>)")
    }
}

/// Posts signed webhooks to recipients (Art. 19 notices). The server implements it over HTTP.
pub trait Notifier: Send + Sync + 'static {
    /// Posts `body` (JSON) to `url` with the `Steward-Signature` header; the HTTP status.
    fn post<'a>(
        &'a self,
        url: &'a str,
        body: &'a str,
        signature: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<u16, String>> + Send + 'a>>;
}

/// A group of rows for the access package (vault fields, consent events, or a table of the
/// operator's own database once connectors provide one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// A short name (`fields`, `consent`, `orders`), used for the CSV file and the sheet.
    pub name: String,
    /// What it holds, for the reader.
    pub title: String,
    /// Where it comes from (`vault`, `consent ledger`, a dataset name).
    pub source: String,
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each as many cells as columns.
    pub rows: Vec<Vec<String>>,
}

/// More personal data for access packages: the seam the connectors to the operator's own
/// databases plug into. Each source returns the groups it holds for a subject.
pub trait DataSource: Send + Sync + 'static {
    /// Its name, shown in the package.
    fn name(&self) -> &str;
    /// The groups held on the person with these identities (kind, value): the vault's
    /// subject's, with the address a request was verified for, or that address alone for a
    /// person the vault does not know (`subject` `None`).
    fn collect<'a>(
        &'a self,
        subject: Option<SubjectId>,
        identities: &'a [(String, String)],
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Group>, String>> + Send + 'a>>;

    /// Erases what the source holds on the person with these identities, as its manifest
    /// says, keying its `hash` action with `hash_key`; one line per table for the request's
    /// outcome (`wordpress.wp_users: 1 deleted`), none when it held nothing. An error leaves the
    /// request to be retried: it is complete only when every source is. The default erases
    /// nothing (a source that only reads).
    fn erase<'a>(
        &'a self,
        _subject: Option<SubjectId>,
        _identities: &'a [(String, String)],
        _hash_key: &'a [u8; 32],
    ) -> Pin<Box<dyn Future<Output = Result<Vec<String>, String>> + Send + 'a>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Everyone whose data of one of `categories` (or their children) the source holds: their
    /// identities (kind, value), at most `limit`, and how many rows hold those categories —
    /// for a breach's affected people. The default knows nobody.
    fn people<'a>(
        &'a self,
        _categories: &'a [String],
        _limit: usize,
    ) -> Pin<Box<dyn Future<Output = Result<People, String>> + Send + 'a>> {
        Box::pin(async { Ok(People::default()) })
    }
}

/// The people a source holds data of some categories on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct People {
    /// Their identities: kind (`email`, `phone`, `username`) and value, each once.
    pub identities: Vec<(String, String)>,
    /// How many rows hold the categories.
    pub rows: u64,
}

/// Everything an access package holds for one person.
#[derive(Debug, Clone, Serialize)]
pub struct AccessData {
    /// The request it answers (`None` from `steward export`).
    pub request: Option<Uuid>,
    /// The subject, when the address belongs to one.
    pub subject: Option<SubjectId>,
    /// When the package was made.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// Identities: kind and value.
    pub identities: Vec<(String, String)>,
    /// Fields with provenance.
    pub fields: Vec<FieldView>,
    /// Fields kept under a legal hold.
    pub held: Vec<FieldView>,
    /// Who accessed the data, and why (disclosures within the operator).
    pub trail: Vec<TrailEntry>,
    /// The consent history.
    pub consent: Option<History>,
    /// The person's requests.
    pub requests: Vec<RequestView>,
    /// Groups from other sources.
    pub groups: Vec<Group>,
}

/// The recipient id whose secret signs a breach's password-reset webhooks to the operator's
/// application (`[breach] password_reset`).
pub const PASSWORD_RESET: &str = "password-reset";

/// The request workflow.
pub struct Requests<S: RequestStore> {
    ledger: Arc<Ledger<S>>,
    // Derived from the vault's root when opened; an error only if the vault has no root.
    contact_key: Result<Sealed, steward_crypto::CryptoError>,
    webhook_key: Result<Sealed, steward_crypto::CryptoError>,
    notifier: Arc<dyn Notifier>,
    sources: Vec<Arc<dyn DataSource>>,
}

impl<S: RequestStore> std::fmt::Debug for Requests<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requests").finish_non_exhaustive()
    }
}

/// What a mail job sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Template {
    VerifyLink,
    VerifyCode,
    Acknowledge,
    Extended,
    Denied,
    Done,
    AccountClosed,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "kebab-case")]
enum Work {
    /// Mail the person; `complete` moves the request to completed once sent.
    Mail { template: Template, complete: bool },
    /// Tell a recipient (Art. 19).
    Notify { recipient: String },
    /// Erase a closed account's data.
    Erase,
    /// Carry out a verified request. Done here rather than while the caller waits, so that
    /// taking a request in costs the same whether or not the address belongs to anyone.
    Execute,
}

/// The identities the operator's own databases are searched by: the vault's (`known`) and
/// the address a request was verified for, each once.
fn with_verified(
    mut known: Vec<(String, String)>,
    verified: &[(String, String)],
) -> Vec<(String, String)> {
    for v in verified {
        if !known.contains(v) {
            known.push(v.clone());
        }
    }
    known
}

fn job(request: Uuid, at: OffsetDateTime, work: &Work) -> NewJob {
    let (kind, payload) = match work {
        Work::Mail { .. } => ("mail", work),
        Work::Notify { .. } => ("notify", work),
        Work::Erase => ("erase", work),
        Work::Execute => ("execute", work),
    };
    NewJob {
        kind: kind.to_owned(),
        request: Some(request),
        run_at: at,
        payload: serde_json::to_string(payload).unwrap_or_default(),
    }
}

/// Whether a verified request is carried out while its maker waits or by the job queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Now,
    Queued,
}

/// A job's request id for a log line (empty for a job of no request).
fn request_text(request: Option<Uuid>) -> String {
    request.map(|r| r.to_string()).unwrap_or_default()
}

/// The access the workflow itself acts with on the vault and the ledger.
fn system() -> Access {
    Access::new(Principal::steward("requests"))
}

/// The access of a recipient acknowledging its notice by link: it may do nothing else.
fn recipient_access(recipient: &str) -> Access {
    Access::new(Principal {
        actor: format!("recipient:{recipient}"),
        role: Role::Service,
        scope: Scope {
            operations: vec![Operation::Request],
            ..Scope::default()
        },
    })
}

/// A request's queued work, as `steward request show` and `GET /v1/requests/{id}` list it.
#[derive(Debug, Clone, Serialize)]
pub struct QueuedWork {
    /// `mail`, `notify` (an Art. 19 notice), `erase` (a closed account) or `execute`.
    pub kind: String,
    /// The recipient, for a notice.
    pub recipient: Option<String>,
    /// How many times it was tried.
    pub attempts: u32,
    /// When it runs next (or ran).
    #[serde(with = "time::serde::rfc3339")]
    pub run_at: OffsetDateTime,
    /// Whether it succeeded.
    pub done: bool,
    /// Why the last attempt failed (`webhook-unreachable`, `webhook-status-503`,
    /// `mail-failed` …).
    pub last_error: Option<String>,
}

impl QueuedWork {
    fn of(job: &Job) -> Self {
        let recipient = match serde_json::from_str::<Work>(&job.payload) {
            Ok(Work::Notify { recipient }) => Some(recipient),
            _ => None,
        };
        Self {
            kind: job.kind.clone(),
            recipient,
            attempts: job.attempts,
            run_at: job.run_at,
            done: job.done_at.is_some(),
            last_error: job.last_error.clone(),
        }
    }
}

/// A recipient's acknowledgement, as answered to it.
#[derive(Debug, Clone, Serialize)]
pub struct Acknowledged {
    /// The request.
    pub request: Uuid,
    /// The recipient's id.
    pub recipient: String,
    /// When it first acknowledged.
    #[serde(with = "time::serde::rfc3339")]
    pub acknowledged_at: OffsetDateTime,
}

/// The access of whoever holds a download link to an access package: the person, who may
/// receive everything held on them and their consent history, and nothing else.
pub fn holder() -> Access {
    Access::new(Principal {
        actor: "person".to_owned(),
        role: Role::Dpo,
        scope: Scope {
            operations: vec![Operation::Export, Operation::Consent],
            ..Scope::default()
        },
    })
}

/// The access of a person acting through a public link or form.
pub fn person() -> Access {
    Access::new(Principal {
        actor: "person".to_owned(),
        role: Role::Service,
        scope: Scope {
            purposes: Vec::new(),
            categories: Vec::new(),
            operations: vec![Operation::Request],
        },
    })
}

fn random_u64() -> Result<u64, steward_crypto::CryptoError> {
    let mut b = [0u8; 8];
    steward_crypto::random_bytes(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

/// Whether `text` has the shape of a request link's token (base64url of its exact length),
/// without checking that it was issued here — for pages that only show a button.
pub fn looks_like_token(text: &str) -> bool {
    text.len() == (TOKEN_LEN + 16).div_ceil(3) * 4 - 2
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A uniformly random 6-digit code.
fn six_digits() -> Result<String, steward_crypto::CryptoError> {
    loop {
        let mut b = [0u8; 4];
        steward_crypto::random_bytes(&mut b)?;
        let n = u32::from_be_bytes(b);
        // Reject the top slice so every code is equally likely.
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

impl<S: RequestStore> Requests<S> {
    /// The workflow over `ledger` (and its vault and mailer), posting webhooks with `notifier`.
    pub fn new(ledger: Arc<Ledger<S>>, notifier: Arc<dyn Notifier>) -> Self {
        let keyring = ledger.vault().keyring();
        let contact_key = keyring.subkey("request-contact").map(Sealed);
        let webhook_key = keyring.subkey("webhook-signing").map(Sealed);
        Self {
            ledger,
            contact_key,
            webhook_key,
            notifier,
            sources: Vec::new(),
        }
    }

    fn contact_key(&self) -> Result<&[u8; 32], RequestError> {
        match &self.contact_key {
            Ok(k) => Ok(&k.0),
            Err(e) => Err(e.clone().into()),
        }
    }

    /// Adds a source of personal data for access packages.
    #[must_use]
    pub fn with_source(mut self, source: Arc<dyn DataSource>) -> Self {
        self.sources.push(source);
        self
    }

    /// Adds what every source holds on the person with `identities` to `data`.
    async fn collect_sources(
        &self,
        subject: Option<SubjectId>,
        identities: &[(String, String)],
        data: &mut AccessData,
    ) -> Result<(), RequestError> {
        if identities.is_empty() {
            return Ok(());
        }
        for source in &self.sources {
            let groups = source
                .collect(subject, identities)
                .await
                .map_err(RequestError::Dataset)?;
            data.groups.extend(groups);
        }
        Ok(())
    }

    /// Erases the person in every source: by the vault's identities of them (`inventory`)
    /// and the address `request` was verified for.
    async fn erase_sources(
        &self,
        subject: Option<SubjectId>,
        inventory: &Inventory,
        request: &Request,
    ) -> Result<Vec<String>, RequestError> {
        let known = inventory
            .identities
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        let identities = with_verified(known, &self.verified_identity(request)?);
        let key = self.ledger.vault().dataset_hash_key()?;
        let mut lines = Vec::new();
        for source in &self.sources {
            let done = source
                .erase(subject, &identities, &key)
                .await
                .map_err(RequestError::Dataset)?;
            lines.extend(done);
        }
        Ok(lines)
    }

    /// Whether any of the operator's own databases holds a row for the address `request` was
    /// made for (false when none is connected).
    async fn sources_hold(&self, request: &Request) -> Result<bool, RequestError> {
        if self.sources.is_empty() {
            return Ok(false);
        }
        let identities = self.verified_identity(request)?;
        for source in &self.sources {
            let groups = source
                .collect(None, &identities)
                .await
                .map_err(RequestError::Dataset)?;
            if groups.iter().any(|g| !g.rows.is_empty()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The address `request` was made for, as an identity (`email`, value), for the
    /// operator's own databases.
    ///
    /// # Errors
    /// When the request's sealed address cannot be opened.
    pub fn verified_identity(
        &self,
        request: &Request,
    ) -> Result<Vec<(String, String)>, RequestError> {
        let email = self.open_text(request.id, "email", &request.contact)?;
        Ok(vec![("email".to_owned(), email)])
    }

    /// The operator's own databases the workflow reaches.
    pub fn sources(&self) -> &[Arc<dyn DataSource>] {
        &self.sources
    }

    /// What webhooks are posted with (Art. 19 notices, breach password resets).
    pub fn notifier(&self) -> &Arc<dyn Notifier> {
        &self.notifier
    }

    /// The ledger beneath the workflow.
    pub fn ledger(&self) -> &Arc<Ledger<S>> {
        &self.ledger
    }

    fn now(&self) -> OffsetDateTime {
        self.ledger.vault().clock().now()
    }

    /// Whether the right to object (Art. 21) reaches purpose `id`: the permit rules decide.
    fn objectable(&self, id: &str) -> bool {
        let rules = self.ledger.rules();
        rules
            .purpose(id)
            .and_then(|i| rules.rule(i))
            .is_some_and(crate::permit::Rule::objectable)
    }

    fn rights(&self) -> &steward_policy::declaration::Rights {
        &self.ledger.vault().declaration().rights
    }

    /// `recipient`'s signing secret of `generation`: HMAC-SHA256 of the recipient id and the
    /// generation under the installation's webhook key (itself derived from the master key), so
    /// each recipient has its own and none is stored.
    fn recipient_key(&self, recipient: &str, generation: u32) -> Result<[u8; 32], RequestError> {
        let key = match &self.webhook_key {
            Ok(k) => &k.0,
            Err(e) => return Err(e.clone().into()),
        };
        mac(
            key,
            &framed(&[
                b"recipient-secret",
                recipient.as_bytes(),
                &generation.to_be_bytes(),
            ]),
        )
    }

    /// Shows `recipient`'s webhook signing secret (hex) once, or with `rotate` makes and shows
    /// a new one; the previous one keeps signing beside it for [`ROTATION_OVERLAP`] so the
    /// recipient can switch without losing a notice. Needs the `keys` operation; audited
    /// (`recipient.secret`, `recipient.secret.rotate`) without the secret.
    ///
    /// # Errors
    ///
    /// [`RequestError::UnknownRecipient`] for an id the declaration does not name;
    /// [`RequestError::SecretShown`] when it was shown and `rotate` is not given.
    pub async fn recipient_secret(
        &self,
        access: &Access,
        recipient: &str,
        rotate: bool,
    ) -> Result<RecipientSecret, RequestError> {
        let action = if rotate {
            "recipient.secret.rotate"
        } else {
            "recipient.secret"
        };
        let result = async {
            access.authorize(Operation::Keys, Reach::Nothing)?;
            let declaration = self.ledger.vault().declaration();
            // The operator's own application takes a breach's forced password resets.
            let contact = if recipient == PASSWORD_RESET {
                declaration.breach.password_reset.as_deref()
            } else {
                declaration
                    .processors
                    .iter()
                    .find(|p| p.id == recipient)
                    .ok_or_else(|| RequestError::UnknownRecipient(recipient.to_owned()))?
                    .contact
                    .as_deref()
            };
            let webhook =
                contact.is_some_and(|c| c.starts_with("https://") || c.starts_with("http://"));
            if !webhook {
                return Err(RequestError::Shape(if recipient == PASSWORD_RESET {
                    "no password-reset webhook is declared, so it needs no signing secret: add `[breach] password_reset = \"https://…\"` to the declaration first".to_owned()
                } else {
                    format!(
                        "`{recipient}` is not told by webhook, so it needs no signing secret: give it `contact = \"https://…\"` in the declaration first"
                    )
                }));
            }
            let generation = self
                .ledger
                .vault()
                .store()
                .claim_recipient_secret(
                    recipient,
                    self.now(),
                    rotate.then(|| self.now() - ROTATION_OVERLAP),
                )
                .await?
                .ok_or_else(|| RequestError::SecretShown {
                    recipient: recipient.to_owned(),
                })?;
            let key = self.recipient_key(recipient, generation)?;
            Ok(RecipientSecret {
                recipient: recipient.to_owned(),
                generation,
                secret: crate::audit::hex(&key),
            })
        }
        .await;
        self.finish(access, action, recipient.to_owned(), result)
            .await
    }

    /// The `Steward-Signature` of a webhook body sent to `recipient` at `at`:
    /// `t=<unix>,v1=<hex HMAC-SHA256 of "<unix>.<body>" under the recipient's secret>`, and a
    /// second `v1=` under the previous secret for [`ROTATION_OVERLAP`] after a rotation.
    pub async fn sign_webhook(
        &self,
        recipient: &str,
        body: &str,
        at: OffsetDateTime,
    ) -> Result<String, RequestError> {
        let state = self
            .ledger
            .vault()
            .store()
            .recipient_secret(recipient)
            .await?;
        let generation = state.as_ref().map_or(1, |s| s.generation);
        let t = at.unix_timestamp();
        let signed = format!("{t}.{body}");
        let mut out = format!(
            "t={t},v1={}",
            crate::audit::hex(&mac(
                &self.recipient_key(recipient, generation)?,
                signed.as_bytes()
            )?)
        );
        if let Some(s) = state
            && let (Some(rotated), Some(previous)) = (s.rotated_at, s.previous)
            && at < rotated + ROTATION_OVERLAP
        {
            out.push_str(&format!(
                ",v1={}",
                crate::audit::hex(&mac(
                    &self.recipient_key(recipient, previous)?,
                    signed.as_bytes()
                )?)
            ));
        }
        Ok(out)
    }

    /// The token in the acknowledgement link a recipient is sent with a notice: bound to the
    /// request and the recipient, so only the notice's recipient can acknowledge it.
    fn ack_token(&self, request: Uuid, recipient: &str) -> Result<String, RequestError> {
        let key = match &self.webhook_key {
            Ok(k) => &k.0,
            Err(e) => return Err(e.clone().into()),
        };
        Ok(crate::audit::hex(&mac(
            key,
            &framed(&[b"acknowledge", request.as_bytes(), recipient.as_bytes()]),
        )?))
    }

    /// The acknowledgement link of `request`'s notice to `recipient`.
    fn ack_url(&self, request: Uuid, recipient: &str) -> Result<String, RequestError> {
        Ok(format!(
            "{}/requests/{request}/notifications/{recipient}/ack?token={}",
            self.ledger.options().public_url.trim_end_matches('/'),
            self.ack_token(request, recipient)?
        ))
    }

    fn seal_text(&self, id: Uuid, field: &str, text: &str) -> Result<Vec<u8>, RequestError> {
        let aad = Aad {
            domain: "request",
            subject: id.as_bytes(),
            field,
            key_version: 1,
        };
        Ok(seal(self.contact_key()?, &aad, text.as_bytes())?)
    }

    fn open_text(&self, id: Uuid, field: &str, sealed: &[u8]) -> Result<String, RequestError> {
        let aad = Aad {
            domain: "request",
            subject: id.as_bytes(),
            field,
            key_version: 1,
        };
        let plain = open(self.contact_key()?, &aad, sealed)?;
        String::from_utf8(plain.to_vec()).map_err(|_| {
            RequestError::Store(StoreError::Backend("a sealed address is not text".into()))
        })
    }

    fn token(&self, kind: u8, id: Uuid, expires: OffsetDateTime, nonce: u64) -> String {
        let mut body = Vec::with_capacity(TOKEN_LEN);
        body.push(kind);
        body.extend_from_slice(id.as_bytes());
        body.extend_from_slice(&expires.unix_timestamp().to_be_bytes());
        body.extend_from_slice(&nonce.to_be_bytes());
        self.ledger.tokens().sign(b"request", &body)
    }

    /// Reads a request token of `kind`: (request, expiry in Unix seconds, nonce).
    fn read_token(&self, kind: u8, text: &str) -> Result<(Uuid, i64, u64), RequestError> {
        let body = self.ledger.tokens().open(b"request", text, TOKEN_LEN)?;
        if body[0] != kind {
            return Err(TokenError::WrongKind.into());
        }
        let id = Uuid::from_slice(&body[1..17]).map_err(|_| TokenError::Malformed)?;
        let mut n = [0u8; 8];
        n.copy_from_slice(&body[17..25]);
        let expires = i64::from_be_bytes(n);
        n.copy_from_slice(&body[25..33]);
        Ok((id, expires, u64::from_be_bytes(n)))
    }

    fn link(&self, path: &str, token: &str) -> String {
        format!(
            "{}{path}?token={token}",
            self.ledger.options().public_url.trim_end_matches('/')
        )
    }

    async fn audit(
        &self,
        access: &Access,
        action: &str,
        req: Option<&Request>,
        detail: String,
        error: Option<&RequestError>,
    ) -> Result<(), RequestError> {
        // The request's own entries name it, never its subject: whether an address belongs to
        // anyone is for those who may look people up, through the request itself. What was
        // done to the subject is in the vault's and the ledger's entries.
        let _ = req;
        let mut entry = access.entry(action, self.now());
        entry.detail = Some(detail);
        if let Some(e) = error {
            entry.outcome = if e.is_refusal() {
                AuditOutcome::Denied
            } else {
                AuditOutcome::Failed
            };
            entry.code = Some(e.code().to_owned());
        }
        self.ledger.vault().record(entry).await?;
        Ok(())
    }

    /// Audits `result` of `action` and passes it on.
    async fn finish<T>(
        &self,
        access: &Access,
        action: &str,
        detail: String,
        result: Result<T, RequestError>,
    ) -> Result<T, RequestError> {
        if let Err(e) = &result {
            self.audit(access, action, None, detail, Some(e)).await?;
        }
        result
    }

    /// Whether `access` may do directly what carrying out a request of `kind` does — the same
    /// [`Access::authorize`] the direct endpoints call, with the same operation and reach: an
    /// access package is an export of everything, an erasure erases everything, a
    /// rectification corrects each category for every purpose that collects it, and a
    /// restriction, objection, withdrawal or opt-out records consent events for its purposes.
    /// Decided from the declaration alone, so the answer does not depend on whether the
    /// address belongs to anyone.
    fn authority(
        &self,
        access: &Access,
        kind: Kind,
        purpose: Option<&str>,
        categories: &[String],
    ) -> Result<(), Denied> {
        let declaration = self.ledger.vault().declaration();
        let consent_over = |purposes: Vec<&Purpose>| {
            access.authorize(
                Operation::Consent,
                Reach::Data {
                    purposes: &purposes,
                    categories: &[],
                },
            )
        };
        match kind {
            Right::Access | Right::Portability => {
                access.authorize(Operation::Export, Reach::Everything)
            }
            Right::Erasure => access.authorize(Operation::Erase, Reach::Everything),
            Right::Rectification => {
                for category in categories {
                    let purposes: Vec<&Purpose> = declaration
                        .purposes
                        .iter()
                        .filter(|p| p.categories.iter().any(|c| covers(c, category)))
                        .collect();
                    access.authorize(
                        Operation::Rectify,
                        Reach::Data {
                            purposes: &purposes,
                            categories: &[category.as_str()],
                        },
                    )?;
                }
                Ok(())
            }
            Right::Restriction | Right::Objection | Right::WithdrawConsent if purpose.is_some() => {
                consent_over(
                    declaration
                        .purposes
                        .iter()
                        .filter(|p| Some(p.id.as_str()) == purpose)
                        .collect(),
                )
            }
            Right::Restriction | Right::Objection => {
                access.authorize(Operation::Consent, Reach::Everything)
            }
            Right::WithdrawConsent => consent_over(
                declaration
                    .purposes
                    .iter()
                    .filter(|p| p.basis == LawfulBasis::Consent)
                    .collect(),
            ),
            Right::OptOutSaleShare => consent_over(
                declaration
                    .purposes
                    .iter()
                    .filter(|p| p.sale || p.share)
                    .collect(),
            ),
        }
    }

    /// Whether `access` may learn whom an e-mail address belongs to — what a look-up by
    /// e-mail needs. Callers who may not see neither the subject nor the outcome of a
    /// request, so no answer tells them whether a person is known.
    pub fn may_look_up(access: &Access) -> bool {
        access
            .authorize(
                Operation::Lookup,
                Reach::Data {
                    purposes: &[],
                    categories: &[IdentityKind::Email.category()],
                },
            )
            .is_ok()
    }

    /// The view of `req` that `access` may see.
    fn view_for(&self, access: &Access, req: &Request) -> RequestView {
        let view = req.view(self.now());
        if Self::may_look_up(access) {
            view
        } else {
            view.without_subject()
        }
    }

    fn check_kind(&self, text: &str) -> Result<Kind, RequestError> {
        let names = || {
            Right::ALL
                .iter()
                .map(|(_, t)| *t)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let kind = Right::parse(text)
            .ok_or_else(|| RequestError::UnknownKind(text.to_owned(), names()))?;
        let available = &self.rights().available;
        if !available.contains(&kind) {
            return Err(RequestError::NotOffered(
                text.to_owned(),
                available
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
        Ok(kind)
    }

    fn check_purpose(&self, kind: Kind, purpose: Option<&str>) -> Result<(), RequestError> {
        let Some(id) = purpose else { return Ok(()) };
        if !takes_purpose(kind) {
            return Err(RequestError::Shape(format!(
                "a `{kind}` request covers everything held: leave out \"purpose\""
            )));
        }
        let p = self
            .ledger
            .vault()
            .declaration()
            .purpose(id)
            .ok_or_else(|| RequestError::UnknownPurpose(id.to_owned()))?;
        match kind {
            Right::WithdrawConsent if p.basis != LawfulBasis::Consent => {
                Err(RequestError::PurposeNotApplicable(format!(
                    "purpose `{id}` is based on {}, not consent: there is no consent to withdraw; make an objection instead",
                    p.basis.as_str()
                )))
            }
            Right::Objection if !self.objectable(id) => {
                Err(RequestError::PurposeNotApplicable(format!(
                    "purpose `{id}` is based on {}: the right to object (Art. 21) does not apply to it",
                    p.basis.as_str()
                )))
            }
            _ => Ok(()),
        }
    }

    fn check_changes(&self, kind: Kind, changes: &[(String, String)]) -> Result<(), RequestError> {
        if kind != Right::Rectification {
            if changes.is_empty() {
                return Ok(());
            }
            return Err(RequestError::Shape(format!(
                "only a rectification carries \"changes\"; leave them out of a `{kind}` request"
            )));
        }
        if changes.is_empty() || changes.len() > MAX_CHANGES {
            return Err(RequestError::Shape(format!(
                "a rectification needs \"changes\": 1 to {MAX_CHANGES} categories with their new values, e.g. {{\"user.name\": \"Ada Lovelace\"}}"
            )));
        }
        let declaration = self.ledger.vault().declaration();
        for (category, value) in changes {
            if let Some(rule) = declaration
                .rights
                .immutable
                .iter()
                .find(|r| covers(r, category))
            {
                return Err(RequestError::Immutable {
                    category: category.clone(),
                    rule: rule.clone(),
                });
            }
            if !declaration
                .purposes
                .iter()
                .any(|p| p.categories.iter().any(|c| covers(c, category)))
            {
                return Err(RequestError::UnknownCategory(category.clone()));
            }
            if value.is_empty() || value.chars().count() > MAX_VALUE {
                return Err(RequestError::Shape(format!(
                    "the new value of `{category}` must be 1 to {MAX_VALUE} characters"
                )));
            }
        }
        Ok(())
    }

    fn method(&self, asked: Option<&str>, vouched: bool) -> Result<Method, RequestError> {
        let offered = &self.rights().verification;
        // What a person may ask for themselves: `account` is the application's, by vouching.
        let list = || {
            let own: Vec<&str> = offered
                .iter()
                .filter(|m| **m != Method::Account)
                .map(|m| m.as_str())
                .collect();
            if own.is_empty() {
                "email-link".to_owned()
            } else {
                own.join(", ")
            }
        };
        let method = if vouched {
            Method::Account
        } else {
            match asked {
                Some("account") => {
                    return Err(RequestError::Shape(format!(
                        "`account` verification is the operator's application vouching for a signed-in person (\"vouch\": true with an API key); a person verifies by {}",
                        list()
                    )));
                }
                Some(text) => Method::parse(text)
                    .ok_or_else(|| RequestError::MethodNotOffered(text.to_owned(), list()))?,
                None => offered
                    .iter()
                    .copied()
                    .find(|m| *m != Method::Account)
                    .unwrap_or(Method::EmailLink),
            }
        };
        let allowed =
            offered.contains(&method) || (offered.is_empty() && method == Method::EmailLink);
        if !allowed {
            return Err(RequestError::MethodNotOffered(
                method.as_str().to_owned(),
                list(),
            ));
        }
        Ok(method)
    }

    /// Takes in a request. `vouched` is the operator's application speaking for a person
    /// signed in to it (an API key, never the public form): the person counts as verified.
    /// The answer is the same whether or not the address belongs to anyone.
    pub async fn create(
        &self,
        access: &Access,
        intake: Intake,
        vouched: bool,
    ) -> Result<RequestView, RequestError> {
        let vouch = if vouched {
            Vouch::Application
        } else {
            Vouch::No
        };
        let result = self.create_inner(access, intake, vouch).await;
        self.finish(access, "request.create", "refused".to_owned(), result)
            .await
    }

    async fn create_inner(
        &self,
        access: &Access,
        intake: Intake,
        vouch: Vouch,
    ) -> Result<RequestView, RequestError> {
        access.authorize(Operation::Request, Reach::Nothing)?;
        let vouched = vouch != Vouch::No;
        if vouch == Vouch::Application && access.principal.actor == "person" {
            return Err(RequestError::Denied(Denied {
                code: "operation-not-allowed",
                message: "only the operator's application (an API key) can vouch for a person"
                    .to_owned(),
            }));
        }
        let kind = self.check_kind(&intake.kind)?;
        self.check_purpose(kind, intake.purpose.as_deref())?;
        self.check_changes(kind, &intake.changes)?;
        if intake.close_account && kind != Right::Erasure {
            return Err(RequestError::Shape(
                "\"close_account\" belongs to an erasure request only".to_owned(),
            ));
        }
        let identity = Identity::parse(IdentityKind::Email, &intake.email)
            .map_err(|_| RequestError::BadEmail)?;
        let method = if needs_verification(kind) && matches!(vouch, Vouch::Session(_)) {
            Some(Method::Account)
        } else if needs_verification(kind) {
            Some(self.method(intake.verification.as_deref(), vouched)?)
        } else if intake.verification.is_some() {
            return Err(RequestError::Shape(format!(
                "a `{kind}` request needs no verification: leave out \"verification\""
            )));
        } else {
            None
        };
        // A request made on someone's behalf does only what its maker could do directly;
        // anything more waits for a role that may. Support staff name their ticket either way.
        let mut approval_needed = None;
        if vouch == Vouch::Application {
            access.ticket_given()?;
            if let Err(denied) = self.authority(
                access,
                kind,
                intake.purpose.as_deref(),
                &intake
                    .changes
                    .iter()
                    .map(|(c, _)| c.clone())
                    .collect::<Vec<_>>(),
            ) {
                approval_needed = Some(format!(
                    "vouched for by {}, who may not do this directly ({}): a role that may must approve it",
                    access.principal.actor, denied.code
                ));
            }
        }
        let vault = self.ledger.vault();
        // Whoever may look people up learns whom the address belongs to, and that counts as a
        // look-up (audited as one); nobody else learns it.
        let subject = if Self::may_look_up(access) {
            vault.lookup_for_request(access, &identity).await?
        } else {
            vault.find(&identity).await?
        };
        let now = self.now();
        let id = Uuid::now_v7();
        let rights = self.rights();
        let due_at = due(kind, now, rights);
        let contact = self.seal_text(id, "email", identity.value())?;
        let payload = if intake.changes.is_empty() {
            None
        } else {
            let json = serde_json::to_string(&intake.changes).unwrap_or_default();
            Some(self.seal_text(id, "changes", &json)?)
        };
        let mut req = Request {
            id,
            kind,
            status: Status::Received,
            subject,
            received_at: now,
            due_at,
            updated_at: now,
            revision: 1,
            contact,
            payload,
            details: Details {
                purpose: intake.purpose.clone(),
                categories: intake.changes.iter().map(|(c, _)| c.clone()).collect(),
                close_account: intake.close_account,
                verification: Verification {
                    method: method.map_or("none", |m| m.as_str()).to_owned(),
                    ..Verification::default()
                },
                due_original: due_at,
                acknowledge_by: rights
                    .acknowledge
                    .map(|a| time_math::add(now, a, &rights.holidays)),
                history: vec![Transition {
                    at: now,
                    from: None,
                    to: Status::Received,
                    actor: access.principal.actor.clone(),
                    reason: "taken in".to_owned(),
                }],
                ..Details::default()
            },
        };
        let mut jobs = Vec::new();
        if req.details.acknowledge_by.is_some() {
            jobs.push(job(
                id,
                now,
                &Work::Mail {
                    template: Template::Acknowledge,
                    complete: false,
                },
            ));
        }
        let actor = access.principal.actor.clone();
        match method {
            Some(Method::Account) => {
                req.details.verification.verified_at = Some(now);
                if let Vouch::Session(earlier) = vouch {
                    // The person proved the address with an earlier request in this session.
                    req.details.verification.method = "session".to_owned();
                    req.details.verification.vouched_by =
                        Some(format!("the person, verified by request {earlier}"));
                    req.transition(
                        Status::Verified,
                        &actor,
                        "the person proved the address earlier in this session",
                        now,
                    );
                } else {
                    req.details.verification.vouched_by = Some(actor.clone());
                    req.details.verification.approval_needed = approval_needed;
                    req.transition(
                        Status::Verified,
                        &actor,
                        "vouched for by the operator's application",
                        now,
                    );
                }
            }
            Some(m) => {
                req.details.verification.nonce = random_u64()?;
                req.details.verification.expires_at = Some(time_math::add(
                    now,
                    rights.verification_expires,
                    &rights.holidays,
                ));
                req.transition(
                    Status::AwaitingVerification,
                    &actor,
                    "verification sent",
                    now,
                );
                let template = if m == Method::EmailCode {
                    Template::VerifyCode
                } else {
                    Template::VerifyLink
                };
                jobs.push(job(
                    id,
                    now,
                    &Work::Mail {
                        template,
                        complete: false,
                    },
                ));
            }
            None => {
                req.transition(
                    Status::Verified,
                    &actor,
                    "an opt-out of sale or sharing needs no verification",
                    now,
                );
            }
        }
        vault
            .store()
            .insert_request(&req.to_record(), &jobs)
            .await?;
        self.audit(
            access,
            "request.create",
            Some(&req),
            format!("{} {} {}", req.id, req.kind, req.status),
            None,
        )
        .await?;
        if req.status == Status::Verified {
            // Carried out at once only for a caller who may know whether the person is known;
            // for anyone else the job queue does it, so the answer costs the same either way.
            let run = if Self::may_look_up(access) {
                Run::Now
            } else {
                Run::Queued
            };
            req = self.advance(req, access, run).await?;
        }
        Ok(self.view_for(access, &req))
    }

    async fn load(&self, id: Uuid) -> Result<Request, RequestError> {
        let record = self
            .ledger
            .vault()
            .store()
            .request(id)
            .await?
            .ok_or(RequestError::NotFound)?;
        Ok(Request::from_record(record)?)
    }

    /// Loads request `id` for a decision by `access` (approve, deny, extend): who decides must
    /// be allowed to decide, and to do what the request asks.
    async fn load_for_decision(&self, access: &Access, id: Uuid) -> Result<Request, RequestError> {
        access.authorize(Operation::Decide, Reach::Nothing)?;
        let req = self.load(id).await?;
        self.authority(
            access,
            req.kind,
            req.details.purpose.as_deref(),
            &req.details.categories,
        )?;
        Ok(req)
    }

    /// Writes `req` (bumping its revision) with `jobs`; `Conflict` when someone else wrote
    /// first.
    async fn save(&self, req: &mut Request, jobs: &[NewJob]) -> Result<(), RequestError> {
        let expected = req.revision;
        req.revision += 1;
        let ok = self
            .ledger
            .vault()
            .store()
            .update_request(&req.to_record(), expected, jobs)
            .await?;
        if ok {
            Ok(())
        } else {
            req.revision = expected;
            Err(RequestError::Conflict)
        }
    }

    /// Moves `req` from `from` to `to`, saves it with `jobs`, audits the transition.
    async fn step(
        &self,
        access: &Access,
        req: &mut Request,
        to: Status,
        reason: &str,
        jobs: &[NewJob],
    ) -> Result<(), RequestError> {
        let from = req.status;
        req.transition(to, &access.principal.actor, reason, self.now());
        self.save(req, jobs).await?;
        self.audit(
            access,
            &format!("request.{}", to.as_str()),
            Some(req),
            format!("{} {} {from}->{to}", req.id, req.kind),
            None,
        )
        .await
    }

    /// After verification: approval when declared (or when whoever vouched may not do it
    /// directly), else execution, now or by the job queue.
    async fn advance(
        &self,
        mut req: Request,
        access: &Access,
        run: Run,
    ) -> Result<Request, RequestError> {
        if req.status != Status::Verified {
            return Ok(req);
        }
        if let Some(why) = req.details.verification.approval_needed.clone() {
            self.step(access, &mut req, Status::AwaitingApproval, &why, &[])
                .await?;
            return Ok(req);
        }
        if self.rights().approval && needs_verification(req.kind) {
            self.step(
                access,
                &mut req,
                Status::AwaitingApproval,
                "waiting for staff approval",
                &[],
            )
            .await?;
            return Ok(req);
        }
        match run {
            Run::Now => self.execute_now(req, access).await,
            Run::Queued => {
                req.updated_at = self.now();
                let execute = job(req.id, self.now(), &Work::Execute);
                self.save(&mut req, &[execute]).await?;
                Ok(req)
            }
        }
    }

    /// Follows a verification link.
    pub async fn verify_link(&self, token: &str) -> Result<RequestView, RequestError> {
        let access = person();
        let result = async {
            let (id, expires, nonce) = self.read_token(1, token)?;
            let req = self.load(id).await?;
            if req.details.verification.nonce != nonce || req.status != Status::AwaitingVerification
            {
                return Err(RequestError::UsedToken);
            }
            if self.now().unix_timestamp() >= expires {
                return Err(TokenError::Expired.into());
            }
            self.verified(req).await
        }
        .await;
        self.finish(&access, "request.verify", "link".to_owned(), result)
            .await
    }

    /// Whether a verification link still works, changing nothing: the page behind the link
    /// says so before offering a button that would fail.
    pub async fn check_link(&self, token: &str) -> Result<(), RequestError> {
        let (id, expires, nonce) = self.read_token(1, token)?;
        let req = self.load(id).await?;
        if req.details.verification.nonce != nonce || req.status != Status::AwaitingVerification {
            return Err(RequestError::UsedToken);
        }
        if self.now().unix_timestamp() >= expires {
            return Err(TokenError::Expired.into());
        }
        Ok(())
    }

    /// Checks a verification code.
    pub async fn verify_code(&self, id: Uuid, code: &str) -> Result<RequestView, RequestError> {
        let access = person();
        let result = async {
            let mut req = self.load(id).await?;
            if req.status != Status::AwaitingVerification {
                return Err(RequestError::WrongState {
                    status: req.status,
                    action: "verified by code",
                });
            }
            if req.details.verification.method != Method::EmailCode.as_str() {
                return Err(RequestError::NotByCode);
            }
            let v = &req.details.verification;
            if v.attempts >= MAX_CODE_ATTEMPTS {
                return Err(RequestError::TooManyAttempts);
            }
            if v.expires_at.is_none_or(|e| self.now() >= e) {
                return Err(TokenError::Expired.into());
            }
            let digest = self.code_digest(id, v.nonce, code.trim());
            let matches = v
                .code
                .as_deref()
                .is_some_and(|c| steward_crypto::constant_time_eq(c.as_bytes(), digest.as_bytes()));
            if !matches {
                req.details.verification.attempts += 1;
                let left = MAX_CODE_ATTEMPTS - req.details.verification.attempts;
                req.updated_at = self.now();
                self.save(&mut req, &[]).await?;
                return Err(if left == 0 {
                    RequestError::TooManyAttempts
                } else {
                    RequestError::WrongCode(left)
                });
            }
            self.verified(req).await
        }
        .await;
        self.finish(&access, "request.verify", format!("{id} code"), result)
            .await
    }

    fn code_digest(&self, id: Uuid, nonce: u64, code: &str) -> String {
        let mut data = id.as_bytes().to_vec();
        data.extend_from_slice(&nonce.to_be_bytes());
        data.extend_from_slice(code.as_bytes());
        crate::audit::hex(&self.ledger.tokens().digest(b"request-code", &data))
    }

    async fn verified(&self, mut req: Request) -> Result<RequestView, RequestError> {
        let now = self.now();
        req.details.verification.verified_at = Some(now);
        req.details.verification.code = None;
        req.details.verification.nonce = 0;
        let person = person();
        self.step(
            &person,
            &mut req,
            Status::Verified,
            "the person proved the address is theirs",
            &[],
        )
        .await?;
        let req = self.advance(req, &person, Run::Queued).await?;
        Ok(req.view(self.now()))
    }

    /// Approves a request waiting for approval, and carries it out.
    pub async fn approve(&self, access: &Access, id: Uuid) -> Result<RequestView, RequestError> {
        let result = async {
            let mut req = self.load_for_decision(access, id).await?;
            if req.status != Status::AwaitingApproval {
                return Err(RequestError::WrongState {
                    status: req.status,
                    action: "approved",
                });
            }
            let actor = access.principal.actor.clone();
            req.details.approval = Some(Decision {
                by: actor.clone(),
                at: self.now(),
                reason: None,
            });
            self.step(access, &mut req, Status::Verified, "approved", &[])
                .await?;
            let req = self.execute_now(req, access).await?;
            Ok(self.view_for(access, &req))
        }
        .await;
        self.finish(access, "request.approve", id.to_string(), result)
            .await
    }

    /// Denies an open request; the person is told the reason.
    pub async fn deny(
        &self,
        access: &Access,
        id: Uuid,
        reason: &str,
    ) -> Result<RequestView, RequestError> {
        let result = async {
            let reason = check_reason(reason)?;
            let mut req = self.load_for_decision(access, id).await?;
            if req.status.is_final() || req.status == Status::Executing {
                return Err(RequestError::WrongState {
                    status: req.status,
                    action: "denied",
                });
            }
            let actor = access.principal.actor.clone();
            req.details.denial = Some(Decision {
                by: actor.clone(),
                at: self.now(),
                reason: Some(reason.clone()),
            });
            let mail = job(
                id,
                self.now(),
                &Work::Mail {
                    template: Template::Denied,
                    complete: false,
                },
            );
            self.step(access, &mut req, Status::Denied, "denied by staff", &[mail])
                .await?;
            Ok(self.view_for(access, &req))
        }
        .await;
        self.finish(access, "request.deny", id.to_string(), result)
            .await
    }

    /// Extends an open request's deadline by the declared extension, once; the person is told
    /// the reason.
    pub async fn extend(
        &self,
        access: &Access,
        id: Uuid,
        reason: &str,
    ) -> Result<RequestView, RequestError> {
        let result = async {
            let reason = check_reason(reason)?;
            let mut req = self.load_for_decision(access, id).await?;
            if req.status.is_final() {
                return Err(RequestError::WrongState {
                    status: req.status,
                    action: "extended",
                });
            }
            if req.details.extension.is_some() {
                return Err(RequestError::AlreadyExtended);
            }
            let until = extended(req.details.due_original, self.rights())
                .ok_or(RequestError::NoExtension)?;
            let now = self.now();
            let actor = access.principal.actor.clone();
            req.details.extension = Some(Extension {
                reason,
                by: actor.clone(),
                at: now,
            });
            req.due_at = until;
            req.updated_at = now;
            let mail = job(
                id,
                now,
                &Work::Mail {
                    template: Template::Extended,
                    complete: false,
                },
            );
            self.save(&mut req, &[mail]).await?;
            self.audit(
                access,
                "request.extend",
                Some(&req),
                format!("{} {} due {}", req.id, req.kind, until.date()),
                None,
            )
            .await?;
            Ok(self.view_for(access, &req))
        }
        .await;
        self.finish(access, "request.extend", id.to_string(), result)
            .await
    }

    /// A request, for staff.
    pub async fn get(
        &self,
        access: &Access,
        id: Uuid,
    ) -> Result<(RequestView, Vec<QueuedWork>), RequestError> {
        let result = async {
            access.authorize(Operation::Decide, Reach::Nothing)?;
            let req = self.load(id).await?;
            // Queued work differs for known and unknown people: for those who may look.
            let jobs = if Self::may_look_up(access) {
                self.ledger
                    .vault()
                    .store()
                    .jobs_of(id)
                    .await?
                    .iter()
                    .map(QueuedWork::of)
                    .collect()
            } else {
                Vec::new()
            };
            Ok((self.view_for(access, &req), jobs))
        }
        .await;
        self.finish(access, "request.show", id.to_string(), result)
            .await
    }

    /// Requests that pass `filter` (`overdue`: open and past due at now), the soonest due
    /// first.
    pub async fn list(
        &self,
        access: &Access,
        mut filter: RequestFilter,
        overdue: bool,
        limit: u32,
    ) -> Result<Vec<RequestView>, RequestError> {
        let result = async {
            access.authorize(Operation::Decide, Reach::Nothing)?;
            let now = self.now();
            if overdue {
                if filter.statuses.is_empty() {
                    filter.statuses = Status::open()
                        .iter()
                        .map(|s| s.as_str().to_owned())
                        .collect();
                } else {
                    filter
                        .statuses
                        .retain(|s| Status::parse(s).is_some_and(|s| !s.is_final()));
                }
                filter.due_before = Some(filter.due_before.map_or(now, |d| d.min(now)));
            }
            let rows = self
                .ledger
                .vault()
                .store()
                .list_requests(&filter, limit.clamp(1, 1000))
                .await?;
            rows.into_iter()
                .map(|r| Ok(self.view_for(access, &Request::from_record(r)?)))
                .collect()
        }
        .await;
        self.finish(access, "request.list", "list".to_owned(), result)
            .await
    }

    /// Records, for a recipient who confirmed some other way (by phone, by letter), that it
    /// acted on an Art. 19 notice: staff who decide requests (`decide`), audited under their
    /// name. Recipients themselves use the link in the notice ([`Self::acknowledge_by_link`]).
    pub async fn acknowledge(
        &self,
        access: &Access,
        id: Uuid,
        recipient: &str,
    ) -> Result<RequestView, RequestError> {
        let result = async {
            access.authorize(Operation::Decide, Reach::Nothing)?;
            let req = self.record_acknowledgement(access, id, recipient).await?;
            Ok(self.view_for(access, &req))
        }
        .await;
        self.finish(access, "request.acknowledge", id.to_string(), result)
            .await
    }

    /// A recipient acknowledges its Art. 19 notice with the link it was sent: the token is
    /// bound to the request and to that recipient, checked in constant time before anything
    /// is read; a wrong token, an unknown request and a recipient not told of it all answer
    /// [`RequestError::UnknownNotice`]. Audited with the recipient as actor.
    pub async fn acknowledge_by_link(
        &self,
        id: Uuid,
        recipient: &str,
        token: &str,
    ) -> Result<Acknowledged, RequestError> {
        // A wrong link touched nothing and names no one: it is refused without an audit entry,
        // so that anonymous callers cannot fill the trail (the token has 256 bits; guessing
        // is hopeless).
        self.check_ack_link(id, recipient, token)?;
        let access = recipient_access(recipient);
        let result = async {
            let req = match self.record_acknowledgement(&access, id, recipient).await {
                Err(RequestError::NotFound | RequestError::UnknownRecipient(_)) => {
                    return Err(RequestError::UnknownNotice);
                }
                other => other?,
            };
            let at = req
                .details
                .notifications
                .iter()
                .find(|n| n.recipient == recipient)
                .and_then(|n| n.acknowledged_at)
                .unwrap_or_else(|| self.now());
            Ok(Acknowledged {
                request: id,
                recipient: recipient.to_owned(),
                acknowledged_at: at,
            })
        }
        .await;
        self.finish(&access, "request.acknowledge", id.to_string(), result)
            .await
    }

    /// Whether an acknowledgement link's token belongs to `id` and `recipient`, without
    /// reading anything (for the page that asks the recipient to confirm).
    pub fn check_ack_link(
        &self,
        id: Uuid,
        recipient: &str,
        token: &str,
    ) -> Result<(), RequestError> {
        let expected = self.ack_token(id, recipient)?;
        if steward_crypto::constant_time_eq(expected.as_bytes(), token.as_bytes()) {
            Ok(())
        } else {
            Err(RequestError::UnknownNotice)
        }
    }

    async fn record_acknowledgement(
        &self,
        access: &Access,
        id: Uuid,
        recipient: &str,
    ) -> Result<Request, RequestError> {
        let now = self.now();
        // Acknowledged once: a replay writes nothing, to the request or the audit.
        let current = self.load(id).await?;
        match current
            .details
            .notifications
            .iter()
            .find(|n| n.recipient == recipient)
        {
            None => return Err(RequestError::UnknownRecipient(recipient.to_owned())),
            Some(n) if n.acknowledged_at.is_some() => return Ok(current),
            Some(_) => {}
        }
        let req = self
            .update(id, |req| {
                let n = req
                    .details
                    .notifications
                    .iter_mut()
                    .find(|n| n.recipient == recipient)
                    .ok_or_else(|| RequestError::UnknownRecipient(recipient.to_owned()))?;
                if n.acknowledged_at.is_none() {
                    n.acknowledged_at = Some(now);
                    n.status = "acknowledged".to_owned();
                }
                Ok(())
            })
            .await?;
        self.audit(
            access,
            "request.acknowledge",
            Some(&req),
            format!("{id} {recipient}"),
            None,
        )
        .await?;
        Ok(req)
    }

    /// How long a closed account waits before its erasure: the longest `min` of the
    /// declared periods after account closure (`None`: erased at once).
    pub fn closure_delay(&self) -> Option<steward_policy::Duration> {
        self.ledger
            .vault()
            .declaration()
            .purposes
            .iter()
            .filter_map(|p| match &p.retention {
                Some(Retention::Period { min, after, .. }) if *after == Trigger::AccountClosure => {
                    Some(*min)
                }
                _ => None,
            })
            .max_by_key(steward_policy::Duration::approx_hours)
    }

    /// The recipients to tell of a change to `touched` — what the person's data was, as
    /// (category, purpose it was collected for) — with a contact (GDPR Art. 19). A recipient
    /// named by purposes is told of data collected for those purposes only; one named by none
    /// (its `categories` declared) of any data in its categories.
    fn recipients(&self, touched: &[(String, Option<String>)]) -> Vec<Notification> {
        let declaration = self.ledger.vault().declaration();
        let mut out = Vec::new();
        for p in &declaration.processors {
            let Some(contact) = &p.contact else { continue };
            let named_by: Vec<&str> = declaration
                .purposes
                .iter()
                .filter(|q| q.recipients.contains(&p.id))
                .map(|q| q.id.as_str())
                .collect();
            let mut categories: Vec<String> = Vec::new();
            for (c, collected_for) in touched {
                let shared = p.categories.iter().any(|pc| covers(pc, c) || covers(c, pc));
                let theirs = named_by.is_empty()
                    || collected_for
                        .as_deref()
                        .is_none_or(|q| named_by.contains(&q));
                if shared && theirs && !categories.contains(c) {
                    categories.push(c.clone());
                }
            }
            if categories.is_empty() {
                continue;
            }
            categories.sort();
            let touched = categories;
            let channel = if contact.starts_with("https://") || contact.starts_with("http://") {
                "webhook"
            } else {
                "email"
            };
            out.push(Notification {
                recipient: p.id.clone(),
                channel: channel.to_owned(),
                categories: touched,
                status: "pending".to_owned(),
                delivered_at: None,
                acknowledged_at: None,
                attempts: 0,
                last_error: None,
                sealed: None,
            });
        }
        out
    }

    /// Carries out a request the job queue picked up, if it is still verified (another
    /// process, or an earlier attempt, may have carried it out already).
    async fn execute_verified(&self, req: Request) -> Result<Request, RequestError> {
        if req.status != Status::Verified {
            return Ok(req);
        }
        // The job that called is retried by the queue when this fails: no second job.
        self.execute(req, &system(), false).await
    }

    /// Carries out a verified (and approved) request.
    /// `access` is who carries it out — whoever vouched for it or approved it (checked with
    /// the same [`Access::authorize`] as their direct calls), or Steward for a person's own
    /// verified request — and so who the vault's audit entries name; consent events a request
    /// causes are written by Steward on its behalf.
    ///
    /// On a failure nothing of the outcome is saved: the request goes back to verified, so it
    /// never stays half done in `executing`, and is tried again in a minute — by a new job
    /// when `queue_retry` (a caller waiting on it), else by the job that called, which the
    /// queue retries (one job per request, however long the failure lasts).
    async fn execute(
        &self,
        req: Request,
        access: &Access,
        queue_retry: bool,
    ) -> Result<Request, RequestError> {
        let id = req.id;
        let result = self.execute_once(req, access).await;
        if let Err(e) = &result
            && let Ok(mut again) = self.load(id).await
            && again.status == Status::Executing
        {
            let retry: Vec<NewJob> = if queue_retry {
                vec![job(
                    id,
                    self.now() + time::Duration::minutes(1),
                    &Work::Execute,
                )]
            } else {
                Vec::new()
            };
            let reason = format!("could not be carried out ({}): tried again", e.failure());
            let _ = self
                .step(&system(), &mut again, Status::Verified, &reason, &retry)
                .await;
        }
        result
    }

    /// Carries out a request for a caller waiting on it: when a store or one of the
    /// operator's databases fails, the request was taken in and will be tried again (its
    /// history says why), so the caller gets it as it stands rather than an error.
    async fn execute_now(&self, req: Request, access: &Access) -> Result<Request, RequestError> {
        let id = req.id;
        match self.execute(req, access, true).await {
            Err(e @ (RequestError::Store(_) | RequestError::Dataset(_))) => {
                match self.load(id).await {
                    Ok(again) if again.status == Status::Verified => Ok(again),
                    _ => Err(e),
                }
            }
            other => other,
        }
    }

    async fn execute_once(
        &self,
        mut req: Request,
        access: &Access,
    ) -> Result<Request, RequestError> {
        self.step(access, &mut req, Status::Executing, "carrying out", &[])
            .await?;
        let now = self.now();
        let mut outcome = Outcome {
            found: req.subject.is_some(),
            ..Outcome::default()
        };
        let vault = self.ledger.vault();
        // What the person's data is before the change, for telling recipients (Art. 19).
        let inventory = match req.subject {
            Some(subject) => vault.inventory(subject).await?,
            None => Inventory::default(),
        };
        let mut new_values: Vec<(String, String)> = Vec::new();
        let mut touched: Vec<String> = Vec::new();
        let mut restricted: Option<Vec<String>> = None;
        let mut complete = true;
        let mut template = Template::Done;
        let mut jobs = Vec::new();
        // The operator's own databases, for an erasure carried out now: first, while the
        // vault still knows the person's identities; for someone the vault does not know, by
        // the address they verified. A failure leaves the request to be retried.
        let delayed = req.details.close_account && self.closure_delay().is_some();
        if req.kind == Right::Erasure && !delayed && !self.sources.is_empty() {
            let lines = self.erase_sources(req.subject, &inventory, &req).await?;
            outcome.found |= !lines.is_empty();
            outcome.datasets = lines;
        }
        if let Some(subject) = req.subject {
            match req.kind {
                Right::Access | Right::Portability => {}
                Right::Rectification => {
                    let sealed = req.payload.clone().unwrap_or_default();
                    let changes: Vec<(String, String)> =
                        serde_json::from_str(&self.open_text(req.id, "changes", &sealed)?)
                            .map_err(|_| {
                                RequestError::Store(StoreError::Backend(
                                    "a request's sealed changes are not readable".into(),
                                ))
                            })?;
                    // Corrected wherever it is held: the identity it is, or each purpose's copy.
                    // A change refused (the new address belongs to someone else) is recorded
                    // and the others still made; a failure stops here and is retried.
                    for (category, value) in &changes {
                        match self
                            .ledger
                            .rectify_everywhere(
                                access,
                                subject,
                                category,
                                value,
                                &FieldSource::Form,
                            )
                            .await
                        {
                            Ok(()) => {
                                outcome.changed.push(category.clone());
                                new_values.push((category.clone(), value.clone()));
                            }
                            Err(e) if e.is_refusal() => outcome
                                .not_changed
                                .push((category.clone(), e.code().to_owned())),
                            Err(e) => return Err(e.into()),
                        }
                    }
                    touched = outcome.changed.clone();
                    // The new values are in the vault now; the request keeps none.
                    req.payload = None;
                }
                Right::Erasure => {
                    let delay = self.closure_delay().filter(|_| req.details.close_account);
                    if let Some(delay) = delay {
                        let r = self.record(subject, Action::Close, None).await?;
                        outcome.ledger.push(r);
                        let at = time_math::add(now, delay, &self.rights().holidays);
                        outcome.erase_at = Some(at);
                        jobs.push(job(req.id, at, &Work::Erase));
                        complete = false;
                        template = Template::AccountClosed;
                    } else {
                        match self.erase_subject(access, subject).await {
                            Ok(receipt) => {
                                touched = receipt.removed.clone();
                                outcome.removed = receipt.removed;
                                outcome.retained = receipt.retained;
                                outcome.receipt = Some(receipt.digest);
                            }
                            Err(VaultError::NotFound) => outcome.found = false,
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                Right::Restriction
                | Right::Objection
                | Right::WithdrawConsent
                | Right::OptOutSaleShare => {
                    let declaration = vault.declaration();
                    let purposes: Vec<&Purpose> = declaration
                        .purposes
                        .iter()
                        .filter(|p| req.details.purpose.as_ref().is_none_or(|id| &p.id == id))
                        .collect();
                    let mut events: Vec<(Action, Option<String>)> = Vec::new();
                    match (req.kind, &req.details.purpose) {
                        (Right::Restriction, None) => events.push((Action::Restrict, None)),
                        (Right::Objection, None) => events.push((Action::Object, None)),
                        (Right::Restriction, Some(p)) => {
                            events.push((Action::Restrict, Some(p.clone())))
                        }
                        (Right::Objection, Some(p)) => {
                            events.push((Action::Object, Some(p.clone())))
                        }
                        (Right::WithdrawConsent, _) => events.extend(
                            purposes
                                .iter()
                                .filter(|p| p.basis == LawfulBasis::Consent)
                                .map(|p| (Action::Withdraw, Some(p.id.clone()))),
                        ),
                        _ => {
                            events.extend(purposes.iter().filter(|p| p.sale || p.share).filter_map(
                                |p| {
                                    if p.basis == LawfulBasis::Consent {
                                        Some((Action::Withdraw, Some(p.id.clone())))
                                    } else if self.objectable(&p.id) {
                                        Some((Action::Object, Some(p.id.clone())))
                                    } else {
                                        None
                                    }
                                },
                            ))
                        }
                    }
                    for (action, purpose) in events {
                        if let Some(p) = &purpose {
                            outcome.purposes.push(p.clone());
                        }
                        let seq = self.record(subject, action, purpose).await?;
                        outcome.ledger.push(seq);
                    }
                    if req.kind == Right::Restriction {
                        restricted = Some(purposes.iter().map(|p| p.id.clone()).collect());
                    }
                }
            }
        }
        // An account closure for an address nobody has runs on the same dates as one for a
        // known person — closed now, done when the erasure would be — so that neither its
        // status nor its queued work tells them apart (the person is told nothing is held).
        if req.subject.is_none()
            && req.kind == Right::Erasure
            && let Some(delay) = self.closure_delay().filter(|_| req.details.close_account)
        {
            let at = time_math::add(now, delay, &self.rights().holidays);
            outcome.erase_at = Some(at);
            jobs.push(job(req.id, at, &Work::Erase));
            complete = false;
            // Held in the operator's own databases: closed like any account, erased there
            // on the date.
            if self.sources_hold(&req).await? {
                outcome.found = true;
                template = Template::AccountClosed;
            }
        }
        // Someone the vault does not know may be in the operator's own databases: then their
        // package holds those rows, and they are told so. A database that cannot be searched
        // leaves the request to be retried, never answered "nothing held".
        if matches!(req.kind, Right::Access | Right::Portability) && !outcome.found {
            outcome.found = self.sources_hold(&req).await?;
        }
        if matches!(req.kind, Right::Access | Right::Portability) {
            req.details.download = Some(Download {
                nonce: random_u64()?,
                expires_at: now + DOWNLOAD_FOR,
                downloads: 0,
            });
        }
        let pairs: Vec<(String, Option<String>)> = match &restricted {
            // A restriction reaches the data collected for the purposes restricted.
            Some(purposes) => inventory
                .held
                .iter()
                .filter(|(_, q)| q.as_ref().is_none_or(|q| purposes.contains(q)))
                .cloned()
                .collect(),
            None => inventory
                .held
                .iter()
                .filter(|(c, _)| touched.iter().any(|t| covers(t, c) || covers(c, t)))
                .cloned()
                .collect(),
        };
        req.details.notifications = self.recipients(&pairs);
        for n in &mut req.details.notifications {
            n.sealed = self.seal_notice(req.id, n, &inventory.identities, &new_values)?;
        }
        for n in &req.details.notifications {
            jobs.push(job(
                req.id,
                now,
                &Work::Notify {
                    recipient: n.recipient.clone(),
                },
            ));
        }
        jobs.push(job(req.id, now, &Work::Mail { template, complete }));
        req.details.outcome = Some(outcome);
        req.updated_at = now;
        self.save(&mut req, &jobs).await?;
        self.audit(
            access,
            "request.execute",
            Some(&req),
            format!("{} {} carried out", req.id, req.kind),
            None,
        )
        .await?;
        Ok(req)
    }

    async fn record(
        &self,
        subject: SubjectId,
        action: Action,
        purpose: Option<String>,
    ) -> Result<u64, RequestError> {
        let r = self
            .ledger
            .record(
                &system(),
                Record {
                    party: Party::Subject(subject),
                    action,
                    purpose,
                    signal: None,
                    link: None,
                    version: None,
                    method: ConsentMethod::Api,
                    evidence: Evidence {
                        notice: Some("data-subject request".to_owned()),
                        ip: None,
                        user_agent: None,
                    },
                },
            )
            .await?;
        Ok(r.seq)
    }

    /// Checks a download link for request `id`: it must have been issued for this request,
    /// be the newest, and not have expired. Counts the download.
    pub async fn open_download(&self, id: Uuid, token: &str) -> Result<Request, RequestError> {
        let access = person();
        let result = async {
            let (token_id, expires, nonce) = self.read_token(2, token)?;
            if token_id != id {
                return Err(RequestError::WrongRequest);
            }
            let mut req = self.load(id).await?;
            let Some(download) = &mut req.details.download else {
                return Err(RequestError::UsedToken);
            };
            if download.nonce != nonce {
                return Err(RequestError::UsedToken);
            }
            if self.now().unix_timestamp() >= expires {
                return Err(TokenError::Expired.into());
            }
            download.downloads += 1;
            req.updated_at = self.now();
            self.save(&mut req, &[]).await?;
            self.audit(
                &access,
                "request.download",
                Some(&req),
                format!("{id}"),
                None,
            )
            .await?;
            Ok(req)
        }
        .await;
        self.finish(&access, "request.download", id.to_string(), result)
            .await
    }

    /// Everything held on `subject` (none: an address the vault does not know), for an access
    /// package; the operator's own databases are searched by the subject's identities and
    /// the `verified` ones (the address a request was verified for).
    pub async fn gather(
        &self,
        access: &Access,
        request: Option<Uuid>,
        subject: Option<SubjectId>,
        verified: &[(String, String)],
    ) -> Result<AccessData, RequestError> {
        self.gather_parts(access, request, subject, verified, true)
            .await
    }

    /// [`Requests::gather`], with the subject's audit trail only when `with_trail` (My data
    /// shows the data, not the trail, and each view adds to the trail).
    pub(crate) async fn gather_parts(
        &self,
        access: &Access,
        request: Option<Uuid>,
        subject: Option<SubjectId>,
        verified: &[(String, String)],
        with_trail: bool,
    ) -> Result<AccessData, RequestError> {
        access.authorize(Operation::Export, Reach::Everything)?;
        let mut data = AccessData {
            request,
            subject,
            generated_at: self.now(),
            identities: Vec::new(),
            fields: Vec::new(),
            held: Vec::new(),
            trail: Vec::new(),
            consent: None,
            requests: Vec::new(),
            groups: Vec::new(),
        };
        let Some(subject) = subject else {
            // Not in the vault: the operator's own databases may still hold them.
            self.collect_sources(None, verified, &mut data).await?;
            return Ok(data);
        };
        let vault = self.ledger.vault();
        match vault.export_parts(access, subject, with_trail).await {
            Ok(export) => {
                data.identities = export.view.identities;
                data.fields = export.view.fields;
                data.held = export.held;
                data.trail = export.trail;
            }
            Err(VaultError::NotFound) => {
                data.held = vault.read_held(access, subject).await?;
            }
            Err(e) => return Err(e.into()),
        }
        let mut history = self.ledger.history(access, subject).await?;
        // The person sees who acted in words, never a staff member's name or a key.
        for event in &mut history.events {
            event.actor = actor_for_person(&event.actor).to_owned();
        }
        data.consent = Some(history);
        let filter = RequestFilter {
            subject: Some(subject),
            ..RequestFilter::default()
        };
        let now = self.now();
        for r in vault.store().list_requests(&filter, 1000).await? {
            data.requests.push(Request::from_record(r)?.view(now));
        }
        let identities = with_verified(data.identities.clone(), verified);
        self.collect_sources(Some(subject), &identities, &mut data)
            .await?;
        // Who the data were shared with (Art. 15(1)(c)), but for what a gag holds back.
        let disclosures = crate::disclosures::told(vault.store(), subject, now).await?;
        if !disclosures.is_empty() {
            data.groups.push(Group {
                name: "disclosures".to_owned(),
                title: "Your data shared with partners, processors and authorities".to_owned(),
                source: "disclosure log".to_owned(),
                columns: [
                    "date",
                    "recipient",
                    "categories",
                    "purpose",
                    "lawful basis",
                    "reference",
                ]
                .map(str::to_owned)
                .to_vec(),
                rows: disclosures
                    .into_iter()
                    .map(|d| {
                        vec![
                            d.at.date().to_string(),
                            d.recipient_name,
                            d.categories.join(", "),
                            d.purpose.unwrap_or_default(),
                            d.basis,
                            d.reference.unwrap_or_default(),
                        ]
                    })
                    .collect(),
            });
        }
        Ok(data)
    }

    /// The subject an e-mail address belongs to, for `steward export --email`: a live one,
    /// or an erased one whose legal hold keeps data (their access package holds it). Needs
    /// the right to export; the export that follows is audited.
    pub async fn subject_of(
        &self,
        access: &Access,
        email: &str,
    ) -> Result<Option<SubjectId>, RequestError> {
        access.authorize(Operation::Export, Reach::Everything)?;
        let identity =
            Identity::parse(IdentityKind::Email, email).map_err(|_| RequestError::BadEmail)?;
        Ok(self.ledger.vault().find(&identity).await?)
    }

    /// Expires requests left unverified past the declared time. Returns how many.
    pub async fn expire(&self) -> Result<u32, RequestError> {
        let now = self.now();
        let rights = self.rights();
        let filter = RequestFilter {
            statuses: vec![Status::AwaitingVerification.as_str().to_owned()],
            ..RequestFilter::default()
        };
        let mut n = 0;
        for record in self
            .ledger
            .vault()
            .store()
            .list_requests(&filter, 1000)
            .await?
        {
            let mut req = Request::from_record(record)?;
            if time_math::add(req.received_at, rights.unverified_expire, &rights.holidays) > now {
                continue;
            }
            req.details.verification.code = None;
            req.details.verification.nonce = 0;
            match self
                .step(
                    &system(),
                    &mut req,
                    Status::Expired,
                    "not verified in the declared time",
                    &[],
                )
                .await
            {
                Ok(()) => n += 1,
                Err(RequestError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Runs up to `limit` due jobs; returns how many ran and how many failed (and will be
    /// retried with backoff).
    pub async fn run_jobs(&self, limit: u32) -> Result<(u32, u32), RequestError> {
        let now = self.now();
        let store = self.ledger.vault().store();
        let jobs = store.claim_jobs(now, now + LEASE, limit).await?;
        let mut erased = self.erase_due(&jobs).await;
        let (mut ran, mut failed) = (0, 0);
        for j in jobs {
            ran += 1;
            match self.run_job(&j, &mut erased).await {
                Ok(()) => {
                    store.finish_job(j.id, self.now()).await?;
                    tracing::debug!(target: "steward::jobs", job = j.id, kind = %j.kind, request = %request_text(j.request), attempt = j.attempts, "job done");
                }
                Err(e) => {
                    failed += 1;
                    // `attempts` counts this one: 1 minute after the first failure, doubling.
                    let backoff = time::Duration::minutes(1 << j.attempts.saturating_sub(1).min(9))
                        .min(time::Duration::hours(6));
                    let retry_at = self.now() + backoff;
                    // The failure's text is what the job keeps as `last_error`: a code and the
                    // recipient or table, never a person's data.
                    let retry = retry_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default();
                    tracing::warn!(target: "steward::jobs", job = j.id, kind = %j.kind, request = %request_text(j.request), attempt = j.attempts, retry_at = %retry, error = %e.failure(), "job failed; it will be retried");
                    store.retry_job(j.id, retry_at, &e.failure()).await?;
                }
            }
        }
        Ok((ran, failed))
    }

    /// Expires what is due and runs jobs until none are due.
    pub async fn tick(&self) -> Result<(), RequestError> {
        self.expire().await?;
        loop {
            let (ran, _) = self.run_jobs(50).await?;
            if ran < 50 {
                return Ok(());
            }
        }
    }

    /// Erases the subjects of the closed accounts among `jobs` in one batch (one write per
    /// database, one audit append), by request. Empty when there is nothing to batch or the
    /// batch failed: each job then erases on its own, and fails and retries on its own.
    async fn erase_due(&self, jobs: &[Job]) -> HashMap<Uuid, Erasing> {
        let mut owners = Vec::new();
        let mut subjects = Vec::new();
        let mut inventories = Vec::new();
        for id in jobs
            .iter()
            .filter(|j| j.kind == "erase")
            .filter_map(|j| j.request)
        {
            let Ok(req) = self.load(id).await else {
                continue;
            };
            let receipt = req
                .details
                .outcome
                .as_ref()
                .and_then(|o| o.receipt.as_ref());
            if let (Some(subject), None) = (req.subject, receipt) {
                let Ok(inventory) = self.ledger.vault().inventory(subject).await else {
                    continue;
                };
                owners.push(id);
                subjects.push(subject);
                inventories.push(inventory);
            }
        }
        // With the operator's own databases, each closure erases them first, one by one.
        if subjects.len() < 2 || !self.sources.is_empty() {
            return HashMap::new();
        }
        match self.ledger.erase(&system(), &subjects).await {
            Ok(results) => owners
                .into_iter()
                .zip(results.into_iter().zip(inventories))
                .collect(),
            Err(_) => HashMap::new(),
        }
    }

    /// Erases one subject through the ledger (so its permits follow), with the vault's own
    /// per-subject result.
    async fn erase_subject(
        &self,
        access: &Access,
        subject: SubjectId,
    ) -> Result<ErasureReceipt, VaultError> {
        match self.ledger.erase(access, &[subject]).await {
            Ok(mut results) => results.pop().unwrap_or(Err(VaultError::NotFound)),
            Err(ConsentError::Vault(e)) => Err(e),
            Err(e) => Err(VaultError::Store(StoreError::Backend(e.to_string()))),
        }
    }

    async fn run_job(
        &self,
        j: &Job,
        erased: &mut HashMap<Uuid, Erasing>,
    ) -> Result<(), RequestError> {
        let work: Work = serde_json::from_str(&j.payload).map_err(|e| {
            RequestError::Store(StoreError::Backend(format!(
                "job {} is unreadable: {e}",
                j.id
            )))
        })?;
        let id = j.request.ok_or(RequestError::NotFound)?;
        match work {
            Work::Mail { template, complete } => self.mail(id, template, complete).await,
            Work::Notify { recipient } => self.notify(id, &recipient).await,
            Work::Erase => self.erase_closed(id, erased.remove(&id)).await,
            Work::Execute => {
                let req = self.load(id).await?;
                self.execute_verified(req).await.map(drop)
            }
        }
    }

    /// Erases a closed account's subject (or takes the result of the batch it was erased in)
    /// and completes the request.
    async fn erase_closed(&self, id: Uuid, batched: Option<Erasing>) -> Result<(), RequestError> {
        let mut req = self.load(id).await?;
        let mut outcome = req.details.outcome.clone().unwrap_or_default();
        // The operator's own databases first, while the vault still knows the person's
        // identities (a batch erased the vault already, and kept them): a failure leaves the
        // closure to be retried with the vault untouched.
        if !self.sources.is_empty() && outcome.receipt.is_none() && req.status == Status::Executing
        {
            let fetched;
            let before: &Inventory = match (&batched, req.subject) {
                (Some((_, before)), _) => before,
                (None, Some(subject)) => {
                    fetched = self.ledger.vault().inventory(subject).await?;
                    &fetched
                }
                (None, None) => {
                    fetched = Inventory::default();
                    &fetched
                }
            };
            let lines = self.erase_sources(req.subject, before, &req).await?;
            // A retry finds nothing left: what the first attempt erased stays recorded.
            if !lines.is_empty() {
                outcome.found = true;
                outcome.datasets = lines;
            }
        }
        let Some(subject) = req.subject else {
            // Nobody in the vault: erased in the operator's databases (and told, as anyone
            // whose account is erased), or nothing held, as they were told at the closure.
            if req.status == Status::Executing {
                let found = outcome.found;
                req.details.outcome = Some(outcome);
                if found {
                    let done = job(
                        id,
                        self.now(),
                        &Work::Mail {
                            template: Template::Done,
                            complete: true,
                        },
                    );
                    req.updated_at = self.now();
                    return self.save(&mut req, &[done]).await;
                }
                return self
                    .step(
                        &system(),
                        &mut req,
                        Status::Completed,
                        "the closure's date came",
                        &[],
                    )
                    .await;
            }
            return Ok(());
        };
        let mut inventory = Inventory::default();
        if outcome.receipt.is_none() {
            let result = match batched {
                Some((r, before)) => {
                    inventory = before;
                    r
                }
                None => {
                    inventory = self.ledger.vault().inventory(subject).await?;
                    self.erase_subject(&system(), subject).await
                }
            };
            match result {
                Ok(receipt) => {
                    outcome.removed = receipt.removed;
                    outcome.retained = receipt.retained;
                    outcome.receipt = Some(receipt.digest);
                }
                Err(VaultError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let now = self.now();
        let touched: Vec<(String, Option<String>)> = inventory
            .held
            .iter()
            .filter(|(c, _)| outcome.removed.iter().any(|t| covers(t, c) || covers(c, t)))
            .cloned()
            .collect();
        req.details.outcome = Some(outcome);
        let mut jobs = Vec::new();
        for mut n in self.recipients(&touched) {
            n.sealed = self.seal_notice(id, &n, &inventory.identities, &[])?;
            jobs.push(job(
                id,
                now,
                &Work::Notify {
                    recipient: n.recipient.clone(),
                },
            ));
            req.details.notifications.push(n);
        }
        jobs.push(job(
            id,
            now,
            &Work::Mail {
                template: Template::Done,
                complete: true,
            },
        ));
        req.updated_at = now;
        self.save(&mut req, &jobs).await
    }

    /// Delivers `request`'s notice to `recipient` and records the attempt on the notice:
    /// delivered, or the failure's cause (which the job retries).
    async fn notify(&self, id: Uuid, recipient: &str) -> Result<(), RequestError> {
        let req = self.load(id).await?;
        let Some(n) = req
            .details
            .notifications
            .iter()
            .find(|n| n.recipient == recipient)
        else {
            return Ok(());
        };
        if n.delivered_at.is_some() {
            return Ok(());
        }
        let now = self.now();
        let delivered = self.deliver(&req, n, now).await;
        // A disclosure to a recipient: in the person's own trail (their access package lists
        // it), with the categories and never a value.
        let mut entry = system().entry("subject.notify-recipient", now);
        entry.subject = req.subject;
        entry.categories = n.categories.clone();
        entry.detail = Some(format!(
            "{} notice to {} by {}",
            req.kind, n.recipient, n.channel
        ));
        if let Err(e) = &delivered {
            entry.outcome = AuditOutcome::Failed;
            entry.code = Some(e.failure());
        }
        self.ledger.vault().record(entry).await?;
        self.update(id, |req| {
            if let Some(n) = req
                .details
                .notifications
                .iter_mut()
                .find(|n| n.recipient == recipient)
                && n.delivered_at.is_none()
            {
                n.attempts += 1;
                match &delivered {
                    Ok(()) => {
                        n.delivered_at = Some(now);
                        n.last_error = None;
                        n.sealed = None;
                        if n.status == "pending" {
                            n.status = "delivered".to_owned();
                        }
                    }
                    Err(e) => n.last_error = Some(e.failure()),
                }
            }
            Ok(())
        })
        .await?;
        delivered
    }

    /// What `n`'s recipient needs to act on it, sealed: the identities it knows the person by
    /// (those in the categories it receives) and the new values of the categories it was told
    /// of. `None` when there is nothing of the kind.
    fn seal_notice(
        &self,
        request: Uuid,
        n: &Notification,
        identities: &[(String, Zeroizing<String>)],
        changes: &[(String, String)],
    ) -> Result<Option<String>, RequestError> {
        use base64::Engine as _;
        let declaration = self.ledger.vault().declaration();
        let Some(p) = declaration.processor(&n.recipient) else {
            return Ok(None);
        };
        let receives = |c: &str| p.categories.iter().any(|pc| covers(pc, c));
        let known: serde_json::Map<String, serde_json::Value> = identities
            .iter()
            .filter(|(kind, _)| IdentityKind::parse(kind).is_ok_and(|k| receives(k.category())))
            .map(|(kind, value)| (kind.clone(), serde_json::Value::from(value.as_str())))
            .collect();
        let new: serde_json::Map<String, serde_json::Value> = changes
            .iter()
            .filter(|(c, _)| n.categories.contains(c))
            .map(|(c, v)| (c.clone(), serde_json::Value::from(v.as_str())))
            .collect();
        if known.is_empty() && new.is_empty() {
            return Ok(None);
        }
        let text =
            Zeroizing::new(serde_json::json!({ "identities": known, "changes": new }).to_string());
        let sealed = self.seal_text(request, &format!("notice:{}", n.recipient), &text)?;
        Ok(Some(
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(sealed),
        ))
    }

    /// Opens what [`Self::seal_notice`] sealed: `(identities, changes)` as JSON objects.
    fn open_notice(
        &self,
        request: Uuid,
        n: &Notification,
    ) -> Result<(serde_json::Value, serde_json::Value), RequestError> {
        use base64::Engine as _;
        let Some(sealed) = &n.sealed else {
            return Ok((serde_json::json!({}), serde_json::json!({})));
        };
        let unreadable = || {
            RequestError::Store(StoreError::Backend(
                "a sealed notice is not readable".into(),
            ))
        };
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(sealed)
            .map_err(|_| unreadable())?;
        let text =
            Zeroizing::new(self.open_text(request, &format!("notice:{}", n.recipient), &bytes)?);
        let mut v: serde_json::Value = serde_json::from_str(&text).map_err(|_| unreadable())?;
        Ok((v["identities"].take(), v["changes"].take()))
    }

    /// Sends one notice: a signed webhook, or a mail.
    async fn deliver(
        &self,
        req: &Request,
        n: &Notification,
        now: OffsetDateTime,
    ) -> Result<(), RequestError> {
        let processor = self
            .ledger
            .vault()
            .declaration()
            .processors
            .iter()
            .find(|p| p.id == n.recipient)
            .ok_or_else(|| RequestError::UnknownRecipient(n.recipient.clone()))?;
        let contact = processor.contact.clone().unwrap_or_default();
        let acknowledge = self.ack_url(req.id, &n.recipient)?;
        let (identities, changes) = self.open_notice(req.id, n)?;
        let body = Zeroizing::new(
            serde_json::json!({
                "type": "steward.request.notice",
                "request": req.id,
                "recipient": n.recipient,
                "kind": req.kind.as_str(),
                "subject": req.subject,
                "identities": identities,
                "categories": n.categories,
                "changes": changes,
                "purpose": req.details.purpose,
                "at": now.unix_timestamp(),
                "acknowledge": &acknowledge,
            })
            .to_string(),
        );
        if n.channel == "webhook" {
            let signature = self.sign_webhook(&n.recipient, &body, now).await?;
            let status = self
                .notifier
                .post(&contact, &body, &signature)
                .await
                .map_err(|_| RequestError::Delivery("webhook-unreachable".to_owned()))?;
            if !(200..300).contains(&status) {
                return Err(RequestError::Delivery(format!("webhook-status-{status}")));
            }
            Ok(())
        } else {
            let controller = &self.ledger.vault().declaration().controller.name;
            let mail = Mail {
                to: contact,
                subject: format!(
                    "{controller}: a data-subject request concerns data we shared with you"
                ),
                text: format!(
                    "{controller} carried out a {} request (GDPR Art. 19).\n\nRequest: {}\nSubject (pseudonymous id): {}\n{}Categories: {}\n{}\nPlease apply the same change to the data you hold, then confirm by opening this link (it is yours alone):\n{}\n",
                    req.kind,
                    req.id,
                    req.subject.map(|s| s.0.to_string()).unwrap_or_default(),
                    lines("Known to you as", &identities),
                    n.categories.join(", "),
                    lines("New values", &changes),
                    acknowledge,
                ),
                headers: Vec::new(),
                kind: "request.recipient-notice",
            };
            self.ledger.send(&system(), None, &mail).await?;
            Ok(())
        }
    }

    /// Loads, changes and saves a request, retrying when another writer came first; the
    /// request as saved.
    async fn update(
        &self,
        id: Uuid,
        mut change: impl FnMut(&mut Request) -> Result<(), RequestError>,
    ) -> Result<Request, RequestError> {
        for _ in 0..5 {
            let mut req = self.load(id).await?;
            change(&mut req)?;
            req.updated_at = self.now();
            match self.save(&mut req, &[]).await {
                Err(RequestError::Conflict) => continue,
                other => return other.map(|()| req),
            }
        }
        Err(RequestError::Conflict)
    }

    async fn mail(&self, id: Uuid, template: Template, complete: bool) -> Result<(), RequestError> {
        let mut req = self.load(id).await?;
        let to = self.open_text(id, "email", &req.contact)?;
        let mut code = None;
        match template {
            Template::VerifyLink | Template::VerifyCode
                if req.status != Status::AwaitingVerification =>
            {
                return Ok(());
            }
            Template::VerifyCode => {
                // A new code each time the mail is (re)sent; only its digest is kept.
                let c = six_digits()?;
                let v = &mut req.details.verification;
                v.code = Some(self.code_digest(id, v.nonce, &c));
                v.attempts = 0;
                req.updated_at = self.now();
                self.save(&mut req, &[]).await?;
                code = Some(c);
            }
            _ => {}
        }
        let mail = self.render(&req, template, &to, code.as_deref());
        self.ledger.send(&system(), req.subject, &mail).await?;
        let now = self.now();
        if template == Template::Acknowledge {
            self.update(id, |r| {
                r.details.acknowledged_at = Some(now);
                Ok(())
            })
            .await?;
        }
        if complete {
            for _ in 0..5 {
                let mut req = self.load(id).await?;
                if req.status != Status::Executing {
                    return Ok(());
                }
                match self
                    .step(
                        &system(),
                        &mut req,
                        Status::Completed,
                        "done, and the person told",
                        &[],
                    )
                    .await
                {
                    Err(RequestError::Conflict) => continue,
                    other => return other,
                }
            }
            return Err(RequestError::Conflict);
        }
        Ok(())
    }

    fn render(&self, req: &Request, template: Template, to: &str, code: Option<&str>) -> Mail {
        let declaration = self.ledger.vault().declaration();
        let controller = &declaration.controller.name;
        let contact = &declaration.rights.contact;
        let kind = kind_words(req.kind);
        let due = req.due_at.date();
        let (subject, text) = match template {
            Template::VerifyLink => {
                let expires = req
                    .details
                    .verification
                    .expires_at
                    .unwrap_or(req.received_at);
                let token = self.token(1, req.id, expires, req.details.verification.nonce);
                (
                    verify_subject(controller, req.kind),
                    format!(
                        "We received a request to {kind} made with this e-mail address.\n\nIf it was you, confirm it here (the link works until {}):\n{}\n\nIf it was not you, ignore this message: nothing will happen.\n\nReference: {}\n",
                        expires.date(),
                        self.link("/requests/verify", &token),
                        req.id
                    ),
                )
            }
            Template::VerifyCode => (
                format!("{controller}: your verification code"),
                format!(
                    "We received a request to {kind} made with this e-mail address.\n\nIf it was you, enter this code where you made the request: {}\n\nIt works until {} and for {MAX_CODE_ATTEMPTS} attempts. If it was not you, ignore this message.\n\nReference: {}\n",
                    code.unwrap_or_default(),
                    req.details
                        .verification
                        .expires_at
                        .map(|e| e.date().to_string())
                        .unwrap_or_default(),
                    req.id
                ),
            ),
            Template::Acknowledge => (
                format!("{controller}: we received your request"),
                format!(
                    "We received your request to {kind} on {}. We will answer by {due}.\n\nReference: {}\nQuestions: {contact}\n",
                    req.received_at.date(),
                    req.id
                ),
            ),
            Template::Extended => (
                format!("{controller}: we need more time for your request"),
                format!(
                    "We need more time to answer your request to {kind}. We will answer by {due}.\n\nWhy: {}\n\nReference: {}\nQuestions: {contact}\n",
                    req.details
                        .extension
                        .as_ref()
                        .map(|e| e.reason.as_str())
                        .unwrap_or_default(),
                    req.id
                ),
            ),
            Template::Denied => (
                format!("{controller}: about your request"),
                format!(
                    "We cannot carry out your request to {kind}.\n\nWhy: {}\n\nYou may complain to a supervisory authority{}.\n\nReference: {}\nQuestions: {contact}\n",
                    req.details
                        .denial
                        .as_ref()
                        .and_then(|d| d.reason.as_deref())
                        .unwrap_or_default(),
                    declaration
                        .controller
                        .authority
                        .as_ref()
                        .map(|a| format!(" ({})", a.name))
                        .unwrap_or_default(),
                    req.id
                ),
            ),
            Template::AccountClosed => (
                format!("{controller}: your account is closed"),
                format!(
                    "Your account is closed. Your data will be erased on {}, as our privacy policy says; we will write again when it is done.\n\nReference: {}\nQuestions: {contact}\n",
                    req.details
                        .outcome
                        .as_ref()
                        .and_then(|o| o.erase_at)
                        .map(|d| d.date().to_string())
                        .unwrap_or_default(),
                    req.id
                ),
            ),
            Template::Done => (
                format!("{controller}: your request is done"),
                self.done_text(req, contact),
            ),
        };
        Mail {
            to: to.to_owned(),
            subject,
            text,
            headers: Vec::new(),
            kind: match template {
                Template::VerifyLink => "request.verify-link",
                Template::VerifyCode => "request.verify-code",
                Template::Acknowledge => "request.acknowledge",
                Template::Extended => "request.extended",
                Template::Denied => "request.denied",
                Template::AccountClosed => "request.account-closed",
                Template::Done => "request.done",
            },
        }
    }

    fn done_text(&self, req: &Request, contact: &str) -> String {
        let outcome = req.details.outcome.clone().unwrap_or_default();
        let mut text = String::new();
        // Data categories as the person reads them ("Name and e-mail address"), never keys.
        let declaration = self.ledger.vault().declaration();
        let names = |keys: &[String]| steward_policy::notice::category_list(declaration, keys);
        match req.kind {
            Right::Access | Right::Portability => {
                if let Some(d) = &req.details.download {
                    let token = self.token(2, req.id, d.expires_at, d.nonce);
                    text.push_str(if outcome.found {
                        "Your data is ready: a ZIP file with a readable page, JSON, CSV and a spreadsheet."
                    } else {
                        "We hold no personal data linked to this e-mail address. The ZIP file below says so, with what we must tell you about how we process personal data."
                    });
                    text.push_str(&format!(
                        "\n\nDownload it here (the link works until {}):\n{}\n",
                        d.expires_at.date(),
                        self.link(&format!("/requests/{}/package", req.id), &token)
                    ));
                }
            }
            Right::Rectification if outcome.found => {
                if !outcome.changed.is_empty() {
                    text.push_str("Your data was changed as you asked. Changed: ");
                    text.push_str(&names(&outcome.changed));
                    text.push_str(".\n");
                }
                if !outcome.not_changed.is_empty() {
                    let keys: Vec<String> =
                        outcome.not_changed.iter().map(|(c, _)| c.clone()).collect();
                    text.push_str(&format!(
                        "\nWe could not make this change: {}. The value you gave cannot be used for your account; write to us at {} and we will help.\n",
                        names(&keys),
                        self.rights().contact
                    ));
                }
            }
            Right::Erasure if outcome.found => {
                text.push_str("Your data was erased.\n\n");
                if !outcome.removed.is_empty() {
                    text.push_str("Removed: ");
                    text.push_str(&names(&outcome.removed));
                    text.push('\n');
                }
                // The operator's own databases, by name (`shop.customer: 1 deleted` → shop).
                let mut databases: Vec<&str> = outcome
                    .datasets
                    .iter()
                    .filter_map(|l| l.split('.').next())
                    .collect();
                databases.dedup();
                if !databases.is_empty() {
                    text.push_str(&format!(
                        "Erased in our own databases: {}.\n",
                        databases.join(", ")
                    ));
                }
                if !outcome.retained.is_empty() {
                    text.push_str("\nKept, because the law requires it:\n");
                    for r in &outcome.retained {
                        let until = r.until.map(|u| format!(" (until {})", u.date())).unwrap_or_default();
                        text.push_str(&format!("- {}: {}{until}\n", names(std::slice::from_ref(&r.category)), r.reason));
                    }
                }
            }
            Right::Restriction | Right::Objection | Right::WithdrawConsent | Right::OptOutSaleShare
                if outcome.found =>
            {
                text.push_str(&format!(
                    "Done: your request to {} is in effect from now on{}.\n",
                    kind_words(req.kind),
                    if outcome.purposes.is_empty() {
                        String::new()
                    } else {
                        format!(" for: {}", outcome.purposes.join(", "))
                    }
                ));
            }
            _ => text.push_str("We hold no personal data linked to this e-mail address, so there was nothing to change.\n"),
        }
        text.push_str(&format!("\nReference: {}\nQuestions: {contact}\n", req.id));
        text
    }
}

/// Who wrote a consent event, as the person is told: `you`, `our staff`, `our application`,
/// `us` — the operator's audit keeps the names.
fn actor_for_person(actor: &str) -> &'static str {
    if actor == "person" || actor.starts_with("public:") {
        "you"
    } else if actor.starts_with("staff:") {
        "our staff"
    } else if actor.starts_with("key:") {
        "our application"
    } else {
        "us"
    }
}

/// What a request of `kind` asks for, as it reads after "your request to": "see your data",
/// "opt out of the sale or sharing of your data". The mails say it, and the access package
/// names requests and rights with it.
pub fn kind_words(kind: Kind) -> &'static str {
    match kind {
        Right::Access => "see your data",
        Right::Portability => "receive your data",
        Right::Rectification => "correct your data",
        Right::Erasure => "erase your data",
        Right::Restriction => "restrict the use of your data",
        Right::Objection => "object to the use of your data",
        Right::OptOutSaleShare => "opt out of the sale or sharing of your data",
        Right::WithdrawConsent => "withdraw your consent",
    }
}

/// The subject of the mail that asks the person to confirm a request by its link.
fn verify_subject(controller: &str, kind: Kind) -> String {
    format!("{controller}: confirm your request to {}", kind_words(kind))
}

fn check_reason(reason: &str) -> Result<String, RequestError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Err(RequestError::ReasonRequired);
    }
    Ok(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_mail_subject_reads_as_english() {
        let subjects: Vec<String> = Right::ALL
            .iter()
            .map(|(kind, _)| verify_subject("Mallegro", *kind))
            .collect();
        assert_eq!(
            subjects,
            [
                "Mallegro: confirm your request to see your data",
                "Mallegro: confirm your request to receive your data",
                "Mallegro: confirm your request to correct your data",
                "Mallegro: confirm your request to erase your data",
                "Mallegro: confirm your request to restrict the use of your data",
                "Mallegro: confirm your request to object to the use of your data",
                "Mallegro: confirm your request to opt out of the sale or sharing of your data",
                "Mallegro: confirm your request to withdraw your consent",
            ]
        );
        // Every sentence of the mails that names the kind, for every kind.
        for (kind, code) in Right::ALL {
            let words = kind_words(*kind);
            for sentence in [
                verify_subject("Mallegro", *kind),
                format!("We received a request to {words} made with this e-mail address."),
                format!("We received your request to {words} on 2026-11-30."),
                format!("We need more time to answer your request to {words}."),
                format!("We cannot carry out your request to {words}."),
                format!("Done: your request to {words} is in effect from now on."),
            ] {
                for doubled in ["your see", "your your", "to to", "request request", code] {
                    assert!(
                        !sentence.contains(doubled),
                        "{sentence:?} reads `{doubled}`"
                    );
                }
            }
        }
    }
}
