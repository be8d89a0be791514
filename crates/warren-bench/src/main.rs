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
    /// Many concurrent connections held open: opens `count` connections
    /// (spread round-robin over the addresses, at most `parallel` opening
    /// at once), checks that each echoes one byte, prints a line with
    /// `"phase": "holding"`, holds them for `hold-secs`, checks each once
    /// more, closes them all and prints a line with `"phase": "closed"`.
    Hold {
        #[arg(required = true)]
        addrs: Vec<SocketAddr>,
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long, default_value_t = 5)]
        hold_secs: u64,
        #[arg(long, default_value_t = 64)]
        parallel: usize,
        /// Deadline for opening all of them.
        #[arg(long, default_value_t = 120)]
        open_secs: u64,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    // The echo origin and `hold` keep thousands of sockets open: take the
    // hard limit (a fresh Debian's soft limit is 1024).
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    match Cli::parse().cmd {
        Cmd::Echo { listen } => echo(listen).await,
        Cmd::HttpOrigin { listen } => http_origin(listen).await,
        Cmd::Rtt { addr, count, size } => rtt(addr, count, size).await,
        Cmd::Connect { addr, count } => connect(addr, count).await,
        Cmd::Hold {
            addrs,
            count,
            hold_secs,
            parallel,
            open_secs,
        } => {
            hold(
                &addrs,
                count,
                Duration::from_secs(hold_secs),
                parallel,
                Duration::from_secs(open_secs),
            )
            .await
        }
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

/// Opens one connection and checks that it echoes one byte.
async fn open_one(addr: SocketAddr) -> Result<TcpStream, &'static str> {
    let one = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| {
            if e.raw_os_error() == Some(24) {
                "connect: too many open files (EMFILE)"
            } else {
                "connect failed"
            }
        })?;
        let _ = s.set_nodelay(true);
        echo_byte(&mut s).await?;
        Ok(s)
    };
    match tokio::time::timeout(Duration::from_secs(10), one).await {
        Ok(r) => r,
        Err(_) => Err("no echo within 10 s"),
    }
}

/// Writes one byte and reads it back.
async fn echo_byte(s: &mut TcpStream) -> Result<(), &'static str> {
    s.write_all(b"h").await.map_err(|_| "write failed")?;
    let mut b = [0u8; 1];
    match s.read(&mut b).await {
        Ok(1) if b[0] == b'h' => Ok(()),
        Ok(0) => Err("closed before the echo (EOF)"),
        Ok(_) => Err("wrong byte echoed"),
        Err(_) => Err("reset before the echo"),
    }
}

async fn hold(
    addrs: &[SocketAddr],
    count: usize,
    hold_for: Duration,
    parallel: usize,
    open_deadline: Duration,
) -> std::io::Result<()> {
    use futures_util::StreamExt;
    use std::collections::BTreeMap;
    let nofile = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(0);
    let parallel = parallel.max(1);
    let start = Instant::now();
    let mut held: Vec<TcpStream> = Vec::with_capacity(count);
    let mut failed: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut opening = futures_util::stream::iter(0..count)
        .map(|i| open_one(addrs[i % addrs.len()]))
        .buffer_unordered(parallel);
    let deadline = tokio::time::Instant::now() + open_deadline;
    let mut done = 0usize;
    loop {
        match tokio::time::timeout_at(deadline, opening.next()).await {
            Ok(Some(Ok(s))) => held.push(s),
            Ok(Some(Err(why))) => *failed.entry(why).or_default() += 1,
            Ok(None) => break,
            Err(_) => {
                *failed.entry("not opened before the deadline").or_default() += count - done;
                break;
            }
        }
        done += 1;
    }
    drop(opening);
    println!(
        "{}",
        serde_json::json!({
            "phase": "holding",
            "count": count,
            "ok": held.len(),
            "failed": failed.values().sum::<usize>(),
            "why": failed,
            "open_secs": start.elapsed().as_secs_f64(),
            "nofile": nofile,
        })
    );
    tokio::time::sleep(hold_for).await;
    // Each one still carries a byte after the hold.
    let checks: Vec<Result<(), &'static str>> = futures_util::stream::iter(held.iter_mut())
        .map(|s| async move {
            match tokio::time::timeout(Duration::from_secs(10), echo_byte(s)).await {
                Ok(r) => r,
                Err(_) => Err("no echo within 10 s"),
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let mut dead: BTreeMap<&'static str, usize> = BTreeMap::new();
    for why in checks.iter().filter_map(|r| r.err()) {
        *dead.entry(why).or_default() += 1;
    }
    drop(held);
    println!(
        "{}",
        serde_json::json!({
            "phase": "closed",
            "count": count,
            "alive_after_hold": checks.iter().filter(|r| r.is_ok()).count(),
            "dead_after_hold": dead,
        })
    );
    Ok(())
}
