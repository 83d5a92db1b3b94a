//! Where the master key comes from: `STEWARD_MASTER_KEY`, or `master.key` in the data folder,
//! generated on first use with a loud reminder to back it up. It is never printed or logged.

use std::path::Path;

use steward_crypto::MasterKey;

use crate::output;

/// Loads the master key, creating `<data_dir>/master.key` if there is none yet and the store
/// is new. `store_in_use` says the store already holds keys sealed under some master key: then
/// a missing key is an error that names where it was expected, and nothing is written (a new
/// key could never open what the old one sealed).
pub fn load_or_create(
    data_dir: &Path,
    key_file: Option<&Path>,
    store_in_use: bool,
) -> Result<MasterKey, String> {
    if let Ok(text) = std::env::var("STEWARD_MASTER_KEY") {
        return MasterKey::from_base64(&text).map_err(|e| format!("STEWARD_MASTER_KEY: {e}"));
    }
    if let Some(file) = key_file {
        let text =
            crate::config::read_secret(file).map_err(|e| format!("the master key file: {e}"))?;
        return MasterKey::from_base64(text.trim()).map_err(|e| format!("{}: {e}", file.display()));
    }
    let path = data_dir.join("master.key");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        return MasterKey::from_base64(&text).map_err(|e| format!("{}: {e}", path.display()));
    }
    if store_in_use {
        return Err(format!(
            "the master key is missing: this store already holds data sealed under a master key, which was expected in {} or in STEWARD_MASTER_KEY. Put the key from your backup there and run this again; a new key could not open the data, so none was made and nothing was written",
            path.display()
        ));
    }
    steward_core::files::private_dir(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let key = MasterKey::generate().map_err(|e| e.to_string())?;
    write_private(&path, key.to_base64().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let lines = [
        format!("A new master key was written to {}", path.display()),
        "BACK IT UP NOW, somewhere other than this server. Without it, nothing".to_owned(),
        "in the vault can ever be read again; with it, anyone holding a copy of".to_owned(),
        "the key store can. In production, pass it as STEWARD_MASTER_KEY instead.".to_owned(),
    ];
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut banner = format!("\n  ┌{}┐\n", "─".repeat(width + 2));
    for line in &lines {
        banner.push_str(&format!("  │ {line:<width$} │\n"));
    }
    banner.push_str(&format!("  └{}┘\n", "─".repeat(width + 2)));
    output::stderr(&banner);
    Ok(key)
}

/// Writes a key file only its owner can read (0600), refusing to replace an existing one.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut line = bytes.to_vec();
    line.push(b'\n');
    steward_core::files::write_private(path, &line)
}
