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

use steward_core::requests::{AccessData, Group};
use steward_policy::Declaration;
use steward_policy::declaration::ExportFormat;
use steward_policy::notice::escape as esc;
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

fn time_text(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn group(name: &str, title: &str, source: &str, columns: &[&str], rows: Vec<Vec<String>>) -> Group {
    Group {
        name: name.to_owned(),
        title: title.to_owned(),
        source: source.to_owned(),
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        rows,
    }
}

/// The groups of a package, in the order they are shown.
pub fn groups(data: &AccessData) -> Vec<Group> {
    let mut out = vec![
        group(
            "identities",
            "How we recognise you",
            "vault",
            &["kind", "value"],
            data.identities
                .iter()
                .map(|(k, v)| vec![k.clone(), v.clone()])
                .collect(),
        ),
        group(
            "fields",
            "Your data",
            "vault",
            &["category", "value", "purpose", "source", "collected_at"],
            data.fields
                .iter()
                .map(|f| {
                    vec![
                        f.category.clone(),
                        f.value.clone(),
                        f.purpose.clone(),
                        f.source.clone(),
                        time_text(f.collected_at),
                    ]
                })
                .collect(),
        ),
        group(
            "held",
            "Data kept because the law requires it",
            "vault (legal hold)",
            &["category", "value", "purpose", "source", "collected_at"],
            data.held
                .iter()
                .map(|f| {
                    vec![
                        f.category.clone(),
                        f.value.clone(),
                        f.purpose.clone(),
                        f.source.clone(),
                        time_text(f.collected_at),
                    ]
                })
                .collect(),
        ),
    ];
    if let Some(history) = &data.consent {
        out.push(group(
            "consent",
            "Your consent choices and objections",
            "consent ledger",
            &["seq", "at", "action", "purpose", "method", "policy_version"],
            history
                .events
                .iter()
                .map(|e| {
                    vec![
                        e.seq.to_string(),
                        time_text(e.at),
                        e.action.as_str().to_owned(),
                        e.purpose.clone().unwrap_or_default(),
                        e.method.as_str().to_owned(),
                        e.policy.clone(),
                    ]
                })
                .collect(),
        ));
    }
    out.push(group(
        "requests",
        "Your requests",
        "requests",
        &["id", "kind", "status", "received_at", "due_at"],
        data.requests
            .iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    r.kind.as_str().to_owned(),
                    r.status.as_str().to_owned(),
                    time_text(r.received_at),
                    time_text(r.due_at),
                ]
            })
            .collect(),
    ));
    out.push(group(
        "access-log",
        "Who used your data, and why",
        "audit trail",
        &["at", "role", "action", "purpose", "categories", "outcome"],
        data.trail
            .iter()
            .map(|t| {
                vec![
                    time_text(t.at),
                    t.role.clone(),
                    t.action.clone(),
                    t.purpose.clone().unwrap_or_default(),
                    t.categories.join(" "),
                    serde_json::to_value(t.outcome)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                ]
            })
            .collect(),
    ));
    out.extend(data.groups.iter().cloned());
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
    let groups = groups(data);
    let formats = &declaration.rights.export_formats;
    let wants = |f: ExportFormat| formats.is_empty() || formats.contains(&f);
    let mut zip = zip::ZipWriter::new_stream(out);
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);

    zip.start_file("index.html", options)?;
    zip.write_all(html(declaration, data, &groups).as_bytes())?;

    zip.start_file("data.json", options)?;
    let json = serde_json::json!({
        "controller": declaration.controller.name,
        "generated_at": time_text(data.generated_at),
        "request": data.request,
        "subject": data.subject,
        "information": information(declaration),
        "groups": groups,
        "consent": data.consent,
    });
    serde_json::to_writer_pretty(&mut zip, &json).map_err(std::io::Error::other)?;

    if wants(ExportFormat::Csv) {
        for g in &groups {
            zip.start_file(format!("csv/{}.csv", file_name(&g.name)), options)?;
            let mut w = csv::Writer::from_writer(&mut zip);
            w.write_record(&g.columns)?;
            for row in &g.rows {
                w.write_record(row)?;
            }
            w.flush()?;
        }
    }
    if wants(ExportFormat::Xlsx) {
        zip.start_file("data.xlsx", options)?;
        let mut book = rust_xlsxwriter::Workbook::new();
        let bold = rust_xlsxwriter::Format::new().set_bold();
        for g in &groups {
            let sheet = book.add_worksheet();
            let mut name: String = file_name(&g.name).chars().take(31).collect();
            if name.is_empty() {
                name = "group".to_owned();
            }
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

fn html(d: &Declaration, data: &AccessData, groups: &[Group]) -> String {
    let mut h = String::new();
    let c = &d.controller;
    h.push_str(&format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"><title>Your data held by {name}</title><style>{STYLE}</style></head><body>",
        name = esc(&c.name)
    ));
    h.push_str(&format!(
        "<h1>Your data held by {}</h1><p class=\"note\">Made on {}{}. This folder also holds the same data as <code>data.json</code>, CSV files and a spreadsheet (<code>data.xlsx</code>).</p>",
        esc(&c.name),
        esc(&time_text(data.generated_at)),
        data.request
            .map(|r| format!(" in answer to request {r}"))
            .unwrap_or_default()
    ));
    if data.subject.is_none() {
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
            esc(&p.categories.join(", ")),
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
                esc(&r.categories.join(", "))
            ));
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Your rights</h2><p>You may ask us to ");
    let rights: Vec<&str> = d.rights.available.iter().map(|r| r.as_str()).collect();
    h.push_str(&esc(&rights.join(", ")));
    h.push_str(&format!(". Write to {}.</p>", esc(&d.rights.contact)));
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

    for g in groups {
        h.push_str(&format!(
            "<h2>{}</h2><p class=\"note\">From: {} · {} rows · <code>csv/{}.csv</code></p>",
            esc(&g.title),
            esc(&g.source),
            g.rows.len(),
            esc(&file_name(&g.name))
        ));
        if g.rows.is_empty() {
            h.push_str("<p>Nothing.</p>");
            continue;
        }
        h.push_str("<table><tr>");
        for col in &g.columns {
            h.push_str(&format!("<th>{}</th>", esc(col)));
        }
        h.push_str("</tr>");
        for row in &g.rows {
            h.push_str("<tr>");
            for cell in row {
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

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(file_name("orders/2026 ü"), "orders_2026__");
        assert_eq!(file_name(""), "group");
    }
}
