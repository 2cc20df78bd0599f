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
//!
//! Only a regular file (or nothing) is replaced. On Unix, whatever else is
//! at the path, once links are followed, is never renamed over nor deleted:
//!
//! - a character device (`/dev/null`) or a FIFO is written *into*, as the
//!   original's `fs.writeFile` does, but without ever blocking: a FIFO that
//!   nothing reads, or a device or FIFO that cannot take the bytes at once,
//!   is an error in the report instead of a handover that hangs;
//! - a directory, a socket or a block device is refused, with an error
//!   naming the path and what is there. The original fails on a directory
//!   and a socket too, but writes into a block device: over the first bytes
//!   of a disk, should the path name one.
//!
//! Elsewhere (Windows) the path is written atomically as before.

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
    write_to(&target, content.as_bytes())
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

/// Writes `content` to `target`, a path with no link left to follow:
/// atomically when it is a regular file or missing, into it or not at all
/// otherwise (see the module's comment).
fn write_to(target: &Path, content: &[u8]) -> io::Result<()> {
    #[cfg(unix)]
    if let Some(kind) = special::kind_at(target)? {
        return special::write_into(target, kind, content);
    }
    // What is checked above may still be swapped for something else before
    // the rename below: rename(2) has no "only over a regular file" flag.
    // That takes someone making device nodes or FIFOs in this very folder at
    // this very moment; what is there to begin with is never replaced.
    write_atomically(target, content)
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

/// Whatever is not a regular file, on Unix.
#[cfg(unix)]
mod special {
    use std::fs::{FileType, OpenOptions};
    use std::io::{self, Write};
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    use std::path::Path;

    /// What is at a path, when it is neither missing nor a regular file.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Kind {
        CharacterDevice,
        Fifo,
        Directory,
        Socket,
        BlockDevice,
        /// A type this code does not know.
        Other,
    }

    impl Kind {
        /// `None` for a regular file.
        pub fn of(file_type: FileType) -> Option<Kind> {
            Some(match file_type {
                t if t.is_file() => return None,
                t if t.is_char_device() => Kind::CharacterDevice,
                t if t.is_fifo() => Kind::Fifo,
                t if t.is_dir() => Kind::Directory,
                t if t.is_socket() => Kind::Socket,
                t if t.is_block_device() => Kind::BlockDevice,
                _ => Kind::Other,
            })
        }

        fn name(self) -> &'static str {
            match self {
                Kind::CharacterDevice => "a character device",
                Kind::Fifo => "a FIFO",
                Kind::Directory => "a directory",
                Kind::Socket => "a socket",
                Kind::BlockDevice => "a block device",
                Kind::Other => "not a regular file",
            }
        }

        /// Character devices and FIFOs are written into, as the original
        /// does; everything else that is not a regular file is refused.
        fn written_into(self) -> bool {
            matches!(self, Kind::CharacterDevice | Kind::Fifo)
        }
    }

    /// What is at `path`, links followed (`stat`, not `lstat`: what the
    /// write would reach); `None` when nothing is there or a regular file
    /// is (either is replaced atomically).
    pub fn kind_at(path: &Path) -> io::Result<Option<Kind>> {
        match std::fs::metadata(path) {
            Ok(meta) => Ok(Kind::of(meta.file_type())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes into a character device or a FIFO without blocking; refuses
    /// every other kind.
    pub fn write_into(path: &Path, kind: Kind, content: &[u8]) -> io::Result<()> {
        if !kind.written_into() {
            return Err(io::Error::other(format!(
                "refused: it is {}, and only a regular file is replaced (a character device or a FIFO is written into)",
                kind.name()
            )));
        }
        let said = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
        // Neither O_CREAT nor O_TRUNC: should what was found be removed or
        // swapped after the check above, this fails, or finds the new thing
        // (checked again below), instead of creating a file where a device
        // was or emptying someone's file. O_NONBLOCK: a FIFO with no reader
        // fails at once (ENXIO) instead of waiting for one, and no write
        // below waits for room. O_NOCTTY: a terminal does not become ours.
        let mut file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| match (kind, e.raw_os_error()) {
                (Kind::Fifo, Some(libc::ENXIO)) => said("it is a FIFO and nothing reads it", e),
                _ => said(&format!("it is {}", kind.name()), e),
            })?;
        let opened = Kind::of(file.metadata()?.file_type());
        if opened != Some(kind) {
            return Err(io::Error::other(format!(
                "it was {} but became {} before it was opened; nothing written",
                kind.name(),
                opened.map_or("a regular file", Kind::name)
            )));
        }
        file.write_all(content).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => said(&format!("it is {} that cannot take it without waiting", kind.name()), e),
            _ => said(&format!("it is {}", kind.name()), e),
        })
    }
}

/// The shape of JavaScript's `Date#toString` in UTC, which the original writes.
pub fn js_date_string(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let iso = crate::io::log::iso_time(time); // YYYY-MM-DDTHH:MM:SS.mmmZ
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

    /// What is not a regular file: written into, or refused, and never replaced.
    #[cfg(unix)]
    mod special_files {
        use super::*;

        /// A folder of the test's own, removed on drop.
        struct Scratch(PathBuf);

        impl Scratch {
            fn new(name: &str) -> Self {
                let path = std::env::temp_dir().join(format!("handover-complete-{name}-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&path);
                std::fs::create_dir_all(&path).unwrap();
                Scratch(path)
            }

            fn names(&self) -> Vec<String> {
                let mut names: Vec<String> = std::fs::read_dir(&self.0)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                names
            }
        }

        impl Drop for Scratch {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }

        fn at(path: &Path) -> CompletePath {
            CompletePath {
                path: path.to_path_buf(),
                legacy_fallback: false,
            }
        }

        fn c_path(path: &Path) -> std::ffi::CString {
            use std::os::unix::ffi::OsStrExt;
            std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap()
        }

        fn mkfifo(path: &Path) {
            // SAFETY: a NUL-terminated path that lives through the call.
            let made = unsafe { libc::mkfifo(c_path(path).as_ptr(), 0o600) };
            assert_eq!(made, 0, "mkfifo {}: {}", path.display(), io::Error::last_os_error());
        }

        /// The read end of a FIFO, opened without waiting for a writer.
        fn reader_of(fifo: &Path) -> std::fs::File {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(fifo)
                .unwrap()
        }

        /// Everything a FIFO's reader can read now.
        fn drain(reader: &mut std::fs::File) -> String {
            use std::io::Read;
            let mut buffer = [0u8; 4096];
            match reader.read(&mut buffer) {
                Ok(n) => String::from_utf8_lossy(&buffer[..n]).into_owned(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => String::new(),
                Err(e) => panic!("reading the FIFO: {e}"),
            }
        }

        /// `write`, failing the test instead of hanging when it blocks.
        fn write_within_5s(path: &Path) -> Result<PathBuf, String> {
            let (done, outcome) = std::sync::mpsc::channel();
            let target = at(path);
            std::thread::spawn(move || done.send(write(&target, SystemTime::now())));
            outcome
                .recv_timeout(Duration::from_secs(5))
                .unwrap_or_else(|_| panic!("writing {} blocked", path.display()))
        }

        fn file_type(path: &Path) -> std::fs::FileType {
            std::fs::symlink_metadata(path).unwrap().file_type()
        }

        #[test]
        fn a_fifo_with_a_reader_gets_the_content_and_stays_a_fifo() {
            use std::os::unix::fs::FileTypeExt;
            let dir = Scratch::new("fifo-read");
            let fifo = dir.0.join("complete");
            mkfifo(&fifo);
            let mut reader = reader_of(&fifo);
            assert_eq!(write_within_5s(&fifo).unwrap(), fifo);
            assert!(file_type(&fifo).is_fifo(), "the FIFO was replaced");
            let content = drain(&mut reader);
            assert!(content.starts_with("Shutting down at "), "{content:?}");
            assert_eq!(dir.names(), ["complete"], "no temporary file left behind");
        }

        #[test]
        fn a_fifo_nothing_reads_fails_at_once_and_stays_a_fifo() {
            use std::os::unix::fs::FileTypeExt;
            let dir = Scratch::new("fifo-alone");
            let fifo = dir.0.join("complete");
            mkfifo(&fifo);
            let error = write_within_5s(&fifo).unwrap_err();
            assert!(
                error.starts_with(&format!("cannot write {}: ", fifo.display())),
                "{error}"
            );
            assert!(error.contains("it is a FIFO and nothing reads it"), "{error}");
            assert!(file_type(&fifo).is_fifo(), "the FIFO was replaced");
            assert_eq!(dir.names(), ["complete"], "no temporary file left behind");
        }

        #[test]
        fn a_full_fifo_fails_without_waiting_for_room() {
            use std::os::unix::fs::OpenOptionsExt;
            let dir = Scratch::new("fifo-full");
            let fifo = dir.0.join("complete");
            mkfifo(&fifo);
            let _reader = reader_of(&fifo); // never reads
            let mut filler = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
                .unwrap();
            let chunk = [b'x'; 4096];
            while filler.write(&chunk).is_ok() {}
            let error = write_within_5s(&fifo).unwrap_err();
            assert!(
                error.contains("it is a FIFO that cannot take it without waiting"),
                "{error}"
            );
        }

        #[test]
        fn a_symlink_to_a_fifo_writes_into_the_fifo_and_both_stay() {
            use std::os::unix::fs::{symlink, FileTypeExt};
            let dir = Scratch::new("fifo-link");
            let fifo = dir.0.join("fifo");
            mkfifo(&fifo);
            let link = dir.0.join("complete");
            symlink("fifo", &link).unwrap();
            let mut reader = reader_of(&fifo);
            assert_eq!(write_within_5s(&link).unwrap(), link);
            assert!(file_type(&link).is_symlink(), "the link was replaced");
            assert!(file_type(&fifo).is_fifo(), "the FIFO was replaced");
            assert!(drain(&mut reader).starts_with("Shutting down at "));
            assert_eq!(dir.names(), ["complete", "fifo"]);

            drop(reader);
            let error = write_within_5s(&link).unwrap_err();
            assert!(
                error.contains(&format!("(a link to {})", fifo.display())) && error.contains("nothing reads it"),
                "{error}"
            );
            assert!(file_type(&fifo).is_fifo(), "the FIFO was replaced");
        }

        #[test]
        fn a_directory_at_the_path_is_refused_and_left_alone() {
            let dir = Scratch::new("directory");
            let folder = dir.0.join("complete");
            std::fs::create_dir(&folder).unwrap();
            std::fs::write(folder.join("inside"), "kept").unwrap();
            let error = write_within_5s(&folder).unwrap_err();
            assert_eq!(
                error,
                format!(
                    "cannot write {}: refused: it is a directory, and only a regular file is replaced \
                     (a character device or a FIFO is written into)",
                    folder.display()
                )
            );
            assert!(file_type(&folder).is_dir());
            assert_eq!(std::fs::read_to_string(folder.join("inside")).unwrap(), "kept");
            assert_eq!(dir.names(), ["complete"], "no temporary file left behind");
        }

        #[test]
        fn a_socket_at_the_path_is_refused_and_left_alone() {
            use std::os::unix::fs::FileTypeExt;
            let dir = Scratch::new("socket");
            let socket = dir.0.join("complete");
            let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
            let error = write_within_5s(&socket).unwrap_err();
            assert!(
                error.starts_with(&format!("cannot write {}: refused: it is a socket", socket.display())),
                "{error}"
            );
            assert!(file_type(&socket).is_socket());
            assert_eq!(dir.names(), ["complete"]);
        }

        /// Needs CAP_MKNOD (root); says so and passes without it. The device
        /// number names no device, so even a broken refusal writes nowhere.
        #[test]
        fn a_block_device_at_the_path_is_refused_and_left_alone() {
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            let dir = Scratch::new("block");
            let device = dir.0.join("complete");
            // SAFETY: a NUL-terminated path that lives through the call.
            let made = unsafe { libc::mknod(c_path(&device).as_ptr(), libc::S_IFBLK | 0o600, 0) };
            if made != 0 {
                eprintln!("skipped: mknod of a block device: {}", io::Error::last_os_error());
                return;
            }
            let error = write_within_5s(&device).unwrap_err();
            assert!(
                error.starts_with(&format!(
                    "cannot write {}: refused: it is a block device",
                    device.display()
                )),
                "{error}"
            );
            let meta = std::fs::symlink_metadata(&device).unwrap();
            assert!(meta.file_type().is_block_device() && meta.rdev() == 0);
            assert_eq!(dir.names(), ["complete"]);
        }

        /// Writing into /dev/null is harmless; replacing it is not, so a FIFO
        /// is checked first: were special files replaced again, this test
        /// fails there, before it touches /dev/null.
        #[test]
        fn dev_null_is_written_into_and_stays_a_character_device() {
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            let null = Path::new("/dev/null");
            let Ok(before) = std::fs::symlink_metadata(null) else {
                eprintln!("skipped: no /dev/null here");
                return;
            };
            assert!(
                before.file_type().is_char_device(),
                "/dev/null is not a character device to begin with"
            );

            let dir = Scratch::new("dev-null-canary");
            let fifo = dir.0.join("canary");
            mkfifo(&fifo);
            let _reader = reader_of(&fifo);
            write_within_5s(&fifo).unwrap();
            assert!(file_type(&fifo).is_fifo(), "a FIFO was replaced: not trying /dev/null");
            assert_eq!(special::kind_at(null).unwrap(), Some(special::Kind::CharacterDevice));

            assert_eq!(write_within_5s(null).unwrap(), null);
            let after = std::fs::symlink_metadata(null).unwrap();
            assert!(after.file_type().is_char_device(), "/dev/null was replaced");
            assert_eq!((after.ino(), after.rdev()), (before.ino(), before.rdev()));
        }
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
