//! The client's address behind proxies: `x-forwarded-for` is believed only
//! when the direct peer is a configured trusted proxy, and then read from
//! the right: each proxy appends the address it received from, so the
//! right-most hop that is not itself a trusted proxy is the client. The
//! left-most entry is whatever the client wrote and is never believed.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Addresses or CIDR blocks of proxies whose `x-forwarded-for` is believed
/// (e.g. `["10.0.0.0/8", "127.0.0.1"]`); empty believes none.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct TrustedProxies(Vec<String>);

/// One parsed block.
#[derive(Debug, Clone, Copy)]
struct Block {
    net: IpAddr,
    prefix: u8,
}

impl Block {
    fn parse(text: &str) -> anyhow::Result<Self> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("trusted proxy {text:?}: not an address or CIDR block"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| anyhow::anyhow!("trusted proxy {text:?}: bad prefix length"))?,
        };
        Ok(Self { net, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u32) {
            match ip {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => (u128::from(u32::from(v4)), 32),
                    None => (u128::from(v6), 128),
                },
            }
        };
        let ((net, width), (ip, ip_width)) = (bits(self.net), bits(ip));
        if width != ip_width {
            return false;
        }
        let shift = width - u32::from(self.prefix);
        let mask = if shift >= 128 {
            0
        } else {
            (u128::MAX << shift) & (u128::MAX >> (128 - width))
        };
        net & mask == ip & mask
    }
}

/// [`TrustedProxies`], parsed once at start-up.
#[derive(Debug, Clone, Default)]
pub struct ClientAddress {
    trusted: Vec<Block>,
}

impl TrustedProxies {
    /// Parses the blocks; a malformed one is a start-up error.
    pub fn parse(&self) -> anyhow::Result<ClientAddress> {
        let trusted = self
            .0
            .iter()
            .map(|t| Block::parse(t))
            .collect::<anyhow::Result<_>>()?;
        Ok(ClientAddress { trusted })
    }

    /// From a list of blocks (tests, code).
    pub fn new(blocks: &[&str]) -> Self {
        Self(blocks.iter().map(|b| (*b).to_owned()).collect())
    }
}

impl ClientAddress {
    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|b| b.contains(ip))
    }

    /// The client of a request from `peer` carrying `forwarded_for`.
    pub fn client(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let peer = peer?;
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let Some(header) = forwarded_for else {
            return Some(peer);
        };
        let mut closest = peer;
        for hop in header.rsplit(',') {
            // A hop that is not an address ends what can be believed.
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                return Some(closest);
            };
            if !self.is_trusted(ip) {
                return Some(ip);
            }
            closest = ip;
        }
        Some(closest)
    }

    /// [`ClientAddress::client`] of a tonic request, as text (`unknown`
    /// when the transport gave no peer).
    pub fn of<T>(&self, req: &tonic::Request<T>) -> String {
        let forwarded = req
            .metadata()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        self.client(req.remote_addr().map(|a| a.ip()), forwarded)
            .map_or_else(|| "unknown".into(), |ip| ip.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(blocks: &[&str]) -> ClientAddress {
        TrustedProxies::new(blocks).parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let p = proxies(&["10.0.0.0/8"]);
        let client = p.client(Some(ip("203.0.113.9")), Some("198.51.100.1"));
        assert_eq!(client, Some(ip("203.0.113.9")));
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client_not_what_the_client_wrote() {
        let p = proxies(&["10.0.0.0/8", "192.168.1.1"]);
        // The client wrote "1.2.3.4"; the edge proxy appended the real
        // address; an inner proxy appended the edge's.
        let header = "1.2.3.4, 198.51.100.7, 192.168.1.1";
        assert_eq!(
            p.client(Some(ip("10.1.2.3")), Some(header)),
            Some(ip("198.51.100.7"))
        );
    }

    #[test]
    fn garbage_in_the_header_stops_at_the_closest_trusted_hop() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.client(Some(ip("10.0.0.1")), Some("x, not-an-ip")),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(
            p.client(Some(ip("10.0.0.1")), Some("10.0.0.2")),
            Some(ip("10.0.0.2"))
        );
    }

    #[test]
    fn blocks_match_by_prefix_for_both_families_and_mapped_addresses() {
        let p = proxies(&["10.0.0.0/8", "fd00::/8"]);
        assert!(p.is_trusted(ip("10.255.0.1")));
        assert!(!p.is_trusted(ip("11.0.0.1")));
        assert!(p.is_trusted(ip("fd12::1")));
        assert!(p.is_trusted(ip("::ffff:10.0.0.5")));
        assert!(proxies(&["0.0.0.0/0"]).is_trusted(ip("8.8.8.8")));
        assert!(TrustedProxies::new(&["10.0.0.0/33"]).parse().is_err());
        assert!(TrustedProxies::new(&["proxy.local"]).parse().is_err());
    }
}
