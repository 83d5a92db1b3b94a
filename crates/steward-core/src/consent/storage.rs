//! What the consent ledger needs stored: its chained events, sealed head, the policy versions
//! served and the notices of versions that must be accepted.

use std::future::Future;

use time::OffsetDateTime;

use crate::audit::Seal;
use crate::consent::ledger::PolicyVersion;
use crate::consent::{ConsentEvent, LedgerChain, Party, SealedEvent};
use crate::storage::StoreError;
use crate::subject::SubjectId;
use crate::vault::storage::{Audited, VaultStore};

/// The consent ledger's storage, over the vault's.
pub trait ConsentStore: VaultStore {
    /// Appends events to the consent ledger in one transaction: reads the sealed head under a
    /// write lock, chains the events with `chain`, writes them and the new head, with the
    /// `audit` entries that record them.
    fn append_consent(
        &self,
        events: Vec<ConsentEvent>,
        chain: &LedgerChain,
        audit: Audited<'_>,
    ) -> impl Future<Output = Result<Vec<SealedEvent>, StoreError>> + Send;

    /// The sealed head of the consent ledger.
    fn consent_head(&self) -> impl Future<Output = Result<Option<Seal>, StoreError>> + Send;

    /// Up to `limit` consent events after `after`, in order.
    fn consent_events(
        &self,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SealedEvent>, StoreError>> + Send;

    /// Every consent event of these parties, in order.
    fn consent_of(
        &self,
        parties: &[Party],
    ) -> impl Future<Output = Result<Vec<SealedEvent>, StoreError>> + Send;

    /// Every `link` event that links a browser to `subject`.
    fn consent_links(
        &self,
        subject: SubjectId,
    ) -> impl Future<Output = Result<Vec<SealedEvent>, StoreError>> + Send;

    /// Every policy version served, oldest first.
    fn policy_versions(
        &self,
    ) -> impl Future<Output = Result<Vec<PolicyVersion>, StoreError>> + Send;

    /// How many parties (people and browsers) gave consent — a `grant` or `confirm` event — to
    /// any of `purposes` under policy `version`: the people a change of those purposes' terms
    /// under the same version would mislead.
    fn consenting_parties(
        &self,
        version: &str,
        purposes: &[String],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Records a new policy version; when it must be accepted, queues a notice to every
    /// subject in the same transaction.
    fn add_policy_version(
        &self,
        version: &PolicyVersion,
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
}
