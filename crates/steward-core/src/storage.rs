//! What every storage backend is, whatever it stores: how it fails ([`StoreError`]) and how a
//! process holds it ([`Backend`]). Each context says what it needs stored in its own
//! `storage` module (`vault::storage::VaultStore`, `consent::storage::ConsentStore` …);
//! [`crate::store::Store`] is all of them, what a backend implements whole.
//!
//! A store only ever sees ciphertext, blind indexes, wrapped keys and non-personal metadata
//! (categories, purposes, times); the vault seals and opens. Shared: it uses no context.

use std::future::Future;

/// What a store can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// An identity already belongs to another subject (the database's unique index said so).
    #[error("this {kind} already belongs to another subject")]
    Duplicate {
        /// The identity kind.
        kind: String,
    },
    /// Another writer changed what this write was based on (a correction of the same
    /// identity, a field added while an erasure read): nothing was written; read again.
    #[error("changed by another writer at the same time: nothing was written; try again")]
    Conflict,
    /// Another process holds the store in a way this one may not share: a command that needs
    /// the store to itself (`steward keys rotate`) while a server runs, or a server while such a
    /// command runs. Nothing was read or written. The text says who holds it and what to do.
    #[error("{0}")]
    InUse(String),
    /// The backend failed.
    #[error("the database failed: {0}")]
    Backend(String),
}

/// A storage backend as a process holds it. Every method of every store trait is atomic: it
/// does all its work or none.
pub trait Backend: Clone + Send + Sync + 'static {
    /// Ends this process's use of the store, for every clone: what is written is in the
    /// database files (SQLite folds its write-ahead logs back), and connections are closed.
    /// Called when `steward serve` stops; nothing may use the store after it.
    fn shut_down(&self) -> impl Future<Output = ()> + Send;

    /// Checks that this process still holds the store as it opened it (see
    /// `steward_store::Sharing`), taking it again if the hold was lost with a connection.
    /// A server calls it every second and stops when it fails: a rotation may have begun.
    ///
    /// # Errors
    /// [`StoreError::InUse`] when another process holds the store the other way now;
    /// [`StoreError::Backend`] when the database cannot be reached.
    fn keep_held(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
