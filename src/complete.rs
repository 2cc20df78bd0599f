//! The handover-complete file: the signal that tells the supervisor to kill
//! the old instance. Written atomically (a temporary file in the same folder,
//! then a rename), so the supervisor never sees a half-written file. No
//! fsync: the file only has to be visible, not to survive a power cut, and
//! an fsync can stall the handover for milliseconds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::{CompletePath, LEGACY_COMPLETE_PATH};

/// Writes the file and returns where; the error names the path and the OS error.
pub fn write(complete_path: &CompletePath, now: SystemTime) -> Result<PathBuf, String> {
    let path = complete_path.choose(Path::is_dir).ok_or_else(|| {
        let folder = complete_path
            .path
            .parent()
            .unwrap_or(Path::new("/"))
            .display()
            .to_string();
        if complete_path.legacy_fallback {
            format!(
                "cannot write {}: folder {folder} does not exist, nor does the legacy {}'s",
                complete_path.path.display(),
                LEGACY_COMPLETE_PATH
            )
        } else {
            format!(
                "cannot write {}: folder {folder} does not exist",
                complete_path.path.display()
            )
        }
    })?;
    let content = format!("Shutting down at {}", js_date_string(now));
    write_atomically(&path, content.as_bytes())
        .map(|()| path.clone())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::File::create(&temporary)
        .and_then(|mut file| file.write_all(content))
        .and_then(|()| std::fs::rename(&temporary, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// The shape of JavaScript's `Date#toString` in UTC, which the original writes.
pub fn js_date_string(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let iso = crate::log::iso_time(time); // YYYY-MM-DDTHH:MM:SS.mmmZ
    let secs = match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    };
    let weekday = DAYS[secs.div_euclid(86_400).rem_euclid(7) as usize];
    let month: usize = iso[5..7].parse().unwrap_or(1);
    format!(
        "{weekday} {} {} {} {} GMT+0000 (Coordinated Universal Time)",
        MONTHS[month - 1],
        &iso[8..10],
        &iso[0..4],
        &iso[11..19]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn date_string_matches_javascript_in_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        assert_eq!(
            js_date_string(t),
            "Tue Nov 14 2023 22:13:20 GMT+0000 (Coordinated Universal Time)"
        );
    }

    #[test]
    fn writes_atomically_and_reports_missing_folders() {
        let dir = std::env::temp_dir().join(format!("handover-complete-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = CompletePath {
            path: dir.join("handover-complete"),
            legacy_fallback: false,
        };
        let written = write(&target, SystemTime::now()).unwrap();
        assert_eq!(written, target.path);
        let content = std::fs::read_to_string(&written).unwrap();
        assert!(content.starts_with("Shutting down at "));
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left behind"
        );

        let missing = CompletePath {
            path: dir.join("nope/handover-complete"),
            legacy_fallback: false,
        };
        let error = write(&missing, SystemTime::now()).unwrap_err();
        assert!(error.contains("nope") && error.contains("does not exist"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
