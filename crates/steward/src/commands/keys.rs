//! `steward keys rotate`.

use indicatif::{ProgressBar, ProgressStyle};
use steward_core::Store;
use steward_core::rotation::rotate_keys;
use steward_crypto::MasterKey;

use crate::cli::{Global, KeysCommand};
use crate::vault::{AnyStore, cli_access, open_store};
use crate::{Outcome, master_key, output};

pub fn run(global: &Global, command: &KeysCommand) -> Outcome {
    let KeysCommand::Rotate(args) = command;
    // The declaration is read first: a rotation is audited, and the vault needs it to open.
    let (declaration, runtime) = match super::vault_command(global) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    let declaration = std::sync::Arc::new(declaration);
    let old = match master_key::load_or_create(&global.data_dir) {
        Ok(k) => k,
        Err(e) => {
            output::stderr(&format!("error: {e}"));
            return Outcome::Unreadable;
        }
    };
    let next_path = global.data_dir.join("master.key.next");
    let new = if next_path.exists() {
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
        match open_store(global).await {
            Ok(AnyStore::Sqlite(store)) => {
                rotate(&store, &old, &new, args.batch, &declaration).await
            }
            Ok(AnyStore::Pg(store)) => rotate(&store, &old, &new, args.batch, &declaration).await,
            Err(o) => o,
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

async fn rotate<S: Store>(
    store: &S,
    old: &MasterKey,
    new: &MasterKey,
    batch: u32,
    declaration: &std::sync::Arc<steward_policy::Declaration>,
) -> Outcome {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} keys  {per_sec}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let result = rotate_keys(store, old, new, batch, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await;
    bar.finish_and_clear();
    match result {
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
            output::stderr(&format!(
                "error: {e}\nNothing is lost: run `steward keys rotate` again to continue."
            ));
            Outcome::Unreadable
        }
    }
}
