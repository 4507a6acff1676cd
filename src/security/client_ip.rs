//! The client a request counts against: the peer address, unless the peer is
//! a trusted proxy (HAProxy), in which case `X-Forwarded-For` says who it is.
//!
//! The header is read from the right: each trusted proxy appends the address
//! it received from, so the rightmost address that is not a trusted proxy is
//! the first one no proxy of ours vouches for. Anything to its left was
//! written by the client and could be spoofed. (With a single proxy that
//! replaces the header, this is simply its one address.)

use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpNet {
    address: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// `10.0.0.0/8`, `127.0.0.1`, `::1`, `fd00::/8`.
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: prefix must be 0 to {max}"))?,
            None => max,
        };
        Ok(IpNet { address, prefix })
    }

    pub fn contains(&self, candidate: IpAddr) -> bool {
        let candidate = canonical(candidate);
        match (self.address, candidate) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = canonical(peer?);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else {
        return Some(peer);
    };
    let mut client = peer;
    for hop in header.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // An unparsable hop ends what we can vouch for.
            break;
        };
        client = canonical(ip);
        if !is_trusted(client) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_matching() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.200.1.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(
            IpNet::parse("127.0.0.1")
                .unwrap()
                .contains(ip("::ffff:127.0.0.1"))
        );
        assert!(IpNet::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("proxy").is_err());
    }

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let trusted = [IpNet::parse("10.0.0.5").unwrap()];
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), Some("1.2.3.4"), &trusted),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn trusted_proxies_are_believed_from_the_right() {
        let trusted = [IpNet::parse("10.0.0.0/24").unwrap()];
        let proxy = Some(ip("10.0.0.5"));
        assert_eq!(
            client_ip(proxy, Some("198.51.100.7"), &trusted),
            Some(ip("198.51.100.7"))
        );
        // The client wrote "1.2.3.4" itself; the proxy appended the real peer.
        assert_eq!(
            client_ip(proxy, Some("1.2.3.4, 198.51.100.7"), &trusted),
            Some(ip("198.51.100.7"))
        );
        // Two proxies of ours in a row.
        assert_eq!(
            client_ip(proxy, Some("198.51.100.7, 10.0.0.9"), &trusted),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(client_ip(proxy, None, &trusted), proxy);
        assert_eq!(client_ip(proxy, Some("garbage"), &trusted), proxy);
    }
}
