//! Log lines in the original's shape,
//! `<ISO time> [handover] [<level>] [<context id>]: <message>`, filtered by
//! syslog level, queued for stdout (`log_writer`: logging never blocks) or
//! handed to a caller-supplied sink.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Syslog severities, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Emerg,
    Alert,
    Crit,
    Error,
    Warning,
    Notice,
    Info,
    Debug,
}

impl Level {
    pub const NAMES: [&'static str; 8] = ["emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"];

    /// Accepts the syslog names and the spellings other loggers use.
    pub fn parse(name: &str) -> Option<Level> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "emerg" | "emergency" => Level::Emerg,
            "alert" => Level::Alert,
            "crit" | "critical" | "fatal" => Level::Crit,
            "error" | "err" => Level::Error,
            "warning" | "warn" => Level::Warning,
            "notice" => Level::Notice,
            "info" => Level::Info,
            "debug" => Level::Debug,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        Level::NAMES[self as usize]
    }
}

/// Where formatted lines go; the JS bridge supplies one for a custom logger.
pub type Sink = Arc<dyn Fn(Level, &str) + Send + Sync>;

#[derive(Clone)]
pub struct Logger {
    level: Level,
    context: Arc<str>,
    sink: Option<Sink>,
}

impl Logger {
    pub fn new(level: Level, context: &str, sink: Option<Sink>) -> Self {
        Logger {
            level,
            context: context.into(),
            sink,
        }
    }

    pub fn enabled(&self, level: Level) -> bool {
        level <= self.level
    }

    pub fn log(&self, level: Level, message: fmt::Arguments<'_>) {
        if !self.enabled(level) {
            return;
        }
        match &self.sink {
            Some(sink) => sink(level, &message.to_string()),
            None => self.queue(level, Text::Owned(message.to_string())),
        }
    }

    /// Logs a message made beforehand: on the way to stdout this costs the
    /// caller no formatting at all (for lines on the handover path).
    pub fn log_prepared(&self, level: Level, message: &Arc<str>) {
        if !self.enabled(level) {
            return;
        }
        match &self.sink {
            Some(sink) => sink(level, message),
            None => self.queue(level, Text::Shared(message.clone())),
        }
    }

    /// Queues a line for stdout; the writer thread renders it.
    fn queue(&self, level: Level, message: Text) {
        crate::log_writer::write_line(Line {
            at: SystemTime::now(),
            level,
            context: self.context.clone(),
            message,
        });
    }

    pub fn error(&self, message: fmt::Arguments<'_>) {
        self.log(Level::Error, message)
    }
    pub fn warn(&self, message: fmt::Arguments<'_>) {
        self.log(Level::Warning, message)
    }
    pub fn info(&self, message: fmt::Arguments<'_>) {
        self.log(Level::Info, message)
    }
    pub fn debug(&self, message: fmt::Arguments<'_>) {
        self.log(Level::Debug, message)
    }
}

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

/// Lets one line through per period and counts the ones it held back, so a
/// flood of bad packets costs one log line a second, not one per packet.
#[derive(Debug)]
pub struct RateLimit {
    period: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    pub fn new(period: Duration) -> Self {
        RateLimit {
            period,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when a line may be written now, `n` being how many were held back.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < self.period => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_time_matches_javascript() {
        assert_eq!(iso_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time_ms(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(iso_time_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso_time_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn levels_filter_and_parse() {
        assert!(Level::Error < Level::Info);
        assert_eq!(Level::parse("WARN"), Some(Level::Warning));
        assert_eq!(Level::parse("verbose"), None);
        let logger = Logger::new(Level::Info, "ctx", None);
        assert!(logger.enabled(Level::Error));
        assert!(!logger.enabled(Level::Debug));
    }

    #[test]
    fn rate_limit_counts_what_it_holds_back() {
        let mut limit = RateLimit::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(limit.admit(t0), Some(0));
        assert_eq!(limit.admit(t0 + Duration::from_millis(10)), None);
        assert_eq!(limit.admit(t0 + Duration::from_millis(20)), None);
        assert_eq!(limit.admit(t0 + Duration::from_millis(1001)), Some(2));
    }

    #[test]
    fn sink_receives_lines() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let store = seen.clone();
        let sink: Sink = Arc::new(move |level, line| store.lock().unwrap().push((level, line.to_string())));
        let logger = Logger::new(Level::Warning, "ctx", Some(sink));
        logger.info(format_args!("hidden"));
        logger.warn(format_args!("shown {}", 1));
        assert_eq!(*seen.lock().unwrap(), vec![(Level::Warning, "shown 1".to_string())]);
    }
}
