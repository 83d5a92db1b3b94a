//! What the vault needs stored: subjects' sealed records and wrapped keys, legal holds, root
//! secrets and key rotation. Subject keys live apart from the data (a separate SQLite file, a
//! separate PostgreSQL schema), so a backup of the data alone holds no key.

use std::future::Future;

use steward_crypto::WrappedKey;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::access::storage::AccessStore;
use crate::audit::storage::AuditStore;
use crate::storage::StoreError;
use crate::subject::SubjectId;

/// An identity as stored: its kind, blind index and sealed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedIdentity {
    /// The identity kind's name.
    pub kind: String,
    /// HMAC of the normalised value under the kind's index key.
    pub index: [u8; 32],
    /// The normalised value, sealed under the subject key.
    pub sealed: Vec<u8>,
    /// The purpose it was collected for; `None` for identities stored before Steward kept it
    /// (every purpose declaring the category sees those).
    pub purpose: Option<String>,
}

/// A field as stored: category, purpose of collection, provenance and sealed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedField {
    /// Stable id of the field.
    pub id: Uuid,
    /// Its data category (a taxonomy key).
    pub category: String,
    /// The purpose it was collected for.
    pub purpose: String,
    /// Where it came from (`FieldSource::encode`).
    pub source: String,
    /// When it was collected.
    pub collected_at: OffsetDateTime,
    /// The value, sealed.
    pub sealed: Vec<u8>,
}

/// A subject's sealed record: what is written, and what is read back.
#[derive(Debug, Clone)]
pub struct SubjectRecord {
    /// Its id.
    pub id: SubjectId,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// Its data key, wrapped.
    pub key: WrappedKey,
    /// Its identities.
    pub identities: Vec<SealedIdentity>,
    /// Its fields.
    pub fields: Vec<SealedField>,
}

/// Fields kept through an erasure because the law requires them, sealed under their own key.
#[derive(Debug, Clone)]
pub struct Hold {
    /// The hold key, wrapped; destroyed when the hold ends.
    pub key: WrappedKey,
    /// The fields, re-sealed under the hold key.
    pub fields: Vec<HeldField>,
}

/// One subject to erase: the fields the erasure read (ids) and what a legal hold keeps of
/// them.
#[derive(Debug, Clone)]
pub struct Erasure {
    /// The subject.
    pub subject: SubjectId,
    /// The ids of every field the erasure read.
    pub fields: Vec<Uuid>,
    /// What a legal hold keeps, re-sealed under a new hold key.
    pub hold: Option<Hold>,
}

/// What became of one subject of [`VaultStore::erase_subjects`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erased {
    /// Erased.
    Erased,
    /// There was no such subject (erased already).
    Missing,
    /// Its fields changed since they were read: untouched.
    Changed,
}

/// One held field.
#[derive(Debug, Clone)]
pub struct HeldField {
    /// The field, sealed under the hold key.
    pub field: SealedField,
    /// Why it is kept.
    pub reason: String,
    /// When the hold ends (`None`: no end declared).
    pub until: Option<OffsetDateTime>,
}

/// What ending holds removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoldsEnded {
    /// Held fields deleted.
    pub fields: u64,
    /// Subjects with nothing left under hold (their hold key and kept identities are gone).
    pub subjects: Vec<SubjectId>,
}

/// The two tables of per-subject keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTable {
    /// Subjects' data keys.
    Subject,
    /// Keys of fields held after erasure.
    Hold,
}

impl KeyTable {
    /// The table's name in the key store.
    pub fn table(self) -> &'static str {
        match self {
            Self::Subject => "subject_keys",
            Self::Hold => "hold_keys",
        }
    }
}

/// Audit entries written in the same transaction as the change they record, chained with
/// `chain`: the change and its record are kept both or neither (GDPR Art. 5(2),
/// accountability), so that no change outlives a failed write of its entry.
#[derive(Debug)]
pub struct Audited<'a> {
    /// The entries, in order.
    pub entries: Vec<crate::audit::AuditEntry>,
    /// The chain they join.
    pub chain: &'a crate::audit::AuditChain,
}

/// The vault's storage; it writes its audit entries and checks its keys through the stores
/// it builds on.
pub trait VaultStore: AuditStore + AccessStore {
    /// A root secret wrapped by the master key (`index`), if one was stored.
    fn root(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<WrappedKey>, StoreError>> + Send;

    /// Stores a root secret unless one exists; returns the one that is stored.
    fn put_root(
        &self,
        name: &str,
        key: &WrappedKey,
    ) -> impl Future<Output = Result<WrappedKey, StoreError>> + Send;

    /// Writes subjects and the audit entries that record them: all of them, or none (a
    /// duplicate identity fails the whole batch). Each subject's key is durable before its
    /// data, so that no data is ever stored that its key cannot open.
    fn insert_subjects(
        &self,
        subjects: &[SubjectRecord],
        audit: Audited<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The subject an identity's blind index belongs to, and the purpose the identity was
    /// collected for (`None` for one stored before Steward kept it).
    fn find_subject(
        &self,
        kind: &str,
        index: &[u8; 32],
    ) -> impl Future<Output = Result<Option<(SubjectId, Option<String>)>, StoreError>> + Send;

    /// Which of `indexes` (blind indexes of identities of `kind`) belong to someone in the
    /// vault: an import skips the people already there before it writes, rather than failing
    /// a batch and trying each of them alone. The answer holds the known indexes, in no order.
    fn known_identities(
        &self,
        kind: &str,
        indexes: &[[u8; 32]],
    ) -> impl Future<Output = Result<Vec<[u8; 32]>, StoreError>> + Send;

    /// Everything stored for a subject (its key included).
    fn load_subject(
        &self,
        id: SubjectId,
    ) -> impl Future<Output = Result<Option<SubjectRecord>, StoreError>> + Send;

    /// Inserts fields, or replaces the fields with the same ids, all or none, with the subject
    /// locked, and writes `audit` with them; [`StoreError::Conflict`] when the subject is gone
    /// (erased meanwhile).
    fn put_fields(
        &self,
        subject: SubjectId,
        fields: &[SealedField],
        audit: Audited<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Erases subjects: destroys their keys first (crypto-shredding), then deletes their
    /// identities and fields, keeping each `hold` given; keys before rows. Each subject is
    /// locked against writes and erased only if its fields are still those the erasure read
    /// (`Erasure::fields`), so that nothing written meanwhile escapes its hold; otherwise it
    /// is left untouched as [`Erased::Changed`], to be read again. `audit.entries[i]` records
    /// `batch[i]`'s erasure and is written, in the transaction that deletes its rows, only if
    /// it is [`Erased::Erased`].
    fn erase_subjects(
        &self,
        batch: &[Erasure],
        audit: Audited<'_>,
    ) -> impl Future<Output = Result<Vec<Erased>, StoreError>> + Send;

    /// Finishes the erasures a failure cut off between two commits (SQLite's, whose key and
    /// rows are in two files: see `steward_store`'s `subjects` module) and returns the subjects
    /// whose erasure it finished. `audit.entries[0]` is the entry to write for each, its
    /// `subject` set, in the transaction that deletes the rows: an erasure finished is an
    /// erasure recorded. Nothing on a backend that commits in one transaction. A failure (the
    /// disk still full) leaves the work for the next call.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when a database cannot be read or written.
    fn finish_interrupted(
        &self,
        audit: Audited<'_>,
    ) -> impl Future<Output = Result<Vec<SubjectId>, StoreError>> + Send;

    /// Fields held after erasure, with their wrapped hold key.
    fn held(&self, id: SubjectId) -> impl Future<Output = Result<Option<Hold>, StoreError>> + Send;

    /// Up to `limit` keys of `table` wrapped by a master key generation older than `version`,
    /// with the id they are bound to (subject id).
    fn keys_to_rewrap(
        &self,
        table: KeyTable,
        version: u32,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(SubjectId, WrappedKey)>, StoreError>> + Send;

    /// How many keys of `table` are wrapped by a generation older than `version`.
    fn count_keys_to_rewrap(
        &self,
        table: KeyTable,
        version: u32,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Replaces wrapped keys (one transaction).
    fn rewrap_keys(
        &self,
        table: KeyTable,
        keys: &[(SubjectId, WrappedKey)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces a root secret's wrapping.
    fn replace_root(
        &self,
        name: &str,
        key: &WrappedKey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How many subjects are stored.
    fn count_subjects(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Replaces `subject`'s identity `old` (kind, blind index) by `new`, or adds `new` when
    /// the subject has none of its kind, in one transaction with the subject locked;
    /// [`StoreError::Duplicate`] when another subject holds `new`, [`StoreError::Conflict`]
    /// when `old` is no longer there (or one of its kind was added meanwhile) or the subject is
    /// gone. `fields` (the identity's copies stored as fields, by id) are replaced and `audit`
    /// written in the same transaction. Nothing changes on an error.
    fn replace_identity(
        &self,
        subject: SubjectId,
        old: Option<(&str, &[u8; 32])>,
        new: &SealedIdentity,
        fields: &[SealedField],
        audit: Audited<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The erased subject whose legal hold keeps data and who had identity `kind` with blind
    /// index `index` (the newest, should there be several).
    fn find_held_subject(
        &self,
        kind: &str,
        index: &[u8; 32],
    ) -> impl Future<Output = Result<Option<SubjectId>, StoreError>> + Send;

    /// Deletes the held fields whose hold ended before `before`, for up to `limit` subjects;
    /// a subject with nothing left under hold loses its kept identities and its hold key.
    /// `audit.entries[0]`, its `subject` set, is written for each subject whose held data was
    /// destroyed, in the transaction that destroys it.
    fn end_holds(
        &self,
        before: OffsetDateTime,
        limit: u32,
        audit: Audited<'_>,
    ) -> impl Future<Output = Result<HoldsEnded, StoreError>> + Send;
}
