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

use crate::access::{Access, Denied, Operation};
use crate::audit::{
    self, AuditChain, AuditEntry, AuditFilter, AuditLog, Break, Outcome, SealedEntry, Verified,
};
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
    /// The principal may not do this.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// A staff account could not be made or changed.
    #[error(transparent)]
    Staff(#[from] crate::staff::StaffError),
    /// The audit entry could not be written, so the act was not done (reads) or not confirmed.
    #[error("the audit trail could not be written: {0}")]
    Audit(StoreError),
}

impl VaultError {
    /// A stable code for the API and the audit trail.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Identity(_) | Self::NoIdentity => "invalid-identity",
            Self::UnknownPurpose(_) => "unknown-purpose",
            Self::UnknownCategory(_) => "unknown-category",
            Self::NotCollected { .. } | Self::NotStored(_) => "purpose-may-not-collect",
            Self::UnknownSource(_) => "unknown-source",
            Self::TooLarge { .. } => "value-too-large",
            Self::Immutable(_) => "immutable",
            Self::Duplicate { .. } => "duplicate-identity",
            Self::NotFound => "not-found",
            Self::Crypto(_) => "crypto",
            Self::Store(_) => "store",
            Self::Denied(d) => d.code,
            Self::Audit(_) => "audit",
            Self::Staff(e) => match e {
                crate::staff::StaffError::Username | crate::staff::StaffError::Password(_) => {
                    "invalid-staff"
                }
                crate::staff::StaffError::Exists(_) => "staff-exists",
                crate::staff::StaffError::Unknown(_) => "unknown-staff",
                crate::staff::StaffError::Failed(_) => "staff-failed",
            },
        }
    }
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

/// Everything held on a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectExport {
    /// Identities and fields, for every purpose.
    #[serde(flatten)]
    pub view: SubjectView,
    /// Fields kept under a legal hold after an erasure.
    pub held: Vec<FieldView>,
    /// Who accessed the data, and why.
    pub trail: Vec<TrailEntry>,
}

/// One access to a subject's data, as the subject may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrailEntry {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The role of whoever acted (`service`, `support`, `dpo` …).
    pub role: String,
    /// What was done.
    pub action: String,
    /// The purpose named.
    pub purpose: Option<String>,
    /// The categories touched.
    pub categories: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
}

/// A category kept through an erasure, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    audit: AuditLog,
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
        let keyring = keyring.with_index_root(root);
        let audit = AuditLog::new(AuditChain::new(keyring.subkey("audit-mac")?));
        Ok(Self {
            store,
            keyring,
            audit,
            declaration,
            clock,
        })
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.store
    }

    pub(crate) fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The audit log.
    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Writes an audit entry for an act outside the vault (keys, staff, refusals).
    pub async fn record(&self, entry: AuditEntry) -> Result<u64, VaultError> {
        self.audit
            .record(&self.store, entry)
            .await
            .map_err(VaultError::Audit)
    }

    /// Verifies the audit chain.
    pub async fn verify_audit(
        &self,
        progress: impl FnMut(u64, u64),
    ) -> Result<Result<Verified, Break>, VaultError> {
        audit::verify(&self.store, self.audit.chain(), progress)
            .await
            .map_err(VaultError::Store)
    }

    /// Audit entries passing `filter`, after `after`, at most `limit`. Reading the audit is
    /// itself audited (once per call, as `audit.export`).
    pub async fn audit_entries(
        &self,
        access: &Access,
        filter: &AuditFilter,
        after: u64,
        limit: u32,
    ) -> Result<Vec<SealedEntry>, VaultError> {
        let mut entry = access.entry("audit.export", self.clock.now());
        entry.subject = filter.subject;
        entry.flagged = false;
        let result = async {
            access.principal.may(Operation::Audit)?;
            Ok(self.store.audit_search(filter, after, limit).await?)
        }
        .await;
        self.finish(entry, result, |_, _| {}).await
    }

    /// Records how an act ended, then hands its result back. A read whose entry cannot be
    /// written is not returned.
    pub(crate) async fn finish<T>(
        &self,
        mut entry: AuditEntry,
        result: Result<T, VaultError>,
        fill: impl FnOnce(&T, &mut AuditEntry),
    ) -> Result<T, VaultError> {
        match &result {
            Ok(value) => fill(value, &mut entry),
            Err(e) => refused(&mut entry, e),
        }
        self.record(entry).await?;
        result
    }

    /// Checks `access` may do `op` for `purpose` over `categories`.
    fn authorize<'c>(
        &self,
        access: &Access,
        op: Operation,
        purpose: Option<&Purpose>,
        categories: impl IntoIterator<Item = &'c str>,
    ) -> Result<(), VaultError> {
        access.may(op)?;
        if let Some(p) = purpose {
            access.principal.may_use(p)?;
        }
        for c in categories {
            access.principal.may_touch(c)?;
        }
        Ok(())
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
    pub async fn create(
        &self,
        access: &Access,
        input: &NewSubjectInput,
    ) -> Result<SubjectId, VaultError> {
        let mut entry = access.entry("subject.create", self.clock.now());
        entry.purpose = Some(input.purpose.clone());
        entry.categories = input_categories(input);
        let result = async {
            let purpose = self.purpose(&input.purpose)?;
            self.authorize(
                access,
                Operation::Create,
                Some(purpose),
                entry.categories.iter().map(String::as_str),
            )?;
            let subject = self.prepare(input)?;
            let id = subject.id;
            self.store
                .insert_subjects(std::slice::from_ref(&subject))
                .await?;
            Ok(id)
        }
        .await;
        self.finish(entry, result, |id, e| e.subject = Some(*id))
            .await
    }

    /// Writes subjects made by [`Vault::prepare`] (an import batch) in one transaction, with
    /// one audit entry for the batch.
    pub async fn insert_prepared(
        &self,
        access: &Access,
        purpose: &str,
        subjects: &[SubjectRecord],
    ) -> Result<(), VaultError> {
        let mut entry = access.entry("subject.import", self.clock.now());
        entry.purpose = Some(purpose.to_owned());
        entry.categories = sorted(subjects.iter().flat_map(|s| {
            s.identities
                .iter()
                .filter_map(|i| IdentityKind::parse(&i.kind).ok())
                .map(|k| k.category().to_owned())
                .chain(s.fields.iter().map(|f| f.category.clone()))
        }));
        entry.detail = Some(format!("{} subjects", subjects.len()));
        let result = async {
            let p = self.purpose(purpose)?;
            self.authorize(
                access,
                Operation::Create,
                Some(p),
                entry.categories.iter().map(String::as_str),
            )?;
            Ok(self.store.insert_subjects(subjects).await?)
        }
        .await;
        self.finish(entry, result, |_, _| {}).await
    }

    /// The subject an identity belongs to, looked up for `purpose` (required of support).
    pub async fn lookup(
        &self,
        access: &Access,
        identity: &Identity,
        purpose: Option<&str>,
    ) -> Result<Option<SubjectId>, VaultError> {
        let category = identity.kind().category().to_owned();
        let mut entry = access.entry("subject.lookup", self.clock.now());
        entry.purpose = purpose.map(str::to_owned);
        entry.categories = vec![category.clone()];
        let result = async {
            let purpose = purpose.map(|p| self.purpose(p)).transpose()?;
            self.authorize(access, Operation::Lookup, purpose, [category.as_str()])?;
            self.find(identity).await
        }
        .await;
        self.finish(entry, result, |found, e| {
            e.subject = *found;
            if found.is_none() {
                e.code = Some("no-match".to_owned());
            }
        })
        .await
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

    /// What `purpose` may see of a subject: the identities and fields in its categories that
    /// the principal's scope lets through, narrowed to `only` when given (each of which the
    /// purpose and the scope must cover).
    pub async fn read(
        &self,
        access: &Access,
        id: SubjectId,
        purpose: &str,
        only: &[String],
    ) -> Result<SubjectView, VaultError> {
        let mut entry = access.entry("subject.read", self.clock.now());
        entry.purpose = Some(purpose.to_owned());
        entry.subject = Some(id);
        entry.categories = only.to_vec();
        let result = async {
            let purpose = self.purpose(purpose)?;
            self.authorize(
                access,
                Operation::Read,
                Some(purpose),
                only.iter().map(String::as_str),
            )?;
            if let Some(c) = only
                .iter()
                .find(|c| !purpose.categories.iter().any(|p| covers(p, c)))
            {
                return Err(VaultError::Denied(Denied {
                    code: "purpose-does-not-cover",
                    message: format!(
                        "purpose `{}` does not cover `{c}`: read it for a purpose whose categories include it",
                        purpose.id
                    ),
                }));
            }
            self.read_inner(id, purpose, |category| {
                access.principal.scope.allows_category(category)
                    && (only.is_empty() || only.iter().any(|o| covers(o, category)))
            })
            .await
        }
        .await;
        self.finish(entry, result, |view, e| e.categories = view.categories())
            .await
    }

    async fn read_inner(
        &self,
        id: SubjectId,
        purpose: &Purpose,
        let_through: impl Fn(&str) -> bool,
    ) -> Result<SubjectView, VaultError> {
        let (stored, key) = self.load(id).await?;
        self.open_view(id, &stored, &key, |category| {
            purpose.categories.iter().any(|c| covers(c, category)) && let_through(category)
        })
    }

    /// The subject's e-mail address, for the mail Steward itself sends (a double opt-in
    /// confirmation, a policy notice); the caller audits the mail.
    /// The subject an identity belongs to, without an audit entry: for callers that audit the
    /// act they look it up for (a data-subject request's intake).
    pub(crate) async fn find(&self, identity: &Identity) -> Result<Option<SubjectId>, VaultError> {
        let kind = identity.kind().as_str();
        let index = self.keyring.blind_index(kind, identity.value())?;
        Ok(self.store.find_subject(kind, &index).await?)
    }

    pub(crate) async fn email_of(&self, id: SubjectId) -> Result<Option<String>, VaultError> {
        let (stored, key) = self.load(id).await?;
        let view = self.open_view(id, &stored, &key, |c| c == IdentityKind::Email.category())?;
        Ok(view
            .identities
            .into_iter()
            .find(|(kind, _)| kind == IdentityKind::Email.as_str())
            .map(|(_, value)| value))
    }

    /// Opens the identities and fields of `stored` whose category `allowed` lets through.
    fn open_view(
        &self,
        id: SubjectId,
        stored: &SubjectRecord,
        key: &SubjectKey,
        allowed: impl Fn(&str) -> bool,
    ) -> Result<SubjectView, VaultError> {
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

    /// Everything held on a subject, for every purpose, with provenance, the fields kept
    /// under legal hold, and the subject's own audit trail (who looked at their data, and why).
    pub async fn export(
        &self,
        access: &Access,
        id: SubjectId,
    ) -> Result<SubjectExport, VaultError> {
        let mut entry = access.entry("subject.export", self.clock.now());
        entry.subject = Some(id);
        let result = async {
            self.authorize(access, Operation::Export, None, [])?;
            let (stored, key) = self.load(id).await?;
            let view = self.open_view(id, &stored, &key, |_| true)?;
            let held = self.open_held(id).await?;
            let trail = self.trail(id).await?;
            Ok(SubjectExport { view, held, trail })
        }
        .await;
        self.finish(entry, result, |x, e| e.categories = x.view.categories())
            .await
    }

    /// A subject's audit trail, as they may see it: when, which role, what, for which purpose,
    /// which categories (staff names and tickets stay with the operator's audit).
    pub async fn trail(&self, id: SubjectId) -> Result<Vec<TrailEntry>, VaultError> {
        let filter = AuditFilter {
            subject: Some(id),
            ..AuditFilter::default()
        };
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.audit_search(&filter, after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            out.extend(page.into_iter().map(|e| TrailEntry {
                at: e.entry.at,
                role: e.entry.role,
                action: e.entry.action,
                purpose: e.entry.purpose,
                categories: e.entry.categories,
                outcome: e.entry.outcome,
            }));
        }
        Ok(out)
    }

    /// Corrects (or adds) the value of `category`, collected for `purpose`. Immutable
    /// categories are refused with the reason.
    pub async fn rectify(
        &self,
        access: &Access,
        id: SubjectId,
        category: &str,
        value: &str,
        purpose: &str,
        source: &FieldSource,
    ) -> Result<(), VaultError> {
        let mut entry = access.entry("subject.rectify", self.clock.now());
        entry.purpose = Some(purpose.to_owned());
        entry.subject = Some(id);
        entry.categories = vec![category.to_owned()];
        let result = async {
            let p = self.purpose(purpose)?;
            self.authorize(access, Operation::Rectify, Some(p), [category])?;
            self.rectify_inner(id, category, value, purpose, source)
                .await
        }
        .await;
        self.finish(entry, result, |_, _| {}).await
    }

    async fn rectify_inner(
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
        access: &Access,
        id: SubjectId,
    ) -> Result<(Vec<String>, Vec<Retained>), VaultError> {
        let mut entry = access.entry("subject.erase-plan", self.clock.now());
        entry.subject = Some(id);
        let result = async {
            self.authorize(access, Operation::Erase, None, [])?;
            let (stored, _) = self.load(id).await?;
            Ok(self.plan(&stored, self.clock.now()))
        }
        .await;
        self.finish(entry, result, |(removed, retained), e| {
            e.categories = touched(removed, retained);
        })
        .await
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
    pub async fn erase(
        &self,
        access: &Access,
        id: SubjectId,
    ) -> Result<ErasureReceipt, VaultError> {
        self.erase_many(access, &[id])
            .await?
            .pop()
            .unwrap_or(Err(VaultError::NotFound))
    }

    /// Erases many subjects as [`Vault::erase`] does each, with one write per database and
    /// one audit append for the lot (an entry per subject): for account erasures that come due
    /// together, and bulk erasure. Each id gets its receipt or its own error (`NotFound`, a
    /// key that does not open); a failure of the store fails the whole batch, which is
    /// written all or nothing per database, keys first.
    pub async fn erase_many(
        &self,
        access: &Access,
        ids: &[SubjectId],
    ) -> Result<Vec<Result<ErasureReceipt, VaultError>>, VaultError> {
        let now = self.clock.now();
        let mut results: Vec<Result<ErasureReceipt, VaultError>> = Vec::with_capacity(ids.len());
        let mut batch = Vec::new();
        let mut slots = Vec::new();
        match self.authorize(access, Operation::Erase, None, []) {
            Err(VaultError::Denied(denied)) => {
                for _ in ids {
                    results.push(Err(VaultError::Denied(denied.clone())));
                }
            }
            Err(e) => return Err(e),
            Ok(()) => {
                for &id in ids {
                    match self.seal_holds(id, now).await {
                        Ok((receipt, hold)) => {
                            slots.push(results.len());
                            batch.push((id, hold));
                            results.push(Ok(receipt));
                        }
                        Err(e) => results.push(Err(e)),
                    }
                }
            }
        }
        let written = if batch.is_empty() {
            Ok(Vec::new())
        } else {
            self.store.erase_subjects(&batch).await
        };
        let failure = match written {
            Ok(erased) => {
                for (slot, erased) in slots.into_iter().zip(erased) {
                    if !erased {
                        results[slot] = Err(VaultError::NotFound);
                    }
                }
                None
            }
            Err(e) => Some(e),
        };
        let entries = ids
            .iter()
            .zip(&results)
            .map(|(id, result)| {
                let mut entry = access.entry("subject.erase", now);
                entry.subject = Some(*id);
                match (result, &failure) {
                    (Ok(r), None) => entry.categories = touched(&r.removed, &r.retained),
                    (Ok(_), Some(_)) => {
                        entry.outcome = Outcome::Failed;
                        entry.code = Some("store-failed".to_owned());
                    }
                    (Err(e), _) => refused(&mut entry, e),
                }
                entry
            })
            .collect();
        self.audit
            .record_all(&self.store, entries)
            .await
            .map_err(VaultError::Audit)?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(results),
        }
    }

    /// What erasing `id` removes and keeps (its receipt), and its held fields re-sealed under
    /// a new hold key. Reads only.
    async fn seal_holds(
        &self,
        id: SubjectId,
        now: OffsetDateTime,
    ) -> Result<(ErasureReceipt, Option<Hold>), VaultError> {
        let (stored, key) = self.load(id).await?;
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
        let digest = {
            let body = serde_json::json!({ "subject": id, "erased_at": now.unix_timestamp(), "removed": removed, "retained": retained });
            let mut hex = String::with_capacity(64);
            for byte in Sha256::digest(body.to_string().as_bytes()) {
                hex.push_str(&format!("{byte:02x}"));
            }
            hex
        };
        let receipt = ErasureReceipt {
            subject: id,
            erased_at: now,
            removed,
            retained,
            digest,
        };
        Ok((receipt, hold))
    }

    /// Reads the fields kept after a subject's erasure (for the law's purposes only).
    pub async fn read_held(
        &self,
        access: &Access,
        id: SubjectId,
    ) -> Result<Vec<FieldView>, VaultError> {
        let mut entry = access.entry("subject.read-held", self.clock.now());
        entry.subject = Some(id);
        let result = async {
            self.authorize(access, Operation::Export, None, [])?;
            self.open_held(id).await
        }
        .await;
        self.finish(entry, result, |fields, e| {
            e.categories = sorted(fields.iter().map(|f| f.category.clone()));
        })
        .await
    }

    async fn open_held(&self, id: SubjectId) -> Result<Vec<FieldView>, VaultError> {
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

fn sorted(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = items.collect();
    v.sort();
    v.dedup();
    v
}

/// Marks `entry` as refused (`Denied`) or failed, with the error's code.
fn refused(entry: &mut AuditEntry, e: &VaultError) {
    entry.outcome = if matches!(e, VaultError::Denied(_)) {
        Outcome::Denied
    } else {
        Outcome::Failed
    };
    entry.code = Some(e.code().to_owned());
}

fn touched(removed: &[String], retained: &[Retained]) -> Vec<String> {
    sorted(
        removed
            .iter()
            .cloned()
            .chain(retained.iter().map(|r| r.category.clone())),
    )
}

fn input_categories(input: &NewSubjectInput) -> Vec<String> {
    sorted(
        input
            .identities
            .iter()
            .map(|i| i.kind().category().to_owned())
            .chain(input.fields.iter().map(|(c, _)| c.clone())),
    )
}

impl SubjectView {
    /// The categories shown (identities by their category), sorted.
    pub fn categories(&self) -> Vec<String> {
        sorted(
            self.identities
                .iter()
                .filter_map(|(k, _)| IdentityKind::parse(k).ok())
                .map(|k| k.category().to_owned())
                .chain(self.fields.iter().map(|f| f.category.clone())),
        )
    }
}

/// Hold keys are bound to the subject with a distinct label, so a hold key can never pass for
/// the subject's own key.
pub(crate) fn hold_binding(id: &SubjectId) -> Vec<u8> {
    let mut out = b"hold:".to_vec();
    out.extend_from_slice(id.as_bytes());
    out
}
