//! Keys derived from the master key, subject keys, root secrets and blind indexes.

use std::fmt;

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::envelope::{Aad, open, seal};
use crate::{CryptoError, KEY_LEN, MasterKey, random_bytes};

macro_rules! secret {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(Zeroizing<[u8; KEY_LEN]>);

        impl $name {
            /// A new random key.
            pub fn generate() -> Result<Self, CryptoError> {
                let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
                random_bytes(bytes.as_mut())?;
                Ok(Self(bytes))
            }

            /// The key's bytes.
            pub fn bytes(&self) -> &[u8; KEY_LEN] {
                &self.0
            }

            fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
                let mut out = Zeroizing::new([0u8; KEY_LEN]);
                if bytes.len() != KEY_LEN {
                    return Err(CryptoError::Corrupt);
                }
                out.copy_from_slice(bytes);
                Ok(Self(out))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(<redacted>)", stringify!($name))
            }
        }
    };
}

secret! {
    /// One person's data key: seals their values; destroying it erases them everywhere.
    SubjectKey
}

secret! {
    /// A random secret the master key wraps (the blind-index root, the audit root).
    RootSecret
}

/// A key wrapped by a key-encryption key, with the version of the master key that wrapped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The master key generation that wrapped it.
    pub kek_version: u32,
    /// The envelope.
    pub bytes: Vec<u8>,
}

/// Everything derived from one master key (of one version), plus the blind-index root.
pub struct Keyring {
    version: u32,
    subject_kek: Zeroizing<[u8; KEY_LEN]>,
    root_kek: Zeroizing<[u8; KEY_LEN]>,
    index_root: Option<RootSecret>,
    /// Index keys of the built-in kinds, derived once instead of per lookup.
    index_keys: Vec<(&'static str, Zeroizing<[u8; KEY_LEN]>)>,
}

/// Identity kinds whose index keys are derived up front.
const BUILT_IN_KINDS: [&str; 3] = ["email", "phone", "username"];

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keyring(version {}, <redacted>)", self.version)
    }
}

fn derive(ikm: &[u8], label: &str) -> Zeroizing<[u8; KEY_LEN]> {
    let hkdf = Hkdf::<Sha256>::new(Some(b"steward/v1"), ikm);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    // A 32-byte output is always within HKDF-SHA256's limit of 8160 bytes.
    let _ = hkdf.expand(label.as_bytes(), out.as_mut());
    out
}

impl Keyring {
    /// The keys of `master`, which is generation `version` of the master key.
    pub fn new(master: &MasterKey, version: u32) -> Self {
        Self {
            version,
            subject_kek: derive(master.bytes(), "subject-kek"),
            root_kek: derive(master.bytes(), "root-kek"),
            index_root: None,
            index_keys: Vec::new(),
        }
    }

    /// The master key generation.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Adds the blind-index root (unwrapped from the key store).
    #[must_use]
    pub fn with_index_root(mut self, root: RootSecret) -> Self {
        self.index_keys = BUILT_IN_KINDS
            .iter()
            .map(|kind| (*kind, derive(root.bytes(), &format!("blind-index/{kind}"))))
            .collect();
        self.index_root = Some(root);
        self
    }

    /// Wraps a root secret under this master key.
    pub fn wrap_root(&self, name: &str, secret: &RootSecret) -> Result<WrappedKey, CryptoError> {
        let aad = Aad {
            domain: "root",
            subject: b"",
            field: name,
            key_version: self.version,
        };
        Ok(WrappedKey {
            kek_version: self.version,
            bytes: seal(&self.root_kek, &aad, secret.bytes())?,
        })
    }

    /// Unwraps a root secret. A failure means this is not the master key that wrapped it.
    pub fn unwrap_root(&self, name: &str, wrapped: &WrappedKey) -> Result<RootSecret, CryptoError> {
        let aad = Aad {
            domain: "root",
            subject: b"",
            field: name,
            key_version: wrapped.kek_version,
        };
        match open(&self.root_kek, &aad, &wrapped.bytes) {
            Ok(bytes) => RootSecret::from_slice(&bytes),
            Err(CryptoError::Corrupt) => Err(CryptoError::WrongMasterKey),
            Err(e) => Err(e),
        }
    }

    /// Wraps a subject's key, bound to that subject.
    pub fn wrap_subject_key(
        &self,
        subject: &[u8],
        key: &SubjectKey,
    ) -> Result<WrappedKey, CryptoError> {
        let aad = Aad {
            domain: "subject-key",
            subject,
            field: "",
            key_version: self.version,
        };
        Ok(WrappedKey {
            kek_version: self.version,
            bytes: seal(&self.subject_kek, &aad, key.bytes())?,
        })
    }

    /// Unwraps a subject's key.
    pub fn unwrap_subject_key(
        &self,
        subject: &[u8],
        wrapped: &WrappedKey,
    ) -> Result<SubjectKey, CryptoError> {
        if wrapped.kek_version != self.version {
            return Err(CryptoError::WrongMasterKey);
        }
        let aad = Aad {
            domain: "subject-key",
            subject,
            field: "",
            key_version: wrapped.kek_version,
        };
        SubjectKey::from_slice(&open(&self.subject_kek, &aad, &wrapped.bytes)?)
    }

    /// A key derived from the vault's root secret for one use (`audit-mac`, `session`,
    /// `staff-totp` …): it survives master-key rotation, because the root is only re-wrapped.
    pub fn subkey(&self, label: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
        let root = self
            .index_root
            .as_ref()
            .ok_or(CryptoError::WrongMasterKey)?;
        Ok(derive(root.bytes(), &format!("subkey/{label}")))
    }

    /// The blind index of a normalised identity: HMAC-SHA256 under the key of its kind, so the
    /// same address under two kinds gives unrelated indexes.
    pub fn blind_index(&self, kind: &str, normalised: &str) -> Result<[u8; 32], CryptoError> {
        let root = self
            .index_root
            .as_ref()
            .ok_or(CryptoError::WrongMasterKey)?;
        let key = derive(root.bytes(), &format!("blind-index/{kind}"));
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_ref())
            .map_err(|_| CryptoError::Corrupt)?;
        mac.update(normalised.as_bytes());
        Ok(mac.finalize().into_bytes().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> (MasterKey, Keyring) {
        let master = MasterKey::generate().unwrap();
        let ring = Keyring::new(&master, 1).with_index_root(RootSecret::generate().unwrap());
        (master, ring)
    }

    #[test]
    fn subject_keys_unwrap_only_for_their_subject_and_master_key() {
        let (_, ring) = keyring();
        let key = SubjectKey::generate().unwrap();
        let wrapped = ring.wrap_subject_key(b"alice", &key).unwrap();
        assert_eq!(
            ring.unwrap_subject_key(b"alice", &wrapped).unwrap().bytes(),
            key.bytes()
        );
        assert_eq!(
            ring.unwrap_subject_key(b"bob", &wrapped).unwrap_err(),
            CryptoError::Corrupt
        );
        let (_, other) = keyring();
        assert!(other.unwrap_subject_key(b"alice", &wrapped).is_err());
    }

    #[test]
    fn a_wrong_master_key_is_an_explicit_error() {
        let (_, ring) = keyring();
        let root = RootSecret::generate().unwrap();
        let wrapped = ring.wrap_root("index", &root).unwrap();
        let wrong = Keyring::new(&MasterKey::generate().unwrap(), 1);
        assert_eq!(
            wrong.unwrap_root("index", &wrapped).unwrap_err(),
            CryptoError::WrongMasterKey
        );
    }

    #[test]
    fn rotation_rewraps_without_changing_the_keys() {
        let (_, old) = keyring();
        let key = SubjectKey::generate().unwrap();
        let wrapped = old.wrap_subject_key(b"s", &key).unwrap();
        let new = Keyring::new(&MasterKey::generate().unwrap(), 2);
        let rewrapped = new
            .wrap_subject_key(b"s", &old.unwrap_subject_key(b"s", &wrapped).unwrap())
            .unwrap();
        assert_eq!(rewrapped.kek_version, 2);
        assert_eq!(
            new.unwrap_subject_key(b"s", &rewrapped).unwrap().bytes(),
            key.bytes()
        );
        assert!(old.unwrap_subject_key(b"s", &rewrapped).is_err());
    }

    #[test]
    fn blind_indexes_are_deterministic_and_separated_by_kind() {
        let (_, ring) = keyring();
        let a = ring.blind_index("email", "a@example.com").unwrap();
        assert_eq!(a, ring.blind_index("email", "a@example.com").unwrap());
        assert_ne!(a, ring.blind_index("username", "a@example.com").unwrap());
        assert_ne!(a, ring.blind_index("email", "b@example.com").unwrap());
        let (_, other) = keyring();
        assert_ne!(
            a,
            other.blind_index("email", "a@example.com").unwrap(),
            "keyed, not a plain hash"
        );
        assert!(format!("{ring:?}").contains("redacted"));
    }
}
