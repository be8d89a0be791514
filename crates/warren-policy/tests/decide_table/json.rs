//! The JSON shape applications are stored in.

use warren_policy::{decide, Action, Application, Facts, Rule};

use super::builders::*;

#[test]
fn application_json_shape() {
    let app = Application {
        path_prefix: Some("/admin".into()),
        ..app(vec![
            requiring(
                excluding(
                    allow("staff", vec![domain("example.com"), group("admins")]),
                    vec![range("10.0.0.0/8")],
                ),
                vec![Rule::Everyone],
            ),
            service("ci", vec![Rule::AnyServiceToken, token("deploy")]),
            p("bad", Action::Bypass, vec![range("10.0.0.0/33")]),
        ])
    };
    let json = serde_json::to_value(&app).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "name": "intranet",
            "hostnames": ["intranet.example.com"],
            "path_prefix": "/admin",
            "session_duration_secs": 3600,
            "policies": [
                {
                    "name": "staff",
                    "action": "allow",
                    "include": [{"email_domain": "example.com"}, {"group": "admins"}],
                    "exclude": [{"ip_range": "10.0.0.0/8"}],
                    "require": ["everyone"]
                },
                {
                    "name": "ci",
                    "action": "service_auth",
                    "include": ["any_service_token", {"service_token": "deploy"}],
                    "exclude": [],
                    "require": []
                },
                {
                    "name": "bad",
                    "action": "bypass",
                    "include": [{"ip_range": "10.0.0.0/33"}],
                    "exclude": [],
                    "require": []
                }
            ]
        })
    );
    // A bad range survives the store so validate can name it.
    let back: Application = serde_json::from_value(json).unwrap();
    assert_eq!(back, app);
    assert!(warren_policy::validate(&back).is_err());

    // A misspelt list must not be silently dropped (it would fail open).
    let typo = r#"{"name":"a","hostnames":["a.example.com"],"session_duration_secs":60,
        "policies":[{"name":"p","action":"allow","include":["everyone"],"exlude":[]}]}"#;
    assert!(serde_json::from_str::<Application>(typo).is_err());

    let facts = Facts::user("a@example.com", vec!["g".into()], ip("::1"));
    assert_eq!(
        serde_json::to_value(&facts).unwrap(),
        serde_json::json!({
            "identity": {"type": "user", "email": "a@example.com", "groups": ["g"]},
            "source_ip": "::1"
        })
    );
    let decision = decide(&app, &Facts::service_token("deploy", ip("192.0.2.1")));
    assert_eq!(
        serde_json::to_value(&decision).unwrap(),
        serde_json::json!({
            "outcome": "allow",
            "policy": "ci",
            "rule": "include any_service_token"
        })
    );
}
