//! The disclosure log's and the breach register's statements, written once for both backends
//! and expanded in both `impl Store` blocks with the backend's pool, table prefix, the
//! expression that names a month (`{c}` for the column of nanoseconds) and the row-locking
//! clause of the delivery claim.

use steward_core::StoreError;
use steward_core::store::{DeliveryRow, Dimension, DisclosureRow, IncidentRow};
use steward_core::subject::SubjectId;

use crate::convert::{from_nanos, uuid};

/// The columns of an incident row, in [`IncidentRowSql`]'s order.
pub const INCIDENT_COLUMNS: &str =
    "id, number, state, aware_at, opened_at, updated_at, revision, body";

/// The columns of a delivery row, in [`DeliverySql`]'s order.
pub const DELIVERY_COLUMNS: &str =
    "incident, subject, channel, state, attempts, queued_at, sent_at, acked_at, last_error";

/// The columns of a disclosure row, in [`DisclosureSql`]'s order.
pub const DISCLOSURE_COLUMNS: &str = "id, at, recipient, tell, gag_until, body";

#[derive(sqlx::FromRow)]
pub struct IncidentRowSql {
    id: Vec<u8>,
    number: i64,
    state: String,
    aware_at: i64,
    opened_at: i64,
    updated_at: i64,
    revision: i64,
    body: String,
}

impl IncidentRowSql {
    pub fn into_row(self) -> Result<IncidentRow, StoreError> {
        Ok(IncidentRow {
            id: uuid(&self.id)?,
            number: self.number,
            state: self.state,
            aware_at: from_nanos(self.aware_at)?,
            opened_at: from_nanos(self.opened_at)?,
            updated_at: from_nanos(self.updated_at)?,
            revision: self.revision,
            body: self.body,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct DeliverySql {
    incident: Vec<u8>,
    subject: Vec<u8>,
    channel: String,
    state: String,
    attempts: i64,
    queued_at: i64,
    sent_at: Option<i64>,
    acked_at: Option<i64>,
    last_error: Option<String>,
}

impl DeliverySql {
    pub fn into_row(self) -> Result<DeliveryRow, StoreError> {
        Ok(DeliveryRow {
            incident: uuid(&self.incident)?,
            subject: SubjectId(uuid(&self.subject)?),
            channel: self.channel,
            state: self.state,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            queued_at: from_nanos(self.queued_at)?,
            sent_at: self.sent_at.map(from_nanos).transpose()?,
            acked_at: self.acked_at.map(from_nanos).transpose()?,
            last_error: self.last_error,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct DisclosureSql {
    id: Vec<u8>,
    at: i64,
    recipient: String,
    tell: i64,
    gag_until: Option<i64>,
    body: String,
}

impl DisclosureSql {
    pub fn into_row(self) -> Result<DisclosureRow, StoreError> {
        Ok(DisclosureRow {
            id: uuid(&self.id)?,
            at: from_nanos(self.at)?,
            recipient: self.recipient,
            tell: self.tell != 0,
            gag_until: self.gag_until.map(from_nanos).transpose()?,
            body: self.body,
        })
    }
}

/// The LIKE pattern of a taxonomy key's children (`user.contact` → `user.contact.%`), with
/// `\` escaping LIKE's wildcards.
pub fn children(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 3);
    for ch in key.chars() {
        if matches!(ch, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push_str(".%");
    out
}

/// The SQL expression of a vault dimension over `fields` (aliased `t`); `month` names a month
/// with `{c}` for the column.
pub fn field_dimension(d: Dimension, month: &str) -> String {
    match d {
        Dimension::Purpose => "t.purpose".to_owned(),
        Dimension::Category => "t.category".to_owned(),
        Dimension::Month => month.replace("{c}", "t.collected_at"),
        Dimension::Consent | Dimension::Country => "''".to_owned(),
    }
}

/// The SQL expression of a ledger dimension over `consent_events` (aliased `e`).
pub fn consent_dimension(d: Dimension, month: &str) -> String {
    match d {
        Dimension::Purpose => "e.purpose".to_owned(),
        Dimension::Consent => "e.action".to_owned(),
        Dimension::Month => month.replace("{c}", "e.at"),
        Dimension::Category | Dimension::Country => "''".to_owned(),
    }
}

/// Reads grouped counts: the first `n` columns are the group's values (text), the last the count.
pub fn read_counts<R: sqlx::Row>(
    rows: Vec<R>,
    n: usize,
) -> Result<Vec<(Vec<String>, u64)>, StoreError>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            let v: Option<String> = r.try_get(i).map_err(|e| crate::convert::backend(&e))?;
            values.push(v.unwrap_or_default());
        }
        let count: i64 = r.try_get(n).map_err(|e| crate::convert::backend(&e))?;
        out.push((values, u64::try_from(count).unwrap_or(0)));
    }
    Ok(out)
}

/// Expands to the `DisclosureStore` methods for a backend.
macro_rules! disclosure_methods {
    ($db:ty, $pool:ident, $p:literal, $month:literal) => {
        async fn insert_disclosure(
            &self,
            row: &steward_core::store::DisclosureRow,
            subjects: &[steward_core::subject::SubjectId],
            audit: steward_core::store::Audited<'_>,
        ) -> Result<(), StoreError> {
            use crate::convert::{backend, to_nanos};
            let mut tx = self.begin_write().await?;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "INSERT INTO {}disclosures ({}) VALUES (",
                $p,
                crate::incidents::DISCLOSURE_COLUMNS
            ));
            q.separated(", ")
                .push_bind(row.id.as_bytes().to_vec())
                .push_bind(to_nanos(row.at))
                .push_bind(row.recipient.clone())
                .push_bind(i64::from(row.tell))
                .push_bind(row.gag_until.map(to_nanos))
                .push_bind(row.body.clone());
            q.push(")");
            q.build().execute(&mut *tx).await.map_err(|e| backend(&e))?;
            for chunk in subjects.chunks(1000) {
                let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO {}disclosure_subjects (subject, disclosure) ",
                    $p
                ));
                q.push_values(chunk, |mut b, s| {
                    b.push_bind(s.as_bytes().to_vec())
                        .push_bind(row.id.as_bytes().to_vec());
                });
                q.push(" ON CONFLICT DO NOTHING");
                q.build().execute(&mut *tx).await.map_err(|e| backend(&e))?;
            }
            append_audit_in(&mut tx, audit.entries, audit.chain)
                .await
                .map_err(|e| backend(&e))?;
            tx.commit().await.map_err(|e| backend(&e))
        }

        async fn disclosures(
            &self,
            subject: Option<steward_core::subject::SubjectId>,
            recipient: Option<&str>,
            limit: u32,
        ) -> Result<Vec<steward_core::store::DisclosureRow>, StoreError> {
            use crate::convert::backend;
            use crate::incidents::DisclosureSql;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT d.id, d.at, d.recipient, d.tell, d.gag_until, d.body FROM {}disclosures d WHERE true",
                $p
            ));
            if let Some(s) = subject {
                q.push(format!(
                    " AND d.id IN (SELECT disclosure FROM {}disclosure_subjects WHERE subject = ",
                    $p
                ))
                .push_bind(s.as_bytes().to_vec())
                .push(")");
            }
            if let Some(r) = recipient {
                q.push(" AND d.recipient = ").push_bind(r.to_owned());
            }
            q.push(" ORDER BY d.at DESC, d.id DESC LIMIT ")
                .push_bind(i64::from(limit));
            let rows: Vec<DisclosureSql> = q
                .build_query_as()
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| backend(&e))?;
            rows.into_iter().map(DisclosureSql::into_row).collect()
        }

        async fn update_disclosure(
            &self,
            row: &steward_core::store::DisclosureRow,
            audit: steward_core::store::Audited<'_>,
        ) -> Result<bool, StoreError> {
            use crate::convert::{backend, to_nanos};
            let mut tx = self.begin_write().await?;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "UPDATE {}disclosures SET tell = ",
                $p
            ));
            q.push_bind(i64::from(row.tell))
                .push(", gag_until = ")
                .push_bind(row.gag_until.map(to_nanos))
                .push(", body = ")
                .push_bind(row.body.clone())
                .push(" WHERE id = ")
                .push_bind(row.id.as_bytes().to_vec());
            let n = q
                .build()
                .execute(&mut *tx)
                .await
                .map_err(|e| backend(&e))?
                .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            append_audit_in(&mut tx, audit.entries, audit.chain)
                .await
                .map_err(|e| backend(&e))?;
            tx.commit().await.map_err(|e| backend(&e))?;
            Ok(true)
        }

        async fn disclosure(
            &self,
            id: uuid::Uuid,
        ) -> Result<Option<steward_core::store::DisclosureRow>, StoreError> {
            use crate::convert::backend;
            use crate::incidents::DisclosureSql;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT {} FROM {}disclosures WHERE id = ",
                crate::incidents::DISCLOSURE_COLUMNS,
                $p
            ));
            q.push_bind(id.as_bytes().to_vec());
            let row: Option<DisclosureSql> = q
                .build_query_as()
                .fetch_optional(&self.$pool)
                .await
                .map_err(|e| backend(&e))?;
            row.map(DisclosureSql::into_row).transpose()
        }

        async fn disclosure_size(&self, id: uuid::Uuid) -> Result<u64, StoreError> {
            use crate::convert::backend;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT COUNT(*) FROM {}disclosure_subjects WHERE disclosure = ",
                $p
            ));
            q.push_bind(id.as_bytes().to_vec());
            let (n,): (i64,) = q
                .build_query_as()
                .fetch_one(&self.$pool)
                .await
                .map_err(|e| backend(&e))?;
            Ok(u64::try_from(n).unwrap_or(0))
        }

        async fn count_fields(
            &self,
            by: &[steward_core::store::Dimension],
            categories: &[String],
        ) -> Result<Vec<steward_core::store::CountRow>, StoreError> {
            use crate::convert::backend;
            let dims: Vec<String> = by
                .iter()
                .map(|d| crate::incidents::field_dimension(*d, $month))
                .collect();
            let list = dims.join(", ");
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT {list}, COUNT(DISTINCT t.subject) FROM {}fields t WHERE true",
                $p
            ));
            if !categories.is_empty() {
                q.push(" AND (false");
                for c in categories {
                    q.push(" OR t.category = ")
                        .push_bind(c.clone())
                        .push(" OR t.category LIKE ")
                        .push_bind(crate::incidents::children(c))
                        .push(" ESCAPE '\\'");
                }
                q.push(")");
            }
            q.push(format!(" GROUP BY {list} ORDER BY {list}"));
            let rows = q
                .build()
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| backend(&e))?;
            crate::incidents::read_counts(rows, by.len())
        }

        async fn count_consents(
            &self,
            by: &[steward_core::store::Dimension],
        ) -> Result<Vec<steward_core::store::CountRow>, StoreError> {
            use crate::convert::backend;
            let dims: Vec<String> = by
                .iter()
                .map(|d| crate::incidents::consent_dimension(*d, $month))
                .collect();
            let list = dims.join(", ");
            let q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT {list}, COUNT(*) FROM {p}consent_events e WHERE e.party_kind = 's' AND e.purpose IS NOT NULL AND e.seq = (SELECT MAX(l.seq) FROM {p}consent_events l WHERE l.party_kind = e.party_kind AND l.party = e.party AND l.purpose = e.purpose) GROUP BY {list} ORDER BY {list}",
                p = $p
            ));
            let rows = { q }
                .build()
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| backend(&e))?;
            crate::incidents::read_counts(rows, by.len())
        }

        async fn subjects_with(
            &self,
            category: &str,
            after: Option<steward_core::subject::SubjectId>,
            limit: u32,
        ) -> Result<Vec<steward_core::subject::SubjectId>, StoreError> {
            use crate::convert::{backend, uuid};
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT DISTINCT subject FROM {}fields WHERE category = ",
                $p
            ));
            q.push_bind(category.to_owned());
            if let Some(a) = after {
                q.push(" AND subject > ").push_bind(a.as_bytes().to_vec());
            }
            q.push(" ORDER BY subject LIMIT ").push_bind(i64::from(limit));
            let rows: Vec<(Vec<u8>,)> = q
                .build_query_as()
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| backend(&e))?;
            rows.into_iter()
                .map(|(s,)| uuid(&s).map(steward_core::subject::SubjectId))
                .collect()
        }
    };
}

pub(crate) use disclosure_methods;

/// Expands to the `IncidentStore` methods for a backend whose claim query locks rows with
/// `$lock`.
macro_rules! incident_methods {
    ($db:ty, $pool:ident, $p:literal, $lock:literal) => {
        async fn insert_incident(
            &self,
            row: &steward_core::store::IncidentRow,
            audit: steward_core::store::Audited<'_>,
        ) -> Result<i64, StoreError> {
            use crate::convert::{backend, to_nanos};
            let mut tx = self.begin_write().await?;
            // Incidents are few and opened by people: the next number under the write lock.
            lock_audit(&mut tx).await.map_err(|e| backend(&e))?;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM {}incidents",
                $p
            ));
            let (number,): (i64,) = { &mut q }
                .build_query_as()
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| backend(&e))?;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "INSERT INTO {}incidents ({}) VALUES (",
                $p,
                crate::incidents::INCIDENT_COLUMNS
            ));
            q.separated(", ")
                .push_bind(row.id.as_bytes().to_vec())
                .push_bind(number)
                .push_bind(row.state.clone())
                .push_bind(to_nanos(row.aware_at))
                .push_bind(to_nanos(row.opened_at))
                .push_bind(to_nanos(row.updated_at))
                .push_bind(row.revision)
                .push_bind(row.body.clone());
            q.push(")");
            q.build().execute(&mut *tx).await.map_err(|e| backend(&e))?;
            append_audit_in(&mut tx, audit.entries, audit.chain)
                .await
                .map_err(|e| backend(&e))?;
            tx.commit().await.map_err(|e| backend(&e))?;
            Ok(number)
        }

        async fn update_incident(
            &self,
            row: &steward_core::store::IncidentRow,
            expected: i64,
            audit: steward_core::store::Audited<'_>,
        ) -> Result<bool, StoreError> {
            use crate::convert::{backend, to_nanos};
            let mut tx = self.begin_write().await?;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "UPDATE {}incidents SET state = ",
                $p
            ));
            q.push_bind(row.state.clone())
                .push(", updated_at = ")
                .push_bind(to_nanos(row.updated_at))
                .push(", revision = ")
                .push_bind(row.revision)
                .push(", body = ")
                .push_bind(row.body.clone())
                .push(" WHERE id = ")
                .push_bind(row.id.as_bytes().to_vec())
                .push(" AND revision = ")
                .push_bind(expected);
            let n = q
                .build()
                .execute(&mut *tx)
                .await
                .map_err(|e| backend(&e))?
                .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            append_audit_in(&mut tx, audit.entries, audit.chain)
                .await
                .map_err(|e| backend(&e))?;
            tx.commit().await.map_err(|e| backend(&e))?;
            Ok(true)
        }

        async fn incident(
            &self,
            id: uuid::Uuid,
        ) -> Result<Option<steward_core::store::IncidentRow>, StoreError> {
            use crate::convert::backend;
            use crate::incidents::{INCIDENT_COLUMNS, IncidentRowSql};
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT {INCIDENT_COLUMNS} FROM {}incidents WHERE id = ",
                $p
            ));
            q.push_bind(id.as_bytes().to_vec());
            let row: Option<IncidentRowSql> = q
                .build_query_as()
                .fetch_optional(&self.$pool)
                .await
                .map_err(|e| backend(&e))?;
            row.map(IncidentRowSql::into_row).transpose()
        }

        async fn incident_numbered(
            &self,
            number: i64,
        ) -> Result<Option<steward_core::store::IncidentRow>, StoreError> {
            use crate::convert::backend;
            use crate::incidents::{INCIDENT_COLUMNS, IncidentRowSql};
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT {INCIDENT_COLUMNS} FROM {}incidents WHERE number = ",
                $p
            ));
            q.push_bind(number);
            let row: Option<IncidentRowSql> = q
                .build_query_as()
                .fetch_optional(&self.$pool)
                .await
                .map_err(|e| backend(&e))?;
            row.map(IncidentRowSql::into_row).transpose()
        }

        async fn incidents(
            &self,
            open_only: bool,
        ) -> Result<Vec<steward_core::store::IncidentRow>, StoreError> {
            use crate::convert::backend;
            use crate::incidents::{INCIDENT_COLUMNS, IncidentRowSql};
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT {INCIDENT_COLUMNS} FROM {}incidents",
                $p
            ));
            if open_only {
                q.push(" WHERE state <> 'closed'");
            }
            q.push(" ORDER BY number DESC LIMIT 1000");
            let rows: Vec<IncidentRowSql> = q
                .build_query_as()
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| backend(&e))?;
            rows.into_iter().map(IncidentRowSql::into_row).collect()
        }

        async fn add_affected(
            &self,
            incident: uuid::Uuid,
            by: steward_core::store::AffectedBy<'_>,
            source: &str,
        ) -> Result<u64, StoreError> {
            use crate::convert::{backend, to_nanos};
            use steward_core::store::AffectedBy;
            let id = incident.as_bytes().to_vec();
            let mut tx = self.begin_write().await?;
            let mut added = 0;
            let head = |column: &str| {
                let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO {}incident_subjects (incident, subject, source) SELECT DISTINCT ",
                    $p
                ));
                q.push_bind(id.clone())
                    .push(format!(", x.{column}, "))
                    .push_bind(source.to_owned());
                q
            };
            // A person already in it is skipped. (Not an anti-join on the table being written:
            // PostgreSQL may scan it once per row, all the rows written so far included.)
            let absent = |q: &mut sqlx::QueryBuilder<$db>, _column: &str| {
                q.push(" ON CONFLICT DO NOTHING");
            };
            match by {
                AffectedBy::Categories {
                    categories,
                    kinds,
                    before,
                } => {
                    for c in categories {
                        let mut q = head("subject");
                        q.push(format!(" FROM {}fields x WHERE (x.category = ", $p))
                            .push_bind(c.clone())
                            .push(" OR x.category LIKE ")
                            .push_bind(crate::incidents::children(c))
                            .push(" ESCAPE '\\')");
                        if let Some(t) = before {
                            q.push(" AND x.collected_at <= ").push_bind(to_nanos(t));
                        }
                        absent(&mut q, "subject");
                        added += q
                            .build()
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| backend(&e))?
                            .rows_affected();
                    }
                    for k in kinds {
                        let mut q = head("subject");
                        // Only a window's end needs the subjects' creation times.
                        match before {
                            Some(t) => {
                                q.push(format!(
                                    " FROM {p}identities x JOIN {p}subjects s ON s.id = x.subject WHERE s.created_at <= ",
                                    p = $p
                                ))
                                .push_bind(to_nanos(t))
                                .push(" AND x.kind = ")
                                .push_bind(k.clone());
                            }
                            None => {
                                q.push(format!(" FROM {}identities x WHERE x.kind = ", $p))
                                    .push_bind(k.clone());
                            }
                        }
                        absent(&mut q, "subject");
                        added += q
                            .build()
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| backend(&e))?
                            .rows_affected();
                    }
                }
                AffectedBy::Actor { actor, from, to } => {
                    let mut q = head("subject");
                    q.push(format!(
                        " FROM {}audit_entries x WHERE x.at >= ",
                        $p
                    ))
                    .push_bind(to_nanos(from))
                    .push(" AND x.at <= ")
                    .push_bind(to_nanos(to))
                    .push(" AND x.actor = ")
                    .push_bind(actor.to_owned())
                    .push(" AND x.outcome = 'ok' AND x.subject IS NOT NULL");
                    absent(&mut q, "subject");
                    added += q
                        .build()
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| backend(&e))?
                        .rows_affected();
                }
                AffectedBy::Listed(subjects) => {
                    // Only people the vault holds: an id nobody has is no one to tell.
                    for chunk in subjects.chunks(1000) {
                        let mut q = head("id");
                        q.push(format!(" FROM {}subjects x WHERE x.id IN (", $p));
                        let mut list = q.separated(", ");
                        for s in chunk {
                            list.push_bind(s.as_bytes().to_vec());
                        }
                        q.push(")");
                        absent(&mut q, "id");
                        added += q
                            .build()
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| backend(&e))?
                            .rows_affected();
                    }
                }
            }
            tx.commit().await.map_err(|e| backend(&e))?;
            Ok(added)
        }

        async fn affected_counts(
            &self,
            incident: uuid::Uuid,
        ) -> Result<Vec<(String, u64)>, StoreError> {
            use crate::convert::backend;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT source, COUNT(*) FROM {}incident_subjects WHERE incident = ",
                $p
            ));
            q.push_bind(incident.as_bytes().to_vec())
                .push(" GROUP BY source ORDER BY source");
            let rows: Vec<(String, i64)> = q
                .build_query_as()
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| backend(&e))?;
            Ok(rows
                .into_iter()
                .map(|(s, n)| (s, u64::try_from(n).unwrap_or(0)))
                .collect())
        }

        async fn queue_deliveries(
            &self,
            incident: uuid::Uuid,
            channel: &str,
            state: &str,
            now: time::OffsetDateTime,
        ) -> Result<u64, StoreError> {
            use crate::convert::{backend, to_nanos};
            let id = incident.as_bytes().to_vec();
            let mut tx = self.begin_write().await?;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "INSERT INTO {}incident_deliveries (incident, subject, channel, state, queued_at, run_at) SELECT a.incident, a.subject, ",
                $p
            ));
            q.push_bind(channel.to_owned())
                .push(", ")
                .push_bind(state.to_owned())
                .push(", ")
                .push_bind(to_nanos(now))
                .push(", ")
                .push_bind(to_nanos(now))
                .push(format!(" FROM {}incident_subjects a WHERE a.incident = ", $p))
                .push_bind(id)
                .push(" ON CONFLICT DO NOTHING");
            let n = q
                .build()
                .execute(&mut *tx)
                .await
                .map_err(|e| backend(&e))?
                .rows_affected();
            tx.commit().await.map_err(|e| backend(&e))?;
            Ok(n)
        }

        async fn claim_deliveries(
            &self,
            channel: &str,
            now: time::OffsetDateTime,
            lease: time::OffsetDateTime,
            limit: u32,
        ) -> Result<Vec<steward_core::store::DeliveryRow>, StoreError> {
            use crate::convert::{backend, to_nanos};
            use crate::incidents::{DELIVERY_COLUMNS, DeliverySql};
            let now_n = to_nanos(now);
            // A holder that died: what it claimed was never tried; what it was sending may
            // have gone out, so it is never sent again on its own.
            for (from, to) in [("claimed", "queued"), ("sending", "uncertain")] {
                let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                    "UPDATE {}incident_deliveries SET lease_until = NULL, state = ",
                    $p
                ));
                q.push_bind(to)
                    .push(" WHERE channel = ")
                    .push_bind(channel.to_owned())
                    .push(" AND state = ")
                    .push_bind(from)
                    .push(" AND lease_until <= ")
                    .push_bind(now_n);
                q.build()
                    .execute(&self.$pool)
                    .await
                    .map_err(|e| backend(&e))?;
            }
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "UPDATE {}incident_deliveries SET state = 'claimed', attempts = attempts + 1, lease_until = ",
                $p
            ));
            q.push_bind(to_nanos(lease))
                .push(format!(
                    " WHERE (incident, channel, subject) IN (SELECT incident, channel, subject FROM {}incident_deliveries WHERE channel = ",
                    $p
                ))
                .push_bind(channel.to_owned())
                .push(" AND state = 'queued' AND run_at <= ")
                .push_bind(now_n)
                .push(" ORDER BY run_at LIMIT ")
                .push_bind(i64::from(limit))
                .push(format!("{}) RETURNING {DELIVERY_COLUMNS}", $lock));
            let rows: Vec<DeliverySql> = q
                .build_query_as()
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| backend(&e))?;
            rows.into_iter().map(DeliverySql::into_row).collect()
        }

        async fn move_delivery(
            &self,
            incident: uuid::Uuid,
            subject: steward_core::subject::SubjectId,
            channel: &str,
            from: &str,
            to: &str,
            at: time::OffsetDateTime,
            error: Option<&str>,
        ) -> Result<bool, StoreError> {
            use crate::convert::{backend, to_nanos};
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "UPDATE {}incident_deliveries SET state = ",
                $p
            ));
            q.push_bind(to.to_owned());
            if to == "sent" {
                q.push(", lease_until = NULL, last_error = NULL, sent_at = ")
                    .push_bind(to_nanos(at));
            }
            if let Some(e) = error {
                q.push(", lease_until = NULL, last_error = ")
                    .push_bind(e.chars().take(200).collect::<String>());
            }
            q.push(" WHERE incident = ")
                .push_bind(incident.as_bytes().to_vec())
                .push(" AND channel = ")
                .push_bind(channel.to_owned())
                .push(" AND subject = ")
                .push_bind(subject.as_bytes().to_vec())
                .push(" AND state = ")
                .push_bind(from.to_owned());
            let n = q
                .build()
                .execute(&self.$pool)
                .await
                .map_err(|e| backend(&e))?
                .rows_affected();
            Ok(n > 0)
        }

        async fn retry_delivery(
            &self,
            incident: uuid::Uuid,
            subject: steward_core::subject::SubjectId,
            channel: &str,
            run_at: time::OffsetDateTime,
            error: &str,
        ) -> Result<(), StoreError> {
            use crate::convert::{backend, to_nanos};
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "UPDATE {}incident_deliveries SET state = 'queued', lease_until = NULL, run_at = ",
                $p
            ));
            q.push_bind(to_nanos(run_at))
                .push(", last_error = ")
                .push_bind(error.chars().take(200).collect::<String>())
                .push(" WHERE incident = ")
                .push_bind(incident.as_bytes().to_vec())
                .push(" AND channel = ")
                .push_bind(channel.to_owned())
                .push(" AND subject = ")
                .push_bind(subject.as_bytes().to_vec());
            q.build()
                .execute(&self.$pool)
                .await
                .map_err(|e| backend(&e))?;
            Ok(())
        }

        async fn delivery_counts(
            &self,
            incident: uuid::Uuid,
        ) -> Result<Vec<steward_core::store::DeliveryTally>, StoreError> {
            use crate::convert::backend;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT channel, state, last_error, COUNT(*) FROM {}incident_deliveries WHERE incident = ",
                $p
            ));
            q.push_bind(incident.as_bytes().to_vec())
                .push(" GROUP BY channel, state, last_error ORDER BY channel, state, last_error");
            let rows: Vec<(String, String, Option<String>, i64)> = q
                .build_query_as()
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| backend(&e))?;
            Ok(rows
                .into_iter()
                .map(|(c, s, e, n)| (c, s, e, u64::try_from(n).unwrap_or(0)))
                .collect())
        }

        async fn deliveries_of(
            &self,
            subject: steward_core::subject::SubjectId,
            channel: &str,
        ) -> Result<Vec<steward_core::store::DeliveryRow>, StoreError> {
            use crate::convert::backend;
            use crate::incidents::{DELIVERY_COLUMNS, DeliverySql};
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT {DELIVERY_COLUMNS} FROM {}incident_deliveries WHERE subject = ",
                $p
            ));
            q.push_bind(subject.as_bytes().to_vec())
                .push(" AND channel = ")
                .push_bind(channel.to_owned())
                .push(" ORDER BY queued_at DESC LIMIT 100");
            let rows: Vec<DeliverySql> = q
                .build_query_as()
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| backend(&e))?;
            rows.into_iter().map(DeliverySql::into_row).collect()
        }

        async fn acknowledge_deliveries(
            &self,
            incident: uuid::Uuid,
            subjects: &[steward_core::subject::SubjectId],
            channel: &str,
            state: &str,
            at: time::OffsetDateTime,
        ) -> Result<u64, StoreError> {
            use crate::convert::{backend, to_nanos};
            let mut n = 0;
            for chunk in subjects.chunks(500) {
                let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                    "UPDATE {}incident_deliveries SET state = ",
                    $p
                ));
                q.push_bind(state.to_owned())
                    .push(", acked_at = ")
                    .push_bind(to_nanos(at))
                    .push(" WHERE incident = ")
                    .push_bind(incident.as_bytes().to_vec())
                    .push(" AND channel = ")
                    .push_bind(channel.to_owned())
                    .push(" AND acked_at IS NULL AND state IN ('sent', 'posted') AND subject IN (");
                let mut list = q.separated(", ");
                for s in chunk {
                    list.push_bind(s.as_bytes().to_vec());
                }
                q.push(")");
                n += q
                    .build()
                    .execute(&self.$pool)
                    .await
                    .map_err(|e| backend(&e))?
                    .rows_affected();
            }
            Ok(n)
        }

        async fn requeue(
            &self,
            incident: uuid::Uuid,
            channel: &str,
            state: &str,
            now: time::OffsetDateTime,
        ) -> Result<u64, StoreError> {
            use crate::convert::{backend, to_nanos};
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "UPDATE {}incident_deliveries SET state = 'queued', attempts = 0, lease_until = NULL, run_at = ",
                $p
            ));
            q.push_bind(to_nanos(now))
                .push(" WHERE incident = ")
                .push_bind(incident.as_bytes().to_vec())
                .push(" AND channel = ")
                .push_bind(channel.to_owned())
                .push(" AND state = ")
                .push_bind(state.to_owned())
                .push(" AND (last_error IS NULL OR last_error <> 'no-email-address')");
            Ok(q.build()
                .execute(&self.$pool)
                .await
                .map_err(|e| backend(&e))?
                .rows_affected())
        }
    };
}

pub(crate) use incident_methods;
