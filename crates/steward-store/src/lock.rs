//! Who may use a store beside whom. Every process that opens a store holds it shared for as long
//! as the store is open; a command that must have the store to itself (`steward keys rotate`:
//! keys it has re-wrapped can no longer be opened by anyone still holding the old master key)
//! opens it exclusively. Either is refused at once, never waited for, while the other is held.
//!
//! SQLite: an advisory `flock` on `<data dir>/steward.lock` (a file of its own: SQLite's POSIX
//! locks on the databases are untouched). PostgreSQL: a session-level advisory lock held by one
//! connection set apart for it. The kernel or the database releases either when the process
//! ends, however it ends.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::sync::Arc;

use steward_core::StoreError;

/// How a store is opened beside other processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Beside other processes that share it (`steward serve`, imports, requests, …).
    Shared,
    /// Alone: refused while any other process has the store open.
    Exclusive,
}

/// The lock on a SQLite data folder, released when the last clone of its store is dropped.
#[derive(Debug, Clone)]
pub(crate) struct FolderLock {
    _file: Arc<File>,
}

impl FolderLock {
    /// Takes `<dir>/steward.lock` as `sharing` says, or says who is in the way.
    ///
    /// # Errors
    /// [`StoreError::InUse`] when another process holds it the other way;
    /// [`StoreError::Backend`] when the lock file cannot be created.
    pub(crate) fn take(dir: &Path, sharing: Sharing) -> Result<Self, StoreError> {
        let path = dir.join("steward.lock");
        // Never through a link: tightening its mode would tighten whatever it points at.
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(StoreError::Backend(format!(
                "{} is a symbolic link: remove it (Steward makes its own lock file there)",
                path.display()
            )));
        }
        steward_core::files::private_file(&path)
            .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", path.display())))?;
        let file = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        let taken = match sharing {
            Sharing::Shared => file.try_lock_shared(),
            Sharing::Exclusive => file.try_lock(),
        };
        match taken {
            Ok(()) => Ok(Self {
                _file: Arc::new(file),
            }),
            Err(TryLockError::WouldBlock) => Err(in_use(&dir.display().to_string(), sharing)),
            Err(TryLockError::Error(e)) => Err(StoreError::Backend(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }
}

/// The advisory lock key Steward takes in a PostgreSQL database: "steward" in ASCII.
pub(crate) const PG_LOCK_KEY: i64 = 0x0073_7465_7761_7264;

/// Why a store could not be opened as `sharing` asked, naming `place` (a folder or a
/// database) and what to do.
pub(crate) fn in_use(place: &str, sharing: Sharing) -> StoreError {
    StoreError::InUse(match sharing {
        Sharing::Exclusive => format!(
            "another Steward process is using {place} (a running `steward serve`, or another command): this command needs it to itself. Stop the other process, then run this again; nothing was changed"
        ),
        Sharing::Shared => format!(
            "a command that needs {place} to itself is running (`steward keys rotate`): wait until it has finished, then run this again; nothing was changed"
        ),
    })
}
