//! Requests and the job queue: the same SQL on both backends, written once. Queries go through
//! `QueryBuilder`, which writes each backend's placeholders; the macro below is expanded in both
//! `impl Store` blocks with the backend's pool, table prefix and row-locking clause.

use steward_core::StoreError;
use steward_core::store::{Job, NewJob, RequestRecord};
use steward_core::subject::SubjectId;

use crate::convert::{from_nanos, to_nanos, uuid};

/// The columns of a request row, in [`RequestRow`]'s order.
pub const REQUEST_COLUMNS: &str =
    "id, kind, status, subject, received_at, due_at, updated_at, revision, contact, payload, body";

/// The columns of a job row, in [`JobRow`]'s order.
pub const JOB_COLUMNS: &str = "id, kind, request, run_at, attempts, payload, last_error, done_at";

/// A request row.
#[derive(sqlx::FromRow)]
pub struct RequestRow {
    id: Vec<u8>,
    kind: String,
    status: String,
    subject: Option<Vec<u8>>,
    received_at: i64,
    due_at: i64,
    updated_at: i64,
    revision: i64,
    contact: Vec<u8>,
    payload: Option<Vec<u8>>,
    body: String,
}

impl RequestRow {
    pub fn into_record(self) -> Result<RequestRecord, StoreError> {
        Ok(RequestRecord {
            id: uuid(&self.id)?,
            kind: self.kind,
            status: self.status,
            subject: self.subject.map(|s| uuid(&s).map(SubjectId)).transpose()?,
            received_at: from_nanos(self.received_at)?,
            due_at: from_nanos(self.due_at)?,
            updated_at: from_nanos(self.updated_at)?,
            revision: self.revision,
            contact: self.contact,
            payload: self.payload,
            body: self.body,
        })
    }
}

/// A job row.
#[derive(sqlx::FromRow)]
pub struct JobRow {
    id: i64,
    kind: String,
    request: Option<Vec<u8>>,
    run_at: i64,
    attempts: i64,
    payload: String,
    last_error: Option<String>,
    done_at: Option<i64>,
}

impl JobRow {
    pub fn into_job(self) -> Result<Job, StoreError> {
        Ok(Job {
            id: self.id,
            kind: self.kind,
            request: self.request.map(|r| uuid(&r)).transpose()?,
            run_at: from_nanos(self.run_at)?,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            payload: self.payload,
            last_error: self.last_error,
            done_at: self.done_at.map(from_nanos).transpose()?,
        })
    }
}

/// Adds a request's values (in [`REQUEST_COLUMNS`] order) to a query.
pub fn push_request<DB: sqlx::Database>(q: &mut sqlx::QueryBuilder<DB>, r: &RequestRecord)
where
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Vec<u8>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Option<Vec<u8>>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut s = q.separated(", ");
    s.push_bind(r.id.as_bytes().to_vec())
        .push_bind(r.kind.clone())
        .push_bind(r.status.clone())
        .push_bind(r.subject.map(|s| s.as_bytes().to_vec()))
        .push_bind(to_nanos(r.received_at))
        .push_bind(to_nanos(r.due_at))
        .push_bind(to_nanos(r.updated_at))
        .push_bind(r.revision)
        .push_bind(r.contact.clone())
        .push_bind(r.payload.clone())
        .push_bind(r.body.clone());
}

/// The INSERT of `jobs` into `<prefix>jobs`.
pub fn insert_jobs<DB: sqlx::Database>(prefix: &str, jobs: &[NewJob]) -> sqlx::QueryBuilder<DB>
where
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<Vec<u8>>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut q = sqlx::QueryBuilder::new(format!(
        "INSERT INTO {prefix}jobs (kind, request, run_at, payload) "
    ));
    q.push_values(jobs, |mut b, j| {
        b.push_bind(j.kind.clone())
            .push_bind(j.request.map(|r| r.as_bytes().to_vec()))
            .push_bind(to_nanos(j.run_at))
            .push_bind(j.payload.clone());
    });
    q
}

pub fn db(e: &sqlx::Error) -> StoreError {
    crate::convert::backend(e)
}

/// Expands to the request and job methods of `impl Store`, for a backend whose pool is
/// `self.$pool`, whose tables are prefixed with `$prefix` and whose claim query locks rows
/// with `$lock`.
macro_rules! request_methods {
    ($db:ty, $pool:ident, $prefix:literal, $lock:literal) => {
        async fn insert_request(
            &self,
            request: &steward_core::store::RequestRecord,
            jobs: &[steward_core::store::NewJob],
        ) -> Result<(), StoreError> {
            use crate::requests::{REQUEST_COLUMNS, db, insert_jobs, push_request};
            let mut tx = self.$pool.begin().await.map_err(|e| db(&e))?;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "INSERT INTO {}requests ({REQUEST_COLUMNS}) VALUES (",
                $prefix
            ));
            push_request(&mut q, request);
            q.push(")");
            q.build().execute(&mut *tx).await.map_err(|e| db(&e))?;
            if !jobs.is_empty() {
                insert_jobs::<$db>($prefix, jobs)
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db(&e))?;
            }
            tx.commit().await.map_err(|e| db(&e))
        }

        async fn update_request(
            &self,
            r: &steward_core::store::RequestRecord,
            expected: i64,
            jobs: &[steward_core::store::NewJob],
        ) -> Result<bool, StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::{db, insert_jobs};
            let mut tx = self.$pool.begin().await.map_err(|e| db(&e))?;
            let mut q: sqlx::QueryBuilder<$db> =
                sqlx::QueryBuilder::new(format!("UPDATE {}requests SET status = ", $prefix));
            q.push_bind(r.status.clone())
                .push(", subject = ")
                .push_bind(r.subject.map(|s| s.as_bytes().to_vec()))
                .push(", due_at = ")
                .push_bind(to_nanos(r.due_at))
                .push(", updated_at = ")
                .push_bind(to_nanos(r.updated_at))
                .push(", revision = ")
                .push_bind(r.revision)
                .push(", contact = ")
                .push_bind(r.contact.clone())
                .push(", payload = ")
                .push_bind(r.payload.clone())
                .push(", body = ")
                .push_bind(r.body.clone())
                .push(" WHERE id = ")
                .push_bind(r.id.as_bytes().to_vec())
                .push(" AND revision = ")
                .push_bind(expected);
            let done = q.build().execute(&mut *tx).await.map_err(|e| db(&e))?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            if !jobs.is_empty() {
                insert_jobs::<$db>($prefix, jobs)
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db(&e))?;
            }
            tx.commit().await.map_err(|e| db(&e))?;
            Ok(true)
        }

        async fn request(
            &self,
            id: uuid::Uuid,
        ) -> Result<Option<steward_core::store::RequestRecord>, StoreError> {
            use crate::requests::{REQUEST_COLUMNS, RequestRow, db};
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT {REQUEST_COLUMNS} FROM {}requests WHERE id = ",
                $prefix
            ));
            q.push_bind(id.as_bytes().to_vec());
            let row: Option<RequestRow> = q
                .build_query_as()
                .fetch_optional(&self.$pool)
                .await
                .map_err(|e| db(&e))?;
            row.map(RequestRow::into_record).transpose()
        }

        async fn list_requests(
            &self,
            filter: &steward_core::store::RequestFilter,
            limit: u32,
        ) -> Result<Vec<steward_core::store::RequestRecord>, StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::{REQUEST_COLUMNS, RequestRow, db};
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT {REQUEST_COLUMNS} FROM {}requests WHERE true",
                $prefix
            ));
            if !filter.statuses.is_empty() {
                q.push(" AND status IN (");
                let mut s = q.separated(", ");
                for status in &filter.statuses {
                    s.push_bind(status.clone());
                }
                q.push(")");
            }
            if let Some(kind) = &filter.kind {
                q.push(" AND kind = ").push_bind(kind.clone());
            }
            if let Some(t) = filter.due_before {
                q.push(" AND due_at < ").push_bind(to_nanos(t));
            }
            if let Some(t) = filter.received_before {
                q.push(" AND received_at < ").push_bind(to_nanos(t));
            }
            if let Some(s) = filter.subject {
                q.push(" AND subject = ").push_bind(s.as_bytes().to_vec());
            }
            q.push(" ORDER BY due_at, id LIMIT ")
                .push_bind(i64::from(limit));
            let rows: Vec<RequestRow> = q
                .build_query_as()
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| db(&e))?;
            rows.into_iter().map(RequestRow::into_record).collect()
        }

        async fn enqueue_jobs(
            &self,
            jobs: &[steward_core::store::NewJob],
        ) -> Result<(), StoreError> {
            use crate::requests::{db, insert_jobs};
            if jobs.is_empty() {
                return Ok(());
            }
            insert_jobs::<$db>($prefix, jobs)
                .build()
                .execute(&self.$pool)
                .await
                .map_err(|e| db(&e))?;
            Ok(())
        }

        async fn claim_jobs(
            &self,
            now: time::OffsetDateTime,
            lease: time::OffsetDateTime,
            limit: u32,
        ) -> Result<Vec<steward_core::store::Job>, StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::{JOB_COLUMNS, JobRow, db};
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "UPDATE {}jobs SET attempts = attempts + 1, lease_until = ",
                $prefix
            ));
            q.push_bind(to_nanos(lease))
                .push(format!(
                    " WHERE id IN (SELECT id FROM {}jobs WHERE done_at IS NULL AND kind <> 'retention' AND run_at <= ",
                    $prefix
                ))
                .push_bind(to_nanos(now))
                .push(" AND (lease_until IS NULL OR lease_until <= ")
                .push_bind(to_nanos(now))
                .push(") ORDER BY run_at, id LIMIT ")
                .push_bind(i64::from(limit))
                .push(format!("{}) RETURNING {JOB_COLUMNS}", $lock));
            let rows: Vec<JobRow> = q
                .build_query_as()
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| db(&e))?;
            let mut jobs = rows
                .into_iter()
                .map(JobRow::into_job)
                .collect::<Result<Vec<_>, _>>()?;
            jobs.sort_by_key(|j| (j.run_at, j.id));
            Ok(jobs)
        }

        async fn finish_job(&self, id: i64, at: time::OffsetDateTime) -> Result<(), StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::db;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "UPDATE {}jobs SET lease_until = NULL, last_error = NULL, done_at = ",
                $prefix
            ));
            q.push_bind(to_nanos(at)).push(" WHERE id = ").push_bind(id);
            q.build().execute(&self.$pool).await.map_err(|e| db(&e))?;
            Ok(())
        }

        async fn retry_job(
            &self,
            id: i64,
            run_at: time::OffsetDateTime,
            error: &str,
        ) -> Result<(), StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::db;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "UPDATE {}jobs SET lease_until = NULL, run_at = ",
                $prefix
            ));
            q.push_bind(to_nanos(run_at))
                .push(", last_error = ")
                .push_bind(error.chars().take(500).collect::<String>())
                .push(" WHERE id = ")
                .push_bind(id);
            q.build().execute(&self.$pool).await.map_err(|e| db(&e))?;
            Ok(())
        }

        async fn operations(
            &self,
            now: time::OffsetDateTime,
            soon: time::OffsetDateTime,
        ) -> Result<steward_core::store::Operations, StoreError> {
            use crate::convert::{from_nanos, to_nanos};
            use crate::requests::db;
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN lease_until > ",
            );
            q.push_bind(to_nanos(now))
                .push(" THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN last_error IS NOT NULL THEN 1 ELSE 0 END), 0), MIN(CASE WHEN run_at <= ")
                .push_bind(to_nanos(now))
                .push(format!(
                    " THEN run_at END) FROM {}jobs WHERE done_at IS NULL",
                    $prefix
                ));
            let (pending, running, failing, oldest): (i64, i64, i64, Option<i64>) = q
                .build_query_as()
                .fetch_one(&self.$pool)
                .await
                .map_err(|e| db(&e))?;
            let mut q: sqlx::QueryBuilder<$db> =
                sqlx::QueryBuilder::new("SELECT COUNT(*), COALESCE(SUM(CASE WHEN due_at >= ");
            q.push_bind(to_nanos(now))
                .push(" AND due_at < ")
                .push_bind(to_nanos(soon))
                .push(" THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN due_at < ")
                .push_bind(to_nanos(now))
                .push(format!(
                    " THEN 1 ELSE 0 END), 0) FROM {}requests WHERE status NOT IN ('completed', 'denied', 'expired')",
                    $prefix
                ));
            let (open, due_soon, overdue): (i64, i64, i64) = q
                .build_query_as()
                .fetch_one(&self.$pool)
                .await
                .map_err(|e| db(&e))?;
            Ok(steward_core::store::Operations {
                jobs_pending: count(pending),
                jobs_running: count(running),
                jobs_failing: count(failing),
                oldest_due_job: oldest.map(from_nanos).transpose()?,
                requests_open: count(open),
                requests_due_soon: count(due_soon),
                requests_overdue: count(overdue),
            })
        }

        async fn jobs_of(
            &self,
            request: uuid::Uuid,
        ) -> Result<Vec<steward_core::store::Job>, StoreError> {
            use crate::requests::{JOB_COLUMNS, JobRow, db};
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT {JOB_COLUMNS} FROM {}jobs WHERE request = ",
                $prefix
            ));
            q.push_bind(request.as_bytes().to_vec())
                .push(" ORDER BY id");
            let rows: Vec<JobRow> = q
                .build_query_as()
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| db(&e))?;
            rows.into_iter().map(JobRow::into_job).collect()
        }
    };
}

pub(crate) use request_methods;
