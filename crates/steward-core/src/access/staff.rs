//! Staff accounts for the admin console: Argon2id passwords, optional TOTP (RFC 6238), a
//! lockout after repeated failures, and sessions whose tokens are stored only as hashes.
//!
//! Sign-in answers the same for an unknown user, a wrong password, a wrong code, a disabled or
//! a locked account — and takes the same time, because a password is always verified (against
//! a fixed dummy hash when there is no account).

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::access::Role;

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
    /// Every password check is taken and the queue is full.
    #[error("{}", crate::password::PasswordError::Busy)]
    Busy,
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

impl From<crate::password::PasswordError> for StaffError {
    fn from(e: crate::password::PasswordError) -> Self {
        match e {
            crate::password::PasswordError::Busy => Self::Busy,
            crate::password::PasswordError::Failed(why) => Self::Failed(why),
        }
    }
}

/// Time-based one-time codes for staff sign-in (RFC 6238: HMAC-SHA1, 6 digits, 30-second
/// steps, one step of skew either way), computed by the `totp-rs` crate. A code is accepted
/// once: its step must be newer than the last one accepted (RFC 6238 §5.2), which
/// [`accept`] checks and the caller stores.
pub mod totp {
    use totp_rs::{Algorithm, Builder, Secret, Totp};

    /// The step length in seconds.
    pub const STEP: i64 = 30;

    /// A new 160-bit secret (the length RFC 4226 recommends).
    pub fn secret() -> Result<[u8; 20], steward_crypto::CryptoError> {
        let mut s = [0u8; 20];
        steward_crypto::random_bytes(&mut s)?;
        Ok(s)
    }

    /// The generator for `secret`, named for an authenticator app by `issuer` and `account`;
    /// `None` for a secret shorter than 128 bits (never one [`secret`] made).
    fn generator(secret: &[u8], issuer: &str, account: &str) -> Option<Totp> {
        // The otpauth:// label is `issuer:account`: neither may hold a colon.
        let issuer = issuer.replace(':', " ");
        let account = account.replace(':', " ");
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(30)
            .with_secret(secret.to_vec())
            .with_issuer((!issuer.is_empty()).then_some(issuer))
            .with_account_name(account)
            .build()
            .ok()
    }

    /// The code for time step `step`.
    pub fn code(secret: &[u8], step: i64) -> u32 {
        let (Some(totp), Ok(step)) = (generator(secret, "", ""), u64::try_from(step)) else {
            return u32::MAX;
        };
        totp.generate(step.saturating_mul(30))
            .to_string()
            .parse()
            .unwrap_or(u32::MAX)
    }

    /// The step of `code` within one step of `unix_seconds`, if it is newer than `last`.
    pub fn accept(secret: &[u8], code: &str, unix_seconds: i64, last: Option<i64>) -> Option<i64> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = generator(secret, "", "")?;
        let step = i64::try_from(totp.check(code, u64::try_from(unix_seconds).ok()?)?).ok()?;
        last.is_none_or(|l| step > l).then_some(step)
    }

    /// RFC 4648 base32 without padding, as authenticator apps read secrets.
    pub fn base32(bytes: &[u8]) -> String {
        Secret::from(bytes.to_vec()).to_base32()
    }

    /// The `otpauth://` URI an authenticator app scans.
    pub fn uri(issuer: &str, username: &str, secret: &[u8]) -> String {
        generator(secret, issuer, username)
            .and_then(|totp| totp.to_url().ok())
            .unwrap_or_default()
    }
}

/// SHA-256 of a session token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub(crate) fn b64(bytes: &[u8]) -> String {
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
        // The URI an authenticator app scans: the secret in base32, the issuer even with a
        // colon in its name (the label's separator), the account.
        let uri = totp::uri("Mallegro: Shop", "alice", secret);
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ") && uri.contains("alice"),
            "{uri}"
        );
        assert!(uri.contains("issuer=Mallegro"), "{uri}");
    }

    #[test]
    fn passwords_are_checked_for_strength() {
        assert!(check_password("sam", "short").is_err());
        assert!(check_password("sam", "aaaaaaaaaaaaaaaa").is_err());
        assert!(check_password("samwise", "my name is samwise!").is_err());
        assert!(check_password("sam", "four random words here").is_ok());
        assert!(check_username("Sam").is_err());
        assert!(check_username("sam.support").is_ok());
    }
}
