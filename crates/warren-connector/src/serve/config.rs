//! Remote-managed tunnels: the edge pushes the tunnel's stored ingress
//! config on a stream of its own (`StreamRequest::Config`, the YAML after
//! the header) — once after each connection registers, and again on every
//! change. A connector started without `--config`/`--url` runs the newest
//! version it was given, swapped in whole like a SIGHUP reload (open
//! streams keep the rules they started with); one with a local config
//! keeps it and says so. Every push is answered with
//! `StreamResponse::ConfigStatus`, which `warren tunnel info` shows.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::{watch, Mutex};
use warren_proto::stream::{ConfigPush, StreamResponse};
use warren_transport::{RecvStream, SendStream};

use super::respond::{respond_final, Answered};
use super::Runtime;
use crate::ingress::IngressConfig;
use crate::metrics::ConnectorMetrics;

/// How long the edge has to send a pushed config whole.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Where this connector's rules come from, and how a pushed config gets
/// applied.
pub(crate) struct ConfigSlot {
    /// The runtime every new stream uses (the one SIGHUP also swaps).
    runtime: Arc<watch::Sender<Arc<Runtime>>>,
    /// `true` when the rules are the edge's; `false` for `--config`/`--url`.
    remote: bool,
    /// The largest config read.
    max_bytes: u64,
    /// Relative `caPool` paths in a pushed config resolve here.
    base_dir: PathBuf,
    metrics: Arc<ConnectorMetrics>,
    /// Several connections receive the same push: one applies it.
    applying: Mutex<()>,
    /// The "stored config ignored" warning is logged once.
    warned: AtomicBool,
}

impl ConfigSlot {
    pub(crate) fn new(
        runtime: Arc<watch::Sender<Arc<Runtime>>>,
        remote: bool,
        max_bytes: u64,
        metrics: Arc<ConnectorMetrics>,
    ) -> ConfigSlot {
        ConfigSlot {
            runtime,
            remote,
            max_bytes,
            base_dir: std::env::current_dir().unwrap_or_default(),
            metrics,
            applying: Mutex::new(()),
            warned: AtomicBool::new(false),
        }
    }

    /// Serves one push: reads the YAML, applies it if it is newer than
    /// what runs, and answers whether this connector runs it now.
    pub(crate) async fn serve_push(
        &self,
        push: ConfigPush,
        send: SendStream,
        mut recv: RecvStream,
    ) -> Answered {
        let answer = |applied: bool, message: String| StreamResponse::ConfigStatus {
            version: push.version,
            applied,
            message,
        };
        if u64::from(push.len) > self.max_bytes {
            let why = format!(
                "the stored config is {} bytes, more than this connector's --max-config-size of {}; shorten it, or raise the bound where the connector runs",
                push.len, self.max_bytes
            );
            tracing::error!(
                version = push.version,
                "not running the edge's stored config: {why}"
            );
            return respond_final(send, answer(false, why)).await;
        }
        let mut yaml = Vec::with_capacity(push.len as usize);
        let read = async {
            (&mut recv)
                .take(u64::from(push.len))
                .read_to_end(&mut yaml)
                .await
        };
        match tokio::time::timeout(READ_TIMEOUT, read).await {
            Ok(Ok(n)) if n == push.len as usize => {}
            _ => {
                let why = "the stored config did not arrive whole".to_owned();
                return respond_final(send, answer(false, why)).await;
            }
        }
        if !self.remote {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(version = push.version, "the edge holds a stored ingress config for this tunnel; it is ignored because this connector was given --config or --url");
            }
            let why = "this connector runs its local --config (or --url); the stored config is ignored there".to_owned();
            return respond_final(send, answer(false, why)).await;
        }
        let (applied, message) = self.apply(push.version, &yaml).await;
        respond_final(send, answer(applied, message)).await
    }

    /// Runs `yaml` as version `version` unless it is not newer than what
    /// runs. `(runs it now, why not)`.
    async fn apply(&self, version: u64, yaml: &[u8]) -> (bool, String) {
        let _one = self.applying.lock().await;
        let running = self.runtime.borrow().version;
        match running {
            Some(v) if v == version => return (true, String::new()),
            Some(v) if v > version => {
                return (
                    false,
                    format!("this connector already runs the newer version {v}"),
                )
            }
            _ => {}
        }
        let built = std::str::from_utf8(yaml)
            .map_err(|_| "the stored config is not UTF-8 text".to_owned())
            .and_then(|text| IngressConfig::from_yaml(text).map_err(|e| e.to_string()))
            .and_then(|ingress| {
                Runtime::new(ingress, &self.base_dir, self.metrics.clone())
                    .map_err(|e| format!("the ingress config cannot be used: {e}"))
            });
        match built {
            Ok(mut rt) => {
                rt.version = Some(version);
                let rules = rt.ingress.rules.len();
                self.runtime.send_replace(Arc::new(rt));
                self.metrics.reload(true);
                tracing::info!(version, rules, "running the edge's stored ingress config");
                (true, String::new())
            }
            Err(why) => {
                self.metrics.reload(false);
                match running {
                    Some(v) => tracing::error!(version, "the edge's stored config was refused, keeping version {v}: {why}"),
                    None => tracing::error!(version, "the edge's stored config was refused; this connector has no rules until a good one arrives: {why}"),
                }
                (false, why)
            }
        }
    }
}
