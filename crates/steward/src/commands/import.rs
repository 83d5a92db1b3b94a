//! `steward import`: people from CSV or JSON Lines into the vault.
//!
//! The whole file is checked before anything is written; bad lines are listed by number with
//! what is wrong (never their values). Subjects are then written in transactional batches;
//! lines whose identity is already in the vault are skipped, so an interrupted import is
//! finished by running it again.

use std::collections::HashMap;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use steward_core::vault::MAX_VALUE_BYTES;
use steward_core::{
    FieldSource, Identity, IdentityKind, NewSubjectInput, Store, Vault, VaultError,
};
use steward_policy::taxonomy::{Kind, Lookup};

use crate::cli::{Global, ImportArgs, ImportFormat};
use crate::vault::with_vault;
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
    runtime.block_on(async {
        with_vault!(global, declaration, |vault| import(&vault, args, rows)
            .await)
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
                            } => format!("has {len} values where the header has {expected_len}"),
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
                let hint = match vault.declaration().taxonomy.lookup(Kind::Category, name) {
                    Lookup::Unknown { suggestion: Some(s) } => format!("did you mean `{s}`?"),
                    _ => "name columns email, phone, username, or a data category such as user.name (`steward taxonomy` lists them)".to_owned(),
                };
                format!("column `{name}` is neither an identity kind nor a data category; {hint}")
            }
            other => format!("column `{name}`: {other}"),
        })
        .map(|()| column)
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
    vault: &Vault<S>,
    args: &ImportArgs,
    rows: Vec<Result<Row, (u64, String)>>,
) -> Outcome {
    let mut columns: HashMap<String, Column> = HashMap::new();
    let mut bad: Vec<BadLine> = Vec::new();
    let mut inputs: Vec<NewSubjectInput> = Vec::with_capacity(rows.len());
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
            let column = match columns.get(name) {
                Some(c) => c.clone(),
                None => match column(vault, &args.purpose, name) {
                    Ok(c) => {
                        columns.insert(name.clone(), c.clone());
                        c
                    }
                    Err(e) => {
                        output::stderr(&format!("error: {e}\nNothing was written."));
                        return Outcome::Invalid;
                    }
                },
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
            None => inputs.push(input),
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
    let (mut imported, mut skipped) = (0u64, 0u64);
    let access = crate::vault::cli_access();
    for chunk in inputs.chunks(usize::try_from(args.batch).unwrap_or(2000)) {
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
                for subject in &prepared {
                    match vault
                        .insert_prepared(&access, &args.purpose, std::slice::from_ref(subject))
                        .await
                    {
                        Ok(()) => imported += 1,
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
    output::stderr(&format!(
        "imported {imported} subject{} ({skipped} already in the vault, skipped) for purpose `{}` in {seconds:.1} s ({:.0}/s)",
        if imported == 1 { "" } else { "s" },
        args.purpose,
        (imported + skipped) as f64 / seconds
    ));
    Outcome::Ok
}
