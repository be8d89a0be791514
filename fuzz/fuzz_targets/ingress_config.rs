//! Arbitrary text as an ingress config: parse and validate must never
//! panic; a config that loads must answer `find` for any host and path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_connector::ingress::IngressConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cfg) = IngressConfig::from_yaml(text) {
            let (i, rule) = cfg.find("app.example.com", "/x");
            let _ = rule.describe(i);
        }
    }
});
