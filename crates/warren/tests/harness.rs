//! The harness's own promises about ports: leased ports stay out of the
//! kernel's ephemeral range and are exclusive, servers on them move when
//! a port is taken, and ports that must refuse connections stay held.

mod support;

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};

use support::origins::{self, NamedOrigin};
use support::ports;
use support::postgres::{psql, Postgres};
use support::Edge;

#[test]
fn leases_are_outside_the_ephemeral_range_and_exclusive() {
    let ephemeral = ports::ephemeral_range();
    let leases: Vec<ports::Lease> = (0..50).map(|_| ports::lease()).collect();
    let distinct: HashSet<u16> = leases.iter().map(|l| l.port).collect();
    assert_eq!(distinct.len(), leases.len(), "a port was leased twice");
    for l in &leases {
        assert!(
            !ephemeral.contains(&l.port),
            "port {} is in the ephemeral range {ephemeral:?}",
            l.port
        );
        let lock = std::env::temp_dir()
            .join("warren-test-ports")
            .join(l.port.to_string());
        assert!(lock.exists(), "no lock file for leased port {}", l.port);
    }
    let port = leases[0].port;
    drop(leases);
    let lock = std::env::temp_dir()
        .join("warren-test-ports")
        .join(port.to_string());
    assert!(!lock.exists(), "the lock of port {port} outlived its lease");
}

#[tokio::test]
async fn a_closed_port_refuses_connections_and_stays_taken() {
    let closed = origins::closed_port().await;
    let err = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, closed.port()))
        .await
        .expect_err("nothing may accept on a closed port");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    assert!(
        TcpListener::bind((Ipv4Addr::LOCALHOST, closed.port())).is_err(),
        "another socket could take the closed port"
    );
}

#[tokio::test]
async fn a_stopped_named_origin_refuses_but_keeps_its_port() {
    let o = NamedOrigin::start_new("a").await;
    tokio::net::TcpStream::connect(o.addr).await.unwrap();
    o.stop().await;
    let err = tokio::net::TcpStream::connect(o.addr)
        .await
        .expect_err("a stopped origin accepted");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    // Still bound: a plain bind (and so a port-0 bind, which only takes
    // ports no socket holds) cannot get it.
    assert!(
        tokio::net::TcpSocket::new_v4()
            .unwrap()
            .bind(o.addr)
            .is_err(),
        "another socket could take the stopped origin's port"
    );
    o.start().await;
    tokio::net::TcpStream::connect(o.addr).await.unwrap();
}

#[cfg_attr(
    warren_missing_postgres,
    ignore = "needs PostgreSQL (server and psql); .ci/run installs what is missing"
)]
#[tokio::test]
async fn postgres_moves_to_another_port_when_its_port_is_taken() {
    let lease = ports::lease();
    let taken = lease.port;
    let _squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, taken)).unwrap();
    let pg = tokio::task::spawn_blocking(move || Postgres::start_first_on(lease))
        .await
        .unwrap();
    assert_ne!(pg.port, taken);
    assert!(!ports::ephemeral_range().contains(&pg.port));
    let conn = format!("host=127.0.0.1 port={} user=app dbname=app", pg.port);
    let (ok, out) = psql(&conn, "SELECT 40 + 2").await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "42");
}

#[tokio::test]
async fn a_restartable_edge_moves_when_its_port_is_taken_and_comes_back_on_its_own() {
    let dir = support::temp_dir();
    let first = [ports::lease(), ports::lease()];
    let taken = first[1].port;
    let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, taken)).unwrap();
    let mut edge = Edge::start_restartable_first_on(dir.path(), first).await;
    assert_ne!(edge.https.port(), taken);
    drop(squatter);
    let (tunnel, https) = (edge.tunnel, edge.https);
    assert!(!ports::ephemeral_range().contains(&https.port()));
    assert!(!ports::ephemeral_range().contains(&tunnel.port()));
    edge.proc.signal("TERM");
    assert!(edge.proc.wait_exit().await.success());
    let edge = edge.start_again().await;
    assert_eq!((edge.tunnel, edge.https), (tunnel, https));
}
