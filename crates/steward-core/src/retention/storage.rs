//! What the retention sweeps need from a store: the groups of records a rule covers, how many
//! of a group are due, removing them a batch at a time (each batch with its audit entry, in one
//! transaction), the people left with nothing, finished requests, and the sweep's lease.

use std::future::Future;

use time::OffsetDateTime;

use crate::requests::storage::{Job, RequestStore};
use crate::storage::StoreError;
use crate::subject::SubjectId;
use crate::vault::storage::Audited;

/// Which vault table a group is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// `fields`: sealed values, keyed by category.
    Fields,
    /// `identities`: blind indexes and sealed values, keyed by identity kind.
    Identities,
}

/// Records of one vault table collected for one purpose and of one category (or identity
/// kind): the unit a retention rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Group {
    /// The table.
    pub table: Table,
    /// The purpose they were collected for; `None` for identities stored before Steward kept
    /// it.
    pub purpose: Option<String>,
    /// The category (`fields`) or identity kind (`identities`).
    pub key: String,
}

/// The event a record's period counts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The record was collected (a field's `collected_at`; an identity's subject's creation).
    Collected,
    /// The person's last recorded activity (data written, a sign-in the application reported;
    /// their creation when nothing else is recorded).
    Inactive,
    /// The person's account was closed (a `close` on the consent ledger not followed by a
    /// `reopen`).
    Closed,
    /// The person withdrew consent to this purpose (a `withdraw` on the ledger not followed by
    /// a new `grant`).
    Withdrawn(String),
    /// The contract with the person ended (as the application reported).
    ContractEnded,
}

/// Which records are due: those whose `event` happened at or before `before` and, when a
/// legal hold of another purpose also keeps them, that were collected at or before
/// `collected_before` too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The event the period counts from.
    pub event: Event,
    /// The latest time of it that makes a record due.
    pub before: OffsetDateTime,
    /// A second bound on the collection time (a legal hold's own period), if any.
    pub collected_before: Option<OffsetDateTime>,
}

/// How many records are due, and when the oldest and newest of them were collected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DueCount {
    /// How many.
    pub count: u64,
    /// The earliest collection time among them.
    pub earliest: Option<OffsetDateTime>,
    /// The latest.
    pub latest: Option<OffsetDateTime>,
}

impl DueCount {
    /// Both counts together.
    pub fn merge(self, other: Self) -> Self {
        let pick =
            |a: Option<OffsetDateTime>, b: Option<OffsetDateTime>, f: fn(_, _) -> _| match (a, b) {
                (Some(a), Some(b)) => Some(f(a, b)),
                (a, b) => a.or(b),
            };
        Self {
            count: self.count + other.count,
            earliest: pick(self.earliest, other.earliest, std::cmp::min),
            latest: pick(self.latest, other.latest, std::cmp::max),
        }
    }
}

/// What removing a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// How many records went.
    pub count: u64,
    /// The people they belonged to who were left with no identity and no field (each once).
    pub subjects: Vec<SubjectId>,
}

/// The retention sweeps' storage, over the requests'.
pub trait RetentionStore: RequestStore {
    /// Every group of vault records present (distinct purpose and category of `fields`,
    /// purpose and kind of `identities`).
    fn retention_groups(&self) -> impl Future<Output = Result<Vec<Group>, StoreError>> + Send;

    /// How many records of `group` are `due`.
    fn count_due(
        &self,
        group: &Group,
        due: &Due,
    ) -> impl Future<Output = Result<DueCount, StoreError>> + Send;

    /// Deletes up to `limit` records of `group` that are `due`, with `audit`'s entries (their
    /// details filled by the caller with the count it asked for; the count removed replaces
    /// `{count}`) in the same transaction. A batch is written whole or not at all.
    fn remove_due(
        &self,
        group: &Group,
        due: &Due,
        limit: u32,
        audit: Audited<'_>,
    ) -> impl Future<Output = Result<Removed, StoreError>> + Send;

    /// Records the person's activity at `at`; with `contract_ended`, also that their contract
    /// ended then (`Some(true)`), or runs again (`Some(false)`). `false` when there is no such
    /// subject.
    fn record_activity(
        &self,
        subject: SubjectId,
        at: OffsetDateTime,
        contract_ended: Option<bool>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Finished requests (completed, denied, expired) last changed at or before `before` with
    /// no job left to run; with `with_contact`, only those still holding the person's address.
    fn count_finished_requests(
        &self,
        before: OffsetDateTime,
        with_contact: bool,
    ) -> impl Future<Output = Result<DueCount, StoreError>> + Send;

    /// The consent events whose proof is no longer kept: every event of a (party, purpose)
    /// whose last event is a withdrawal made at or before `before`, for one of `purposes`, of a
    /// party no link joins to another, still holding its personal part (and recorded with its
    /// digest).
    fn count_consent_proofs(
        &self,
        before: OffsetDateTime,
        purposes: &[String],
    ) -> impl Future<Output = Result<DueCount, StoreError>> + Send;

    /// Up to `limit` of those events, in order: each one's sequence number and the digest of
    /// its personal part.
    fn consent_proofs_due(
        &self,
        before: OffsetDateTime,
        purposes: &[String],
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(u64, [u8; 32])>, StoreError>> + Send;

    /// Removes the personal part (party, address hash, user agent) of each event `seals`
    /// names, recording the ledger key's seal of the removal
    /// ([`crate::consent::LedgerChain::redaction`]), with `audit` in the same transaction;
    /// the chain still verifies. Returns how many.
    fn redact_consent(
        &self,
        seals: &[(u64, [u8; 32])],
        audit: Audited<'_>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Forgets the sealed address (and new values) of up to `limit` such requests, with
    /// `audit` in the same transaction; returns how many.
    fn forget_request_contacts(
        &self,
        before: OffsetDateTime,
        limit: u32,
        audit: Audited<'_>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Deletes up to `limit` such requests and their finished jobs, with `audit` in the same
    /// transaction; returns how many.
    fn delete_finished_requests(
        &self,
        before: OffsetDateTime,
        limit: u32,
        audit: Audited<'_>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// How many held fields' holds end at or before `before`, and when they were collected.
    fn count_held_due(
        &self,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<DueCount, StoreError>> + Send;

    /// Makes sure the next scheduled sweep is queued (one at most, across processes): queues
    /// one to run at `run_at` unless one is pending.
    fn schedule_sweep(
        &self,
        run_at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the sweep lease until `lease` when nobody holds it: the pending sweep's job (due
    /// at `now`, or any time with `any_time`), or `None` when another process holds it or
    /// none is due. Only one process sweeps at a time.
    fn claim_sweep(
        &self,
        now: OffsetDateTime,
        lease: OffsetDateTime,
        any_time: bool,
    ) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send;

    /// Gives the lease of sweep job `id` back without finishing it (a sweep run by hand).
    fn release_sweep(&self, id: i64) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Extends the lease of sweep job `id` to `until` (a long sweep, still alive).
    fn renew_sweep(
        &self,
        id: i64,
        until: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
