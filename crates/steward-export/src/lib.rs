//! Access packages (GDPR Art. 15 and 20): everything held on one person, in a ZIP written as a
//! stream (no seeking, so it can go straight to an HTTP response or a file):
//!
//! - `index.html`: a readable, self-contained page (no scripts, no outside resources) with the
//!   Art. 15 information — purposes, categories, recipients, retention, sources, rights, the
//!   authority to complain to — and every group of data;
//! - `data.json`: the same, for machines;
//! - `csv/<group>.csv`: one CSV file per group;
//! - `data.xlsx`: a workbook with a sheet per group.
//!
//! Groups come from the vault (identities, fields with provenance, held fields), the consent
//! ledger, the person's requests, the access log — and from any [`steward_core::requests::DataSource`]
//! (the connectors to the operator's own databases).
//!
//! Depends on `steward-core` (the data) and `steward-policy` (the declaration).

use std::io::Write;

use steward_core::requests::{AccessData, Group, kind_words};
use steward_policy::Declaration;
use steward_policy::declaration::{ExportFormat, Right};
use steward_policy::notice::{category_list, escape as esc};
use time::OffsetDateTime;
use zip::write::SimpleFileOptions;

/// Why a package could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Writing the ZIP failed (the reader went away, the disk is full).
    #[error("writing the package failed: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// Writing a file inside it failed.
    #[error("writing the package failed: {0}")]
    Io(#[from] std::io::Error),
    /// The workbook could not be made.
    #[error("making the spreadsheet failed: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    /// A CSV file could not be made.
    #[error("making a CSV file failed: {0}")]
    Csv(#[from] csv::Error),
}

/// A moment for machines: RFC 3339 (`data.json`, and the machine columns of CSV and XLSX).
fn time_text(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A moment as a person reads it: "30 November 2026, 13:44 UTC".
fn time_words(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[day padding:none] [month repr:long] [year], [hour]:[minute] UTC"
        ))
        .unwrap_or_default()
}

/// The declared name of a purpose; its id when the declaration no longer lists it.
fn purpose_name<'a>(d: &'a Declaration, id: &'a str) -> &'a str {
    d.purposes
        .iter()
        .find(|p| p.id == id)
        .map_or(id, |p| p.name.as_str())
}

/// "See your data": what a request or right is for, as the mails say it.
fn right_words(right: Right) -> String {
    let words = kind_words(right);
    let mut chars = words.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A cell of a built-in group. Machines (`data.json`, the last columns of CSV and XLSX) get
/// the value as stored; a person reads keys, codes and timestamps in words.
enum Cell {
    /// Read alike by both.
    Text(String),
    /// A moment.
    Time(OffsetDateTime),
    /// Taxonomy keys: the taxonomy's names for a person.
    Categories(Vec<String>),
    /// A purpose's id: its declared name for a person.
    Purpose(Option<String>),
    /// The right a request is for.
    Right(Right),
}

impl Cell {
    fn machine(&self) -> String {
        match self {
            Cell::Text(text) => text.clone(),
            Cell::Time(t) => time_text(*t),
            Cell::Categories(keys) => keys.join(" "),
            Cell::Purpose(id) => id.clone().unwrap_or_default(),
            Cell::Right(r) => r.as_str().to_owned(),
        }
    }

    fn words(&self, d: &Declaration) -> String {
        match self {
            Cell::Text(text) => text.clone(),
            Cell::Time(t) => time_words(*t),
            Cell::Categories(keys) => category_list(d, keys),
            Cell::Purpose(id) => id
                .as_deref()
                .map(|id| purpose_name(d, id).to_owned())
                .unwrap_or_default(),
            Cell::Right(r) => right_words(*r),
        }
    }
}

/// A column of a built-in group.
struct Column {
    /// Its name in `data.json`.
    name: &'static str,
    /// Its heading where a person reads it.
    heading: &'static str,
    /// Whether a person reads its cells in other words than machines do; CSV and XLSX then
    /// also keep the cells as stored, in a column after the readable ones, under `name`.
    reworded: bool,
}

/// A column read alike by machines and people.
const fn same(name: &'static str, heading: &'static str) -> Column {
    Column {
        name,
        heading,
        reworded: false,
    }
}

/// A column a person reads in words (names for keys, dates for timestamps).
const fn worded(name: &'static str, heading: &'static str) -> Column {
    Column {
        name,
        heading,
        reworded: true,
    }
}

/// A group the package makes itself, from the vault, the ledger and the requests.
struct Table {
    name: &'static str,
    title: &'static str,
    source: &'static str,
    columns: &'static [Column],
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// The group as `data.json` holds it: keys, codes and RFC 3339 timestamps.
    fn for_machines(&self) -> Group {
        Group {
            name: self.name.to_owned(),
            title: self.title.to_owned(),
            source: self.source.to_owned(),
            columns: self.columns.iter().map(|c| c.name.to_owned()).collect(),
            rows: self
                .rows
                .iter()
                .map(|row| row.iter().map(Cell::machine).collect())
                .collect(),
        }
    }

    /// The group as a person reads it, with the stored form of every reworded column after the
    /// readable ones (so CSV and XLSX lose nothing).
    fn for_people(&self, d: &Declaration) -> Shown {
        let reworded = || self.columns.iter().enumerate().filter(|(_, c)| c.reworded);
        let mut columns: Vec<String> = self.columns.iter().map(|c| c.heading.to_owned()).collect();
        columns.extend(reworded().map(|(_, c)| c.name.to_owned()));
        let rows = self
            .rows
            .iter()
            .map(|row| {
                let mut cells: Vec<String> = row.iter().map(|c| c.words(d)).collect();
                cells.extend(reworded().filter_map(|(i, _)| row.get(i).map(Cell::machine)));
                cells
            })
            .collect();
        Shown {
            group: Group {
                name: self.name.to_owned(),
                title: self.title.to_owned(),
                source: self.source.to_owned(),
                columns,
                rows,
            },
            read: self.columns.len(),
        }
    }
}

/// A group as the page, CSV and XLSX show it: its first `read` columns are for a person (the
/// page shows only those), the rest keep keys, codes and timestamps as stored.
struct Shown {
    group: Group,
    read: usize,
}

/// Why a field is held, in words: the purpose it was collected for with its lawful basis, the
/// purposes declared compatible with it that may also use it (GDPR Art. 6(4)), and for held
/// data the legal hold's reason (Art. 15(1)(a) and (d)).
fn why(d: &Declaration, collected_for: &str, category: &str, held: bool) -> String {
    let Some(p) = d.purposes.iter().find(|p| p.id == collected_for) else {
        return format!("collected for `{collected_for}`, which our notice no longer lists");
    };
    let mut text = format!("{} ({})", p.name, p.basis.as_str());
    let also: Vec<&str> = d
        .purposes
        .iter()
        .filter(|o| {
            o.id != p.id
                && o.may_use_collected_for(&p.id)
                && o.categories
                    .iter()
                    .any(|c| steward_policy::taxonomy::covers(c, category))
        })
        .map(|o| o.name.as_str())
        .collect();
    if !also.is_empty() {
        text.push_str(&format!("; also used for: {}", also.join(", ")));
    }
    if held && let Some(hold) = &p.legal_hold {
        text.push_str(&format!("; kept after your erasure: {}", hold.reason));
    }
    text
}

fn field_rows(
    d: &Declaration,
    fields: &[steward_core::vault::FieldView],
    held: bool,
) -> Vec<Vec<Cell>> {
    fields
        .iter()
        .map(|f| {
            vec![
                Cell::Categories(vec![f.category.clone()]),
                Cell::Text(f.value.clone()),
                Cell::Purpose(Some(f.purpose.clone())),
                Cell::Text(why(d, &f.purpose, &f.category, held)),
                Cell::Text(f.source.clone()),
                Cell::Time(f.collected_at),
            ]
        })
        .collect()
}

const FIELD_COLUMNS: &[Column] = &[
    worded("category", "Data"),
    same("value", "Value"),
    worded("purpose", "Purpose"),
    same("why", "Why we hold it"),
    same("source", "Source"),
    worded("collected_at", "Collected"),
];

const IDENTITY_COLUMNS: &[Column] = &[same("kind", "Kind"), same("value", "Value")];

const CONSENT_COLUMNS: &[Column] = &[
    same("seq", "No."),
    worded("at", "When"),
    same("action", "Action"),
    worded("purpose", "Purpose"),
    same("method", "How"),
    same("policy_version", "Notice version"),
];

const REQUEST_COLUMNS: &[Column] = &[
    same("id", "Reference"),
    worded("kind", "Request"),
    same("status", "Status"),
    worded("received_at", "Received"),
    worded("due_at", "Answer due"),
];

const LOG_COLUMNS: &[Column] = &[
    worded("at", "When"),
    same("role", "Who"),
    same("action", "Action"),
    worded("purpose", "Purpose"),
    worded("categories", "Data"),
    same("outcome", "Outcome"),
];

/// The built-in groups of a package, in the order they are shown.
fn tables(d: &Declaration, data: &AccessData) -> Vec<Table> {
    let mut out = vec![
        Table {
            name: "identities",
            title: "How we recognise you",
            source: "vault",
            columns: IDENTITY_COLUMNS,
            rows: data
                .identities
                .iter()
                .map(|(k, v)| vec![Cell::Text(k.clone()), Cell::Text(v.clone())])
                .collect(),
        },
        Table {
            name: "fields",
            title: "Your data",
            source: "vault",
            columns: FIELD_COLUMNS,
            rows: field_rows(d, &data.fields, false),
        },
        Table {
            name: "held",
            title: "Data kept because the law requires it",
            source: "vault (legal hold)",
            columns: FIELD_COLUMNS,
            rows: field_rows(d, &data.held, true),
        },
    ];
    if let Some(history) = &data.consent {
        out.push(Table {
            name: "consent",
            title: "Your consent choices and objections",
            source: "consent ledger",
            columns: CONSENT_COLUMNS,
            rows: history
                .events
                .iter()
                .map(|e| {
                    vec![
                        Cell::Text(e.seq.to_string()),
                        Cell::Time(e.at),
                        Cell::Text(e.action.as_str().to_owned()),
                        Cell::Purpose(e.purpose.clone()),
                        Cell::Text(e.method.as_str().to_owned()),
                        Cell::Text(e.policy.clone()),
                    ]
                })
                .collect(),
        });
    }
    out.push(Table {
        name: "requests",
        title: "Your requests",
        source: "requests",
        columns: REQUEST_COLUMNS,
        rows: data
            .requests
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.id.to_string()),
                    Cell::Right(r.kind),
                    Cell::Text(r.status.as_str().to_owned()),
                    Cell::Time(r.received_at),
                    Cell::Time(r.due_at),
                ]
            })
            .collect(),
    });
    out.push(Table {
        name: "access-log",
        title: "Who used your data, and why",
        source: "audit trail",
        columns: LOG_COLUMNS,
        rows: data
            .trail
            .iter()
            .map(|t| {
                vec![
                    Cell::Time(t.at),
                    Cell::Text(t.role.clone()),
                    Cell::Text(t.action.clone()),
                    Cell::Purpose(t.purpose.clone()),
                    Cell::Categories(t.categories.clone()),
                    Cell::Text(
                        serde_json::to_value(t.outcome)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                    ),
                ]
            })
            .collect(),
    });
    out
}

/// The groups of a package as `data.json` holds them (keys, codes and RFC 3339 timestamps),
/// in the order they are shown.
pub fn groups(d: &Declaration, data: &AccessData) -> Vec<Group> {
    let mut out: Vec<Group> = tables(d, data).iter().map(Table::for_machines).collect();
    out.extend(data.groups.iter().cloned());
    out
}

/// The groups as the page, CSV and XLSX show them; the operator's own groups as they come.
fn shown_groups(d: &Declaration, data: &AccessData) -> Vec<Shown> {
    let mut out: Vec<Shown> = tables(d, data).iter().map(|t| t.for_people(d)).collect();
    out.extend(data.groups.iter().map(|g| Shown {
        group: g.clone(),
        read: g.columns.len(),
    }));
    out
}

/// A file name from a group name: letters, digits, `-` and `_` only.
fn file_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    if clean.is_empty() {
        "group".to_owned()
    } else {
        clean
    }
}

/// Writes the package for `data` under `declaration` to `out` as a ZIP stream; returns `out`.
/// The HTML page and JSON are always included (they carry the Art. 15 information); CSV and
/// XLSX follow `rights.export_formats` (both when none is declared).
pub fn write_package<W: Write + Send>(
    out: W,
    declaration: &Declaration,
    data: &AccessData,
) -> Result<W, ExportError> {
    let shown = shown_groups(declaration, data);
    let formats = &declaration.rights.export_formats;
    let wants = |f: ExportFormat| formats.is_empty() || formats.contains(&f);
    let mut zip = zip::ZipWriter::new_stream(out);
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);

    zip.start_file("index.html", options)?;
    zip.write_all(html(declaration, data, &shown).as_bytes())?;

    zip.start_file("data.json", options)?;
    let json = serde_json::json!({
        "controller": declaration.controller.name,
        "generated_at": time_text(data.generated_at),
        "request": data.request,
        "subject": data.subject,
        "information": information(declaration),
        "groups": groups(declaration, data),
        "consent": data.consent,
    });
    serde_json::to_writer_pretty(&mut zip, &json).map_err(std::io::Error::other)?;

    if wants(ExportFormat::Csv) {
        for Shown { group: g, .. } in &shown {
            zip.start_file(format!("csv/{}.csv", file_name(&g.name)), options)?;
            let mut w = steward_policy::spreadsheet::CsvWriter::new(&mut zip);
            w.row(&g.columns)?;
            for row in &g.rows {
                w.row(row)?;
            }
            w.flush()?;
        }
    }
    if wants(ExportFormat::Xlsx) {
        zip.start_file("data.xlsx", options)?;
        let mut book = rust_xlsxwriter::Workbook::new();
        let bold = rust_xlsxwriter::Format::new().set_bold();
        let mut taken: Vec<String> = Vec::new();
        for Shown { group: g, .. } in &shown {
            let sheet = book.add_worksheet();
            // A sheet's name has at most 31 characters and is unique in its workbook: names
            // that the cut makes equal get a number.
            let mut name: String = file_name(&g.name).chars().take(31).collect();
            if name.is_empty() {
                name = "group".to_owned();
            }
            let mut n = 1;
            while taken.iter().any(|t| t.eq_ignore_ascii_case(&name)) {
                n += 1;
                let suffix = format!("~{n}");
                let stem: String = file_name(&g.name).chars().take(31 - suffix.len()).collect();
                name = format!("{stem}{suffix}");
            }
            taken.push(name.clone());
            sheet.set_name(&name)?;
            for (c, column) in g.columns.iter().enumerate() {
                let c = u16::try_from(c).unwrap_or(u16::MAX);
                sheet.write_string_with_format(0, c, column, &bold)?;
            }
            for (r, row) in g.rows.iter().enumerate() {
                let r = u32::try_from(r + 1).unwrap_or(u32::MAX);
                for (c, cell) in row.iter().enumerate() {
                    let c = u16::try_from(c).unwrap_or(u16::MAX);
                    sheet.write_string(r, c, cell)?;
                }
            }
        }
        book.save_to_writer(&mut zip)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// The Art. 15 information, for `data.json`.
fn information(d: &Declaration) -> serde_json::Value {
    serde_json::json!({
        "controller": {
            "name": d.controller.name,
            "address": d.controller.address,
            "email": d.controller.email,
            "dpo": d.controller.dpo.as_ref().map(|c| &c.name),
        },
        "purposes": d.purposes.iter().filter(|p| p.stored).map(|p| serde_json::json!({
            "id": p.id,
            "name": p.name,
            "description": p.description,
            "basis": p.basis.as_str(),
            "categories": p.categories,
            "compatible_with": p.compatible_with,
            "recipients": p.recipients,
            "retention": p.retention.as_ref().map(ToString::to_string),
            "source": source_text(d, p),
        })).collect::<Vec<_>>(),
        "recipients": d.processors.iter().map(|r| serde_json::json!({
            "id": r.id, "name": r.name, "service": r.service, "country": r.country, "categories": r.categories,
        })).collect::<Vec<_>>(),
        "rights": d.rights.available.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "contact": d.rights.contact,
        "authority": d.controller.authority.as_ref().map(|a| serde_json::json!({
            "name": a.name, "website": a.website, "email": a.email,
        })),
    })
}

fn source_text(d: &Declaration, p: &steward_policy::declaration::Purpose) -> String {
    use steward_policy::declaration::DataSource;
    match &p.source {
        DataSource::Provided => "you gave it to us".to_owned(),
        DataSource::Observed => "collected from your use of our service".to_owned(),
        DataSource::Derived => "inferred from other data".to_owned(),
        DataSource::ThirdParty(id) => {
            let name = d
                .processors
                .iter()
                .find(|r| &r.id == id)
                .map_or(id.as_str(), |r| r.name.as_str());
            format!("received from {name}")
        }
    }
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}h1{font-size:1.6rem}h2{margin-top:2.5rem;border-bottom:1px solid #ccc}table{border-collapse:collapse;width:100%;margin:1rem 0;font-size:.9rem}th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f3f3f3}.note{color:#555}";

fn html(d: &Declaration, data: &AccessData, groups: &[Shown]) -> String {
    let mut h = String::new();
    let c = &d.controller;
    h.push_str(&format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"><title>Your data held by {name}</title><style>{STYLE}</style></head><body>",
        name = esc(&c.name)
    ));
    h.push_str(&format!(
        "<h1>Your data held by {}</h1><p class=\"note\">Made on {}{}. This folder also holds the same data as <code>data.json</code>, CSV files and a spreadsheet (<code>data.xlsx</code>).</p>",
        esc(&c.name),
        esc(&time_words(data.generated_at)),
        data.request
            .map(|r| format!(" in answer to request {r}"))
            .unwrap_or_default()
    ));
    if data.subject.is_none() && data.groups.iter().all(|g| g.rows.is_empty()) {
        h.push_str("<p><strong>We hold no personal data linked to the e-mail address you gave.</strong> Below is what we would hold, and why.</p>");
    }
    h.push_str("<h2>Who we are</h2><table>");
    let mut row = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            h.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v)));
        }
    };
    row("Controller", Some(&c.name));
    row("Address", c.address.as_deref());
    row("Privacy contact", Some(&c.email));
    row(
        "Data protection officer",
        c.dpo.as_ref().and_then(|x| x.name.as_deref()),
    );
    h.push_str("</table>");

    h.push_str("<h2>Why we use your data</h2><table><tr><th>Purpose</th><th>Lawful basis</th><th>Categories</th><th>Recipients</th><th>Kept for</th><th>Source</th></tr>");
    for p in d.purposes.iter().filter(|p| p.stored) {
        let recipients: Vec<String> = p
            .recipients
            .iter()
            .map(|id| {
                d.processors
                    .iter()
                    .find(|r| &r.id == id)
                    .map_or_else(|| id.clone(), |r| r.name.clone())
            })
            .collect();
        h.push_str(&format!(
            "<tr><td><strong>{}</strong><br>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.name),
            esc(p.description.as_deref().unwrap_or_default()),
            esc(p.basis.as_str()),
            esc(&category_list(d, &p.categories)),
            esc(&if recipients.is_empty() { "none".to_owned() } else { recipients.join(", ") }),
            esc(&p.retention.as_ref().map_or_else(|| "as declared".to_owned(), ToString::to_string)),
            esc(&source_text(d, p)),
        ));
    }
    h.push_str("</table>");
    if !d.processors.is_empty() {
        h.push_str("<h2>Who receives it</h2><table><tr><th>Recipient</th><th>What for</th><th>Country</th><th>Categories</th></tr>");
        for r in &d.processors {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.name),
                esc(r.service.as_deref().unwrap_or_default()),
                esc(r.country.as_deref().unwrap_or_default()),
                esc(&category_list(d, &r.categories))
            ));
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Your rights</h2><p>You may ask us to:</p><ul>");
    // As in the notice: no opt-out of a sale or sharing that does not happen.
    for right in d
        .rights
        .available
        .iter()
        .filter(|r| **r != Right::OptOutSaleShare || d.sells_or_shares())
    {
        h.push_str(&format!("<li>{}</li>", esc(kind_words(*right))));
    }
    h.push_str(&format!("</ul><p>Write to {}.</p>", esc(&d.rights.contact)));
    if let Some(a) = &c.authority {
        h.push_str(&format!(
            "<p>You may complain to the supervisory authority: {}{}.</p>",
            esc(&a.name),
            a.website
                .as_deref()
                .map(|w| format!(" ({})", esc(w)))
                .unwrap_or_default()
        ));
    } else {
        h.push_str(
            "<p>You may complain to the data protection authority where you live or work.</p>",
        );
    }

    for Shown { group: g, read } in groups {
        h.push_str(&format!(
            "<h2>{}</h2><p class=\"note\">From: {} · {} {} · <code>csv/{}.csv</code></p>",
            esc(&g.title),
            esc(&g.source),
            g.rows.len(),
            if g.rows.len() == 1 { "row" } else { "rows" },
            esc(&file_name(&g.name))
        ));
        if g.rows.is_empty() {
            h.push_str("<p>Nothing.</p>");
            continue;
        }
        h.push_str("<table><tr>");
        for col in g.columns.iter().take(*read) {
            h.push_str(&format!("<th>{}</th>", esc(col)));
        }
        h.push_str("</tr>");
        for row in &g.rows {
            h.push_str("<tr>");
            for cell in row.iter().take(*read) {
                h.push_str(&format!("<td>{}</td>", esc(cell)));
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Read;

    use steward_core::request::{Details, RequestView, Status};
    use steward_core::vault::{FieldView, TrailEntry};
    use time::macros::datetime;

    fn mailpro() -> Declaration {
        let source = steward_policy::Source::new(
            "004-mailpro.toml",
            include_str!("../../../examples/004-mailpro.toml"),
        );
        steward_policy::check(&source).unwrap().declaration.unwrap()
    }

    fn package() -> AccessData {
        let at = datetime!(2026-11-30 13:44:41.893933105 UTC);
        AccessData {
            request: None,
            subject: Some(steward_core::SubjectId::new(at)),
            generated_at: at,
            identities: vec![("email".to_owned(), "ana@example.com".to_owned())],
            fields: vec![FieldView {
                id: "018f2a3c-0000-7000-8000-000000000001".parse().unwrap(),
                category: "user.account.username".to_owned(),
                purpose: "account".to_owned(),
                source: "api".to_owned(),
                collected_at: at,
                value: "ana".to_owned(),
            }],
            held: Vec::new(),
            trail: vec![TrailEntry {
                at,
                role: "support".to_owned(),
                action: "read".to_owned(),
                purpose: Some("support".to_owned()),
                categories: vec!["user.name".to_owned(), "user.contact.email".to_owned()],
                outcome: steward_core::audit::Outcome::Ok,
            }],
            consent: None,
            requests: vec![RequestView {
                id: "018f2a3c-0000-7000-8000-000000000002".parse().unwrap(),
                kind: Right::OptOutSaleShare,
                status: Status::Completed,
                subject: None,
                received_at: at,
                due_at: datetime!(2026-12-21 00:00 UTC),
                updated_at: at,
                overdue: false,
                details: Details::default(),
            }],
            groups: Vec::new(),
        }
    }

    #[test]
    fn the_package_names_data_rights_and_times_in_words() {
        let d = mailpro();
        assert!(d.sells_or_shares(), "Mailpro offers the opt-out");
        let data = package();
        let zip = write_package(std::io::Cursor::new(Vec::new()), &d, &data)
            .unwrap()
            .into_inner();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        let mut read = |name: &str| {
            let mut text = String::new();
            zip.by_name(name)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            text
        };
        let (html, fields, requests, log, json) = (
            read("index.html"),
            read("csv/fields.csv"),
            read("csv/requests.csv"),
            read("csv/access-log.csv"),
            read("data.json"),
        );

        // The page: a person's words only.
        assert!(
            html.contains("Made on 30 November 2026, 13:44 UTC."),
            "{html}"
        );
        assert!(html.contains("<td>Username</td>"), "{html}");
        assert!(
            html.contains("<td>Your account and our software</td>"),
            "{html}"
        );
        assert!(html.contains("<td>Opt out of the sale or sharing of your data</td>"));
        assert!(
            html.contains("<td>21 December 2026, 00:00 UTC</td>"),
            "a due date in UTC"
        );
        assert!(html.contains("<li>see your data</li>"), "{html}");
        assert!(html.contains("<li>opt out of the sale or sharing of your data</li>"));
        assert!(html.contains("<td>Name and e-mail address</td>"), "{html}");
        for raw in [
            "2026-11-30T13:44",
            "user.account.username",
            "user.contact",
            "opt-out-sale-share",
            "withdraw-consent",
            "collected_at",
        ] {
            assert!(!html.contains(raw), "the page shows `{raw}`");
        }

        // CSV: the readable columns first, then what they were made from.
        let mut lines = fields.lines();
        assert_eq!(
            lines.next(),
            Some(
                "Data,Value,Purpose,Why we hold it,Source,Collected,category,purpose,collected_at"
            )
        );
        assert_eq!(
            lines.next(),
            Some(
                "Username,ana,Your account and our software,Your account and our software (contract),api,\"30 November 2026, 13:44 UTC\",user.account.username,account,2026-11-30T13:44:41.893933105Z"
            )
        );
        assert!(
            requests.starts_with(
                "Reference,Request,Status,Received,Answer due,kind,received_at,due_at\n"
            ),
            "{requests}"
        );
        assert!(requests.contains(",Opt out of the sale or sharing of your data,completed,"));
        assert!(
            log.contains(",Customer service,Name and e-mail address,"),
            "{log}"
        );
        assert!(
            log.contains(",support,user.name user.contact.email"),
            "{log}"
        );

        // data.json stays for machines.
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(json["generated_at"], "2026-11-30T13:44:41.893933105Z");
        let fields = &json["groups"][1];
        assert_eq!(fields["columns"][0], "category");
        assert_eq!(fields["rows"][0][0], "user.account.username");
        assert_eq!(fields["rows"][0][2], "account");
        assert_eq!(json["groups"][3]["rows"][0][1], "opt-out-sale-share");
        assert_eq!(json["information"]["rights"][6], "withdraw-consent");
    }

    #[test]
    fn times_read_as_a_day_month_year_and_utc_clock() {
        assert_eq!(
            time_words(datetime!(2026-11-30 13:44:41.893933105 UTC)),
            "30 November 2026, 13:44 UTC"
        );
        assert_eq!(
            time_words(datetime!(2027-01-01 00:30 +01:00)),
            "31 December 2026, 23:30 UTC"
        );
    }

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(file_name("orders/2026 ü"), "orders_2026__");
        assert_eq!(file_name(""), "group");
    }
}
