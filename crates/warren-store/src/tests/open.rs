//! Opening the store: admin tokens, reopening, unusable or corrupt files.

use super::*;

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
