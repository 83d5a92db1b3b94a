//! The consent ledger's events, their hash chain, and the signed tokens the browser and e-mail
//! sides carry (device ids, confirmation, unsubscribe and acceptance links).
//!
//! Every change of a person's choices is an event appended to one chain: grant, confirm,
//! withdraw, object, restrict, lift, a signal received (GPC, DNT), a policy accepted, a device
//! linked to a subject, an account closed or reopened. Each event is bound to the purpose, the
//! policy version in force, the purpose's *terms* (a fingerprint of what the person agreed to:
//! use, basis, categories, recipients, retention, transfers, sale/share), the method and the
//! evidence (the notice revision shown, a keyed hash of the IP address, the user agent). Nothing
//! is ever updated or deleted: the current state is derived from the events (see
//! [`crate::permit`]), and the chain's head is sealed with a MAC only the master key's holder can
//! make, so a rewritten ledger is caught by [`LedgerChain::verify`].
//!
//! The consent context owns the ledger's events and chain (here), the ledger over a vault
//! ([`ledger`]) and the permits derived from it ([`permit`]). It uses the vault, `access`,
//! `audit` and the shared words; `requests` uses it, never the other way.

pub mod ledger;
pub mod permit;
pub mod storage;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use steward_policy::declaration::Purpose;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::audit::{Seal, nanos};
use crate::subject::SubjectId;

/// The longest notice revision an event may carry.
pub const MAX_NOTICE: usize = 64;
/// The longest user agent an event may carry.
pub const MAX_USER_AGENT: usize = 512;

macro_rules! names {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }
        impl $name {
            /// Every value.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            /// Its name.
            pub fn as_str(self) -> &'static str { match self { $(Self::$variant => $text),+ } }
            /// Reads a name.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }
            /// The names, comma-separated, for error messages.
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::parse(&text).ok_or_else(|| serde::de::Error::custom(format!(
                    "unknown value `{text}`; use one of {}", Self::names()
                )))
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

pub(crate) use names;

names! {
    /// What an event records.
    Action {
        /// The person said yes to a purpose.
        Grant = "grant",
        /// The person confirmed a grant (double opt-in, by e-mail link).
        Confirm = "confirm",
        /// The person withdrew consent (GDPR Art. 7(3)); also an unsubscribe.
        Withdraw = "withdraw",
        /// The person objected to a purpose (Art. 21), or to all when no purpose is named.
        Object = "object",
        /// Processing was restricted (Art. 18), for a purpose or for all.
        Restrict = "restrict",
        /// A restriction or objection was lifted.
        Lift = "lift",
        /// An opt-out preference signal arrived (GPC or DNT).
        Signal = "signal",
        /// The person accepted a policy version.
        Accept = "accept",
        /// A browser (device) was linked to a subject.
        Link = "link",
        /// The person's account was closed.
        Close = "close",
        /// A closed account was reopened.
        Reopen = "reopen",
        /// The person was erased (written by the erasure itself, never through the API).
        Erase = "erase",
    }
}

names! {
    /// An opt-out preference signal.
    Signal {
        /// Global Privacy Control (`Sec-GPC: 1`, `navigator.globalPrivacyControl`).
        Gpc = "gpc",
        /// Do Not Track (`DNT: 1`, `navigator.doNotTrack`).
        Dnt = "dnt",
    }
}

names! {
    /// How an event was given.
    Method {
        /// A form on the operator's site.
        Form = "form",
        /// The consent banner or preferences dialog.
        Banner = "banner",
        /// The operator's application, through the API.
        Api = "api",
        /// A link in an e-mail (double opt-in confirmation, policy acceptance).
        EmailLink = "email-link",
        /// A one-click unsubscribe link or `List-Unsubscribe-Post`.
        Unsubscribe = "unsubscribe",
        /// A browser signal (GPC, DNT).
        Signal = "signal",
        /// Staff acting on the person's written request.
        Staff = "staff",
    }
}

/// A browser or device: a random id Steward issued and signed, pseudonymous until linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub [u8; 16]);

/// Whose choice an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    /// A subject in the vault.
    Subject(SubjectId),
    /// A browser, by its device id.
    Device(DeviceId),
}

impl Party {
    /// `s` for a subject, `d` for a device (as stored).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Subject(_) => "s",
            Self::Device(_) => "d",
        }
    }

    /// The 16 bytes of the id.
    pub fn bytes(&self) -> [u8; 16] {
        match self {
            Self::Subject(s) => *s.as_bytes(),
            Self::Device(d) => d.0,
        }
    }

    /// Rebuilds a party from its stored kind and bytes.
    pub fn from_parts(kind: &str, bytes: [u8; 16]) -> Option<Self> {
        match kind {
            "s" => Some(Self::Subject(SubjectId(uuid::Uuid::from_bytes(bytes)))),
            "d" => Some(Self::Device(DeviceId(bytes))),
            _ => None,
        }
    }
}

/// What shows the event was really given.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    /// The revision of the notice (or banner text) the person saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// A keyed hash of the client's IP address (never the address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The client's user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// One event, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEvent {
    /// When it happened.
    pub at: OffsetDateTime,
    /// Whose choice it is.
    pub party: Party,
    /// What happened.
    pub action: Action,
    /// The purpose (absent for account-wide events: signals, close, object/restrict to all).
    pub purpose: Option<String>,
    /// The signal, for [`Action::Signal`].
    pub signal: Option<Signal>,
    /// The subject a device was linked to, for [`Action::Link`].
    pub link: Option<SubjectId>,
    /// The policy version in force (or accepted, for [`Action::Accept`]).
    pub policy: String,
    /// The purpose's terms fingerprint when the event was given (see [`terms`]).
    pub terms: Option<String>,
    /// How it was given.
    pub method: Method,
    /// The proof.
    pub evidence: Evidence,
    /// Who wrote it (`key:stw_…`, `staff:NAME`, `banner`, `email-link`, `cli`).
    pub actor: String,
}

/// An event in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEvent {
    /// Its place in the ledger, from 1.
    pub seq: u64,
    /// The event.
    pub event: ConsentEvent,
    /// The previous event's hash (zeros for the first).
    pub prev: [u8; 32],
    /// This event's hash.
    pub hash: [u8; 32],
    /// The keyed digest of its personal part (the party, the address's keyed hash, the user
    /// agent; see [`LedgerChain::personal`]): what the hash covers in their place, so that the
    /// part can be removed once its proof is no longer kept ([`REDACTED`]) while the chain
    /// still verifies. `None` for an event recorded before Steward chained them so (its
    /// personal part cannot be removed).
    pub personal: Option<[u8; 32]>,
    /// For an event whose personal part was removed, the ledger key's seal of that removal
    /// ([`LedgerChain::redaction`]): a removal made without the key breaks the chain.
    pub redacted: Option<[u8; 32]>,
}

/// The party a redacted event is left with: a device no browser can hold (all zeros).
pub const REDACTED: Party = Party::Device(DeviceId([0; 16]));

impl SealedEvent {
    /// Whether its personal part was removed (the party is [`REDACTED`], no address, no user
    /// agent).
    pub fn is_redacted(&self) -> bool {
        self.personal.is_some()
            && self.redacted.is_some()
            && self.event.party == REDACTED
            && self.event.evidence.ip.is_none()
            && self.event.evidence.user_agent.is_none()
    }
}

/// The fingerprint of a purpose's terms: what a person agrees to. Two policy versions whose
/// purpose has the same fingerprint are compatible, and a consent given under one stands under
/// the other; a changed fingerprint needs new consent.
pub fn terms(p: &Purpose) -> String {
    let mut h = Sha256::new();
    let mut put = |label: &str, value: &str| {
        h.update(label.as_bytes());
        h.update((value.len() as u64).to_be_bytes());
        h.update(value.as_bytes());
    };
    put("use", &p.data_use);
    put("basis", p.basis.as_str());
    put("consent", p.consent.map_or("", |c| c.as_str()));
    for c in &p.categories {
        put("category", c);
    }
    for r in &p.recipients {
        put("recipient", r);
    }
    for t in &p.transfers {
        put("transfer", &t.country);
        put("safeguard", t.safeguard.as_str());
    }
    put(
        "retention",
        &p.retention
            .as_ref()
            .and_then(|r| serde_json::to_string(r).ok())
            .unwrap_or_default(),
    );
    put("sale", if p.sale { "1" } else { "0" });
    put("share", if p.share { "1" } else { "0" });
    let digest: [u8; 32] = h.finalize().into();
    crate::audit::hex(&digest[..8])
}

const DOMAIN: &[u8] = b"steward/consent/v1";
const DOMAIN_V2: &[u8] = b"steward/consent/v2";
const PERSONAL: &[u8] = b"steward/consent/personal/v1";
const REDACTION: &[u8] = b"steward/consent/redacted/v1";

/// The fields of an event that are never personal, from its action to the notice it cites,
/// in both encodings.
fn encode_terms(buf: &mut Vec<u8>, e: &ConsentEvent) {
    put(buf, e.action.as_str().as_bytes());
    put_opt(buf, e.purpose.as_deref());
    put_opt(buf, e.signal.map(Signal::as_str));
    match e.link {
        None => buf.push(0),
        Some(s) => {
            buf.push(1);
            buf.extend_from_slice(s.as_bytes());
        }
    }
    put(buf, e.policy.as_bytes());
    put_opt(buf, e.terms.as_deref());
    put(buf, e.method.as_str().as_bytes());
    put_opt(buf, e.evidence.notice.as_deref());
}

/// An event as chained since the personal part became removable: every field but the personal
/// ones, and the digest of those.
fn encode_v2(buf: &mut Vec<u8>, seq: u64, e: &ConsentEvent, personal: &[u8; 32]) {
    buf.clear();
    buf.extend_from_slice(DOMAIN_V2);
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&nanos(e.at).to_be_bytes());
    buf.extend_from_slice(personal);
    encode_terms(buf, e);
    put(buf, e.actor.as_bytes());
}

fn put(buf: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(bytes);
}

fn put_opt(buf: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => buf.push(0),
        Some(v) => {
            buf.push(1);
            put(buf, v.as_bytes());
        }
    }
}

fn encode(buf: &mut Vec<u8>, seq: u64, e: &ConsentEvent) {
    buf.clear();
    buf.extend_from_slice(DOMAIN);
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&nanos(e.at).to_be_bytes());
    buf.extend_from_slice(e.party.kind().as_bytes());
    buf.extend_from_slice(&e.party.bytes());
    encode_terms(buf, e);
    put_opt(buf, e.evidence.ip.as_deref());
    put_opt(buf, e.evidence.user_agent.as_deref());
    put(buf, e.actor.as_bytes());
}

/// Where a ledger's chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerBreak {
    /// An event's content no longer matches its hash, or its link to the previous one.
    #[error(
        "consent event {0} was changed, removed or moved: its hash does not follow from the events before it"
    )]
    Event(u64),
    /// A sequence number is missing or repeated.
    #[error("consent event {expected} is missing (found {found} in its place)")]
    Gap {
        /// The sequence number expected.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// The sealed head does not match the events, or its MAC is wrong.
    #[error(
        "the ledger's sealed head does not match its events (the ledger was rewritten or truncated)"
    )]
    Head,
}

/// Hashes the ledger's events and seals its head. Holds the ledger key.
pub struct LedgerChain {
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for LedgerChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LedgerChain(<redacted>)")
    }
}

impl LedgerChain {
    /// A chain keyed with `key` (`Keyring::subkey("consent-mac")`).
    pub fn new(key: Zeroizing<[u8; 32]>) -> Self {
        Self { key }
    }

    fn mac(&self, seq: u64, hash: &[u8; 32]) -> [u8; 32] {
        let Ok(mut mac) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(self.key.as_ref()) else {
            return [0; 32];
        };
        mac.update(DOMAIN);
        mac.update(b"head");
        mac.update(&seq.to_be_bytes());
        mac.update(hash);
        mac.finalize().into_bytes().into()
    }

    fn keyed(&self, label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let Ok(mut mac) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(self.key.as_ref()) else {
            return [0; 32];
        };
        mac.update(label);
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// The digest of event `seq`'s personal part (its party, the keyed hash of the client's
    /// address, the user agent), keyed with the ledger key and bound to its place: no one
    /// without the key can test a guess against it, and two events of one person never share
    /// one, so a removed part cannot be found again by its digest.
    pub fn personal(&self, seq: u64, e: &ConsentEvent) -> [u8; 32] {
        let mut buf = Vec::with_capacity(96);
        put_opt(&mut buf, e.evidence.ip.as_deref());
        put_opt(&mut buf, e.evidence.user_agent.as_deref());
        self.keyed(
            PERSONAL,
            &[
                &seq.to_be_bytes(),
                e.party.kind().as_bytes(),
                &e.party.bytes(),
                &buf,
            ],
        )
    }

    /// The seal of the removal of event `seq`'s personal part (digest `personal`), which only
    /// the retention sweep makes.
    pub fn redaction(&self, seq: u64, personal: &[u8; 32]) -> [u8; 32] {
        self.keyed(REDACTION, &[&seq.to_be_bytes(), personal])
    }

    /// Chains `events` after `head` (read inside the writing transaction).
    pub fn append(
        &self,
        head: Option<&Seal>,
        events: Vec<ConsentEvent>,
    ) -> (Vec<SealedEvent>, Seal) {
        let (mut seq, mut prev) = head.map_or((0, [0; 32]), |h| (h.seq, h.hash));
        let mut buf = Vec::with_capacity(256);
        let sealed = events
            .into_iter()
            .map(|event| {
                seq += 1;
                let personal = self.personal(seq, &event);
                encode_v2(&mut buf, seq, &event, &personal);
                let hash: [u8; 32] = Sha256::new()
                    .chain_update(prev)
                    .chain_update(&buf)
                    .finalize()
                    .into();
                let e = SealedEvent {
                    seq,
                    event,
                    prev,
                    hash,
                    personal: Some(personal),
                    redacted: None,
                };
                prev = hash;
                e
            })
            .collect();
        let head = Seal {
            seq,
            hash: prev,
            mac: self.mac(seq, &prev),
        };
        (sealed, head)
    }

    /// Checks `events` (the whole ledger, in order) against the sealed `head`.
    pub fn verify<'a>(
        &self,
        head: Option<&Seal>,
        events: impl IntoIterator<Item = &'a SealedEvent>,
    ) -> Result<u64, LedgerBreak> {
        let mut v = self.verifier();
        for e in events {
            v.feed(e)?;
        }
        v.finish(head)
    }

    /// A verifier fed the ledger page by page, so a long ledger is never held in memory.
    pub fn verifier(&self) -> LedgerVerifier<'_> {
        LedgerVerifier {
            chain: self,
            expected: 1,
            prev: [0; 32],
            buf: Vec::with_capacity(256),
        }
    }
}

/// Checks a ledger event by event (see [`LedgerChain::verifier`]).
#[derive(Debug)]
pub struct LedgerVerifier<'a> {
    chain: &'a LedgerChain,
    expected: u64,
    prev: [u8; 32],
    buf: Vec<u8>,
}

impl LedgerVerifier<'_> {
    /// Checks the next event.
    pub fn feed(&mut self, e: &SealedEvent) -> Result<(), LedgerBreak> {
        if e.seq != self.expected {
            return Err(LedgerBreak::Gap {
                expected: self.expected,
                found: e.seq,
            });
        }
        // Removed parts say so (a seal); a party changed without one fails its digest below.
        let stripped = e.redacted.is_some();
        match &e.personal {
            None if stripped => return Err(LedgerBreak::Event(e.seq)),
            None => encode(&mut self.buf, e.seq, &e.event),
            Some(personal) => {
                if stripped {
                    // Removed: whole, and by the sweep (sealed with the ledger key).
                    let sealed = e.redacted.is_some_and(|r| {
                        steward_crypto::constant_time_eq(&r, &self.chain.redaction(e.seq, personal))
                    });
                    if !sealed || !e.is_redacted() {
                        return Err(LedgerBreak::Event(e.seq));
                    }
                } else if self.chain.personal(e.seq, &e.event) != *personal {
                    // Still there: it must be what the digest says.
                    return Err(LedgerBreak::Event(e.seq));
                }
                encode_v2(&mut self.buf, e.seq, &e.event, personal);
            }
        }
        let hash: [u8; 32] = Sha256::new()
            .chain_update(self.prev)
            .chain_update(&self.buf)
            .finalize()
            .into();
        if e.prev != self.prev || e.hash != hash {
            return Err(LedgerBreak::Event(e.seq));
        }
        self.prev = hash;
        self.expected += 1;
        Ok(())
    }

    /// Checks the events fed against the sealed `head`; returns how many there were.
    pub fn finish(self, head: Option<&Seal>) -> Result<u64, LedgerBreak> {
        let last = self.expected - 1;
        match head {
            None if last == 0 => Ok(0),
            Some(h)
                if h.seq == last
                    && h.hash == self.prev
                    && steward_crypto::constant_time_eq(
                        &self.chain.mac(h.seq, &h.hash),
                        &h.mac,
                    ) =>
            {
                Ok(last)
            }
            _ => Err(LedgerBreak::Head),
        }
    }
}

/// What a signed link or id is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Confirms a double opt-in grant.
    Confirm = 1,
    /// Withdraws consent for a purpose (one-click unsubscribe).
    Unsubscribe = 2,
    /// Accepts a policy version.
    Accept = 3,
}

/// A signed link's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkToken {
    /// What it does.
    pub kind: TokenKind,
    /// For whom.
    pub subject: SubjectId,
    /// The purpose (or, for [`TokenKind::Accept`], the policy version).
    pub purpose: String,
    /// The grant it confirms (0 for other kinds).
    pub grant: u64,
    /// When it stops working (unix seconds; `i64::MAX` for never).
    pub expires: i64,
}

/// Why a token or device id was refused. None of them says more than needed to fix the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token at all (wrong length, not base64url).
    #[error("the token is malformed: use the link exactly as it was sent")]
    Malformed,
    /// The signature does not match: forged, altered, or made with another installation's key.
    #[error("the token's signature does not match: it was altered or was not issued here")]
    Forged,
    /// Past its expiry.
    #[error("the link has expired: ask for a new one")]
    Expired,
    /// A token of another kind.
    #[error("this token is for something else")]
    WrongKind,
}

impl TokenError {
    /// A stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed-token",
            Self::Forged => "forged-token",
            Self::Expired => "expired-token",
            Self::WrongKind => "wrong-token",
        }
    }
}

const TAG: usize = 16;
const DEVICE_TAG: usize = 10;
/// The prefix of every device id Steward issues.
pub const DEVICE_PREFIX: &str = "dv1.";

/// Signs and checks device ids and links. Holds the token key.
pub struct Tokens {
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tokens(<redacted>)")
    }
}

impl Tokens {
    /// Tokens keyed with `key` (`Keyring::subkey("consent-tokens")`).
    pub fn new(key: Zeroizing<[u8; 32]>) -> Self {
        Self { key }
    }

    fn tag(&self, label: &[u8], data: &[u8]) -> [u8; 32] {
        let Ok(mut mac) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(self.key.as_ref()) else {
            return [0; 32];
        };
        mac.update(DOMAIN);
        mac.update(label);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// A keyed hash of a client address, for evidence (so the address itself is never kept).
    pub fn ip_hash(&self, ip: &str) -> String {
        crate::audit::hex(&self.tag(b"ip", ip.as_bytes())[..12])
    }

    /// A new device id, as text for the browser.
    pub fn issue_device(&self) -> Result<(DeviceId, String), steward_crypto::CryptoError> {
        let mut id = [0u8; 16];
        steward_crypto::random_bytes(&mut id)?;
        Ok((DeviceId(id), self.device_text(DeviceId(id))))
    }

    /// The text form of a device id.
    pub fn device_text(&self, id: DeviceId) -> String {
        let mut raw = id.0.to_vec();
        raw.extend_from_slice(&self.tag(b"device", &id.0)[..DEVICE_TAG]);
        format!("{DEVICE_PREFIX}{}", B64.encode(raw))
    }

    /// Checks a device id a browser presented: it must be one this installation issued.
    pub fn device(&self, text: &str) -> Result<DeviceId, TokenError> {
        let raw = text
            .strip_prefix(DEVICE_PREFIX)
            .filter(|r| r.len() <= 64)
            .and_then(|r| B64.decode(r).ok())
            .filter(|r| r.len() == 16 + DEVICE_TAG)
            .ok_or(TokenError::Malformed)?;
        let (id, tag) = raw.split_at(16);
        if !steward_crypto::constant_time_eq(&self.tag(b"device", id)[..DEVICE_TAG], tag) {
            return Err(TokenError::Forged);
        }
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(id);
        Ok(DeviceId(bytes))
    }

    /// Signs `body` for `label` (a kind of token other than the consent links): the body and
    /// a truncated MAC, URL-safe base64.
    pub(crate) fn sign(&self, label: &[u8], body: &[u8]) -> String {
        let mut raw = body.to_vec();
        raw.extend_from_slice(&self.tag(label, body)[..TAG]);
        B64.encode(raw)
    }

    /// Checks a token made by [`Tokens::sign`] and returns its body, which is exactly `len`
    /// bytes long.
    pub(crate) fn open(&self, label: &[u8], text: &str, len: usize) -> Result<Vec<u8>, TokenError> {
        if text.len() > 256 {
            return Err(TokenError::Malformed);
        }
        let raw = B64.decode(text).map_err(|_| TokenError::Malformed)?;
        if raw.len() != len + TAG {
            return Err(TokenError::Malformed);
        }
        let (body, tag) = raw.split_at(len);
        if !steward_crypto::constant_time_eq(&self.tag(label, body)[..TAG], tag) {
            return Err(TokenError::Forged);
        }
        Ok(body.to_vec())
    }

    /// A keyed digest of `data` for `label` (verification codes are kept only as this).
    pub(crate) fn digest(&self, label: &[u8], data: &[u8]) -> [u8; 32] {
        self.tag(label, data)
    }

    /// Signs a link token.
    pub fn link(&self, t: &LinkToken) -> String {
        let mut raw = Vec::with_capacity(48 + t.purpose.len());
        raw.push(t.kind as u8);
        raw.extend_from_slice(t.subject.as_bytes());
        raw.extend_from_slice(&t.expires.to_be_bytes());
        raw.extend_from_slice(&t.grant.to_be_bytes());
        raw.extend_from_slice(t.purpose.as_bytes());
        let tag = self.tag(b"link", &raw);
        raw.extend_from_slice(&tag[..TAG]);
        B64.encode(raw)
    }

    /// Checks a link token of `kind` at `now`.
    pub fn check_link(
        &self,
        text: &str,
        kind: TokenKind,
        now: OffsetDateTime,
    ) -> Result<LinkToken, TokenError> {
        if text.len() > 512 {
            return Err(TokenError::Malformed);
        }
        let raw = B64.decode(text).map_err(|_| TokenError::Malformed)?;
        if raw.len() < 1 + 16 + 8 + 8 + TAG {
            return Err(TokenError::Malformed);
        }
        let (body, tag) = raw.split_at(raw.len() - TAG);
        if !steward_crypto::constant_time_eq(&self.tag(b"link", body)[..TAG], tag) {
            return Err(TokenError::Forged);
        }
        let found = match body[0] {
            1 => TokenKind::Confirm,
            2 => TokenKind::Unsubscribe,
            3 => TokenKind::Accept,
            _ => return Err(TokenError::Malformed),
        };
        if found != kind {
            return Err(TokenError::WrongKind);
        }
        let mut subject = [0u8; 16];
        subject.copy_from_slice(&body[1..17]);
        let mut n = [0u8; 8];
        n.copy_from_slice(&body[17..25]);
        let expires = i64::from_be_bytes(n);
        n.copy_from_slice(&body[25..33]);
        let grant = u64::from_be_bytes(n);
        let purpose = String::from_utf8(body[33..].to_vec()).map_err(|_| TokenError::Malformed)?;
        if now.unix_timestamp() >= expires {
            return Err(TokenError::Expired);
        }
        Ok(LinkToken {
            kind,
            subject: SubjectId(uuid::Uuid::from_bytes(subject)),
            purpose,
            grant,
            expires,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(i: u8) -> ConsentEvent {
        ConsentEvent {
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(i64::from(i)),
            party: Party::Device(DeviceId([i; 16])),
            action: Action::Grant,
            purpose: Some("newsletter".into()),
            signal: None,
            link: None,
            policy: "1".into(),
            terms: Some("abcd".into()),
            method: Method::Banner,
            evidence: Evidence {
                notice: Some("r1".into()),
                ip: None,
                user_agent: Some("UA".into()),
            },
            actor: "banner".into(),
        }
    }

    fn chain() -> LedgerChain {
        chain_with([7; 32])
    }

    fn chain_with(key: [u8; 32]) -> LedgerChain {
        LedgerChain::new(Zeroizing::new(key))
    }

    #[test]
    fn the_chain_verifies_and_names_a_changed_event() {
        let c = chain();
        let (mut events, head) = c.append(None, (1..=5).map(event).collect());
        assert_eq!(c.verify(Some(&head), &events), Ok(5));
        events[2].event.action = Action::Withdraw;
        assert_eq!(c.verify(Some(&head), &events), Err(LedgerBreak::Event(3)));
        events.remove(2);
        assert_eq!(
            c.verify(Some(&head), &events),
            Err(LedgerBreak::Gap {
                expected: 3,
                found: 4
            })
        );
    }

    #[test]
    fn a_personal_part_is_removed_whole_or_the_chain_breaks() {
        let c = chain();
        let mut input: Vec<ConsentEvent> = (1..=3).map(event).collect();
        input[1].evidence.user_agent = Some("Mozilla/5.0".into());
        input[1].evidence.ip = Some("ab12".into());
        let (mut events, head) = c.append(None, input);
        // Changed, not removed: the digest no longer matches.
        events[1].event.evidence.user_agent = Some("curl/8".into());
        assert_eq!(c.verify(Some(&head), &events), Err(LedgerBreak::Event(2)));
        // Another party in its place: the same.
        events[1].event.evidence.user_agent = Some("Mozilla/5.0".into());
        events[1].event.party = Party::Device(DeviceId([9; 16]));
        assert_eq!(c.verify(Some(&head), &events), Err(LedgerBreak::Event(2)));
        // Removed whole but without the ledger key's seal (someone with the database): broken.
        events[1].event.party = REDACTED;
        events[1].event.evidence.user_agent = None;
        events[1].event.evidence.ip = None;
        assert_eq!(c.verify(Some(&head), &events), Err(LedgerBreak::Event(2)));
        let personal = events[1].personal.unwrap();
        events[1].redacted = Some(chain_with([8; 32]).redaction(2, &personal));
        assert_eq!(c.verify(Some(&head), &events), Err(LedgerBreak::Event(2)));
        // Removed whole, by the sweep: the chain verifies, and the event is marked so.
        events[1].redacted = Some(c.redaction(2, &personal));
        assert!(events[1].is_redacted());
        assert_eq!(c.verify(Some(&head), &events), Ok(3));
        // Digests are keyed and bound to their place: the same part elsewhere differs.
        assert_ne!(c.personal(1, &event(1)), c.personal(2, &event(1)));
        // What stays is still bound: its action cannot change.
        events[1].event.action = Action::Withdraw;
        assert_eq!(c.verify(Some(&head), &events), Err(LedgerBreak::Event(2)));
    }

    #[test]
    fn a_truncated_or_rewritten_ledger_fails_at_the_head() {
        let c = chain();
        let (events, head) = c.append(None, (1..=3).map(event).collect());
        assert_eq!(c.verify(Some(&head), &events[..2]), Err(LedgerBreak::Head));
        let (other, _) = c.append(None, (1..=3).map(event).collect());
        let forged = LedgerChain::new(Zeroizing::new([8; 32]));
        let (_, forged_head) = forged.append(None, (1..=3).map(event).collect());
        assert_eq!(c.verify(Some(&forged_head), &other), Err(LedgerBreak::Head));
    }

    #[test]
    fn device_ids_are_ours_only() {
        let t = Tokens::new(Zeroizing::new([1; 32]));
        let (id, text) = t.issue_device().unwrap();
        assert_eq!(t.device(&text), Ok(id));
        let other = Tokens::new(Zeroizing::new([2; 32]));
        assert_eq!(other.device(&text), Err(TokenError::Forged));
        assert_eq!(t.device("dv1.nonsense"), Err(TokenError::Malformed));
        assert_eq!(t.device("hello"), Err(TokenError::Malformed));
    }

    #[test]
    fn links_expire_and_cannot_be_altered_or_reused_for_another_kind() {
        let t = Tokens::new(Zeroizing::new([1; 32]));
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(100);
        let token = LinkToken {
            kind: TokenKind::Confirm,
            subject: SubjectId(uuid::Uuid::from_bytes([9; 16])),
            purpose: "newsletter".into(),
            grant: 42,
            expires: now.unix_timestamp() + 60,
        };
        let text = t.link(&token);
        assert_eq!(t.check_link(&text, TokenKind::Confirm, now), Ok(token));
        assert_eq!(
            t.check_link(&text, TokenKind::Unsubscribe, now),
            Err(TokenError::WrongKind)
        );
        assert_eq!(
            t.check_link(&text, TokenKind::Confirm, now + time::Duration::minutes(2)),
            Err(TokenError::Expired)
        );
        let mut raw = B64.decode(&text).unwrap();
        raw[20] ^= 1;
        assert_eq!(
            t.check_link(&B64.encode(raw), TokenKind::Confirm, now),
            Err(TokenError::Forged)
        );
        assert_eq!(
            t.check_link("!!", TokenKind::Confirm, now),
            Err(TokenError::Malformed)
        );
    }
}
