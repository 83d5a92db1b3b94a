//! The declaration: Steward's single source of truth.
//!
//! `privacy.toml` declares what an operator collects and why, how long it is kept, who
//! receives it, which cookies are set, what rights people have and how fast they are answered,
//! and what happens after a breach. This crate reads it ([`load`], [`check`]), lints it with
//! precise messages ([`Diagnostic`]), and renders the privacy notice ([`notice`]) and the
//! GDPR Art. 30 record of processing activities ([`ropa`]) from it, so what is published can
//! never drift from what the engine enforces.
//!
//! It owns the taxonomy of data categories, uses and subjects (fideslang-compatible keys).
//! It does no I/O beyond reading the declaration file and must not depend on any other
//! Steward crate.

pub mod centre;
pub mod country;
pub mod declaration;
pub mod diagnostic;
pub mod duration;
mod introspect;
pub mod notice;
mod raw;
pub mod retention;
pub mod ropa;
pub mod source;
pub mod spreadsheet;
pub mod suggest;
pub mod taxonomy;
mod validate;

use std::path::{Path, PathBuf};

pub use declaration::Declaration;
pub use diagnostic::{Diagnostic, Severity};
pub use duration::{Duration, Lifetime, Unit};
pub use retention::{Retention, Trigger};
pub use source::Source;
pub use taxonomy::Taxonomy;
pub use validate::{Checked, check};

/// The largest declaration Steward reads. A declaration describes practices; it has no reason
/// to be large, and refusing early keeps a mistaken path (a database dump) from being parsed.
pub const MAX_DECLARATION_BYTES: u64 = 4 * 1024 * 1024;

/// Why a declaration file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_DECLARATION_BYTES`].
    #[error(
        "{path} is {size} bytes; a declaration may be at most {MAX_DECLARATION_BYTES} bytes (is this the right file?)"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The file is not UTF-8 text.
    #[error("{path}:{line}:{column}: the file is not UTF-8 text; save it as UTF-8")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line of the first bad byte.
        line: usize,
        /// 1-based column of the first bad byte.
        column: usize,
    },
}

/// Reads a declaration file, refusing ones that are too large or not UTF-8.
pub fn load(path: &Path) -> Result<Source, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_DECLARATION_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
            size,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
            let position = Source::new("", prefix).position(valid);
            return Err(LoadError::NotUtf8 {
                path: path.to_owned(),
                line: position.line,
                column: position.column,
            });
        }
    };
    Ok(Source::new(path.display().to_string(), text))
}
