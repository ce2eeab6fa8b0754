//! Budget windows on the UTC calendar: a day runs midnight to midnight, a month from the
//! first to the first. Plain arithmetic on unix milliseconds, no time-zone database.

/// The span a budget covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Period {
    Day,
    Month,
    /// A run's whole lifetime (`x-airlock-run`): never resets.
    Run,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
            Period::Run => "run",
        }
    }

    /// "daily", "monthly", "per-run": for sentences.
    pub fn adjective(self) -> &'static str {
        match self {
            Period::Day => "daily",
            Period::Month => "monthly",
            Period::Run => "per-run",
        }
    }

    /// When the window containing `now_ms` began (`None` for a run).
    pub fn start(self, now_ms: u64) -> Option<u64> {
        let days = (now_ms / DAY_MS) as i64;
        match self {
            Period::Day => Some(days as u64 * DAY_MS),
            Period::Month => {
                let (y, m, _) = civil_from_days(days);
                Some(days_from_civil(y, m, 1) as u64 * DAY_MS)
            }
            Period::Run => None,
        }
    }

    /// The window containing `now_ms`: its label (part of a counter key) and when it ends
    /// (`None` for a run).
    pub fn window(self, now_ms: u64) -> (String, Option<u64>) {
        let days = (now_ms / DAY_MS) as i64;
        let (y, m, d) = civil_from_days(days);
        match self {
            Period::Day => (
                format!("{y:04}-{m:02}-{d:02}"),
                Some((days as u64 + 1) * DAY_MS),
            ),
            Period::Month => {
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (
                    format!("{y:04}-{m:02}"),
                    Some(days_from_civil(ny, nm, 1) as u64 * DAY_MS),
                )
            }
            Period::Run => ("run".into(), None),
        }
    }
}

const DAY_MS: u64 = 86_400_000;

/// Where a `since` window starts: `today` and `month` are the current UTC day and month
/// (the budget windows), anything else a duration back from `now_ms` (`24h`, `30d`).
pub fn since(text: &str, now_ms: u64) -> Result<u64, String> {
    match text.trim() {
        "today" => Ok(Period::Day.start(now_ms).unwrap_or(0)),
        "month" => Ok(Period::Month.start(now_ms).unwrap_or(0)),
        span => crate::config::units::parse_span(span)
            .map(|d| now_ms.saturating_sub(d.as_millis() as u64))
            .map_err(|e| format!("{e}, `today` or `month`")),
    }
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31). Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-27T17:50:00Z
    const NOW: u64 = 1_795_801_800_000;

    #[test]
    fn since_takes_calendar_windows_and_spans() {
        assert_eq!(since("today", NOW), Ok(NOW - NOW % DAY_MS));
        // 2026-11-01T00:00:00Z
        assert_eq!(since("month", NOW), Ok(1_793_491_200_000));
        assert_eq!(since("90m", NOW), Ok(NOW - 5_400_000));
        assert!(
            since("yesterday", NOW)
                .unwrap_err()
                .contains("`today` or `month`")
        );
    }

    #[test]
    fn days_and_months_on_the_utc_calendar() {
        assert_eq!(
            Period::Day.window(NOW),
            ("2026-11-27".into(), Some(1_795_824_000_000))
        );
        // December 1st, 00:00 UTC.
        assert_eq!(
            Period::Month.window(NOW),
            ("2026-11".into(), Some(1_796_083_200_000))
        );
        assert_eq!(Period::Run.window(NOW), ("run".into(), None));
        assert_eq!(Period::Day.start(NOW), Some(1_795_737_600_000));
        assert_eq!(Period::Month.start(NOW), Some(1_793_491_200_000));
    }

    #[test]
    fn december_rolls_into_next_year_and_leap_days_exist() {
        let dec = days_from_civil(2026, 12, 15) as u64 * DAY_MS;
        assert_eq!(
            Period::Month.window(dec),
            (
                "2026-12".into(),
                Some(days_from_civil(2027, 1, 1) as u64 * DAY_MS)
            )
        );
        let leap = days_from_civil(2028, 2, 29);
        assert_eq!(civil_from_days(leap), (2028, 2, 29));
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        for z in [0, 1, 59, 365, 10_000, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
