//! Opening the vault the command line asked for: SQLite in the data folder, or PostgreSQL
//! when a database URL is given; commands are written once, generic over the store.

use std::sync::Arc;

use steward_core::{Identity, IdentityKind, SystemClock, Vault};
use steward_policy::Declaration;
use steward_store::{PgStore, Sharing, SqliteStore};

use crate::cli::Global;
use crate::{Outcome, master_key, output};

/// The store a command runs on.
pub enum AnyStore {
    /// The embedded default.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Pg(PgStore),
}

/// Opens the store named by the global options, beside other processes, printing why not on
/// failure.
pub async fn open_store(global: &Global) -> Result<AnyStore, Outcome> {
    open_store_as(global, Sharing::Shared).await
}

/// Opens the store shared or alone (`steward keys rotate`), printing why not on failure.
pub async fn open_store_as(global: &Global, sharing: Sharing) -> Result<AnyStore, Outcome> {
    let opened = match &global.database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            PgStore::connect_as(url, sharing).await.map(AnyStore::Pg)
        }
        Some(_) => {
            output::stderr(
                "error: --database-url must start with postgres:// (leave it out to use SQLite in --data-dir)",
            );
            return Err(Outcome::Unreadable);
        }
        None => SqliteStore::open_as(&global.data_dir, sharing)
            .await
            .map(AnyStore::Sqlite),
    };
    opened.map_err(|e| {
        output::stderr(&format!("error: {e}"));
        Outcome::Unreadable
    })
}

/// The master key for `store`: made on first use of a new store only (see
/// [`master_key::load_or_create`]), printing why not on failure.
pub async fn load_master_key<S: steward_core::Store>(
    store: &S,
    global: &Global,
) -> Result<steward_crypto::MasterKey, Outcome> {
    let failed = |e: steward_core::StoreError| {
        output::stderr(&format!("error: {e}"));
        Outcome::Unreadable
    };
    let root = store.root("index").await.map_err(failed)?;
    let people = store.count_subjects().await.map_err(failed)?;
    if root.is_none() && people > 0 {
        // The data are there, the key store is empty: a new key would open nothing of theirs.
        output::stderr(&format!(
            "error: the key store is missing or empty, but the data hold {people} people: restore the key store (keys.db beside steward.db, or the steward_keys schema) from its backup; nothing was written"
        ));
        return Err(Outcome::Unreadable);
    }
    master_key::load_or_create(
        &global.data_dir,
        global.master_key_file.as_deref(),
        root.is_some(),
    )
    .map_err(|e| {
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
    let next = global.data_dir.join("master.key.next");
    if next.exists() {
        output::stderr(&format!(
            "error: {} exists: a key rotation was interrupted, and some people's keys open only with that new key. Run `steward keys rotate` to finish it (it resumes with that file). If the rotation had finished (it said so, with STEWARD_MASTER_KEY), set STEWARD_MASTER_KEY to the file's contents and delete the file.",
            next.display()
        ));
        return Err(Outcome::Unreadable);
    }
    let master = load_master_key(&store, global).await?;
    Vault::open(store, &master, Arc::new(declaration), Arc::new(SystemClock))
        .await
        .map_err(|e| {
            output::stderr(&format!("error: {e}"));
            Outcome::Unreadable
        })
}

/// The consent ledger over `vault`, as the command line needs it (links in mail point to
/// `public_url`): for erasure, which writes to it, and for requests.
pub async fn open_ledger<S: steward_core::Store>(
    vault: Vault<S>,
    declaration: &Declaration,
    global: &Global,
    public_url: &str,
) -> Result<steward_core::ledger::Ledger<S>, Outcome> {
    open_ledger_mailing(vault, declaration, global, public_url, None, None).await
}

/// The same, sending mail through `smtp_url` (from `mail_from`) when given, else to the outbox.
pub async fn open_ledger_mailing<S: steward_core::Store>(
    vault: Vault<S>,
    declaration: &Declaration,
    global: &Global,
    public_url: &str,
    smtp_url: Option<&str>,
    mail_from: Option<&str>,
) -> Result<steward_core::ledger::Ledger<S>, Outcome> {
    let (mailer, _) = crate::commands::serve::mailer(global, declaration, smtp_url, mail_from)
        .map_err(|e| {
            output::stderr(&format!("error: {e}"));
            Outcome::Unreadable
        })?;
    steward_core::ledger::Ledger::open(
        Arc::new(vault),
        mailer,
        steward_core::ledger::LedgerOptions {
            public_url: public_url.trim_end_matches('/').to_owned(),
            unsubscribe_mailto: None,
        },
        |_| {},
    )
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
