//! Store tests against a real SQLite file in a temp directory.

use super::*;

const H1: [u8; 32] = [1; 32];
const H2: [u8; 32] = [2; 32];

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn creates_lists_and_gets_tunnels_by_name_and_id() {
    let (_dir, s) = store().await;
    let office = s.create_tunnel("office", &H1, 1).await.unwrap();
    let lab = s.create_tunnel("lab", &H2, 1).await.unwrap();
    assert!(uuid::Uuid::parse_str(&office.id).is_ok());
    assert_eq!(office.secret_generation, 1);
    assert!(office.created_at > 1_600_000_000);

    let names: Vec<_> = s
        .list_tunnels()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["lab", "office"]);

    assert_eq!(s.get_tunnel("office").await.unwrap().unwrap(), office);
    assert_eq!(s.get_tunnel(&lab.id).await.unwrap().unwrap(), lab);
    assert!(s.get_tunnel("nope").await.unwrap().is_none());
    assert_eq!(
        s.tunnel_secret_hash(&office.id).await.unwrap().unwrap(),
        H1.to_vec()
    );
    assert!(s.tunnel_secret_hash("nope").await.unwrap().is_none());
}

#[tokio::test]
async fn tunnel_json_has_no_secret_hash() {
    let (_dir, s) = store().await;
    let t = s.create_tunnel("office", &H1, 1).await.unwrap();
    let json = serde_json::to_value(&t).unwrap();
    let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(!json.to_string().contains("secret_hash"));
}

#[tokio::test]
async fn rejects_duplicate_and_invalid_names() {
    let (_dir, s) = store().await;
    s.create_tunnel("office", &H1, 1).await.unwrap();
    let e = s.create_tunnel("office", &H2, 1).await.unwrap_err();
    assert!(matches!(&e, StoreError::TunnelExists(n) if n == "office"));
    assert_eq!(
        e.to_string(),
        "a tunnel named \"office\" already exists; pick another name or delete it with `warren tunnel delete office`"
    );
    for bad in ["", "-x", "a b", "x/../y"] {
        let e = s.create_tunnel(bad, &H1, 1).await.unwrap_err();
        assert!(matches!(e, StoreError::InvalidName(_)), "{bad}: {e}");
    }
    assert_eq!(s.list_tunnels().await.unwrap().len(), 1);
}

#[tokio::test]
async fn create_with_hashes_a_secret_derived_from_the_new_id() {
    let (_dir, s) = store().await;
    let mut seen = String::new();
    let t = s
        .create_tunnel_with("office", 1, |id| {
            seen = id.to_owned();
            [id.len() as u8; 32]
        })
        .await
        .unwrap();
    assert_eq!(seen, t.id);
    assert_eq!(
        s.tunnel_secret_hash(&t.id).await.unwrap().unwrap(),
        vec![36u8; 32]
    );
}

#[tokio::test]
async fn rotates_secret() {
    let (_dir, s) = store().await;
    let t = s.create_tunnel("office", &H1, 1).await.unwrap();
    s.set_tunnel_secret(&t.id, &H2, 2).await.unwrap();
    assert_eq!(
        s.tunnel_secret_hash(&t.id).await.unwrap().unwrap(),
        H2.to_vec()
    );
    assert_eq!(
        s.get_tunnel(&t.id)
            .await
            .unwrap()
            .unwrap()
            .secret_generation,
        2
    );
    assert!(matches!(
        s.set_tunnel_secret("missing", &H2, 2).await,
        Err(StoreError::UnknownTunnel(_))
    ));
}

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
async fn admin_tokens() {
    let (_dir, s) = store().await;
    assert!(!s.has_admin_token().await.unwrap());
    assert!(s.admin_token_hashes().await.unwrap().is_empty());
    s.add_admin_token_hash(&H1).await.unwrap();
    assert!(s.has_admin_token().await.unwrap());
    assert_eq!(s.admin_token_hashes().await.unwrap(), vec![H1.to_vec()]);
}

#[tokio::test]
async fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let (id, token) = {
        let s = Store::open(&data).await.unwrap();
        let t = s.create_tunnel("office", &H1, 3).await.unwrap();
        s.add_route("app.example.com", &t.id, false).await.unwrap();
        s.add_admin_token_hash(&H2).await.unwrap();
        s.close().await;
        (t.id, H2.to_vec())
    };
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join(DB_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let s = Store::open(&data).await.unwrap();
    let t = s.get_tunnel("office").await.unwrap().unwrap();
    assert_eq!(t.id, id);
    assert_eq!(t.secret_generation, 3);
    assert_eq!(s.list_routes().await.unwrap()[0].tunnel_id, id);
    assert_eq!(s.admin_token_hashes().await.unwrap(), vec![token]);
}

#[tokio::test]
async fn unusable_data_dir_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let e = Store::open(&file.join("sub")).await.unwrap_err();
    assert!(matches!(e, StoreError::Io { .. }), "{e}");
}

#[tokio::test]
async fn corrupt_database_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![0x42; 8192]).unwrap();
    let e = Store::open(dir.path()).await.unwrap_err();
    assert!(
        matches!(e, StoreError::Database { .. } | StoreError::Migrate { .. }),
        "{e}"
    );
    assert!(e.to_string().contains(DB_FILE), "{e}");
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

fn entry(identity: &str, decision: &str) -> AuditEntry {
    AuditEntry {
        kind: "connection".into(),
        identity: identity.into(),
        source: "127.0.0.1:5000".into(),
        hostname: "db.example.com".into(),
        tunnel: "office".into(),
        decision: decision.into(),
        bytes_up: 10,
        bytes_down: 20,
        ..Default::default()
    }
}

#[tokio::test]
async fn audit_chain_detects_edits_and_deletions() {
    let (_dir, s) = store().await;
    let entries: Vec<_> = (0..5)
        .map(|i| {
            entry(
                &format!("u{i}@example.com"),
                if i % 2 == 0 { "allow" } else { "deny" },
            )
        })
        .collect();
    s.append_audit(&entries[..2]).await.unwrap();
    s.append_audit(&entries[2..]).await.unwrap();
    let v = s.verify_audit().await.unwrap();
    assert_eq!((v.checked, v.broken_at), (5, None));

    let denied = s
        .list_audit(&AuditFilter {
            decision: Some("deny".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(denied.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 4]);
    let page = s
        .list_audit(&AuditFilter {
            after_seq: Some(3),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page[0].seq, 4);
    assert_eq!(page[0].entry.identity, "u3@example.com");

    // An edited row.
    sqlx::query("UPDATE audit_log SET decision = 'allow' WHERE seq = 4")
        .execute(&s.pool)
        .await
        .unwrap();
    let v = s.verify_audit().await.unwrap();
    assert_eq!(v.broken_at, Some(4), "{v:?}");
    assert!(v.problem.unwrap().contains("changed"));
    sqlx::query("UPDATE audit_log SET decision = 'deny' WHERE seq = 4")
        .execute(&s.pool)
        .await
        .unwrap();
    assert_eq!(s.verify_audit().await.unwrap().broken_at, None);

    // A deleted row.
    sqlx::query("DELETE FROM audit_log WHERE seq = 3")
        .execute(&s.pool)
        .await
        .unwrap();
    let v = s.verify_audit().await.unwrap();
    assert_eq!(v.broken_at, Some(3), "{v:?}");
    assert!(v.problem.unwrap().contains("missing"));
}

#[tokio::test]
async fn audit_retention_keeps_the_chain_verifiable() {
    let (_dir, s) = store().await;
    let mut old = entry("a@example.com", "allow");
    old.time = 1_000;
    let mut new = entry("b@example.com", "allow");
    new.time = 2_000_000_000;
    s.append_audit(&[old.clone(), old, new]).await.unwrap();
    assert_eq!(s.prune_audit(1_000_000).await.unwrap(), 2);
    let v = s.verify_audit().await.unwrap();
    assert_eq!((v.checked, v.broken_at), (1, None), "{v:?}");
    // Appends continue the chain after the anchor.
    s.append_audit(&[entry("c@example.com", "deny")])
        .await
        .unwrap();
    let v = s.verify_audit().await.unwrap();
    assert_eq!((v.checked, v.broken_at), (2, None), "{v:?}");
    let all = s
        .list_audit(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4]);
}
