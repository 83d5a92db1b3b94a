//! The declaration's promises: `steward check` finds each mistake, points at it, and says how
//! to fix it; a clean declaration yields the typed model the engine relies on.

// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use steward_policy::declaration::{LawfulBasis, Role};
use steward_policy::{Checked, Diagnostic, Retention, Severity, Source, Trigger, check};

mod notice;
mod ropa;

/// A small, clean declaration each test changes in one place.
pub const BASE: &str = r#"
[policy]
version = "1.0"
effective = 2026-01-15

[[policy.changelog]]
version = "1.0"
date = 2026-01-15
summary = "First version."

[controller]
name = "Example Shop"
country = "CH"
email = "privacy@example.ch"

[controller.authority]
name = "FDPIC"
website = "https://www.edoeb.admin.ch"

[[purposes]]
id = "orders"
name = "Orders"
use = "essential.service"
basis = "contract"
categories = ["user.contact.email", "user.contact.address"]
subjects = ["customer"]
retention = "2 years after collection"
recipients = ["shipper"]

[[processors]]
id = "shipper"
name = "Swiss Post"
country = "CH"
dpa = true

[rights]
deadline = "1 month"

[breach.authority]
within = "72 hours"

[security]
measures = ["TLS everywhere."]
"#;

/// Checks `text`, failing the test if it is not even readable.
pub fn run(text: &str) -> (Source, Checked) {
    let source = Source::new("privacy.toml", text);
    let checked = check(&source).unwrap_or_else(|d| panic!("fatal: {}", d.render(&source)));
    (source, checked)
}

fn all(source: &Source, checked: &Checked) -> String {
    checked
        .diagnostics
        .iter()
        .map(|d| d.render(source))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The one finding with `code`; fails listing every finding otherwise.
fn only<'a>(source: &Source, checked: &'a Checked, code: &str) -> &'a Diagnostic {
    let found: Vec<&Diagnostic> = checked
        .diagnostics
        .iter()
        .filter(|d| d.code == code)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one `{code}`, got:\n{}",
        all(source, checked)
    );
    found[0]
}

/// The text a finding points at (its start to its end on the same line).
fn pointed_at<'a>(source: &'a Source, d: &Diagnostic) -> &'a str {
    let start = d.start.expect("located");
    let end = d.end.expect("located");
    let line = source.line_text(start.line);
    let from: usize = line
        .char_indices()
        .nth(start.column - 1)
        .map_or(line.len(), |(i, _)| i);
    let to: usize = if end.line == start.line {
        line.char_indices()
            .nth(end.column - 1)
            .map_or(line.len(), |(i, _)| i)
    } else {
        line.len()
    };
    &line[from..to]
}

fn with(replace: &str, by: &str) -> String {
    assert!(BASE.contains(replace), "BASE has no `{replace}`");
    BASE.replacen(replace, by, 1)
}

fn append(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

#[test]
fn the_base_declaration_is_clean_and_typed() {
    let (source, checked) = run(BASE);
    assert!(checked.diagnostics.is_empty(), "{}", all(&source, &checked));
    let d = checked.declaration.expect("valid");
    let orders = d.purpose("orders").expect("declared");
    assert_eq!(orders.basis, LawfulBasis::Contract);
    assert!(matches!(
        orders.retention_for("user.contact.email"),
        Some(Retention::Period {
            after: Trigger::Collection,
            ..
        })
    ));
    assert_eq!(
        d.processor("shipper").expect("declared").role,
        Role::Processor
    );
}

#[test]
fn unknown_taxonomy_key_suggests_the_nearest() {
    let (source, checked) = run(&with(
        "\"user.contact.email\", ",
        "\"user.contact.emial\", ",
    ));
    let d = only(&source, &checked, "unknown-category");
    assert_eq!(pointed_at(&source, d), "\"user.contact.emial\"");
    assert_eq!(
        d.help.as_deref(),
        Some("did you mean `user.contact.email`?")
    );
    assert_eq!(
        d.start.map(|p| p.line),
        BASE.lines()
            .position(|l| l.starts_with("categories"))
            .map(|i| i + 1)
    );
    assert!(checked.declaration.is_none());

    let (source, checked) = run(&with(
        "use = \"essential.service\"",
        "use = \"marketing.comunications.email\"",
    ));
    let d = only(&source, &checked, "unknown-use");
    assert!(
        d.help
            .as_deref()
            .unwrap()
            .contains("marketing.communications.email")
    );
    let (source, checked) = run(&with(
        "subjects = [\"customer\"]",
        "subjects = [\"custmer\"]",
    ));
    assert!(
        only(&source, &checked, "unknown-subject")
            .help
            .as_deref()
            .unwrap()
            .contains("`customer`")
    );
}

#[test]
fn purpose_without_lawful_basis_is_an_error() {
    let (source, checked) = run(&with("basis = \"contract\"\n", ""));
    let d = only(&source, &checked, "no-lawful-basis");
    assert!(d.message.contains("`orders`"));
    assert!(d.help.as_deref().unwrap().contains("legitimate-interest"));
    assert_eq!(pointed_at(&source, d), "id");
}

#[test]
fn consent_purpose_must_say_how_consent_is_asked() {
    let (source, checked) = run(&with("basis = \"contract\"", "basis = \"consent\""));
    let d = only(&source, &checked, "consent-without-mode");
    assert_eq!(pointed_at(&source, d), "\"consent\"");
    let (_, checked) = run(&with(
        "basis = \"contract\"",
        "basis = \"consent\"\nconsent = \"double-opt-in\"",
    ));
    assert!(!checked.has_errors());
}

#[test]
fn every_collected_category_needs_a_retention() {
    let (source, checked) = run(&with(
        "retention = \"2 years after collection\"\n",
        "retain.\"user.contact.email\" = \"1 year\"\n",
    ));
    let d = only(&source, &checked, "no-retention");
    assert_eq!(pointed_at(&source, d), "\"user.contact.address\"");
    assert!(
        d.help
            .as_deref()
            .unwrap()
            .contains("retain.\"user.contact.address\"")
    );
}

#[test]
fn a_retention_rule_for_a_category_not_collected_is_refused() {
    let (source, checked) = run(&with(
        "retention = \"2 years after collection\"",
        "retention = \"2 years after collection\"\nretain.\"user.financial\" = \"10 years\"",
    ));
    let d = only(&source, &checked, "retain-not-collected");
    assert_eq!(pointed_at(&source, d), "\"user.financial\"");
}

#[test]
fn indefinite_retention_must_give_its_reason() {
    let (source, checked) = run(&with("\"2 years after collection\"", "\"indefinite\""));
    let d = only(&source, &checked, "indefinite-without-reason");
    assert_eq!(pointed_at(&source, d), "\"indefinite\"");
    let (_, checked) = run(&with(
        "\"2 years after collection\"",
        "\"indefinite: order history for warranty claims\"",
    ));
    assert!(!checked.has_errors());
    let (source, checked) = run(&with(
        "\"2 years after collection\"",
        "\"2 years after the moon is full\"",
    ));
    assert!(
        only(&source, &checked, "bad-retention")
            .help
            .as_deref()
            .unwrap()
            .contains("account closure")
    );
}

#[test]
fn recipient_must_be_a_declared_processor() {
    let (source, checked) = run(&with(
        "recipients = [\"shipper\"]",
        "recipients = [\"shiper\", \"acme\"]",
    ));
    let found: Vec<&Diagnostic> = checked
        .diagnostics
        .iter()
        .filter(|d| d.code == "unknown-recipient")
        .collect();
    assert_eq!(found.len(), 2, "{}", all(&source, &checked));
    assert_eq!(pointed_at(&source, found[0]), "\"shiper\"");
    assert!(
        found[0]
            .help
            .as_deref()
            .unwrap()
            .contains("did you mean `shipper`")
    );
    assert!(found[1].help.as_deref().unwrap().contains("[[processors]]"));
}

#[test]
fn processor_without_country_or_dpa_is_a_warning() {
    let (source, checked) = run(&with("country = \"CH\"\ndpa = true\n", ""));
    only(&source, &checked, "processor-without-country");
    only(&source, &checked, "processor-without-dpa");
    assert!(
        checked
            .diagnostics
            .iter()
            .all(|d| d.severity == Severity::Warning)
    );
    assert!(checked.declaration.is_some(), "warnings do not block");
    // An independent third party has no DPA with us.
    let (_, checked) = run(&with(
        "country = \"CH\"\ndpa = true\n",
        "country = \"CH\"\nrole = \"third-party\"\n",
    ));
    assert!(checked.diagnostics.is_empty());
}

#[test]
fn transfer_outside_the_controllers_country_needs_a_safeguard() {
    let us = with(
        "name = \"Swiss Post\"\ncountry = \"CH\"",
        "name = \"Mailer Inc\"\ncountry = \"US\"",
    );
    let (source, checked) = run(&us);
    let d = only(&source, &checked, "transfer-without-safeguard");
    assert_eq!(pointed_at(&source, d), "\"shipper\"");
    assert!(d.message.contains("the United States") && d.message.contains("Switzerland"));
    let (_, checked) = run(&us.replace("dpa = true", "dpa = true\nsafeguard = \"scc\""));
    assert!(!checked.has_errors(), "a processor safeguard covers it");
    let (_, checked) = run(&us.replace(
        "recipients = [\"shipper\"]",
        "recipients = [\"shipper\"]\ntransfers = [{ country = \"US\", safeguard = \"dpf\", recipient = \"shipper\" }]",
    ));
    assert!(!checked.has_errors(), "a purpose transfer covers it");
    let (source, checked) = run(&with(
        "recipients = [\"shipper\"]",
        "transfers = [{ country = \"IN\" }]",
    ));
    assert_eq!(
        pointed_at(
            &source,
            only(&source, &checked, "transfer-without-safeguard")
        ),
        "\"IN\""
    );
    // Inside the EEA, no safeguard is needed.
    let eu = with("country = \"CH\"\nemail", "country = \"DE\"\nemail").replace(
        "name = \"Swiss Post\"\ncountry = \"CH\"",
        "name = \"La Poste\"\ncountry = \"FR\"",
    );
    let (source, checked) = run(&eu);
    assert!(checked.diagnostics.is_empty(), "{}", all(&source, &checked));
}

#[test]
fn cookie_without_lifetime_is_an_error() {
    let (source, checked) = run(&append(
        "[[cookies]]\nname = \"sid\"\ncategory = \"necessary\"\n",
    ));
    let d = only(&source, &checked, "cookie-without-lifetime");
    assert_eq!(pointed_at(&source, d), "\"sid\"");
    let (source, checked) = run(&append(
        "[[cookies]]\nname = \"sid\"\ncategory = \"necessary\"\nlifetime = \"forever\"\n",
    ));
    only(&source, &checked, "bad-duration");
}

#[test]
fn non_necessary_cookie_must_be_tied_to_a_consent_purpose() {
    let (source, checked) = run(&append(
        "[[cookies]]\nname = \"_ga\"\ncategory = \"analytics\"\nlifetime = \"2 years\"\n",
    ));
    assert_eq!(
        pointed_at(&source, only(&source, &checked, "cookie-without-consent")),
        "\"analytics\""
    );
    let (source, checked) = run(&append(
        "[[cookies]]\nname = \"_ga\"\ncategory = \"analytics\"\nlifetime = \"2 years\"\npurpose = \"orders\"\n",
    ));
    assert!(
        only(&source, &checked, "cookie-without-consent")
            .message
            .contains("does not rest on consent")
    );
    let (source, checked) = run(&append(
        "[[cookies]]\nname = \"_ga\"\ncategory = \"analytics\"\nlifetime = \"2 years\"\npurpose = \"order\"\n",
    ));
    assert!(
        only(&source, &checked, "unknown-purpose")
            .help
            .as_deref()
            .unwrap()
            .contains("`orders`")
    );
}

#[test]
fn sale_or_share_must_be_possible_to_opt_out_of() {
    let (source, checked) = run(&with(
        "recipients = [\"shipper\"]",
        "recipients = [\"shipper\"]\nsale = true",
    ));
    let d = only(&source, &checked, "sale-without-opt-out");
    assert_eq!(pointed_at(&source, d), "true");
    let (_, checked) = run(&with(
        "recipients = [\"shipper\"]",
        "recipients = [\"shipper\"]\nshare = true\nconsent = \"opt-out\"",
    ));
    assert!(!checked.has_errors());
}

#[test]
fn payment_card_data_is_never_stored_by_steward() {
    let card = with(
        "\"user.contact.address\"]",
        "\"user.contact.address\", \"user.financial.credit_card\"]",
    );
    let (source, checked) = run(&card);
    let d = only(&source, &checked, "card-data-stored");
    assert_eq!(pointed_at(&source, d), "\"user.financial.credit_card\"");
    assert!(d.help.as_deref().unwrap().contains("stored = false"));
    let (_, checked) = run(&card.replace(
        "recipients = [\"shipper\"]",
        "recipients = [\"shipper\"]\nstored = false",
    ));
    assert!(!checked.has_errors());
}

#[test]
fn legal_hold_on_a_consent_purpose_is_refused() {
    let (source, checked) = run(&with(
        "basis = \"contract\"",
        "basis = \"consent\"\nconsent = \"opt-in\"\nlegal_hold = true",
    ));
    assert_eq!(
        pointed_at(&source, only(&source, &checked, "hold-on-consent")),
        "true"
    );
    let (_, checked) = run(&with(
        "basis = \"contract\"",
        "basis = \"legal-obligation\"\nlegal_hold = true",
    ));
    let d = checked.declaration.expect("valid");
    assert!(
        d.purposes[0]
            .legal_hold
            .as_ref()
            .unwrap()
            .reason
            .contains("law requires")
    );
}

#[test]
fn duplicate_ids_are_refused() {
    let twice = append(
        "[[purposes]]\nid = \"orders\"\nname = \"Again\"\nuse = \"essential.service\"\nbasis = \"contract\"\nsubjects = [\"customer\"]\ncategories = [\"user.name\"]\nretention = \"1 year\"\n\n[[processors]]\nid = \"shipper\"\nname = \"Other\"\ncountry = \"CH\"\ndpa = true\n",
    );
    let (source, checked) = run(&twice);
    let dups: Vec<&Diagnostic> = checked
        .diagnostics
        .iter()
        .filter(|d| d.code == "duplicate-id")
        .collect();
    assert_eq!(dups.len(), 2, "{}", all(&source, &checked));
    assert!(
        dups.iter()
            .all(|d| d.help.as_deref().unwrap().contains("the first is on line"))
    );
    let (source, checked) = run(&append(
        "[[cookies]]\nname = \"sid\"\ncategory = \"necessary\"\nlifetime = \"session\"\n[[cookies]]\nname = \"sid\"\ncategory = \"necessary\"\nlifetime = \"session\"\n",
    ));
    only(&source, &checked, "duplicate-id");
}

#[test]
fn immutable_field_must_be_a_collected_category() {
    let (source, checked) = run(&with(
        "deadline = \"1 month\"",
        "deadline = \"1 month\"\nimmutable = [\"user.account.username\"]",
    ));
    let d = only(&source, &checked, "immutable-not-collected");
    assert_eq!(pointed_at(&source, d), "\"user.account.username\"");
    let (source, checked) = run(&with(
        "deadline = \"1 month\"",
        "deadline = \"1 month\"\nimmutable = [\"user.acount.username\"]",
    ));
    only(&source, &checked, "unknown-category");
    let (_, checked) = run(&with(
        "deadline = \"1 month\"",
        "deadline = \"1 month\"\nimmutable = [\"user.contact.email\"]",
    ));
    assert!(!checked.has_errors());
}

#[test]
fn an_unknown_key_anywhere_is_reported_with_the_nearest_key() {
    let text = with("basis = \"contract\"", "basis = \"contract\"\nretension = \"1 year\"\ntransfers = [{ country = \"US\", safegaurd = \"scc\" }]")
        .replace("[controller.authority]", "[controller.dpo]\nemial = \"dpo@example.ch\"\nemail = \"dpo@example.ch\"\n\n[controller.authority]")
        .replace("[security]", "[signals]\ngcp = true\n\n[security]");
    let text = format!("colour = \"blue\"\n{text}");
    let (source, checked) = run(&text);
    let unknown: Vec<(&str, Option<&str>)> = checked
        .diagnostics
        .iter()
        .filter(|d| d.code == "unknown-key")
        .map(|d| (pointed_at(&source, d), d.help.as_deref()))
        .collect();
    assert_eq!(unknown.len(), 5, "{}", all(&source, &checked));
    for (key, nearest) in [
        ("retension", "retention"),
        ("safegaurd", "safeguard"),
        ("emial", "email"),
        ("gcp", "gpc"),
    ] {
        assert!(
            unknown
                .iter()
                .any(|(k, h)| *k == key && h.is_some_and(|h| h.contains(&format!("`{nearest}`")))),
            "{key} → {nearest}: {unknown:?}"
        );
    }
    assert!(
        unknown
            .iter()
            .any(|(k, h)| *k == "colour"
                && h.is_some_and(|h| h.contains("the keys of the top level")))
    );
}

#[test]
fn deprecated_fideslang_keys_are_accepted_with_their_replacement() {
    let (source, checked) = run(&with(
        "\"user.contact.address\"]",
        "\"user.contact.address\", \"user.contact.url\"]",
    ));
    let d = only(&source, &checked, "deprecated-key");
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.help.as_deref(), Some("use `user.contact.social_url`"));
    let decl = checked.declaration.expect("valid");
    assert!(
        decl.purposes[0]
            .categories
            .contains(&"user.contact.social_url".to_owned())
    );
}

#[test]
fn the_declaration_can_extend_the_taxonomy() {
    let text = append(
        "[[taxonomy.categories]]\nkey = \"user.content.public.comment\"\nname = \"Comment\"\n",
    )
    .replace(
        "\"user.contact.address\"]",
        "\"user.contact.address\", \"user.content.public.comment\"]",
    );
    let (source, checked) = run(&text);
    assert!(checked.diagnostics.is_empty(), "{}", all(&source, &checked));
    let (source, checked) = run(&append(
        "[[taxonomy.categories]]\nkey = \"user.contnet.comment\"\nname = \"Comment\"\n",
    ));
    let d = only(&source, &checked, "bad-taxonomy-key");
    assert!(d.help.as_deref().unwrap().contains("`user.content`"));
}

#[test]
fn missing_required_values_are_each_reported() {
    let text = BASE
        .replace("name = \"Example Shop\"\n", "")
        .replace("version = \"1.0\"\neffective", "effective");
    let (source, checked) = run(&text);
    let missing: Vec<&str> = checked
        .diagnostics
        .iter()
        .filter(|d| d.code == "missing-field")
        .map(|d| d.message.as_str())
        .collect();
    assert!(
        missing
            .iter()
            .any(|m| m.contains("[controller] has no `name`")),
        "{}",
        all(&source, &checked)
    );
    assert!(
        missing
            .iter()
            .any(|m| m.contains("[policy] has no `version`")),
        "{}",
        all(&source, &checked)
    );
}

#[test]
fn bad_values_name_the_accepted_ones() {
    let (source, checked) = run(&with("basis = \"contract\"", "basis = \"contrakt\""));
    let d = only(&source, &checked, "unknown-value");
    assert!(
        d.help
            .as_deref()
            .unwrap()
            .starts_with("did you mean \"contract\"?")
    );
    let (source, checked) = run(&with(
        "country = \"CH\"\nemail",
        "country = \"Switzerland\"\nemail",
    ));
    only(&source, &checked, "unknown-country");
    let (source, checked) = run(&with(
        "email = \"privacy@example.ch\"",
        "email = \"privacy at example\"",
    ));
    only(&source, &checked, "bad-email");
    let (source, checked) = run(&with(
        "effective = 2026-01-15",
        "effective = \"15.01.2026\"",
    ));
    assert_eq!(
        only(&source, &checked, "bad-date").help.as_deref(),
        Some("write a date as YYYY-MM-DD, e.g. 2026-01-15")
    );
}

#[test]
fn a_notice_language_other_than_english_is_flagged() {
    let (source, checked) = run(&with(
        "version = \"1.0\"\neffective",
        "version = \"1.0\"\nlanguage = \"de\"\neffective",
    ));
    assert_eq!(
        pointed_at(&source, only(&source, &checked, "notice-language")),
        "\"de\""
    );
    let (_, checked) = run(&with(
        "version = \"1.0\"\neffective",
        "version = \"1.0\"\nlanguage = \"en-GB\"\neffective",
    ));
    assert!(checked.diagnostics.is_empty());
}

#[test]
fn unreadable_text_is_fatal_with_a_location() {
    for (text, code, line) in [
        ("[policy\nversion = 1", "toml-syntax", Some(1)),
        ("[controller]\nname = 3\n", "wrong-type", Some(2)),
        ("[purposes]\nid = \"x\"\n", "wrong-type", Some(1)),
        ("", "empty", None),
        ("# only a comment\n", "empty", None),
    ] {
        let source = Source::new("privacy.toml", text);
        let fatal = check(&source).expect_err(text);
        assert_eq!(fatal.code, code, "{text:?}: {}", fatal.render(&source));
        assert_eq!(fatal.start.map(|p| p.line), line, "{text:?}");
        assert!(fatal.help.is_some());
    }
}

#[test]
fn every_finding_is_located_and_says_how_to_fix_it() {
    let messy =
        BASE.replace(
            "basis = \"contract\"",
            "basis = \"consent\"\nsale = true\nlegal_hold = true",
        )
        .replace(
            "\"user.contact.address\"]",
            "\"user.contact.adress\", \"user.financial.credit_card\"]",
        )
        .replace(
            "deadline = \"1 month\"",
            "deadline = \"3 months\"\nimmutable = [\"user.name\"]\nbogus = 1",
        ) + "[[cookies]]\nname = \"_ga\"\ncategory = \"analytics\"\n";
    let (source, checked) = run(&messy);
    assert!(checked.diagnostics.len() >= 8, "{}", all(&source, &checked));
    for d in &checked.diagnostics {
        assert!(d.start.is_some(), "unlocated: {}", d.render(&source));
        assert!(
            d.help.as_deref().is_some_and(|h| h.len() > 10),
            "no fix: {}",
            d.render(&source)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn checking_arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let source = Source::new("fuzz.toml", text);
        if let Err(fatal) = check(&source) {
            prop_assert!(fatal.render(&source).contains("fuzz.toml"));
        }
    }

    #[test]
    fn a_damaged_declaration_never_panics_and_is_always_located(cut in 0usize..BASE.len(), len in 0usize..40, insert in "[\\[\\]=\"a-z.,{} \n]{0,8}") {
        let mut text = BASE.to_owned();
        let cut = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (cut..=(cut + len).min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(cut);
        text.replace_range(cut..end, &insert);
        let source = Source::new("fuzz.toml", text);
        match check(&source) {
            Err(fatal) => prop_assert!(fatal.start.is_some() || fatal.code == "empty"),
            Ok(checked) => {
                for d in &checked.diagnostics {
                    prop_assert!(d.start.is_some() || d.code == "missing-field", "{}", d.render(&source));
                }
                prop_assert_eq!(checked.declaration.is_some(), !checked.has_errors());
            }
        }
    }
}

#[test]
fn docs_taxonomy_md_matches_the_shipped_taxonomy() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/taxonomy.md");
    let expected = steward_policy::Taxonomy::standard().to_markdown();
    if std::env::var_os("STEWARD_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/taxonomy.md is out of date: run `STEWARD_UPDATE_DOCS=1 cargo test -p steward-policy` and commit it"
    );
}

#[test]
fn every_promise_in_examples_readme_is_a_line_of_its_declaration() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut rows = 0;
    for line in readme
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(".toml`"))
    {
        let cells: Vec<&str> = line.split(" | ").collect();
        let file = cells[1].trim_matches('`');
        let quoted = cells[2]
            .trim_end_matches(" |")
            .trim_matches('`')
            .replace("\\|", "|");
        let text =
            std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(&quoted)),
            "{file} has no line `{quoted}`"
        );
        rows += 1;
    }
    assert!(rows >= 40, "examples/README.md maps only {rows} promises");
}

#[test]
fn every_diagnostic_code_is_documented() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(root.join("src/validate.rs")).unwrap();
    let docs = std::fs::read_to_string(root.join("../../docs/declaration.md")).unwrap();
    let is_code = |s: &str| {
        !s.is_empty()
            && s.split('-')
                .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
    };
    let mut codes = Vec::new();
    for call in [
        "self.error(",
        "self.warn(",
        "self.report(",
        "Diagnostic::new(",
    ] {
        for (at, _) in source.match_indices(call) {
            let rest = &source[at + call.len()..];
            if let Some(code) = rest
                .split('"')
                .skip(1)
                .step_by(2)
                .take(2)
                .find(|s| is_code(s))
            {
                codes.push(code.to_owned());
            }
        }
    }
    codes.sort();
    codes.dedup();
    assert!(codes.len() > 40, "found only {codes:?}");
    let missing: Vec<&String> = codes
        .iter()
        .filter(|c| !docs.contains(&format!("`{c}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "undocumented in docs/declaration.md: {missing:?}"
    );
}

#[test]
fn the_centre_is_branded_and_worded_as_declared_and_checked_for_readability() {
    let (source, checked) = run(&append(
        "[centre]\nname = \"Acme privacy\"\naccent = \"#1D5C3A\"\nlogo = \"logo.svg\"\nlanguages = [\"de\", \"en\"]\n\n[centre.strings.de]\n\"nav.request\" = \"Anliegen an uns\"\n",
    ));
    assert!(!checked.has_errors(), "{}", all(&source, &checked));
    let d = checked.declaration.expect("valid");
    assert_eq!(d.centre.name, "Acme privacy");
    assert_eq!(d.centre.accent, "#1d5c3a");
    assert_eq!(d.centre.logo.as_deref(), Some("logo.svg"));
    assert_eq!(d.centre.negotiate(Some("fr, en;q=0.5")), "en");
    assert_eq!(d.centre.words("de").s("nav.request"), "Anliegen an uns");
    // Without [centre]: the controller's name and the three shipped languages.
    let (_, plain) = run(BASE);
    let plain = plain.declaration.expect("valid");
    assert_eq!(plain.centre.name, plain.controller.name);
    assert_eq!(plain.centre.languages, ["en", "de", "fr"]);
}

#[test]
fn an_unreadable_accent_a_remote_logo_an_unknown_string_and_an_unspoken_language_are_errors() {
    let (source, checked) = run(&append("[centre]\naccent = \"#ffff00\"\n"));
    let d = only(&source, &checked, "low-contrast");
    assert!(d.message.contains("4.5:1"), "{}", d.message);
    assert_eq!(pointed_at(&source, d), "\"#ffff00\"");
    let (source, checked) = run(&append("[centre]\naccent = \"blue\"\n"));
    only(&source, &checked, "bad-centre");
    let (source, checked) = run(&append(
        "[centre]\nlogo = \"https://cdn.example/logo.svg\"\n",
    ));
    only(&source, &checked, "bad-logo");
    let (source, checked) = run(&append("[centre.strings.en]\n\"nav.requst\" = \"Ask\"\n"));
    let d = only(&source, &checked, "unknown-string");
    assert!(
        d.help.as_deref().unwrap_or("").contains("nav.request"),
        "{d:?}"
    );
    let (source, checked) = run(&append("[centre]\nlanguages = [\"it\"]\n"));
    let d = only(&source, &checked, "no-strings");
    assert!(d.message.contains("`it`"), "{}", d.message);
}
