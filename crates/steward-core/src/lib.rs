//! Steward's domain: the words of the privacy team, and the rules that make the declaration
//! true. Subjects and their identities, fields with provenance, the vault that seals them and
//! erases them, the [`Store`] a backend implements and the [`Clock`] that gives the time.
//!
//! No HTTP and no SQL here: stores live in `steward-store`, the server in `steward-server`.
//! Depends on `steward-policy` (the declaration) and `steward-crypto` (the keys).

// Contexts, each a folder whose `mod.rs` says what it owns and may use: `access` and `audit`
// at the bottom, then `vault`, `consent`, `requests` at the top.
pub mod access;
pub mod audit;
pub mod consent;
pub mod disclosures;
pub mod incidents;
pub mod requests;
pub mod retention;
pub mod vault;

// Shared words, beneath every context.
pub mod clock;
pub mod files;
pub mod identity;
pub mod mail;
pub mod storage;
pub mod subject;
pub mod time_math;

// Every context's storage at once, for backends (above every context).
pub mod store;

// The paths these modules had before they moved into their contexts.
pub use access::{api_key, password, rate_limit, staff};
pub use consent::{ledger, permit};
pub use requests::request;
pub use vault::rotation;

#[cfg(feature = "testing")]
pub mod conformance;

pub use access::{Access, Denied, Operation, Principal, Reach, Role, Scope};
pub use clock::{Clock, ManualClock, SystemClock};
pub use identity::{Identity, IdentityError, IdentityKind};
pub use store::{Store, StoreError};
pub use subject::{FieldSource, SubjectId};
pub use vault::{ErasureReceipt, NewSubjectInput, SubjectView, Vault, VaultError};
