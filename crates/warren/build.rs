//! Marks the end-to-end tests whose outside dependencies (curl,
//! PostgreSQL, pgbench, the OIDC provider and Chromium, python3) are
//! missing, so that they are *skipped and counted* instead of passing
//! without exercising anything:
//!
//! - outside CI, a missing dependency sets `cfg(warren_missing_*)`; the
//!   tests that need it carry `#[cfg_attr(warren_missing_*, ignore = ..)]`,
//!   which nextest reports as `N skipped` (and a `cargo::warning` says
//!   what is missing and how to install it);
//! - under `CI` nothing is marked missing: the tests run, and the harness
//!   fails them with the same install hint (`tests/support/deps.rs`, which
//!   this script shares so that both look in the same places).
//!
//! The script runs again when `CI` or `WARREN_TEST_PRETEND_MISSING`
//! change, when a file of a dependency it found changes or disappears,
//! and, for one it did not find, when a directory it would be installed
//! into (those on `PATH`, `/usr/lib/postgresql`, `tests/fixtures/oidc`)
//! changes. A rerun rebuilds every target of this package, so a change of
//! `PATH` alone (an editor's environment, say) deliberately does not
//! trigger one.

use std::path::PathBuf;

#[allow(dead_code, unreachable_pub)] // shared with the harness, which uses the rest
#[path = "tests/support/deps.rs"]
mod deps;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=tests/support/deps.rs");
    for var in ["CI", deps::PRETEND_VAR] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let ci = deps::is_ci();
    for dep in deps::Dep::ALL {
        println!("cargo::rustc-check-cfg=cfg({})", dep.cfg());
        match dep.find(&manifest_dir) {
            Ok(found) => {
                for path in found {
                    println!("cargo::rerun-if-changed={}", path.display());
                }
            }
            Err(missing) => {
                for dir in dep.watch(&manifest_dir) {
                    println!("cargo::rerun-if-changed={}", dir.display());
                }
                if ci {
                    println!(
                        "cargo::warning=the end-to-end tests that need {} will fail: {missing}; {}",
                        dep.name(),
                        dep.hint()
                    );
                } else {
                    println!("cargo::rustc-cfg={}", dep.cfg());
                    println!(
                        "cargo::warning=skipping the end-to-end tests that need {}: {missing}; {}",
                        dep.name(),
                        dep.hint()
                    );
                }
            }
        }
    }
}
