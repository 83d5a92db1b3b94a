//! What the benches share: a size from the environment, and a seed-004 vault in a folder that
//! can be kept between runs (`STEWARD_BENCH_DIR`).

use std::path::Path;
use std::sync::Arc;

use steward_core::ledger::{Ledger, LedgerOptions};
use steward_core::{SystemClock, Vault};
use steward_crypto::MasterKey;
use steward_policy::{Declaration, Source};
use steward_store::SqliteStore;

/// `name` from the environment, or `default`.
pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The seed-004 (Mailpro) vault in `dir`, with its master key kept beside it; its store and
/// declaration.
pub async fn vault(dir: &Path) -> (SqliteStore, Arc<Vault<SqliteStore>>, Arc<Declaration>) {
    std::fs::create_dir_all(dir).unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/004-mailpro.toml"),
    )
    .unwrap();
    let declaration = Arc::new(
        steward_policy::check(&Source::new("004-mailpro.toml", text))
            .unwrap()
            .declaration
            .unwrap(),
    );
    let master_path = dir.join("bench-master.key");
    let master = if master_path.exists() {
        MasterKey::from_base64(std::fs::read_to_string(&master_path).unwrap().trim()).unwrap()
    } else {
        let m = MasterKey::generate().unwrap();
        std::fs::write(&master_path, m.to_base64().as_bytes()).unwrap();
        m
    };
    let store = SqliteStore::open(dir).await.unwrap();
    let vault = Vault::open(
        store.clone(),
        &master,
        Arc::clone(&declaration),
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    (store, Arc::new(vault), declaration)
}

/// The consent ledger over `vault`, mailing into `dir/outbox`, as `steward serve` opens it.
#[allow(dead_code)] // not every bench opens one
pub async fn ledger<S: steward_core::Store>(vault: &Arc<Vault<S>>, dir: &Path) -> Arc<Ledger<S>> {
    let mailer = Arc::new(
        steward_server::mail::OutboxMailer::new(dir.join("outbox"), "privacy@example.com").unwrap(),
    );
    let options = LedgerOptions {
        public_url: "http://127.0.0.1".into(),
        unsubscribe_mailto: None,
    };
    Arc::new(
        Ledger::open(Arc::clone(vault), mailer, options, |_| {})
            .await
            .unwrap(),
    )
}
