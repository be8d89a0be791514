//! Query values: reading a parameter, percent-encoding and decoding.

use http::Uri;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The decoded value of query parameter `name`.
pub fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| decode(v))
    })
}

/// What stays as it is in a query value: RFC 3986's unreserved characters.
pub(crate) const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Decodes a percent-encoded query value (`+` is a space).
pub fn decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_round_trip() {
        let uri: Uri = format!("/cb?code={}&state=x%2By", encode("a b/c&d="))
            .parse()
            .unwrap();
        assert_eq!(query_param(&uri, "code").unwrap(), "a b/c&d=");
        assert_eq!(query_param(&uri, "state").unwrap(), "x+y");
        assert_eq!(query_param(&uri, "nope"), None);
        assert_eq!(decode("%zz%4"), "%zz%4");
    }
}
