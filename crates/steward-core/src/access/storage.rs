//! What access control needs stored: API keys, staff accounts and sessions, and the
//! rate-limit counters.

use std::future::Future;

use time::OffsetDateTime;

use crate::access::api_key::ApiKeyRecord;
use crate::access::staff::{SessionRecord, StaffRecord};
use crate::storage::{Backend, StoreError};

/// Access control's storage.
pub trait AccessStore: Backend {
    /// Stores a new API key (its hash, never the key).
    fn insert_api_key(
        &self,
        key: &ApiKeyRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The API key with this prefix.
    fn find_api_key(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send;

    /// Every API key, oldest first.
    fn list_api_keys(&self) -> impl Future<Output = Result<Vec<ApiKeyRecord>, StoreError>> + Send;

    /// A number that changes whenever an API key is revoked — by this process or by any
    /// other sharing the store — or `None` while the store cannot tell at once (then nothing
    /// may be kept). A verified-key cache keeps a key's record only while this number stays
    /// the one it read the record under. Cheap: no query (a file's length, or a counter a
    /// notification listener keeps).
    fn api_keys_generation(&self) -> Option<u64> {
        None
    }

    /// Revokes an API key at `at`; `false` when there is no such key. The change is told to
    /// [`AccessStore::api_keys_generation`] of every process before this returns.
    fn revoke_api_key(
        &self,
        prefix: &str,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores a new staff account; `Duplicate` when the username is taken.
    fn insert_staff(
        &self,
        staff: &StaffRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The staff account with this username.
    fn find_staff(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Option<StaffRecord>, StoreError>> + Send;

    /// Every staff account, by username.
    fn list_staff(&self) -> impl Future<Output = Result<Vec<StaffRecord>, StoreError>> + Send;

    /// Writes a staff account's changeable state (password, TOTP, failures, lock, disabled).
    fn update_staff(
        &self,
        staff: &StaffRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a session.
    fn insert_session(
        &self,
        session: &SessionRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The session with this token hash.
    fn find_session(
        &self,
        hash: &[u8; 32],
    ) -> impl Future<Output = Result<Option<SessionRecord>, StoreError>> + Send;

    /// Records a session's last use.
    fn touch_session(
        &self,
        hash: &[u8; 32],
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Ends a session; `false` when there was none.
    fn delete_session(
        &self,
        hash: &[u8; 32],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Ends every session of a staff member.
    fn delete_sessions_of(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Counts one event for each `(key, window_end)` — `key` a keyed hash of what is counted
    /// (never the value), `window_end` the end of its fixed window — and returns each key's
    /// count in its current window after this event, in the order given (keys distinct). The
    /// counters are shared by every process on the store; they need not survive a crash.
    fn count_events(
        &self,
        events: &[([u8; 32], OffsetDateTime)],
    ) -> impl Future<Output = Result<Vec<u64>, StoreError>> + Send;

    /// Forgets the counters whose window ended before `before`; how many.
    fn forget_counts(
        &self,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
