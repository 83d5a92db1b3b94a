//! The breach register (GDPR Art. 33 and 34): incidents from detection to closure, the people
//! each affects (derived from the vault's categories, the audit trail's record of what a key
//! or account touched, or given), one clock per audience the declaration names (the
//! authority within 72 hours of awareness, people within 48 …), the Art. 33(3) report, and
//! notices to people by e-mail, in-app and a signed webhook that forces password resets.
//!
//! Lifecycle: `open` → `assessed` → `notified` → `closed`. An assessment may be revised; the
//! authority may be notified in phases (Art. 33(4): initial, follow-up, final); people are
//! notified once each, per channel — a second notification reaches only people found since.
//!
//! Notices to people are delivery rows, the queue they are sent from: claimed with a lease,
//! marked `sending` in its own write just before the message goes out and `sent` after, so a
//! run killed midway leaves every notice either sent, still queued, or — only for the one in
//! flight — `uncertain`, which is never sent again on its own (nobody is told twice).
//!
//! Uses the requests' job queue and webhook signing, the ledger's mailer and the vault.

pub mod report;
pub mod storage;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use steward_policy::declaration::{BreachClock, BreachCondition, Channel};
use steward_policy::taxonomy::{Kind, Lookup, covers};
use time::OffsetDateTime;
use uuid::Uuid;

pub use self::storage::{AffectedBy, DeliveryRow, IncidentRow, IncidentStore};
use crate::IdentityKind;
use crate::access::{Access, Denied, Operation, Reach};
use crate::mail::Mail;
use crate::requests::{RequestError, Requests};
use crate::storage::StoreError;
use crate::subject::SubjectId;
use crate::vault::VaultError;
use crate::vault::storage::Audited;

/// How long a delivery run holds the notices it claimed: a run claims about a second's worth,
/// so a run that died gives its claims back soon. Safety does not rest on it: a notice goes
/// from `claimed` to `sending` in one conditional write, so two holders never both send it.
pub const LEASE: time::Duration = time::Duration::seconds(30);

/// After how many failed attempts a notice is given up (`failed`, shown to the operator).
pub const MAX_ATTEMPTS: u32 = 8;

/// How many people one password-reset webhook names.
pub const RESET_BATCH: u32 = 500;

pub use crate::requests::PASSWORD_RESET;

/// Where an incident is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Opened, not assessed.
    Open,
    /// Its risk assessed.
    Assessed,
    /// The authority or people notified.
    Notified,
    /// Closed.
    Closed,
}

impl State {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Assessed => "assessed",
            Self::Notified => "notified",
            Self::Closed => "closed",
        }
    }
}

/// The likely risk to people's rights and freedoms (Art. 33(1), 34(1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Risk {
    /// Unlikely to result in a risk: the authority need not be told (the register keeps it).
    Unlikely,
    /// A risk: the authority is told.
    Risk,
    /// A high risk: people are told too.
    High,
}

impl std::str::FromStr for Risk {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "unlikely" => Ok(Self::Unlikely),
            "risk" => Ok(Self::Risk),
            "high" | "high-risk" => Ok(Self::High),
            _ => Err(format!("unknown risk `{s}`; use unlikely, risk or high")),
        }
    }
}

/// Why people need not be told although the risk is high (Art. 34(3)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exemption {
    /// (a) The data were unintelligible to whoever took them (encrypted, keys not taken).
    Encrypted,
    /// (b) Measures taken since make the high risk no longer likely.
    Mitigated,
    /// (c) Telling each would take disproportionate effort: a public communication instead.
    PublicCommunication,
}

impl std::str::FromStr for Exemption {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "encrypted" => Ok(Self::Encrypted),
            "mitigated" => Ok(Self::Mitigated),
            "public-communication" => Ok(Self::PublicCommunication),
            _ => Err(format!(
                "unknown exemption `{s}`; use encrypted, mitigated or public-communication (Art. 34(3)(a)–(c))"
            )),
        }
    }
}

/// A phase of the authority's notification (Art. 33(4)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The first notification, with what is known.
    Initial,
    /// More information, as it becomes known.
    FollowUp,
    /// The last.
    Final,
}

impl std::str::FromStr for Phase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "initial" => Ok(Self::Initial),
            "follow-up" => Ok(Self::FollowUp),
            "final" => Ok(Self::Final),
            _ => Err(format!(
                "unknown phase `{s}`; use initial, follow-up or final (Art. 33(4))"
            )),
        }
    }
}

/// A new incident.
#[derive(Debug, Clone, Default)]
pub struct NewIncident {
    /// A short title (no personal data).
    pub title: String,
    /// What happened (no personal data).
    pub description: String,
    /// When it was detected.
    pub detected_at: Option<OffsetDateTime>,
    /// When the controller became aware that personal data were breached (the clocks count
    /// from it); never before detection.
    pub aware_at: Option<OffsetDateTime>,
    /// The breach's window: from.
    pub occurred_from: Option<OffsetDateTime>,
    /// The breach's window: to.
    pub occurred_to: Option<OffsetDateTime>,
    /// The systems involved (`steward.db`, `wordpress`, `api-key stw_1a2b3c4d`).
    pub systems: Vec<String>,
    /// The data categories concerned (taxonomy keys).
    pub categories: Vec<String>,
    /// Approximately how many records.
    pub estimated_records: Option<u64>,
}

/// An assessment of the risk (Art. 33(1), 34(1), 34(3)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    /// The likely risk.
    pub risk: Risk,
    /// Why.
    pub reason: String,
    /// The likely consequences (Art. 33(3)(c)).
    pub consequences: String,
    /// The measures taken or proposed (Art. 33(3)(d)).
    pub measures: String,
    /// Why people need not be told although the risk is high.
    pub exemptions: Vec<Exemption>,
    /// Only Steward's sealed data store was exposed, not the key store or the master key:
    /// every value taken is ciphertext under keys not taken.
    pub sealed_only: bool,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// By whom (as the audit names them).
    pub by: String,
}

/// What an assessment says, before it is stamped.
#[derive(Debug, Clone)]
pub struct NewAssessment {
    /// The likely risk.
    pub risk: Risk,
    /// Why.
    pub reason: String,
    /// The likely consequences.
    pub consequences: String,
    /// The measures taken or proposed.
    pub measures: String,
    /// Art. 34(3) exemptions claimed.
    pub exemptions: Vec<Exemption>,
    /// Only Steward's sealed data store was exposed.
    pub sealed_only: bool,
}

/// A notification to the authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorityNotice {
    /// Which phase.
    pub phase: Phase,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The authority's reference (a case number).
    pub reference: Option<String>,
    /// The reasons for a delay past the deadline (Art. 33(1)).
    pub late_reason: Option<String>,
    /// By whom.
    pub by: String,
}

/// The people notified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeopleNotice {
    /// When the first notices were queued.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// By which channels.
    pub channels: Vec<String>,
    /// The reasons for a delay past the deadline.
    pub late_reason: Option<String>,
    /// How many notices were queued, over every notification.
    pub queued: u64,
}

/// One step of an incident's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who.
    pub by: String,
    /// What (`open`, `assess`, `affected`, `notify-authority`, `notify-subjects`, `close`).
    pub action: String,
    /// In a few words.
    pub detail: String,
}

/// An incident in the register. Holds no personal data: people are counted, never named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Its id.
    pub id: Uuid,
    /// Its number in the register.
    pub number: i64,
    /// A short title.
    pub title: String,
    /// What happened.
    pub description: String,
    /// When it was detected.
    #[serde(with = "time::serde::rfc3339")]
    pub detected_at: OffsetDateTime,
    /// When the controller became aware.
    #[serde(with = "time::serde::rfc3339")]
    pub aware_at: OffsetDateTime,
    /// When it was opened in the register.
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// The window: from.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub occurred_from: Option<OffsetDateTime>,
    /// The window: to.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub occurred_to: Option<OffsetDateTime>,
    /// Systems involved.
    pub systems: Vec<String>,
    /// Categories concerned.
    pub categories: Vec<String>,
    /// Approximate number of records.
    pub estimated_records: Option<u64>,
    /// How many people were found affected so far; `None` until they are looked for.
    #[serde(default)]
    pub found: Option<u64>,
    /// The operator's own databases: how many rows hold the categories, and how many
    /// identities there the vault does not hold (people Steward cannot notify).
    #[serde(default)]
    pub datasets: Option<DatasetReach>,
    /// Where it is.
    pub state: State,
    /// The latest assessment.
    pub assessment: Option<Assessment>,
    /// The authority's notifications, in order.
    pub authority: Vec<AuthorityNotice>,
    /// The people's notification.
    pub people: Option<PeopleNotice>,
    /// When it was closed, and why.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub closed_at: Option<OffsetDateTime>,
    /// Why it was closed.
    pub closing: Option<String>,
    /// Its history.
    pub timeline: Vec<Step>,
    /// The store's revision (not serialised into the body).
    #[serde(skip)]
    pub revision: i64,
}

/// What the operator's own databases hold of an incident's categories.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetReach {
    /// Rows holding the categories.
    pub rows: u64,
    /// Identities found there that the vault does not hold: people to tell from those
    /// systems, not through Steward.
    pub outside_vault: u64,
}

/// How one audience's clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockStatus {
    /// Running, more than a third of the time left.
    Running,
    /// A third of the time or less left (and at most 24 hours).
    DueSoon,
    /// Past its deadline, not notified.
    Overdue,
    /// Notified in time.
    Met,
    /// Notified after the deadline (with the reasons).
    Late,
    /// The people's notices are queued but not all delivered yet (or some failed and wait
    /// for a retry): not met until they are.
    Sending,
    /// The assessment says this audience need not be told.
    NotRequired,
    /// An Art. 34(3) exemption applies.
    Exempt,
}

/// One audience's clock.
#[derive(Debug, Clone, Serialize)]
pub struct Clock {
    /// `authority` or `subjects`.
    pub audience: &'static str,
    /// The declared deadline, from awareness.
    pub within: String,
    /// When it falls due.
    #[serde(with = "time::serde::rfc3339")]
    pub due: OffsetDateTime,
    /// How it stands.
    pub status: ClockStatus,
    /// When the audience was first told.
    #[serde(with = "time::serde::rfc3339::option")]
    pub notified_at: Option<OffsetDateTime>,
    /// The declared channels.
    pub channels: Vec<String>,
}

/// An incident with its clocks and counts, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentView {
    /// The incident.
    #[serde(flatten)]
    pub incident: Incident,
    /// One clock per declared audience.
    pub clocks: Vec<Clock>,
    /// People affected, by the source that found them, and in all.
    pub affected: Affected,
    /// Notices by channel and state.
    pub deliveries: Vec<DeliveryCount>,
    /// When this view was made.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
}

/// How many people an incident affects.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Affected {
    /// By source (`vault`, `audit`, `listed`).
    pub by_source: Vec<(String, u64)>,
    /// In all.
    pub total: u64,
}

/// Notices by channel and state.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryCount {
    /// The channel.
    pub channel: String,
    /// The state.
    pub state: String,
    /// The last error's code, for those that failed (`no-email-address`, `smtp-failed`).
    pub error: Option<String>,
    /// How many.
    pub count: u64,
}

/// How to find affected people.
#[derive(Debug, Clone, Default)]
pub struct Derive {
    /// From the vault: everyone holding the incident's categories (collected by the window's
    /// end, when it has one).
    pub categories: bool,
    /// From the audit trail: everyone this actor touched within the window
    /// (`key:stw_1a2b3c4d`, `staff:alice`).
    pub actor: Option<String>,
    /// The window for `actor` (the incident's when not given).
    pub from: Option<OffsetDateTime>,
    /// The window's end for `actor`.
    pub to: Option<OffsetDateTime>,
    /// Given subjects (found in the operator's own databases).
    pub subjects: Vec<SubjectId>,
    /// From the operator's own databases (the declaration's datasets): everyone whose rows
    /// hold the incident's categories, matched to the vault by their identities.
    pub datasets: bool,
}

/// What a people's notification queued.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Queued {
    /// By channel: how many notices were queued now.
    pub by_channel: Vec<(String, u64)>,
}

/// What a delivery run did.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Delivered {
    /// Notices sent.
    pub sent: u64,
    /// Attempts that failed (tried again later).
    pub failed: u64,
    /// Notices given up (no address, or failed too often).
    pub given_up: u64,
}

/// Why an incident step failed.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    /// The caller may not.
    #[error("{0}")]
    Denied(#[from] Denied),
    /// The input is wrong: what, where, and how to fix it.
    #[error("{0}")]
    Invalid(String),
    /// The step does not fit where the incident is.
    #[error("{0}")]
    Conflict(String),
    /// No such incident.
    #[error("no such incident")]
    NotFound,
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The vault failed.
    #[error("{0}")]
    Vault(#[from] VaultError),
    /// One of the operator's own databases could not be read.
    #[error("{0}")]
    Dataset(String),
    /// Signing or posting failed.
    #[error("{0}")]
    Request(#[from] RequestError),
}

impl IncidentError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Denied(d) => d.code,
            Self::Invalid(_) => "invalid-incident",
            Self::Conflict(_) => "incident-conflict",
            Self::NotFound => "not-found",
            Self::Store(_) | Self::Vault(_) | Self::Request(_) => "store-failed",
            Self::Dataset(_) => "dataset-failed",
        }
    }
}

fn invalid<T>(message: impl Into<String>) -> Result<T, IncidentError> {
    Err(IncidentError::Invalid(message.into()))
}

/// A time as people read it in a message: RFC 3339, to the second.
fn stamp(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A time from outside must fall between 1970 and 2200 (what the store keeps).
fn plausible(field: &str, t: Option<OffsetDateTime>) -> Result<(), IncidentError> {
    match t {
        Some(t) if !(1970..=2200).contains(&t.year()) => {
            invalid(format!("{field}: {} is not a plausible time", t.date()))
        }
        _ => Ok(()),
    }
}

fn one_line(field: &str, text: &str, max: usize) -> Result<(), IncidentError> {
    if text.chars().count() > max {
        return invalid(format!("{field}: at most {max} characters"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return invalid(format!(
            "{field}: control characters are not allowed (it is shown on terminals and sent to people)"
        ));
    }
    if looks_personal(text) {
        return invalid(format!(
            "{field}: it holds what looks like an e-mail address; the register and the people's notices carry no personal data — describe, don't name"
        ));
    }
    Ok(())
}

/// Whether `text` holds something shaped like an e-mail address.
fn looks_personal(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '<' | '>' | '(' | ')'))
        .any(|w| {
            w.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !domain.ends_with('.')
            })
        })
}

/// An actor as the audit names it, so a key's secret or a typo never lands in the register.
fn check_actor(actor: &str) -> Result<(), IncidentError> {
    let ok = if let Some(key) = actor.strip_prefix("key:stw_") {
        key.len() == 8 && key.bytes().all(|b| b.is_ascii_hexdigit())
    } else if let Some(name) = actor
        .strip_prefix("staff:")
        .or_else(|| actor.strip_prefix("cli:"))
    {
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
    } else {
        actor == "cli"
    };
    if ok {
        Ok(())
    } else {
        invalid(
            "actor: name it as the audit does — a key by its prefix (`key:stw_1a2b3c4d`, never its secret), `staff:NAME`, `cli` or `cli:USER`",
        )
    }
}

/// The breach register.
pub struct Incidents<S: IncidentStore> {
    requests: Arc<Requests<S>>,
}

impl<S: IncidentStore> std::fmt::Debug for Incidents<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incidents").finish_non_exhaustive()
    }
}

impl<S: IncidentStore> Incidents<S> {
    /// The register over the request workflow (its mailer, webhook signing and store).
    pub fn new(requests: Arc<Requests<S>>) -> Self {
        Self { requests }
    }

    /// The request workflow beneath the register.
    pub fn requests(&self) -> &Arc<Requests<S>> {
        &self.requests
    }

    /// Checks that `access` may do `op`; a refusal is audited as `action`, denied.
    async fn authorize(
        &self,
        access: &Access,
        op: Operation,
        action: &str,
    ) -> Result<(), IncidentError> {
        // The register reaches every person and category: a key narrowed to some purposes or
        // categories may not keep it (nor read people's notices with it).
        if let Err(d) = access.authorize(op, Reach::Everything) {
            let mut entry = access.entry(action, self.now());
            entry.outcome = crate::audit::Outcome::Denied;
            entry.code = Some(d.code.to_owned());
            self.requests.ledger().vault().record(entry).await?;
            return Err(d.into());
        }
        Ok(())
    }

    fn store(&self) -> &S {
        self.requests.ledger().vault().store()
    }

    fn now(&self) -> OffsetDateTime {
        self.requests.ledger().vault().clock().now()
    }

    fn declaration(&self) -> &steward_policy::Declaration {
        self.requests.ledger().vault().declaration()
    }

    /// Opens an incident. Needs the `incident` operation; audited as `incident.open`.
    ///
    /// # Errors
    ///
    /// [`IncidentError::Invalid`] for an empty title, awareness before detection, a time in
    /// the future, a window that ends before it starts, an unknown category.
    pub async fn open(
        &self,
        access: &Access,
        new: NewIncident,
    ) -> Result<IncidentView, IncidentError> {
        self.authorize(access, Operation::Incident, "incident.open")
            .await?;
        let now = self.now();
        let title = new.title.trim().to_owned();
        if title.is_empty() {
            return invalid("title: say in a few words what happened (no personal data)");
        }
        one_line("title", &title, 200)?;
        one_line("description", &new.description, 10_000)?;
        // Without a detection time, it was detected when it became known: at awareness, or now.
        let detected_at = new.detected_at.or(new.aware_at).unwrap_or(now);
        let aware_at = new.aware_at.unwrap_or(detected_at);
        if aware_at < detected_at {
            return invalid(format!(
                "aware: {} is before detection ({}); the controller becomes aware when a detected incident is confirmed to concern personal data — give --aware at or after --detected",
                stamp(aware_at),
                stamp(detected_at)
            ));
        }
        for (name, t) in [("detected", detected_at), ("aware", aware_at)] {
            if t > now + time::Duration::minutes(5) {
                return invalid(format!("{name}: {} is in the future", stamp(t)));
            }
        }
        for (name, t) in [
            ("detected", Some(detected_at)),
            ("aware", Some(aware_at)),
            ("from", new.occurred_from),
            ("to", new.occurred_to),
        ] {
            plausible(name, t)?;
        }
        if let (Some(from), Some(to)) = (new.occurred_from, new.occurred_to)
            && to < from
        {
            return invalid("window: --to is before --from");
        }
        self.check_categories(&new.categories)?;
        for s in &new.systems {
            one_line("systems", s, 200)?;
        }
        let mut incident = Incident {
            id: Uuid::now_v7(),
            number: 0,
            title,
            description: new.description.trim().to_owned(),
            detected_at,
            aware_at,
            opened_at: now,
            occurred_from: new.occurred_from,
            occurred_to: new.occurred_to,
            systems: new.systems,
            categories: new.categories,
            estimated_records: new.estimated_records,
            found: None,
            datasets: None,
            state: State::Open,
            assessment: None,
            authority: Vec::new(),
            people: None,
            closed_at: None,
            closing: None,
            timeline: Vec::new(),
            revision: 1,
        };
        incident.timeline.push(Step {
            at: now,
            by: access.principal.actor.clone(),
            action: "open".to_owned(),
            detail: format!("categories: {}", incident.categories.join(", ")),
        });
        let mut entry = access.entry("incident.open", now);
        entry.categories = incident.categories.clone();
        entry.detail = Some(format!("incident {}", incident.id));
        let vault = self.requests.ledger().vault();
        incident.number = self
            .store()
            .insert_incident(
                &row(&incident, now),
                Audited {
                    entries: vec![entry],
                    chain: vault.audit_chain(),
                },
            )
            .await?;
        self.view_of(incident).await
    }

    fn check_categories(&self, categories: &[String]) -> Result<(), IncidentError> {
        if categories.is_empty() {
            return invalid(
                "categories: name the data categories concerned, e.g. user.contact.email (see `steward taxonomy`)",
            );
        }
        let taxonomy = &self.declaration().taxonomy;
        for c in categories {
            match taxonomy.lookup(Kind::Category, c) {
                Lookup::Known(_) => {}
                Lookup::Deprecated { replaced_by } => {
                    return invalid(format!(
                        "categories: `{c}` is deprecated; use `{replaced_by}`"
                    ));
                }
                Lookup::Unknown { suggestion } => {
                    return invalid(format!(
                        "categories: `{c}` is not a data category{}",
                        suggestion
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_else(|| "; see `steward taxonomy`".to_owned())
                    ));
                }
            }
        }
        Ok(())
    }

    /// The incident with this id or number (`3`, `#3`, or its UUID).
    pub async fn find(&self, access: &Access, which: &str) -> Result<IncidentView, IncidentError> {
        self.authorize(access, Operation::Incident, "incident.show")
            .await?;
        let incident = self.load(which).await?;
        self.view_of(incident).await
    }

    async fn load(&self, which: &str) -> Result<Incident, IncidentError> {
        let which = which.trim().trim_start_matches('#');
        let row = if let Ok(n) = which.parse::<i64>() {
            self.store().incident_numbered(n).await?
        } else if let Ok(id) = which.parse::<Uuid>() {
            self.store().incident(id).await?
        } else {
            return invalid(format!(
                "`{which}` is neither an incident's number (3) nor its id; `steward incident list` shows them"
            ));
        };
        row.as_ref()
            .map(from_row)
            .transpose()?
            .ok_or(IncidentError::NotFound)
    }

    /// Every incident (not closed only when `open_only`), the newest first, with clocks.
    pub async fn list(
        &self,
        access: &Access,
        open_only: bool,
    ) -> Result<Vec<IncidentView>, IncidentError> {
        self.authorize(access, Operation::Incident, "incident.list")
            .await?;
        let mut out = Vec::new();
        for r in self.store().incidents(open_only).await? {
            out.push(self.view_of(from_row(&r)?).await?);
        }
        Ok(out)
    }

    /// The clocks of every open incident that are due soon or overdue, the soonest first.
    pub async fn due(&self, access: &Access) -> Result<Vec<(i64, Clock)>, IncidentError> {
        let mut out = Vec::new();
        for v in self.list(access, true).await? {
            for c in v.clocks {
                if matches!(c.status, ClockStatus::DueSoon | ClockStatus::Overdue) {
                    out.push((v.incident.number, c));
                }
            }
        }
        out.sort_by_key(|(_, c)| c.due);
        Ok(out)
    }

    async fn view_of(&self, incident: Incident) -> Result<IncidentView, IncidentError> {
        let store = self.store();
        let by_source = store.affected_counts(incident.id).await?;
        let total = by_source.iter().map(|(_, n)| n).sum();
        let deliveries: Vec<DeliveryCount> = store
            .delivery_counts(incident.id)
            .await?
            .into_iter()
            .map(|(channel, state, error, count)| DeliveryCount {
                error: error.filter(|_| state != "sent"),
                channel,
                state,
                count,
            })
            .collect();
        let clocks = clocks(
            self.declaration(),
            &incident,
            undelivered(&deliveries),
            self.now(),
        );
        Ok(IncidentView {
            incident,
            clocks,
            affected: Affected { by_source, total },
            deliveries,
            generated_at: self.now(),
        })
    }

    /// Writes `incident` (changed by `change`) over its stored revision, with an audit entry
    /// for `action`; retried once when another writer changed it first.
    async fn change(
        &self,
        access: &Access,
        which: &str,
        action: &str,
        change: impl Fn(&mut Incident, OffsetDateTime) -> Result<String, IncidentError>,
    ) -> Result<Incident, IncidentError> {
        self.authorize(access, Operation::Incident, &format!("incident.{action}"))
            .await?;
        for _ in 0..3 {
            let mut incident = self.load(which).await?;
            let now = self.now();
            let expected = incident.revision;
            let detail = change(&mut incident, now)?;
            incident.revision = expected + 1;
            incident.timeline.push(Step {
                at: now,
                by: access.principal.actor.clone(),
                action: action.to_owned(),
                detail: detail.clone(),
            });
            let mut entry = access.entry(&format!("incident.{action}"), now);
            entry.categories = incident.categories.clone();
            entry.detail = Some(format!("incident {}: {detail}", incident.id));
            let vault = self.requests.ledger().vault();
            if self
                .store()
                .update_incident(
                    &row(&incident, now),
                    expected,
                    Audited {
                        entries: vec![entry],
                        chain: vault.audit_chain(),
                    },
                )
                .await?
            {
                return Ok(incident);
            }
        }
        Err(IncidentError::Conflict(
            "the incident kept changing under this step; try again".to_owned(),
        ))
    }

    /// Assesses (or reassesses) the risk. Audited as `incident.assess`.
    ///
    /// # Errors
    ///
    /// [`IncidentError::Invalid`] without a reason; an exemption with a risk that is not
    /// high; `sealed_only` with plaintext systems named.
    pub async fn assess(
        &self,
        access: &Access,
        which: &str,
        new: NewAssessment,
    ) -> Result<IncidentView, IncidentError> {
        self.authorize(access, Operation::Incident, "incident.assess")
            .await?;
        if new.reason.trim().is_empty() {
            return invalid(
                "reason: say why the risk is what you assessed (Art. 33(5): the register documents it)",
            );
        }
        for (name, text) in [
            ("reason", &new.reason),
            ("consequences", &new.consequences),
            ("measures", &new.measures),
        ] {
            one_line(name, text, 10_000)?;
        }
        if !new.exemptions.is_empty() && new.risk != Risk::High {
            return invalid(
                "exemptions: Art. 34(3) exemptions matter only for a high risk; with a lower one people need not be told anyway",
            );
        }
        let actor = access.principal.actor.clone();
        let incident = self
            .change(access, which, "assess", |i, now| {
                if i.state == State::Closed {
                    return Err(IncidentError::Conflict(format!(
                        "incident #{} is closed; open a new one for new facts",
                        i.number
                    )));
                }
                let mut exemptions = new.exemptions.clone();
                if new.sealed_only && !exemptions.contains(&Exemption::Encrypted) {
                    exemptions.push(Exemption::Encrypted);
                }
                i.assessment = Some(Assessment {
                    risk: new.risk,
                    reason: new.reason.trim().to_owned(),
                    consequences: new.consequences.trim().to_owned(),
                    measures: new.measures.trim().to_owned(),
                    exemptions,
                    sealed_only: new.sealed_only,
                    at: now,
                    by: actor.clone(),
                });
                if i.state == State::Open {
                    i.state = State::Assessed;
                }
                Ok(format!("risk {:?}", new.risk).to_lowercase())
            })
            .await?;
        self.view_of(incident).await
    }

    /// Finds affected people and adds them to the incident (it only grows; a person found
    /// twice counts once). Audited as `incident.affected` with the counts.
    ///
    /// # Errors
    ///
    /// [`IncidentError::Invalid`] when nothing is asked, or an actor without a window.
    pub async fn derive(
        &self,
        access: &Access,
        which: &str,
        derive: Derive,
    ) -> Result<IncidentView, IncidentError> {
        self.authorize(access, Operation::Incident, "incident.affected")
            .await?;
        let incident = self.load(which).await?;
        if incident.state == State::Closed {
            return Err(IncidentError::Conflict(format!(
                "incident #{} is closed",
                incident.number
            )));
        }
        if derive.datasets && self.requests.sources().is_empty() {
            return invalid(
                "datasets: the declaration names no dataset of your own (a [[datasets]] manifest), or they were not connected",
            );
        }
        if !derive.categories
            && !derive.datasets
            && derive.actor.is_none()
            && derive.subjects.is_empty()
        {
            return invalid(
                "name how to find the people: --categories (everyone holding the incident's categories), --key stw_… or --actor staff:NAME (everyone it touched in the window), or --subjects FILE",
            );
        }
        // Everything is checked before anything is added: a refused call adds nobody.
        let window = match &derive.actor {
            Some(actor) => {
                check_actor(actor)?;
                let from = derive.from.or(incident.occurred_from);
                let to = derive
                    .to
                    .or(incident.occurred_to)
                    .unwrap_or_else(|| self.now());
                let Some(from) = from else {
                    return invalid(
                        "window: give --from (or open the incident with a window) to say since when the key or account was misused",
                    );
                };
                if to < from {
                    return invalid("window: --to is before --from");
                }
                Some((actor.clone(), from, to))
            }
            None => None,
        };
        if derive.subjects.len() > 100_000 {
            return invalid("subjects: at most 100,000 in one call");
        }
        let store = self.store();
        let mut found = Vec::new();
        if derive.categories {
            let kinds: Vec<String> = [
                IdentityKind::Email,
                IdentityKind::Phone,
                IdentityKind::Username,
            ]
            .iter()
            .filter(|k| incident.categories.iter().any(|c| covers(c, k.category())))
            .map(|k| k.as_str().to_owned())
            .collect();
            let n = store
                .add_affected(
                    incident.id,
                    AffectedBy::Categories {
                        categories: &incident.categories,
                        kinds: &kinds,
                        before: derive.to.or(incident.occurred_to),
                    },
                    "vault",
                )
                .await?;
            found.push(format!("{n} from the vault"));
        }
        plausible("from", derive.from)?;
        plausible("to", derive.to)?;
        if let Some((actor, from, to)) = &window {
            let (actor, from, to) = (actor.as_str(), *from, *to);
            let n = store
                .add_affected(incident.id, AffectedBy::Actor { actor, from, to }, "audit")
                .await?;
            found.push(format!("{n} touched by {actor}"));
        }
        let mut reach: Option<DatasetReach> = None;
        if derive.datasets {
            let vault = self.requests.ledger().vault();
            let mut total = DatasetReach::default();
            for source in self.requests.sources() {
                let people = source
                    .people(&incident.categories, 5_000_000)
                    .await
                    .map_err(IncidentError::Dataset)?;
                total.rows += people.rows;
                let mut ids = Vec::new();
                for (kind, value) in &people.identities {
                    let found = match IdentityKind::parse(kind)
                        .ok()
                        .and_then(|k| crate::Identity::parse(k, value).ok())
                    {
                        Some(identity) => vault.subject_by(&identity).await?,
                        None => None,
                    };
                    match found {
                        Some(s) => ids.push(s),
                        None => total.outside_vault += 1,
                    }
                }
                ids.sort();
                ids.dedup();
                let n = store
                    .add_affected(incident.id, AffectedBy::Listed(&ids), "dataset")
                    .await?;
                found.push(format!(
                    "{n} from dataset `{}` ({} rows hold the categories; {} identities there are not in the vault)",
                    source.name(),
                    people.rows,
                    people.identities.len() - ids.len().min(people.identities.len())
                ));
            }
            reach = Some(total);
        }
        if !derive.subjects.is_empty() {
            let n = store
                .add_affected(incident.id, AffectedBy::Listed(&derive.subjects), "listed")
                .await?;
            found.push(format!(
                "{n} of {} listed (an id the vault does not hold, or one found already, is not added)",
                derive.subjects.len()
            ));
        }
        let total: u64 = store
            .affected_counts(incident.id)
            .await?
            .iter()
            .map(|(_, n)| n)
            .sum();
        let detail = format!("added {}; {total} in all", found.join(", "));
        let incident = self
            .change(access, which, "affected", |i, _| {
                if i.state == State::Closed {
                    return Err(IncidentError::Conflict(format!(
                        "incident #{} was closed meanwhile",
                        i.number
                    )));
                }
                i.found = Some(total);
                if let Some(r) = reach {
                    i.datasets = Some(r);
                }
                Ok(detail.clone())
            })
            .await?;
        self.view_of(incident).await
    }

    /// Records the authority's notification in `phase` (the report is made with
    /// [`report::Report`]); `late_reason` is required past the deadline (Art. 33(1)).
    /// Audited as `incident.notify-authority`.
    ///
    /// # Errors
    ///
    /// [`IncidentError::Conflict`] for a phase already sent or out of order (an initial
    /// notification twice), a closed incident; [`IncidentError::Invalid`] for a late
    /// notification without its reasons.
    pub async fn notify_authority(
        &self,
        access: &Access,
        which: &str,
        phase: Phase,
        reference: Option<String>,
        late_reason: Option<String>,
    ) -> Result<IncidentView, IncidentError> {
        let declaration = self.declaration().clone();
        let actor = access.principal.actor.clone();
        let incident = self
            .change(access, which, "notify-authority", |i, now| {
                if i.state == State::Closed {
                    return Err(IncidentError::Conflict(format!(
                        "incident #{} is closed",
                        i.number
                    )));
                }
                match (i.authority.last(), phase) {
                    (None, Phase::Initial) => {}
                    (None, _) => {
                        return Err(IncidentError::Conflict(
                            "the authority has not been notified yet: send the initial notification first (--phase initial)".to_owned(),
                        ));
                    }
                    (Some(last), Phase::Initial) => {
                        return Err(IncidentError::Conflict(format!(
                            "the authority was already notified on {}; nobody is notified twice — send more with --phase follow-up, or --phase final",
                            last.at.date()
                        )));
                    }
                    (Some(last), _) if last.phase == Phase::Final => {
                        return Err(IncidentError::Conflict(
                            "the final notification was sent; reopen nothing — open a new incident for new facts".to_owned(),
                        ));
                    }
                    _ => {}
                }
                if phase == Phase::Final && i.assessment.is_none() {
                    return Err(IncidentError::Conflict(
                        "assess the incident before the final notification: it states the risk, the consequences and the measures".to_owned(),
                    ));
                }
                if phase == Phase::Initial
                    && let Some(clock) = &declaration.breach.authority
                {
                    let due = crate::time_math::add(i.aware_at, clock.within, &[]);
                    if now > due && late_reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                        return invalid(format!(
                            "late: the deadline was {due}; Art. 33(1) asks for the reasons for the delay — give --late-reason"
                        ));
                    }
                }
                i.authority.push(AuthorityNotice {
                    phase,
                    at: now,
                    reference: reference.clone(),
                    late_reason: late_reason.clone(),
                    by: actor.clone(),
                });
                i.state = State::Notified;
                Ok(format!("{phase:?} notification").to_lowercase())
            })
            .await?;
        self.view_of(incident).await
    }

    /// Queues the notices to every affected person by the declared channels (e-mail,
    /// in-app), and with `reset_passwords` a password-reset webhook for each; a person
    /// already queued by a channel is not queued again by it. Needs an assessment and
    /// affected people. Audited as `incident.notify-subjects` with the counts.
    ///
    /// # Errors
    ///
    /// [`IncidentError::Conflict`] before assessment or derivation, when everyone was
    /// notified already, on a closed incident; [`IncidentError::Invalid`] for reset without a
    /// declared `[breach] password_reset`, or late without reasons.
    pub async fn notify_subjects(
        &self,
        access: &Access,
        which: &str,
        reset_passwords: bool,
        late_reason: Option<String>,
    ) -> Result<(IncidentView, Queued), IncidentError> {
        self.authorize(access, Operation::Incident, "incident.notify-subjects")
            .await?;
        let declaration = self.declaration().clone();
        let incident = self.load(which).await?;
        if incident.state == State::Closed {
            return Err(IncidentError::Conflict(format!(
                "incident #{} is closed",
                incident.number
            )));
        }
        if incident.assessment.is_none() {
            return Err(IncidentError::Conflict(format!(
                "assess incident #{} first (`steward incident assess {} --risk high --reason …`): what people are told depends on it",
                incident.number, incident.number
            )));
        }
        if let Some(a) = &incident.assessment
            && (a.consequences.trim().is_empty() || a.measures.trim().is_empty())
        {
            return invalid(format!(
                "people must be told the likely consequences and the measures taken (Art. 34(2)); assess again with --consequences and --measures (`steward incident assess {} …`), then notify",
                incident.number
            ));
        }
        let store = self.store();
        let affected: u64 = store
            .affected_counts(incident.id)
            .await?
            .iter()
            .map(|(_, n)| n)
            .sum();
        if affected == 0 {
            return Err(IncidentError::Conflict(format!(
                "no affected people are known: run `steward incident affected {} --categories` (or --key, --subjects) first",
                incident.number
            )));
        }
        let clock = declaration.breach.subjects.as_ref();
        let mut channels: Vec<&str> = clock
            .map(|c| c.channels.iter().map(|c| channel_name(*c)).collect())
            .unwrap_or_else(|| vec!["email"]);
        channels.retain(|c| matches!(*c, "email" | "in-app"));
        if channels.is_empty() {
            channels.push("email");
        }
        if reset_passwords {
            if declaration.breach.password_reset.is_none() {
                return invalid(
                    "reset: declare where your application takes password resets: [breach] password_reset = \"https://app.example.com/steward/password-reset\"",
                );
            }
            channels.push(PASSWORD_RESET);
        }
        let now = self.now();
        if incident.people.is_none()
            && let Some(c) = clock
        {
            let due = crate::time_math::add(incident.aware_at, c.within, &[]);
            if now > due && late_reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return invalid(format!(
                    "late: people were to be told by {due}; give the reasons for the delay with --late-reason"
                ));
            }
        }
        // Run again, the notification makes the notices waiting for a retry due now (the
        // operator fixed the mail server, say).
        for channel in ["email", PASSWORD_RESET] {
            for state in ["queued", "failed"] {
                store.requeue(incident.id, channel, state, now).await?;
            }
        }
        let mut queued = Queued::default();
        for channel in &channels {
            let state = if *channel == "in-app" {
                "posted"
            } else {
                "queued"
            };
            let n = store
                .queue_deliveries(incident.id, channel, state, now)
                .await?;
            queued.by_channel.push(((*channel).to_owned(), n));
        }
        let total: u64 = queued.by_channel.iter().map(|(_, n)| n).sum();
        if total == 0 {
            // Nobody new: a stopped run's notices may still be waiting; sending goes on.
            let pending = store
                .delivery_counts(incident.id)
                .await?
                .iter()
                .any(|(_, state, _, n)| *n > 0 && matches!(state.as_str(), "queued" | "claimed"));
            if pending {
                return Ok((self.view_of(incident).await?, queued));
            }
            return Err(IncidentError::Conflict(format!(
                "all {affected} affected people already have their notices by {}; nobody is notified twice",
                channels.join(", ")
            )));
        }
        let detail = queued
            .by_channel
            .iter()
            .map(|(c, n)| format!("{n} by {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let names: Vec<String> = channels.iter().map(|c| (*c).to_owned()).collect();
        let incident = self
            .change(access, which, "notify-subjects", |i, at| {
                if i.state == State::Closed {
                    return Err(IncidentError::Conflict(format!(
                        "incident #{} was closed meanwhile",
                        i.number
                    )));
                }
                match &mut i.people {
                    Some(p) => {
                        p.queued += total;
                        for c in &names {
                            if !p.channels.contains(c) {
                                p.channels.push(c.clone());
                            }
                        }
                    }
                    None => {
                        i.people = Some(PeopleNotice {
                            at,
                            channels: names.clone(),
                            late_reason: late_reason.clone(),
                            queued: total,
                        });
                    }
                }
                i.state = State::Notified;
                Ok(format!("queued {detail}"))
            })
            .await?;
        Ok((self.view_of(incident).await?, queued))
    }

    /// The message people would be sent, to read before notifying them. Needs the
    /// `incident` operation.
    pub async fn preview(&self, access: &Access, which: &str) -> Result<String, IncidentError> {
        self.authorize(access, Operation::Incident, "incident.preview")
            .await?;
        let incident = self.load(which).await?;
        Ok(report::people_message(self.declaration(), &incident))
    }

    /// Puts the notices a killed run left `uncertain` back in the queue, once the operator
    /// has checked (in the mail server's log) that they did not go out. Audited.
    pub async fn resend_uncertain(
        &self,
        access: &Access,
        which: &str,
    ) -> Result<u64, IncidentError> {
        self.authorize(access, Operation::Incident, "incident.requeue")
            .await?;
        let incident = self.load(which).await?;
        if incident.state == State::Closed {
            return Err(IncidentError::Conflict(format!(
                "incident #{} is closed",
                incident.number
            )));
        }
        let now = self.now();
        let mut n = 0;
        for channel in ["email", PASSWORD_RESET] {
            n += self
                .store()
                .requeue(incident.id, channel, "uncertain", now)
                .await?;
        }
        let detail = format!("{n} uncertain notices queued again");
        self.change(access, which, "requeue", |_, _| Ok(detail.clone()))
            .await?;
        Ok(n)
    }

    /// Closes the incident with the reason. Audited as `incident.close`.
    ///
    /// # Errors
    ///
    /// [`IncidentError::Conflict`] while a declared, required clock has not been met, or
    /// when it is closed already; [`IncidentError::Invalid`] without a reason.
    pub async fn close(
        &self,
        access: &Access,
        which: &str,
        reason: &str,
    ) -> Result<IncidentView, IncidentError> {
        self.authorize(access, Operation::Incident, "incident.close")
            .await?;
        if reason.trim().is_empty() {
            return invalid(
                "reason: say why the incident is closed (contained, notified, no personal data involved …)",
            );
        }
        one_line("reason", reason, 10_000)?;
        let declaration = self.declaration().clone();
        let id = self.load(which).await?.id;
        let pending = undelivered(
            &self
                .store()
                .delivery_counts(id)
                .await?
                .into_iter()
                .map(|(channel, state, error, count)| DeliveryCount {
                    channel,
                    state,
                    error,
                    count,
                })
                .collect::<Vec<_>>(),
        );
        let incident = self
            .change(access, which, "close", |i, now| {
                if i.state == State::Closed {
                    return Err(IncidentError::Conflict(format!(
                        "incident #{} is closed already",
                        i.number
                    )));
                }
                if i.assessment.is_none() {
                    return Err(IncidentError::Conflict(
                        "assess the incident before closing it: the register documents the risk (Art. 33(5))".to_owned(),
                    ));
                }
                if let Some(c) = clocks(&declaration, i, pending, now).iter().find(|c| {
                    matches!(
                        c.status,
                        ClockStatus::Running
                            | ClockStatus::DueSoon
                            | ClockStatus::Overdue
                            | ClockStatus::Sending
                    )
                }) {
                    let promise = match (c.audience, &declaration.breach.subjects) {
                        ("subjects", Some(b)) if b.when == BreachCondition::Always => {
                            " — the declaration promises to tell them after every breach ([breach.subjects] when = \"always\"), whatever the risk or an Art. 34(3) exemption; if nobody is affected, run `incident affected` so the register records it"
                        }
                        ("authority", Some(_)) | ("authority", None) => {
                            " (or reassess the risk as unlikely, with the reason)"
                        }
                        _ => " (or reassess the risk)",
                    };
                    return Err(IncidentError::Conflict(format!(
                        "the {} must still be notified (due {}){promise}",
                        if c.audience == "subjects" { "people" } else { "authority" },
                        stamp(c.due)
                    )));
                }
                i.state = State::Closed;
                i.closed_at = Some(now);
                i.closing = Some(reason.trim().to_owned());
                Ok("closed".to_owned())
            })
            .await?;
        self.view_of(incident).await
    }

    /// Sends up to `limit` queued e-mail notices and password-reset webhooks, each marked
    /// `sending` in its own write before it goes out and `sent` after; a failure is tried
    /// again with backoff, up to [`MAX_ATTEMPTS`]. `pace` is called after each message (the
    /// caller throttles there). Audited per run with the counts (`incident.deliver`).
    pub async fn deliver(
        &self,
        limit: u32,
        pace: &mut (dyn FnMut(u64) + Send),
    ) -> Result<Delivered, IncidentError> {
        let mut done = Delivered::default();
        let now = self.now();
        let store = self.store();
        let claimed = store
            .claim_deliveries("email", now, now + LEASE, limit)
            .await?;
        for d in claimed {
            self.send_mail(&d, &mut done).await?;
            pace(done.sent + done.failed + done.given_up);
        }
        let resets = store
            .claim_deliveries(PASSWORD_RESET, now, now + LEASE, RESET_BATCH)
            .await?;
        if !resets.is_empty() {
            self.post_resets(resets, &mut done).await?;
        }
        if done != Delivered::default() {
            let mut entry = Access::new(crate::access::Principal::steward("incidents"))
                .entry("incident.deliver", self.now());
            entry.detail = Some(format!(
                "{} notices sent, {} attempts failed, {} given up",
                done.sent, done.failed, done.given_up
            ));
            self.requests.ledger().vault().record(entry).await?;
        }
        Ok(done)
    }

    async fn fail(
        &self,
        d: &DeliveryRow,
        from: &str,
        error: &str,
        done: &mut Delivered,
    ) -> Result<(), IncidentError> {
        let store = self.store();
        let now = self.now();
        if d.attempts >= MAX_ATTEMPTS {
            store
                .move_delivery(
                    d.incident,
                    d.subject,
                    &d.channel,
                    from,
                    "failed",
                    now,
                    Some(error),
                )
                .await?;
            done.given_up += 1;
        } else {
            let backoff = time::Duration::minutes(1 << d.attempts.saturating_sub(1).min(8));
            store
                .retry_delivery(d.incident, d.subject, &d.channel, now + backoff, error)
                .await?;
            done.failed += 1;
        }
        Ok(())
    }

    async fn send_mail(&self, d: &DeliveryRow, done: &mut Delivered) -> Result<(), IncidentError> {
        let store = self.store();
        let Some(incident) = store
            .incident(d.incident)
            .await?
            .as_ref()
            .map(from_row)
            .transpose()?
        else {
            return Ok(());
        };
        let vault = self.requests.ledger().vault();
        let address = match vault.email_of(d.subject).await {
            Ok(Some(a)) => a,
            Ok(None) | Err(VaultError::NotFound) => {
                store
                    .move_delivery(
                        d.incident,
                        d.subject,
                        "email",
                        "claimed",
                        "failed",
                        self.now(),
                        Some("no-email-address"),
                    )
                    .await?;
                done.given_up += 1;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let mail = Mail {
            to: address,
            subject: format!(
                "{}: a personal data breach that concerns you",
                self.declaration().controller.name
            ),
            text: report::people_message(self.declaration(), &incident),
            headers: vec![("X-Steward-Incident".to_owned(), incident.id.to_string())],
            kind: "breach",
        };
        // The write that makes a resend impossible comes before the message goes out.
        if !store
            .move_delivery(
                d.incident,
                d.subject,
                "email",
                "claimed",
                "sending",
                self.now(),
                None,
            )
            .await?
        {
            return Ok(());
        }
        match self.requests.ledger().mailer().send(&mail).await {
            Ok(()) => {
                store
                    .move_delivery(
                        d.incident,
                        d.subject,
                        "email",
                        "sending",
                        "sent",
                        self.now(),
                        None,
                    )
                    .await?;
                done.sent += 1;
            }
            Err(e) if e.may_have_arrived() => {
                // The server may have it: never sent again on its own (nobody twice).
                store
                    .move_delivery(
                        d.incident,
                        d.subject,
                        "email",
                        "sending",
                        "uncertain",
                        self.now(),
                        Some("smtp-no-answer"),
                    )
                    .await?;
                done.given_up += 1;
            }
            Err(_) => {
                // Refused or unreachable: the server does not have it; try again later.
                self.fail(d, "sending", "smtp-failed", done).await?;
            }
        }
        Ok(())
    }

    async fn post_resets(
        &self,
        resets: Vec<DeliveryRow>,
        done: &mut Delivered,
    ) -> Result<(), IncidentError> {
        let declaration = self.declaration();
        let Some(url) = declaration.breach.password_reset.clone() else {
            return Ok(());
        };
        let store = self.store();
        let mut by_incident: std::collections::BTreeMap<Uuid, Vec<DeliveryRow>> =
            std::collections::BTreeMap::new();
        for d in resets {
            by_incident.entry(d.incident).or_default().push(d);
        }
        for (incident, rows) in by_incident {
            let now = self.now();
            let body = serde_json::json!({
                "type": "steward.breach.password-reset",
                "incident": incident,
                "subjects": rows.iter().map(|d| d.subject).collect::<Vec<_>>(),
                "at": now.unix_timestamp(),
                "acknowledge": format!("/v1/incidents/{incident}/password-resets"),
            })
            .to_string();
            for d in &rows {
                store
                    .move_delivery(
                        d.incident,
                        d.subject,
                        PASSWORD_RESET,
                        "claimed",
                        "sending",
                        now,
                        None,
                    )
                    .await?;
            }
            let signature = self
                .requests
                .sign_webhook(PASSWORD_RESET, &body, now)
                .await?;
            let status = self.requests.notifier().post(&url, &body, &signature).await;
            match status {
                Ok(s) if (200..300).contains(&s) => {
                    for d in &rows {
                        store
                            .move_delivery(
                                d.incident,
                                d.subject,
                                PASSWORD_RESET,
                                "sending",
                                "sent",
                                self.now(),
                                None,
                            )
                            .await?;
                        done.sent += 1;
                    }
                }
                Ok(s) => {
                    for d in &rows {
                        self.fail(d, "sending", &format!("webhook-status-{s}"), done)
                            .await?;
                    }
                }
                Err(_) => {
                    for d in &rows {
                        self.fail(d, "sending", "webhook-unreachable", done).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The application acknowledges that these people's passwords were reset. Needs the
    /// `request` operation (a service key); audited with the count.
    pub async fn acknowledge_resets(
        &self,
        access: &Access,
        incident: Uuid,
        subjects: &[SubjectId],
    ) -> Result<u64, IncidentError> {
        self.authorize(access, Operation::Request, "incident.password-reset-ack")
            .await?;
        if subjects.len() > 10_000 {
            return invalid("subjects: at most 10,000 in one acknowledgement");
        }
        let now = self.now();
        let n = self
            .store()
            .acknowledge_deliveries(incident, subjects, PASSWORD_RESET, "acknowledged", now)
            .await?;
        let mut entry = access.entry("incident.password-reset-ack", now);
        entry.detail = Some(format!(
            "incident {incident}: {n} password resets acknowledged"
        ));
        self.requests.ledger().vault().record(entry).await?;
        Ok(n)
    }

    /// A person's in-app breach notices, for the operator's application to show. Needs the
    /// `request` operation; audited.
    pub async fn notices(
        &self,
        access: &Access,
        subject: SubjectId,
    ) -> Result<Vec<InAppNotice>, IncidentError> {
        self.authorize(access, Operation::Request, "incident.notices")
            .await?;
        let mut entry = access.entry("incident.notices", self.now());
        entry.subject = Some(subject);
        self.requests.ledger().vault().record(entry).await?;
        let mut out = Vec::new();
        for d in self.store().deliveries_of(subject, "in-app").await? {
            let Some(incident) = self.store().incident(d.incident).await? else {
                continue;
            };
            let incident = from_row(&incident)?;
            out.push(InAppNotice {
                incident: incident.id,
                title: format!(
                    "{}: a personal data breach that concerns you",
                    self.declaration().controller.name
                ),
                message: report::people_message(self.declaration(), &incident),
                posted_at: d.queued_at,
                read_at: d.acked_at,
            });
        }
        Ok(out)
    }

    /// Marks a person's in-app notice read. Needs the `request` operation; audited.
    pub async fn read_notice(
        &self,
        access: &Access,
        subject: SubjectId,
        incident: Uuid,
    ) -> Result<bool, IncidentError> {
        self.authorize(access, Operation::Request, "incident.notice-read")
            .await?;
        let now = self.now();
        let n = self
            .store()
            .acknowledge_deliveries(incident, &[subject], "in-app", "read", now)
            .await?;
        let mut entry = access.entry("incident.notice-read", now);
        entry.subject = Some(subject);
        entry.detail = Some(format!("incident {incident}"));
        self.requests.ledger().vault().record(entry).await?;
        Ok(n > 0)
    }

    /// The Art. 33(3) report of an incident. Needs the `incident` operation; audited.
    pub async fn report(
        &self,
        access: &Access,
        which: &str,
    ) -> Result<report::Report, IncidentError> {
        let view = self.find(access, which).await?;
        let mut entry = access.entry("incident.report", self.now());
        entry.detail = Some(format!("incident {}", view.incident.id));
        self.requests.ledger().vault().record(entry).await?;
        Ok(report::Report::new(self.declaration(), &view))
    }
}

/// A breach notice shown in the operator's application.
#[derive(Debug, Clone, Serialize)]
pub struct InAppNotice {
    /// The incident.
    pub incident: Uuid,
    /// A title.
    pub title: String,
    /// The message (Art. 34(2)).
    pub message: String,
    /// When it was posted.
    #[serde(with = "time::serde::rfc3339")]
    pub posted_at: OffsetDateTime,
    /// When the person read it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub read_at: Option<OffsetDateTime>,
}

fn channel_name(c: Channel) -> &'static str {
    c.as_str()
}

fn row(i: &Incident, now: OffsetDateTime) -> IncidentRow {
    IncidentRow {
        id: i.id,
        number: i.number,
        state: i.state.as_str().to_owned(),
        aware_at: i.aware_at,
        opened_at: i.opened_at,
        updated_at: now,
        revision: i.revision,
        body: serde_json::to_string(i).unwrap_or_default(),
    }
}

fn from_row(r: &IncidentRow) -> Result<Incident, IncidentError> {
    let mut i: Incident = serde_json::from_str(&r.body).map_err(|e| {
        IncidentError::Store(StoreError::Backend(format!(
            "incident {} is unreadable: {e}",
            r.id
        )))
    })?;
    i.number = r.number;
    i.revision = r.revision;
    Ok(i)
}

/// How many of the people's notices are not delivered yet: queued, being sent, uncertain, or
/// failed for a reason a retry can mend (an address nobody has is not one).
fn undelivered(deliveries: &[DeliveryCount]) -> u64 {
    deliveries
        .iter()
        .filter(|d| d.channel != PASSWORD_RESET)
        .filter(|d| match d.state.as_str() {
            "queued" | "claimed" | "sending" | "uncertain" => true,
            "failed" => d.error.as_deref() != Some("no-email-address"),
            _ => false,
        })
        .map(|d| d.count)
        .sum()
}

/// Whether an audience's clock applies after `assessment` (none yet: it runs).
fn required(when: BreachCondition, assessment: Option<&Assessment>) -> bool {
    match (when, assessment.map(|a| a.risk)) {
        (_, None) | (BreachCondition::Always, _) => true,
        (BreachCondition::Risk, Some(r)) => r != Risk::Unlikely,
        (BreachCondition::HighRisk, Some(r)) => r == Risk::High,
    }
}

/// One clock per declared audience, as it stands at `now`: due `within` after awareness.
pub fn clocks(
    declaration: &steward_policy::Declaration,
    incident: &Incident,
    undelivered: u64,
    now: OffsetDateTime,
) -> Vec<Clock> {
    let mut out = Vec::new();
    let audiences: [(&'static str, Option<&BreachClock>, Option<OffsetDateTime>); 2] = [
        (
            "authority",
            declaration.breach.authority.as_ref(),
            incident.authority.first().map(|a| a.at),
        ),
        (
            "subjects",
            declaration.breach.subjects.as_ref(),
            incident.people.as_ref().map(|p| p.at),
        ),
    ];
    for (audience, clock, notified_at) in audiences {
        let Some(clock) = clock else { continue };
        let due = crate::time_math::add(incident.aware_at, clock.within, &[]);
        let window: time::Duration = due - incident.aware_at;
        let assessment = incident.assessment.as_ref();
        let status = match notified_at {
            Some(_) if audience == "subjects" && undelivered > 0 && now > due => {
                ClockStatus::Overdue
            }
            Some(_) if audience == "subjects" && undelivered > 0 => ClockStatus::Sending,
            Some(at) if at <= due => ClockStatus::Met,
            Some(_) => ClockStatus::Late,
            None if !required(clock.when, assessment) => ClockStatus::NotRequired,
            // Looked for, and nobody is affected: nobody to tell.
            None if audience == "subjects" && assessment.is_some() && incident.found == Some(0) => {
                ClockStatus::NotRequired
            }
            None if audience == "subjects"
                && clock.when != BreachCondition::Always
                && assessment.is_some_and(|a| !a.exemptions.is_empty()) =>
            {
                ClockStatus::Exempt
            }
            None if incident.state == State::Closed => ClockStatus::NotRequired,
            None if now > due => ClockStatus::Overdue,
            None if due - now <= (window / 3_i32).min(time::Duration::hours(24)) => {
                ClockStatus::DueSoon
            }
            None => ClockStatus::Running,
        };
        out.push(Clock {
            audience,
            within: clock.within.to_string(),
            due,
            status,
            notified_at,
            channels: clock
                .channels
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use time::macros::datetime;

    fn seed(name: &str) -> steward_policy::Declaration {
        let path = format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let source = steward_policy::Source::new(name, text);
        steward_policy::check(&source).unwrap().declaration.unwrap()
    }

    fn incident(aware_at: OffsetDateTime) -> Incident {
        Incident {
            id: Uuid::nil(),
            number: 1,
            title: "Support inbox exposed".into(),
            description: "A shared link made the inbox readable.".into(),
            detected_at: aware_at - time::Duration::hours(3),
            aware_at,
            opened_at: aware_at,
            occurred_from: Some(aware_at - time::Duration::days(9)),
            occurred_to: Some(aware_at - time::Duration::days(1)),
            systems: vec!["support inbox".into()],
            categories: vec!["user.contact.email".into()],
            estimated_records: Some(1200),
            found: None,
            datasets: None,
            state: State::Open,
            assessment: None,
            authority: Vec::new(),
            people: None,
            closed_at: None,
            closing: None,
            timeline: Vec::new(),
            revision: 1,
        }
    }

    #[test]
    fn clocks_count_from_awareness_on_the_seeds_audiences() {
        let aware = datetime!(2026-11-30 08:00 UTC);
        // Seed 003: people by e-mail within 48 hours, the authority within 72.
        let allcot = seed("003-allcot.toml");
        let c = clocks(
            &allcot,
            &incident(aware),
            0,
            aware + time::Duration::hours(1),
        );
        let due: Vec<_> = c.iter().map(|c| (c.audience, c.due, c.status)).collect();
        assert!(
            due.contains(&(
                "subjects",
                aware + time::Duration::hours(48),
                ClockStatus::Running
            )),
            "{due:?}"
        );
        assert!(
            due.contains(&(
                "authority",
                aware + time::Duration::hours(72),
                ClockStatus::Running
            )),
            "{due:?}"
        );
        // 40 hours on, the people's clock is due soon; 50 hours on, overdue.
        let c = clocks(
            &allcot,
            &incident(aware),
            0,
            aware + time::Duration::hours(40),
        );
        assert_eq!(
            c.iter().find(|c| c.audience == "subjects").unwrap().status,
            ClockStatus::DueSoon
        );
        let c = clocks(
            &allcot,
            &incident(aware),
            0,
            aware + time::Duration::hours(50),
        );
        assert_eq!(
            c.iter().find(|c| c.audience == "subjects").unwrap().status,
            ClockStatus::Overdue
        );
        // Seed 004: both within 72 hours, people by e-mail and in-app, always.
        let mailpro = seed("004-mailpro.toml");
        let mut i = incident(aware);
        i.assessment = Some(Assessment {
            risk: Risk::Unlikely,
            reason: "only hashed addresses".into(),
            consequences: String::new(),
            measures: String::new(),
            exemptions: vec![],
            sealed_only: false,
            at: aware,
            by: "cli".into(),
        });
        let c = clocks(&mailpro, &i, 0, aware + time::Duration::hours(80));
        let people = c.iter().find(|c| c.audience == "subjects").unwrap();
        assert_eq!(people.channels, vec!["email", "in-app"]);
        assert_eq!(people.due, aware + time::Duration::hours(72));
        assert_eq!(
            people.status,
            ClockStatus::Overdue,
            "`when = always`: even an unlikely risk"
        );
        // Seed 003's authority clock applies only to a risk: an unlikely one needs no notice.
        let c = clocks(&allcot, &i, 0, aware + time::Duration::hours(80));
        assert_eq!(
            c.iter().find(|c| c.audience == "authority").unwrap().status,
            ClockStatus::NotRequired
        );
        // Notified in time: met; after: late.
        i.authority.push(AuthorityNotice {
            phase: Phase::Initial,
            at: aware + time::Duration::hours(70),
            reference: None,
            late_reason: None,
            by: "cli".into(),
        });
        i.people = Some(PeopleNotice {
            at: aware + time::Duration::hours(75),
            channels: vec!["email".into()],
            late_reason: Some("x".into()),
            queued: 1,
        });
        let c = clocks(&mailpro, &i, 0, aware + time::Duration::hours(80));
        assert_eq!(
            c.iter().find(|c| c.audience == "authority").unwrap().status,
            ClockStatus::Met
        );
        assert_eq!(
            c.iter().find(|c| c.audience == "subjects").unwrap().status,
            ClockStatus::Late
        );
    }

    #[test]
    fn the_report_holds_every_article_33_3_item() {
        let mailpro = seed("004-mailpro.toml");
        let aware = datetime!(2026-11-30 08:00 UTC);
        let mut i = incident(aware);
        i.assessment = Some(Assessment {
            risk: Risk::High,
            reason: "addresses readable by anyone with the link".into(),
            consequences: "targeted phishing".into(),
            measures: "link revoked; passwords reset".into(),
            exemptions: vec![],
            sealed_only: true,
            at: aware,
            by: "cli".into(),
        });
        let view = IncidentView {
            clocks: clocks(&mailpro, &i, 0, aware),
            incident: i,
            affected: Affected {
                by_source: vec![("vault".into(), 1180)],
                total: 1180,
            },
            deliveries: vec![],
            generated_at: aware,
        };
        let r = report::Report::new(&mailpro, &view);
        let md = r.markdown();
        for needle in [
            "Art. 33(3)(a)",
            "user.contact.email",
            "1180",
            "1200",
            "Art. 33(3)(b)",
            "legal@maxony.com",
            "Art. 33(3)(c)",
            "targeted phishing",
            "Art. 33(3)(d)",
            "link revoked",
            "2026-11-30T08:00:00Z",
            "Art. 34(3)(a)",
        ] {
            assert!(md.contains(needle), "{needle} missing from\n{md}");
        }
        let html = r.html();
        assert!(
            html.contains("<h2>3. Likely consequences (Art. 33(3)(c))</h2>"),
            "{html}"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["sections"].as_array().unwrap().len(), 6);
        // The people's message: plain words, the contact point, no report jargon.
        let text = report::people_message(&mailpro, &view.incident);
        assert!(
            text.contains("legal@maxony.com") && text.contains("targeted phishing"),
            "{text}"
        );
    }
}
