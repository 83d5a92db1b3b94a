//! Retention enforced: the periods the declaration states become rules, and the rules become
//! sweeps over the vault (fields and people), data kept under legal holds, finished requests
//! and the outbox folder (GDPR Art. 5(1)(e), storage limitation; CCPA Regs. § 7101 for the
//! requests' records).
//!
//! A record is due when the event its period counts from happened at least the period's
//! *shortest* length before the sweep's date (`45 to 60 days after account closure`: from day
//! 45); a sweep that runs at least daily keeps the longest. Nothing is erased early: the cutoff
//! is computed back from the date the sweep runs as of, which is never later than now.
//!
//! Every batch is removed in one transaction with its audit entry, so a sweep cut off midway
//! leaves each batch whole or untouched; the next run finds what is left and counts nothing
//! twice.

pub mod storage;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use steward_policy::declaration::Purpose;
use steward_policy::taxonomy::covers;
use steward_policy::{Declaration, Duration, Retention, Trigger};
use time::OffsetDateTime;

use self::storage::Due;
pub use self::storage::{DueCount, Event, Group, Removed, RetentionStore, Table};
use crate::IdentityKind;
use crate::access::{Access, Operation, Principal, Reach};
use crate::ledger::ConsentError;
use crate::ledger::Ledger;
use crate::requests::DataSource;
use crate::storage::StoreError;
use crate::subject::SubjectId;
use crate::time_math;
use crate::vault::VaultError;
use crate::vault::storage::Audited;

/// How many records one batch removes (one transaction, one audit entry).
pub const BATCH: u32 = 5_000;

/// The lease a sweep holds on the schedule while it runs, renewed between batches: another
/// process takes over a sweep whose holder died (a crash, a `kill`) once it lapses.
pub const LEASE: time::Duration = time::Duration::minutes(5);

/// The first time after `after` that the cron expression `schedule` (five fields, UTC, as
/// [`steward_policy::declaration::Records::schedule`] holds it) names; a day later when it
/// cannot be read (the declaration's check refuses such a schedule).
pub fn next_run(schedule: &str, after: OffsetDateTime) -> OffsetDateTime {
    let fallback = after + time::Duration::days(1);
    let Ok(cron) = croner::Cron::new(schedule).parse() else {
        return fallback;
    };
    let Some(start) = chrono::DateTime::from_timestamp(after.unix_timestamp(), 0) else {
        return fallback;
    };
    cron.find_next_occurrence(&start, false)
        .ok()
        .and_then(|next| OffsetDateTime::from_unix_timestamp(next.timestamp()).ok())
        .unwrap_or(fallback)
}

/// Why a sweep could not run.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The caller may not run sweeps (they erase: admin and DPO only).
    #[error("{0}")]
    Denied(#[from] crate::access::Denied),
    /// A sweep was asked to run as of a date still to come: that would erase early.
    #[error(
        "a sweep cannot run as of {0}, which is later than now: that would erase data before its time (use `retention plan --as-of` to look ahead)"
    )]
    Future(String),
    /// Another process holds the sweep lease.
    #[error(
        "another process is sweeping now (a `steward serve` on its schedule, or another `retention run`); try again when it is done — if that process died, its hold lapses within 5 minutes"
    )]
    Busy,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault failed (erasing a person).
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The outbox folder could not be read or cleaned.
    #[error("the outbox {0}")]
    Outbox(String),
    /// One of the operator's databases could not be swept (what earlier batches removed
    /// stays removed, and audited).
    #[error("{0}")]
    Dataset(String),
}

impl From<ConsentError> for RetentionError {
    fn from(e: ConsentError) -> Self {
        match e {
            ConsentError::Vault(v) => Self::Vault(v),
            other => Self::Store(StoreError::Backend(other.to_string())),
        }
    }
}

/// What a rule covers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "over")]
pub enum Over {
    /// Vault data collected for a purpose: its categories, or one category (`retain`).
    Purpose {
        /// The purpose.
        purpose: String,
        /// The `retain` category, when the rule is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        category: Option<String>,
    },
    /// Data kept through an erasure by a legal hold, until the hold's period ends.
    Held,
    /// The personal part of a withdrawn consent's events in the consent ledger.
    ConsentProof,
    /// The audit trail's own entries.
    Audit,
    /// The sealed address of a finished request.
    RequestContacts,
    /// The records of finished requests.
    Requests,
    /// Messages in the outbox folder.
    Mail,
    /// Rows of a table of one of the operator's databases (a dataset manifest's).
    Dataset {
        /// The dataset.
        dataset: String,
        /// The table, as the manifest names it.
        table: String,
    },
}

/// A retention rule derived from the declaration, in plain words.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rule {
    /// A stable name (`purpose:invoicing`, `purpose:invoicing/user.financial`, `held`,
    /// `requests`, `request-contacts`, `mail`).
    pub id: String,
    /// What it covers.
    #[serde(flatten)]
    pub over: Over,
    /// What it covers, in words.
    pub covers: String,
    /// How long, as the notice says it.
    pub keep: String,
    /// What happens when the period is over.
    pub action: String,
    /// Where the declaration states it (`purposes[3].retention`, `retention.requests`), or
    /// `None` for a default.
    pub declared_at: Option<String>,
    /// Whether a sweep acts on it (`false`: kept indefinitely, not stored by Steward, or
    /// ended by a request rather than a sweep).
    pub swept: bool,
}

/// One rule of a purpose before it is described: its `retain` category, the categories it
/// covers, its retention, where it is declared.
type Entry<'a> = (Option<&'a str>, Vec<&'a str>, Option<&'a Retention>, String);

/// The rules the declaration states, in declaration order, then Steward's own records.
pub fn rules(declaration: &Declaration) -> Vec<Rule> {
    let mut out = Vec::new();
    for (i, p) in declaration.purposes.iter().enumerate() {
        let identity_categories = |cats: &[&str]| {
            cats.iter().any(|c| {
                [
                    IdentityKind::Email,
                    IdentityKind::Phone,
                    IdentityKind::Username,
                ]
                .iter()
                .any(|k| covers(c, k.category()) || covers(k.category(), c))
            })
        };
        let own: Vec<&str> = p
            .categories
            .iter()
            .map(String::as_str)
            .filter(|c| !p.retain.keys().any(|r| covers(r, c)))
            .collect();
        let mut entries: Vec<Entry<'_>> = Vec::new();
        if !own.is_empty() || p.retain.is_empty() {
            entries.push((
                None,
                own,
                p.retention.as_ref(),
                format!("purposes[{i}].retention"),
            ));
        }
        for (category, r) in &p.retain {
            entries.push((
                Some(category),
                vec![category.as_str()],
                Some(r),
                format!("purposes[{i}].retain.\"{category}\""),
            ));
        }
        for (category, cats, retention, at) in entries {
            let Some(retention) = retention else { continue };
            let swept = p.stored && !retention.is_indefinite();
            let action = if !p.stored {
                "not stored by Steward: its processors keep it (see the notice)".to_owned()
            } else if retention.is_indefinite() {
                "kept".to_owned()
            } else if identity_categories(&cats) {
                "the fields are removed; a person whose identities all go is erased (their key destroyed, what a legal hold keeps kept)".to_owned()
            } else {
                "the fields are removed (a person left with nothing is erased)".to_owned()
            };
            let hold = p
                .legal_hold
                .as_ref()
                .map(|h| format!("; kept through an erasure request: {}", h.reason))
                .unwrap_or_default();
            out.push(Rule {
                id: match category {
                    Some(c) => format!("purpose:{}/{c}", p.id),
                    None => format!("purpose:{}", p.id),
                },
                over: Over::Purpose {
                    purpose: p.id.clone(),
                    category: category.map(str::to_owned),
                },
                covers: format!("{} collected for `{}`{hold}", cats.join(", "), p.id),
                keep: retention.to_string(),
                action,
                declared_at: Some(at),
                swept,
            });
        }
    }
    let records = &declaration.records;
    let own =
        |id: &str, over, covers: &str, keep: String, action: &str, key: &str, set: bool| Rule {
            id: id.to_owned(),
            over,
            covers: covers.to_owned(),
            keep,
            action: action.to_owned(),
            declared_at: set.then(|| format!("retention.{key}")),
            swept: true,
        };
    out.push(own(
        "held",
        Over::Held,
        "data a legal hold kept through an erasure",
        "until the hold's own period ends (its purpose's retention)".to_owned(),
        "deleted; with nothing left held, the hold key is destroyed",
        "",
        false,
    ));
    if let Some(period) = records.audit {
        out.push(own(
            "audit",
            Over::Audit,
            "the audit trail's entries",
            format!("{period} after they were written"),
            "deleted up to the last checkpoint past the period; what remains still verifies from that checkpoint",
            "audit",
            true,
        ));
    }
    out.push(own(
        "consent-proof",
        Over::ConsentProof,
        "a withdrawn consent's events in the consent ledger (its proof)",
        format!("{} after the withdrawal", records.consent_proof),
        "their personal part (the party, the address's keyed hash, the user agent) is removed; the events stay in the chain, which still verifies",
        "consent_proof",
        true,
    ));
    out.push(own(
        "request-contacts",
        Over::RequestContacts,
        "the sealed address (and new values) of a finished request",
        format!("{} after the request finished", records.request_contact),
        "forgotten: the request's record stays without them",
        "request_contact",
        true,
    ));
    out.push(own(
        "requests",
        Over::Requests,
        "the record of a finished request (no personal data once its address is forgotten)",
        format!("{} after the request finished", records.requests),
        "deleted, with its finished jobs",
        "requests",
        true,
    ));
    out.push(own(
        "mail",
        Over::Mail,
        "messages written to the outbox folder",
        format!("{} after they were written", records.mail),
        "deleted",
        "mail",
        true,
    ));
    out
}

/// What one rule would do (plan) or did (run).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Line {
    /// The rule's id.
    pub rule: String,
    /// How many records are (or were) due.
    pub due: u64,
    /// The earliest collection (or writing, or finishing) time among them.
    #[serde(with = "time::serde::rfc3339::option")]
    pub earliest: Option<OffsetDateTime>,
    /// The latest.
    #[serde(with = "time::serde::rfc3339::option")]
    pub latest: Option<OffsetDateTime>,
    /// How many due records a legal hold keeps back, and why.
    pub kept: u64,
    /// Why they are kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_because: Option<String>,
}

/// A plan or a run's report: per rule, the records due (or removed); and the people erased
/// because nothing of them was left.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sweep {
    /// The date the sweep ran as of.
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
    /// Per rule with anything due.
    pub lines: Vec<Line>,
    /// People erased because nothing of them was left (a run; 0 in a plan, which cannot tell
    /// before the fields go).
    pub subjects_erased: u64,
}

impl Sweep {
    /// Every record counted.
    pub fn total(&self) -> u64 {
        self.lines.iter().map(|l| l.due).sum()
    }
}

/// The latest event time that makes a record due as of `as_of` under `period`: `as_of` less
/// the period, counted back on the calendar (never later than the exact answer, so nothing
/// is due early).
pub fn cutoff(as_of: OffsetDateTime, period: Duration, holidays: &[time::Date]) -> OffsetDateTime {
    time_math::sub(as_of, period, holidays)
}

/// A group's rule as of a date: when its records are due, and what a legal hold keeps back.
#[derive(Debug, Clone)]
struct GroupRule {
    rule: String,
    due: Option<Due>,
    /// Records the group's own rule makes due, before a legal hold is applied.
    unheld: Option<Due>,
    kept_because: Option<String>,
}

/// One of the operator's databases, as a retention sweep reaches it (a dataset manifest's
/// tables, in `steward-connect`). Both methods default to nothing.
pub trait SweptSource: Send + Sync {
    /// The retention rules the source's data follows under `declaration`: one per table,
    /// those a sweep cannot reach among them (`swept: false`, with why), for `steward
    /// retention rules`. The default has none.
    fn retention_rules(&self, _declaration: &steward_policy::Declaration) -> Vec<Rule> {
        Vec::new()
    }

    /// One step of a sweep of what is past its retention period as of `as_of` (GDPR Art.
    /// 5(1)(e)): the next batch, in one transaction, and the rule's id and what it removed;
    /// `None` once every rule is done. With `hash_key` `None` it only counts, changing nothing
    /// (a plan: one step per rule). `cursor` holds where the sweep has got to between steps,
    /// so each batch can be audited before the next.
    fn sweep_step<'a>(
        &'a self,
        _declaration: &'a steward_policy::Declaration,
        _as_of: OffsetDateTime,
        _hash_key: Option<&'a [u8; 32]>,
        _cursor: &'a mut Cursor,
    ) -> Step<'a> {
        Box::pin(async { Ok(None) })
    }
}

/// What one step of a dataset sweep yields: the rule's id and what it removed (or would), or
/// `None` when every rule is done; an error names the table.
pub type Step<'a> =
    Pin<Box<dyn Future<Output = Result<Option<(String, DueCount)>, String>> + Send + 'a>>;

/// Where a dataset sweep has got to: the index of the rule it is on (among those it sweeps),
/// and how many of that rule's due rows earlier batches had to leave (other people's rows
/// lead to them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The rule.
    pub rule: usize,
    /// Due rows left so far, read past by the next batch.
    pub skipped: usize,
}

/// A source of personal data that both requests ([`DataSource`]) and retention sweeps
/// ([`SweptSource`]) reach: a connected dataset.
pub trait Dataset: DataSource + SweptSource {}

impl<T: DataSource + SweptSource + ?Sized> Dataset for T {}

/// The sweep lease a run holds, if any, and when it was last renewed.
struct Lease {
    job: Option<i64>,
    renewed: OffsetDateTime,
}

impl Lease {
    /// No lease (a sweep run directly, as in tests).
    fn none() -> Self {
        Self {
            job: None,
            renewed: OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// Extends the lease when a third of it has gone, so that it lapses only when its holder
    /// stopped (a crash, a `kill`), never while it works.
    async fn renew<S: RetentionStore>(&mut self, sweeper: &Sweeper<S>) -> Result<(), StoreError> {
        let Some(id) = self.job else { return Ok(()) };
        let now = sweeper.now();
        if now - self.renewed >= LEASE / 3 {
            sweeper
                .ledger
                .vault()
                .store()
                .renew_sweep(id, now + LEASE)
                .await?;
            self.renewed = now;
        }
        Ok(())
    }
}

/// Runs the retention rules over the vault, the legal holds, requests, the outbox and the
/// operator's databases.
pub struct Sweeper<S: RetentionStore> {
    ledger: Arc<Ledger<S>>,
    outbox: Option<PathBuf>,
    sources: Vec<Arc<dyn Dataset>>,
}

impl<S: RetentionStore> Sweeper<S> {
    /// Sweeps what `ledger`'s vault holds, and the outbox folder when there is one.
    pub fn new(ledger: Arc<Ledger<S>>, outbox: Option<PathBuf>) -> Self {
        Self {
            ledger,
            outbox,
            sources: Vec::new(),
        }
    }

    /// Sweeps the operator's databases `sources` too (their manifests' tables dated by a
    /// `retention` column), after the vault.
    #[must_use]
    pub fn with_sources(mut self, sources: Vec<Arc<dyn Dataset>>) -> Self {
        self.sources = sources;
        self
    }

    /// Where `[retention] audit` lets the audit trail be trimmed as of `as_of`: the sealed
    /// trim mark at the last checkpoint written before the cutoff, and the entry the trail
    /// starts after now; `None` when no period is declared or nothing is due.
    async fn audit_mark(
        &self,
        as_of: OffsetDateTime,
    ) -> Result<Option<(crate::audit::Seal, u64)>, RetentionError> {
        let Some(period) = self.declaration().records.audit else {
            return Ok(None);
        };
        let store = self.ledger.vault().store();
        let before = cutoff(as_of, period, &self.declaration().rights.holidays);
        let nanos = i64::try_from(before.unix_timestamp_nanos()).unwrap_or(i64::MIN);
        let Some(point) = store.audit_trim_point(nanos).await? else {
            return Ok(None);
        };
        let from = store.audit_trim().await?.map_or(0, |m| m.seq);
        if point.seq <= from {
            return Ok(None);
        }
        // The part to delete must verify first: a changed time or entry in it (someone with
        // the database making recent entries look old) stops the trim, and names the break.
        let chain = self.ledger.vault().audit_chain();
        if let Err(b) = crate::audit::verify_through(store, chain, &point).await? {
            return Err(RetentionError::Store(StoreError::Backend(format!(
                "the audit trail is not intact ({b}), so it is not trimmed: run `steward audit verify`"
            ))));
        }
        Ok(chain.trim_mark(&point).map(|mark| (mark, from)))
    }

    /// The purposes whose withdrawn consents' proof is stripped when it is no longer kept:
    /// opt-in consents (single or double), whose permit an empty history denies just as a
    /// withdrawal does. An opt-out's withdrawal is the refusal itself, and is kept.
    fn proof_purposes(&self) -> Vec<String> {
        use steward_policy::declaration::ConsentMode;
        self.declaration()
            .purposes
            .iter()
            .filter(|p| {
                matches!(
                    p.consent,
                    Some(ConsentMode::OptIn | ConsentMode::DoubleOptIn)
                )
            })
            .map(|p| p.id.clone())
            .collect()
    }

    /// The datasets with a table a sweep reaches (the others are never connected for it).
    fn swept_sources(&self) -> Vec<&Arc<dyn Dataset>> {
        self.sources
            .iter()
            .filter(|s| {
                s.retention_rules(self.declaration())
                    .iter()
                    .any(|r| r.swept)
            })
            .collect()
    }

    /// The rules of the declaration ([`rules`]), then those of each dataset's tables.
    pub fn rules(&self) -> Vec<Rule> {
        let mut out = rules(self.declaration());
        for source in &self.sources {
            out.extend(source.retention_rules(self.declaration()));
        }
        out
    }

    fn declaration(&self) -> &Declaration {
        self.ledger.vault().declaration()
    }

    /// Now, on the vault's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.ledger.vault().clock().now()
    }

    /// The rule of a group of vault records as of `as_of`.
    fn group_rule(&self, group: &Group, as_of: OffsetDateTime) -> Option<GroupRule> {
        let d = self.declaration();
        let holidays = &d.rights.holidays;
        let category = match group.table {
            Table::Fields => group.key.clone(),
            Table::Identities => IdentityKind::parse(&group.key).ok()?.category().to_owned(),
        };
        let purpose: &Purpose = match &group.purpose {
            Some(p) => d.purpose(p)?,
            None => d
                .purposes
                .iter()
                .find(|p| p.stored && p.categories.iter().any(|c| covers(c, &category)))?,
        };
        let retention = purpose.retention_for(&category)?;
        let rule = match purpose
            .retain
            .keys()
            .filter(|r| covers(r, &category))
            .max_by_key(|r| r.len())
        {
            Some(c) => format!("purpose:{}/{c}", purpose.id),
            None => format!("purpose:{}", purpose.id),
        };
        let (event, min) = match retention {
            Retention::Indefinite { .. } => return None,
            Retention::Session => (
                Event::Collected,
                Duration::new(0, steward_policy::Unit::Day),
            ),
            Retention::Until(t) => (
                event(*t, purpose),
                Duration::new(0, steward_policy::Unit::Day),
            ),
            Retention::Period { min, after, .. } => (event(*after, purpose), *min),
        };
        let unheld = Due {
            event,
            before: cutoff(as_of, min, holidays),
            collected_before: None,
        };
        // A legal hold of another purpose that may use this data keeps it for its own period.
        let hold = (group.table == Table::Fields)
            .then(|| {
                d.purposes.iter().find(|h| {
                    h.id != purpose.id
                        && h.legal_hold.is_some()
                        && h.may_use_collected_for(&purpose.id)
                        && h.categories.iter().any(|c| covers(c, &category))
                })
            })
            .flatten();
        let (due, kept_because) = match hold {
            None => (Some(unheld.clone()), None),
            Some(h) => {
                let because = Some(format!(
                    "kept by the legal hold of `{}` ({}) until {}",
                    h.id,
                    h.legal_hold.as_ref().map_or("", |l| l.reason.as_str()),
                    h.retention_for(&category)
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ));
                match h.retention_for(&category) {
                    Some(Retention::Period {
                        min,
                        after: Trigger::Collection,
                        ..
                    }) => (
                        Some(Due {
                            collected_before: Some(cutoff(as_of, *min, holidays)),
                            ..unheld.clone()
                        }),
                        because,
                    ),
                    // A hold whose end Steward cannot date keeps the data.
                    _ => (None, because),
                }
            }
        };
        Some(GroupRule {
            rule,
            due,
            unheld: Some(unheld),
            kept_because,
        })
    }

    /// Runs the scheduled sweep when it is due and no other process holds it: queues the next
    /// one on the declared schedule, takes the lease, sweeps as of now, marks it done and
    /// queues the one after. `None` when nothing was due or another process is sweeping. A
    /// sweep that fails is retried in an hour.
    ///
    /// # Errors
    /// Store failures around the sweep; the sweep's own failure is kept on its job.
    pub async fn scheduled(&self) -> Result<Option<Sweep>, RetentionError> {
        let now = self.now();
        let schedule = self.declaration().records.schedule.clone();
        let store = self.ledger.vault().store();
        store.schedule_sweep(next_run(&schedule, now)).await?;
        let Some(job) = store.claim_sweep(now, now + LEASE, false).await? else {
            return Ok(None);
        };
        let access = Access::new(Principal::steward("retention"));
        let mut lease = Lease {
            job: Some(job.id),
            renewed: now,
        };
        match self.run_leased(&access, now, &mut |_| {}, &mut lease).await {
            Ok(sweep) => {
                store.finish_job(job.id, self.now()).await?;
                store
                    .schedule_sweep(next_run(&schedule, self.now()))
                    .await?;
                Ok(Some(sweep))
            }
            Err(e) => {
                let why = match &e {
                    RetentionError::Outbox(_) => "the outbox folder could not be cleaned",
                    RetentionError::Vault(_) => "a person could not be erased",
                    RetentionError::Dataset(_) => {
                        "one of the operator's databases could not be swept"
                    }
                    _ => "the store failed",
                };
                store
                    .retry_job(job.id, self.now() + time::Duration::hours(1), why)
                    .await?;
                Err(e)
            }
        }
    }

    /// [`Sweeper::run`] by hand (`steward retention run`): holds the same lease as the
    /// scheduled sweep, so it never runs beside one in another process, and leaves the
    /// schedule as it was.
    ///
    /// # Errors
    /// [`RetentionError::Busy`] when another process is sweeping; as [`Sweeper::run`].
    pub async fn run_now(
        &self,
        access: &Access,
        as_of: OffsetDateTime,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<Sweep, RetentionError> {
        access.authorize(Operation::Erase, Reach::Everything)?;
        let now = self.now();
        let store = self.ledger.vault().store();
        store
            .schedule_sweep(next_run(&self.declaration().records.schedule, now))
            .await?;
        let Some(job) = store.claim_sweep(now, now + LEASE, true).await? else {
            return Err(RetentionError::Busy);
        };
        let mut lease = Lease {
            job: Some(job.id),
            renewed: now,
        };
        let result = self.run_leased(access, as_of, progress, &mut lease).await;
        store.release_sweep(job.id).await?;
        result
    }

    /// What a sweep as of `as_of` would remove, rule by rule, without changing anything.
    /// Any date may be asked (the future too: what will come due).
    ///
    /// # Errors
    /// [`RetentionError::Denied`] unless `access` may erase everything; store failures.
    pub async fn plan(
        &self,
        access: &Access,
        as_of: OffsetDateTime,
    ) -> Result<Sweep, RetentionError> {
        access.authorize(Operation::Erase, Reach::Everything)?;
        let store = self.ledger.vault().store();
        let mut lines: BTreeMap<String, Line> = BTreeMap::new();
        for group in store.retention_groups().await? {
            let Some(rule) = self.group_rule(&group, as_of) else {
                continue;
            };
            let line = line_of(&mut lines, rule.rule.clone());
            let due = match &rule.due {
                Some(due) => store.count_due(&group, due).await?,
                None => DueCount::default(),
            };
            let unheld = match &rule.unheld {
                Some(u) if rule.kept_because.is_some() => store.count_due(&group, u).await?,
                _ => due,
            };
            add(line, due);
            if unheld.count > due.count {
                line.kept += unheld.count - due.count;
                line.kept_because.clone_from(&rule.kept_because);
            }
        }
        let records = &self.declaration().records;
        let holidays = self.declaration().rights.holidays.clone();
        let held = store.count_held_due(as_of).await?;
        let proofs = store
            .count_consent_proofs(
                cutoff(as_of, records.consent_proof, &holidays),
                &self.proof_purposes(),
            )
            .await?;
        let contacts = store
            .count_finished_requests(cutoff(as_of, records.request_contact, &holidays), true)
            .await?;
        let requests = store
            .count_finished_requests(cutoff(as_of, records.requests, &holidays), false)
            .await?;
        let mail = self.outbox_due(cutoff(as_of, records.mail, &holidays), false)?;
        let audit = match self.audit_mark(as_of).await? {
            Some((mark, from)) => DueCount {
                count: mark.seq - from,
                ..DueCount::default()
            },
            None => DueCount::default(),
        };
        for (rule, count) in [
            ("held", held),
            ("consent-proof", proofs),
            ("audit", audit),
            ("request-contacts", contacts),
            ("requests", requests),
            ("mail", mail),
        ] {
            let line = line_of(&mut lines, rule.to_owned());
            add(line, count);
        }
        for source in self.swept_sources() {
            let mut cursor = Cursor::default();
            while let Some((rule, count)) = source
                .sweep_step(self.declaration(), as_of, None, &mut cursor)
                .await
                .map_err(RetentionError::Dataset)?
            {
                add(line_of(&mut lines, rule), count);
            }
        }
        let mut entry = access.entry("retention.plan", self.now());
        entry.detail = Some(format!("as of {}", rfc3339(as_of)));
        self.ledger.vault().record(entry).await?;
        Ok(Sweep {
            as_of,
            lines: lines
                .into_values()
                .filter(|l| l.due > 0 || l.kept > 0)
                .collect(),
            subjects_erased: 0,
        })
    }

    /// Removes what is due as of `as_of` (never later than now), in batches of [`BATCH`], each
    /// with its audit entry; `progress` hears the records removed so far. People whose every
    /// identity went, or who were left with nothing, are erased through the consent ledger
    /// (permits follow; what a legal hold keeps is kept). Idempotent and resumable: a second
    /// run as of the same date removes nothing.
    ///
    /// # Errors
    /// [`RetentionError::Denied`] unless `access` may erase everything;
    /// [`RetentionError::Future`] for a date later than now; store, vault and outbox failures
    /// (what was removed before stays removed, and recorded).
    pub async fn run(
        &self,
        access: &Access,
        as_of: OffsetDateTime,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<Sweep, RetentionError> {
        self.run_leased(access, as_of, progress, &mut Lease::none())
            .await
    }

    /// [`Sweeper::run`], renewing `lease` between batches.
    async fn run_leased(
        &self,
        access: &Access,
        as_of: OffsetDateTime,
        progress: &mut (dyn FnMut(u64) + Send),
        lease: &mut Lease,
    ) -> Result<Sweep, RetentionError> {
        access.authorize(Operation::Erase, Reach::Everything)?;
        let now = self.now();
        if as_of > now {
            return Err(RetentionError::Future(rfc3339(as_of)));
        }
        let vault = self.ledger.vault();
        let store = vault.store();
        let mut lines: BTreeMap<String, Line> = BTreeMap::new();
        let mut erased = 0u64;
        let mut done = 0u64;
        // Identities first; a person left with no identity and no field is erased whole,
        // holds applied (one who keeps fields of a purpose not yet due keeps them).
        let mut groups = store.retention_groups().await?;
        groups.sort_by_key(|g| g.table != Table::Identities);
        for group in groups {
            let Some(rule) = self.group_rule(&group, as_of) else {
                continue;
            };
            let Some(due) = &rule.due else { continue };
            loop {
                let mut entry = access.entry("retention.sweep", self.now());
                entry.purpose = group.purpose.clone();
                entry.categories = vec![match group.table {
                    Table::Fields => group.key.clone(),
                    Table::Identities => IdentityKind::parse(&group.key)
                        .map(|k| k.category().to_owned())
                        .unwrap_or_default(),
                }];
                entry.detail = Some(format!(
                    "rule {} as of {}: {{count}} {} removed",
                    rule.rule,
                    rfc3339(as_of),
                    match group.table {
                        Table::Fields => "fields",
                        Table::Identities => "identities",
                    }
                ));
                let audit = Audited {
                    entries: vec![entry],
                    chain: vault.audit_chain(),
                };
                let removed = store.remove_due(&group, due, BATCH, audit).await?;
                if removed.count == 0 {
                    break;
                }
                let line = line_of(&mut lines, rule.rule.clone());
                line.due += removed.count;
                done += removed.count;
                progress(done);
                erased += self.erase(&removed.subjects).await?;
                lease.renew(self).await?;
                if removed.count < u64::from(BATCH) {
                    break;
                }
            }
        }
        // Data kept under a legal hold whose period is over.
        loop {
            let ended = vault.end_holds_before(as_of, 500).await?;
            if ended.fields == 0 && ended.subjects.is_empty() {
                break;
            }
            let line = line_of(&mut lines, "held".to_owned());
            line.due += ended.fields;
            done += ended.fields;
            progress(done);
        }
        let records = self.declaration().records.clone();
        let holidays = self.declaration().rights.holidays.clone();
        for (rule, before, what) in [
            (
                "consent-proof",
                cutoff(as_of, records.consent_proof, &holidays),
                "consent events' personal parts",
            ),
            (
                "request-contacts",
                cutoff(as_of, records.request_contact, &holidays),
                "requests",
            ),
            (
                "requests",
                cutoff(as_of, records.requests, &holidays),
                "requests",
            ),
        ] {
            loop {
                let mut entry = access.entry("retention.sweep", self.now());
                entry.detail = Some(format!(
                    "rule {rule} as of {}: {{count}} {what}",
                    rfc3339(as_of)
                ));
                let audit = Audited {
                    entries: vec![entry],
                    chain: vault.audit_chain(),
                };
                let n = match rule {
                    "consent-proof" => {
                        let due = store
                            .consent_proofs_due(before, &self.proof_purposes(), BATCH)
                            .await?;
                        let chain = self.ledger.chain();
                        let seals: Vec<(u64, [u8; 32])> = due
                            .iter()
                            .map(|(seq, personal)| (*seq, chain.redaction(*seq, personal)))
                            .collect();
                        store.redact_consent(&seals, audit).await?
                    }
                    "request-contacts" => {
                        store.forget_request_contacts(before, BATCH, audit).await?
                    }
                    _ => store.delete_finished_requests(before, BATCH, audit).await?,
                };
                if n == 0 {
                    break;
                }
                line_of(&mut lines, rule.to_owned()).due += n;
                done += n;
                progress(done);
                lease.renew(self).await?;
                if n < u64::from(BATCH) {
                    break;
                }
            }
        }
        let mail = self.outbox_due(cutoff(as_of, records.mail, &holidays), true)?;
        if mail.count > 0 {
            let mut entry = access.entry("retention.sweep", self.now());
            entry.detail = Some(format!(
                "rule mail as of {}: {} messages deleted from the outbox",
                rfc3339(as_of),
                mail.count
            ));
            vault.record(entry).await?;
            let line = line_of(&mut lines, "mail".to_owned());
            add(line, mail);
            done += mail.count;
            progress(done);
        }
        if let Some((mark, _)) = self.audit_mark(as_of).await? {
            let mut entry = access.entry("retention.sweep", self.now());
            entry.detail = Some(format!(
                "rule audit as of {}: the entries through {} deleted (the trail verifies from its checkpoint there)",
                rfc3339(as_of),
                mark.seq
            ));
            let n = store
                .trim_audit(mark, vec![entry], vault.audit_chain())
                .await?;
            if n > 0 {
                line_of(&mut lines, "audit").due += n;
                done += n;
                progress(done);
            }
        }
        let sources = self.swept_sources();
        if !sources.is_empty() {
            let key = vault.dataset_hash_key()?;
            for source in sources {
                let mut cursor = Cursor::default();
                // Each batch is audited once its transaction in the operator's database has
                // committed (two databases share no transaction: a crash between the two
                // loses the entry of one batch at most).
                while let Some((rule, count)) = source
                    .sweep_step(self.declaration(), as_of, Some(&key), &mut cursor)
                    .await
                    .map_err(RetentionError::Dataset)?
                {
                    let mut entry = access.entry("retention.sweep", self.now());
                    entry.detail = Some(format!(
                        "rule {rule} as of {}: {} rows removed from dataset `{}`",
                        rfc3339(as_of),
                        count.count,
                        source.name()
                    ));
                    vault.record(entry).await?;
                    add(line_of(&mut lines, rule), count);
                    done += count.count;
                    progress(done);
                    lease.renew(self).await?;
                }
            }
        }
        let sweep = Sweep {
            as_of,
            lines: lines.into_values().collect(),
            subjects_erased: erased,
        };
        let mut entry = access.entry("retention.run", self.now());
        entry.detail = Some(format!(
            "as of {}: {} records removed, {} people erased{}",
            rfc3339(as_of),
            sweep.total(),
            erased,
            sweep
                .lines
                .iter()
                .map(|l| format!("; {} {}", l.rule, l.due))
                .collect::<String>()
        ));
        vault.record(entry).await?;
        crate::retention::metrics::record(&sweep);
        Ok(sweep)
    }

    /// Erases people the sweep left with nothing (or without any identity), through the
    /// ledger; returns how many.
    async fn erase(&self, subjects: &[SubjectId]) -> Result<u64, RetentionError> {
        if subjects.is_empty() {
            return Ok(0);
        }
        let access = Access::new(Principal::steward("retention"));
        let results = self.ledger.erase(&access, subjects).await?;
        let mut n = 0;
        for r in results {
            match r {
                Ok(_) => n += 1,
                // Erased meanwhile (a closure that came due): nothing left to do.
                Err(VaultError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// The outbox messages written at or before `before` (from the time-ordered id in each
    /// name); with `delete`, deletes them.
    fn outbox_due(&self, before: OffsetDateTime, delete: bool) -> Result<DueCount, RetentionError> {
        let Some(dir) = &self.outbox else {
            return Ok(DueCount::default());
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DueCount::default()),
            Err(e) => return Err(RetentionError::Outbox(format!("{}: {e}", dir.display()))),
        };
        let mut count = DueCount::default();
        for entry in entries {
            let entry =
                entry.map_err(|e| RetentionError::Outbox(format!("{}: {e}", dir.display())))?;
            let name = entry.file_name();
            let Some(written) = name.to_str().and_then(written_at) else {
                continue;
            };
            if written > before {
                continue;
            }
            if delete {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(RetentionError::Outbox(format!("{}: {e}", dir.display())));
                    }
                }
            }
            count = count.merge(DueCount {
                count: 1,
                earliest: Some(written),
                latest: Some(written),
            });
        }
        Ok(count)
    }
}

/// When an outbox message was written, from the UUIDv7 its name starts with.
fn written_at(name: &str) -> Option<OffsetDateTime> {
    let id = name.strip_suffix(".eml")?.split('-').next()?;
    let uuid = uuid::Uuid::parse_str(id).ok()?;
    let (secs, nanos) = uuid.get_timestamp()?.to_unix();
    let at = OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    Some(at + time::Duration::nanoseconds(i64::from(nanos)))
}

fn event(trigger: Trigger, purpose: &Purpose) -> Event {
    match trigger {
        Trigger::Collection => Event::Collected,
        Trigger::AccountClosure => Event::Closed,
        Trigger::LastActivity => Event::Inactive,
        Trigger::ConsentWithdrawal => Event::Withdrawn(purpose.id.clone()),
        Trigger::ContractEnd => Event::ContractEnded,
    }
}

/// The line of `rule` in a sweep being built, added when it is first counted.
fn line_of(lines: &mut BTreeMap<String, Line>, rule: impl Into<String>) -> &mut Line {
    let rule = rule.into();
    lines.entry(rule.clone()).or_insert_with(|| Line {
        rule,
        ..Line::default()
    })
}

fn add(line: &mut Line, count: DueCount) {
    let merged = DueCount {
        count: line.due,
        earliest: line.earliest,
        latest: line.latest,
    }
    .merge(count);
    line.due = merged.count;
    line.earliest = merged.earliest;
    line.latest = merged.latest;
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The last sweep's counts, for `/metrics`.
pub mod metrics {
    use std::sync::Mutex;

    use super::Sweep;

    /// What the last sweep of this process did.
    #[derive(Debug, Clone, Default)]
    pub struct Last {
        /// The date it ran as of (Unix seconds).
        pub as_of: i64,
        /// Records removed per rule.
        pub removed: Vec<(String, u64)>,
        /// People erased.
        pub erased: u64,
    }

    static LAST: Mutex<Option<Last>> = Mutex::new(None);

    /// Remembers a finished sweep.
    pub fn record(sweep: &Sweep) {
        if let Ok(mut last) = LAST.lock() {
            *last = Some(Last {
                as_of: sweep.as_of.unix_timestamp(),
                removed: sweep
                    .lines
                    .iter()
                    .map(|l| (l.rule.clone(), l.due))
                    .collect(),
                erased: sweep.subjects_erased,
            });
        }
    }

    /// The last sweep this process ran.
    pub fn last() -> Option<Last> {
        LAST.lock().ok().and_then(|l| l.clone())
    }
}

impl<S: RetentionStore> crate::Vault<S> {
    /// Records that the person was active now (a sign-in, a purchase: what the application
    /// counts), which restarts every "… after last activity" period; with `contract`, also
    /// that their contract ended now (`Some(true)`) or runs again (`Some(false)`), which
    /// starts or stops every "… after the end of the contract" period. Writing their data
    /// counts as activity by itself. Needs `rectify` over everything held on the person (the
    /// application's unnarrowed service key has it; a key narrowed to purposes or categories
    /// does not, as the periods of every purpose move).
    ///
    /// # Errors
    /// [`VaultError::NotFound`] when there is no such subject (as for every other act on
    /// one); a refusal when the key may not correct data.
    pub async fn record_activity(
        &self,
        access: &Access,
        id: SubjectId,
        contract: Option<bool>,
    ) -> Result<(), VaultError> {
        let now = self.clock().now();
        let mut entry = access.entry("subject.activity", now);
        entry.subject = Some(id);
        entry.detail = contract.map(|ended| {
            if ended {
                "contract ended"
            } else {
                "contract runs again"
            }
            .to_owned()
        });
        let result = async {
            // It moves the end of every purpose's period for the person: a key narrowed to
            // some purposes or categories may not.
            access.authorize(Operation::Rectify, Reach::Everything)?;
            if self.store().record_activity(id, now, contract).await? {
                Ok(())
            } else {
                Err(VaultError::NotFound)
            }
        }
        .await;
        self.finish(entry, result, |_, _| {}).await
    }
}
