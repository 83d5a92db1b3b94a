//! API keys: random, shown once, stored only as a SHA-256 hash beside a visible prefix that
//! identifies them in lists and logs; checked in constant time; revocable at once.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, erasure included.
    Admin,
    /// The operator's application: create, look up, read for a purpose, rectify.
    Service,
}

impl Role {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Service => "service",
        }
    }

    /// Reads a role's name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "service" => Some(Self::Service),
            _ => None,
        }
    }
}

/// A stored key: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The visible part (`stw_1a2b3c4d`).
    pub prefix: String,
    /// SHA-256 of the whole key.
    pub hash: [u8; 32],
    /// What it may do.
    pub role: Role,
    /// A label chosen by the operator.
    pub name: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
}

/// A freshly made key: print `secret` once, store `record`.
pub struct NewApiKey {
    /// The whole key, to hand to the caller once.
    pub secret: zeroize::Zeroizing<String>,
    /// What is stored.
    pub record: ApiKeyRecord,
}

impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NewApiKey({}, <redacted>)", self.record.prefix)
    }
}

/// SHA-256 of a presented key (keys are 256-bit random, so no slow hash is needed).
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The prefix of a presented key (`stw_` and 8 hex digits), if it has the right shape.
pub fn prefix_of(key: &str) -> Option<&str> {
    let prefix = key.get(..12)?;
    (prefix.starts_with("stw_")
        && prefix[4..].bytes().all(|b| b.is_ascii_hexdigit())
        && key.as_bytes().get(12) == Some(&b'_'))
    .then_some(prefix)
}

impl NewApiKey {
    /// Makes a key.
    pub fn generate(
        role: Role,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<Self, steward_crypto::CryptoError> {
        let mut id = [0u8; 4];
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        steward_crypto::random_bytes(&mut id)?;
        steward_crypto::random_bytes(secret.as_mut())?;
        let prefix = format!("stw_{:02x}{:02x}{:02x}{:02x}", id[0], id[1], id[2], id[3]);
        let key = zeroize::Zeroizing::new(format!(
            "{prefix}_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret.as_ref())
        ));
        let record = ApiKeyRecord {
            prefix,
            hash: hash(&key),
            role,
            name: name.to_owned(),
            created_at: now,
            revoked_at: None,
        };
        Ok(Self {
            secret: key,
            record,
        })
    }
}

impl ApiKeyRecord {
    /// Whether `presented` is this key and still valid.
    pub fn accepts(&self, presented: &str) -> bool {
        self.revoked_at.is_none() && steward_crypto::constant_time_eq(&hash(presented), &self.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_accepted_until_revoked_and_never_printed() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let key = NewApiKey::generate(Role::Service, "shop", now).unwrap();
        assert_eq!(prefix_of(&key.secret), Some(key.record.prefix.as_str()));
        assert!(key.record.accepts(&key.secret));
        assert!(!key.record.accepts(&format!("{}x", *key.secret)));
        assert!(!format!("{key:?}").contains(key.secret.as_str()));
        let revoked = ApiKeyRecord {
            revoked_at: Some(now),
            ..key.record.clone()
        };
        assert!(!revoked.accepts(&key.secret));
        assert_eq!(prefix_of("Bearer nonsense"), None);
        assert_eq!(prefix_of("stw_zzzzzzzz_abc"), None);
    }
}
