//! Pooled databases and their sealed credentials: validation, uniqueness,
//! updates, cascades and the control generation.

use super::*;

fn orders() -> PgDatabase {
    PgDatabase::with_defaults("orders", "DB.Example.com", "orders")
}

fn sealed(database: &str, role: &str, byte: u8) -> SealedCredential {
    SealedCredential {
        database: database.into(),
        role: role.into(),
        nonce: vec![byte; NONCE_LEN],
        sealed: vec![byte; 24],
        updated_at: 0,
    }
}

#[tokio::test]
async fn databases_are_created_read_updated_and_deleted() {
    let (_dir, s) = store().await;
    assert!(s.pg_databases().await.unwrap().is_empty());

    let row = s.create_pg_database(&orders()).await.unwrap();
    assert_eq!(row.hostname, "db.example.com", "hostnames are lower-cased");
    assert!(row.created_at > 0);
    assert_eq!(row.pool_mode, "transaction");
    assert_eq!(row.pool_size, 20);
    assert_eq!(row.cache_max_bytes, 64 * 1024 * 1024);
    assert_eq!(s.pg_database("orders").await.unwrap(), Some(row.clone()));
    assert_eq!(s.pg_database("missing").await.unwrap(), None);

    let changed = PgDatabase {
        pool_mode: "session".into(),
        pool_size: 5,
        min_idle: 5,
        cache: true,
        cache_max_age_secs: 5,
        created_at: 1,
        ..row.clone()
    };
    let updated = s.update_pg_database(&changed).await.unwrap();
    assert_eq!(updated.created_at, row.created_at, "created_at is kept");
    assert_eq!(updated.pool_size, 5);
    assert_eq!(
        s.pg_databases().await.unwrap(),
        vec![updated.clone()],
        "the update is what a read gives"
    );

    let missing = PgDatabase {
        name: "missing".into(),
        hostname: "other.example.com".into(),
        ..row.clone()
    };
    let e = s.update_pg_database(&missing).await.unwrap_err();
    assert!(matches!(e, StoreError::UnknownPgDatabase(ref n) if n == "missing"));
    assert_eq!(
        e.to_string(),
        "there is no pooled database named \"missing\"; list them with `warren db list`"
    );

    assert!(s.delete_pg_database("orders").await.unwrap());
    assert!(!s.delete_pg_database("orders").await.unwrap());
    assert!(s.pg_databases().await.unwrap().is_empty());
}

#[tokio::test]
async fn names_and_hostnames_are_unique() {
    let (_dir, s) = store().await;
    s.create_pg_database(&orders()).await.unwrap();

    let again = PgDatabase {
        hostname: "other.example.com".into(),
        ..orders()
    };
    let e = s.create_pg_database(&again).await.unwrap_err();
    assert!(matches!(e, StoreError::PgDatabaseExists(ref n) if n == "orders"));
    assert!(e.to_string().contains("`warren db set orders`"), "{e}");

    let same_host = PgDatabase {
        name: "billing".into(),
        hostname: "db.example.com.".into(),
        ..orders()
    };
    let e = s.create_pg_database(&same_host).await.unwrap_err();
    match &e {
        StoreError::PgHostnameTaken { hostname, database } => {
            assert_eq!(hostname, "db.example.com");
            assert_eq!(database, "orders");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(e.to_string().contains("`warren db remove orders`"), "{e}");

    // Moving another database onto the hostname is refused the same way;
    // keeping its own is not a conflict.
    let billing = s
        .create_pg_database(&PgDatabase {
            name: "billing".into(),
            hostname: "billing.example.com".into(),
            ..orders()
        })
        .await
        .unwrap();
    assert!(matches!(
        s.update_pg_database(&PgDatabase {
            hostname: "db.example.com".into(),
            ..billing.clone()
        })
        .await,
        Err(StoreError::PgHostnameTaken { .. })
    ));
    s.update_pg_database(&PgDatabase {
        pool_size: 3,
        ..billing
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn settings_are_checked_with_a_sentence() {
    let (_dir, s) = store().await;
    let refused = |db: PgDatabase| {
        let s = s.clone();
        async move {
            match s.create_pg_database(&db).await {
                Err(StoreError::InvalidPgDatabase(m)) => m,
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    };
    for bad in [
        "",
        "Orders",
        "-orders",
        "or_ders",
        "or ders",
        &"o".repeat(64),
    ] {
        let m = refused(PgDatabase {
            name: bad.into(),
            ..orders()
        })
        .await;
        assert!(m.contains("is not a valid pooled database name; use 1 to 63 lower-case letters, digits or '-'"), "{bad}: {m}");
    }
    assert!(refused(PgDatabase {
        hostname: "*.example.com".into(),
        ..orders()
    })
    .await
    .contains("is a wildcard"));
    assert!(refused(PgDatabase {
        hostname: "db.example.com:5432".into(),
        ..orders()
    })
    .await
    .contains("is not a hostname"));
    assert_eq!(
        refused(PgDatabase {
            database: String::new(),
            ..orders()
        })
        .await,
        "the database name \"\" of orders is empty; give the database's name exactly as the server has it"
    );
    assert!(refused(PgDatabase {
        database: "a\0b".into(),
        ..orders()
    })
    .await
    .contains("contains a NUL byte"));
    assert_eq!(
        refused(PgDatabase {
            pool_size: 0,
            ..orders()
        })
        .await,
        "the pool size of orders is 0 connections; give one from 1 connections to 10000 connections"
    );
    assert!(refused(PgDatabase {
        min_idle: 21,
        ..orders()
    })
    .await
    .contains("more than its pool size of 20; lower min_idle or raise pool_size"));
    assert!(refused(PgDatabase {
        checkout_timeout_ms: 0,
        ..orders()
    })
    .await
    .starts_with("the checkout timeout of orders is 0 ms"));
    assert!(refused(PgDatabase {
        idle_timeout_secs: u64::MAX,
        ..orders()
    })
    .await
    .starts_with("the idle timeout of orders is"));
    assert!(refused(PgDatabase {
        cache_max_bytes: 0,
        ..orders()
    })
    .await
    .starts_with("the cache size of orders is 0 bytes"));
    // No stale-while-revalidate is a setting, not a mistake.
    s.create_pg_database(&PgDatabase {
        cache_swr_secs: 0,
        ..orders()
    })
    .await
    .unwrap();
    assert!(s.pg_databases().await.unwrap().len() == 1);
}

#[tokio::test]
async fn credentials_are_upserted_listed_and_go_with_their_database() {
    let (_dir, s) = store().await;
    s.create_pg_database(&orders()).await.unwrap();
    s.create_pg_database(&PgDatabase {
        name: "billing".into(),
        hostname: "billing.example.com".into(),
        ..orders()
    })
    .await
    .unwrap();

    let app = s
        .set_pg_credential(&sealed("orders", "app", 1))
        .await
        .unwrap();
    assert!(app.updated_at > 0);
    s.set_pg_credential(&sealed("orders", "analyst", 2))
        .await
        .unwrap();
    s.set_pg_credential(&sealed("billing", "app", 3))
        .await
        .unwrap();
    // Setting it again replaces it.
    s.set_pg_credential(&sealed("orders", "app", 4))
        .await
        .unwrap();

    let creds = s.pg_credentials("orders").await.unwrap();
    let roles: Vec<_> = creds.iter().map(|c| c.role.as_str()).collect();
    assert_eq!(roles, ["analyst", "app"]);
    assert_eq!(creds[1].sealed, vec![4; 24]);
    assert_eq!(creds[1].nonce, vec![4; NONCE_LEN]);
    let all: Vec<_> = s
        .all_pg_credentials()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.database, c.role))
        .collect();
    assert_eq!(
        all,
        [
            ("billing".to_owned(), "app".to_owned()),
            ("orders".to_owned(), "analyst".to_owned()),
            ("orders".to_owned(), "app".to_owned()),
        ]
    );

    assert!(s.delete_pg_credential("orders", "analyst").await.unwrap());
    assert!(!s.delete_pg_credential("orders", "analyst").await.unwrap());
    assert_eq!(s.pg_credentials("orders").await.unwrap().len(), 1);

    assert!(s.delete_pg_database("orders").await.unwrap());
    assert!(s.pg_credentials("orders").await.unwrap().is_empty());
    assert_eq!(s.all_pg_credentials().await.unwrap().len(), 1);
}

#[tokio::test]
async fn credentials_are_checked() {
    let (_dir, s) = store().await;
    let e = s
        .set_pg_credential(&sealed("orders", "app", 1))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::UnknownPgDatabase(ref n) if n == "orders"));
    s.create_pg_database(&orders()).await.unwrap();
    let e = s
        .set_pg_credential(&sealed("orders", "", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::InvalidPgDatabase(m) if m.starts_with("the role \"\" is empty")),
        "{e}"
    );
    let short_nonce = SealedCredential {
        nonce: vec![1; 8],
        ..sealed("orders", "app", 1)
    };
    assert!(matches!(
        s.set_pg_credential(&short_nonce).await,
        Err(StoreError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn every_write_moves_the_control_generation() {
    let (_dir, s) = store().await;
    let mut last = s.control_generation().await.unwrap();
    let mut moved = |what: &str, now: i64| {
        assert!(now > last, "{what} did not move the control generation");
        last = now;
    };
    let row = s.create_pg_database(&orders()).await.unwrap();
    moved("create", s.control_generation().await.unwrap());
    s.update_pg_database(&PgDatabase {
        pool_size: 4,
        ..row
    })
    .await
    .unwrap();
    moved("update", s.control_generation().await.unwrap());
    s.set_pg_credential(&sealed("orders", "app", 1))
        .await
        .unwrap();
    moved("set credential", s.control_generation().await.unwrap());
    s.set_pg_credential(&sealed("orders", "app", 2))
        .await
        .unwrap();
    moved("replace credential", s.control_generation().await.unwrap());
    s.delete_pg_credential("orders", "app").await.unwrap();
    moved("delete credential", s.control_generation().await.unwrap());
    s.delete_pg_database("orders").await.unwrap();
    moved("delete", s.control_generation().await.unwrap());
}

#[tokio::test]
async fn writes_in_one_transaction_land_together_or_not_at_all() {
    let (_dir, s) = store().await;
    {
        let mut tx = s.begin().await.unwrap();
        tx.create_pg_database(&orders()).await.unwrap();
        tx.set_pg_credential(&sealed("orders", "app", 1))
            .await
            .unwrap();
        // Dropped without a commit.
    }
    assert!(s.pg_databases().await.unwrap().is_empty());
    let mut tx = s.begin().await.unwrap();
    tx.create_pg_database(&orders()).await.unwrap();
    tx.set_pg_credential(&sealed("orders", "app", 1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.all_pg_credentials().await.unwrap().len(), 1);
}

#[test]
fn a_sealed_credential_debug_leaves_the_ciphertext_out() {
    let c = SealedCredential {
        sealed: b"ciphertext-bytes".to_vec(),
        ..sealed("orders", "app", 7)
    };
    let text = format!("{c:?}");
    assert!(
        text.contains("\"app\"") && text.contains("<16 bytes>"),
        "{text}"
    );
    assert!(!text.contains("99, 105"), "{text}");
    assert!(!text.contains("ciphertext-bytes"), "{text}");
    assert!(!text.contains("nonce: ["), "{text}");
}
