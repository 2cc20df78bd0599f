//! What a router routes: for one service, the instances it heard on the
//! status channel and the table a proxy should apply. Pure: the caller
//! passes each message and the current time, and says when a proxy
//! confirmed a table.
//!
//! - UP makes an instance routable, at its first address inside the
//!   router's subnets (an instance with none is never routed).
//! - DOWN is terminal: the instance drains (no new requests) and a later UP
//!   from it changes nothing. handover-lib keeps sending UP while it drains.
//! - Except for the last ready server: its drain is held (it stays ready,
//!   and DRAINED is not said) until another instance is ready, so that a
//!   router that missed the new instance's first UP never empties the
//!   proxy. The instance still serves while it waits for DRAINED.
//! - An instance is keyed by its timestamp (its `startedAt`); a new
//!   instance on a reused address replaces the old one.
//! - Silence: a routable instance silent for three UP periods is gone; a
//!   draining one (DOWN comes every 100 ms) leaves the table after a second
//!   of silence, so that a proxy's slots are not held by dead instances.
//! - A router started late learns everything from the tickers: UP within
//!   10 s, DOWN within 100 ms.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use crate::protocol::wire::StatusMessage;

/// An IPv4 network, `10.77.0.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    pub fn new(address: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then(|| Subnet {
            network: Ipv4Addr::from(u32::from(address) & Self::mask(prefix)),
            prefix,
        })
    }

    /// The subnet of an interface, from its address and netmask.
    pub fn of_interface(address: Ipv4Addr, netmask: Ipv4Addr) -> Self {
        let prefix = u32::from(netmask).leading_ones() as u8;
        Subnet::new(address, prefix).expect("a netmask has at most 32 bits")
    }

    fn mask(prefix: u8) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & Self::mask(self.prefix) == u32::from(self.network)
    }
}

impl std::str::FromStr for Subnet {
    type Err = String;

    /// `a.b.c.d/n`, or a bare address for a single host.
    fn from_str(text: &str) -> Result<Self, String> {
        let (address, prefix) = text.split_once('/').unwrap_or((text, "32"));
        let address: Ipv4Addr = address
            .trim()
            .parse()
            .map_err(|_| format!("'{text}' is not an IPv4 subnet like 10.0.0.0/24"))?;
        let prefix: u8 = prefix
            .trim()
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("'{text}' has a prefix length outside 0..32"))?;
        Ok(Subnet::new(address, prefix).expect("prefix checked"))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// What a router is configured to route.
#[derive(Debug, Clone)]
pub struct Rules {
    pub service: String,
    pub subnets: Vec<Subnet>,
    pub up_period_ms: i64,
}

/// A draining instance silent this long leaves the table.
pub const DRAINING_SILENCE_MS: i64 = 1_000;
/// A routable instance silent for this many UP periods is gone.
pub const SILENT_UP_PERIODS: i64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Takes new requests.
    Ready,
    /// Takes none; requests under way finish.
    Drain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteServer {
    pub timestamp_ms: i64,
    pub address: Ipv4Addr,
    pub state: ServerState,
}

/// What a proxy should route: ready servers first, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    pub generation: u64,
    pub servers: Vec<RouteServer>,
}

/// Why a status message changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    OtherService,
    /// None of its addresses is inside the router's subnets.
    OutsideSubnets(Vec<Ipv4Addr>),
    /// A status other than UP and DOWN.
    UnknownStatus(String),
}

/// What hearing a status message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    Ignored(Ignored),
    /// Known already, nothing changed (a heartbeat).
    Nothing,
    /// A new routable instance, or a new address for one.
    Routable {
        timestamp_ms: i64,
        address: Ipv4Addr,
    },
    /// Its first DOWN. `routed`: it was in the table, and is now draining there.
    Draining {
        timestamp_ms: i64,
        routed: bool,
    },
    /// Its first DOWN, as the only ready server: held ready until another is.
    Held {
        timestamp_ms: i64,
    },
}

/// An instance that left the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gone {
    pub timestamp_ms: i64,
    pub address: Ipv4Addr,
    pub was: ServerState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Routable,
    /// Said DOWN while the only ready server: ready until another is.
    Held,
    /// Draining since the table of this generation.
    Draining {
        since: u64,
    },
}

#[derive(Debug, Clone)]
struct Instance {
    /// `None`: not in the table (never routed, or left it).
    address: Option<Ipv4Addr>,
    life: Life,
    last_heard_ms: i64,
}

#[derive(Debug)]
pub struct Router {
    rules: Rules,
    instances: BTreeMap<i64, Instance>,
    generation: u64,
    /// The newest generation a proxy confirmed.
    applied: Option<u64>,
}

impl Router {
    pub fn new(rules: Rules) -> Self {
        Router {
            rules,
            instances: BTreeMap::new(),
            generation: 0,
            applied: None,
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn hear(&mut self, message: &StatusMessage, now_ms: i64) -> Heard {
        if message.service_name != self.rules.service {
            return Heard::Ignored(Ignored::OtherService);
        }
        let down = match message.status.as_str() {
            "UP" => false,
            "DOWN" => true,
            other => return Heard::Ignored(Ignored::UnknownStatus(other.to_string())),
        };
        let timestamp_ms = message.timestamp_ms;
        let address = message
            .addresses
            .iter()
            .copied()
            .find(|a| self.rules.subnets.iter().any(|s| s.contains(*a)));
        if let Some(known) = self.instances.get_mut(&timestamp_ms) {
            known.last_heard_ms = now_ms;
            let others_ready = |instances: &BTreeMap<i64, Instance>| {
                instances
                    .iter()
                    .any(|(t, i)| *t != timestamp_ms && i.life == Life::Routable && i.address.is_some())
            };
            if down && known.life == Life::Routable && known.address.is_some() && !others_ready(&self.instances) {
                let known = self.instances.get_mut(&timestamp_ms).expect("looked up above");
                known.life = Life::Held;
                return Heard::Held { timestamp_ms };
            }
            let known = self.instances.get_mut(&timestamp_ms).expect("looked up above");
            return match (known.life, down) {
                (Life::Draining { .. } | Life::Held, _) => Heard::Nothing,
                (Life::Routable, true) => {
                    let routed = known.address.is_some();
                    known.life = Life::Draining {
                        since: self.generation + 1,
                    };
                    if routed {
                        self.generation += 1;
                    }
                    Heard::Draining { timestamp_ms, routed }
                }
                (Life::Routable, false) if known.address == address => Heard::Nothing,
                (Life::Routable, false) => match address {
                    Some(address) => {
                        known.address = Some(address);
                        self.generation += 1;
                        self.release_address(address, timestamp_ms);
                        self.release_held();
                        Heard::Routable { timestamp_ms, address }
                    }
                    None => Heard::Ignored(Ignored::OutsideSubnets(message.addresses.clone())),
                },
            };
        }
        if down {
            // Heard draining first (a late router, or back from silence): we
            // never routed it, so it never enters the table.
            self.instances.insert(
                timestamp_ms,
                Instance {
                    address: None,
                    life: Life::Draining { since: 0 },
                    last_heard_ms: now_ms,
                },
            );
            return Heard::Draining {
                timestamp_ms,
                routed: false,
            };
        }
        let Some(address) = address else {
            return Heard::Ignored(Ignored::OutsideSubnets(message.addresses.clone()));
        };
        self.instances.insert(
            timestamp_ms,
            Instance {
                address: Some(address),
                life: Life::Routable,
                last_heard_ms: now_ms,
            },
        );
        self.generation += 1;
        self.release_address(address, timestamp_ms);
        self.release_held();
        Heard::Routable { timestamp_ms, address }
    }

    /// Another instance is ready: held drains go ahead, in the same table.
    fn release_held(&mut self) {
        for instance in self.instances.values_mut() {
            if instance.life == Life::Held {
                instance.life = Life::Draining { since: self.generation };
            }
        }
    }

    /// A new instance took `address`: an older one there is dead, and must
    /// not hold the proxy's server for that address.
    fn release_address(&mut self, address: Ipv4Addr, owner: i64) {
        for (timestamp, instance) in self.instances.iter_mut() {
            if *timestamp != owner && instance.address == Some(address) {
                instance.address = None;
                if matches!(instance.life, Life::Routable | Life::Held) {
                    instance.life = Life::Draining { since: 0 };
                }
            }
        }
    }

    /// Removes silent instances; what left the table is returned.
    pub fn expire(&mut self, now_ms: i64) -> Vec<Gone> {
        let routable_silence = SILENT_UP_PERIODS * self.rules.up_period_ms;
        let mut gone = Vec::new();
        self.instances.retain(|timestamp, instance| {
            let silent = now_ms - instance.last_heard_ms;
            let limit = match instance.life {
                Life::Routable => routable_silence,
                Life::Draining { .. } | Life::Held => DRAINING_SILENCE_MS.min(routable_silence),
            };
            if silent < limit {
                return true;
            }
            if let Some(address) = instance.address {
                gone.push(Gone {
                    timestamp_ms: *timestamp,
                    address,
                    was: match instance.life {
                        Life::Routable | Life::Held => ServerState::Ready,
                        Life::Draining { .. } => ServerState::Drain,
                    },
                });
            }
            // A draining instance is remembered a while longer, so that its
            // UP heartbeat cannot make it routable again.
            matches!(instance.life, Life::Draining { .. }) && silent < routable_silence
        });
        for instance in self.instances.values_mut() {
            if matches!(instance.life, Life::Draining { .. })
                && now_ms - instance.last_heard_ms >= DRAINING_SILENCE_MS.min(routable_silence)
            {
                instance.address = None;
            }
        }
        if !gone.is_empty() {
            self.generation += 1;
        }
        gone
    }

    /// Whether the table has a server that takes new requests.
    pub fn has_ready(&self) -> bool {
        self.instances
            .values()
            .any(|i| i.address.is_some() && matches!(i.life, Life::Routable | Life::Held))
    }

    pub fn table(&self) -> RouteTable {
        let mut servers: Vec<RouteServer> = self
            .instances
            .iter()
            .filter_map(|(timestamp, instance)| {
                Some(RouteServer {
                    timestamp_ms: *timestamp,
                    address: instance.address?,
                    state: match instance.life {
                        Life::Routable | Life::Held => ServerState::Ready,
                        Life::Draining { .. } => ServerState::Drain,
                    },
                })
            })
            .collect();
        servers.sort_by_key(|s| (s.state == ServerState::Drain, s.timestamp_ms));
        RouteTable {
            generation: self.generation,
            servers,
        }
    }

    /// A proxy confirmed the table of `generation`.
    pub fn applied(&mut self, generation: u64) {
        self.applied = Some(self.applied.map_or(generation, |a| a.max(generation)));
    }

    pub fn applied_generation(&self) -> Option<u64> {
        self.applied
    }

    /// Whether the router may tell this instance that it gets no new
    /// requests: it is draining, and a proxy confirmed a table that drains
    /// it. An instance never routed here needs a first confirmed table too:
    /// until then the proxy may still hold servers from before the router
    /// started.
    pub fn drained(&self, timestamp_ms: i64) -> bool {
        let Some(applied) = self.applied else {
            return false;
        };
        match self.instances.get(&timestamp_ms) {
            Some(Instance {
                life: Life::Draining { since },
                address,
                ..
            }) => address.is_none() || applied >= *since,
            Some(_) => false,
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            service: "api".into(),
            subnets: vec!["10.77.0.0/24".parse().unwrap()],
            up_period_ms: 10_000,
        }
    }

    fn message(timestamp_ms: i64, address: &str, status: &str) -> StatusMessage {
        StatusMessage {
            timestamp_ms,
            service_name: "api".into(),
            addresses: vec![address.parse().unwrap()],
            status: status.into(),
        }
    }

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    #[test]
    fn subnets_parse_and_contain() {
        let s: Subnet = "10.77.0.9/24".parse().unwrap();
        assert_eq!(s.to_string(), "10.77.0.0/24");
        assert!(s.contains(ip("10.77.0.200")));
        assert!(!s.contains(ip("10.78.0.1")));
        let host: Subnet = "10.0.0.1".parse().unwrap();
        assert!(host.contains(ip("10.0.0.1")) && !host.contains(ip("10.0.0.2")));
        let all: Subnet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("1.2.3.4")));
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        assert!("nope/8".parse::<Subnet>().is_err());
        assert_eq!(
            Subnet::of_interface(ip("192.168.1.7"), ip("255.255.255.0")).to_string(),
            "192.168.1.0/24"
        );
    }

    #[test]
    fn up_routes_and_down_drains_for_good() {
        let mut r = Router::new(rules());
        assert_eq!(
            r.hear(&message(1, "10.77.0.2", "UP"), 0),
            Heard::Routable {
                timestamp_ms: 1,
                address: ip("10.77.0.2")
            }
        );
        assert_eq!(r.hear(&message(1, "10.77.0.2", "UP"), 10), Heard::Nothing);
        assert_eq!(r.generation(), 1);
        r.hear(&message(2, "10.77.0.3", "UP"), 20);
        assert_eq!(
            r.hear(&message(1, "10.77.0.2", "DOWN"), 30),
            Heard::Draining {
                timestamp_ms: 1,
                routed: true
            }
        );
        // handover-lib keeps sending UP while it drains: nothing changes.
        assert_eq!(r.hear(&message(1, "10.77.0.2", "UP"), 40), Heard::Nothing);
        let table = r.table();
        assert_eq!(table.generation, 3);
        assert_eq!(
            table.servers,
            vec![
                RouteServer {
                    timestamp_ms: 2,
                    address: ip("10.77.0.3"),
                    state: ServerState::Ready
                },
                RouteServer {
                    timestamp_ms: 1,
                    address: ip("10.77.0.2"),
                    state: ServerState::Drain
                },
            ]
        );
    }

    #[test]
    fn the_last_ready_server_is_held_until_another_is_ready() {
        let mut r = Router::new(rules());
        r.hear(&message(1, "10.77.0.2", "UP"), 0);
        r.applied(r.generation());
        assert_eq!(
            r.hear(&message(1, "10.77.0.2", "DOWN"), 5),
            Heard::Held { timestamp_ms: 1 }
        );
        assert_eq!(r.table().servers[0].state, ServerState::Ready);
        assert!(!r.drained(1));
        assert_eq!(r.hear(&message(1, "10.77.0.2", "DOWN"), 105), Heard::Nothing);
        // The new instance's UP arrives: both change in one table.
        r.hear(&message(2, "10.77.0.3", "UP"), 150);
        let states: Vec<_> = r.table().servers.iter().map(|s| (s.timestamp_ms, s.state)).collect();
        assert_eq!(states, vec![(2, ServerState::Ready), (1, ServerState::Drain)]);
        assert!(!r.drained(1));
        r.applied(r.generation());
        assert!(r.drained(1));
    }

    #[test]
    fn drained_only_once_a_proxy_confirmed_the_drain() {
        let mut r = Router::new(rules());
        r.hear(&message(1, "10.77.0.2", "UP"), 0);
        r.hear(&message(5, "10.77.0.5", "UP"), 0);
        r.applied(r.generation());
        assert!(!r.drained(1));
        r.hear(&message(1, "10.77.0.2", "DOWN"), 5);
        assert!(!r.drained(1), "the proxy has not applied the drain yet");
        r.applied(r.generation() - 1);
        assert!(!r.drained(1));
        r.applied(r.generation());
        assert!(r.drained(1));
        // Never routed: drained at once.
        r.hear(&message(9, "10.77.0.9", "DOWN"), 6);
        assert!(r.drained(9));
        assert!(r.drained(12345), "an instance never heard is not routed");
    }

    #[test]
    fn nothing_is_drained_before_a_first_confirmed_table() {
        let mut r = Router::new(rules());
        r.hear(&message(9, "10.77.0.9", "DOWN"), 0);
        assert!(!r.drained(9), "the proxy may still route to it from before");
        r.applied(r.generation());
        assert!(r.drained(9));
    }

    #[test]
    fn refuses_other_services_and_foreign_addresses() {
        let mut r = Router::new(rules());
        let mut other = message(1, "10.77.0.2", "UP");
        other.service_name = "worker".into();
        assert_eq!(r.hear(&other, 0), Heard::Ignored(Ignored::OtherService));
        assert_eq!(
            r.hear(&message(1, "192.168.1.5", "UP"), 0),
            Heard::Ignored(Ignored::OutsideSubnets(vec![ip("192.168.1.5")]))
        );
        assert_eq!(
            r.hear(&message(1, "10.77.0.2", "MAYBE"), 0),
            Heard::Ignored(Ignored::UnknownStatus("MAYBE".into()))
        );
        assert!(r.table().servers.is_empty());
        // The first address inside the subnets is the one routed.
        let mut two = message(3, "192.168.1.5", "UP");
        two.addresses.push(ip("10.77.0.4"));
        assert_eq!(
            r.hear(&two, 0),
            Heard::Routable {
                timestamp_ms: 3,
                address: ip("10.77.0.4")
            }
        );
    }

    #[test]
    fn silence_removes_instances_and_a_late_down_stays_out() {
        let mut r = Router::new(rules());
        r.hear(&message(1, "10.77.0.2", "UP"), 0);
        r.hear(&message(2, "10.77.0.3", "UP"), 0);
        r.hear(&message(2, "10.77.0.3", "DOWN"), 0);
        assert!(r.expire(999).is_empty());
        let gone = r.expire(1_000);
        assert_eq!(
            gone,
            vec![Gone {
                timestamp_ms: 2,
                address: ip("10.77.0.3"),
                was: ServerState::Drain
            }]
        );
        // Its UP heartbeat does not bring it back.
        assert_eq!(r.hear(&message(2, "10.77.0.3", "UP"), 1_500), Heard::Nothing);
        assert_eq!(r.table().servers.len(), 1);
        r.hear(&message(1, "10.77.0.2", "UP"), 10_000);
        assert!(r.expire(39_999).is_empty());
        assert_eq!(r.expire(40_000).len(), 1);
        assert!(r.table().servers.is_empty());
    }

    #[test]
    fn a_new_instance_on_a_reused_address_replaces_the_old_one() {
        let mut r = Router::new(rules());
        r.hear(&message(1, "10.77.0.2", "UP"), 0);
        r.hear(&message(2, "10.77.0.2", "UP"), 5);
        let table = r.table();
        assert_eq!(table.servers.len(), 1);
        assert_eq!(table.servers[0].timestamp_ms, 2);
        // The old one is not routable again.
        assert_eq!(r.hear(&message(1, "10.77.0.2", "UP"), 6), Heard::Nothing);
    }

    #[test]
    fn a_late_router_learns_from_the_tickers() {
        let mut r = Router::new(rules());
        // It hears v1's DOWN (every 100 ms) and v2's UP (every 10 s).
        assert_eq!(
            r.hear(&message(1, "10.77.0.2", "DOWN"), 0),
            Heard::Draining {
                timestamp_ms: 1,
                routed: false
            }
        );
        r.hear(&message(2, "10.77.0.3", "UP"), 50);
        r.hear(&message(1, "10.77.0.2", "UP"), 60);
        let table = r.table();
        assert_eq!(table.servers.len(), 1);
        assert_eq!(table.servers[0].address, ip("10.77.0.3"));
    }
}
