//! Log lines in the original's shape,
//! `<ISO time> [handover] [<level>] [<context id>]: <message>`, filtered by
//! syslog level, queued for stdout (`log_writer`: logging never blocks) or
//! handed to a caller-supplied sink.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use crate::protocol::level::Level;

mod line;
pub mod writer;

pub use line::{dropped_lines, iso_time, iso_time_ms, Line, Text};

/// Where formatted lines go; the JS bridge supplies one for a custom logger.
pub type Sink = Arc<dyn Fn(Level, &str) + Send + Sync>;

/// A sink over a bounded queue (`send` returns false when it is full):
/// lines that do not fit are counted, and once the queue has room again a
/// warning says how many were lost. The stdout writer does the same in
/// `writer`.
pub fn bounded_sink(send: impl Fn(Level, String) -> bool + Send + Sync + 'static) -> Sink {
    let dropped = std::sync::atomic::AtomicU64::new(0);
    Arc::new(move |level: Level, message: &str| {
        use std::sync::atomic::Ordering::Relaxed;
        let lost = dropped.swap(0, Relaxed);
        if lost > 0 && !send(Level::Warning, dropped_lines(lost, "the logger")) {
            dropped.fetch_add(lost, Relaxed);
        }
        if !send(level, message.to_string()) {
            dropped.fetch_add(1, Relaxed);
        }
    })
}

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
        crate::io::log::writer::write_line(Line {
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

    #[test]
    fn a_bounded_sink_counts_what_did_not_fit_and_says_so_once_there_is_room() {
        let room = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (open, lines) = (room.clone(), seen.clone());
        let sink = bounded_sink(move |level, line| {
            let fits = open.load(std::sync::atomic::Ordering::SeqCst);
            if fits {
                lines.lock().unwrap().push((level, line));
            }
            fits
        });
        sink(Level::Info, "lost 1");
        sink(Level::Info, "lost 2");
        room.store(true, std::sync::atomic::Ordering::SeqCst);
        sink(Level::Info, "kept");
        assert_eq!(
            *seen.lock().unwrap(),
            [
                (
                    Level::Warning,
                    "2 log line(s) dropped: the logger did not keep up".to_string()
                ),
                (Level::Info, "kept".to_string())
            ]
        );
    }
}
