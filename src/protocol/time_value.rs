//! A time from JS — `startedAt.valueOf()`, or a timestamp in ms — as the
//! whole milliseconds the wire carries. Pure.
//!
//! `startedAt` is checked in two halves, each in one place: `index.js`
//! checks that it is a Date (only JS can tell), and this module checks its
//! time value, for every time that comes from JS.

/// The largest time value a JS Date holds, in ms either side of the epoch.
pub const TIME_VALUE_MAX: f64 = 8.64e15;

/// Why a number is not the time value of a valid Date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidTime {
    /// NaN: what an Invalid Date holds.
    NotANumber,
    /// Infinite, fractional, or beyond what a Date holds.
    OutOfRange,
}

/// The ms since the epoch that `ms` stands for.
pub fn time_value(ms: f64) -> Result<i64, InvalidTime> {
    if ms.is_nan() {
        return Err(InvalidTime::NotANumber);
    }
    if !ms.is_finite() || ms.fract() != 0.0 || ms.abs() > TIME_VALUE_MAX {
        return Err(InvalidTime::OutOfRange);
    }
    Ok(ms as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_range_of_a_date_is_accepted() {
        assert_eq!(time_value(0.0), Ok(0));
        assert_eq!(time_value(-0.0), Ok(0));
        assert_eq!(time_value(1_700_000_000_000.0), Ok(1_700_000_000_000));
        assert_eq!(time_value(TIME_VALUE_MAX), Ok(8_640_000_000_000_000));
        assert_eq!(time_value(-TIME_VALUE_MAX), Ok(-8_640_000_000_000_000));
    }

    #[test]
    fn one_ms_past_either_end_is_out_of_range() {
        // 8.64e15 + 1 is exactly representable as an f64.
        assert_eq!(time_value(TIME_VALUE_MAX + 1.0), Err(InvalidTime::OutOfRange));
        assert_eq!(time_value(-TIME_VALUE_MAX - 1.0), Err(InvalidTime::OutOfRange));
    }

    #[test]
    fn an_invalid_date_and_other_non_times_are_refused() {
        assert_eq!(time_value(f64::NAN), Err(InvalidTime::NotANumber));
        assert_eq!(time_value(f64::INFINITY), Err(InvalidTime::OutOfRange));
        assert_eq!(time_value(f64::NEG_INFINITY), Err(InvalidTime::OutOfRange));
        assert_eq!(time_value(1.5), Err(InvalidTime::OutOfRange));
        assert_eq!(time_value(-0.25), Err(InvalidTime::OutOfRange));
    }
}
