//! Conversions between domain values and database columns, shared by both backends.

use steward_core::store::SealedField;
use steward_core::store::SubjectRecord;
use steward_core::{Store, StoreError};
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

/// An API key row: prefix, hash, role, name, created_at, revoked_at.
pub type ApiKeyRow = (String, Vec<u8>, String, String, i64, Option<i64>);

pub fn api_key(row: ApiKeyRow) -> Result<steward_core::api_key::ApiKeyRecord, StoreError> {
    let (prefix, hash, role, name, created_at, revoked_at) = row;
    Ok(steward_core::api_key::ApiKeyRecord {
        prefix,
        hash: index(&hash)?,
        role: steward_core::api_key::Role::parse(&role)
            .ok_or_else(|| StoreError::Backend(format!("unknown role `{role}` stored")))?,
        name,
        created_at: from_nanos(created_at)?,
        revoked_at: revoked_at.map(from_nanos).transpose()?,
    })
}
