//! Opening the vault the command line asked for: SQLite in the data folder, or PostgreSQL
//! when a database URL is given; commands are written once, generic over the store.

use std::sync::Arc;

use steward_core::{Identity, IdentityKind, SystemClock, Vault};
use steward_policy::Declaration;
use steward_store::{PgStore, SqliteStore};

use crate::cli::Global;
use crate::{Outcome, master_key, output};

/// The store a command runs on.
pub enum AnyStore {
    /// The embedded default.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Pg(PgStore),
}

/// Opens the store named by the global options, printing why not on failure.
pub async fn open_store(global: &Global) -> Result<AnyStore, Outcome> {
    let opened = match &global.database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            PgStore::connect(url).await.map(AnyStore::Pg)
        }
        Some(_) => {
            output::stderr(
                "error: --database-url must start with postgres:// (leave it out to use SQLite in --data-dir)",
            );
            return Err(Outcome::Unreadable);
        }
        None => SqliteStore::open(&global.data_dir)
            .await
            .map(AnyStore::Sqlite),
    };
    opened.map_err(|e| {
        output::stderr(&format!("error: {e}"));
        Outcome::Unreadable
    })
}

/// Opens the vault over `store` with the master key and the declaration.
pub async fn open<S: steward_core::Store>(
    store: S,
    global: &Global,
    declaration: Declaration,
) -> Result<Vault<S>, Outcome> {
    let master = master_key::load_or_create(&global.data_dir).map_err(|e| {
        output::stderr(&format!("error: {e}"));
        Outcome::Unreadable
    })?;
    Vault::open(store, &master, Arc::new(declaration), Arc::new(SystemClock))
        .await
        .map_err(|e| {
            output::stderr(&format!("error: {e}"));
            Outcome::Unreadable
        })
}

/// Runs `$body` with `$vault` bound to the vault of whichever store the options name.
macro_rules! with_vault {
    ($global:expr, $declaration:expr, |$vault:ident| $body:expr) => {{
        match $crate::vault::open_store($global).await {
            Ok($crate::vault::AnyStore::Sqlite(store)) => {
                match $crate::vault::open(store, $global, $declaration).await {
                    Ok($vault) => $body,
                    Err(outcome) => outcome,
                }
            }
            Ok($crate::vault::AnyStore::Pg(store)) => {
                match $crate::vault::open(store, $global, $declaration).await {
                    Ok($vault) => $body,
                    Err(outcome) => outcome,
                }
            }
            Err(outcome) => outcome,
        }
    }};
}
pub(crate) use with_vault;

/// The one identity given as `--email`, `--phone` or `--username`.
pub fn identity(
    email: Option<&str>,
    phone: Option<&str>,
    username: Option<&str>,
) -> Result<Identity, Outcome> {
    let (kind, value) = match (email, phone, username) {
        (Some(v), _, _) => (IdentityKind::Email, v),
        (_, Some(v), _) => (IdentityKind::Phone, v),
        (_, _, Some(v)) => (IdentityKind::Username, v),
        _ => {
            output::stderr("error: give --email, --phone or --username");
            return Err(Outcome::Invalid);
        }
    };
    Identity::parse(kind, value).map_err(|e| {
        output::stderr(&format!("error: {e}"));
        Outcome::Invalid
    })
}

/// The command line's access: the operator holds the master key, so they act as admin; the
/// audit names them `cli` (with the login name when the shell gives one).
pub fn cli_access() -> steward_core::Access {
    let mut principal = steward_core::Principal::cli();
    if let Ok(user) = std::env::var("USER")
        && !user.is_empty()
        && user.len() <= 32
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        principal.actor = format!("cli:{user}");
    }
    steward_core::Access::new(principal)
}

/// A runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime, Outcome> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            output::stderr(&format!("error: cannot start the runtime: {e}"));
            Outcome::Unreadable
        })
}
