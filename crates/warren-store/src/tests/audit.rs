//! The audit chain: edits, deletions, retention.

use super::*;

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
