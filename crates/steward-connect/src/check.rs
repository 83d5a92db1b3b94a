//! `steward datasets check`: a manifest against the declaration it serves and against the live
//! schema of its database. Every finding names its place and the fix.

use steward_policy::Declaration;
use steward_policy::taxonomy::covers;

use crate::manifest::{FieldErase, Manifest, TableErase};
use crate::source::{Dialect, Source};

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// An error stops the manifest from being used.
    pub error: bool,
    /// Where and what, and the fix.
    pub message: String,
}

fn error(message: String) -> Finding {
    Finding {
        error: true,
        message,
    }
}

fn warning(message: String) -> Finding {
    Finding {
        error: false,
        message,
    }
}

/// The manifest against the declaration: each table's purpose is declared and collects the
/// categories its fields name, and each legal hold it keeps data under is declared.
pub fn against_declaration(manifest: &Manifest, declaration: &Declaration) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in &manifest.tables {
        let at = format!("table `{}`", t.name);
        let Some(purpose) = declaration.purpose(&t.purpose) else {
            let ids: Vec<&str> = declaration.purposes.iter().map(|p| p.id.as_str()).collect();
            out.push(error(format!(
                "{at}: purpose `{}` is not declared (declared: {})",
                t.purpose,
                ids.join(", ")
            )));
            continue;
        };
        for f in &t.fields {
            if !purpose.categories.iter().any(|c| covers(c, &f.category)) {
                out.push(error(format!(
                    "{at}: `{}` holds {}, which purpose `{}` does not collect: add it to the purpose's categories, or name the purpose that does",
                    f.name, f.category, purpose.id
                )));
            }
        }
        if let Some(r) = &t.retention
            && let Err(e) = r.trigger()
        {
            out.push(error(format!("{at}: {e}")));
        }
        let keeps = t.erase == TableErase::Keep
            || t.fields.iter().any(|f| f.action() == Ok(FieldErase::Keep));
        if keeps && let Some(hold) = &t.hold {
            match declaration.purpose(hold) {
                Some(p) if p.legal_hold.is_some() => {}
                Some(_) => out.push(error(format!(
                    "{at}: hold = \"{hold}\" names a purpose with no legal hold: declare its [purposes.legal_hold] reason, or erase the data"
                ))),
                None => out.push(error(format!(
                    "{at}: hold = \"{hold}\" is not a declared purpose"
                ))),
            }
        }
    }
    // What the notice promises to delete but no sweep can find.
    for rule in crate::retention::rules(manifest, declaration) {
        if let Some(w) = rule.warning {
            out.push(warning(w));
        }
    }
    out
}

/// The manifest against the live schema: every table and column exists, and what erasure
/// writes fits each column (NULL where NULL may stand, a number in a number, a replacement no
/// longer than the column holds). Warns of a lookup column no index leads with.
pub fn against_schema(manifest: &Manifest, source: &Source) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in &manifest.tables {
        let at = format!("table `{}`", t.name);
        let Some(columns) = source.schema.get(t.db_table()) else {
            let near = steward_policy::suggest::nearest(
                t.db_table(),
                source.schema.keys().map(String::as_str),
            )
            .map(|n| format!(" — did you mean `{n}`?"))
            .unwrap_or_default();
            out.push(error(format!(
                "{at}: `{}` is not in the database{near}",
                t.db_table()
            )));
            continue;
        };
        let writes = t.erase != TableErase::Keep;
        if writes && let Some(what) = source.non_transactional.get(t.db_table()) {
            out.push(error(format!(
                "{at}: `{}` {what}, so an erasure that fails midway could leave it half done: name an InnoDB table (ALTER TABLE {} ENGINE=InnoDB)",
                t.db_table(),
                t.db_table()
            )));
        }
        let mut named: Vec<&String> = t
            .primary_key
            .iter()
            .chain(t.fields.iter().map(|f| &f.name))
            .chain(t.owns.iter().map(|o| &o.column))
            .collect();
        if let Some(only) = &t.only {
            named.push(&only.column);
        }
        if let Some(r) = &t.retention {
            named.push(&r.column);
        }
        named.extend(t.context.iter());
        for c in named {
            if !columns.contains_key(c) {
                let near = steward_policy::suggest::nearest(c, columns.keys().map(String::as_str))
                    .map(|n| format!(" — did you mean `{n}`?"))
                    .unwrap_or_default();
                out.push(error(format!(
                    "{at}: column `{c}` is not in the table{near}"
                )));
            }
        }
        for f in &t.fields {
            let (Some(column), TableErase::Fields) = (columns.get(&f.name), t.erase) else {
                continue;
            };
            // What erasure writes must fit the column, or it fails only when a person asks.
            let numeric = [
                "tinyint",
                "smallint",
                "mediumint",
                "int",
                "integer",
                "bigint",
                "decimal",
                "numeric",
                "real",
                "double",
                "double precision",
                "float",
            ]
            .contains(&column.kind.as_str());
            let written = match f.action() {
                Ok(FieldErase::Replace(text)) => Some(text),
                Ok(FieldErase::Hash) => Some("0".repeat(64)),
                _ => None,
            };
            if let Some(text) = &written {
                if numeric && text.parse::<f64>().is_err() {
                    out.push(error(format!(
                        "{at}: `{}` is a number ({}), so erasure cannot write `{text}` there: write erase = \"replace:0\" or null",
                        f.name, column.kind
                    )));
                } else if let Some(max) = column.max_length
                    && text.chars().count() as u64 > max
                {
                    out.push(error(format!(
                        "{at}: `{}` holds at most {max} characters, so erasure cannot write {} there: a shorter replacement, or null",
                        f.name,
                        if matches!(f.action(), Ok(FieldErase::Hash)) { "a 64-character hash".to_owned() } else { format!("`{text}`") }
                    )));
                }
            }
            if f.action() == Ok(FieldErase::Null) && !column.nullable {
                out.push(error(format!(
                    "{at}: `{}` may not hold NULL, so erasure cannot empty it that way: write erase = \"replace:\" (an empty text) or another replacement",
                    f.name
                )));
            }
        }
        if let Some(r) = &t.retention
            && columns.contains_key(&r.column)
            && let Err(kind) = crate::retention::column_kind(source, t.db_table(), &r.column)
        {
            out.push(error(format!(
                "{at}: its retention column `{}` is a {kind}, which cannot be compared with a date safely (text compares as text, and would be erased early): date the rows with a date, timestamp or integer (seconds since 1970) column",
                r.column
            )));
        }
        if let Some(r) = &t.retention
            && columns.contains_key(&r.column)
            && source.dialect != crate::source::Dialect::Sqlite
            && !source.is_indexed(t.db_table(), &r.column)
        {
            let (db, c) = (t.db_table(), &r.column);
            out.push(warning(format!(
                "{at}: the retention sweep finds due rows by `{c}`, which no index leads with, so every sweep reads the whole table: CREATE INDEX {db}_{c}_idx ON {db} ({c})"
            )));
        }
        for o in &t.owns {
            let target = manifest
                .table(&o.table)
                .map_or(o.table.as_str(), |t| t.db_table());
            match source.schema.get(target) {
                Some(columns) if !columns.contains_key(&o.to) => out.push(error(format!(
                    "{at}: owns `{}`.`{}`, a column not in that table",
                    o.table, o.to
                ))),
                Some(_) if !source.is_indexed(target, &o.to) => out.push(warning(format!(
                    "table `{}`: its rows are looked up by `{}`, which no index leads with, so every request reads the whole table: CREATE INDEX {target}_{}_idx ON {target} ({})",
                    o.table, o.to, o.to, o.to
                ))),
                _ => {}
            }
        }
        for f in t.fields.iter().filter(|f| f.identity.is_some()) {
            if !columns.contains_key(&f.name) {
                continue;
            }
            let db = t.db_table();
            let c = &f.name;
            // An e-mail address is matched without regard to case.
            let email = f.identity.as_deref() == Some("email");
            if email && !source.is_indexed_ignoring_case(db, c) {
                let fix = match source.dialect {
                    // MariaDB compares a `_ci` column without regard to case: give it one.
                    Dialect::MySql if source.is_case_insensitive(db, c) => {
                        format!("CREATE INDEX {db}_{c}_idx ON {db} ({c})")
                    }
                    Dialect::MySql => format!(
                        "give `{c}` a case-insensitive collation (ALTER TABLE {db} MODIFY {c} … COLLATE utf8mb4_unicode_ci) and an index (CREATE INDEX {db}_{c}_idx ON {db} ({c}))"
                    ),
                    Dialect::Postgres | Dialect::Sqlite => {
                        format!("CREATE INDEX {db}_{c}_lower ON {db} (lower({c}))")
                    }
                };
                out.push(warning(format!(
                    "{at}: people are looked up by `{c}` without regard to case, which no index serves, so every request reads the whole table: {fix}"
                )));
            } else if !email && !source.is_indexed(db, c) {
                out.push(warning(format!(
                    "{at}: people are looked up by `{c}`, which no index leads with, so every request reads the whole table: CREATE INDEX {db}_{c}_idx ON {db} ({c})"
                )));
            }
        }
    }
    out
}

/// Whether any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.error)
}
