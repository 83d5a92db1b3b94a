//! `steward datasets …`: the operator's own databases — a manifest written for a known
//! application, checked, and a person found or erased in them.

use std::path::{Path, PathBuf};

use steward_connect::{Connector, Manifest, Source, check, erase, fides, find, scan, wordpress};
use steward_core::Store;
use steward_policy::Declaration;

use crate::cli::{
    DatasetsCommand, DatasetsFindArgs, DatasetsImportFidesArgs, DatasetsScanArgs,
    DatasetsTemplateArgs, Global,
};
use crate::vault::{cli_access, identity, with_vault};
use crate::{Outcome, output};

pub fn run(global: &Global, command: &DatasetsCommand) -> Outcome {
    match command {
        DatasetsCommand::Template(args) => template(args),
        DatasetsCommand::Check => check_all(global),
        DatasetsCommand::Find(args) => find_person(global, args),
        DatasetsCommand::ImportFides(args) => import_fides(args),
        DatasetsCommand::Scan(args) => scan_schema(args),
    }
}

/// The database's own name, from the URL's path (never its user, password or host): the
/// path after `host/` of a server's URL, the file's stem of `sqlite:PATH`; `database` when
/// there is none that is a plain word.
fn database_name(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let path = match url.split_once("://") {
        // After the authority (user:password@host:port), if there is a path at all. An
        // authority with a colon but no @ may be a user and a password holding a `/`.
        Some((_, rest)) => match rest.split_once('/') {
            Some((authority, _)) if authority.contains(':') && !authority.contains('@') => "",
            Some((_, p)) => p,
            None => "",
        },
        None => url.split_once(':').map(|(_, p)| p).unwrap_or_default(),
    };
    let last = path.rsplit('/').next().unwrap_or_default();
    let last = last
        .strip_suffix(".db")
        .or_else(|| last.strip_suffix(".sqlite"))
        .unwrap_or(last);
    if steward_connect::manifest::plain_identifier(last) {
        last.to_owned()
    } else {
        "database".to_owned()
    }
}

/// Refuses to write over an existing file.
fn refuse_existing(output: Option<&Path>) -> Result<(), Outcome> {
    match output {
        Some(path) if path.exists() => {
            output::stderr(&format!(
                "error: {} exists; nothing was written (remove it, or write elsewhere with -o)",
                path.display()
            ));
            Err(Outcome::Invalid)
        }
        _ => Ok(()),
    }
}

/// Connects for a one-off command, on a runtime of its own.
fn connect_once(name: &str, url: &str) -> Result<Source, Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            output::stderr(&format!("error: cannot start: {e}"));
            Outcome::Unreadable
        })?;
    runtime.block_on(Source::connect(name, url)).map_err(|e| {
        output::stderr(&format!("error: {e}"));
        Outcome::Unreadable
    })
}

fn scan_schema(args: &DatasetsScanArgs) -> Outcome {
    if let Err(o) = refuse_existing(args.output.as_deref()) {
        return o;
    }
    let url = match (&args.url, &args.url_env) {
        (Some(url), _) => url.clone(),
        (None, Some(var)) => match std::env::var(var) {
            Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => {
                output::stderr(&format!(
                    "error: the variable {var} is not set: export {var}=postgres://USER:PASSWORD@HOST/DATABASE (or mysql://…, sqlite:PATH)"
                ));
                return Outcome::Invalid;
            }
        },
        (None, None) => {
            output::stderr(
                "error: name the database: steward datasets scan --url-env VARIABLE (or a URL)",
            );
            return Outcome::Invalid;
        }
    };
    // The database's own name, from the URL's path, when it is a plain word.
    let name = args.name.clone().unwrap_or_else(|| database_name(&url));
    let url_env = args
        .url_env
        .clone()
        .unwrap_or_else(|| format!("{}_DATABASE_URL", name.to_ascii_uppercase()));
    let source = match connect_once(&name, &url) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let scanned = match scan::scan(
        &source,
        &scan::Options {
            name,
            purpose: args.purpose.clone(),
            url_env,
        },
    ) {
        Ok(s) => s,
        Err(e) => {
            output::stderr(&format!("error: {e}"));
            return Outcome::Invalid;
        }
    };
    for note in &scanned.notes {
        output::stderr(&format!(
            "note: {}",
            steward_connect::render::one_line(note)
        ));
    }
    let fields: usize = scanned.manifest.tables.iter().map(|t| t.fields.len()).sum();
    output::stderr(&format!(
        "{} tables, {fields} personal columns proposed; review every `review` mark, then name the manifest in the declaration and run `steward datasets check`",
        scanned.manifest.tables.len()
    ));
    super::emit(scanned.text.as_bytes(), args.output.as_deref())
}

fn import_fides(args: &DatasetsImportFidesArgs) -> Outcome {
    if let Err(o) = refuse_existing(args.output.as_deref()) {
        return o;
    }
    // At most the bound a dataset file may be, and one byte more to tell that it is larger.
    let mut yaml = String::new();
    let read = std::fs::File::open(&args.file).and_then(|f| {
        std::io::Read::read_to_string(
            &mut std::io::Read::take(f, fides::MAX_FILE_BYTES as u64 + 1),
            &mut yaml,
        )
    });
    if let Err(e) = read {
        output::stderr(&format!("error: cannot read {}: {e}", args.file.display()));
        return Outcome::Unreadable;
    }
    let options = fides::Options {
        purpose: args.purpose.clone(),
        url_env: args.url_env.clone(),
        dataset: args.dataset.clone(),
    };
    // With the database at hand, its schema fills what the file leaves out.
    let source = match args
        .url_env
        .as_deref()
        .and_then(|var| std::env::var(var).ok().map(|url| (var, url)))
    {
        Some((var, url)) => match connect_once(var, &url) {
            Ok(s) => {
                output::stderr(&format!("note: read the live schema from ${var}"));
                Some(s)
            }
            Err(o) => {
                output::stderr(&format!(
                    "  = help: unset {var} to import from the file alone"
                ));
                return o;
            }
        },
        None => None,
    };
    let imported = match fides::import(&yaml, &options, source.as_ref()) {
        Ok(i) => i,
        Err(e) => {
            // Names from the file, escaped: a line break or a terminal's escape in one is shown,
            // never acted on.
            let lines: Vec<String> = e
                .to_string()
                .lines()
                .map(steward_connect::render::one_line)
                .collect();
            output::stderr(&format!(
                "error: {}: {}",
                args.file.display(),
                lines.join("\n")
            ));
            return Outcome::Invalid;
        }
    };
    for note in &imported.notes {
        output::stderr(&format!(
            "note: {}",
            steward_connect::render::one_line(note)
        ));
    }
    output::stderr(&format!(
        "{} tables imported; {} notes. Next: name the manifest in the declaration ([[datasets]] manifest = \"…\") and run `steward datasets check`",
        imported.manifest.tables.len(),
        imported.notes.len()
    ));
    super::emit(imported.text.as_bytes(), args.output.as_deref())
}

/// The declared datasets with a manifest, read but not connected (`steward retention rules`
/// needs no database).
///
/// # Errors
/// A manifest that cannot be read, said on standard error.
pub fn unconnected(
    global: &Global,
    declaration: &Declaration,
) -> Result<Vec<std::sync::Arc<dyn steward_core::retention::Dataset>>, Outcome> {
    if !declaration.datasets.iter().any(|d| d.manifest.is_some()) {
        return Ok(Vec::new());
    }
    Ok(manifests(global, declaration, None)?
        .into_iter()
        .map(|(_, _, m)| {
            std::sync::Arc::new(steward_connect::Deferred::new(m))
                as std::sync::Arc<dyn steward_core::retention::Dataset>
        })
        .collect())
}

/// The declared datasets for a retention sweep: those with a table the sweep reaches are
/// connected now (and checked against the live schema), the others left unconnected (a sweep
/// never opens them).
///
/// # Errors
/// A manifest that cannot be read, or a database with a table to sweep that cannot be
/// reached, said on standard error.
pub async fn for_retention(
    global: &Global,
    declaration: &Declaration,
) -> Result<Vec<std::sync::Arc<dyn steward_core::retention::Dataset>>, Outcome> {
    if !declaration.datasets.iter().any(|d| d.manifest.is_some()) {
        return Ok(Vec::new());
    }
    let mut out: Vec<std::sync::Arc<dyn steward_core::retention::Dataset>> = Vec::new();
    for (id, _, manifest) in manifests(global, declaration, None)? {
        let swept = steward_connect::retention::rules(&manifest, declaration)
            .iter()
            .any(|r| r.due.is_some());
        if !swept {
            out.push(std::sync::Arc::new(steward_connect::Deferred::new(
                manifest,
            )));
            continue;
        }
        match Connector::open(manifest).await {
            Ok(c) => out.push(std::sync::Arc::new(c)),
            Err(e) => {
                output::stderr(&format!(
                    "error: dataset `{id}`: {e}\n  = note: it has tables the retention sweep reaches; nothing was changed"
                ));
                return Err(Outcome::Unreadable);
            }
        }
    }
    Ok(out)
}

/// The declared datasets with a manifest, checked against the declaration and connected: the
/// sources of access packages for `serve`, `export` and requests. None when none is declared.
///
/// # Errors
/// A manifest that cannot be read or does not fit the declaration, or (unless `serving`) a
/// database that cannot be reached — each said on standard error: an access package must not
/// leave a database out silently. A server (`serving`) starts without a database it cannot
/// reach yet, says so, and connects when a request needs it.
pub async fn connectors(
    global: &Global,
    declaration: &Declaration,
    serving: bool,
) -> Result<Vec<std::sync::Arc<dyn steward_core::retention::Dataset>>, Outcome> {
    if !declaration.datasets.iter().any(|d| d.manifest.is_some()) {
        return Ok(Vec::new());
    }
    let mut out: Vec<std::sync::Arc<dyn steward_core::retention::Dataset>> = Vec::new();
    for (id, _, manifest) in manifests(global, declaration, None)? {
        let findings = check::against_declaration(&manifest, declaration);
        if check::has_errors(&findings) {
            for f in findings.iter().filter(|f| f.error) {
                output::stderr(&format!("error: dataset `{id}`: {}", f.message));
            }
            output::stderr(
                "  = help: run `steward datasets check` and fix the manifest or the declaration",
            );
            return Err(Outcome::Invalid);
        }
        let manifest_again = manifest.clone();
        match Connector::open(manifest).await {
            Ok(c) => {
                // Warnings (a lookup no index serves) do not stop it, but are said.
                for f in check::against_schema(&c.manifest, &c.source) {
                    output::stderr(&format!("warning: dataset `{id}`: {}", f.message));
                }
                out.push(std::sync::Arc::new(c));
            }
            // A server starts without it, and connects when a request needs it: until then
            // those requests fail and are retried, never answered without it.
            Err(e) if serving => {
                output::stderr(&format!(
                    "warning: {e}\n  = note: serving without dataset `{id}` connected: requests that need it wait, retried each minute, until it can be reached"
                ));
                out.push(std::sync::Arc::new(steward_connect::Deferred::new(
                    manifest_again,
                )));
            }
            Err(e) => {
                output::stderr(&format!("error: {e}"));
                return Err(Outcome::Unreadable);
            }
        }
    }
    Ok(out)
}

fn template(args: &DatasetsTemplateArgs) -> Outcome {
    if args.application != "wordpress" {
        output::stderr(&format!(
            "error: no template for `{}`; there is one for: wordpress",
            args.application
        ));
        return Outcome::Invalid;
    }
    let text = match wordpress::template(&wordpress::Options {
        prefix: args.prefix.clone(),
        accounts: args.accounts.clone(),
        comments: args.comments.clone(),
        erase_comments: args.erase_comments.clone(),
        url_env: args.url_env.clone(),
    }) {
        Ok(t) => t,
        Err(e) => {
            output::stderr(&format!("error: {e}"));
            return Outcome::Invalid;
        }
    };
    if let Err(o) = refuse_existing(args.output.as_deref()) {
        return o;
    }
    super::emit(text.as_bytes(), args.output.as_deref())
}

/// Where a manifest the declaration names is: `file` relative to the declaration's folder.
pub(crate) fn manifest_path(global: &Global, file: &str) -> PathBuf {
    global
        .declaration
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        .join(file)
}

/// The declaration's datasets that have a manifest, each read (its path relative to the
/// declaration's folder).
fn manifests(
    global: &Global,
    declaration: &Declaration,
    only: Option<&str>,
) -> Result<Vec<(String, PathBuf, Manifest)>, Outcome> {
    let mut out = Vec::new();
    let mut failed = false;
    for d in &declaration.datasets {
        if only.is_some_and(|o| o != d.id) {
            continue;
        }
        let Some(file) = &d.manifest else {
            continue;
        };
        let path = manifest_path(global, file);
        match Manifest::load(&path) {
            Ok(mut m) => {
                // Named as the declaration names it, in packages, mail and the audit alike.
                m.dataset.name.clone_from(&d.id);
                out.push((d.id.clone(), path, m));
            }
            Err(e) => {
                output::stderr(&format!("error: dataset `{}`:\n{e}", d.id));
                failed = true;
            }
        }
    }
    if let Some(id) = only
        && !declaration.datasets.iter().any(|d| d.id == id)
    {
        let ids: Vec<&str> = declaration.datasets.iter().map(|d| d.id.as_str()).collect();
        output::stderr(&format!(
            "error: the declaration has no dataset `{id}` (it has: {})",
            if ids.is_empty() {
                "none".to_owned()
            } else {
                ids.join(", ")
            }
        ));
        return Err(Outcome::Invalid);
    }
    if failed {
        return Err(Outcome::Invalid);
    }
    if out.is_empty() {
        output::stderr(
            "error: no dataset has a manifest: write one (steward datasets template wordpress -o wordpress.toml) and name it in the declaration:\n  [[datasets]]\n  id = \"wordpress\"\n  manifest = \"wordpress.toml\"",
        );
        return Err(Outcome::Invalid);
    }
    Ok(out)
}

fn check_all(global: &Global) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    let list = match manifests(global, &declaration, None) {
        Ok(l) => l,
        Err(o) => return o,
    };
    runtime.block_on(async {
        let mut errors = false;
        let mut report = String::new();
        for (id, path, manifest) in &list {
            let mut findings = check::against_declaration(manifest, &declaration);
            let live = match manifest.url() {
                Ok(url) => match steward_connect::Source::connect(id, &url).await {
                    Ok(source) => {
                        findings.extend(check::against_schema(manifest, &source));
                        "checked against its live schema".to_owned()
                    }
                    Err(e) => {
                        errors = true;
                        format!("not checked against its database: {e}")
                    }
                },
                Err(e) => format!("not checked against its database: {e}"),
            };
            errors |= check::has_errors(&findings);
            report.push_str(&format!(
                "dataset `{id}` ({}): {} tables, {live}\n",
                path.display(),
                manifest.tables.len()
            ));
            for f in &findings {
                report.push_str(&format!(
                    "  {}: {}\n",
                    if f.error { "error" } else { "warning" },
                    f.message
                ));
            }
        }
        output::stderr(report.trim_end());
        if errors {
            Outcome::Invalid
        } else {
            Outcome::Ok
        }
    })
}

fn find_person(global: &Global, args: &DatasetsFindArgs) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    let person = match identity(
        args.email.as_deref(),
        args.phone.as_deref(),
        args.username.as_deref(),
    ) {
        Ok(i) => i,
        Err(o) => return o,
    };
    let identities = vec![(person.kind().as_str().to_owned(), person.value().to_owned())];
    let list = match manifests(global, &declaration, args.dataset.as_deref()) {
        Ok(l) => l,
        Err(o) => return o,
    };
    runtime.block_on(async {
        with_vault!(global, declaration.clone(), |vault| {
            find_in(&vault, list, &identities, args).await
        })
    })
}

async fn find_in<S: Store>(
    vault: &steward_core::Vault<S>,
    list: Vec<(String, PathBuf, Manifest)>,
    identities: &[(String, String)],
    args: &DatasetsFindArgs,
) -> Outcome {
    let access = cli_access();
    let action = match (args.erase, args.dry_run) {
        (false, _) => "dataset.find",
        (true, true) => "dataset.erase-plan",
        (true, false) => "dataset.erase",
    };
    let key = match vault.dataset_hash_key() {
        Ok(k) => k,
        Err(e) => {
            output::stderr(&format!("error: {e}"));
            return Outcome::Unreadable;
        }
    };
    let mut out = String::new();
    let mut outcome = Outcome::Ok;
    for (id, _, manifest) in list {
        let mut entry = access.entry(action, vault.clock().now());
        entry.detail = Some(format!("dataset {id}"));
        let result = async {
            let connector = Connector::open(manifest).await?;
            let found = find::find(&connector.manifest, &connector.source, identities)
                .await
                .map_err(|e| e.to_string())?;
            if !args.erase {
                // One search: the groups are made of the rows already found.
                let groups = connector.groups_from(&found);
                let mut text = format!("dataset `{id}`: {} rows\n", found.count());
                for g in groups {
                    text.push_str(&format!("  {} ({} rows)\n", g.title, g.rows.len()));
                    for row in &g.rows {
                        let cells: Vec<String> = g
                            .columns
                            .iter()
                            .zip(row)
                            .map(|(c, v)| {
                                // A value as a line of text: an escape in it is shown, not run.
                                format!("{c}={}", steward_connect::render::one_line(v))
                            })
                            .collect();
                        text.push_str(&format!("    {}\n", cells.join("  ")));
                    }
                }
                for (table, n) in &found.withheld {
                    text.push_str(&format!(
                        "  {table}: {n} more rows a reference leads to were left out: they name someone else\n"
                    ));
                }
                return Ok(text);
            }
            let done = erase::erase(
                &connector.manifest,
                &connector.source,
                &found,
                &key,
                args.dry_run,
            )
            .await
            .map_err(|e| e.to_string())?;
            let mut text = format!(
                "dataset `{id}`: {}\n",
                if done.dry {
                    "would erase (nothing was changed)"
                } else {
                    "erased"
                }
            );
            for t in &done.tables {
                text.push_str(&format!(
                    "  {}: {} rows deleted, {} changed\n",
                    t.table, t.deleted, t.changed
                ));
                for (field, why) in &t.held {
                    text.push_str(&format!("    kept: {field} ({why})\n"));
                }
                if done.dry {
                    for s in &t.statements {
                        text.push_str(&format!("    {s}\n"));
                    }
                }
            }
            Ok::<String, String>(text)
        }
        .await;
        match result {
            Ok(text) => out.push_str(&text),
            Err(e) => {
                entry.outcome = steward_core::audit::Outcome::Failed;
                entry.code = Some("dataset-failed".to_owned());
                output::stderr(&format!("error: {e}"));
                outcome = Outcome::Unreadable;
            }
        }
        if let Err(e) = vault.record(entry).await {
            output::stderr(&format!("error: the audit trail could not be written: {e}"));
            return Outcome::Unreadable;
        }
    }
    if output::stdout(out.as_bytes()).is_err() {
        return Outcome::Unreadable;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::database_name;

    #[test]
    fn a_scanned_database_is_named_from_its_path_never_its_password() {
        assert_eq!(
            database_name("postgres://postgres:S3cretPW@127.0.0.1/shop?sslmode=require"),
            "shop"
        );
        assert_eq!(database_name("postgres://postgres:S3cretPW"), "database");
        assert_eq!(database_name("mysql://root:pw@db:3306"), "database");
        assert_eq!(database_name("sqlite:/srv/site/site.db"), "site");
        assert_eq!(database_name("sqlite:data.sqlite"), "data");
        assert_eq!(
            database_name("postgres://postgres:abc/S3cretPW"),
            "database"
        );
    }
}
