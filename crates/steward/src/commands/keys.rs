//! `steward keys rotate`.

use indicatif::{ProgressBar, ProgressStyle};
use steward_core::Store;
use steward_core::rotation::rotate_keys;
use steward_crypto::MasterKey;

use crate::cli::{Global, KeysCommand};
use crate::vault::{AnyStore, cli_access, load_master_key, open_store_as};
use crate::{Outcome, master_key, output};
use steward_store::Sharing;

pub fn run(global: &Global, command: &KeysCommand) -> Outcome {
    let KeysCommand::Rotate(args) = command;
    // The declaration is read first: a rotation is audited, and the vault needs it to open.
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    let declaration = std::sync::Arc::new(declaration);
    // The store to itself first: no server or other command may hold the old key meanwhile.
    let store = match runtime.block_on(open_store_as(global, Sharing::Exclusive)) {
        Ok(store) => store,
        Err(outcome) => return outcome,
    };
    let old = match runtime.block_on(async {
        match &store {
            AnyStore::Sqlite(s) => load_master_key(s, global).await,
            AnyStore::Pg(s) => load_master_key(s, global).await,
        }
    }) {
        Ok(k) => k,
        Err(outcome) => return outcome,
    };
    let next_path = global.data_dir.join("master.key.next");
    let resuming = next_path.exists();
    // A fresh rotation starts only from the key that opens the store: nothing is written
    // for a wrong one.
    if !resuming {
        let opens = runtime.block_on(async {
            match &store {
                AnyStore::Sqlite(s) => opens_store(s, &old, &declaration).await,
                AnyStore::Pg(s) => opens_store(s, &old, &declaration).await,
            }
        });
        if let Err(e) = opens {
            output::stderr(&format!("error: {e}\nNothing was changed."));
            return Outcome::Unreadable;
        }
    }
    let new = if resuming {
        output::stderr(&format!(
            "resuming the rotation with {}",
            next_path.display()
        ));
        match std::fs::read_to_string(&next_path)
            .map_err(|e| e.to_string())
            .and_then(|t| MasterKey::from_base64(&t).map_err(|e| e.to_string()))
        {
            Ok(k) => k,
            Err(e) => {
                output::stderr(&format!("error: {}: {e}", next_path.display()));
                return Outcome::Unreadable;
            }
        }
    } else {
        let key = match MasterKey::generate() {
            Ok(k) => k,
            Err(e) => {
                output::stderr(&format!("error: {e}"));
                return Outcome::Unreadable;
            }
        };
        if let Err(e) = master_key::write_private(&next_path, key.to_base64().as_bytes()) {
            output::stderr(&format!("error: cannot write {}: {e}", next_path.display()));
            return Outcome::Unreadable;
        }
        key
    };
    let outcome = runtime.block_on(async {
        match &store {
            AnyStore::Sqlite(store) => {
                rotate(store, &old, &new, args.batch, resuming, &declaration).await
            }
            AnyStore::Pg(store) => {
                rotate(store, &old, &new, args.batch, resuming, &declaration).await
            }
        }
    });
    if outcome != Outcome::Ok {
        return outcome;
    }
    if std::env::var_os("STEWARD_MASTER_KEY").is_some() {
        output::stderr(&format!(
            "Set STEWARD_MASTER_KEY to the contents of {} now (the old value no longer opens the store), then remove that file from this server.",
            next_path.display()
        ));
        return Outcome::Ok;
    }
    let current = global.data_dir.join("master.key");
    match std::fs::rename(&next_path, &current) {
        Ok(()) => {
            output::stderr(&format!(
                "{} now holds the new key; the old one was destroyed. Back up the new key, and destroy every copy of the old one.",
                current.display()
            ));
            Outcome::Ok
        }
        Err(e) => {
            output::stderr(&format!(
                "error: the keys were rotated, but {} could not replace {}: {e}; move it by hand",
                next_path.display(),
                current.display()
            ));
            Outcome::Unreadable
        }
    }
}

/// Whether `key` opens the store (its root secret).
async fn opens_store<S: Store>(
    store: &S,
    key: &MasterKey,
    declaration: &std::sync::Arc<steward_policy::Declaration>,
) -> Result<(), steward_core::VaultError> {
    steward_core::Vault::open(
        store.clone(),
        key,
        std::sync::Arc::clone(declaration),
        std::sync::Arc::new(steward_core::SystemClock),
    )
    .await
    .map(drop)
}

async fn rotate<S: Store>(
    store: &S,
    old: &MasterKey,
    new: &MasterKey,
    batch: u32,
    resuming: bool,
    declaration: &std::sync::Arc<steward_policy::Declaration>,
) -> Outcome {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} keys  {per_sec}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let result = rotate_keys(store, old, new, batch, resuming, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await;
    bar.finish_and_clear();
    match result {
        // Finished before, and the key in use is the new one already: nothing to finish.
        // (Finished but the old key still in use is a rotation stopped before its last step,
        // which the next arm completes.)
        Ok(r) if r.already_finished && opens_store(store, old, declaration).await.is_ok() => {
            output::stderr(
                "error: master.key.next already opens the store: the rotation it began had finished, and nothing was rotated now. Make sure the key in use (master.key, or STEWARD_MASTER_KEY) is that key, delete master.key.next, then run `steward keys rotate` again for a new one.",
            );
            Outcome::Invalid
        }
        Ok(r) => {
            output::stderr(&format!(
                "re-wrapped {} keys under master key generation {}; no data was rewritten",
                r.rewrapped, r.generation
            ));
            let vault = match steward_core::Vault::open(
                store.clone(),
                new,
                std::sync::Arc::clone(declaration),
                std::sync::Arc::new(steward_core::SystemClock),
            )
            .await
            {
                Ok(v) => v,
                Err(e) => return crate::commands::subject::fail(&e),
            };
            let mut entry = cli_access().entry("keys.rotate", vault.clock().now());
            entry.detail = Some(format!(
                "generation {}, {} keys re-wrapped",
                r.generation, r.rewrapped
            ));
            if let Err(e) = vault.record(entry).await {
                return crate::commands::subject::fail(&e);
            }
            Outcome::Ok
        }
        Err(e) => {
            let hint = match e {
                steward_core::VaultError::RotationInterrupted { .. }
                | steward_core::VaultError::KeyUnreadable { .. } => "",
                _ => "\nNothing is lost: run `steward keys rotate` again to continue.",
            };
            output::stderr(&format!("error: {e}{hint}"));
            Outcome::Unreadable
        }
    }
}
