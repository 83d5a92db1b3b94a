//! Steward's stores: [`SqliteStore`], the embedded default (`./steward-data/`), and
//! [`PgStore`] for scale. Both implement `steward_core::Store` with runtime queries (nothing
//! needs a database to compile) and apply their own migrations when opened.
//!
//! Subject keys live apart from the data: in a second SQLite file (`keys.db`), or in the
//! `steward_keys` schema on PostgreSQL. Depends on `steward-core` and `steward-crypto`.

mod convert;
mod postgres;
mod requests;
mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;
