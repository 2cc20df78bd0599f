//! One log line, as the writer thread renders it, and the time format the
//! original's lines carry.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::protocol::level::Level;

/// What a line for stdout says, captured by the thread that logs; the
/// writer thread turns it into text (`render`), so logging costs the caller
/// little more than a copy.
pub struct Line {
    pub at: SystemTime,
    pub level: Level,
    pub context: Arc<str>,
    pub message: Text,
}

pub enum Text {
    Owned(String),
    Shared(Arc<str>),
}

impl Line {
    /// `<ISO time> [handover] [<level>] [<context id>]: <message>` and a newline.
    pub fn render(&self) -> String {
        let message: &str = match &self.message {
            Text::Owned(text) => text,
            Text::Shared(text) => text,
        };
        format!(
            "{} [handover] [{}] [{}]: {message}\n",
            iso_time(self.at),
            self.level.name(),
            self.context
        )
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as JavaScript's `Date#toISOString`.
pub fn iso_time(time: SystemTime) -> String {
    let ms = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    };
    iso_time_ms(ms)
}

pub fn iso_time_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The line that reports lines lost by a writer that did not keep up.
pub fn dropped_lines(count: u64, writer: &str) -> String {
    format!("{count} log line(s) dropped: {writer} did not keep up")
}
