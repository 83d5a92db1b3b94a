//! What the breach register needs stored: incidents (JSON with no personal data), the
//! pseudonymous people each affects, and one delivery row per person and channel — the queue
//! the notices are sent from, so that none is sent twice and none is skipped.

use std::future::Future;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::requests::storage::RequestStore;
use crate::storage::StoreError;
use crate::subject::SubjectId;
use crate::vault::storage::Audited;

/// An incident as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    /// Its id.
    pub id: Uuid,
    /// Its number in the register (1, 2 …), given when it is stored.
    pub number: i64,
    /// Where it is in its lifecycle (`open`, `assessed`, `notified`, `closed`).
    pub state: String,
    /// When the controller became aware (the clocks count from it).
    pub aware_at: OffsetDateTime,
    /// When it was opened.
    pub opened_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// Bumped on every change, so two writers never overwrite each other.
    pub revision: i64,
    /// Everything else, JSON.
    pub body: String,
}

/// How affected people are found.
#[derive(Debug, Clone, Copy)]
pub enum AffectedBy<'a> {
    /// Everyone holding a field of one of these categories (or their children), or an
    /// identity of one of these kinds, collected no later than `before` when given.
    Categories {
        /// Field categories (taxonomy keys).
        categories: &'a [String],
        /// Identity kinds (`email`, `phone`, `username`) whose category is covered.
        kinds: &'a [String],
        /// The end of the breach's window.
        before: Option<OffsetDateTime>,
    },
    /// Everyone the audit trail shows `actor` acted on, successfully, within the window.
    Actor {
        /// As the audit names them (`key:stw_1a2b3c4d`, `staff:alice`).
        actor: &'a str,
        /// From (inclusive).
        from: OffsetDateTime,
        /// To (inclusive).
        to: OffsetDateTime,
    },
    /// These subjects (found in the operator's own databases, or by hand).
    Listed(&'a [SubjectId]),
}

/// One notice to one person by one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// The incident.
    pub incident: Uuid,
    /// The person.
    pub subject: SubjectId,
    /// `email`, `in-app` or `password-reset`.
    pub channel: String,
    /// `queued`, `claimed`, `sending`, `sent`, `failed`, `uncertain`, `posted`, `read`,
    /// `acknowledged`.
    pub state: String,
    /// How many times it was tried.
    pub attempts: u32,
    /// When it was queued.
    pub queued_at: OffsetDateTime,
    /// When it was sent (or posted).
    pub sent_at: Option<OffsetDateTime>,
    /// When it was read or acknowledged.
    pub acked_at: Option<OffsetDateTime>,
    /// Why the last attempt failed (a code, never personal data).
    pub last_error: Option<String>,
}

/// How many of an incident's notices by `channel` stand in `state`, with the same last error.
pub type DeliveryTally = (String, String, Option<String>, u64);

/// The breach register's storage, over the requests' (the job queue and recipients' secrets).
pub trait IncidentStore: RequestStore {
    /// Stores a new incident with the next number and its audit entry in one transaction;
    /// returns the number.
    fn insert_incident(
        &self,
        row: &IncidentRow,
        audit: Audited<'_>,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Replaces an incident whose stored revision is `expected` and appends its audit entry,
    /// in one transaction; `false` (nothing written) when another writer changed it first.
    fn update_incident(
        &self,
        row: &IncidentRow,
        expected: i64,
        audit: Audited<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The incident with this id.
    fn incident(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<IncidentRow>, StoreError>> + Send;

    /// The incident with this number.
    fn incident_numbered(
        &self,
        number: i64,
    ) -> impl Future<Output = Result<Option<IncidentRow>, StoreError>> + Send;

    /// Every incident, the newest first; only those not closed when `open_only`.
    fn incidents(
        &self,
        open_only: bool,
    ) -> impl Future<Output = Result<Vec<IncidentRow>, StoreError>> + Send;

    /// Adds the people `by` finds to the incident, under `source` (`vault`, `audit`,
    /// `listed`), in the database; returns how many were not there before.
    fn add_affected(
        &self,
        incident: Uuid,
        by: AffectedBy<'_>,
        source: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// How many people the incident affects, by the source that first found them.
    fn affected_counts(
        &self,
        incident: Uuid,
    ) -> impl Future<Output = Result<Vec<(String, u64)>, StoreError>> + Send;

    /// Queues a notice by `channel` in `state` (`queued`, or `posted` for in-app) for every
    /// affected person who has none by that channel; returns how many were queued.
    fn queue_deliveries(
        &self,
        incident: Uuid,
        channel: &str,
        state: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Claims up to `limit` queued notices by `channel` due at `now`, holding them until
    /// `lease` (state `claimed`). First gives claims whose holder died back to the queue
    /// (never tried), and marks `uncertain` the notices a holder died while sending.
    fn claim_deliveries(
        &self,
        channel: &str,
        now: OffsetDateTime,
        lease: OffsetDateTime,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<DeliveryRow>, StoreError>> + Send;

    /// Moves a notice from `from` to `to` (`claimed` → `sending` before it goes out,
    /// `sending` → `sent`), with when, why it failed and when to try again; `false` when it
    /// was not in `from`.
    #[allow(clippy::too_many_arguments)]
    fn move_delivery(
        &self,
        incident: Uuid,
        subject: SubjectId,
        channel: &str,
        from: &str,
        to: &str,
        at: OffsetDateTime,
        error: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Puts a notice whose attempt failed back in the queue at `run_at`, with why.
    fn retry_delivery(
        &self,
        incident: Uuid,
        subject: SubjectId,
        channel: &str,
        run_at: OffsetDateTime,
        error: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How an incident's notices stand: (channel, state, the last error's code, count).
    fn delivery_counts(
        &self,
        incident: Uuid,
    ) -> impl Future<Output = Result<Vec<DeliveryTally>, StoreError>> + Send;

    /// A person's notices by `channel`, the newest first.
    fn deliveries_of(
        &self,
        subject: SubjectId,
        channel: &str,
    ) -> impl Future<Output = Result<Vec<DeliveryRow>, StoreError>> + Send;

    /// Marks notices by `channel` of these people acknowledged (`read`, `acknowledged`) at
    /// `at`, unless they already were; returns how many changed.
    fn acknowledge_deliveries(
        &self,
        incident: Uuid,
        subjects: &[SubjectId],
        channel: &str,
        state: &str,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Makes an incident's notices by `channel` in `state` due at `now`, queued: `uncertain`
    /// ones once the operator checked they did not go out, `queued` ones waiting for a retry
    /// when the operator runs the notification again; returns how many.
    fn requeue(
        &self,
        incident: Uuid,
        channel: &str,
        state: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
