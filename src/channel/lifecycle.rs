//! Closing a peer or status channel from outside its owner: a weak handle
//! that does not keep the object alive, for the JS environment's teardown
//! (a worker thread ending must not leave sockets running).

use std::sync::{Arc, Weak};

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
}
