//! Reading and linting a declaration: TOML → [`RawDeclaration`] → [`Declaration`], with every
//! problem reported at its place in the file with a fix.
//!
//! Problems that stop the file from being read at all (bad TOML syntax, a value of the wrong
//! type, an empty file) are *fatal*. Everything else is collected, so one run of
//! `steward check` lists every problem at once.

use std::collections::{BTreeMap, BTreeSet};

use time::Date;
use toml::de::DeTable;

use crate::centre::Centre;
use crate::country;
use crate::declaration::*;
use crate::diagnostic::{self, Diagnostic, Severity};
use crate::duration::{Duration, Lifetime, Unit};
use crate::introspect::fields_of;
use crate::raw::*;
use crate::retention::{Retention, RetentionErrorKind};
use crate::source::{Path, Seg, Source, SpanIndex};
use crate::suggest;
use crate::taxonomy::{self, Kind, Lookup, Taxonomy};

/// The outcome of checking a declaration that could be read.
#[derive(Debug)]
pub struct Checked {
    /// The validated declaration; present only when there are no errors.
    pub declaration: Option<Declaration>,
    /// Every error and warning, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Reads and lints a declaration. `Err` means the text is not a readable declaration at all
/// (syntax, a wrong type, nothing in it); the diagnostic says where and how to fix it.
pub fn check(source: &Source) -> Result<Checked, Box<Diagnostic>> {
    let doc = DeTable::parse(source.text()).map_err(|e| {
        let message = e.message().lines().next().unwrap_or("invalid TOML").to_owned();
        Box::new(
            Diagnostic::new(
                Severity::Error,
                "toml-syntax",
                format!("this is not valid TOML: {message}"),
                source,
                e.span(),
            )
            .with_help("see https://toml.io: keys are `name = value`, strings are quoted, tables are `[name]`, lists of tables `[[name]]`"),
        )
    })?;
    if doc.get_ref().is_empty() {
        return Err(Box::new(
            Diagnostic::new(
                Severity::Error,
                "empty",
                "the declaration is empty",
                source,
                None,
            )
            .with_help(
                "run `steward init` to write a commented starter privacy.toml, then edit it",
            ),
        ));
    }
    let index = SpanIndex::build(&doc);
    let mut ignored = Vec::new();
    let raw: RawDeclaration = serde_ignored::deserialize(
        toml::de::Deserializer::from(doc),
        |path| ignored.push(convert_path(&path)),
    )
    .map_err(|e| {
        Box::new(
            Diagnostic::new(
                Severity::Error,
                "wrong-type",
                e.message().to_owned(),
                source,
                e.span(),
            )
            .with_help("strings go in quotes, lists in [ ], true/false bare; see docs/declaration.md for each key's type"),
        )
    })?;

    let mut v = Validator {
        source,
        index,
        diagnostics: Vec::new(),
    };
    for path in ignored {
        v.unknown_key(&path);
    }
    let declaration = v.declaration(&raw);
    let mut diagnostics = v.diagnostics;
    diagnostic::sort(&mut diagnostics);
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    let declaration = declaration.map(|mut d| {
        d.warnings = diagnostics
            .iter()
            .map(|w| match &w.path {
                Some(at) => format!("{} at {at}: {}", w.code, w.message),
                None => format!("{}: {}", w.code, w.message),
            })
            .collect();
        d
    });
    Ok(Checked {
        declaration: declaration.filter(|_| !has_errors),
        diagnostics,
    })
}

fn convert_path(path: &serde_ignored::Path<'_>) -> Path {
    use serde_ignored::Path as P;
    match path {
        P::Root => Path::root(),
        P::Seq { parent, index } => convert_path(parent).index(*index),
        P::Map { parent, key } => convert_path(parent).key(key),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            convert_path(parent)
        }
    }
}

/// The keys a table accepts, found from its place in the document.
fn known_keys(table: &Path) -> &'static [&'static str] {
    let keys: Vec<&str> = table
        .segments()
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    match keys.as_slice() {
        [] => fields_of::<RawDeclaration>(),
        ["policy"] => fields_of::<RawPolicy>(),
        ["policy", "changelog"] => fields_of::<RawChange>(),
        ["controller"] => fields_of::<RawController>(),
        ["controller", "dpo" | "representative"] => fields_of::<RawContact>(),
        ["controller", "authority"] => fields_of::<RawAuthority>(),
        ["taxonomy"] => fields_of::<RawTaxonomy>(),
        ["taxonomy", _] => fields_of::<RawTerm>(),
        ["purposes"] => fields_of::<RawPurpose>(),
        ["purposes", "transfers"] => fields_of::<RawTransfer>(),
        ["processors"] => fields_of::<RawProcessor>(),
        ["cookies"] => fields_of::<RawCookie>(),
        ["cookies", "extended"] => fields_of::<RawExtended>(),
        ["embeds"] => fields_of::<RawEmbed>(),
        ["rights"] => fields_of::<RawRights>(),
        ["breach"] => fields_of::<RawBreach>(),
        ["breach", _] => fields_of::<RawBreachClock>(),
        ["signals"] => fields_of::<RawSignals>(),
        ["security"] => fields_of::<RawSecurity>(),
        ["retention"] => fields_of::<RawRetention>(),
        ["aggregates"] => fields_of::<RawAggregates>(),
        ["centre"] => fields_of::<RawCentre>(),
        ["datasets"] => fields_of::<RawDataset>(),
        _ => &[],
    }
}

/// How a table is written in TOML (`[[purposes]]`, `[rights]`, `the top level`).
fn table_name(path: &Path) -> String {
    let keys: Vec<&str> = path
        .segments()
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    if keys.is_empty() {
        return "the top level".to_owned();
    }
    match path.segments().last() {
        Some(Seg::Index(_)) => format!("[[{}]]", keys.join(".")),
        _ => format!("[{}]", keys.join(".")),
    }
}

/// A recipient that declares no `categories` receives those of the purposes naming it in
/// `recipients`, in the order declared: what its Art. 19
/// notices cover and the notice lists.
fn fill_recipient_categories(processors: &mut [Processor], purposes: &[Purpose]) {
    for r in processors.iter_mut().filter(|r| r.categories.is_empty()) {
        let mut all: Vec<String> = Vec::new();
        for c in purposes
            .iter()
            .filter(|p| p.recipients.contains(&r.id))
            .flat_map(|p| &p.categories)
        {
            if !all.contains(c) {
                all.push(c.clone());
            }
        }
        r.categories_from_purposes = !all.is_empty();
        r.categories = all;
    }
}

/// The categories two purposes both collect (one covering the other counts), sorted.
fn shared(a: &Purpose, b: &Purpose) -> Vec<String> {
    let mut out: Vec<String> = a
        .categories
        .iter()
        .flat_map(|x| {
            b.categories.iter().filter_map(move |y| {
                if taxonomy::covers(x, y) {
                    Some(y.clone())
                } else if taxonomy::covers(y, x) {
                    Some(x.clone())
                } else {
                    None
                }
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn choices<T>(all: &[(T, &str)]) -> String {
    all.iter()
        .map(|(_, t)| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sentence_start(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn is_id(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>')
        && !domain.contains('@')
}

fn is_url(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.chars().any(char::is_whitespace))
}

/// What cross-checks need to know of a purpose, kept even when the purpose has other errors,
/// so one mistake is reported once rather than again by every check that refers to it.
#[derive(Debug, Clone)]
struct PurposeFacts {
    id: String,
    basis: Option<LawfulBasis>,
    consent: Option<ConsentMode>,
    categories: Vec<String>,
}

impl PurposeFacts {
    fn collects(&self, category: &str) -> bool {
        self.categories
            .iter()
            .any(|c| taxonomy::covers(c, category) || taxonomy::covers(category, c))
    }
}

struct Validator<'s> {
    source: &'s Source,
    index: SpanIndex,
    diagnostics: Vec<Diagnostic>,
}

impl Validator<'_> {
    // ---- reporting -------------------------------------------------------------------------

    fn report(
        &mut self,
        severity: Severity,
        code: &'static str,
        path: &Path,
        on_key: bool,
        message: String,
        help: Option<String>,
    ) {
        let span = if on_key {
            self.index.key(path)
        } else {
            self.index.value(path)
        };
        let mut d = Diagnostic::new(severity, code, message, self.source, span).with_path(path);
        d.help = help;
        self.diagnostics.push(d);
    }

    fn error(&mut self, code: &'static str, path: &Path, message: String, help: Option<String>) {
        self.report(Severity::Error, code, path, false, message, help);
    }

    fn warn(&mut self, code: &'static str, path: &Path, message: String, help: Option<String>) {
        self.report(Severity::Warning, code, path, false, message, help);
    }

    fn unknown_key(&mut self, path: &Path) {
        let Some(Seg::Key(key)) = path.segments().last() else {
            return;
        };
        let table = path.parent().unwrap_or_default();
        let known = known_keys(&table);
        let help = match suggest::nearest(key, known.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None if known.is_empty() => "remove it".to_owned(),
            None => format!(
                "the keys of {} are: {}",
                table_name(&table),
                known.join(", ")
            ),
        };
        let message = format!("unknown key `{key}` in {}", table_name(&table));
        self.report(
            Severity::Error,
            "unknown-key",
            path,
            true,
            message,
            Some(help),
        );
    }

    // ---- reading values ----------------------------------------------------------------------

    /// A required, non-empty string.
    fn required(
        &mut self,
        value: Option<&String>,
        table: &Path,
        field: &str,
        help: &str,
    ) -> Option<String> {
        match value.map(|v| v.trim()).filter(|v| !v.is_empty()) {
            Some(v) => Some(v.to_owned()),
            None => {
                let path = table.key(field);
                let message = if self.index.contains(&path) {
                    format!("`{field}` in {} is empty", table_name(table))
                } else {
                    format!("{} has no `{field}`", table_name(table))
                };
                self.report(
                    Severity::Error,
                    "missing-field",
                    &path,
                    true,
                    message,
                    Some(help.to_owned()),
                );
                None
            }
        }
    }

    /// An optional string: trimmed, empty treated as absent.
    fn optional(value: Option<&String>) -> Option<String> {
        value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn choice<T: Copy>(
        &mut self,
        text: &str,
        path: &Path,
        what: &str,
        all: &[(T, &str)],
    ) -> Option<T> {
        let wanted = text.trim().to_lowercase().replace(['_', ' '], "-");
        if let Some((value, _)) = all.iter().find(|(_, t)| *t == wanted) {
            return Some(*value);
        }
        let help = match suggest::nearest(&wanted, all.iter().map(|(_, t)| *t)) {
            Some(s) => format!("did you mean \"{s}\"? A {what} is one of {}", choices(all)),
            None => format!("a {what} is one of {}", choices(all)),
        };
        self.error(
            "unknown-value",
            path,
            format!("`{text}` is not a {what}"),
            Some(help),
        );
        None
    }

    fn id(&mut self, value: Option<&String>, table: &Path, what: &str) -> Option<String> {
        let id = self.required(
            value,
            table,
            "id",
            &format!("give the {what} a short stable identifier, e.g. `id = \"newsletter\"`"),
        )?;
        if !is_id(&id) {
            self.error(
                "bad-id",
                &table.key("id"),
                format!("`{id}` is not a valid {what} id"),
                Some("use lower-case letters, digits, `-` and `_`, starting with a letter or digit, e.g. \"account-login\"".to_owned()),
            );
            return None;
        }
        Some(id)
    }

    fn duration(&mut self, text: &str, path: &Path) -> Option<Duration> {
        match text.parse::<Duration>() {
            Ok(d) => Some(d),
            Err(e) => {
                self.error("bad-duration", path, e.message, Some(e.help.to_owned()));
                None
            }
        }
    }

    fn lifetime(&mut self, text: &str, path: &Path) -> Option<Lifetime> {
        match text.parse::<Lifetime>() {
            Ok(l) => Some(l),
            Err(e) => {
                self.error("bad-duration", path, e.message, Some(e.help.to_owned()));
                None
            }
        }
    }

    fn retention(&mut self, text: &str, path: &Path) -> Option<Retention> {
        match text.parse::<Retention>() {
            Ok(r) => Some(r),
            Err(e) => {
                let code = match e.kind {
                    RetentionErrorKind::IndefiniteWithoutReason => "indefinite-without-reason",
                    RetentionErrorKind::UnknownEvent | RetentionErrorKind::BadPeriod => {
                        "bad-retention"
                    }
                };
                self.error(code, path, e.message, Some(e.help));
                None
            }
        }
    }

    fn date(&mut self, value: &toml::Value, path: &Path) -> Option<Date> {
        let parsed = match value {
            toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
                dt.date.and_then(|d| {
                    time::Month::try_from(d.month)
                        .ok()
                        .and_then(|m| Date::from_calendar_date(i32::from(d.year), m, d.day).ok())
                })
            }
            toml::Value::String(s) => Date::parse(
                s.trim(),
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                "bad-date",
                path,
                "this is not a date".to_owned(),
                Some("write a date as YYYY-MM-DD, e.g. 2026-01-15".to_owned()),
            );
        }
        parsed
    }

    fn country(&mut self, text: &str, path: &Path) -> Option<String> {
        let code = text.trim().to_uppercase();
        if country::is_code(&code) {
            return Some(code);
        }
        self.error(
            "unknown-country",
            path,
            format!("`{text}` is not an ISO 3166-1 country code"),
            Some("use the two-letter code, e.g. \"CH\" for Switzerland, \"US\" for the United States, \"DE\" for Germany".to_owned()),
        );
        None
    }

    fn email(&mut self, value: Option<&String>, path: &Path) -> Option<String> {
        let email = Self::optional(value)?;
        if is_email(&email) {
            return Some(email);
        }
        self.error(
            "bad-email",
            path,
            "this is not an e-mail address".to_owned(),
            Some("write a plain address such as \"privacy@example.com\"".to_owned()),
        );
        None
    }

    fn url(&mut self, value: Option<&String>, path: &Path) -> Option<String> {
        let url = Self::optional(value)?;
        if is_url(&url) {
            return Some(url);
        }
        self.error(
            "bad-url",
            path,
            "this is not a web address".to_owned(),
            Some("write a full address starting with https://".to_owned()),
        );
        None
    }

    /// An e-mail address or a web address (contacts, Art. 19 endpoints).
    fn contact_point(&mut self, value: Option<&String>, path: &Path) -> Option<String> {
        let text = Self::optional(value)?;
        if is_email(&text) || is_url(&text) {
            return Some(text);
        }
        self.error(
            "bad-contact",
            path,
            "this is neither an e-mail address nor a web address".to_owned(),
            Some(
                "write e.g. \"privacy@example.com\" or \"https://example.com/privacy-requests\""
                    .to_owned(),
            ),
        );
        None
    }

    /// A taxonomy key; returns the current key (deprecated keys are replaced, with a warning).
    fn term(&mut self, taxonomy: &Taxonomy, kind: Kind, key: &str, path: &Path) -> Option<String> {
        match taxonomy.lookup(kind, key) {
            Lookup::Known(term) => Some(term.key.clone()),
            Lookup::Deprecated { replaced_by } => {
                self.warn(
                    "deprecated-key",
                    path,
                    format!("`{key}` is a deprecated fideslang {}", kind.noun()),
                    Some(format!("use `{replaced_by}`")),
                );
                Some(replaced_by.to_owned())
            }
            Lookup::Unknown { suggestion } => {
                let code = match kind {
                    Kind::Category => "unknown-category",
                    Kind::Use => "unknown-use",
                    Kind::Subject => "unknown-subject",
                };
                let help = match suggestion {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "see docs/taxonomy.md for the {}s, or add your own under [[taxonomy.{}]]",
                        kind.noun(),
                        match kind {
                            Kind::Category => "categories",
                            Kind::Use => "uses",
                            Kind::Subject => "subjects",
                        }
                    ),
                };
                self.error(
                    code,
                    path,
                    format!("unknown {} `{key}`", kind.noun()),
                    Some(help),
                );
                None
            }
        }
    }

    fn terms(
        &mut self,
        taxonomy: &Taxonomy,
        kind: Kind,
        keys: &[String],
        path: &Path,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            if let Some(k) = self.term(taxonomy, kind, key.trim(), &path.index(i))
                && !out.contains(&k)
            {
                out.push(k);
            }
        }
        out
    }

    fn unique(&mut self, seen: &mut BTreeMap<String, Path>, id: &str, path: &Path, what: &str) {
        if let Some(first) = seen.get(id) {
            let first = self
                .index
                .value(first)
                .map(|s| self.source.position(s.start).line);
            self.error(
                "duplicate-id",
                path,
                format!("{what} `{id}` is declared twice"),
                Some(match first {
                    Some(line) => format!("the first is on line {line}; rename or remove one"),
                    None => "rename or remove one".to_owned(),
                }),
            );
        } else {
            seen.insert(id.to_owned(), path.clone());
        }
    }

    // ---- the sections -------------------------------------------------------------------------

    fn declaration(&mut self, raw: &RawDeclaration) -> Option<Declaration> {
        let taxonomy = self.taxonomy(raw.taxonomy.as_ref());
        let controller = self.controller(raw.controller.as_ref());
        let processors = self.processors(&raw.processors, &taxonomy);
        let processor_ids: Vec<String> = processors.iter().map(|p| p.id.clone()).collect();
        let home = controller.as_ref().map(|c| c.country.clone());
        let (mut purposes, facts) =
            self.purposes(&raw.purposes, &taxonomy, &processor_ids, home.as_deref());
        let signals = Signals {
            gpc: raw.signals.as_ref().and_then(|s| s.gpc).unwrap_or(true),
            dnt: raw.signals.as_ref().and_then(|s| s.dnt).unwrap_or(false),
        };
        let cookies = self.cookies(&raw.cookies, &facts, &processor_ids);
        let embeds = self.embeds(&raw.embeds, &facts);
        let rights = self.rights(raw.rights.as_ref(), &taxonomy, &facts, controller.as_ref());
        let breach = self.breach(raw.breach.as_ref());
        let policy = self.policy(raw.policy.as_ref());
        let security = self.security(raw.security.as_ref());
        let datasets = self.datasets(&raw.datasets);
        let records = self.records(raw.retention.as_ref(), &purposes, !datasets.is_empty());
        let aggregates = self.aggregates(raw.aggregates.as_ref());
        let centre = self.centre(raw.centre.as_ref(), controller.as_ref());

        if let Some(controller) = &controller {
            self.transfers(&purposes, &processors, controller);
        }
        self.sale_and_share(&purposes, signals);
        self.unused_processors(raw, &processors);
        self.compatibility(&raw.purposes, &mut purposes);
        let mut processors = processors;
        fill_recipient_categories(&mut processors, &purposes);

        Some(Declaration {
            policy: policy?,
            controller: controller?,
            taxonomy,
            purposes,
            processors,
            cookies,
            embeds,
            rights: rights?,
            breach,
            signals,
            security,
            datasets,
            records,
            aggregates,
            centre,
            warnings: Vec::new(),
        })
    }

    fn centre(&mut self, raw: Option<&RawCentre>, controller: Option<&Controller>) -> Centre {
        let mut centre = Centre::named(controller.map_or("", |c| c.name.as_str()));
        let Some(raw) = raw else { return centre };
        let at = Path::root().key("centre");
        if let Some(name) = raw.name.as_ref().map(|n| n.trim()) {
            if name.is_empty() || name.chars().count() > 80 {
                self.error(
                    "bad-centre",
                    &at.key("name"),
                    "the centre's name must be 1 to 80 characters".to_owned(),
                    Some("leave `name` out to show the controller's name".to_owned()),
                );
            } else {
                centre.name = name.to_owned();
            }
        }
        if let Some(accent) = &raw.accent {
            match crate::centre::contrast(accent, "#ffffff") {
                None => self.error(
                    "bad-centre",
                    &at.key("accent"),
                    format!("`{accent}` is not a colour Steward reads"),
                    Some("write it as six hex digits, like accent = \"#0b57a4\"".to_owned()),
                ),
                Some(ratio) if ratio < 4.5 => self.error(
                    "low-contrast",
                    &at.key("accent"),
                    format!(
                        "`{accent}` on white has a contrast of {ratio:.1}:1; links and buttons need 4.5:1 to be readable (WCAG 2.2, 1.4.3)"
                    ),
                    Some("choose a darker colour (the default #0b57a4 has 6.9:1)".to_owned()),
                ),
                Some(_) => centre.accent = accent.to_ascii_lowercase(),
            }
        }
        if let Some(logo) = &raw.logo {
            let lower = logo.to_ascii_lowercase();
            let local = !logo.contains("://") && !logo.starts_with("//");
            if !local || !(lower.ends_with(".svg") || lower.ends_with(".png")) {
                self.error(
                    "bad-logo",
                    &at.key("logo"),
                    format!("`{logo}` is not a logo Steward can serve: give the path of an SVG or PNG file, relative to the declaration"),
                    Some("nothing is loaded from another site: copy the file beside privacy.toml, e.g. logo = \"logo.svg\"".to_owned()),
                );
            } else {
                centre.logo = Some(logo.clone());
            }
        }
        let keys = crate::centre::keys();
        for (lang, strings) in &raw.strings {
            for key in strings.keys() {
                if !keys.contains(key) {
                    let help = suggest::nearest(key, keys.iter().map(String::as_str)).map(|k| {
                        format!("did you mean \"{k}\"? (the keys are in Steward's centre/en.toml)")
                    });
                    self.error(
                        "unknown-string",
                        &at.key("strings").key(lang).key(key),
                        format!("the privacy centre has no string `{key}`"),
                        help,
                    );
                }
            }
        }
        centre.strings = raw.strings.clone();
        if let Some(languages) = &raw.languages {
            let mut offered = Vec::new();
            for (i, lang) in languages.iter().enumerate() {
                let given = raw.strings.get(lang).map_or(0, BTreeMap::len);
                if crate::centre::is_shipped(lang) || given == keys.len() {
                    offered.push(lang.clone());
                } else {
                    self.error(
                        "no-strings",
                        &at.key("languages").index(i),
                        format!(
                            "the privacy centre does not speak `{lang}`: Steward ships en, de and fr, and [centre.strings.{lang}] gives {given} of its {} strings",
                            keys.len()
                        ),
                        Some(format!("give every string under [centre.strings.{lang}] (copy centre/en.toml), or leave `{lang}` out")),
                    );
                }
            }
            if languages.is_empty() {
                self.error(
                    "no-strings",
                    &at.key("languages"),
                    "the privacy centre needs at least one language".to_owned(),
                    Some(
                        "write languages = [\"en\"] or leave `languages` out for en, de and fr"
                            .to_owned(),
                    ),
                );
            } else {
                centre.languages = offered;
            }
        }
        centre
    }

    fn taxonomy(&mut self, raw: Option<&RawTaxonomy>) -> Taxonomy {
        let mut taxonomy = Taxonomy::standard().clone();
        let Some(raw) = raw else { return taxonomy };
        let base = Path::root().key("taxonomy");
        for (kind, field, terms) in [
            (Kind::Category, "categories", &raw.categories),
            (Kind::Use, "uses", &raw.uses),
            (Kind::Subject, "subjects", &raw.subjects),
        ] {
            for (i, term) in terms.iter().enumerate() {
                let at = base.key(field).index(i);
                let Some(key) = self.required(
                    term.key.as_ref(),
                    &at,
                    "key",
                    "give the new key under an existing parent, e.g. `key = \"user.content.public.comment\"`",
                ) else {
                    continue;
                };
                let name = self
                    .required(
                        term.name.as_ref(),
                        &at,
                        "name",
                        "give the key a short human name, e.g. `name = \"Comment\"`",
                    )
                    .unwrap_or_default();
                let description = Self::optional(term.description.as_ref()).unwrap_or_default();
                if let Err(e) = taxonomy.extend(kind, &key, &name, &description) {
                    let help = match &e {
                        taxonomy::ExtendError::Exists(_) => {
                            "it is already defined; remove this entry".to_owned()
                        }
                        taxonomy::ExtendError::NoParent { parent, .. } => {
                            match suggest::nearest(parent, taxonomy.keys(kind)) {
                                Some(s) => format!("did you mean to extend `{s}`?"),
                                None => "extend a key listed in docs/taxonomy.md".to_owned(),
                            }
                        }
                        taxonomy::ExtendError::Root(_) => {
                            "prefix it with an existing key such as `user.` or `essential.`"
                                .to_owned()
                        }
                    };
                    self.error(
                        "bad-taxonomy-key",
                        &at.key("key"),
                        e.to_string(),
                        Some(help),
                    );
                }
            }
        }
        taxonomy
    }

    fn controller(&mut self, raw: Option<&RawController>) -> Option<Controller> {
        let at = Path::root().key("controller");
        let Some(raw) = raw else {
            self.error(
                "missing-field",
                &Path::root(),
                "the declaration has no [controller]".to_owned(),
                Some(
                    "add a [controller] table with at least `name`, `country` and `email`"
                        .to_owned(),
                ),
            );
            return None;
        };
        let name = self.required(
            raw.name.as_ref(),
            &at,
            "name",
            "who is responsible: `name = \"Example Ltd\"`",
        );
        let email = self.required(
            raw.email.as_ref(),
            &at,
            "email",
            "where people write about privacy: `email = \"privacy@example.com\"`",
        );
        let email = email.and_then(|e| self.email(Some(&e), &at.key("email")));
        let country = self
            .required(
                raw.country.as_ref(),
                &at,
                "country",
                "where the controller is established: `country = \"CH\"`",
            )
            .and_then(|c| self.country(&c, &at.key("country")));
        let website = self.url(raw.website.as_ref(), &at.key("website"));
        let mut data_location = Vec::new();
        for (i, c) in raw.data_location.iter().enumerate() {
            if let Some(c) = self.country(c, &at.key("data_location").index(i)) {
                data_location.push(c);
            }
        }
        let dpo = raw.dpo.as_ref().map(|c| self.contact(c, &at.key("dpo")));
        let representative = raw
            .representative
            .as_ref()
            .map(|c| self.contact(c, &at.key("representative")));
        let authority = match &raw.authority {
            Some(a) => self.authority(a, &at.key("authority")),
            None => {
                self.warn(
                    "no-authority",
                    &at,
                    "no supervisory authority is declared".to_owned(),
                    Some("add [controller.authority] with the authority's name and website: the notice must tell people where they can complain (GDPR Art. 13(2)(d))".to_owned()),
                );
                None
            }
        };
        Some(Controller {
            name: name?,
            legal_name: Self::optional(raw.legal_name.as_ref()),
            trade_names: raw
                .trade_names
                .iter()
                .map(|t| t.trim().to_owned())
                .collect(),
            address: Self::optional(raw.address.as_ref()),
            country: country?,
            email: email?,
            phone: Self::optional(raw.phone.as_ref()),
            website,
            data_location,
            dpo,
            representative,
            authority,
        })
    }

    fn contact(&mut self, raw: &RawContact, at: &Path) -> Contact {
        let email = self.email(raw.email.as_ref(), &at.key("email"));
        if email.is_none() && raw.address.is_none() && raw.phone.is_none() {
            self.error(
                "missing-field",
                at,
                format!("{} gives no way to reach them", table_name(at)),
                Some("add `email`, `phone` or `address`".to_owned()),
            );
        }
        Contact {
            name: Self::optional(raw.name.as_ref()),
            email,
            phone: Self::optional(raw.phone.as_ref()),
            address: Self::optional(raw.address.as_ref()),
        }
    }

    fn authority(&mut self, raw: &RawAuthority, at: &Path) -> Option<Authority> {
        let name = self.required(
            raw.name.as_ref(),
            at,
            "name",
            "e.g. `name = \"Federal Data Protection and Information Commissioner (FDPIC)\"`",
        )?;
        let country = raw
            .country
            .as_ref()
            .and_then(|c| self.country(c, &at.key("country")));
        Some(Authority {
            name,
            country,
            website: self.url(raw.website.as_ref(), &at.key("website")),
            email: self.email(raw.email.as_ref(), &at.key("email")),
            address: Self::optional(raw.address.as_ref()),
        })
    }

    fn processors(&mut self, raw: &[RawProcessor], taxonomy: &Taxonomy) -> Vec<Processor> {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        for (i, p) in raw.iter().enumerate() {
            let at = Path::root().key("processors").index(i);
            let Some(id) = self.id(p.id.as_ref(), &at, "processor") else {
                continue;
            };
            self.unique(&mut seen, &id, &at.key("id"), "processor");
            let name = self.required(
                p.name.as_ref(),
                &at,
                "name",
                "the name people know, e.g. `name = \"Mailchimp\"`",
            );
            let role = match &p.role {
                Some(r) => self.choice(r, &at.key("role"), "role", Role::ALL),
                None => Some(Role::Processor),
            };
            let country = p
                .country
                .as_ref()
                .and_then(|c| self.country(c, &at.key("country")));
            let safeguard = p
                .safeguard
                .as_ref()
                .and_then(|s| self.choice(s, &at.key("safeguard"), "safeguard", Safeguard::ALL));
            let categories = self.terms(
                taxonomy,
                Kind::Category,
                &p.categories,
                &at.key("categories"),
            );
            let privacy_policy = self.url(p.privacy_policy.as_ref(), &at.key("privacy_policy"));
            let opt_out = self.url(p.opt_out.as_ref(), &at.key("opt_out"));
            let contact = self.contact_point(p.contact.as_ref(), &at.key("contact"));
            let (Some(name), Some(role)) = (name, role) else {
                continue;
            };
            if matches!(role, Role::Processor | Role::SubProcessor) {
                if p.country.is_none() {
                    self.warn(
                        "processor-without-country",
                        &at.key("id"),
                        format!("processor `{id}` has no country"),
                        Some("add `country = \"US\"` (where it processes the data): the notice and the record of processing must name third-country transfers".to_owned()),
                    );
                }
                if p.dpa != Some(true) {
                    self.warn(
                        "processor-without-dpa",
                        &at.key(if p.dpa.is_some() { "dpa" } else { "id" }),
                        format!("processor `{id}` has no data processing agreement"),
                        Some("GDPR Art. 28(3) requires a contract with every processor; sign one and set `dpa = true`".to_owned()),
                    );
                }
            }
            out.push(Processor {
                id,
                name,
                role,
                service: Self::optional(p.service.as_ref()),
                categories,
                categories_from_purposes: false,
                country,
                safeguard,
                dpa: p.dpa,
                privacy_policy,
                opt_out,
                contact,
            });
        }
        out
    }

    #[allow(clippy::too_many_lines)]
    fn purposes(
        &mut self,
        raw: &[RawPurpose],
        taxonomy: &Taxonomy,
        processors: &[String],
        home: Option<&str>,
    ) -> (Vec<Purpose>, Vec<PurposeFacts>) {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        let mut facts = Vec::new();
        if raw.is_empty() {
            self.warn(
                "no-purposes",
                &Path::root(),
                "the declaration has no [[purposes]]".to_owned(),
                Some("declare each processing activity as a [[purposes]] table: why data is processed, on what basis, for how long".to_owned()),
            );
        }
        for (i, p) in raw.iter().enumerate() {
            let at = Path::root().key("purposes").index(i);
            let Some(id) = self.id(p.id.as_ref(), &at, "purpose") else {
                continue;
            };
            self.unique(&mut seen, &id, &at.key("id"), "purpose");
            let name = self.required(
                p.name.as_ref(),
                &at,
                "name",
                "a short human name, e.g. `name = \"Newsletter\"`",
            );
            let data_use = self
                .required(
                    p.data_use.as_ref(),
                    &at,
                    "use",
                    "the data use, e.g. `use = \"marketing.communications.email\"`",
                )
                .and_then(|u| self.term(taxonomy, Kind::Use, &u, &at.key("use")));
            let basis = match &p.basis {
                Some(b) => self.choice(b, &at.key("basis"), "lawful basis", LawfulBasis::ALL),
                None => {
                    self.report(
                        Severity::Error,
                        "no-lawful-basis",
                        &at.key("id"),
                        true,
                        format!("purpose `{id}` has no lawful basis"),
                        Some(format!(
                            "add `basis = \"…\"`, one of {} (GDPR Art. 6(1))",
                            choices(LawfulBasis::ALL)
                        )),
                    );
                    None
                }
            };
            let consent = p
                .consent
                .as_ref()
                .and_then(|c| self.choice(c, &at.key("consent"), "consent mode", ConsentMode::ALL));
            let sale = p.sale.unwrap_or(false);
            let share = p.share.unwrap_or(false);
            match basis {
                Some(LawfulBasis::Consent) if p.consent.is_none() => self.report(
                    Severity::Error,
                    "consent-without-mode",
                    &at.key("basis"),
                    false,
                    format!("purpose `{id}` rests on consent but does not say how consent is asked"),
                    Some("add `consent = \"opt-in\"` (or \"double-opt-in\" for e-mail lists, \"opt-out\" where the law allows it)".to_owned()),
                ),
                Some(LawfulBasis::Contract | LawfulBasis::LegalObligation | LawfulBasis::VitalInterest | LawfulBasis::PublicTask)
                    if consent.is_some() && !(sale || share) =>
                {
                    self.warn(
                        "consent-mode-ignored",
                        &at.key("consent"),
                        format!("purpose `{id}` does not rest on consent, so its consent mode is ignored"),
                        Some("remove `consent`, or set `basis = \"consent\"` if people really choose".to_owned()),
                    );
                }
                Some(LawfulBasis::LegitimateInterest) if p.legitimate_interest.is_none() => self.warn(
                    "legitimate-interest-unstated",
                    &at.key("basis"),
                    format!("purpose `{id}` rests on legitimate interest but does not say which"),
                    Some("add `legitimate_interest = \"…\"`: the notice must state the interest pursued (GDPR Art. 13(1)(d))".to_owned()),
                ),
                _ => {}
            }

            let categories = self.terms(
                taxonomy,
                Kind::Category,
                &p.categories,
                &at.key("categories"),
            );
            if p.categories.is_empty() {
                self.warn(
                    "no-categories",
                    &at.key("id"),
                    format!("purpose `{id}` collects no categories of personal data"),
                    Some("list them: `categories = [\"user.contact.email\"]`".to_owned()),
                );
            }
            let subjects = self.terms(taxonomy, Kind::Subject, &p.subjects, &at.key("subjects"));
            if p.subjects.is_empty() {
                self.warn(
                    "no-subjects",
                    &at.key("id"),
                    format!("purpose `{id}` names no data subjects"),
                    Some("say whose data it is, e.g. `subjects = [\"customer\"]` (the record of processing needs it, Art. 30(1)(c))".to_owned()),
                );
            }
            let source = match p.source.as_deref().map(str::trim) {
                None | Some("provided") => DataSource::Provided,
                Some("observed") => DataSource::Observed,
                Some("derived") => DataSource::Derived,
                Some(other) if processors.iter().any(|x| x == other) => {
                    DataSource::ThirdParty(other.to_owned())
                }
                Some(other) => {
                    let help = match suggest::nearest(
                        other,
                        ["provided", "observed", "derived"]
                            .into_iter()
                            .chain(processors.iter().map(String::as_str)),
                    ) {
                        Some(s) => format!("did you mean \"{s}\"?"),
                        None => "write \"provided\" (the person gives it), \"observed\" (collected from their device or use), \"derived\" (inferred), or the id of a declared [[processors]] entry it comes from".to_owned(),
                    };
                    self.error(
                        "unknown-source",
                        &at.key("source"),
                        format!("`{other}` is not a known source"),
                        Some(help),
                    );
                    DataSource::Provided
                }
            };

            let retention = p
                .retention
                .as_ref()
                .and_then(|r| self.retention(r, &at.key("retention")));
            let mut retain = BTreeMap::new();
            for (key, text) in &p.retain {
                let path = at.key("retain").key(key);
                let Some(category) = self.term(taxonomy, Kind::Category, key, &path) else {
                    continue;
                };
                if !categories
                    .iter()
                    .any(|c| taxonomy::covers(c, &category) || taxonomy::covers(&category, c))
                {
                    self.report(
                        Severity::Error,
                        "retain-not-collected",
                        &path,
                        true,
                        format!("purpose `{id}` has a retention rule for `{category}`, which it does not collect"),
                        Some(format!("add `{category}` to the purpose's categories, or remove the rule")),
                    );
                }
                if let Some(r) = self.retention(text, &path) {
                    retain.insert(category, r);
                }
            }
            let stored = p.stored.unwrap_or(true);
            for (c_index, category) in p.categories.iter().enumerate() {
                let category = category.trim();
                let covered = p.retention.is_some()
                    || retain.keys().any(|rule| taxonomy::covers(rule, category));
                if !covered {
                    self.error(
                        "no-retention",
                        &at.key("categories").index(c_index),
                        format!("purpose `{id}` collects `{category}` but says nothing about how long it is kept"),
                        Some(format!("add `retention = \"…\"` to the purpose (e.g. \"2 years after last activity\"), or a rule for this category: `retain.\"{category}\" = \"…\"`")),
                    );
                }
                if stored && taxonomy::covers("user.financial.credit_card", category) {
                    self.error(
                        "card-data-stored",
                        &at.key("categories").index(c_index),
                        format!("purpose `{id}` would store payment-card data in Steward"),
                        Some("card numbers belong only with a PCI DSS-compliant payment processor: set `stored = false` on this purpose and name the processor in `recipients`".to_owned()),
                    );
                }
            }

            let mut recipients = Vec::new();
            for (r_index, r) in p.recipients.iter().enumerate() {
                let r = r.trim();
                if processors.iter().any(|x| x == r) {
                    recipients.push(r.to_owned());
                } else {
                    let help = match suggest::nearest(r, processors.iter().map(String::as_str)) {
                        Some(s) => format!(
                            "did you mean `{s}`? Otherwise declare it as a [[processors]] entry with `id = \"{r}\"`"
                        ),
                        None => format!(
                            "declare it as a [[processors]] entry with `id = \"{r}\"`, its name, country and role"
                        ),
                    };
                    self.error(
                        "unknown-recipient",
                        &at.key("recipients").index(r_index),
                        format!("recipient `{r}` is not a declared processor"),
                        Some(help),
                    );
                }
            }

            let mut transfers = Vec::new();
            for (t_index, t) in p.transfers.iter().enumerate() {
                let tat = at.key("transfers").index(t_index);
                let Some(country) = self
                    .required(
                        t.country.as_ref(),
                        &tat,
                        "country",
                        "where the data goes: `country = \"US\"`",
                    )
                    .and_then(|c| self.country(&c, &tat.key("country")))
                else {
                    continue;
                };
                if let Some(r) = &t.recipient
                    && !processors.iter().any(|x| x == r.trim())
                {
                    self.error(
                        "unknown-recipient",
                        &tat.key("recipient"),
                        format!("recipient `{r}` is not a declared processor"),
                        Some("name the id of a [[processors]] entry".to_owned()),
                    );
                }
                if let Some(home) = home
                    && country::same_zone(home, &country)
                {
                    self.warn(
                        "not-a-transfer",
                        &tat.key("country"),
                        format!(
                            "{} is inside {}'s zone, so this is not a transfer",
                            sentence_start(&country::in_sentence(&country)),
                            country::in_sentence(home)
                        ),
                        Some("remove this [[purposes.transfers]] entry".to_owned()),
                    );
                }
                let safeguard = match &t.safeguard {
                    Some(s) => self.choice(s, &tat.key("safeguard"), "safeguard", Safeguard::ALL),
                    None => {
                        if home.is_some_and(|h| !country::same_zone(h, &country)) {
                            self.error(
                                "transfer-without-safeguard",
                                &tat.key("country"),
                                format!(
                                    "the transfer to {} has no safeguard",
                                    country::in_sentence(&country)
                                ),
                                Some(format!(
                                    "add `safeguard = \"…\"`, one of {}",
                                    choices(Safeguard::ALL)
                                )),
                            );
                        }
                        None
                    }
                };
                let Some(safeguard) = safeguard else { continue };
                if safeguard == Safeguard::Adequacy
                    && home.is_some_and(country::in_eea)
                    && !country::eu_adequate(&country)
                {
                    self.warn(
                        "no-adequacy-decision",
                        &tat.key("safeguard"),
                        format!("{} has no EU adequacy decision that Steward knows of", sentence_start(&country::in_sentence(&country))),
                        Some("name the safeguard actually in place, e.g. \"scc\", or \"dpf\" for a certified US company".to_owned()),
                    );
                }
                transfers.push(Transfer {
                    country,
                    safeguard,
                    recipient: Self::optional(t.recipient.as_ref()),
                });
            }

            let legal_hold = match (p.legal_hold.unwrap_or(false), basis) {
                (false, _) => {
                    if p.hold_reason.is_some() {
                        self.warn(
                            "hold-reason-without-hold",
                            &at.key("hold_reason"),
                            format!("purpose `{id}` gives a hold reason but has no legal hold"),
                            Some("set `legal_hold = true`, or remove `hold_reason`".to_owned()),
                        );
                    }
                    None
                }
                (true, Some(LawfulBasis::Consent)) => {
                    self.error(
                        "hold-on-consent",
                        &at.key("legal_hold"),
                        format!("purpose `{id}` rests on consent, so it cannot survive an erasure request"),
                        Some("a legal hold keeps data the law requires: use `basis = \"legal-obligation\"` for such data (e.g. invoices), or remove `legal_hold`".to_owned()),
                    );
                    None
                }
                (true, basis) => {
                    let reason = match (Self::optional(p.hold_reason.as_ref()), basis) {
                        (Some(r), _) => r,
                        (None, Some(LawfulBasis::LegalObligation)) => format!(
                            "kept because the law requires it ({})",
                            name.as_deref().unwrap_or(&id)
                        ),
                        (None, _) => {
                            self.warn(
                                "hold-without-reason",
                                &at.key("legal_hold"),
                                format!("purpose `{id}` keeps data through erasure without saying why"),
                                Some("add `hold_reason = \"…\"`: the person is told this reason when their erasure request leaves the data in place".to_owned()),
                            );
                            format!("kept for {}", name.as_deref().unwrap_or(&id))
                        }
                    };
                    if retention.as_ref().is_some_and(Retention::is_indefinite) {
                        self.warn(
                            "hold-never-ends",
                            &at.key("retention"),
                            format!("purpose `{id}` holds data through erasure with no end date"),
                            Some("a legal hold should end when the legal duty does, e.g. \"10 years after collection\"".to_owned()),
                        );
                    }
                    Some(LegalHold { reason })
                }
            };

            facts.push(PurposeFacts {
                id: id.clone(),
                basis,
                consent,
                categories: categories.clone(),
            });
            let (Some(name), Some(data_use), Some(basis)) = (name, data_use, basis) else {
                continue;
            };
            out.push(Purpose {
                id,
                name,
                description: Self::optional(p.description.as_ref()),
                data_use,
                basis,
                legitimate_interest: Self::optional(p.legitimate_interest.as_ref()),
                consent,
                categories,
                subjects,
                source,
                retention,
                retain,
                recipients,
                transfers,
                sale,
                share,
                legal_hold,
                stored,
                automated_decisions: Self::optional(p.automated_decisions.as_ref()),
                required: p.required,
                compatible_with: Vec::new(),
            });
        }
        (out, facts)
    }

    fn purpose_ref(&mut self, purposes: &[PurposeFacts], id: &str, path: &Path) -> Option<usize> {
        let found = purposes.iter().position(|p| p.id == id);
        if found.is_none() {
            let help = match suggest::nearest(id, purposes.iter().map(|p| p.id.as_str())) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "name the id of a declared [[purposes]] entry".to_owned(),
            };
            self.error(
                "unknown-purpose",
                path,
                format!("`{id}` is not a declared purpose"),
                Some(help),
            );
        }
        found
    }

    fn cookies(
        &mut self,
        raw: &[RawCookie],
        purposes: &[PurposeFacts],
        processors: &[String],
    ) -> Vec<Cookie> {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        for (i, c) in raw.iter().enumerate() {
            let at = Path::root().key("cookies").index(i);
            let Some(name) = self.required(
                c.name.as_ref(),
                &at,
                "name",
                "the cookie's name, or a pattern with `*`: `name = \"wordpress_logged_in_*\"`",
            ) else {
                continue;
            };
            self.unique(&mut seen, &name, &at.key("name"), "cookie");
            let category = match &c.category {
                Some(cat) => self.choice(
                    cat,
                    &at.key("category"),
                    "cookie category",
                    CookieCategory::ALL,
                ),
                None => {
                    self.error(
                        "missing-field",
                        &at.key("name"),
                        format!("cookie `{name}` has no category"),
                        Some(format!(
                            "add `category = \"…\"`, one of {}",
                            choices(CookieCategory::ALL)
                        )),
                    );
                    None
                }
            };
            let provider = match c.provider.as_deref().map(str::trim) {
                None | Some("first-party" | "self") => None,
                Some(p) if processors.iter().any(|x| x == p) => Some(p.to_owned()),
                Some(p) => {
                    let help = match suggest::nearest(p, processors.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "write \"first-party\" for the site's own cookies, or declare a [[processors]] entry with `id = \"{p}\"`"
                        ),
                    };
                    self.error(
                        "unknown-provider",
                        &at.key("provider"),
                        format!("cookie provider `{p}` is not a declared processor"),
                        Some(help),
                    );
                    None
                }
            };
            let lifetime = match &c.lifetime {
                Some(l) => self.lifetime(l, &at.key("lifetime")),
                None => {
                    self.error(
                        "cookie-without-lifetime",
                        &at.key("name"),
                        format!("cookie `{name}` has no lifetime"),
                        Some("add `lifetime = \"…\"`, e.g. \"session\", \"2 days\", \"1 year\": the notice must say how long each cookie lasts".to_owned()),
                    );
                    None
                }
            };
            let purpose = c.purpose.as_deref().map(str::trim);
            let purpose_index =
                purpose.and_then(|p| self.purpose_ref(purposes, p, &at.key("purpose")));
            if let Some(category) = category
                && category != CookieCategory::Necessary
            {
                match purpose_index.map(|i| &purposes[i]) {
                    None if purpose.is_none() => self.error(
                        "cookie-without-consent",
                        &at.key("category"),
                        format!("{} cookie `{name}` is not tied to a consent purpose", category.as_str()),
                        Some("add `purpose = \"<id>\"` naming a purpose with `basis = \"consent\"`: non-necessary cookies need prior consent (ePrivacy Art. 5(3)), and consent.js blocks them until it is given".to_owned()),
                    ),
                    Some(p) if p.basis.is_some_and(|b| b != LawfulBasis::Consent) => self.error(
                        "cookie-without-consent",
                        &at.key("purpose"),
                        format!("{} cookie `{name}` is tied to purpose `{}`, which does not rest on consent", category.as_str(), p.id),
                        Some("tie it to a purpose with `basis = \"consent\"`, or set `category = \"necessary\"` if the site cannot work without it".to_owned()),
                    ),
                    Some(p) if p.consent == Some(ConsentMode::OptOut) => self.warn(
                        "cookie-opt-out",
                        &at.key("purpose"),
                        format!("{} cookie `{name}` is set before consent (purpose `{}` is opt-out)", category.as_str(), p.id),
                        Some("in the EU and UK, non-necessary cookies need prior opt-in consent; use `consent = \"opt-in\"`".to_owned()),
                    ),
                    _ => {}
                }
            }
            let extended = match &c.extended {
                Some(e) => {
                    let eat = at.key("extended");
                    let lifetime = self
                        .required(
                            e.lifetime.as_ref(),
                            &eat,
                            "lifetime",
                            "e.g. `lifetime = \"14 days\"`",
                        )
                        .and_then(|l| self.lifetime(&l, &eat.key("lifetime")));
                    let when = self.required(
                        e.when.as_ref(),
                        &eat,
                        "when",
                        "e.g. `when = \"you select “Remember Me”\"`",
                    );
                    lifetime
                        .zip(when)
                        .map(|(lifetime, when)| ExtendedLifetime { lifetime, when })
                }
                None => None,
            };
            let (Some(category), Some(lifetime)) = (category, lifetime) else {
                continue;
            };
            out.push(Cookie {
                name,
                provider,
                category,
                purpose: purpose
                    .filter(|_| purpose_index.is_some())
                    .map(str::to_owned),
                description: Self::optional(c.description.as_ref()),
                lifetime,
                extended,
                personal_data: c.personal_data.unwrap_or(true),
            });
        }
        out
    }

    fn embeds(&mut self, raw: &[RawEmbed], purposes: &[PurposeFacts]) -> Vec<Embed> {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        for (i, e) in raw.iter().enumerate() {
            let at = Path::root().key("embeds").index(i);
            let Some(id) = self.id(e.id.as_ref(), &at, "embed") else {
                continue;
            };
            self.unique(&mut seen, &id, &at.key("id"), "embed");
            let name = self.required(
                e.name.as_ref(),
                &at,
                "name",
                "the provider, e.g. `name = \"YouTube\"`",
            );
            let purpose = match e.purpose.as_deref().map(str::trim) {
                Some(p) => {
                    let found = self.purpose_ref(purposes, p, &at.key("purpose"));
                    if let Some(found) = found
                        && purposes[found]
                            .basis
                            .is_some_and(|b| b != LawfulBasis::Consent)
                    {
                        self.warn(
                            "embed-without-consent",
                            &at.key("purpose"),
                            format!("embedded content `{id}` is tied to purpose `{p}`, which does not rest on consent"),
                            Some("embedded content lets the provider track the visitor; tie it to a consent purpose so it loads only when allowed".to_owned()),
                        );
                    }
                    found.map(|_| p.to_owned())
                }
                None => {
                    self.warn(
                        "embed-without-consent",
                        &at.key("id"),
                        format!("embedded content `{id}` loads without consent"),
                        Some("add `purpose = \"<id>\"` naming a consent purpose: consent.js then loads it only once allowed".to_owned()),
                    );
                    None
                }
            };
            let privacy_policy = self.url(e.privacy_policy.as_ref(), &at.key("privacy_policy"));
            let Some(name) = name else { continue };
            out.push(Embed {
                id,
                name,
                content: Self::optional(e.content.as_ref()),
                privacy_policy,
                purpose,
            });
        }
        out
    }

    #[allow(clippy::too_many_lines)]
    fn rights(
        &mut self,
        raw: Option<&RawRights>,
        taxonomy: &Taxonomy,
        purposes: &[PurposeFacts],
        controller: Option<&Controller>,
    ) -> Option<Rights> {
        let at = Path::root().key("rights");
        let empty = RawRights::default();
        let r = raw.unwrap_or(&empty);
        let available = match &r.available {
            Some(list) => {
                let mut out = Vec::new();
                for (i, right) in list.iter().enumerate() {
                    if let Some(right) =
                        self.choice(right, &at.key("available").index(i), "right", Right::ALL)
                    {
                        out.push(right);
                    }
                }
                out
            }
            None => Right::ALL.iter().map(|(r, _)| *r).collect(),
        };
        let deadline = match &r.deadline {
            Some(d) => self.duration(d, &at.key("deadline")),
            None => {
                self.warn(
                    "no-deadline",
                    &at,
                    "no deadline for answering requests is declared; Steward uses 1 month".to_owned(),
                    Some("set `deadline = \"1 month\"` (GDPR), \"45 days\" (CCPA) or your own promise, e.g. \"7 business days\"".to_owned()),
                );
                Some(Duration::new(1, Unit::Month))
            }
        };
        let month = Duration::new(1, Unit::Month).approx_hours();
        if let (Some(d), Some(_)) = (deadline, &r.deadline)
            && d.approx_hours() > month
        {
            self.warn(
                "deadline-too-long",
                &at.key("deadline"),
                format!("a deadline of {d} is longer than the one month GDPR Art. 12(3) allows"),
                Some(
                    "answer within \"1 month\", and use `extension` for complex requests"
                        .to_owned(),
                ),
            );
        }
        let extension = r
            .extension
            .as_ref()
            .and_then(|e| self.duration(e, &at.key("extension")));
        if let Some(e) = extension
            && e.approx_hours() > Duration::new(2, Unit::Month).approx_hours()
        {
            self.warn(
                "extension-too-long",
                &at.key("extension"),
                format!("an extension of {e} is longer than the two further months GDPR Art. 12(3) allows"),
                Some("use `extension = \"2 months\"` at most (CCPA allows 45 days)".to_owned()),
            );
        }
        let acknowledge = r
            .acknowledge
            .as_ref()
            .and_then(|a| self.duration(a, &at.key("acknowledge")));
        let opt_out_deadline = match &r.opt_out_deadline {
            Some(d) => self.duration(d, &at.key("opt_out_deadline")),
            None => Some(Duration::new(15, Unit::BusinessDay)),
        };
        let mut holidays = Vec::new();
        for (i, h) in r.holidays.iter().enumerate() {
            if let Some(d) = self.date(h, &at.key("holidays").index(i)) {
                holidays.push(d);
            }
        }
        holidays.sort_unstable();
        let mut verification = Vec::new();
        for (i, v) in r.verification.iter().enumerate() {
            if let Some(v) = self.choice(
                v,
                &at.key("verification").index(i),
                "verification method",
                Verification::ALL,
            ) {
                verification.push(v);
            }
        }
        if verification.is_empty() {
            verification = vec![Verification::EmailLink, Verification::EmailCode];
        }
        let verification_expires = match &r.verification_expires {
            Some(d) => self.duration(d, &at.key("verification_expires")),
            None => Some(Duration::new(24, Unit::Hour)),
        };
        let unverified_expire = match &r.unverified_expire {
            Some(d) => self.duration(d, &at.key("unverified_expire")),
            None => Some(Duration::new(30, Unit::Day)),
        };

        let mut immutable = Vec::new();
        for (i, key) in r.immutable.iter().enumerate() {
            let path = at.key("immutable").index(i);
            let Some(category) = self.term(taxonomy, Kind::Category, key.trim(), &path) else {
                continue;
            };
            if !purposes.iter().any(|p| p.collects(&category)) {
                self.error(
                    "immutable-not-collected",
                    &path,
                    format!("`{category}` is declared immutable but no purpose collects it"),
                    Some(format!("add `{category}` to the categories of the purpose that collects it, or remove it from `immutable`")),
                );
            }
            immutable.push(category);
        }
        let mut languages = Vec::new();
        for (i, l) in r.languages.iter().enumerate() {
            let l = l.trim();
            let ok = (2..=3).contains(&l.split('-').next().map_or(0, str::len))
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if ok {
                languages.push(l.to_owned());
            } else {
                self.error(
                    "bad-language",
                    &at.key("languages").index(i),
                    format!("`{l}` is not a language tag"),
                    Some("use a BCP 47 tag such as \"en\", \"de\", \"fr-CH\"".to_owned()),
                );
            }
        }
        let mut export_formats = Vec::new();
        for (i, f) in r.export_formats.iter().enumerate() {
            if let Some(f) = self.choice(
                f,
                &at.key("export_formats").index(i),
                "export format",
                ExportFormat::ALL,
            ) {
                export_formats.push(f);
            }
        }
        if export_formats.is_empty() {
            export_formats = ExportFormat::ALL.iter().map(|(f, _)| *f).collect();
        }
        let contact = match r.contact.as_ref() {
            Some(_) => self.contact_point(r.contact.as_ref(), &at.key("contact")),
            None => controller.map(|c| c.email.clone()),
        };
        let url = self.url(r.url.as_ref(), &at.key("url"));
        Some(Rights {
            available,
            deadline: deadline?,
            extension,
            acknowledge,
            opt_out_deadline: opt_out_deadline?,
            holidays,
            verification,
            verification_expires: verification_expires?,
            unverified_expire: unverified_expire?,
            approval: r.approval.unwrap_or(false),
            notify_identity_change: r.notify_identity_change.unwrap_or(false),
            immutable,
            languages,
            contact: contact?,
            url,
            export_formats,
        })
    }

    fn breach(&mut self, raw: Option<&RawBreach>) -> Breach {
        let at = Path::root().key("breach");
        let empty = RawBreach::default();
        let b = raw.unwrap_or(&empty);
        let authority = b
            .authority
            .as_ref()
            .and_then(|c| self.clock(c, &at.key("authority"), BreachCondition::Risk));
        match &authority {
            None if b.authority.is_none() => self.warn(
                "no-authority-clock",
                &at,
                "no breach deadline for the supervisory authority is declared".to_owned(),
                Some(
                    "add [breach.authority] with `within = \"72 hours\"` (GDPR Art. 33)".to_owned(),
                ),
            ),
            Some(clock) if clock.within.approx_hours() > 72 => self.warn(
                "authority-clock-too-long",
                &at.key("authority").key("within"),
                format!(
                    "{} is longer than the 72 hours GDPR Art. 33 allows",
                    clock.within
                ),
                Some("use `within = \"72 hours\"` or less".to_owned()),
            ),
            _ => {}
        }
        let subjects = b
            .subjects
            .as_ref()
            .and_then(|c| self.clock(c, &at.key("subjects"), BreachCondition::HighRisk));
        Breach {
            authority,
            subjects,
            contact: self.contact_point(b.contact.as_ref(), &at.key("contact")),
            password_reset: self.url(b.password_reset.as_ref(), &at.key("password_reset")),
        }
    }

    fn aggregates(&mut self, raw: Option<&RawAggregates>) -> Aggregates {
        let at = Path::root().key("aggregates").key("k");
        match raw.and_then(|a| a.k) {
            None => Aggregates::default(),
            Some(k) if (2..=1_000_000).contains(&k) => Aggregates { k: k as u64 },
            Some(k) => {
                self.error(
                    "bad-k",
                    &at,
                    format!(
                        "k = {k} cannot protect anyone: a group of fewer than 2 people names them"
                    ),
                    Some("use k = 10 (the default) or more; never below 2".to_owned()),
                );
                Aggregates::default()
            }
        }
    }

    fn clock(
        &mut self,
        raw: &RawBreachClock,
        at: &Path,
        default: BreachCondition,
    ) -> Option<BreachClock> {
        let within = self
            .required(
                raw.within.as_ref(),
                at,
                "within",
                "the deadline from becoming aware, e.g. `within = \"72 hours\"`",
            )
            .and_then(|w| self.duration(&w, &at.key("within")));
        let mut channels = Vec::new();
        for (i, c) in raw.channels.iter().enumerate() {
            if let Some(c) = self.choice(c, &at.key("channels").index(i), "channel", Channel::ALL) {
                channels.push(c);
            }
        }
        if channels.is_empty() {
            channels.push(Channel::Email);
        }
        let when = match &raw.when {
            Some(w) => self.choice(w, &at.key("when"), "breach condition", BreachCondition::ALL),
            None => Some(default),
        };
        Some(BreachClock {
            within: within?,
            channels,
            when: when?,
        })
    }

    fn policy(&mut self, raw: Option<&RawPolicy>) -> Option<Policy> {
        let at = Path::root().key("policy");
        let Some(p) = raw else {
            self.error(
                "missing-field",
                &Path::root(),
                "the declaration has no [policy]".to_owned(),
                Some(
                    "add [policy] with `version = \"1.0\"` and `effective = 2026-01-01`".to_owned(),
                ),
            );
            return None;
        };
        let version = self.required(p.version.as_ref(), &at, "version", "e.g. `version = \"1.0\"`; raise it whenever the declaration changes what people are told");
        let effective = match &p.effective {
            Some(e) => self.date(e, &at.key("effective")),
            None => {
                self.warn(
                    "no-effective-date",
                    &at,
                    "the policy has no effective date".to_owned(),
                    Some("add `effective = 2026-01-01`: the notice shows it and consent records refer to it".to_owned()),
                );
                None
            }
        };
        let mut notify_changes = Vec::new();
        for (i, c) in p.notify_changes.iter().enumerate() {
            if let Some(c) = self.choice(
                c,
                &at.key("notify_changes").index(i),
                "channel",
                Channel::ALL,
            ) {
                notify_changes.push(c);
            }
        }
        let mut changelog = Vec::new();
        let mut seen = BTreeMap::new();
        for (i, c) in p.changelog.iter().enumerate() {
            let cat = at.key("changelog").index(i);
            let v = self.required(
                c.version.as_ref(),
                &cat,
                "version",
                "the version this entry describes, e.g. `version = \"1.1\"`",
            );
            if let Some(v) = &v {
                self.unique(&mut seen, v, &cat.key("version"), "changelog version");
            }
            let date = match &c.date {
                Some(d) => self.date(d, &cat.key("date")),
                None => {
                    self.required(
                        None,
                        &cat,
                        "date",
                        "when it was published, e.g. `date = 2026-01-01`",
                    );
                    None
                }
            };
            let summary = self.required(
                c.summary.as_ref(),
                &cat,
                "summary",
                "what changed, in a sentence people understand",
            );
            if let (Some(version), Some(date), Some(summary)) = (v, date, summary) {
                changelog.push(Change {
                    version,
                    date,
                    summary,
                });
            }
        }
        if let Some(v) = &version
            && !p.changelog.is_empty()
            && !changelog.iter().any(|c| &c.version == v)
        {
            self.warn(
                "version-not-in-changelog",
                &at.key("version"),
                format!("version {v} has no changelog entry"),
                Some(
                    "add a [[policy.changelog]] entry saying what changed in this version"
                        .to_owned(),
                ),
            );
        }
        let language = Self::optional(p.language.as_ref()).unwrap_or_else(|| "en".to_owned());
        if !(language == "en" || language.starts_with("en-")) {
            self.warn(
                "notice-language",
                &at.key("language"),
                format!("the notice is rendered in English, not `{language}`"),
                Some("Steward's notice text is English today; set `language = \"en\"`, or publish your own translation beside it".to_owned()),
            );
        }
        Some(Policy {
            version: version?,
            effective,
            must_accept: p.must_accept.unwrap_or(false),
            language,
            url: self.url(p.url.as_ref(), &at.key("url")),
            notify_changes,
            changelog,
        })
    }

    fn security(&mut self, raw: Option<&RawSecurity>) -> Security {
        let measures: Vec<String> = raw
            .map(|s| {
                s.measures
                    .iter()
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if measures.is_empty() {
            self.warn(
                "no-security-measures",
                &Path::root().key("security"),
                "no security measures are declared".to_owned(),
                Some("add [security] `measures = [\"…\"]`: the notice and the record of processing describe them (GDPR Art. 30(1)(g))".to_owned()),
            );
        }
        Security {
            measures,
            access: raw.and_then(|s| Self::optional(s.access.as_ref())),
        }
    }

    /// `[retention]`: how long Steward keeps its own records, and when the sweeps run; and
    /// the purposes' retention rules a sweep could not keep.
    fn records(
        &mut self,
        raw: Option<&RawRetention>,
        purposes: &[Purpose],
        datasets: bool,
    ) -> Records {
        let at = Path::root().key("retention");
        let mut records = Records::default();
        for purpose in purposes {
            self.sweepable(purpose, datasets);
        }
        let Some(raw) = raw else { return records };
        if let Some(text) = &raw.schedule {
            match schedule(text) {
                Ok(cron) => records.schedule = cron,
                Err(message) => self.error(
                    "bad-schedule",
                    &at.key("schedule"),
                    message,
                    Some("e.g. `schedule = \"daily\"` or `schedule = \"30 2 * * *\"` (02:30 UTC every day)".to_owned()),
                ),
            }
        }
        for (key, text, slot) in [
            (
                "consent_proof",
                &raw.consent_proof,
                &mut records.consent_proof,
            ),
            (
                "request_contact",
                &raw.request_contact,
                &mut records.request_contact,
            ),
            ("requests", &raw.requests, &mut records.requests),
            ("mail", &raw.mail, &mut records.mail),
        ] {
            if let Some(d) = text.as_ref().and_then(|t| self.duration(t, &at.key(key))) {
                *slot = d;
            }
        }
        records.audit = raw
            .audit
            .as_ref()
            .and_then(|t| self.duration(t, &at.key("audit")));
        if records.request_contact.approx_hours() > records.requests.approx_hours() {
            self.warn(
                "contact-outlives-request",
                &at.key("request_contact"),
                format!(
                    "a finished request's address is kept {}, longer than the request itself ({})",
                    records.request_contact, records.requests
                ),
                Some("the address goes with the request's record: shorten `request_contact`, or lengthen `requests`".to_owned()),
            );
        }
        records
    }

    /// A purpose's retention that no sweep could keep: a legal hold that ends when the
    /// purpose's data goes anyway (an event, the session) keeps nothing and contradicts
    /// itself.
    fn sweepable(&mut self, purpose: &Purpose, datasets: bool) {
        let Some(index) = self.purpose_index(&purpose.id) else {
            return;
        };
        let at = Path::root().key("purposes").index(index);
        if purpose.legal_hold.is_some()
            && matches!(
                purpose.retention,
                Some(Retention::Until(_) | Retention::Session)
            )
        {
            let r = purpose
                .retention
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            self.error(
                "hold-outlives-retention",
                &at.key("retention"),
                format!(
                    "purpose `{}` keeps data through erasure under a legal hold, but its retention ends it {r}",
                    purpose.id
                ),
                Some("a legal hold lasts as long as the law requires: give that period, e.g. `retention = \"10 years after collection\"`, or remove `legal_hold`".to_owned()),
            );
        }
        let inactivity = std::iter::once(purpose.retention.as_ref())
            .chain(purpose.retain.values().map(Some))
            .flatten()
            .any(|r| {
                matches!(
                    r,
                    Retention::Period {
                        after: crate::Trigger::LastActivity,
                        ..
                    }
                )
            });
        if !purpose.stored && !datasets && inactivity {
            self.error(
                "no-activity-recorded",
                &at.key("retention"),
                format!(
                    "purpose `{}` keeps data until a period of inactivity, but Steward neither stores it nor reads a database that records activity",
                    purpose.id
                ),
                Some("keep the data in Steward (remove `stored = false`: Steward records each person's activity), or declare the database that holds it under [[datasets]] with the table's `retention_column`, or count the period from collection".to_owned()),
            );
        }
        if !purpose.stored {
            return;
        }
        for (category, rule) in std::iter::once((None, purpose.retention.as_ref()))
            .chain(purpose.retain.iter().map(|(c, r)| (Some(c), Some(r))))
        {
            if let Some(Retention::Period { min, max, .. }) = rule
                && min.approx_hours() == 0
                && max.approx_hours() == 0
            {
                let path = match category {
                    Some(c) => at.key("retain").key(c),
                    None => at.key("retention"),
                };
                self.warn(
                    "zero-retention",
                    &path,
                    format!("purpose `{}` keeps its data for no time at all", purpose.id),
                    Some("a retention sweep removes it at once: give the time it is needed for, or set `stored = false`".to_owned()),
                );
            }
        }
    }

    /// The index of the `[[purposes]]` entry with `id`, as written.
    fn purpose_index(&self, id: &str) -> Option<usize> {
        (0..)
            .map(|i| Path::root().key("purposes").index(i))
            .take_while(|p| self.index.contains(p))
            .position(|p| {
                self.index
                    .value(&p.key("id"))
                    .and_then(|span| self.source.text().get(span))
                    .is_some_and(|text| text.trim_matches('"') == id)
            })
    }

    fn datasets(&mut self, raw: &[RawDataset]) -> Vec<Dataset> {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        for (i, d) in raw.iter().enumerate() {
            let at = Path::root().key("datasets").index(i);
            let Some(id) = self.id(d.id.as_ref(), &at, "dataset") else {
                continue;
            };
            self.unique(&mut seen, &id, &at.key("id"), "dataset");
            out.push(Dataset {
                id,
                description: Self::optional(d.description.as_ref()),
                manifest: Self::optional(d.manifest.as_ref()),
            });
        }
        out
    }

    // ---- cross-checks ------------------------------------------------------------------------

    /// Every flow of data to another country needs a safeguard, unless it stays in the
    /// controller's country or inside the EEA.
    fn transfers(
        &mut self,
        purposes: &[Purpose],
        processors: &[Processor],
        controller: &Controller,
    ) {
        let home = controller.country.as_str();
        for (i, p) in purposes.iter().enumerate() {
            let at = Path::root().key("purposes").index(i);
            for (r_index, r) in p.recipients.iter().enumerate() {
                let Some(proc) = processors.iter().find(|x| &x.id == r) else {
                    continue;
                };
                let Some(country) = proc.country.as_deref() else {
                    continue;
                };
                if country::same_zone(home, country) {
                    continue;
                }
                let covered = proc.safeguard.is_some()
                    || p.transfers.iter().any(|t| {
                        t.country == country && t.recipient.as_ref().is_none_or(|x| x == r)
                    });
                if !covered {
                    self.error(
                        "transfer-without-safeguard",
                        &at.key("recipients").index(r_index),
                        format!(
                            "purpose `{}` sends data to `{r}` in {}, outside {}, with no safeguard",
                            p.id,
                            country::in_sentence(country),
                            country::in_sentence(home)
                        ),
                        Some(format!("add `safeguard = \"scc\"` (or {}) to processor `{r}`, or a [[purposes.transfers]] entry for \"{country}\"", choices(Safeguard::ALL))),
                    );
                }
            }
        }
    }

    /// A purpose that sells or shares must let people opt out, and GPC must be honoured.
    fn sale_and_share(&mut self, purposes: &[Purpose], signals: Signals) {
        for (i, p) in purposes.iter().enumerate() {
            if !(p.sale || p.share) {
                continue;
            }
            let at = Path::root().key("purposes").index(i);
            let flag = if p.sale { "sale" } else { "share" };
            if p.consent.is_none() {
                self.error(
                    "sale-without-opt-out",
                    &at.key(flag),
                    format!("purpose `{}` sells or shares personal data but cannot be opted out of", p.id),
                    Some("add `consent = \"opt-out\"` (CCPA) or `\"opt-in\"`: people have the right to opt out of sale and sharing (CCPA §1798.120)".to_owned()),
                );
            }
            if !signals.gpc {
                self.warn(
                    "gpc-not-honoured",
                    &at.key(flag),
                    format!("purpose `{}` sells or shares, but Global Privacy Control is not honoured", p.id),
                    Some("California and Colorado require honouring GPC as an opt-out of sale and sharing; remove `gpc = false` from [signals]".to_owned()),
                );
            }
        }
    }

    /// `compatible_with` names other purposes (GDPR Art. 6(4)); two purposes that collect the
    /// same categories with no compatibility stated are named, since neither then sees what was
    /// collected for the other.
    fn compatibility(&mut self, raw: &[RawPurpose], purposes: &mut [Purpose]) {
        let ids: Vec<String> = purposes.iter().map(|p| p.id.clone()).collect();
        for (i, rp) in raw.iter().enumerate() {
            let Some(own) = rp.id.as_deref().map(str::trim) else {
                continue;
            };
            let Some(me) = ids.iter().position(|x| x == own) else {
                continue;
            };
            let at = Path::root().key("purposes").index(i).key("compatible_with");
            for (k, target) in rp.compatible_with.iter().flatten().enumerate() {
                let target = target.trim();
                let place = at.index(k);
                if target == own {
                    self.error(
                        "compatible-with-itself",
                        &place,
                        format!("purpose `{own}` names itself as compatible"),
                        Some(
                            "name the purposes whose data this one may also use, not itself"
                                .to_owned(),
                        ),
                    );
                    continue;
                }
                let Some(t) = ids.iter().position(|x| x == target) else {
                    let help = suggest::nearest(target, ids.iter().map(String::as_str))
                        .map_or_else(
                            || format!("declare a purpose with `id = \"{target}\"`, or remove it"),
                            |s| format!("did you mean `{s}`?"),
                        );
                    self.error(
                        "unknown-purpose",
                        &place,
                        format!("`{target}` is not a declared purpose"),
                        Some(help),
                    );
                    continue;
                };
                if purposes[t].basis == LawfulBasis::Consent {
                    self.warn(
                        "compatible-with-consent",
                        &place,
                        format!("purpose `{own}` would use data people gave `{target}` by consent"),
                        Some(format!("what people gave by consent serves only what they agreed to: collect what `{own}` needs for `{own}` itself, or ask for consent to it, rather than declaring it compatible (GDPR Art. 6(1)(a), 6(4))")),
                    );
                }
                if shared(&purposes[me], &purposes[t]).is_empty() {
                    self.warn(
                        "compatible-shares-nothing",
                        &place,
                        format!("purposes `{own}` and `{target}` share no category, so `{own}` gains nothing from `{target}`"),
                        Some(format!("remove `{target}`, or add the categories `{own}` uses to its `categories`")),
                    );
                }
                if !purposes[me].compatible_with.iter().any(|x| x == target) {
                    purposes[me].compatible_with.push(target.to_owned());
                }
            }
        }
        // One warning per purpose that says nothing of compatibility (`compatible_with`, even
        // `[]`, says it was considered), naming every other purpose that collects some of its
        // categories. Consent-based purposes are left out on both sides: once the person
        // consents to one it sees what it declares, and what was given by consent is never
        // another purpose's to declare compatible.
        let stated: BTreeSet<&str> = raw
            .iter()
            .filter(|r| r.compatible_with.is_some())
            .filter_map(|r| r.id.as_deref().map(str::trim))
            .collect();
        for pb in purposes.iter() {
            if !pb.stored || pb.basis == LawfulBasis::Consent || stated.contains(pb.id.as_str()) {
                continue;
            }
            let overlaps = |c: &String, pa: &Purpose| {
                pa.categories
                    .iter()
                    .any(|x| taxonomy::covers(x, c) || taxonomy::covers(c, x))
            };
            let others: Vec<&Purpose> = purposes
                .iter()
                .filter(|pa| {
                    pa.id != pb.id
                        && pa.stored
                        && pa.basis != LawfulBasis::Consent
                        && !pb.compatible_with.contains(&pa.id)
                        && pb.categories.iter().any(|c| overlaps(c, pa))
                })
                .collect();
            if others.is_empty() {
                continue;
            }
            let categories: Vec<&str> = pb
                .categories
                .iter()
                .filter(|c| others.iter().any(|pa| overlaps(c, pa)))
                .map(String::as_str)
                .collect();
            let Some(index) = raw
                .iter()
                .position(|r| r.id.as_deref().map(str::trim) == Some(pb.id.as_str()))
            else {
                continue;
            };
            let names: Vec<String> = others.iter().map(|o| format!("`{}`", o.id)).collect();
            self.warn(
                "purposes-share-categories",
                &Path::root().key("purposes").index(index).key("categories"),
                format!(
                    "purpose `{}` collects {}, which {} also {}, and sees none of what was collected for {}",
                    pb.id,
                    categories.join(", "),
                    names.join(", "),
                    if others.len() == 1 { "collects" } else { "collect" },
                    if others.len() == 1 { "it" } else { "them" },
                ),
                Some(format!(
                    "that is purpose limitation (GDPR Art. 5(1)(b)); if `{}` may use what one of them collected, say so: `compatible_with = [{}]` (Art. 6(4)), or `compatible_with = []` if none",
                    pb.id,
                    others
                        .iter()
                        .map(|o| format!("\"{}\"", o.id))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        }
    }

    fn unused_processors(&mut self, raw: &RawDeclaration, processors: &[Processor]) {
        let mut used = BTreeSet::new();
        for p in &raw.purposes {
            used.extend(p.recipients.iter().map(|r| r.trim()));
            used.extend(p.transfers.iter().filter_map(|t| t.recipient.as_deref()));
            used.extend(p.source.as_deref());
        }
        used.extend(raw.cookies.iter().filter_map(|c| c.provider.as_deref()));
        for (i, p) in processors.iter().enumerate() {
            if !used.contains(p.id.as_str()) && !matches!(p.role, Role::Authority) {
                self.warn(
                    "unused-processor",
                    &Path::root().key("processors").index(i).key("id"),
                    format!("processor `{}` receives data from no purpose", p.id),
                    Some("name it in the `recipients` of the purposes that share data with it, or remove it".to_owned()),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_emails_and_urls() {
        assert!(
            is_id("newsletter")
                && is_id("account-login_2")
                && !is_id("News")
                && !is_id("-x")
                && !is_id("")
        );
        assert!(
            is_email("a@b.ch") && !is_email("a@b") && !is_email("a b@c.ch") && !is_email("@c.ch")
        );
        assert!(is_url("https://x.ch/p") && !is_url("x.ch") && !is_url("https://"));
    }
}
