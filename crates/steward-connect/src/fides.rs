//! `steward datasets import-fides`: a Fides dataset file (YAML, fideslang's `dataset:` list of
//! collections and fields) read into a Steward manifest, saying what could not be mapped.
//!
//! How Fides's words map:
//!
//! | Fides | manifest |
//! |---|---|
//! | collection | table (`purpose` from `--purpose`) |
//! | `fides_meta.primary_key` | `primary_key` (else the live schema's, else every field, said) |
//! | `fides_meta.identity: email / phone_number / username` | `identity = "email" / "phone" / "username"` |
//! | `references` with `direction: from` (the other table's rows lead here) | `owns` on the other table |
//! | `references` with `direction: to` (or none, said) | `owns` on this table |
//! | field with a `user` category | a personal field (its first `user` category) |
//! | identity field whose category is not `user.…` | a personal field: it holds the person's address (said) |
//! | primary-key or reference column | a link: shown, kept (it names no one once the row's identity fields are erased) |
//! | field with only `system.…` categories, or `read_only` | `context`: shown in access packages, never changed |
//! | collection `masking_strategy_override: delete` | `erase = "delete"` |
//! | field `masking_strategy_override`: `null_rewrite` / `string_rewrite` / `hmac`, `hash`, `random_string_rewrite` | `null` / `replace:VALUE` / `hash` |
//! | no override: `data_type: string` / anything else | `hash` (Fides's default HMAC) / `null` — Fides skips these with a warning; Steward erases them |
//!
//! Not mapped, and said: references to other datasets, nested fields (documents), `after`
//! and `erase_after` (Steward orders erasure by the references), identity kinds other than
//! e-mail, phone and username, `aes_encrypt`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde::de::IgnoredAny;

use steward_policy::Taxonomy;
use steward_policy::taxonomy::{Kind, Lookup};

use crate::manifest::{Dataset, Field, Manifest, Owns, Table, TableErase};
use crate::render::{Remarks, render};
use crate::source::Source;

/// Why a Fides file could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Not YAML, or not in the shape of a Fides dataset file.
    #[error(
        "not a Fides dataset file: {0} (a Fides dataset file is `dataset:` followed by a list of datasets, each with a fides_key and collections)"
    )]
    Shape(String),
    /// The file holds no dataset.
    #[error(
        "the file holds no dataset under `dataset:` (a Fides dataset file is `dataset:` followed by a list of datasets, each with a fides_key and collections)"
    )]
    Empty,
    /// The file holds several and none was chosen.
    #[error("the file holds {} datasets ({}): choose one with --dataset KEY", .0.len(), .0.join(", "))]
    Several(Vec<String>),
    /// The chosen dataset is not in the file.
    #[error("the file has no dataset `{wanted}` (it has: {})", .have.join(", "))]
    Unknown {
        /// The key asked for.
        wanted: String,
        /// The keys there are.
        have: Vec<String>,
    },
    /// What it maps to is not a usable manifest.
    #[error("the manifest made from it does not hold together:\n{0}")]
    Manifest(String),
}

/// What an import is told besides the file.
#[derive(Debug, Clone)]
pub struct Options {
    /// The declared purpose every table serves (edit per table after).
    pub purpose: String,
    /// The variable that will hold the connection URL; by default the dataset's key in
    /// capitals with `_DATABASE_URL` (`SHOP_DATABASE_URL`).
    pub url_env: Option<String>,
    /// The dataset to import, when the file holds several.
    pub dataset: Option<String>,
}

/// An imported manifest: its text, the manifest, and what was not mapped.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The manifest's TOML text, with the notes as comments where they apply.
    pub text: String,
    /// The manifest.
    pub manifest: Manifest,
    /// What could not be mapped, or was mapped by a guess, each naming its place.
    pub notes: Vec<String>,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    dataset: Vec<FidesDataset>,
}

#[derive(Deserialize)]
struct FidesDataset {
    fides_key: String,
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    collections: Vec<Collection>,
}

#[derive(Deserialize)]
struct Collection {
    name: String,
    #[serde(default)]
    data_categories: Vec<String>,
    #[serde(default)]
    fields: Vec<FidesField>,
    fides_meta: Option<CollectionMeta>,
}

#[derive(Deserialize)]
struct CollectionMeta {
    masking_strategy_override: Option<Masking>,
    after: Option<IgnoredAny>,
    erase_after: Option<IgnoredAny>,
    #[serde(flatten)]
    other: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
struct FidesField {
    name: String,
    #[serde(default)]
    data_categories: Vec<String>,
    fides_meta: Option<FieldMeta>,
    fields: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct FieldMeta {
    identity: Option<String>,
    #[serde(default)]
    primary_key: bool,
    data_type: Option<String>,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    references: Vec<Reference>,
    masking_strategy_override: Option<Masking>,
    #[serde(flatten)]
    other: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
struct Reference {
    dataset: String,
    field: String,
    direction: Option<String>,
}

#[derive(Deserialize)]
struct Masking {
    strategy: String,
    configuration: Option<MaskingConfiguration>,
}

#[derive(Deserialize)]
struct MaskingConfiguration {
    rewrite_value: Option<String>,
}

/// The most a Fides file may be: a dataset file is a few kilobytes; this bounds a hostile one.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Reads the Fides dataset file `yaml` into a manifest. With `schema`, the live database the
/// dataset describes, a collection with no primary key in the file takes the table's, and an
/// erasure that cannot write NULL into a column writes an empty text instead.
///
/// # Errors
/// [`ImportError`]: not a Fides file, no or several datasets, or a manifest that does not hold
/// together (each reason named).
pub fn import(
    yaml: &str,
    options: &Options,
    schema: Option<&Source>,
) -> Result<Imported, ImportError> {
    if yaml.len() > MAX_FILE_BYTES {
        return Err(ImportError::Shape(format!(
            "it is {} bytes, more than the {MAX_FILE_BYTES} a dataset file may be",
            yaml.len()
        )));
    }
    let file: File = serde_saphyr::from_str(yaml).map_err(|e| ImportError::Shape(e.to_string()))?;
    // Keys as they are shown: one escaped line each.
    let keys: Vec<String> = file
        .dataset
        .iter()
        .map(|d| crate::render::one_line(&d.fides_key))
        .collect();
    let dataset = match (&options.dataset, file.dataset.len()) {
        (_, 0) => return Err(ImportError::Empty),
        (None, 1) => &file.dataset[0],
        (None, _) => return Err(ImportError::Several(keys)),
        (Some(wanted), _) => file
            .dataset
            .iter()
            .find(|d| &d.fides_key == wanted)
            .ok_or_else(|| ImportError::Unknown {
                wanted: crate::render::one_line(wanted),
                have: keys.clone(),
            })?,
    };
    let mut importer = Importer {
        key: &dataset.fides_key,
        purpose: &options.purpose,
        schema,
        notes: Vec::new(),
        remarks: Remarks::default(),
        owns: BTreeMap::new(),
    };
    let mut tables: Vec<Table> = dataset
        .collections
        .iter()
        .map(|c| importer.table(c))
        .collect();
    for t in &mut tables {
        t.owns = importer.owns.remove(&t.name).unwrap_or_default();
    }
    for (from, owns) in importer.owns {
        for o in owns {
            importer.notes.push(format!(
                "a reference from `{from}` to `{}`: `{from}` is not a collection of this dataset; left out",
                o.table
            ));
        }
    }
    let mut manifest = Manifest {
        dataset: Dataset {
            name: dataset.fides_key.clone(),
            url_env: Some(options.url_env.clone().unwrap_or_else(|| {
                let mut var: String = dataset
                    .fides_key
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_uppercase()
                        } else {
                            '_'
                        }
                    })
                    .collect();
                var.push_str("_DATABASE_URL");
                var
            })),
            url_file: None,
            max_rows: None,
            description: dataset
                .description
                .clone()
                .or_else(|| dataset.name.clone())
                .unwrap_or_default(),
        },
        tables,
    };
    // A collection no identity leads to cannot be searched for anyone: left out, and said.
    for t in manifest.drop_unreachable() {
        importer.notes.push(format!(
            "collection `{}`: no identity field and no reference leads to it, so no person can be found in it; left out",
            t.name
        ));
    }
    let mut remarks = importer.remarks;
    remarks.header = vec![
        format!(
            "Imported from the Fides dataset `{}` by `steward datasets import-fides`.",
            dataset.fides_key
        ),
        "Review it, then check it against the declaration and the live schema: steward datasets check".to_owned(),
    ];
    if !importer.notes.is_empty() {
        remarks.header.push(String::new());
        remarks
            .header
            .push("Not mapped, or mapped by a guess:".to_owned());
        remarks
            .header
            .extend(importer.notes.iter().map(|n| format!("- {n}")));
    }
    let text = render(&manifest, &remarks);
    // What was written must read back: a broken import is an error now, not at the first request.
    let manifest = Manifest::parse(&text)
        .map_err(|crate::manifest::ManifestError(r)| ImportError::Manifest(r.join("\n")))?;
    Ok(Imported {
        text,
        manifest,
        notes: importer.notes,
    })
}

struct Importer<'a> {
    key: &'a str,
    purpose: &'a str,
    schema: Option<&'a Source>,
    notes: Vec<String>,
    remarks: Remarks,
    /// References gathered per owning table.
    owns: BTreeMap<String, Vec<Owns>>,
}

impl Importer<'_> {
    fn table(&mut self, c: &Collection) -> Table {
        let mut table = Table {
            name: c.name.clone(),
            table: None,
            purpose: self.purpose.to_owned(),
            primary_key: Vec::new(),
            erase: TableErase::Fields,
            only: None,
            fields: Vec::new(),
            context: Vec::new(),
            owns: Vec::new(),
            hold: None,
            retention: None,
        };
        if let Some(meta) = &c.fides_meta {
            match meta.masking_strategy_override.as_ref().map(|m| m.strategy.as_str()) {
                Some("delete") => table.erase = TableErase::Delete,
                Some(other) => self.notes.push(format!(
                    "collection `{}`: masking strategy `{other}` for the whole collection is not one Steward has; its fields are erased one by one",
                    c.name
                )),
                None => {}
            }
            if meta.after.is_some() || meta.erase_after.is_some() {
                self.notes.push(format!(
                    "collection `{}`: `after` / `erase_after` not mapped: Steward erases owned rows before their owners, in one transaction",
                    c.name
                ));
            }
            for key in meta.other.keys() {
                self.notes.push(format!(
                    "collection `{}`: fides_meta.{key} not mapped",
                    c.name
                ));
            }
        }
        let mut links: BTreeSet<&str> = BTreeSet::new();
        for f in &c.fields {
            let meta = f.fides_meta.as_ref();
            if meta.is_some_and(|m| m.primary_key) {
                table.primary_key.push(f.name.clone());
                links.insert(&f.name);
            }
            for r in meta.map(|m| m.references.as_slice()).unwrap_or_default() {
                links.insert(&f.name);
                self.reference(&c.name, &f.name, r);
            }
        }
        for f in &c.fields {
            if let Some(field) = self.field(c, f, links.contains(f.name.as_str())) {
                table.fields.push(field);
            } else if !links.contains(f.name.as_str()) {
                table.context.push(f.name.clone());
            }
        }
        if table.primary_key.is_empty() {
            self.primary_key(c, &mut table);
        }
        table
    }

    /// A personal field, or `None` for a link or a non-personal column.
    fn field(&mut self, c: &Collection, f: &FidesField, link: bool) -> Option<Field> {
        let at = format!("`{}.{}`", c.name, f.name);
        if f.fields.is_some() {
            self.notes.push(format!(
                "{at}: nested fields (a document) not mapped: Steward reads columns"
            ));
            return None;
        }
        let meta = f.fides_meta.as_ref();
        if let Some(m) = meta {
            for key in m.other.keys().filter(|k| !["length"].contains(&k.as_str())) {
                self.notes
                    .push(format!("{at}: fides_meta.{key} not mapped"));
            }
        }
        let categories = if f.data_categories.is_empty() {
            &c.data_categories
        } else {
            &f.data_categories
        };
        let personal = categories
            .iter()
            .find(|k| *k == "user" || k.starts_with("user."));
        let identity = match meta.and_then(|m| m.identity.as_deref()) {
            None => None,
            Some("email") => Some("email"),
            Some("phone_number" | "phone") => Some("phone"),
            Some("username") => Some("username"),
            Some(other) => {
                self.notes.push(format!(
                    "{at}: identity `{other}` is not a kind Steward finds people by (email, phone, username); read as a field"
                ));
                None
            }
        };
        let category = match (personal, identity) {
            (Some(category), _) => category.clone(),
            (None, Some(kind)) => {
                let category = match kind {
                    "email" => "user.contact.email",
                    "phone" => "user.contact.phone_number",
                    _ => "user.account.username",
                };
                self.notes.push(format!(
                    "{at}: Fides files it as {}, but it is an identity ({kind}): it holds the person's own {kind}, so it is mapped as {category} and erased (Fides leaves it)",
                    if categories.is_empty() { "nothing".to_owned() } else { categories.join(", ") },
                ));
                category.to_owned()
            }
            (None, None) => return None,
        };
        // fideslang keys Steward's taxonomy has renamed (`user.sensor`) take the new name.
        let category = match Taxonomy::standard().lookup(Kind::Category, &category) {
            Lookup::Deprecated { replaced_by } => {
                self.notes.push(format!(
                    "{at}: {category} is a retired fideslang key; written as {replaced_by}"
                ));
                replaced_by.to_owned()
            }
            _ => category,
        };
        if categories.len() > 1 && personal.is_some() {
            self.remarks.fields.insert(
                (c.name.clone(), f.name.clone()),
                format!("Fides: {}", categories.join(", ")),
            );
        }
        if link && identity.is_none() {
            self.notes.push(format!(
                "{at}: a key or reference ({category}) kept as a link: it names no one once the row's identity fields are erased"
            ));
            return None;
        }
        if meta.is_some_and(|m| m.read_only) {
            self.notes.push(format!(
                "{at}: read-only in Fides: shown in access packages, never erased; if it must be kept, name the legal hold"
            ));
            return None;
        }
        let erase = self.erase_action(c, f, &at);
        Some(Field {
            name: f.name.clone(),
            category,
            identity: identity.map(str::to_owned),
            erase,
        })
    }

    /// The field's erase action, as the manifest writes it (`None` for null).
    fn erase_action(&mut self, c: &Collection, f: &FidesField, at: &str) -> Option<String> {
        let meta = f.fides_meta.as_ref();
        let action = match meta.and_then(|m| m.masking_strategy_override.as_ref()) {
            Some(m) => match m.strategy.as_str() {
                "null_rewrite" => "null".to_owned(),
                "string_rewrite" => format!(
                    "replace:{}",
                    m.configuration
                        .as_ref()
                        .and_then(|c| c.rewrite_value.clone())
                        .unwrap_or_default()
                ),
                "hmac" | "hash" => "hash".to_owned(),
                "random_string_rewrite" => {
                    self.notes.push(format!(
                        "{at}: random_string_rewrite becomes a keyed hash (as unreadable, and the same in every table)"
                    ));
                    "hash".to_owned()
                }
                other => {
                    self.notes.push(format!(
                        "{at}: masking strategy `{other}` is not one Steward has; set to NULL instead"
                    ));
                    "null".to_owned()
                }
            },
            None if meta.and_then(|m| m.data_type.as_deref()) == Some("string") => {
                "hash".to_owned()
            }
            None => "null".to_owned(),
        };
        // NULL where the column may not hold it fails at the first erasure: an empty text.
        if action == "null"
            && let Some(column) = self
                .schema
                .and_then(|s| s.schema.get(&c.name))
                .and_then(|t| t.get(&f.name))
            && !column.nullable
        {
            self.notes.push(format!(
                "{at}: may not hold NULL in the database, so erasure writes an empty text"
            ));
            return Some("replace:".to_owned());
        }
        (action != "null").then_some(action)
    }

    fn reference(&mut self, collection: &str, column: &str, r: &Reference) {
        let at = format!("`{collection}.{column}`");
        if r.dataset != self.key {
            self.notes.push(format!(
                "{at}: a reference to the dataset `{}`: references across manifests are not mapped; find the person there by an identity field",
                r.dataset
            ));
            return;
        }
        let Some((table, field)) = r.field.split_once('.') else {
            self.notes.push(format!(
                "{at}: reference `{}` is not COLLECTION.FIELD; left out",
                r.field
            ));
            return;
        };
        if table == collection {
            self.notes.push(format!(
                "{at}: a reference to its own collection leads to other people (a manager's reports): not followed"
            ));
            return;
        }
        match r.direction.as_deref() {
            // The other table's rows lead to these: the other owns them.
            Some("from") => self.owns.entry(table.to_owned()).or_default().push(Owns {
                column: field.to_owned(),
                table: collection.to_owned(),
                to: column.to_owned(),
                same_person: false,
            }),
            direction => {
                if direction.is_none() {
                    self.notes.push(format!(
                        "{at}: reference to `{}` has no direction; read as `to` (this row leads to that one) — check it",
                        r.field
                    ));
                }
                self.owns
                    .entry(collection.to_owned())
                    .or_default()
                    .push(Owns {
                        column: column.to_owned(),
                        table: table.to_owned(),
                        to: field.to_owned(),
                        same_person: false,
                    });
            }
        }
    }

    /// A collection with no primary key in the file: the live table's, or every field.
    fn primary_key(&mut self, c: &Collection, table: &mut Table) {
        if let Some(key) = self.schema.and_then(|s| s.primary_keys.get(&c.name)) {
            table.primary_key.clone_from(key);
            self.notes.push(format!(
                "collection `{}`: no primary key in the Fides file; the database's is ({})",
                c.name,
                key.join(", ")
            ));
            return;
        }
        table.primary_key = c.fields.iter().map(|f| f.name.clone()).collect();
        self.notes.push(format!(
            "collection `{}`: no primary key in the Fides file{}; all its fields ({}) stand in — name the real key, or import with the database at hand (--url-env)",
            c.name,
            if self.schema.is_some() { " nor in the database" } else { "" },
            table.primary_key.join(", ")
        ));
        self.remarks.tables.entry(c.name.clone()).or_default().push(
            "REVIEW: no primary key was known; name the columns that identify one row".to_owned(),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            purpose: "shop".to_owned(),
            url_env: None,
            dataset: None,
        }
    }

    const SMALL: &str = r"
dataset:
  - fides_key: shop
    collections:
      - name: customer
        fields:
          - name: id
            data_categories: [user.unique_id]
            fides_meta: { primary_key: true }
          - name: email
            data_categories: [user.contact.email]
            fides_meta: { identity: email, data_type: string }
          - name: created
            data_categories: [system.operations]
      - name: login
        fields:
          - name: id
            fides_meta: { primary_key: true }
          - name: customer_id
            data_categories: [user.unique_id]
            fides_meta:
              references: [{ dataset: shop, field: customer.id, direction: from }]
          - name: time
            data_categories: [user.sensor]
      - name: ticket
        fides_meta: { masking_strategy_override: { strategy: delete } }
        fields:
          - name: ref
            data_categories: [system.operations]
            fides_meta: { identity: email }
          - name: other
            fides_meta:
              references: [{ dataset: crm, field: person.id, direction: to }]
";

    #[test]
    fn a_fides_file_becomes_a_manifest_whose_every_table_is_reachable() {
        let imported = import(SMALL, &options(), None).unwrap();
        let m = &imported.manifest;
        let customer = m.table("customer").unwrap();
        assert_eq!(customer.primary_key, ["id"]);
        assert_eq!(customer.context, ["created"]);
        assert_eq!(customer.owns.len(), 1);
        assert_eq!(customer.owns[0].table, "login");
        assert_eq!(customer.owns[0].to, "customer_id");
        let email = &customer.fields[0];
        assert_eq!(
            (email.identity.as_deref(), email.erase.as_deref()),
            (Some("email"), Some("hash"))
        );
        // Fides skips a field with no data_type; Steward erases it.
        let time = &m.table("login").unwrap().fields[0];
        assert_eq!((time.name.as_str(), time.erase.as_deref()), ("time", None));
        // An identity Fides files as operations data is the person's own address.
        let ticket = m.table("ticket").unwrap();
        assert_eq!(ticket.erase, TableErase::Delete);
        assert_eq!(ticket.fields[0].category, "user.contact.email");
        let notes = imported.notes.join("\n");
        for expected in [
            "`ticket.ref`: Fides files it as system.operations",
            "the dataset `crm`",
            "collection `ticket`: no primary key",
            "`login.customer_id`: a key or reference (user.unique_id) kept as a link",
        ] {
            assert!(notes.contains(expected), "missing {expected:?} in\n{notes}");
        }
        assert!(imported.text.contains("# REVIEW: no primary key"));
        assert_eq!(m.dataset.url_env.as_deref(), Some("SHOP_DATABASE_URL"));
    }

    #[test]
    fn a_file_that_is_not_a_fides_dataset_says_what_one_is() {
        for bad in ["dataset: 3", "[1, 2", "dataset:\n  - name: x\n"] {
            let e = import(bad, &options(), None).unwrap_err();
            assert!(
                e.to_string().contains("a Fides dataset file is"),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            import("dataset: []", &options(), None).unwrap_err(),
            ImportError::Empty
        );
        let two = format!("{SMALL}  - fides_key: other\n    collections: []\n");
        assert!(matches!(
            import(&two, &options(), None).unwrap_err(),
            ImportError::Several(k) if k == ["shop", "other"]
        ));
        let chosen = Options {
            dataset: Some("shop".into()),
            ..options()
        };
        assert!(import(&two, &chosen, None).is_ok());
    }
}
