//! The vault: personal records sealed per subject, found by blind index, read only for a
//! declared purpose, corrected unless immutable, and erased by destroying the subject's key,
//! with what the law requires kept under a separate hold key and reported in a receipt.

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use steward_crypto::{Aad, CryptoError, Keyring, MasterKey, RootSecret, SubjectKey, open, seal};
use steward_policy::declaration::Purpose;
use steward_policy::taxonomy::{Kind, Lookup, covers};
use steward_policy::{Declaration, Retention, Trigger};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::clock::Clock;
use crate::identity::{Identity, IdentityError, IdentityKind};
use crate::store::{
    HeldField, Hold, SealedField, SealedIdentity, Store, StoreError, SubjectRecord,
};
use crate::subject::{FieldSource, SubjectId};
use crate::time_math;

/// The largest value Steward stores for one field, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The version of subject keys (bound into every sealed value).
const SUBJECT_KEY_VERSION: u32 = 1;

/// Why the vault refused or failed. Messages name categories, purposes and kinds, never values.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// An identity could not be normalised.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A subject needs at least one identity to be found again.
    #[error("a subject needs at least one identity (email, phone, username or a custom kind)")]
    NoIdentity,
    /// The purpose is not in the declaration.
    #[error("`{0}` is not a declared purpose")]
    UnknownPurpose(String),
    /// The category is not in the taxonomy.
    #[error("`{0}` is not a declared data category")]
    UnknownCategory(String),
    /// The purpose may not collect the category.
    #[error(
        "purpose `{purpose}` may not collect `{category}`: add it to the purpose's categories in the declaration, or use a purpose that collects it"
    )]
    NotCollected {
        /// The purpose.
        purpose: String,
        /// The category.
        category: String,
    },
    /// The purpose declares `stored = false`.
    #[error(
        "purpose `{0}` is declared `stored = false`: its data goes to its processors and is never stored by Steward"
    )]
    NotStored(String),
    /// A third-party source that is not a declared processor.
    #[error("source `{0}` is not a declared processor")]
    UnknownSource(String),
    /// The value is too large.
    #[error(
        "the value for `{category}` is {len} bytes; a field may hold at most {MAX_VALUE_BYTES} bytes"
    )]
    TooLarge {
        /// The category.
        category: String,
        /// Its size.
        len: usize,
    },
    /// The category is immutable.
    #[error("`{0}` can never be changed: the declaration lists it in [rights] immutable")]
    Immutable(String),
    /// The identity belongs to another subject.
    #[error("this {kind} already belongs to another subject")]
    Duplicate {
        /// The identity kind.
        kind: String,
    },
    /// No such subject.
    #[error("no subject has this id")]
    NotFound,
    /// A key or sealed value failed (wrong master key, corrupt data).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for VaultError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate { kind } => Self::Duplicate { kind },
            other => Self::Store(other),
        }
    }
}

/// A subject to create: identities, fields (category → value), and the provenance they share.
#[derive(Debug, Clone)]
pub struct NewSubjectInput {
    /// How the subject is found again.
    pub identities: Vec<Identity>,
    /// Field values by category key.
    pub fields: Vec<(String, String)>,
    /// The purpose of collection.
    pub purpose: String,
    /// Where the data came from.
    pub source: FieldSource,
}

/// A field as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldView {
    /// Its id.
    pub id: Uuid,
    /// Its category.
    pub category: String,
    /// The purpose it was collected for.
    pub purpose: String,
    /// Where it came from.
    pub source: String,
    /// When it was collected.
    #[serde(with = "time::serde::rfc3339")]
    pub collected_at: OffsetDateTime,
    /// The value.
    pub value: String,
}

/// What a purpose may see of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectView {
    /// The subject.
    pub id: SubjectId,
    /// Identities the purpose covers: kind and value.
    pub identities: Vec<(String, String)>,
    /// Fields the purpose covers.
    pub fields: Vec<FieldView>,
}

/// A category kept through an erasure, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retained {
    /// The category.
    pub category: String,
    /// The purpose whose legal hold keeps it.
    pub purpose: String,
    /// Why, in the declaration's words.
    pub reason: String,
    /// When the hold ends, if declared.
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
}

/// Proof of an erasure that holds no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureReceipt {
    /// The subject (pseudonymous).
    pub subject: SubjectId,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub erased_at: OffsetDateTime,
    /// Categories removed (identities included, by their category).
    pub removed: Vec<String>,
    /// Categories kept, each with its reason.
    pub retained: Vec<Retained>,
    /// SHA-256 over the fields above, to show the receipt was not altered.
    pub digest: String,
}

/// The vault over a store.
#[derive(Debug)]
pub struct Vault<S: Store> {
    store: S,
    keyring: Keyring,
    declaration: Arc<Declaration>,
    clock: Arc<dyn Clock>,
}

fn identity_aad<'a>(subject: &'a SubjectId, kind: &'a str) -> Aad<'a> {
    Aad {
        domain: "identity",
        subject: subject.as_bytes(),
        field: kind,
        key_version: SUBJECT_KEY_VERSION,
    }
}

fn field_label(field: &SealedField) -> String {
    format!("{}/{}", field.category, field.id)
}

impl<S: Store> Vault<S> {
    /// Opens the vault: unwraps the store's blind-index root with `master` (creating it on a
    /// new store). A master key that does not match the store is [`CryptoError::WrongMasterKey`].
    pub async fn open(
        store: S,
        master: &MasterKey,
        declaration: Arc<Declaration>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultError> {
        let wrapped = match store.root("index").await? {
            Some(w) => w,
            None => {
                let fresh = Keyring::new(master, 1).wrap_root("index", &RootSecret::generate()?)?;
                store.put_root("index", &fresh).await?
            }
        };
        // The root is wrapped by the current master key generation.
        let keyring = Keyring::new(master, wrapped.kek_version);
        let root = keyring.unwrap_root("index", &wrapped)?;
        Ok(Self {
            store,
            keyring: keyring.with_index_root(root),
            declaration,
            clock,
        })
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The declaration the vault enforces.
    pub fn declaration(&self) -> &Declaration {
        &self.declaration
    }

    fn purpose(&self, id: &str) -> Result<&Purpose, VaultError> {
        self.declaration
            .purpose(id)
            .ok_or_else(|| VaultError::UnknownPurpose(id.to_owned()))
    }

    /// Checks that `purpose` may collect `category` and that Steward stores it.
    fn may_collect(&self, purpose: &Purpose, category: &str) -> Result<(), VaultError> {
        if !matches!(
            self.declaration.taxonomy.lookup(Kind::Category, category),
            Lookup::Known(_)
        ) {
            return Err(VaultError::UnknownCategory(category.to_owned()));
        }
        if !purpose.stored {
            return Err(VaultError::NotStored(purpose.id.clone()));
        }
        if !purpose.categories.iter().any(|c| covers(c, category)) {
            return Err(VaultError::NotCollected {
                purpose: purpose.id.clone(),
                category: category.to_owned(),
            });
        }
        Ok(())
    }

    /// Checks, without writing, that `purpose` may collect `category` into the vault.
    pub fn check_collect(&self, purpose: &str, category: &str) -> Result<(), VaultError> {
        self.may_collect(self.purpose(purpose)?, category)
    }

    fn check_source(&self, source: &FieldSource) -> Result<(), VaultError> {
        match source {
            FieldSource::ThirdParty(id) if self.declaration.processor(id).is_none() => {
                Err(VaultError::UnknownSource(id.clone()))
            }
            _ => Ok(()),
        }
    }

    fn seal_field(
        &self,
        subject: &SubjectId,
        key: &SubjectKey,
        mut field: SealedField,
        value: &str,
    ) -> Result<SealedField, VaultError> {
        let label = field_label(&field);
        let aad = Aad {
            domain: "field",
            subject: subject.as_bytes(),
            field: &label,
            key_version: SUBJECT_KEY_VERSION,
        };
        field.sealed = seal(key.bytes(), &aad, value.as_bytes())?;
        Ok(field)
    }

    /// Validates and seals a subject, ready for [`Store::insert_subjects`]. Pure: no I/O.
    pub fn prepare(&self, input: &NewSubjectInput) -> Result<SubjectRecord, VaultError> {
        if input.identities.is_empty() {
            return Err(VaultError::NoIdentity);
        }
        let purpose = self.purpose(&input.purpose)?;
        self.check_source(&input.source)?;
        for identity in &input.identities {
            self.may_collect(purpose, identity.kind().category())?;
        }
        for (category, value) in &input.fields {
            self.may_collect(purpose, category)?;
            if value.len() > MAX_VALUE_BYTES {
                return Err(VaultError::TooLarge {
                    category: category.clone(),
                    len: value.len(),
                });
            }
        }
        let now = self.clock.now();
        let id = SubjectId::new(now);
        let key = SubjectKey::generate()?;
        let wrapped = self.keyring.wrap_subject_key(id.as_bytes(), &key)?;
        let mut identities: Vec<SealedIdentity> = Vec::with_capacity(input.identities.len());
        for identity in &input.identities {
            let kind = identity.kind().as_str();
            let index = self.keyring.blind_index(kind, identity.value())?;
            if identities
                .iter()
                .any(|i| i.kind == kind && i.index == index)
            {
                continue;
            }
            identities.push(SealedIdentity {
                kind: kind.to_owned(),
                index,
                sealed: seal(
                    key.bytes(),
                    &identity_aad(&id, kind),
                    identity.value().as_bytes(),
                )?,
            });
        }
        let source = input.source.encode();
        let fields = input
            .fields
            .iter()
            .map(|(category, value)| {
                let field = SealedField {
                    id: Uuid::new_v4(),
                    category: category.clone(),
                    purpose: purpose.id.clone(),
                    source: source.clone(),
                    collected_at: now,
                    sealed: Vec::new(),
                };
                self.seal_field(&id, &key, field, value)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SubjectRecord {
            id,
            created_at: now,
            key: wrapped,
            identities,
            fields,
        })
    }

    /// Creates one subject.
    pub async fn create(&self, input: &NewSubjectInput) -> Result<SubjectId, VaultError> {
        let subject = self.prepare(input)?;
        let id = subject.id;
        self.store
            .insert_subjects(std::slice::from_ref(&subject))
            .await?;
        Ok(id)
    }

    /// The subject an identity belongs to.
    pub async fn lookup(&self, identity: &Identity) -> Result<Option<SubjectId>, VaultError> {
        let kind = identity.kind().as_str();
        let index = self.keyring.blind_index(kind, identity.value())?;
        Ok(self.store.find_subject(kind, &index).await?)
    }

    async fn load(&self, id: SubjectId) -> Result<(SubjectRecord, SubjectKey), VaultError> {
        let stored = self
            .store
            .load_subject(id)
            .await?
            .ok_or(VaultError::NotFound)?;
        let key = self
            .keyring
            .unwrap_subject_key(id.as_bytes(), &stored.key)?;
        Ok((stored, key))
    }

    fn open_field(
        &self,
        id: &SubjectId,
        key: &[u8; 32],
        field: &SealedField,
        domain: &str,
    ) -> Result<FieldView, VaultError> {
        let label = field_label(field);
        let aad = Aad {
            domain,
            subject: id.as_bytes(),
            field: &label,
            key_version: SUBJECT_KEY_VERSION,
        };
        let value = open(key, &aad, &field.sealed)?;
        Ok(FieldView {
            id: field.id,
            category: field.category.clone(),
            purpose: field.purpose.clone(),
            source: field.source.clone(),
            collected_at: field.collected_at,
            value: String::from_utf8_lossy(&value).into_owned(),
        })
    }

    /// What `purpose` may see of a subject: the identities and fields in its categories.
    pub async fn read(&self, id: SubjectId, purpose: &str) -> Result<SubjectView, VaultError> {
        let purpose = self.purpose(purpose)?;
        let (stored, key) = self.load(id).await?;
        let allowed = |category: &str| purpose.categories.iter().any(|c| covers(c, category));
        let mut identities = Vec::new();
        for identity in &stored.identities {
            let kind = IdentityKind::parse(&identity.kind)?;
            if allowed(kind.category()) {
                let value = open(
                    key.bytes(),
                    &identity_aad(&id, &identity.kind),
                    &identity.sealed,
                )?;
                identities.push((
                    identity.kind.clone(),
                    String::from_utf8_lossy(&value).into_owned(),
                ));
            }
        }
        let fields = stored
            .fields
            .iter()
            .filter(|f| allowed(&f.category))
            .map(|f| self.open_field(&id, key.bytes(), f, "field"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SubjectView {
            id,
            identities,
            fields,
        })
    }

    /// Corrects (or adds) the value of `category`, collected for `purpose`. Immutable
    /// categories are refused with the reason.
    pub async fn rectify(
        &self,
        id: SubjectId,
        category: &str,
        value: &str,
        purpose: &str,
        source: &FieldSource,
    ) -> Result<(), VaultError> {
        if let Some(rule) = self
            .declaration
            .rights
            .immutable
            .iter()
            .find(|rule| covers(rule, category))
        {
            return Err(VaultError::Immutable(rule.clone()));
        }
        let purpose = self.purpose(purpose)?;
        self.may_collect(purpose, category)?;
        self.check_source(source)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(VaultError::TooLarge {
                category: category.to_owned(),
                len: value.len(),
            });
        }
        let (stored, key) = self.load(id).await?;
        let existing = stored.fields.iter().find(|f| f.category == category);
        let field = SealedField {
            id: existing.map_or_else(Uuid::new_v4, |f| f.id),
            category: category.to_owned(),
            purpose: purpose.id.clone(),
            source: source.encode(),
            collected_at: self.clock.now(),
            sealed: Vec::new(),
        };
        let field = self.seal_field(&id, &key, field, value)?;
        Ok(self.store.put_field(id, &field).await?)
    }

    /// When a legal hold on `field` (collected for `purpose`) ends.
    fn hold_until(
        &self,
        purpose: &Purpose,
        field: &SealedField,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        match purpose.retention_for(&field.category)? {
            Retention::Period { max, after, .. } => {
                let from = if *after == Trigger::Collection {
                    field.collected_at
                } else {
                    now
                };
                Some(time_math::add(
                    from,
                    *max,
                    &self.declaration.rights.holidays,
                ))
            }
            _ => None,
        }
    }

    /// What erasing a subject would remove and keep, without changing anything.
    pub async fn plan_erasure(
        &self,
        id: SubjectId,
    ) -> Result<(Vec<String>, Vec<Retained>), VaultError> {
        let (stored, _) = self.load(id).await?;
        Ok(self.plan(&stored, self.clock.now()))
    }

    fn legal_hold_of(
        &self,
        field: &SealedField,
    ) -> Option<(&Purpose, &steward_policy::declaration::LegalHold)> {
        self.declaration
            .purpose(&field.purpose)
            .and_then(|p| p.legal_hold.as_ref().map(|h| (p, h)))
    }

    fn plan(&self, stored: &SubjectRecord, now: OffsetDateTime) -> (Vec<String>, Vec<Retained>) {
        let mut removed: Vec<String> = stored
            .identities
            .iter()
            .filter_map(|i| IdentityKind::parse(&i.kind).ok())
            .map(|k| k.category().to_owned())
            .collect();
        let mut retained = Vec::new();
        for field in &stored.fields {
            match self.legal_hold_of(field) {
                Some((purpose, hold)) => retained.push(Retained {
                    category: field.category.clone(),
                    purpose: purpose.id.clone(),
                    reason: hold.reason.clone(),
                    until: self.hold_until(purpose, field, now),
                }),
                None => removed.push(field.category.clone()),
            }
        }
        removed.sort();
        removed.dedup();
        retained.sort_by(|a, b| (&a.category, &a.purpose).cmp(&(&b.category, &b.purpose)));
        retained.dedup_by(|a, b| a.category == b.category && a.purpose == b.purpose);
        (removed, retained)
    }

    /// Erases a subject: fields under a legal hold are re-sealed under a new hold key, then the
    /// subject key is destroyed and every identity and other field deleted.
    pub async fn erase(&self, id: SubjectId) -> Result<ErasureReceipt, VaultError> {
        let (stored, key) = self.load(id).await?;
        let now = self.clock.now();
        let (removed, retained) = self.plan(&stored, now);
        let hold_key = SubjectKey::generate()?;
        let mut held = Vec::new();
        for field in &stored.fields {
            let Some((purpose, legal_hold)) = self.legal_hold_of(field) else {
                continue;
            };
            let view = self.open_field(&id, key.bytes(), field, "field")?;
            let label = field_label(field);
            let aad = Aad {
                domain: "held",
                subject: id.as_bytes(),
                field: &label,
                key_version: SUBJECT_KEY_VERSION,
            };
            held.push(HeldField {
                field: SealedField {
                    sealed: seal(hold_key.bytes(), &aad, view.value.as_bytes())?,
                    ..field.clone()
                },
                reason: legal_hold.reason.clone(),
                until: self.hold_until(purpose, field, now),
            });
        }
        let hold = if held.is_empty() {
            None
        } else {
            Some(Hold {
                key: self
                    .keyring
                    .wrap_subject_key(&hold_binding(&id), &hold_key)?,
                fields: held,
            })
        };
        if !self.store.erase_subject(id, hold.as_ref()).await? {
            return Err(VaultError::NotFound);
        }
        let digest = {
            let body = serde_json::json!({ "subject": id, "erased_at": now.unix_timestamp(), "removed": removed, "retained": retained });
            let mut hex = String::with_capacity(64);
            for byte in Sha256::digest(body.to_string().as_bytes()) {
                hex.push_str(&format!("{byte:02x}"));
            }
            hex
        };
        Ok(ErasureReceipt {
            subject: id,
            erased_at: now,
            removed,
            retained,
            digest,
        })
    }

    /// Reads the fields kept after a subject's erasure (for the law's purposes only).
    pub async fn read_held(&self, id: SubjectId) -> Result<Vec<FieldView>, VaultError> {
        let Some(hold) = self.store.held(id).await? else {
            return Ok(Vec::new());
        };
        let key = self
            .keyring
            .unwrap_subject_key(&hold_binding(&id), &hold.key)?;
        hold.fields
            .iter()
            .map(|h| self.open_field(&id, key.bytes(), &h.field, "held"))
            .collect()
    }
}

/// Hold keys are bound to the subject with a distinct label, so a hold key can never pass for
/// the subject's own key.
pub(crate) fn hold_binding(id: &SubjectId) -> Vec<u8> {
    let mut out = b"hold:".to_vec();
    out.extend_from_slice(id.as_bytes());
    out
}
