//! Permits: may purpose P use this person's (or this browser's) data now?
//!
//! The answer is derived from the consent ledger's current state, kept in memory and updated
//! event by event ([`PermitState::apply`]), so a decision is a hash lookup and a few comparisons
//! — never a replay of the ledger. The rules, in the order they are tried:
//!
//! 0. an erased person stays erased: every purpose is denied but legal holds (`erased`,
//!    `legal-hold`), in every process and after every restart, since the erasure is an event
//!    on the ledger;
//! 1. a closed account blocks every purpose but legal holds (`account-closed`, `legal-hold`);
//! 2. a restriction (Art. 18) blocks every purpose but legal holds (`restricted`);
//! 3. an objection (Art. 21) blocks purposes based on consent, legitimate interest or a public
//!    task, and every direct-marketing purpose whatever its basis (`objected`);
//! 4. a sale or share purpose is denied once GPC was received for the browser or a linked
//!    subject, when the declaration honours GPC (`gpc-opt-out`); a later request without the
//!    signal is not an opt-in;
//! 5. tracking and advertising purposes are denied after Do Not Track where the declaration
//!    honours it (`dnt`);
//! 6. service purposes (basis `contract`) are denied until the latest must-accept policy
//!    version is accepted (`policy-not-accepted`);
//! 7. consent purposes need a consent (confirmed, for double opt-in) given for the current terms
//!    (`no-consent`, `withdrawn`, `not-confirmed`, `terms-changed`, `consent-given`); opt-out
//!    purposes are allowed until withdrawn (`allowed-by-opt-out`);
//! 8. every other purpose is allowed by its basis (`allowed-by-basis`).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use steward_policy::declaration::{ConsentMode, Declaration, LawfulBasis};

use crate::consent::{Action, Party, SealedEvent, Signal, terms};
use crate::subject::SubjectId;

/// Why a permit was given or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// A current consent for the current terms.
    ConsentGiven,
    /// The purpose's lawful basis is not consent and nothing blocks it.
    AllowedByBasis,
    /// An opt-out purpose nobody opted out of.
    AllowedByOptOut,
    /// A legal hold survives closure and restriction.
    LegalHold,
    /// No consent was ever given.
    NoConsent,
    /// The consent was withdrawn.
    Withdrawn,
    /// Double opt-in: the confirmation link was not followed yet.
    NotConfirmed,
    /// The consent was given for terms that have since changed: ask again.
    TermsChanged,
    /// The person objected.
    Objected,
    /// Processing is restricted.
    Restricted,
    /// The account is closed.
    AccountClosed,
    /// Global Privacy Control was received: no sale or sharing.
    GpcOptOut,
    /// Do Not Track was received: no tracking or advertising.
    Dnt,
    /// A policy version that must be accepted has not been.
    PolicyNotAccepted,
    /// The person was erased: only what a legal hold keeps may still be used.
    Erased,
}

impl Reason {
    /// Every reason.
    pub const ALL: [Self; 15] = [
        Self::ConsentGiven,
        Self::AllowedByBasis,
        Self::AllowedByOptOut,
        Self::LegalHold,
        Self::NoConsent,
        Self::Withdrawn,
        Self::NotConfirmed,
        Self::TermsChanged,
        Self::Objected,
        Self::Restricted,
        Self::AccountClosed,
        Self::GpcOptOut,
        Self::Dnt,
        Self::PolicyNotAccepted,
        Self::Erased,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::ConsentGiven => "consent-given",
            Self::AllowedByBasis => "allowed-by-basis",
            Self::AllowedByOptOut => "allowed-by-opt-out",
            Self::LegalHold => "legal-hold",
            Self::NoConsent => "no-consent",
            Self::Withdrawn => "withdrawn",
            Self::NotConfirmed => "not-confirmed",
            Self::TermsChanged => "terms-changed",
            Self::Objected => "objected",
            Self::Restricted => "restricted",
            Self::AccountClosed => "account-closed",
            Self::GpcOptOut => "gpc-opt-out",
            Self::Dnt => "dnt",
            Self::PolicyNotAccepted => "policy-not-accepted",
            Self::Erased => "erased",
        }
    }

    /// Whether the reason allows.
    pub fn allows(self) -> bool {
        matches!(
            self,
            Self::ConsentGiven | Self::AllowedByBasis | Self::AllowedByOptOut | Self::LegalHold
        )
    }
}

/// A permit decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    /// Whether the purpose may use the data.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
}

impl From<Reason> for Decision {
    fn from(reason: Reason) -> Self {
        Self {
            allowed: reason.allows(),
            reason,
        }
    }
}

/// A purpose, compiled for decisions.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The purpose id.
    pub id: String,
    /// Its lawful basis.
    pub basis: LawfulBasis,
    /// How consent is asked (consent purposes only).
    pub mode: Option<ConsentMode>,
    /// Direct marketing: an objection is absolute.
    pub marketing: bool,
    /// Tracking or advertising: Do Not Track applies.
    pub tracking: bool,
    /// Sale or sharing: GPC applies.
    pub sale_share: bool,
    /// A legal hold: survives closure and restriction.
    pub legal_hold: bool,
    /// The fingerprint of its current terms.
    pub terms: u64,
    /// The same, as written in events.
    pub terms_text: String,
}

impl Rule {
    /// Whether the right to object (Art. 21) reaches the purpose.
    pub fn objectable(&self) -> bool {
        self.marketing
            || matches!(
                self.basis,
                LawfulBasis::Consent | LawfulBasis::LegitimateInterest | LawfulBasis::PublicTask
            )
    }
}

/// Reads a terms fingerprint as written in events.
pub fn terms_value(text: &str) -> u64 {
    u64::from_str_radix(text, 16).unwrap_or(0)
}

/// The declaration's purposes and signals, compiled, and the policy versions served so far.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The purposes, in declaration order (a purpose's index is its place here).
    pub purposes: Vec<Rule>,
    index: HashMap<String, u16>,
    gpc: bool,
    dnt: bool,
    /// Every policy version served, oldest first.
    versions: Vec<String>,
    /// The index (from 1) of the newest version that must be accepted; 0 for none.
    required: u32,
}

impl Rules {
    /// Compiles `declaration`; `versions` are the policy versions served so far (oldest first,
    /// with whether each must be accepted), the declaration's own included.
    pub fn new(declaration: &Declaration, versions: &[(String, bool)]) -> Self {
        let purposes: Vec<Rule> = declaration
            .purposes
            .iter()
            .map(|p| {
                let terms_text = terms(p);
                let data_use = p.data_use.as_str();
                Rule {
                    id: p.id.clone(),
                    basis: p.basis,
                    mode: p.consent,
                    marketing: data_use.starts_with("marketing"),
                    tracking: data_use.starts_with("analytics")
                        || data_use.starts_with("marketing.advertising")
                        || data_use.starts_with("personalize"),
                    sale_share: p.sale || p.share,
                    legal_hold: p.legal_hold.is_some() || p.basis == LawfulBasis::LegalObligation,
                    terms: terms_value(&terms_text),
                    terms_text,
                }
            })
            .collect();
        let index = (0u16..)
            .zip(&purposes)
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        let required = (1u32..)
            .zip(versions)
            .filter(|(_, (_, must))| *must)
            .map(|(i, _)| i)
            .last()
            .unwrap_or(0);
        Self {
            purposes,
            index,
            gpc: declaration.signals.gpc,
            dnt: declaration.signals.dnt,
            versions: versions.iter().map(|(v, _)| v.clone()).collect(),
            required,
        }
    }

    /// A purpose's index.
    pub fn purpose(&self, id: &str) -> Option<u16> {
        self.index.get(id).copied()
    }

    /// A purpose by index.
    pub fn rule(&self, index: u16) -> Option<&Rule> {
        self.purposes.get(usize::from(index))
    }

    /// The newest policy version that must be accepted.
    pub fn required_version(&self) -> Option<&str> {
        let i = usize::try_from(self.required).ok()?.checked_sub(1)?;
        self.versions.get(i).map(String::as_str)
    }

    fn version_index(&self, version: &str) -> u32 {
        (1u32..)
            .zip(&self.versions)
            .find(|(_, v)| *v == version)
            .map_or(0, |(i, _)| i)
    }
}

const GPC: u8 = 1;
const DNT: u8 = 2;
const CLOSED: u8 = 4;
const RESTRICTED: u8 = 8;
const OBJECTED: u8 = 16;
const ERASED: u8 = 32;

/// Where a purpose's consent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consent {
    /// Never asked or never answered.
    #[default]
    None,
    /// Given, waiting for its confirmation (double opt-in).
    Granted,
    /// Given (and confirmed where needed).
    Confirmed,
    /// Withdrawn.
    Withdrawn,
}

#[derive(Debug, Clone, Copy, Default)]
struct PurposeState {
    purpose: u16,
    consent: Consent,
    objected: bool,
    restricted: bool,
    terms: u64,
    /// The grant event's sequence number (a confirmation link names it).
    grant: u64,
    /// The last event's sequence number.
    seq: u64,
}

#[derive(Debug, Clone, Default)]
struct PartyState {
    flags: u8,
    accepted: u32,
    link: Option<SubjectId>,
    purposes: Vec<PurposeState>,
}

impl PartyState {
    fn purpose(&self, p: u16) -> Option<&PurposeState> {
        self.purposes.iter().find(|s| s.purpose == p)
    }

    fn purpose_mut(&mut self, p: u16) -> &mut PurposeState {
        let at = match self.purposes.iter().position(|s| s.purpose == p) {
            Some(i) => i,
            None => {
                self.purposes.push(PurposeState {
                    purpose: p,
                    ..PurposeState::default()
                });
                self.purposes.len() - 1
            }
        };
        &mut self.purposes[at]
    }
}

/// A hasher for ids that are random already (subject UUIDs, device ids): a multiply-fold, much
/// cheaper than SipHash on the hot path. Keys come only from ids Steward issued and signed.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write(&[i]);
    }
    fn write_usize(&mut self, i: usize) {
        self.write(&i.to_le_bytes());
    }
    fn write_isize(&mut self, i: isize) {
        self.write(&i.to_le_bytes());
    }
}

/// Builds [`IdHasher`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdHash;

impl BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher::default()
    }
}

/// A party's current state for one purpose, for history pages and exports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PurposeStatus {
    /// The purpose id.
    pub purpose: String,
    /// Where consent stands.
    pub consent: Consent,
    /// Whether the person objected.
    pub objected: bool,
    /// Whether processing is restricted.
    pub restricted: bool,
    /// Whether the consent was given for the current terms.
    pub current_terms: bool,
}

/// The current state of every party, derived from the ledger.
#[derive(Debug, Default)]
pub struct PermitState {
    parties: HashMap<Party, PartyState, IdHash>,
    seq: u64,
}

impl PermitState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last event applied.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// How many parties have state.
    pub fn parties(&self) -> usize {
        self.parties.len()
    }

    /// Reserves room for `n` more parties.
    pub fn reserve(&mut self, n: usize) {
        self.parties.reserve(n);
    }

    /// Applies one event (events must come in ledger order; older ones are ignored).
    pub fn apply(&mut self, rules: &Rules, e: &SealedEvent) {
        if e.seq <= self.seq {
            return;
        }
        self.seq = e.seq;
        let ev = &e.event;
        // An event stripped of its personal part belongs to nobody: no one's state.
        if e.is_redacted() {
            return;
        }
        let purpose = ev.purpose.as_deref().and_then(|p| rules.purpose(p));
        if ev.purpose.is_some() && purpose.is_none() {
            // A purpose no longer declared: nothing is decided for it.
            return;
        }
        let terms = ev.terms.as_deref().map_or(0, terms_value);
        let link = self.parties.get(&ev.party).and_then(|s| s.link);
        let state = self.parties.entry(ev.party).or_default();
        change(
            state, rules, ev.action, purpose, ev.signal, terms, e.seq, &ev.policy,
        );
        match ev.action {
            Action::Link => {
                let Some(subject) = ev.link else { return };
                state.link = Some(subject);
                let device = state.clone();
                let target = self.parties.entry(Party::Subject(subject)).or_default();
                // Protective flags follow the person; consents the subject has no answer for
                // are taken from the browser.
                target.flags |= device.flags & (GPC | DNT);
                for p in device.purposes {
                    let t = target.purpose_mut(p.purpose);
                    if t.consent == Consent::None
                        || (p.consent == Consent::Withdrawn && p.seq > t.seq)
                    {
                        t.consent = p.consent;
                        t.terms = p.terms;
                        t.grant = p.grant;
                        t.seq = p.seq;
                    }
                }
            }
            // The more protective choices made in a linked browser follow the person.
            Action::Withdraw | Action::Object | Action::Restrict | Action::Signal => {
                if let Party::Device(_) = ev.party
                    && let Some(subject) = link
                {
                    let target = self.parties.entry(Party::Subject(subject)).or_default();
                    change(
                        target, rules, ev.action, purpose, ev.signal, terms, e.seq, &ev.policy,
                    );
                }
            }
            _ => {}
        }
    }

    /// Where `party` stands for `purpose`'s consent, and the grant (its ledger sequence
    /// number, 0 for none) that consent rests on: a confirmation link names that grant.
    pub fn consent(&self, party: &Party, purpose: u16) -> (Consent, u64) {
        self.parties
            .get(party)
            .and_then(|s| s.purpose(purpose))
            .map_or((Consent::None, 0), |p| (p.consent, p.grant))
    }

    /// Whether the party has accepted the newest must-accept version.
    pub fn accepted(&self, rules: &Rules, party: &Party) -> bool {
        self.parties
            .get(party)
            .is_some_and(|s| s.accepted >= rules.required)
            || rules.required == 0
    }

    /// Whether a signal was received for the party (or its linked subject).
    pub fn signalled(&self, party: &Party, signal: Signal) -> bool {
        let bit = match signal {
            Signal::Gpc => GPC,
            Signal::Dnt => DNT,
        };
        self.flags(party) & bit != 0
    }

    fn flags(&self, party: &Party) -> u8 {
        let Some(own) = self.parties.get(party) else {
            return 0;
        };
        let linked = own
            .link
            .and_then(|s| self.parties.get(&Party::Subject(s)))
            .map_or(0, |s| s.flags);
        own.flags | linked
    }

    /// Every purpose the party has a recorded state for.
    pub fn statuses(&self, rules: &Rules, party: &Party) -> Vec<PurposeStatus> {
        let Some(s) = self.parties.get(party) else {
            return Vec::new();
        };
        s.purposes
            .iter()
            .filter_map(|p| {
                let rule = rules.rule(p.purpose)?;
                Some(PurposeStatus {
                    purpose: rule.id.clone(),
                    consent: p.consent,
                    objected: p.objected || s.flags & OBJECTED != 0,
                    restricted: p.restricted || s.flags & RESTRICTED != 0,
                    current_terms: p.terms == rule.terms,
                })
            })
            .collect()
    }

    /// Decides whether purpose `purpose` (an index from [`Rules::purpose`]) may use `party`'s data.
    pub fn decide(&self, rules: &Rules, party: &Party, purpose: u16) -> Decision {
        let Some(rule) = rules.rule(purpose) else {
            return Reason::NoConsent.into();
        };
        let own = self.parties.get(party);
        let linked = own
            .and_then(|s| s.link)
            .and_then(|s| self.parties.get(&Party::Subject(s)));
        let flags = own.map_or(0, |s| s.flags) | linked.map_or(0, |s| s.flags);
        let state = own
            .and_then(|s| s.purpose(purpose))
            .or_else(|| linked.and_then(|s| s.purpose(purpose)));
        let linked_state = linked.and_then(|s| s.purpose(purpose));
        if flags & ERASED != 0 {
            return if rule.legal_hold {
                Reason::LegalHold
            } else {
                Reason::Erased
            }
            .into();
        }
        if flags & CLOSED != 0 {
            return if rule.legal_hold {
                Reason::LegalHold
            } else {
                Reason::AccountClosed
            }
            .into();
        }
        let restricted = flags & RESTRICTED != 0
            || state.is_some_and(|p| p.restricted)
            || linked_state.is_some_and(|p| p.restricted);
        if restricted {
            return if rule.legal_hold {
                Reason::LegalHold
            } else {
                Reason::Restricted
            }
            .into();
        }
        let objected = flags & OBJECTED != 0
            || state.is_some_and(|p| p.objected)
            || linked_state.is_some_and(|p| p.objected);
        if objected && rule.objectable() {
            return Reason::Objected.into();
        }
        if rule.sale_share && rules.gpc && flags & GPC != 0 {
            return Reason::GpcOptOut.into();
        }
        if rule.tracking && rules.dnt && flags & DNT != 0 {
            return Reason::Dnt.into();
        }
        if rule.basis == LawfulBasis::Contract && rules.required > 0 {
            let accepted = own
                .map_or(0, |s| s.accepted)
                .max(linked.map_or(0, |s| s.accepted));
            if accepted < rules.required {
                return Reason::PolicyNotAccepted.into();
            }
        }
        if rule.basis != LawfulBasis::Consent {
            return Reason::AllowedByBasis.into();
        }
        let consent = state.map_or(Consent::None, |p| p.consent);
        let reason = match (consent, rule.mode) {
            (Consent::Withdrawn, _) => Reason::Withdrawn,
            (Consent::None, Some(ConsentMode::OptOut)) => Reason::AllowedByOptOut,
            (Consent::None, _) => Reason::NoConsent,
            (Consent::Granted, Some(ConsentMode::DoubleOptIn)) => Reason::NotConfirmed,
            (Consent::Granted | Consent::Confirmed, _) => {
                if state.is_some_and(|p| p.terms == rule.terms) {
                    Reason::ConsentGiven
                } else {
                    Reason::TermsChanged
                }
            }
        };
        reason.into()
    }
}

#[allow(clippy::too_many_arguments)]
fn change(
    state: &mut PartyState,
    rules: &Rules,
    action: Action,
    purpose: Option<u16>,
    signal: Option<Signal>,
    terms: u64,
    seq: u64,
    policy: &str,
) {
    match (action, purpose) {
        (Action::Grant, Some(p)) => {
            let s = state.purpose_mut(p);
            let double = rules.rule(p).and_then(|r| r.mode) == Some(ConsentMode::DoubleOptIn);
            s.consent = if double {
                Consent::Granted
            } else {
                Consent::Confirmed
            };
            s.terms = terms;
            s.grant = seq;
            s.seq = seq;
        }
        (Action::Confirm, Some(p)) => {
            let s = state.purpose_mut(p);
            if s.consent == Consent::Granted {
                s.consent = Consent::Confirmed;
                s.seq = seq;
            }
        }
        (Action::Withdraw, Some(p)) => {
            let s = state.purpose_mut(p);
            s.consent = Consent::Withdrawn;
            s.seq = seq;
        }
        (Action::Object, Some(p)) => state.purpose_mut(p).objected = true,
        (Action::Object, None) => state.flags |= OBJECTED,
        (Action::Restrict, Some(p)) => state.purpose_mut(p).restricted = true,
        (Action::Restrict, None) => state.flags |= RESTRICTED,
        (Action::Lift, Some(p)) => {
            let s = state.purpose_mut(p);
            s.objected = false;
            s.restricted = false;
        }
        (Action::Lift, None) => {
            state.flags &= !(OBJECTED | RESTRICTED);
            for s in &mut state.purposes {
                s.objected = false;
                s.restricted = false;
            }
        }
        (Action::Signal, _) => match signal {
            Some(Signal::Gpc) => state.flags |= GPC,
            Some(Signal::Dnt) => state.flags |= DNT,
            None => {}
        },
        (Action::Accept, _) => state.accepted = state.accepted.max(rules.version_index(policy)),
        (Action::Close, _) => state.flags |= CLOSED,
        // Nothing lifts an erasure: a person who comes back is a new subject.
        (Action::Erase, _) => state.flags |= ERASED,
        (Action::Reopen, _) => state.flags &= !CLOSED,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::BTreeSet;

    use steward_policy::Source;
    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;
    use crate::consent::{ConsentEvent, DeviceId, Evidence, Method};

    const DECLARATION: &str = r#"
[policy]
version = "2"
must_accept = true
[controller]
name = "Permit Shop"
country = "US"
email = "privacy@shop.example"
[[purposes]]
id = "accounts"
name = "Accounts"
use = "essential.service"
basis = "contract"
categories = ["user.contact.email"]
subjects = ["customer"]
retention = "until account closure"
[[purposes]]
id = "newsletter"
name = "Newsletter"
use = "marketing.communications.email"
basis = "consent"
consent = "double-opt-in"
categories = ["user.contact.email"]
subjects = ["customer"]
retention = "until consent is withdrawn"
[[purposes]]
id = "statistics"
name = "Statistics"
use = "analytics.reporting"
basis = "consent"
consent = "opt-in"
categories = ["user.device.cookie_id"]
subjects = ["visitor"]
retention = "14 months after collection"
[[purposes]]
id = "advertising"
name = "Advertising"
use = "marketing.advertising.third_party.targeted"
basis = "consent"
consent = "opt-in"
categories = ["user.device.cookie_id"]
subjects = ["visitor"]
retention = "13 months after collection"
share = true
[[purposes]]
id = "partners"
name = "Partner offers"
use = "third_party_sharing"
basis = "consent"
consent = "opt-out"
categories = ["user.contact.email"]
subjects = ["customer"]
retention = "until consent is withdrawn"
sale = true
[[purposes]]
id = "product-emails"
name = "Product news"
use = "marketing.communications.email"
basis = "legitimate-interest"
legitimate_interest = "telling customers about the product they use"
categories = ["user.contact.email"]
subjects = ["customer"]
retention = "until account closure"
[[purposes]]
id = "security"
name = "Security"
use = "essential.service.security"
basis = "legitimate-interest"
legitimate_interest = "keeping the service safe"
categories = ["user.device.ip_address"]
subjects = ["visitor"]
retention = "30 days after collection"
[[purposes]]
id = "invoicing"
name = "Invoices"
use = "finance"
basis = "legal-obligation"
categories = ["user.financial"]
subjects = ["customer"]
retention = "10 years after collection"
legal_hold = true
hold_reason = "tax law"
[signals]
gpc = true
dnt = true
"#;

    fn rules(versions: &[(&str, bool)]) -> Rules {
        let d = steward_policy::check(&Source::new("permit.toml", DECLARATION))
            .unwrap()
            .declaration
            .expect("the test declaration is valid");
        let v: Vec<(String, bool)> = versions
            .iter()
            .map(|(v, m)| ((*v).to_owned(), *m))
            .collect();
        Rules::new(&d, &v)
    }

    const S: Party = Party::Subject(SubjectId(Uuid::from_bytes([1; 16])));
    const D: Party = Party::Device(DeviceId([2; 16]));

    /// An event: (party, action, purpose, extra) where extra is a signal, `old-terms`, a
    /// version, or `link`.
    type Step = (Party, Action, Option<&'static str>, &'static str);

    fn run(rules: &Rules, steps: &[Step]) -> PermitState {
        let mut state = PermitState::new();
        for (i, (party, action, purpose, extra)) in steps.iter().enumerate() {
            let terms = purpose
                .and_then(|p| rules.purpose(p))
                .and_then(|p| rules.rule(p))
                .map(|r| {
                    if *extra == "old-terms" {
                        "00".to_owned()
                    } else {
                        r.terms_text.clone()
                    }
                });
            let event = ConsentEvent {
                at: datetime!(2026-11-22 10:00 UTC),
                party: *party,
                action: *action,
                purpose: purpose.map(str::to_owned),
                signal: Signal::parse(extra),
                link: (*extra == "link").then_some(SubjectId(Uuid::from_bytes([1; 16]))),
                policy: if *action == Action::Accept {
                    (*extra).to_owned()
                } else {
                    "2".to_owned()
                },
                terms,
                method: Method::Api,
                evidence: Evidence::default(),
                actor: "test".into(),
            };
            let seq = u64::try_from(i).unwrap() + 1;
            state.apply(
                rules,
                &SealedEvent {
                    seq,
                    event,
                    prev: [0; 32],
                    hash: [0; 32],
                    personal: None,
                    redacted: None,
                },
            );
        }
        state
    }

    #[test]
    fn every_rule_in_a_table_and_every_reason_reached() {
        use Action::*;
        let accepted: Step = (S, Accept, None, "2");
        let table: Vec<(&str, Vec<Step>, Party, &str, Reason)> = vec![
            (
                "consent purpose, never asked",
                vec![],
                S,
                "statistics",
                Reason::NoConsent,
            ),
            (
                "opt-in granted",
                vec![(S, Grant, Some("statistics"), "")],
                S,
                "statistics",
                Reason::ConsentGiven,
            ),
            (
                "withdrawn after grant",
                vec![
                    (S, Grant, Some("statistics"), ""),
                    (S, Withdraw, Some("statistics"), ""),
                ],
                S,
                "statistics",
                Reason::Withdrawn,
            ),
            (
                "double opt-in not confirmed",
                vec![(S, Grant, Some("newsletter"), "")],
                S,
                "newsletter",
                Reason::NotConfirmed,
            ),
            (
                "double opt-in confirmed",
                vec![
                    (S, Grant, Some("newsletter"), ""),
                    (S, Confirm, Some("newsletter"), ""),
                ],
                S,
                "newsletter",
                Reason::ConsentGiven,
            ),
            (
                "consent for earlier terms",
                vec![(S, Grant, Some("statistics"), "old-terms")],
                S,
                "statistics",
                Reason::TermsChanged,
            ),
            (
                "opt-out purpose nobody opted out of",
                vec![],
                S,
                "partners",
                Reason::AllowedByOptOut,
            ),
            (
                "opt-out purpose opted out",
                vec![(S, Withdraw, Some("partners"), "")],
                S,
                "partners",
                Reason::Withdrawn,
            ),
            (
                "legitimate interest",
                vec![],
                S,
                "security",
                Reason::AllowedByBasis,
            ),
            (
                "legitimate interest objected",
                vec![(S, Object, Some("security"), "")],
                S,
                "security",
                Reason::Objected,
            ),
            (
                "objection to direct marketing is absolute",
                vec![(S, Object, None, "")],
                S,
                "product-emails",
                Reason::Objected,
            ),
            (
                "objection beats consent",
                vec![
                    (S, Grant, Some("statistics"), ""),
                    (S, Object, Some("statistics"), ""),
                ],
                S,
                "statistics",
                Reason::Objected,
            ),
            (
                "objection does not reach a legal obligation",
                vec![(S, Object, None, "")],
                S,
                "invoicing",
                Reason::AllowedByBasis,
            ),
            (
                "lifted objection",
                vec![
                    (S, Object, Some("security"), ""),
                    (S, Lift, Some("security"), ""),
                ],
                S,
                "security",
                Reason::AllowedByBasis,
            ),
            (
                "restriction blocks a consented purpose",
                vec![(S, Grant, Some("statistics"), ""), (S, Restrict, None, "")],
                S,
                "statistics",
                Reason::Restricted,
            ),
            (
                "restriction keeps the legal hold",
                vec![(S, Restrict, None, "")],
                S,
                "invoicing",
                Reason::LegalHold,
            ),
            (
                "an erased person is denied a purpose allowed by its basis",
                vec![accepted, (S, Erase, None, "")],
                S,
                "security",
                Reason::Erased,
            ),
            (
                "an erased person's consent no longer counts",
                vec![(S, Grant, Some("statistics"), ""), (S, Erase, None, "")],
                S,
                "statistics",
                Reason::Erased,
            ),
            (
                "an erased person's legal hold still serves its purpose",
                vec![(S, Erase, None, "")],
                S,
                "invoicing",
                Reason::LegalHold,
            ),
            (
                "a reopened account does not undo an erasure",
                vec![
                    (S, Close, None, ""),
                    (S, Erase, None, ""),
                    (S, Reopen, None, ""),
                ],
                S,
                "accounts",
                Reason::Erased,
            ),
            (
                "closed account blocks the service",
                vec![accepted, (S, Close, None, "")],
                S,
                "accounts",
                Reason::AccountClosed,
            ),
            (
                "closed account keeps the legal hold",
                vec![(S, Close, None, "")],
                S,
                "invoicing",
                Reason::LegalHold,
            ),
            (
                "reopened account",
                vec![accepted, (S, Close, None, ""), (S, Reopen, None, "")],
                S,
                "accounts",
                Reason::AllowedByBasis,
            ),
            (
                "GPC denies a share purpose despite consent",
                vec![
                    (D, Grant, Some("advertising"), ""),
                    (D, Signal, None, "gpc"),
                ],
                D,
                "advertising",
                Reason::GpcOptOut,
            ),
            (
                "GPC denies a sale purpose",
                vec![(D, Signal, None, "gpc")],
                D,
                "partners",
                Reason::GpcOptOut,
            ),
            (
                "GPC on a linked browser follows the person",
                vec![(D, Signal, None, "gpc"), (D, Link, None, "link")],
                S,
                "partners",
                Reason::GpcOptOut,
            ),
            (
                "GPC after the link follows the person too",
                vec![(D, Link, None, "link"), (D, Signal, None, "gpc")],
                S,
                "partners",
                Reason::GpcOptOut,
            ),
            (
                "GPC leaves analytics to consent",
                vec![(D, Grant, Some("statistics"), ""), (D, Signal, None, "gpc")],
                D,
                "statistics",
                Reason::ConsentGiven,
            ),
            (
                "DNT denies tracking",
                vec![(D, Grant, Some("statistics"), ""), (D, Signal, None, "dnt")],
                D,
                "statistics",
                Reason::Dnt,
            ),
            (
                "DNT leaves the service",
                vec![accepted, (S, Signal, None, "dnt")],
                S,
                "accounts",
                Reason::AllowedByBasis,
            ),
            (
                "must-accept version not accepted",
                vec![],
                S,
                "accounts",
                Reason::PolicyNotAccepted,
            ),
            (
                "must-accept version accepted",
                vec![accepted],
                S,
                "accounts",
                Reason::AllowedByBasis,
            ),
            (
                "browser consent carried to the person at link",
                vec![(D, Grant, Some("statistics"), ""), (D, Link, None, "link")],
                S,
                "statistics",
                Reason::ConsentGiven,
            ),
            (
                "the person's withdrawal governs a linked browser",
                vec![
                    (D, Link, None, "link"),
                    (S, Withdraw, Some("statistics"), ""),
                ],
                D,
                "statistics",
                Reason::Withdrawn,
            ),
        ];
        let rules = rules(&[("1", false), ("2", true)]);
        let mut reached = BTreeSet::new();
        for (name, steps, party, purpose, want) in table {
            let state = run(&rules, &steps);
            let d = state.decide(&rules, &party, rules.purpose(purpose).unwrap());
            assert_eq!(d.reason, want, "{name}");
            assert_eq!(d.allowed, want.allows(), "{name}");
            reached.insert(want.code());
        }
        let all: BTreeSet<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(reached, all, "every reason code is reached by the table");
    }

    #[test]
    fn accepting_an_older_version_does_not_accept_a_newer_must_accept_one() {
        let rules = rules(&[("1", true), ("2", true)]);
        let state = run(&rules, &[(S, Action::Accept, None, "1")]);
        let accounts = rules.purpose("accounts").unwrap();
        assert_eq!(
            state.decide(&rules, &S, accounts).reason,
            Reason::PolicyNotAccepted
        );
        let state = run(&rules, &[(S, Action::Accept, None, "2")]);
        assert_eq!(
            state.decide(&rules, &S, accounts).reason,
            Reason::AllowedByBasis
        );
        // A later version that need not be accepted keeps the earlier requirement.
        let rules = rules_three();
        let state = run(&rules, &[(S, Action::Accept, None, "2")]);
        assert_eq!(
            state.decide(&rules, &S, accounts).reason,
            Reason::AllowedByBasis
        );
        let state = run(&rules, &[(S, Action::Accept, None, "1")]);
        assert_eq!(
            state.decide(&rules, &S, accounts).reason,
            Reason::PolicyNotAccepted
        );
    }

    fn rules_three() -> Rules {
        rules(&[("1", false), ("2", true), ("3", false)])
    }

    #[test]
    fn a_later_request_without_gpc_is_no_opt_in() {
        let rules = rules(&[("2", false)]);
        // The signal is sticky: nothing but a new event could undo it, and no event does.
        let state = run(
            &rules,
            &[
                (D, Action::Signal, None, "gpc"),
                (D, Action::Grant, Some("advertising"), ""),
            ],
        );
        let ads = rules.purpose("advertising").unwrap();
        assert_eq!(state.decide(&rules, &D, ads).reason, Reason::GpcOptOut);
    }
}
