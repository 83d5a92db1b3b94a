//! The master key.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::{Zeroize, Zeroizing};

use crate::{CryptoError, KEY_LEN, random_bytes};

/// 32 secret bytes from which every other key is derived or wrapped.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl MasterKey {
    /// A new random master key.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        random_bytes(bytes.as_mut())?;
        Ok(Self(bytes))
    }

    /// Reads a key written as base64 (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let mut decoded = STANDARD
            .decode(text.trim())
            .map_err(|_| CryptoError::BadMasterKey("it is not valid base64".to_owned()))?;
        if decoded.len() != KEY_LEN {
            let len = decoded.len();
            decoded.zeroize();
            return Err(CryptoError::BadMasterKey(format!(
                "it decodes to {len} bytes"
            )));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&decoded);
        decoded.zeroize();
        Ok(Self(bytes))
    }

    /// The key as base64, for writing to its file once. Never log it.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_ref()))
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_base64_and_never_prints_itself() {
        let key = MasterKey::generate().unwrap();
        let text = key.to_base64();
        assert_eq!(text.len(), 44);
        assert_eq!(
            MasterKey::from_base64(&format!("  {}\n", *text))
                .unwrap()
                .bytes(),
            key.bytes()
        );
        assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
        assert!(!format!("{key:?}").contains(text.as_str()));
    }

    #[test]
    fn refuses_keys_of_the_wrong_shape() {
        assert!(matches!(
            MasterKey::from_base64("not base64!"),
            Err(CryptoError::BadMasterKey(_))
        ));
        let short = STANDARD.encode([7u8; 16]);
        let err = MasterKey::from_base64(&short).unwrap_err();
        assert_eq!(
            err,
            CryptoError::BadMasterKey("it decodes to 16 bytes".to_owned())
        );
    }
}
