//! Syslog severities: the levels of log lines and of the `logLevel` option.

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
