//! What data-subject requests need stored: the requests (sealed where personal), the job
//! queue, and recipients' webhook secrets.

use std::future::Future;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::disclosures::storage::DisclosureStore;
use crate::storage::StoreError;
use crate::subject::SubjectId;

/// Where a recipient's webhook signing secret stands (GDPR Art. 19 notices). The secret
/// itself is derived from the master key and `generation`; it is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientSecretState {
    /// The current generation, from 1.
    pub generation: u32,
    /// The generation that signs beside it after a rotation: the one in use before it (or
    /// before the first of several rotations close together).
    pub previous: Option<u32>,
    /// When it was last rotated (`previous` still signs for a while after).
    pub rotated_at: Option<OffsetDateTime>,
    /// When the current generation was shown (it is shown once).
    pub shown_at: Option<OffsetDateTime>,
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

/// How the job queue and the data-subject requests stand at one moment: what an operator
/// watches (metrics, the server's log). Counts only, never whose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Operations {
    /// Jobs not done yet (due or waiting for a retry).
    pub jobs_pending: u64,
    /// Jobs a process holds a lease on now.
    pub jobs_running: u64,
    /// Jobs not done whose last attempt failed (they are retried with backoff).
    pub jobs_failing: u64,
    /// When the longest-waiting due job became due.
    pub oldest_due_job: Option<OffsetDateTime>,
    /// Requests not completed, denied or expired.
    pub requests_open: u64,
    /// Open requests due from now until the `soon` asked for.
    pub requests_due_soon: u64,
    /// Open requests past their due date.
    pub requests_overdue: u64,
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

/// The requests' storage, over the consent ledger's.
pub trait RequestStore: DisclosureStore {
    /// How the job queue and the open requests stand at `now`; requests due before `soon`
    /// count as due soon.
    fn operations(
        &self,
        now: OffsetDateTime,
        soon: OffsetDateTime,
    ) -> impl Future<Output = Result<Operations, StoreError>> + Send;

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

    /// Where `recipient`'s signing secret stands; `None` before it was first shown (generation
    /// 1, never rotated).
    fn recipient_secret(
        &self,
        recipient: &str,
    ) -> impl Future<Output = Result<Option<RecipientSecretState>, StoreError>> + Send;

    /// Claims the right to show `recipient`'s secret at `at`. With `rotate: Some(overlap_from)`,
    /// moves to the next generation and returns it, keeping as `previous` the generation in use
    /// before — or, when the last rotation was after `overlap_from`, the `previous` it kept.
    /// Without, returns the current generation if it was never shown, else `None` (it is shown
    /// once, to one caller, even across processes).
    fn claim_recipient_secret(
        &self,
        recipient: &str,
        at: OffsetDateTime,
        rotate: Option<OffsetDateTime>,
    ) -> impl Future<Output = Result<Option<u32>, StoreError>> + Send;
}
