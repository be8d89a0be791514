//! Routes: single and load-balanced, validation, cascades.

use super::*;

#[tokio::test]
async fn routes_validate_normalize_and_reject_duplicates() {
    let (_dir, s) = store().await;
    let office = s.create_tunnel("office", &H1, 1).await.unwrap();
    let lab = s.create_tunnel("lab", &H2, 1).await.unwrap();

    let r = s
        .add_route("App.Example.com", &office.id, false)
        .await
        .unwrap();
    assert_eq!(r.hostname, "app.example.com");
    assert_eq!(r.tunnel_name, "office");
    s.add_route("*.example.com", &lab.id, false).await.unwrap();

    let e = s
        .add_route("APP.example.com", &lab.id, false)
        .await
        .unwrap_err();
    match &e {
        StoreError::RouteExists {
            hostname,
            tunnel_name,
        } => {
            assert_eq!(hostname, "app.example.com");
            assert_eq!(tunnel_name, "office");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(e.to_string().contains("already routes to tunnel office"));

    for bad in [
        "",
        "http://x.example.com",
        "x.example.com:443",
        "a..b",
        "1.2.3.4",
    ] {
        assert!(
            matches!(
                s.add_route(bad, &office.id, false).await,
                Err(StoreError::InvalidHostname(_))
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        s.add_route("new.example.com", "missing", false).await,
        Err(StoreError::UnknownTunnel(_))
    ));

    let routes = s.list_routes().await.unwrap();
    let pairs: Vec<_> = routes
        .iter()
        .map(|r| (r.hostname.as_str(), r.tunnel_name.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [("*.example.com", "lab"), ("app.example.com", "office")]
    );

    assert!(s.delete_route("App.Example.com").await.unwrap());
    assert!(!s.delete_route("app.example.com").await.unwrap());
    assert_eq!(s.list_routes().await.unwrap().len(), 1);
}

#[tokio::test]
async fn deleting_a_tunnel_cascades_to_its_routes() {
    let (_dir, s) = store().await;
    let office = s.create_tunnel("office", &H1, 1).await.unwrap();
    let lab = s.create_tunnel("lab", &H2, 1).await.unwrap();
    s.add_route("a.example.com", &office.id, false)
        .await
        .unwrap();
    s.add_route("b.example.com", &office.id, false)
        .await
        .unwrap();
    s.add_route("c.example.com", &lab.id, false).await.unwrap();

    assert!(s.delete_tunnel(&office.id).await.unwrap());
    assert!(!s.delete_tunnel(&office.id).await.unwrap());
    assert!(s.get_tunnel("office").await.unwrap().is_none());
    let routes = s.list_routes().await.unwrap();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].hostname, "c.example.com");
    // The name can be reused.
    s.create_tunnel("office", &H1, 1).await.unwrap();
}

#[tokio::test]
async fn pool_routes_keep_their_tunnels_in_priority_order() {
    let (_dir, s) = store().await;
    let a = s.create_tunnel("primary", &H1, 1).await.unwrap();
    let b = s.create_tunnel("backup", &H2, 1).await.unwrap();
    let c = s.create_tunnel("third", &H2, 1).await.unwrap();
    let members = vec![(a.id.clone(), 3), (b.id.clone(), 1), (c.id.clone(), 0)];
    let row = s
        .add_pool_route("App.Example.com", Steering::Failover, &members, false)
        .await
        .unwrap();
    assert_eq!(row.hostname, "app.example.com");
    assert_eq!(row.tunnel_name, "primary");
    s.add_route("single.example.com", &b.id, false)
        .await
        .unwrap();

    let routes = s.list_routes().await.unwrap();
    assert_eq!(routes.len(), 2);
    let pool = &routes[0];
    assert_eq!(pool.steering, Steering::Failover);
    let names: Vec<_> = pool
        .tunnels
        .iter()
        .map(|m| m.tunnel_name.as_str())
        .collect();
    assert_eq!(names, ["primary", "backup", "third"]);
    assert_eq!(pool.tunnels[0].weight, 3);
    assert_eq!(pool.tunnels[2].priority, 3);
    assert_eq!(routes[1].steering, Steering::Single);
    assert_eq!(routes[1].tunnels.len(), 1);

    // Deleting the first tunnel keeps the route on the next one.
    assert!(s.delete_tunnel(&a.id).await.unwrap());
    let routes = s.list_routes().await.unwrap();
    let pool = &routes[0];
    assert_eq!(pool.hostname, "app.example.com");
    assert_eq!(pool.tunnel_name, "backup");
    let names: Vec<_> = pool
        .tunnels
        .iter()
        .map(|m| m.tunnel_name.as_str())
        .collect();
    assert_eq!(names, ["backup", "third"]);
    // Deleting the route drops its members.
    assert!(s.delete_route("app.example.com").await.unwrap());
    assert_eq!(s.list_routes().await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_pool_routes_are_sentences() {
    let (_dir, s) = store().await;
    let a = s.create_tunnel("primary", &H1, 1).await.unwrap();
    let b = s.create_tunnel("backup", &H2, 1).await.unwrap();
    let err = |members: Vec<(String, i64)>, steering| {
        let s = s.clone();
        async move {
            s.add_pool_route("x.example.com", steering, &members, false)
                .await
                .unwrap_err()
                .to_string()
        }
    };
    assert_eq!(
        err(vec![(a.id.clone(), 1)], Steering::Failover).await,
        "a load-balanced route needs at least two tunnels; use `warren tunnel route dns` for one"
    );
    assert_eq!(
        err(
            vec![(a.id.clone(), 1), (a.id.clone(), 1)],
            Steering::Failover
        )
        .await,
        "a tunnel appears twice in the route; list each tunnel once"
    );
    assert_eq!(
        err(vec![(a.id.clone(), 0), (b.id.clone(), 0)], Steering::Weighted).await,
        "every weight is 0, so no tunnel would get traffic; give at least one tunnel a weight above 0"
    );
    assert!(err(
        vec![(a.id.clone(), 1), ("nope".into(), 1)],
        Steering::Failover
    )
    .await
    .contains("no tunnel has the id"));
    // Nothing was half-written.
    assert!(s.list_routes().await.unwrap().is_empty());
}
