//! Master-key rotation: every subject key and hold key is re-wrapped under the new master key
//! (generation n+1) in batches, without rewriting any data; the blind-index root is re-wrapped
//! last, and that switches the store to the new key. Rows already at n+1 are skipped, so an
//! interrupted rotation is finished by running it again with the same new key.
//!
//! It runs only with the store to itself (`steward keys rotate` opens it with
//! `Sharing::Exclusive`): keys already re-wrapped cannot be opened with the old master key.

use steward_crypto::{CryptoError, Keyring, MasterKey};

use crate::vault::storage::{KeyTable, VaultStore};
use crate::vault::{VaultError, hold_binding};

/// What a rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    /// The new master key generation.
    pub generation: u32,
    /// Keys re-wrapped by this run.
    pub rewrapped: u64,
    /// The new key already opened the store before this run: a rotation with it had finished,
    /// and nothing was rotated now.
    pub already_finished: bool,
}

/// Re-wraps the store's keys from `old` to `new`, reporting `(done, total)` after each batch.
/// `resuming` says `new` is the key an interrupted rotation began with: only then may keys
/// already at the next generation be left as they are.
///
/// # Errors
/// [`VaultError::RotationInterrupted`] when keys are at the next generation already and this
/// is not a resumption (they were wrapped by a new key that is not `new`: going on would leave
/// them unreadable); [`VaultError::KeyUnreadable`] for a key `old` cannot open; the store's.
pub async fn rotate_keys<S: VaultStore>(
    store: &S,
    old: &MasterKey,
    new: &MasterKey,
    batch: u32,
    resuming: bool,
    mut progress: impl FnMut(u64, u64),
) -> Result<Rotated, VaultError> {
    let root = store.root("index").await?.ok_or(VaultError::NotFound)?;
    let current = root.kek_version;
    if Keyring::new(new, current)
        .unwrap_root("index", &root)
        .is_ok()
    {
        // The new key already wraps the root: a finished rotation.
        return Ok(Rotated {
            generation: current,
            rewrapped: 0,
            already_finished: true,
        });
    }
    let old_ring = Keyring::new(old, current);
    let secret = old_ring.unwrap_root("index", &root)?;
    let next = current
        .checked_add(1)
        .ok_or(VaultError::Crypto(CryptoError::WrongMasterKey))?;
    let new_ring = Keyring::new(new, next);
    let total = store.count_keys_to_rewrap(KeyTable::Subject, next).await?
        + store.count_keys_to_rewrap(KeyTable::Hold, next).await?;
    if !resuming {
        let all = store
            .count_keys_to_rewrap(KeyTable::Subject, u32::MAX)
            .await?
            + store.count_keys_to_rewrap(KeyTable::Hold, u32::MAX).await?;
        let already = all.saturating_sub(total);
        if already > 0 {
            return Err(VaultError::RotationInterrupted { already });
        }
    }
    let mut done = 0u64;
    progress(done, total);
    for table in [KeyTable::Subject, KeyTable::Hold] {
        loop {
            let rows = store.keys_to_rewrap(table, next, batch.max(1)).await?;
            if rows.is_empty() {
                break;
            }
            let mut rewrapped = Vec::with_capacity(rows.len());
            for (id, wrapped) in &rows {
                let binding = match table {
                    KeyTable::Subject => id.as_bytes().to_vec(),
                    KeyTable::Hold => hold_binding(id),
                };
                let key = Keyring::new(old, wrapped.kek_version)
                    .unwrap_subject_key(&binding, wrapped)
                    .map_err(|_| VaultError::KeyUnreadable {
                        table: match table {
                            KeyTable::Subject => "subject",
                            KeyTable::Hold => "legal hold",
                        },
                        id: *id,
                        generation: wrapped.kek_version,
                    })?;
                rewrapped.push((*id, new_ring.wrap_subject_key(&binding, &key)?));
            }
            store.rewrap_keys(table, &rewrapped).await?;
            done += rewrapped.len() as u64;
            progress(done, total);
        }
    }
    store
        .replace_root("index", &new_ring.wrap_root("index", &secret)?)
        .await?;
    Ok(Rotated {
        generation: next,
        rewrapped: done,
        already_finished: false,
    })
}
