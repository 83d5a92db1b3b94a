//! `steward import`: people from CSV or JSON Lines into the vault.
//!
//! The file is read twice and never held in memory. The first pass checks every line; bad
//! lines are listed by number with what is wrong (never their values), and nothing is written
//! unless all are good. The second pass writes subjects in transactional batches, sealing the
//! next batch while the last one is written. People whose identity is already in the vault
//! are found by one query per batch and skipped (or, with `--update`, their values written as
//! audited corrections), so an interrupted import is finished by running it again, at the
//! speed of a read.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use steward_core::store::SubjectRecord;
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

/// The longest line read (a CSV record's line, or a JSON line): a value is at most
/// [`MAX_VALUE_BYTES`], and a line holds a few of them. A longer one is not a list of people.
const MAX_LINE_BYTES: usize = 1 << 20;

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
    if let Err(e) = Rows::open(&args.file, format) {
        output::stderr(&format!("error: {e}"));
        return Outcome::Unreadable;
    }
    // Through the consent ledger: it refuses a declaration whose terms changed under a
    // version already served (data would be collected under terms nobody was shown), and an
    // update's change of address is told as any correction's is.
    runtime.block_on(async {
        with_vault!(global, declaration.clone(), |vault| {
            match open_ledger(vault, &declaration, global, "http://127.0.0.1:8080").await {
                Ok(ledger) => import(&ledger, args, format).await,
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

/// The reader under a file's parser: counts lines, and fails a line longer than
/// [`MAX_LINE_BYTES`] (with [`TooLong`]) rather than let one line fill the memory.
struct Bounded<R> {
    inner: R,
    /// Bytes since the last newline.
    run: usize,
    /// Newlines seen.
    newlines: u64,
    /// Bytes read, for the progress bar.
    read: Arc<std::sync::atomic::AtomicU64>,
}

/// A line was longer than [`MAX_LINE_BYTES`]; its number.
#[derive(Debug)]
struct TooLong(u64);

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {} is longer than 1 MiB", self.0)
    }
}

impl std::error::Error for TooLong {}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let got = &buf[..n];
        match got.iter().rposition(|&b| b == b'\n') {
            Some(last) => {
                self.newlines += got.iter().filter(|&&b| b == b'\n').count() as u64;
                self.run = n - last - 1;
            }
            None => self.run += n,
        }
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        if self.run > MAX_LINE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                TooLong(self.newlines + 1),
            ));
        }
        Ok(n)
    }
}

/// The lines of an import file, one at a time: a good line's values, a bad line's number and
/// what is wrong, or (outer error) the file cannot be read on, said whole.
enum Rows {
    Csv {
        reader: csv::Reader<Bounded<File>>,
        headers: Vec<String>,
        shown: String,
    },
    Jsonl {
        reader: BufReader<Bounded<File>>,
        line: u64,
        buffer: Vec<u8>,
        shown: String,
    },
}

/// Why an import file cannot be read on, said with where and what to do.
fn unreadable(shown: &str, e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<TooLong>())
    {
        Some(TooLong(line)) => format!(
            "{shown}:{line}: the line is longer than 1 MiB (a value is at most {} KiB): is this a file of people, one per line? Nothing was written.",
            MAX_VALUE_BYTES / 1024
        ),
        None => format!("cannot read {shown}: {e}"),
    }
}

impl Rows {
    fn open(path: &Path, format: ImportFormat) -> Result<Self, String> {
        Self::open_counting(path, format, Arc::default())
    }

    fn open_counting(
        path: &Path,
        format: ImportFormat,
        read: Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<Self, String> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        let bounded = Bounded {
            inner: file,
            run: 0,
            newlines: 0,
            read,
        };
        match format {
            ImportFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(true)
                    .flexible(false)
                    .from_reader(bounded);
                let headers = match reader.headers() {
                    Ok(h) => h.iter().map(|h| h.trim().to_owned()).collect(),
                    Err(e) => {
                        let shown_error = e.to_string();
                        return Err(match e.into_kind() {
                            csv::ErrorKind::Io(io) => unreadable(&shown, &io),
                            _ => format!("{shown}: the header row cannot be read: {shown_error}"),
                        });
                    }
                };
                Ok(Self::Csv {
                    reader,
                    headers,
                    shown,
                })
            }
            ImportFormat::Jsonl => Ok(Self::Jsonl {
                reader: BufReader::with_capacity(64 * 1024, bounded),
                line: 0,
                buffer: Vec::new(),
                shown,
            }),
        }
    }
}

impl Iterator for Rows {
    type Item = Result<Result<Row, BadLine>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Csv {
                reader,
                headers,
                shown,
            } => {
                let mut record = csv::StringRecord::new();
                match reader.read_record(&mut record) {
                    Ok(false) => None,
                    Ok(true) => Some(Ok(Ok(Row {
                        line: record.position().map_or(0, csv::Position::line),
                        values: headers
                            .iter()
                            .cloned()
                            .zip(record.iter().map(|v| v.trim().to_owned()))
                            .collect(),
                    }))),
                    Err(e) => {
                        let line = e.position().map_or(0, csv::Position::line);
                        let reason = match e.into_kind() {
                            csv::ErrorKind::Io(io) => return Some(Err(unreadable(shown, &io))),
                            csv::ErrorKind::UnequalLengths {
                                expected_len, len, ..
                            } => format!(
                                "has {len} value{} where the header has {expected_len}",
                                if len == 1 { "" } else { "s" }
                            ),
                            csv::ErrorKind::Utf8 { .. } => "is not UTF-8 text".to_owned(),
                            _ => "cannot be read as CSV".to_owned(),
                        };
                        Some(Ok(Err((line, reason))))
                    }
                }
            }
            Self::Jsonl {
                reader,
                line,
                buffer,
                shown,
            } => loop {
                buffer.clear();
                match reader.read_until(b'\n', buffer) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) => return Some(Err(unreadable(shown, &e))),
                }
                *line += 1;
                let Ok(text) = std::str::from_utf8(buffer) else {
                    return Some(Ok(Err((*line, "is not UTF-8 text".to_owned()))));
                };
                if text.trim().is_empty() {
                    continue;
                }
                return Some(Ok(json_row(*line, text)));
            },
        }
    }
}

/// One JSON line's values: text, numbers and booleans as text, `null` as absent.
fn json_row(line: u64, text: &str) -> Result<Row, BadLine> {
    let Ok(object) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
    else {
        return Err((line, "is not a JSON object".to_owned()));
    };
    let mut values = Vec::new();
    for (key, value) in object {
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => continue,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                return Err((
                    line,
                    format!("the value of `{key}` is a list or object; give text"),
                ));
            }
        };
        values.push((key, text.trim().to_owned()));
    }
    Ok(Row { line, values })
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

/// What the first pass found.
struct Checked {
    columns: HashMap<String, Column>,
    /// The first bad lines (at most [`MAX_LISTED`] of them, by line number) and how many.
    bad: Vec<BadLine>,
    bad_count: u64,
    /// Good lines, to be written.
    good: u64,
}

/// An identity of the file, as the duplicate check keeps it: its kind, a 128-bit keyed hash
/// of its value (two SipHash keys chosen for this run; values are never kept), its line.
type Seen = (u8, u64, u64, u64);

fn kind_code(kind: &IdentityKind) -> u8 {
    match kind {
        IdentityKind::Email => 0,
        IdentityKind::Phone => 1,
        IdentityKind::Username => 2,
        // Never a column of an import (see `column`); kept apart all the same.
        IdentityKind::Custom(_) => 3,
    }
}

const KIND_NAMES: [&str; 4] = ["email", "phone", "username", "identity"];

/// A good line's subject, or what is wrong with it.
fn input_of(
    row: &Row,
    columns: &HashMap<String, Column>,
    purpose: &str,
) -> Result<NewSubjectInput, String> {
    let mut input = NewSubjectInput {
        identities: Vec::new(),
        fields: Vec::new(),
        purpose: purpose.to_owned(),
        source: FieldSource::Import,
    };
    let mut problem = None;
    for (name, value) in &row.values {
        if value.is_empty() {
            continue;
        }
        match columns.get(name) {
            None => {}
            Some(Column::Identity(kind)) => match Identity::parse(kind.clone(), value) {
                Ok(identity) => input.identities.push(identity),
                Err(e) => problem = Some(e.to_string()),
            },
            Some(Column::Field(category)) => {
                if value.len() > MAX_VALUE_BYTES {
                    problem = Some(format!(
                        "the value of `{category}` is {} bytes; at most {MAX_VALUE_BYTES}",
                        value.len()
                    ));
                }
                input.fields.push((category.clone(), value.clone()));
            }
        }
    }
    if problem.is_none() && input.identities.is_empty() {
        problem = Some("gives no identity (email, phone or username)".to_owned());
    }
    match problem {
        Some(p) => Err(p),
        None => Ok(input),
    }
}

/// The first pass: every line checked, every column named, no identity twice — in memory
/// bounded by the number of identities (32 bytes each), never by the file.
fn check<S: Store>(
    vault: &Vault<S>,
    args: &ImportArgs,
    format: ImportFormat,
) -> Result<Result<Checked, Vec<String>>, String> {
    let size = std::fs::metadata(&args.file).map_or(0, |m| m.len());
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template("checking {bar:40} {bytes}/{total_bytes}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut columns: HashMap<String, Column> = HashMap::new();
    let mut column_problems: Vec<String> = Vec::new();
    let mut bad: Vec<BadLine> = Vec::new();
    let mut bad_count = 0u64;
    let mut good = 0u64;
    let (h1, h2) = (RandomState::new(), RandomState::new());
    let mut seen: Vec<Seen> = Vec::new();
    let mut note = |bad: &mut Vec<BadLine>, line: BadLine| {
        bad_count += 1;
        if bad.len() < MAX_LISTED {
            bad.push(line);
        }
    };
    for (n, row) in Rows::open_counting(&args.file, format, Arc::clone(&read))?.enumerate() {
        if n % 4096 == 0 {
            bar.set_position(read.load(std::sync::atomic::Ordering::Relaxed));
        }
        let row = match row? {
            Ok(r) => r,
            Err(b) => {
                note(&mut bad, b);
                continue;
            }
        };
        for (name, value) in &row.values {
            if value.is_empty() || columns.contains_key(name) {
                continue;
            }
            match column(vault, &args.purpose, name) {
                Ok(c) => {
                    columns.insert(name.clone(), c);
                }
                Err(e) if !column_problems.contains(&e) => column_problems.push(e),
                Err(_) => {}
            }
        }
        match input_of(&row, &columns, &args.purpose) {
            Ok(input) => {
                good += 1;
                for identity in &input.identities {
                    let value = identity.value();
                    seen.push((
                        kind_code(identity.kind()),
                        h1.hash_one(value),
                        h2.hash_one(value),
                        row.line,
                    ));
                }
            }
            Err(problem) => note(&mut bad, (row.line, problem)),
        }
    }
    bar.finish_and_clear();
    if !column_problems.is_empty() {
        return Ok(Err(column_problems));
    }
    // The same identity on two lines: every line after the first is bad.
    seen.sort_unstable();
    let mut duplicates: Vec<BadLine> = Vec::new();
    let mut first = seen.first().copied();
    for s in seen.iter().skip(1) {
        match first {
            Some(f) if (f.0, f.1, f.2) == (s.0, s.1, s.2) => {
                if s.3 != f.3 {
                    duplicates.push((
                        s.3,
                        format!(
                            "has the same {} as line {}",
                            KIND_NAMES[usize::from(s.0)],
                            f.3
                        ),
                    ));
                }
            }
            _ => first = Some(*s),
        }
    }
    if !duplicates.is_empty() {
        duplicates.sort_by_key(|(line, _)| *line);
        duplicates.dedup_by_key(|(line, _)| *line);
        good = good.saturating_sub(duplicates.len() as u64);
        bad_count += duplicates.len() as u64;
        bad.extend(duplicates);
        bad.sort_by_key(|(line, _)| *line);
        bad.truncate(MAX_LISTED);
    }
    Ok(Ok(Checked {
        columns,
        bad,
        bad_count,
        good,
    }))
}

/// Seals a chunk on every core: sealing is pure CPU, the database waits for it.
fn prepare_in_parallel<S: Store>(
    vault: &Vault<S>,
    chunk: &[NewSubjectInput],
) -> Result<Vec<SubjectRecord>, VaultError> {
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

/// A batch the sealing thread hands the writer: each line's number, what it gives, and its
/// sealed subject.
struct Batch {
    lines: Vec<u64>,
    inputs: Vec<NewSubjectInput>,
    prepared: Vec<SubjectRecord>,
}

/// The second pass's reader: reads the file again and seals each batch on every core while
/// the writer writes the one before (at most two batches ahead). A line that is no longer
/// what the first pass checked stops the import.
fn seal_batches<S: Store + 'static>(
    vault: Arc<Vault<S>>,
    args: &ImportArgs,
    format: ImportFormat,
    columns: HashMap<String, Column>,
    tx: tokio::sync::mpsc::Sender<Result<Batch, String>>,
) {
    let (path, purpose) = (args.file.clone(), args.purpose.clone());
    let batch = usize::try_from(args.batch).unwrap_or(2000);
    std::thread::spawn(move || {
        let send = |b: Result<Batch, String>| tx.blocking_send(b).is_ok();
        let rows = match Rows::open(&path, format) {
            Ok(r) => r,
            Err(e) => {
                send(Err(e));
                return;
            }
        };
        let changed = || {
            format!(
                "{} changed while it was imported; run the same command again to check it and continue",
                path.display()
            )
        };
        let mut lines = Vec::with_capacity(batch);
        let mut inputs = Vec::with_capacity(batch);
        let flush = |lines: &mut Vec<u64>, inputs: &mut Vec<NewSubjectInput>| {
            let prepared = match prepare_in_parallel(&vault, inputs) {
                Ok(p) => p,
                Err(e) => return send(Err(e.to_string())),
            };
            send(Ok(Batch {
                lines: std::mem::take(lines),
                inputs: std::mem::take(inputs),
                prepared,
            }))
        };
        for row in rows {
            let input = match row {
                Ok(Ok(row)) => match input_of(&row, &columns, &purpose) {
                    Ok(input) => {
                        lines.push(row.line);
                        input
                    }
                    Err(_) => {
                        send(Err(changed()));
                        return;
                    }
                },
                Ok(Err(_)) => {
                    send(Err(changed()));
                    return;
                }
                Err(e) => {
                    send(Err(e));
                    return;
                }
            };
            inputs.push(input);
            if inputs.len() == batch && !flush(&mut lines, &mut inputs) {
                return;
            }
        }
        if !inputs.is_empty() {
            flush(&mut lines, &mut inputs);
        }
    });
}

async fn import<S: Store + 'static>(
    ledger: &steward_core::ledger::Ledger<S>,
    args: &ImportArgs,
    format: ImportFormat,
) -> Outcome {
    let vault = ledger.vault();
    let checked = match check(vault, args, format) {
        Ok(Ok(c)) => c,
        Ok(Err(problems)) => {
            for problem in &problems {
                output::stderr(&format!("error: {problem}"));
            }
            output::stderr("Nothing was written.");
            return Outcome::Invalid;
        }
        Err(e) => {
            output::stderr(&format!("error: {e}"));
            return Outcome::Unreadable;
        }
    };
    if checked.bad_count > 0 {
        for (line, reason) in &checked.bad {
            output::stderr(&format!("{}:{line}: {reason}", args.file.display()));
        }
        let listed = checked.bad.len() as u64;
        if checked.bad_count > listed {
            output::stderr(&format!("… and {} more", checked.bad_count - listed));
        }
        output::stderr(&format!(
            "{} bad line{}; nothing was written. Fix them and run the import again.",
            checked.bad_count,
            if checked.bad_count == 1 { "" } else { "s" }
        ));
        return Outcome::Invalid;
    }

    let bar = ProgressBar::new(checked.good);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} subjects  {per_sec}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    seal_batches(Arc::clone(vault), args, format, checked.columns, tx);
    let (mut imported, mut skipped, mut updated) = (0u64, 0u64, 0u64);
    let mut not_updated: Vec<BadLine> = Vec::new();
    let access = crate::vault::cli_access();
    let stopped = |bar: &ProgressBar, e: &dyn std::fmt::Display, imported: u64, updated: u64| {
        bar.abandon();
        output::stderr(&format!(
            "error: {e}\nStopped after {imported} new and {updated} updated subjects; run the same command again to continue."
        ));
    };
    while let Some(batch) = rx.recv().await {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                stopped(&bar, &e, imported, updated);
                return Outcome::Unreadable;
            }
        };
        let known = match vault.already_known(&batch.prepared).await {
            Ok(k) => k,
            Err(e) => {
                stopped(&bar, &e, imported, updated);
                return Outcome::Unreadable;
            }
        };
        let mut fresh = Vec::with_capacity(batch.prepared.len());
        let mut existing = Vec::new();
        for (((subject, input), line), known) in batch
            .prepared
            .into_iter()
            .zip(&batch.inputs)
            .zip(&batch.lines)
            .zip(known)
        {
            if known {
                existing.push((input, *line));
            } else {
                fresh.push((subject, input, *line));
            }
        }
        let subjects: Vec<SubjectRecord> = fresh.iter().map(|(s, _, _)| s.clone()).collect();
        match write(vault, &access, &args.purpose, &subjects).await {
            Ok(()) => imported += subjects.len() as u64,
            Err(VaultError::Duplicate { .. }) => {
                // Someone was added meanwhile (a server writing beside the import): one by one.
                for (subject, input, line) in &fresh {
                    match write(vault, &access, &args.purpose, std::slice::from_ref(subject)).await
                    {
                        Ok(()) => imported += 1,
                        Err(VaultError::Duplicate { .. }) => existing.push((input, *line)),
                        Err(e) => {
                            stopped(&bar, &e, imported, updated);
                            return Outcome::Unreadable;
                        }
                    }
                }
            }
            Err(e) => {
                stopped(&bar, &e, imported, updated);
                return Outcome::Unreadable;
            }
        }
        for (input, line) in existing {
            if !args.update {
                skipped += 1;
                continue;
            }
            match update(ledger, &access, &args.purpose, input).await {
                Ok(()) => updated += 1,
                Err(Refused(reason)) => not_updated.push((line, reason)),
                Err(Failed(e)) => {
                    stopped(&bar, &e, imported, updated);
                    return Outcome::Unreadable;
                }
            }
        }
        bar.inc(batch.lines.len() as u64);
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

/// Writes a batch's new subjects with one audit entry (none when there are none).
async fn write<S: Store>(
    vault: &Vault<S>,
    access: &steward_core::Access,
    purpose: &str,
    subjects: &[SubjectRecord],
) -> Result<(), VaultError> {
    if subjects.is_empty() {
        return Ok(());
    }
    vault.insert_prepared(access, purpose, subjects).await
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
