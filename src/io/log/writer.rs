//! The one place that writes log lines to stdout, and never from a thread
//! that does real work.
//!
//! A stdout pipe whose reader stalls (a log shipper, `node app | slow`)
//! blocks `write(2)` once the pipe is full. So the threads that log (the JS
//! thread, the runtime's worker) only queue the line, without waiting; a
//! thread of its own, started with the first line, does the writing. When
//! the queue is full the line is dropped and counted, and once the writer
//! has caught up it reports how many were lost. At process exit the writer
//! gets a short grace period to finish what is queued.

#[cfg(not(unix))]
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use super::line::{dropped_lines, iso_time, Line};

/// Lines that may wait for a stalled stdout (about 150 KiB of typical lines).
const QUEUE_LINES: usize = 1024;
/// How long the writer waits after being woken before it writes, and then
/// between looks at the queue while lines keep coming.
const WRITE_DELAY: Duration = Duration::from_millis(2);
/// How long the writer keeps looking after the last line before it blocks
/// again (and the next line has to wake it): at most 50 short wake-ups.
const LINGER: Duration = Duration::from_millis(100);

/// Where queued lines go; `None` when the writer thread could not start.
static QUEUE: OnceLock<Option<SyncSender<Line>>> = OnceLock::new();
/// Lines queued and not yet written.
static PENDING: AtomicUsize = AtomicUsize::new(0);
/// Lines dropped since the last report.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Queues one line for stdout. Never blocks.
pub fn write_line(line: Line) {
    let Some(queue) = QUEUE.get_or_init(start) else {
        return dropped();
    };
    PENDING.fetch_add(1, Ordering::SeqCst);
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = queue.try_send(line) {
        PENDING.fetch_sub(1, Ordering::SeqCst);
        dropped();
    }
}

fn dropped() {
    DROPPED.fetch_add(1, Ordering::Relaxed);
}

fn start() -> Option<SyncSender<Line>> {
    let (queue, lines) = sync_channel::<Line>(QUEUE_LINES);
    let spawned = std::thread::Builder::new()
        .name("handover-log".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            run_only_when_idle();
            while let Ok(first) = lines.recv() {
                let mut woken_by = Some(first);
                let mut quiet = Duration::ZERO;
                // Woken by a line: let the moment pass (a handover logs several
                // lines while its callback is being run) and write them together,
                // rather than competing for the CPU line by line. Then keep
                // looking for a while: a line queued while this thread is not
                // blocked in `recv` costs the thread that logs no wake-up
                // (a handover's lines come in bursts, and the first of the
                // next burst is often on the handover path).
                while quiet < LINGER {
                    std::thread::sleep(WRITE_DELAY);
                    let mut wrote = false;
                    for line in woken_by.take().into_iter().chain(lines.try_iter()) {
                        // An error (stdout closed) loses the line, as console.log would.
                        let _ = write_all(line.render().as_bytes());
                        wrote = true;
                        if PENDING.fetch_sub(1, Ordering::SeqCst) == 1 {
                            report_losses();
                        }
                    }
                    quiet = if wrote { Duration::ZERO } else { quiet + WRITE_DELAY };
                }
            }
        });
    if spawned.is_err() {
        return None;
    }
    register_exit_grace();
    Some(queue)
}

/// Lowers the writer thread to the idle scheduling class: logging then never
/// takes a CPU from the JS thread or the runtime in the middle of a
/// handover, and still runs whenever a CPU is free. (Lowering is always
/// allowed; where it is not available the writer keeps normal priority.)
#[cfg(target_os = "linux")]
fn run_only_when_idle() {
    // The system call, not libc's wrapper: musl's wrapper refuses to act on
    // one thread. SAFETY: all-zero is a valid `sched_param` (priority 0, as
    // SCHED_IDLE requires); 0 is the calling thread; `param` outlives the call.
    unsafe {
        let param: libc::sched_param = std::mem::zeroed();
        libc::syscall(
            libc::SYS_sched_setscheduler,
            0,
            libc::SCHED_IDLE,
            &param as *const libc::sched_param,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn run_only_when_idle() {}

/// Once the queue has drained, one line saying how many lines were lost.
fn report_losses() {
    let lost = DROPPED.swap(0, Ordering::Relaxed);
    if lost > 0 {
        let line = format!(
            "{} [handover] [warning] [handover]: {}\n",
            iso_time(SystemTime::now()),
            dropped_lines(lost, "stdout")
        );
        let _ = write_all(line.as_bytes());
    }
}

/// Writes straight to descriptor 1, past Rust's stdout buffer. Node makes a
/// stdout pipe non-blocking once `process.stdout` is used: a full pipe then
/// answers `WouldBlock`, and this thread waits until it can write again.
#[cfg(unix)]
fn write_all(mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: writes from a live slice to descriptor 1, which this process keeps open.
        let written = unsafe { libc::write(1, bytes.as_ptr().cast(), bytes.len()) };
        if written >= 0 {
            bytes = &bytes[written as usize..];
            continue;
        }
        let error = std::io::Error::last_os_error();
        match error.kind() {
            std::io::ErrorKind::Interrupted => {}
            std::io::ErrorKind::WouldBlock => {
                let mut ready = libc::pollfd {
                    fd: 1,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one pollfd that lives across the call.
                unsafe { libc::poll(&mut ready, 1, -1) };
            }
            _ => return Err(error),
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn write_all(bytes: &[u8]) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes).and_then(|()| stdout.flush())
}

/// Waits, up to `grace`, until every queued line was written.
pub fn flush(grace: Duration) {
    let deadline = Instant::now() + grace;
    while PENDING.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(unix)]
fn register_exit_grace() {
    /// How long process exit waits for queued lines to be written.
    const EXIT_GRACE: Duration = Duration::from_millis(100);
    extern "C" fn at_exit() {
        flush(EXIT_GRACE);
    }
    // SAFETY: `at_exit` is a plain function that stays valid for the life of the process.
    unsafe {
        libc::atexit(at_exit);
    }
}

/// Windows builds link no CRT `atexit`: lines still queued at exit may be lost there.
#[cfg(not(unix))]
fn register_exit_grace() {}
