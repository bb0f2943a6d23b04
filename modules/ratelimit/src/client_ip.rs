//! The client address: the peer, unless the peer is a trusted proxy; then the rightmost
//! address in `X-Forwarded-For` (or `Forwarded: for=`) that is not itself a trusted proxy.
//! Headers from untrusted peers are ignored entirely, so spoofing them changes nothing.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use poem::{Request, http::HeaderMap};

/// Picks the client address of `req` given the trusted proxy networks.
pub fn client_ip(req: &Request, trusted: &[IpNet]) -> IpAddr {
    let peer =
        req.remote_addr().as_socket_addr().map(|a| canonical(a.ip())).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    resolve(peer, req.headers(), trusted)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// The hops a proxy chain reports, oldest first: `X-Forwarded-For`, else `Forwarded`.
fn forwarded_hops(headers: &HeaderMap) -> Vec<IpAddr> {
    let xff: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok().map(canonical))
        .collect();
    if !xff.is_empty() {
        return xff;
    }
    headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .flat_map(|element| element.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("for") {
                return None;
            }
            let value = value.trim().trim_matches('"');
            // `for="[2001:db8::1]:4711"` or `for=192.0.2.60:80`.
            let host = match value.strip_prefix('[') {
                Some(rest) => rest.split(']').next()?,
                None => value.split(':').next()?,
            };
            host.parse::<IpAddr>().ok().map(canonical)
        })
        .collect()
}

fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    // Walk from the nearest hop outwards; the first untrusted one is the client. When every
    // hop is trusted (or there are none), the oldest one reported is the best answer.
    let hops = forwarded_hops(headers);
    hops.iter().rev().find(|ip| !is_trusted(**ip, trusted)).or(hops.first()).copied().unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

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
        assert_eq!(resolve(ip("203.0.113.9"), &h, &[]), ip("203.0.113.9"));
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        assert_eq!(resolve(ip("203.0.113.9"), &h, &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn trusted_proxies_yield_the_rightmost_untrusted_hop() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        // The client forged the first entry; the proxy appended the real address.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("198.51.100.7"));
        let h = headers(&[("forwarded", "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\"")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("2001:db8::1"));
        assert_eq!(resolve(ip("10.0.0.1"), &HeaderMap::new(), &trusted), ip("10.0.0.1"));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(canonical(mapped), ip("10.0.0.1"));
    }
}
