//! Erasing what was found of a person in one dataset, as its manifest says: in one
//! transaction, tables that are owned before their owners, every row by its primary key.
//!
//! An erasure is complete only when every targeted row was changed or deleted, or is reported
//! held with the legal hold that keeps it. A row that changed or vanished since it was read,
//! or a statement the database refuses, fails the whole erasure — nothing is written — naming
//! the table and field.

use std::collections::{BTreeMap, BTreeSet};

use hmac::{KeyInit, Mac};
use sha2::Sha256;
use sqlx::Row as _;

use crate::find::Found;
use crate::manifest::{FieldErase, Manifest, Table, TableErase};
use crate::source::{Source, SourceError, cause};

/// What erasure did (or, dry, would do) to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOutcome {
    /// The table.
    pub table: String,
    /// Rows deleted.
    pub deleted: u64,
    /// Rows whose fields were changed.
    pub changed: u64,
    /// Fields kept, each with the legal hold's purpose that keeps it.
    pub held: Vec<(String, String)>,
    /// The statements run (or to run), with `?` for each value.
    pub statements: Vec<String>,
}

/// What erasure did to a dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erasure {
    /// Per table, owned tables first.
    pub tables: Vec<TableOutcome>,
    /// Whether nothing was written (`--dry-run`).
    pub dry: bool,
}

/// A statement and its values.
struct Step {
    sql: String,
    binds: Vec<Option<String>>,
    what: String,
}

/// Erases `found` in `source` as `manifest` says; with `dry`, only says what it would do.
/// `hash_key` keys the `hash` action (a person's value hashes the same in every table, and
/// cannot be reversed without the key).
///
/// # Errors
/// [`SourceError::Query`] naming the table and field, with nothing written, when a statement
/// fails or a row changed since it was read.
pub async fn erase(
    manifest: &Manifest,
    source: &Source,
    found: &Found,
    hash_key: &[u8; 32],
    dry: bool,
) -> Result<Erasure, SourceError> {
    erase_rows(manifest, source, found, hash_key, dry, None).await
}

/// As [`erase`]; the rows of the table `due` (a retention sweep's, past their period) are
/// erased whoever else's rows lead to them — they are due, not someone's to keep — while what
/// they own is kept where other rows lead to it too.
pub(crate) async fn erase_rows(
    manifest: &Manifest,
    source: &Source,
    found: &Found,
    hash_key: &[u8; 32],
    dry: bool,
    due: Option<&str>,
) -> Result<Erasure, SourceError> {
    let failed = |cause: String| SourceError::Query {
        dataset: manifest.dataset.name.clone(),
        cause,
    };
    let shared = shared_rows(manifest, source, found, due).await?;
    let none = BTreeMap::new();
    let mut plan: Vec<(TableOutcome, Vec<Step>)> = Vec::new();
    for name in &erase_order(manifest, found) {
        let (Some(table), Some(rows)) = (manifest.table(name), found.tables.get(name)) else {
            continue;
        };
        let kept = shared.get(name).unwrap_or(&none);
        plan.push(plan_table(source, table, rows, kept, hash_key).map_err(failed)?);
    }
    let mut outcome = Erasure {
        tables: Vec::new(),
        dry,
    };
    if dry {
        outcome.tables = plan.into_iter().map(|(t, _)| t).collect();
        return Ok(outcome);
    }
    let mut tx = source.pool.begin().await.map_err(|e| failed(cause(&e)))?;
    let written: Result<Vec<TableOutcome>, SourceError> = async {
        let mut done_tables = Vec::new();
        for (table, steps) in plan {
            for step in steps {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(step.sql));
                for b in step.binds {
                    query = query.bind(b);
                }
                let done = query
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| failed(format!("{}: {}", step.what, cause(&e))))?;
                if done.rows_affected() != 1 {
                    return Err(failed(format!(
                        "{}: the row changed or went since it was read; nothing was erased, try again",
                        step.what
                    )));
                }
            }
            done_tables.push(table);
        }
        Ok(done_tables)
    }
    .await;
    match written {
        Ok(tables) => {
            tx.commit().await.map_err(|e| failed(cause(&e)))?;
            outcome.tables = tables;
            Ok(outcome)
        }
        Err(e) => {
            // Rolled back now, not when the pool next uses the connection: until then the
            // database would hold the rows' locks (and every DDL on the tables would wait).
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// The rows found that are someone else's too, by table (indexes into its rows, with why):
/// a row that names someone else beside the person (a request with the employee's address and
/// a customer's), a row other people's rows lead to as well (an address two customers share),
/// and what hangs off a row kept for those reasons (the shared address's notes). Erasure
/// leaves them, and says so.
async fn shared_rows(
    manifest: &Manifest,
    source: &Source,
    found: &Found,
    due: Option<&str>,
) -> Result<BTreeMap<String, BTreeMap<usize, String>>, SourceError> {
    let d = source.dialect;
    let mut shared: BTreeMap<String, BTreeMap<usize, String>> = BTreeMap::new();
    // Owners before what they own, so that what a kept row owns is kept too.
    for name in &found.order {
        let (Some(table), Some(rows)) = (manifest.table(name), found.tables.get(name)) else {
            continue;
        };
        let mut kept: BTreeMap<usize, String> = shared.remove(name).unwrap_or_default();
        if due == Some(name.as_str()) {
            // Due rows go, whoever's rows lead to them.
        } else if table.fields.iter().any(|f| f.identity.is_some()) {
            // A table that holds people: who a row names decides.
            for (i, row) in rows.rows.iter().enumerate() {
                if crate::find::names(table, &rows.columns, row, &found.identities).1 {
                    kept.entry(i)
                        .or_insert_with(|| "it names someone else too".to_owned());
                }
            }
        } else {
            // Any other: whether rows that are not the person's lead to it as well.
            for owner in &manifest.tables {
                for o in owner.owns.iter().filter(|o| o.table == table.name) {
                    let Some(t) = rows.index(&o.to) else { continue };
                    let values: BTreeSet<String> =
                        rows.rows.iter().filter_map(|r| r[t].clone()).collect();
                    if values.is_empty() {
                        continue;
                    }
                    // How many of the owner's rows hold each value, found as the person's.
                    let mut ours: BTreeMap<String, u64> = BTreeMap::new();
                    if let Some(found_owner) = found.tables.get(&owner.name)
                        && let Some(c) = found_owner.index(&o.column)
                    {
                        for r in &found_owner.rows {
                            if let Some(v) = &r[c] {
                                *ours.entry(v.clone()).or_default() += 1;
                            }
                        }
                    }
                    let values: Vec<String> = values.into_iter().collect();
                    let cast = source.cast_type(owner.db_table(), &o.column);
                    for chunk in values.chunks(crate::find::BATCH) {
                        let list: Vec<String> =
                            (1..=chunk.len()).map(|n| d.param(n, &cast)).collect();
                        let sql = format!(
                            "SELECT {}, COUNT(*) FROM {} WHERE {} IN ({}) GROUP BY {}",
                            d.as_text(&o.column),
                            d.quote(owner.db_table()),
                            d.quote(&o.column),
                            list.join(", "),
                            d.quote(&o.column)
                        );
                        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for v in chunk {
                            query = query.bind(v.clone());
                        }
                        let counted = query.fetch_all(&source.pool).await.map_err(|e| {
                            SourceError::Query {
                                dataset: manifest.dataset.name.clone(),
                                cause: format!(
                                    "counting references to `{}`: {}",
                                    table.name,
                                    cause(&e)
                                ),
                            }
                        })?;
                        for row in counted {
                            let (Ok(Some(value)), Ok(n)) = (
                                row.try_get::<Option<String>, _>(0),
                                row.try_get::<i64, _>(1),
                            ) else {
                                continue;
                            };
                            if u64::try_from(n).unwrap_or(0)
                                > ours.get(&value).copied().unwrap_or(0)
                            {
                                for (i, r) in rows.rows.iter().enumerate() {
                                    if r[t].as_deref() == Some(value.as_str()) {
                                        kept.entry(i).or_insert_with(|| {
                                            format!(
                                                "shared: other people's rows of `{}` lead there too",
                                                owner.name
                                            )
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // What a kept row owns is kept with it.
        for o in &table.owns {
            let (Some(c), Some(owned)) = (rows.index(&o.column), found.tables.get(&o.table)) else {
                continue;
            };
            let Some(t) = owned.index(&o.to) else {
                continue;
            };
            let values: BTreeSet<&str> = kept
                .keys()
                .filter_map(|&i| rows.rows[i][c].as_deref())
                .collect();
            for (j, r) in owned.rows.iter().enumerate() {
                if r[t].as_deref().is_some_and(|v| values.contains(v)) {
                    shared
                        .entry(o.table.clone())
                        .or_default()
                        .entry(j)
                        .or_insert_with(|| {
                            format!("it belongs to a row of `{}` that is kept", table.name)
                        });
                }
            }
        }
        if !kept.is_empty() {
            shared.insert(name.clone(), kept);
        }
    }
    Ok(shared)
}

/// The statements that erase `rows` of `table`, but for the `shared` ones (by index, with
/// why), which are kept and said.
fn plan_table(
    source: &Source,
    table: &Table,
    rows: &crate::find::Rows,
    shared: &BTreeMap<usize, String>,
    hash_key: &[u8; 32],
) -> Result<(TableOutcome, Vec<Step>), String> {
    let d = source.dialect;
    let mut outcome = TableOutcome {
        table: table.name.clone(),
        deleted: 0,
        changed: 0,
        held: Vec::new(),
        statements: Vec::new(),
    };
    let mut steps = Vec::new();
    let keys: Vec<(usize, &String)> = table
        .primary_key
        .iter()
        .filter_map(|k| rows.index(k).map(|i| (i, k)))
        .collect();
    if keys.len() != table.primary_key.len() {
        return Err(format!("`{}`: its primary key was not read", table.name));
    }
    let hold = table.hold.clone().unwrap_or_default();
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for why in shared.values() {
        *by.entry(why.as_str()).or_default() += 1;
    }
    for (why, n) in by {
        outcome.held.push((format!("{n} row(s)"), why.to_owned()));
    }
    let mine = |i: usize| !shared.contains_key(&i);
    match table.erase {
        TableErase::Keep => {
            outcome.held = table
                .fields
                .iter()
                .map(|f| (f.name.clone(), hold.clone()))
                .collect();
            return Ok((outcome, steps));
        }
        TableErase::Delete => {
            for (_, row) in rows.rows.iter().enumerate().filter(|(i, _)| mine(*i)) {
                let mut binds = Vec::new();
                let filter = row_filter(source, table, &keys, rows, row, &mut binds);
                let sql = format!("DELETE FROM {} WHERE {filter}", d.quote(table.db_table()));
                outcome.statements.push(sql.clone());
                steps.push(Step {
                    sql,
                    binds,
                    what: format!("deleting from `{}`", table.name),
                });
                outcome.deleted += 1;
            }
        }
        TableErase::Fields => {
            let mut changes = Vec::new();
            for field in &table.fields {
                match field.action()? {
                    FieldErase::Keep => outcome.held.push((field.name.clone(), hold.clone())),
                    FieldErase::Unlinked => outcome.held.push((
                        field.name.clone(),
                        "unlinked: the row no longer names the person".to_owned(),
                    )),
                    action => changes.push((field, action)),
                }
            }
            if changes.is_empty() {
                return Ok((outcome, steps));
            }
            for (_, row) in rows.rows.iter().enumerate().filter(|(i, _)| mine(*i)) {
                let mut binds = Vec::new();
                let mut set = Vec::new();
                for (field, action) in &changes {
                    let cast = source.cast_type(table.db_table(), &field.name);
                    match action {
                        FieldErase::Null => set.push(format!("{} = NULL", d.quote(&field.name))),
                        FieldErase::Replace(text) => {
                            binds.push(Some(text.clone()));
                            let p = d.param(binds.len(), &cast);
                            set.push(format!("{} = {p}", d.quote(&field.name)));
                        }
                        FieldErase::Hash => {
                            let value = rows.index(&field.name).and_then(|i| row[i].clone());
                            binds.push(value.map(|v| keyed_hash(hash_key, &v)));
                            let p = d.param(binds.len(), &cast);
                            set.push(format!("{} = {p}", d.quote(&field.name)));
                        }
                        FieldErase::Keep | FieldErase::Unlinked => {}
                    }
                }
                let filter = row_filter(source, table, &keys, rows, row, &mut binds);
                let sql = format!(
                    "UPDATE {} SET {} WHERE {filter}",
                    d.quote(table.db_table()),
                    set.join(", ")
                );
                outcome.statements.push(sql.clone());
                let fields: Vec<&str> = changes.iter().map(|(f, _)| f.name.as_str()).collect();
                steps.push(Step {
                    sql,
                    binds,
                    what: format!("changing `{}` in `{}`", fields.join("`, `"), table.name),
                });
                outcome.changed += 1;
            }
        }
    }
    outcome.statements.dedup();
    Ok((outcome, steps))
}

/// The filter of a statement touching `row`, its values appended to `binds` (numbered after
/// those already there): its primary key, and every column read still holding what was read —
/// a row changed since (re-pointed to another person, its address changed) is not touched,
/// and the erasure fails.
fn row_filter(
    source: &Source,
    table: &Table,
    keys: &[(usize, &String)],
    rows: &crate::find::Rows,
    row: &[Option<String>],
    binds: &mut Vec<Option<String>>,
) -> String {
    let d = source.dialect;
    let mut filter = Vec::new();
    for (i, k) in keys {
        binds.push(row[*i].clone());
        let cast = source.cast_type(table.db_table(), k);
        filter.push(format!("{} = {}", d.quote(k), d.param(binds.len(), &cast)));
    }
    for (i, column) in rows.columns.iter().enumerate() {
        binds.push(row[i].clone());
        filter.push(d.same(column, binds.len()));
    }
    filter.join(" AND ")
}

/// The tables of `found` in the order they are erased: a table before every table that owns
/// it (rows that point at an owner go first), whichever way each was reached.
fn erase_order(manifest: &Manifest, found: &Found) -> Vec<String> {
    let mut left: Vec<&String> = found.order.iter().collect();
    let mut out = Vec::new();
    while !left.is_empty() {
        // A table none of whose owned tables is still to be erased.
        let ready = left.iter().position(|name| {
            manifest.table(name).is_none_or(|t| {
                !t.owns
                    .iter()
                    .any(|o| o.table != **name && left.iter().any(|l| **l == o.table))
            })
        });
        // A cycle: the latest reached goes first.
        let i = ready.unwrap_or(left.len() - 1);
        out.push(left.remove(i).clone());
    }
    out
}

/// HMAC-SHA256 of `value` under `key`, in hex: the same person's value hashes alike in every
/// table, and nobody without the key can test a guess.
pub fn keyed_hash(key: &[u8; 32], value: &str) -> String {
    let Ok(mut mac) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(value.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
