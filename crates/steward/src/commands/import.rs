//! `steward import`: people from CSV or JSON Lines into the vault.
//!
//! The whole file is checked before anything is written; bad lines are listed by number with
//! what is wrong (never their values). Subjects are then written in transactional batches;
//! lines whose identity is already in the vault are skipped and counted, so an interrupted
//! import is finished by running it again — or, with `--update`, their values are written for
//! the person already there, each as an audited correction.

use std::collections::HashMap;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use steward_core::vault::MAX_VALUE_BYTES;
use steward_core::{
    FieldSource, Identity, IdentityKind, NewSubjectInput, Store, Vault, VaultError,
};
use steward_policy::taxonomy::{Kind, Lookup};

use crate::cli::{Global, ImportArgs, ImportFormat};
use crate::vault::{open_ledger, with_vault};
use crate::{Outcome, output};

/// What a column holds.
#[derive(Debug, Clone)]
enum Column {
    Identity(IdentityKind),
    Field(String),
}

/// At most this many bad lines are listed.
const MAX_LISTED: usize = 50;

pub fn run(global: &Global, args: &ImportArgs) -> Outcome {
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    let format = args
        .format
        .or_else(|| match args.file.extension().and_then(|e| e.to_str()) {
            Some("csv") => Some(ImportFormat::Csv),
            Some("jsonl" | "ndjson") => Some(ImportFormat::Jsonl),
            _ => None,
        });
    let Some(format) = format else {
        output::stderr(&format!(
            "error: cannot tell the format of {}: name it .csv or .jsonl, or pass --format csv|jsonl",
            args.file.display()
        ));
        return Outcome::Invalid;
    };
    let rows = match read_rows(&args.file, format) {
        Ok(rows) => rows,
        Err(e) => {
            output::stderr(&format!("error: {e}"));
            return Outcome::Unreadable;
        }
    };
    // Through the consent ledger: it refuses a declaration whose terms changed under a
    // version already served (data would be collected under terms nobody was shown), and an
    // update's change of address is told as any correction's is.
    runtime.block_on(async {
        with_vault!(global, declaration.clone(), |vault| {
            match open_ledger(vault, &declaration, global, "http://127.0.0.1:8080").await {
                Ok(ledger) => import(&ledger, args, rows).await,
                Err(outcome) => outcome,
            }
        })
    })
}

/// A line that could not be read: its number and what is wrong.
type BadLine = (u64, String);

/// One line of the file: its number and its values by column name.
struct Row {
    line: u64,
    values: Vec<(String, String)>,
}

fn read_rows(path: &Path, format: ImportFormat) -> Result<Vec<Result<Row, BadLine>>, String> {
    let shown = path.display();
    match format {
        ImportFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(false)
                .from_path(path)
                .map_err(|e| format!("cannot read {shown}: {e}"))?;
            let headers: Vec<String> = reader
                .headers()
                .map_err(|e| format!("{shown}: the header row cannot be read: {e}"))?
                .iter()
                .map(|h| h.trim().to_owned())
                .collect();
            let mut rows = Vec::new();
            for record in reader.records() {
                rows.push(match record {
                    Ok(r) => Ok(Row {
                        line: r.position().map_or(0, csv::Position::line),
                        values: headers
                            .iter()
                            .cloned()
                            .zip(r.iter().map(|v| v.trim().to_owned()))
                            .collect(),
                    }),
                    Err(e) => {
                        let line = e.position().map_or(0, csv::Position::line);
                        let reason = match e.kind() {
                            csv::ErrorKind::UnequalLengths {
                                expected_len, len, ..
                            } => format!(
                                "has {len} value{} where the header has {expected_len}",
                                if *len == 1 { "" } else { "s" }
                            ),
                            csv::ErrorKind::Utf8 { .. } => "is not UTF-8 text".to_owned(),
                            _ => "cannot be read as CSV".to_owned(),
                        };
                        Err((line, reason))
                    }
                });
            }
            Ok(rows)
        }
        ImportFormat::Jsonl => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
            Ok(text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| {
                    let line = u64::try_from(i + 1).unwrap_or(u64::MAX);
                    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(l) {
                        Ok(object) => {
                            let mut values = Vec::new();
                            for (key, value) in object {
                                let text = match value {
                                    serde_json::Value::String(s) => s,
                                    serde_json::Value::Null => continue,
                                    serde_json::Value::Number(n) => n.to_string(),
                                    serde_json::Value::Bool(b) => b.to_string(),
                                    _ => return Err((line, format!("the value of `{key}` is a list or object; give text"))),
                                };
                                values.push((key, text.trim().to_owned()));
                            }
                            Ok(Row { line, values })
                        }
                        Err(_) => Err((line, "is not a JSON object".to_owned())),
                    }
                })
                .collect())
        }
    }
}

fn column<S: Store>(vault: &Vault<S>, purpose: &str, name: &str) -> Result<Column, String> {
    let column = match name {
        "email" => Column::Identity(IdentityKind::Email),
        "phone" => Column::Identity(IdentityKind::Phone),
        "username" => Column::Identity(IdentityKind::Username),
        other => Column::Field(other.to_owned()),
    };
    let category = match &column {
        Column::Identity(kind) => kind.category(),
        Column::Field(c) => c.as_str(),
    };
    vault
        .check_collect(purpose, category)
        .map_err(|e| match e {
            VaultError::UnknownCategory(_) => {
                // The nearer of an identity kind and a data category (`usrname`, `user.nme`).
                let typed = name.to_lowercase();
                let kind = steward_policy::suggest::nearest(&typed, ["email", "phone", "username"]);
                let category = match vault.declaration().taxonomy.lookup(Kind::Category, name) {
                    Lookup::Unknown { suggestion } => suggestion,
                    _ => None,
                };
                let distance = |s: &str| steward_policy::suggest::distance(&typed, s);
                let nearest = match (kind, category) {
                    (Some(k), Some(c)) => Some(if distance(k) < distance(c) { k } else { c }),
                    (k, c) => k.or(c),
                };
                let hint = match nearest {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "name columns email, phone, username, or a data category such as user.name (`steward taxonomy` lists them)".to_owned(),
                };
                format!("column `{name}` is neither an identity kind nor a data category; {hint}")
            }
            other => format!("column `{name}`: {other}"),
        })
        .map(|()| column)
}

/// What every column holding a value somewhere in the file is, or every column that cannot be
/// imported for `purpose` with why (all of them, so one run names every fix).
fn columns_of<S: Store>(
    vault: &Vault<S>,
    purpose: &str,
    rows: &[Result<Row, BadLine>],
) -> Result<HashMap<String, Column>, Vec<String>> {
    let mut columns = HashMap::new();
    let mut problems = Vec::new();
    for row in rows.iter().flatten() {
        for (name, value) in &row.values {
            if value.is_empty() || columns.contains_key(name) {
                continue;
            }
            match column(vault, purpose, name) {
                Ok(c) => {
                    columns.insert(name.clone(), c);
                }
                Err(e) if !problems.contains(&e) => problems.push(e),
                Err(_) => {}
            }
        }
    }
    if problems.is_empty() {
        Ok(columns)
    } else {
        Err(problems)
    }
}

/// Seals a chunk on every core: sealing is pure CPU, the database waits for it.
fn prepare_in_parallel<S: Store>(
    vault: &Vault<S>,
    chunk: &[NewSubjectInput],
) -> Result<Vec<steward_core::store::SubjectRecord>, VaultError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .max(1);
    let per_thread = chunk.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = chunk
            .chunks(per_thread)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|i| vault.prepare(i))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(chunk.len());
        for part in parts {
            match part.join() {
                Ok(prepared) => out.extend(prepared?),
                Err(_) => {
                    return Err(VaultError::Crypto(steward_crypto::CryptoError::Random(
                        "a sealing thread failed".to_owned(),
                    )));
                }
            }
        }
        Ok(out)
    })
}

async fn import<S: Store>(
    ledger: &steward_core::ledger::Ledger<S>,
    args: &ImportArgs,
    rows: Vec<Result<Row, (u64, String)>>,
) -> Outcome {
    let vault = ledger.vault().as_ref();
    let columns = match columns_of(vault, &args.purpose, &rows) {
        Ok(c) => c,
        Err(problems) => {
            for problem in &problems {
                output::stderr(&format!("error: {problem}"));
            }
            output::stderr("Nothing was written.");
            return Outcome::Invalid;
        }
    };
    let mut bad: Vec<BadLine> = Vec::new();
    let mut inputs: Vec<NewSubjectInput> = Vec::with_capacity(rows.len());
    let mut lines: Vec<u64> = Vec::with_capacity(rows.len());
    let mut seen: HashMap<(String, String), u64> = HashMap::new();
    for row in rows {
        let row = match row {
            Ok(r) => r,
            Err(bad_line) => {
                bad.push(bad_line);
                continue;
            }
        };
        let mut input = NewSubjectInput {
            identities: Vec::new(),
            fields: Vec::new(),
            purpose: args.purpose.clone(),
            source: FieldSource::Import,
        };
        let mut problem = None;
        for (name, value) in &row.values {
            if value.is_empty() {
                continue;
            }
            let Some(column) = columns.get(name).cloned() else {
                continue;
            };
            match column {
                Column::Identity(kind) => match Identity::parse(kind, value) {
                    Ok(identity) => {
                        let key = (identity.kind().to_string(), identity.value().to_owned());
                        if let Some(first) = seen.get(&key) {
                            problem =
                                Some(format!("has the same {} as line {first}", identity.kind()));
                        } else {
                            seen.insert(key, row.line);
                            input.identities.push(identity);
                        }
                    }
                    Err(e) => problem = Some(e.to_string()),
                },
                Column::Field(category) => {
                    if value.len() > MAX_VALUE_BYTES {
                        problem = Some(format!(
                            "the value of `{category}` is {} bytes; at most {MAX_VALUE_BYTES}",
                            value.len()
                        ));
                    }
                    input.fields.push((category, value.clone()));
                }
            }
        }
        if problem.is_none() && input.identities.is_empty() {
            problem = Some("gives no identity (email, phone or username)".to_owned());
        }
        match problem {
            Some(p) => bad.push((row.line, p)),
            None => {
                inputs.push(input);
                lines.push(row.line);
            }
        }
    }
    if !bad.is_empty() {
        bad.sort_by_key(|(line, _)| *line);
        for (line, reason) in bad.iter().take(MAX_LISTED) {
            output::stderr(&format!("{}:{line}: {reason}", args.file.display()));
        }
        if bad.len() > MAX_LISTED {
            output::stderr(&format!("… and {} more", bad.len() - MAX_LISTED));
        }
        output::stderr(&format!(
            "{} bad line{}; nothing was written. Fix them and run the import again.",
            bad.len(),
            if bad.len() == 1 { "" } else { "s" }
        ));
        return Outcome::Invalid;
    }

    let total = u64::try_from(inputs.len()).unwrap_or(u64::MAX);
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} subjects  {per_sec}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut imported, mut skipped, mut updated) = (0u64, 0u64, 0u64);
    let mut not_updated: Vec<BadLine> = Vec::new();
    let access = crate::vault::cli_access();
    let batch = usize::try_from(args.batch).unwrap_or(2000);
    for (chunk, chunk_lines) in inputs.chunks(batch).zip(lines.chunks(batch)) {
        let prepared = match prepare_in_parallel(vault, chunk) {
            Ok(p) => p,
            Err(e) => {
                bar.abandon();
                output::stderr(&format!(
                    "error: {e}\nStopped after {imported} subjects; run the same command again to continue."
                ));
                return Outcome::Invalid;
            }
        };
        match vault
            .insert_prepared(&access, &args.purpose, &prepared)
            .await
        {
            Ok(()) => imported += prepared.len() as u64,
            Err(VaultError::Duplicate { .. }) => {
                // Some are already in the vault (an earlier run): write the rest one by one.
                for ((subject, input), line) in prepared.iter().zip(chunk).zip(chunk_lines) {
                    match vault
                        .insert_prepared(&access, &args.purpose, std::slice::from_ref(subject))
                        .await
                    {
                        Ok(()) => imported += 1,
                        Err(VaultError::Duplicate { .. }) if args.update => {
                            match update(ledger, &access, &args.purpose, input).await {
                                Ok(()) => updated += 1,
                                Err(Refused(reason)) => not_updated.push((*line, reason)),
                                Err(Failed(e)) => {
                                    bar.abandon();
                                    output::stderr(&format!(
                                        "error: {e}\nStopped after {imported} new and {updated} updated subjects; run the same command again to continue."
                                    ));
                                    return Outcome::Unreadable;
                                }
                            }
                        }
                        Err(VaultError::Duplicate { .. }) => skipped += 1,
                        Err(e) => {
                            bar.abandon();
                            output::stderr(&format!(
                                "error: {e}\nStopped after {imported} subjects; run the same command again to continue."
                            ));
                            return Outcome::Unreadable;
                        }
                    }
                }
            }
            Err(e) => {
                bar.abandon();
                output::stderr(&format!(
                    "error: {e}\nStopped after {imported} subjects; run the same command again to continue."
                ));
                return Outcome::Unreadable;
            }
        }
        bar.inc(chunk.len() as u64);
    }
    let seconds = bar.elapsed().as_secs_f64().max(0.001);
    bar.finish_and_clear();
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let existing = if args.update {
        format!("{updated} already in the vault, updated with this file's values")
    } else {
        format!("{skipped} already in the vault, skipped")
    };
    output::stderr(&format!(
        "imported {imported} subject{} ({existing}) for purpose `{}` in {seconds:.1} s ({:.0}/s)",
        plural(imported),
        args.purpose,
        (imported + skipped + updated) as f64 / seconds
    ));
    if skipped > 0 {
        output::stderr(&format!(
            "The file's values for the {skipped} {} already in the vault were not written: run the same command with --update to correct them (each correction is audited).",
            if skipped == 1 { "person" } else { "people" }
        ));
    }
    if !not_updated.is_empty() {
        for (line, reason) in not_updated.iter().take(MAX_LISTED) {
            output::stderr(&format!(
                "{}:{line}: not updated: {reason}",
                args.file.display()
            ));
        }
        output::stderr(&format!(
            "{} line{} not updated; the others were written.",
            not_updated.len(),
            plural(not_updated.len() as u64)
        ));
        return Outcome::Invalid;
    }
    Outcome::Ok
}

/// Why a person already in the vault was not updated.
enum UpdateError {
    /// This line cannot be written (named, without its values); the import goes on.
    Refused(String),
    /// The vault failed; the import stops.
    Failed(VaultError),
}
use UpdateError::{Failed, Refused};

/// Writes a line's values for the person already in the vault (`steward import --update`):
/// found by any of the line's identities (all of them must name the same person), each field
/// corrected for `purpose` and each identity they lack added or changed — every change a
/// `subject.rectify` in the audit trail, and a changed address told as
/// `steward subject correct` tells it. A line is checked whole before anything of it is
/// written: one that would change an immutable category writes nothing.
async fn update<S: Store>(
    ledger: &steward_core::ledger::Ledger<S>,
    access: &steward_core::Access,
    purpose: &str,
    input: &NewSubjectInput,
) -> Result<(), UpdateError> {
    let vault = ledger.vault();
    let mut found: Vec<(usize, Option<steward_core::SubjectId>)> = Vec::new();
    for (i, identity) in input.identities.iter().enumerate() {
        let id = vault.lookup(access, identity, None).await.map_err(Failed)?;
        found.push((i, id));
    }
    let mut ids: Vec<steward_core::SubjectId> = found.iter().filter_map(|(_, id)| *id).collect();
    ids.dedup();
    let id = match ids.as_slice() {
        [id] => *id,
        [] => {
            return Err(Refused(
                "its identity was erased or changed meanwhile".to_owned(),
            ));
        }
        _ => {
            return Err(Refused(
                "its identities belong to different people in the vault".to_owned(),
            ));
        }
    };
    // What the line changes: identities the person lacks or has otherwise, and every field.
    let mut changes: Vec<(&str, &str)> = input
        .identities
        .iter()
        .enumerate()
        .filter(|(i, _)| !found.iter().any(|(j, known)| j == i && *known == Some(id)))
        .map(|(_, identity)| (identity.kind().category(), identity.value()))
        .collect();
    changes.extend(input.fields.iter().map(|(c, v)| (c.as_str(), v.as_str())));
    let immutable = &vault.declaration().rights.immutable;
    if let Some((category, _)) = changes
        .iter()
        .find(|(category, _)| immutable.iter().any(|i| i == category))
    {
        return Err(Refused(format!(
            "`{category}` can never be changed (the declaration lists it in [rights] immutable): leave its column empty for people already in the vault; nothing of the line was written"
        )));
    }
    for (category, value) in changes {
        match ledger
            .rectify(access, id, category, value, purpose, &FieldSource::Import)
            .await
        {
            Ok(()) => {}
            Err(steward_core::ledger::ConsentError::Vault(
                e @ (VaultError::Immutable(_)
                | VaultError::Denied(_)
                | VaultError::Duplicate { .. }
                | VaultError::NotCollected { .. }),
            )) => {
                return Err(Refused(format!(
                    "{e} (the line's earlier columns were written)"
                )));
            }
            Err(steward_core::ledger::ConsentError::Vault(e)) => return Err(Failed(e)),
            Err(e) => return Err(Refused(e.to_string())),
        }
    }
    Ok(())
}
