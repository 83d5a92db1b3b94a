//! What a storage backend implements whole: [`Store`], every context's storage at once
//! (`steward-store`'s SQLite and PostgreSQL stores do). The top of the domain: it names every
//! context's store and record types, so that a backend, the server and the CLI find them in one
//! place; no context imports it — each uses its own `storage` module and those beneath it.

pub use crate::access::storage::AccessStore;
pub use crate::audit::storage::AuditStore;
pub use crate::consent::storage::ConsentStore;
pub use crate::disclosures::storage::{CountRow, Dimension, DisclosureRow, DisclosureStore};
pub use crate::incidents::storage::{
    AffectedBy, DeliveryRow, DeliveryTally, IncidentRow, IncidentStore,
};
pub use crate::requests::storage::{
    Job, NewJob, Operations, RecipientSecretState, RequestFilter, RequestRecord, RequestStore,
};
pub use crate::retention::storage::{Due, DueCount, Event, Group, Removed, RetentionStore, Table};
pub use crate::storage::{Backend, StoreError};
pub use crate::vault::storage::{
    Audited, Erased, Erasure, HeldField, Hold, HoldsEnded, KeyTable, SealedField, SealedIdentity,
    SubjectRecord, VaultStore,
};

/// Every context's storage: what a backend implements (each part in its own `impl`), and what
/// the server and the commands take.
pub trait Store: RetentionStore + IncidentStore {}

impl<T: RetentionStore + IncidentStore> Store for T {}

/// Every store trait, to bring their methods into scope where a concrete store (not a
/// generic `S: Store`) is used: `use steward_core::store::prelude::*;`.
pub mod prelude {
    pub use super::{
        AccessStore as _, AuditStore as _, Backend as _, ConsentStore as _, DisclosureStore as _,
        IncidentStore as _, RequestStore as _, RetentionStore as _, Store, VaultStore as _,
    };
}
