//! The consent ledger as a service: records events (checked, chained, audited), keeps the
//! permit state current, answers permits, sends and checks the e-mail links (double opt-in,
//! one-click unsubscribe, policy acceptance), and tracks the policy versions served.

use std::sync::{Arc, RwLock};

use steward_policy::declaration::{ConsentMode, LawfulBasis};
use time::OffsetDateTime;

use crate::access::{Access, Denied, Operation, Principal, Reach, Role, Scope};
use crate::audit::{AuditEntry, Outcome, Seal, hex};
use crate::consent::storage::ConsentStore;
use crate::consent::{
    Action, ConsentEvent, DeviceId, Evidence, LedgerBreak, LedgerChain, LinkToken, MAX_NOTICE,
    MAX_USER_AGENT, Method, Party, SealedEvent, Signal, TokenError, TokenKind, Tokens, terms,
};
use crate::mail::{Mail, MailError, Mailer};
use crate::permit::{Consent, Decision, PermitState, PurposeStatus, Reason, Rules};
use crate::storage::StoreError;
use crate::subject::SubjectId;
use crate::vault::{ErasureReceipt, Vault, VaultError};

/// How long a double opt-in confirmation link works.
pub const CONFIRM_FOR: time::Duration = time::Duration::days(7);
/// How long a policy acceptance link works.
pub const ACCEPT_FOR: time::Duration = time::Duration::days(90);
/// Events read per page when loading the ledger.
const PAGE: u32 = 20_000;

/// A policy version Steward has served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// The version, as declared.
    pub version: String,
    /// Whether people must accept it to go on using the service.
    pub must_accept: bool,
    /// Each purpose's terms fingerprint under it: `(purpose, terms)`.
    pub terms: Vec<(String, String)>,
    /// When Steward first served it.
    pub recorded_at: OffsetDateTime,
}

/// Why the ledger refused something.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// The purpose is not declared.
    #[error("`{0}` is not a declared purpose: use a purpose id from the declaration")]
    UnknownPurpose(String),
    /// Consent was recorded for a purpose whose basis is not consent.
    #[error(
        "purpose `{purpose}` is based on {basis}, not consent: there is no consent to {action}; use `object` to record an objection"
    )]
    NotConsent {
        /// The purpose.
        purpose: String,
        /// Its basis.
        basis: &'static str,
        /// The action tried.
        action: &'static str,
    },
    /// An objection to a purpose the right to object does not reach.
    #[error(
        "purpose `{purpose}` is based on {basis}: the right to object (Art. 21) does not apply to it"
    )]
    NotObjectable {
        /// The purpose.
        purpose: String,
        /// Its basis.
        basis: &'static str,
    },
    /// The action needs a purpose, or must not have one.
    #[error("{0}")]
    Shape(String),
    /// Evidence over its limit.
    #[error("evidence `{field}` is {len} characters; at most {max} are kept")]
    EvidenceTooLarge {
        /// The evidence field.
        field: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// No such subject.
    #[error("no subject has this id")]
    UnknownSubject,
    /// Double opt-in for a subject without an e-mail address, or for a browser.
    #[error(
        "purpose `{0}` is double opt-in: the grant must be for a subject with an e-mail address, who is sent the confirmation link"
    )]
    NeedsEmail(String),
    /// The policy version is not one Steward served.
    #[error("`{0}` is not a policy version this installation has served")]
    UnknownVersion(String),
    /// A token or device id was refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A confirmation link for a grant that is no longer pending (withdrawn, or replaced).
    #[error(
        "this confirmation link belongs to an earlier sign-up that is no longer pending: sign up again to get a new link"
    )]
    Replayed,
    /// The declaration changed a purpose's terms but kept the policy version.
    #[error("{0}")]
    TermsChanged(TermsDrift),
    /// The principal may not do this.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// Sending mail failed.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger's chain is broken.
    #[error(transparent)]
    Broken(#[from] LedgerBreak),
}

impl ConsentError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownPurpose(_) => "unknown-purpose",
            Self::NotConsent { .. } => "not-consent-based",
            Self::NotObjectable { .. } => "not-objectable",
            Self::Shape(_) => "invalid-event",
            Self::EvidenceTooLarge { .. } => "evidence-too-large",
            Self::UnknownSubject => "not-found",
            Self::NeedsEmail(_) => "needs-email",
            Self::UnknownVersion(_) => "unknown-version",
            Self::Token(t) => t.code(),
            Self::Replayed => "replayed-token",
            Self::TermsChanged(_) => "terms-changed-without-version",
            Self::Denied(d) => d.code,
            Self::Mail(_) => "mail-failed",
            Self::Vault(e) => e.code(),
            Self::Store(_) => "store-failed",
            Self::Broken(_) => "ledger-broken",
        }
    }

    /// Whether it is a refusal (rather than a fault).
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::Mail(_) | Self::Store(_) | Self::Broken(_) => false,
            Self::Vault(v) => !matches!(
                v,
                VaultError::Store(_) | VaultError::Crypto(_) | VaultError::Audit(_)
            ),
            _ => true,
        }
    }
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct Record {
    /// Whose choice.
    pub party: Party,
    /// What happened.
    pub action: Action,
    /// The purpose, where the action takes one.
    pub purpose: Option<String>,
    /// The signal, for [`Action::Signal`].
    pub signal: Option<Signal>,
    /// The subject, for [`Action::Link`].
    pub link: Option<SubjectId>,
    /// The policy version accepted, for [`Action::Accept`] (default: the current one).
    pub version: Option<String>,
    /// How it was given.
    pub method: Method,
    /// The proof.
    pub evidence: Evidence,
}

/// What recording did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recorded {
    /// The event's place in the ledger (0 when nothing needed recording).
    pub seq: u64,
    /// The purpose's permit after the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permit: Option<Decision>,
    /// `sent` when a double opt-in confirmation mail went out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<&'static str>,
}

/// What following a link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkOutcome {
    /// The change was recorded.
    Done,
    /// It had been recorded before (links are idempotent).
    AlreadyDone,
}

/// The values a mailer puts on a marketing message (RFC 2369, RFC 8058).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnsubscribeHeaders {
    /// The page a person can open to unsubscribe (and the one-click POST target).
    pub url: String,
    /// The `List-Unsubscribe` header value.
    pub list_unsubscribe: String,
    /// The `List-Unsubscribe-Post` header value.
    pub list_unsubscribe_post: &'static str,
}

/// A subject's consent: the state now and every event behind it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct History {
    /// The subject.
    pub subject: SubjectId,
    /// The current policy version.
    pub policy: String,
    /// Whether the newest must-accept version was accepted.
    pub policy_accepted: bool,
    /// Each purpose's state now.
    pub purposes: Vec<PurposeStatus>,
    /// Every event, oldest first.
    pub events: Vec<EventView>,
}

/// An event as shown to people and auditors.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventView {
    /// Its place in the ledger.
    pub seq: u64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The subject, when the event is a subject's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<SubjectId>,
    /// The browser, when the event is a browser's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// What happened.
    pub action: Action,
    /// The purpose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<Signal>,
    /// The subject a browser was linked to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<SubjectId>,
    /// The policy version in force.
    pub policy: String,
    /// The purpose's terms fingerprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms: Option<String>,
    /// How.
    pub method: Method,
    /// The proof.
    pub evidence: Evidence,
    /// Who wrote it.
    pub actor: String,
    /// The previous event's hash.
    pub prev: String,
    /// This event's hash.
    pub hash: String,
}

/// A proof-of-consent export for an auditor: the history, the chain hashes that bind it, and
/// the ledger's sealed head when it was made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Proof {
    /// What this file is.
    pub format: &'static str,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// The history.
    #[serde(flatten)]
    pub history: History,
    /// The ledger's head: sequence number and hash.
    pub ledger_head: Option<(u64, String)>,
    /// The terms each purpose had under every policy version served.
    pub versions: Vec<VersionView>,
}

/// A policy version, for proofs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionView {
    /// The version.
    pub version: String,
    /// Whether it had to be accepted.
    pub must_accept: bool,
    /// When first served.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// `purpose → terms fingerprint`.
    pub terms: std::collections::BTreeMap<String, String>,
}

/// A declaration that changes purposes' terms (use, lawful basis, consent mode, categories,
/// recipients …) under a policy version already served: people who consented under that version
/// consented to the old terms, so the change must be a new version (GDPR Art. 7(1): the
/// controller must be able to show what each person consented to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermsDrift {
    /// The policy version the declaration keeps.
    pub version: String,
    /// The purposes whose terms changed, by id.
    pub purposes: Vec<String>,
    /// People and browsers who consented to one of them under that version.
    pub consented: u64,
}

impl std::fmt::Display for TermsDrift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let purposes: Vec<String> = self.purposes.iter().map(|p| format!("`{p}`")).collect();
        let who = match self.consented {
            0 => {
                "nobody has consented under it yet, but the notice was published with the old terms"
                    .to_owned()
            }
            1 => "1 person consented to the old terms under it".to_owned(),
            n => format!("{n} people consented to the old terms under it"),
        };
        write!(
            f,
            "the declaration changes the terms of {} but keeps policy version `{}`, which was already served ({who}): raise `version` in [policy] (for example to today's date) so the change is a new version{}",
            purposes.join(", "),
            self.version,
            if self.consented > 0 {
                "; those people are then asked again"
            } else {
                ""
            }
        )
    }
}

/// Whether `declaration` changes the terms of a purpose under a policy version in `versions`
/// (the versions the store has served), and who consented under it.
///
/// # Errors
/// The store's, when counting the people who consented fails.
pub async fn terms_drift<S: ConsentStore>(
    store: &S,
    declaration: &steward_policy::Declaration,
    versions: &[PolicyVersion],
) -> Result<Option<TermsDrift>, StoreError> {
    let Some(known) = versions
        .iter()
        .find(|v| v.version == declaration.policy.version)
    else {
        return Ok(None);
    };
    let changed: Vec<String> = declaration
        .purposes
        .iter()
        .filter(|p| {
            let now = terms(p);
            known.terms.iter().any(|(kp, kt)| *kp == p.id && *kt != now)
        })
        .map(|p| p.id.clone())
        .collect();
    if changed.is_empty() {
        return Ok(None);
    }
    let consented = store
        .consenting_parties(&declaration.policy.version, &changed)
        .await?;
    Ok(Some(TermsDrift {
        version: declaration.policy.version.clone(),
        purposes: changed,
        consented,
    }))
}

/// Where people follow links to.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// The public address of Steward (`https://privacy.example.com`), for links in mail.
    pub public_url: String,
    /// The operator's contact address for `mailto:` unsubscribes (optional).
    pub unsubscribe_mailto: Option<String>,
}

/// The consent ledger.
pub struct Ledger<S: ConsentStore> {
    vault: Arc<Vault<S>>,
    chain: LedgerChain,
    tokens: Tokens,
    rules: Rules,
    versions: Vec<PolicyVersion>,
    state: RwLock<PermitState>,
    writer: tokio::sync::Mutex<()>,
    mailer: Arc<dyn Mailer>,
    options: LedgerOptions,
}

impl<S: ConsentStore> std::fmt::Debug for Ledger<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").finish_non_exhaustive()
    }
}

/// The principal for acts that come from a person's browser or mail client, not an API key.
pub fn public(actor: &str) -> Access {
    Access::new(Principal {
        actor: format!("public:{actor}"),
        role: Role::Service,
        scope: Scope {
            purposes: Vec::new(),
            categories: Vec::new(),
            operations: vec![Operation::Consent],
        },
    })
}

fn basis_name(b: LawfulBasis) -> &'static str {
    b.as_str()
}

fn check_evidence(e: &Evidence) -> Result<(), ConsentError> {
    let checks = [
        ("notice", e.notice.as_deref(), MAX_NOTICE),
        ("user_agent", e.user_agent.as_deref(), MAX_USER_AGENT),
        ("ip", e.ip.as_deref(), 64),
    ];
    for (field, value, max) in checks {
        if let Some(v) = value
            && v.chars().count() > max
        {
            return Err(ConsentError::EvidenceTooLarge {
                field,
                len: v.chars().count(),
                max,
            });
        }
    }
    Ok(())
}

impl<S: ConsentStore> Ledger<S> {
    /// Opens the ledger over `vault`'s store: records the declaration's policy version if it is
    /// new (queueing a notice to every subject when it must be accepted), refuses a declaration
    /// that changed a purpose's terms under the same version, and loads the current state.
    pub async fn open(
        vault: Arc<Vault<S>>,
        mailer: Arc<dyn Mailer>,
        options: LedgerOptions,
        progress: impl FnMut(u64),
    ) -> Result<Self, ConsentError> {
        let keyring = vault.keyring();
        let chain = LedgerChain::new(keyring.subkey("consent-mac").map_err(VaultError::from)?);
        let tokens = Tokens::new(keyring.subkey("consent-tokens").map_err(VaultError::from)?);
        let declaration = vault.declaration();
        let current: Vec<(String, String)> = declaration
            .purposes
            .iter()
            .map(|p| (p.id.clone(), terms(p)))
            .collect();
        let mut versions = vault.store().policy_versions().await?;
        let version = declaration.policy.version.clone();
        if let Some(drift) = terms_drift(vault.store(), declaration, &versions).await? {
            return Err(ConsentError::TermsChanged(drift));
        }
        match versions.iter().find(|v| v.version == version) {
            Some(_) => {}
            None => {
                let v = PolicyVersion {
                    version,
                    must_accept: declaration.policy.must_accept,
                    terms: current,
                    recorded_at: vault.clock().now(),
                };
                vault.store().add_policy_version(&v).await?;
                versions.push(v);
            }
        }
        let pairs: Vec<(String, bool)> = versions
            .iter()
            .map(|v| (v.version.clone(), v.must_accept))
            .collect();
        let rules = Rules::new(declaration, &pairs);
        let ledger = Self {
            vault,
            chain,
            tokens,
            rules,
            versions,
            state: RwLock::new(PermitState::new()),
            writer: tokio::sync::Mutex::new(()),
            mailer,
            options,
        };
        ledger.load(progress).await?;
        Ok(ledger)
    }

    async fn load(&self, mut progress: impl FnMut(u64)) -> Result<(), ConsentError> {
        loop {
            let after = self.seq();
            let page = self.vault.store().consent_events(after, PAGE).await?;
            let Some(last) = page.last().map(|e| e.seq) else {
                return Ok(());
            };
            if let Ok(mut state) = self.state.write() {
                for e in &page {
                    state.apply(&self.rules, e);
                }
            }
            progress(last);
            if page.len() < PAGE as usize {
                return Ok(());
            }
        }
    }

    /// Applies events other processes wrote since the last look.
    pub async fn refresh(&self) -> Result<(), ConsentError> {
        self.load(|_| {}).await
    }

    /// The last event applied.
    pub fn seq(&self) -> u64 {
        self.state.read().map_or(0, |s| s.seq())
    }

    /// The compiled rules.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The mailer the ledger sends with (a confirmation, a policy notice), for other mail
    /// Steward sends to people (a breach notice).
    pub fn mailer(&self) -> &Arc<dyn Mailer> {
        &self.mailer
    }

    /// The vault beneath the ledger.
    pub fn vault(&self) -> &Arc<Vault<S>> {
        &self.vault
    }

    /// The ledger's chain (its key seals the head, the personal digests and their removal).
    pub fn chain(&self) -> &LedgerChain {
        &self.chain
    }

    /// Where links point.
    pub fn options(&self) -> &LedgerOptions {
        &self.options
    }

    /// The signer of device ids and links.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The policy versions served, oldest first.
    pub fn versions(&self) -> &[PolicyVersion] {
        &self.versions
    }

    /// Reads a device id a browser presented.
    pub fn device(&self, text: &str) -> Result<DeviceId, TokenError> {
        self.tokens.device(text)
    }

    /// The permit for `purpose` (an id) over `party`. Fast: no I/O.
    pub fn permit(&self, party: &Party, purpose: &str) -> Result<Decision, ConsentError> {
        let p = self
            .rules
            .purpose(purpose)
            .ok_or_else(|| ConsentError::UnknownPurpose(purpose.to_owned()))?;
        Ok(self.permit_index(party, p))
    }

    /// The permit for the purpose at `index` (see [`Rules::purpose`]).
    pub fn permit_index(&self, party: &Party, index: u16) -> Decision {
        match self.state.read() {
            Ok(state) => state.decide(&self.rules, party, index),
            Err(poisoned) => poisoned.into_inner().decide(&self.rules, party, index),
        }
    }

    /// Whether `signal` was already received for `party`.
    pub fn signalled(&self, party: &Party, signal: Signal) -> bool {
        self.state.read().is_ok_and(|s| s.signalled(party, signal))
    }

    fn validate(&self, r: &Record) -> Result<Option<u16>, ConsentError> {
        if r.action == Action::Erase {
            return Err(ConsentError::Shape(
                "`erase` is written by erasing the person (DELETE /v1/subjects/{id}, `steward erase` or an erasure request), never recorded on its own".to_owned(),
            ));
        }
        check_evidence(&r.evidence)?;
        let purpose = match &r.purpose {
            Some(id) => Some(
                self.rules
                    .purpose(id)
                    .ok_or_else(|| ConsentError::UnknownPurpose(id.clone()))?,
            ),
            None => None,
        };
        let rule = purpose.and_then(|p| self.rules.rule(p));
        let needs_purpose = matches!(r.action, Action::Grant | Action::Confirm | Action::Withdraw);
        let no_purpose = matches!(
            r.action,
            Action::Signal | Action::Accept | Action::Link | Action::Close | Action::Reopen
        );
        if needs_purpose && purpose.is_none() {
            return Err(ConsentError::Shape(format!(
                "`{}` needs a purpose: add \"purpose\": \"<purpose id>\"",
                r.action
            )));
        }
        if no_purpose && purpose.is_some() {
            return Err(ConsentError::Shape(format!(
                "`{}` applies to the whole account or browser: leave out \"purpose\"",
                r.action
            )));
        }
        if let Some(rule) = rule {
            if needs_purpose && rule.basis != LawfulBasis::Consent {
                return Err(ConsentError::NotConsent {
                    purpose: rule.id.clone(),
                    basis: basis_name(rule.basis),
                    action: r.action.as_str(),
                });
            }
            if r.action == Action::Object
                && !rule.marketing
                && !matches!(
                    rule.basis,
                    LawfulBasis::Consent
                        | LawfulBasis::LegitimateInterest
                        | LawfulBasis::PublicTask
                )
            {
                return Err(ConsentError::NotObjectable {
                    purpose: rule.id.clone(),
                    basis: basis_name(rule.basis),
                });
            }
            if r.action == Action::Grant
                && rule.mode == Some(ConsentMode::DoubleOptIn)
                && !matches!(r.party, Party::Subject(_))
            {
                return Err(ConsentError::NeedsEmail(rule.id.clone()));
            }
        }
        // A field another action takes is refused, not ignored: the caller meant something.
        let stray = [
            (
                "signal",
                r.signal.is_some() && r.action != Action::Signal,
                "signal",
            ),
            ("link", r.link.is_some() && r.action != Action::Link, "link"),
            (
                "version",
                r.version.is_some() && r.action != Action::Accept,
                "accept",
            ),
        ];
        if let Some((field, _, action)) = stray.iter().find(|(_, stray, _)| *stray) {
            return Err(ConsentError::Shape(format!(
                "\"{field}\" belongs to the `{action}` event; leave it out of this `{}` event",
                r.action
            )));
        }
        match (r.action, r.signal, r.link, &r.party) {
            (Action::Signal, None, _, _) => Err(ConsentError::Shape(format!(
                "`signal` needs \"signal\": one of {}",
                Signal::names()
            ))),
            (Action::Link, _, None, _) | (Action::Link, _, _, Party::Subject(_)) => {
                Err(ConsentError::Shape(
                    "`link` links a browser (\"device\") to a subject (\"link\": \"<subject id>\")"
                        .to_owned(),
                ))
            }
            (Action::Close | Action::Reopen, _, _, Party::Device(_)) => {
                Err(ConsentError::Shape(format!(
                    "`{}` applies to a subject's account, not a browser",
                    r.action
                )))
            }
            _ => Ok(purpose),
        }
    }

    fn audit_entry(&self, access: &Access, r: &Record) -> AuditEntry {
        let mut entry = access.entry(&format!("consent.{}", r.action), self.vault.clock().now());
        entry.purpose = r.purpose.clone();
        entry.subject = match r.party {
            Party::Subject(s) => Some(s),
            Party::Device(_) => r.link,
        };
        entry.detail = Some(match (r.party, r.signal) {
            (Party::Device(_), Some(s)) => format!("device; method {}; signal {s}", r.method),
            (Party::Device(_), None) => format!("device; method {}", r.method),
            (_, Some(s)) => format!("method {}; signal {s}", r.method),
            _ => format!("method {}", r.method),
        });
        entry
    }

    async fn finish<T>(
        &self,
        mut entry: AuditEntry,
        result: Result<T, ConsentError>,
    ) -> Result<T, ConsentError> {
        if let Err(e) = &result {
            entry.outcome = if e.is_refusal() {
                Outcome::Denied
            } else {
                Outcome::Failed
            };
            entry.code = Some(e.code().to_owned());
        }
        self.vault.record(entry).await?;
        result
    }

    /// As [`Ledger::finish`], for an entry already written with the events when `written`:
    /// then only a failure after the append (a mail that could not be sent) adds an entry.
    async fn finish_written<T>(
        &self,
        entry: AuditEntry,
        result: Result<T, ConsentError>,
        written: bool,
    ) -> Result<T, ConsentError> {
        match result {
            Ok(value) if written => Ok(value),
            other => self.finish(entry, other).await,
        }
    }

    /// Records an event for `access`: checked against the declaration, chained, audited
    /// (refusals too), and in the permit state before this returns. A double opt-in grant
    /// sends the confirmation mail.
    pub async fn record(&self, access: &Access, r: Record) -> Result<Recorded, ConsentError> {
        let entry = self.audit_entry(access, &r);
        let mut written = false;
        let result = self.record_inner(access, r, &entry, &mut written).await;
        self.finish_written(entry, result, written).await
    }

    async fn record_inner(
        &self,
        access: &Access,
        r: Record,
        entry: &AuditEntry,
        written: &mut bool,
    ) -> Result<Recorded, ConsentError> {
        access.authorize(Operation::Consent, Reach::Nothing)?;
        if r.action == Action::Confirm {
            return Err(ConsentError::Shape(
                "`confirm` is recorded when the person opens the link Steward mails for a double opt-in, never through the API: record `grant` and Steward sends the link".to_owned(),
            ));
        }
        // Lifting a person's restriction or objection is the controller's decision (GDPR
        // Art. 18(3), 21(1)), not the application's.
        if r.action == Action::Lift {
            access.authorize(Operation::Decide, Reach::Nothing)?;
        }
        let purpose = self.validate(&r)?;
        // An event without a purpose (a signal, a link, a restriction of all processing)
        // reaches every purpose.
        match r
            .purpose
            .as_deref()
            .and_then(|p| self.vault.declaration().purpose(p))
        {
            Some(p) => access.authorize(
                Operation::Consent,
                Reach::Data {
                    purposes: &[p],
                    categories: &[],
                },
            )?,
            None => access.authorize(Operation::Consent, Reach::Everything)?,
        }
        let subject = match r.party {
            Party::Subject(s) => Some(s),
            Party::Device(_) => r.link,
        };
        if let Some(s) = subject
            && self.vault.store().load_subject(s).await?.is_none()
            && !matches!(
                r.action,
                Action::Withdraw | Action::Object | Action::Restrict
            )
        {
            // Protective events stand even for an erased subject; nothing else does.
            return Err(ConsentError::UnknownSubject);
        }
        let policy = match (&r.action, &r.version) {
            (Action::Accept, Some(v)) => {
                if !self.versions.iter().any(|k| &k.version == v) {
                    return Err(ConsentError::UnknownVersion(v.clone()));
                }
                v.clone()
            }
            _ => self.vault.declaration().policy.version.clone(),
        };
        let double = purpose
            .and_then(|p| self.rules.rule(p))
            .is_some_and(|rule| rule.mode == Some(ConsentMode::DoubleOptIn));
        let email = match (r.action, r.party, double) {
            (Action::Grant, Party::Subject(s), true) => {
                Some(self.vault.email_of(s).await?.ok_or_else(|| {
                    ConsentError::NeedsEmail(r.purpose.clone().unwrap_or_default())
                })?)
            }
            _ => None,
        };
        let mut event = self.event(
            access,
            r.party,
            r.action,
            r.purpose.clone(),
            r.method,
            r.evidence,
        );
        event.signal = r.signal;
        event.link = r.link;
        event.policy = policy;
        let seq = self.append(vec![event], Some(entry)).await?;
        *written = true;
        let mut confirmation = None;
        if let (Some(to), Party::Subject(subject), Some(purpose_id)) = (email, r.party, &r.purpose)
        {
            self.send_confirmation(access, subject, purpose_id, seq, to)
                .await?;
            confirmation = Some("sent");
        }
        Ok(Recorded {
            seq,
            permit: purpose.map(|p| self.permit_index(&r.party, p)),
            confirmation,
        })
    }

    /// Erases subjects (as [`Vault::erase_many`] does), first writing an `erase` event for each
    /// one that exists, so that from then on every process's permits deny everything but
    /// legal holds (`erased`) — after a restart too. The event comes first: should the vault's
    /// erasure then fail, the person is treated as erased while the erasure is retried, never
    /// the other way round. Every erasure goes through here.
    pub async fn erase(
        &self,
        access: &Access,
        ids: &[SubjectId],
    ) -> Result<Vec<Result<ErasureReceipt, VaultError>>, ConsentError> {
        if access
            .authorize(Operation::Erase, Reach::Everything)
            .is_ok()
        {
            let mut events = Vec::new();
            for &id in ids {
                if self.vault.store().load_subject(id).await?.is_some() {
                    events.push(self.event(
                        access,
                        Party::Subject(id),
                        Action::Erase,
                        None,
                        Method::Api,
                        Evidence::default(),
                    ));
                }
            }
            if !events.is_empty() {
                // Audited by the vault, erasure by erasure.
                self.append(events, None).await?;
            }
        }
        // The vault checks the access again and audits each erasure, refusals too.
        Ok(self.vault.erase_many(access, ids).await?)
    }

    /// Reads what `purpose` may see of `subject`: the one way to read for a purpose. The permit
    /// decides first — a purpose it denies (consent withdrawn, an objection, a restriction, a
    /// closed account, an erasure) sees nothing (`permit-denied`, audited), while a legal
    /// hold's purpose still sees what the hold keeps — then the purpose of collection
    /// ([`Vault`]'s read): what was collected for the purpose, for one it is compatible with,
    /// or, once the person consented to it, whatever it declares.
    pub async fn read(
        &self,
        access: &Access,
        subject: SubjectId,
        purpose: &str,
        only: &[String],
    ) -> Result<crate::SubjectView, ConsentError> {
        // Who may read comes first: a caller the vault refuses learns nothing of the permit.
        // The vault's read refuses it again, and audits the refusal.
        let decision = match self.vault.may_read(access, purpose, only) {
            Ok(()) => self.permit(&Party::Subject(subject), purpose)?,
            Err(_) => {
                return Ok(self
                    .vault
                    .read(access, subject, purpose, only, false)
                    .await?);
            }
        };
        // After an erasure nothing is left for this purpose (a hold's purpose is allowed), and
        // for an id nobody has the permit knows nothing: the vault answers both alike.
        if !decision.allowed
            && decision.reason != crate::permit::Reason::Erased
            && self.vault.holds(subject).await?
        {
            let mut entry = access.entry("subject.read", self.vault.clock().now());
            entry.purpose = Some(purpose.to_owned());
            entry.subject = Some(subject);
            let denied = Denied {
                code: "permit-denied",
                message: format!(
                    "purpose `{purpose}` may not use this person's data now: its permit says `{}` (GET /v1/permits says the same; docs/consent.md explains each reason)",
                    decision.reason.code()
                ),
            };
            return self.finish(entry, Err(ConsentError::Denied(denied))).await;
        }
        let consented = decision.allowed && decision.reason == crate::permit::Reason::ConsentGiven;
        Ok(self
            .vault
            .read(access, subject, purpose, only, consented)
            .await?)
    }

    /// Corrects a value for `purpose`, as [`Vault::rectify`] does, and when it changed the
    /// person's e-mail address and the declaration says so (`rights.notify_identity_change`),
    /// tells them at the old and the new address.
    pub async fn rectify(
        &self,
        access: &Access,
        subject: SubjectId,
        category: &str,
        value: &str,
        purpose: &str,
        source: &crate::FieldSource,
    ) -> Result<(), ConsentError> {
        let corrected = self
            .vault
            .rectify(access, subject, category, value, purpose, source)
            .await?;
        self.tell_identity_change(subject, corrected).await;
        Ok(())
    }

    /// Corrects `category` wherever it is held, as [`Vault::rectify_everywhere`] does (a
    /// rectification request), telling the person as [`Ledger::rectify`] does.
    pub async fn rectify_everywhere(
        &self,
        access: &Access,
        subject: SubjectId,
        category: &str,
        value: &str,
        source: &crate::FieldSource,
    ) -> Result<(), ConsentError> {
        let corrected = self
            .vault
            .rectify_everywhere(access, subject, category, value, source)
            .await?;
        self.tell_identity_change(subject, corrected).await;
        Ok(())
    }

    /// Mails both addresses after an e-mail address changed, where declared. A mail that
    /// cannot be sent is in the audit as failed; the correction stands.
    async fn tell_identity_change(&self, subject: SubjectId, corrected: crate::vault::Corrected) {
        let declaration = self.vault.declaration();
        let crate::vault::Corrected::Identity {
            kind,
            old: Some(old),
            new,
        } = corrected
        else {
            return;
        };
        if kind != crate::IdentityKind::Email || !declaration.rights.notify_identity_change {
            return;
        }
        let controller = &declaration.controller.name;
        let contact = &declaration.rights.contact;
        for (to, text) in [
            (
                old.as_str(),
                format!(
                    "The e-mail address of your account with {controller} was changed: we will write to the new one from now on.\n\nIf you did not ask for this, tell us at once: {contact}\n"
                ),
            ),
            (
                new.as_str(),
                format!(
                    "This is now the e-mail address of your account with {controller}.\n\nIf you did not ask for this, tell us at once: {contact}\n"
                ),
            ),
        ] {
            let mail = Mail {
                to: to.to_owned(),
                subject: format!("{controller}: your e-mail address was changed"),
                text,
                headers: Vec::new(),
                kind: "identity.changed",
            };
            let steward = Access::new(Principal::steward("identity-change"));
            let _ = self.send(&steward, Some(subject), &mail).await;
        }
    }

    /// Erases one subject, as [`Ledger::erase`] does.
    pub async fn erase_one(
        &self,
        access: &Access,
        id: SubjectId,
    ) -> Result<ErasureReceipt, ConsentError> {
        self.erase(access, &[id])
            .await?
            .pop()
            .unwrap_or(Err(VaultError::NotFound))
            .map_err(ConsentError::from)
    }

    /// Imports events recorded elsewhere (another consent tool, an earlier system), checked
    /// like recorded ones and appended in order, in one transaction per call; one audit entry
    /// for the batch. The subjects need not be in the vault yet.
    pub async fn import(
        &self,
        access: &Access,
        events: Vec<ConsentEvent>,
    ) -> Result<u64, ConsentError> {
        let mut entry = access.entry("consent.import", self.vault.clock().now());
        entry.detail = Some(format!("{} events", events.len()));
        let mut written = false;
        let result = async {
            access.authorize(Operation::Consent, Reach::Everything)?;
            for (i, e) in events.iter().enumerate() {
                let r = Record {
                    party: e.party,
                    action: e.action,
                    purpose: e.purpose.clone(),
                    signal: e.signal,
                    link: e.link,
                    version: None,
                    method: e.method,
                    evidence: e.evidence.clone(),
                };
                self.validate(&r).map_err(|err| {
                    ConsentError::Shape(format!("event {i} of the import: {err}"))
                })?;
            }
            let seq = self.append(events, Some(&entry)).await?;
            written = true;
            Ok(seq)
        }
        .await;
        self.finish_written(entry, result, written).await
    }

    /// Appends `events` with `audit`, the entry that records them, in one transaction: the
    /// events and their record are kept both or neither.
    async fn append(
        &self,
        events: Vec<ConsentEvent>,
        audit: Option<&AuditEntry>,
    ) -> Result<u64, ConsentError> {
        let _turn = self.writer.lock().await;
        let audited = crate::vault::storage::Audited {
            entries: audit.into_iter().cloned().collect(),
            chain: self.vault.audit_chain(),
        };
        let sealed = self
            .vault
            .store()
            .append_consent(events, &self.chain, audited)
            .await?;
        // When no other process wrote in between, the events just sealed follow the state
        // directly; otherwise the ledger is read back in order from where the state stands.
        let applied = match self.state.write() {
            Ok(mut state) if sealed.first().is_some_and(|e| e.seq == state.seq() + 1) => {
                for e in &sealed {
                    state.apply(&self.rules, e);
                }
                true
            }
            _ => false,
        };
        if !applied {
            self.refresh().await?;
        }
        Ok(sealed.last().map_or(0, |e| e.seq))
    }

    /// Where `party` stands for purpose `p`, and the grant it rests on.
    fn standing(&self, party: &Party, p: u16) -> (Consent, u64) {
        self.state
            .read()
            .map_or((Consent::None, 0), |s| s.consent(party, p))
    }

    async fn send_confirmation(
        &self,
        access: &Access,
        subject: SubjectId,
        purpose: &str,
        grant: u64,
        to: String,
    ) -> Result<(), ConsentError> {
        let now = self.vault.clock().now();
        let token = self.tokens.link(&LinkToken {
            kind: TokenKind::Confirm,
            subject,
            purpose: purpose.to_owned(),
            grant,
            expires: (now + CONFIRM_FOR).unix_timestamp(),
        });
        let declaration = self.vault.declaration();
        let name = declaration
            .purpose(purpose)
            .map_or(purpose, |p| p.name.as_str());
        let url = format!("{}/consent/confirm?token={token}", self.options.public_url);
        let mail = Mail {
            to,
            subject: format!("Please confirm: {name}"),
            text: format!(
                "You asked {controller} to send you: {name}.\n\n\
                 To confirm, open this link within {days} days:\n{url}\n\n\
                 Nothing is sent before you confirm. If you did not ask for this, ignore this message.\n",
                controller = declaration.controller.name,
                days = CONFIRM_FOR.whole_days(),
            ),
            headers: Vec::new(),
            kind: "consent.confirm",
        };
        self.send(access, Some(subject), &mail).await
    }

    /// Sends `mail` and audits that it was sent (never its body or address).
    pub async fn send(
        &self,
        access: &Access,
        subject: Option<SubjectId>,
        mail: &Mail,
    ) -> Result<(), ConsentError> {
        let mut entry = access.entry("mail.send", self.vault.clock().now());
        entry.subject = subject;
        entry.detail = Some(mail.kind.to_owned());
        let result = self.mailer.send(mail).await.map_err(ConsentError::from);
        self.finish(entry, result).await
    }

    /// Follows a double opt-in confirmation link.
    pub async fn confirm(
        &self,
        token: &str,
        evidence: Evidence,
    ) -> Result<LinkOutcome, ConsentError> {
        let access = public("email-link");
        let mut entry = access.entry("consent.confirm", self.vault.clock().now());
        let mut written = false;
        let result = async {
            let t = self
                .tokens
                .check_link(token, TokenKind::Confirm, self.vault.clock().now())?;
            entry.subject = Some(t.subject);
            entry.purpose = Some(t.purpose.clone());
            check_evidence(&evidence)?;
            let party = Party::Subject(t.subject);
            let p = self
                .rules
                .purpose(&t.purpose)
                .ok_or_else(|| ConsentError::UnknownPurpose(t.purpose.clone()))?;
            match self.standing(&party, p) {
                (Consent::Granted, grant) if grant == t.grant => {
                    let event = self.event(
                        &access,
                        party,
                        Action::Confirm,
                        Some(t.purpose.clone()),
                        Method::EmailLink,
                        evidence,
                    );
                    self.append(vec![event], Some(&entry)).await?;
                    written = true;
                    Ok(LinkOutcome::Done)
                }
                (Consent::Confirmed, grant) if grant == t.grant => Ok(LinkOutcome::AlreadyDone),
                _ => Err(ConsentError::Replayed),
            }
        }
        .await;
        self.finish_written(entry, result, written).await
    }

    fn event(
        &self,
        access: &Access,
        party: Party,
        action: Action,
        purpose: Option<String>,
        method: Method,
        evidence: Evidence,
    ) -> ConsentEvent {
        let terms = purpose
            .as_deref()
            .and_then(|p| self.rules.purpose(p))
            .and_then(|p| self.rules.rule(p))
            .map(|r| r.terms_text.clone());
        ConsentEvent {
            at: self.vault.clock().now(),
            party,
            action,
            purpose,
            signal: None,
            link: None,
            policy: self.vault.declaration().policy.version.clone(),
            terms,
            method,
            evidence,
            actor: access.principal.actor.clone(),
        }
    }

    /// The unsubscribe link and the RFC 8058 header values for a marketing message to `subject`
    /// under `purpose`.
    pub async fn unsubscribe_headers(
        &self,
        access: &Access,
        subject: SubjectId,
        purpose: &str,
    ) -> Result<UnsubscribeHeaders, ConsentError> {
        let mut entry = access.entry("consent.unsubscribe-link", self.vault.clock().now());
        entry.subject = Some(subject);
        entry.purpose = Some(purpose.to_owned());
        let result = async {
            let p = self
                .vault
                .declaration()
                .purpose(purpose)
                .ok_or_else(|| ConsentError::UnknownPurpose(purpose.to_owned()))?;
            access.authorize(
                Operation::Consent,
                Reach::Data {
                    purposes: &[p],
                    categories: &[],
                },
            )?;
            if p.basis != LawfulBasis::Consent {
                return Err(ConsentError::NotConsent {
                    purpose: purpose.to_owned(),
                    basis: basis_name(p.basis),
                    action: "unsubscribe from",
                });
            }
            if self.vault.store().load_subject(subject).await?.is_none() {
                return Err(ConsentError::UnknownSubject);
            }
            let token = self.tokens.link(&LinkToken {
                kind: TokenKind::Unsubscribe,
                subject,
                purpose: purpose.to_owned(),
                grant: 0,
                expires: i64::MAX,
            });
            let url = format!(
                "{}/consent/unsubscribe?token={token}",
                self.options.public_url
            );
            let list_unsubscribe = match &self.options.unsubscribe_mailto {
                Some(m) => format!("<{url}>, <mailto:{m}?subject=unsubscribe>"),
                None => format!("<{url}>"),
            };
            Ok(UnsubscribeHeaders {
                url,
                list_unsubscribe,
                list_unsubscribe_post: "List-Unsubscribe=One-Click",
            })
        }
        .await;
        self.finish(entry, result).await
    }

    /// Follows a one-click unsubscribe: withdraws consent, without sign-in; idempotent.
    pub async fn unsubscribe(
        &self,
        token: &str,
        evidence: Evidence,
    ) -> Result<LinkOutcome, ConsentError> {
        let access = public("unsubscribe");
        let mut entry = access.entry("consent.withdraw", self.vault.clock().now());
        let mut written = false;
        let result = async {
            let t =
                self.tokens
                    .check_link(token, TokenKind::Unsubscribe, self.vault.clock().now())?;
            entry.subject = Some(t.subject);
            entry.purpose = Some(t.purpose.clone());
            entry.detail = Some("method unsubscribe".to_owned());
            check_evidence(&evidence)?;
            let party = Party::Subject(t.subject);
            let p = self
                .rules
                .purpose(&t.purpose)
                .ok_or_else(|| ConsentError::UnknownPurpose(t.purpose.clone()))?;
            if self.standing(&party, p).0 == Consent::Withdrawn {
                return Ok(LinkOutcome::AlreadyDone);
            }
            let event = self.event(
                &access,
                party,
                Action::Withdraw,
                Some(t.purpose.clone()),
                Method::Unsubscribe,
                evidence,
            );
            self.append(vec![event], Some(&entry)).await?;
            written = true;
            Ok(LinkOutcome::Done)
        }
        .await;
        self.finish_written(entry, result, written).await
    }

    /// Follows a policy acceptance link.
    pub async fn accept(
        &self,
        token: &str,
        evidence: Evidence,
    ) -> Result<LinkOutcome, ConsentError> {
        let access = public("email-link");
        let mut entry = access.entry("consent.accept", self.vault.clock().now());
        let mut written = false;
        let result = async {
            let t = self
                .tokens
                .check_link(token, TokenKind::Accept, self.vault.clock().now())?;
            entry.subject = Some(t.subject);
            check_evidence(&evidence)?;
            if !self.versions.iter().any(|v| v.version == t.purpose) {
                return Err(ConsentError::UnknownVersion(t.purpose.clone()));
            }
            let party = Party::Subject(t.subject);
            let done = self
                .state
                .read()
                .is_ok_and(|s| s.accepted(&self.rules, &party))
                && self.rules.required_version() == Some(t.purpose.as_str());
            if done {
                return Ok(LinkOutcome::AlreadyDone);
            }
            let mut e = self.event(
                &access,
                party,
                Action::Accept,
                None,
                Method::EmailLink,
                evidence,
            );
            e.policy = t.purpose.clone();
            self.append(vec![e], Some(&entry)).await?;
            written = true;
            Ok(LinkOutcome::Done)
        }
        .await;
        self.finish_written(entry, result, written).await
    }

    /// Records the opt-out signals a browser sent (`Sec-GPC: 1`, `DNT: 1`), once each: a
    /// signal already on the ledger is not written again. Returns the events written.
    pub async fn observe(
        &self,
        device: DeviceId,
        signals: &[Signal],
        evidence: Evidence,
    ) -> Result<u64, ConsentError> {
        let party = Party::Device(device);
        let new: Vec<Signal> = signals
            .iter()
            .copied()
            .filter(|s| !self.signalled(&party, *s))
            .collect();
        if new.is_empty() {
            return Ok(0);
        }
        let access = public("signal");
        let mut written = 0;
        for s in new {
            self.record(
                &access,
                Record {
                    party,
                    action: Action::Signal,
                    purpose: None,
                    signal: Some(s),
                    link: None,
                    version: None,
                    method: Method::Signal,
                    evidence: evidence.clone(),
                },
            )
            .await?;
            written += 1;
        }
        Ok(written)
    }

    /// Records a browser's banner choices: a grant or withdrawal per consent purpose, each only
    /// when it changes the state.
    pub async fn choose(
        &self,
        device: DeviceId,
        choices: &[(String, bool)],
        evidence: Evidence,
    ) -> Result<u64, ConsentError> {
        let access = public("banner");
        let party = Party::Device(device);
        let mut written = 0;
        for (purpose, yes) in choices {
            let p = self
                .rules
                .purpose(purpose)
                .ok_or_else(|| ConsentError::UnknownPurpose(purpose.clone()))?;
            let (now, _) = self.standing(&party, p);
            let current_terms = self.permit_index(&party, p).reason != Reason::TermsChanged;
            let action = match (yes, now) {
                (true, Consent::Confirmed) if current_terms => continue,
                (true, _) => Action::Grant,
                (false, Consent::None | Consent::Withdrawn) => continue,
                (false, _) => Action::Withdraw,
            };
            self.record(
                &access,
                Record {
                    party,
                    action,
                    purpose: Some(purpose.clone()),
                    signal: None,
                    link: None,
                    version: None,
                    method: Method::Banner,
                    evidence: evidence.clone(),
                },
            )
            .await?;
            written += 1;
        }
        Ok(written)
    }

    fn view(&self, e: &SealedEvent) -> EventView {
        let (subject, device) = match e.event.party {
            Party::Subject(s) => (Some(s), None),
            Party::Device(d) => (None, Some(self.tokens.device_text(d))),
        };
        EventView {
            seq: e.seq,
            at: e.event.at,
            subject,
            device,
            action: e.event.action,
            purpose: e.event.purpose.clone(),
            signal: e.event.signal,
            link: e.event.link,
            policy: e.event.policy.clone(),
            terms: e.event.terms.clone(),
            method: e.event.method,
            evidence: e.event.evidence.clone(),
            actor: e.event.actor.clone(),
            prev: hex(&e.prev),
            hash: hex(&e.hash),
        }
    }

    async fn history_inner(&self, subject: SubjectId) -> Result<History, ConsentError> {
        let party = Party::Subject(subject);
        let mut events = self.vault.store().consent_of(&[party]).await?;
        // The browsers linked to the subject: their events are part of the person's history.
        let devices: Vec<Party> = events
            .iter()
            .chain(self.vault.store().consent_links(subject).await?.iter())
            .filter(|e| e.event.action == Action::Link && e.event.link == Some(subject))
            .map(|e| e.event.party)
            .collect();
        if !devices.is_empty() {
            events.extend(self.vault.store().consent_of(&devices).await?);
        }
        events.sort_by_key(|e| e.seq);
        events.dedup_by_key(|e| e.seq);
        let (purposes, accepted) = match self.state.read() {
            Ok(s) => (
                s.statuses(&self.rules, &party),
                s.accepted(&self.rules, &party),
            ),
            Err(_) => (Vec::new(), false),
        };
        Ok(History {
            subject,
            policy: self.vault.declaration().policy.version.clone(),
            policy_accepted: accepted,
            purposes,
            events: events.iter().map(|e| self.view(e)).collect(),
        })
    }

    /// A subject's consent history (state now and every event), for the person or the operator.
    pub async fn history(
        &self,
        access: &Access,
        subject: SubjectId,
    ) -> Result<History, ConsentError> {
        let mut entry = access.entry("consent.history", self.vault.clock().now());
        entry.subject = Some(subject);
        let result = async {
            access.authorize(Operation::Consent, Reach::Everything)?;
            self.history_inner(subject).await
        }
        .await;
        self.finish(entry, result).await
    }

    /// The proof-of-consent export for an auditor.
    pub async fn proof(&self, access: &Access, subject: SubjectId) -> Result<Proof, ConsentError> {
        let mut entry = access.entry("consent.proof", self.vault.clock().now());
        entry.subject = Some(subject);
        let result = async {
            access.authorize(Operation::Audit, Reach::Nothing)?;
            let history = self.history_inner(subject).await?;
            let head: Option<Seal> = self.vault.store().consent_head().await?;
            Ok(Proof {
                format: "steward-consent-proof/1",
                generated_at: self.vault.clock().now(),
                history,
                ledger_head: head.map(|h| (h.seq, hex(&h.hash))),
                versions: self
                    .versions
                    .iter()
                    .map(|v| VersionView {
                        version: v.version.clone(),
                        must_accept: v.must_accept,
                        recorded_at: v.recorded_at,
                        terms: v.terms.iter().cloned().collect(),
                    })
                    .collect(),
            })
        }
        .await;
        self.finish(entry, result).await
    }

    /// Verifies the whole ledger against its sealed head; returns the events checked.
    pub async fn verify(&self, mut progress: impl FnMut(u64)) -> Result<u64, ConsentError> {
        let store = self.vault.store();
        let head = store.consent_head().await?;
        let mut verifier = self.chain.verifier();
        let mut after = 0;
        loop {
            let page = store.consent_events(after, PAGE).await?;
            let Some(last) = page.last().map(|e| e.seq) else {
                break;
            };
            for e in &page {
                verifier.feed(e)?;
            }
            after = last;
            progress(last);
        }
        Ok(verifier.finish(head.as_ref())?)
    }

    /// Sends up to `limit` queued notices of a must-accept policy version, each with its
    /// acceptance link, and marks them sent. Returns how many were handled.
    pub async fn send_policy_notices(&self, limit: u32) -> Result<u32, ConsentError> {
        let Some(version) = self.rules.required_version().map(str::to_owned) else {
            return Ok(0);
        };
        let pending = self.vault.store().policy_notices(&version, limit).await?;
        let access = public("policy-notice");
        let declaration = self.vault.declaration();
        let mut handled = 0;
        for subject in pending {
            let now = self.vault.clock().now();
            let accepted = self
                .state
                .read()
                .is_ok_and(|s| s.accepted(&self.rules, &Party::Subject(subject)));
            let email = if accepted {
                None
            } else {
                match self.vault.email_of(subject).await {
                    Ok(e) => e,
                    Err(VaultError::NotFound) => None,
                    Err(e) => return Err(e.into()),
                }
            };
            if let Some(to) = email {
                let token = self.tokens.link(&LinkToken {
                    kind: TokenKind::Accept,
                    subject,
                    purpose: version.clone(),
                    grant: 0,
                    expires: (now + ACCEPT_FOR).unix_timestamp(),
                });
                let url = format!("{}/consent/accept?token={token}", self.options.public_url);
                let mail = Mail {
                    to,
                    subject: format!(
                        "{}: our privacy policy changed",
                        declaration.controller.name
                    ),
                    text: format!(
                        "Our privacy policy changed (version {version}). To go on using our services, read it and accept it:\n{url}\n\nThe policy: {policy}\n",
                        policy = declaration
                            .policy
                            .url
                            .as_deref()
                            .unwrap_or(&self.options.public_url),
                    ),
                    headers: Vec::new(),
                    kind: "policy.notice",
                };
                self.send(&access, Some(subject), &mail).await?;
            }
            self.vault
                .store()
                .mark_policy_notice(&version, subject, now)
                .await?;
            handled += 1;
        }
        Ok(handled)
    }
}
