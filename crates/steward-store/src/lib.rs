//! Steward's stores: [`SqliteStore`], the embedded default (`./steward-data/`), and
//! [`PgStore`] for scale. Both implement `steward_core::Store` with runtime queries (nothing
//! needs a database to compile) and apply their own migrations when opened.
//!
//! Subject keys live apart from the data: in a second SQLite file (`keys.db`), or in the
//! `steward_keys` schema on PostgreSQL. Depends on `steward-core` and `steward-crypto`.

mod access;
mod chains;
mod convert;
mod holds;
mod identities;
mod incidents;
mod keys;
mod limits;
mod lock;
mod postgres;
mod reads;
mod recipients;
mod requests;
mod retention;
mod sqlite;
mod subjects;

pub use lock::Sharing;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
