//! Conversions between domain values and database columns, shared by both backends.

use std::borrow::Cow;

use steward_core::access::{Operation, Role, Scope};
use steward_core::audit::{AuditEntry, AuditFilter, Outcome, Seal, SealedEntry};
use steward_core::consent::{Action, ConsentEvent, Evidence, Method, Party, SealedEvent, Signal};
use steward_core::ledger::PolicyVersion;
use steward_core::staff::{SessionRecord, StaffRecord};
use steward_core::store::SealedField;
use steward_core::store::SubjectRecord;
use steward_core::{Store, StoreError, SubjectId};
use time::OffsetDateTime;
use uuid::Uuid;

/// Instants are stored as nanoseconds since the Unix epoch (good until 2262).
pub fn to_nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

pub fn from_nanos(n: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n))
        .map_err(|e| StoreError::Backend(format!("a stored time is out of range: {e}")))
}

pub fn uuid(bytes: &[u8]) -> Result<Uuid, StoreError> {
    Uuid::from_slice(bytes)
        .map_err(|_| StoreError::Backend("a stored id is not 16 bytes".to_owned()))
}

pub fn index(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Backend("a stored blind index is not 32 bytes".to_owned()))
}

pub fn version(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v)
        .map_err(|_| StoreError::Backend("a stored key version is out of range".to_owned()))
}

/// A field row: id, category, purpose, source, collected_at, sealed.
pub type FieldRow = (Vec<u8>, String, String, String, i64, Vec<u8>);

/// A held-field row: the field's columns, then reason and hold end.
pub type HeldRow = (
    Vec<u8>,
    String,
    String,
    String,
    i64,
    Vec<u8>,
    String,
    Option<i64>,
);

pub fn held_field(row: HeldRow) -> Result<steward_core::store::HeldField, StoreError> {
    let (id, category, purpose, source, at, sealed, reason, until) = row;
    Ok(steward_core::store::HeldField {
        field: field((id, category, purpose, source, at, sealed))?,
        reason,
        until: until.map(from_nanos).transpose()?,
    })
}

pub fn field(row: FieldRow) -> Result<SealedField, StoreError> {
    let (id, category, purpose, source, collected_at, sealed) = row;
    Ok(SealedField {
        id: uuid(&id)?,
        category,
        purpose,
        source,
        collected_at: from_nanos(collected_at)?,
        sealed,
    })
}

/// Maps a database error; unique violations become `Duplicate` once the kind is known.
pub fn backend(e: &sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Which identity of a failed batch is the duplicate, for a message naming its kind (never
/// its value): one repeated inside the batch, or one already stored.
pub async fn duplicate_kind<S: Store>(store: &S, subjects: &[SubjectRecord]) -> String {
    let mut seen: Vec<(&str, &[u8; 32])> = Vec::new();
    for identity in subjects.iter().flat_map(|s| &s.identities) {
        let in_batch = seen.contains(&(identity.kind.as_str(), &identity.index));
        if in_batch
            || matches!(
                store.find_subject(&identity.kind, &identity.index).await,
                Ok(Some(_))
            )
        {
            return identity.kind.clone();
        }
        seen.push((identity.kind.as_str(), &identity.index));
    }
    "identity".to_owned()
}

/// An API key row: prefix, hash, role, name, created_at, revoked_at, purposes, categories,
/// operations, expires_at.
#[derive(sqlx::FromRow)]
pub struct ApiKeyRow {
    prefix: String,
    hash: Vec<u8>,
    role: String,
    name: String,
    created_at: i64,
    revoked_at: Option<i64>,
    purposes: String,
    categories: String,
    operations: String,
    expires_at: Option<i64>,
}

/// The columns of an API key row, in [`ApiKeyRow`]'s order.
pub const API_KEY_COLUMNS: &str = "prefix, hash, role, name, created_at, revoked_at, purposes, categories, operations, expires_at";

pub fn api_key(row: ApiKeyRow) -> Result<steward_core::api_key::ApiKeyRecord, StoreError> {
    let operations = Scope::split(&row.operations)
        .iter()
        .map(|o| o.parse::<Operation>().map_err(StoreError::Backend))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(steward_core::api_key::ApiKeyRecord {
        prefix: row.prefix,
        hash: index(&row.hash)?,
        role: Role::parse(&row.role)
            .ok_or_else(|| StoreError::Backend(format!("unknown role `{}` stored", row.role)))?,
        scope: Scope {
            purposes: Scope::split(&row.purposes),
            categories: Scope::split(&row.categories),
            operations,
        },
        expires_at: row.expires_at.map(from_nanos).transpose()?,
        name: row.name,
        created_at: from_nanos(row.created_at)?,
        revoked_at: row.revoked_at.map(from_nanos).transpose()?,
    })
}

/// The scope columns of a key: purposes, categories, operations.
pub fn scope_columns(scope: &Scope) -> (String, String, String) {
    (
        Scope::join(&scope.purposes),
        Scope::join(&scope.categories),
        Scope::join(
            &scope
                .operations
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>(),
        ),
    )
}

/// An audit entry row.
#[derive(sqlx::FromRow)]
pub struct AuditRow {
    seq: i64,
    at: i64,
    request: Vec<u8>,
    actor: String,
    role: String,
    action: String,
    purpose: Option<String>,
    subject: Option<Vec<u8>>,
    categories: String,
    outcome: String,
    code: Option<String>,
    ticket: Option<String>,
    flagged: bool,
    detail: Option<String>,
    prev: Vec<u8>,
    hash: Vec<u8>,
}

/// The columns of an audit row, in [`AuditRow`]'s order.
pub const AUDIT_COLUMNS: &str = "seq, at, request, actor, role, action, purpose, subject, categories, outcome, code, ticket, flagged, detail, prev, hash";

/// Audit entries are inserted this many per statement.
pub const AUDIT_ROWS_PER_INSERT: usize = 1000;

pub fn seq(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Backend("a stored sequence number is negative".into()))
}

pub fn to_seq(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl AuditRow {
    pub fn into_sealed(self) -> Result<SealedEntry, StoreError> {
        Ok(SealedEntry {
            seq: seq(self.seq)?,
            entry: AuditEntry {
                at: from_nanos(self.at)?,
                request: uuid(&self.request)?,
                actor: self.actor,
                role: self.role,
                action: self.action,
                purpose: self.purpose,
                subject: self.subject.map(|s| uuid(&s).map(SubjectId)).transpose()?,
                categories: Scope::split(&self.categories),
                outcome: Outcome::parse(&self.outcome).ok_or_else(|| {
                    StoreError::Backend(format!("unknown audit outcome `{}` stored", self.outcome))
                })?,
                code: self.code,
                ticket: self.ticket,
                flagged: self.flagged,
                detail: self.detail,
            },
            // A wrong length is a tampered row: let the verifier name it (all-zero never
            // matches a SHA-256).
            prev: self.prev.try_into().unwrap_or([0xff; 32]),
            hash: self.hash.try_into().unwrap_or([0xff; 32]),
        })
    }
}

/// A page of audit rows as one JSON array of arrays, in [`AUDIT_COLUMNS`]' order, the BLOB
/// columns in hex (`NULL` kept as `null`): see `SqliteStore::audit_entries`.
pub const AUDIT_PAGE_SQLITE: &str = "SELECT json_group_array(json_array(seq, at, hex(request), actor, role, action, purpose, \
     iif(subject IS NULL, NULL, hex(subject)), categories, outcome, code, ticket, flagged, detail, hex(prev), hex(hash))) \
     FROM (SELECT * FROM audit_entries WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?)";

/// One audit row as [`AUDIT_PAGE_SQLITE`] writes it (a JSON array, read in field order). The
/// hex columns are borrowed from the page (hex never holds a JSON escape); text that may hold
/// one (a category a caller named, with a quote in it) is borrowed only when it does not.
#[derive(serde::Deserialize)]
struct JsonAuditRow<'a> {
    seq: i64,
    at: i64,
    request: &'a str,
    actor: String,
    role: String,
    action: String,
    purpose: Option<String>,
    #[serde(borrow)]
    subject: Option<&'a str>,
    #[serde(borrow)]
    categories: Cow<'a, str>,
    #[serde(borrow)]
    outcome: Cow<'a, str>,
    code: Option<String>,
    ticket: Option<String>,
    flagged: i64,
    detail: Option<String>,
    prev: &'a str,
    hash: &'a str,
}

/// Decodes a page written by [`AUDIT_PAGE_SQLITE`], in sequence order (SQLite aggregates the
/// ordered rows in their order, and an `ORDER BY` inside the aggregate would sort the page
/// again; the order is made sure of here, at no cost when it holds).
pub fn audit_page(page: &str) -> Result<Vec<SealedEntry>, StoreError> {
    let mut rows: Vec<JsonAuditRow<'_>> =
        serde_json::from_str(page).map_err(|e| undecodable("an audit page", &e))?;
    if !rows.is_sorted_by_key(|r| r.seq) {
        rows.sort_by_key(|r| r.seq);
    }
    rows.into_iter()
        .map(|r| {
            Ok(SealedEntry {
                seq: seq(r.seq)?,
                entry: AuditEntry {
                    at: from_nanos(r.at)?,
                    request: hex_uuid(r.request)?,
                    actor: r.actor,
                    role: r.role,
                    action: r.action,
                    purpose: r.purpose,
                    subject: r.subject.map(hex_uuid).transpose()?.map(SubjectId),
                    categories: Scope::split(&r.categories),
                    outcome: Outcome::parse(&r.outcome).ok_or_else(|| {
                        StoreError::Backend(format!("unknown audit outcome `{}` stored", r.outcome))
                    })?,
                    code: r.code,
                    ticket: r.ticket,
                    flagged: r.flagged != 0,
                    detail: r.detail,
                },
                // As in `AuditRow::into_sealed`: a wrong length is a tampered row, named by
                // the verifier.
                prev: unhex(r.prev).unwrap_or([0xff; 32]),
                hash: unhex(r.hash).unwrap_or([0xff; 32]),
            })
        })
        .collect()
}

/// A page that does not decode: where, never what (serde's message quotes the value, and a
/// stored value is not for an error message).
fn undecodable(what: &str, e: &serde_json::Error) -> StoreError {
    StoreError::Backend(format!(
        "{what} did not decode ({:?} at character {}): a stored row does not have the shape Steward wrote",
        e.classify(),
        e.column()
    ))
}

/// An id from SQLite's `hex()` of its 16 bytes (the error [`uuid`] gives for the bytes).
fn hex_uuid(text: &str) -> Result<Uuid, StoreError> {
    unhex::<16>(text)
        .map(Uuid::from_bytes)
        .ok_or_else(|| StoreError::Backend("a stored id is not 16 bytes".to_owned()))
}

/// `N` bytes from SQLite's `hex()` (two digits a byte), or `None` if `text` is not that.
fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    fn digit(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'A'..=b'F' => Some(b - b'A' + 10),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    let text = text.as_bytes();
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// A seal row: seq, hash, mac.
pub type SealRow = (i64, Vec<u8>, Vec<u8>);

pub fn seal(row: SealRow) -> Result<Seal, StoreError> {
    let (s, hash, mac) = row;
    Ok(Seal {
        seq: seq(s)?,
        hash: hash.try_into().unwrap_or([0xff; 32]),
        mac: mac.try_into().unwrap_or([0xff; 32]),
    })
}

/// Adds `filter`'s conditions (after `WHERE seq > after`) to a query.
pub fn push_filter<DB: sqlx::Database>(q: &mut sqlx::QueryBuilder<DB>, filter: &AuditFilter)
where
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Vec<u8>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if let Some(s) = &filter.subject {
        q.push(" AND subject = ").push_bind(s.as_bytes().to_vec());
    }
    if let Some(a) = &filter.actor {
        q.push(" AND actor = ").push_bind(a.clone());
    }
    if let Some(p) = &filter.purpose {
        q.push(" AND purpose = ").push_bind(p.clone());
    }
    if let Some(t) = filter.since {
        q.push(" AND at >= ").push_bind(to_nanos(t));
    }
    if let Some(t) = filter.until {
        q.push(" AND at < ").push_bind(to_nanos(t));
    }
}

/// A staff row.
#[derive(sqlx::FromRow)]
pub struct StaffRow {
    username: String,
    role: String,
    password_hash: String,
    totp: Option<Vec<u8>>,
    totp_last_step: Option<i64>,
    failed: i64,
    locked_until: Option<i64>,
    disabled: bool,
    created_at: i64,
}

/// The columns of a staff row, in [`StaffRow`]'s order.
pub const STAFF_COLUMNS: &str = "username, role, password_hash, totp, totp_last_step, failed, locked_until, disabled, created_at";

pub fn staff(row: StaffRow) -> Result<StaffRecord, StoreError> {
    Ok(StaffRecord {
        role: Role::parse(&row.role)
            .ok_or_else(|| StoreError::Backend(format!("unknown role `{}` stored", row.role)))?,
        username: row.username,
        password_hash: row.password_hash,
        totp: row.totp,
        totp_last_step: row.totp_last_step,
        failed: u32::try_from(row.failed).unwrap_or(u32::MAX),
        locked_until: row.locked_until.map(from_nanos).transpose()?,
        disabled: row.disabled,
        created_at: from_nanos(row.created_at)?,
    })
}

/// A session row: hash, username, created_at, expires_at, last_seen.
pub type SessionRow = (Vec<u8>, String, i64, i64, i64);

pub fn session(row: SessionRow) -> Result<SessionRecord, StoreError> {
    let (hash, username, created_at, expires_at, last_seen) = row;
    Ok(SessionRecord {
        hash: index(&hash)?,
        username,
        created_at: from_nanos(created_at)?,
        expires_at: from_nanos(expires_at)?,
        last_seen: from_nanos(last_seen)?,
    })
}

/// A consent event row.
#[derive(sqlx::FromRow)]
pub struct ConsentRow {
    seq: i64,
    at: i64,
    party_kind: String,
    party: Vec<u8>,
    action: String,
    purpose: Option<String>,
    signal: Option<String>,
    link: Option<Vec<u8>>,
    policy: String,
    terms: Option<String>,
    method: String,
    notice: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    actor: String,
    prev: Vec<u8>,
    hash: Vec<u8>,
    personal: Option<Vec<u8>>,
    redacted: Option<Vec<u8>>,
}

/// The columns of a consent row, in [`ConsentRow`]'s order.
pub const CONSENT_COLUMNS: &str = "seq, at, party_kind, party, action, purpose, signal, link, policy, terms, method, notice, ip, user_agent, actor, prev, hash, personal, redacted";

/// Consent events are inserted this many per statement.
pub const CONSENT_ROWS_PER_INSERT: usize = 1000;

fn unknown(what: &str, value: &str) -> StoreError {
    StoreError::Backend(format!("unknown consent {what} `{value}` stored"))
}

impl ConsentRow {
    pub fn into_sealed(self) -> Result<SealedEvent, StoreError> {
        let party_bytes: [u8; 16] =
            self.party.as_slice().try_into().map_err(|_| {
                StoreError::Backend("a stored consent party is not 16 bytes".into())
            })?;
        Ok(SealedEvent {
            seq: seq(self.seq)?,
            event: ConsentEvent {
                at: from_nanos(self.at)?,
                party: Party::from_parts(&self.party_kind, party_bytes)
                    .ok_or_else(|| unknown("party kind", &self.party_kind))?,
                action: Action::parse(&self.action)
                    .ok_or_else(|| unknown("action", &self.action))?,
                purpose: self.purpose,
                signal: self
                    .signal
                    .map(|s| Signal::parse(&s).ok_or_else(|| unknown("signal", &s)))
                    .transpose()?,
                link: self.link.map(|l| uuid(&l).map(SubjectId)).transpose()?,
                policy: self.policy,
                terms: self.terms,
                method: Method::parse(&self.method)
                    .ok_or_else(|| unknown("method", &self.method))?,
                evidence: Evidence {
                    notice: self.notice,
                    ip: self.ip,
                    user_agent: self.user_agent,
                },
                actor: self.actor,
            },
            prev: self.prev.try_into().unwrap_or([0xff; 32]),
            hash: self.hash.try_into().unwrap_or([0xff; 32]),
            // A digest of another length fails verification, as a changed hash does.
            personal: self.personal.map(|p| p.try_into().unwrap_or([0xff; 32])),
            redacted: self.redacted.map(|p| p.try_into().unwrap_or([0xff; 32])),
        })
    }
}

/// A page of consent rows as one JSON array of arrays, in [`CONSENT_COLUMNS`]' order, the
/// BLOB columns in hex (`NULL` kept as `null`): see `SqliteStore::consent_events`.
pub const CONSENT_PAGE_SQLITE: &str = "SELECT json_group_array(json_array(seq, at, party_kind, hex(party), action, purpose, signal, \
     iif(link IS NULL, NULL, hex(link)), policy, terms, method, notice, ip, user_agent, actor, hex(prev), hex(hash), \
     iif(personal IS NULL, NULL, hex(personal)), iif(redacted IS NULL, NULL, hex(redacted)))) \
     FROM (SELECT * FROM consent_events WHERE seq > ? ORDER BY seq LIMIT ?)";

/// One consent row as [`CONSENT_PAGE_SQLITE`] writes it (a JSON array, read in field order);
/// the hex columns borrowed from the page, the keyword columns borrowed unless they hold a
/// JSON escape (only a tampered row would, and it is then named as unknown, not undecodable).
#[derive(serde::Deserialize)]
struct JsonConsentRow<'a> {
    seq: i64,
    at: i64,
    #[serde(borrow)]
    party_kind: Cow<'a, str>,
    party: &'a str,
    #[serde(borrow)]
    action: Cow<'a, str>,
    purpose: Option<String>,
    #[serde(borrow)]
    signal: Option<Cow<'a, str>>,
    #[serde(borrow)]
    link: Option<&'a str>,
    policy: String,
    terms: Option<String>,
    #[serde(borrow)]
    method: Cow<'a, str>,
    notice: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    actor: String,
    prev: &'a str,
    hash: &'a str,
    #[serde(borrow)]
    personal: Option<&'a str>,
    #[serde(borrow)]
    redacted: Option<&'a str>,
}

/// Decodes a page written by [`CONSENT_PAGE_SQLITE`], in sequence order (see [`audit_page`]).
pub fn consent_page(page: &str) -> Result<Vec<SealedEvent>, StoreError> {
    let mut rows: Vec<JsonConsentRow<'_>> =
        serde_json::from_str(page).map_err(|e| undecodable("a consent page", &e))?;
    if !rows.is_sorted_by_key(|r| r.seq) {
        rows.sort_by_key(|r| r.seq);
    }
    // A digest of another length fails verification, as a changed hash does.
    let digest = |text: &str| unhex::<32>(text).unwrap_or([0xff; 32]);
    rows.into_iter()
        .map(|r| {
            let party = unhex::<16>(r.party).ok_or_else(|| {
                StoreError::Backend("a stored consent party is not 16 bytes".into())
            })?;
            Ok(SealedEvent {
                seq: seq(r.seq)?,
                event: ConsentEvent {
                    at: from_nanos(r.at)?,
                    party: Party::from_parts(&r.party_kind, party)
                        .ok_or_else(|| unknown("party kind", &r.party_kind))?,
                    action: Action::parse(&r.action).ok_or_else(|| unknown("action", &r.action))?,
                    purpose: r.purpose,
                    signal: r
                        .signal
                        .map(|s| Signal::parse(&s).ok_or_else(|| unknown("signal", &s)))
                        .transpose()?,
                    link: r.link.map(|l| hex_uuid(l).map(SubjectId)).transpose()?,
                    policy: r.policy,
                    terms: r.terms,
                    method: Method::parse(&r.method).ok_or_else(|| unknown("method", &r.method))?,
                    evidence: Evidence {
                        notice: r.notice,
                        ip: r.ip,
                        user_agent: r.user_agent,
                    },
                    actor: r.actor,
                },
                prev: digest(r.prev),
                hash: digest(r.hash),
                personal: r.personal.map(digest),
                redacted: r.redacted.map(digest),
            })
        })
        .collect()
}

/// Adds a page of sealed events to an INSERT.
pub fn push_consent<DB: sqlx::Database>(q: &mut sqlx::QueryBuilder<DB>, rows: &[SealedEvent])
where
    i64: for<'a> sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Vec<u8>: for<'a> sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: for<'a> sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<String>: for<'a> sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<Vec<u8>>: for<'a> sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push_values(rows, |mut b, e| {
        let ev = &e.event;
        b.push_bind(to_seq(e.seq))
            .push_bind(to_nanos(ev.at))
            .push_bind(ev.party.kind().to_owned())
            .push_bind(ev.party.bytes().to_vec())
            .push_bind(ev.action.as_str().to_owned())
            .push_bind(ev.purpose.clone())
            .push_bind(ev.signal.map(|s| s.as_str().to_owned()))
            .push_bind(ev.link.map(|s| s.as_bytes().to_vec()))
            .push_bind(ev.policy.clone())
            .push_bind(ev.terms.clone())
            .push_bind(ev.method.as_str().to_owned())
            .push_bind(ev.evidence.notice.clone())
            .push_bind(ev.evidence.ip.clone())
            .push_bind(ev.evidence.user_agent.clone())
            .push_bind(ev.actor.clone())
            .push_bind(e.prev.to_vec())
            .push_bind(e.hash.to_vec())
            .push_bind(e.personal.map(|p| p.to_vec()))
            .push_bind(e.redacted.map(|p| p.to_vec()));
    });
}

/// A policy version row: version, must_accept, terms (JSON), recorded_at.
pub type VersionRow = (String, bool, String, i64);

pub fn policy_version(row: VersionRow) -> Result<PolicyVersion, StoreError> {
    let (version, must_accept, terms, at) = row;
    let terms: Vec<(String, String)> = serde_json::from_str(&terms)
        .map_err(|e| StoreError::Backend(format!("stored policy terms are not JSON: {e}")))?;
    Ok(PolicyVersion {
        version,
        must_accept,
        terms,
        recorded_at: from_nanos(at)?,
    })
}

pub fn terms_json(v: &PolicyVersion) -> String {
    serde_json::to_string(&v.terms).unwrap_or_else(|_| "[]".to_owned())
}

/// Whether `rows` (ids as stored) are exactly `expected`, in any order.
pub fn same_ids(rows: &[(Vec<u8>,)], expected: &[uuid::Uuid]) -> bool {
    let mut got: Vec<&[u8]> = rows.iter().map(|(id,)| id.as_slice()).collect();
    let mut want: Vec<&[u8]> = expected.iter().map(|id| id.as_bytes().as_slice()).collect();
    got.sort_unstable();
    want.sort_unstable();
    got == want
}
