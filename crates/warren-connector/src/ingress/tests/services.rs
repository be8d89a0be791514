//! Services: schemes, default ports, Unix sockets, PostgreSQL and sslmode.

use std::path::PathBuf;

use super::*;

#[test]
fn http_services_fill_default_ports() {
    assert_eq!(
        service("http://localhost"),
        Service::Http {
            scheme_https: false,
            authority: "localhost:80".into(),
            host: "localhost".into(),
            port: 80,
            base_path: String::new(),
        }
    );
    assert_eq!(
        service("https://origin.internal/"),
        Service::Http {
            scheme_https: true,
            authority: "origin.internal:443".into(),
            host: "origin.internal".into(),
            port: 443,
            base_path: String::new(),
        }
    );
    assert_eq!(
        service("HTTP://127.0.0.1:8080"),
        Service::Http {
            scheme_https: false,
            authority: "127.0.0.1:8080".into(),
            host: "127.0.0.1".into(),
            port: 8080,
            base_path: String::new(),
        }
    );
    assert_eq!(
        service("https://[::1]:8443"),
        Service::Http {
            scheme_https: true,
            authority: "[::1]:8443".into(),
            host: "::1".into(),
            port: 8443,
            base_path: String::new(),
        }
    );
}

#[test]
fn tcp_and_special_services() {
    assert_eq!(
        service("tcp://localhost:5432"),
        Service::Tcp {
            host: "localhost".into(),
            port: 5432
        }
    );
    assert_eq!(
        service("ssh://bastion:2222"),
        Service::Tcp {
            host: "bastion".into(),
            port: 2222
        }
    );
    assert_eq!(service("http_status:503"), Service::HttpStatus(503));
    assert_eq!(service("http_status:100"), Service::HttpStatus(100));
    assert_eq!(service("http_status:599"), Service::HttpStatus(599));
    assert_eq!(service("hello_world"), Service::HelloWorld);
}

#[test]
fn unix_services() {
    assert_eq!(
        service("unix:/run/app.sock"),
        Service::Unix {
            path: PathBuf::from("/run/app.sock"),
            tls: false
        }
    );
    assert_eq!(
        service("unix:///run/app.sock"),
        Service::Unix {
            path: PathBuf::from("/run/app.sock"),
            tls: false
        }
    );
    assert_eq!(
        service("unix+tls:/run/app.sock"),
        Service::Unix {
            path: PathBuf::from("/run/app.sock"),
            tls: true
        }
    );
    assert_eq!(
        service("unix:relative/app.sock"),
        Service::Unix {
            path: PathBuf::from("relative/app.sock"),
            tls: false
        }
    );
}

#[test]
fn service_display_round_trips() {
    for svc in [
        "http://localhost:8000",
        "http://localhost",
        "https://localhost",
        "https://localhost:8443",
        "https://[::1]:8443",
        "tcp://localhost:5432",
        "tcp://[::1]:5432",
        "unix:/run/app.sock",
        "unix+tls:/run/app.sock",
        "http_status:404",
        "hello_world",
    ] {
        assert_eq!(service(svc).to_string(), svc);
    }
    assert_eq!(
        service("http://localhost:80/").to_string(),
        "http://localhost"
    );
    assert_eq!(service("ssh://localhost").to_string(), "tcp://localhost:22");
}

#[test]
fn postgres_services_and_sslmode() {
    assert_eq!(
        service("postgres://db.internal"),
        Service::Postgres {
            host: "db.internal".into(),
            port: 5432
        }
    );
    let s = service("postgresql://[::1]:6432");
    assert_eq!(s.to_string(), "postgres://[::1]:6432");
    assert_eq!(service("postgres://db:5432").to_string(), "postgres://db");
    assert_eq!(origin("{}").sslmode, SslMode::VerifyFull);
    for (text, mode) in [
        ("verify-full", SslMode::VerifyFull),
        ("verify-ca", SslMode::VerifyCa),
        ("require", SslMode::Require),
        ("Disable", SslMode::Disable),
    ] {
        assert_eq!(origin(&format!("{{ sslmode: {text} }}")).sslmode, mode);
    }
    assert_eq!(
        origin_err("{ sslmode: prefer }"),
        "ingress rule 1 has an invalid originRequest.sslmode \"prefer\"; use verify-full (the default), verify-ca, require or disable"
    );
}

#[test]
fn cloudflared_spellings_are_accepted() {
    assert_eq!(service("hello-world"), Service::HelloWorld);
    assert!(matches!(
        service("ws://localhost:8080"),
        Service::Http {
            scheme_https: false,
            port: 8080,
            ..
        }
    ));
    assert!(matches!(
        service("wss://chat.internal"),
        Service::Http {
            scheme_https: true,
            port: 443,
            ..
        }
    ));
    // YAML 1.1 booleans, as cloudflared's decoder reads them.
    for (yes, want) in [("yes", true), ("on", true), ("No", false), ("off", false)] {
        let o = origin(&format!("{{ noTLSVerify: {yes}, http2Origin: {yes} }}"));
        assert_eq!(o.no_tls_verify, want, "{yes}");
        assert_eq!(o.http2_origin, want, "{yes}");
    }
}
