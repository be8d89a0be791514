//! The in-process tier: edge and connectors as library calls in this test
//! process (no process is started), for behaviour whose subject is timing
//! or the drivers of the protocol cores. Where timing is the subject the
//! test runs on tokio's paused clock, so QUIC's and the control stream's
//! timers elapse in virtual time and the test takes milliseconds.

mod support;

use std::time::Duration;

use support::inproc::{InProcConnector, InProcEdge};
use support::{eventually, origins, UdpRelay, DEADLINE};
use warren_connector::Signal;
use warren_transport::quic::QuicSettings;

const HOST: &str = "app.test";

/// A path that goes silent (packets vanish, nothing is closed) is declared
/// dead within idle timeout + keep-alive of the default timers; the edge
/// keeps serving on the other connection and drops the dead one; the
/// connector re-dials the lost connection on the other edge address.
#[tokio::test]
async fn a_silent_path_is_declared_dead_by_both_ends_and_redialled() {
    let quic = QuicSettings::default();
    let edge = InProcEdge::start(&[HOST], quic.clone()).await;
    let relay = UdpRelay::start(edge.bound.tunnel).await;
    let url = format!("http://{}", origins::http_echo().await);
    // Connection 0 goes straight to the edge, connection 1 through the relay.
    let mut c = InProcConnector::start(
        &edge.token,
        &[edge.bound.tunnel, relay.addr],
        &url,
        2,
        Duration::from_secs(5),
        quic.clone(),
    );
    c.wait_up(2, DEADLINE).await;
    assert_eq!(edge.status().await, ("active".to_owned(), vec![2]));
    assert_eq!(edge.get(HOST, "/").await.0, 200);

    // From here on the clock is virtual: the timers under test elapse at
    // once, and the elapsed time is the protocol's, not the machine's.
    tokio::time::pause();
    let real = std::time::Instant::now();
    let t0 = tokio::time::Instant::now();
    relay.set_blackhole(true);
    let limit = quic.idle_timeout + quic.keep_alive;
    tokio::time::timeout(limit, c.status.wait_for(|up| *up < 2))
        .await
        .expect("the connector noticed the silent path within idle timeout + keep-alive")
        .unwrap();
    let noticed = tokio::time::Instant::now() - t0;
    // Still served on the other path.
    assert_eq!(edge.get(HOST, "/").await.0, 200);
    eprintln!(
        "the connector noticed after {noticed:?} of virtual time ({:?} of real time)",
        real.elapsed()
    );

    // Re-dialling talks to the store, which runs on its own thread: back
    // to real time for it. The edge has dropped the dead connection (the
    // one from the relay's address) and the re-dialled one came straight.
    tokio::time::resume();
    c.wait_up(2, DEADLINE).await;
    eventually(
        "the dead connection gone and two live ones",
        DEADLINE,
        || async {
            let v = edge.tunnel_info().await;
            let conns = v["connections"].as_array()?.clone();
            let direct = conns
                .iter()
                .all(|x| x["remote"].as_str() == Some(c.addr.to_string().as_str()));
            (conns.len() == 2 && direct && v["status"] == "active").then_some(())
        },
    )
    .await;
    edge.stop().await;
}

/// A replica that dies without a word (its path goes silent) stops getting
/// streams long before the idle timeout: the edge closes a connection whose
/// peer leaves its packets unanswered, and requests caught on it are
/// retried on the live one. The idle timeout here is a minute, longer than
/// the test's deadline, so only the answered rule can have removed it.
#[tokio::test]
async fn a_silently_dead_replica_stops_getting_requests_before_the_idle_timeout() {
    let quic = QuicSettings {
        idle_timeout: Duration::from_secs(60),
        keep_alive: Duration::from_secs(20),
        ..QuicSettings::default()
    };
    let edge = InProcEdge::start(&[HOST], quic.clone()).await;
    let relay = UdpRelay::start(edge.bound.tunnel).await;
    let url = format!("http://{}", origins::http_echo().await);
    // Two replicas: one straight to the edge, one through the relay.
    let mut live = InProcConnector::start(
        &edge.token,
        &[edge.bound.tunnel],
        &url,
        1,
        Duration::from_secs(5),
        quic.clone(),
    );
    let mut dying = InProcConnector::start(
        &edge.token,
        &[relay.addr],
        &url,
        1,
        Duration::from_secs(5),
        quic.clone(),
    );
    live.wait_up(1, DEADLINE).await;
    dying.wait_up(1, DEADLINE).await;
    assert_eq!(edge.status().await.1, vec![1, 1]);

    relay.set_blackhole(true);
    // Every request succeeds: one sent to the dead replica is retried on
    // the live one once the edge gives up on it (a GET may be replayed).
    // (DEADLINE bounds the test, well under the idle timeout: without the
    // rule a request caught on the dead replica waits for the minute.)
    tokio::time::timeout(DEADLINE, async {
        for i in 0..20 {
            let (status, body) = edge.get(HOST, &format!("/after-{i}")).await;
            assert_eq!(status, 200, "request {i}: {body}");
        }
    })
    .await
    .expect("requests after the replica died were answered before the idle timeout");
    eventually(
        "the dead replica's connection closed by the edge",
        DEADLINE,
        || async {
            let v = edge.tunnel_info().await;
            let conns = v["connections"].as_array()?.clone();
            let live = live.addr.to_string();
            (conns.len() == 1 && conns[0]["remote"].as_str() == Some(live.as_str())).then_some(())
        },
    )
    .await;
    edge.stop().await;
}

/// A connector with fewer connections up than it keeps makes the tunnel
/// degraded (here its second edge address never answers).
#[tokio::test]
async fn a_connector_short_of_connections_makes_the_tunnel_degraded() {
    let edge = InProcEdge::start(&[HOST], QuicSettings::default()).await;
    let relay = UdpRelay::start(edge.bound.tunnel).await;
    relay.set_blackhole(true);
    let url = format!("http://{}", origins::http_echo().await);
    let mut c = InProcConnector::start(
        &edge.token,
        &[edge.bound.tunnel, relay.addr],
        &url,
        2,
        Duration::from_secs(5),
        QuicSettings::default(),
    );
    c.wait_up(1, DEADLINE).await;
    assert_eq!(edge.status().await, ("degraded".to_owned(), vec![1]));
    assert_eq!(edge.get(HOST, "/").await.0, 200);
    edge.stop().await;
}

/// Waits until a stream is in flight on one of the tunnel's connections.
async fn in_flight(edge: &InProcEdge) {
    eventually("a request to be in flight", DEADLINE, || async {
        let v = edge.tunnel_info().await;
        v["connections"]
            .as_array()?
            .iter()
            .any(|c| c["outstanding_streams"].as_u64() > Some(0))
            .then_some(())
    })
    .await;
}

/// A drain lets an in-flight request finish and takes no new stream; a
/// request still running when the grace period ends is cut.
#[tokio::test]
async fn a_drain_finishes_in_flight_requests_and_the_grace_period_ends_the_rest() {
    let edge = InProcEdge::start(&[HOST], QuicSettings::default()).await;
    let url = format!("http://{}", origins::http_echo().await);
    let mut c = InProcConnector::start(
        &edge.token,
        &[edge.bound.tunnel],
        &url,
        1,
        Duration::from_secs(10),
        QuicSettings::default(),
    );
    c.wait_up(1, DEADLINE).await;
    let edge = std::sync::Arc::new(edge);
    let e = edge.clone();
    let slow = tokio::spawn(async move { e.get(HOST, "/slow").await });
    in_flight(&edge).await;
    c.signals.send(Signal::Shutdown).await.unwrap();
    assert_eq!(slow.await.unwrap(), (200, "slow done".to_owned()));
    tokio::time::timeout(DEADLINE, &mut c.task)
        .await
        .expect("the connector stopped after its drain")
        .unwrap()
        .unwrap();
    // Nothing serves the tunnel now.
    assert_eq!(edge.get(HOST, "/").await.0, 502);

    // A short grace period, and a request that outlives it.
    let mut c = InProcConnector::start(
        &edge.token,
        &[edge.bound.tunnel],
        &url,
        1,
        Duration::from_millis(300),
        QuicSettings::default(),
    );
    c.wait_up(1, DEADLINE).await;
    let e = edge.clone();
    let hung = tokio::spawn(async move { e.get(HOST, "/slow").await });
    in_flight(&edge).await;
    c.signals.send(Signal::Shutdown).await.unwrap();
    tokio::time::timeout(DEADLINE, &mut c.task)
        .await
        .expect("the grace period ended the drain")
        .unwrap()
        .unwrap();
    let (status, _) = tokio::time::timeout(DEADLINE, hung)
        .await
        .expect("the cut request ended")
        .unwrap();
    assert_ne!(
        status, 200,
        "a request cut by the grace period cannot succeed"
    );
}

/// While one replica drains, the edge sends every stream to the other:
/// streams it was already sent are answered ShuttingDown and retried.
#[tokio::test]
async fn a_draining_replica_hands_its_streams_to_another() {
    let edge = InProcEdge::start(&[HOST], QuicSettings::default()).await;
    let url = format!("http://{}", origins::http_echo().await);
    let start = || {
        InProcConnector::start(
            &edge.token,
            &[edge.bound.tunnel],
            &url,
            2,
            Duration::from_secs(5),
            QuicSettings::default(),
        )
    };
    let (mut a, mut b) = (start(), start());
    a.wait_up(2, DEADLINE).await;
    b.wait_up(2, DEADLINE).await;
    let edge = std::sync::Arc::new(edge);
    let e = edge.clone();
    let load = tokio::spawn(async move {
        let mut statuses = Vec::new();
        for _ in 0..60 {
            statuses.push(e.get(HOST, "/").await.0);
        }
        statuses
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.signals.send(Signal::Shutdown).await.unwrap();
    let statuses = load.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "a request failed while a replica drained: {statuses:?}"
    );
    tokio::time::timeout(DEADLINE, &mut a.task)
        .await
        .expect("the drained replica stopped")
        .unwrap()
        .unwrap();
    assert_eq!(edge.get(HOST, "/").await.0, 200);
}
