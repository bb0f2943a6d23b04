//! The client address: the peer, unless the peer is a trusted proxy; then the rightmost
//! address of the configured forwarding header (`X-Forwarded-For`, or RFC 7239 `Forwarded`)
//! that is not itself a trusted proxy. Headers from untrusted peers are ignored entirely, so
//! spoofing them changes nothing; only the header the proxies are configured to write is read
//! (a proxy that writes one usually passes the other through from the client unchanged).

use std::net::{IpAddr, Ipv4Addr};

use app_core::http::HeaderMap;
use ipnet::IpNet;

use crate::ForwardedHeader;

/// Picks the client address of a request from `peer` with `headers`, given the trusted proxy
/// networks.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet], header: ForwardedHeader) -> IpAddr {
    let peer = peer.map(canonical).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    resolve(peer, headers, trusted, header)
}

/// IPv4-mapped IPv6 addresses as IPv4, so one client has one address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// One hop: an address, with an optional port (`192.0.2.1:4711`, `[2001:db8::1]:80`) or in
/// brackets; `None` when it is not an address (`unknown`, `_hidden`, garbage).
fn parse_hop(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim().trim_matches('"');
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    let host = match raw.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.0,
        None => raw.rsplit_once(':').map(|(host, _)| host)?,
    };
    host.parse::<IpAddr>().ok().map(canonical)
}

/// The hops the configured header reports, oldest first, unparsable ones kept as `None`.
fn forwarded_hops(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let values = |name: &str| {
        headers.get_all(name).iter().map(|v| v.to_str().unwrap_or("garbage").to_owned()).collect::<Vec<_>>()
    };
    match header {
        ForwardedHeader::XForwardedFor => {
            values("x-forwarded-for").iter().flat_map(|v| v.split(',').map(parse_hop).collect::<Vec<_>>()).collect()
        }
        ForwardedHeader::Forwarded => values("forwarded")
            .iter()
            .flat_map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
            .map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.trim().split_once('=')?;
                    name.trim().eq_ignore_ascii_case("for").then(|| parse_hop(value)).flatten()
                })
            })
            .collect(),
    }
}

fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet], header: ForwardedHeader) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    // Walk from the nearest hop outwards: the first untrusted one is the client. A hop that is
    // not an address ends the walk at the last trusted one (what lies beyond it could be
    // anything the client wrote). When every hop is trusted, the oldest is the client.
    let mut client = peer;
    for hop in forwarded_hops(headers, header).into_iter().rev() {
        match hop {
            None => return client,
            Some(ip) if is_trusted(ip, trusted) => client = ip,
            Some(ip) => return ip,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use app_core::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        let xff = ForwardedHeader::XForwardedFor;
        assert_eq!(resolve(ip("203.0.113.9"), &h, &[], xff), ip("203.0.113.9"));
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        assert_eq!(resolve(ip("203.0.113.9"), &h, &trusted, xff), ip("203.0.113.9"));
    }

    #[test]
    fn trusted_proxies_yield_the_rightmost_untrusted_hop() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        // The client forged the first entry; the proxy appended the real address.
        let (xff, fwd) = (ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded);
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted, xff), ip("198.51.100.7"));
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7:5678, [10.0.0.2]:80")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted, xff), ip("198.51.100.7"), "ports are stripped");
        let h = headers(&[("x-forwarded-for", "6.6.6.6, unknown, 10.0.0.2")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted, xff), ip("10.0.0.2"), "an unparsable hop ends the walk");
        let h = headers(&[
            ("forwarded", "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\""),
            ("x-forwarded-for", "1.1.1.1"),
        ]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted, fwd), ip("2001:db8::1"), "only the configured header");
        assert_eq!(resolve(ip("10.0.0.1"), &HeaderMap::new(), &trusted, xff), ip("10.0.0.1"));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(canonical(mapped), ip("10.0.0.1"));
    }

    #[test]
    fn malformed_hops_never_yield_a_forged_address() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let (xff, fwd) = (ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded);
        let proxy = ip("10.0.0.1");
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_bytes(b"6.6.6.6, 198.51.100.7\xff").unwrap());
        assert_eq!(resolve(proxy, &h, &trusted, xff), proxy, "a value that is not UTF-8 is not read");
        for garbage in ["999.1.1.1", "6.6.6.6, ", "6.6.6.6, not an address", "6.6.6.6, [::1"] {
            let h = headers(&[("x-forwarded-for", garbage)]);
            assert_eq!(resolve(proxy, &h, &trusted, xff), proxy, "{garbage:?}");
        }
        let h = headers(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(resolve(proxy, &h, &trusted, xff), ip("198.51.100.7"), "several header lines are one list");
        let h = headers(&[("forwarded", "for=6.6.6.6, for=_hidden")]);
        assert_eq!(resolve(proxy, &h, &trusted, fwd), proxy, "an obfuscated identifier ends the walk");
        let h = headers(&[("forwarded", "for=6.6.6.6, proto=https;by=10.0.0.2")]);
        assert_eq!(resolve(proxy, &h, &trusted, fwd), proxy, "an element without `for` ends the walk");
        let h = headers(&[("forwarded", "for=6.6.6.6;note=\"a, b\", for=198.51.100.9")]);
        assert_eq!(resolve(proxy, &h, &trusted, fwd), ip("198.51.100.9"));
        let h = headers(&[("forwarded", "for=198.51.100.9, for=6.6.6.6;note=\"a, b\"")]);
        assert_eq!(resolve(proxy, &h, &trusted, fwd), proxy, "a comma inside quotes never yields the forged hop");
        let h = headers(&[("forwarded", "FOR=\"[2001:db8:cafe::17]\";by=10.0.0.2")]);
        assert_eq!(resolve(proxy, &h, &trusted, fwd), ip("2001:db8:cafe::17"), "names are case-insensitive");
    }
}
