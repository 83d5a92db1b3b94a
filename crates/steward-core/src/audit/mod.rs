//! The audit trail: every access to personal data, every change and every administrative act,
//! written as an entry nobody can quietly change.
//!
//! Entries form a hash chain: each entry's hash commits to its content, its sequence number and
//! the previous entry's hash. Every [`CHECKPOINT_EVERY`] entries a checkpoint records the hash
//! reached, MAC'd with the audit key (derived from the vault's root secret, so only the holder of
//! the master key can make one), and after every write the chain's *head* is sealed the same
//! way. Whoever edits the database can recompute plain hashes, but not MACs: modifying, deleting,
//! inserting or reordering an entry, or rewriting the chain after it, breaks a hash or a MAC,
//! and [`Verifier`] names the first entry where that happens.
//!
//! An entry holds pseudonymous ids and taxonomy keys, never a personal value: the subject is
//! its UUID, the fields are category keys, a support reason is a ticket reference checked by
//! [`ticket`].
//!
//! The audit context owns the chained trail and its storage; it uses only the shared words.

pub mod storage;

use std::fmt;
use std::sync::Arc;

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::audit::storage::AuditStore;
use crate::storage::StoreError;

use crate::subject::SubjectId;

/// A checkpoint is written at every multiple of this sequence number.
pub const CHECKPOINT_EVERY: u64 = 1024;

/// How an access ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It was done.
    Ok,
    /// It was refused (authentication, authorisation, purpose, rate limit).
    Denied,
    /// It was allowed but failed (not found, invalid input, a fault).
    Failed,
}

impl Outcome {
    /// The outcome's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }

    /// Reads an outcome's name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ok" => Some(Self::Ok),
            "denied" => Some(Self::Denied),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One audited act, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The request it belongs to (one HTTP request or one command).
    pub request: Uuid,
    /// Who: `key:stw_1a2b3c4d`, `staff:alice`, `cli`, `anonymous`.
    pub actor: String,
    /// Their role (`admin`, `dpo`, `support`, `service`, `auditor`, or `none`).
    pub role: String,
    /// What: `subject.read`, `apikey.create`, `staff.sign-in` …
    pub action: String,
    /// The declared purpose named for it.
    pub purpose: Option<String>,
    /// The subject concerned (pseudonymous id).
    pub subject: Option<SubjectId>,
    /// Category keys touched.
    pub categories: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it was refused or failed, as a stable code (`purpose-out-of-scope`, `not-found` …).
    pub code: Option<String>,
    /// The ticket a support read was made for.
    pub ticket: Option<String>,
    /// Marked for review (support reads of personal data).
    pub flagged: bool,
    /// Non-personal detail: a key prefix, a count.
    pub detail: Option<String>,
}

/// An entry in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEntry {
    /// Its position, from 1, without gaps.
    pub seq: u64,
    /// The entry.
    pub entry: AuditEntry,
    /// The previous entry's hash (zeros for the first).
    pub prev: [u8; 32],
    /// This entry's hash.
    pub hash: [u8; 32],
}

impl serde::Serialize for SealedEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let e = &self.entry;
        let at =
            e.at.format(&time::format_description::well_known::Rfc3339)
                .map_err(serde::ser::Error::custom)?;
        let mut m = serializer.serialize_map(Some(16))?;
        m.serialize_entry("seq", &self.seq)?;
        m.serialize_entry("at", &at)?;
        m.serialize_entry("request", &e.request)?;
        m.serialize_entry("actor", &e.actor)?;
        m.serialize_entry("role", &e.role)?;
        m.serialize_entry("action", &e.action)?;
        m.serialize_entry("purpose", &e.purpose)?;
        m.serialize_entry("subject", &e.subject)?;
        m.serialize_entry("categories", &e.categories)?;
        m.serialize_entry("outcome", &e.outcome)?;
        m.serialize_entry("code", &e.code)?;
        m.serialize_entry("ticket", &e.ticket)?;
        m.serialize_entry("flagged", &e.flagged)?;
        m.serialize_entry("detail", &e.detail)?;
        m.serialize_entry("prev", &hex(&self.prev))?;
        m.serialize_entry("hash", &hex(&self.hash))?;
        m.end()
    }
}

/// A MAC'd statement that the chain had `hash` at `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// The sequence number sealed.
    pub seq: u64,
    /// The entry's hash there.
    pub hash: [u8; 32],
    /// HMAC-SHA256 under the audit key.
    pub mac: [u8; 32],
}

/// What one append writes: the entries, the checkpoints they cross, the new head.
#[derive(Debug, Clone)]
pub struct SealedBatch {
    /// The entries, in order.
    pub entries: Vec<SealedEntry>,
    /// Checkpoints at multiples of [`CHECKPOINT_EVERY`] within the batch.
    pub checkpoints: Vec<Seal>,
    /// The new head.
    pub head: Seal,
}

const DOMAIN: &[u8] = b"steward/audit/v1";

/// Hashes and MACs the chain. Holds the audit key.
pub struct AuditChain {
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for AuditChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditChain(<redacted>)")
    }
}

fn put(buf: &mut Vec<u8>, bytes: &[u8]) {
    // Lengths fit in u32: every field is bounded well below 4 GiB by the API.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(bytes);
}

fn put_opt(buf: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => buf.push(0),
        Some(v) => {
            buf.push(1);
            put(buf, v);
        }
    }
}

/// The nanoseconds an instant is stored and hashed as.
pub fn nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

/// The entry's canonical bytes (unambiguous: every field length-prefixed, in a fixed order).
fn encode(buf: &mut Vec<u8>, seq: u64, e: &AuditEntry) {
    buf.clear();
    buf.extend_from_slice(DOMAIN);
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&nanos(e.at).to_be_bytes());
    buf.extend_from_slice(e.request.as_bytes());
    put(buf, e.actor.as_bytes());
    put(buf, e.role.as_bytes());
    put(buf, e.action.as_bytes());
    put_opt(buf, e.purpose.as_deref().map(str::as_bytes));
    put_opt(buf, e.subject.as_ref().map(|s| s.as_bytes().as_slice()));
    buf.extend_from_slice(
        &u32::try_from(e.categories.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for c in &e.categories {
        put(buf, c.as_bytes());
    }
    put(buf, e.outcome.as_str().as_bytes());
    put_opt(buf, e.code.as_deref().map(str::as_bytes));
    put_opt(buf, e.ticket.as_deref().map(str::as_bytes));
    buf.push(u8::from(e.flagged));
    put_opt(buf, e.detail.as_deref().map(str::as_bytes));
}

fn entry_hash(buf: &mut Vec<u8>, prev: &[u8; 32], seq: u64, e: &AuditEntry) -> [u8; 32] {
    encode(buf, seq, e);
    let mut h = Sha256::new();
    h.update(prev);
    h.update(&buf[..]);
    h.finalize().into()
}

/// The head of the chain as stored: its seal, or nothing for an empty chain.
pub type Head = Option<Seal>;

impl AuditChain {
    /// A chain keyed with `key` (see `Keyring::subkey("audit")`).
    pub fn new(key: Zeroizing<[u8; 32]>) -> Self {
        Self { key }
    }

    /// The same chain for another task (the key copied, zeroed when either is dropped).
    fn duplicate(&self) -> Self {
        Self {
            key: self.key.clone(),
        }
    }

    fn mac(&self, label: &[u8], seq: u64, hash: &[u8; 32]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let Ok(mut mac) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(self.key.as_ref()) else {
            return [0; 32];
        };
        mac.update(DOMAIN);
        mac.update(label);
        mac.update(&seq.to_be_bytes());
        mac.update(hash);
        mac.finalize().into_bytes().into()
    }

    fn seal(&self, label: &[u8], seq: u64, hash: [u8; 32]) -> Seal {
        Seal {
            seq,
            hash,
            mac: self.mac(label, seq, &hash),
        }
    }

    fn seal_ok(&self, label: &[u8], s: &Seal) -> bool {
        steward_crypto::constant_time_eq(&self.mac(label, s.seq, &s.hash), &s.mac)
    }

    /// Chains `entries` after `head` (read inside the writing transaction, so two writers can
    /// never fork the chain).
    pub fn append(&self, head: Option<&Seal>, entries: Vec<AuditEntry>) -> SealedBatch {
        let (mut seq, mut prev) = head.map_or((0, [0; 32]), |h| (h.seq, h.hash));
        let mut buf = Vec::with_capacity(256);
        let mut checkpoints = Vec::new();
        let sealed: Vec<SealedEntry> = entries
            .into_iter()
            .map(|entry| {
                seq += 1;
                let hash = entry_hash(&mut buf, &prev, seq, &entry);
                let e = SealedEntry {
                    seq,
                    entry,
                    prev,
                    hash,
                };
                if seq % CHECKPOINT_EVERY == 0 {
                    checkpoints.push(self.seal(b"checkpoint", seq, hash));
                }
                prev = hash;
                e
            })
            .collect();
        SealedBatch {
            entries: sealed,
            checkpoints,
            head: self.seal(b"head", seq, prev),
        }
    }

    /// A verifier for a whole chain whose stored head is `head`.
    pub fn verifier(&self, head: Head) -> Verifier<'_> {
        Verifier {
            chain: self,
            head,
            expected: 1,
            last: [0; 32],
            before_last: [0; 32],
            last_checkpoint: 0,
            buf: Vec::with_capacity(256),
            verified: 0,
        }
    }

    /// The trim point for `checkpoint` (a stored checkpoint, its MAC checked): what a trimmed
    /// chain's verification starts from. Only the holder of the audit key can make one, so a
    /// prefix deleted behind Steward's back is still named as deleted.
    pub fn trim_mark(&self, checkpoint: &Seal) -> Option<Seal> {
        self.seal_ok(b"checkpoint", checkpoint)
            .then(|| self.seal(b"trim", checkpoint.seq, checkpoint.hash))
    }

    /// A verifier for a chain trimmed at `mark` (see [`AuditChain::trim_mark`]): it expects
    /// the entry after it first, following its hash.
    ///
    /// # Errors
    /// [`Break::Checkpoint`] when the mark was not sealed with this chain's key.
    pub fn verifier_from(&self, head: Head, mark: &Seal) -> Result<Verifier<'_>, Break> {
        if !self.seal_ok(b"trim", mark) {
            return Err(Break::Checkpoint {
                seq: mark.seq,
                what: "a trim point Steward did not seal",
            });
        }
        let mut v = self.verifier(head);
        v.expected = mark.seq + 1;
        v.last = mark.hash;
        v.last_checkpoint = mark.seq;
        Ok(v)
    }
}

/// How the chain was broken, at the first place it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Break {
    /// An entry's content no longer matches its hash.
    #[error("entry {seq} was modified: its content no longer matches its hash")]
    Modified {
        /// The entry.
        seq: u64,
    },
    /// Entries are missing.
    #[error("entries {from} to {to} were deleted")]
    Deleted {
        /// The first missing.
        from: u64,
        /// The last missing.
        to: u64,
    },
    /// An entry that was never written by Steward sits in the chain.
    #[error("entry {seq} was inserted: it was not in the chain Steward wrote")]
    Inserted {
        /// The foreign entry.
        seq: u64,
    },
    /// Two entries changed places.
    #[error("entries {first} and {second} were reordered")]
    Reordered {
        /// The earlier position.
        first: u64,
        /// The later position.
        second: u64,
    },
    /// The entries between two checkpoints were changed and re-hashed to hide it.
    #[error(
        "the chain was rewritten between entries {from} and {to}: it no longer reaches the hash sealed at {to}"
    )]
    Rewritten {
        /// The first entry after the last good checkpoint.
        from: u64,
        /// The checkpoint that does not match.
        to: u64,
    },
    /// A checkpoint was removed or forged.
    #[error("the checkpoint at entry {seq} is {what}")]
    Checkpoint {
        /// Its position.
        seq: u64,
        /// `missing` or `forged`.
        what: &'static str,
    },
    /// The sealed head is missing, forged, or does not match the last entry.
    #[error("the chain's sealed head {what}")]
    Head {
        /// What is wrong.
        what: String,
    },
}

/// Walks a chain in order and stops at the first break.
pub struct Verifier<'a> {
    chain: &'a AuditChain,
    head: Head,
    expected: u64,
    last: [u8; 32],
    before_last: [u8; 32],
    last_checkpoint: u64,
    buf: Vec<u8>,
    verified: u64,
}

impl fmt::Debug for Verifier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verifier(at {})", self.expected)
    }
}

/// What a clean verification saw.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// The head's hash, hex (keep it elsewhere to detect a truncation later).
    pub head: String,
}

/// Hex of a hash.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl Verifier<'_> {
    /// The next sequence number the verifier expects.
    pub fn expected(&self) -> u64 {
        self.expected
    }

    /// Checks the next stored entry. `next` is the entry after it, if any (to tell a
    /// reordering from a deletion). Checkpoints are given with [`Verifier::checkpoint`] when
    /// the entry at their sequence number has been fed.
    pub fn feed(&mut self, e: &SealedEntry, next: Option<&SealedEntry>) -> Result<(), Break> {
        if e.seq > self.expected {
            return Err(Break::Deleted {
                from: self.expected,
                to: e.seq - 1,
            });
        }
        let computed = entry_hash(&mut self.buf, &e.prev, e.seq, &e.entry);
        if computed != e.hash {
            // The entry does not hash at its own position. Did it move?
            let at = |seq: u64, buf: &mut Vec<u8>, x: &SealedEntry| {
                entry_hash(buf, &x.prev, seq, &x.entry) == x.hash
            };
            if e.seq > 1 && at(e.seq - 1, &mut self.buf, e) {
                // It belongs one place earlier: it is a copy of the entry before it, or
                // something was put before it and it was pushed along.
                let seq = if e.hash == self.last {
                    e.seq
                } else {
                    e.seq - 1
                };
                return Err(Break::Inserted { seq });
            }
            if at(e.seq + 1, &mut self.buf, e) {
                if next.is_some_and(|n| at(e.seq, &mut self.buf, n)) {
                    return Err(Break::Reordered {
                        first: e.seq,
                        second: e.seq + 1,
                    });
                }
                return Err(Break::Deleted {
                    from: e.seq,
                    to: e.seq,
                });
            }
            return Err(Break::Modified { seq: e.seq });
        }
        if e.prev != self.last {
            if e.seq > 1 && e.prev == self.before_last {
                return Err(Break::Inserted { seq: e.seq - 1 });
            }
            // The entry is intact but does not follow the one before: that one was changed
            // and re-hashed.
            return Err(Break::Modified {
                seq: e.seq.saturating_sub(1),
            });
        }
        self.before_last = self.last;
        self.last = e.hash;
        self.expected = e.seq + 1;
        self.verified += 1;
        Ok(())
    }

    /// Checks a stored checkpoint against the entries fed so far. Give them in order, each
    /// once the entry at its sequence number has been fed.
    pub fn checkpoint(&mut self, c: &Seal) -> Result<(), Break> {
        let due = self.last_checkpoint + CHECKPOINT_EVERY;
        if c.seq > due {
            return Err(Break::Checkpoint {
                seq: due,
                what: "missing",
            });
        }
        if c.seq != due || !self.chain.seal_ok(b"checkpoint", c) {
            return Err(Break::Checkpoint {
                seq: c.seq,
                what: "forged",
            });
        }
        if c.seq >= self.expected {
            return Err(Break::Deleted {
                from: self.expected,
                to: c.seq,
            });
        }
        if c.seq + 1 != self.expected || c.hash != self.last {
            return Err(Break::Rewritten {
                from: self.last_checkpoint + 1,
                to: c.seq,
            });
        }
        self.last_checkpoint = c.seq;
        Ok(())
    }

    /// Ends the walk: the last entry must be the sealed head, and every checkpoint due present.
    pub fn finish(self) -> Result<Verified, Break> {
        let last_seq = self.expected - 1;
        if last_seq >= self.last_checkpoint + CHECKPOINT_EVERY {
            return Err(Break::Checkpoint {
                seq: self.last_checkpoint + CHECKPOINT_EVERY,
                what: "missing",
            });
        }
        match &self.head {
            None if last_seq == 0 => {}
            None => {
                return Err(Break::Head {
                    what: "is missing although entries exist".to_owned(),
                });
            }
            Some(h) if !self.chain.seal_ok(b"head", h) => {
                return Err(Break::Head {
                    what: "is forged (its MAC does not verify)".to_owned(),
                });
            }
            Some(h) if h.seq > last_seq => {
                return Err(Break::Deleted {
                    from: last_seq + 1,
                    to: h.seq,
                });
            }
            Some(h) if h.seq < last_seq => {
                return Err(Break::Inserted { seq: h.seq + 1 });
            }
            Some(h) if h.hash != self.last => {
                return Err(Break::Rewritten {
                    from: self.last_checkpoint + 1,
                    to: h.seq,
                });
            }
            Some(_) => {}
        }
        Ok(Verified {
            entries: self.verified,
            checkpoints: self.last_checkpoint / CHECKPOINT_EVERY,
            head: hex(&self.last),
        })
    }
}

/// Writes audit entries durably, many callers' entries in one transaction (group commit):
/// each caller queues its entry, and whoever takes the writer's turn writes the whole queue.
/// The write runs in its own task, so a caller that goes away (a dropped HTTP connection)
/// never loses anyone's entry.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<LogInner>,
}

type Waiter = oneshot::Sender<Result<u64, StoreError>>;

struct LogInner {
    chain: AuditChain,
    pending: std::sync::Mutex<Vec<(AuditEntry, Option<Waiter>)>>,
    writer: tokio::sync::Mutex<()>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditLog")
    }
}

impl AuditLog {
    /// A log that chains with `chain`.
    pub fn new(chain: AuditChain) -> Self {
        Self {
            inner: Arc::new(LogInner {
                chain,
                pending: std::sync::Mutex::new(Vec::new()),
                writer: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The chain (for verification).
    pub fn chain(&self) -> &AuditChain {
        &self.inner.chain
    }

    fn queue(
        &self,
        entries: Vec<AuditEntry>,
    ) -> Option<oneshot::Receiver<Result<u64, StoreError>>> {
        let (tx, rx) = oneshot::channel();
        let n = entries.len();
        let Ok(mut pending) = self.inner.pending.lock() else {
            return None;
        };
        for (i, e) in entries.into_iter().enumerate() {
            // The caller waits on its last entry: all of its entries are in one write.
            pending.push((e, None));
            if i + 1 == n
                && let Some(last) = pending.last_mut()
            {
                last.1 = Some(tx);
                break;
            }
        }
        Some(rx)
    }

    /// Writes `entry` and returns its sequence number once it is committed.
    pub async fn record<S: AuditStore>(
        &self,
        store: &S,
        entry: AuditEntry,
    ) -> Result<u64, StoreError> {
        self.record_all(store, vec![entry]).await
    }

    /// Writes `entries` (in order, in one transaction) and returns the last one's sequence
    /// number once committed.
    pub async fn record_all<S: AuditStore>(
        &self,
        store: &S,
        entries: Vec<AuditEntry>,
    ) -> Result<u64, StoreError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let Some(rx) = self.queue(entries) else {
            return Err(StoreError::Backend(
                "the audit queue is poisoned".to_owned(),
            ));
        };
        let inner = Arc::clone(&self.inner);
        let store = store.clone();
        tokio::spawn(async move {
            let _turn = inner.writer.lock().await;
            let batch = match inner.pending.lock() {
                Ok(mut p) => std::mem::take(&mut *p),
                Err(_) => return,
            };
            if batch.is_empty() {
                return;
            }
            let n = batch.len() as u64;
            let (entries, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let written = store.append_audit(entries, &inner.chain).await;
            for (i, w) in (0u64..).zip(waiters) {
                if let Some(w) = w {
                    let _ = w.send(match &written {
                        Ok(head) => Ok(head.seq + 1 + i - n),
                        Err(e) => Err(e.clone()),
                    });
                }
            }
        });
        rx.await
            .map_err(|_| StoreError::Backend("the audit writer stopped".to_owned()))?
    }
}

/// Entries read per page while verifying.
const PAGE: u32 = 8192;

/// A verification is split into segments of at least this many checkpoints (below that,
/// a task costs more than it saves).
const SEGMENT_CHECKPOINTS: usize = 64;

/// Verifies the whole chain stored in `store`, calling `progress(done, total)` as it goes.
/// The outer error is the database failing; the inner one the chain being broken.
///
/// Long chains are checked in as many segments as the machine has cores (at most 8), each
/// segment read and hashed by its own task: a segment starts at a checkpoint (its MAC
/// checked) and ends at the next segment's first checkpoint, which it checks — so the
/// segments prove the same chain the single walk would, and the break named is the first
/// one, in the chain's order.
pub async fn verify<S: AuditStore>(
    store: &S,
    chain: &AuditChain,
    progress: impl FnMut(u64, u64),
) -> Result<Result<Verified, Break>, StoreError> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    verify_in(store, chain, cores.min(8), SEGMENT_CHECKPOINTS, progress).await
}

/// [`verify`] in at most `segments` segments of at least `least` checkpoints each.
pub async fn verify_in<S: AuditStore>(
    store: &S,
    chain: &AuditChain,
    segments: usize,
    least: usize,
    mut progress: impl FnMut(u64, u64),
) -> Result<Result<Verified, Break>, StoreError> {
    // The last sequence number is read before the head: the head is written in the same
    // transaction as its entries, so a legitimate chain's head read later is never behind it.
    let last = store.audit_last_seq().await?;
    let head = store.audit_head().await?;
    let sealed = head.as_ref().map_or(0, |h| h.seq);
    if head.is_none() && last > 0 {
        return Ok(Err(Break::Head {
            what: "is missing although entries exist".to_owned(),
        }));
    }
    // Rows beyond the head were slipped in; walk them too, so a tampered row in the middle is
    // named before the surplus at the end.
    let upper = sealed.max(last);
    // A chain trimmed by its retention period starts after its sealed trim point.
    let origin = match Start::of_chain(store, chain).await? {
        Ok(start) => start,
        Err(b) => return Ok(Err(b)),
    };
    // Nothing may stand where the trim removed everything: an entry there was put back.
    if let Some(e) = store.audit_entries(0, origin.seq, 1).await?.first() {
        return Ok(Err(Break::Inserted { seq: e.seq }));
    }
    let checkpoints = store.audit_checkpoints(origin.seq, upper).await?;
    let parts = segments.min(checkpoints.len() / least.max(1)).max(1);
    // Segment k ends at (and checks) the checkpoint at `ends[k]`; the next starts there.
    let ends: Vec<usize> = (1..parts).map(|k| k * checkpoints.len() / parts).collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let mut tasks = Vec::with_capacity(parts);
    let mut begin = 0;
    let mut start = origin;
    for k in 0..parts {
        let (through, cps, end, final_head) = match ends.get(k) {
            Some(&i) => (
                checkpoints[i].seq,
                checkpoints[begin..=i].to_vec(),
                Some(Start::at(&checkpoints[i])),
                None,
            ),
            None => (
                upper,
                checkpoints[begin..].to_vec(),
                None,
                Some(head.clone()),
            ),
        };
        let segment = Segment {
            start,
            through,
            checkpoints: cps,
            lookahead: final_head.is_none(),
            head: final_head,
        };
        let (store, chain, tx) = (store.clone(), chain.duplicate(), tx.clone());
        tasks.push(tokio::spawn(async move {
            segment
                .walk(&store, &chain, |n| {
                    let _ = tx.send(n);
                })
                .await
        }));
        if let (Some(e), Some(&i)) = (end, ends.get(k)) {
            start = e;
            begin = i + 1;
        }
    }
    drop(tx);
    let mut done = 0;
    while let Some(n) = rx.recv().await {
        done += n;
        progress(done, upper);
    }
    let mut entries = 0;
    let mut verified = None;
    for task in tasks {
        let walked = task
            .await
            .map_err(|_| StoreError::Backend("an audit verifier task stopped".to_owned()))??;
        match walked {
            Err(b) => return Ok(Err(b)),
            Ok(w) => {
                entries += w.entries;
                verified = w.finished.or(verified);
            }
        }
    }
    Ok(verified
        .map(|v| Verified { entries, ..v })
        .ok_or_else(|| Break::Head {
            what: "was not reached".to_owned(),
        }))
}

/// Where a walk starts: the entry before its first, as a checkpoint or trim point seals it.
#[derive(Debug, Clone, Copy)]
struct Start {
    seq: u64,
    hash: [u8; 32],
}

impl Start {
    const ORIGIN: Self = Self {
        seq: 0,
        hash: [0; 32],
    };

    fn at(seal: &Seal) -> Self {
        Self {
            seq: seal.seq,
            hash: seal.hash,
        }
    }

    /// Where the stored chain starts: its sealed trim point, or the origin if it was never
    /// trimmed; a trim point the chain's key did not seal is a break.
    async fn of_chain<S: AuditStore>(
        store: &S,
        chain: &AuditChain,
    ) -> Result<Result<Self, Break>, StoreError> {
        Ok(match store.audit_trim().await? {
            None => Ok(Self::ORIGIN),
            Some(mark) if chain.seal_ok(b"trim", &mark) => Ok(Self::at(&mark)),
            Some(mark) => Err(Break::Checkpoint {
                seq: mark.seq,
                what: "a trim point Steward did not seal",
            }),
        })
    }
}

/// A stretch of the chain walked by one task.
struct Segment {
    /// The sealed point it follows (its MAC already checked by whoever chose it).
    start: Start,
    /// Its last sequence number.
    through: u64,
    /// The stored checkpoints within it, its last one included when it ends at one.
    checkpoints: Vec<Seal>,
    /// Whether the entry after `through` is read too, to tell a reordering at its end.
    lookahead: bool,
    /// For the final segment, the stored head it must end at.
    head: Option<Head>,
}

/// What a segment's walk saw.
struct Walked {
    entries: u64,
    /// The whole chain's result, from the final segment.
    finished: Option<Verified>,
    /// Where the walk ended (the next sequence number expected, the last hash).
    expected: u64,
    last: [u8; 32],
}

impl Segment {
    /// Reads and checks the segment page by page, reading the next page while this one is
    /// checked. `read(n)` is told of every page of `n` entries.
    async fn walk<S: AuditStore>(
        self,
        store: &S,
        chain: &AuditChain,
        mut read: impl FnMut(u64),
    ) -> Result<Result<Walked, Break>, StoreError> {
        let mut v = chain.verifier(self.head.clone().flatten());
        v.expected = self.start.seq + 1;
        v.last = self.start.hash;
        v.last_checkpoint = self.start.seq;
        let mut cps = self.checkpoints.iter().peekable();
        // The entry the start seals, read for the hash before it (which tells an insertion
        // right after the start from a modification).
        let mut page = store
            .audit_entries(self.start.seq.saturating_sub(1), self.through, PAGE)
            .await?;
        if self.start.seq > 0 && page.first().is_some_and(|e| e.seq == self.start.seq) {
            let first = page.remove(0);
            if first.hash == self.start.hash {
                v.before_last = first.prev;
            }
        }
        // The entry after the segment, once read.
        let mut beyond: Option<Vec<SealedEntry>> = None;
        while !page.is_empty() {
            let after = page.last().map_or(0, |e| e.seq);
            let (next_page, checked) =
                tokio::join!(store.audit_entries(after, self.through, PAGE), async {
                    feed(&mut v, &mut cps, &page, 0..page.len() - 1, None)
                });
            let next_page = next_page?;
            if let Err(b) = checked {
                return Ok(Err(b));
            }
            if next_page.is_empty() && self.lookahead {
                let after_end = store.audit_entries(self.through, u64::MAX, 1).await?;
                let last = page.len() - 1..page.len();
                if let Err(b) = feed(&mut v, &mut cps, &page, last, after_end.first()) {
                    return Ok(Err(b));
                }
                read(page.len() as u64);
                beyond = Some(after_end);
                break;
            }
            let last = page.len() - 1..page.len();
            if let Err(b) = feed(&mut v, &mut cps, &page, last, next_page.first()) {
                return Ok(Err(b));
            }
            read(page.len() as u64);
            page = next_page;
        }
        // The segment's last entries are missing: a single walk would name the whole gap, up
        // to the next entry that is there, even beyond this segment.
        if self.lookahead && v.expected <= self.through {
            let after_end = match beyond {
                Some(e) => e,
                None => store.audit_entries(self.through, u64::MAX, 1).await?,
            };
            if let Some(next) = after_end.first() {
                return Ok(Err(Break::Deleted {
                    from: v.expected,
                    to: next.seq - 1,
                }));
            }
        }
        for cp in cps {
            if let Err(b) = v.checkpoint(cp) {
                return Ok(Err(b));
            }
        }
        let (entries, expected, last) = (v.verified, v.expected, v.last);
        let finished = if self.head.is_some() {
            match v.finish() {
                Ok(done) => Some(done),
                Err(b) => return Ok(Err(b)),
            }
        } else {
            None
        };
        Ok(Ok(Walked {
            entries,
            finished,
            expected,
            last,
        }))
    }
}

/// Feeds `page[range]` in order (each entry's successor is the next in `page`, or `then`
/// after the page's last), checking each checkpoint once the entry it seals has been fed.
fn feed<'c>(
    v: &mut Verifier<'_>,
    cps: &mut std::iter::Peekable<std::slice::Iter<'c, Seal>>,
    page: &[SealedEntry],
    range: std::ops::Range<usize>,
    then: Option<&SealedEntry>,
) -> Result<(), Break> {
    for i in range {
        v.feed(&page[i], page.get(i + 1).or(then))?;
        while let Some(cp) = cps.next_if(|cp| cp.seq < v.expected()) {
            v.checkpoint(cp)?;
        }
    }
    Ok(())
}

/// Verifies the chain from where it starts (its trim point, or its first entry) through the
/// checkpoint `through`, before a trim deletes that part: a trim never takes away entries whose
/// times or contents were changed, nor ends at a checkpoint the chain does not reach.
pub async fn verify_through<S: AuditStore>(
    store: &S,
    chain: &AuditChain,
    through: &Seal,
) -> Result<Result<(), Break>, StoreError> {
    if !chain.seal_ok(b"checkpoint", through) {
        return Ok(Err(Break::Checkpoint {
            seq: through.seq,
            what: "forged",
        }));
    }
    let start = match Start::of_chain(store, chain).await? {
        Ok(start) => start,
        Err(b) => return Ok(Err(b)),
    };
    let segment = Segment {
        start,
        through: through.seq,
        checkpoints: store.audit_checkpoints(start.seq, through.seq).await?,
        lookahead: true,
        head: None,
    };
    let walked = match segment.walk(store, chain, |_| {}).await? {
        Ok(w) => w,
        Err(b) => return Ok(Err(b)),
    };
    if walked.expected != through.seq + 1 || walked.last != through.hash {
        return Ok(Err(Break::Rewritten {
            from: start.seq + 1,
            to: through.seq,
        }));
    }
    Ok(Ok(()))
}

/// Checks a support reason: a ticket reference such as `ZD-4821` or `#1234`, 1–64 characters of
/// letters, digits and `-_.:#/`, so no e-mail address or name can end up in the audit.
pub fn ticket(text: &str) -> Result<&str, TicketError> {
    let t = text.trim();
    if t.is_empty() || t.len() > 64 {
        return Err(TicketError);
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:#/".contains(&b))
    {
        return Err(TicketError);
    }
    Ok(t)
}

/// A reason that is not a ticket reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a reason is a ticket reference such as `ZD-4821`: 1 to 64 letters, digits or `-_.:#/` (no names or addresses)"
)]
pub struct TicketError;

/// Which entries an export wants. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this subject.
    pub subject: Option<SubjectId>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this purpose.
    pub purpose: Option<String>,
    /// Only entries at or after.
    pub since: Option<OffsetDateTime>,
    /// Only entries before.
    pub until: Option<OffsetDateTime>,
}

impl AuditFilter {
    /// Whether `e` passes the filter (the stores filter in SQL; this is the same rule).
    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.subject.is_none_or(|s| e.subject == Some(s))
            && self.actor.as_ref().is_none_or(|a| &e.actor == a)
            && self
                .purpose
                .as_ref()
                .is_none_or(|p| e.purpose.as_ref() == Some(p))
            && self.since.is_none_or(|t| e.at >= t)
            && self.until.is_none_or(|t| e.at < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> AuditChain {
        AuditChain::new(Zeroizing::new([7; 32]))
    }

    fn entry(i: u64) -> AuditEntry {
        AuditEntry {
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(i as i64),
            request: Uuid::from_u128(u128::from(i)),
            actor: "key:stw_00000000".into(),
            role: "service".into(),
            action: "subject.read".into(),
            purpose: Some("account".into()),
            subject: None,
            categories: vec!["user.contact.email".into()],
            outcome: Outcome::Ok,
            code: None,
            ticket: None,
            flagged: false,
            detail: None,
        }
    }

    fn build(n: u64) -> SealedBatch {
        chain().append(None, (1..=n).map(entry).collect())
    }

    fn verify(c: &AuditChain, b: &SealedBatch) -> Result<Verified, Break> {
        verify_parts(c, &b.entries, &b.checkpoints, Some(b.head.clone()))
    }

    fn verify_parts(
        c: &AuditChain,
        entries: &[SealedEntry],
        checkpoints: &[Seal],
        head: Head,
    ) -> Result<Verified, Break> {
        let mut v = c.verifier(head);
        let mut cps = checkpoints.iter().peekable();
        for (i, e) in entries.iter().enumerate() {
            v.feed(e, entries.get(i + 1))?;
            while let Some(cp) = cps.next_if(|cp| cp.seq < v.expected()) {
                v.checkpoint(cp)?;
            }
        }
        for cp in cps {
            v.checkpoint(cp)?;
        }
        v.finish()
    }

    #[test]
    fn a_trimmed_chain_verifies_from_its_sealed_mark_and_only_from_it() {
        let c = chain();
        let b = c.append(None, (1..=2100).map(entry).collect());
        let at = |seq: u64| (seq - 1) as usize;
        let rest = |from: u64| b.entries[at(from)..].to_vec();
        let walk = |mut v: Verifier<'_>, entries: &[SealedEntry], cps: &[Seal]| {
            let mut cps = cps.iter().peekable();
            for (i, e) in entries.iter().enumerate() {
                v.feed(e, entries.get(i + 1))?;
                while let Some(cp) = cps.next_if(|cp| cp.seq < v.expected()) {
                    v.checkpoint(cp)?;
                }
            }
            v.finish()
        };
        let mark = c.trim_mark(&b.checkpoints[0]).unwrap();
        assert_eq!(mark.seq, CHECKPOINT_EVERY);
        let later: Vec<Seal> = b.checkpoints[1..].to_vec();
        let v = c.verifier_from(Some(b.head.clone()), &mark).unwrap();
        let ok = walk(v, &rest(CHECKPOINT_EVERY + 1), &later).unwrap();
        assert_eq!(ok.entries, 2100 - CHECKPOINT_EVERY);
        // A mark sealed with another key, or a checkpoint's own seal passed as a mark: refused.
        let other = AuditChain::new(Zeroizing::new([8; 32]));
        let forged = other.seal(b"trim", mark.seq, mark.hash);
        assert!(matches!(
            c.verifier_from(Some(b.head.clone()), &forged),
            Err(Break::Checkpoint { .. })
        ));
        assert!(
            c.verifier_from(Some(b.head.clone()), &b.checkpoints[0])
                .is_err()
        );
        assert!(c.trim_mark(&forged).is_none());
        // More deleted after the mark than it covers: named.
        let v = c.verifier_from(Some(b.head.clone()), &mark).unwrap();
        assert_eq!(
            walk(v, &rest(CHECKPOINT_EVERY + 3), &later),
            Err(Break::Deleted {
                from: CHECKPOINT_EVERY + 1,
                to: CHECKPOINT_EVERY + 2
            })
        );
    }

    #[test]
    fn an_untouched_chain_verifies_across_batches() {
        let c = chain();
        let first = c.append(None, (1..=1500).map(entry).collect());
        let second = c.append(Some(&first.head), (1501..=2100).map(entry).collect());
        let entries: Vec<_> = first
            .entries
            .iter()
            .chain(&second.entries)
            .cloned()
            .collect();
        let cps: Vec<_> = first
            .checkpoints
            .iter()
            .chain(&second.checkpoints)
            .cloned()
            .collect();
        let ok = verify_parts(&c, &entries, &cps, Some(second.head)).unwrap();
        assert_eq!(ok.entries, 2100);
        assert_eq!(ok.checkpoints, 2);
        assert_eq!(verify_parts(&c, &[], &[], None).unwrap().entries, 0);
    }

    #[test]
    fn each_tampering_is_named_at_its_place() {
        let c = chain();
        let b = build(20);

        let mut modified = b.clone();
        modified.entries[4].entry.actor = "someone-else".into();
        assert_eq!(verify(&c, &modified), Err(Break::Modified { seq: 5 }));

        let mut deleted = b.clone();
        deleted.entries.remove(4);
        assert_eq!(verify(&c, &deleted), Err(Break::Deleted { from: 5, to: 5 }));

        // Deleted and renumbered so no gap shows.
        let mut renumbered = b.clone();
        renumbered.entries.remove(4);
        for e in &mut renumbered.entries[4..] {
            e.seq -= 1;
        }
        assert_eq!(
            verify(&c, &renumbered),
            Err(Break::Deleted { from: 5, to: 5 })
        );

        // Inserted in the middle, properly hashed, the rest renumbered.
        let mut inserted = b.clone();
        let forged_entry = entry(99);
        let mut buf = Vec::new();
        let prev = inserted.entries[3].hash;
        let forged = SealedEntry {
            seq: 5,
            hash: entry_hash(&mut buf, &prev, 5, &forged_entry),
            prev,
            entry: forged_entry,
        };
        inserted.entries.insert(4, forged);
        for e in &mut inserted.entries[5..] {
            e.seq += 1;
        }
        assert_eq!(verify(&c, &inserted), Err(Break::Inserted { seq: 5 }));

        // A genuine entry copied into the next place (a replay), the rest pushed along.
        let mut replayed = b.clone();
        let copy = replayed.entries[3].clone();
        replayed.entries.insert(4, SealedEntry { seq: 5, ..copy });
        for e in &mut replayed.entries[5..] {
            e.seq += 1;
        }
        assert_eq!(verify(&c, &replayed), Err(Break::Inserted { seq: 5 }));

        // Two neighbours swapped.
        let mut reordered = b.clone();
        reordered.entries.swap(4, 5);
        reordered.entries[4].seq = 5;
        reordered.entries[5].seq = 6;
        assert_eq!(
            verify(&c, &reordered),
            Err(Break::Reordered {
                first: 5,
                second: 6
            })
        );

        // Appended at the end with a recomputed hash: the sealed head gives it away.
        let mut appended = b.clone();
        let prev = appended.entries[19].hash;
        let e = entry(21);
        appended.entries.push(SealedEntry {
            seq: 21,
            hash: entry_hash(&mut buf, &prev, 21, &e),
            prev,
            entry: e,
        });
        assert_eq!(verify(&c, &appended), Err(Break::Inserted { seq: 21 }));

        // The tail cut off.
        let mut cut = b;
        cut.entries.truncate(18);
        assert_eq!(verify(&c, &cut), Err(Break::Deleted { from: 19, to: 20 }));
    }

    #[test]
    fn a_rewritten_chain_is_caught_by_the_mac_not_the_hashes() {
        let c = chain();
        let b = build(2000);
        // The attacker changes entry 100 and re-hashes everything after it, which plain hashes
        // allow; the checkpoint at 1024 and the head were MAC'd with a key they lack.
        let mut entries = b.entries.clone();
        entries[99].entry.purpose = Some("marketing".into());
        let mut buf = Vec::new();
        let mut prev = entries[98].hash;
        for e in &mut entries[99..] {
            e.prev = prev;
            e.hash = entry_hash(&mut buf, &prev, e.seq, &e.entry);
            prev = e.hash;
        }
        assert_eq!(
            verify_parts(&c, &entries, &b.checkpoints, Some(b.head.clone())),
            Err(Break::Rewritten { from: 1, to: 1024 })
        );
        // A checkpoint forged without the key.
        let mut forged = b.checkpoints.clone();
        forged[0].hash = entries[1023].hash;
        assert_eq!(
            verify_parts(&c, &entries, &forged, Some(b.head.clone())),
            Err(Break::Checkpoint {
                seq: 1024,
                what: "forged"
            })
        );
        // A checkpoint deleted.
        assert_eq!(
            verify_parts(&c, &b.entries, &[], Some(b.head.clone())),
            Err(Break::Checkpoint {
                seq: 1024,
                what: "missing"
            })
        );
        // Another key (another vault) cannot vouch for this chain.
        let other = AuditChain::new(Zeroizing::new([8; 32]));
        assert!(verify(&other, &b).is_err());
    }

    #[test]
    fn a_ticket_is_a_reference_not_a_sentence() {
        assert_eq!(ticket(" ZD-4821 "), Ok("ZD-4821"));
        assert_eq!(ticket("#1234"), Ok("#1234"));
        assert!(ticket("alice@example.com").is_err());
        assert!(ticket("called Bob Smith").is_err());
        assert!(ticket("").is_err());
        assert!(ticket(&"x".repeat(65)).is_err());
    }

    /// The chain as a store keeps it, in memory, for the segmented walk.
    #[derive(Clone, Default)]
    struct Kept(Arc<std::sync::Mutex<KeptChain>>);

    #[derive(Default)]
    struct KeptChain {
        entries: std::collections::BTreeMap<u64, SealedEntry>,
        checkpoints: std::collections::BTreeMap<u64, Seal>,
        head: Option<Seal>,
    }

    impl Kept {
        fn of(b: &SealedBatch) -> Self {
            let k = Self::default();
            {
                let mut c = k.0.lock().unwrap();
                c.entries = b.entries.iter().map(|e| (e.seq, e.clone())).collect();
                c.checkpoints = b.checkpoints.iter().map(|s| (s.seq, s.clone())).collect();
                c.head = Some(b.head.clone());
            }
            k
        }

        fn with(&self, f: impl FnOnce(&mut KeptChain)) {
            f(&mut self.0.lock().unwrap());
        }
    }

    impl crate::storage::Backend for Kept {
        async fn shut_down(&self) {}
        async fn keep_held(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    impl AuditStore for Kept {
        async fn append_audit(
            &self,
            entries: Vec<AuditEntry>,
            chain: &AuditChain,
        ) -> Result<Seal, StoreError> {
            let mut c = self.0.lock().unwrap();
            let b = chain.append(c.head.as_ref(), entries);
            c.entries.extend(b.entries.into_iter().map(|e| (e.seq, e)));
            c.checkpoints
                .extend(b.checkpoints.into_iter().map(|s| (s.seq, s)));
            c.head = Some(b.head.clone());
            Ok(b.head)
        }
        async fn audit_head(&self) -> Result<Option<Seal>, StoreError> {
            Ok(self.0.lock().unwrap().head.clone())
        }
        async fn audit_last_seq(&self) -> Result<u64, StoreError> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .entries
                .keys()
                .last()
                .copied()
                .unwrap_or(0))
        }
        async fn audit_entries(
            &self,
            after: u64,
            through: u64,
            limit: u32,
        ) -> Result<Vec<SealedEntry>, StoreError> {
            let c = self.0.lock().unwrap();
            if after >= through {
                return Ok(Vec::new());
            }
            Ok(c.entries
                .range(after + 1..=through)
                .take(limit as usize)
                .map(|(_, e)| e.clone())
                .collect())
        }
        async fn audit_checkpoints(
            &self,
            after: u64,
            through: u64,
        ) -> Result<Vec<Seal>, StoreError> {
            let c = self.0.lock().unwrap();
            if after >= through {
                return Ok(Vec::new());
            }
            Ok(c.checkpoints
                .range(after + 1..=through)
                .map(|(_, s)| s.clone())
                .collect())
        }
        async fn audit_trim(&self) -> Result<Option<Seal>, StoreError> {
            Ok(None)
        }
        async fn audit_trim_point(&self, _before: i64) -> Result<Option<Seal>, StoreError> {
            Ok(None)
        }
        async fn trim_audit(
            &self,
            _mark: Seal,
            _entries: Vec<AuditEntry>,
            _chain: &AuditChain,
        ) -> Result<u64, StoreError> {
            Err(StoreError::Backend(
                "this test store is never trimmed".into(),
            ))
        }
        async fn audit_search(
            &self,
            filter: &AuditFilter,
            after: u64,
            limit: u32,
        ) -> Result<Vec<SealedEntry>, StoreError> {
            let c = self.0.lock().unwrap();
            Ok(c.entries
                .range(after.saturating_add(1)..)
                .map(|(_, e)| e)
                .filter(|e| filter.matches(&e.entry))
                .take(limit as usize)
                .cloned()
                .collect())
        }
    }

    /// Ways to tamper with a stored chain around `s`.
    type Tampering = Box<dyn Fn(&mut KeptChain)>;

    fn tamperings(s: u64) -> Vec<(&'static str, Tampering)> {
        vec![
            (
                "modify",
                Box::new(move |c: &mut KeptChain| {
                    c.entries.get_mut(&s).unwrap().entry.actor.push('x');
                }),
            ),
            (
                "delete",
                Box::new(move |c: &mut KeptChain| {
                    c.entries.remove(&s);
                }),
            ),
            (
                "delete a run of 53",
                Box::new(move |c: &mut KeptChain| {
                    for seq in s..s + 53 {
                        c.entries.remove(&seq);
                    }
                }),
            ),
            (
                "reorder",
                Box::new(move |c: &mut KeptChain| {
                    if let (Some(mut a), Some(mut b)) =
                        (c.entries.remove(&s), c.entries.remove(&(s + 1)))
                    {
                        a.seq = s + 1;
                        b.seq = s;
                        c.entries.insert(s, b);
                        c.entries.insert(s + 1, a);
                    }
                }),
            ),
            (
                "insert",
                Box::new(move |c: &mut KeptChain| {
                    let tail: Vec<SealedEntry> = c.entries.split_off(&s).into_values().collect();
                    let mut copy = tail[0].clone();
                    copy.entry.detail = Some("slipped in".into());
                    c.entries.insert(s, copy);
                    for mut e in tail {
                        e.seq += 1;
                        c.entries.insert(e.seq, e);
                    }
                }),
            ),
            (
                "rewrite from here, re-hashed",
                Box::new(move |c: &mut KeptChain| {
                    let mut prev = c.entries.get(&(s - 1)).map_or([0; 32], |e| e.hash);
                    let mut buf = Vec::new();
                    for (_, e) in c.entries.range_mut(s..) {
                        if e.seq == s {
                            e.entry.action = "subject.nothing".into();
                        }
                        e.prev = prev;
                        e.hash = entry_hash(&mut buf, &prev, e.seq, &e.entry);
                        prev = e.hash;
                    }
                }),
            ),
            (
                "remove the checkpoint at or after",
                Box::new(move |c: &mut KeptChain| {
                    let at = s.next_multiple_of(CHECKPOINT_EVERY);
                    c.checkpoints.remove(&at).unwrap();
                }),
            ),
            (
                "forge the checkpoint at or after",
                Box::new(move |c: &mut KeptChain| {
                    let at = s.next_multiple_of(CHECKPOINT_EVERY);
                    c.checkpoints.get_mut(&at).unwrap().hash[0] ^= 1;
                }),
            ),
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chain_verified_in_segments_names_the_same_first_break_as_one_walk() {
        let c = chain();
        // 4 checkpoints: four segments end at 2048, 3072 and 4096.
        let b = build(4 * CHECKPOINT_EVERY + 300);
        let clean = Kept::of(&b);
        let one = verify_in(&clean, &c, 1, 1, |_, _| {}).await.unwrap();
        let four = verify_in(&clean, &c, 4, 1, |_, _| {}).await.unwrap();
        assert_eq!(one.as_ref().unwrap().entries, 4 * CHECKPOINT_EVERY + 300);
        assert_eq!(one.as_ref().unwrap().checkpoints, 4);
        assert_eq!(one, four);
        let mut seen = 0;
        let mut progress = 0;
        let counted = verify_in(&clean, &c, 4, 1, |done, total| {
            progress = done;
            seen = total;
        })
        .await
        .unwrap();
        assert!(counted.is_ok());
        assert_eq!(
            (progress, seen),
            (4 * CHECKPOINT_EVERY + 300, 4 * CHECKPOINT_EVERY + 300)
        );

        for s in [
            1, 2, 1000, 2000, 2047, 2048, 2049, 3071, 3072, 3073, 4095, 4096, 4097, 4330, 4390,
        ] {
            for (how, tamper) in tamperings(s) {
                if how.contains("checkpoint") && s > 4 * CHECKPOINT_EVERY {
                    continue;
                }
                let kept = Kept::of(&b);
                kept.with(|k| tamper(k));
                let (walked, four) = both_ways(&kept, &c).await;
                assert!(walked.is_err(), "{how} at {s} went unnoticed");
                assert_eq!(
                    four, walked,
                    "{how} at {s}: the segments disagree with one walk"
                );
            }
        }
    }

    /// The chain in `kept` checked by the bare verifier (every entry fed in order, then every
    /// checkpoint due) and by `verify_in` in four segments; the two results (and one segment
    /// must agree with the bare verifier too).
    async fn both_ways(
        kept: &Kept,
        c: &AuditChain,
    ) -> (Result<Verified, Break>, Result<Verified, Break>) {
        let (entries, checkpoints, head) = {
            let k = kept.0.lock().unwrap();
            (
                k.entries.values().cloned().collect::<Vec<_>>(),
                k.checkpoints.values().cloned().collect::<Vec<_>>(),
                k.head.clone(),
            )
        };
        let walked = verify_parts(c, &entries, &checkpoints, head);
        assert_eq!(
            verify_in(kept, c, 1, 1, |_, _| {}).await.unwrap(),
            walked,
            "one segment is one walk"
        );
        (walked, verify_in(kept, c, 4, 1, |_, _| {}).await.unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn segments_longer_than_a_page_read_ahead_and_still_agree() {
        let c = chain();
        // 16 checkpoints, four segments of more than a page of 8,192 entries... and a bit.
        let page = u64::from(PAGE);
        let n = 4 * page + 900;
        let b = build(n);
        let clean = Kept::of(&b);
        let (walked, four) = both_ways(&clean, &c).await;
        assert_eq!(walked.as_ref().unwrap().entries, n);
        assert_eq!(four, walked);
        for s in [page, page + 1, 2 * page - 5, 3 * page + 1] {
            for (how, tamper) in tamperings(s) {
                let kept = Kept::of(&b);
                kept.with(|k| tamper(k));
                let (walked, four) = both_ways(&kept, &c).await;
                assert!(walked.is_err(), "{how} at {s} went unnoticed");
                assert_eq!(
                    four, walked,
                    "{how} at {s}: the segments disagree with one walk"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_single_byte_change_to_any_entry_is_detected(
            n in 2u64..40, target in 0usize..40, field in 0u8..6,
        ) {
            let c = chain();
            let b = build(n);
            let i = target % (n as usize);
            let mut t = b;
            let e = &mut t.entries[i].entry;
            match field {
                0 => e.actor.push('x'),
                1 => e.categories.push("user.name".into()),
                2 => e.outcome = Outcome::Denied,
                3 => e.at += time::Duration::nanoseconds(1),
                4 => e.flagged = !e.flagged,
                _ => e.purpose = None,
            }
            proptest::prop_assert!(verify(&c, &t).is_err());
        }
    }
}
