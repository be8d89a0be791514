//! Tunnels: create, list, look up, rotate, names.

use super::*;

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
    s.set_tunnel_secret(&t.id, &H2, 2, None).await.unwrap();
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
        s.set_tunnel_secret("missing", &H2, 2, None).await,
        Err(StoreError::UnknownTunnel(_))
    ));
}

#[tokio::test]
async fn a_rotation_keeps_the_replaced_secret_for_its_grace_window() {
    let (_dir, s) = store().await;
    let t = s.create_tunnel("office", &H1, 1).await.unwrap();
    let fresh = s.tunnel_secrets(&t.id).await.unwrap().unwrap();
    assert_eq!(fresh.current, H1.to_vec());
    assert!(fresh.previous.is_none());

    let until = crate::store::now() + 3600;
    s.set_tunnel_secret(&t.id, &H2, 2, Some(until))
        .await
        .unwrap();
    let both = s.tunnel_secrets(&t.id).await.unwrap().unwrap();
    assert_eq!(both.current, H2.to_vec());
    assert_eq!(both.previous, Some((H1.to_vec(), until)));
    assert!(
        !format!("{both:?}").contains("current"),
        "hashes stay out of Debug"
    );

    // A window already over counts as none.
    s.set_tunnel_secret(&t.id, &H1, 3, Some(crate::store::now() - 1))
        .await
        .unwrap();
    assert!(s
        .tunnel_secrets(&t.id)
        .await
        .unwrap()
        .unwrap()
        .previous
        .is_none());
    assert!(!s.revoke_previous_secret(&t.id).await.unwrap());

    // Revoked at once; a rotation without a window ends the old one too.
    s.set_tunnel_secret(&t.id, &H2, 4, Some(until))
        .await
        .unwrap();
    assert!(s.revoke_previous_secret(&t.id).await.unwrap());
    assert!(s
        .tunnel_secrets(&t.id)
        .await
        .unwrap()
        .unwrap()
        .previous
        .is_none());
    s.set_tunnel_secret(&t.id, &H1, 5, Some(until))
        .await
        .unwrap();
    s.set_tunnel_secret(&t.id, &H2, 6, None).await.unwrap();
    assert!(s
        .tunnel_secrets(&t.id)
        .await
        .unwrap()
        .unwrap()
        .previous
        .is_none());
    assert!(s.tunnel_secrets("missing").await.unwrap().is_none());
}

#[tokio::test]
async fn stored_configs_grow_a_version_per_change() {
    let (_dir, s) = store().await;
    let t = s.create_tunnel("office", &H1, 1).await.unwrap();
    assert_eq!(s.tunnel_config(&t.id).await.unwrap(), None);
    let first = s.set_tunnel_config(&t.id, "ingress: [a]").await.unwrap();
    assert_eq!(first.version, 1);
    assert_eq!(s.tunnel_config(&t.id).await.unwrap(), Some(first));
    let second = s.set_tunnel_config(&t.id, "ingress: [b]").await.unwrap();
    assert_eq!(second.version, 2);
    assert_eq!(
        s.tunnel_config(&t.id).await.unwrap().unwrap().yaml,
        "ingress: [b]"
    );
    assert!(matches!(
        s.set_tunnel_config("missing", "x").await,
        Err(StoreError::UnknownTunnel(_))
    ));
    // Deleting the tunnel deletes its config.
    assert!(s.delete_tunnel(&t.id).await.unwrap());
    assert_eq!(s.tunnel_config(&t.id).await.unwrap(), None);
}

#[tokio::test]
async fn quick_tunnels_are_listed_apart() {
    let (_dir, s) = store().await;
    let plain = s.create_tunnel("office", &H1, 1).await.unwrap();
    let quick = s.create_tunnel("quick-abc", &H1, 1).await.unwrap();
    assert!(s.quick_tunnels().await.unwrap().is_empty());
    s.mark_quick_tunnel(&quick.id).await.unwrap();
    let listed = s.quick_tunnels().await.unwrap();
    assert_eq!(listed, vec![quick]);
    assert!(!listed.contains(&plain));
    assert!(s.mark_quick_tunnel("missing").await.is_err());
}
