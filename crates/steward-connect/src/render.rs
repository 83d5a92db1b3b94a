//! A manifest written out as TOML a person reads and edits: one line per field and reference,
//! with remarks as comments where a machine guessed and a person should look
//! (`steward datasets scan`, `steward datasets import-fides`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::manifest::{Manifest, TableErase};

/// Remarks written as comments beside what they are about.
#[derive(Debug, Clone, Default)]
pub struct Remarks {
    /// Lines at the top of the file.
    pub header: Vec<String>,
    /// Lines above a table, by table name.
    pub tables: BTreeMap<String, Vec<String>>,
    /// A remark at the end of a field's line, by (table, field).
    pub fields: BTreeMap<(String, String), String>,
}

/// `text` safe for one comment line: control characters (a line break that would end the
/// comment and start a table) written as escapes.
pub fn one_line(text: &str) -> String {
    // Control characters, and the invisible ones that reorder or hide text (bidi overrides
    // and isolates, zero-width marks).
    let hidden = |c: char| matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}');
    text.chars()
        .flat_map(|c| {
            if c.is_control() || hidden(c) {
                c.escape_default().collect::<Vec<char>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// `text` as a TOML string.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quoted(i)).collect();
    format!("[{}]", quoted.join(", "))
}

/// The TOML text of `manifest`, with `remarks` as comments. Reading it back with
/// [`Manifest::parse`] gives the same manifest.
pub fn render(manifest: &Manifest, remarks: &Remarks) -> String {
    let mut out = String::new();
    for line in &remarks.header {
        let _ = writeln!(out, "# {}", one_line(line));
    }
    if !remarks.header.is_empty() {
        out.push('\n');
    }
    let d = &manifest.dataset;
    out.push_str("[dataset]\n");
    let _ = writeln!(out, "name = {}", quoted(&d.name));
    if let Some(var) = &d.url_env {
        let _ = writeln!(
            out,
            "url_env = {}     # the variable holding the connection URL (never the URL itself)",
            quoted(var)
        );
    }
    if let Some(file) = &d.url_file {
        let _ = writeln!(out, "url_file = {}", quoted(file));
    }
    if let Some(n) = d.max_rows {
        let _ = writeln!(out, "max_rows = {n}");
    }
    if !d.description.is_empty() {
        let _ = writeln!(out, "description = {}", quoted(&d.description));
    }
    for t in &manifest.tables {
        out.push('\n');
        for line in remarks.tables.get(&t.name).into_iter().flatten() {
            let _ = writeln!(out, "# {}", one_line(line));
        }
        out.push_str("[[tables]]\n");
        let _ = writeln!(out, "name = {}", quoted(&t.name));
        if let Some(table) = &t.table {
            let _ = writeln!(out, "table = {}", quoted(table));
        }
        let _ = writeln!(out, "purpose = {}", quoted(&t.purpose));
        let _ = writeln!(out, "primary_key = {}", list(&t.primary_key));
        match t.erase {
            TableErase::Fields => {}
            TableErase::Delete => out.push_str("erase = \"delete\"\n"),
            TableErase::Keep => out.push_str("erase = \"keep\"\n"),
        }
        if let Some(hold) = &t.hold {
            let _ = writeln!(out, "hold = {}", quoted(hold));
        }
        if let Some(r) = &t.retention {
            let _ = writeln!(
                out,
                "retention = {{ column = {}, event = {} }}",
                quoted(&r.column),
                quoted(&r.event)
            );
        }
        if let Some(only) = &t.only {
            let _ = writeln!(
                out,
                "only = {{ column = {}, values = {}{} }}",
                quoted(&only.column),
                list(&only.values),
                if only.except { ", except = true" } else { "" }
            );
        }
        if !t.context.is_empty() {
            let _ = writeln!(out, "context = {}", list(&t.context));
        }
        if !t.fields.is_empty() {
            out.push_str("fields = [\n");
            for f in &t.fields {
                let mut line = format!(
                    "  {{ name = {}, category = {}",
                    quoted(&f.name),
                    quoted(&f.category)
                );
                if let Some(kind) = &f.identity {
                    let _ = write!(line, ", identity = {}", quoted(kind));
                }
                if let Some(erase) = &f.erase {
                    let _ = write!(line, ", erase = {}", quoted(erase));
                }
                line.push_str(" },");
                if let Some(remark) = remarks.fields.get(&(t.name.clone(), f.name.clone())) {
                    let _ = write!(line, "  # {}", one_line(remark));
                }
                out.push_str(&line);
                out.push('\n');
            }
            out.push_str("]\n");
        }
        if !t.owns.is_empty() {
            out.push_str("owns = [\n");
            for o in &t.owns {
                let _ = writeln!(
                    out,
                    "  {{ column = {}, table = {}, to = {}{} }},",
                    quoted(&o.column),
                    quoted(&o.table),
                    quoted(&o.to),
                    if o.same_person {
                        ", same_person = true"
                    } else {
                        ""
                    }
                );
            }
            out.push_str("]\n");
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_manifest_reads_back_the_same() {
        let text = r#"
[dataset]
name = "shop"
url_env = "SHOP_DB"
description = "A \"quoted\" shop"

[[tables]]
name = "customer"
purpose = "accounts"
primary_key = ["id"]
context = ["created"]
fields = [{ name = "email", category = "user.contact.email", identity = "email", erase = "hash" }]
owns = [{ column = "id", table = "meta", to = "customer_id" }]

[[tables]]
name = "meta"
table = "customer_meta"
purpose = "accounts"
primary_key = ["id"]
erase = "delete"
only = { column = "key", values = ["a", "b"], except = true }
fields = [{ name = "value", category = "user" }]
"#;
        let m = Manifest::parse(text).unwrap();
        let mut remarks = Remarks::default();
        remarks.header.push("written by a test".to_owned());
        remarks
            .fields
            .insert(("customer".into(), "email".into()), "review".into());
        remarks
            .header
            .push("a name\n[[tables]]\nname = \"planted\" \u{202E}".to_owned());
        let rendered = render(&m, &remarks);
        assert!(
            !rendered.contains("\n[[tables]]\nname = \"planted\""),
            "{rendered}"
        );
        assert!(!rendered.contains('\u{202E}'), "{rendered}");
        assert!(rendered.contains("# written by a test"), "{rendered}");
        assert!(
            rendered.contains("erase = \"hash\" },  # review"),
            "{rendered}"
        );
        let back = Manifest::parse(&rendered).unwrap();
        assert_eq!(format!("{back:?}"), format!("{m:?}"));
    }
}
