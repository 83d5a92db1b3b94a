//! The published notice: complete, accessible, self-contained, and golden for the seed sites.

use std::path::PathBuf;

use steward_policy::notice;

use super::{BASE, run};

/// The five seed sites' declarations, by file name.
pub fn examples() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("examples/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// The text of the seed site whose file name starts with `prefix`.
pub fn example(prefix: &str) -> String {
    examples()
        .into_iter()
        .find(|(n, _)| n.starts_with(prefix))
        .map(|(_, text)| text)
        .unwrap_or_else(|| panic!("no example {prefix}"))
}

fn declaration(text: &str) -> steward_policy::Declaration {
    let (source, checked) = run(text);
    let errors: Vec<String> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.render(&source))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    checked.declaration.expect("valid")
}

#[test]
fn all_five_seed_sites_pass_check() {
    let examples = examples();
    assert_eq!(
        examples.len(),
        5,
        "{:?}",
        examples.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    for (name, text) in &examples {
        let (source, checked) = run(text);
        assert!(
            !checked.has_errors(),
            "{name}:\n{}",
            checked
                .diagnostics
                .iter()
                .map(|d| d.render(&source))
                .collect::<String>()
        );
    }
}

#[test]
fn seed_site_notices_match_their_golden_copies() {
    for (name, text) in examples() {
        let notice = notice::build(&declaration(&text));
        insta::assert_snapshot!(format!("{name}.md"), notice.to_markdown());
        insta::assert_snapshot!(format!("{name}.html"), notice.to_html());
    }
}

#[test]
fn the_notice_has_every_section_the_seeds_have() {
    let n = notice::build(&declaration(BASE));
    let ids: Vec<&str> = n.sections.iter().map(|s| s.id).collect();
    assert_eq!(
        ids,
        [
            "who-we-are",
            "what-we-collect",
            "cookies",
            "embedded-content",
            "sharing",
            "transfers",
            "retention",
            "rights",
            "security",
            "breaches",
            "signals",
            "changes",
            "contact"
        ]
    );
    let md = n.to_markdown();
    for heading in [
        "## Who we are",
        "## What we collect and why",
        "## Your rights and how to use them",
        "## Do Not Track and Global Privacy Control",
    ] {
        assert!(md.contains(heading), "{heading}");
    }
}

#[test]
fn html_is_self_contained_and_accessible() {
    let text = example("004");
    let html = notice::build(&declaration(&text)).to_html();
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    for landmark in [
        "<header>",
        "<nav aria-label=\"Contents\">",
        "<main id=\"content\">",
        "<footer>",
        "class=\"skip\" href=\"#content\"",
    ] {
        assert!(html.contains(landmark), "{landmark}");
    }
    assert!(html.contains("<th scope=\"col\">Name</th>") && html.contains("<th scope=\"row\">"));
    assert!(html.matches("<caption>").count() >= 4);
    assert!(html.contains("@media print"));
    // No external assets: no scripts, stylesheets, images, frames or fonts from anywhere.
    for forbidden in [
        "<script", "<link", "<img", "<iframe", "@import", "url(", " src=",
    ] {
        assert!(!html.contains(forbidden), "{forbidden}");
    }
    // Every in-page link has its target.
    for anchor in html.split("href=\"#").skip(1) {
        let id = &anchor[..anchor.find('"').unwrap()];
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "#{id} has no target"
        );
    }
}

#[test]
fn the_notice_states_what_the_declaration_promises() {
    let text = example("004");
    let md = notice::build(&declaration(&text)).to_markdown();
    for promise in [
        "45 to 60 days after account closure",
        "Swiss accounting law (Code of Obligations Art. 958f) requires invoices to be kept for 10 years",
        "We honour Do Not Track",
        "within 72 hours",
        "by e-mail and a notification in our application within 72 hours",
        "CSV and Excel (XLSX)",
        "Your data is stored in:** Switzerland",
        "No. It goes directly to the recipients named here; we never store it on our systems.",
    ] {
        assert!(md.contains(promise), "missing: {promise}");
    }
    let text = example("003");
    let md = notice::build(&declaration(&text)).to_markdown();
    for promise in [
        "within 7 business days (weekends and public holidays do not count)",
        "within 48 hours",
        "Username cannot be changed once set",
        "up to 10 years",
    ] {
        assert!(md.contains(promise), "missing: {promise}");
    }
}

#[test]
fn a_site_that_does_not_sell_says_so_and_gpc_is_still_explained() {
    let md = notice::build(&declaration(BASE)).to_markdown();
    assert!(md.contains("We do not sell your personal data"));
    assert!(md.contains("We honour Global Privacy Control"));
    assert!(
        md.contains("We do not respond to Do Not Track signals"),
        "CalOPPA needs a DNT sentence"
    );
    assert!(
        !md.contains("Opt out of sale and sharing."),
        "no opt-out right listed when nothing is sold"
    );
}

#[test]
fn text_from_the_declaration_is_escaped() {
    let text = BASE.replace(
        "name = \"Orders\"",
        "name = \"<script>alert(1)</script> & *orders*\"",
    );
    let n = notice::build(&declaration(&text));
    let html = n.to_html();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; *orders*"));
    assert!(!html.contains("<script>"));
    assert!(
        n.to_markdown()
            .contains("\\<script\\>alert(1)\\</script\\> & \\*orders\\*")
    );
}
