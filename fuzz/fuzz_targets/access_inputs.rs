//! What a client controls in access control: a presented identity token
//! (cookie or header), a client certificate at the native PostgreSQL
//! listener, and percent-encoded query values of the sign-in flow. None may
//! panic; a token that verifies must be one the key signed.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warren_edge::access::keys::Keys;
use warren_store::SigningKeyRow;

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &ring::rand::SystemRandom::new(),
        )
        .unwrap();
        Keys::from_rows(&[SigningKeyRow {
            kid: "k1".into(),
            pkcs8: pkcs8.as_ref().to_vec(),
            created_at: 0,
        }])
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Forged tokens never verify (the fuzzer cannot sign with the key).
    assert!(keys().verify(&text, "tag").is_err());
    let _ = warren_edge::access::pgcert::read(data);
    let _ = warren_edge::access::oidc::decode(&text);
});
