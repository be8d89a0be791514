//! Remote-managed tunnels at the edge: a tunnel's ingress config stored
//! in the store (`PUT /v1/tunnels/{t}/ingress`, validated here with the
//! connector's own parser and sentences) is pushed to its connectors on a
//! stream of its own — to each connection after it registers, and to every
//! live connection when it changes. Each answer (`ConfigStatus`) is kept on
//! the connection, so `tunnel info` shows which version each connector
//! runs, or why it does not.

use std::sync::Arc;
use std::time::Duration;

use warren_proto::stream::{ConfigPush, StreamRequest, StreamResponse};
use warren_store::TunnelConfig;
use warren_transport::framed::expect_frame;
use warren_transport::StreamError;

use crate::registry::{ConfigState, Registry, TunnelConn};

/// How long a connector has to take a config and answer.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a stored config cannot be stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigRefusal {
    /// Larger than a connector reads by default.
    #[error("the config is {len} bytes, more than the {limit} a connector reads; shorten it")]
    TooLarge { len: usize, limit: u64 },
    /// The connector's parser refused it (its sentence).
    #[error("{0}")]
    Invalid(#[from] warren_connector::ingress::ConfigError),
}

/// Checks `yaml` as a connector would (rules, services, `originRequest`
/// settings; files such as `caPool` are checked where the connector runs).
/// The warnings are the connector's sentences, plus one for each
/// `access.audTag` that is not the tag of an application in `app_tags`
/// (which only the edge can know).
pub(crate) fn validate(yaml: &str, app_tags: &[String]) -> Result<Vec<String>, ConfigRefusal> {
    let limit = warren_connector::ingress::DEFAULT_MAX_CONFIG_BYTES;
    if yaml.len() as u64 > limit {
        return Err(ConfigRefusal::TooLarge {
            len: yaml.len(),
            limit,
        });
    }
    let (config, mut warnings) =
        warren_connector::ingress::IngressConfig::from_yaml_with_warnings(yaml)?;
    // Tag -> the rules naming it (a global `access` reaches every rule).
    let mut unknown = std::collections::BTreeMap::<&str, Vec<String>>::new();
    for (index, rule) in config.rules.iter().enumerate() {
        let tags = rule.origin_request.access.iter().flat_map(|a| &a.aud_tags);
        for tag in tags.filter(|t| !app_tags.contains(t)) {
            unknown
                .entry(tag)
                .or_default()
                .push(format!("rule {}", index + 1));
        }
    }
    warnings.extend(unknown.into_iter().map(|(tag, rules)| {
        format!(
            "originRequest.access.audTag \"{tag}\" is not the tag of any access application on \
             this edge, so no token matches it; copy the tag from `warren access app show APP` \
             (in {})",
            rules.join(", ")
        )
    }));
    Ok(warnings)
}

/// Sends `config` on `conn` and notes the connector's answer on it.
pub(crate) async fn push(conn: &TunnelConn, config: &TunnelConfig) -> ConfigState {
    let version = u64::try_from(config.version).unwrap_or(0);
    let exchange = async {
        let (mut send, mut recv) = conn
            .conn
            .open_stream()
            .await
            .map_err(|e| StreamError::from(e).to_string())?;
        let header = StreamRequest::Config(ConfigPush {
            version,
            len: u32::try_from(config.yaml.len()).unwrap_or(u32::MAX),
        });
        send.write_all(&header.encode())
            .await
            .map_err(|e| e.to_string())?;
        send.write_all(config.yaml.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let _ = send.finish();
        let frame = expect_frame(&mut recv).await.map_err(|e| e.to_string())?;
        StreamResponse::decode(&frame).map_err(|e| e.to_string())
    };
    let state = match tokio::time::timeout(PUSH_TIMEOUT, exchange).await {
        Ok(Ok(StreamResponse::ConfigStatus {
            version,
            applied,
            message,
        })) => ConfigState {
            version,
            applied,
            message,
        },
        Ok(Ok(other)) => ConfigState {
            version,
            applied: false,
            message: format!(
                "the connector answered the config with {other:?}; it may be older than this edge"
            ),
        },
        Ok(Err(e)) => ConfigState {
            version,
            applied: false,
            message: format!("the config could not be sent: {e}"),
        },
        Err(_) => ConfigState {
            version,
            applied: false,
            message: format!(
                "the connector did not answer within {} s",
                PUSH_TIMEOUT.as_secs()
            ),
        },
    };
    if !state.applied {
        tracing::warn!(connector_id = %conn.connector_id, conn_index = conn.conn_index, version, "a connector does not run the stored config: {}", state.message);
    }
    conn.set_config(state.clone());
    state
}

/// Pushes `config` to every live connection of the tunnel at once; each
/// connection with the connector's answer.
pub(crate) async fn push_all(
    registry: &Registry,
    tunnel_id: &str,
    config: &TunnelConfig,
) -> Vec<(Arc<TunnelConn>, ConfigState)> {
    let conns = registry.of_tunnel(tunnel_id);
    let answers = futures_util::future::join_all(conns.iter().map(|c| push(c, config))).await;
    conns.into_iter().zip(answers).collect()
}
