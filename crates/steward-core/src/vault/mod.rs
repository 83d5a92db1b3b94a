//! The vault: personal records sealed per subject, found by blind index, read only for a
//! declared purpose, corrected unless immutable, and erased by destroying the subject's key,
//! with what the law requires kept under a separate hold key and reported in a receipt.
//!
//! The vault context owns subjects' records, their keys and key rotation ([`rotation`]),
//! legal holds, and the vault's side of staff accounts ([`staff`]: creating them, signing in).
//! It uses the shared words (subject, identity, clock, time arithmetic), `access` (who may do
//! what) and `audit` (what was done); nothing above it (`consent`, `requests`).

pub mod api_keys;
pub mod rotation;
pub mod staff;
pub mod storage;

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use steward_crypto::{Aad, CryptoError, Keyring, MasterKey, RootSecret, SubjectKey, open, seal};
use steward_policy::declaration::Purpose;
use steward_policy::taxonomy::{Kind, Lookup, covers};
use steward_policy::{Declaration, Retention, Trigger};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::access::{Access, Denied, Operation, Reach};
use crate::audit::{
    self, AuditChain, AuditEntry, AuditFilter, AuditLog, Break, Outcome, SealedEntry, Verified,
};
use crate::clock::Clock;
use crate::identity::{Identity, IdentityError, IdentityKind};
use crate::storage::StoreError;
use crate::subject::{FieldSource, SubjectId};
use crate::time_math;
use crate::vault::storage::{
    Audited, Erased, Erasure, HeldField, Hold, SealedField, SealedIdentity, SubjectRecord,
    VaultStore,
};

/// The largest value Steward stores for one field, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The version of subject keys (bound into every sealed value).
const SUBJECT_KEY_VERSION: u32 = 1;

/// Whether `purpose` is a legal hold that keeps a field of `category` collected for
/// `collected_for` through an erasure (and so may read it afterwards).
fn keeps(purpose: &Purpose, category: &str, collected_for: &str) -> bool {
    purpose.legal_hold.is_some()
        && purpose.may_use_collected_for(collected_for)
        && purpose.categories.iter().any(|c| covers(c, category))
}

/// How many times an erasure reads a subject again whose fields changed while it was erased.
/// Each loss means another writer finished, so contention drains: the rounds only bound a
/// pathological stream of writers.
const ERASE_ROUNDS: usize = 16;

/// How many times a correction of an identity starts again when another one came first. As
/// with erasures, each loss is another correction finishing: with N at once, the last needs
/// up to N rounds.
const CORRECTION_ROUNDS: usize = 32;

/// Why the vault refused or failed. Messages name categories, purposes and kinds, never values.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// An identity could not be normalised.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A subject needs at least one identity to be found again.
    #[error("a subject needs at least one identity (email, phone, username or a custom kind)")]
    NoIdentity,
    /// The purpose is not in the declaration.
    #[error("`{0}` is not a declared purpose")]
    UnknownPurpose(String),
    /// The category is not in the taxonomy.
    #[error("`{0}` is not a declared data category")]
    UnknownCategory(String),
    /// The purpose may not collect the category.
    #[error(
        "purpose `{purpose}` may not collect `{category}`: add it to the purpose's categories in the declaration, or use a purpose that collects it"
    )]
    NotCollected {
        /// The purpose.
        purpose: String,
        /// The category.
        category: String,
    },
    /// The purpose declares `stored = false`.
    #[error(
        "purpose `{0}` is declared `stored = false`: its data goes to its processors and is never stored by Steward"
    )]
    NotStored(String),
    /// A third-party source that is not a declared processor.
    #[error("source `{0}` is not a declared processor")]
    UnknownSource(String),
    /// The value is too large.
    #[error(
        "the value for `{category}` is {len} bytes; a field may hold at most {MAX_VALUE_BYTES} bytes"
    )]
    TooLarge {
        /// The category.
        category: String,
        /// Its size.
        len: usize,
    },
    /// The category is immutable.
    #[error("`{0}` can never be changed: the declaration lists it in [rights] immutable")]
    Immutable(String),
    /// The identity belongs to another subject.
    #[error("this {kind} already belongs to another subject")]
    Duplicate {
        /// The identity kind.
        kind: String,
    },
    /// No such subject.
    #[error("no subject has this id")]
    NotFound,
    /// A key or sealed value failed (wrong master key, corrupt data).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The principal may not do this.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// A staff account could not be made or changed.
    #[error(transparent)]
    Staff(#[from] crate::staff::StaffError),
    /// The audit entry could not be written, so the act was not done (reads) or not confirmed.
    #[error("the audit trail could not be written: {0}")]
    Audit(StoreError),
    /// An interrupted rotation re-wrapped keys under a new master key, and this rotation does
    /// not have it: going on would leave those keys unreadable, so nothing is done.
    #[error(
        "{already} keys were already re-wrapped by an interrupted rotation, under a new master key that is not here (it was in master.key.next): put that file back in the data folder and run `steward keys rotate` again to finish; nothing was changed (a rotation with another key would leave those people unreadable)"
    )]
    RotationInterrupted {
        /// How many keys are at the next generation.
        already: u64,
    },
    /// One key in the key store cannot be opened by the master key that opens the others (a
    /// key written by a process holding another master key, or a damaged row): only that key.
    #[error(
        "the {table} key {id} (wrapped under master key generation {generation}) cannot be opened with the master key in use, which opens the store: if a key rotation was interrupted, finish it with `steward keys rotate`; otherwise the key was written by a process holding another master key, or the row is damaged: restore it from the key-store backup"
    )]
    KeyUnreadable {
        /// `subject` or `legal hold`.
        table: &'static str,
        /// The subject (or hold) it belongs to: a pseudonymous id, never personal data.
        id: SubjectId,
        /// The master key generation it was expected under.
        generation: u32,
    },
}

impl VaultError {
    /// A stable code for the API and the audit trail.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Identity(_) | Self::NoIdentity => "invalid-identity",
            Self::UnknownPurpose(_) => "unknown-purpose",
            Self::UnknownCategory(_) => "unknown-category",
            Self::NotCollected { .. } | Self::NotStored(_) => "purpose-may-not-collect",
            Self::UnknownSource(_) => "unknown-source",
            Self::TooLarge { .. } => "value-too-large",
            Self::Immutable(_) => "immutable",
            Self::Duplicate { .. } => "duplicate-identity",
            Self::NotFound => "not-found",
            Self::Crypto(_) | Self::KeyUnreadable { .. } => "crypto",
            Self::RotationInterrupted { .. } => "rotation-interrupted",
            Self::Store(_) => "store",
            Self::Denied(d) => d.code,
            Self::Audit(_) => "audit",
            Self::Staff(e) => match e {
                crate::staff::StaffError::Username | crate::staff::StaffError::Password(_) => {
                    "invalid-staff"
                }
                crate::staff::StaffError::Exists(_) => "staff-exists",
                crate::staff::StaffError::Unknown(_) => "unknown-staff",
                crate::staff::StaffError::Failed(_) => "staff-failed",
                crate::staff::StaffError::Busy => "busy",
            },
        }
    }
}

impl From<StoreError> for VaultError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate { kind } => Self::Duplicate { kind },
            other => Self::Store(other),
        }
    }
}

/// A subject to create: identities, fields (category → value), and the provenance they share.
#[derive(Debug, Clone)]
pub struct NewSubjectInput {
    /// How the subject is found again.
    pub identities: Vec<Identity>,
    /// Field values by category key.
    pub fields: Vec<(String, String)>,
    /// The purpose of collection.
    pub purpose: String,
    /// Where the data came from.
    pub source: FieldSource,
}

/// What a correction changed.
#[derive(Debug)]
pub enum Corrected {
    /// A field's value.
    Field,
    /// An identity the subject is found by: the old and the new value (personal data, for
    /// telling the person at both addresses; never logged).
    Identity {
        /// Its kind.
        kind: IdentityKind,
        /// The value it had (`None` when the person had none of its kind).
        old: Option<Zeroizing<String>>,
        /// The value it has now.
        new: Zeroizing<String>,
    },
}

/// What a subject's data was before a change: see [`Vault::inventory`].
#[derive(Default)]
pub(crate) struct Inventory {
    /// (category, purpose it was collected for) of each identity and field.
    pub held: Vec<(String, Option<String>)>,
    /// (kind, value) of each identity.
    pub identities: Vec<(String, Zeroizing<String>)>,
}

/// A field as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldView {
    /// Its id.
    pub id: Uuid,
    /// Its category.
    pub category: String,
    /// The purpose it was collected for.
    pub purpose: String,
    /// Where it came from.
    pub source: String,
    /// When it was collected.
    #[serde(with = "time::serde::rfc3339")]
    pub collected_at: OffsetDateTime,
    /// The value.
    pub value: String,
}

/// What a purpose may see of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectView {
    /// The subject.
    pub id: SubjectId,
    /// Identities the purpose covers: kind and value.
    pub identities: Vec<(String, String)>,
    /// Fields the purpose covers.
    pub fields: Vec<FieldView>,
}

/// Everything held on a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectExport {
    /// Identities and fields, for every purpose.
    #[serde(flatten)]
    pub view: SubjectView,
    /// Fields kept under a legal hold after an erasure.
    pub held: Vec<FieldView>,
    /// Who accessed the data, and why.
    pub trail: Vec<TrailEntry>,
}

/// One access to a subject's data, as the subject may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrailEntry {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The role of whoever acted (`service`, `support`, `dpo` …).
    pub role: String,
    /// What was done.
    pub action: String,
    /// The purpose named.
    pub purpose: Option<String>,
    /// The categories touched.
    pub categories: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
}

/// A category kept through an erasure, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Retained {
    /// The category.
    pub category: String,
    /// The purpose whose legal hold keeps it.
    pub purpose: String,
    /// Why, in the declaration's words.
    pub reason: String,
    /// When the hold ends, if declared.
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
}

/// Proof of an erasure that holds no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureReceipt {
    /// The subject (pseudonymous).
    pub subject: SubjectId,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub erased_at: OffsetDateTime,
    /// Categories removed (identities included, by their category).
    pub removed: Vec<String>,
    /// Categories kept, each with its reason.
    pub retained: Vec<Retained>,
    /// SHA-256 over the fields above, to show the receipt was not altered.
    pub digest: String,
}

/// The vault over a store.
#[derive(Debug)]
pub struct Vault<S: VaultStore> {
    store: S,
    keyring: Keyring,
    audit: AuditLog,
    limits: crate::rate_limit::SharedLimits,
    declaration: Arc<Declaration>,
    clock: Arc<dyn Clock>,
}

fn identity_aad<'a>(subject: &'a SubjectId, kind: &'a str) -> Aad<'a> {
    Aad {
        domain: "identity",
        subject: subject.as_bytes(),
        field: kind,
        key_version: SUBJECT_KEY_VERSION,
    }
}

/// A new field's id: time-ordered, so that a field's row lands at the end of the fields'
/// primary-key index (a random id wrote a random page of it for every field, and an import
/// slowed as the vault grew).
fn field_id(now: OffsetDateTime) -> Uuid {
    crate::subject::time_ordered(now)
}

fn field_label(field: &SealedField) -> String {
    format!("{}/{}", field.category, field.id)
}

impl<S: VaultStore> Vault<S> {
    /// Opens the vault: unwraps the store's blind-index root with `master` (creating it on a
    /// new store). A master key that does not match the store is [`CryptoError::WrongMasterKey`].
    pub async fn open(
        store: S,
        master: &MasterKey,
        declaration: Arc<Declaration>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultError> {
        let wrapped = match store.root("index").await? {
            Some(w) => w,
            None => {
                let fresh = Keyring::new(master, 1).wrap_root("index", &RootSecret::generate()?)?;
                store.put_root("index", &fresh).await?
            }
        };
        // The root is wrapped by the current master key generation.
        let keyring = Keyring::new(master, wrapped.kek_version);
        let root = keyring.unwrap_root("index", &wrapped)?;
        let keyring = keyring.with_index_root(root);
        let audit = AuditLog::new(AuditChain::new(keyring.subkey("audit-mac")?));
        let limits = crate::rate_limit::SharedLimits::new(keyring.subkey("rate-limits")?);
        Ok(Self {
            store,
            keyring,
            audit,
            limits,
            declaration,
            clock,
        })
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.store
    }

    pub(crate) fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The rate limits shared with every process on this store.
    pub fn limits(&self) -> &crate::rate_limit::SharedLimits {
        &self.limits
    }

    /// The audit log.
    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Writes an audit entry for an act outside the vault (keys, staff, refusals).
    pub async fn record(&self, entry: AuditEntry) -> Result<u64, VaultError> {
        self.audit
            .record(&self.store, entry)
            .await
            .map_err(VaultError::Audit)
    }

    /// The key of the `hash` erasure action in the operator's own databases (derived from the
    /// master key): a person's value hashes alike in every table, and nobody without the key
    /// can test a guess.
    ///
    /// # Errors
    /// [`VaultError::Crypto`] when the vault has no root to derive it from.
    pub fn dataset_hash_key(&self) -> Result<Zeroizing<[u8; 32]>, VaultError> {
        Ok(self.keyring.subkey("dataset-hash")?)
    }

    /// The audit chain, for a write that carries its entry in its own transaction
    /// ([`crate::vault::storage::Audited`]).
    #[doc(hidden)]
    pub fn audit_chain(&self) -> &AuditChain {
        self.audit.chain()
    }

    /// Verifies the audit chain.
    pub async fn verify_audit(
        &self,
        progress: impl FnMut(u64, u64),
    ) -> Result<Result<Verified, Break>, VaultError> {
        audit::verify(&self.store, self.audit.chain(), progress)
            .await
            .map_err(VaultError::Store)
    }

    /// Audit entries passing `filter`, after `after`, at most `limit`. Reading the audit is
    /// itself audited (once per call, as `audit.export`).
    pub async fn audit_entries(
        &self,
        access: &Access,
        filter: &AuditFilter,
        after: u64,
        limit: u32,
    ) -> Result<Vec<SealedEntry>, VaultError> {
        let mut entry = access.entry("audit.export", self.clock.now());
        entry.subject = filter.subject;
        entry.flagged = false;
        let result = async {
            access.authorize(Operation::Audit, Reach::Nothing)?;
            Ok(self.store.audit_search(filter, after, limit).await?)
        }
        .await;
        self.finish(entry, result, |_, _| {}).await
    }

    /// Records how an act ended, then hands its result back. A read whose entry cannot be
    /// written is not returned.
    pub(crate) async fn finish<T>(
        &self,
        mut entry: AuditEntry,
        result: Result<T, VaultError>,
        fill: impl FnOnce(&T, &mut AuditEntry),
    ) -> Result<T, VaultError> {
        match &result {
            Ok(value) => fill(value, &mut entry),
            Err(e) => refused(&mut entry, e),
        }
        self.record(entry).await?;
        result
    }

    /// Checks `access` may do `op` for `purpose` over `categories`, through
    /// [`Access::authorize`].
    fn authorize<'c>(
        &self,
        access: &Access,
        op: Operation,
        purpose: Option<&Purpose>,
        categories: impl IntoIterator<Item = &'c str>,
    ) -> Result<(), VaultError> {
        let categories: Vec<&str> = categories.into_iter().collect();
        let purposes: Vec<&Purpose> = purpose.into_iter().collect();
        Ok(access.authorize(
            op,
            Reach::Data {
                purposes: &purposes,
                categories: &categories,
            },
        )?)
    }

    /// The declaration the vault enforces.
    pub fn declaration(&self) -> &Declaration {
        &self.declaration
    }

    fn purpose(&self, id: &str) -> Result<&Purpose, VaultError> {
        self.declaration
            .purpose(id)
            .ok_or_else(|| VaultError::UnknownPurpose(id.to_owned()))
    }

    /// Checks that `purpose` may collect `category` and that Steward stores it.
    fn may_collect(&self, purpose: &Purpose, category: &str) -> Result<(), VaultError> {
        if !matches!(
            self.declaration.taxonomy.lookup(Kind::Category, category),
            Lookup::Known(_)
        ) {
            return Err(VaultError::UnknownCategory(category.to_owned()));
        }
        if !purpose.stored {
            return Err(VaultError::NotStored(purpose.id.clone()));
        }
        if !purpose.categories.iter().any(|c| covers(c, category)) {
            return Err(VaultError::NotCollected {
                purpose: purpose.id.clone(),
                category: category.to_owned(),
            });
        }
        Ok(())
    }

    /// Checks, without writing, that `purpose` may collect `category` into the vault.
    pub fn check_collect(&self, purpose: &str, category: &str) -> Result<(), VaultError> {
        self.may_collect(self.purpose(purpose)?, category)
    }

    fn check_source(&self, source: &FieldSource) -> Result<(), VaultError> {
        match source {
            FieldSource::ThirdParty(id) if self.declaration.processor(id).is_none() => {
                Err(VaultError::UnknownSource(id.clone()))
            }
            _ => Ok(()),
        }
    }

    fn seal_field(
        &self,
        subject: &SubjectId,
        key: &SubjectKey,
        mut field: SealedField,
        value: &str,
    ) -> Result<SealedField, VaultError> {
        let label = field_label(&field);
        let aad = Aad {
            domain: "field",
            subject: subject.as_bytes(),
            field: &label,
            key_version: SUBJECT_KEY_VERSION,
        };
        field.sealed = seal(key.bytes(), &aad, value.as_bytes())?;
        Ok(field)
    }

    /// Validates and seals a subject, ready for [`Store::insert_subjects`]. Pure: no I/O.
    pub fn prepare(&self, input: &NewSubjectInput) -> Result<SubjectRecord, VaultError> {
        if input.identities.is_empty() {
            return Err(VaultError::NoIdentity);
        }
        let purpose = self.purpose(&input.purpose)?;
        self.check_source(&input.source)?;
        for identity in &input.identities {
            self.may_collect(purpose, identity.kind().category())?;
        }
        for (category, value) in &input.fields {
            self.may_collect(purpose, category)?;
            if value.len() > MAX_VALUE_BYTES {
                return Err(VaultError::TooLarge {
                    category: category.clone(),
                    len: value.len(),
                });
            }
        }
        let now = self.clock.now();
        let id = SubjectId::new(now);
        let key = SubjectKey::generate()?;
        let wrapped = self.keyring.wrap_subject_key(id.as_bytes(), &key)?;
        let mut identities: Vec<SealedIdentity> = Vec::with_capacity(input.identities.len());
        for identity in &input.identities {
            let kind = identity.kind().as_str();
            let index = self.keyring.blind_index(kind, identity.value())?;
            if identities
                .iter()
                .any(|i| i.kind == kind && i.index == index)
            {
                continue;
            }
            identities.push(SealedIdentity {
                kind: kind.to_owned(),
                index,
                sealed: seal(
                    key.bytes(),
                    &identity_aad(&id, kind),
                    identity.value().as_bytes(),
                )?,
                purpose: Some(purpose.id.clone()),
            });
        }
        let source = input.source.encode();
        let fields = input
            .fields
            .iter()
            .map(|(category, value)| {
                let field = SealedField {
                    id: field_id(now),
                    category: category.clone(),
                    purpose: purpose.id.clone(),
                    source: source.clone(),
                    collected_at: now,
                    sealed: Vec::new(),
                };
                self.seal_field(&id, &key, field, value)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SubjectRecord {
            id,
            created_at: now,
            key: wrapped,
            identities,
            fields,
        })
    }

    /// Creates one subject.
    pub async fn create(
        &self,
        access: &Access,
        input: &NewSubjectInput,
    ) -> Result<SubjectId, VaultError> {
        let mut entry = access.entry("subject.create", self.clock.now());
        entry.purpose = Some(input.purpose.clone());
        entry.categories = input_categories(input);
        let result = async {
            let purpose = self.purpose(&input.purpose)?;
            self.authorize(
                access,
                Operation::Create,
                Some(purpose),
                entry.categories.iter().map(String::as_str),
            )?;
            let subject = self.prepare(input)?;
            let mut done = entry.clone();
            done.subject = Some(subject.id);
            self.insert_recorded(std::slice::from_ref(&subject), done)
                .await?;
            Ok(subject.id)
        }
        .await;
        match result {
            Ok(id) => Ok(id),
            Err(e) => self.finish(entry, Err(e), |_, _| {}).await,
        }
    }

    /// Writes `subjects` with `entry`, their audit record, in the same transaction.
    async fn insert_recorded(
        &self,
        subjects: &[SubjectRecord],
        entry: AuditEntry,
    ) -> Result<(), VaultError> {
        let audited = Audited {
            entries: vec![entry],
            chain: self.audit.chain(),
        };
        Ok(self.store.insert_subjects(subjects, audited).await?)
    }

    /// Which of `subjects` (made by [`Vault::prepare`]) are in the vault already: `true` where
    /// one of their identities belongs to someone. Unaudited, as a failed insert of them would
    /// be: it tells the importer only what a duplicate would, for its own file, in one query
    /// per identity kind rather than one failed transaction per person.
    ///
    /// # Errors
    /// [`VaultError::Store`] when the database fails.
    pub async fn already_known(&self, subjects: &[SubjectRecord]) -> Result<Vec<bool>, VaultError> {
        let mut by_kind: std::collections::BTreeMap<&str, Vec<[u8; 32]>> =
            std::collections::BTreeMap::new();
        for identity in subjects.iter().flat_map(|s| &s.identities) {
            by_kind
                .entry(&identity.kind)
                .or_default()
                .push(identity.index);
        }
        let mut known: HashSet<(&str, [u8; 32])> = HashSet::new();
        for (kind, indexes) in &by_kind {
            for index in self.store.known_identities(kind, indexes).await? {
                known.insert((kind, index));
            }
        }
        Ok(subjects
            .iter()
            .map(|s| {
                s.identities
                    .iter()
                    .any(|i| known.contains(&(i.kind.as_str(), i.index)))
            })
            .collect())
    }

    /// Writes subjects made by [`Vault::prepare`] (an import batch) in one transaction, with
    /// one audit entry for the batch.
    pub async fn insert_prepared(
        &self,
        access: &Access,
        purpose: &str,
        subjects: &[SubjectRecord],
    ) -> Result<(), VaultError> {
        let mut entry = access.entry("subject.import", self.clock.now());
        entry.purpose = Some(purpose.to_owned());
        entry.categories = sorted(subjects.iter().flat_map(|s| {
            s.identities
                .iter()
                .filter_map(|i| IdentityKind::parse(&i.kind).ok())
                .map(|k| k.category().to_owned())
                .chain(s.fields.iter().map(|f| f.category.clone()))
        }));
        entry.detail = Some(format!("{} subjects", subjects.len()));
        let result = async {
            let p = self.purpose(purpose)?;
            self.authorize(
                access,
                Operation::Create,
                Some(p),
                entry.categories.iter().map(String::as_str),
            )?;
            self.insert_recorded(subjects, entry.clone()).await
        }
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => self.finish(entry, Err(e), |_, _| {}).await,
        }
    }

    /// The subject an identity belongs to, looked up for `purpose` (required of support).
    pub async fn lookup(
        &self,
        access: &Access,
        identity: &Identity,
        purpose: Option<&str>,
    ) -> Result<Option<SubjectId>, VaultError> {
        let category = identity.kind().category().to_owned();
        let mut entry = access.entry("subject.lookup", self.clock.now());
        entry.purpose = purpose.map(str::to_owned);
        entry.categories = vec![category.clone()];
        let result = async {
            let purpose = purpose.map(|p| self.purpose(p)).transpose()?;
            if purpose.is_none() && access.principal.role.needs_ticket() {
                return Err(VaultError::Denied(Denied {
                    code: "missing-purpose",
                    message: "support looks people up for a purpose: name it in `Steward-Purpose`"
                        .to_owned(),
                }));
            }
            self.authorize(access, Operation::Lookup, purpose, [category.as_str()])?;
            // The purposes the look-up is for: the one named, else those the key is narrowed
            // to (none: any).
            let purposes: Vec<&Purpose> = match purpose {
                Some(p) => vec![p],
                None => access
                    .principal
                    .scope
                    .purposes
                    .iter()
                    .filter_map(|id| self.declaration.purpose(id))
                    .collect(),
            };
            if let Some((live, collected_for)) = self.find_live(identity).await? {
                // Purpose limitation: a purpose finds a person by an identity collected for it
                // or for a purpose it may use; a consent purpose finds anyone, to record their
                // consent (a create would say the same through its conflict).
                let finds = purposes.is_empty()
                    || purposes.iter().any(|p| {
                        p.basis == steward_policy::declaration::LawfulBasis::Consent
                            || collected_for
                                .as_deref()
                                .is_none_or(|c| p.may_use_collected_for(c))
                    });
                return Ok(finds.then_some(live));
            }
            // An erased person whose data a legal hold keeps is found for that hold's purpose
            // only; no other purpose even looks (the same work as for someone never known).
            let holds: Vec<&Purpose> = purposes
                .into_iter()
                .filter(|p| p.legal_hold.is_some())
                .collect();
            if holds.is_empty() {
                return Ok(None);
            }
            let Some(held) = self.find_held(identity).await? else {
                return Ok(None);
            };
            let serves = self.store.held(held).await?.is_some_and(|h| {
                h.fields.iter().any(|f| {
                    holds
                        .iter()
                        .any(|p| keeps(p, &f.field.category, &f.field.purpose))
                })
            });
            Ok(serves.then_some(held))
        }
        .await;
        self.finish(entry, result, |found, e| {
            e.subject = *found;
            if found.is_none() {
                e.code = Some("no-match".to_owned());
            }
        })
        .await
    }

    async fn load(&self, id: SubjectId) -> Result<(SubjectRecord, SubjectKey), VaultError> {
        let stored = self
            .store
            .load_subject(id)
            .await?
            .ok_or(VaultError::NotFound)?;
        // The master key opened the store's root, so a key it cannot open is that key's fault.
        let key = self
            .keyring
            .unwrap_subject_key(id.as_bytes(), &stored.key)
            .map_err(|_| VaultError::KeyUnreadable {
                table: "subject",
                id,
                generation: stored.key.kek_version,
            })?;
        Ok((stored, key))
    }

    fn open_field(
        &self,
        id: &SubjectId,
        key: &[u8; 32],
        field: &SealedField,
        domain: &str,
    ) -> Result<FieldView, VaultError> {
        let label = field_label(field);
        let aad = Aad {
            domain,
            subject: id.as_bytes(),
            field: &label,
            key_version: SUBJECT_KEY_VERSION,
        };
        let value = open(key, &aad, &field.sealed)?;
        Ok(FieldView {
            id: field.id,
            category: field.category.clone(),
            purpose: field.purpose.clone(),
            source: field.source.clone(),
            collected_at: field.collected_at,
            value: String::from_utf8_lossy(&value).into_owned(),
        })
    }

    /// Whether `access` may read for `purpose` (narrowed to `only`): the checks of
    /// [`Self::read`] that need no data, without an audit entry (the read that follows
    /// audits).
    pub(crate) fn may_read(
        &self,
        access: &Access,
        purpose: &str,
        only: &[String],
    ) -> Result<(), VaultError> {
        let purpose = self.purpose(purpose)?;
        self.authorize(
            access,
            Operation::Read,
            Some(purpose),
            only.iter().map(String::as_str),
        )?;
        if let Some(c) = only
            .iter()
            .find(|c| !purpose.categories.iter().any(|p| covers(p, c)))
        {
            return Err(VaultError::Denied(Denied {
                code: "purpose-does-not-cover",
                message: format!(
                    "purpose `{}` does not cover `{c}`: read it for a purpose whose categories include it",
                    purpose.id
                ),
            }));
        }
        Ok(())
    }

    /// What is held of `id` before a change, for telling recipients (GDPR Art. 19): each
    /// identity's and field's category with the purpose it was collected for (`None` for
    /// identities stored before Steward kept it), and the identities' values (kind, value),
    /// by which a recipient finds the person. Empty for someone not in the vault. Not audited
    /// here: the notice that discloses them is.
    pub(crate) async fn inventory(&self, id: SubjectId) -> Result<Inventory, VaultError> {
        let (stored, key) = match self.load(id).await {
            Ok(loaded) => loaded,
            Err(VaultError::NotFound) => return Ok(Inventory::default()),
            Err(e) => return Err(e),
        };
        let mut out = Inventory::default();
        for i in &stored.identities {
            let Ok(kind) = IdentityKind::parse(&i.kind) else {
                continue;
            };
            out.held
                .push((kind.category().to_owned(), i.purpose.clone()));
            let value = open(key.bytes(), &identity_aad(&id, &i.kind), &i.sealed)?;
            out.identities.push((
                i.kind.clone(),
                Zeroizing::new(String::from_utf8_lossy(&value).into_owned()),
            ));
        }
        out.held.extend(
            stored
                .fields
                .iter()
                .map(|f| (f.category.clone(), Some(f.purpose.clone()))),
        );
        Ok(out)
    }

    /// Whether the vault holds anything of `id`: live, or kept by a legal hold.
    pub(crate) async fn holds(&self, id: SubjectId) -> Result<bool, VaultError> {
        Ok(self.store.load_subject(id).await?.is_some() || self.store.held(id).await?.is_some())
    }

    /// What `purpose` may see of a subject (GDPR Art. 5(1)(b), purpose limitation): of the
    /// identities and fields in its categories that the principal's scope lets through (narrowed
    /// to `only` when given, each of which the purpose and the scope must cover), those
    /// collected for it, for a purpose it is declared compatible with (Art. 6(4)), or — when
    /// `consented` (the person has a current consent for it) — any. After an erasure, the
    /// fields a legal hold keeps, for the hold's own purpose. Permits are checked by
    /// [`crate::ledger::Ledger::read`], the one way in.
    pub(crate) async fn read(
        &self,
        access: &Access,
        id: SubjectId,
        purpose: &str,
        only: &[String],
        consented: bool,
    ) -> Result<SubjectView, VaultError> {
        let mut entry = access.entry("subject.read", self.clock.now());
        entry.purpose = Some(purpose.to_owned());
        entry.subject = Some(id);
        entry.categories = only.to_vec();
        let result = async {
            self.may_read(access, purpose, only)?;
            let purpose = self.purpose(purpose)?;
            let let_through = |category: &str| {
                purpose.categories.iter().any(|c| covers(c, category))
                    && access.principal.scope.allows_category(category)
                    && (only.is_empty() || only.iter().any(|o| covers(o, category)))
            };
            let may_see = |collected_for: Option<&str>| {
                consented || collected_for.is_none_or(|q| purpose.may_use_collected_for(q))
            };
            match self.load(id).await {
                Ok((stored, key)) => {
                    self.open_view(id, &stored, &key, |category, collected_for| {
                        let_through(category) && may_see(collected_for)
                    })
                }
                Err(VaultError::NotFound) => {
                    let held: Vec<FieldView> = self
                        .open_held(id)
                        .await?
                        .into_iter()
                        .filter(|f| keeps(purpose, &f.category, &f.purpose))
                        .filter(|f| let_through(&f.category))
                        .collect();
                    if held.is_empty() {
                        return Err(VaultError::NotFound);
                    }
                    Ok(SubjectView {
                        id,
                        identities: Vec::new(),
                        fields: held,
                    })
                }
                Err(e) => Err(e),
            }
        }
        .await;
        self.finish(entry, result, |view, e| e.categories = view.categories())
            .await
    }

    /// The subject a data-subject request's address belongs to, for staff who may look people
    /// up: live, or erased with data a legal hold keeps (their request reaches it), audited as
    /// a look-up. The request is about the person as a whole, so no purpose narrows it.
    pub(crate) async fn lookup_for_request(
        &self,
        access: &Access,
        identity: &Identity,
    ) -> Result<Option<SubjectId>, VaultError> {
        let mut entry = access.entry("subject.lookup", self.clock.now());
        entry.categories = vec![identity.kind().category().to_owned()];
        entry.detail = Some("for a data-subject request".to_owned());
        let result = self.find(identity).await;
        self.finish(entry, result, |found, e| {
            e.subject = *found;
            if found.is_none() {
                e.code = Some("no-match".to_owned());
            }
        })
        .await
    }

    /// The subject an identity belongs to, without an audit entry: for callers that audit the
    /// act they look it up for (a data-subject request's intake). An erased person whose data
    /// a legal hold keeps is found too, so that their request reaches the kept data.
    pub(crate) async fn find(&self, identity: &Identity) -> Result<Option<SubjectId>, VaultError> {
        match self.find_live(identity).await? {
            Some((live, _)) => Ok(Some(live)),
            None => self.find_held(identity).await,
        }
    }

    /// The live subject an identity belongs to, unaudited: for the breach register, which
    /// audits what it makes of many at once (people found in the operator's databases).
    pub(crate) async fn subject_by(
        &self,
        identity: &Identity,
    ) -> Result<Option<SubjectId>, VaultError> {
        Ok(self.find_live(identity).await?.map(|(s, _)| s))
    }

    /// The live subject an identity belongs to, and the purpose it was collected for.
    async fn find_live(
        &self,
        identity: &Identity,
    ) -> Result<Option<(SubjectId, Option<String>)>, VaultError> {
        let kind = identity.kind().as_str();
        let index = self.keyring.blind_index(kind, identity.value())?;
        Ok(self.store.find_subject(kind, &index).await?)
    }

    async fn find_held(&self, identity: &Identity) -> Result<Option<SubjectId>, VaultError> {
        let kind = identity.kind().as_str();
        let index = self.keyring.blind_index(kind, identity.value())?;
        Ok(self.store.find_held_subject(kind, &index).await?)
    }

    /// The subject's e-mail address, for the mail Steward itself sends (a double opt-in
    /// confirmation, a policy notice); the caller audits the mail.
    pub(crate) async fn email_of(&self, id: SubjectId) -> Result<Option<String>, VaultError> {
        let (stored, key) = self.load(id).await?;
        let view = self.open_view(id, &stored, &key, |c, _| {
            c == IdentityKind::Email.category()
        })?;
        Ok(view
            .identities
            .into_iter()
            .find(|(kind, _)| kind == IdentityKind::Email.as_str())
            .map(|(_, value)| value))
    }

    /// The values of a subject's fields of `category` (for a count by country that names
    /// nobody); the caller audits what it makes of them.
    pub(crate) async fn values_of(
        &self,
        id: SubjectId,
        category: &str,
    ) -> Result<Vec<String>, VaultError> {
        let (stored, key) = self.load(id).await?;
        let view = self.open_view(id, &stored, &key, |c, _| c == category)?;
        Ok(view.fields.into_iter().map(|f| f.value).collect())
    }

    /// Opens the identities and fields of `stored` that `allowed` lets through, given each
    /// one's category and the purpose it was collected for (`None`: not recorded).
    fn open_view(
        &self,
        id: SubjectId,
        stored: &SubjectRecord,
        key: &SubjectKey,
        allowed: impl Fn(&str, Option<&str>) -> bool,
    ) -> Result<SubjectView, VaultError> {
        let mut identities = Vec::new();
        for identity in &stored.identities {
            let kind = IdentityKind::parse(&identity.kind)?;
            if allowed(kind.category(), identity.purpose.as_deref()) {
                let value = open(
                    key.bytes(),
                    &identity_aad(&id, &identity.kind),
                    &identity.sealed,
                )?;
                identities.push((
                    identity.kind.clone(),
                    String::from_utf8_lossy(&value).into_owned(),
                ));
            }
        }
        let fields = stored
            .fields
            .iter()
            .filter(|f| allowed(&f.category, Some(&f.purpose)))
            .map(|f| self.open_field(&id, key.bytes(), f, "field"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SubjectView {
            id,
            identities,
            fields,
        })
    }

    /// Everything held on a subject, for every purpose, with provenance, the fields kept
    /// under legal hold, and the subject's own audit trail (who looked at their data, and why).
    pub async fn export(
        &self,
        access: &Access,
        id: SubjectId,
    ) -> Result<SubjectExport, VaultError> {
        self.export_parts(access, id, true).await
    }

    /// [`Vault::export`], with the subject's audit trail only when `with_trail` (a page that
    /// shows the data but not the trail need not read a history that grows with every view).
    /// Audited the same way: one `subject.export` entry.
    pub async fn export_parts(
        &self,
        access: &Access,
        id: SubjectId,
        with_trail: bool,
    ) -> Result<SubjectExport, VaultError> {
        let mut entry = access.entry("subject.export", self.clock.now());
        entry.subject = Some(id);
        let result = async {
            access.authorize(Operation::Export, Reach::Everything)?;
            let held = self.open_held(id).await?;
            let view = match self.load(id).await {
                Ok((stored, key)) => self.open_view(id, &stored, &key, |_, _| true)?,
                // Erased, but a legal hold keeps some of it: that is what is held.
                Err(VaultError::NotFound) if !held.is_empty() => SubjectView {
                    id,
                    identities: Vec::new(),
                    fields: Vec::new(),
                },
                Err(e) => return Err(e),
            };
            let trail = if with_trail {
                self.trail(id).await?
            } else {
                Vec::new()
            };
            Ok(SubjectExport { view, held, trail })
        }
        .await;
        self.finish(entry, result, |x, e| e.categories = x.view.categories())
            .await
    }

    /// A subject's audit trail, as they may see it: when, which role, what, for which purpose,
    /// which categories (staff names and tickets stay with the operator's audit).
    pub async fn trail(&self, id: SubjectId) -> Result<Vec<TrailEntry>, VaultError> {
        let filter = AuditFilter {
            subject: Some(id),
            ..AuditFilter::default()
        };
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.audit_search(&filter, after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            out.extend(page.into_iter().map(|e| TrailEntry {
                at: e.entry.at,
                role: e.entry.role,
                action: e.entry.action,
                purpose: e.entry.purpose,
                categories: e.entry.categories,
                outcome: e.entry.outcome,
            }));
        }
        Ok(out)
    }

    /// Corrects (or adds) the value of `category`, collected for `purpose` (GDPR Art. 16).
    /// Immutable categories are refused with the reason. An identity category (e-mail, phone,
    /// username) the subject is found by changes the identity itself — its blind index too, in
    /// one transaction, refused with [`VaultError::Duplicate`] when it belongs to someone else —
    /// so the person is found by the new value and no longer by the old one.
    pub async fn rectify(
        &self,
        access: &Access,
        id: SubjectId,
        category: &str,
        value: &str,
        purpose: &str,
        source: &FieldSource,
    ) -> Result<Corrected, VaultError> {
        let mut entry = access.entry("subject.rectify", self.clock.now());
        entry.purpose = Some(purpose.to_owned());
        entry.subject = Some(id);
        entry.categories = vec![category.to_owned()];
        let result = async {
            let p = self.purpose(purpose)?;
            self.authorize(access, Operation::Rectify, Some(p), [category])?;
            self.check_correction(p, category, value, source)?;
            self.correct(id, category, value, Some(p), source, entry.clone())
                .await
        }
        .await;
        // A correction written carries its entry (in its transaction); a refusal is recorded
        // here.
        match result {
            Ok(corrected) => Ok(corrected),
            Err(e) => self.finish(entry, Err(e), |_, _| {}).await,
        }
    }

    /// Corrects `category` wherever it is held — the identity it is, or the field collected
    /// for each purpose — as a person's rectification request asks (GDPR Art. 16): needs the
    /// right to correct it for every purpose that collects it. When nothing holds it yet, it is
    /// added for the first purpose that collects it.
    pub async fn rectify_everywhere(
        &self,
        access: &Access,
        id: SubjectId,
        category: &str,
        value: &str,
        source: &FieldSource,
    ) -> Result<Corrected, VaultError> {
        let mut entry = access.entry("subject.rectify", self.clock.now());
        entry.subject = Some(id);
        entry.categories = vec![category.to_owned()];
        let result = async {
            let purposes: Vec<&Purpose> = self
                .declaration
                .purposes
                .iter()
                .filter(|p| p.stored && p.categories.iter().any(|c| covers(c, category)))
                .collect();
            let first = purposes
                .first()
                .copied()
                .ok_or_else(|| VaultError::UnknownCategory(category.to_owned()))?;
            access.authorize(
                Operation::Rectify,
                Reach::Data {
                    purposes: &purposes,
                    categories: &[category],
                },
            )?;
            self.check_correction(first, category, value, source)?;
            self.correct(id, category, value, None, source, entry.clone())
                .await
        }
        .await;
        match result {
            Ok(corrected) => Ok(corrected),
            Err(e) => self.finish(entry, Err(e), |_, _| {}).await,
        }
    }

    fn check_correction(
        &self,
        purpose: &Purpose,
        category: &str,
        value: &str,
        source: &FieldSource,
    ) -> Result<(), VaultError> {
        if let Some(rule) = self
            .declaration
            .rights
            .immutable
            .iter()
            .find(|rule| covers(rule, category))
        {
            return Err(VaultError::Immutable(rule.clone()));
        }
        self.may_collect(purpose, category)?;
        self.check_source(source)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(VaultError::TooLarge {
                category: category.to_owned(),
                len: value.len(),
            });
        }
        Ok(())
    }

    /// Writes a correction. An identity category (e-mail, phone, username) changes the
    /// identity the subject is found by (added if they have none of its kind), and any copy of
    /// it stored as a field; any other category changes the field collected for `purpose` (or,
    /// with none, every field of `category`; a new field for the first purpose that collects it
    /// if there is none).
    async fn correct(
        &self,
        id: SubjectId,
        category: &str,
        value: &str,
        purpose: Option<&Purpose>,
        source: &FieldSource,
        entry: AuditEntry,
    ) -> Result<Corrected, VaultError> {
        let kind = [
            IdentityKind::Email,
            IdentityKind::Phone,
            IdentityKind::Username,
        ]
        .into_iter()
        .find(|k| k.category() == category);
        if let Some(kind) = &kind {
            // The identity, its copies stored as fields and the entry, in one transaction.
            let corrected = self
                .correct_identity(id, kind, value, purpose, source, entry.clone())
                .await?;
            if matches!(corrected, Corrected::Identity { .. }) {
                return Ok(corrected);
            }
        }
        self.correct_fields(id, category, value, purpose, source, kind.is_none(), entry)
            .await?;
        Ok(Corrected::Field)
    }

    /// Replaces (or adds) `id`'s identity of `kind` with `value`, starting again when another
    /// correction came first. With `purpose`, only an identity collected for it or a purpose
    /// it may use (GDPR Art. 5(1)(b)): one collected for another purpose is refused.
    async fn correct_identity(
        &self,
        id: SubjectId,
        kind: &IdentityKind,
        value: &str,
        purpose: Option<&Purpose>,
        source: &FieldSource,
        mut entry: AuditEntry,
    ) -> Result<Corrected, VaultError> {
        entry.detail = Some("identity changed: the old one no longer finds the subject".to_owned());
        let new = Identity::parse(kind.clone(), value)?;
        let index = self.keyring.blind_index(kind.as_str(), new.value())?;
        for round in 0..CORRECTION_ROUNDS {
            if round > 0 {
                // Let the writer that came first finish before reading again.
                tokio::task::yield_now().await;
            }
            let (stored, key) = self.load(id).await?;
            let mine: Vec<&SealedIdentity> = stored
                .identities
                .iter()
                .filter(|i| i.kind == kind.as_str())
                .collect();
            let old = match purpose {
                Some(p) => {
                    let visible = mine.iter().copied().find(|i| {
                        i.purpose
                            .as_deref()
                            .is_none_or(|c| p.may_use_collected_for(c))
                    });
                    if visible.is_none() && !mine.is_empty() {
                        return Err(VaultError::Denied(Denied {
                            code: "collected-for-another-purpose",
                            message: format!(
                                "this person's {} was collected for another purpose than `{}`: correct it for that purpose, or with a rectification request, which corrects it everywhere",
                                kind.as_str(),
                                p.id
                            ),
                        }));
                    }
                    visible
                }
                None => mine.first().copied(),
            };
            let was = match old {
                Some(o) if o.index == index => return Ok(Corrected::Field),
                Some(o) => {
                    let was = open(key.bytes(), &identity_aad(&id, &o.kind), &o.sealed)?;
                    Some(Zeroizing::new(String::from_utf8_lossy(&was).into_owned()))
                }
                None => None,
            };
            let collected_for = old
                .and_then(|o| o.purpose.clone())
                .or_else(|| purpose.map(|p| p.id.clone()))
                .or_else(|| self.first_collecting(kind.category()).map(|p| p.id.clone()));
            let replacement = SealedIdentity {
                kind: kind.as_str().to_owned(),
                index,
                sealed: seal(
                    key.bytes(),
                    &identity_aad(&id, kind.as_str()),
                    new.value().as_bytes(),
                )?,
                purpose: collected_for,
            };
            // Its copies stored as fields take the identity's normalised form.
            let now = self.clock.now();
            let copies = stored
                .fields
                .iter()
                .filter(|f| {
                    f.category == kind.category() && purpose.is_none_or(|p| f.purpose == p.id)
                })
                .map(|f| {
                    let field = SealedField {
                        source: source.encode(),
                        collected_at: now,
                        ..f.clone()
                    };
                    self.seal_field(&id, &key, field, new.value())
                })
                .collect::<Result<Vec<_>, _>>()?;
            let audited = Audited {
                entries: vec![entry.clone()],
                chain: self.audit.chain(),
            };
            match self
                .store
                .replace_identity(
                    id,
                    old.map(|o| (o.kind.as_str(), &o.index)),
                    &replacement,
                    &copies,
                    audited,
                )
                .await
            {
                Ok(()) => {
                    return Ok(Corrected::Identity {
                        kind: kind.clone(),
                        old: was,
                        new: Zeroizing::new(new.value().to_owned()),
                    });
                }
                // Another correction came first (or the person was erased): read again.
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(VaultError::Store(StoreError::Conflict))
    }

    /// The first purpose whose data the vault stores that collects `category`: where a value
    /// with no purpose of its own is filed.
    fn first_collecting(&self, category: &str) -> Option<&Purpose> {
        self.declaration
            .purposes
            .iter()
            .find(|p| p.stored && p.categories.iter().any(|c| covers(c, category)))
    }

    /// Writes `value` into the fields of `category`: the one collected for `purpose` (or, with
    /// none, each one); when there is none and `add` is set, a new field for `purpose` or the
    /// first purpose that collects it.
    #[allow(clippy::too_many_arguments)] // one private step of `correct`, which names them all
    async fn correct_fields(
        &self,
        id: SubjectId,
        category: &str,
        value: &str,
        purpose: Option<&Purpose>,
        source: &FieldSource,
        add: bool,
        entry: AuditEntry,
    ) -> Result<(), VaultError> {
        let (stored, key) = self.load(id).await?;
        let now = self.clock.now();
        let mut targets: Vec<SealedField> = stored
            .fields
            .iter()
            .filter(|f| f.category == category && purpose.is_none_or(|p| f.purpose == p.id))
            .cloned()
            .collect();
        if targets.is_empty() && add {
            let first = match purpose {
                Some(p) => p,
                None => self
                    .first_collecting(category)
                    .ok_or_else(|| VaultError::UnknownCategory(category.to_owned()))?,
            };
            targets.push(SealedField {
                id: field_id(now),
                category: category.to_owned(),
                purpose: first.id.clone(),
                source: String::new(),
                collected_at: now,
                sealed: Vec::new(),
            });
        }
        let fields = targets
            .into_iter()
            .map(|target| {
                let field = SealedField {
                    source: source.encode(),
                    collected_at: now,
                    ..target
                };
                self.seal_field(&id, &key, field, value)
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Every field of the category at once, or none.
        let audited = Audited {
            entries: vec![entry],
            chain: self.audit.chain(),
        };
        match self.store.put_fields(id, &fields, audited).await {
            Ok(()) => Ok(()),
            // Erased meanwhile.
            Err(StoreError::Conflict) => Err(VaultError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// When a legal hold on `field` (collected for `purpose`) ends.
    fn hold_until(
        &self,
        purpose: &Purpose,
        field: &SealedField,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        match purpose.retention_for(&field.category)? {
            Retention::Period { max, after, .. } => {
                let from = if *after == Trigger::Collection {
                    field.collected_at
                } else {
                    now
                };
                Some(time_math::add(
                    from,
                    *max,
                    &self.declaration.rights.holidays,
                ))
            }
            _ => None,
        }
    }

    /// What erasing a subject would remove and keep, without changing anything.
    pub async fn plan_erasure(
        &self,
        access: &Access,
        id: SubjectId,
    ) -> Result<(Vec<String>, Vec<Retained>), VaultError> {
        let mut entry = access.entry("subject.erase-plan", self.clock.now());
        entry.subject = Some(id);
        let result = async {
            access.authorize(Operation::Erase, Reach::Everything)?;
            let (stored, _) = self.load(id).await?;
            Ok(self.plan(&stored, self.clock.now()))
        }
        .await;
        self.finish(entry, result, |(removed, retained), e| {
            e.categories = touched(removed, retained);
        })
        .await
    }

    /// The legal hold that keeps `field` through an erasure, with its purpose: the hold of the
    /// purpose it was collected for, else of a purpose with a hold that declares its category
    /// and may use what was collected for its purpose (`compatible_with`: seed 004's invoices
    /// keep the name and address the account collected).
    fn legal_hold_of(
        &self,
        field: &SealedField,
    ) -> Option<(&Purpose, &steward_policy::declaration::LegalHold)> {
        let own = self
            .declaration
            .purpose(&field.purpose)
            .and_then(|p| p.legal_hold.as_ref().map(|h| (p, h)));
        own.or_else(|| {
            self.declaration.purposes.iter().find_map(|p| {
                let hold = p.legal_hold.as_ref()?;
                (p.may_use_collected_for(&field.purpose)
                    && p.categories.iter().any(|c| covers(c, &field.category)))
                .then_some((p, hold))
            })
        })
    }

    fn plan(&self, stored: &SubjectRecord, now: OffsetDateTime) -> (Vec<String>, Vec<Retained>) {
        let mut removed: Vec<String> = stored
            .identities
            .iter()
            .filter_map(|i| IdentityKind::parse(&i.kind).ok())
            .map(|k| k.category().to_owned())
            .collect();
        let mut retained = Vec::new();
        for field in &stored.fields {
            match self.legal_hold_of(field) {
                Some((purpose, hold)) => retained.push(Retained {
                    category: field.category.clone(),
                    purpose: purpose.id.clone(),
                    reason: hold.reason.clone(),
                    until: self.hold_until(purpose, field, now),
                }),
                None => removed.push(field.category.clone()),
            }
        }
        removed.sort();
        removed.dedup();
        retained.sort_by(|a, b| (&a.category, &a.purpose).cmp(&(&b.category, &b.purpose)));
        retained.dedup_by(|a, b| a.category == b.category && a.purpose == b.purpose);
        (removed, retained)
    }

    /// Erases a subject: fields under a legal hold are re-sealed under a new hold key, then the
    /// subject key is destroyed and every identity and other field deleted. The vault's part
    /// only: every erasure goes through [`crate::ledger::Ledger::erase`], which first writes
    /// the erasure on the consent ledger so that permits follow it.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) async fn erase(
        &self,
        access: &Access,
        id: SubjectId,
    ) -> Result<ErasureReceipt, VaultError> {
        self.erase_many(access, &[id])
            .await?
            .pop()
            .unwrap_or(Err(VaultError::NotFound))
    }

    /// Erases many subjects as [`Vault::erase`] does each, with one write per database and
    /// one audit append for the lot (an entry per subject): for account erasures that come due
    /// together, and bulk erasure. Each id gets its receipt or its own error (`NotFound`, a
    /// key that does not open); a failure of the store fails the whole batch, which is
    /// written all or nothing per database, keys first.
    pub(crate) async fn erase_many(
        &self,
        access: &Access,
        ids: &[SubjectId],
    ) -> Result<Vec<Result<ErasureReceipt, VaultError>>, VaultError> {
        let now = self.clock.now();
        let mut results: Vec<Result<ErasureReceipt, VaultError>> = Vec::with_capacity(ids.len());
        let mut pending: Vec<usize> = Vec::new();
        match access.authorize(Operation::Erase, Reach::Everything) {
            Err(denied) => {
                for _ in ids {
                    results.push(Err(VaultError::Denied(denied.clone())));
                }
            }
            Ok(()) => {
                for _ in ids {
                    results.push(Err(VaultError::NotFound));
                }
                pending = (0..ids.len()).collect();
            }
        }
        // An erasure cut off earlier (SQLite's two files, a full disk) is finished first; one
        // that cannot be finished yet is left to the next call (a server tries every second).
        if !pending.is_empty() {
            let _ = self.finish_interrupted().await;
        }
        // Read, seal what the holds keep, erase; a subject whose fields changed between the
        // read and the erasure (a correction at that moment) is read again, so that nothing
        // written meanwhile escapes its hold. Each erasure's audit entry is written with it.
        let mut audited = vec![false; ids.len()];
        let mut failure = None;
        for round in 0..ERASE_ROUNDS {
            if pending.is_empty() {
                break;
            }
            let mut batch = Vec::new();
            let mut slots = Vec::new();
            for &slot in &pending {
                let id = ids[slot];
                match self.seal_holds(id, now).await {
                    Ok((receipt, erasure)) => {
                        slots.push(slot);
                        batch.push(erasure);
                        results[slot] = Ok(receipt);
                    }
                    // Erased already, with data a legal hold keeps: nothing more to erase,
                    // and the receipt says what stays and until when.
                    Err(VaultError::NotFound) => {
                        results[slot] = self
                            .held_receipt(id, now)
                            .await?
                            .ok_or(VaultError::NotFound);
                    }
                    Err(e) => results[slot] = Err(e),
                }
            }
            pending.clear();
            if batch.is_empty() {
                break;
            }
            let entries = slots
                .iter()
                .map(|&slot| {
                    let mut entry = access.entry("subject.erase", now);
                    entry.subject = Some(ids[slot]);
                    if let Ok(r) = &results[slot] {
                        entry.categories = touched(&r.removed, &r.retained);
                    }
                    entry
                })
                .collect();
            let audit = Audited {
                entries,
                chain: self.audit.chain(),
            };
            match self.store.erase_subjects(&batch, audit).await {
                Ok(states) => {
                    for (slot, state) in slots.into_iter().zip(states) {
                        match state {
                            Erased::Erased => audited[slot] = true,
                            Erased::Missing => results[slot] = Err(VaultError::NotFound),
                            Erased::Changed if round + 1 < ERASE_ROUNDS => pending.push(slot),
                            Erased::Changed => {
                                results[slot] = Err(VaultError::Store(StoreError::Conflict));
                            }
                        }
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        // The entries not written with an erasure: refusals, subjects not found, failures.
        let entries = ids
            .iter()
            .zip(&results)
            .zip(&audited)
            .filter(|(_, audited)| !**audited)
            .map(|((id, result), _)| {
                let mut entry = access.entry("subject.erase", now);
                entry.subject = Some(*id);
                match (result, &failure) {
                    (Ok(r), None) => entry.categories = touched(&r.removed, &r.retained),
                    (Ok(_), Some(_)) => {
                        entry.outcome = Outcome::Failed;
                        entry.code = Some("store-failed".to_owned());
                    }
                    (Err(e), _) => refused(&mut entry, e),
                }
                entry
            })
            .collect();
        self.audit
            .record_all(&self.store, entries)
            .await
            .map_err(VaultError::Audit)?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(results),
        }
    }

    /// Finishes the erasures a failure cut off between the key's destruction and the rows'
    /// deletion (SQLite keeps them in two files: see [`VaultStore::finish_interrupted`])
    /// and audits each as `subject.erase`, done by Steward, "finished after an interruption".
    /// A server calls it every second; every erasure calls it first. Returns how many.
    ///
    /// # Errors
    /// [`VaultError::Store`] when the store cannot finish them yet (the disk still full): they
    /// are finished, and audited with them, by a later call.
    pub async fn finish_interrupted(&self) -> Result<usize, VaultError> {
        let steward = Access::new(crate::access::Principal::steward("store"));
        let mut entry = steward.entry("subject.erase", self.clock.now());
        entry.detail = Some("finished after an interruption".to_owned());
        let audit = Audited {
            entries: vec![entry],
            chain: self.audit.chain(),
        };
        Ok(self.store.finish_interrupted(audit).await?.len())
    }

    /// What erasing `id` removes and keeps (its receipt), and its held fields re-sealed under
    /// a new hold key. Reads only.
    async fn seal_holds(
        &self,
        id: SubjectId,
        now: OffsetDateTime,
    ) -> Result<(ErasureReceipt, Erasure), VaultError> {
        let (stored, key) = self.load(id).await?;
        let (removed, retained) = self.plan(&stored, now);
        let hold_key = SubjectKey::generate()?;
        let mut held = Vec::new();
        for field in &stored.fields {
            let Some((purpose, legal_hold)) = self.legal_hold_of(field) else {
                continue;
            };
            let view = self.open_field(&id, key.bytes(), field, "field")?;
            let label = field_label(field);
            let aad = Aad {
                domain: "held",
                subject: id.as_bytes(),
                field: &label,
                key_version: SUBJECT_KEY_VERSION,
            };
            held.push(HeldField {
                field: SealedField {
                    sealed: seal(hold_key.bytes(), &aad, view.value.as_bytes())?,
                    ..field.clone()
                },
                reason: legal_hold.reason.clone(),
                until: self.hold_until(purpose, field, now),
            });
        }
        let hold = if held.is_empty() {
            None
        } else {
            Some(Hold {
                key: self
                    .keyring
                    .wrap_subject_key(&hold_binding(&id), &hold_key)?,
                fields: held,
            })
        };
        let erasure = Erasure {
            subject: id,
            fields: stored.fields.iter().map(|f| f.id).collect(),
            hold,
        };
        Ok((receipt(id, now, removed, retained), erasure))
    }

    /// The receipt of an erasure asked for a subject erased already whose data a legal hold
    /// keeps: nothing removed, what stays and until when. `None` when nothing is held.
    async fn held_receipt(
        &self,
        id: SubjectId,
        now: OffsetDateTime,
    ) -> Result<Option<ErasureReceipt>, VaultError> {
        let Some(hold) = self.store.held(id).await? else {
            return Ok(None);
        };
        let mut retained: Vec<Retained> = hold
            .fields
            .iter()
            .map(|h| Retained {
                category: h.field.category.clone(),
                purpose: h.field.purpose.clone(),
                reason: h.reason.clone(),
                until: h.until,
            })
            .collect();
        retained.sort_by(|a, b| (&a.category, &a.purpose).cmp(&(&b.category, &b.purpose)));
        retained.dedup_by(|a, b| a.category == b.category && a.purpose == b.purpose);
        Ok(Some(receipt(id, now, Vec::new(), retained)))
    }

    /// Ends the legal holds whose period is over at `now` (the seam the retention sweeps
    /// schedule): their fields are deleted, and a subject with nothing left under hold loses
    /// its hold key and kept identities — the crypto-shredding the erasure began. At most
    /// `limit` subjects a call; one audit entry per subject whose hold ended.
    pub async fn end_holds(
        &self,
        limit: u32,
    ) -> Result<crate::vault::storage::HoldsEnded, VaultError> {
        self.end_holds_before(self.clock.now(), limit).await
    }

    /// [`Vault::end_holds`] for the holds over at `now` (a retention sweep's date, never later
    /// than the clock's).
    pub async fn end_holds_before(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<crate::vault::storage::HoldsEnded, VaultError> {
        let access = Access::new(crate::Principal::steward("retention"));
        let mut entry = access.entry("hold.end", now);
        entry.detail = Some(
            "the legal hold's period is over: the data it kept past it destroyed (and its key, once nothing is left)".to_owned(),
        );
        let audit = Audited {
            entries: vec![entry],
            chain: self.audit.chain(),
        };
        // Each subject's entry is written with the deletion; the summary after it.
        let ended = self.store.end_holds(now, limit, audit).await?;
        if ended.fields > 0 {
            let mut summary = access.entry("hold.end", now);
            summary.detail = Some(format!(
                "{} held fields past their hold deleted; {} subjects with nothing left held",
                ended.fields,
                ended.subjects.len()
            ));
            self.audit
                .record(&self.store, summary)
                .await
                .map_err(VaultError::Audit)?;
        }
        Ok(ended)
    }

    /// Reads the fields kept after a subject's erasure (for the law's purposes only).
    pub async fn read_held(
        &self,
        access: &Access,
        id: SubjectId,
    ) -> Result<Vec<FieldView>, VaultError> {
        let mut entry = access.entry("subject.read-held", self.clock.now());
        entry.subject = Some(id);
        let result = async {
            access.authorize(Operation::Export, Reach::Everything)?;
            self.open_held(id).await
        }
        .await;
        self.finish(entry, result, |fields, e| {
            e.categories = sorted(fields.iter().map(|f| f.category.clone()));
        })
        .await
    }

    async fn open_held(&self, id: SubjectId) -> Result<Vec<FieldView>, VaultError> {
        let Some(hold) = self.store.held(id).await? else {
            return Ok(Vec::new());
        };
        let key = self
            .keyring
            .unwrap_subject_key(&hold_binding(&id), &hold.key)
            .map_err(|_| VaultError::KeyUnreadable {
                table: "legal hold",
                id,
                generation: hold.key.kek_version,
            })?;
        hold.fields
            .iter()
            .map(|h| self.open_field(&id, key.bytes(), &h.field, "held"))
            .collect()
    }
}

/// An erasure receipt with its digest: SHA-256 over the subject, the time, what was removed
/// and what was kept, so that an altered receipt is seen as such.
fn receipt(
    id: SubjectId,
    now: OffsetDateTime,
    removed: Vec<String>,
    retained: Vec<Retained>,
) -> ErasureReceipt {
    let body = serde_json::json!({ "subject": id, "erased_at": now.unix_timestamp(), "removed": removed, "retained": retained });
    let mut digest = String::with_capacity(64);
    for byte in Sha256::digest(body.to_string().as_bytes()) {
        digest.push_str(&format!("{byte:02x}"));
    }
    ErasureReceipt {
        subject: id,
        erased_at: now,
        removed,
        retained,
        digest,
    }
}

fn sorted(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = items.collect();
    v.sort();
    v.dedup();
    v
}

/// Marks `entry` as refused (`Denied`) or failed, with the error's code.
fn refused(entry: &mut AuditEntry, e: &VaultError) {
    entry.outcome = if matches!(e, VaultError::Denied(_)) {
        Outcome::Denied
    } else {
        Outcome::Failed
    };
    entry.code = Some(e.code().to_owned());
}

fn touched(removed: &[String], retained: &[Retained]) -> Vec<String> {
    sorted(
        removed
            .iter()
            .cloned()
            .chain(retained.iter().map(|r| r.category.clone())),
    )
}

fn input_categories(input: &NewSubjectInput) -> Vec<String> {
    sorted(
        input
            .identities
            .iter()
            .map(|i| i.kind().category().to_owned())
            .chain(input.fields.iter().map(|(c, _)| c.clone())),
    )
}

impl SubjectView {
    /// The categories shown (identities by their category), sorted.
    pub fn categories(&self) -> Vec<String> {
        sorted(
            self.identities
                .iter()
                .filter_map(|(k, _)| IdentityKind::parse(k).ok())
                .map(|k| k.category().to_owned())
                .chain(self.fields.iter().map(|f| f.category.clone())),
        )
    }
}

/// Hold keys are bound to the subject with a distinct label, so a hold key can never pass for
/// the subject's own key.
pub(crate) fn hold_binding(id: &SubjectId) -> Vec<u8> {
    let mut out = b"hold:".to_vec();
    out.extend_from_slice(id.as_bytes());
    out
}
