//! What crosses the edge of an HTTP request: the hostname it is for,
//! the request head the origin receives (hop-by-hop headers, the edge's
//! credentials and cookies removed; the signed identity and
//! `X-Forwarded-*` added), and the response head the client receives.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use warren_proto::stream::{ClientInfo, HttpHead};
use warren_transport::body::{headers_from_wire, BoxBody};

use crate::access;
use crate::pages::EdgeFailure;

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
];

/// The hostname a request is for, lower-case, without port.
pub(crate) fn identify<B>(req: &Request<B>) -> Result<String, EdgeFailure> {
    let raw = req
        .uri()
        .authority()
        .map(|a| a.host().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(strip_port)
        })
        .ok_or(EdgeFailure::NoHost)?;
    let host = raw.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return Err(EdgeFailure::NoHost);
    }
    Ok(host)
}

fn strip_port(h: &str) -> String {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_owned();
    }
    h.rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(h)
        .to_owned()
}

/// `host[:port]` as the client addressed the edge.
pub(crate) fn authority<B>(req: &Request<B>, host: &str) -> String {
    let raw = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| host.to_owned());
    // Keep only a port after the host we routed on.
    match raw.rsplit_once(':') {
        Some((_, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{host}:{port}")
        }
        _ => host.to_owned(),
    }
}

/// Whether the client is a browser navigating (so a sign-in redirect
/// makes sense) rather than an API client.
pub(crate) fn wants_html<B>(req: &Request<B>) -> bool {
    matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD)
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

/// What the origin receives of a client's request: hop-by-hop headers,
/// the edge's credentials and cookies removed; the signed identity and
/// `X-Forwarded-*` added.
pub(crate) fn head(
    req: &Request<Incoming>,
    host: &str,
    client: ClientInfo,
    has_body: bool,
    keep_upgrade: bool,
    assertion: Option<String>,
) -> HttpHead {
    let mut headers = Vec::with_capacity(req.headers().len() + 3);
    let named_in_connection = connection_tokens(req.headers());
    for (name, value) in req.headers() {
        let n = name.as_str();
        let hop = HOP_BY_HOP.contains(&n) || named_in_connection.iter().any(|t| t == n);
        let keep = keep_upgrade && (n == "upgrade" || n == "connection");
        let trailers_te = n == "te" && value.as_bytes().eq_ignore_ascii_case(b"trailers");
        if (hop && !keep && !trailers_te) || n == "x-forwarded-proto" || n == "x-forwarded-host" {
            continue;
        }
        if n == "x-forwarded-for" || access::CREDENTIAL_HEADERS.contains(&n) {
            continue;
        }
        if n == "cookie" {
            // The edge's own cookies stay at the edge.
            if let Some(v) = without_edge_cookies(value) {
                headers.push((n.to_owned(), v));
            }
            continue;
        }
        headers.push((n.to_owned(), value.as_bytes().to_vec()));
    }
    if let Some(jwt) = assertion {
        headers.push((access::ASSERTION_HEADER.into(), jwt.into_bytes()));
    }
    // X-Forwarded-*: append the client to any chain the client sent.
    let client_ip = client
        .addr
        .parse::<SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| client.addr.clone());
    let prior: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let xff = if prior.is_empty() {
        client_ip
    } else {
        format!("{}, {client_ip}", prior.join(", "))
    };
    headers.push(("x-forwarded-for".into(), xff.into_bytes()));
    headers.push((
        "x-forwarded-proto".into(),
        client.scheme.clone().into_bytes(),
    ));
    let fwd_host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.as_bytes().to_vec())
        .or_else(|| {
            req.uri()
                .authority()
                .map(|a| a.as_str().as_bytes().to_vec())
        })
        .unwrap_or_else(|| host.as_bytes().to_vec());
    headers.push(("x-forwarded-host".into(), fwd_host));
    HttpHead {
        method: req.method().as_str().to_owned(),
        host: host.to_owned(),
        path: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into()),
        headers,
        client,
        has_body,
    }
}

/// A `Cookie` value without the edge's session and sign-in cookies;
/// `None` if nothing is left.
fn without_edge_cookies(v: &HeaderValue) -> Option<Vec<u8>> {
    let Ok(text) = v.to_str() else {
        return Some(v.as_bytes().to_vec());
    };
    let kept: Vec<&str> = text
        .split(';')
        .map(str::trim)
        .filter(|c| {
            let name = c.split('=').next().unwrap_or("");
            !c.is_empty() && name != access::COOKIE && name != "warren_login"
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; ").into_bytes())
}

pub(crate) fn connection_tokens(h: &HeaderMap) -> Vec<String> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether the request asks for an HTTP/1.1 upgrade.
pub(crate) fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.version() <= http::Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && connection_tokens(req.headers())
            .iter()
            .any(|t| t == "upgrade")
}

/// The client's response from the origin's head, hop-by-hop headers
/// removed (except `Upgrade`/`Connection` on a 101).
pub(crate) fn response(
    status: u16,
    headers: warren_proto::stream::Headers,
    body: BoxBody,
    upgrade: bool,
) -> Result<Response<BoxBody>, EdgeFailure> {
    let status = StatusCode::from_u16(status).map_err(|_| EdgeFailure::Tunnel {
        host: String::new(),
        reason: "invalid status".into(),
    })?;
    let mut map = headers_from_wire(headers);
    let named = connection_tokens(&map);
    for h in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        if upgrade && (h == "upgrade" || h == "connection") {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(h.as_bytes()) {
            map.remove(name);
        }
    }
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = map;
    Ok(resp)
}

/// The value for an HTTP → HTTPS redirect's `Location`, for a request
/// whose `Host` is a host name the edge serves (`serves`); never any other
/// name, so the edge cannot be made to redirect elsewhere.
pub(crate) fn https_location(
    host_header: Option<&HeaderValue>,
    path: &str,
    https_port: u16,
    serves: impl Fn(&str) -> bool,
) -> Result<String, EdgeFailure> {
    let raw = host_header
        .and_then(|h| h.to_str().ok())
        .ok_or(EdgeFailure::NoHost)?;
    let host = strip_port(raw).trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return Err(EdgeFailure::NoHost);
    }
    if !is_host_name(&host) {
        return Err(EdgeFailure::BadRequest {
            reason: "the Host header is not a host name".into(),
        });
    }
    if !serves(&host) {
        return Err(EdgeFailure::UnknownHost { host });
    }
    Ok(if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    })
}

/// Whether `host` (lower-case) is a DNS name: labels of letters, digits,
/// `-` and `_`, 1 to 63 bytes each, 253 in all.
fn is_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ports_and_brackets() {
        assert_eq!(strip_port("app.example.com:8443"), "app.example.com");
        assert_eq!(strip_port("app.example.com"), "app.example.com");
        assert_eq!(strip_port("[::1]:8443"), "::1");
    }

    #[test]
    fn identifies_host_from_header_or_authority() {
        let r = Request::builder()
            .uri("/x")
            .header("host", "App.Example.com:8443")
            .body(())
            .unwrap();
        assert_eq!(identify(&r).unwrap(), "app.example.com");
        let r = Request::builder()
            .uri("https://h2.example.com/x")
            .body(())
            .unwrap();
        assert_eq!(identify(&r).unwrap(), "h2.example.com");
        let r = Request::builder().uri("/x").body(()).unwrap();
        assert_eq!(identify(&r), Err(EdgeFailure::NoHost));
    }

    #[test]
    fn redirect_location() {
        let served = |h: &str| h == "app.example.com";
        let h = HeaderValue::from_static("App.Example.com:8080");
        assert_eq!(
            https_location(Some(&h), "/a?b", 8443, served).unwrap(),
            "https://app.example.com:8443/a?b"
        );
        assert_eq!(
            https_location(Some(&h), "/", 443, served).unwrap(),
            "https://app.example.com/"
        );
    }

    #[test]
    fn redirects_only_names_the_edge_serves() {
        let served = |h: &str| h == "app.example.com";
        let loc = |host: &'static str| {
            https_location(Some(&HeaderValue::from_static(host)), "/", 443, served)
        };
        assert_eq!(
            loc("other.example.com"),
            Err(EdgeFailure::UnknownHost {
                host: "other.example.com".into()
            })
        );
        for bad in [
            "evil.invalid/x?",
            "a b",
            "app.example.com@evil.invalid",
            "a..b",
            "[::1",
        ] {
            assert!(
                matches!(loc(bad), Err(EdgeFailure::BadRequest { .. })),
                "{bad}: {:?}",
                loc(bad)
            );
        }
        assert_eq!(
            https_location(None, "/", 443, served),
            Err(EdgeFailure::NoHost)
        );
    }
}
