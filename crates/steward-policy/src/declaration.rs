//! The validated declaration: what [`crate::check`] produces when `privacy.toml` has no errors.
//! Every value here is typed (durations, retention rules, lawful bases, taxonomy keys that
//! exist), so the engine, the notice and the record of processing read facts, not strings.

use std::collections::BTreeMap;

use serde::Serialize;
use time::Date;

use crate::duration::{Duration, Lifetime};
use crate::retention::Retention;
use crate::taxonomy::{Taxonomy, covers};

/// Defines a closed vocabulary: an enum, its written forms, parsing and display.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, as written in the declaration.
            pub const ALL: &'static [($name, &'static str)] = &[$(($name::$variant, $text)),+];

            /// How the value is written in the declaration.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Reads a value as written in the declaration.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().find(|(_, t)| *t == text).map(|(v, _)| *v)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// The lawful basis of a purpose (GDPR Art. 6(1)).
    LawfulBasis {
        /// Art. 6(1)(a): the person agreed.
        Consent = "consent",
        /// Art. 6(1)(b): needed for a contract with the person.
        Contract = "contract",
        /// Art. 6(1)(c): the law requires it.
        LegalObligation = "legal-obligation",
        /// Art. 6(1)(d): to protect someone's life.
        VitalInterest = "vital-interest",
        /// Art. 6(1)(e): a task in the public interest.
        PublicTask = "public-task",
        /// Art. 6(1)(f): the controller's legitimate interest, balanced against the person's.
        LegitimateInterest = "legitimate-interest",
    }
}

vocabulary! {
    /// How consent is asked for.
    ConsentMode {
        /// Nothing happens until the person says yes.
        OptIn = "opt-in",
        /// Yes, then a confirmation by e-mail link before anything happens.
        DoubleOptIn = "double-opt-in",
        /// Allowed until the person says no (CCPA sale/share, soft opt-in).
        OptOut = "opt-out",
    }
}

vocabulary! {
    /// What a recipient is to the controller.
    Role {
        /// Processes on the controller's behalf under a DPA (GDPR Art. 28).
        Processor = "processor",
        /// A processor's processor.
        SubProcessor = "sub-processor",
        /// An independent controller receiving data.
        ThirdParty = "third-party",
        /// Decides purposes and means together with the controller (Art. 26).
        JointController = "joint-controller",
        /// A public authority receiving data under the law.
        Authority = "authority",
    }
}

vocabulary! {
    /// The safeguard for a transfer to a third country (GDPR Chapter V).
    Safeguard {
        /// Art. 45: the country was found adequate.
        Adequacy = "adequacy",
        /// Art. 46(2)(c): standard contractual clauses.
        Scc = "scc",
        /// Art. 47: binding corporate rules.
        Bcr = "bcr",
        /// The EU-US (or Swiss-US) Data Privacy Framework, for certified US companies.
        Dpf = "dpf",
        /// Art. 46(2)(e): an approved code of conduct.
        CodeOfConduct = "code-of-conduct",
        /// Art. 46(2)(f): an approved certification.
        Certification = "certification",
        /// Art. 49(1)(a): the person's explicit consent to the transfer.
        ExplicitConsent = "explicit-consent",
        /// Art. 49(1)(b): necessary for a contract with the person.
        Contract = "contract",
    }
}

vocabulary! {
    /// A kind of cookie or similar technology.
    CookieCategory {
        /// Needed for the service the person asked for; no consent needed.
        Necessary = "necessary",
        /// Remembers choices such as language or comment details.
        Preferences = "preferences",
        /// Measures use of the site.
        Analytics = "analytics",
        /// Serves or measures advertisements.
        Advertising = "advertising",
    }
}

vocabulary! {
    /// A right a person can exercise.
    Right {
        /// See the data (GDPR Art. 15).
        Access = "access",
        /// Get the data in a portable format (Art. 20).
        Portability = "portability",
        /// Correct the data (Art. 16).
        Rectification = "rectification",
        /// Erase the data (Art. 17).
        Erasure = "erasure",
        /// Restrict processing (Art. 18).
        Restriction = "restriction",
        /// Object to processing (Art. 21).
        Objection = "objection",
        /// Opt out of sale or sharing (CCPA §1798.120).
        OptOutSaleShare = "opt-out-sale-share",
        /// Withdraw consent (Art. 7(3)).
        WithdrawConsent = "withdraw-consent",
    }
}

vocabulary! {
    /// How a person proves who they are before a request is carried out.
    Verification {
        /// A link sent by e-mail.
        EmailLink = "email-link",
        /// A 6-digit code sent by e-mail.
        EmailCode = "email-code",
        /// The operator's application vouches for a signed-in person.
        Account = "account",
    }
}

vocabulary! {
    /// A format of the access package.
    ExportFormat {
        /// A readable, self-contained page.
        Html = "html",
        /// Machine-readable JSON.
        Json = "json",
        /// One CSV file per group.
        Csv = "csv",
        /// A spreadsheet workbook.
        Xlsx = "xlsx",
    }
}

vocabulary! {
    /// A way of telling people something.
    Channel {
        /// By e-mail.
        Email = "email",
        /// A notification inside the operator's application.
        InApp = "in-app",
        /// On the website (the privacy notice page).
        Website = "website",
        /// By post.
        Post = "post",
        /// By telephone.
        Phone = "phone",
    }
}

vocabulary! {
    /// When a breach clock applies.
    BreachCondition {
        /// After every breach of personal data.
        Always = "always",
        /// Unless the breach is unlikely to result in a risk (GDPR Art. 33).
        Risk = "risk",
        /// When the breach is likely to result in a high risk (GDPR Art. 34).
        HighRisk = "high-risk",
    }
}

/// The whole validated declaration.
#[derive(Debug, Clone, Serialize)]
pub struct Declaration {
    /// Version, dates and change log of the policy.
    pub policy: Policy,
    /// Who is responsible.
    pub controller: Controller,
    /// The standard taxonomy plus the declaration's own keys.
    #[serde(skip)]
    pub taxonomy: Taxonomy,
    /// The processing activities.
    pub purposes: Vec<Purpose>,
    /// Processors and other recipients.
    pub processors: Vec<Processor>,
    /// Cookies and similar technologies.
    pub cookies: Vec<Cookie>,
    /// Content embedded from other sites.
    pub embeds: Vec<Embed>,
    /// Rights and how requests are answered.
    pub rights: Rights,
    /// Breach notification clocks.
    pub breach: Breach,
    /// Browser signals honoured.
    pub signals: Signals,
    /// Security measures.
    pub security: Security,
    /// The operator's own databases (manifests are read by the connectors).
    pub datasets: Vec<Dataset>,
    /// How long Steward keeps its own records, and when its retention sweeps run
    /// (`[retention]`).
    pub records: Records,
    /// What aggregated figures may be shared (`[aggregates]`).
    pub aggregates: Aggregates,
    /// The privacy centre's look and words (`[centre]`).
    pub centre: crate::centre::Centre,
    /// The lint's warnings when the declaration was checked (`code at place: message`), for
    /// the admin console; errors never reach a declaration.
    pub warnings: Vec<String>,
}

/// How long Steward keeps its own records (`[retention]`), each period counted from the event
/// named, and when the retention sweeps run. Defaults in brackets.
///
/// ```toml
/// [retention]
/// schedule = "daily"            # or "hourly", or a cron expression: "30 2 * * *" (UTC)
/// consent_proof = "3 years"     # a withdrawn consent's proof, after the withdrawal
/// request_contact = "30 days"   # a finished request's sealed address, after it finished
/// requests = "24 months"        # a finished request's record (CCPA Regs. § 7101: 24 months)
/// mail = "30 days"              # messages in the outbox folder, after they were written
/// audit = "6 years"             # audit entries, after they were written (absent: kept)
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Records {
    /// When the sweeps run: a cron expression with five fields (minute hour day month
    /// weekday, UTC) [`0 3 * * *`, daily at 03:00].
    pub schedule: String,
    /// How long a withdrawn consent's proof keeps its personal part (the person's id, the
    /// browser's user agent and address hash) after the withdrawal [3 years].
    pub consent_proof: Duration,
    /// How long a finished request keeps the person's sealed address [30 days].
    pub request_contact: Duration,
    /// How long a finished request's record is kept [24 months].
    pub requests: Duration,
    /// How long a message stays in the outbox folder [30 days].
    pub mail: Duration,
    /// How long audit entries are kept; `None` keeps them.
    pub audit: Option<Duration>,
}

impl Default for Records {
    fn default() -> Self {
        Self {
            schedule: DAILY.to_owned(),
            consent_proof: Duration::new(3, crate::Unit::Year),
            request_contact: Duration::new(30, crate::Unit::Day),
            requests: Duration::new(24, crate::Unit::Month),
            mail: Duration::new(30, crate::Unit::Day),
            audit: None,
        }
    }
}

/// The default sweep schedule: every day at 03:00 UTC.
pub const DAILY: &str = "0 3 * * *";

/// Reads a sweep schedule: `daily`, `hourly`, or a cron expression of five fields (UTC), into
/// the cron expression it means.
///
/// # Errors
/// The cron parser's reason, when the text is neither.
pub fn schedule(text: &str) -> Result<String, String> {
    let text = text.trim();
    let cron = match text.to_ascii_lowercase().as_str() {
        "daily" => DAILY.to_owned(),
        "hourly" => "0 * * * *".to_owned(),
        _ => text.to_owned(),
    };
    if cron.split_whitespace().count() != 5 {
        return Err(format!(
            "`{text}` is not a schedule: write \"daily\", \"hourly\" or a cron expression of five fields (minute hour day month weekday, UTC)"
        ));
    }
    croner::Cron::new(&cron)
        .parse()
        .map(|_| cron.clone())
        .map_err(|e| format!("`{text}` is not a cron expression: {e}"))
}

/// The policy's identity over time.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    /// The current version (`"2.1"`).
    pub version: String,
    /// When this version takes effect.
    pub effective: Option<Date>,
    /// Whether people must accept this version to keep using the service.
    pub must_accept: bool,
    /// The language of the notice (BCP 47, `en`).
    pub language: String,
    /// Where the notice is published.
    pub url: Option<String>,
    /// How people are told about changes.
    pub notify_changes: Vec<Channel>,
    /// Earlier versions and what changed, newest first as written.
    pub changelog: Vec<Change>,
}

/// One entry of the change log.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The version this entry describes.
    pub version: String,
    /// When it was published.
    pub date: Date,
    /// What changed, in plain words.
    pub summary: String,
}

/// The controller: who decides why and how personal data is processed.
#[derive(Debug, Clone, Serialize)]
pub struct Controller {
    /// The name people know.
    pub name: String,
    /// The registered legal name, when different.
    pub legal_name: Option<String>,
    /// Other names the controller trades under.
    pub trade_names: Vec<String>,
    /// Postal address.
    pub address: Option<String>,
    /// Country of establishment (ISO 3166-1 alpha-2).
    pub country: String,
    /// Privacy contact e-mail.
    pub email: String,
    /// Telephone.
    pub phone: Option<String>,
    /// Website.
    pub website: Option<String>,
    /// Countries where the data is stored.
    pub data_location: Vec<String>,
    /// Data protection officer.
    pub dpo: Option<Contact>,
    /// Representative in the EU (Art. 27) or elsewhere.
    pub representative: Option<Contact>,
    /// The supervisory authority people may complain to.
    pub authority: Option<Authority>,
}

/// A person or office to contact.
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    /// Name.
    pub name: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Telephone.
    pub phone: Option<String>,
    /// Postal address.
    pub address: Option<String>,
}

/// A supervisory authority.
#[derive(Debug, Clone, Serialize)]
pub struct Authority {
    /// Its name.
    pub name: String,
    /// Its country.
    pub country: Option<String>,
    /// Its website.
    pub website: Option<String>,
    /// Its e-mail.
    pub email: Option<String>,
    /// Its postal address.
    pub address: Option<String>,
}

/// Where a purpose's data comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "from")]
pub enum DataSource {
    /// The person gave it (a form, an e-mail).
    Provided,
    /// Collected automatically from the person's device or use of the service.
    Observed,
    /// Inferred from other data.
    Derived,
    /// Received from a declared third party (its id).
    ThirdParty(String),
}

/// A transfer to a country outside the controller's zone.
#[derive(Debug, Clone, Serialize)]
pub struct Transfer {
    /// Destination (ISO 3166-1 alpha-2).
    pub country: String,
    /// What makes it lawful.
    pub safeguard: Safeguard,
    /// The recipient (processor id), when the transfer is to one recipient.
    pub recipient: Option<String>,
}

/// Data kept despite an erasure request because the law requires it.
#[derive(Debug, Clone, Serialize)]
pub struct LegalHold {
    /// Why, as reported to the person in the erasure receipt.
    pub reason: String,
}

/// A processing activity: why data is processed, on what basis, for how long, shared with whom.
#[derive(Debug, Clone, Serialize)]
pub struct Purpose {
    /// Stable identifier (`newsletter`).
    pub id: String,
    /// Human name (`Newsletter`).
    pub name: String,
    /// What is done and why, in plain words.
    pub description: Option<String>,
    /// The data use (taxonomy key).
    #[serde(rename = "use")]
    pub data_use: String,
    /// The lawful basis.
    pub basis: LawfulBasis,
    /// The legitimate interest pursued, when the basis is legitimate interest.
    pub legitimate_interest: Option<String>,
    /// How consent is asked for (consent basis, or an opt-out for sale/share).
    pub consent: Option<ConsentMode>,
    /// Categories of personal data (taxonomy keys).
    pub categories: Vec<String>,
    /// Categories of data subjects (taxonomy keys).
    pub subjects: Vec<String>,
    /// Where the data comes from.
    pub source: DataSource,
    /// How long the data is kept, unless a category has its own rule in `retain`.
    pub retention: Option<Retention>,
    /// Retention per category (the most specific key that covers a category wins).
    pub retain: BTreeMap<String, Retention>,
    /// Who receives the data (processor ids).
    pub recipients: Vec<String>,
    /// Transfers to third countries.
    pub transfers: Vec<Transfer>,
    /// Whether the data is sold (CCPA).
    pub sale: bool,
    /// Whether the data is shared for cross-context behavioural advertising (CPRA).
    pub share: bool,
    /// Set when the data survives an erasure request.
    pub legal_hold: Option<LegalHold>,
    /// Whether Steward's vault stores the data (false when only a processor handles it).
    pub stored: bool,
    /// Automated decisions or profiling, described (GDPR Art. 13(2)(f)).
    pub automated_decisions: Option<String>,
    /// Whether providing the data is required, and so what happens if it is not given.
    pub required: Option<bool>,
    /// Purposes whose data this one may also use: the controller judged this purpose
    /// compatible with the one the data was collected for (GDPR Art. 6(4)). Without it, a
    /// purpose sees only what was collected for it (or what the person consented to it using).
    pub compatible_with: Vec<String>,
}

impl Purpose {
    /// Whether this purpose may use data collected for `collected_for`: its own, or one it is
    /// declared compatible with.
    pub fn may_use_collected_for(&self, collected_for: &str) -> bool {
        self.id == collected_for || self.compatible_with.iter().any(|c| c == collected_for)
    }
}

impl Purpose {
    /// The retention rule for one of this purpose's categories: the most specific entry of
    /// `retain` that covers it, else the purpose's own retention.
    pub fn retention_for(&self, category: &str) -> Option<&Retention> {
        self.retain
            .iter()
            .filter(|(rule, _)| covers(rule, category))
            .max_by_key(|(rule, _)| rule.len())
            .map(|(_, r)| r)
            .or(self.retention.as_ref())
    }

    /// Whether this purpose collects `category` (or a category under it).
    pub fn collects(&self, category: &str) -> bool {
        self.categories
            .iter()
            .any(|c| covers(c, category) || covers(category, c))
    }
}

/// A processor or other recipient of personal data.
#[derive(Debug, Clone, Serialize)]
pub struct Processor {
    /// Stable identifier (`mailchimp`).
    pub id: String,
    /// Name shown to people.
    pub name: String,
    /// What it is to the controller.
    pub role: Role,
    /// What it does for the controller.
    pub service: Option<String>,
    /// Categories shared with it: those declared, or when none are, the union of the
    /// categories of the purposes naming it in `recipients` (what Art. 19 notices cover).
    pub categories: Vec<String>,
    /// Whether `categories` was filled from the purposes naming it (none were declared).
    pub categories_from_purposes: bool,
    /// Where it processes the data.
    pub country: Option<String>,
    /// The transfer safeguard, when its country needs one.
    pub safeguard: Option<Safeguard>,
    /// Whether a data processing agreement is signed.
    pub dpa: Option<bool>,
    /// Its privacy policy.
    pub privacy_policy: Option<String>,
    /// Where people can opt out with it directly.
    pub opt_out: Option<String>,
    /// Where to send Art. 19 notices (e-mail or URL).
    pub contact: Option<String>,
}

/// A cookie or similar technology set in the person's browser.
#[derive(Debug, Clone, Serialize)]
pub struct Cookie {
    /// Its name, or a pattern with `*` (`wordpress_logged_in_*`).
    pub name: String,
    /// Who sets it: `None` for the site itself, else a processor id.
    pub provider: Option<String>,
    /// Its kind.
    pub category: CookieCategory,
    /// The purpose it serves (required unless necessary).
    pub purpose: Option<String>,
    /// What it does, in plain words.
    pub description: Option<String>,
    /// How long it lives.
    pub lifetime: Lifetime,
    /// A longer lifetime in some case ("2 weeks when Remember Me is selected").
    pub extended: Option<ExtendedLifetime>,
    /// Whether it holds personal data.
    pub personal_data: bool,
}

/// A cookie's longer lifetime and when it applies.
#[derive(Debug, Clone, Serialize)]
pub struct ExtendedLifetime {
    /// How long.
    pub lifetime: Lifetime,
    /// When.
    pub when: String,
}

/// Content embedded from another site.
#[derive(Debug, Clone, Serialize)]
pub struct Embed {
    /// Stable identifier.
    pub id: String,
    /// The provider's name (`YouTube`).
    pub name: String,
    /// What is embedded (`videos`).
    pub content: Option<String>,
    /// The provider's privacy policy.
    pub privacy_policy: Option<String>,
    /// The consent purpose that must allow it before it loads.
    pub purpose: Option<String>,
}

/// Rights and how requests are answered.
#[derive(Debug, Clone, Serialize)]
pub struct Rights {
    /// The rights offered.
    pub available: Vec<Right>,
    /// The answer deadline, counted from receipt.
    pub deadline: Duration,
    /// How much longer an answer may take, with the reason told to the person.
    pub extension: Option<Duration>,
    /// Deadline to acknowledge receipt (CCPA: 10 business days).
    pub acknowledge: Option<Duration>,
    /// Deadline to act on an opt-out of sale/share (CCPA: 15 business days).
    pub opt_out_deadline: Duration,
    /// Days that do not count as business days.
    pub holidays: Vec<Date>,
    /// Accepted ways of proving identity.
    pub verification: Vec<Verification>,
    /// How long a verification link or code stays valid.
    pub verification_expires: Duration,
    /// How long an unverified request waits before it expires.
    pub unverified_expire: Duration,
    /// Whether staff approve requests before they are carried out.
    pub approval: bool,
    /// Whether a person whose e-mail address is corrected is told at the old and the new one
    /// (a changed sign-in address is how accounts are taken over).
    pub notify_identity_change: bool,
    /// Categories that can never be changed (a username).
    pub immutable: Vec<String>,
    /// Languages requests may be written in.
    pub languages: Vec<String>,
    /// Where to send requests.
    pub contact: String,
    /// The privacy centre's address.
    pub url: Option<String>,
    /// Formats of the access package.
    pub export_formats: Vec<ExportFormat>,
}

/// Breach notification clocks, counted from when the controller became aware.
#[derive(Debug, Clone, Serialize)]
pub struct Breach {
    /// The supervisory authority.
    pub authority: Option<BreachClock>,
    /// The people affected.
    pub subjects: Option<BreachClock>,
    /// Who handles breaches.
    pub contact: Option<String>,
    /// The operator's application's address that a breach's forced password resets are
    /// posted to (a signed webhook, `steward recipient secret password-reset`).
    pub password_reset: Option<String>,
}

/// What aggregated figures may be shared (`[aggregates]`): every group smaller than `k`
/// people is suppressed (k-anonymity).
///
/// ```toml
/// [aggregates]
/// k = 10        # the default
/// ```
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Aggregates {
    /// The smallest group shown, in people [10].
    pub k: u64,
}

impl Default for Aggregates {
    fn default() -> Self {
        Self { k: 10 }
    }
}

/// One audience's clock.
#[derive(Debug, Clone, Serialize)]
pub struct BreachClock {
    /// The deadline.
    pub within: Duration,
    /// How they are told.
    pub channels: Vec<Channel>,
    /// When the clock applies.
    pub when: BreachCondition,
}

/// Browser signals honoured.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Signals {
    /// Global Privacy Control: an opt-out of sale and sharing.
    pub gpc: bool,
    /// Do Not Track: no tracking or advertising.
    pub dnt: bool,
}

/// Technical and organisational security measures (GDPR Art. 32).
#[derive(Debug, Clone, Serialize)]
pub struct Security {
    /// The measures, each in a sentence.
    pub measures: Vec<String>,
    /// Who may access personal data, and how.
    pub access: Option<String>,
}

/// One of the operator's own databases.
#[derive(Debug, Clone, Serialize)]
pub struct Dataset {
    /// Stable identifier.
    pub id: String,
    /// What it holds.
    pub description: Option<String>,
    /// The path of its manifest (relative to the declaration).
    pub manifest: Option<String>,
}

impl Declaration {
    /// The purpose with this id.
    pub fn purpose(&self, id: &str) -> Option<&Purpose> {
        self.purposes.iter().find(|p| p.id == id)
    }

    /// The processor with this id.
    pub fn processor(&self, id: &str) -> Option<&Processor> {
        self.processors.iter().find(|p| p.id == id)
    }

    /// Whether any purpose sells or shares personal data.
    pub fn sells_or_shares(&self) -> bool {
        self.purposes.iter().any(|p| p.sale || p.share)
    }

    /// Every category collected by some purpose, in order, once.
    pub fn collected_categories(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .purposes
            .iter()
            .flat_map(|p| p.categories.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// Personal data leaving the controller's zone (its country, or the EEA for an EEA controller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flow {
    /// The purpose the data is processed for.
    pub purpose: String,
    /// The recipient (processor id), when the flow is to one recipient.
    pub recipient: Option<String>,
    /// Destination country.
    pub country: String,
    /// The safeguard, when one is declared.
    pub safeguard: Option<Safeguard>,
}

impl Declaration {
    /// Every flow of personal data to a third country: to a recipient located there, or
    /// declared as a transfer of a purpose. A checked declaration has a safeguard on each.
    pub fn third_country_flows(&self) -> Vec<Flow> {
        let home = self.controller.country.as_str();
        let mut flows = Vec::new();
        for p in &self.purposes {
            for r in &p.recipients {
                let Some(proc) = self.processor(r) else {
                    continue;
                };
                let Some(country) = proc.country.as_deref() else {
                    continue;
                };
                if crate::country::same_zone(home, country) {
                    continue;
                }
                let declared = p
                    .transfers
                    .iter()
                    .find(|t| t.country == country && t.recipient.as_ref().is_none_or(|x| x == r))
                    .map(|t| t.safeguard);
                flows.push(Flow {
                    purpose: p.id.clone(),
                    recipient: Some(r.clone()),
                    country: country.to_owned(),
                    safeguard: declared.or(proc.safeguard),
                });
            }
            for t in &p.transfers {
                let already = flows.iter().any(|f| {
                    f.purpose == p.id
                        && f.country == t.country
                        && t.recipient
                            .as_ref()
                            .is_none_or(|r| f.recipient.as_ref() == Some(r))
                });
                if !already {
                    flows.push(Flow {
                        purpose: p.id.clone(),
                        recipient: t.recipient.clone(),
                        country: t.country.clone(),
                        safeguard: Some(t.safeguard),
                    });
                }
            }
        }
        flows
    }
}
