//! What the audit trail needs stored: its entries, checkpoints and sealed head.

use std::future::Future;

use crate::audit::{AuditChain, AuditEntry, AuditFilter, Seal, SealedEntry};
use crate::storage::{Backend, StoreError};

/// The audit trail's storage (an append-only chain).
pub trait AuditStore: Backend {
    /// Appends entries to the audit chain in one transaction: reads the sealed head under a
    /// write lock (so concurrent writers, even in other processes, never fork the chain), chains
    /// the entries with `chain`, writes them, the checkpoints they cross and the new head.
    fn append_audit(
        &self,
        entries: Vec<AuditEntry>,
        chain: &AuditChain,
    ) -> impl Future<Output = Result<Seal, StoreError>> + Send;

    /// The sealed head of the audit chain.
    fn audit_head(&self) -> impl Future<Output = Result<Option<Seal>, StoreError>> + Send;

    /// The highest sequence number stored (0 when none).
    fn audit_last_seq(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Up to `limit` entries with `after < seq <= through`, in order.
    fn audit_entries(
        &self,
        after: u64,
        through: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SealedEntry>, StoreError>> + Send;

    /// The checkpoints with `after < seq <= through`, in order.
    fn audit_checkpoints(
        &self,
        after: u64,
        through: u64,
    ) -> impl Future<Output = Result<Vec<Seal>, StoreError>> + Send;

    /// Where the chain was trimmed ([`AuditChain::trim_mark`]): the checkpoint its first
    /// remaining entry follows, sealed as a trim point. `None` when it never was.
    fn audit_trim(&self) -> impl Future<Output = Result<Option<Seal>, StoreError>> + Send;

    /// The latest checkpoint whose entry was written at or before `before` (Unix nanoseconds):
    /// where a trim of everything older may cut.
    fn audit_trim_point(
        &self,
        before: i64,
    ) -> impl Future<Output = Result<Option<Seal>, StoreError>> + Send;

    /// Deletes the entries up to `mark.seq` and the checkpoints before it, records `mark` as
    /// the trim point and appends `entries` (the trim's own record), in one transaction;
    /// returns how many entries went.
    fn trim_audit(
        &self,
        mark: Seal,
        entries: Vec<AuditEntry>,
        chain: &AuditChain,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Up to `limit` entries after `after` that pass `filter`, in order.
    fn audit_search(
        &self,
        filter: &AuditFilter,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SealedEntry>, StoreError>> + Send;
}
