//! What a storage backend must do. A store only ever sees ciphertext, blind indexes, wrapped
//! keys and non-personal metadata (categories, purposes, times); the vault seals and opens.
//!
//! Subject keys live apart from the data (a separate SQLite file, a separate PostgreSQL
//! schema), so a backup of the data alone holds no key.

use std::future::Future;

use steward_crypto::WrappedKey;
use time::OffsetDateTime;
use uuid::Uuid;

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

/// A data-subject request as stored. The person's address and any new values they asked for
/// are sealed (`contact`, `payload`); `body` is JSON with no personal data in it (kind details,
/// verification state, deadlines, results, notifications, history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Its id.
    pub id: Uuid,
    /// Its kind (`access`, `erasure` …).
    pub kind: String,
    /// Where it is in its lifecycle.
    pub status: String,
    /// The subject it concerns, once known.
    pub subject: Option<SubjectId>,
    /// When it was received.
    pub received_at: OffsetDateTime,
    /// When it must be answered.
    pub due_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// Bumped on every change, so two writers never overwrite each other.
    pub revision: i64,
    /// The person's e-mail address, sealed.
    pub contact: Vec<u8>,
    /// New values (rectification), sealed.
    pub payload: Option<Vec<u8>>,
    /// Everything else, as JSON.
    pub body: String,
}

/// Which requests to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// Only these statuses (any when empty).
    pub statuses: Vec<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only those due before this instant.
    pub due_before: Option<OffsetDateTime>,
    /// Only those received before this instant.
    pub received_before: Option<OffsetDateTime>,
    /// Only this subject's.
    pub subject: Option<SubjectId>,
}

/// Work to do later, or to retry until it succeeds: a mail, a webhook, a delayed erasure.
/// Its payload is JSON with no personal data (ids, template names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// What to do (`mail`, `webhook`, `erase`).
    pub kind: String,
    /// The request it belongs to.
    pub request: Option<Uuid>,
    /// Not before this instant.
    pub run_at: OffsetDateTime,
    /// Its parameters.
    pub payload: String,
}

/// A queued job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its id.
    pub id: i64,
    /// What to do.
    pub kind: String,
    /// The request it belongs to.
    pub request: Option<Uuid>,
    /// Not before this instant.
    pub run_at: OffsetDateTime,
    /// How many times it was claimed.
    pub attempts: u32,
    /// Its parameters.
    pub payload: String,
    /// Why the last attempt failed (no personal data).
    pub last_error: Option<String>,
    /// When it succeeded.
    pub done_at: Option<OffsetDateTime>,
}

/// What a store can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// An identity already belongs to another subject (the database's unique index said so).
    #[error("this {kind} already belongs to another subject")]
    Duplicate {
        /// The identity kind.
        kind: String,
    },
    /// The backend failed.
    #[error("the database failed: {0}")]
    Backend(String),
}

/// A storage backend. Every method is atomic: it does all its work or none.
pub trait Store: Clone + Send + Sync + 'static {
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

    /// Writes subjects: all of them, or none (a duplicate identity fails the whole batch).
    fn insert_subjects(
        &self,
        subjects: &[SubjectRecord],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The subject an identity's blind index belongs to.
    fn find_subject(
        &self,
        kind: &str,
        index: &[u8; 32],
    ) -> impl Future<Output = Result<Option<SubjectId>, StoreError>> + Send;

    /// Everything stored for a subject (its key included).
    fn load_subject(
        &self,
        id: SubjectId,
    ) -> impl Future<Output = Result<Option<SubjectRecord>, StoreError>> + Send;

    /// Inserts a field, or replaces the field with the same id.
    fn put_field(
        &self,
        subject: SubjectId,
        field: &SealedField,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Erases subjects: destroys their keys first (crypto-shredding), then deletes their
    /// identities and fields, keeping each `hold` given; all or nothing, keys before rows.
    /// For each subject, `false` when there was no such subject.
    fn erase_subjects(
        &self,
        batch: &[(SubjectId, Option<Hold>)],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// Fields held after erasure, with their wrapped hold key.
    fn held(&self, id: SubjectId) -> impl Future<Output = Result<Option<Hold>, StoreError>> + Send;

    /// Stores a new API key (its hash, never the key).
    fn insert_api_key(
        &self,
        key: &crate::api_key::ApiKeyRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The API key with this prefix.
    fn find_api_key(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Option<crate::api_key::ApiKeyRecord>, StoreError>> + Send;

    /// Every API key, oldest first.
    fn list_api_keys(
        &self,
    ) -> impl Future<Output = Result<Vec<crate::api_key::ApiKeyRecord>, StoreError>> + Send;

    /// Revokes an API key at `at`; `false` when there is no such key.
    fn revoke_api_key(
        &self,
        prefix: &str,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

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

    /// Appends entries to the audit chain in one transaction: reads the sealed head under a
    /// write lock (so concurrent writers, even in other processes, never fork the chain), chains
    /// the entries with `chain`, writes them, the checkpoints they cross and the new head.
    fn append_audit(
        &self,
        entries: Vec<crate::audit::AuditEntry>,
        chain: &crate::audit::AuditChain,
    ) -> impl Future<Output = Result<crate::audit::Seal, StoreError>> + Send;

    /// The sealed head of the audit chain.
    fn audit_head(
        &self,
    ) -> impl Future<Output = Result<Option<crate::audit::Seal>, StoreError>> + Send;

    /// The highest sequence number stored (0 when none).
    fn audit_last_seq(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Up to `limit` entries with `after < seq <= through`, in order.
    fn audit_entries(
        &self,
        after: u64,
        through: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<crate::audit::SealedEntry>, StoreError>> + Send;

    /// The checkpoints with `after < seq <= through`, in order.
    fn audit_checkpoints(
        &self,
        after: u64,
        through: u64,
    ) -> impl Future<Output = Result<Vec<crate::audit::Seal>, StoreError>> + Send;

    /// Up to `limit` entries after `after` that pass `filter`, in order.
    fn audit_search(
        &self,
        filter: &crate::audit::AuditFilter,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<crate::audit::SealedEntry>, StoreError>> + Send;

    /// Stores a new staff account; `Duplicate` when the username is taken.
    fn insert_staff(
        &self,
        staff: &crate::staff::StaffRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The staff account with this username.
    fn find_staff(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Option<crate::staff::StaffRecord>, StoreError>> + Send;

    /// Every staff account, by username.
    fn list_staff(
        &self,
    ) -> impl Future<Output = Result<Vec<crate::staff::StaffRecord>, StoreError>> + Send;

    /// Writes a staff account's changeable state (password, TOTP, failures, lock, disabled).
    fn update_staff(
        &self,
        staff: &crate::staff::StaffRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a session.
    fn insert_session(
        &self,
        session: &crate::staff::SessionRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The session with this token hash.
    fn find_session(
        &self,
        hash: &[u8; 32],
    ) -> impl Future<Output = Result<Option<crate::staff::SessionRecord>, StoreError>> + Send;

    /// Records a session's last use.
    fn touch_session(
        &self,
        hash: &[u8; 32],
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Ends a session; `false` when there was none.
    fn delete_session(
        &self,
        hash: &[u8; 32],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Ends every session of a staff member.
    fn delete_sessions_of(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Appends events to the consent ledger in one transaction: reads the sealed head under a
    /// write lock, chains the events with `chain`, writes them and the new head.
    fn append_consent(
        &self,
        events: Vec<crate::consent::ConsentEvent>,
        chain: &crate::consent::LedgerChain,
    ) -> impl Future<Output = Result<Vec<crate::consent::SealedEvent>, StoreError>> + Send;

    /// The sealed head of the consent ledger.
    fn consent_head(
        &self,
    ) -> impl Future<Output = Result<Option<crate::audit::Seal>, StoreError>> + Send;

    /// Up to `limit` consent events after `after`, in order.
    fn consent_events(
        &self,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<crate::consent::SealedEvent>, StoreError>> + Send;

    /// Every consent event of these parties, in order.
    fn consent_of(
        &self,
        parties: &[crate::consent::Party],
    ) -> impl Future<Output = Result<Vec<crate::consent::SealedEvent>, StoreError>> + Send;

    /// Every `link` event that links a browser to `subject`.
    fn consent_links(
        &self,
        subject: SubjectId,
    ) -> impl Future<Output = Result<Vec<crate::consent::SealedEvent>, StoreError>> + Send;

    /// Every policy version served, oldest first.
    fn policy_versions(
        &self,
    ) -> impl Future<Output = Result<Vec<crate::ledger::PolicyVersion>, StoreError>> + Send;

    /// Records a new policy version; when it must be accepted, queues a notice to every
    /// subject in the same transaction.
    fn add_policy_version(
        &self,
        version: &crate::ledger::PolicyVersion,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Up to `limit` subjects whose notice of `version` is not sent yet.
    fn policy_notices(
        &self,
        version: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SubjectId>, StoreError>> + Send;

    /// Marks a notice sent.
    fn mark_policy_notice(
        &self,
        version: &str,
        subject: SubjectId,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a new request and queues its jobs, in one transaction.
    fn insert_request(
        &self,
        request: &RequestRecord,
        jobs: &[NewJob],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces a request whose stored revision is `expected` (`request.revision` is the new
    /// one) and queues `jobs`, in one transaction; `false` (and nothing written) when another
    /// writer changed it first.
    fn update_request(
        &self,
        request: &RequestRecord,
        expected: i64,
        jobs: &[NewJob],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The request with this id.
    fn request(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<RequestRecord>, StoreError>> + Send;

    /// Up to `limit` requests that pass `filter`, the soonest due first.
    fn list_requests(
        &self,
        filter: &RequestFilter,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RequestRecord>, StoreError>> + Send;

    /// Queues jobs.
    fn enqueue_jobs(&self, jobs: &[NewJob]) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Claims up to `limit` jobs due at `now` that nobody holds, holding them until `lease`
    /// (another process skips them meanwhile; a crashed holder's jobs come back after it).
    fn claim_jobs(
        &self,
        now: OffsetDateTime,
        lease: OffsetDateTime,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send;

    /// Marks a job done.
    fn finish_job(
        &self,
        id: i64,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Puts a failed job back to run again at `run_at`, with why it failed.
    fn retry_job(
        &self,
        id: i64,
        run_at: OffsetDateTime,
        error: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every job of a request, oldest first.
    fn jobs_of(&self, request: Uuid) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send;
}
