//! The pool itself: health streaks, the unavailable sentence, outstanding
//! guards, and the checker task.

use super::*;

fn pool(yaml_pool: &str) -> Arc<Pool> {
    let config = crate::ingress::IngressConfig::from_yaml(&format!(
        "ingress:\n  - hostname: api.example.com\n    service: pool\n    originPool: {yaml_pool}\n  - service: http_status:404\n"
    ))
    .unwrap();
    let rule = &config.rules[0];
    let Service::Pool(p) = &rule.service else {
        panic!("not a pool: {}", rule.service)
    };
    Arc::new(Pool::new(1, rule, p, Path::new(".")).unwrap())
}

const NO_FACTS: Facts<'static> = Facts {
    headers: &[],
    client_addr: "",
};

#[test]
fn health_needs_streaks_both_ways() {
    let p = pool("{ origins: [tcp://127.0.0.1:1, tcp://127.0.0.1:2], healthCheck: { unhealthyAfter: 2, healthyAfter: 3 } }");
    assert!(p.is_healthy(0) && p.is_healthy(1), "origins start healthy");
    p.record_failure(0, "refused");
    assert!(p.is_healthy(0), "one failure is not enough");
    p.record_success(0);
    p.record_failure(0, "refused");
    assert!(p.is_healthy(0), "a success resets the failures");
    p.record_failure(0, "refused again");
    assert!(!p.is_healthy(0));
    for _ in 0..10 {
        assert_eq!(p.pick(&NO_FACTS, None), Some(1), "only the healthy one");
    }
    assert_eq!(p.pick(&NO_FACTS, Some(1)), None, "the other one is down");
    p.record_success(0);
    p.record_success(0);
    p.record_failure(0, "flap");
    p.record_success(0);
    p.record_success(0);
    assert!(!p.is_healthy(0), "a failure resets the successes");
    p.record_success(0);
    assert!(p.is_healthy(0));
}

#[test]
fn unavailable_names_the_last_error() {
    let p = pool("{ origins: [tcp://127.0.0.1:1, tcp://127.0.0.1:2] }");
    for i in 0..2 {
        p.record_failure(i, &format!("error {i}"));
        p.record_failure(i, &format!("error {i}"));
    }
    assert_eq!(p.pick(&NO_FACTS, None), None);
    assert_eq!(
        p.unavailable("api.example.com"),
        "no healthy origin in the pool for api.example.com: all 2 origins failed their \
         health checks (last error: error 1)"
    );
    let one = pool("{ origins: [tcp://127.0.0.1:1] }");
    assert_eq!(
        one.unavailable("db.example.com"),
        "no healthy origin in the pool for db.example.com: its only origin failed its \
         health checks"
    );
}

#[test]
fn outstanding_guards_steer_least_outstanding() {
    let p =
        pool("{ origins: [tcp://127.0.0.1:1, tcp://127.0.0.1:2], steering: least_outstanding }");
    let busy = p.acquire(0);
    for _ in 0..5 {
        assert_eq!(p.pick(&NO_FACTS, None), Some(1));
    }
    let busier = p.acquire(1);
    let also_busier = p.acquire(1);
    assert_eq!(p.pick(&NO_FACTS, None), Some(0));
    drop((busier, also_busier));
    drop(busy);
    let picks: Vec<_> = (0..4).filter_map(|_| p.pick(&NO_FACTS, None)).collect();
    assert!(picks.contains(&0) && picks.contains(&1), "{picks:?}");
}

#[tokio::test]
async fn tcp_checks_find_a_dead_origin_and_stop_with_the_task() {
    let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Bound but not listening: connections are refused, and no other
    // test's port-0 bind can take the port meanwhile.
    let dead = tokio::net::TcpSocket::new_v4().unwrap();
    dead.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let dead_addr = dead.local_addr().unwrap();
    let p = pool(&format!(
        "{{ origins: [tcp://{}, tcp://{dead_addr}], healthCheck: {{ interval: 10ms, timeout: 1s, unhealthyAfter: 2 }} }}",
        live.local_addr().unwrap()
    ));
    let task = tokio::spawn(p.clone().check_forever());
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while p.is_healthy(1) {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the closed port is found unhealthy");
    assert!(p.is_healthy(0));
    assert!(p.unavailable("x").contains(&dead_addr.to_string()));
    // Aborting the task releases its reference to the pool.
    task.abort();
    let _ = task.await;
    assert_eq!(Arc::strong_count(&p), 1);
}
