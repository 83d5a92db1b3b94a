//! Files in the data folder hold personal data or the keys to it: they are created readable by
//! their owner only (files 0600, folders 0700 on Unix), and tightened to that when an earlier
//! version left them wider.

use std::io;
use std::path::Path;

/// Creates `dir` (and its parents) if needed; the folder itself ends up 0700.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    tighten(dir, 0o700)
}

/// Creates `path` empty if it does not exist, so that whatever writes it later (SQLite, a
/// rename onto it) finds it 0600; an existing file is tightened to 0600.
///
/// It opens and closes the file: never call it on a SQLite file this process already has a
/// connection to, since closing any descriptor of a file drops the process's POSIX locks on it.
pub fn private_file(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)?;
    tighten(path, 0o600)
}

/// Writes `bytes` to a new file `path` that only its owner can read, then flushes it to disk.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Opens a new file `path` for writing that only its owner can read (replacing nothing).
pub fn create_private(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// Narrows `path`'s permissions to `mode` where they are wider (Unix; elsewhere nothing).
fn tighten(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if current & !mode != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn data_folder_files_are_owner_only_and_wider_ones_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("steward-data");
        private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        let db = data.join("steward.db");
        private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let mail = data.join("a.eml");
        write_private(&mail, b"x").unwrap();
        assert_eq!(mode(&mail), 0o600);
        assert!(write_private(&mail, b"y").is_err(), "never replaces a file");
    }
}
