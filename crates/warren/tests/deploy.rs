//! `deploy/`: the Kubernetes manifests pass the Kubernetes API schemas
//! (`kubernetes-validate --strict`), the systemd units pass
//! `systemd-analyze verify`, and every `warren` command line and `WARREN_*`
//! variable they use is one this binary accepts, so the files cannot rot
//! as flags change.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use support::deps::{deploy_fixtures, require, Dep};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no *.{ext} in {dir}");
    found
}

/// `warren ARGS --help`: clap refuses an unknown flag or subcommand before
/// it prints help, so success means every one of `args` exists. Returns
/// the help text (which lists the `env:` names).
fn accepted(args: &[String], what: &str) -> String {
    let out = Command::new(support::warren_bin())
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: `warren {}` is not a command line warren accepts:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every `WARREN_*` name in `vars` must be one the command reads.
fn known_env(help: &str, vars: &[String], what: &str) {
    for var in vars.iter().filter(|v| v.starts_with("WARREN_")) {
        // WARREN_TOKEN is read by `tunnel run` itself (documented in its
        // --token-file help), not through clap.
        if var == "WARREN_TOKEN" {
            assert!(help.contains("WARREN_TOKEN"), "{what}: {var}");
            continue;
        }
        assert!(
            help.contains(&format!("env: {var}=")),
            "{what}: {var} is not a setting of this command"
        );
    }
}

#[derive(Deserialize)]
struct Doc {
    kind: String,
    #[serde(default)]
    spec: serde_norway::Value,
}

#[derive(Deserialize)]
struct Container {
    name: String,
    image: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<EnvVar>,
}

#[derive(Deserialize)]
struct EnvVar {
    name: String,
}

/// The containers of every workload in a manifest file.
fn containers(path: &Path) -> Vec<Container> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let doc = Doc::deserialize(doc).unwrap();
        if !matches!(doc.kind.as_str(), "Deployment" | "StatefulSet") {
            continue;
        }
        let list = doc.spec["template"]["spec"]["containers"].clone();
        out.extend(serde_norway::from_value::<Vec<Container>>(list).unwrap());
    }
    out
}

#[cfg_attr(
    warren_missing_kubernetes_validate,
    ignore = "needs kubernetes-validate; scripts/test-deps.sh installs it"
)]
#[test]
fn kubernetes_manifests_pass_the_api_schemas_and_use_real_flags() {
    require(Dep::KubeValidate);
    let manifests = files("deploy/kubernetes", "yaml");
    let out = Command::new("python3")
        .env(
            "PYTHONPATH",
            deploy_fixtures(env!("CARGO_MANIFEST_DIR").as_ref()).join("site"),
        )
        .args(["-m", "kubernetes_validate", "--strict", "-k", "1.31.0"])
        .args(&manifests)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    assert!(
        !report.contains("ERROR") && !report.contains("WARN"),
        "{report}"
    );

    let mut warren_containers = 0;
    for m in &manifests {
        for c in containers(m) {
            if !c.image.contains("/warren:") {
                continue;
            }
            warren_containers += 1;
            let what = format!("{} container {}", m.display(), c.name);
            let help = accepted(&c.args, &what);
            let vars: Vec<String> = c.env.into_iter().map(|e| e.name).collect();
            known_env(&help, &vars, &what);
        }
    }
    assert_eq!(warren_containers, 3, "edge, connector and sidecar");
}

#[cfg_attr(
    warren_missing_systemd_analyze,
    ignore = "needs systemd-analyze; .ci/run installs systemd"
)]
#[test]
fn systemd_units_verify_and_use_real_flags() {
    require(Dep::SystemdAnalyze);
    let dir = tempfile::tempdir().unwrap();
    for unit in files("deploy/systemd", "service") {
        let text = std::fs::read_to_string(&unit).unwrap();
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("an ExecStart line");
        let mut words = exec.split_whitespace();
        assert_eq!(
            words.next(),
            Some("/usr/local/bin/warren"),
            "{}",
            unit.display()
        );
        // systemd fills these in at start; any path will do for the check.
        let args: Vec<String> = words
            .map(|w| {
                w.replace("${STATE_DIRECTORY}", "/var/lib/warren")
                    .replace("${CREDENTIALS_DIRECTORY}", "/run/credentials")
            })
            .collect();
        accepted(&args, &unit.display().to_string());

        // verify checks that the binary exists: point it at this one.
        let copy = dir.path().join(unit.file_name().unwrap());
        std::fs::write(
            &copy,
            text.replace("/usr/local/bin/warren", support::warren_bin()),
        )
        .unwrap();
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&copy)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{}: {said}", unit.display());
        // Unknown keys and bad values are only warnings to systemd: none
        // is allowed here.
        assert!(said.trim().is_empty(), "{}: {said}", unit.display());
    }
}

#[test]
fn the_container_recipe_builds_the_binary_the_manifests_run() {
    let text = std::fs::read_to_string(root().join("deploy/container/Dockerfile")).unwrap();
    assert!(
        text.contains("cargo build --release --locked -p warren"),
        "{text}"
    );
    assert!(text.contains(r#"ENTRYPOINT ["/warren"]"#), "{text}");
    // The manifests run as the image's nonroot user.
    assert!(text.contains("USER 65532:65532"), "{text}");
    for m in files("deploy/kubernetes", "yaml") {
        let manifest = std::fs::read_to_string(&m).unwrap();
        assert!(manifest.contains("runAsUser: 65532"), "{}", m.display());
    }
}
