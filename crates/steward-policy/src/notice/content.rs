//! What the notice says: every sentence is derived from a fact in the declaration.

use time::Date;

use super::{Block, Inline, Notice, Section, Table};
use crate::country;
use crate::declaration::*;
use crate::duration::{Duration, Lifetime, Unit};
use crate::retention::Retention;
use crate::taxonomy::Kind;

fn t(text: impl Into<String>) -> Inline {
    Inline::Text(text.into())
}

fn strong(text: impl Into<String>) -> Inline {
    Inline::Strong(text.into())
}

fn link(text: impl Into<String>, href: impl Into<String>) -> Inline {
    Inline::Link {
        text: text.into(),
        href: href.into(),
    }
}

fn mailto(email: &str) -> Inline {
    link(email, format!("mailto:{email}"))
}

/// A contact point: an e-mail address or a web address, as a link.
fn contact_link(point: &str) -> Inline {
    if point.contains('@') && !point.starts_with("http") {
        mailto(point)
    } else {
        link(point, point)
    }
}

/// "A", "A and B", "A, B and C".
fn and_list<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        [rest @ .., last] => format!(
            "{} and {}",
            rest.iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(", "),
            last.as_ref()
        ),
    }
}

/// "18 May 2018".
pub(crate) fn date(d: Date) -> String {
    format!("{} {} {}", d.day(), d.month(), d.year())
}

fn sentence_case(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn end_sentence(text: &str) -> String {
    let text = text.trim();
    if text.ends_with(['.', '!', '?']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

/// A name as it reads inside a sentence: "E-mail address" becomes "e-mail address", while
/// an acronym such as "IP address" keeps its capitals.
fn lower_name(name: &str) -> String {
    let mut chars = name.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && b.is_uppercase() => name.to_owned(),
        (Some(a), _) => a.to_lowercase().chain(name.chars().skip(1)).collect(),
        _ => String::new(),
    }
}

/// The plural of a data subject's name, inside a sentence ("customers").
fn plural_subject(name: &str) -> String {
    let lower = lower_name(name);
    match lower.as_str() {
        "next of kin" => lower,
        "citizen or voter" => "citizens or voters".to_owned(),
        _ if lower.ends_with('s') => lower,
        _ => format!("{lower}s"),
    }
}

/// The categories' names inside a sentence.
fn category_names(d: &Declaration, keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| lower_name(d.taxonomy.name(Kind::Category, k)))
        .collect()
}

/// The names of taxonomy keys as a person reads them, in the taxonomy's words: "Name, e-mail
/// address and phone number" (one key: "Username").
pub fn category_list(d: &Declaration, keys: &[String]) -> String {
    sentence_case(&and_list(&category_names(d, keys)))
}

fn language_name(tag: &str) -> &str {
    match tag.split('-').next().unwrap_or(tag) {
        "en" => "English",
        "de" => "German",
        "fr" => "French",
        "it" => "Italian",
        "es" => "Spanish",
        "pt" => "Portuguese",
        "nl" => "Dutch",
        "pl" => "Polish",
        "sv" => "Swedish",
        "da" => "Danish",
        "fi" => "Finnish",
        "no" | "nb" | "nn" => "Norwegian",
        "rm" => "Romansh",
        "ja" => "Japanese",
        "zh" => "Chinese",
        _ => tag,
    }
}

fn channel_words(channels: &[Channel]) -> String {
    let words: Vec<&str> = channels
        .iter()
        .map(|c| match c {
            Channel::Email => "e-mail",
            Channel::InApp => "a notification in our application",
            Channel::Website => "a notice on our website",
            Channel::Post => "post",
            Channel::Phone => "telephone",
        })
        .collect();
    and_list(&words)
}

fn deadline_words(d: Duration) -> String {
    match d.unit {
        Unit::Month if d.amount == 1 => "one month".to_owned(),
        _ => d.to_string(),
    }
}

fn basis_sentence(p: &Purpose) -> Vec<Inline> {
    let mut out = Vec::new();
    match p.basis {
        LawfulBasis::Consent => {
            out.push(t("Your consent (GDPR Art. 6(1)(a)). "));
            out.push(t(match p.consent {
                Some(ConsentMode::DoubleOptIn) => {
                    "We ask first, and start only after you confirm through a link we send to your e-mail address. "
                }
                Some(ConsentMode::OptOut) => "We do this unless you opt out. ",
                _ => "We ask before we start. ",
            }));
            out.push(t(
                "You can withdraw consent at any time, as easily as you gave it.",
            ));
        }
        LawfulBasis::Contract => {
            out.push(t("Necessary to provide the service you asked for under our contract with you (GDPR Art. 6(1)(b))."));
        }
        LawfulBasis::LegalObligation => {
            out.push(t(
                "Required to meet a legal obligation (GDPR Art. 6(1)(c)).",
            ));
        }
        LawfulBasis::VitalInterest => {
            out.push(t(
                "Necessary to protect someone's life (GDPR Art. 6(1)(d)).",
            ));
        }
        LawfulBasis::PublicTask => {
            out.push(t(
                "Necessary for a task in the public interest (GDPR Art. 6(1)(e)).",
            ));
        }
        LawfulBasis::LegitimateInterest => {
            out.push(t("Our legitimate interest (GDPR Art. 6(1)(f))"));
            match &p.legitimate_interest {
                Some(interest) => out.push(t(format!(": {}", end_sentence(interest)))),
                None => out.push(t(".")),
            }
            out.push(t(" You can object at any time."));
        }
    }
    if (p.sale || p.share)
        && p.basis != LawfulBasis::Consent
        && let Some(ConsentMode::OptOut) = p.consent
    {
        out.push(t(" You can opt out at any time."));
    }
    out
}

fn source_sentence(d: &Declaration, source: &DataSource) -> String {
    match source {
        DataSource::Provided => "You give it to us.".to_owned(),
        DataSource::Observed => {
            "We collect it automatically when you use our website or services.".to_owned()
        }
        DataSource::Derived => "We infer it from other data we hold about you.".to_owned(),
        DataSource::ThirdParty(id) => format!(
            "We receive it from {}.",
            d.processor(id).map_or(id.as_str(), |p| p.name.as_str())
        ),
    }
}

fn retention_words(r: &Retention) -> String {
    match r {
        Retention::Period {
            after: crate::Trigger::Collection,
            min,
            max,
        } if min == max => {
            format!("{min} after we collect it")
        }
        other => other.to_string(),
    }
}

fn lifetime_words(l: Lifetime) -> String {
    match l {
        Lifetime::Session => "Until you close your browser".to_owned(),
        Lifetime::For(d) => d.to_string(),
    }
}

fn safeguard_words(s: Safeguard) -> &'static str {
    match s {
        Safeguard::Adequacy => {
            "an adequacy decision: the destination protects personal data to the standard of our own law"
        }
        Safeguard::Scc => "standard contractual clauses approved by the European Commission",
        Safeguard::Bcr => "binding corporate rules approved by a supervisory authority",
        Safeguard::Dpf => "the recipient's certification under the Data Privacy Framework",
        Safeguard::CodeOfConduct => "an approved code of conduct binding the recipient",
        Safeguard::Certification => "an approved certification of the recipient",
        Safeguard::ExplicitConsent => "your explicit consent to the transfer",
        Safeguard::Contract => "the transfer being necessary for our contract with you",
    }
}

fn role_words(r: Role) -> &'static str {
    match r {
        Role::Processor => "Processor: acts only on our instructions",
        Role::SubProcessor => "Sub-processor: acts for one of our processors",
        Role::ThirdParty => "Third party: uses the data under its own responsibility",
        Role::JointController => "Joint controller: decides with us how the data is used",
        Role::Authority => "Public authority",
    }
}

fn cookie_category_words(c: CookieCategory) -> &'static str {
    match c {
        CookieCategory::Necessary => "Necessary",
        CookieCategory::Preferences => "Preferences",
        CookieCategory::Analytics => "Analytics",
        CookieCategory::Advertising => "Advertising",
    }
}

/// Builds the notice for a declaration.
pub fn build(d: &Declaration) -> Notice {
    let c = &d.controller;
    let mut intro = vec![vec![t(format!(
        "How {} collects, uses and protects personal data, and what you can do about it.",
        c.name
    ))]];
    let mut version_line = vec![t(format!("Version {}", d.policy.version))];
    if let Some(effective) = d.policy.effective {
        version_line.push(t(format!(", effective {}", date(effective))));
    }
    version_line.push(t("."));
    intro.push(version_line);

    let sections = vec![
        who_we_are(d),
        what_we_collect(d),
        cookies(d),
        embedded(d),
        sharing(d),
        transfers(d),
        retention(d),
        rights(d),
        security(d),
        breaches(d),
        signals(d),
        changes(d),
        contact(d),
    ];
    Notice {
        title: format!("Privacy notice: {}", c.name),
        // The text is English; other languages need translated templates.
        lang: "en".to_owned(),
        intro,
        sections,
    }
}

fn who_we_are(d: &Declaration) -> Section {
    let c = &d.controller;
    let mut first = vec![strong(&c.name)];
    if let Some(legal) = &c.legal_name {
        first.push(t(format!(" ({legal})")));
    }
    first.push(t(
        " decides why and how your personal data is processed: we are its controller.",
    ));
    if !c.trade_names.is_empty() {
        first.push(t(format!(
            " We also trade as {}.",
            and_list(&c.trade_names)
        )));
    }
    let mut facts = Vec::new();
    if let Some(address) = &c.address {
        facts.push(("Address".to_owned(), vec![t(address.replace('\n', ", "))]));
    }
    facts.push(("Country".to_owned(), vec![t(country::name(&c.country))]));
    facts.push(("E-mail".to_owned(), vec![mailto(&c.email)]));
    if let Some(phone) = &c.phone {
        facts.push(("Telephone".to_owned(), vec![t(phone)]));
    }
    if let Some(site) = &c.website {
        facts.push(("Website".to_owned(), vec![link(site, site)]));
    }
    if !c.data_location.is_empty() {
        let places: Vec<&str> = c.data_location.iter().map(|p| country::name(p)).collect();
        facts.push((
            "Your data is stored in".to_owned(),
            vec![t(and_list(&places))],
        ));
    }
    let mut blocks = vec![Block::Para(first), Block::Facts(facts)];
    for (label, contact) in [
        ("Our data protection officer", &c.dpo),
        ("Our representative", &c.representative),
    ] {
        if let Some(contact) = contact {
            let mut line = vec![t(format!("{label}: "))];
            let mut parts = Vec::new();
            if let Some(name) = &contact.name {
                parts.push(vec![t(name)]);
            }
            if let Some(email) = &contact.email {
                parts.push(vec![mailto(email)]);
            }
            if let Some(phone) = &contact.phone {
                parts.push(vec![t(phone)]);
            }
            if let Some(address) = &contact.address {
                parts.push(vec![t(address.replace('\n', ", "))]);
            }
            for (i, part) in parts.into_iter().enumerate() {
                if i > 0 {
                    line.push(t(", "));
                }
                line.extend(part);
            }
            line.push(t("."));
            blocks.push(Block::Para(line));
        }
    }
    Section {
        id: "who-we-are",
        heading: "Who we are".to_owned(),
        blocks,
    }
}

fn what_we_collect(d: &Declaration) -> Section {
    let mut blocks = vec![Block::Para(vec![t(
        "We process personal data only for the purposes below. For each, we say what we collect, why, on which legal basis, where it comes from, who receives it and how long we keep it.",
    )])];
    for p in &d.purposes {
        blocks.push(Block::Heading(p.name.clone()));
        if let Some(description) = &p.description {
            blocks.push(Block::Para(vec![t(end_sentence(description))]));
        }
        let mut facts = Vec::new();
        let names = category_names(d, &p.categories);
        if !names.is_empty() {
            facts.push((
                "What we collect".to_owned(),
                vec![t(end_sentence(&sentence_case(&and_list(&names))))],
            ));
        }
        if !p.subjects.is_empty() {
            let subjects: Vec<String> = p
                .subjects
                .iter()
                .map(|s| plural_subject(d.taxonomy.name(Kind::Subject, s)))
                .collect();
            facts.push((
                "Whose data".to_owned(),
                vec![t(end_sentence(&sentence_case(&and_list(&subjects))))],
            ));
        }
        facts.push((
            "What for".to_owned(),
            vec![t(end_sentence(&sentence_case(
                &d.taxonomy.get(Kind::Use, &p.data_use).map_or_else(
                    || p.data_use.clone(),
                    |u| u.description.trim_end_matches('.').to_owned(),
                ),
            )))],
        ));
        facts.push(("Legal basis".to_owned(), basis_sentence(p)));
        facts.push((
            "Where it comes from".to_owned(),
            vec![t(source_sentence(d, &p.source))],
        ));
        if !p.compatible_with.is_empty() {
            let names: Vec<String> = p
                .compatible_with
                .iter()
                .map(|id| {
                    d.purposes
                        .iter()
                        .find(|o| &o.id == id)
                        .map_or_else(|| id.clone(), |o| format!("“{}”", o.name))
                })
                .collect();
            facts.push((
                "Also uses".to_owned(),
                vec![t(format!(
                    "What you gave us for {}, which we judged compatible with why it was collected (GDPR Art. 6(4)). Nothing else collected for another purpose is used for this one.",
                    and_list(&names)
                ))],
            ));
        }
        if let Some(required) = p.required {
            facts.push((
                "Must you provide it?".to_owned(),
                vec![t(if required {
                    "Yes: without it we cannot provide this service."
                } else {
                    "No: providing it is up to you."
                })],
            ));
        }
        if !p.recipients.is_empty() {
            let mut runs = Vec::new();
            for (i, r) in p.recipients.iter().enumerate() {
                if i > 0 {
                    runs.push(t(if i + 1 == p.recipients.len() {
                        " and "
                    } else {
                        ", "
                    }));
                }
                let name = d.processor(r).map_or(r.as_str(), |x| x.name.as_str());
                runs.push(link(name, "#sharing"));
            }
            runs.push(t("."));
            facts.push(("Who receives it".to_owned(), runs));
        }
        if !p.stored {
            facts.push((
                "Stored by us?".to_owned(),
                vec![t(if p.recipients.is_empty() {
                    "No. It stays on your device; we never store it on our systems."
                } else {
                    "No. It goes directly to the recipients named here; we never store it on our systems."
                })],
            ));
        }
        if p.sale || p.share {
            let what = match (p.sale, p.share) {
                (true, true) => "We sell and share this data.",
                (true, false) => "We sell this data.",
                _ => "We share this data for cross-context behavioural advertising.",
            };
            facts.push((
                "Sale or sharing".to_owned(),
                vec![
                    t(format!(
                        "{what} You can opt out at any time, and we treat a "
                    )),
                    link("Global Privacy Control", "#signals"),
                    t(" signal as an opt-out."),
                ],
            ));
        }
        facts.push(("How long we keep it".to_owned(), retention_runs(d, p)));
        if let Some(hold) = &p.legal_hold {
            facts.push((
                "If you ask us to erase it".to_owned(),
                vec![t(format!(
                    "We keep it until the period above ends: {}.",
                    hold.reason.trim_end_matches('.')
                ))],
            ));
        }
        if let Some(decisions) = &p.automated_decisions {
            facts.push((
                "Automated decisions".to_owned(),
                vec![t(end_sentence(decisions))],
            ));
        }
        blocks.push(Block::Facts(facts));
    }
    if d.purposes.iter().all(|p| p.automated_decisions.is_none()) {
        blocks.push(Block::Heading("Automated decisions".to_owned()));
        blocks.push(Block::Para(vec![t(
            "We make no decisions about you by automated means alone, and no profiling that has legal or similarly significant effects on you.",
        )]));
    }
    Section {
        id: "what-we-collect",
        heading: "What we collect and why".to_owned(),
        blocks,
    }
}

fn retention_runs(d: &Declaration, p: &Purpose) -> Vec<Inline> {
    let mut parts = Vec::new();
    for (key, r) in &p.retain {
        parts.push(format!(
            "{}: {}",
            d.taxonomy.name(Kind::Category, key),
            retention_words(r)
        ));
    }
    if let Some(r) = &p.retention {
        if parts.is_empty() {
            return vec![t(end_sentence(&sentence_case(&retention_words(r))))];
        }
        parts.push(format!("everything else: {}", retention_words(r)));
    }
    vec![t(end_sentence(&parts.join("; ")))]
}

fn cookies(d: &Declaration) -> Section {
    let mut blocks = Vec::new();
    if d.cookies.is_empty() {
        blocks.push(Block::Para(vec![t(
            "We set no cookies and use no similar technologies that store or read information on your device.",
        )]));
    } else {
        blocks.push(Block::Para(vec![t(
            "A cookie is a small file a website stores in your browser. Necessary cookies are set because the site cannot work without them. Every other cookie is set only after you allow it, and you can change your choice at any time in the cookie preferences on our pages; when you withdraw consent, we remove the cookies concerned.",
        )]));
        let rows = d
            .cookies
            .iter()
            .map(|c| {
                let provider = match &c.provider {
                    None => "Us".to_owned(),
                    Some(id) => d.processor(id).map_or(id.clone(), |p| p.name.clone()),
                };
                let purpose = c
                    .description
                    .clone()
                    .or_else(|| {
                        c.purpose
                            .as_deref()
                            .and_then(|id| d.purpose(id))
                            .map(|p| p.name.clone())
                    })
                    .unwrap_or_default();
                let mut lifetime = lifetime_words(c.lifetime);
                if let Some(e) = &c.extended {
                    lifetime.push_str(&format!(
                        "; {} when {}",
                        lifetime_words(e.lifetime).to_lowercase(),
                        e.when
                    ));
                }
                vec![
                    vec![Inline::Code(c.name.clone())],
                    vec![t(provider)],
                    vec![t(cookie_category_words(c.category))],
                    vec![t(end_sentence(&purpose))],
                    vec![t(lifetime)],
                    vec![t(if c.personal_data { "Yes" } else { "No" })],
                ]
            })
            .collect();
        blocks.push(Block::Table(Table {
            caption: "Cookies we and our providers set".to_owned(),
            headers: [
                "Name",
                "Set by",
                "Category",
                "What it does",
                "Lifetime",
                "Personal data",
            ]
            .map(str::to_owned)
            .to_vec(),
            rows,
        }));
        blocks.push(Block::Para(vec![t(
            "You can also block or delete cookies in your browser's settings; some parts of the site may then not work.",
        )]));
    }
    Section {
        id: "cookies",
        heading: "Cookies and similar technologies".to_owned(),
        blocks,
    }
}

fn embedded(d: &Declaration) -> Section {
    let blocks = if d.embeds.is_empty() {
        vec![Block::Para(vec![t(
            "Our pages do not embed content from other websites.",
        )])]
    } else {
        let mut blocks = vec![Block::Para(vec![t(
            "Some pages include content from other websites, such as videos. Embedded content behaves exactly as if you had visited the other website: that website may collect data about you, set cookies, add its own tracking and record how you interact with the content, and link this to your account there if you are signed in.",
        )])];
        let items = d
            .embeds
            .iter()
            .map(|e| {
                let mut item = vec![strong(&e.name)];
                if let Some(content) = &e.content {
                    item.push(t(format!(": {content}")));
                }
                item.push(t(if e.purpose.is_some() {
                    ". It loads only after you allow it."
                } else {
                    "."
                }));
                if let Some(policy) = &e.privacy_policy {
                    item.push(t(" "));
                    item.push(link(format!("{}'s privacy policy", e.name), policy));
                    item.push(t("."));
                }
                item
            })
            .collect();
        blocks.push(Block::List(items));
        blocks
    };
    Section {
        id: "embedded-content",
        heading: "Embedded content from other websites".to_owned(),
        blocks,
    }
}

fn sharing(d: &Declaration) -> Section {
    let mut blocks = Vec::new();
    if d.sells_or_shares() {
        blocks.push(Block::Para(vec![
            t("We sell or share personal data for the purposes marked as such above. You can opt out at any time, without giving a reason and without proving who you are, and we treat a "),
            link("Global Privacy Control", "#signals"),
            t(" signal from your browser as an opt-out."),
        ]));
    } else {
        blocks.push(Block::Para(vec![t(
            "We do not sell your personal data, and we do not share it for cross-context behavioural advertising.",
        )]));
    }
    let receives = |p: &Processor| {
        d.purposes.iter().any(|x| x.recipients.contains(&p.id))
            || d.cookies.iter().any(|c| c.provider.as_ref() == Some(&p.id))
    };
    let recipients: Vec<&Processor> = d.processors.iter().filter(|p| receives(p)).collect();
    let sources: Vec<&Processor> = d
        .processors
        .iter()
        .filter(|p| {
            !receives(p)
                && d.purposes
                    .iter()
                    .any(|x| x.source == DataSource::ThirdParty(p.id.clone()))
        })
        .collect();
    if recipients.is_empty() {
        blocks.push(Block::Para(vec![t(
            "We do not disclose personal data to anyone else.",
        )]));
    } else {
        let mut intro =
            "We disclose personal data only to the recipients below, and only what each needs."
                .to_owned();
        if recipients
            .iter()
            .any(|p| matches!(p.role, Role::Processor | Role::SubProcessor))
        {
            intro.push_str(" Processors act on our instructions under a data processing agreement and may not use the data for their own purposes.");
        }
        blocks.push(Block::Para(vec![t(intro)]));
        let rows = recipients
            .iter()
            .map(|p| {
                // Declared, or filled from the purposes naming the recipient.
                let data = category_list(d, &p.categories);
                let mut links = Vec::new();
                if let Some(policy) = &p.privacy_policy {
                    links.push(link("Privacy policy", policy));
                }
                if let Some(opt_out) = &p.opt_out {
                    if !links.is_empty() {
                        links.push(t(" · "));
                    }
                    links.push(link("Opt out", opt_out));
                }
                vec![
                    vec![t(&p.name)],
                    vec![t(role_words(p.role))],
                    vec![t(p
                        .service
                        .clone()
                        .map_or_else(String::new, |s| end_sentence(&s)))],
                    vec![t(if data.is_empty() {
                        "What their cookies hold".to_owned()
                    } else {
                        data
                    })],
                    vec![t(p.country.as_deref().map_or("Not stated", country::name))],
                    links,
                ]
            })
            .collect();
        blocks.push(Block::Table(Table {
            caption: "Recipients of personal data".to_owned(),
            headers: [
                "Recipient",
                "Role",
                "What they do",
                "Data they receive",
                "Country",
                "Links",
            ]
            .map(str::to_owned)
            .to_vec(),
            rows,
        }));
    }
    if !sources.is_empty() {
        blocks.push(Block::Para(vec![t(
            "We also receive personal data about you from others:",
        )]));
        blocks.push(Block::List(
            sources
                .iter()
                .map(|p| {
                    let mut item = vec![strong(&p.name)];
                    if let Some(service) = &p.service {
                        item.push(t(format!(": {}", end_sentence(service))));
                    }
                    if let Some(policy) = &p.privacy_policy {
                        item.push(t(" "));
                        item.push(link("Privacy policy", policy));
                        item.push(t("."));
                    }
                    item
                })
                .collect(),
        ));
    }
    Section {
        id: "sharing",
        heading: "Who we share your data with".to_owned(),
        blocks,
    }
}

fn transfers(d: &Declaration) -> Section {
    let home = d.controller.country.as_str();
    let zone = if country::in_eea(home) {
        "the European Economic Area".to_owned()
    } else {
        country::in_sentence(home)
    };
    let mut items: Vec<Vec<Inline>> = Vec::new();
    for flow in d.third_country_flows() {
        let who = match &flow.recipient {
            Some(id) => d.processor(id).map_or(id.clone(), |p| p.name.clone()),
            None => d
                .purpose(&flow.purpose)
                .map_or(flow.purpose.clone(), |p| p.name.clone()),
        };
        let mut item = vec![
            strong(who),
            t(format!(" in {}", country::in_sentence(&flow.country))),
        ];
        match flow.safeguard {
            Some(s) => item.push(t(format!(", protected by {}.", safeguard_words(s)))),
            None => item.push(t(".")),
        }
        if !items.contains(&item) {
            items.push(item);
        }
    }
    let unknown: Vec<&str> = d
        .processors
        .iter()
        .filter(|p| p.country.is_none())
        .map(|p| p.name.as_str())
        .collect();
    let mut blocks = Vec::new();
    if items.is_empty() && unknown.is_empty() {
        blocks.push(Block::Para(vec![t(format!(
            "We do not transfer your personal data outside {zone}."
        ))]));
    } else if items.is_empty() {
        blocks.push(Block::Para(vec![t(format!(
            "Our recipients with a known location process your data in {zone}."
        ))]));
    } else {
        blocks.push(Block::Para(vec![t(format!(
            "Some recipients process data outside {zone}. Each transfer is protected as follows; you can ask us for a copy of the safeguards."
        ))]));
        blocks.push(Block::List(items));
    }
    if !unknown.is_empty() {
        blocks.push(Block::Para(vec![t(format!(
            "We have not stated where {} processes your data; ask us and we will tell you.",
            and_list(&unknown)
        ))]));
    }
    Section {
        id: "transfers",
        heading: "International transfers".to_owned(),
        blocks,
    }
}

fn retention(d: &Declaration) -> Section {
    let mut rows = Vec::new();
    for p in &d.purposes {
        let erasure = match &p.legal_hold {
            Some(hold) => format!("Kept: {}.", hold.reason.trim_end_matches('.')),
            None => "Erased".to_owned(),
        };
        let mut rest: Vec<String> = p.categories.clone();
        for (key, r) in &p.retain {
            rest.retain(|c| !crate::taxonomy::covers(key, c));
            rows.push(vec![
                vec![t(&p.name)],
                vec![t(d.taxonomy.name(Kind::Category, key))],
                vec![t(sentence_case(&retention_words(r)))],
                vec![t(&erasure)],
            ]);
        }
        if let Some(r) = &p.retention
            && (!rest.is_empty() || p.retain.is_empty())
        {
            rows.push(vec![
                vec![t(&p.name)],
                vec![t(category_list(d, &rest))],
                vec![t(sentence_case(&retention_words(r)))],
                vec![t(&erasure)],
            ]);
        }
    }
    Section {
        id: "retention",
        heading: "How long we keep your data".to_owned(),
        blocks: vec![
            Block::Para(vec![t(
                "We keep personal data only as long as we need it for the purpose it was collected for, then erase it. When you ask us to erase your data, we erase it without undue delay, except what the law obliges us to keep, which we erase when that obligation ends.",
            )]),
            Block::Table(Table {
                caption: "Retention periods".to_owned(),
                headers: ["Purpose", "Data", "How long", "After an erasure request"]
                    .map(str::to_owned)
                    .to_vec(),
                rows,
            }),
        ],
    }
}

fn right_item(d: &Declaration, right: Right) -> Vec<Inline> {
    let r = &d.rights;
    match right {
        Right::Access => vec![
            strong("See your data."),
            t(
                " Ask whether we process personal data about you and get a copy, with the purposes, recipients, retention periods and where it came from, and a record of who at our organisation accessed it and why.",
            ),
        ],
        Right::Portability => {
            let formats: Vec<&str> = r
                .export_formats
                .iter()
                .map(|f| match f {
                    ExportFormat::Html => "a readable web page",
                    ExportFormat::Json => "JSON",
                    ExportFormat::Csv => "CSV",
                    ExportFormat::Xlsx => "Excel (XLSX)",
                })
                .collect();
            vec![
                strong("Take your data with you."),
                t(format!(
                    " Receive the data you gave us in {}, to reuse it elsewhere.",
                    and_list(&formats)
                )),
            ]
        }
        Right::Rectification => {
            let mut runs = vec![
                strong("Correct your data."),
                t(
                    " Have inaccurate data corrected and incomplete data completed; we e-mail you to confirm the change.",
                ),
            ];
            if !r.immutable.is_empty() {
                let names = category_names(d, &r.immutable);
                runs.push(t(format!(
                    " {} cannot be changed once set.",
                    sentence_case(&and_list(&names))
                )));
            }
            runs
        }
        Right::Erasure => {
            let holds: Vec<String> = d
                .purposes
                .iter()
                .filter_map(|p| p.legal_hold.as_ref().map(|_| p.name.to_lowercase()))
                .collect();
            let mut runs = vec![
                strong("Erase your data."),
                t(
                    " Have your personal data deleted. We e-mail you when it is done, saying what we erased and what we had to keep, and why",
                ),
            ];
            if holds.is_empty() {
                runs.push(t("."));
            } else {
                runs.push(t(format!(
                    ": the law obliges us to keep the data for {} for the period stated above.",
                    and_list(&holds)
                )));
            }
            runs
        }
        Right::Restriction => vec![
            strong("Restrict processing."),
            t(
                " Have us keep your data but not otherwise use it, for example while you contest its accuracy.",
            ),
        ],
        Right::Objection => vec![
            strong("Object."),
            t(
                " Object to processing based on our legitimate interest. You can always object to direct marketing, and we then stop it.",
            ),
        ],
        Right::OptOutSaleShare => vec![
            strong("Opt out of sale and sharing."),
            t(format!(
                " Tell us not to sell or share your personal data. You need not prove who you are, and we act on it within {} at the latest.",
                r.opt_out_deadline
            )),
        ],
        Right::WithdrawConsent => vec![
            strong("Withdraw consent."),
            t(
                " Where we rely on your consent, withdraw it at any time, as easily as you gave it. This does not make earlier processing unlawful.",
            ),
        ],
    }
}

fn rights(d: &Declaration) -> Section {
    let r = &d.rights;
    let mut blocks = vec![Block::Para(vec![t(
        "You have these rights over your personal data:",
    )])];
    let applicable = r
        .available
        .iter()
        .filter(|right| **right != Right::OptOutSaleShare || d.sells_or_shares())
        .map(|right| right_item(d, *right))
        .collect();
    blocks.push(Block::List(applicable));

    let mut how = vec![t("To use them, write to ")];
    how.push(contact_link(&r.contact));
    if let Some(url) = &r.url {
        how.push(t(" or use our "));
        how.push(link("privacy centre", url));
    }
    how.push(t(format!(
        ". We answer within {}",
        deadline_words(r.deadline)
    )));
    if r.deadline.unit == Unit::BusinessDay {
        how.push(t(" (weekends and public holidays do not count)"));
    }
    how.push(t(" of receiving your request"));
    if let Some(ack) = r.acknowledge {
        how.push(t(format!(", and confirm receipt within {ack}")));
    }
    how.push(t("."));
    if let Some(ext) = r.extension {
        how.push(t(format!(
            " If a request is complex or we receive many, we may take up to {ext} longer; we then tell you why within the first period."
        )));
    }
    how.push(t(" Using your rights is free of charge."));
    blocks.push(Block::Para(how));

    let methods: Vec<&str> = r
        .verification
        .iter()
        .map(|v| match v {
            Verification::EmailLink => "by clicking a link we send to your e-mail address",
            Verification::EmailCode => "by entering a 6-digit code we send to your e-mail address",
            Verification::Account => "by signing in to your account",
        })
        .collect();
    let mut verify = format!(
        "Before we act on a request, we check that it comes from you: {}. A link or code expires after {}. We give the same answer whether or not we hold data about an address, so nobody can use a request to find out whether you are our customer.",
        methods.join(", or "),
        r.verification_expires
    );
    if d.sells_or_shares() {
        verify.push_str(" An opt-out of sale or sharing needs no such check.");
    }
    blocks.push(Block::Para(vec![t(verify)]));
    if !r.languages.is_empty() {
        let names: Vec<&str> = r.languages.iter().map(|l| language_name(l)).collect();
        blocks.push(Block::Para(vec![t(format!(
            "Requests must be written in {}.",
            and_list(&names).replace(" and ", " or ")
        ))]));
    }
    let mut complain = vec![t(
        "You also have the right to complain to a data protection authority",
    )];
    if let Some(a) = &d.controller.authority {
        complain.push(t(", in particular our supervisory authority, "));
        match &a.website {
            Some(site) => complain.push(link(&a.name, site)),
            None => complain.push(t(&a.name)),
        }
    }
    complain.push(t("."));
    blocks.push(Block::Para(complain));
    Section {
        id: "rights",
        heading: "Your rights and how to use them".to_owned(),
        blocks,
    }
}

fn security(d: &Declaration) -> Section {
    let mut blocks = Vec::new();
    if d.security.measures.is_empty() {
        blocks.push(Block::Para(vec![t(
            "We protect personal data with technical and organisational measures appropriate to the risk.",
        )]));
    } else {
        blocks.push(Block::Para(vec![t(
            "We protect personal data with these measures:",
        )]));
        blocks.push(Block::List(
            d.security
                .measures
                .iter()
                .map(|m| vec![t(end_sentence(m))])
                .collect(),
        ));
    }
    if let Some(access) = &d.security.access {
        blocks.push(Block::Para(vec![t(end_sentence(access))]));
    }
    Section {
        id: "security",
        heading: "How we protect your data".to_owned(),
        blocks,
    }
}

fn breaches(d: &Declaration) -> Section {
    let b = &d.breach;
    let mut items = Vec::new();
    if let Some(clock) = &b.authority {
        let who = d
            .controller
            .authority
            .as_ref()
            .map_or("the competent data protection authority".to_owned(), |a| {
                format!("our supervisory authority, {}", a.name)
            });
        let condition = match clock.when {
            BreachCondition::Always => "",
            BreachCondition::Risk => ", unless it is unlikely to put anyone's rights at risk",
            BreachCondition::HighRisk => ", when it is likely to put people's rights at high risk",
        };
        items.push(vec![t(format!(
            "We report it within {} to {who}{condition}.",
            clock.within
        ))]);
    }
    if let Some(clock) = &b.subjects {
        let condition = match clock.when {
            BreachCondition::Always => "",
            BreachCondition::Risk => " when it may put you at risk",
            BreachCondition::HighRisk => " when it is likely to put you at high risk",
        };
        items.push(vec![t(format!(
            "We tell you, if your data is affected, by {} within {}{condition}, with what happened, what it may mean for you, what we are doing about it and whom to contact.",
            channel_words(&clock.channels),
            clock.within
        ))]);
    }
    let mut blocks = if items.is_empty() {
        vec![Block::Para(vec![t(
            "If personal data we hold is lost, stolen or exposed, we contain it, document what happened, its effects and what we did about it, and notify the competent authority and the people affected as the law requires.",
        )])]
    } else {
        vec![
            Block::Para(vec![t(
                "If personal data we hold is lost, stolen or exposed, we contain it, document what happened, its effects and what we did about it, and act as follows, counting from the moment we become aware of it:",
            )]),
            Block::List(items),
        ]
    };
    if let Some(contact) = &b.contact {
        blocks.push(Block::Para(vec![
            t("To report a suspected breach, contact "),
            contact_link(contact),
            t("."),
        ]));
    }
    Section {
        id: "breaches",
        heading: "If there is a data breach".to_owned(),
        blocks,
    }
}

fn signals(d: &Declaration) -> Section {
    let s = d.signals;
    let mut blocks = Vec::new();
    blocks.push(Block::Heading("Do Not Track".to_owned()));
    blocks.push(Block::Para(vec![t(if s.dnt {
        "We honour Do Not Track. When your browser sends a Do Not Track signal, we set no analytics or advertising cookies and do not use your visit for tracking or advertising."
    } else if s.gpc {
        "We do not respond to Do Not Track signals, because there is no agreed standard for what they mean. We honour Global Privacy Control instead, which the law recognises (see below)."
    } else {
        "We do not respond to Do Not Track signals, because there is no agreed standard for what they mean."
    })]));
    blocks.push(Block::Heading("Global Privacy Control".to_owned()));
    let gpc = match (s.gpc, d.sells_or_shares()) {
        (true, true) => {
            "We honour Global Privacy Control. When your browser sends the signal, we treat it as your request to opt out of the sale and sharing of your personal data, for that browser and, if you are signed in, for your account; a later visit without the signal does not undo it. Our pages then show “Opt-out preference signal honoured”."
        }
        (true, false) => {
            "We honour Global Privacy Control: when your browser sends the signal, we treat it as a request to opt out of the sale and sharing of your personal data. We do not sell or share personal data in any case, and our pages show “Opt-out preference signal honoured”."
        }
        (false, _) => "We do not act on Global Privacy Control signals.",
    };
    blocks.push(Block::Para(vec![t(gpc)]));
    let trackers: Vec<String> = {
        let mut names: Vec<String> = d
            .cookies
            .iter()
            .filter(|c| c.category == CookieCategory::Advertising)
            .filter_map(|c| c.provider.as_deref())
            .map(|id| d.processor(id).map_or(id.to_owned(), |p| p.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    };
    blocks.push(Block::Heading("Tracking by other companies".to_owned()));
    blocks.push(Block::Para(vec![t(if trackers.is_empty() {
        "We do not allow other companies to collect personal data about your activity across different websites through our site.".to_owned()
    } else {
        format!(
            "If you allow advertising cookies, {} may collect data about your activity on our site and on other websites over time. They do so only with your consent, and never when your browser sends {}.",
            and_list(&trackers),
            if s.dnt { "Do Not Track or Global Privacy Control" } else { "Global Privacy Control" }
        )
    })]));
    Section {
        id: "signals",
        heading: "Do Not Track and Global Privacy Control".to_owned(),
        blocks,
    }
}

fn changes(d: &Declaration) -> Section {
    let p = &d.policy;
    let mut first = format!("This is version {}", p.version);
    if let Some(effective) = p.effective {
        first.push_str(&format!(", in effect since {}", date(effective)));
    }
    first.push_str(". When we change how we handle personal data, we update this notice and its version first.");
    if p.notify_changes.is_empty() {
        first.push_str(" Every change is published on this page.");
    } else {
        first.push_str(&format!(
            " We tell you about changes by {}.",
            channel_words(&p.notify_changes)
        ));
    }
    if p.must_accept {
        first.push_str(
            " You will be asked to accept a new version before you continue to use our services.",
        );
    }
    first.push_str(
        " Where a change affects something you consented to, we ask for your consent again.",
    );
    let mut blocks = vec![Block::Para(vec![t(first)])];
    if !p.changelog.is_empty() {
        blocks.push(Block::Table(Table {
            caption: "Changes to this notice".to_owned(),
            headers: ["Version", "Date", "What changed"]
                .map(str::to_owned)
                .to_vec(),
            rows: p
                .changelog
                .iter()
                .map(|c| {
                    vec![
                        vec![t(&c.version)],
                        vec![t(date(c.date))],
                        vec![t(end_sentence(&c.summary))],
                    ]
                })
                .collect(),
        }));
    }
    Section {
        id: "changes",
        heading: "Changes to this notice".to_owned(),
        blocks,
    }
}

fn contact(d: &Declaration) -> Section {
    let c = &d.controller;
    let mut first = vec![t(
        "For any question about this notice or your personal data, write to ",
    )];
    first.push(mailto(&c.email));
    if let Some(address) = &c.address {
        first.push(t(format!(
            " or to {}, {}",
            c.name,
            address.replace('\n', ", ")
        )));
    }
    first.push(t("."));
    let mut blocks = vec![Block::Para(first)];
    if let Some(dpo) = c.dpo.as_ref().and_then(|d| d.email.as_ref()) {
        blocks.push(Block::Para(vec![
            t("You can also reach our data protection officer directly at "),
            mailto(dpo),
            t("."),
        ]));
    }
    if let Some(a) = &c.authority {
        let mut line = vec![t("Our supervisory authority is ")];
        match &a.website {
            Some(site) => line.push(link(&a.name, site)),
            None => line.push(t(&a.name)),
        }
        if let Some(address) = &a.address {
            line.push(t(format!(", {}", address.replace('\n', ", "))));
        }
        if let Some(email) = &a.email {
            line.push(t(", "));
            line.push(mailto(email));
        }
        line.push(t("."));
        blocks.push(Block::Para(line));
    }
    Section {
        id: "contact",
        heading: "Contact".to_owned(),
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_as_english() {
        assert_eq!(and_list(&["a"]), "a");
        assert_eq!(and_list(&["a", "b"]), "a and b");
        assert_eq!(and_list(&["a", "b", "c"]), "a, b and c");
        assert_eq!(date(time::macros::date!(2018 - 05 - 18)), "18 May 2018");
        assert_eq!(deadline_words(Duration::new(1, Unit::Month)), "one month");
    }
}
