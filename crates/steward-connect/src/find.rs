//! Finding a person's rows: from their identities, through the tables that hold them, along
//! the references the manifest declares (`owns`), until no new row turns up. A reference cycle
//! ends there; each table is read in batches of bound parameters.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;
use unicode_normalization::UnicodeNormalization as _;

use crate::manifest::{DEFAULT_MAX_ROWS, Manifest, Table};
use crate::source::{Source, SourceError, cause};

/// The forms an e-mail address may be stored in: as given, and with its domain in the other
/// of Unicode and ASCII (punycode), each in lower case.
pub fn email_forms(email: &str) -> Vec<String> {
    let email = fold(email);
    let mut out = vec![email.clone()];
    if let Some((local, domain)) = email.rsplit_once('@') {
        let other = if domain.is_ascii() {
            idna::domain_to_unicode(domain).0
        } else {
            idna::domain_to_ascii(domain).unwrap_or_default()
        };
        if !other.is_empty() && other != domain {
            out.push(format!("{local}@{}", fold(&other)));
        }
    }
    // Decomposed (NFD), as some systems store accented letters; the vault keeps NFC.
    for form in out.clone() {
        let nfd: String = form.nfd().collect();
        if nfd != form {
            out.push(nfd);
        }
    }
    out
}

pub use steward_core::identity::fold;

/// Parameters per statement (every backend takes far more).
pub(crate) const BATCH: usize = 500;

/// The rows found in one table: the columns read (primary key, personal fields, the columns
/// references start from), each row's values as text (`None` for NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    /// The columns, in order.
    pub columns: Vec<String>,
    /// The rows, in the order found.
    pub rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    /// The index of `column`.
    pub fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    /// The values of `column`, each once, without NULLs.
    pub fn values(&self, column: &str) -> Vec<String> {
        let Some(i) = self.index(column) else {
            return Vec::new();
        };
        let set: BTreeSet<&String> = self.rows.iter().filter_map(|r| r[i].as_ref()).collect();
        set.into_iter().cloned().collect()
    }
}

/// Everything found of one person in one dataset, table by table, in the order reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Tables in the order they were reached (owners before what they own).
    pub order: Vec<String>,
    /// The rows of each.
    pub tables: BTreeMap<String, Rows>,
    /// Per table, how many rows a reference led to that were left out because they name
    /// someone else (a service request an employee handled holds the customer's address).
    pub withheld: BTreeMap<String, usize>,
    /// The person's identities as compared: (kind, folded value), e-mail addresses in every
    /// stored form. An erasure leaves a row that names someone else too.
    pub identities: BTreeSet<(String, String)>,
}

impl Found {
    /// How many rows in all.
    pub fn count(&self) -> usize {
        self.tables.values().map(|t| t.rows.len()).sum()
    }
}

/// The columns read of `table`: primary key, context, fields, the columns its references
/// start from, and those it is found by (references to it, its `only` column), each once —
/// an erasure checks each still holds what was read.
pub(crate) fn columns(manifest: &Manifest, table: &Table) -> Vec<String> {
    let incoming = manifest
        .tables
        .iter()
        .flat_map(|t| t.owns.iter())
        .filter(|o| o.table == table.name)
        .map(|o| &o.to);
    let mut out: Vec<String> = Vec::new();
    for c in table
        .primary_key
        .iter()
        .chain(table.context.iter())
        .chain(table.fields.iter().map(|f| &f.name))
        .chain(table.owns.iter().map(|o| &o.column))
        .chain(table.only.iter().map(|o| &o.column))
        .chain(incoming)
    {
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    out
}

/// Who `row` of `table` names, by its identity fields: (one of `mine`, someone else). A field
/// of a kind the person is not known by (a username, when only their address is known) tells
/// neither.
pub(crate) fn names(
    table: &Table,
    cols: &[String],
    row: &[Option<String>],
    mine: &BTreeSet<(String, String)>,
) -> (bool, bool) {
    let (mut me, mut other) = (false, false);
    for f in &table.fields {
        let Some(kind) = &f.identity else { continue };
        if !mine.iter().any(|(k, _)| k == kind) {
            continue;
        }
        let Some(value) = cols
            .iter()
            .position(|c| c == &f.name)
            .and_then(|i| row[i].as_deref())
            .filter(|v| !v.trim().is_empty())
        else {
            continue;
        };
        if mine.contains(&(kind.clone(), fold(&value.nfc().collect::<String>()))) {
            me = true;
        } else {
            other = true;
        }
    }
    (me, other)
}

/// Finds the rows of `identities` (kind, value as the vault normalised it) in `source`,
/// as `manifest` describes it.
///
/// # Errors
/// [`SourceError::Query`] when a statement fails (the database went away): nothing is
/// reported found that was not read.
pub async fn find(
    manifest: &Manifest,
    source: &Source,
    identities: &[(String, String)],
) -> Result<Found, SourceError> {
    let mut found = Found::default();
    let mut seen: BTreeMap<String, BTreeSet<Vec<Option<String>>>> = BTreeMap::new();
    let limit = manifest.dataset.max_rows.unwrap_or(DEFAULT_MAX_ROWS);
    // The person's identities as they are compared: e-mail addresses in every stored form.
    let mut mine: BTreeSet<(String, String)> = BTreeSet::new();
    for (kind, value) in identities {
        if kind == "email" {
            for form in email_forms(value) {
                mine.insert((kind.clone(), fold(&form)));
            }
        } else {
            mine.insert((kind.clone(), value.clone()));
        }
    }
    // More than the bound: the request fails (and is retried, never answered in part).
    let too_many = |table: &Table| SourceError::Query {
        dataset: manifest.dataset.name.clone(),
        cause: format!(
            "more than {limit} rows of one person (reading `{}`): set [dataset] max_rows higher in the manifest (memory grows with it)",
            table.name
        ),
    };
    // 1. The tables that hold an identity.
    let mut queue: Vec<(String, Vec<Vec<Option<String>>>)> = Vec::new();
    for table in &manifest.tables {
        for field in table.fields.iter().filter(|f| f.identity.is_some()) {
            let kind = field.identity.as_deref().unwrap_or_default();
            let mut values: Vec<String> = Vec::new();
            for (_, v) in identities.iter().filter(|(k, _)| k == kind) {
                if kind == "email" {
                    // As the operator's column may store it: the domain in Unicode or in
                    // ASCII (punycode), whichever the vault normalised it to.
                    for form in email_forms(v) {
                        if !values.contains(&form) {
                            values.push(form);
                        }
                    }
                } else if !values.contains(v) {
                    values.push(v.clone());
                }
            }
            if values.is_empty() {
                continue;
            }
            let rows = read(
                manifest,
                source,
                table,
                &field.name,
                kind == "email",
                &values,
                limit - found.count().min(limit),
            )
            .await?
            .ok_or_else(|| too_many(table))?;
            let new = remember(manifest, &mut found, &mut seen, table, rows);
            if found.count() > limit {
                return Err(too_many(table));
            }
            if !new.is_empty() {
                queue.push((table.name.clone(), new));
            }
        }
    }
    // 2. What those rows own, and what that owns, until nothing new turns up.
    follow(
        manifest,
        source,
        &mut found,
        &mut seen,
        queue,
        Some(&mine),
        limit,
    )
    .await?;
    found.identities = mine;
    Ok(found)
}

/// Adds to `found` what the rows in `queue` own, and what that owns, until nothing new turns
/// up; no more than `limit` rows in all. With `mine` (a person's identities), a row of a table
/// that holds people is followed only when it names them and nobody else; without, every row
/// owned is (a retention sweep: what an expired row owns goes with it).
pub(crate) async fn follow(
    manifest: &Manifest,
    source: &Source,
    found: &mut Found,
    seen: &mut BTreeMap<String, BTreeSet<Vec<Option<String>>>>,
    mut queue: Vec<(String, Vec<Vec<Option<String>>>)>,
    mine: Option<&BTreeSet<(String, String)>>,
    limit: usize,
) -> Result<(), SourceError> {
    let too_many = |table: &Table| SourceError::Query {
        dataset: manifest.dataset.name.clone(),
        cause: format!(
            "more than {limit} rows of one person (reading `{}`): set [dataset] max_rows higher in the manifest (memory grows with it)",
            table.name
        ),
    };
    while let Some((name, rows)) = queue.pop() {
        let Some(owner) = manifest.table(&name) else {
            continue;
        };
        let cols = columns(manifest, owner);
        for owns in &owner.owns {
            // A table's reference to itself leads to other people (an employee's reports),
            // unless it says the rows are the person's.
            if owns.table == owner.name && !owns.same_person {
                continue;
            }
            let Some(i) = cols.iter().position(|c| c == &owns.column) else {
                continue;
            };
            let values: BTreeSet<String> = rows.iter().filter_map(|r| r[i].clone()).collect();
            let Some(owned) = manifest.table(&owns.table) else {
                continue;
            };
            if values.is_empty() {
                continue;
            }
            let values: Vec<String> = values.into_iter().collect();
            let mut read_rows = read(
                manifest,
                source,
                owned,
                &owns.to,
                false,
                &values,
                limit - found.count().min(limit),
            )
            .await?
            .ok_or_else(|| too_many(owned))?;
            // A row that names someone else is theirs, not the person's: left out (unless
            // the reference says the rows are the person's whatever they name).
            // A row of a table that holds people is the person's when it names them and
            // nobody else; one that names no one (an empty address) is not known to be theirs.
            if let Some(mine) = mine
                && !owns.same_person
                && owned.fields.iter().any(|f| f.identity.is_some())
            {
                let owned_cols = columns(manifest, owned);
                let before = read_rows.len();
                read_rows.retain(|r| names(owned, &owned_cols, r, mine) == (true, false));
                if read_rows.len() < before {
                    *found.withheld.entry(owned.name.clone()).or_default() +=
                        before - read_rows.len();
                }
            }
            let new = remember(manifest, found, seen, owned, read_rows);
            if found.count() > limit {
                return Err(too_many(owned));
            }
            if !new.is_empty() {
                queue.push((owned.name.clone(), new));
            }
        }
    }
    Ok(())
}

/// Adds `rows` of `table` not seen before; returns those.
pub(crate) fn remember(
    manifest: &Manifest,
    found: &mut Found,
    seen: &mut BTreeMap<String, BTreeSet<Vec<Option<String>>>>,
    table: &Table,
    rows: Vec<Vec<Option<String>>>,
) -> Vec<Vec<Option<String>>> {
    let cols = columns(manifest, table);
    let keys: Vec<usize> = table
        .primary_key
        .iter()
        .filter_map(|k| cols.iter().position(|c| c == k))
        .collect();
    let known = seen.entry(table.name.clone()).or_default();
    let mut new = Vec::new();
    for row in rows {
        let key: Vec<Option<String>> = keys.iter().map(|&i| row[i].clone()).collect();
        if known.insert(key) {
            new.push(row);
        }
    }
    if !new.is_empty() {
        if !found.order.contains(&table.name) {
            found.order.push(table.name.clone());
        }
        let entry = found
            .tables
            .entry(table.name.clone())
            .or_insert_with(|| Rows {
                columns: cols.clone(),
                rows: Vec::new(),
            });
        entry.rows.extend(new.iter().cloned());
    }
    new
}

/// The rows of `table` whose `column` holds one of `values` (compared in lower case when
/// `lower`), restricted by the table's `only`, in batches; `None` when a batch holds more
/// than `limit` rows (none is read past it).
pub(crate) async fn read(
    manifest: &Manifest,
    source: &Source,
    table: &Table,
    column: &str,
    lower: bool,
    values: &[String],
    limit: usize,
) -> Result<Option<Vec<Vec<Option<String>>>>, SourceError> {
    let d = source.dialect;
    let cols = columns(manifest, table);
    // The column compared is read too: the database narrows (its collation may equate "ä" and
    // "a", MariaDB may convert a text to the number 0), and the rows are then kept only where
    // its value is exactly one of those sought.
    let mut select: Vec<String> = cols.iter().map(|c| d.as_text(c)).collect();
    select.push(d.as_text(column));
    let wanted: BTreeSet<String> = values
        .iter()
        .map(|v| if lower { fold(v) } else { v.clone() })
        .collect();
    // A column the database compares without regard to case is searched as it is, so that
    // its plain index serves; any other through lower(), which an index on lower(column)
    // serves (else the whole table is read: `steward datasets check` warns of it).
    let lower_sql = lower && !source.is_case_insensitive(table.db_table(), column);
    let mut out = Vec::new();
    for chunk in values.chunks(BATCH) {
        let mut n = 0;
        let mut next = |column_type: &str| {
            n += 1;
            d.param(n, column_type)
        };
        let target = if lower_sql {
            d.lower(column)
        } else {
            d.quote(column)
        };
        let cast = if lower {
            String::new()
        } else {
            source.cast_type(table.db_table(), column)
        };
        let list: Vec<String> = chunk.iter().map(|_| next(&cast)).collect();
        let mut sql = format!(
            "SELECT {} FROM {} WHERE {target} IN ({})",
            select.join(", "),
            d.quote(table.db_table()),
            list.join(", ")
        );
        let mut binds: Vec<String> = chunk.to_vec();
        if let Some(only) = &table.only {
            let cast = source.cast_type(table.db_table(), &only.column);
            let list: Vec<String> = only.values.iter().map(|_| next(&cast)).collect();
            let quoted = d.quote(&only.column);
            if only.except {
                // The rest: what holds none of the values, a NULL included.
                sql.push_str(&format!(
                    " AND ({quoted} NOT IN ({}) OR {quoted} IS NULL)",
                    list.join(", ")
                ));
            } else {
                sql.push_str(&format!(" AND {quoted} IN ({})", list.join(", ")));
            }
            binds.extend(only.values.iter().cloned());
        }
        // One row past the bound tells that there are more; no more than that is read.
        sql.push_str(&format!(
            " LIMIT {}",
            limit.saturating_sub(out.len()).saturating_add(1)
        ));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            query = query.bind(b);
        }
        let rows = query
            .fetch_all(&source.pool)
            .await
            .map_err(|e| SourceError::Query {
                dataset: manifest.dataset.name.clone(),
                cause: format!("reading `{}`: {}", table.name, cause(&e)),
            })?;
        // Across batches too: no more than the bound is ever held.
        if rows.len() > limit.saturating_sub(out.len()) {
            return Ok(None);
        }
        for row in rows {
            let matched: Option<String> =
                row.try_get::<Option<String>, _>(cols.len()).ok().flatten();
            // As the vault compares addresses: canonically (NFC), then without regard to case.
            let exact = matched.is_some_and(|m| {
                wanted.contains(&if lower {
                    fold(&m.nfc().collect::<String>())
                } else {
                    m
                })
            });
            if !exact {
                continue;
            }
            out.push(
                (0..cols.len())
                    .map(|i| row.try_get::<Option<String>, _>(i).ok().flatten())
                    .collect(),
            );
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_alone_never_makes_a_sign_a_letter() {
        assert_ne!(fold("\u{212A}en@example.com"), fold("ken@example.com"));
        assert_eq!(fold("Ken@Example.COM"), "ken@example.com");
        assert_eq!(fold("ÄNNE@example.com"), fold("änne@example.com"));
    }

    #[test]
    fn an_address_is_sought_in_its_decomposed_form_too() {
        let forms = email_forms("café@example.com");
        assert!(
            forms.contains(&"cafe\u{301}@example.com".to_owned()),
            "{forms:?}"
        );
        assert!(forms.contains(&"café@example.com".to_owned()));
    }
}
