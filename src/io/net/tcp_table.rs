//! Reading `/proc/net/tcp` and `/proc/net/tcp6` (pure, so tested anywhere):
//! the kernel prints each address as 32-bit words in hex, each word in host
//! byte order, then `:` and the port in hex. Only Linux reads them; the
//! other systems compile them for the type and the tests.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

/// The port's sockets as `/proc/net/tcp{,6}` lists them.
pub struct PortSockets {
    /// Listeners on exactly this address and port, of this user: the
    /// members of our reuseport group (the kernel groups by user).
    pub listeners: u32,
    /// Half-open connections to the port (`SYN_RECV`), by remote address.
    pub half_open: HashSet<String>,
}

const LISTEN: &str = "0A";
const SYN_RECV: &str = "03";

/// How the kernel prints `address`'s IP.
pub fn kernel_hex(ip: IpAddr) -> String {
    let octets: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    octets
        .chunks(4)
        .map(|word| format!("{:08X}", u32::from_ne_bytes([word[0], word[1], word[2], word[3]])))
        .collect()
}

/// Listeners on `address` of `uid`, and half-open connections to its port.
pub fn port_sockets(text: &str, address: SocketAddr, uid: u32) -> PortSockets {
    let ours = format!("{}:{:04X}", kernel_hex(address.ip()), address.port());
    let port = format!(":{:04X}", address.port());
    let mut listeners = 0;
    let mut half_open = HashSet::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            continue;
        }
        let (local, remote, state, owner) = (fields[1], fields[2], fields[3], fields[7]);
        if state == LISTEN && local.eq_ignore_ascii_case(&ours) && owner.parse() == Ok(uid) {
            listeners += 1;
        } else if state == SYN_RECV && local.to_ascii_uppercase().ends_with(&port) {
            half_open.insert(remote.to_string());
        }
    }
    PortSockets { listeners, half_open }
}

/// The services of the claims (abstract Unix sockets, `@<prefix><nonce>/<service>`
/// in `/proc/net/unix`) on one port.
pub fn claims(text: &str, prefix: &str) -> Vec<String> {
    let wanted = format!("@{prefix}");
    text.lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(7))
        .filter_map(|path| path.strip_prefix(&wanted))
        .filter_map(|rest| rest.split_once('/').map(|(_, service)| service.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:B99C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:B99C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:B99C 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 3 1 0 100 0 0 10 0
   3: 00000000:B99C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0
   4: 0100007F:B99C 0100007F:D431 03 00000000:00000000 01:00000064 00000000     0        0 0 1 0 100 0 0 10 0
   5: 0100007F:B99D 0100007F:D432 03 00000000:00000000 01:00000064 00000000     0        0 0 1 0 100 0 0 10 0
";

    #[test]
    fn counts_the_group_and_the_half_open_connections_of_one_port() {
        let found = port_sockets(TABLE, "127.0.0.1:47516".parse().unwrap(), 0);
        assert_eq!(found.listeners, 2);
        assert_eq!(found.half_open.len(), 1);
        assert!(found.half_open.contains("0100007F:D431"));
        let other_user = port_sockets(TABLE, "127.0.0.1:47516".parse().unwrap(), 65534);
        assert_eq!(other_user.listeners, 1);
        let any = port_sockets(TABLE, "0.0.0.0:47516".parse().unwrap(), 0);
        assert_eq!(any.listeners, 1);
    }

    #[test]
    fn reads_the_services_that_claimed_a_port() {
        let unix = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00000000 0002 01 11 @handover-native/tcp/127.0.0.1/47520/0a1b/api
0000000000000000: 00000002 00000000 00000000 0002 01 12 @handover-native/tcp/127.0.0.1/47520/ffee/
0000000000000000: 00000002 00000000 00000000 0002 01 13 @handover-native/tcp/127.0.0.1/47521/0a1c/other
0000000000000000: 00000002 00000000 00010000 0001 01 14 /run/systemd/notify
0000000000000000: 00000003 00000000 00000000 0001 03 15
";
        let found = claims(unix, "handover-native/tcp/127.0.0.1/47520/");
        assert_eq!(found, vec!["api".to_string(), String::new()]);
    }

    #[test]
    fn prints_addresses_as_the_kernel_does() {
        if cfg!(target_endian = "little") {
            assert_eq!(kernel_hex("127.0.0.1".parse().unwrap()), "0100007F");
            assert_eq!(
                kernel_hex("::1".parse().unwrap()),
                "000000000000000000000000".to_string() + "01000000"
            );
        }
    }
}
