//! The vault's side of staff accounts (the access context owns the accounts themselves, in
//! [`crate::access::staff`]): creating them, turning them on and off, signing in and out, and
//! sessions — each written to the audit trail. Here because the vault holds the keys that seal
//! a TOTP secret and the CSRF key.

use hmac::{KeyInit, Mac};
use sha2::Sha256;
use steward_crypto::{Aad, open, seal};
use time::Duration;
use zeroize::Zeroizing;

use crate::access::staff::*;
use crate::access::{Principal, Role, Scope};
use crate::audit::Outcome;
use crate::storage::StoreError;
use crate::vault::storage::VaultStore;
use crate::vault::{Vault, VaultError};

impl<S: VaultStore> Vault<S> {
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
            actor.authorize(crate::Operation::Staff, crate::access::Reach::Nothing)?;
            check_username(new.username).map_err(staff_error)?;
            check_password(new.username, new.password).map_err(staff_error)?;
            let password = new.password.to_owned();
            let hash = crate::password::hash(&password)
                .await
                .map_err(|e| staff_error(e.into()))?;
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
            actor.authorize(crate::Operation::Staff, crate::access::Reach::Nothing)?;
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
            .map_or(crate::password::DUMMY_HASH, |r| r.password_hash.as_str());
        let password_ok = crate::password::verify(hash, password)
            .await
            .map_err(|e| staff_error(e.into()))?;
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
