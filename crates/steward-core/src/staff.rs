//! Staff accounts for the admin console: Argon2id passwords, optional TOTP (RFC 6238), a
//! lockout after repeated failures, and sessions whose tokens are stored only as hashes.
//!
//! Sign-in answers the same for an unknown user, a wrong password, a wrong code, a disabled or
//! a locked account — and takes the same time, because a password is always verified (against
//! a fixed dummy hash when there is no account).

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use steward_crypto::{Aad, open, seal};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::access::{Principal, Role, Scope};
use crate::audit::Outcome;
use crate::store::{Store, StoreError};
use crate::vault::{Vault, VaultError};

/// Failures in a row that lock an account.
pub const LOCK_AFTER: u32 = 5;
/// How long a lock lasts.
pub const LOCK_FOR: Duration = Duration::minutes(15);
/// A session's longest life.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);
/// A session unused this long ends.
pub const SESSION_IDLE: Duration = Duration::minutes(30);
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

/// A staff account as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StaffRecord {
    /// The sign-in name.
    pub username: String,
    /// The role.
    pub role: Role,
    /// Argon2id, as a PHC string.
    pub password_hash: String,
    /// The TOTP secret, sealed under the vault's staff key, if TOTP is on.
    pub totp: Option<Vec<u8>>,
    /// The last TOTP time step used (codes are single-use).
    pub totp_last_step: Option<i64>,
    /// Failures since the last success.
    pub failed: u32,
    /// Locked until.
    pub locked_until: Option<OffsetDateTime>,
    /// Disabled accounts cannot sign in.
    pub disabled: bool,
    /// When it was made.
    pub created_at: OffsetDateTime,
}

impl fmt::Debug for StaffRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaffRecord")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("totp", &self.totp.is_some())
            .field("failed", &self.failed)
            .field("locked_until", &self.locked_until)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// A session as stored: the token's hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// Whose.
    pub username: String,
    /// Made at.
    pub created_at: OffsetDateTime,
    /// Ends at, at the latest.
    pub expires_at: OffsetDateTime,
    /// Last used.
    pub last_seen: OffsetDateTime,
}

/// A session just opened: hand `token` to the browser (cookie) and `csrf` to the page.
pub struct NewSession {
    /// The cookie value.
    pub token: Zeroizing<String>,
    /// The CSRF token for changes made in this session.
    pub csrf: String,
    /// The stored record.
    pub record: SessionRecord,
    /// The staff member's role.
    pub role: Role,
}

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NewSession({}, <redacted>)", self.record.username)
    }
}

/// Why staff could not be created or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaffError {
    /// The username is not acceptable.
    #[error(
        "a username is 1 to 64 lower-case letters, digits or `._-`, starting with a letter (e.g. `sam.support`)"
    )]
    Username,
    /// The password is too weak.
    #[error("{0}")]
    Password(String),
    /// Taken.
    #[error("a staff account `{0}` already exists")]
    Exists(String),
    /// No such account.
    #[error("no staff account `{0}`; `steward admin list` shows them")]
    Unknown(String),
    /// The store or crypto failed.
    #[error("{0}")]
    Failed(String),
}

/// The one answer to every failed sign-in.
pub const SIGN_IN_FAILED: &str = "sign-in failed: the username, password or code is wrong, or the account is locked after repeated failures (it unlocks after 15 minutes, or an admin runs `steward admin unlock`)";

/// Checks a username.
pub fn check_username(name: &str) -> Result<(), StaffError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StaffError::Username)
    }
}

/// Checks a new password: long enough, not the username, not one character repeated.
pub fn check_password(username: &str, password: &str) -> Result<(), StaffError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD {
        return Err(StaffError::Password(format!(
            "a password has at least {MIN_PASSWORD} characters (this one has {chars}); a passphrase of four words is easy to type and hard to guess"
        )));
    }
    if password.len() > 1024 {
        return Err(StaffError::Password(
            "a password has at most 1024 bytes".to_owned(),
        ));
    }
    if password.to_lowercase().contains(username) {
        return Err(StaffError::Password(
            "a password may not contain the username".to_owned(),
        ));
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 5 {
        return Err(StaffError::Password(
            "a password needs at least 5 different characters".to_owned(),
        ));
    }
    Ok(())
}

fn argon2() -> Argon2<'static> {
    // OWASP's Argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with Argon2id and a random salt (slow on purpose: run it off the async
/// threads).
pub fn hash_password(password: &str) -> Result<String, StaffError> {
    let mut salt = [0u8; 16];
    steward_crypto::random_bytes(&mut salt).map_err(|e| StaffError::Failed(e.to_string()))?;
    argon2()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StaffError::Failed(e.to_string()))
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("steward-dummy-password").unwrap_or_default())
}

/// Whether `password` matches `hash` (constant-time inside argon2).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordVerifier::<str>::verify_password(&argon2(), password.as_bytes(), hash).is_ok()
}

/// TOTP (RFC 6238): HMAC-SHA1, 30-second steps, 6 digits, as every authenticator app does.
pub mod totp {
    use hmac::{KeyInit, Mac};

    /// The step length in seconds.
    pub const STEP: i64 = 30;

    /// A new 160-bit secret.
    pub fn secret() -> Result<[u8; 20], steward_crypto::CryptoError> {
        let mut s = [0u8; 20];
        steward_crypto::random_bytes(&mut s)?;
        Ok(s)
    }

    /// The code for time step `step`.
    pub fn code(secret: &[u8], step: i64) -> u32 {
        let Ok(mut mac) = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret) else {
            return u32::MAX;
        };
        mac.update(&step.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let offset = usize::from(digest[19] & 0x0f);
        let bin = u32::from_be_bytes([
            digest[offset] & 0x7f,
            digest[offset + 1],
            digest[offset + 2],
            digest[offset + 3],
        ]);
        bin % 1_000_000
    }

    /// The step of `code` within one step of `unix_seconds`, if it is newer than `last`.
    pub fn accept(secret: &[u8], code: &str, unix_seconds: i64, last: Option<i64>) -> Option<i64> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let given: u32 = code.parse().ok()?;
        let now = unix_seconds.div_euclid(STEP);
        let mut found = None;
        // Every candidate is computed, so the time taken does not tell which one matched.
        for step in [now - 1, now, now + 1] {
            let matches = steward_crypto::constant_time_eq(
                &self::code(secret, step).to_be_bytes(),
                &given.to_be_bytes(),
            );
            if matches && last.is_none_or(|l| step > l) {
                found = Some(step);
            }
        }
        found
    }

    /// RFC 4648 base32 without padding, as authenticator apps read secrets.
    pub fn base32(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let mut out = String::new();
        let mut buffer: u32 = 0;
        let mut bits = 0;
        for &b in bytes {
            buffer = (buffer << 8) | u32::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
            }
        }
        if bits > 0 {
            out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
        }
        out
    }

    /// The `otpauth://` URI an authenticator app scans.
    pub fn uri(issuer: &str, username: &str, secret: &[u8]) -> String {
        let enc = |s: &str| {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        };
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period=30",
            enc(issuer),
            enc(username),
            base32(secret),
            enc(issuer)
        )
    }
}

/// SHA-256 of a session token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What a new staff account needs.
#[derive(Debug, Clone)]
pub struct NewStaff<'a> {
    /// Its name.
    pub username: &'a str,
    /// Its role.
    pub role: Role,
    /// Its password (checked, then hashed).
    pub password: &'a str,
    /// Whether to turn TOTP on.
    pub totp: bool,
}

impl<S: Store> Vault<S> {
    fn totp_key(&self) -> Result<Zeroizing<[u8; 32]>, VaultError> {
        Ok(self.keyring().subkey("staff-totp")?)
    }

    /// The CSRF token of a session token: an HMAC of it under a root-derived key, so it needs
    /// no storage and dies with the session.
    pub fn csrf_token(&self, token: &str) -> Result<String, VaultError> {
        let key = self.keyring().subkey("csrf")?;
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key.as_ref())
            .map_err(|_| VaultError::Crypto(steward_crypto::CryptoError::Corrupt))?;
        mac.update(token.as_bytes());
        Ok(b64(&mac.finalize().into_bytes()))
    }

    /// Whether `csrf` is the CSRF token of session `token` (constant time).
    pub fn csrf_ok(&self, token: &str, csrf: &str) -> bool {
        self.csrf_token(token).is_ok_and(|expected| {
            steward_crypto::constant_time_eq(expected.as_bytes(), csrf.as_bytes())
        })
    }

    /// Creates a staff account; returns the TOTP secret when TOTP was asked for (show it once).
    pub async fn create_staff(
        &self,
        actor: &crate::Access,
        new: &NewStaff<'_>,
    ) -> Result<Option<[u8; 20]>, VaultError> {
        let mut entry = actor.entry("staff.create", self.clock().now());
        entry.detail = Some(format!("{} ({})", new.username, new.role));
        entry.flagged = false;
        let result = async {
            actor.may(crate::Operation::Staff)?;
            check_username(new.username).map_err(staff_error)?;
            check_password(new.username, new.password).map_err(staff_error)?;
            let password = new.password.to_owned();
            let hash = tokio::task::spawn_blocking(move || hash_password(&password))
                .await
                .map_err(|e| VaultError::Store(StoreError::Backend(e.to_string())))?
                .map_err(staff_error)?;
            let secret = if new.totp {
                Some(totp::secret()?)
            } else {
                None
            };
            let sealed = match &secret {
                Some(s) => Some(seal(
                    &*self.totp_key()?,
                    &totp_aad(new.username),
                    s.as_slice(),
                )?),
                None => None,
            };
            let record = StaffRecord {
                username: new.username.to_owned(),
                role: new.role,
                password_hash: hash,
                totp: sealed,
                totp_last_step: None,
                failed: 0,
                locked_until: None,
                disabled: false,
                created_at: self.clock().now(),
            };
            match self.store().insert_staff(&record).await {
                Ok(()) => Ok(secret),
                Err(StoreError::Duplicate { .. }) => {
                    Err(staff_error(StaffError::Exists(new.username.to_owned())))
                }
                Err(e) => Err(e.into()),
            }
        }
        .await;
        self.finish(entry, result, |_, _| {}).await
    }

    /// Unlocks (`disable = false`) or disables an account; disabling ends its sessions.
    pub async fn set_staff_state(
        &self,
        actor: &crate::Access,
        username: &str,
        disable: bool,
    ) -> Result<(), VaultError> {
        let action = if disable {
            "staff.disable"
        } else {
            "staff.unlock"
        };
        let mut entry = actor.entry(action, self.clock().now());
        entry.detail = Some(username.to_owned());
        entry.flagged = false;
        let result = async {
            actor.may(crate::Operation::Staff)?;
            let mut record = self
                .store()
                .find_staff(username)
                .await?
                .ok_or_else(|| staff_error(StaffError::Unknown(username.to_owned())))?;
            record.failed = 0;
            record.locked_until = None;
            record.disabled = disable;
            self.store().update_staff(&record).await?;
            if disable {
                self.store().delete_sessions_of(username).await?;
            }
            Ok(())
        }
        .await;
        self.finish(entry, result, |_, _| {}).await
    }

    /// Signs a staff member in. Every failure is the same [`SIGN_IN_FAILED`] answer (a
    /// [`VaultError::Denied`] with code `sign-in-failed`); the audit knows which it was.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        code: Option<&str>,
    ) -> Result<NewSession, VaultError> {
        let now = self.clock().now();
        let known = if check_username(username).is_ok() {
            self.store().find_staff(username).await?
        } else {
            None
        };
        // Always verify a password, so an unknown name takes as long as a known one.
        let hash = known
            .as_ref()
            .map_or_else(|| dummy_hash().to_owned(), |r| r.password_hash.clone());
        let pw = Zeroizing::new(password.to_owned());
        let password_ok = tokio::task::spawn_blocking(move || verify_password(&hash, &pw))
            .await
            .unwrap_or(false);
        let access = crate::Access::new(Principal {
            actor: known.as_ref().map_or_else(
                || "anonymous".to_owned(),
                |r| format!("staff:{}", r.username),
            ),
            role: known.as_ref().map_or(Role::Auditor, |r| r.role),
            scope: Scope::default(),
        });
        let mut entry = access.entry("staff.sign-in", now);
        entry.flagged = false;
        if known.is_none() {
            entry.role = "none".to_owned();
        }
        let failed = |entry: &mut crate::audit::AuditEntry, why: &str| {
            entry.outcome = Outcome::Denied;
            entry.code = Some(why.to_owned());
        };
        let Some(mut record) = known else {
            failed(&mut entry, "unknown-user");
            self.record(entry).await?;
            return Err(sign_in_failed());
        };
        let why = if record.disabled {
            Some("disabled")
        } else if record.locked_until.is_some_and(|t| t > now) {
            Some("locked")
        } else if !password_ok {
            Some("wrong-password")
        } else if let Some(sealed) = &record.totp {
            let secret = open(&*self.totp_key()?, &totp_aad(&record.username), sealed)?;
            match code
                .and_then(|c| totp::accept(&secret, c, now.unix_timestamp(), record.totp_last_step))
            {
                Some(step) => {
                    record.totp_last_step = Some(step);
                    None
                }
                None => Some("wrong-code"),
            }
        } else {
            None
        };
        if let Some(why) = why {
            if matches!(why, "wrong-password" | "wrong-code") {
                record.failed += 1;
                if record.failed >= LOCK_AFTER {
                    record.failed = 0;
                    record.locked_until = Some(now + LOCK_FOR);
                    entry.detail = Some(format!("locked for {} minutes", LOCK_FOR.whole_minutes()));
                }
                self.store().update_staff(&record).await?;
            }
            failed(&mut entry, why);
            self.record(entry).await?;
            return Err(sign_in_failed());
        }
        record.failed = 0;
        record.locked_until = None;
        self.store().update_staff(&record).await?;
        let mut raw = Zeroizing::new([0u8; 32]);
        steward_crypto::random_bytes(raw.as_mut())?;
        let token = Zeroizing::new(b64(raw.as_ref()));
        let session = SessionRecord {
            hash: token_hash(&token),
            username: record.username.clone(),
            created_at: now,
            expires_at: now + SESSION_LIFETIME,
            last_seen: now,
        };
        self.store().insert_session(&session).await?;
        self.record(entry).await?;
        Ok(NewSession {
            csrf: self.csrf_token(&token)?,
            token,
            record: session,
            role: record.role,
        })
    }

    /// The staff member a session token belongs to, if the session is live; refreshes its
    /// last use. `Err` carries the refusal's code.
    pub async fn session(&self, token: &str) -> Result<(Principal, SessionRecord), &'static str> {
        let now = self.clock().now();
        let hash = token_hash(token);
        let Ok(Some(mut session)) = self.store().find_session(&hash).await else {
            return Err("invalid-session");
        };
        if session.expires_at <= now || session.last_seen + SESSION_IDLE <= now {
            let _ = self.store().delete_session(&hash).await;
            return Err("expired-session");
        }
        let Ok(Some(staff)) = self.store().find_staff(&session.username).await else {
            return Err("invalid-session");
        };
        if staff.disabled {
            return Err("invalid-session");
        }
        if now - session.last_seen >= Duration::MINUTE {
            session.last_seen = now;
            let _ = self.store().touch_session(&hash, now).await;
        }
        Ok((
            Principal {
                actor: format!("staff:{}", staff.username),
                role: staff.role,
                scope: Scope::default(),
            },
            session,
        ))
    }

    /// Ends a session.
    pub async fn sign_out(&self, access: &crate::Access, token: &str) -> Result<(), VaultError> {
        let mut entry = access.entry("staff.sign-out", self.clock().now());
        entry.flagged = false;
        let result = self
            .store()
            .delete_session(&token_hash(token))
            .await
            .map(|_| ())
            .map_err(VaultError::from);
        self.finish(entry, result, |_, _| {}).await
    }
}

fn totp_aad(username: &str) -> Aad<'_> {
    Aad {
        domain: "staff-totp",
        subject: username.as_bytes(),
        field: "",
        key_version: 1,
    }
}

fn staff_error(e: StaffError) -> VaultError {
    VaultError::Staff(e)
}

fn sign_in_failed() -> VaultError {
    VaultError::Denied(crate::Denied {
        code: "sign-in-failed",
        message: SIGN_IN_FAILED.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_the_rfc_6238_test_vectors() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", 8 digits there; the last
        // 6 digits are what a 6-digit code shows.
        let secret = b"12345678901234567890";
        assert_eq!(totp::code(secret, 59 / 30), 287_082);
        assert_eq!(totp::code(secret, 1_111_111_109 / 30), 81_804);
        assert_eq!(totp::code(secret, 1_234_567_890 / 30), 5_924);
        assert_eq!(totp::code(secret, 2_000_000_000 / 30), 279_037);
        let now = 1_234_567_890;
        let code = format!("{:06}", totp::code(secret, now / 30));
        let step = totp::accept(secret, &code, now, None).unwrap();
        assert_eq!(
            totp::accept(secret, &code, now, Some(step)),
            None,
            "no replay"
        );
        assert_eq!(totp::accept(secret, "12345", now, None), None);
        assert_eq!(totp::base32(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn passwords_are_hashed_with_argon2id_and_checked_for_strength() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse battery!"));
        assert!(!verify_password("not a hash", "x"));
        assert!(check_password("sam", "short").is_err());
        assert!(check_password("sam", "aaaaaaaaaaaaaaaa").is_err());
        assert!(check_password("samwise", "my name is samwise!").is_err());
        assert!(check_password("sam", "four random words here").is_ok());
        assert!(check_username("Sam").is_err());
        assert!(check_username("sam.support").is_ok());
    }
}
