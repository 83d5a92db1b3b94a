//! The data-subject request workflow: intake, verification, approval, execution over the
//! vault and the consent ledger, the person told by mail, recipients told (GDPR Art. 19), and
//! the durable jobs that retry what failed.
//!
//! Nothing here tells a caller whether an address belongs to anyone: a request for an unknown
//! address is taken in, verified and answered exactly like a known one (the answer is that
//! nothing is held).

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

use crate::access::{Access, Denied, Operation, Principal, Role, Scope};
use crate::audit::Outcome as AuditOutcome;
use crate::consent::{Action, Evidence, Method as ConsentMethod, Party, TokenError};
use crate::identity::{Identity, IdentityKind};
use crate::ledger::{ConsentError, History, Ledger, Record};
use crate::mail::Mail;
use crate::request::{
    Decision, Details, Download, Extension, Kind, Notification, Outcome, Request, RequestView,
    Status, Transition, Verification, due, extended, needs_verification, takes_purpose,
};
use crate::store::{Job, NewJob, RequestFilter, Store, StoreError};
use crate::subject::{FieldSource, SubjectId};
use crate::time_math;
use crate::vault::{ErasureReceipt, FieldView, TrailEntry, VaultError};

/// Wrong codes allowed before a code stops working.
pub const MAX_CODE_ATTEMPTS: u32 = 5;
/// How long an access package's link works.
pub const DOWNLOAD_FOR: time::Duration = time::Duration::days(3);
/// The longest new value a rectification may carry.
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
    #[error("verification by `{0}` is not offered by the declaration; it offers: {1}")]
    MethodNotOffered(String, String),
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
            Self::Denied(d) => d.code,
            Self::Vault(e) => e.code(),
            Self::Consent(e) => e.code(),
            Self::Store(_) => "store-failed",
            Self::Crypto(_) => "crypto-failed",
        }
    }

    /// Whether it is a refusal (the caller's fault) rather than a failure.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, Self::Store(_) | Self::Crypto(_) | Self::Conflict)
            && !matches!(
                self,
                Self::Vault(VaultError::Store(_) | VaultError::Crypto(_))
            )
            && !matches!(self, Self::Consent(e) if !e.is_refusal())
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
    /// The groups held on `subject`, found by its identities (kind, value).
    fn collect<'a>(
        &'a self,
        subject: SubjectId,
        identities: &'a [(String, String)],
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Group>, String>> + Send + 'a>>;
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

/// The request workflow.
pub struct Requests<S: Store> {
    ledger: Arc<Ledger<S>>,
    // Derived from the vault's root when opened; an error only if the vault has no root.
    contact_key: Result<Sealed, steward_crypto::CryptoError>,
    webhook_key: Result<Sealed, steward_crypto::CryptoError>,
    notifier: Arc<dyn Notifier>,
    sources: Vec<Arc<dyn DataSource>>,
}

impl<S: Store> std::fmt::Debug for Requests<S> {
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
}

fn job(request: Uuid, at: OffsetDateTime, work: &Work) -> NewJob {
    let (kind, payload) = match work {
        Work::Mail { .. } => ("mail", work),
        Work::Notify { .. } => ("notify", work),
        Work::Erase => ("erase", work),
    };
    NewJob {
        kind: kind.to_owned(),
        request: Some(request),
        run_at: at,
        payload: serde_json::to_string(payload).unwrap_or_default(),
    }
}

/// The access the workflow itself acts with on the vault and the ledger.
fn system() -> Access {
    Access::new(Principal {
        actor: "steward:requests".to_owned(),
        role: Role::Admin,
        scope: Scope::default(),
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

impl<S: Store> Requests<S> {
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

    /// The ledger.
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

    /// The secret recipients check webhook signatures with (hex), for `steward request
    /// webhook-secret`.
    pub fn webhook_secret(&self) -> Result<String, RequestError> {
        match &self.webhook_key {
            Ok(k) => Ok(crate::audit::hex(k.0.as_ref())),
            Err(e) => Err(e.clone().into()),
        }
    }

    /// The signature of a webhook body sent at `at`: `t=<unix>,v1=<hex HMAC-SHA256 of
    /// "<unix>.<body>">`.
    pub fn sign_webhook(&self, body: &str, at: OffsetDateTime) -> String {
        use hmac::{KeyInit, Mac};
        let t = at.unix_timestamp();
        let Ok(key) = &self.webhook_key else {
            return String::new();
        };
        let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.0.as_ref())
        else {
            return String::new();
        };
        mac.update(format!("{t}.").as_bytes());
        mac.update(body.as_bytes());
        format!(
            "t={t},v1={}",
            crate::audit::hex(&mac.finalize().into_bytes())
        )
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
        let mut entry = access.entry(action, self.now());
        entry.subject = req.and_then(|r| r.subject);
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
            if value.is_empty() || value.len() > MAX_VALUE {
                return Err(RequestError::Shape(format!(
                    "the new value of `{category}` must be 1 to {MAX_VALUE} bytes"
                )));
            }
        }
        Ok(())
    }

    fn method(&self, asked: Option<&str>, vouched: bool) -> Result<Method, RequestError> {
        let offered = &self.rights().verification;
        let list = || {
            if offered.is_empty() {
                "email-link".to_owned()
            } else {
                offered
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let method = if vouched {
            Method::Account
        } else {
            match asked {
                Some(text) => Method::parse(text)
                    .filter(|m| *m != Method::Account)
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
        let result = self.create_inner(access, intake, vouched).await;
        self.finish(access, "request.create", "refused".to_owned(), result)
            .await
    }

    async fn create_inner(
        &self,
        access: &Access,
        intake: Intake,
        vouched: bool,
    ) -> Result<RequestView, RequestError> {
        access.may(Operation::Request)?;
        if vouched && access.principal.actor == "person" {
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
        let method = if needs_verification(kind) {
            Some(self.method(intake.verification.as_deref(), vouched)?)
        } else {
            None
        };
        let vault = self.ledger.vault();
        let subject = vault.find(&identity).await?;
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
                req.details.verification.vouched_by = Some(actor.clone());
                req.transition(
                    Status::Verified,
                    &actor,
                    "vouched for by the operator's application",
                    now,
                );
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
            req = self.advance(req, &actor).await?;
        }
        Ok(req.view(self.now()))
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
        req: &mut Request,
        to: Status,
        actor: &str,
        reason: &str,
        jobs: &[NewJob],
    ) -> Result<(), RequestError> {
        let from = req.status;
        req.transition(to, actor, reason, self.now());
        self.save(req, jobs).await?;
        let mut access = system();
        access.principal.actor = actor.to_owned();
        self.audit(
            &access,
            &format!("request.{}", to.as_str()),
            Some(req),
            format!("{} {} {from}->{to}", req.id, req.kind),
            None,
        )
        .await
    }

    /// After verification: approval when declared, else execution.
    async fn advance(&self, mut req: Request, actor: &str) -> Result<Request, RequestError> {
        if req.status != Status::Verified {
            return Ok(req);
        }
        if self.rights().approval && needs_verification(req.kind) {
            self.step(
                &mut req,
                Status::AwaitingApproval,
                actor,
                "waiting for staff approval",
                &[],
            )
            .await?;
            return Ok(req);
        }
        self.execute(req, actor).await
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

    /// Checks a verification code.
    pub async fn verify_code(&self, id: Uuid, code: &str) -> Result<RequestView, RequestError> {
        let access = person();
        let result = async {
            let mut req = self.load(id).await?;
            if req.status != Status::AwaitingVerification
                || req.details.verification.method != Method::EmailCode.as_str()
            {
                return Err(RequestError::WrongState {
                    status: req.status,
                    action: "verified by code",
                });
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
        self.step(
            &mut req,
            Status::Verified,
            "person",
            "the person proved the address is theirs",
            &[],
        )
        .await?;
        let req = self.advance(req, "person").await?;
        Ok(req.view(self.now()))
    }

    /// Approves a request waiting for approval, and carries it out.
    pub async fn approve(&self, access: &Access, id: Uuid) -> Result<RequestView, RequestError> {
        let result = async {
            access.may(Operation::Decide)?;
            let mut req = self.load(id).await?;
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
            self.step(&mut req, Status::Verified, &actor, "approved", &[])
                .await?;
            let req = self.execute(req, &actor).await?;
            Ok(req.view(self.now()))
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
            access.may(Operation::Decide)?;
            let reason = check_reason(reason)?;
            let mut req = self.load(id).await?;
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
            self.step(&mut req, Status::Denied, &actor, "denied by staff", &[mail])
                .await?;
            Ok(req.view(self.now()))
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
            access.may(Operation::Decide)?;
            let reason = check_reason(reason)?;
            let mut req = self.load(id).await?;
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
            Ok(req.view(now))
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
    ) -> Result<(RequestView, Vec<Job>), RequestError> {
        let result = async {
            access.may(Operation::Decide)?;
            let req = self.load(id).await?;
            let jobs = self.ledger.vault().store().jobs_of(id).await?;
            Ok((req.view(self.now()), jobs))
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
            access.may(Operation::Decide)?;
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
                .map(|r| Ok(Request::from_record(r)?.view(now)))
                .collect()
        }
        .await;
        self.finish(access, "request.list", "list".to_owned(), result)
            .await
    }

    /// Records that a recipient acknowledged an Art. 19 notice.
    pub async fn acknowledge(
        &self,
        access: &Access,
        id: Uuid,
        recipient: &str,
    ) -> Result<RequestView, RequestError> {
        let result = async {
            access.may(Operation::Request)?;
            let now = self.now();
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
            Ok(req.view(now))
        }
        .await;
        self.finish(access, "request.acknowledge", id.to_string(), result)
            .await
    }

    fn closure_delay(&self) -> Option<steward_policy::Duration> {
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

    /// Recipients of the categories touched, with a contact to tell.
    fn recipients(&self, categories: &[String]) -> Vec<Notification> {
        let declaration = self.ledger.vault().declaration();
        let mut out = Vec::new();
        for p in &declaration.processors {
            let Some(contact) = &p.contact else { continue };
            let touched: Vec<String> = categories
                .iter()
                .filter(|c| p.categories.iter().any(|pc| covers(pc, c) || covers(c, pc)))
                .cloned()
                .collect();
            if touched.is_empty() {
                continue;
            }
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
            });
        }
        out
    }

    /// Carries out a verified (and approved) request.
    async fn execute(&self, mut req: Request, actor: &str) -> Result<Request, RequestError> {
        self.step(&mut req, Status::Executing, actor, "carrying out", &[])
            .await?;
        let now = self.now();
        let access = system();
        let mut outcome = Outcome {
            found: req.subject.is_some(),
            ..Outcome::default()
        };
        let mut touched = Vec::new();
        let mut complete = true;
        let mut template = Template::Done;
        let mut jobs = Vec::new();
        let vault = self.ledger.vault();
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
                    let stored = vault.store().load_subject(subject).await?;
                    for (category, value) in &changes {
                        let purpose = stored
                            .as_ref()
                            .and_then(|s| s.fields.iter().find(|f| &f.category == category))
                            .map(|f| f.purpose.clone())
                            .or_else(|| {
                                vault
                                    .declaration()
                                    .purposes
                                    .iter()
                                    .find(|p| p.categories.iter().any(|c| covers(c, category)))
                                    .map(|p| p.id.clone())
                            })
                            .ok_or_else(|| RequestError::UnknownCategory(category.clone()))?;
                        vault
                            .rectify(
                                &access,
                                subject,
                                category,
                                value,
                                &purpose,
                                &FieldSource::Form,
                            )
                            .await?;
                        outcome.changed.push(category.clone());
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
                        match vault.erase(&access, subject).await {
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
                        touched = purposes
                            .iter()
                            .flat_map(|p| p.categories.iter().cloned())
                            .collect();
                        touched.sort();
                        touched.dedup();
                    }
                }
            }
        }
        if matches!(req.kind, Right::Access | Right::Portability) {
            req.details.download = Some(Download {
                nonce: random_u64()?,
                expires_at: now + DOWNLOAD_FOR,
                downloads: 0,
            });
        }
        req.details.notifications = self.recipients(&touched);
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
            &access,
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

    /// Everything held on `subject` (none: an address nobody has), for an access package.
    pub async fn gather(
        &self,
        access: &Access,
        request: Option<Uuid>,
        subject: Option<SubjectId>,
    ) -> Result<AccessData, RequestError> {
        access.may(Operation::Export)?;
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
            return Ok(data);
        };
        let vault = self.ledger.vault();
        match vault.export(access, subject).await {
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
        data.consent = Some(self.ledger.history(access, subject).await?);
        let filter = RequestFilter {
            subject: Some(subject),
            ..RequestFilter::default()
        };
        let now = self.now();
        for r in vault.store().list_requests(&filter, 1000).await? {
            data.requests.push(Request::from_record(r)?.view(now));
        }
        for source in &self.sources {
            let groups = source
                .collect(subject, &data.identities)
                .await
                .map_err(|e| {
                    RequestError::Store(StoreError::Backend(format!("{}: {e}", source.name())))
                })?;
            data.groups.extend(groups);
        }
        Ok(data)
    }

    /// The subject an e-mail address belongs to, for `steward export --email`.
    pub async fn subject_of(
        &self,
        access: &Access,
        email: &str,
    ) -> Result<Option<SubjectId>, RequestError> {
        let identity =
            Identity::parse(IdentityKind::Email, email).map_err(|_| RequestError::BadEmail)?;
        Ok(self.ledger.vault().lookup(access, &identity, None).await?)
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
                    &mut req,
                    Status::Expired,
                    "steward",
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
                Ok(()) => store.finish_job(j.id, self.now()).await?,
                Err(e) => {
                    failed += 1;
                    let backoff = time::Duration::minutes(1 << j.attempts.min(9))
                        .min(time::Duration::hours(6));
                    store
                        .retry_job(j.id, self.now() + backoff, e.code())
                        .await?;
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
    async fn erase_due(&self, jobs: &[Job]) -> HashMap<Uuid, Result<ErasureReceipt, VaultError>> {
        let mut owners = Vec::new();
        let mut subjects = Vec::new();
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
                owners.push(id);
                subjects.push(subject);
            }
        }
        if subjects.len() < 2 {
            return HashMap::new();
        }
        match self.ledger.vault().erase_many(&system(), &subjects).await {
            Ok(results) => owners.into_iter().zip(results).collect(),
            Err(_) => HashMap::new(),
        }
    }

    async fn run_job(
        &self,
        j: &Job,
        erased: &mut HashMap<Uuid, Result<ErasureReceipt, VaultError>>,
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
        }
    }

    /// Erases a closed account's subject (or takes the result of the batch it was erased in)
    /// and completes the request.
    async fn erase_closed(
        &self,
        id: Uuid,
        batched: Option<Result<ErasureReceipt, VaultError>>,
    ) -> Result<(), RequestError> {
        let mut req = self.load(id).await?;
        let Some(subject) = req.subject else {
            return Ok(());
        };
        let mut outcome = req.details.outcome.clone().unwrap_or_default();
        if outcome.receipt.is_none() {
            let result = match batched {
                Some(r) => r,
                None => self.ledger.vault().erase(&system(), subject).await,
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
        let touched = outcome.removed.clone();
        req.details.outcome = Some(outcome);
        let mut jobs = Vec::new();
        for n in self.recipients(&touched) {
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
        let processor = self
            .ledger
            .vault()
            .declaration()
            .processors
            .iter()
            .find(|p| p.id == recipient)
            .ok_or_else(|| RequestError::UnknownRecipient(recipient.to_owned()))?;
        let contact = processor.contact.clone().unwrap_or_default();
        let now = self.now();
        let acknowledge = format!(
            "{}/v1/requests/{}/notifications/{}/ack",
            self.ledger.options().public_url.trim_end_matches('/'),
            req.id,
            recipient
        );
        let body = serde_json::json!({
            "type": "steward.request.notice",
            "request": req.id,
            "kind": req.kind.as_str(),
            "subject": req.subject,
            "categories": n.categories,
            "purpose": req.details.purpose,
            "at": now.unix_timestamp(),
            "acknowledge": &acknowledge,
        })
        .to_string();
        if n.channel == "webhook" {
            let signature = self.sign_webhook(&body, now);
            let status = self
                .notifier
                .post(&contact, &body, &signature)
                .await
                .map_err(|_| {
                    RequestError::Store(StoreError::Backend("webhook-unreachable".into()))
                })?;
            if !(200..300).contains(&status) {
                return Err(RequestError::Store(StoreError::Backend(format!(
                    "webhook-status-{status}"
                ))));
            }
        } else {
            let controller = &self.ledger.vault().declaration().controller.name;
            let mail = Mail {
                to: contact,
                subject: format!(
                    "{controller}: a data-subject request concerns data we shared with you"
                ),
                text: format!(
                    "{controller} carried out a {} request (GDPR Art. 19).\n\nRequest: {}\nSubject (pseudonymous id): {}\nCategories: {}\n\nPlease apply the same change to the data you hold, then confirm:\n{}\n",
                    req.kind,
                    req.id,
                    req.subject.map(|s| s.0.to_string()).unwrap_or_default(),
                    n.categories.join(", "),
                    acknowledge,
                ),
                headers: Vec::new(),
                kind: "request.recipient-notice",
            };
            self.ledger.send(&system(), None, &mail).await?;
        }
        self.update(id, |req| {
            if let Some(n) = req
                .details
                .notifications
                .iter_mut()
                .find(|n| n.recipient == recipient)
                && n.delivered_at.is_none()
            {
                n.delivered_at = Some(now);
                if n.status == "pending" {
                    n.status = "delivered".to_owned();
                }
            }
            Ok(())
        })
        .await
        .map(drop)
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
                        &mut req,
                        Status::Completed,
                        "steward",
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
                    format!("{controller}: confirm your {kind} request"),
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
        match req.kind {
            Right::Access | Right::Portability => {
                if let Some(d) = &req.details.download {
                    let token = self.token(2, req.id, d.expires_at, d.nonce);
                    text.push_str(&format!(
                        "Your data is ready: a ZIP file with a readable page, JSON, CSV and a spreadsheet.\n\nDownload it here (the link works until {}):\n{}\n",
                        d.expires_at.date(),
                        self.link(&format!("/requests/{}/package", req.id), &token)
                    ));
                }
            }
            Right::Rectification if outcome.found => {
                text.push_str("Your data was changed as you asked. Changed: ");
                text.push_str(&outcome.changed.join(", "));
                text.push_str(".\n");
            }
            Right::Erasure if outcome.found => {
                text.push_str("Your data was erased.\n\nRemoved: ");
                text.push_str(&outcome.removed.join(", "));
                text.push('\n');
                if !outcome.retained.is_empty() {
                    text.push_str("\nKept, because the law requires it:\n");
                    for r in &outcome.retained {
                        let until = r.until.map(|u| format!(" (until {})", u.date())).unwrap_or_default();
                        text.push_str(&format!("- {}: {}{until}\n", r.category, r.reason));
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

fn kind_words(kind: Kind) -> &'static str {
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

fn check_reason(reason: &str) -> Result<String, RequestError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Err(RequestError::ReasonRequired);
    }
    Ok(reason.to_owned())
}
