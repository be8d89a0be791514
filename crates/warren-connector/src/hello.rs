//! The built-in `hello_world` origin: a small page that proves the whole
//! path works, plus an echo of what arrived.

use bytes::Bytes;
use warren_proto::stream::{Headers, HttpHead};

/// Answers a request to the `hello_world` service.
pub(crate) fn respond(head: &HttpHead) -> (u16, Headers, Bytes) {
    let forwarded_for = head
        .headers
        .iter()
        .find(|(k, _)| k == "x-forwarded-for")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    let body = format!(
        "Hello from Warren!\n\nThis page is served by the connector's built-in hello_world origin,\nreached through the edge and the tunnel.\n\nhost: {}\nmethod: {}\npath: {}\nclient: {}\nx-forwarded-for: {}\n",
        head.host, head.method, head.path, head.client.addr, forwarded_for
    );
    let headers = vec![
        (
            "content-type".to_owned(),
            b"text/plain; charset=utf-8".to_vec(),
        ),
        (
            "content-length".to_owned(),
            body.len().to_string().into_bytes(),
        ),
    ];
    (200, headers, Bytes::from(body))
}
