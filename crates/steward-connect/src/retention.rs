//! Retention over the operator's own databases (GDPR Art. 5(1)(e), storage limitation): a
//! table whose manifest entry names the column that dates its rows
//! (`retention = { column = "created_at" }`) is swept by the period its purpose declares —
//! or, for a table kept under a legal hold (`erase = "keep"`), by the hold's own period. A row
//! past its period is erased as the manifest says (deleted, or its fields changed), with what
//! it owns, exactly as a person's erasure would: one transaction per batch, every row still
//! holding what was read, what other people's rows lead to kept.
//!
//! Nothing is erased early: the cutoff is counted back from the sweep's date, a row whose
//! column is NULL has not reached its event, and a period given as a range counts its
//! shortest length (a sweep that runs daily keeps the longest).

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row as _;
use steward_core::retention::{Cursor, DueCount, Over, Rule};
use steward_policy::declaration::Purpose;
use steward_policy::{Declaration, Duration, Retention, Trigger, Unit};
use time::OffsetDateTime;

use crate::erase::erase_rows;
use crate::find::{Found, columns, follow, remember};
use crate::manifest::{FieldErase, Manifest, Table, TableErase};
use crate::source::{Dialect, Source, SourceError, cause};

/// Rows of the dated table one batch reads (with what they own, one transaction).
pub const BATCH: usize = 200;

/// One table's retention rule, as the sweep applies it.
#[derive(Debug, Clone)]
pub struct TableRule {
    /// The rule, in words (`steward retention rules`).
    pub rule: Rule,
    /// How the sweep finds what is due; `None` when it does not sweep the table (`rule.action`
    /// says why).
    pub due: Option<Dating>,
    /// Why the table should be swept but cannot be, for `steward datasets check`.
    pub warning: Option<String>,
}

/// What makes a table's rows due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dating {
    /// The table, as the manifest names it.
    pub table: String,
    /// The column that dates its rows.
    pub column: String,
    /// How long after the column's time a row is kept (the shortest, for a range).
    pub period: Duration,
    /// Whether due rows are deleted (a held table whose hold ended) whatever the table's
    /// `erase` says.
    pub delete: bool,
}

/// The rule a retention gives: its shortest period and the event it counts from; `None` for
/// data kept indefinitely.
fn period(retention: &Retention) -> Option<(Duration, Trigger)> {
    match retention {
        Retention::Period { min, after, .. } => Some((*min, *after)),
        Retention::Until(t) => Some((Duration::new(0, Unit::Day), *t)),
        Retention::Session => Some((Duration::new(0, Unit::Day), Trigger::Collection)),
        Retention::Indefinite { .. } => None,
    }
}

/// Where `purpose`'s retention of `category` is declared (`purposes[3].retention`).
fn declared_at(declaration: &Declaration, purpose: &Purpose, category: Option<&str>) -> String {
    let i = declaration
        .purposes
        .iter()
        .position(|p| p.id == purpose.id)
        .unwrap_or_default();
    match category.and_then(|c| {
        purpose
            .retain
            .keys()
            .filter(|r| steward_policy::taxonomy::covers(r, c))
            .max_by_key(|r| r.len())
    }) {
        Some(c) => format!("purposes[{i}].retain.\"{c}\""),
        None => format!("purposes[{i}].retention"),
    }
}

/// The retention rules of a manifest's tables under `declaration`, one per table, in the
/// manifest's order.
pub fn rules(manifest: &Manifest, declaration: &Declaration) -> Vec<TableRule> {
    manifest
        .tables
        .iter()
        .map(|t| table_rule(manifest, declaration, t))
        .collect()
}

/// The rules of [`rules`], in words only (`steward retention rules`).
pub fn described(manifest: &Manifest, declaration: &Declaration) -> Vec<Rule> {
    rules(manifest, declaration)
        .into_iter()
        .map(|r| r.rule)
        .collect()
}

fn table_rule(manifest: &Manifest, declaration: &Declaration, t: &Table) -> TableRule {
    let dataset = &manifest.dataset.name;
    let categories: BTreeSet<&str> = t.fields.iter().map(|f| f.category.as_str()).collect();
    let held = t.erase == TableErase::Keep;
    // Whose period: the table's purpose, or for a held table the hold's.
    let governing = if held {
        t.hold.as_deref()
    } else {
        Some(t.purpose.as_str())
    };
    let mut rule = Rule {
        id: format!("dataset:{dataset}/{}", t.name),
        over: Over::Dataset {
            dataset: dataset.clone(),
            table: t.name.clone(),
        },
        covers: format!(
            "rows of `{}` in dataset `{dataset}` ({}) for `{}`",
            t.db_table(),
            categories.iter().copied().collect::<Vec<_>>().join(", "),
            t.purpose
        ),
        keep: String::new(),
        action: String::new(),
        declared_at: None,
        swept: false,
    };
    let not_swept = |mut rule: Rule, why: String| {
        rule.action = why;
        TableRule {
            rule,
            due: None,
            warning: None,
        }
    };
    // Kept longer than the notice says: `check` warns.
    let cannot = |mut rule: Rule, why: String| {
        rule.action = format!("not swept: {why}");
        TableRule {
            warning: Some(format!(
                "table `{}`: its rows are kept {}, but {why}",
                t.name, rule.keep
            )),
            rule,
            due: None,
        }
    };
    let Some(purpose) = governing.and_then(|p| declaration.purpose(p)) else {
        return not_swept(
            rule,
            "not swept: its purpose is not declared (`steward datasets check`)".to_owned(),
        );
    };
    // The periods of its categories (every one, as a row goes whole): the longest wins.
    let mut periods: Vec<(Option<&str>, &Retention)> = Vec::new();
    if categories.is_empty() {
        if let Some(r) = &purpose.retention {
            periods.push((None, r));
        }
    } else {
        for c in &categories {
            match purpose.retention_for(c) {
                Some(r) => periods.push((Some(c), r)),
                None => {
                    return not_swept(
                        rule,
                        format!("not swept: `{}` states no retention for {c}", purpose.id),
                    );
                }
            }
        }
    }
    let Some(&(category, longest)) = periods
        .iter()
        .max_by_key(|(_, r)| period(r).map_or(u64::MAX, |(d, _)| d.approx_hours()))
    else {
        return not_swept(
            rule,
            format!("not swept: `{}` states no retention", purpose.id),
        );
    };
    rule.keep = longest.to_string();
    rule.declared_at = Some(declared_at(declaration, purpose, category));
    let Some((length, trigger)) = period(longest) else {
        rule.action = "kept".to_owned();
        return TableRule {
            rule,
            due: None,
            warning: None,
        };
    };
    if periods
        .iter()
        .filter_map(|(_, r)| period(r))
        .any(|(_, t)| t != trigger)
    {
        return cannot(
            rule,
            "its fields' periods count from different events, so no one column dates a row: describe them as separate tables (`table = …`)".to_owned(),
        );
    }
    let Some(dated) = &t.retention else {
        let column = format!(
            "retention = {{ column = \"…\", event = \"{}\" }}",
            event_word(trigger)
        );
        // A period from collection can always be dated (rows are written when collected):
        // without a column, the notice's promise is not kept. Other events (an account's
        // closure) the operator's application may not record: the rows go with the person.
        return if trigger == Trigger::Collection {
            cannot(
                rule,
                format!(
                    "no column dates its rows: name the one holding when each was collected in the manifest ({column})"
                ),
            )
        } else {
            not_swept(
                rule,
                format!(
                    "erased with the person, not swept by age: no column holds the {} (name one in the manifest: {column})",
                    event_word(trigger)
                ),
            )
        };
    };
    match dated.trigger() {
        Ok(event) if event == trigger => {}
        _ => {
            return cannot(
                rule,
                format!(
                    "its retention column dates {}, while the period counts from {}: name the column that dates {}",
                    dated.event,
                    event_word(trigger),
                    event_word(trigger)
                ),
            );
        }
    }
    let changes = t
        .fields
        .iter()
        .any(|f| !matches!(f.action(), Ok(FieldErase::Keep | FieldErase::Unlinked)));
    rule.action = if held {
        format!(
            "the rows are deleted when the legal hold of `{}` ends (dated by `{}`)",
            purpose.id, dated.column
        )
    } else {
        match t.erase {
            TableErase::Delete => format!(
                "the rows are deleted, with what they own (dated by `{}`)",
                dated.column
            ),
            TableErase::Fields if changes => format!(
                "the rows' fields are erased as the manifest says, with what they own (dated by `{}`)",
                dated.column
            ),
            TableErase::Fields => {
                return not_swept(
                    rule,
                    "not swept: erasure changes none of its fields".to_owned(),
                );
            }
            TableErase::Keep => unreachable!("a held table is handled above"),
        }
    };
    rule.swept = true;
    TableRule {
        rule,
        due: Some(Dating {
            table: t.name.clone(),
            column: dated.column.clone(),
            period: length,
            delete: held,
        }),
        warning: None,
    }
}

fn event_word(t: Trigger) -> &'static str {
    match t {
        Trigger::Collection => "collection",
        Trigger::AccountClosure => "account closure",
        Trigger::LastActivity => "last activity",
        Trigger::ConsentWithdrawal => "consent withdrawal",
        Trigger::ContractEnd => "contract end",
    }
}

/// The statement's filter of a table's due rows, with its values: dated before `before`,
/// within its `only`, and (for a table whose fields are changed) not erased yet.
fn due_filter(
    source: &Source,
    table: &Table,
    dating: &Dating,
    before: OffsetDateTime,
) -> (String, Vec<String>) {
    let d = source.dialect;
    let db = table.db_table();
    let mut binds = Vec::new();
    let mut parts = Vec::new();
    let kind = column_kind(source, db, &dating.column).unwrap_or(DateKind::Unreadable);
    let q = d.quote(&dating.column);
    let utc = before.to_offset(time::UtcOffset::UTC);
    let (target, value) = match kind {
        DateKind::Timestamp => (
            q,
            match d {
                Dialect::Postgres => format!("{}+00", timestamp(utc)),
                Dialect::MySql | Dialect::Sqlite => timestamp(utc),
            },
        ),
        // A date stands for any time that day: due once the whole day is past the cutoff.
        DateKind::Date => (q, timestamp(utc)[..10].to_owned()),
        DateKind::Seconds => (q, utc.unix_timestamp().to_string()),
        // SQLite stores what it is given: seconds as numbers, ISO 8601 text (with `T` or a
        // space, an offset or `Z`) read by SQLite's own date functions — a date alone taken
        // as the end of its day — and anything else (no date at all, another format) never
        // due.
        DateKind::SqliteAny => (
            format!(
                "(CASE WHEN typeof({q}) IN ('integer', 'real') THEN {q} WHEN length({q}) = 10 THEN unixepoch({q}) + 86400 ELSE unixepoch({q}) END)"
            ),
            utc.unix_timestamp().to_string(),
        ),
        // Never compared: `check` refuses the column, and nothing is due.
        DateKind::Unreadable => ("NULL".to_owned(), String::new()),
    };
    binds.push(value);
    let param = match kind {
        // Compared as a number: SQLite sorts every number before every text.
        DateKind::SqliteAny => "CAST(? AS INTEGER)".to_owned(),
        _ => d.param(binds.len(), &source.cast_type(db, &dating.column)),
    };
    parts.push(format!("{target} < {param}"));
    if let Some(only) = &table.only {
        let cast = source.cast_type(db, &only.column);
        let mut list = Vec::new();
        for v in &only.values {
            binds.push(v.clone());
            list.push(d.param(binds.len(), &cast));
        }
        let q = d.quote(&only.column);
        parts.push(if only.except {
            format!("({q} NOT IN ({}) OR {q} IS NULL)", list.join(", "))
        } else {
            format!("{q} IN ({})", list.join(", "))
        });
    }
    if table.erase == TableErase::Fields && !dating.delete {
        // A row whose changed fields already hold what erasure writes is done: it is not
        // read again (the sweep is idempotent, and counts nothing twice).
        let mut pending = Vec::new();
        for f in &table.fields {
            let q = d.quote(&f.name);
            match f.action() {
                Ok(FieldErase::Null) => pending.push(format!("{q} IS NOT NULL")),
                Ok(FieldErase::Replace(text)) => {
                    // Compared as the column's type: `replace:0` in a decimal column reads
                    // back as 0.00, which is the replacement, not a value still to erase.
                    binds.push(text);
                    pending.push(format!(
                        "({q} IS NOT NULL AND {q} <> {})",
                        d.param(binds.len(), &source.cast_type(db, &f.name))
                    ));
                }
                Ok(FieldErase::Hash) => pending.push(format!(
                    "({q} IS NOT NULL AND LENGTH({}) <> 64)",
                    d.as_text(&f.name)
                )),
                _ => {}
            }
        }
        if !pending.is_empty() {
            parts.push(format!("({})", pending.join(" OR ")));
        }
    }
    (parts.join(" AND "), binds)
}

/// `YYYY-MM-DD HH:MM:SS` of a UTC instant.
fn timestamp(utc: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

/// How a retention column's values are compared with a cutoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateKind {
    /// A timestamp or datetime column (PostgreSQL, MariaDB/MySQL), read as UTC.
    Timestamp,
    /// A date column: a day, due once all of it is past the cutoff.
    Date,
    /// An integer column: whole seconds since 1970.
    Seconds,
    /// A SQLite column, whatever it holds: numbers as seconds, ISO 8601 text by SQLite's date
    /// functions, anything else never due.
    SqliteAny,
    /// Text, a decimal or another type whose values cannot be compared with a date safely.
    Unreadable,
}

/// How `table.column` compares with a date; `Err` names the type when it cannot.
///
/// # Errors
/// The column's type, when it is neither a date, a timestamp nor an integer (PostgreSQL,
/// MariaDB/MySQL), or the column is missing.
pub fn column_kind(source: &Source, table: &str, column: &str) -> Result<DateKind, String> {
    if source.dialect == Dialect::Sqlite {
        return Ok(DateKind::SqliteAny);
    }
    let kind = source
        .schema
        .get(table)
        .and_then(|t| t.get(column))
        .map(|c| c.kind.as_str())
        .ok_or_else(|| format!("`{column}` is not in the table"))?;
    match kind {
        "date" => Ok(DateKind::Date),
        "datetime" | "timestamp" | "timestamp without time zone" | "timestamp with time zone" => {
            Ok(DateKind::Timestamp)
        }
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => {
            Ok(DateKind::Seconds)
        }
        other => Err(other.to_owned()),
    }
}

/// A time as a database gives it back as text: ISO 8601 with a space or a `T`, with or
/// without fractions and an offset (UTC without), a date alone, or seconds since 1970.
pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let text = text.trim();
    if let Ok(secs) = text.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp(secs).ok();
    }
    let mut t = text.replacen(' ', "T", 1);
    if t.len() == 10 {
        t.push_str("T00:00:00");
    }
    // PostgreSQL writes `+00`; RFC 3339 wants `+00:00`.
    if let Some(sign) = t.rfind(['+', '-']).filter(|&i| i > 10)
        && t.len() - sign == 3
    {
        t.push_str(":00");
    }
    if !t.ends_with('Z') && t.rfind(['+', '-']).is_none_or(|i| i <= 10) {
        t.push('Z');
    }
    OffsetDateTime::parse(&t, &Rfc3339).ok()
}

/// The next step of a sweep as of `as_of` ([`steward_core::retention::SweptSource`]): with
/// `hash_key`, the next batch of [`BATCH`] dated rows past their period erased (with what they
/// own) in one transaction, and its rule's id and the rows erased (dated and owned); without,
/// the next rule's count of due rows (a plan: the dated rows; what they own comes on top),
/// changing nothing. `None` once every swept table is done. Idempotent: a second sweep as of
/// the same date erases nothing.
///
/// # Errors
/// [`SourceError::Query`] naming the table when a statement fails; what earlier batches
/// erased stays erased.
pub async fn sweep_step(
    manifest: &Manifest,
    source: &Source,
    declaration: &Declaration,
    as_of: OffsetDateTime,
    hash_key: Option<&[u8; 32]>,
    cursor: &mut Cursor,
) -> Result<Option<(String, DueCount)>, SourceError> {
    let swept: Vec<TableRule> = rules(manifest, declaration)
        .into_iter()
        .filter(|r| r.due.is_some())
        .collect();
    while let Some(r) = swept.get(cursor.rule) {
        let Some(dating) = &r.due else {
            cursor.rule += 1;
            continue;
        };
        let Some(key) = hash_key else {
            cursor.rule += 1;
            return Ok(Some((
                r.rule.id.clone(),
                count(manifest, source, declaration, as_of, dating).await?,
            )));
        };
        match batch(
            manifest,
            source,
            declaration,
            as_of,
            dating,
            key,
            cursor.skipped,
        )
        .await?
        {
            None => {
                *cursor = Cursor {
                    rule: cursor.rule + 1,
                    skipped: 0,
                };
            }
            Some(done) => {
                cursor.skipped += done.left;
                if done.read < BATCH {
                    *cursor = Cursor {
                        rule: cursor.rule + 1,
                        skipped: 0,
                    };
                }
                if done.erased.count > 0 {
                    return Ok(Some((r.rule.id.clone(), done.erased)));
                }
            }
        }
    }
    Ok(None)
}

/// How many rows of a rule's table are due, and their earliest and latest dates.
async fn count(
    manifest: &Manifest,
    source: &Source,
    declaration: &Declaration,
    as_of: OffsetDateTime,
    dating: &Dating,
) -> Result<DueCount, SourceError> {
    let d = source.dialect;
    let Some(table) = manifest.table(&dating.table) else {
        return Ok(DueCount::default());
    };
    let before = steward_core::time_math::sub(as_of, dating.period, &declaration.rights.holidays);
    let (filter, binds) = due_filter(source, table, dating, before);
    let sql = format!(
        "SELECT COUNT(*), MIN({c}), MAX({c}) FROM {} WHERE {filter}",
        d.quote(table.db_table()),
        c = d.as_text(&dating.column)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        query = query.bind(b);
    }
    let row = query
        .fetch_one(&source.pool)
        .await
        .map_err(|e| SourceError::Query {
            dataset: manifest.dataset.name.clone(),
            cause: format!("counting the due rows of `{}`: {}", table.name, cause(&e)),
        })?;
    let n = row.try_get::<i64, _>(0).unwrap_or(0);
    let at = |i: usize| {
        row.try_get::<Option<String>, _>(i)
            .ok()
            .flatten()
            .and_then(|t| parse_time(&t))
    };
    Ok(DueCount {
        count: u64::try_from(n).unwrap_or(0),
        earliest: at(1),
        latest: at(2),
    })
}

/// What one batch did.
struct Batch {
    /// Dated rows read.
    read: usize,
    /// Of those, rows left (other people's rows lead to them): the next batch reads past.
    left: usize,
    /// Rows erased, dated and owned, with the dated rows' earliest and latest dates.
    erased: DueCount,
}

/// Erases the next batch of a rule's due rows, past the `skipped` ones earlier batches left;
/// `None` when none is left.
async fn batch(
    manifest: &Manifest,
    source: &Source,
    declaration: &Declaration,
    as_of: OffsetDateTime,
    dating: &Dating,
    hash_key: &[u8; 32],
    skipped: usize,
) -> Result<Option<Batch>, SourceError> {
    let d = source.dialect;
    let limit = manifest
        .dataset
        .max_rows
        .unwrap_or(crate::manifest::DEFAULT_MAX_ROWS);
    // A held table's rows are deleted when the hold ends: the erasure sees it so.
    let mut acting = manifest.clone();
    if dating.delete
        && let Some(t) = acting.tables.iter_mut().find(|t| t.name == dating.table)
    {
        t.erase = TableErase::Delete;
    }
    let Some(table) = acting.table(&dating.table) else {
        return Ok(None);
    };
    let before = steward_core::time_math::sub(as_of, dating.period, &declaration.rights.holidays);
    let (filter, binds) = due_filter(source, table, dating, before);
    let cols = columns(&acting, table);
    let mut select: Vec<String> = cols.iter().map(|c| d.as_text(c)).collect();
    select.push(d.as_text(&dating.column));
    let order: Vec<String> = std::iter::once(&dating.column)
        .chain(table.primary_key.iter())
        .map(|c| d.quote(c))
        .collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE {filter} ORDER BY {} LIMIT {BATCH} OFFSET {skipped}",
        select.join(", "),
        d.quote(table.db_table()),
        order.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in &binds {
        query = query.bind(b.clone());
    }
    let read = query
        .fetch_all(&source.pool)
        .await
        .map_err(|e| SourceError::Query {
            dataset: manifest.dataset.name.clone(),
            cause: format!("reading the due rows of `{}`: {}", table.name, cause(&e)),
        })?;
    if read.is_empty() {
        return Ok(None);
    }
    let mut erased = DueCount::default();
    let mut rows = Vec::with_capacity(read.len());
    for row in &read {
        let dated = row
            .try_get::<Option<String>, _>(cols.len())
            .ok()
            .flatten()
            .and_then(|t| parse_time(&t));
        erased = erased.merge(DueCount {
            count: 0,
            earliest: dated,
            latest: dated,
        });
        rows.push(
            (0..cols.len())
                .map(|i| row.try_get::<Option<String>, _>(i).ok().flatten())
                .collect::<Vec<_>>(),
        );
    }
    let mut found = Found::default();
    let mut seen: BTreeMap<String, BTreeSet<Vec<Option<String>>>> = BTreeMap::new();
    let new = remember(&acting, &mut found, &mut seen, table, rows);
    follow(
        &acting,
        source,
        &mut found,
        &mut seen,
        vec![(table.name.clone(), new)],
        None,
        limit,
    )
    .await?;
    let done = erase_rows(&acting, source, &found, hash_key, false, Some(&table.name)).await?;
    let mine = done
        .tables
        .iter()
        .find(|t| t.table == table.name)
        .map_or(0, |t| t.deleted + t.changed);
    erased.count = done.tables.iter().map(|t| t.deleted + t.changed).sum();
    Ok(Some(Batch {
        read: read.len(),
        left: read
            .len()
            .saturating_sub(usize::try_from(mine).unwrap_or(usize::MAX)),
        erased,
    }))
}
