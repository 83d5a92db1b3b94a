//! Durations as a privacy policy writes them: `"2 days"`, `"7 business days"`, `"1 month"`,
//! `"72 hours"`, and cookie lifetimes, which may also be `"session"`.

use std::fmt;
use std::str::FromStr;

/// The unit of a [`Duration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    /// Minutes.
    Minute,
    /// Hours.
    Hour,
    /// Calendar days.
    Day,
    /// Working days: weekends and the declared holidays do not count.
    BusinessDay,
    /// Weeks of seven days.
    Week,
    /// Calendar months (the same day of a later month, clamped to the month's end).
    Month,
    /// Calendar years.
    Year,
}

impl Unit {
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Unit::Minute => ("minute", "minutes"),
            Unit::Hour => ("hour", "hours"),
            Unit::Day => ("day", "days"),
            Unit::BusinessDay => ("business day", "business days"),
            Unit::Week => ("week", "weeks"),
            Unit::Month => ("month", "months"),
            Unit::Year => ("year", "years"),
        }
    }

    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "minute" | "minutes" | "min" | "mins" => Unit::Minute,
            "hour" | "hours" | "h" | "hr" | "hrs" => Unit::Hour,
            "day" | "days" | "d" | "calendar day" | "calendar days" => Unit::Day,
            "business day" | "business days" | "working day" | "working days" => Unit::BusinessDay,
            "week" | "weeks" => Unit::Week,
            "month" | "months" => Unit::Month,
            "year" | "years" => Unit::Year,
            _ => return None,
        })
    }
}

/// A length of time with its unit kept, so `"1 month"` stays a calendar month and
/// `"7 business days"` skips weekends and holidays when a due date is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Duration {
    /// How many units.
    pub amount: u32,
    /// Which unit.
    pub unit: Unit,
}

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DurationError {
    /// What is wrong.
    pub message: String,
    /// How to write it instead.
    pub help: &'static str,
}

const DURATION_HELP: &str = "write a number and a unit, e.g. \"2 days\", \"72 hours\", \"7 business days\", \"1 month\", \"10 years\"";

impl Duration {
    /// The longest duration a declaration may state: 1,000 years (of 366 days), in hours.
    pub const LONGEST_HOURS: u64 = 1_000 * 366 * 24;

    /// A duration of `amount` units.
    pub const fn new(amount: u32, unit: Unit) -> Self {
        Self { amount, unit }
    }

    /// A rough length in hours, for comparing durations of different units
    /// (a month counts 31 days, a business day 1.4 days: the conservative side of a deadline).
    pub fn approx_hours(&self) -> u64 {
        let per: f64 = match self.unit {
            Unit::Minute => 1.0 / 60.0,
            Unit::Hour => 1.0,
            Unit::Day => 24.0,
            Unit::BusinessDay => 24.0 * 7.0 / 5.0,
            Unit::Week => 24.0 * 7.0,
            Unit::Month => 24.0 * 31.0,
            Unit::Year => 24.0 * 366.0,
        };
        // Amounts are u32, so the product fits an f64 exactly enough and is non-negative.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let hours = (f64::from(self.amount) * per).ceil() as u64;
        hours
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (one, many) = self.unit.words();
        let word = if self.amount == 1 { one } else { many };
        write!(f, "{} {}", self.amount, word)
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let normalised = normalise(text);
        let (number, rest) = split_number(&normalised).ok_or_else(|| DurationError {
            message: format!("`{}` does not start with a number", text.trim()),
            help: DURATION_HELP,
        })?;
        let unit = Unit::parse(rest).ok_or_else(|| DurationError {
            message: if rest.is_empty() {
                format!("`{}` has no unit", text.trim())
            } else {
                format!("`{rest}` is not a unit of time")
            },
            help: DURATION_HELP,
        })?;
        let duration = Self::new(number, unit);
        if duration.approx_hours() > Self::LONGEST_HOURS {
            return Err(DurationError {
                message: format!(
                    "`{}` is longer than 1,000 years, which no calendar arithmetic here can count back from",
                    text.trim()
                ),
                help: "write a shorter period, or `indefinite: <the reason>` for data kept with no end",
            });
        }
        Ok(duration)
    }
}

/// Lower-cases, trims and collapses runs of whitespace.
pub(crate) fn normalise(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Splits a leading number (digits, or a number word up to twenty, or "a"/"an") from the rest.
pub(crate) fn split_number(text: &str) -> Option<(u32, &str)> {
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits > 0 {
        let (number, rest) = text.split_at(digits);
        return Some((number.parse().ok()?, rest.trim_start()));
    }
    let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
    const WORDS: [&str; 21] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    let number = match word {
        "a" | "an" => 1,
        _ => u32::try_from(WORDS.iter().position(|w| *w == word)?).ok()?,
    };
    Some((number, rest))
}

/// How long a cookie or similar item lives in the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "duration")]
pub enum Lifetime {
    /// Deleted when the browser is closed.
    Session,
    /// Kept for this long after it is set.
    For(Duration),
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lifetime::Session => f.write_str("until the browser is closed"),
            Lifetime::For(d) => d.fmt(f),
        }
    }
}

impl FromStr for Lifetime {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match normalise(text).as_str() {
            "session" | "browser session" | "until the browser is closed" => Ok(Lifetime::Session),
            _ => text.parse().map(Lifetime::For).map_err(|e| DurationError {
                help: "write \"session\" for a cookie deleted when the browser closes, or a duration such as \"2 days\" or \"1 year\"",
                ..e
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_durations_policies_use() {
        assert_eq!("2 days".parse(), Ok(Duration::new(2, Unit::Day)));
        // Too long to count back from: refused, never wrapped.
        for text in ["20000 years", "4294967295 days", "9000000 hours"] {
            let e = text.parse::<Duration>().unwrap_err();
            assert!(e.message.contains("1,000 years"), "{e:?}");
        }
        assert!("1000 years".parse::<Duration>().is_ok());
        assert_eq!(
            " 7  Business Days ".parse(),
            Ok(Duration::new(7, Unit::BusinessDay))
        );
        assert_eq!("1 month".parse(), Ok(Duration::new(1, Unit::Month)));
        assert_eq!("72 hours".parse(), Ok(Duration::new(72, Unit::Hour)));
        assert_eq!("two weeks".parse(), Ok(Duration::new(2, Unit::Week)));
        assert_eq!("a year".parse(), Ok(Duration::new(1, Unit::Year)));
        assert_eq!("48h".parse(), Ok(Duration::new(48, Unit::Hour)));
    }

    #[test]
    fn refuses_what_is_not_a_duration_and_says_how_to_write_one() {
        let err = "soon".parse::<Duration>().unwrap_err();
        assert!(err.message.contains("number"), "{err}");
        let err = "3 fortnights".parse::<Duration>().unwrap_err();
        assert!(err.message.contains("`fortnights` is not a unit"), "{err}");
        assert!("".parse::<Duration>().is_err());
        assert!("99999999999 days".parse::<Duration>().is_err());
    }

    #[test]
    fn session_is_a_lifetime_but_not_a_duration() {
        assert_eq!("session".parse(), Ok(Lifetime::Session));
        assert_eq!(
            "1 year".parse(),
            Ok(Lifetime::For(Duration::new(1, Unit::Year)))
        );
        assert!("session".parse::<Duration>().is_err());
    }

    #[test]
    fn displays_singular_and_plural() {
        assert_eq!(Duration::new(1, Unit::Month).to_string(), "1 month");
        assert_eq!(
            Duration::new(7, Unit::BusinessDay).to_string(),
            "7 business days"
        );
    }

    #[test]
    fn compares_across_units_conservatively() {
        let month = Duration::new(1, Unit::Month).approx_hours();
        assert!(Duration::new(30, Unit::Day).approx_hours() < month);
        assert!(Duration::new(7, Unit::BusinessDay).approx_hours() < month);
        assert!(
            Duration::new(72, Unit::Hour).approx_hours()
                == Duration::new(3, Unit::Day).approx_hours()
        );
    }
}
