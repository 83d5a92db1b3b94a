//! Retention sentences: how long data is kept, written as a policy says it and read into a
//! typed rule the retention sweeps can enforce.
//!
//! ```text
//! "2 days"                              2 days after collection
//! "10 years after collection"
//! "45 to 60 days after account closure" erased no sooner than 45 and no later than 60 days after
//! "2 years after last activity"         also "2 years of inactivity"
//! "until consent is withdrawn"
//! "until account closure"
//! "session"
//! "indefinite: needed to recognise returning commenters"
//! ```

use std::fmt;
use std::str::FromStr;

use crate::duration::{Duration, normalise, split_number};

/// The event a retention period counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// When the data was collected.
    Collection,
    /// When the person's account was closed.
    AccountClosure,
    /// The person's last sign-in or other activity.
    LastActivity,
    /// When the person withdrew consent.
    ConsentWithdrawal,
    /// When the contract with the person ended.
    ContractEnd,
}

impl Trigger {
    const ALL: [(Trigger, &'static [&'static str]); 5] = [
        (
            Trigger::Collection,
            &[
                "collection",
                "it is collected",
                "it was collected",
                "the data is collected",
                "receipt",
                "creation",
            ],
        ),
        (
            Trigger::AccountClosure,
            &[
                "account closure",
                "the account is closed",
                "closure of the account",
                "account deletion",
                "the account is deleted",
            ],
        ),
        (
            Trigger::LastActivity,
            &[
                "last activity",
                "the last activity",
                "last login",
                "the last login",
                "last sign-in",
                "the last sign-in",
            ],
        ),
        (
            Trigger::ConsentWithdrawal,
            &[
                "consent withdrawal",
                "consent is withdrawn",
                "withdrawal of consent",
                "unsubscribing",
                "unsubscribe",
            ],
        ),
        (
            Trigger::ContractEnd,
            &[
                "contract end",
                "the end of the contract",
                "the contract ends",
                "end of contract",
                "the end of the business relationship",
                "the business relationship ends",
            ],
        ),
    ];

    /// The event named by `text`, in any of the declaration's words for it
    /// (`collection`, `account closure`, `last activity` …).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, words)| words.contains(&text))
            .map(|(t, _)| *t)
    }

    /// How the event is named in a notice (`account closure`).
    pub fn describe(self) -> &'static str {
        match self {
            Trigger::Collection => "collection",
            Trigger::AccountClosure => "account closure",
            Trigger::LastActivity => "your last activity",
            Trigger::ConsentWithdrawal => "you withdraw consent",
            Trigger::ContractEnd => "the end of the contract",
        }
    }
}

/// How long data is kept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Retention {
    /// Kept for a period after an event; erased no sooner than `min` and no later than `max`
    /// (equal unless a range like "45 to 60 days" was written).
    Period {
        /// Earliest erasure after the event.
        min: Duration,
        /// Latest erasure after the event.
        max: Duration,
        /// The event the period counts from.
        after: Trigger,
    },
    /// Kept until an event happens, then erased.
    Until(Trigger),
    /// Kept for the browser session only.
    Session,
    /// Kept with no end date, for the stated reason.
    Indefinite {
        /// Why it is kept indefinitely, in the policy's words.
        reason: String,
    },
}

/// Why a retention sentence could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RetentionError {
    /// Which kind of mistake.
    pub kind: RetentionErrorKind,
    /// What is wrong.
    pub message: String,
    /// How to write it instead.
    pub help: String,
}

/// The kinds of mistake in a retention sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionErrorKind {
    /// `indefinite` with no reason after a colon.
    IndefiniteWithoutReason,
    /// An event Steward cannot watch for.
    UnknownEvent,
    /// The period is not a duration or range.
    BadPeriod,
}

const RETENTION_HELP: &str = "write e.g. \"2 days\", \"10 years after collection\", \"45 to 60 days after account closure\", \"until consent is withdrawn\", \"session\" or \"indefinite: <the reason>\"";

fn events() -> String {
    Trigger::ALL
        .iter()
        .map(|(_, words)| format!("\"{}\"", words[0]))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Retention {
    /// Whether the data is ever erased by the passing of time or an event.
    pub fn is_indefinite(&self) -> bool {
        matches!(self, Retention::Indefinite { .. })
    }
}

impl FromStr for Retention {
    type Err = RetentionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let lower = normalise(trimmed);
        let fail = |kind, message: String, help: String| RetentionError {
            kind,
            message,
            help,
        };

        if lower.starts_with("indefinite") || lower.starts_with("forever") {
            let reason = trimmed
                .split_once(':')
                .map(|(_, r)| r.trim())
                .filter(|r| !r.is_empty());
            return match reason {
                Some(reason) => Ok(Retention::Indefinite {
                    reason: reason.to_owned(),
                }),
                None => Err(fail(
                    RetentionErrorKind::IndefiniteWithoutReason,
                    "an indefinite retention must give its reason".to_owned(),
                    "write \"indefinite: <why the data must be kept with no end date>\", e.g. \"indefinite: needed to recognise returning commenters\"".to_owned(),
                )),
            };
        }
        if matches!(
            lower.as_str(),
            "session" | "browser session" | "for the session"
        ) {
            return Ok(Retention::Session);
        }
        if let Some(event) = lower.strip_prefix("until ") {
            let event = match event {
                "withdrawn"
                | "you withdraw consent"
                | "consent is withdrawn"
                | "withdrawal of consent"
                | "you unsubscribe" => "consent is withdrawn",
                other => other,
            };
            return Trigger::parse(event).map(Retention::Until).ok_or_else(|| {
                fail(
                    RetentionErrorKind::UnknownEvent,
                    format!("`until {event}` names an event Steward does not know"),
                    format!("the events are {}", events()),
                )
            });
        }

        let (period, after) = match lower.split_once(" after ") {
            Some((period, event)) => {
                let trigger = Trigger::parse(event).ok_or_else(|| {
                    fail(
                        RetentionErrorKind::UnknownEvent,
                        format!("`after {event}` names an event Steward does not know"),
                        format!("the events are {}", events()),
                    )
                })?;
                (period.to_owned(), trigger)
            }
            None => match lower.strip_suffix(" of inactivity") {
                Some(period) => (period.to_owned(), Trigger::LastActivity),
                None => (lower.clone(), Trigger::Collection),
            },
        };
        let period = period
            .strip_prefix("up to ")
            .or_else(|| period.strip_prefix("for "))
            .unwrap_or(&period);
        let (min, max) = parse_range(period).map_err(|message| {
            fail(
                RetentionErrorKind::BadPeriod,
                message,
                RETENTION_HELP.to_owned(),
            )
        })?;
        Ok(Retention::Period { min, max, after })
    }
}

/// Reads `"45 days"`, `"45 to 60 days"` or `"45-60 days"`.
fn parse_range(text: &str) -> Result<(Duration, Duration), String> {
    let bad = || format!("`{text}` is not a retention period");
    if let Some((low, rest)) = split_number(text) {
        let rest = rest
            .strip_prefix("to ")
            .or_else(|| rest.strip_prefix("- "))
            .or_else(|| rest.strip_prefix('-'));
        if let Some(rest) = rest {
            let max: Duration =
                rest.trim_start()
                    .parse()
                    .map_err(|e: crate::duration::DurationError| {
                        if e.message.contains("1,000 years") {
                            e.message
                        } else {
                            bad()
                        }
                    })?;
            let min = Duration::new(low, max.unit);
            if min.amount > max.amount {
                return Err(format!(
                    "the range `{text}` ends before it starts; write the shorter period first"
                ));
            }
            return Ok((min, max));
        }
    }
    let single: Duration = text.parse().map_err(|e: crate::duration::DurationError| {
        format!("`{text}` is not a retention period: {e}")
    })?;
    Ok((single, single))
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retention::Period { min, max, after } => {
                if min == max {
                    write!(f, "{min} after {}", after.describe())
                } else {
                    write!(f, "{} to {max} after {}", min.amount, after.describe())
                }
            }
            Retention::Until(Trigger::ConsentWithdrawal) => {
                f.write_str("until you withdraw consent")
            }
            Retention::Until(event) => write!(f, "until {}", event.describe()),
            Retention::Session => f.write_str("for the browser session"),
            Retention::Indefinite { reason } => write!(f, "indefinitely ({reason})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::Unit;

    fn period(min: u32, max: u32, unit: Unit, after: Trigger) -> Retention {
        Retention::Period {
            min: Duration::new(min, unit),
            max: Duration::new(max, unit),
            after,
        }
    }

    #[test]
    fn reads_the_seed_sites_retention_sentences() {
        assert_eq!(
            "2 days".parse(),
            Ok(period(2, 2, Unit::Day, Trigger::Collection))
        );
        assert_eq!(
            "45 days after account closure".parse(),
            Ok(period(45, 45, Unit::Day, Trigger::AccountClosure))
        );
        assert_eq!(
            "45 to 60 days after account closure".parse(),
            Ok(period(45, 60, Unit::Day, Trigger::AccountClosure))
        );
        assert_eq!(
            "10 years after collection".parse(),
            Ok(period(10, 10, Unit::Year, Trigger::Collection))
        );
        assert_eq!(
            "up to 10 years after the end of the contract".parse(),
            Ok(period(10, 10, Unit::Year, Trigger::ContractEnd))
        );
        assert_eq!(
            "2 years of inactivity".parse(),
            Ok(period(2, 2, Unit::Year, Trigger::LastActivity))
        );
        assert_eq!(
            "until consent is withdrawn".parse(),
            Ok(Retention::Until(Trigger::ConsentWithdrawal))
        );
        assert_eq!(
            "Until account closure".parse(),
            Ok(Retention::Until(Trigger::AccountClosure))
        );
        assert_eq!("session".parse(), Ok(Retention::Session));
        assert_eq!(
            "indefinite: needed to recognise returning commenters".parse(),
            Ok(Retention::Indefinite {
                reason: "needed to recognise returning commenters".to_owned()
            })
        );
    }

    #[test]
    fn indefinite_without_a_reason_is_refused() {
        for text in ["indefinite", "indefinitely", "indefinite:   "] {
            let err = text.parse::<Retention>().unwrap_err();
            assert!(err.message.contains("reason"), "{text}: {err}");
            assert_eq!(err.kind, RetentionErrorKind::IndefiniteWithoutReason);
            assert!(err.help.contains("indefinite: "), "{text}: {}", err.help);
        }
    }

    #[test]
    fn unknown_events_and_backwards_ranges_are_refused() {
        let err = "30 days after the moon is full"
            .parse::<Retention>()
            .unwrap_err();
        assert!(err.message.contains("the moon is full"), "{err}");
        assert!(err.help.contains("account closure"), "{}", err.help);
        assert!("60 to 45 days".parse::<Retention>().is_err());
        assert!("until the cows come home".parse::<Retention>().is_err());
        assert!("forever and ever".parse::<Retention>().is_err());
        assert!("whenever".parse::<Retention>().is_err());
    }

    #[test]
    fn displays_as_a_notice_would_say_it() {
        let r: Retention = "45 to 60 days after account closure".parse().unwrap();
        assert_eq!(r.to_string(), "45 to 60 days after account closure");
        let r: Retention = "until consent is withdrawn".parse().unwrap();
        assert_eq!(r.to_string(), "until you withdraw consent");
    }
}
