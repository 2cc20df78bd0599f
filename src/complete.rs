//! The handover-complete file: the signal that tells the supervisor to kill
//! the old instance. Written atomically (a temporary file in the same folder,
//! then a rename), so the supervisor never sees a half-written file. No
//! fsync: the file only has to be visible, not to survive a power cut, and
//! an fsync can stall the handover for milliseconds.
//!
//! When the path is a symbolic link, the file is written where the link
//! points (the temporary file next to the target, renamed onto it), and the
//! link stays: the original writes through links, and whoever made the link
//! watches its target.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::{folder_of, CompletePath, LEGACY_COMPLETE_PATH};

/// Links followed before giving up, as the kernel does (`ELOOP`).
const MAX_LINKS: usize = 40;

/// Writes the file and returns where; the error names the path and the OS error.
pub fn write(complete_path: &CompletePath, now: SystemTime) -> Result<PathBuf, String> {
    let path = complete_path.choose(Path::is_dir).ok_or_else(|| {
        let folder = folder_of(&complete_path.path)
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
    let target = through_links(&path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    write_atomically(&target, content.as_bytes())
        .map(|()| path.clone())
        .map_err(|e| match target == path {
            true => format!("cannot write {}: {e}", path.display()),
            false => format!("cannot write {} (a link to {}): {e}", path.display(), target.display()),
        })
}

/// The file a path names once symbolic links are followed; the path itself
/// when it is no link (or does not exist yet). A dangling link gives its
/// target, which the write then creates, as writing through the link would.
fn through_links(path: &Path) -> io::Result<PathBuf> {
    let mut path = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&path)?;
                // A relative target is relative to the link's folder.
                path = match folder_of(&path) {
                    Some(folder) if target.is_relative() => folder.join(target),
                    _ => target,
                };
            }
            _ => return Ok(path),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
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

    #[cfg(unix)]
    #[test]
    fn a_symlinked_path_is_written_through_and_the_link_stays() {
        use std::os::unix::fs::symlink;
        let dir = std::env::temp_dir().join(format!("handover-complete-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("watched")).unwrap();
        std::fs::create_dir_all(dir.join("links")).unwrap();
        // links/done -> links/hop (absolute) -> ../watched/complete (relative to links/)
        symlink("../watched/complete", dir.join("links/hop")).unwrap();
        symlink(dir.join("links/hop"), dir.join("links/done")).unwrap();
        let link = CompletePath {
            path: dir.join("links/done"),
            legacy_fallback: false,
        };
        // Dangling at first: the write creates the target.
        assert_eq!(write(&link, SystemTime::now()).unwrap(), link.path);
        for _ in 0..2 {
            let link_meta = std::fs::symlink_metadata(&link.path).unwrap();
            assert!(link_meta.file_type().is_symlink(), "the link was replaced");
            let content = std::fs::read_to_string(dir.join("watched/complete")).unwrap();
            assert!(content.starts_with("Shutting down at "), "{content}");
            let names = |sub: &str| {
                let mut names: Vec<String> = std::fs::read_dir(dir.join(sub))
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                names
            };
            assert_eq!(
                names("watched"),
                ["complete"],
                "no temporary file left next to the target"
            );
            assert_eq!(names("links"), ["done", "hop"]);
            // A second write replaces the existing target, through the link again.
            write(&link, SystemTime::now()).unwrap();
        }

        symlink("loop-b", dir.join("links/loop-a")).unwrap();
        symlink("loop-a", dir.join("links/loop-b")).unwrap();
        let looping = CompletePath {
            path: dir.join("links/loop-a"),
            legacy_fallback: false,
        };
        let error = write(&looping, SystemTime::now()).unwrap_err();
        assert!(error.contains("loop-a") && error.contains("symbolic links"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn relative_paths_are_written_relative_to_the_working_directory() {
        // The tests run in the crate's folder: write under target/ rather
        // than leave a bare name there (`config` and the Jest suite cover a
        // bare name).
        let name = format!("target/handover-relative-{}", std::process::id());
        std::fs::create_dir_all("target").unwrap();
        let relative = CompletePath {
            path: name.clone().into(),
            legacy_fallback: false,
        };
        assert_eq!(write(&relative, SystemTime::now()).unwrap(), PathBuf::from(&name));
        assert!(std::fs::read_to_string(&name).unwrap().starts_with("Shutting down at "));
        std::fs::remove_file(&name).unwrap();

        let missing = CompletePath {
            path: "no-such-folder-here/done".into(),
            legacy_fallback: false,
        };
        let error = write(&missing, SystemTime::now()).unwrap_err();
        assert!(error.contains("folder no-such-folder-here does not exist"), "{error}");
    }
}
