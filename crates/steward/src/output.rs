//! Writing results: to standard output, or to a file replaced atomically so that a failed
//! run never leaves a half-written notice or record behind.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same folder, then renames it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_through_temporary(path, bytes, false)
}

/// The same for a file that holds personal data or names (an audit export): readable by its
/// owner only (0600), whatever the umask.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_through_temporary(path, bytes, true)
}

fn write_through_temporary(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the output path names no file")
    })?;
    let tmp = dir.join(format!(
        ".{}.steward-tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let _ = fs::remove_file(&tmp);
        let mut file = if private {
            steward_core::files::create_private(&tmp)?
        } else {
            fs::File::create(&tmp)?
        };
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes to standard output, treating a closed pipe (`| head`) as success.
pub fn stdout(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes a line to standard error.
pub fn stderr(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// A spinner counting what has been done so far, on stderr (hidden when stderr is not a
/// terminal).
pub fn progress_bar(len: u64, message: &'static str) -> indicatif::ProgressBar {
    let bar = if len == 0 {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::new(len)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg}: {pos}  {per_sec}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar
}
