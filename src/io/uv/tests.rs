//! `uv` against a fake libuv that keeps the real one's rules: handles are
//! initialised into memory the caller provides, libuv writes into that
//! memory, close callbacks come later (on a later turn of the loop), and a
//! descriptor must leave the poll before it is closed. Run under Miri
//! (`cargo +nightly miri test uv::`) these check the aliasing and memory
//! rules of the unsafe code too; what they cannot reach is Node's libuv
//! itself, which the Jest suites exercise.

use super::fake::*;
use super::*;
use std::cell::RefCell;
use std::rc::Rc;

/// Stands for the socket the callback owns: records when it closes, and
/// that its poll was no longer watching it by then.
struct Socket {
    closed: Rc<Cell<bool>>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        assert!(!poll_active(), "the socket closed while its poll was active");
        assert!(poll_closing(), "the socket closed before uv_close of its poll");
        self.closed.set(true);
    }
}

fn socket() -> (Socket, Rc<Cell<bool>>) {
    let closed = Rc::new(Cell::new(false));
    (Socket { closed: closed.clone() }, closed)
}

#[test]
fn a_watch_calls_back_whenever_the_socket_is_ready_and_keeps_polling() {
    reset();
    let calls = Rc::new(Cell::new(0));
    let seen = calls.clone();
    let watch = Watch::start(&FAKE, LOOP_PTR, SOCKET, move |readiness| {
        assert!(matches!(readiness, Readiness::Ready));
        seen.set(seen.get() + 1);
        Then::Wait
    })
    .unwrap();
    assert!(fire_poll(0));
    assert!(fire_poll(0));
    assert_eq!(calls.get(), 2);
    assert!(poll_active());
    drop(watch);
    assert_eq!(run_closes(), 2, "the poll and the timer close");
}

#[test]
fn dropping_a_watch_closes_its_poll_before_its_socket() {
    reset();
    let (socket, closed) = socket();
    let watch = Watch::start(&FAKE, LOOP_PTR, SOCKET, move |_| {
        let _owned = &socket;
        Then::Wait
    })
    .unwrap();
    drop(watch);
    assert!(closed.get(), "the callback and its socket go with the watch");
    assert_eq!(run_closes(), 2);
}

#[test]
fn a_watch_closed_from_inside_its_callback_finishes_the_call_then_lets_go() {
    reset();
    let (socket, closed) = socket();
    let slot: Rc<RefCell<Option<Watch>>> = Rc::new(RefCell::new(None));
    let own = slot.clone();
    let closed_inside = closed.clone();
    let watch = Watch::start(&FAKE, LOOP_PTR, SOCKET, move |_| {
        let _owned = &socket;
        // What JS calling close() from the shutdown callback does.
        drop(own.borrow_mut().take());
        assert!(!closed_inside.get(), "the running callback still owns its socket");
        Then::After(Duration::from_millis(5))
    })
    .unwrap();
    *slot.borrow_mut() = Some(watch);
    assert!(fire_poll(0));
    assert!(closed.get(), "dropped once it returned");
    assert!(fire_timer().is_none(), "a closed watch starts no timer");
    assert_eq!(run_closes(), 2);
}

#[test]
fn a_pause_stops_polling_until_the_timer_restarts_it() {
    reset();
    let calls = Rc::new(Cell::new(0));
    let seen = calls.clone();
    let watch = Watch::start(&FAKE, LOOP_PTR, SOCKET, move |_| {
        seen.set(seen.get() + 1);
        if seen.get() == 1 {
            Then::After(Duration::from_millis(30))
        } else {
            Then::Wait
        }
    })
    .unwrap();
    assert!(fire_poll(0));
    assert!(!poll_active(), "paused");
    assert_eq!(fire_timer(), Some(30));
    assert_eq!(calls.get(), 2, "the timer reads what piled up");
    assert!(poll_active(), "polling again");
    drop(watch);
    run_closes();
}

#[test]
fn a_poll_error_is_reported_and_polling_restarts() {
    reset();
    let errors = Rc::new(Cell::new(0));
    let seen = errors.clone();
    let watch = Watch::start(&FAKE, LOOP_PTR, SOCKET, move |readiness| {
        if let Readiness::Failed(e) = readiness {
            assert!(e.to_string().contains("fake error"));
            seen.set(seen.get() + 1);
        }
        Then::Wait
    })
    .unwrap();
    let starts = with_loop(|l| l.poll_starts);
    // libuv stops a poll that reports an error.
    with_loop(|l| l.handles.iter_mut().for_each(|h| h.active = h.kind != Kind::Poll));
    let handle = with_loop(|l| {
        let h = l.handles.iter().find(|h| h.kind == Kind::Poll).unwrap();
        (h.handle, h.poll_callback.unwrap())
    });
    // SAFETY: the open poll handle, called as libuv calls it on an error.
    unsafe { (handle.1)(handle.0, -9, 0) };
    assert_eq!(errors.get(), 1);
    assert_eq!(fire_timer(), Some(RETRY_PAUSE.as_millis() as u64));
    assert_eq!(with_loop(|l| l.poll_starts), starts + 1, "restarted");
    assert!(poll_active());
    drop(watch);
    run_closes();
}

#[test]
fn a_poll_that_cannot_restart_is_reported_and_retried() {
    reset();
    let errors = Rc::new(Cell::new(0));
    let seen = errors.clone();
    let paused = Cell::new(false);
    let watch = Watch::start(&FAKE, LOOP_PTR, SOCKET, move |readiness| {
        if let Readiness::Failed(_) = readiness {
            seen.set(seen.get() + 1);
            return Then::Wait;
        }
        // One pause, then plain waiting.
        match paused.replace(true) {
            false => Then::After(Duration::from_millis(2)),
            true => Then::Wait,
        }
    })
    .unwrap();
    assert!(fire_poll(0));
    with_loop(|l| l.fail_poll_start = Some(-22));
    assert_eq!(fire_timer(), Some(2));
    assert_eq!(errors.get(), 1, "the failed restart is told");
    assert!(!poll_active());
    assert_eq!(fire_timer(), Some(RETRY_PAUSE.as_millis() as u64), "and tried again");
    assert!(poll_active());
    drop(watch);
    run_closes();
}

#[test]
fn a_timer_that_cannot_start_is_told_to_the_callback() {
    reset();
    let errors = Rc::new(Cell::new(0));
    let seen = errors.clone();
    let watch = Watch::start(&FAKE, LOOP_PTR, SOCKET, move |readiness| match readiness {
        Readiness::Failed(_) => {
            seen.set(seen.get() + 1);
            Then::Wait
        }
        Readiness::Ready => Then::After(Duration::from_millis(1)),
    })
    .unwrap();
    with_loop(|l| l.fail_timer_start = Some(-12));
    assert!(fire_poll(0));
    assert_eq!(errors.get(), 1);
    drop(watch);
    run_closes();
}

#[test]
fn a_ticker_ticks_until_told_to_stop_and_ends() {
    reset();
    let mut delays = vec![Some(Duration::from_millis(20)), None].into_iter();
    let ticks = Rc::new(Cell::new(0));
    let seen = ticks.clone();
    let ticker = Ticker::start(&FAKE, LOOP_PTR, Duration::ZERO, move || {
        seen.set(seen.get() + 1);
        delays.next().flatten()
    })
    .unwrap();
    assert_eq!(fire_timer(), Some(1), "a zero delay is one millisecond");
    assert_eq!(fire_timer(), Some(20));
    assert_eq!(fire_timer(), None, "stopped");
    assert_eq!(ticks.get(), 2);
    drop(ticker);
    assert_eq!(run_closes(), 1);
}

#[test]
fn a_handle_that_cannot_be_made_leaves_nothing_behind() {
    reset();
    let (socket, closed) = socket_without_poll_checks();
    with_loop(|l| l.fail_timer_init = Some(-24));
    let result = Watch::start(&FAKE, LOOP_PTR, SOCKET, move |_| {
        let _owned = &socket;
        Then::Wait
    });
    assert!(result.is_err());
    assert!(closed.get());
    assert_eq!(run_closes(), 0, "nothing was initialised, so nothing to close");
}

/// A socket for a watch that never got a poll.
fn socket_without_poll_checks() -> (impl Drop, Rc<Cell<bool>>) {
    struct Plain(Rc<Cell<bool>>);
    impl Drop for Plain {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let closed = Rc::new(Cell::new(false));
    (Plain(closed.clone()), closed)
}

#[test]
fn a_poll_that_cannot_start_closes_what_was_made() {
    reset();
    with_loop(|l| l.fail_poll_start = Some(-22));
    let result = Watch::start(&FAKE, LOOP_PTR, SOCKET, |_| Then::Wait);
    assert!(result.is_err());
    assert_eq!(run_closes(), 2);
}
