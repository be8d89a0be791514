//! The command line as a person uses it: ingress checks with exact
//! sentences, `warren dev`, admin CLI errors.

mod support;

use support::{warren, write_config, Edge};

async fn validate(yaml: &str) -> support::Out {
    let dir = support::temp_dir();
    let cfg = write_config(dir.path(), "config.yml", yaml);
    warren(
        &[
            "tunnel",
            "ingress",
            "validate",
            "--config",
            &cfg.display().to_string(),
        ],
        &[],
    )
    .await
}

async fn validate_error(yaml: &str) -> String {
    let o = validate(yaml).await;
    assert_eq!(o.code, 1, "validate should fail: {}", o.stdout);
    o.stderr
        .trim()
        .strip_prefix("error: ")
        .unwrap_or(&o.stderr)
        .to_owned()
}

#[tokio::test]
async fn ingress_validation_errors_are_exact_sentences() {
    assert_eq!(
        validate_error("ingress:\n  - hostname: a.example.com\n    service: http://localhost:8000\n").await,
        "ingress rule 1 is the last rule but it has a hostname or path, so some requests would match no rule; add a catch-all rule at the end, such as `- service: http_status:404`"
    );
    let bad_regex = validate_error(
        "ingress:\n  - hostname: a.example.com\n    path: \"(\"\n    service: http://localhost:8000\n  - service: http_status:404\n",
    )
    .await;
    assert!(
        bad_regex.starts_with("ingress rule 1 has an invalid path regex \"(\": ")
            && bad_regex.ends_with("; fix the regular expression"),
        "{bad_regex}"
    );
    assert_eq!(
        validate_error("ingress:\n  - hostname: a.example.com\n    service: gopher\n  - service: http_status:404\n").await,
        "ingress rule 1 has service \"gopher\" with an unknown scheme \"gopher\"; use http://, https://, tcp://, postgres://, unix:, http_status:NNN or hello_world"
    );
    // Another scheme is raw TCP, as cloudflared has it, so it needs a port.
    assert_eq!(
        validate_error("ingress:\n  - hostname: a.example.com\n    service: ftp://x\n  - service: http_status:404\n").await,
        "ingress rule 1 has service \"ftp://x\" with no port; add one, as in tcp://localhost:5432"
    );
    assert_eq!(
        validate_error("ingress:\n  - hostname: a.example.com\n    service: tcp://localhost:99999\n  - service: http_status:404\n").await,
        "ingress rule 1 has service \"tcp://localhost:99999\" with an invalid port \"99999\"; use a number from 1 to 65535"
    );
    let o = validate(
        "ingress:\n  - hostname: a.example.com\n    service: http://localhost:8000\n  - service: http_status:404\n",
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.starts_with("OK: 2 ingress rules"), "{}", o.stdout);
}

#[tokio::test]
async fn validate_runs_the_checks_tunnel_run_does() {
    // Parsing alone accepts this; setting up the origin reads the CA file,
    // which is not there: `validate` must say so, as `tunnel run` would.
    let e = validate_error(
        "ingress:\n  - hostname: a.example.com\n    service: https://localhost:8443\n    originRequest:\n      caPool: /nonexistent/ca.pem\n  - service: http_status:404\n",
    )
    .await;
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[tokio::test]
async fn config_files_over_the_size_bound_are_refused_before_they_are_read() {
    let o = warren(
        &["tunnel", "ingress", "validate", "--config", "/dev/zero"],
        &[],
    )
    .await;
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(
        o.stderr
            .contains("is larger than 1048576 bytes, so it was not read")
            && o.stderr.contains("--max-config-size"),
        "{}",
        o.stderr
    );
    // A big but legitimate config passes once the bound is raised.
    let dir = support::temp_dir();
    let mut yaml = String::from("ingress:\n");
    for i in 0..20_000 {
        yaml.push_str(&format!(
            "  - hostname: h{i}.example.com\n    service: http://localhost:8000\n"
        ));
    }
    yaml.push_str("  - service: http_status:404\n");
    let cfg = write_config(dir.path(), "big.yml", &yaml)
        .display()
        .to_string();
    let o = warren(&["tunnel", "ingress", "validate", "--config", &cfg], &[]).await;
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(o.stderr.contains("larger than"), "{}", o.stderr);
    let o = warren(
        &[
            "tunnel",
            "ingress",
            "validate",
            "--config",
            &cfg,
            "--max-config-size",
            "4194304",
        ],
        &[],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.starts_with("OK: 20001 ingress rules"),
        "{}",
        o.stdout
    );
    // The edge's own config file is bounded too.
    let o = warren(&["edge", "--config", "/dev/zero"], &[]).await;
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(o.stderr.contains("larger than"), "{}", o.stderr);
}

#[tokio::test]
async fn ingress_rule_names_the_matching_rule() {
    let dir = support::temp_dir();
    let cfg = write_config(
        dir.path(),
        "config.yml",
        "ingress:\n  - hostname: app.example.com\n    path: ^/api/\n    service: http://localhost:8001\n  - hostname: \"*.example.com\"\n    service: http://localhost:8002\n  - service: http_status:404\n",
    );
    let cfg = cfg.display().to_string();
    let o = warren(
        &[
            "tunnel",
            "ingress",
            "rule",
            "https://app.example.com/api/x",
            "--config",
            &cfg,
        ],
        &[],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("rule 1") && o.stdout.contains("localhost:8001"),
        "{}",
        o.stdout
    );
    let o = warren(
        &[
            "tunnel",
            "ingress",
            "rule",
            "https://app.example.com/other",
            "--config",
            &cfg,
        ],
        &[],
    )
    .await;
    assert!(
        o.stdout.contains("rule 2") && o.stdout.contains("localhost:8002"),
        "{}",
        o.stdout
    );
    let o = warren(
        &[
            "tunnel",
            "ingress",
            "rule",
            "https://elsewhere.org/",
            "--config",
            &cfg,
        ],
        &[],
    )
    .await;
    assert!(
        o.stdout.contains("rule 3") && o.stdout.contains("http_status:404"),
        "{}",
        o.stdout
    );
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_prints_a_url_that_works_with_curl() {
    let dir = support::temp_dir();
    let data = dir.path().join("dev").display().to_string();
    let mut dev = tokio::process::Command::new(support::warren_bin())
        .args(["dev", "--data-dir", &data])
        .args([
            "--listen-https",
            "127.0.0.1:0",
            "--listen-http",
            "127.0.0.1:0",
        ])
        .args([
            "--listen-tunnel",
            "127.0.0.1:0",
            "--listen-admin",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(dev.stdout.take().unwrap());
    let mut seen = String::new();
    let curl_line = tokio::time::timeout(support::DEADLINE, async {
        use tokio::io::AsyncBufReadExt;
        loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).await.unwrap() == 0 {
                panic!("warren dev exited; printed:\n{seen}");
            }
            seen.push_str(&line);
            if let Some(c) = line.trim().strip_prefix("Try:") {
                return c.trim().to_owned();
            }
        }
    })
    .await
    .expect("warren dev prints a curl line");
    assert!(seen.contains("URL:   https://hello.localhost:"), "{seen}");
    // Run the printed line as printed.
    let o = tokio::process::Command::new("sh")
        .args(["-c", &format!("{curl_line} -sS")])
        .output()
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&o.stdout);
    assert!(
        body.contains("Hello from Warren"),
        "{body} {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_errors_are_one_sentence() {
    let dir = support::temp_dir();
    let edge = Edge::start(dir.path()).await;
    let api = format!("http://{}", edge.admin);

    let o = warren(&["tunnel", "list"], &[("WARREN_API", &api)]).await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("WARREN_API_TOKEN"), "{}", o.stderr);

    let o = warren(
        &["tunnel", "list"],
        &[("WARREN_API", &api), ("WARREN_API_TOKEN", "wat_wrong")],
    )
    .await;
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);

    let o = edge.cli(&["tunnel", "info", "nope"]).await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("no tunnel named"), "{}", o.stderr);

    assert_eq!(edge.cli(&["tunnel", "create", "office"]).await.code, 0);
    let o = edge.cli(&["tunnel", "create", "office"]).await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("already exists"), "{}", o.stderr);

    // `tunnel token` prints exactly one line: the token.
    let o = edge.cli(&["tunnel", "token", "office"]).await;
    assert_eq!(o.stdout.lines().count(), 1);
    assert!(warren_proto::token::TunnelToken::decode(o.stdout.trim()).is_ok());

    // A connector whose CA file is missing says why once, not once per
    // layer of the error.
    let o = warren(
        &[
            "tunnel",
            "run",
            "--ca-cert",
            "/nonexistent/ca.pem",
            "--url",
            "hello_world",
        ],
        &[("WARREN_TOKEN", o.stdout.trim())],
    )
    .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    let line = o.stderr.lines().last().unwrap_or_default();
    assert!(line.contains("/nonexistent/ca.pem"), "{}", o.stderr);
    assert_eq!(
        line.matches("No such file").count(),
        1,
        "the cause is said once: {}",
        o.stderr
    );

    let o = warren(
        &["tunnel", "list"],
        &[
            ("WARREN_API", "http://127.0.0.1:1"),
            ("WARREN_API_TOKEN", "x"),
        ],
    )
    .await;
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("cannot reach the Warren admin API"),
        "{}",
        o.stderr
    );
}
