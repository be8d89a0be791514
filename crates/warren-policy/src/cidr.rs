//! IP networks for `ip_range` rules, parsed once.
//!
//! [`IpRange`] keeps the text the administrator wrote (that is what the
//! store and the audit log show) next to the parsed [`IpNet`], so that
//! evaluating a rule is a mask and a compare. A range that does not parse
//! still deserializes, so [`crate::validate`] can say which policy and rule
//! to fix; [`crate::decide`] treats it as failing closed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a range is not a network. Reads as the end of a sentence about the
/// range: `ip_range "10.0.0.0/33" has prefix length 33, ...`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Nothing was written.
    #[error("is empty; write a network like 10.0.0.0/8 or 2001:db8::/32")]
    Empty,
    /// The part before the slash is not an IP address.
    #[error(
        "does not start with an IPv4 or IPv6 address; write a network like 10.0.0.0/8 or 2001:db8::/32"
    )]
    BadAddress,
    /// The part after the slash is not a number.
    #[error(
        "has a prefix length that is not a whole number; write it after a slash, like 10.0.0.0/8"
    )]
    BadPrefix,
    /// The prefix is longer than the address.
    #[error(
        "has prefix length {prefix}, longer than the {max} bits of the address; use at most /{max}"
    )]
    PrefixTooLong {
        /// The prefix length written.
        prefix: u32,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
    /// Address bits are set after the prefix, which usually means a typo.
    #[error("has address bits set beyond its prefix length; write the network as {network}")]
    HostBitsSet {
        /// The network the administrator probably meant.
        network: String,
    },
}

/// An IPv4 or IPv6 network: an address with its host bits clear, and a
/// prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in the network. IPv4-mapped IPv6 addresses are
    /// matched as IPv4; otherwise an IPv4 network never holds an IPv6
    /// address and vice versa.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask_v4(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask_v6(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

/// `10.0.0.0/8`, `2001:db8::/32`, or one address (`192.0.2.7`, meaning
/// `/32` or `/128`). Host bits must be clear. An IPv4-mapped IPv6 network
/// of at least `/96` becomes the IPv4 network it maps.
impl FromStr for IpNet {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, CidrError> {
        if s.is_empty() {
            return Err(CidrError::Empty);
        }
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| CidrError::BadAddress)?;
        let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CidrError::BadPrefix);
                }
                let n: u32 = p.parse().map_err(|_| CidrError::BadPrefix)?;
                if n > u32::from(max) {
                    return Err(CidrError::PrefixTooLong { prefix: n, max });
                }
                n as u8
            }
        };
        let net = match addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_v4(prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask_v6(prefix))),
        };
        if net != addr {
            return Err(CidrError::HostBitsSet {
                network: format!("{net}/{prefix}"),
            });
        }
        // Source addresses are canonicalised to IPv4, so a mapped network
        // must be too or it would never match.
        if let IpAddr::V6(v6) = net {
            if let (Some(v4), true) = (v6.to_ipv4_mapped(), prefix >= 96) {
                return Ok(IpNet {
                    addr: IpAddr::V4(v4),
                    prefix: prefix - 96,
                });
            }
        }
        Ok(IpNet { addr: net, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The value of an `ip_range` rule: the text as written, and the network it
/// parses to (or why it does not). Serialized as the text.
#[derive(Clone)]
pub struct IpRange {
    text: String,
    parsed: Result<IpNet, CidrError>,
}

impl IpRange {
    /// Keeps `text` whether or not it parses; [`crate::validate`] reports a
    /// range that does not. Use `str::parse` to refuse it at once instead.
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        let parsed = text.parse();
        IpRange { text, parsed }
    }

    /// The range as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed network, or why the text is not one.
    pub fn net(&self) -> Result<IpNet, &CidrError> {
        self.parsed.as_ref().copied()
    }
}

impl FromStr for IpRange {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, CidrError> {
        let net: IpNet = s.parse()?;
        Ok(IpRange {
            text: s.to_owned(),
            parsed: Ok(net),
        })
    }
}

impl PartialEq for IpRange {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for IpRange {}

impl fmt::Debug for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for IpRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for IpRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(IpRange::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn contains_v4_and_v6() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.255.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.1.2.3")), "mapped source");
        assert!(!net.contains(ip("::a00:1")), "v4-compatible is not mapped");

        let net: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(net.contains(ip("2001:db8:ffff::1")));
        assert!(!net.contains(ip("2001:db9::1")));
        assert!(!net.contains(ip("10.0.0.1")));

        let all4: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all4.contains(ip("203.0.113.9")));
        assert!(!all4.contains(ip("2001:db8::1")));
        let all6: IpNet = "::/0".parse().unwrap();
        assert!(all6.contains(ip("2001:db8::1")));

        let one: IpNet = "192.0.2.7".parse().unwrap();
        assert_eq!(one.prefix_len(), 32);
        assert!(one.contains(ip("192.0.2.7")));
        assert!(!one.contains(ip("192.0.2.8")));
    }

    #[test]
    fn mapped_network_becomes_v4() {
        let net: IpNet = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains(ip("10.9.9.9")));
    }

    #[test]
    fn parse_errors() {
        let err = |s: &str| s.parse::<IpNet>().unwrap_err();
        assert_eq!(err(""), CidrError::Empty);
        assert_eq!(err("10.0.0/8"), CidrError::BadAddress);
        assert_eq!(err(" 10.0.0.0/8"), CidrError::BadAddress);
        assert_eq!(err("10.0.0.0/"), CidrError::BadPrefix);
        assert_eq!(err("10.0.0.0/+8"), CidrError::BadPrefix);
        assert_eq!(err("10.0.0.0/99999999999"), CidrError::BadPrefix);
        assert_eq!(
            err("10.0.0.0/33"),
            CidrError::PrefixTooLong {
                prefix: 33,
                max: 32
            }
        );
        assert_eq!(
            err("2001:db8::/129"),
            CidrError::PrefixTooLong {
                prefix: 129,
                max: 128
            }
        );
        assert_eq!(
            err("10.1.2.3/8"),
            CidrError::HostBitsSet {
                network: "10.0.0.0/8".into()
            }
        );
        assert_eq!(
            err("2001:db8::1/32"),
            CidrError::HostBitsSet {
                network: "2001:db8::/32".into()
            }
        );
    }

    #[test]
    fn range_keeps_bad_text_and_round_trips() {
        let bad = IpRange::new("10.0.0.0/33");
        assert_eq!(bad.as_str(), "10.0.0.0/33");
        assert!(bad.net().is_err());
        assert!("10.0.0.0/33".parse::<IpRange>().is_err());

        let good: IpRange = "2001:db8::/48".parse().unwrap();
        let json = serde_json::to_string(&good).unwrap();
        assert_eq!(json, r#""2001:db8::/48""#);
        let back: IpRange = serde_json::from_str(&json).unwrap();
        assert_eq!(back, good);
        assert_eq!(back.net().unwrap().prefix_len(), 48);

        let kept: IpRange = serde_json::from_str(r#""nonsense""#).unwrap();
        assert_eq!(kept.net(), Err(&CidrError::BadAddress));
    }
}
