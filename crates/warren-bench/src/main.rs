//! `warren-loadgen`: the load tools and small origins `bench/run.sh` needs
//! beyond iperf3, wrk and pgbench. Every loop is bounded by a count; every
//! result is one JSON line on stdout.

#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// TCP echo server; prints {"addr": ...} once listening.
    Echo {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// Small HTTP/1.1 origin answering "hello, world\n".
    HttpOrigin {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// Request/response round trips on one connection.
    Rtt {
        addr: SocketAddr,
        #[arg(long, default_value_t = 5000)]
        count: usize,
        #[arg(long, default_value_t = 64)]
        size: usize,
    },
    /// Sequential new connections: connect, 1 byte each way, close.
    Connect {
        addr: SocketAddr,
        #[arg(long, default_value_t = 1000)]
        count: usize,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    match Cli::parse().cmd {
        Cmd::Echo { listen } => echo(listen).await,
        Cmd::HttpOrigin { listen } => http_origin(listen).await,
        Cmd::Rtt { addr, count, size } => rtt(addr, count, size).await,
        Cmd::Connect { addr, count } => connect(addr, count).await,
    }
}

async fn echo(listen: SocketAddr) -> std::io::Result<()> {
    let l = TcpListener::bind(listen).await?;
    println!(
        "{}",
        serde_json::json!({ "addr": l.local_addr()?.to_string() })
    );
    loop {
        let (mut s, _) = l.accept().await?;
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let (mut r, mut w) = s.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        });
    }
}

async fn http_origin(listen: SocketAddr) -> std::io::Result<()> {
    let l = TcpListener::bind(listen).await?;
    println!(
        "{}",
        serde_json::json!({ "addr": l.local_addr()?.to_string() })
    );
    loop {
        let (s, _) = l.accept().await?;
        tokio::spawn(async move {
            let svc = service_fn(|_req| async {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                    b"hello, world\n",
                ))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(s), svc)
                .await;
        });
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

async fn rtt(addr: SocketAddr, count: usize, size: usize) -> std::io::Result<()> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let msg = vec![0x5au8; size];
    let mut buf = vec![0u8; size];
    // Warm-up, not counted.
    for _ in 0..100 {
        s.write_all(&msg).await?;
        s.read_exact(&mut buf).await?;
    }
    let mut lat = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        s.write_all(&msg).await?;
        s.read_exact(&mut buf).await?;
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "{}",
        serde_json::json!({
            "count": count,
            "p50_us": percentile(&lat, 0.50),
            "p99_us": percentile(&lat, 0.99),
        })
    );
    Ok(())
}

async fn connect(addr: SocketAddr, count: usize) -> std::io::Result<()> {
    let start = Instant::now();
    let mut failed = 0usize;
    for _ in 0..count {
        let one = async {
            let mut s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            s.write_all(b"x").await?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await?;
            Ok::<_, std::io::Error>(())
        };
        match tokio::time::timeout(Duration::from_secs(10), one).await {
            Ok(Ok(())) => {}
            _ => failed += 1,
        }
    }
    let total = start.elapsed();
    println!(
        "{}",
        serde_json::json!({
            "count": count,
            "failed": failed,
            "mean_ms": total.as_secs_f64() * 1e3 / count as f64,
        })
    );
    Ok(())
}
