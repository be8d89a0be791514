//! `/v1/databases`: pooled databases and their sealed credentials.

use super::*;

/// A password no other text in a test has.
const PASSWORD: &str = "Pw-7c1e9f-orders-app";

impl Api {
    /// A tunnel with a route for `host`.
    async fn routed(&self, host: &str) {
        if self
            .state
            .store
            .get_tunnel("office")
            .await
            .unwrap()
            .is_none()
        {
            self.create("office").await;
        }
        let (status, body) = self
            .call(
                "POST",
                "/v1/routes",
                Some(json!({ "tunnel": "office", "hostname": host })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

#[tokio::test]
async fn databases_are_added_shown_changed_and_removed() {
    let api = Api::new().await;
    let add = json!({ "name": "orders", "hostname": "db.example.com", "database": "orders_prod" });

    let (status, body) = api.call("POST", "/v1/databases", Some(add.clone())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        error(&body),
        "no route serves the hostname db.example.com; route it to the tunnel that reaches the database first with `warren tunnel route dns TUNNEL db.example.com`"
    );

    api.routed("db.example.com").await;
    let mut bad = add.clone();
    bad["pool_mode"] = json!("statement");
    let (status, body) = api.call("POST", "/v1/databases", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        error(&body),
        "\"statement\" is not a pool mode; use transaction or session"
    );
    let mut bad = add.clone();
    bad["auth_mode"] = json!("scram");
    let (status, body) = api.call("POST", "/v1/databases", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error(&body).starts_with("\"scram\" is not an auth mode; use identity"));
    let mut bad = add.clone();
    bad["pool_size"] = json!(0);
    let (status, body) = api.call("POST", "/v1/databases", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error(&body).starts_with("the pool size of orders is 0"));
    let mut bad = add.clone();
    bad["pool_sise"] = json!(3);
    let (status, body) = api.call("POST", "/v1/databases", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(error(&body).contains("unknown field `pool_sise`"), "{body}");

    let (status, body) = api.call("POST", "/v1/databases", Some(add.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "orders");
    assert_eq!(body["hostname"], "db.example.com");
    assert_eq!(body["database"], "orders_prod");
    assert_eq!(body["pool_mode"], "transaction");
    assert_eq!(body["auth_mode"], "identity");
    assert_eq!(body["pool_size"], 20);
    assert_eq!(body["min_idle"], 0);
    assert_eq!(body["idle_timeout_secs"], 600);
    assert_eq!(body["max_lifetime_secs"], 3600);
    assert_eq!(body["checkout_timeout_ms"], 5000);
    assert_eq!(body["cache"], false);
    assert_eq!(body["cache_max_age_secs"], 60);
    assert_eq!(body["cache_swr_secs"], 15);
    assert_eq!(body["cache_max_bytes"], 64 * 1024 * 1024);
    assert_eq!(body["credentials"], json!([]));
    let first = api.state.databases.for_host("db.example.com").unwrap();
    assert_eq!(first.database, "orders_prod");

    let (status, body) = api.call("POST", "/v1/databases", Some(add.clone())).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let mut same_host = add.clone();
    same_host["name"] = json!("billing");
    let (status, body) = api.call("POST", "/v1/databases", Some(same_host)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error(&body).contains("already serves the pooled database orders"));

    let (status, body) = api
        .call(
            "PATCH",
            "/v1/databases/orders",
            Some(json!({ "pool_size": 40, "cache": true, "pool_mode": "session" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["pool_size"], 40);
    assert_eq!(body["cache"], true);
    assert_eq!(body["database"], "orders_prod", "unchanged");
    let changed = api.state.databases.for_host("db.example.com").unwrap();
    assert!(changed.generation > first.generation);
    assert_eq!(changed.pool.size, 40);
    assert_eq!(changed.mode, crate::databases::PoolMode::Session);
    assert!(changed.cache.is_some());

    let (status, body) = api
        .call(
            "PATCH",
            "/v1/databases/orders",
            Some(json!({ "hostname": "elsewhere.example.com" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error(&body).contains("`warren tunnel route dns TUNNEL elsewhere.example.com`"));
    let (status, _) = api
        .call("PATCH", "/v1/databases/missing", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = api.call("GET", "/v1/databases", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 1);
    let (status, body) = api.call("GET", "/v1/databases/missing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        error(&body),
        "there is no pooled database named \"missing\"; list them with `warren db list`"
    );

    let (status, _) = api.call("DELETE", "/v1/databases/orders", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(api.state.databases.for_host("db.example.com").is_none());
    let (status, _) = api.call("DELETE", "/v1/databases/orders", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn credentials_are_sealed_and_never_answered() {
    let api = Api::new().await;
    api.routed("db.example.com").await;
    let (status, body) = api
        .call(
            "POST",
            "/v1/databases",
            Some(json!({ "name": "orders", "hostname": "db.example.com", "database": "orders" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let mut answers = Vec::new();
    let (status, body) = api
        .call(
            "PUT",
            "/v1/databases/orders/credentials/app",
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["database"], "orders");
    assert_eq!(body["role"], "app");
    assert!(body["updated_at"].as_i64().unwrap() > 0);
    answers.push(body);

    // This process serves it at once, decrypted.
    let db = api.state.databases.for_host("db.example.com").unwrap();
    assert_eq!(db.credentials["app"].expose(), PASSWORD);
    assert!(!format!("{db:?}").contains(PASSWORD));

    // The store has the sealed blob, not the password.
    let stored = api.state.store.pg_credentials("orders").await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0]
        .sealed
        .windows(PASSWORD.len())
        .any(|w| w == PASSWORD.as_bytes()));

    for uri in ["/v1/databases", "/v1/databases/orders"] {
        let (status, body) = api.call("GET", uri, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        answers.push(body);
    }
    let (_, shown) = api.call("GET", "/v1/databases/orders", None).await;
    assert_eq!(
        shown["credentials"],
        json!([{ "role": "app", "updated_at": stored[0].updated_at, "decrypts": true }])
    );
    let (_, doc) = api.call("GET", "/v1/export", None).await;
    answers.push(doc);
    for a in &answers {
        let text = a.to_string();
        assert!(!text.contains(PASSWORD), "the password in {text}");
        assert!(
            !text.contains("sealed") && !text.contains("nonce"),
            "{text}"
        );
    }

    for (password, sentence) in [
        ("", "the password for role app is empty"),
        ("a\0b", "contains a NUL byte"),
    ] {
        let (status, body) = api
            .call(
                "PUT",
                "/v1/databases/orders/credentials/app",
                Some(json!({ "password": password })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(error(&body).contains(sentence), "{body}");
    }
    let long = "x".repeat(crate::databases::MAX_PASSWORD_LEN + 1);
    let (status, _) = api
        .call(
            "PUT",
            "/v1/databases/orders/credentials/app",
            Some(json!({ "password": long })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = api
        .call(
            "PUT",
            "/v1/databases/missing/credentials/app",
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(!body.to_string().contains(PASSWORD));
    let long_role = "r".repeat(64);
    let (status, body) = api
        .call(
            "PUT",
            &format!("/v1/databases/orders/credentials/{long_role}"),
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error(&body).contains("longer than 63 bytes"));

    // A blob that this edge's key does not open is shown as such.
    let foreign = crate::databases::CredentialKey::from_bytes(&[9; 32], "elsewhere".into()).seal(
        "orders",
        "reporting",
        PASSWORD,
    );
    api.state.store.set_pg_credential(&foreign).await.unwrap();
    let (_, shown) = api.call("GET", "/v1/databases/orders", None).await;
    assert_eq!(shown["credentials"][1]["role"], "reporting");
    assert_eq!(shown["credentials"][1]["decrypts"], false);

    let (status, _) = api
        .call("DELETE", "/v1/databases/orders/credentials/app", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(api
        .state
        .databases
        .for_host("db.example.com")
        .unwrap()
        .credentials
        .is_empty());
    let (status, body) = api
        .call("DELETE", "/v1/databases/orders/credentials/app", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        error(&body),
        "the pooled database orders has no credential for role app; list its roles with `warren db show orders`"
    );
    let (status, body) = api
        .call("DELETE", "/v1/databases/missing/credentials/app", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(error(&body).contains("no pooled database named \"missing\""));
}

#[tokio::test]
async fn policies_carry_database_roles() {
    let api = Api::new().await;
    let (status, body) = api
        .call(
            "POST",
            "/v1/access/apps",
            Some(json!({ "name": "orders", "hostnames": ["db.example.com"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api
        .call(
            "POST",
            "/v1/access/apps/orders/policies",
            Some(json!({
                "name": "analysts",
                "action": "allow",
                "include": [{ "group": "analysts" }],
                "db_roles": ["analyst"],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["app"]["policies"][0]["db_roles"], json!(["analyst"]));
    let (status, body) = api
        .call(
            "POST",
            "/v1/access/apps/orders/policies",
            Some(json!({
                "name": "blocked",
                "action": "deny",
                "include": ["everyone"],
                "db_roles": ["analyst"],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error(&body).contains("has database roles, but its action deny"));
}
