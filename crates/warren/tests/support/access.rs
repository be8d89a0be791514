//! Access-control helpers: service tokens, application tags, and checking
//! the signed identity an origin receives against the edge's JWKS, as an
//! origin would.

use serde_json::Value;

use super::Edge;

/// A service token's credentials.
pub struct ServiceToken {
    pub id: String,
    pub secret: String,
}

impl ServiceToken {
    /// curl arguments sending the token with Warren's header names.
    pub fn headers(&self) -> Vec<String> {
        vec![
            "-H".into(),
            format!("Warren-Access-Client-Id: {}", self.id),
            "-H".into(),
            format!("Warren-Access-Client-Secret: {}", self.secret),
        ]
    }

    /// Environment for `warren access tcp`.
    pub fn env(&self) -> [(&'static str, &str); 2] {
        [
            ("WARREN_SERVICE_TOKEN_ID", self.id.as_str()),
            ("WARREN_SERVICE_TOKEN_SECRET", self.secret.as_str()),
        ]
    }
}

impl Edge {
    /// Runs an admin CLI command that must succeed; its stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let o = self.cli(args).await;
        assert_eq!(o.code, 0, "warren {}: {}", args.join(" "), o.stderr);
        o.stdout
    }

    /// Creates a service token.
    pub async fn service_token(&self, name: &str) -> ServiceToken {
        let out = self
            .ok(&[
                "access",
                "service-token",
                "create",
                name,
                "--output",
                "json",
            ])
            .await;
        let v: Value = serde_json::from_str(&out).unwrap();
        ServiceToken {
            id: v["client_id"].as_str().unwrap().to_owned(),
            secret: v["client_secret"].as_str().unwrap().to_owned(),
        }
    }

    /// The audience tag of an application.
    pub async fn app_tag(&self, app: &str) -> String {
        let out = self
            .ok(&["access", "app", "show", app, "--output", "json"])
            .await;
        let v: Value = serde_json::from_str(&out).unwrap();
        v["tag"].as_str().unwrap().to_owned()
    }

    /// The audit log as JSON.
    pub async fn audit(&self) -> Vec<Value> {
        let out = self.ok(&["audit", "list", "--output", "json"]).await;
        serde_json::from_str(&out).unwrap()
    }
}

/// Verifies `jwt` (ES256) against the JWKS document `jwks` for audience
/// `aud` and issuer `https://{host}`; returns its claims.
pub fn verify_assertion(jwt: &str, jwks: &str, aud: &str, host: &str) -> Value {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(jwks).expect("JWKS parses");
    let header = jsonwebtoken::decode_header(jwt).expect("JWT header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let kid = header.kid.expect("kid");
    let jwk = set.find(&kid).expect("the signing key is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&[aud]);
    v.set_issuer(&[format!("https://{host}")]);
    jsonwebtoken::decode::<Value>(jwt, &key, &v)
        .expect("the assertion verifies")
        .claims
}
