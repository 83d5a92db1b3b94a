//! The record of processing activities (GDPR Art. 30(1)), generated from the declaration:
//! one entry per purpose, as CSV, XLSX or JSON.

use rust_xlsxwriter::{Format, FormatAlign, Workbook, XlsxError};
use serde::Serialize;

use crate::country;
use crate::declaration::{Declaration, Flow, Purpose};
use crate::notice::content_date;
use crate::taxonomy::Kind;

/// The record, ready to be written in any format.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Art. 30(1)(a): the controller and its contacts.
    pub controller: ControllerEntry,
    /// The declaration version the record was generated from.
    pub policy_version: String,
    /// One entry per purpose.
    pub activities: Vec<Activity>,
}

/// Art. 30(1)(a).
#[derive(Debug, Clone, Serialize)]
pub struct ControllerEntry {
    /// Name (and legal name).
    pub name: String,
    /// Address, e-mail and telephone.
    pub contact: String,
    /// The data protection officer, when there is one.
    pub dpo: Option<String>,
    /// The representative, when there is one.
    pub representative: Option<String>,
}

/// One processing activity: a row of the record.
#[derive(Debug, Clone, Serialize)]
pub struct Activity {
    /// The purpose's id.
    pub id: String,
    /// Art. 30(1)(b): the purpose.
    pub purpose: String,
    /// What is done, in the declaration's words.
    pub description: String,
    /// The data use (taxonomy key and name).
    pub data_use: String,
    /// The lawful basis (Art. 6(1)), with the interest for legitimate interest.
    pub lawful_basis: String,
    /// Art. 30(1)(c): categories of data subjects.
    pub data_subjects: Vec<String>,
    /// Art. 30(1)(c): categories of personal data.
    pub data_categories: Vec<String>,
    /// Where the data comes from.
    pub source: String,
    /// Art. 30(1)(d): recipients, with role and country.
    pub recipients: Vec<String>,
    /// Art. 30(1)(e): transfers to third countries and their safeguards.
    pub third_country_transfers: Vec<String>,
    /// Art. 30(1)(f): time limits for erasure.
    pub erasure_time_limits: Vec<String>,
    /// Whether the data survives an erasure request, and why.
    pub legal_hold: String,
    /// Whether the data is sold or shared (CCPA/CPRA).
    pub sale_or_share: String,
    /// Art. 30(1)(g): technical and organisational security measures.
    pub security_measures: Vec<String>,
}

/// The columns of the CSV and XLSX forms, in order.
pub const COLUMNS: [&str; 18] = [
    "Controller",
    "Controller contact",
    "Data protection officer",
    "Representative",
    "Purpose id",
    "Purpose of processing",
    "Description",
    "Data use",
    "Lawful basis",
    "Categories of data subjects",
    "Categories of personal data",
    "Source of the data",
    "Recipients",
    "Third-country transfers and safeguards",
    "Time limits for erasure",
    "Kept despite erasure requests",
    "Sale or sharing",
    "Security measures",
];

fn category(d: &Declaration, key: &str) -> String {
    format!("{} ({key})", d.taxonomy.name(Kind::Category, key))
}

fn activity(d: &Declaration, flows: &[Flow], p: &Purpose) -> Activity {
    let lawful_basis = match (&p.legitimate_interest, p.consent) {
        (Some(interest), _) => format!("{}: {interest}", p.basis),
        (None, Some(mode)) => format!("{} ({mode})", p.basis),
        (None, None) => p.basis.to_string(),
    };
    let recipients = p
        .recipients
        .iter()
        .filter_map(|r| d.processor(r))
        .map(|r| {
            let place = r
                .country
                .as_deref()
                .map_or("country not stated".to_owned(), |c| {
                    country::name(c).to_owned()
                });
            format!("{} ({}, {place})", r.name, r.role)
        })
        .collect();
    let third_country_transfers = flows
        .iter()
        .filter(|f| f.purpose == p.id)
        .map(|f| {
            let who = f
                .recipient
                .as_deref()
                .and_then(|r| d.processor(r))
                .map_or(String::new(), |r| format!(" to {}", r.name));
            let safeguard = f
                .safeguard
                .map_or("no safeguard".to_owned(), |s| s.to_string());
            format!("{}{who}: {safeguard}", country::name(&f.country))
        })
        .collect();
    let mut erasure_time_limits: Vec<String> = p
        .retain
        .iter()
        .map(|(k, r)| format!("{}: {r}", category(d, k)))
        .collect();
    if let Some(r) = &p.retention {
        let label = if p.retain.is_empty() {
            "All"
        } else {
            "Other categories"
        };
        erasure_time_limits.push(format!("{label}: {r}"));
    }
    let source = match &p.source {
        crate::declaration::DataSource::Provided => "the data subject".to_owned(),
        crate::declaration::DataSource::Observed => {
            "observed from the data subject's use of the service".to_owned()
        }
        crate::declaration::DataSource::Derived => "derived from other data".to_owned(),
        crate::declaration::DataSource::ThirdParty(id) => {
            d.processor(id).map_or(id.clone(), |x| x.name.clone())
        }
    };
    Activity {
        id: p.id.clone(),
        purpose: p.name.clone(),
        description: p.description.clone().unwrap_or_default(),
        data_use: format!(
            "{} ({})",
            d.taxonomy.name(Kind::Use, &p.data_use),
            p.data_use
        ),
        lawful_basis,
        data_subjects: p
            .subjects
            .iter()
            .map(|s| format!("{} ({s})", d.taxonomy.name(Kind::Subject, s)))
            .collect(),
        data_categories: p.categories.iter().map(|c| category(d, c)).collect(),
        source,
        recipients,
        third_country_transfers,
        erasure_time_limits,
        legal_hold: p
            .legal_hold
            .as_ref()
            .map_or("no".to_owned(), |h| format!("yes: {}", h.reason)),
        sale_or_share: match (p.sale, p.share) {
            (true, true) => "sold and shared",
            (true, false) => "sold",
            (false, true) => "shared",
            (false, false) => "no",
        }
        .to_owned(),
        security_measures: d.security.measures.clone(),
    }
}

/// Builds the record for a declaration.
pub fn build(d: &Declaration) -> Record {
    let c = &d.controller;
    let mut contact = Vec::new();
    if let Some(address) = &c.address {
        contact.push(address.replace('\n', ", "));
    }
    contact.push(country::name(&c.country).to_owned());
    contact.push(c.email.clone());
    if let Some(phone) = &c.phone {
        contact.push(phone.clone());
    }
    let person = |p: &crate::declaration::Contact| {
        [&p.name, &p.email, &p.phone, &p.address]
            .into_iter()
            .flatten()
            .map(|s| s.replace('\n', ", "))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Record {
        controller: ControllerEntry {
            name: match &c.legal_name {
                Some(legal) => format!("{} ({legal})", c.name),
                None => c.name.clone(),
            },
            contact: contact.join(", "),
            dpo: c.dpo.as_ref().map(person),
            representative: c.representative.as_ref().map(person),
        },
        policy_version: match d.policy.effective {
            Some(date) => format!("{} ({})", d.policy.version, content_date(date)),
            None => d.policy.version.clone(),
        },
        activities: {
            let flows = d.third_country_flows();
            d.purposes.iter().map(|p| activity(d, &flows, p)).collect()
        },
    }
}

impl Record {
    /// The rows of the flat forms (CSV, XLSX), one per activity, in [`COLUMNS`] order.
    pub fn rows(&self) -> Vec<[String; 18]> {
        let c = &self.controller;
        self.activities
            .iter()
            .map(|a| {
                [
                    c.name.clone(),
                    c.contact.clone(),
                    c.dpo.clone().unwrap_or_default(),
                    c.representative.clone().unwrap_or_default(),
                    a.id.clone(),
                    a.purpose.clone(),
                    a.description.clone(),
                    a.data_use.clone(),
                    a.lawful_basis.clone(),
                    a.data_subjects.join("; "),
                    a.data_categories.join("; "),
                    a.source.clone(),
                    a.recipients.join("; "),
                    a.third_country_transfers.join("; "),
                    a.erasure_time_limits.join("; "),
                    a.legal_hold.clone(),
                    a.sale_or_share.clone(),
                    a.security_measures.join("; "),
                ]
            })
            .collect()
    }

    /// The record as CSV with a header row. Cells that a spreadsheet would run as a formula
    /// (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) are prefixed with `'`.
    pub fn to_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut w = crate::spreadsheet::CsvWriter::new(Vec::new());
        w.row(COLUMNS)?;
        for row in self.rows() {
            w.row(&row)?;
        }
        w.into_inner()
    }

    /// The record as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// The record as an XLSX workbook: a frozen, filterable header row, wrapped cells.
    pub fn to_xlsx(&self) -> Result<Vec<u8>, XlsxError> {
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        sheet.set_name("Record of processing")?;
        let header = Format::new()
            .set_bold()
            .set_text_wrap()
            .set_align(FormatAlign::Top)
            .set_background_color("#DDE6F0");
        let cell = Format::new().set_text_wrap().set_align(FormatAlign::Top);
        for (col, title) in (0u16..).zip(COLUMNS) {
            sheet.write_string_with_format(0, col, title, &header)?;
            let width = match title {
                "Purpose id" | "Sale or sharing" => 14.0,
                "Description"
                | "Categories of personal data"
                | "Recipients"
                | "Time limits for erasure"
                | "Security measures" => 48.0,
                _ => 28.0,
            };
            sheet.set_column_width(col, width)?;
        }
        for (row, values) in (1u32..).zip(self.rows()) {
            for (col, value) in (0u16..).zip(values.iter()) {
                sheet.write_string_with_format(row, col, value, &cell)?;
            }
        }
        sheet.set_freeze_panes(1, 0)?;
        let last_row = u32::try_from(self.activities.len()).unwrap_or(u32::MAX);
        sheet.autofilter(0, 0, last_row, 17)?;
        book.save_to_buffer()
    }
}
