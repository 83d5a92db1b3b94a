//! The authority's report (GDPR Art. 33(3)) and the message to people (Art. 34(2)), made from
//! the incident and the declaration: one [`Report`] rendered as Markdown, HTML or JSON.

use serde::Serialize;
use steward_policy::Declaration;

use super::{ClockStatus, Exemption, Incident, IncidentView, Phase, Risk};

/// The report: numbered sections of labelled items, in the order of Art. 33(3).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Its title.
    pub title: String,
    /// When it was made (RFC 3339).
    pub generated_at: String,
    /// The sections.
    pub sections: Vec<Section>,
}

/// One section of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// Its heading (with the article it answers).
    pub heading: String,
    /// Its items: label and text.
    pub items: Vec<(String, String)>,
}

const UNKNOWN: &str = "not yet known — to follow in phases (Art. 33(4))";

fn or_unknown(text: &str) -> String {
    if text.trim().is_empty() {
        UNKNOWN.to_owned()
    } else {
        text.trim().to_owned()
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Why the data taken were unintelligible, when only Steward's sealed store was exposed.
pub const SEALED_ONLY: &str = "Only Steward's data store was exposed. Every personal value in it is sealed (XChaCha20-Poly1305) under a key of its own person, kept in a separate key store and wrapped by a master key; neither the key store nor the master key was exposed, so the data taken are unintelligible to whoever took them (Art. 34(3)(a)).";

impl Report {
    /// The report of `view` under `declaration`.
    pub fn new(declaration: &Declaration, view: &IncidentView) -> Self {
        let i = &view.incident;
        let c = &declaration.controller;
        let a = i.assessment.as_ref();
        let mut sections = Vec::new();
        let mut controller = vec![(
            "Controller".to_owned(),
            c.legal_name.clone().unwrap_or_else(|| c.name.clone()),
        )];
        if let Some(address) = &c.address {
            controller.push((
                "Address".to_owned(),
                format!("{}, {}", address.trim().replace('\n', ", "), c.country),
            ));
        }
        controller.push(("E-mail".to_owned(), c.email.clone()));
        sections.push(Section {
            heading: "Controller".to_owned(),
            items: controller,
        });
        let window = match (i.occurred_from, i.occurred_to) {
            (Some(f), Some(t)) => format!("from {} to {}", rfc3339(f), rfc3339(t)),
            (Some(f), None) => format!("from {}, not yet ended or not known", rfc3339(f)),
            (None, Some(t)) => format!("until {}", rfc3339(t)),
            (None, None) => UNKNOWN.to_owned(),
        };
        let people = if view.affected.total > 0 {
            format!(
                "{} (found {})",
                view.affected.total,
                view.affected
                    .by_source
                    .iter()
                    .map(|(s, n)| format!(
                        "{n} {}",
                        match s.as_str() {
                            "vault" => "holding the categories in Steward's vault",
                            "audit" => "touched by the misused key or account (audit trail)",
                            _ => "listed from other systems",
                        }
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        } else if i.found == Some(0) {
            "none found".to_owned()
        } else {
            UNKNOWN.to_owned()
        };
        let mut nature = vec![
            (
                "Incident".to_owned(),
                format!("#{} — {}", i.number, i.title),
            ),
            ("What happened".to_owned(), or_unknown(&i.description)),
            ("Detected".to_owned(), rfc3339(i.detected_at)),
            ("Controller aware".to_owned(), rfc3339(i.aware_at)),
            ("When it occurred".to_owned(), window),
            (
                "Systems".to_owned(),
                if i.systems.is_empty() {
                    UNKNOWN.to_owned()
                } else {
                    i.systems.join(", ")
                },
            ),
            (
                "Categories of personal data".to_owned(),
                category_names(declaration, &i.categories, true),
            ),
            (
                "Categories of people concerned".to_owned(),
                people_kinds(declaration, &i.categories),
            ),
            (
                "Approximate number of people concerned".to_owned(),
                match i.datasets {
                    Some(d) if d.outside_vault > 0 => format!(
                        "{people}; and about {} more known only to the controller's own databases (told from there)",
                        d.outside_vault
                    ),
                    _ => people,
                },
            ),
            (
                "Approximate number of records concerned".to_owned(),
                match (i.estimated_records, i.datasets) {
                    (Some(n), _) => n.to_string(),
                    (None, Some(d)) => {
                        format!("{} rows in the controller's own databases", d.rows)
                    }
                    (None, None) => UNKNOWN.to_owned(),
                },
            ),
        ];
        if a.is_some_and(|a| a.sealed_only) {
            nature.push(("Encryption".to_owned(), SEALED_ONLY.to_owned()));
        }
        sections.push(Section {
            heading: "1. Nature of the breach (Art. 33(3)(a))".to_owned(),
            items: nature,
        });
        let mut contact = Vec::new();
        if let Some(dpo) = &c.dpo {
            contact.push((
                "Data protection officer".to_owned(),
                [dpo.name.clone(), dpo.email.clone(), dpo.phone.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
        if let Some(b) = &declaration.breach.contact {
            contact.push(("Breach contact".to_owned(), b.clone()));
        }
        if contact.is_empty() {
            contact.push(("Contact point".to_owned(), c.email.clone()));
        }
        sections.push(Section {
            heading: "2. Contact point for more information (Art. 33(3)(b))".to_owned(),
            items: contact,
        });
        sections.push(Section {
            heading: "3. Likely consequences (Art. 33(3)(c))".to_owned(),
            items: vec![
                (
                    "Risk to people".to_owned(),
                    a.map_or_else(
                        || UNKNOWN.to_owned(),
                        |a| format!("{} — {}", risk_words(a.risk), a.reason),
                    ),
                ),
                (
                    "Likely consequences".to_owned(),
                    a.map_or_else(|| UNKNOWN.to_owned(), |a| or_unknown(&a.consequences)),
                ),
            ],
        });
        let subjects_clock = view
            .clocks
            .iter()
            .find(|c| c.audience == "subjects")
            .map(|c| c.status);
        let emails = |state: &str| {
            view.deliveries
                .iter()
                .filter(|d| d.channel == "email" && d.state == state)
                .map(|d| d.count)
                .sum::<u64>()
        };
        let people_told = match (&i.people, a, subjects_clock) {
            (Some(p), _, _) => format!(
                "yes, from {} by {}{}",
                rfc3339(p.at),
                p.channels.join(", "),
                if emails("failed") > 0 {
                    format!(
                        " ({} e-mails sent, {} could not be delivered)",
                        emails("sent"),
                        emails("failed")
                    )
                } else {
                    String::new()
                }
            ),
            (None, Some(a), Some(ClockStatus::Exempt)) => format!(
                "no: {}",
                a.exemptions
                    .iter()
                    .map(|e| exemption_words(*e))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            (None, _, Some(ClockStatus::NotRequired)) => {
                "not required (the assessed risk, or nobody affected)".to_owned()
            }
            (None, _, _) => "not yet".to_owned(),
        };
        sections.push(Section {
            heading: "4. Measures (Art. 33(3)(d))".to_owned(),
            items: vec![
                (
                    "Measures taken or proposed, including to mitigate the effects".to_owned(),
                    a.map_or_else(|| UNKNOWN.to_owned(), |a| or_unknown(&a.measures)),
                ),
                ("People informed (Art. 34)".to_owned(), people_told),
            ],
        });
        let mut notification = Vec::new();
        for clock in &view.clocks {
            notification.push((
                format!(
                    "Deadline ({})",
                    if clock.audience == "subjects" {
                        "people"
                    } else {
                        "authority"
                    }
                ),
                format!(
                    "{} after awareness: {} ({})",
                    clock.within,
                    rfc3339(clock.due),
                    status_words(clock.status)
                ),
            ));
        }
        let phase = match i.authority.last() {
            None => "the initial notification".to_owned(),
            Some(last) => format!(
                "follows the {} notification of {}",
                phase_words(last.phase),
                rfc3339(last.at)
            ),
        };
        notification.push(("This report".to_owned(), phase));
        for n in &i.authority {
            notification.push((
                format!("Notified ({})", phase_words(n.phase)),
                format!(
                    "{}{}",
                    rfc3339(n.at),
                    n.reference
                        .as_ref()
                        .map(|r| format!(", the authority's reference {r}"))
                        .unwrap_or_default()
                ),
            ));
        }
        if let Some(reason) = i.authority.iter().find_map(|n| n.late_reason.clone()) {
            notification.push(("Reasons for the delay (Art. 33(1))".to_owned(), reason));
        }
        if let Some(authority) = &c.authority {
            notification.push(("Supervisory authority".to_owned(), authority.name.clone()));
        }
        sections.push(Section {
            heading: "5. Notification".to_owned(),
            items: notification,
        });
        Self {
            title: format!(
                "Personal data breach notification — {} — incident #{}",
                c.name, i.number
            ),
            generated_at: rfc3339(view.generated_at),
            sections,
        }
    }

    /// As Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# {}\n\nMade {}.\n",
            md(&self.title),
            md(&self.generated_at)
        );
        for s in &self.sections {
            out.push_str(&format!("\n## {}\n\n", md(&s.heading)));
            for (label, text) in &s.items {
                out.push_str(&format!("- **{}:** {}\n", md(label), md(text)));
            }
        }
        out
    }

    /// As a standalone HTML page.
    pub fn html(&self) -> String {
        let e = steward_policy::notice::escape;
        let mut out = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>body{{font-family:sans-serif;max-width:50rem;margin:2rem auto;line-height:1.5}}dt{{font-weight:bold}}dd{{margin:0 0 .6rem 0}}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p>Made {}.</p>\n",
            e(&self.title),
            e(&self.title),
            e(&self.generated_at)
        );
        for s in &self.sections {
            out.push_str(&format!("<section>\n<h2>{}</h2>\n<dl>\n", e(&s.heading)));
            for (label, text) in &s.items {
                out.push_str(&format!("<dt>{}</dt><dd>{}</dd>\n", e(label), e(text)));
            }
            out.push_str("</dl>\n</section>\n");
        }
        out.push_str("</body>\n</html>\n");
        out
    }
}

fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if "\\`*_[]<>#|".contains(ch) {
            out.push('\\');
        }
        out.push(if ch == '\n' { ' ' } else { ch });
    }
    out
}

fn risk_words(r: Risk) -> &'static str {
    match r {
        Risk::Unlikely => "unlikely to result in a risk",
        Risk::Risk => "likely to result in a risk",
        Risk::High => "likely to result in a high risk",
    }
}

fn exemption_words(e: Exemption) -> &'static str {
    match e {
        Exemption::Encrypted => "the data are unintelligible to whoever took them (Art. 34(3)(a))",
        Exemption::Mitigated => {
            "measures taken since make the high risk no longer likely (Art. 34(3)(b))"
        }
        Exemption::PublicCommunication => {
            "a public communication informs people as effectively (Art. 34(3)(c))"
        }
    }
}

/// The categories as people read them: each one's name, with its key for the authority
/// (`Email (user.contact.email)`).
pub fn category_names(declaration: &Declaration, keys: &[String], with_keys: bool) -> String {
    keys.iter()
        .map(|k| {
            match declaration
                .taxonomy
                .get(steward_policy::taxonomy::Kind::Category, k)
            {
                Some(t) if with_keys => format!("{} ({k})", t.name),
                Some(t) => t.name.clone(),
                None => k.clone(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn phase_words(p: Phase) -> &'static str {
    match p {
        Phase::Initial => "initial",
        Phase::FollowUp => "follow-up",
        Phase::Final => "final",
    }
}

fn status_words(s: ClockStatus) -> &'static str {
    match s {
        ClockStatus::Running => "running",
        ClockStatus::DueSoon => "due soon",
        ClockStatus::Overdue => "overdue",
        ClockStatus::Met => "met",
        ClockStatus::Late => "late",
        ClockStatus::NotRequired => "not required",
        ClockStatus::Exempt => "exempt",
        ClockStatus::Sending => "being sent",
    }
}

/// The kinds of people whose data the categories are (Art. 33(3)(a)): the subjects of the
/// purposes that collect them.
fn people_kinds(declaration: &Declaration, categories: &[String]) -> String {
    use steward_policy::taxonomy::covers;
    let mut kinds: Vec<String> = Vec::new();
    for p in &declaration.purposes {
        let collects = p
            .categories
            .iter()
            .any(|pc| categories.iter().any(|c| covers(pc, c) || covers(c, pc)));
        if collects {
            for s in &p.subjects {
                if !kinds.contains(s) {
                    kinds.push(s.clone());
                }
            }
        }
    }
    if kinds.is_empty() {
        UNKNOWN.to_owned()
    } else {
        kinds.join(", ")
    }
}

/// The message to an affected person, in clear and plain language (Art. 34(2)): what
/// happened and when, which of their data, the likely consequences, the measures, what they
/// can do, the contact point and the authority. Holds no personal data of theirs.
pub fn people_message(declaration: &Declaration, incident: &Incident) -> String {
    let c = &declaration.controller;
    let a = incident.assessment.as_ref();
    let contact = declaration
        .controller
        .dpo
        .as_ref()
        .and_then(|d| d.email.clone())
        .or_else(|| declaration.breach.contact.clone())
        .unwrap_or_else(|| c.email.clone());
    let day = |t: time::OffsetDateTime| t.date().to_string();
    let when = match (incident.occurred_from, incident.occurred_to) {
        (Some(f), Some(t)) if f.date() == t.date() => format!(" on {}", day(f)),
        (Some(f), Some(t)) => format!(" between {} and {}", day(f), day(t)),
        (Some(f), None) => format!(" from {}", day(f)),
        (None, Some(t)) => format!(" until {}", day(t)),
        (None, None) => String::new(),
    };
    let mut text = format!(
        "We are writing to tell you about a personal data breach at {} that concerns your data.\n\nWhat happened{when}: {}\n{}We learned of it on {}.\n\nYour data concerned: {}\n",
        c.name,
        incident.title,
        if incident.description.is_empty() {
            String::new()
        } else {
            format!("{}\n", incident.description)
        },
        day(incident.aware_at),
        category_names(declaration, &incident.categories, false),
    );
    if let Some(a) = a {
        if !a.consequences.is_empty() {
            text.push_str(&format!("\nWhat it may mean for you: {}\n", a.consequences));
        }
        if !a.measures.is_empty() {
            text.push_str(&format!("\nWhat we have done: {}\n", a.measures));
        }
    }
    text.push_str("\nWhat you can do: be wary of messages that ask for your password or payment details, even when they seem to come from us; we never ask for them by e-mail.\n");
    if incident.categories.iter().any(|c| {
        steward_policy::taxonomy::covers(c, "user.authorization.credentials")
            || steward_policy::taxonomy::covers("user.authorization", c)
    }) {
        text.push_str("Please change your password, and anywhere else you used the same one.\n");
    }
    let authority = c.authority.as_ref().map_or_else(
        || "the data protection authority".to_owned(),
        |a| a.name.clone(),
    );
    text.push_str(&format!(
        "\nIf you have questions, write to {contact}. You may also complain to {authority}.\n\nReference: breach #{} of {}\n",
        incident.number, c.name
    ));
    text
}
