//! The disclosure log: personal data shared with partners, processors and authorities — to
//! whom, which categories, on which lawful basis, under which reference (a court order's
//! number), and whether and when the people concerned may be told (GDPR Art. 30(1)(d) and
//! 15(1)(c); a gag, e.g. under a court order, holds a disclosure back from the person's access
//! package until its date). A share the declaration makes conditional on consent is refused,
//! and the refusal audited, unless every party concerned consented (seed 000: "both parties
//! must have opted in").
//!
//! Also the aggregates that may be shared (seeds 000 and 003): counts of people by declared
//! dimensions, every group smaller than the declared k suppressed, never a subject id or a
//! value; each aggregate shared is logged as a disclosure.
//!
//! Uses the consent ledger (permits), the vault and the audit trail beneath it.

pub mod storage;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use steward_policy::declaration::LawfulBasis;
use steward_policy::taxonomy::{Kind, Lookup, covers};
use time::OffsetDateTime;
use uuid::Uuid;

pub use self::storage::{CountRow, Dimension, DisclosureRow, DisclosureStore};
use crate::access::{Access, Denied, Operation, Reach};
use crate::audit::Outcome as AuditOutcome;
use crate::consent::Party;
use crate::ledger::Ledger;
use crate::storage::StoreError;
use crate::subject::SubjectId;
use crate::vault::VaultError;
use crate::vault::storage::Audited;

/// The recipient id of aggregates published for anyone.
pub const PUBLIC: &str = "public";

/// Whether the people a disclosure concerns may be told, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "tell", content = "until")]
pub enum Tell {
    /// They may be told: their access package lists it.
    Yes,
    /// Not before this instant (a gag, e.g. under a court order); listed from then on.
    #[serde(with = "time::serde::rfc3339")]
    After(OffsetDateTime),
    /// Never, unless the gag is lifted (the law forbids telling them).
    Never,
}

/// A disclosure to record.
#[derive(Debug, Clone, Default)]
pub struct NewDisclosure {
    /// The recipient: a declared processor, third party or authority (`[[processors]] id`).
    pub recipient: String,
    /// The people whose data were shared (pseudonymous ids).
    pub subjects: Vec<SubjectId>,
    /// Other people in the vault who must also have consented (the partner an introduction
    /// is made to, seed 000); their own data are not shared by this disclosure.
    pub counterparts: Vec<SubjectId>,
    /// The categories shared (taxonomy keys).
    pub categories: Vec<String>,
    /// The declared purpose it serves, if any; its lawful basis applies.
    pub purpose: Option<String>,
    /// The lawful basis, when no purpose is named (a legal obligation for a court order).
    pub basis: Option<LawfulBasis>,
    /// The reference (a court order's number, a contract), at most 200 characters.
    pub reference: Option<String>,
    /// Whether the people may be told [`Tell::Yes`].
    pub tell: Option<Tell>,
}

/// A recorded disclosure, without personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disclosure {
    /// Its id.
    pub id: Uuid,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who recorded it (as the audit names them).
    pub by: String,
    /// The recipient's id.
    pub recipient: String,
    /// The recipient's name, as the notice gives it.
    pub recipient_name: String,
    /// The categories shared.
    pub categories: Vec<String>,
    /// The purpose, if any.
    pub purpose: Option<String>,
    /// The lawful basis.
    pub basis: String,
    /// The reference.
    pub reference: Option<String>,
    /// Whether the people may be told, and when.
    #[serde(flatten)]
    pub tell: Tell,
    /// How many people it concerns (0 for an aggregate).
    pub subjects: u64,
    /// For an aggregate: its dimensions and k (no subject is linked).
    pub aggregate: Option<String>,
    /// The other parties whose consent was checked too (an introduction's partner).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counterparts: Vec<SubjectId>,
}

impl Disclosure {
    /// Whether the people concerned may see it at `now`.
    pub fn visible_at(&self, now: OffsetDateTime) -> bool {
        match self.tell {
            Tell::Yes => true,
            Tell::After(t) => now >= t,
            Tell::Never => false,
        }
    }

    fn row(&self) -> DisclosureRow {
        DisclosureRow {
            id: self.id,
            at: self.at,
            recipient: self.recipient.clone(),
            tell: self.tell != Tell::Never,
            gag_until: match self.tell {
                Tell::After(t) => Some(t),
                _ => None,
            },
            body: serde_json::to_string(self).unwrap_or_default(),
        }
    }

    fn from_row(row: &DisclosureRow) -> Result<Self, StoreError> {
        serde_json::from_str(&row.body)
            .map_err(|e| StoreError::Backend(format!("disclosure {} is unreadable: {e}", row.id)))
    }
}

/// Why a disclosure or an aggregate was refused.
#[derive(Debug, thiserror::Error)]
pub enum DisclosureError {
    /// The caller may not.
    #[error("{0}")]
    Denied(#[from] Denied),
    /// The input is wrong: what, where, and how to fix it.
    #[error("{0}")]
    Invalid(String),
    /// A required consent is missing: the share is refused (and the refusal audited).
    #[error(
        "refused: the purpose `{purpose}` shares only with consent, and {missing} of the {total} people concerned have not given it (all must have: both parties to an introduction); nothing was shared or recorded"
    )]
    ConsentMissing {
        /// The purpose.
        purpose: String,
        /// How many have not consented.
        missing: usize,
        /// How many were checked.
        total: usize,
    },
    /// A subject is not in the vault.
    #[error("subject {0} is not in the vault (erased, or never stored); nothing was recorded")]
    UnknownSubject(SubjectId),
    /// No such disclosure.
    #[error("no such disclosure")]
    NotFound,
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The vault failed.
    #[error("{0}")]
    Vault(#[from] VaultError),
}

impl DisclosureError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Denied(d) => d.code,
            Self::Invalid(_) => "invalid-disclosure",
            Self::ConsentMissing { .. } => "consent-missing",
            Self::UnknownSubject(_) => "unknown-subject",
            Self::NotFound => "not-found",
            Self::Store(_) | Self::Vault(_) => "store-failed",
        }
    }
}

/// An aggregate asked for.
#[derive(Debug, Clone, Default)]
pub struct AggregateQuery {
    /// The dimensions, in order (at least one).
    pub by: Vec<Dimension>,
    /// Only fields of these categories (vault dimensions; all when empty).
    pub categories: Vec<String>,
    /// Who it is shared with: a declared recipient or [`PUBLIC`]; `None` for an internal
    /// look that is audited but not a disclosure.
    pub recipient: Option<String>,
    /// The reference of the share.
    pub reference: Option<String>,
}

/// An aggregate: groups of at least `k` people, the rest suppressed.
#[derive(Debug, Clone, Serialize)]
pub struct Aggregate {
    /// The dimensions.
    pub by: Vec<Dimension>,
    /// The smallest group shown.
    pub k: u64,
    /// The groups shown: their values by dimension, and how many people.
    pub groups: Vec<AggregateGroup>,
    /// How many groups were suppressed (their sizes are not given, nor a total that would
    /// reveal them).
    pub suppressed: u64,
    /// The disclosure it was logged as, when shared.
    pub disclosure: Option<Uuid>,
}

/// One group of an aggregate.
#[derive(Debug, Clone, Serialize)]
pub struct AggregateGroup {
    /// Its values by dimension name.
    pub values: BTreeMap<String, String>,
    /// How many distinct people.
    pub count: u64,
}

/// The disclosure log over the ledger.
pub struct Disclosures<S: DisclosureStore> {
    ledger: Arc<Ledger<S>>,
}

impl<S: DisclosureStore> std::fmt::Debug for Disclosures<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disclosures").finish_non_exhaustive()
    }
}

fn tell_words(t: Tell) -> String {
    match t {
        Tell::Yes => "may be told".to_owned(),
        Tell::After(at) => format!("gagged until {}", at.date()),
        Tell::Never => "not to be told".to_owned(),
    }
}

/// The disclosures a person may see at `now` (their access package): those of their subject
/// id that no gag holds back, oldest first.
pub async fn told<S: DisclosureStore>(
    store: &S,
    subject: SubjectId,
    now: OffsetDateTime,
) -> Result<Vec<Disclosure>, StoreError> {
    let mut out = Vec::new();
    for row in store.disclosures(Some(subject), None, 10_000).await? {
        let d = Disclosure::from_row(&row)?;
        if d.visible_at(now) {
            out.push(d);
        }
    }
    out.reverse();
    Ok(out)
}

impl<S: DisclosureStore> Disclosures<S> {
    /// The log over `ledger`.
    pub fn new(ledger: Arc<Ledger<S>>) -> Self {
        Self { ledger }
    }

    /// The time by the vault's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.ledger.vault().clock().now()
    }

    /// Checks that `access` may keep the register (`incident`); a refusal is audited as
    /// `action`, denied.
    async fn authorize(&self, access: &Access, action: &str) -> Result<(), DisclosureError> {
        if let Err(d) = access.authorize(Operation::Incident, Reach::Everything) {
            let mut entry = access.entry(action, self.now());
            entry.outcome = AuditOutcome::Denied;
            entry.code = Some(d.code.to_owned());
            self.ledger.vault().record(entry).await?;
            return Err(d.into());
        }
        Ok(())
    }

    /// Records a disclosure, after checking it against the declaration: a declared recipient,
    /// known categories, a purpose that names the recipient and covers the categories (or a
    /// lawful basis other than consent), existing subjects, a gag date still to come, and —
    /// when the purpose rests on consent — every subject's and counterpart's consent. Needs the
    /// `disclose` operation over the purpose and categories. Audited as `disclosure.record`
    /// (or `disclosure.refuse`), with no subject named, so that a gagged disclosure shows in
    /// nobody's trail.
    ///
    /// # Errors
    ///
    /// [`DisclosureError::Invalid`] naming the field and the fix;
    /// [`DisclosureError::ConsentMissing`]; [`DisclosureError::UnknownSubject`].
    pub async fn record(
        &self,
        access: &Access,
        new: NewDisclosure,
    ) -> Result<Disclosure, DisclosureError> {
        let now = self.now();
        let declaration = self.ledger.vault().declaration();
        let purpose = match &new.purpose {
            Some(id) => Some(
                declaration
                    .purposes
                    .iter()
                    .find(|p| &p.id == id)
                    .ok_or_else(|| {
                        DisclosureError::Invalid(format!(
                            "purpose: `{id}` is not declared; use one of {}",
                            declaration
                                .purposes
                                .iter()
                                .map(|p| p.id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?,
            ),
            None => None,
        };
        let categories: Vec<&str> = new.categories.iter().map(String::as_str).collect();
        let purposes: Vec<_> = purpose.into_iter().collect();
        let mut entry = access.entry("disclosure.record", now);
        entry.purpose = new.purpose.clone();
        entry.categories = new.categories.clone();
        // Without a purpose, nothing narrows the share: a key narrowed to some purposes or
        // categories must name one of them.
        let reach = if purposes.is_empty() {
            Reach::Everything
        } else {
            Reach::Data {
                purposes: &purposes,
                categories: &categories,
            }
        };
        if let Err(d) = access.authorize(Operation::Disclose, reach) {
            entry.outcome = AuditOutcome::Denied;
            entry.code = Some(d.code.to_owned());
            self.ledger.vault().record(entry).await?;
            return Err(d.into());
        }
        let checked = self.check(&new, now, false).await;
        let disclosure = match checked {
            Ok(d) => d,
            Err(e) => {
                if matches!(e, DisclosureError::ConsentMissing { .. }) {
                    entry.action = "disclosure.refuse".to_owned();
                    entry.outcome = AuditOutcome::Denied;
                    entry.code = Some(e.code().to_owned());
                    entry.detail = Some(format!(
                        "to {}: a required consent is missing",
                        new.recipient
                    ));
                    self.ledger.vault().record(entry).await?;
                }
                return Err(e);
            }
        };
        let disclosure = Disclosure {
            by: access.principal.actor.clone(),
            ..disclosure
        };
        entry.detail = Some(format!(
            "disclosure {} to {}: {} people{}",
            disclosure.id,
            disclosure.recipient,
            disclosure.subjects,
            match disclosure.tell {
                Tell::Yes => String::new(),
                Tell::After(t) => format!(", gagged until {}", t.date()),
                Tell::Never => ", not to be told".to_owned(),
            }
        ));
        let vault = self.ledger.vault();
        vault
            .store()
            .insert_disclosure(
                &disclosure.row(),
                &new.subjects,
                Audited {
                    entries: vec![entry],
                    chain: vault.audit_chain(),
                },
            )
            .await?;
        Ok(disclosure)
    }

    /// Validates `new` into the disclosure it records (its `by` still empty).
    async fn check(
        &self,
        new: &NewDisclosure,
        now: OffsetDateTime,
        aggregate: bool,
    ) -> Result<Disclosure, DisclosureError> {
        let declaration = self.ledger.vault().declaration();
        let invalid = |m: String| Err(DisclosureError::Invalid(m));
        let recipient_name = if new.recipient == PUBLIC {
            "Anyone (published)".to_owned()
        } else {
            match declaration
                .processors
                .iter()
                .find(|p| p.id == new.recipient)
            {
                Some(p) => p.name.clone(),
                None => {
                    return invalid(format!(
                        "recipient: `{}` is not declared; use one of {} — or add it as [[processors]] (role = \"authority\" for a court or the police)",
                        new.recipient,
                        declaration
                            .processors
                            .iter()
                            .map(|p| p.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        };
        if new.categories.is_empty() {
            return invalid(
                "categories: name what was shared, e.g. `user.contact.email`".to_owned(),
            );
        }
        for c in &new.categories {
            match declaration.taxonomy.lookup(Kind::Category, c) {
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
        let purpose = new
            .purpose
            .as_ref()
            .and_then(|id| declaration.purposes.iter().find(|p| &p.id == id));
        let basis = match (purpose, new.basis) {
            (Some(p), Some(b)) if b != p.basis => {
                return invalid(format!(
                    "basis: the purpose `{}` rests on {}, not {b}; leave --basis out",
                    p.id, p.basis
                ));
            }
            (Some(p), _) => {
                if !p.recipients.is_empty() && !p.recipients.contains(&new.recipient) {
                    return invalid(format!(
                        "recipient: the purpose `{}` shares only with {}; `{}` is not among them (declare it in the purpose's recipients, or record the disclosure under another basis)",
                        p.id,
                        p.recipients.join(", "),
                        new.recipient
                    ));
                }
                if let Some(c) = new
                    .categories
                    .iter()
                    .find(|c| !p.categories.iter().any(|pc| covers(pc, c)))
                {
                    return invalid(format!(
                        "categories: the purpose `{}` does not collect `{c}`; it covers {}",
                        p.id,
                        p.categories.join(", ")
                    ));
                }
                p.basis
            }
            (None, Some(LawfulBasis::Consent)) => {
                return invalid(
                    "basis: consent is given for a purpose; name it with --purpose".to_owned(),
                );
            }
            (None, Some(b)) => b,
            (None, None) => {
                return invalid(
                    "basis: name the purpose it serves (--purpose) or its lawful basis (--basis legal-obligation for a court order)".to_owned(),
                );
            }
        };
        if let Some(r) = &new.reference
            && (r.chars().count() > 200 || r.chars().any(char::is_control))
        {
            return invalid(
                "reference: at most 200 characters on one line (a court order's number, a contract)"
                    .to_owned(),
            );
        }
        let tell = new.tell.unwrap_or(Tell::Yes);
        if let Tell::After(t) = tell
            && t.year() > 2200
        {
            return invalid(format!(
                "gag: {} is too far ahead; a gag without an end is --do-not-tell (`tell: never`)",
                t.date()
            ));
        }
        if let Tell::After(t) = tell
            && t <= now
        {
            return invalid(format!(
                "gag: {} is not after now: a gag ends in the future (leave it out if the people may be told)",
                t.date()
            ));
        }
        if new.subjects.is_empty() && !aggregate {
            return invalid(
                "subjects: name the people whose data were shared (--subject ID, or --subjects-file); figures that name nobody are `steward aggregate --share-with`".to_owned(),
            );
        }
        if new.subjects.len() > 100_000 {
            return invalid(
                "subjects: at most 100,000 in one disclosure; record larger shares in parts"
                    .to_owned(),
            );
        }
        let store = self.ledger.vault().store();
        for s in new.subjects.iter().chain(&new.counterparts) {
            if store.load_subject(*s).await?.is_none() {
                return Err(DisclosureError::UnknownSubject(*s));
            }
        }
        if let Some(p) = purpose
            && p.basis == LawfulBasis::Consent
        {
            let parties: Vec<&SubjectId> = new.subjects.iter().chain(&new.counterparts).collect();
            let mut missing = 0;
            for s in &parties {
                let decision = self
                    .ledger
                    .permit(&Party::Subject(**s), &p.id)
                    .map_err(|e| DisclosureError::Invalid(e.to_string()))?;
                if !decision.allowed {
                    missing += 1;
                }
            }
            if missing > 0 {
                return Err(DisclosureError::ConsentMissing {
                    purpose: p.id.clone(),
                    missing,
                    total: parties.len(),
                });
            }
        }
        let mut subjects = new.subjects.clone();
        subjects.sort();
        subjects.dedup();
        Ok(Disclosure {
            id: Uuid::now_v7(),
            at: now,
            by: String::new(),
            recipient: new.recipient.clone(),
            recipient_name,
            categories: new.categories.clone(),
            purpose: new.purpose.clone(),
            basis: basis.as_str().to_owned(),
            reference: new.reference.clone(),
            tell,
            subjects: subjects.len() as u64,
            aggregate: None,
            counterparts: new.counterparts.clone(),
        })
    }

    /// Changes a disclosure's gag: `tell` is [`Tell::Yes`] to lift it now (the people see it
    /// in their access packages from now on), [`Tell::After`] for a new end, [`Tell::Never`]
    /// to hold it back until lifted. Needs the `incident` operation; audited as
    /// `disclosure.gag` without naming anyone.
    ///
    /// # Errors
    ///
    /// [`DisclosureError::NotFound`]; [`DisclosureError::Invalid`] for an end already past.
    pub async fn regag(
        &self,
        access: &Access,
        id: Uuid,
        tell: Tell,
    ) -> Result<Disclosure, DisclosureError> {
        self.authorize(access, "disclosure.gag").await?;
        let now = self.now();
        if let Tell::After(t) = tell
            && (t <= now || t.year() > 2200)
        {
            return Err(DisclosureError::Invalid(format!(
                "gag: {} is not a future date; `--lift` ends the gag now",
                t.date()
            )));
        }
        let store = self.ledger.vault().store();
        let row = store
            .disclosure(id)
            .await?
            .ok_or(DisclosureError::NotFound)?;
        let mut d = Disclosure::from_row(&row)?;
        let before = d.tell;
        d.tell = tell;
        let mut entry = access.entry("disclosure.gag", now);
        entry.detail = Some(format!(
            "disclosure {id}: {} → {}",
            tell_words(before),
            tell_words(tell)
        ));
        let vault = self.ledger.vault();
        if !store
            .update_disclosure(
                &d.row(),
                Audited {
                    entries: vec![entry],
                    chain: vault.audit_chain(),
                },
            )
            .await?
        {
            return Err(DisclosureError::NotFound);
        }
        Ok(d)
    }

    /// Up to `limit` disclosures, newest first, of `subject` or `recipient` when given. Needs
    /// the `incident` operation (the DPO's and admins' register); audited as
    /// `disclosure.list`.
    pub async fn list(
        &self,
        access: &Access,
        subject: Option<SubjectId>,
        recipient: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Disclosure>, DisclosureError> {
        self.authorize(access, "disclosure.list").await?;
        // No declared recipient has such a name: nobody shared with it (and the store is
        // never asked for a text it cannot hold).
        if let Some(r) = recipient
            && (r.chars().count() > 200 || r.chars().any(char::is_control))
        {
            return Ok(Vec::new());
        }
        // Never with the subject: the person's own trail (their access package) would show
        // that their disclosures were looked at, and so that one exists while a gag holds it.
        let mut entry = access.entry("disclosure.list", self.now());
        if subject.is_some() {
            entry.detail = Some("one person's disclosures".to_owned());
        }
        self.ledger.vault().record(entry).await?;
        let store = self.ledger.vault().store();
        store
            .disclosures(subject, recipient, limit.min(10_000))
            .await?
            .iter()
            .map(|r| Disclosure::from_row(r).map_err(DisclosureError::from))
            .collect()
    }

    /// Counts people by `query.by`, suppresses every group under the declared k, and — when a
    /// recipient is named — logs the aggregate as a disclosure. Needs the `incident` operation.
    /// Vault dimensions (purpose, category, month) count distinct people holding fields;
    /// `consent` counts the ledger's subjects by their current state per purpose (with
    /// `purpose` and `month`); `country` opens each person's country field and counts alone.
    ///
    /// # Errors
    ///
    /// [`DisclosureError::Invalid`] for no dimension, a mix the sources cannot count, an
    /// unknown category or recipient.
    pub async fn aggregate(
        &self,
        access: &Access,
        query: &AggregateQuery,
    ) -> Result<Aggregate, DisclosureError> {
        self.authorize(access, "aggregate.count").await?;
        let declaration = self.ledger.vault().declaration();
        let k = declaration.aggregates.k;
        let mut by = query.by.clone();
        by.dedup();
        if by.is_empty() {
            return Err(DisclosureError::Invalid(
                "by: name at least one dimension, e.g. `purpose,month`".to_owned(),
            ));
        }
        for c in &query.categories {
            if !matches!(
                declaration.taxonomy.lookup(Kind::Category, c),
                Lookup::Known(_)
            ) {
                return Err(DisclosureError::Invalid(format!(
                    "categories: `{c}` is not a data category; see `steward taxonomy`"
                )));
            }
        }
        let store = self.ledger.vault().store();
        let rows = if by.contains(&Dimension::Country) {
            if by.len() > 1 {
                return Err(DisclosureError::Invalid(
                    "by: `country` counts alone (it is opened from each person's sealed country field)".to_owned(),
                ));
            }
            self.count_countries().await?
        } else if by.contains(&Dimension::Consent) {
            if by.contains(&Dimension::Category) || !query.categories.is_empty() {
                return Err(DisclosureError::Invalid(
                    "by: `consent` counts the ledger, which holds no categories; combine it with `purpose` and `month` only".to_owned(),
                ));
            }
            store.count_consents(&by).await?
        } else {
            store.count_fields(&by, &query.categories).await?
        };
        let mut shown: Vec<(Vec<String>, u64)> = Vec::new();
        let mut suppressed = 0;
        let mut hidden = 0;
        for (values, count) in rows {
            if count < k {
                suppressed += 1;
                hidden += count;
            } else {
                shown.push((values, count));
            }
        }
        // Secondary suppression: the groups held back together hold at least k people, so
        // that a total learnt elsewhere (another grouping of the same people) minus the groups
        // shown never isolates a small group.
        if suppressed > 0 && hidden < k {
            shown.sort_by_key(|(_, n)| *n);
            while hidden < k && !shown.is_empty() {
                let (_, n) = shown.remove(0);
                hidden += n;
                suppressed += 1;
            }
            shown.sort();
        }
        let mut groups = Vec::new();
        for (values, count) in shown {
            groups.push(AggregateGroup {
                values: by
                    .iter()
                    .map(|d| d.as_str().to_owned())
                    .zip(values)
                    .collect(),
                count,
            });
        }
        let dims = by.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(",");
        let mut aggregate = Aggregate {
            by,
            k,
            groups,
            suppressed,
            disclosure: None,
        };
        let now = self.now();
        let mut entry = access.entry("aggregate.count", now);
        entry.categories = query.categories.clone();
        entry.detail = Some(format!(
            "by {dims}, k = {k}: {} groups shown, {} suppressed",
            aggregate.groups.len(),
            aggregate.suppressed
        ));
        let Some(recipient) = &query.recipient else {
            self.ledger.vault().record(entry).await?;
            return Ok(aggregate);
        };
        // A share: logged as a disclosure with no subject (it names nobody).
        let new = NewDisclosure {
            recipient: recipient.clone(),
            categories: if query.categories.is_empty() {
                vec!["user".to_owned()]
            } else {
                query.categories.clone()
            },
            basis: Some(LawfulBasis::LegitimateInterest),
            reference: query.reference.clone(),
            ..NewDisclosure::default()
        };
        let mut d = self.check(&new, now, true).await?;
        d.by = access.principal.actor.clone();
        d.aggregate = Some(format!("aggregate by {dims}, k = {k}"));
        entry.action = "aggregate.share".to_owned();
        entry.detail = Some(format!(
            "disclosure {} to {}: {}",
            d.id,
            d.recipient,
            entry.detail.unwrap_or_default()
        ));
        let vault = self.ledger.vault();
        vault
            .store()
            .insert_disclosure(
                &d.row(),
                &[],
                Audited {
                    entries: vec![entry],
                    chain: vault.audit_chain(),
                },
            )
            .await?;
        aggregate.disclosure = Some(d.id);
        Ok(aggregate)
    }

    /// People by the country in their sealed `user.contact.address.country` fields.
    async fn count_countries(&self) -> Result<Vec<CountRow>, DisclosureError> {
        let vault = self.ledger.vault();
        let category = "user.contact.address.country";
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut after = None;
        loop {
            let page = vault.store().subjects_with(category, after, 1000).await?;
            let Some(last) = page.last().copied() else {
                break;
            };
            for s in page {
                let values = match vault.values_of(s, category).await {
                    Ok(v) => v,
                    Err(VaultError::NotFound) => continue,
                    Err(e) => return Err(e.into()),
                };
                if let Some(v) = values.first() {
                    *counts.entry(v.trim().to_uppercase()).or_default() += 1;
                }
            }
            after = Some(last);
        }
        Ok(counts.into_iter().map(|(c, n)| (vec![c], n)).collect())
    }
}
