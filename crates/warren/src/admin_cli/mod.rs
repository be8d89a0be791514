//! `warren tunnel create|list|info|delete|token|rotate-secret|route ...`:
//! the command line over the edge's admin API.
//!
//! [`TunnelAdminCmd`] is flattened into `warren tunnel`; [`run`] performs
//! one command. Each command carries [`ApiArgs`] (`--api`/`WARREN_API`,
//! `--api-token`/`WARREN_API_TOKEN`). Talking to the API happens in
//! [`ApiClient`]; what it can go wrong with is [`ClientError`], whose
//! messages are the sentences the user sees — an `{"error": s}` answer
//! from the API is shown as exactly `s`.

use std::io::Write as _;
use std::time::Duration;

use hyper::Method;
use serde_json::json;

pub(crate) mod access;
pub(crate) mod apply;
pub(crate) mod audit;
mod client;
pub(crate) mod db;
mod text;

pub(crate) use client::*;
pub(crate) use text::now;
use text::*;

/// Whole-request deadline.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer the CLI reads.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;
const NO_TOKEN_HINT: &str = "set WARREN_API_TOKEN to the contents of <data-dir>/admin-token";

/// Where the admin API is and how to authenticate to it.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct ApiArgs {
    /// Admin API of the edge (its --listen-admin address).
    #[arg(
        long = "api",
        env = "WARREN_API",
        default_value = "http://127.0.0.1:7800"
    )]
    pub(crate) api: String,
    /// Admin API token: the contents of <data-dir>/admin-token on the edge.
    #[arg(long, env = "WARREN_API_TOKEN", hide_env_values = true)]
    pub(crate) api_token: Option<String>,
}

/// How to print an answer.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Output {
    /// Human-readable text.
    #[default]
    Text,
    /// The API's JSON, pretty-printed.
    Json,
}

/// Tunnel management over the admin API.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum TunnelAdminCmd {
    /// Create a named tunnel.
    Create {
        /// Tunnel name: letters, digits, '_', '.', '-'.
        name: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List tunnels and whether connectors are attached.
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show a tunnel, its routes and its live connections.
    Info {
        /// Tunnel name or id.
        name: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Delete a tunnel and its routes, and disconnect its connectors.
    Delete {
        /// Tunnel name or id.
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Print the token a connector needs (`warren tunnel run --token ...`).
    Token {
        /// Tunnel name or id.
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Give a tunnel a new secret and print its new token. Connected
    /// connectors stay up, and the old token keeps working for new
    /// connections during --grace, so replicas can be moved over one by one;
    /// `--revoke-old` ends that window now instead.
    RotateSecret {
        /// Tunnel name or id.
        name: String,
        /// How long the replaced secret keeps working (0s: not at all; at
        /// most 30 days).
        #[arg(long, default_value = "24h", value_parser = crate::duration, conflicts_with = "revoke_old")]
        grace: Duration,
        /// Do not rotate: end the grace window of the last rotation now,
        /// closing the connections that still use the old secret.
        #[arg(long)]
        revoke_old: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Manage hostname routes (hostname → tunnel).
    Route {
        #[command(subcommand)]
        cmd: RouteCmd,
    },
}

/// Hostname routes.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum RouteCmd {
    /// Route a hostname (or *.domain wildcard) to a tunnel.
    Dns {
        /// Tunnel name or id.
        tunnel: String,
        /// Hostname, e.g. app.example.com or *.example.com.
        hostname: String,
        /// Reachable by anyone when no access application covers it
        /// (otherwise it is denied until an application allows).
        #[arg(long)]
        public: bool,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Serve a hostname from several tunnels (a load balancer over
    /// tunnels): failover goes to the first listed tunnel that is active,
    /// weighted shares new streams by --weights.
    Lb {
        /// Hostname, e.g. app.example.com or *.example.com.
        hostname: String,
        /// Tunnel names or ids, highest priority first (at least two).
        #[arg(required = true, num_args = 2..)]
        tunnels: Vec<String>,
        #[arg(long, value_enum, default_value_t = SteeringArg::Failover)]
        steering: SteeringArg,
        /// Comma-separated weights, one per tunnel (weighted steering);
        /// default 1 each.
        #[arg(long, value_delimiter = ',')]
        weights: Vec<i64>,
        /// Reachable by anyone when no access application covers it.
        #[arg(long)]
        public: bool,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Make a route public (reachable by anyone when no access application
    /// covers it), or with --off deny it again unless an application allows.
    Public {
        hostname: String,
        #[arg(long)]
        off: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List hostname routes.
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Delete a hostname route.
    Delete {
        hostname: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// How a load-balanced route picks a tunnel.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SteeringArg {
    Failover,
    Weighted,
}

/// Runs one admin command, printing its result on stdout.
pub(crate) async fn run(cmd: TunnelAdminCmd) -> anyhow::Result<()> {
    let text = match cmd {
        TunnelAdminCmd::Create { name, output, api } => {
            let v = ApiClient::new(&api)?
                .call(Method::POST, "/v1/tunnels", Some(json!({ "name": name })))
                .await?;
            render(output, &v, |t: TunnelView| created_text(&t))?
        }
        TunnelAdminCmd::List { output, api } => {
            let v = ApiClient::new(&api)?
                .call(Method::GET, "/v1/tunnels", None)
                .await?;
            render(output, &v, |t: Vec<TunnelView>| tunnels_text(&t, now()))?
        }
        TunnelAdminCmd::Info { name, output, api } => {
            let path = format!("/v1/tunnels/{}", encode_segment(&name));
            let v = ApiClient::new(&api)?.call(Method::GET, &path, None).await?;
            render(output, &v, |t: TunnelView| info_text(&t, now()))?
        }
        TunnelAdminCmd::Delete { name, api } => {
            let path = format!("/v1/tunnels/{}", encode_segment(&name));
            ApiClient::new(&api)?
                .call(Method::DELETE, &path, None)
                .await?;
            format!("Deleted tunnel {name}\n")
        }
        TunnelAdminCmd::Token { name, api } => {
            let path = format!("/v1/tunnels/{}/token", encode_segment(&name));
            let v = ApiClient::new(&api)?.call(Method::GET, &path, None).await?;
            format!("{}\n", parse::<TokenView>(&v)?.token)
        }
        TunnelAdminCmd::RotateSecret {
            name,
            revoke_old: true,
            api,
            ..
        } => {
            let path = format!("/v1/tunnels/{}/revoke-old-secret", encode_segment(&name));
            let v = ApiClient::new(&api)?
                .call(Method::POST, &path, None)
                .await?;
            match (v["revoked"].as_bool(), v["closed_connections"].as_u64()) {
                (Some(true), Some(n)) => format!(
                    "The previous secret of {name} no longer works; closed {n} connection(s) that still used it\n"
                ),
                _ => format!("Tunnel {name} had no previous secret in a grace window; nothing changed\n"),
            }
        }
        TunnelAdminCmd::RotateSecret {
            name, grace, api, ..
        } => {
            let path = format!(
                "/v1/tunnels/{}/rotate-secret?grace_seconds={}",
                encode_segment(&name),
                grace.as_secs()
            );
            let v = ApiClient::new(&api)?
                .call(Method::POST, &path, None)
                .await?;
            format!("{}\n", parse::<TokenView>(&v)?.token)
        }
        TunnelAdminCmd::Route { cmd } => run_route(cmd).await?,
    };
    print(&text)
}

/// Writes a command's answer to stdout.
pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // `warren tunnel list | head` must not fail.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::anyhow!("cannot write to stdout: {e}"))
        }
        _ => Ok(()),
    }
}

async fn run_route(cmd: RouteCmd) -> anyhow::Result<String> {
    Ok(match cmd {
        RouteCmd::Dns {
            tunnel,
            hostname,
            public,
            output,
            api,
        } => {
            let body = json!({ "tunnel": tunnel, "hostname": hostname, "public": public });
            let v = ApiClient::new(&api)?
                .call(Method::POST, "/v1/routes", Some(body))
                .await?;
            render(output, &v, |r: RouteView| {
                format!(
                    "Routed {} to tunnel {} (id {}){}\n",
                    r.hostname,
                    r.tunnel_name,
                    r.tunnel_id,
                    access_note(&r)
                )
            })?
        }
        RouteCmd::Lb {
            hostname,
            tunnels,
            steering,
            weights,
            public,
            output,
            api,
        } => {
            if !weights.is_empty() && weights.len() != tunnels.len() {
                anyhow::bail!(
                    "--weights has {} values for {} tunnels; give one weight per tunnel, in the same order",
                    weights.len(),
                    tunnels.len()
                );
            }
            let members: Vec<_> = tunnels
                .iter()
                .enumerate()
                .map(
                    |(i, t)| json!({ "tunnel": t, "weight": weights.get(i).copied().unwrap_or(1) }),
                )
                .collect();
            let steering = match steering {
                SteeringArg::Failover => "failover",
                SteeringArg::Weighted => "weighted",
            };
            let body = json!({ "hostname": hostname, "steering": steering, "tunnels": members, "public": public });
            let v = ApiClient::new(&api)?
                .call(Method::POST, "/v1/routes", Some(body))
                .await?;
            render(output, &v, |r: RouteView| {
                format!(
                    "Routed {} to tunnels {} ({}){}\n",
                    r.hostname,
                    member_list(&r),
                    r.steering,
                    access_note(&r)
                )
            })?
        }
        RouteCmd::List { output, api } => {
            let v = ApiClient::new(&api)?
                .call(Method::GET, "/v1/routes", None)
                .await?;
            render(output, &v, |r: Vec<RouteView>| routes_text(&r))?
        }
        RouteCmd::Public { hostname, off, api } => {
            let path = format!("/v1/routes/{}", encode_segment(&hostname));
            ApiClient::new(&api)?
                .call(Method::PATCH, &path, Some(json!({ "public": !off })))
                .await?;
            if off {
                format!("{hostname} is no longer public: it is denied unless an access application allows\n")
            } else {
                format!("{hostname} is public: anyone can reach it unless an access application covers it\n")
            }
        }
        RouteCmd::Delete { hostname, api } => {
            let path = format!("/v1/routes/{}", encode_segment(&hostname));
            ApiClient::new(&api)?
                .call(Method::DELETE, &path, None)
                .await?;
            format!("Deleted route {hostname}\n")
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: TunnelAdminCmd,
    }

    fn args(api: &str) -> ApiArgs {
        ApiArgs {
            api: api.to_owned(),
            api_token: Some("wat_test".to_owned()),
        }
    }

    #[test]
    fn command_line_shape() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "t",
            "route",
            "dns",
            "office",
            "app.example.com",
            "--api",
            "http://127.0.0.1:1",
            "--api-token",
            "x",
        ])
        .unwrap();
        match cli.cmd {
            TunnelAdminCmd::Route {
                cmd:
                    RouteCmd::Dns {
                        tunnel,
                        hostname,
                        api,
                        ..
                    },
            } => {
                assert_eq!(
                    (tunnel.as_str(), hostname.as_str()),
                    ("office", "app.example.com")
                );
                assert_eq!(api.api, "http://127.0.0.1:1");
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["t", "list", "--output", "json"]).unwrap();
        assert!(matches!(
            cli.cmd,
            TunnelAdminCmd::List {
                output: Output::Json,
                ..
            }
        ));
        let cli = Cli::try_parse_from(["t", "rotate-secret", "office"]).unwrap();
        assert!(matches!(cli.cmd, TunnelAdminCmd::RotateSecret { .. }));
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("http://127.0.0.1:7800/").unwrap(),
            "http://127.0.0.1:7800"
        );
        assert_eq!(base_url("127.0.0.1:7800").unwrap(), "http://127.0.0.1:7800");
        assert_eq!(base_url("HTTP://[::1]:7800").unwrap(), "HTTP://[::1]:7800");
        assert!(matches!(
            base_url("https://x:1"),
            Err(ClientError::Https(_))
        ));
        assert!(matches!(base_url("ftp://x"), Err(ClientError::BadUrl(_))));
        assert!(matches!(base_url("http://"), Err(ClientError::BadUrl(_))));
        assert!(matches!(base_url("not a url"), Err(ClientError::BadUrl(_))));
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("*.example.com"), "*.example.com");
        assert_eq!(encode_segment("a b/c?"), "a%20b%2Fc%3F");
    }

    #[test]
    fn timestamps_and_ages() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(timestamp(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(timestamp(1_714_564_800), "2024-05-01 12:00:00 UTC");
        assert_eq!(ago(100, 95), "5s ago");
        assert_eq!(ago(10_000, 0), "2h 46m ago");
        assert_eq!(ago(0, 10), "0s ago");
    }

    #[test]
    fn list_is_an_aligned_table() {
        let t = |name: &str, conns: usize| TunnelView {
            id: format!("id-{name}"),
            name: name.to_owned(),
            secret_generation: 1,
            created_at: 0,
            status: if conns > 0 { "active" } else { "inactive" }.to_owned(),
            up_since: (conns > 0).then_some(0),
            connectors: if conns > 0 {
                vec![ConnectorView {
                    id: "c1".into(),
                    version: "0.1.0".into(),
                    source_ip: "127.0.0.1".into(),
                    edge_addrs: vec!["127.0.0.1:7844".into()],
                    connections_up: conns,
                    connections_configured: 4,
                    connected_since: 0,
                    draining: false,
                    previous_secret: false,
                    config: None,
                }]
            } else {
                vec![]
            },
            connections: (0..conns).map(|_| Value::Null).collect(),
            routes: vec![],
            previous_secret_valid_until: None,
        };
        let text = tunnels_text(&[t("office", 2), t("a-much-longer-name", 0)], 60);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let col = lines[0].find("ID").unwrap();
        assert_eq!(lines[1].find("id-office"), Some(col));
        assert_eq!(lines[2].find("id-a-much"), Some(col));
        let conns = lines[0].find("CONNECTIONS").unwrap();
        assert_eq!(&lines[1][conns..conns + 1], "2");
        assert_eq!(&lines[2][conns..conns + 1], "0");

        let info = info_text(&t("office", 2), 60);
        assert!(info.contains("CONNECTOR ID"), "{info}");
        assert!(info.contains("127.0.0.1:7844"), "{info}");
        assert!(info.contains("2/4"), "{info}");
        assert!(info.contains("connected since"), "{info}");
        assert!(info.contains("route dns office HOSTNAME"), "{info}");
        assert!(tunnels_text(&[], 0).contains("warren tunnel create"));
    }

    #[test]
    fn missing_token_is_a_sentence() {
        let mut a = args("http://127.0.0.1:7800");
        a.api_token = Some("  ".into());
        let e = ApiClient::new(&a).err().unwrap();
        assert_eq!(
            e.to_string(),
            "no admin API token; set WARREN_API_TOKEN to the contents of <data-dir>/admin-token"
        );
    }

    /// Serves one canned answer and returns the request it got.
    async fn one_shot_server(
        status: &str,
        body: &str,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = sock.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            sock.write_all(answer.as_bytes()).await.unwrap();
            sock.shutdown().await.unwrap();
            String::from_utf8_lossy(&req).into_owned()
        });
        (url, task)
    }

    #[tokio::test]
    async fn api_errors_are_shown_verbatim() {
        let (url, server) = one_shot_server(
            "409 Conflict",
            r#"{"error": "a tunnel named x already exists"}"#,
        )
        .await;
        let e = ApiClient::new(&args(&url))
            .unwrap()
            .call(Method::POST, "/v1/tunnels", Some(json!({"name": "x"})))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "a tunnel named x already exists");
        let req = server.await.unwrap().to_ascii_lowercase();
        assert!(req.starts_with("post /v1/tunnels http/1.1"), "{req}");
        assert!(req.contains("authorization: bearer wat_test"), "{req}");
    }

    #[tokio::test]
    async fn success_and_no_content() {
        let (url, _server) = one_shot_server("200 OK", r#"{"token":"t"}"#).await;
        let v = ApiClient::new(&args(&url))
            .unwrap()
            .call(Method::GET, "/v1/tunnels/x/token", None)
            .await
            .unwrap();
        assert_eq!(parse::<TokenView>(&v).unwrap().token, "t");
        let (url, _server) = one_shot_server("204 No Content", "").await;
        let v = ApiClient::new(&args(&url))
            .unwrap()
            .call(Method::DELETE, "/v1/routes/x", None)
            .await
            .unwrap();
        assert_eq!(v, Value::Null);
    }

    #[tokio::test]
    async fn non_api_answers_are_explained() {
        let (url, _server) = one_shot_server("502 Bad Gateway", "oops!").await;
        let e = ApiClient::new(&args(&url))
            .unwrap()
            .call(Method::GET, "/v1/tunnels", None)
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Unexpected { .. }), "{e}");
        assert!(e.to_string().contains("502"), "{e}");
    }

    #[tokio::test]
    async fn refused_connection_names_the_url_and_the_fix() {
        // Bound but not listening: connections are refused, and no other
        // test's port-0 bind can take the port meanwhile.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let url = format!("http://{}", socket.local_addr().unwrap());
        let e = ApiClient::new(&args(&url))
            .unwrap()
            .call(Method::GET, "/v1/tunnels", None)
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("cannot reach the Warren admin API at {url} (")),
            "{msg}"
        );
        assert!(msg.to_lowercase().contains("refused"), "{msg}");
        assert!(
            msg.ends_with(
                "is `warren edge` running, and is WARREN_API set to its --listen-admin address?"
            ),
            "{msg}"
        );
    }
}
