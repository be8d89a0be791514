//! PROXY protocol headers (HAProxy's v1 text and v2 binary forms) that
//! tell a TCP origin the real client address.

use std::net::{IpAddr, SocketAddr};

use crate::ingress::ProxyProtocol;

/// The header to write before any client byte. `None` when the client
/// address is unknown (the header would lie).
pub(crate) fn header(version: ProxyProtocol, client: SocketAddr, dest: SocketAddr) -> Vec<u8> {
    let (src, dst) = same_family(client, dest);
    match version {
        ProxyProtocol::V1 => v1(src, dst),
        ProxyProtocol::V2 => v2(src, dst),
    }
}

/// Both addresses must be of one family; map IPv4 into IPv6 if they differ.
fn same_family(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    let v6 = |s: SocketAddr| match s.ip() {
        IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), s.port()),
        IpAddr::V6(_) => s,
    };
    if a.is_ipv4() == b.is_ipv4() {
        (a, b)
    } else {
        (v6(a), v6(b))
    }
}

fn v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let fam = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {fam} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

const V2_SIG: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

fn v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 36);
    out.extend_from_slice(&V2_SIG);
    out.push(0x21); // version 2, PROXY command
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.push(0x11); // AF_INET, STREAM
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let six = |ip: IpAddr| match ip {
                IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
                IpAddr::V6(v) => v.octets(),
            };
            out.push(0x21); // AF_INET6, STREAM
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&six(s));
            out.extend_from_slice(&six(d));
        }
    }
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_text() {
        let h = header(
            ProxyProtocol::V1,
            "192.0.2.7:5000".parse().unwrap(),
            "127.0.0.1:5432".parse().unwrap(),
        );
        assert_eq!(h, b"PROXY TCP4 192.0.2.7 127.0.0.1 5000 5432\r\n");
    }

    #[test]
    fn v2_ipv4_layout() {
        let h = header(
            ProxyProtocol::V2,
            "192.0.2.7:5000".parse().unwrap(),
            "127.0.0.1:5432".parse().unwrap(),
        );
        assert_eq!(&h[..12], &V2_SIG);
        assert_eq!(h[12], 0x21);
        assert_eq!(h[13], 0x11);
        assert_eq!(u16::from_be_bytes([h[14], h[15]]), 12);
        assert_eq!(&h[16..20], &[192, 0, 2, 7]);
        assert_eq!(&h[20..24], &[127, 0, 0, 1]);
        assert_eq!(u16::from_be_bytes([h[24], h[25]]), 5000);
        assert_eq!(u16::from_be_bytes([h[26], h[27]]), 5432);
        assert_eq!(h.len(), 28);
    }

    #[test]
    fn mixed_families_map_to_v6() {
        let h = header(
            ProxyProtocol::V1,
            "[2001:db8::1]:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        assert_eq!(
            String::from_utf8(h).unwrap(),
            "PROXY TCP6 2001:db8::1 ::ffff:127.0.0.1 1 2\r\n"
        );
    }
}
