//! A dataset manifest: what one of the operator's databases holds about people, how a person
//! is found in it, and what erasure does to each table and field (docs/datasets.md).
//!
//! ```toml
//! [dataset]
//! name = "wordpress"
//! url_env = "WORDPRESS_DATABASE_URL"   # or url_file = "/run/secrets/wordpress-db"
//!
//! [[tables]]
//! name = "wp_users"
//! purpose = "accounts"
//! primary_key = ["ID"]
//! erase = "delete"
//! fields = [
//!   { name = "user_email", category = "user.contact.email", identity = "email" },
//!   { name = "display_name", category = "user.name" },
//! ]
//! owns = [ { column = "ID", table = "wp_usermeta", to = "user_id" } ]
//! ```
//!
//! The connection's URL never appears in a manifest: it comes from the variable `url_env`
//! names, or the file `url_file` names (a container secret).

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

/// A manifest, as read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The database.
    pub dataset: Dataset,
    /// Its tables that hold personal data, or lead to it.
    #[serde(default)]
    pub tables: Vec<Table>,
}

/// The database a manifest describes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// Its name, shown in access packages (`wordpress`).
    pub name: String,
    /// The variable holding the connection URL (`postgres://…`, `mysql://…`, `sqlite://…`).
    pub url_env: Option<String>,
    /// A file holding the connection URL, one line.
    pub url_file: Option<String>,
    /// What the dataset is, for the reader.
    #[serde(default)]
    pub description: String,
    /// The most rows one person's search may read ([`DEFAULT_MAX_ROWS`] unless set): a
    /// request for someone with more fails, naming this setting, rather than hold them all
    /// in memory.
    pub max_rows: Option<usize>,
}

/// The most rows one person's search reads unless the manifest says otherwise: enough for any
/// ordinary customer, commenter or member, and a bound on the memory a request can take.
pub const DEFAULT_MAX_ROWS: usize = 20_000;

/// One table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Its name in the manifest: the database table's, or a label when several entries
    /// describe parts of one table (a key-value table's rows by key), with `table` naming it.
    pub name: String,
    /// The database table, when it is not `name`.
    pub table: Option<String>,
    /// The declared purpose its data serves.
    pub purpose: String,
    /// The columns that identify a row.
    pub primary_key: Vec<String>,
    /// What erasure does to its rows: `delete` them, or change each field as it says
    /// (`fields`, the default), or `keep` them all under a legal hold (`hold`).
    #[serde(default)]
    pub erase: TableErase,
    /// Only the rows where this column holds this value (`meta_key` rows of a key-value
    /// table): `{ column = "meta_key", values = ["first_name", "last_name"] }`.
    pub only: Option<Only>,
    /// Its personal columns.
    #[serde(default)]
    pub fields: Vec<Field>,
    /// Columns shown beside the fields in an access package to make them readable (a
    /// key-value table's key), never changed.
    #[serde(default)]
    pub context: Vec<String>,
    /// Rows of other tables that belong to the person a row of this one belongs to.
    #[serde(default)]
    pub owns: Vec<Owns>,
    /// For `erase = "keep"`: the declared legal hold's purpose.
    pub hold: Option<String>,
    /// The column that dates each row for the retention sweep:
    /// `retention = { column = "comment_date_gmt" }` (when the row was collected), or
    /// `{ column = "closed_at", event = "account closure" }`. Without it, the table's rows
    /// are erased with the person only, never swept by age.
    pub retention: Option<TableRetention>,
}

/// What dates a table's rows for retention (GDPR Art. 5(1)(e)): a column, and the event its
/// time is (the declared period counts from it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRetention {
    /// A date or time column (a date, a timestamp, text in ISO 8601 form, or whole seconds
    /// since 1970 in an integer column), in UTC. A row whose column is NULL has not reached
    /// the event and is kept.
    pub column: String,
    /// The event the column's time is, in the declaration's words: `collection` (the
    /// default), `last activity`, `account closure`, `consent withdrawal`, `contract end`.
    #[serde(default = "collection")]
    pub event: String,
}

fn collection() -> String {
    "collection".to_owned()
}

impl TableRetention {
    /// The event the column dates.
    ///
    /// # Errors
    /// A message naming the events there are.
    pub fn trigger(&self) -> Result<steward_policy::Trigger, String> {
        steward_policy::Trigger::parse(&self.event).ok_or_else(|| {
            format!(
                "retention event \"{}\" is not one Steward knows: write collection, last activity, account closure, consent withdrawal or contract end",
                self.event
            )
        })
    }
}

/// A restriction to some rows of a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Only {
    /// The column.
    pub column: String,
    /// The values it may hold.
    pub values: Vec<String>,
    /// The rows where it holds none of them instead (the rest of a key-value table).
    #[serde(default)]
    pub except: bool,
}

/// What erasure does to a table's rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TableErase {
    /// Each field as it says.
    #[default]
    Fields,
    /// The rows go.
    Delete,
    /// The rows stay, under a legal hold.
    Keep,
}

/// One personal column.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// The column.
    pub name: String,
    /// Its data category (a taxonomy key, declared by the table's purpose).
    pub category: String,
    /// The identity kind it holds (`email`, `phone`, `username`): people are found by it.
    pub identity: Option<String>,
    /// What erasure does to it (with `erase = "fields"` on its table): `null`,
    /// `"replace:TEXT"`, `hash` (a keyed hash, stable per person), `keep` (under the table's
    /// `hold`), `unlinked` (left, as the row's other fields no longer name the person). The
    /// default is `null`.
    #[serde(default)]
    pub erase: Option<String>,
}

impl Table {
    /// The database table it describes.
    pub fn db_table(&self) -> &str {
        self.table.as_deref().unwrap_or(&self.name)
    }
}

/// Rows of another table owned by a row of this one: `table.to = this.column`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owns {
    /// This table's column.
    pub column: String,
    /// The other table.
    pub table: String,
    /// The other table's column holding this one's value.
    pub to: String,
    /// Whether the rows it leads to are the person's own even where their identity fields
    /// hold another address (a member's comments, found by user id, keep the address given
    /// when commenting). Without it, a row it leads to whose identity fields name someone
    /// else (a service request an employee handled) is left out.
    #[serde(default)]
    pub same_person: bool,
}

/// What erasure does to one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldErase {
    /// Set to NULL.
    Null,
    /// Set to a fixed text.
    Replace(String),
    /// Set to a keyed hash of its value (hex).
    Hash,
    /// Left as it is, under the table's legal hold.
    Keep,
    /// Left as it is because the row no longer names the person once its other fields are
    /// erased (a comment's text, anonymised as WordPress does).
    Unlinked,
}

impl Field {
    /// What erasure does to this field.
    ///
    /// # Errors
    /// A message naming the field and the actions there are.
    pub fn action(&self) -> Result<FieldErase, String> {
        match self.erase.as_deref() {
            None | Some("null") => Ok(FieldErase::Null),
            Some("hash") => Ok(FieldErase::Hash),
            Some("keep") => Ok(FieldErase::Keep),
            Some("unlinked") => Ok(FieldErase::Unlinked),
            Some(other) => match other.strip_prefix("replace:") {
                Some(text) => Ok(FieldErase::Replace(text.to_owned())),
                None => Err(format!(
                    "`{}`: erase = \"{other}\" is not an action: write null, \"replace:TEXT\", hash, keep or unlinked",
                    self.name
                )),
            },
        }
    }
}

/// The identity kinds a field can hold.
pub const IDENTITY_KINDS: [&str; 3] = ["email", "phone", "username"];

/// A manifest that cannot be used, with every reason (each naming its place and the fix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ManifestError(pub Vec<String>);

impl Manifest {
    /// Reads and checks the manifest at `path` (its own rules; see [`Manifest::check_against`]
    /// for the declaration's).
    ///
    /// # Errors
    /// The file unreadable, not TOML, an unknown key, or a rule broken — every one found.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ManifestError(vec![format!("cannot read {}: {e}", path.display())]))?;
        Self::parse(&text).map_err(|ManifestError(reasons)| {
            ManifestError(
                reasons
                    .into_iter()
                    .map(|r| format!("{}: {r}", path.display()))
                    .collect(),
            )
        })
    }

    /// Parses and checks a manifest.
    ///
    /// # Errors
    /// As [`Manifest::load`].
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: Self =
            toml::from_str(text).map_err(|e| ManifestError(vec![e.to_string()]))?;
        let reasons = manifest.rules();
        if reasons.is_empty() {
            Ok(manifest)
        } else {
            Err(ManifestError(reasons))
        }
    }

    /// The manifest's own rules, each broken one as a reason.
    fn rules(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        let d = &self.dataset;
        match (&d.url_env, &d.url_file) {
            (None, None) => reasons.push(
                "[dataset]: name where the connection URL is: url_env = \"VARIABLE\" or url_file = \"PATH\" (never the URL itself)".to_owned(),
            ),
            (Some(_), Some(_)) => reasons.push(
                "[dataset]: url_env and url_file are both set: keep one".to_owned(),
            ),
            _ => {}
        }
        let names: BTreeSet<&str> = self.tables.iter().map(|t| t.name.as_str()).collect();
        if names.len() != self.tables.len() {
            reasons.push("a table is described twice: describe each once".to_owned());
        }
        for t in &self.tables {
            let at = format!("table `{}`", t.name);
            if !plain_identifier(t.db_table()) {
                reasons.push(format!("{at}: not a plain table name (letters, digits, _)"));
            }
            if t.primary_key.is_empty() {
                reasons.push(format!("{at}: primary_key = [\"COLUMN\", …] is needed to change or delete its rows one by one"));
            }
            for c in t
                .primary_key
                .iter()
                .chain(t.fields.iter().map(|f| &f.name))
                .chain(t.owns.iter().map(|o| &o.column))
                .chain(t.only.iter().map(|o| &o.column))
                .chain(t.context.iter())
            {
                if !plain_identifier(c) {
                    reasons.push(format!(
                        "{at}: `{c}` is not a plain column name (letters, digits, _)"
                    ));
                }
            }
            if let Some(only) = &t.only
                && only.values.is_empty()
            {
                reasons.push(format!(
                    "{at}: only = {{ column = \"{}\", values = [] }} names no value: list the values, or remove `only`",
                    only.column
                ));
            }
            for f in &t.fields {
                if let Err(e) = f.action() {
                    reasons.push(format!("{at}: {e}"));
                }
                if let Some(kind) = &f.identity
                    && !IDENTITY_KINDS.contains(&kind.as_str())
                {
                    reasons.push(format!(
                        "{at}: `{}`: identity = \"{kind}\" is not a kind: write one of {}",
                        f.name,
                        IDENTITY_KINDS.join(", ")
                    ));
                }
                if f.action() == Ok(FieldErase::Unlinked)
                    && !t.fields.iter().any(|g| {
                        g.identity.is_some()
                            && !matches!(g.action(), Ok(FieldErase::Keep | FieldErase::Unlinked))
                    })
                {
                    reasons.push(format!(
                        "{at}: `{}` stays as unlinked, but no identity field of the row is erased: erase the identity fields, or keep it under a hold",
                        f.name
                    ));
                }
                if f.action() == Ok(FieldErase::Keep) && t.hold.is_none() {
                    reasons.push(format!(
                        "{at}: `{}` is kept on erasure: name the legal hold's purpose with hold = \"PURPOSE\" on the table",
                        f.name
                    ));
                }
            }
            if let Some(r) = &t.retention {
                if !plain_identifier(&r.column) {
                    reasons.push(format!(
                        "{at}: retention column `{}` is not a plain column name (letters, digits, _)",
                        r.column
                    ));
                }
                if let Err(e) = r.trigger() {
                    reasons.push(format!("{at}: {e}"));
                }
            }
            if t.erase == TableErase::Keep && t.hold.is_none() {
                reasons.push(format!(
                    "{at}: erase = \"keep\" needs hold = \"PURPOSE\", the declared legal hold it is kept under"
                ));
            }
            for o in &t.owns {
                if !names.contains(o.table.as_str()) {
                    reasons.push(format!(
                        "{at}: owns rows of `{}`, which the manifest does not describe: add it, or remove the reference",
                        o.table
                    ));
                } else if !plain_identifier(&o.to) {
                    reasons.push(format!("{at}: `{}` is not a plain column name", o.to));
                }
            }
        }
        // Every table is found from an identity: directly, or owned by one that is.
        let reachable = self.reachable();
        for t in &self.tables {
            if !reachable.contains(t.name.as_str()) {
                reasons.push(format!(
                    "table `{}` is reachable from no identity: give one of its fields identity = \"email\" (or phone, username), or have a reachable table own it (owns = [...])",
                    t.name
                ));
            }
        }
        reasons
    }

    /// The tables a person is found in: those with an identity field, and those they own.
    pub fn reachable(&self) -> BTreeSet<&str> {
        let mut reached: BTreeSet<&str> = self
            .tables
            .iter()
            .filter(|t| t.fields.iter().any(|f| f.identity.is_some()))
            .map(|t| t.name.as_str())
            .collect();
        loop {
            let before = reached.len();
            for t in &self.tables {
                if reached.contains(t.name.as_str()) {
                    for o in &t.owns {
                        reached.insert(o.table.as_str());
                    }
                }
            }
            if reached.len() == before {
                return reached;
            }
        }
    }

    /// Leaves out the tables no identity leads to (no person can be found in them), and the
    /// references to them; returns them, as they were.
    pub fn drop_unreachable(&mut self) -> Vec<Table> {
        let reachable: BTreeSet<String> = self.reachable().into_iter().map(str::to_owned).collect();
        let (kept, dropped): (Vec<Table>, Vec<Table>) = std::mem::take(&mut self.tables)
            .into_iter()
            .partition(|t| reachable.contains(&t.name));
        self.tables = kept;
        for t in &mut self.tables {
            t.owns.retain(|o| reachable.contains(&o.table));
        }
        dropped
    }

    /// The table named `name`.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The connection URL, from the variable or the file the manifest names. Never shown.
    ///
    /// # Errors
    /// The variable unset or empty, or the file unreadable, named (never the URL).
    pub fn url(&self) -> Result<String, String> {
        let d = &self.dataset;
        if let Some(var) = &d.url_env {
            return std::env::var(var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.trim().to_owned())
                .ok_or_else(|| {
                    format!(
                        "dataset `{}`: the variable {var} that holds its connection URL is not set",
                        d.name
                    )
                });
        }
        if let Some(file) = &d.url_file {
            return std::fs::read_to_string(file)
                .map(|t| t.trim().to_owned())
                .map_err(|e| {
                    format!(
                        "dataset `{}`: cannot read its connection URL from {file}: {e}",
                        d.name
                    )
                });
        }
        Err(format!("dataset `{}` names no connection URL", d.name))
    }
}

/// Whether `name` is a plain SQL identifier: letters, digits and `_`, not starting with a digit.
/// Names are checked against the live schema too, and always quoted.
pub fn plain_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[dataset]
name = "shop"
url_env = "SHOP_DB"

[[tables]]
name = "customer"
purpose = "accounts"
primary_key = ["id"]
fields = [{ name = "email", category = "user.contact.email", identity = "email" }]
owns = [{ column = "id", table = "orders", to = "customer_id" }]

[[tables]]
name = "orders"
purpose = "accounts"
primary_key = ["id"]
erase = "delete"
fields = [{ name = "shipping_address", category = "user.contact.address" }]
"#;

    #[test]
    fn a_manifest_reads_and_every_table_is_reachable_from_an_identity() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.reachable().len(), 2);
        assert_eq!(m.table("orders").unwrap().erase, TableErase::Delete);
    }

    #[test]
    fn every_broken_rule_is_named_with_its_place_and_fix() {
        let bad = GOOD
            .replace("url_env = \"SHOP_DB\"", "")
            .replace("owns = [{ column = \"id\", table = \"orders\", to = \"customer_id\" }]", "owns = [{ column = \"id\", table = \"order\", to = \"customer_id\" }]")
            .replace("identity = \"email\"", "identity = \"mail\"")
            .replace("[{ name = \"shipping_address\", category = \"user.contact.address\" }]", "[{ name = \"shipping address\", category = \"user.contact.address\", erase = \"scramble\" }]")
            .replace("erase = \"delete\"\n", "erase = \"delete\"\nonly = { column = \"kind\", values = [] }\n");
        let ManifestError(reasons) = Manifest::parse(&bad).unwrap_err();
        let all = reasons.join("\n");
        for expected in [
            "url_env = \"VARIABLE\"",
            "owns rows of `order`",
            "identity = \"mail\" is not a kind",
            "`shipping address` is not a plain column name",
            "erase = \"scramble\" is not an action",
            "table `orders` is reachable from no identity",
            "names no value",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let bad = GOOD.replace(
            "purpose = \"accounts\"\nprimary_key = [\"id\"]\nerase",
            "purpose = \"accounts\"\nprimary_key = [\"id\"]\nerasure",
        );
        assert!(
            Manifest::parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("erasure")
        );
    }
}
