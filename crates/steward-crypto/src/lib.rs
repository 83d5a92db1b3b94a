//! Steward's keys and what they do.
//!
//! - The **master key** (32 random bytes) never sits beside the data: it lives in its own file
//!   or in `STEWARD_MASTER_KEY`. From it HKDF derives the key-encryption keys (KEKs).
//! - Every **subject** has a random data key ([`SubjectKey`]), stored only *wrapped* by the KEK
//!   in a key store separate from the data. Destroying it makes every copy of that person's
//!   data unreadable, backups included (crypto-shredding).
//! - Every value is **sealed** with XChaCha20-Poly1305 under a random 192-bit nonce, with
//!   associated data binding it to its subject, field and key version, in a versioned envelope.
//! - Identities are looked up through **blind indexes**: HMAC-SHA256 under one key per identity
//!   kind, derived from a random index root that the master key wraps, so rotating the master
//!   key re-wraps keys without recomputing any index.
//!
//! Secrets are zeroized on drop and never printed (`Debug` is redacted). This crate depends on
//! no other Steward crate.

mod envelope;
mod keyring;
mod master;

pub use envelope::{Aad, open, seal};
pub use keyring::{Keyring, RootSecret, SubjectKey, WrappedKey};
pub use master::MasterKey;

/// Length of every symmetric key, in bytes.
pub const KEY_LEN: usize = 32;

/// What can go wrong with keys and sealed data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The master key is not 32 bytes of base64.
    #[error("the master key must be 32 random bytes in base64 (44 characters): {0}")]
    BadMasterKey(String),
    /// The master key does not unwrap this store's keys.
    #[error(
        "the master key does not match this data store: it cannot unwrap the store's keys (was the key replaced, or the wrong STEWARD_MASTER_KEY set?)"
    )]
    WrongMasterKey,
    /// A sealed value or wrapped key failed authentication.
    #[error(
        "a sealed value could not be opened: it was altered, or belongs to another subject or field"
    )]
    Corrupt,
    /// An envelope of a format this build does not know.
    #[error("a sealed value has format version {0}, which this version of Steward cannot read")]
    UnknownVersion(u8),
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|e| CryptoError::Random(e.to_string()))
}

/// Compares two secrets in constant time.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
