//! Sealing values: XChaCha20-Poly1305, random nonces, a versioned envelope, and associated
//! data that binds each value to its subject, field and key version.
//!
//! Envelope v1: `[0x01][nonce: 24 bytes][ciphertext ‖ tag: 16 bytes]`.

use chacha20poly1305::aead::{Aead as _, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::{CryptoError, KEY_LEN, random_bytes};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// What a sealed value is bound to: opening it under any other subject, field or key version
/// fails, so a value cannot be moved between people or fields undetected.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    /// The domain: what kind of value this is (`field`, `subject-key`, `root`).
    pub domain: &'a str,
    /// The subject (or owner) the value belongs to.
    pub subject: &'a [u8],
    /// The field or name.
    pub field: &'a str,
    /// The version of the key that seals it.
    pub key_version: u32,
}

impl Aad<'_> {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.subject.len() + self.field.len());
        out.extend_from_slice(b"steward/v1/");
        for part in [self.domain.as_bytes(), self.subject, self.field.as_bytes()] {
            // Length prefixes keep ("ab","c") and ("a","bc") apart.
            out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&self.key_version.to_be_bytes());
        out
    }
}

/// Seals `plaintext` under `key`.
pub fn seal(key: &[u8; KEY_LEN], aad: &Aad<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    let cipher = XChaCha20Poly1305::new(key.into());
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &aad.bytes(),
            },
        )
        .map_err(|_| CryptoError::Corrupt)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Opens a value sealed by [`seal`] with the same key and associated data.
pub fn open(
    key: &[u8; KEY_LEN],
    aad: &Aad<'_>,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let (&version, rest) = sealed.split_first().ok_or(CryptoError::Corrupt)?;
    if version != VERSION {
        return Err(CryptoError::UnknownVersion(version));
    }
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Corrupt);
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce = XNonce::try_from(nonce).map_err(|_| CryptoError::Corrupt)?;
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(
            &nonce,
            Payload {
                msg: ciphertext,
                aad: &aad.bytes(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Corrupt)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn aad<'a>(subject: &'a [u8], field: &'a str) -> Aad<'a> {
        Aad {
            domain: "field",
            subject,
            field,
            key_version: 1,
        }
    }

    proptest! {
        #[test]
        fn what_is_sealed_opens_to_the_same_bytes(key in any::<[u8; 32]>(), subject in any::<[u8; 16]>(), field in "[a-z.]{1,40}", value in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let sealed = seal(&key, &aad(&subject, &field), &value).unwrap();
            prop_assert_eq!(sealed.len(), 1 + 24 + value.len() + 16);
            let opened = open(&key, &aad(&subject, &field), &sealed).unwrap();
            prop_assert_eq!(opened.as_slice(), value.as_slice());
        }

        #[test]
        fn any_flipped_bit_is_detected(key in any::<[u8; 32]>(), value in proptest::collection::vec(any::<u8>(), 1..256), bit in any::<usize>()) {
            let mut sealed = seal(&key, &aad(b"s", "f"), &value).unwrap();
            let i = bit % (sealed.len() * 8);
            sealed[i / 8] ^= 1 << (i % 8);
            prop_assert!(open(&key, &aad(b"s", "f"), &sealed).is_err());
        }
    }

    #[test]
    fn a_value_cannot_move_to_another_subject_field_or_key_version() {
        let key = [9u8; 32];
        let sealed = seal(&key, &aad(b"alice", "user.contact.email"), b"a@example.com").unwrap();
        assert_eq!(
            open(&key, &aad(b"bob", "user.contact.email"), &sealed),
            Err(CryptoError::Corrupt)
        );
        assert_eq!(
            open(&key, &aad(b"alice", "user.name"), &sealed),
            Err(CryptoError::Corrupt)
        );
        let newer = Aad {
            key_version: 2,
            ..aad(b"alice", "user.contact.email")
        };
        assert_eq!(open(&key, &newer, &sealed), Err(CryptoError::Corrupt));
        assert_eq!(
            open(&[8u8; 32], &aad(b"alice", "user.contact.email"), &sealed),
            Err(CryptoError::Corrupt)
        );
    }

    #[test]
    fn nonces_are_fresh_and_unknown_versions_refused() {
        let key = [1u8; 32];
        let a = seal(&key, &aad(b"s", "f"), b"same").unwrap();
        let b = seal(&key, &aad(b"s", "f"), b"same").unwrap();
        assert_ne!(a, b, "same plaintext, different nonce and ciphertext");
        let mut v2 = a.clone();
        v2[0] = 2;
        assert_eq!(
            open(&key, &aad(b"s", "f"), &v2),
            Err(CryptoError::UnknownVersion(2))
        );
        assert_eq!(
            open(&key, &aad(b"s", "f"), &a[..10]),
            Err(CryptoError::Corrupt)
        );
        assert_eq!(open(&key, &aad(b"s", "f"), &[]), Err(CryptoError::Corrupt));
    }
}
