//! A connection to one of the operator's databases, in its own SQL dialect, and what its live
//! schema holds.
//!
//! Values are never spliced into SQL: every value is a bound parameter. Table and column names
//! come from the manifest, are checked to be plain identifiers there, are checked against the
//! live schema here, and are always quoted.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

/// The SQL dialects Steward reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MariaDB or MySQL.
    MySql,
    /// SQLite.
    Sqlite,
}

impl Dialect {
    /// The dialect of a connection URL (`postgres://`, `postgresql://`, `mysql://`,
    /// `mariadb://`, `sqlite:`).
    ///
    /// # Errors
    /// Any other scheme, named with the ones there are (never the URL itself).
    pub fn of(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url.split_once(':').unwrap_or(("", ""));
        let form = "a connection URL is SCHEME://USER:PASSWORD@HOST:PORT/DATABASE with the scheme postgres, mysql (or mariadb), or sqlite:PATH";
        let dialect = match scheme {
            "postgres" | "postgresql" => Self::Postgres,
            "mysql" | "mariadb" => Self::MySql,
            "sqlite" => Self::Sqlite,
            // Never echoed: what stands there may be a password.
            _ => return Err(format!("{form}; this one's scheme is none of those")),
        };
        if dialect != Self::Sqlite && !rest.starts_with("//") {
            return Err(format!("{form}; this one has no `//` after its scheme"));
        }
        Ok(dialect)
    }

    /// `name` quoted as an identifier.
    pub fn quote(self, name: &str) -> String {
        match self {
            Self::MySql => format!("`{}`", name.replace('`', "``")),
            Self::Postgres | Self::Sqlite => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    /// The `n`th (from 1) parameter, compared with a column of type `column_type`.
    pub fn param(self, n: usize, column_type: &str) -> String {
        match self {
            // PostgreSQL compares a text parameter with a number only when told its type.
            Self::Postgres if !column_type.is_empty() => format!("CAST(${n} AS {column_type})"),
            Self::Postgres => format!("${n}"),
            Self::MySql | Self::Sqlite => "?".to_owned(),
        }
    }

    /// A column read as text, whatever its type.
    pub fn as_text(self, column: &str) -> String {
        match self {
            Self::MySql => format!("CAST({} AS CHAR)", self.quote(column)),
            Self::Postgres | Self::Sqlite => format!("CAST({} AS TEXT)", self.quote(column)),
        }
    }

    /// `column` still holding the text read of it (NULL-safe, byte for byte): the `n`th
    /// parameter. An erasure's statements carry one per column read, so that a row changed
    /// since it was read is left alone, and the erasure fails.
    pub fn same(self, column: &str, n: usize) -> String {
        let q = self.quote(column);
        match self {
            Self::MySql => format!("CAST({q} AS BINARY) <=> CAST(? AS BINARY)"),
            Self::Postgres => format!("CAST({q} AS TEXT) IS NOT DISTINCT FROM ${n}"),
            Self::Sqlite => format!("CAST({q} AS TEXT) IS ?"),
        }
    }

    /// A text column compared without regard to case (e-mail addresses).
    pub fn lower(self, column: &str) -> String {
        format!("LOWER({})", self.quote(column))
    }
}

/// An open connection to a dataset.
#[derive(Debug, Clone)]
pub struct Source {
    /// The pool.
    pub pool: AnyPool,
    /// Its dialect.
    pub dialect: Dialect,
    /// Its tables: table → column → what the database says of it.
    pub schema: BTreeMap<String, BTreeMap<String, Column>>,
    /// Each table's primary key, its columns in order (tables without one are absent).
    pub primary_keys: BTreeMap<String, Vec<String>>,
    /// Its foreign keys, one per referencing column.
    pub foreign_keys: Vec<ForeignKey>,
    /// The `(table, column)` pairs an index leads with: a lookup by such a column is an index
    /// scan, any other a scan of the whole table.
    pub indexed: BTreeSet<(String, String)>,
    /// The `(table, column)` pairs an index on `lower(column)` serves (PostgreSQL, SQLite):
    /// a search that ignores case uses it.
    pub lower_indexed: BTreeSet<(String, String)>,
    /// MariaDB/MySQL: the tables whose engine has no transactions (MyISAM, MEMORY, ARIA …),
    /// with the engine: an erasure there cannot be undone when a later statement fails.
    pub non_transactional: BTreeMap<String, String>,
}

/// A foreign key column: `table.column` holds values of `to_table.to_column`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ForeignKey {
    /// The referencing table.
    pub table: String,
    /// Its column.
    pub column: String,
    /// The referenced table.
    pub to_table: String,
    /// Its column.
    pub to_column: String,
}

/// A column of the live schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its type, in lower case, as the database names it (`bigint`, `varchar`, `text` …).
    pub kind: String,
    /// Whether it may hold NULL.
    pub nullable: bool,
    /// The most characters it holds, for a text column with a limit.
    pub max_length: Option<u64>,
    /// Whether the database compares its values without regard to case (a MariaDB/MySQL
    /// `_ci` collation, PostgreSQL's `citext`): a plain index then serves a search that
    /// ignores case.
    pub case_insensitive: bool,
}

/// Why a database could not be used. Never holds the connection URL or a row's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// It could not be reached.
    #[error("dataset `{dataset}`: cannot connect: {cause}")]
    Connect {
        /// The dataset.
        dataset: String,
        /// Why, without the URL.
        cause: String,
    },
    /// A statement failed.
    #[error("dataset `{dataset}`: {cause}")]
    Query {
        /// The dataset.
        dataset: String,
        /// Why.
        cause: String,
    },
}

/// The text of a database error without anything that could quote a value: its kind only
/// where the driver's message may repeat what was sent.
pub(crate) fn cause(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| format!(" ({c})")).unwrap_or_default();
            // Raised by a trigger or a rule of the operator's (PostgreSQL's P0 class, MySQL's
            // SIGNAL 45000): its text is theirs and may hold a row's value.
            if db
                .code()
                .is_some_and(|c| c.starts_with("P0") || c.as_ref() == "45000")
            {
                return format!(
                    "the database refused a statement{code}: a trigger or rule of the database's own refused it"
                );
            }
            let message = db.message().lines().next().unwrap_or_default();
            format!(
                "the database refused a statement{code}: {}",
                unquoted(message)
            )
        }
        sqlx::Error::PoolTimedOut => "no connection within the time allowed".to_owned(),
        sqlx::Error::Io(io) => format!("the connection failed: {}", io.kind()),
        sqlx::Error::Tls(_) => "the TLS handshake failed".to_owned(),
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// `text` with what it quotes left out (`invalid input for type bigint: "…"`): a database's
/// message quotes the value it refused, or the database name it could not find, which may be
/// a row's value or a secret.
fn unquoted(text: &str) -> String {
    // Everything from the first quote on: a value may hold a quote of its own, so where the
    // quoted part ends cannot be told.
    match text.find(['\'', '"', '`']) {
        Some(i) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

impl Source {
    /// Connects to `url` for dataset `name` and reads its schema.
    ///
    /// # Errors
    /// [`SourceError::Connect`] when it cannot be reached or its schema read.
    pub async fn connect(name: &str, url: &str) -> Result<Self, SourceError> {
        sqlx::any::install_default_drivers();
        let failed = |cause: String| SourceError::Connect {
            dataset: name.to_owned(),
            cause,
        };
        let dialect = Dialect::of(url).map_err(failed)?;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| failed(cause(&e)))?;
        let query = match dialect {
            Dialect::Postgres => {
                "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT), CAST(data_type AS TEXT), CAST(is_nullable AS TEXT), CAST(character_maximum_length AS TEXT), CAST(udt_name AS TEXT) FROM information_schema.columns WHERE table_schema = current_schema()"
            }
            Dialect::MySql => {
                "SELECT CAST(table_name AS CHAR), CAST(column_name AS CHAR), CAST(data_type AS CHAR), CAST(is_nullable AS CHAR), CAST(character_maximum_length AS CHAR), CAST(collation_name AS CHAR) FROM information_schema.columns WHERE table_schema = DATABASE()"
            }
            Dialect::Sqlite => {
                "SELECT m.name, p.name, p.type, CASE WHEN p.\"notnull\" = 1 OR p.pk > 0 THEN 'NO' ELSE 'YES' END, NULL, NULL FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p WHERE m.type = 'table'"
            }
        };
        let rows: Vec<AnyRow> = sqlx::query(query)
            .fetch_all(&pool)
            .await
            .map_err(|e| failed(cause(&e)))?;
        let mut schema: BTreeMap<String, BTreeMap<String, Column>> = BTreeMap::new();
        for row in rows {
            let (Ok(table), Ok(column), Ok(kind), Ok(nullable)) = (
                row.try_get::<String, _>(0),
                row.try_get::<String, _>(1),
                row.try_get::<String, _>(2),
                row.try_get::<String, _>(3),
            ) else {
                continue;
            };
            let max_length = row
                .try_get::<Option<String>, _>(4)
                .ok()
                .flatten()
                .and_then(|n| n.parse().ok());
            // MariaDB/MySQL: the collation (`utf8mb4_general_ci`); PostgreSQL: the type's name.
            let collation = row
                .try_get::<Option<String>, _>(5)
                .ok()
                .flatten()
                .unwrap_or_default()
                .to_lowercase();
            let case_insensitive = match dialect {
                Dialect::MySql => collation.ends_with("_ci"),
                Dialect::Postgres => collation == "citext",
                Dialect::Sqlite => false,
            };
            schema.entry(table).or_default().insert(
                column,
                Column {
                    kind: kind.to_lowercase(),
                    nullable: nullable.eq_ignore_ascii_case("yes"),
                    max_length,
                    case_insensitive,
                },
            );
        }
        let mut source = Self {
            pool,
            dialect,
            schema,
            primary_keys: BTreeMap::new(),
            foreign_keys: Vec::new(),
            indexed: BTreeSet::new(),
            lower_indexed: BTreeSet::new(),
            non_transactional: BTreeMap::new(),
        };
        if dialect == Dialect::MySql {
            let rows: Vec<AnyRow> = sqlx::query(
                "SELECT CAST(table_name AS CHAR), CAST(COALESCE(engine, table_type) AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE()",
            )
            .fetch_all(&source.pool)
            .await
            .map_err(|e| failed(cause(&e)))?;
            for row in rows {
                if let (Ok(table), Ok(Some(engine))) = (
                    row.try_get::<String, _>(0),
                    row.try_get::<Option<String>, _>(1),
                ) && !engine.eq_ignore_ascii_case("InnoDB")
                {
                    // A view's tables cannot be told from here: not known to be transactional.
                    let what = if engine.eq_ignore_ascii_case("VIEW") {
                        "is a view, whose tables' engines Steward cannot see".to_owned()
                    } else {
                        format!("uses the {engine} engine, which has no transactions")
                    };
                    source.non_transactional.insert(table, what);
                }
            }
        }
        source.read_keys().await.map_err(|e| failed(cause(&e)))?;
        source
            .read_lower_indexes()
            .await
            .map_err(|e| failed(cause(&e)))?;
        Ok(source)
    }

    /// Reads the primary keys, foreign keys and leading index columns of the schema's tables.
    async fn read_keys(&mut self) -> Result<(), sqlx::Error> {
        // Each row: table, column, kind (`p` primary key, `f` foreign key, `i` index), position
        // in the key, and for `f` the referenced table and column.
        let query = match self.dialect {
            Dialect::Postgres => {
                "SELECT CAST(t.relname AS TEXT), CAST(a.attname AS TEXT), CAST(c.contype AS TEXT), CAST(k.n AS TEXT), CAST(ft.relname AS TEXT), CAST(fa.attname AS TEXT) \
                 FROM pg_constraint c CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(col, fcol, n) \
                 JOIN pg_class t ON t.oid = c.conrelid JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col \
                 LEFT JOIN pg_class ft ON ft.oid = c.confrelid LEFT JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = k.fcol \
                 WHERE c.contype IN ('p', 'f') AND t.relnamespace = CAST(current_schema() AS regnamespace) \
                 UNION ALL \
                 SELECT CAST(t.relname AS TEXT), CAST(a.attname AS TEXT), 'i', '1', NULL, NULL \
                 FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0] \
                 WHERE t.relnamespace = CAST(current_schema() AS regnamespace)"
            }
            Dialect::MySql => {
                "SELECT CAST(table_name AS CHAR), CAST(column_name AS CHAR), CASE WHEN constraint_name = 'PRIMARY' THEN 'p' ELSE 'f' END, CAST(ordinal_position AS CHAR), CAST(referenced_table_name AS CHAR), CAST(referenced_column_name AS CHAR) \
                 FROM information_schema.key_column_usage WHERE table_schema = DATABASE() AND (constraint_name = 'PRIMARY' OR referenced_table_name IS NOT NULL) \
                 UNION ALL \
                 SELECT CAST(table_name AS CHAR), CAST(column_name AS CHAR), 'i', '1', NULL, NULL \
                 FROM information_schema.statistics WHERE table_schema = DATABASE() AND seq_in_index = 1"
            }
            Dialect::Sqlite => {
                "SELECT m.name, p.name, 'p', CAST(p.pk AS TEXT), NULL, NULL FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p WHERE m.type = 'table' AND p.pk > 0 \
                 UNION ALL \
                 SELECT m.name, f.\"from\", 'f', CAST(f.seq + 1 AS TEXT), f.\"table\", f.\"to\" FROM sqlite_master AS m JOIN pragma_foreign_key_list(m.name) AS f WHERE m.type = 'table' \
                 UNION ALL \
                 SELECT m.name, ii.name, 'i', '1', NULL, NULL FROM sqlite_master AS m JOIN pragma_index_list(m.name) AS il JOIN pragma_index_info(il.name) AS ii WHERE m.type = 'table' AND ii.seqno = 0"
            }
        };
        let rows: Vec<AnyRow> = sqlx::query(query).fetch_all(&self.pool).await?;
        let mut keys: BTreeMap<String, Vec<(u32, String)>> = BTreeMap::new();
        let mut pending = Vec::new();
        for row in rows {
            let (Ok(table), Ok(column), Ok(kind), Ok(position)) = (
                row.try_get::<String, _>(0),
                row.try_get::<String, _>(1),
                row.try_get::<String, _>(2),
                row.try_get::<String, _>(3),
            ) else {
                continue;
            };
            match kind.as_str() {
                "p" => keys
                    .entry(table)
                    .or_default()
                    .push((position.parse().unwrap_or(0), column)),
                "f" => {
                    let Ok(Some(to_table)) = row.try_get::<Option<String>, _>(4) else {
                        continue;
                    };
                    // SQLite leaves the column out of `REFERENCES person`: the primary key's.
                    let to_column = row.try_get::<Option<String>, _>(5).ok().flatten();
                    pending.push((table, column, to_table, to_column));
                }
                _ => {
                    self.indexed.insert((table, column));
                }
            }
        }
        for (table, mut columns) in keys {
            columns.sort();
            // A primary key is an index too: a lookup by its first column is a key lookup.
            if let Some((_, first)) = columns.first() {
                self.indexed.insert((table.clone(), first.clone()));
            }
            self.primary_keys
                .insert(table, columns.into_iter().map(|(_, c)| c).collect());
        }
        for (table, column, to_table, to_column) in pending {
            let to_column = to_column.or_else(|| {
                self.primary_keys
                    .get(&to_table)
                    .filter(|k| k.len() == 1)
                    .map(|k| k[0].clone())
            });
            if let Some(to_column) = to_column {
                self.foreign_keys.push(ForeignKey {
                    table,
                    column,
                    to_table,
                    to_column,
                });
            }
        }
        self.foreign_keys.sort();
        self.foreign_keys.dedup();
        Ok(())
    }

    /// Reads the indexes on `lower(column)` (PostgreSQL, SQLite), from their definitions.
    async fn read_lower_indexes(&mut self) -> Result<(), sqlx::Error> {
        let query = match self.dialect {
            Dialect::Postgres => {
                "SELECT CAST(t.relname AS TEXT), pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid WHERE t.relnamespace = CAST(current_schema() AS regnamespace) AND i.indexprs IS NOT NULL"
            }
            Dialect::Sqlite => {
                "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            }
            Dialect::MySql => return Ok(()),
        };
        let rows: Vec<AnyRow> = sqlx::query(query).fetch_all(&self.pool).await?;
        for row in rows {
            let (Ok(table), Ok(definition)) =
                (row.try_get::<String, _>(0), row.try_get::<String, _>(1))
            else {
                continue;
            };
            let Some(columns) = self.schema.get(&table) else {
                continue;
            };
            // `lower((email)::text)`, `lower("email")`, `LOWER(email)`: the column inside.
            let text = definition.to_lowercase();
            for (start, _) in text.match_indices("lower(") {
                let inner: String = text[start + 6..]
                    .chars()
                    .take_while(|c| *c != ')' && *c != ':')
                    .filter(|c| !matches!(c, '(' | '"' | '`' | ' '))
                    .collect();
                if let Some(column) = columns.keys().find(|c| c.to_lowercase() == inner) {
                    self.lower_indexed.insert((table.clone(), column.clone()));
                }
            }
        }
        Ok(())
    }

    /// Whether a search of `table.column` that ignores case can use an index: a plain one
    /// where the column compares without regard to case, else one on `lower(column)`.
    pub fn is_indexed_ignoring_case(&self, table: &str, column: &str) -> bool {
        let ci = self.is_case_insensitive(table, column);
        (ci && self.is_indexed(table, column))
            || self
                .lower_indexed
                .iter()
                .any(|(t, c)| t == table && c == column)
    }

    /// Whether the database compares `table.column` without regard to case.
    pub fn is_case_insensitive(&self, table: &str, column: &str) -> bool {
        self.schema
            .get(table)
            .and_then(|t| t.get(column))
            .is_some_and(|c| c.case_insensitive)
    }

    /// Whether a lookup by `table.column` can use an index (an index or primary key leads
    /// with it).
    pub fn is_indexed(&self, table: &str, column: &str) -> bool {
        self.indexed
            .iter()
            .any(|(t, c)| t == table && c.eq_ignore_ascii_case(column))
    }

    /// The type of `table.column` as PostgreSQL needs it cast (`bigint`, `text` …); empty
    /// elsewhere and for text types.
    pub(crate) fn cast_type(&self, table: &str, column: &str) -> String {
        if self.dialect != Dialect::Postgres {
            return String::new();
        }
        // Only the built-in types a text parameter needs to be told (a user-defined type, an
        // enum or citext, compares with text as it is).
        match self
            .schema
            .get(table)
            .and_then(|t| t.get(column))
            .map(|c| c.kind.as_str())
        {
            Some(
                kind @ ("smallint"
                | "integer"
                | "bigint"
                | "numeric"
                | "real"
                | "double precision"
                | "boolean"
                | "uuid"
                | "date"
                | "timestamp without time zone"
                | "timestamp with time zone"
                | "time without time zone"),
            ) => kind.to_owned(),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_connection_url_is_refused_without_repeating_it() {
        for url in [
            "host=127.0.0.1 user=root password=S3cretPW dbname=x",
            "S3cretPW",
            "mysql:root:S3cretPW@127.0.0.1",
            "ftp://root:S3cretPW@host/db",
        ] {
            let error = Dialect::of(url).unwrap_err();
            assert!(!error.contains("S3cretPW"), "{error}");
            assert!(error.contains("SCHEME://USER:PASSWORD@HOST"), "{error}");
        }
        assert_eq!(Dialect::of("mariadb://u@h/db").unwrap(), Dialect::MySql);
        assert_eq!(Dialect::of("sqlite:site.db").unwrap(), Dialect::Sqlite);
    }

    #[test]
    fn a_database_message_never_repeats_what_it_quotes() {
        assert_eq!(
            unquoted("invalid input syntax for type bigint: \"ana-secret-ref\""),
            "invalid input syntax for type bigint: …"
        );
        assert_eq!(
            unquoted("Unknown database 'root:S3cretPW@127.0.0.1'"),
            "Unknown database …"
        );
        // A value holding a quote of its own does not end the quoted part early.
        assert_eq!(
            unquoted("invalid input syntax for type integer: \"x\"Ana Secret Diagnosis\""),
            "invalid input syntax for type integer: …"
        );
    }
}
