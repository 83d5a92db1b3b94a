//! Adding declared durations to instants: calendar months clamp to the month's end, business
//! days skip weekends and the declared holidays.

use steward_policy::{Duration, Unit};
use time::{Date, Month, OffsetDateTime, Weekday};

/// `at` plus `duration`, counting business days with `holidays` excluded.
pub fn add(at: OffsetDateTime, duration: Duration, holidays: &[Date]) -> OffsetDateTime {
    let n = i64::from(duration.amount);
    match duration.unit {
        Unit::Minute => at + time::Duration::minutes(n),
        Unit::Hour => at + time::Duration::hours(n),
        Unit::Day => at + time::Duration::days(n),
        Unit::Week => at + time::Duration::weeks(n),
        Unit::Month => add_months(at, duration.amount),
        Unit::Year => add_months(at, duration.amount.saturating_mul(12)),
        Unit::BusinessDay => {
            let mut day = at;
            let mut left = duration.amount;
            while left > 0 {
                day += time::Duration::days(1);
                let weekend = matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday);
                if !weekend && !holidays.contains(&day.date()) {
                    left -= 1;
                }
            }
            day
        }
    }
}

/// `at` less `duration`, the mirror of [`add`]: months back clamp to the month's end, business
/// days back skip weekends and `holidays`. Never later than the latest instant `t` with
/// `add(t, duration) <= at`, so a cutoff computed with it never makes anything due early.
pub fn sub(at: OffsetDateTime, duration: Duration, holidays: &[Date]) -> OffsetDateTime {
    // A period too long to count back (past year -9999) reaches back to before anything
    // was collected: nothing is due, never everything.
    let floor = time::PrimitiveDateTime::MIN.assume_utc();
    let n = i64::from(duration.amount);
    let back = |d: Option<time::Duration>| d.and_then(|d| at.checked_sub(d)).unwrap_or(floor);
    match duration.unit {
        Unit::Minute => back(Some(time::Duration::minutes(n))),
        Unit::Hour => back(Some(time::Duration::hours(n))),
        Unit::Day => back(Some(time::Duration::days(n))),
        Unit::Week => back(Some(time::Duration::weeks(n))),
        Unit::Month => sub_months(at, duration.amount).unwrap_or(floor),
        Unit::Year => sub_months(at, duration.amount.saturating_mul(12)).unwrap_or(floor),
        Unit::BusinessDay => {
            let mut day = at;
            let mut left = duration.amount;
            while left > 0 {
                let Some(before) = day.checked_sub(time::Duration::days(1)) else {
                    return floor;
                };
                day = before;
                let weekend = matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday);
                if !weekend && !holidays.contains(&day.date()) {
                    left -= 1;
                }
            }
            day
        }
    }
}

/// The same day `months` earlier, clamped to the last day of a shorter month; a day that the
/// earlier month lacks goes back to its last day (31 March less 1 month is 28 or 29 Feb).
/// `None` when that is before the earliest date there is.
fn sub_months(at: OffsetDateTime, months: u32) -> Option<OffsetDateTime> {
    let total = i64::from(at.year()) * 12 + i64::from(u8::from(at.month())) - 1 - i64::from(months);
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    let day = at.day().min(month.length(year));
    Date::from_calendar_date(year, month, day)
        .ok()
        .map(|date| at.replace_date(date))
}

/// The same day `months` later, clamped to the last day of a shorter month (31 Jan + 1 month
/// is 28 or 29 Feb).
fn add_months(at: OffsetDateTime, months: u32) -> OffsetDateTime {
    let total = i64::from(at.year()) * 12 + i64::from(u8::from(at.month())) - 1 + i64::from(months);
    let year = i32::try_from(total.div_euclid(12)).unwrap_or(i32::MAX);
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).unwrap_or(1))
        .unwrap_or(Month::January);
    let day = at.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).map_or(at, |date| at.replace_date(date))
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn a_period_too_long_to_count_back_makes_nothing_due() {
        let at = datetime!(2026-06-01 0:00 UTC);
        for d in [
            Duration::new(u32::MAX, Unit::Day),
            Duration::new(u32::MAX, Unit::Hour),
            Duration::new(20_000, Unit::Year),
            Duration::new(u32::MAX, Unit::Month),
        ] {
            let cutoff = sub(at, d, &[]);
            assert!(cutoff.year() < -9000, "{d}: {cutoff}");
        }
    }

    #[test]
    fn counting_back_never_makes_anything_due_early() {
        // Every instant t at or before the cutoff has add(t, d) <= as_of.
        for (as_of, d) in [
            (
                datetime!(2026-03-31 10:00 UTC),
                Duration::new(1, Unit::Month),
            ),
            (
                datetime!(2028-02-29 10:00 UTC),
                Duration::new(1, Unit::Year),
            ),
            (
                datetime!(2036-11-15 0:00 UTC),
                Duration::new(10, Unit::Year),
            ),
            (datetime!(2026-12-01 9:00 UTC), Duration::new(45, Unit::Day)),
            (
                datetime!(2026-12-07 9:00 UTC),
                Duration::new(3, Unit::BusinessDay),
            ),
        ] {
            let cut = sub(as_of, d, &[]);
            assert!(add(cut, d, &[]) <= as_of, "{as_of} less {d}: {cut}");
            // Every earlier instant too, hour by hour over the week before.
            for h in 0..24 * 7 {
                let t = cut - time::Duration::hours(h);
                assert!(
                    add(t, d, &[]) <= as_of,
                    "{as_of} less {d}: {t} would be early"
                );
            }
            assert!(cut < as_of);
        }
        assert_eq!(
            sub(
                datetime!(2036-11-15 0:00 UTC),
                Duration::new(10, Unit::Year),
                &[]
            ),
            datetime!(2026-11-15 0:00 UTC)
        );
    }

    #[test]
    fn a_month_after_the_31st_of_january_is_the_end_of_february() {
        let d = add(
            datetime!(2026-01-31 10:00 UTC),
            Duration::new(1, Unit::Month),
            &[],
        );
        assert_eq!(d, datetime!(2026-02-28 10:00 UTC));
        let leap = add(
            datetime!(2028-01-31 10:00 UTC),
            Duration::new(1, Unit::Month),
            &[],
        );
        assert_eq!(leap, datetime!(2028-02-29 10:00 UTC));
        assert_eq!(
            add(
                datetime!(2026-11-15 0:00 UTC),
                Duration::new(10, Unit::Year),
                &[]
            ),
            datetime!(2036-11-15 0:00 UTC)
        );
    }

    #[test]
    fn business_days_skip_weekends_and_holidays() {
        // Friday 18 December 2026 + 7 business days, with 25 and 28 December off.
        let due = add(
            datetime!(2026-12-18 09:00 UTC),
            Duration::new(7, Unit::BusinessDay),
            &[date!(2026 - 12 - 25), date!(2026 - 12 - 28)],
        );
        assert_eq!(due, datetime!(2026-12-31 09:00 UTC));
    }
}
