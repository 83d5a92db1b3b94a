//! The record of processing activities (GDPR Art. 30(1)).

use std::io::Read;

use steward_policy::ropa::{self, COLUMNS};

use super::notice::example;
use super::run;

fn record(prefix: &str) -> ropa::Record {
    let text = example(prefix);
    let (_, checked) = run(&text);
    ropa::build(&checked.declaration.expect("valid"))
}

#[test]
fn one_row_per_purpose_with_every_article_30_field() {
    let r = record("003");
    let csv = String::from_utf8(r.to_csv().unwrap()).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        COLUMNS
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 11);
    let financial = rows.iter().find(|r| &r[4] == "financial-records").unwrap();
    assert_eq!(&financial[0], "ALLCOT (ALLCOT AG)");
    assert!(financial[1].contains("privacy@allcot.com") && financial[1].contains("Zug"));
    assert!(financial[8].starts_with("legal-obligation"));
    assert!(financial[9].contains("Customer (customer)"));
    assert!(financial[10].contains("Financial data (user.financial)"));
    assert!(financial[12].contains("Stripe (processor, United States)"));
    assert!(financial[13].contains("United States to Stripe: scc"));
    assert!(
        financial[14].contains("up to 10 years")
            || financial[14].contains("10 years after collection"),
        "{}",
        &financial[14]
    );
    assert!(financial[15].starts_with("yes: accounting and legal requirements"));
    assert!(
        !financial[17].is_empty(),
        "security measures (Art. 30(1)(g))"
    );
}

#[test]
fn json_carries_the_same_record() {
    let r = record("004");
    let json: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
    assert_eq!(json["controller"]["name"], "Mailpro (Maxony Group)");
    let activities = json["activities"].as_array().unwrap();
    assert_eq!(activities.len(), r.activities.len());
    let account = activities.iter().find(|a| a["id"] == "account").unwrap();
    assert_eq!(
        account["erasure_time_limits"][0],
        "All: 45 to 60 days after account closure"
    );
}

#[test]
fn xlsx_is_a_real_workbook_with_the_rows() {
    let r = record("004");
    let bytes = r.to_xlsx().unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("an XLSX is a ZIP");
    let mut names: Vec<String> = zip
        .file_names()
        .map(|n| n.expect("file name").into_owned())
        .collect();
    names.sort();
    assert!(names.contains(&"xl/workbook.xml".to_owned()), "{names:?}");
    let mut workbook = String::new();
    zip.by_name("xl/workbook.xml")
        .unwrap()
        .read_to_string(&mut workbook)
        .unwrap();
    assert!(workbook.contains("Record of processing"));
    let mut text = String::new();
    for name in ["xl/sharedStrings.xml", "xl/worksheets/sheet1.xml"] {
        if let Ok(mut f) = zip.by_name(name) {
            f.read_to_string(&mut text).unwrap();
        }
    }
    for expected in [
        "Time limits for erasure",
        "Card payments",
        "Datatrans AG (processor, Switzerland)",
        "45 to 60 days after account closure",
    ] {
        assert!(text.contains(expected), "{expected}");
    }
}

#[test]
fn csv_cells_cannot_run_as_spreadsheet_formulas() {
    let text = super::BASE.replace(
        "name = \"Orders\"",
        "name = \"=HYPERLINK(\\\"http://evil.example\\\")\"",
    );
    let (source, checked) = run(&text);
    let d = checked.declaration.unwrap_or_else(|| {
        panic!(
            "{:?}",
            checked
                .diagnostics
                .iter()
                .map(|d| d.render(&source))
                .collect::<Vec<_>>()
        )
    });
    let csv = String::from_utf8(ropa::build(&d).to_csv().unwrap()).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let row = reader.records().next().unwrap().unwrap();
    assert!(row[5].starts_with("'=HYPERLINK("), "{}", &row[5]);
}
