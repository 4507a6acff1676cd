//! `ip("…")` in line and label filters: one address, a CIDR block
//! (`192.168.0.0/16`, `2001:db8::/32`) or an inclusive range
//! (`10.0.0.1-10.0.0.9`), IPv4 or IPv6.

use std::fmt;
use std::net::IpAddr;

#[derive(Clone, Debug)]
pub struct IpFilter {
    source: String,
    kind: IpKind,
}

#[derive(Clone, Copy, Debug)]
enum IpKind {
    Single(IpAddr),
    Cidr(IpAddr, u8),
    Range(IpAddr, IpAddr),
}

impl PartialEq for IpFilter {
    fn eq(&self, other: &IpFilter) -> bool {
        self.source == other.source
    }
}

impl fmt::Display for IpFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl IpFilter {
    pub fn parse(source: &str) -> Result<IpFilter, String> {
        let text = source.trim();
        let invalid = || {
            format!(
                "invalid ip filter {source:?}: expected an address, a CIDR block (10.0.0.0/8) or a range (10.0.0.1-10.0.0.9)"
            )
        };
        let kind = if let Some((address, bits)) = text.split_once('/') {
            let address: IpAddr = address.parse().map_err(|_| invalid())?;
            let bits: u8 = bits.parse().map_err(|_| invalid())?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            if bits > max {
                return Err(invalid());
            }
            IpKind::Cidr(address, bits)
        } else if let Some((low, high)) = text.split_once('-') {
            let low: IpAddr = low.trim().parse().map_err(|_| invalid())?;
            let high: IpAddr = high.trim().parse().map_err(|_| invalid())?;
            if low.is_ipv4() != high.is_ipv4() || as_u128(low) > as_u128(high) {
                return Err(invalid());
            }
            IpKind::Range(low, high)
        } else {
            IpKind::Single(text.parse().map_err(|_| invalid())?)
        };
        Ok(IpFilter {
            source: source.to_string(),
            kind,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        match self.kind {
            IpKind::Single(single) => single == address,
            IpKind::Cidr(network, bits) => {
                if network.is_ipv4() != address.is_ipv4() {
                    return false;
                }
                let width = if network.is_ipv4() { 32 } else { 128 };
                let shift = width - u32::from(bits);
                if shift >= 128 {
                    return true;
                }
                (as_u128(network) >> shift) == (as_u128(address) >> shift)
            }
            IpKind::Range(low, high) => {
                low.is_ipv4() == address.is_ipv4()
                    && (as_u128(low)..=as_u128(high)).contains(&as_u128(address))
            }
        }
    }

    /// A label value: the whole value must be an address in the filter.
    pub fn matches_value(&self, value: &str) -> bool {
        value
            .trim()
            .parse::<IpAddr>()
            .is_ok_and(|address| self.contains(address))
    }

    /// A line: some address-looking run of characters in it is an address
    /// in the filter.
    pub fn matches_line(&self, line: &str) -> bool {
        let is_address_char = |c: char| c.is_ascii_hexdigit() || c == '.' || c == ':';
        line.split(|c: char| !is_address_char(c))
            .filter(|run| run.len() >= 2)
            .any(|run| {
                let run = run.trim_matches(|c| c == '.' || c == ':');
                // `10.0.0.1:8080`: an IPv4 address with its port.
                let address = run.parse::<IpAddr>().ok().or_else(|| {
                    let (host, _port) = run.rsplit_once(':')?;
                    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
                });
                address.is_some_and(|address| self.contains(address))
            })
    }
}

fn as_u128(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_cidr_and_range() {
        let single = IpFilter::parse("10.0.0.1").unwrap();
        assert!(single.matches_value("10.0.0.1") && !single.matches_value("10.0.0.2"));
        let cidr = IpFilter::parse("192.168.0.0/16").unwrap();
        assert!(cidr.matches_value("192.168.4.5") && !cidr.matches_value("192.169.0.1"));
        assert!(
            IpFilter::parse("0.0.0.0/0")
                .unwrap()
                .matches_value("8.8.8.8")
        );
        let range = IpFilter::parse("10.0.0.1-10.0.0.9").unwrap();
        assert!(range.matches_value("10.0.0.9") && !range.matches_value("10.0.0.10"));
        let v6 = IpFilter::parse("2001:db8::/32").unwrap();
        assert!(v6.matches_value("2001:db8::1") && !v6.matches_value("10.0.0.1"));
        for bad in ["x", "10.0.0.0/33", "10.0.0.9-10.0.0.1", "1.2.3.4-::1"] {
            assert!(IpFilter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_addresses_in_lines() {
        let cidr = IpFilter::parse("192.168.0.0/16").unwrap();
        assert!(cidr.matches_line("GET / from 192.168.1.20: ok"));
        assert!(cidr.matches_line("peer=192.168.1.20:8080"));
        assert!(!cidr.matches_line("peer=10.1.1.1 and 192.169.0.1"));
        assert!(!cidr.matches_line("no address at all"));
    }
}
