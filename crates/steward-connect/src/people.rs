//! Everyone a dataset holds data of some categories on: a breach's affected people in the
//! operator's own database (GDPR Art. 33(3)(a), 34). The identities come from the tables that
//! hold the categories, and from the tables that own them (a user's metadata is reached from
//! the user); the rows are counted where the categories are.

use std::collections::BTreeSet;

use sqlx::Row as _;
use steward_core::requests::People;
use steward_policy::taxonomy::covers;

use crate::manifest::{Manifest, Table};
use crate::source::{Source, SourceError, cause};

/// The `WHERE` clause of a table's `only` restriction (`true` without one), with its binds.
fn only_filter(source: &Source, table: &Table) -> (String, Vec<String>) {
    let d = source.dialect;
    let Some(only) = &table.only else {
        return ("1 = 1".to_owned(), Vec::new());
    };
    let cast = source.cast_type(table.db_table(), &only.column);
    let mut binds = Vec::new();
    let mut list = Vec::new();
    for v in &only.values {
        binds.push(v.clone());
        list.push(d.param(binds.len(), &cast));
    }
    let q = d.quote(&only.column);
    let filter = if only.except {
        format!("({q} NOT IN ({}) OR {q} IS NULL)", list.join(", "))
    } else {
        format!("{q} IN ({})", list.join(", "))
    };
    (filter, binds)
}

/// The identities (kind, value) of everyone whose rows hold one of `categories` (or their
/// children), at most `limit` values, and how many rows hold them.
///
/// # Errors
/// [`SourceError::Query`] naming the table when a statement fails.
pub async fn people(
    manifest: &Manifest,
    source: &Source,
    categories: &[String],
    limit: usize,
) -> Result<People, SourceError> {
    let d = source.dialect;
    let fail = |table: &str, e: &sqlx::Error| SourceError::Query {
        dataset: manifest.dataset.name.clone(),
        cause: format!("reading the people of `{table}`: {}", cause(e)),
    };
    let holds = |t: &Table| {
        t.fields
            .iter()
            .any(|f| categories.iter().any(|c| covers(c, &f.category)))
    };
    let matched: Vec<&Table> = manifest.tables.iter().filter(|t| holds(t)).collect();
    let mut out = People::default();
    for t in &matched {
        let (filter, binds) = only_filter(source, t);
        let sql = format!(
            "SELECT COUNT(*) FROM {} WHERE {filter}",
            d.quote(t.db_table())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        let row = q
            .fetch_one(&source.pool)
            .await
            .map_err(|e| fail(&t.name, &e))?;
        out.rows += u64::try_from(row.try_get::<i64, _>(0).unwrap_or(0)).unwrap_or(0);
    }
    // The tables whose identity fields name those people: the matched ones, and those owning
    // a matched one.
    let names: BTreeSet<&str> = matched.iter().map(|t| t.name.as_str()).collect();
    let mut seen = BTreeSet::new();
    for t in &manifest.tables {
        let owns_one = t.owns.iter().any(|o| names.contains(o.table.as_str()));
        if !(names.contains(t.name.as_str()) || owns_one) {
            continue;
        }
        for f in t.fields.iter().filter(|f| f.identity.is_some()) {
            let kind = f.identity.clone().unwrap_or_default();
            let (filter, binds) = only_filter(source, t);
            let sql = format!(
                "SELECT DISTINCT {} FROM {} WHERE {} IS NOT NULL AND {filter} LIMIT {limit}",
                d.as_text(&f.name),
                d.quote(t.db_table()),
                d.quote(&f.name),
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for b in binds {
                q = q.bind(b);
            }
            let rows = q
                .fetch_all(&source.pool)
                .await
                .map_err(|e| fail(&t.name, &e))?;
            for r in rows {
                if let Ok(Some(v)) = r.try_get::<Option<String>, _>(0) {
                    let v = v.trim().to_owned();
                    if !v.is_empty() && seen.len() < limit {
                        seen.insert((kind.clone(), v));
                    }
                }
            }
        }
    }
    out.identities = seen.into_iter().collect();
    Ok(out)
}
