//! Steward's domain: the words of the privacy team, and the rules that make the declaration
//! true. Subjects and their identities, fields with provenance, the vault that seals them and
//! erases them, the [`Store`] a backend implements and the [`Clock`] that gives the time.
//!
//! No HTTP and no SQL here: stores live in `steward-store`, the server in `steward-server`.
//! Depends on `steward-policy` (the declaration) and `steward-crypto` (the keys).

pub mod access;
pub mod api_key;
pub mod audit;
pub mod clock;
pub mod consent;
pub mod identity;
pub mod ledger;
pub mod mail;
pub mod permit;
pub mod rate_limit;
pub mod request;
pub mod requests;
pub mod rotation;
pub mod staff;
pub mod store;
pub mod subject;
pub mod time_math;
pub mod vault;

#[cfg(feature = "testing")]
pub mod conformance;

pub use access::{Access, Denied, Operation, Principal, Role, Scope};
pub use clock::{Clock, ManualClock, SystemClock};
pub use identity::{Identity, IdentityError, IdentityKind};
pub use store::{Store, StoreError};
pub use subject::{FieldSource, SubjectId};
pub use vault::{ErasureReceipt, NewSubjectInput, SubjectView, Vault, VaultError};
