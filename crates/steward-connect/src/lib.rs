//! Steward's connectors to the operator's own databases (docs/datasets.md): where most of a
//! person's data lives — WordPress's MariaDB tables, a shop's PostgreSQL — described by a
//! dataset manifest ([`manifest`]), checked against the declaration and the live schema
//! ([`check`]), searched from the person's identities along the references it declares
//! ([`find`]), exported into access packages ([`Connector`] is a request workflow
//! `DataSource`) and erased as it says ([`erase`]), in PostgreSQL, MariaDB/MySQL and SQLite
//! ([`source`]). [`wordpress`] writes a manifest for WordPress core's tables, [`fides`] reads
//! one from a Fides dataset file, [`scan`] proposes one from a live schema, and [`render`] writes a manifest out for a person to edit.
//!
//! Depends on `steward-core` (the `DataSource` seam) and `steward-policy` (the declaration).

pub mod check;
pub mod erase;
pub mod fides;
pub mod find;
pub mod manifest;
pub mod people;
pub mod render;
pub mod retention;
pub mod scan;
pub mod source;
pub mod wordpress;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use steward_core::requests::{DataSource, Group};
use steward_core::retention::{Cursor, Rule as RetentionRule, Step, SweptSource};

pub use manifest::Manifest;
pub use source::{Source, SourceError};

/// One dataset, connected: its manifest and its database.
#[derive(Debug, Clone)]
pub struct Connector {
    /// The manifest.
    pub manifest: Manifest,
    /// The database.
    pub source: Source,
}

impl Connector {
    /// Connects the dataset `manifest` describes (its URL from the variable or file it names)
    /// and checks the manifest against its live schema.
    ///
    /// # Errors
    /// The URL not given, the database unreachable — never the URL itself — or a manifest
    /// that does not fit the schema, each finding with its fix.
    pub async fn open(manifest: Manifest) -> Result<Self, String> {
        let url = manifest.url()?;
        let source = Source::connect(&manifest.dataset.name, &url)
            .await
            .map_err(|e| e.to_string())?;
        let findings = check::against_schema(&manifest, &source);
        if check::has_errors(&findings) {
            let lines: Vec<String> = findings
                .iter()
                .filter(|f| f.error)
                .map(|f| format!("dataset `{}`: {}", manifest.dataset.name, f.message))
                .collect();
            return Err(lines.join("\n"));
        }
        Ok(Self { manifest, source })
    }

    /// What the dataset holds of the person with `identities`, table by table, as access
    /// package groups (the primary key, the context columns and the personal fields).
    ///
    /// # Errors
    /// As [`find::find`].
    pub async fn groups(&self, identities: &[(String, String)]) -> Result<Vec<Group>, SourceError> {
        let found = find::find(&self.manifest, &self.source, identities).await?;
        Ok(self.groups_from(&found))
    }

    /// The access package groups of rows already found.
    pub fn groups_from(&self, found: &find::Found) -> Vec<Group> {
        let mut out = Vec::new();
        for name in &found.order {
            let (Some(table), Some(rows)) = (self.manifest.table(name), found.tables.get(name))
            else {
                continue;
            };
            // Every column read: the key, the context, the personal fields, and the links
            // between the rows (which order held which item).
            let shown: Vec<usize> = (0..rows.columns.len()).collect();
            out.push(Group {
                name: format!("{}-{}", self.manifest.dataset.name, table.name),
                title: format!(
                    "{} — {} (for {})",
                    self.manifest.dataset.name, table.name, table.purpose
                ),
                source: self.manifest.dataset.name.clone(),
                columns: shown.iter().map(|&i| rows.columns[i].clone()).collect(),
                rows: rows
                    .rows
                    .iter()
                    .map(|r| {
                        shown
                            .iter()
                            .map(|&i| r[i].clone().unwrap_or_default())
                            .collect()
                    })
                    .collect(),
            });
        }
        out
    }
}

impl DataSource for Connector {
    fn name(&self) -> &str {
        &self.manifest.dataset.name
    }

    fn collect<'a>(
        &'a self,
        _subject: Option<steward_core::SubjectId>,
        identities: &'a [(String, String)],
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Group>, String>> + Send + 'a>> {
        Box::pin(async move { self.groups(identities).await.map_err(|e| e.to_string()) })
    }

    fn people<'a>(
        &'a self,
        categories: &'a [String],
        limit: usize,
    ) -> Pin<Box<dyn Future<Output = Result<steward_core::requests::People, String>> + Send + 'a>>
    {
        Box::pin(async move {
            people::people(&self.manifest, &self.source, categories, limit)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn erase<'a>(
        &'a self,
        _subject: Option<steward_core::SubjectId>,
        identities: &'a [(String, String)],
        hash_key: &'a [u8; 32],
    ) -> Pin<Box<dyn Future<Output = Result<Vec<String>, String>> + Send + 'a>> {
        Box::pin(async move {
            let found = find::find(&self.manifest, &self.source, identities)
                .await
                .map_err(|e| e.to_string())?;
            if found.count() == 0 {
                return Ok(Vec::new());
            }
            let done = erase::erase(&self.manifest, &self.source, &found, hash_key, false)
                .await
                .map_err(|e| e.to_string())?;
            let name = &self.manifest.dataset.name;
            let mut lines = Vec::new();
            for t in &done.tables {
                lines.push(format!(
                    "{name}.{}: {} deleted, {} changed",
                    t.table, t.deleted, t.changed
                ));
                for (field, why) in &t.held {
                    lines.push(format!("{name}.{}.{field}: kept ({why})", t.table));
                }
            }
            Ok(lines)
        })
    }
}

impl SweptSource for Connector {
    fn retention_rules(&self, declaration: &steward_policy::Declaration) -> Vec<RetentionRule> {
        retention::described(&self.manifest, declaration)
    }

    fn sweep_step<'a>(
        &'a self,
        declaration: &'a steward_policy::Declaration,
        as_of: time::OffsetDateTime,
        hash_key: Option<&'a [u8; 32]>,
        cursor: &'a mut Cursor,
    ) -> Step<'a> {
        Box::pin(async move {
            retention::sweep_step(
                &self.manifest,
                &self.source,
                declaration,
                as_of,
                hash_key,
                cursor,
            )
            .await
            .map_err(|e| e.to_string())
        })
    }
}

/// A dataset connected when first needed, and again after a failure: `steward serve` starts
/// while a database is down or its URL not yet given, and every request that needs it fails
/// (so is retried, never answered without it) until it can be reached.
#[derive(Debug)]
pub struct Deferred {
    manifest: Manifest,
    connected: tokio::sync::Mutex<Option<Arc<Connector>>>,
}

impl Deferred {
    /// A dataset not connected yet.
    pub fn new(manifest: Manifest) -> Self {
        Self {
            manifest,
            connected: tokio::sync::Mutex::new(None),
        }
    }

    /// The connection, made now if there is none.
    ///
    /// # Errors
    /// As [`Connector::open`].
    pub async fn connector(&self) -> Result<Arc<Connector>, String> {
        let mut slot = self.connected.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(Connector::open(self.manifest.clone()).await?);
        *slot = Some(Arc::clone(&c));
        Ok(c)
    }
}

impl DataSource for Deferred {
    fn name(&self) -> &str {
        &self.manifest.dataset.name
    }

    fn collect<'a>(
        &'a self,
        subject: Option<steward_core::SubjectId>,
        identities: &'a [(String, String)],
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Group>, String>> + Send + 'a>> {
        Box::pin(async move {
            let c = self.connector().await?;
            c.collect(subject, identities).await
        })
    }

    fn people<'a>(
        &'a self,
        categories: &'a [String],
        limit: usize,
    ) -> Pin<Box<dyn Future<Output = Result<steward_core::requests::People, String>> + Send + 'a>>
    {
        Box::pin(async move {
            let c = self.connector().await?;
            c.people(categories, limit).await
        })
    }

    fn erase<'a>(
        &'a self,
        subject: Option<steward_core::SubjectId>,
        identities: &'a [(String, String)],
        hash_key: &'a [u8; 32],
    ) -> Pin<Box<dyn Future<Output = Result<Vec<String>, String>> + Send + 'a>> {
        Box::pin(async move {
            let c = self.connector().await?;
            c.erase(subject, identities, hash_key).await
        })
    }
}

impl SweptSource for Deferred {
    fn retention_rules(&self, declaration: &steward_policy::Declaration) -> Vec<RetentionRule> {
        retention::described(&self.manifest, declaration)
    }

    fn sweep_step<'a>(
        &'a self,
        declaration: &'a steward_policy::Declaration,
        as_of: time::OffsetDateTime,
        hash_key: Option<&'a [u8; 32]>,
        cursor: &'a mut Cursor,
    ) -> Step<'a> {
        Box::pin(async move {
            let c = self.connector().await?;
            c.sweep_step(declaration, as_of, hash_key, cursor).await
        })
    }
}
