//! What the disclosure log needs stored: each disclosure (JSON with no personal data beside
//! its columns) and the pseudonymous subjects it concerns; and the counts aggregates are made of.

use std::future::Future;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::consent::storage::ConsentStore;
use crate::storage::StoreError;
use crate::subject::SubjectId;
use crate::vault::storage::Audited;

/// A disclosure as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisclosureRow {
    /// Its id.
    pub id: Uuid,
    /// When the data were shared.
    pub at: OffsetDateTime,
    /// The recipient's id (a declared processor, third party or authority; `public`).
    pub recipient: String,
    /// Whether the people it concerns may ever be told (`false`: an indefinite gag).
    pub tell: bool,
    /// Until when they may not be told (a gag, e.g. by a court order); `None`: no gag date.
    pub gag_until: Option<OffsetDateTime>,
    /// Everything else, JSON without personal data.
    pub body: String,
}

/// One dimension an aggregate counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dimension {
    /// The declared purpose the data were collected for.
    Purpose,
    /// The data category (taxonomy key).
    Category,
    /// The month the data were collected (`2026-11`), or of the consent's last event.
    Month,
    /// The consent's current state (`grant`, `confirm`, `withdraw` …), from the ledger.
    Consent,
    /// The person's country, from their `user.contact.address.country` field (sealed: opened
    /// one person at a time).
    Country,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Self; 5] = [
        Self::Purpose,
        Self::Category,
        Self::Month,
        Self::Consent,
        Self::Country,
    ];

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purpose => "purpose",
            Self::Category => "category",
            Self::Month => "month",
            Self::Consent => "consent",
            Self::Country => "country",
        }
    }
}

impl std::str::FromStr for Dimension {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown dimension `{s}`; use any of {}",
                    Self::ALL.map(Self::as_str).join(", ")
                )
            })
    }
}

/// A count of distinct people: the group's values in the order of the dimensions asked for,
/// and how many people it holds.
pub type CountRow = (Vec<String>, u64);

/// The disclosure log's storage, over the consent ledger's.
pub trait DisclosureStore: ConsentStore {
    /// Writes a disclosure, the subjects it concerns and its audit entry in one transaction.
    fn insert_disclosure(
        &self,
        row: &DisclosureRow,
        subjects: &[SubjectId],
        audit: Audited<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces a disclosure's gag (`tell`, `gag_until`, `body`) and appends its audit entry,
    /// in one transaction; `false` when there is no such disclosure.
    fn update_disclosure(
        &self,
        row: &DisclosureRow,
        audit: Audited<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The disclosure with this id.
    fn disclosure(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<DisclosureRow>, StoreError>> + Send;

    /// Up to `limit` disclosures, newest first: of `subject` only when given, of `recipient`
    /// only when given.
    fn disclosures(
        &self,
        subject: Option<SubjectId>,
        recipient: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<DisclosureRow>, StoreError>> + Send;

    /// How many subjects a disclosure concerns.
    fn disclosure_size(&self, id: Uuid) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Distinct people by the vault's purpose, category and month of collection (in the
    /// order of `by`, which holds only those three), over fields of categories covered by one of
    /// `categories` (all when empty).
    fn count_fields(
        &self,
        by: &[Dimension],
        categories: &[String],
    ) -> impl Future<Output = Result<Vec<CountRow>, StoreError>> + Send;

    /// Distinct people (subject parties) by the consent ledger's purpose, current state and
    /// month of the last event (in the order of `by`, which holds only those three).
    fn count_consents(
        &self,
        by: &[Dimension],
    ) -> impl Future<Output = Result<Vec<CountRow>, StoreError>> + Send;

    /// Up to `limit` subjects after `after` (ascending) holding a field of `category`.
    fn subjects_with(
        &self,
        category: &str,
        after: Option<SubjectId>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SubjectId>, StoreError>> + Send;
}
