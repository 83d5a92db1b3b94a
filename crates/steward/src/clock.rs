//! The one place the program reads the wall clock. Everything else takes the date or time
//! as a parameter (DESIGN.md §4: time is a parameter), so tests can set it.

use time::{Date, OffsetDateTime};

/// Today's date in UTC.
#[allow(clippy::disallowed_methods)] // the sanctioned clock read
pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}
