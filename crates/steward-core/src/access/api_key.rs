//! API keys: random, shown once, stored only as a SHA-256 hash beside a visible prefix that
//! identifies them in lists and logs; checked in constant time; revocable at once.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub use crate::access::Role;
use crate::access::{Principal, Scope};

/// A stored key: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The visible part (`stw_1a2b3c4d`).
    pub prefix: String,
    /// SHA-256 of the whole key.
    pub hash: [u8; 32],
    /// What it may do at most.
    pub role: Role,
    /// How far it is narrowed.
    pub scope: Scope,
    /// When it stops working, if it does.
    pub expires_at: Option<OffsetDateTime>,
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
        scope: Scope,
        expires_at: Option<OffsetDateTime>,
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
            scope,
            expires_at,
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

/// Why a presented key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefused {
    /// Not a key of this Steward (or mistyped).
    #[error("this API key is not valid")]
    Invalid,
    /// Revoked.
    #[error("API key {0} was revoked; create a new one with `steward apikey create`")]
    Revoked(String),
    /// Past its expiry.
    #[error("API key {0} expired; create a new one with `steward apikey create`")]
    Expired(String),
}

impl KeyRefused {
    /// A stable code for the API and the audit.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid => "invalid-key",
            Self::Revoked(_) => "revoked-key",
            Self::Expired(_) => "expired-key",
        }
    }
}

impl ApiKeyRecord {
    /// The principal this key acts as, if `presented` is this key and it is valid at `now`.
    /// The hash is compared first, in constant time, so a wrong key learns nothing about the
    /// state of a right one.
    pub fn check(&self, presented: &str, now: OffsetDateTime) -> Result<Principal, KeyRefused> {
        if !steward_crypto::constant_time_eq(&hash(presented), &self.hash) {
            return Err(KeyRefused::Invalid);
        }
        if self.revoked_at.is_some() {
            return Err(KeyRefused::Revoked(self.prefix.clone()));
        }
        if self.expires_at.is_some_and(|t| t <= now) {
            return Err(KeyRefused::Expired(self.prefix.clone()));
        }
        Ok(self.principal())
    }

    /// The principal this key acts as.
    pub fn principal(&self) -> Principal {
        Principal {
            actor: format!("key:{}", self.prefix),
            role: self.role,
            scope: self.scope.clone(),
        }
    }
}

/// Why a key could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyScopeError {
    /// A purpose the declaration does not have.
    #[error(
        "`{0}` is not a declared purpose (see `steward notice` or the declaration's [[purposes]])"
    )]
    UnknownPurpose(String),
    /// A category the taxonomy does not have.
    #[error("`{0}` is not a data category (look it up with `steward taxonomy {0}`)")]
    UnknownCategory(String),
    /// An operation beyond the role.
    #[error(
        "the {role} role may never {operation}; pick a role that may, or leave the operation out"
    )]
    BeyondRole {
        /// The role.
        role: Role,
        /// The operation.
        operation: &'static str,
    },
    /// An expiry in the past.
    #[error("the expiry is in the past")]
    Expired,
    /// A name that could hold personal data or break a log line.
    #[error("a key's name is 1 to 64 printable characters")]
    Name,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_accepted_until_revoked_or_expired_and_never_printed() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let later = now + time::Duration::days(31);
        let key = NewApiKey::generate(
            Role::Service,
            Scope::default(),
            Some(now + time::Duration::days(30)),
            "shop",
            now,
        )
        .unwrap();
        assert_eq!(prefix_of(&key.secret), Some(key.record.prefix.as_str()));
        let principal = key.record.check(&key.secret, now).unwrap();
        assert_eq!(principal.actor, format!("key:{}", key.record.prefix));
        assert_eq!(
            key.record.check(&format!("{}x", *key.secret), now),
            Err(KeyRefused::Invalid)
        );
        assert_eq!(
            key.record.check(&key.secret, later),
            Err(KeyRefused::Expired(key.record.prefix.clone()))
        );
        assert!(!format!("{key:?}").contains(key.secret.as_str()));
        let revoked = ApiKeyRecord {
            revoked_at: Some(now),
            ..key.record.clone()
        };
        assert_eq!(
            revoked.check(&key.secret, now),
            Err(KeyRefused::Revoked(key.record.prefix.clone()))
        );
        assert_eq!(prefix_of("Bearer nonsense"), None);
        assert_eq!(prefix_of("stw_zzzzzzzz_abc"), None);
    }
}
