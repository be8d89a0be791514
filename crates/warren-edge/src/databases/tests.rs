//! Sealing and opening credentials, the key file, and reloads against a
//! real store in a temp directory.

use std::os::unix::fs::PermissionsExt;

use super::*;

const PASSWORD: &str = "correct horse battery staple";

fn key(byte: u8) -> CredentialKey {
    CredentialKey::from_bytes(&[byte; 32], PathBuf::from("/data/pg-credentials.key"))
}

#[test]
fn a_sealed_password_opens_only_with_its_key_database_and_role() {
    let k = key(1);
    let sealed = k.seal("orders", "app", PASSWORD);
    assert_eq!(sealed.nonce.len(), NONCE_LEN);
    assert_eq!(sealed.sealed.len(), PASSWORD.len() + 16);
    assert!(!sealed
        .sealed
        .windows(PASSWORD.len())
        .any(|w| w == PASSWORD.as_bytes()));
    assert_eq!(k.open(&sealed).unwrap().expose(), PASSWORD);
    // A fresh nonce every time.
    assert_ne!(k.seal("orders", "app", PASSWORD).nonce, sealed.nonce);

    let moved_role = SealedCredential {
        role: "admin".into(),
        ..sealed.clone()
    };
    assert_eq!(
        k.open(&moved_role).unwrap_err().to_string(),
        "the credential for role admin on database orders cannot be decrypted with /data/pg-credentials.key; set it again with `warren db credential set orders --role admin --password-file FILE`"
    );
    let moved_db = SealedCredential {
        database: "billing".into(),
        ..sealed.clone()
    };
    assert!(matches!(
        k.open(&moved_db),
        Err(CredentialError::Undecryptable { .. })
    ));
    // The separator keeps ("ord", "ersapp") and ("orders", "app") apart.
    let shifted = SealedCredential {
        database: "ord".into(),
        role: "ersapp".into(),
        ..sealed.clone()
    };
    assert!(k.open(&shifted).is_err());

    let e = key(2).open(&sealed).unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot be decrypted with /data/pg-credentials.key; set it again with `warren db credential set"),
        "{e}"
    );

    let mut flipped = sealed.clone();
    flipped.sealed[0] ^= 1;
    assert!(k.open(&flipped).is_err());
    let short = SealedCredential {
        nonce: vec![0; 8],
        ..sealed
    };
    assert_eq!(
        k.open(&short).unwrap_err().to_string(),
        "the credential for role app on database orders is damaged (its nonce is 8 bytes, not 12); set it again with `warren db credential set orders --role app --password-file FILE`"
    );
}

#[test]
fn passwords_and_keys_do_not_print() {
    let p = Password::new(PASSWORD.into());
    assert_eq!(format!("{p:?}"), "Password(<redacted>)");
    let config = DatabaseConfig::new(
        &PgDatabase::with_defaults("orders", "db.example.com", "orders"),
        PoolMode::Transaction,
        AuthMode::Identity,
        HashMap::from([("app".to_owned(), Arc::new(p))]),
        1,
    );
    let text = format!("{config:?}");
    assert!(text.contains("Password(<redacted>)"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    let k = format!("{:?}", key(7));
    assert!(!k.contains("7, 7"), "{k}");
}

#[test]
fn the_key_file_is_made_private_and_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let a = CredentialKey::load_or_create(dir.path()).unwrap();
    let path = dir.path().join(KEY_FILE);
    assert_eq!(a.path, path);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    let sealed = a.seal("orders", "app", PASSWORD);
    let b = CredentialKey::load_or_create(dir.path()).unwrap();
    assert_eq!(b.open(&sealed).unwrap().expose(), PASSWORD);

    std::fs::write(&path, [1u8; 40]).unwrap();
    let e = CredentialKey::load_or_create(dir.path()).unwrap_err();
    assert!(
        e.to_string().contains("33 or more bytes instead of 32")
            && e.to_string()
                .contains("makes every stored database credential undecryptable"),
        "{e}"
    );
}

#[test]
fn modes_parse() {
    for m in [PoolMode::Transaction, PoolMode::Session] {
        assert_eq!(PoolMode::parse(m.as_str()), Some(m));
    }
    for m in [AuthMode::Identity, AuthMode::Passthrough] {
        assert_eq!(AuthMode::parse(m.as_str()), Some(m));
    }
    assert_eq!(PoolMode::parse("Transaction"), None);
    assert_eq!(PoolMode::parse("statement"), None);
    assert_eq!(AuthMode::parse("scram"), None);
}

async fn store_in(dir: &Path) -> Store {
    Store::open(dir).await.unwrap()
}

#[tokio::test]
async fn reload_decrypts_and_a_restarted_edge_still_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    let dbs = Databases::load(dir.path()).unwrap();
    dbs.reload(&store).await.unwrap();
    assert!(dbs.all().is_empty());

    store
        .create_pg_database(&PgDatabase {
            cache: true,
            pool_size: 7,
            ..PgDatabase::with_defaults("orders", "db.example.com", "orders_prod")
        })
        .await
        .unwrap();
    store
        .set_pg_credential(&dbs.seal("orders", "app", PASSWORD))
        .await
        .unwrap();
    dbs.reload(&store).await.unwrap();

    let db = dbs.for_host("db.example.com").expect("served");
    assert_eq!(db.name, "orders");
    assert_eq!(db.hostname, "db.example.com");
    assert_eq!(db.database, "orders_prod");
    assert_eq!(db.mode, PoolMode::Transaction);
    assert_eq!(db.auth, AuthMode::Identity);
    assert_eq!(
        db.pool,
        PoolSettings {
            size: 7,
            min_idle: 0,
            idle_timeout: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            checkout_timeout: Duration::from_millis(5000),
        }
    );
    assert_eq!(
        db.cache,
        Some(CacheSettings {
            max_age: Duration::from_secs(60),
            stale_while_revalidate: Duration::from_secs(15),
            max_bytes: 64 * 1024 * 1024,
        })
    );
    assert_eq!(db.credentials["app"].expose(), PASSWORD);
    assert!(Arc::ptr_eq(&db, &dbs.for_host("DB.Example.com.").unwrap()));
    assert!(dbs.for_host("other.example.com").is_none());
    assert_eq!(dbs.all().len(), 1);

    // A restart: a new process reads the same key file and store.
    drop(dbs);
    let again = Databases::load(dir.path()).unwrap();
    again.reload(&store).await.unwrap();
    assert_eq!(
        again.for_host("db.example.com").unwrap().credentials["app"].expose(),
        PASSWORD
    );

    // Another key (a replaced key file) cannot open it: the role is left
    // out, the database is still served.
    std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
    let other = Databases::load(dir.path()).unwrap();
    other.reload(&store).await.unwrap();
    let db = other.for_host("db.example.com").unwrap();
    assert!(db.credentials.is_empty());
    let sealed = &store.pg_credentials("orders").await.unwrap()[0];
    assert!(other
        .open(sealed)
        .unwrap_err()
        .to_string()
        .contains("set it again with `warren db credential set orders --role app"));
}

#[tokio::test]
async fn generations_move_only_for_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    let dbs = Databases::load(dir.path()).unwrap();
    let orders = store
        .create_pg_database(&PgDatabase::with_defaults(
            "orders",
            "db.example.com",
            "orders",
        ))
        .await
        .unwrap();
    store
        .create_pg_database(&PgDatabase::with_defaults(
            "billing",
            "billing.example.com",
            "billing",
        ))
        .await
        .unwrap();
    dbs.reload(&store).await.unwrap();
    let first = dbs.for_host("db.example.com").unwrap();
    let billing = dbs.for_host("billing.example.com").unwrap();
    assert_ne!(first.generation, billing.generation);

    // Nothing changed: the same configs.
    dbs.reload(&store).await.unwrap();
    assert!(Arc::ptr_eq(
        &first,
        &dbs.for_host("db.example.com").unwrap()
    ));

    // A credential of orders changes orders only.
    store
        .set_pg_credential(&dbs.seal("orders", "app", PASSWORD))
        .await
        .unwrap();
    dbs.reload(&store).await.unwrap();
    let with_cred = dbs.for_host("db.example.com").unwrap();
    assert!(with_cred.generation > first.generation);
    assert!(Arc::ptr_eq(
        &billing,
        &dbs.for_host("billing.example.com").unwrap()
    ));

    // Setting the same password again seals it anew: a change.
    store
        .set_pg_credential(&dbs.seal("orders", "app", PASSWORD))
        .await
        .unwrap();
    dbs.reload(&store).await.unwrap();
    let resealed = dbs.for_host("db.example.com").unwrap();
    assert!(resealed.generation > with_cred.generation);

    // A setting changes it too, and a moved hostname moves it.
    store
        .update_pg_database(&PgDatabase {
            hostname: "orders.example.com".into(),
            pool_size: 3,
            ..orders
        })
        .await
        .unwrap();
    dbs.reload(&store).await.unwrap();
    assert!(dbs.for_host("db.example.com").is_none());
    let moved = dbs.for_host("orders.example.com").unwrap();
    assert!(moved.generation > resealed.generation);
    assert_eq!(moved.pool.size, 3);
    assert_eq!(moved.credentials["app"].expose(), PASSWORD);

    store.delete_pg_credential("orders", "app").await.unwrap();
    dbs.reload(&store).await.unwrap();
    assert!(dbs
        .for_host("orders.example.com")
        .unwrap()
        .credentials
        .is_empty());
    store.delete_pg_database("orders").await.unwrap();
    dbs.reload(&store).await.unwrap();
    assert_eq!(dbs.all().len(), 1);
}

#[tokio::test]
async fn a_row_with_an_unknown_mode_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    let dbs = Databases::load(dir.path()).unwrap();
    store
        .create_pg_database(&PgDatabase {
            pool_mode: "statement".into(),
            ..PgDatabase::with_defaults("orders", "db.example.com", "orders")
        })
        .await
        .unwrap();
    dbs.reload(&store).await.unwrap();
    assert!(dbs.for_host("db.example.com").is_none());
}
