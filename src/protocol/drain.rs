//! The instance's side of a drain: the routers of its service it heard on
//! the router port, and which of them said DRAINED for it. Pure: the
//! caller passes each message and the time.
//!
//! "Every router heard recently" is every router whose last message is
//! younger than `RECENT_MS` (three HELLO periods). A router that stops
//! while an instance waits drops out of that set within three periods, so
//! a dead router costs at most that long, never the whole timeout.

use std::net::Ipv4Addr;

use crate::protocol::wire::router::{RouterMessage, RouterSays};
use crate::protocol::wire::INSTANCE_ID_LEN;

/// Routers say HELLO this often.
pub const HELLO_PERIOD_MS: i64 = 1_000;
/// A router heard within this long counts as present.
pub const RECENT_MS: i64 = 3 * HELLO_PERIOD_MS;
/// Routers remembered; more are forgotten oldest first.
const REMEMBERED: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownRouter {
    pub id: [u8; INSTANCE_ID_LEN],
    pub name: String,
    pub address: Ipv4Addr,
    pub last_heard_ms: i64,
    /// It said DRAINED for this instance.
    pub drained: bool,
}

impl KnownRouter {
    pub fn id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Where a drain stands: routers present that let the instance go, and
/// those it still waits for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    pub acknowledged: Vec<KnownRouter>,
    pub waiting: Vec<KnownRouter>,
}

#[derive(Debug)]
pub struct RoutersHeard {
    service: String,
    timestamp_ms: i64,
    routers: Vec<KnownRouter>,
}

impl RoutersHeard {
    /// For the instance of `service` whose timestamp is `timestamp_ms`.
    pub fn new(service: &str, timestamp_ms: i64) -> Self {
        RoutersHeard {
            service: service.to_string(),
            timestamp_ms,
            routers: Vec::new(),
        }
    }

    /// True when the message was about this instance's service.
    pub fn hear(&mut self, message: &RouterMessage<'_>, from: Ipv4Addr, now_ms: i64) -> bool {
        if message.service_name != self.service {
            return false;
        }
        let drained = message.says
            == RouterSays::Drained {
                timestamp_ms: self.timestamp_ms,
            };
        let index = match self.routers.iter().position(|r| r.id == message.router_id) {
            Some(index) => index,
            None => {
                if self.routers.len() == REMEMBERED {
                    let oldest = (0..self.routers.len())
                        .min_by_key(|&i| self.routers[i].last_heard_ms)
                        .expect("not empty");
                    self.routers.remove(oldest);
                }
                self.routers.push(KnownRouter {
                    id: message.router_id,
                    name: String::new(),
                    address: from,
                    last_heard_ms: now_ms,
                    drained: false,
                });
                self.routers.len() - 1
            }
        };
        let router = &mut self.routers[index];
        router.last_heard_ms = now_ms;
        router.address = from;
        router.drained |= drained;
        if let Some(name) = message.name() {
            router.name = name;
        }
        true
    }

    pub fn standing(&self, now_ms: i64) -> Standing {
        let mut standing = Standing::default();
        for router in self.routers.iter().filter(|r| now_ms - r.last_heard_ms < RECENT_MS) {
            if router.drained {
                standing.acknowledged.push(router.clone());
            } else {
                standing.waiting.push(router.clone());
            }
        }
        standing
    }

    /// When the set of present routers next changes by itself (the oldest
    /// one falls out of "recent"), if any is present.
    pub fn next_expiry_ms(&self, now_ms: i64) -> Option<i64> {
        self.routers
            .iter()
            .map(|r| r.last_heard_ms + RECENT_MS)
            .filter(|at| *at > now_ms)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::wire::router::{decode_router, encode_router};
    use crate::protocol::wire::ServiceName;

    fn packet(says: RouterSays, id: u8, service: &str) -> Vec<u8> {
        let name = ServiceName::new(&format!("r{id}")).unwrap();
        encode_router(says, [id; 8], &ServiceName::new(service).unwrap(), Some(&name), None)
    }

    fn hear(heard: &mut RoutersHeard, bytes: &[u8], now: i64) -> bool {
        heard.hear(&decode_router(bytes).unwrap(), Ipv4Addr::new(10, 0, 0, 1), now)
    }

    #[test]
    fn waits_for_every_present_router_of_its_service() {
        let mut heard = RoutersHeard::new("api", 42);
        assert_eq!(heard.standing(0), Standing::default());
        assert!(hear(&mut heard, &packet(RouterSays::Hello, 1, "api"), 0));
        assert!(hear(&mut heard, &packet(RouterSays::Hello, 2, "api"), 0));
        assert!(!hear(&mut heard, &packet(RouterSays::Hello, 3, "worker"), 0));
        assert_eq!(heard.standing(10).waiting.len(), 2);
        // A DRAINED for another instance does not count.
        hear(
            &mut heard,
            &packet(RouterSays::Drained { timestamp_ms: 41 }, 1, "api"),
            20,
        );
        assert_eq!(heard.standing(20).acknowledged.len(), 0);
        hear(
            &mut heard,
            &packet(RouterSays::Drained { timestamp_ms: 42 }, 1, "api"),
            30,
        );
        let standing = heard.standing(30);
        assert_eq!(standing.acknowledged.len(), 1);
        assert_eq!(standing.acknowledged[0].name, "r1");
        assert_eq!(standing.acknowledged[0].id_hex(), "0101010101010101");
        assert_eq!(standing.waiting.len(), 1);
        hear(
            &mut heard,
            &packet(RouterSays::Drained { timestamp_ms: 42 }, 2, "api"),
            40,
        );
        assert!(heard.standing(40).waiting.is_empty());
    }

    #[test]
    fn a_silent_router_stops_counting() {
        let mut heard = RoutersHeard::new("api", 42);
        hear(&mut heard, &packet(RouterSays::Hello, 1, "api"), 0);
        assert_eq!(heard.next_expiry_ms(0), Some(RECENT_MS));
        assert_eq!(heard.standing(RECENT_MS - 1).waiting.len(), 1);
        assert_eq!(heard.standing(RECENT_MS), Standing::default());
        assert_eq!(heard.next_expiry_ms(RECENT_MS), None);
    }
}
