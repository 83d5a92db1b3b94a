//! The vault's side of API keys (the access context owns the keys themselves, in
//! [`crate::access::api_key`]): making, listing and revoking them, each written to the audit
//! trail. Here because a key's scope is checked against the declaration the vault enforces.

use time::OffsetDateTime;

use crate::access::api_key::*;
use crate::access::{Role, Scope};
use crate::vault::storage::VaultStore;

impl<S: VaultStore> crate::Vault<S> {
    /// Makes an API key for `role`, narrowed by `scope`, valid until `expires_at`; checks the
    /// scope against the declaration and the role; audited as `apikey.create`.
    pub async fn create_api_key(
        &self,
        access: &crate::Access,
        role: Role,
        scope: Scope,
        expires_at: Option<OffsetDateTime>,
        name: &str,
    ) -> Result<NewApiKey, crate::VaultError> {
        let now = self.clock().now();
        let mut entry = access.entry("apikey.create", now);
        entry.flagged = false;
        let result = async {
            access.authorize(crate::Operation::Keys, crate::access::Reach::Nothing)?;
            self.check_scope(role, &scope, expires_at, name, now)
                .map_err(|e| {
                    crate::VaultError::Denied(crate::Denied {
                        code: "invalid-scope",
                        message: e.to_string(),
                    })
                })?;
            let key = NewApiKey::generate(role, scope, expires_at, name, now)?;
            self.store().insert_api_key(&key.record).await?;
            Ok(key)
        }
        .await;
        self.finish(entry, result, |k, e| {
            e.detail = Some(format!("{} ({})", k.record.prefix, k.record.role));
        })
        .await
    }

    fn check_scope(
        &self,
        role: Role,
        scope: &Scope,
        expires_at: Option<OffsetDateTime>,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<(), KeyScopeError> {
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err(KeyScopeError::Name);
        }
        if let Some(p) = scope
            .purposes
            .iter()
            .find(|p| self.declaration().purpose(p).is_none())
        {
            return Err(KeyScopeError::UnknownPurpose(p.clone()));
        }
        if let Some(c) = scope.categories.iter().find(|c| {
            !matches!(
                self.declaration()
                    .taxonomy
                    .lookup(steward_policy::taxonomy::Kind::Category, c),
                steward_policy::taxonomy::Lookup::Known(_)
            )
        }) {
            return Err(KeyScopeError::UnknownCategory(c.clone()));
        }
        if let Some(op) = scope.operations.iter().find(|o| !role.allows(**o)) {
            return Err(KeyScopeError::BeyondRole {
                role,
                operation: op.as_str(),
            });
        }
        if expires_at.is_some_and(|t| t <= now) {
            return Err(KeyScopeError::Expired);
        }
        Ok(())
    }

    /// Revokes a key at once; audited as `apikey.revoke`. `false` when no active key has the
    /// prefix.
    pub async fn revoke_api_key(
        &self,
        access: &crate::Access,
        prefix: &str,
    ) -> Result<bool, crate::VaultError> {
        let now = self.clock().now();
        let mut entry = access.entry("apikey.revoke", now);
        entry.flagged = false;
        entry.detail = prefix_of(&format!("{prefix}_")).map(str::to_owned);
        let result = async {
            access.authorize(crate::Operation::Keys, crate::access::Reach::Nothing)?;
            Ok(self.store().revoke_api_key(prefix, now).await?)
        }
        .await;
        self.finish(entry, result, |_, _| {}).await
    }
}
