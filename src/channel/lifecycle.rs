//! How objects end: closing a peer or status channel from outside its
//! owner (a weak handle that does not keep the object alive), and the
//! registry of what one JS environment still has open, so that its
//! teardown (a worker thread ending) leaves no socket running and no libuv
//! handle on a loop that is going away.
//!
//! The registry also owns what each object runs on the JS thread's loop
//! (`HostLoop`): its listener's watch and its tickers, which only that
//! thread may touch.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use napi::sys::uv_loop_s;

use crate::channel::ChannelError;
use crate::io::uv::{self, Ticker};

/// What a channel does when it is closed: stop its tasks and release its sockets.
pub trait Closable: Send + Sync {
    fn close(&self);

    /// The JS environment that owns it ended: close, and give up on
    /// anything that waits for JS (a peer's handover awaiting its callback).
    fn environment_ended(&self) {
        self.close();
    }
}

/// A weak reference to something closable.
pub struct CloseHandle(Weak<dyn Closable>);

impl CloseHandle {
    pub fn new<T: Closable + 'static>(target: &Arc<T>) -> Self {
        let weak: Weak<dyn Closable> = Arc::downgrade(target) as Weak<dyn Closable>;
        CloseHandle(weak)
    }

    /// False once the object is gone; such a handle can be forgotten.
    pub fn alive(&self) -> bool {
        self.0.strong_count() > 0
    }

    pub fn close(&self) {
        if let Some(target) = self.0.upgrade() {
            target.close();
        }
    }

    /// See `Closable::environment_ended`.
    pub fn environment_ended(&self) {
        if let Some(target) = self.0.upgrade() {
            target.environment_ended();
        }
    }
}

/// What an object runs on its JS thread's loop, by purpose: one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The peer's listener (a watch).
    Listener,
    /// The peer's announcement schedule.
    Announcements,
    /// The status channel's UP ticker.
    Up,
    /// The status channel's DOWN ticker.
    Down,
}

/// A watch or a ticker; stopped when dropped.
pub type LoopHandle = Box<dyn Any>;

/// The objects of one JS environment that are not closed yet.
///
/// Behind a `RefCell` that no borrow outlives a call of these methods:
/// what they take out (a handle, a closed object) is returned for the
/// caller to drop, after the borrow, so that dropping it (closing a handle,
/// dropping JS references) can never run inside one. A borrow that overlaps
/// another anyway (a bug) is `ChannelError::Reentrant`, not aliasing.
#[derive(Clone, Default)]
pub struct Registry(Rc<RefCell<Objects>>);

#[derive(Default)]
struct Objects {
    next_key: u64,
    open: HashMap<u64, Open>,
}

struct Open {
    handle: CloseHandle,
    on_loop: HashMap<Slot, LoopHandle>,
}

/// What the registry gave back, to be dropped after it let go.
#[must_use = "dropping it stops what it holds; do so once the call returned"]
#[derive(Default)]
pub struct Released(#[allow(dead_code)] Vec<LoopHandle>);

impl Registry {
    fn with<R>(&self, f: impl FnOnce(&mut Objects) -> R) -> Result<R, ChannelError> {
        let mut objects = self.0.try_borrow_mut().map_err(|_| ChannelError::Reentrant)?;
        Ok(f(&mut objects))
    }

    /// Registers an object; its key is what the other calls take.
    pub fn add(&self, handle: CloseHandle) -> Result<u64, ChannelError> {
        self.with(|objects| {
            // Objects that were collected without close() are gone: forget them.
            objects.open.retain(|_, open| open.handle.alive());
            objects.next_key += 1;
            let open = Open {
                handle,
                on_loop: HashMap::new(),
            };
            objects.open.insert(objects.next_key, open);
            objects.next_key
        })
    }

    /// Puts `handle` in the object's slot; gives back what it replaces, or
    /// `handle` itself when the object is closed already.
    pub fn put(&self, key: u64, slot: Slot, handle: LoopHandle) -> Result<Released, ChannelError> {
        self.with(|objects| {
            let released = match objects.open.get_mut(&key) {
                Some(open) => open.on_loop.insert(slot, handle),
                None => Some(handle),
            };
            Released(released.into_iter().collect())
        })
    }

    /// Takes what the object's slot holds.
    pub fn take(&self, key: u64, slot: Slot) -> Result<Released, ChannelError> {
        self.with(|objects| {
            let taken = objects.open.get_mut(&key).and_then(|open| open.on_loop.remove(&slot));
            Released(taken.into_iter().collect())
        })
    }

    /// Forgets a closed object; gives back what it ran on the loop.
    pub fn remove(&self, key: u64) -> Result<Released, ChannelError> {
        self.with(|objects| {
            let open = objects.open.remove(&key);
            Released(open.into_iter().flat_map(|open| open.on_loop.into_values()).collect())
        })
    }

    /// The environment ends: every object still open is told so (and
    /// closes); gives back what they ran on the loop.
    pub fn environment_ended(&self) -> Result<Released, ChannelError> {
        let open = self.with(|objects| std::mem::take(&mut objects.open))?;
        let mut released = Vec::new();
        for (_, open) in open {
            open.handle.environment_ended();
            released.extend(open.on_loop.into_values());
        }
        Ok(Released(released))
    }

    /// How many objects are open (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.borrow().open.len()
    }
}

/// Where an object runs what it runs on the JS thread: the host's libuv,
/// the loop of that thread, and the object's entry in the environment's
/// registry, which owns the handles.
pub struct HostLoop<'a> {
    pub api: &'static uv::Api,
    pub event_loop: *mut uv_loop_s,
    pub registry: &'a Registry,
    pub key: u64,
    /// The clock schedules are computed on: `Instant::now` (a test's fake
    /// loop has a clock of its own).
    pub now: fn() -> Instant,
}

impl HostLoop<'_> {
    /// Calls `send` after each offset from now until it returns false (or
    /// the offsets end), on a ticker kept in `slot`; replaces what the slot
    /// held. Offsets count from the start, so a late tick shifts no other.
    pub fn run_schedule(
        &self,
        slot: Slot,
        mut offsets: impl Iterator<Item = Duration> + 'static,
        mut send: impl FnMut() -> bool + 'static,
    ) -> Result<(), ChannelError> {
        let now = self.now;
        let start = now();
        let first = offsets.next().unwrap_or_default();
        let ticker = Ticker::start(self.api, self.event_loop, first, move || {
            if !send() {
                return None;
            }
            Some((start + offsets.next()?).saturating_duration_since(now()))
        })
        .map_err(|e| ChannelError::Io(e.to_string()))?;
        let replaced = self.registry.put(self.key, slot, Box::new(ticker))?;
        drop(replaced);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Flag(AtomicBool);

    impl Closable for Flag {
        fn close(&self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_handle_closes_while_the_object_lives_and_never_keeps_it_alive() {
        let object = Arc::new(Flag(AtomicBool::new(false)));
        let handle = CloseHandle::new(&object);
        assert!(handle.alive());
        handle.close();
        assert!(object.0.load(Ordering::SeqCst));
        drop(object);
        assert!(!handle.alive());
        handle.close(); // nothing to close: no panic
    }

    /// Re-enters the registry when dropped, as closing a handle may.
    struct ReentersOnDrop(Registry, Arc<AtomicBool>);

    impl Drop for ReentersOnDrop {
        fn drop(&mut self) {
            let worked = self.0.take(1, Slot::Up).is_ok();
            self.1.store(worked, Ordering::SeqCst);
        }
    }

    fn flag() -> (Arc<Flag>, CloseHandle) {
        let object = Arc::new(Flag(AtomicBool::new(false)));
        let handle = CloseHandle::new(&object);
        (object, handle)
    }

    #[test]
    fn what_the_registry_gives_back_is_dropped_after_it_let_go() {
        let registry = Registry::default();
        let (_object, handle) = flag();
        let key = registry.add(handle).unwrap();
        let reentered = Arc::new(AtomicBool::new(false));
        let handle: LoopHandle = Box::new(ReentersOnDrop(registry.clone(), reentered.clone()));
        drop(registry.put(key, Slot::Listener, handle).unwrap());
        drop(registry.take(key, Slot::Listener).unwrap());
        assert!(reentered.load(Ordering::SeqCst), "dropped outside the borrow");
    }

    #[test]
    fn an_overlapping_borrow_fails_loudly() {
        let registry = Registry::default();
        let inner = registry.clone();
        let nested = registry.with(|_| inner.add(flag().1)).unwrap();
        assert!(matches!(nested, Err(ChannelError::Reentrant)));
    }

    #[test]
    fn a_slot_holds_one_handle_and_a_closed_object_none() {
        let registry = Registry::default();
        let (_object, handle) = flag();
        let key = registry.add(handle).unwrap();
        assert_eq!(registry.put(key, Slot::Up, Box::new(1)).unwrap().0.len(), 0);
        let replaced = registry.put(key, Slot::Up, Box::new(2)).unwrap();
        assert_eq!(replaced.0.len(), 1, "the old ticker is given back to stop");
        assert_eq!(registry.remove(key).unwrap().0.len(), 1);
        let refused = registry.put(key, Slot::Down, Box::new(3)).unwrap();
        assert_eq!(refused.0.len(), 1, "a closed object keeps nothing");
    }

    #[test]
    fn the_end_of_the_environment_closes_what_is_open_and_forgets_what_is_gone() {
        let registry = Registry::default();
        let (open, handle) = flag();
        registry.add(handle).unwrap();
        let (gone, handle) = flag();
        registry.add(handle).unwrap();
        drop(gone);
        registry.add(flag().1).unwrap(); // collected at once
        assert_eq!(registry.len(), 2, "collected objects are forgotten as others come");
        drop(registry.environment_ended().unwrap());
        assert!(open.0.load(Ordering::SeqCst), "closed by the teardown");
        assert_eq!(registry.len(), 0);
    }
}
