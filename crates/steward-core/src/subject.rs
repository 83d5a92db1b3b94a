//! Subjects (the people whose data it is) and where each field came from.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;
use uuid::Uuid;

/// A subject's pseudonymous identifier: a UUIDv7, time-ordered, meaningless outside Steward.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct SubjectId(pub Uuid);

/// A UUIDv7 of `now` (RFC 9562 §5.7): ids made later sort later, so rows keyed by them land at
/// the end of their index rather than on a random page of it.
pub(crate) fn time_ordered(now: OffsetDateTime) -> Uuid {
    let nanos = now.unix_timestamp_nanos();
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        u64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(0),
        u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0),
    ))
}

impl SubjectId {
    /// A new identifier for a subject created at `now`.
    pub fn new(now: OffsetDateTime) -> Self {
        Self(time_ordered(now))
    }

    /// The bytes the subject's keys and values are bound to.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for SubjectId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// Where a field's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSource {
    /// A form the person filled in.
    Form,
    /// A bulk import.
    Import,
    /// The operator's application, through the API.
    Api,
    /// The operator's staff, at the command line (from a letter, a call, a ticket).
    Staff,
    /// A named third party (a processor id from the declaration).
    ThirdParty(String),
}

impl FieldSource {
    /// How the source is stored and shown (`form`, `import`, `api`, `staff`, `third-party:<id>`).
    pub fn encode(&self) -> String {
        match self {
            Self::Form => "form".to_owned(),
            Self::Import => "import".to_owned(),
            Self::Api => "api".to_owned(),
            Self::Staff => "staff".to_owned(),
            Self::ThirdParty(id) => format!("third-party:{id}"),
        }
    }

    /// Reads an encoded source.
    pub fn decode(text: &str) -> Option<Self> {
        Some(match text {
            "form" => Self::Form,
            "import" => Self::Import,
            "api" => Self::Api,
            "staff" => Self::Staff,
            other => Self::ThirdParty(other.strip_prefix("third-party:")?.to_owned()),
        })
    }
}
