//! `warren apply` and `warren export` against real edges: a dry run
//! changes nothing, an apply makes the edge match (and a connector with
//! only its token serves the applied ingress), a second apply is a no-op,
//! `--prune` deletes what the file no longer names, a bad file changes
//! nothing at all (one transaction), and export -> apply on a fresh edge
//! reproduces the state.

mod support;

use support::{write_config, Connector, Edge};

const IDP_VAR: &str = "WARREN_IDP_CORP_CLIENT_SECRET";
const CI_VAR: &str = "WARREN_TEST_CI_SECRET";

/// The declared state; `lab` and its route only when `with_lab`.
fn declared(with_lab: bool, weights: (i64, i64)) -> String {
    let lab = if with_lab { "  - name: lab\n" } else { "" };
    let lb = if with_lab {
        format!(
            "  - hostname: lb.example.com\n    steering: weighted\n    tunnels:\n      - {{tunnel: office, weight: {}}}\n      - {{tunnel: lab, weight: {}}}\n",
            weights.0, weights.1
        )
    } else {
        String::new()
    };
    format!(
        "tunnels:
  - name: office
    ingress: |
      ingress:
        - hostname: app.example.com
          service: hello_world
        - hostname: ssh.example.com
          service: bastion
        - service: http_status:404
{lab}routes:
  - hostname: app.example.com
    tunnel: office
    public: true
  - hostname: ssh.example.com
    tunnel: office
    public: true
{lb}identity_providers:
  - name: corp
    issuer: http://127.0.0.1:9/
    client_id: warren
    client_secret_env: {IDP_VAR}
apps:
  - name: wiki
    hostnames: [wiki.example.com]
    policies:
      - name: staff
        action: allow
        include: [{{email_domain: example.com}}]
service_tokens:
  - name: ci
    secret_env: {CI_VAR}
  - name: deploy
"
    )
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_plans_applies_prunes_and_refuses_a_bad_file_whole() {
    let dir = support::temp_dir();
    let edge = Edge::start(dir.path()).await;
    let env = [(IDP_VAR, "idp-secret"), (CI_VAR, "ci-secret")];
    let file = write_config(dir.path(), "warren.yaml", &declared(true, (3, 1)));
    let file = file.display().to_string();

    // A dry run shows the plan and changes nothing.
    let o = edge
        .cli_with_env(&["apply", "-f", &file, "--dry-run"], &env)
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    for line in [
        "+ create tunnel office",
        "+ create tunnel lab",
        "+ create ingress office",
        "+ create route app.example.com",
        "+ create route ssh.example.com",
        "+ create route lb.example.com",
        "+ create identity provider corp",
        "+ create app wiki",
        "+ create service token ci",
        "+ create service token deploy",
        "Plan: 10 to create, 0 to update, 0 to delete.",
        "Dry run: nothing was changed.",
    ] {
        assert!(
            o.stdout.contains(line),
            "{line:?} missing in:\n{}",
            o.stdout
        );
    }
    let o = edge.cli(&["tunnel", "list", "-o", "json"]).await;
    assert_eq!(o.stdout.trim(), "[]", "a dry run created tunnels");

    // The apply; the token made by the edge is shown once.
    let o = edge.cli_with_env(&["apply", "-f", &file], &env).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("Applied."), "{}", o.stdout);
    assert!(
        o.stdout.contains("service token deploy: client id ") && o.stdout.contains("(shown once"),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("ci-secret"), "a secret was printed");
    assert!(
        o.stdout
            .contains("warning: tunnel office: the `bastion` service is not supported"),
        "{}",
        o.stdout
    );

    // A connector with nothing but its token serves the applied ingress.
    let token = edge.token_of("office").await;
    let _connector = Connector::start(&edge, &token, &[], dir.path());
    edge.wait_connections("office", 2).await;
    let r = edge.curl("app.example.com", "/", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // cloudflared's bastion rule loaded, and answers with what to do.
    let r = edge.curl("ssh.example.com", "/", &[]).await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(
        r.body
            .contains("which Warren does not support: Warren has no bastion mode"),
        "{}",
        r.body
    );

    // The same file again: nothing to do.
    let o = edge.cli_with_env(&["apply", "-f", &file], &env).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout
            .contains("No changes: the edge already matches the file."),
        "{}",
        o.stdout
    );

    // Weights change and lab leaves the file: without --prune lab stays.
    std::fs::write(&file, declared(false, (0, 0))).unwrap();
    let o = edge.cli_with_env(&["apply", "-f", &file], &env).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("No changes"), "{}", o.stdout);
    std::fs::write(&file, declared(true, (1, 1))).unwrap();
    let o = edge.cli_with_env(&["apply", "-f", &file], &env).await;
    assert!(
        o.stdout
            .contains("~ update route lb.example.com (weighted [office:3, lab:1] -> weighted [office:1, lab:1])"),
        "{}",
        o.stdout
    );
    std::fs::write(&file, declared(false, (0, 0))).unwrap();
    let o = edge
        .cli_with_env(&["apply", "-f", &file, "--prune"], &env)
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    for line in [
        "- delete route lb.example.com",
        "- delete tunnel lab",
        "Plan: 0 to create, 0 to update, 2 to delete.",
    ] {
        assert!(
            o.stdout.contains(line),
            "{line:?} missing in:\n{}",
            o.stdout
        );
    }
    let o = edge.cli(&["tunnel", "info", "lab"]).await;
    assert_ne!(o.code, 0, "lab survived --prune");

    // A bad file changes nothing: `fresh` would be created before the
    // store refuses the second tunnel's name, and is rolled back with it.
    let bad = write_config(
        dir.path(),
        "bad.yaml",
        "tunnels:\n  - name: fresh\n  - name: \"no spaces allowed\"\nroutes:\n  - {hostname: fresh.example.com, tunnel: fresh}\n",
    );
    let o = edge.cli(&["apply", "-f", &bad.display().to_string()]).await;
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(o.stderr.contains("no spaces allowed"), "{}", o.stderr);
    let o = edge.cli(&["tunnel", "info", "fresh"]).await;
    assert_ne!(o.code, 0, "a refused apply left tunnel fresh behind");
    // And a dry run finds the same error.
    let o = edge
        .cli(&["apply", "-f", &bad.display().to_string(), "--dry-run"])
        .await;
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(o.stderr.contains("no spaces allowed"), "{}", o.stderr);

    // A file that is not a declared state, with the reason.
    let typo = write_config(dir.path(), "typo.yaml", "tunnel:\n  - name: x\n");
    let o = edge
        .cli(&["apply", "-f", &typo.display().to_string()])
        .await;
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("unknown field `tunnel`"), "{}", o.stderr);

    // A client id that could not travel in a header.
    let bad_id = write_config(
        dir.path(),
        "bad-id.yaml",
        "service_tokens:\n  - {name: odd, client_id: \"a b\"}\n",
    );
    let o = edge
        .cli(&["apply", "-f", &bad_id.display().to_string()])
        .await;
    assert_ne!(o.code, 0);
    assert!(
        o.stderr
            .contains("has client id \"a b\"; use 1 to 128 letters"),
        "{}",
        o.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_apply_on_a_fresh_edge_reproduces_the_state() {
    let dir = support::temp_dir();
    let first_dir = support::temp_dir();
    let first = Edge::start(first_dir.path()).await;
    let env = [(IDP_VAR, "idp-secret"), (CI_VAR, "ci-secret")];
    let file = write_config(dir.path(), "warren.yaml", &declared(true, (3, 1)));
    let o = first
        .cli_with_env(&["apply", "-f", &file.display().to_string()], &env)
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);

    let exported = dir.path().join("exported.yaml");
    let exported = exported.display().to_string();
    let o = first.cli(&["export", "-f", &exported]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stderr.contains(&format!("set {IDP_VAR} before applying")),
        "{}",
        o.stderr
    );
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(
        !text.contains("idp-secret") && !text.contains("ci-secret"),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&exported).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the export is readable by others");

    let second_dir = support::temp_dir();
    let second = Edge::start(second_dir.path()).await;
    let o = second
        .cli_with_env(&["apply", "-f", &exported], &[(IDP_VAR, "idp-secret")])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("Applied."), "{}", o.stdout);
    let again = second.cli(&["export"]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.stdout, text, "the second edge's state differs");
    // The first edge's export applied to itself is a no-op.
    let o = first
        .cli_with_env(&["apply", "-f", &exported], &[(IDP_VAR, "idp-secret")])
        .await;
    assert!(o.stdout.contains("No changes"), "{}", o.stdout);
}
