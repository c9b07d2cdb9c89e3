//! The edges: files on disk, request bodies and headers, and input that is large or odd.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Site, tenant};

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_database_and_master_key_are_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("nested/data");
    let sealer = safegpt_store::Sealer::load(None, &data_dir).unwrap();
    let file = data_dir.join("db/safegpt.db");
    let url = format!("sqlite://{}", file.display());
    let store = safegpt_store::Store::open(&url, sealer).await.unwrap();
    // A write, so that SQLite has made its write-ahead log.
    let (settings, _) = store.settings().await.unwrap();
    let secret = secrecy::SecretString::from("a secret".to_owned());
    store.save_settings(&settings, Some(&secret), "test", time::OffsetDateTime::now_utc()).await.unwrap();

    assert_eq!(mode(&data_dir), 0o700, "the data directory");
    assert_eq!(mode(&root.path().join("nested")), 0o700, "a parent the store created");
    assert_eq!(mode(&data_dir.join("master.key")), 0o600, "the master key");
    assert_eq!(mode(&data_dir.join("db")), 0o700, "the database's directory");
    assert_eq!(mode(&file), 0o600, "the database");
    let wal = data_dir.join("db/safegpt.db-wal");
    assert!(wal.exists(), "the write-ahead log exists while the store is open");
    assert_eq!(mode(&wal), 0o600, "the write-ahead log");
}

#[tokio::test]
async fn bodies_must_be_json_and_small() {
    let site = Site::start(tenant(1)).await;
    let put = |content_type: &'static str, body: Vec<u8>| {
        site.client
            .put(site.url("/api/v1/settings"))
            .bearer_auth(&site.admin_token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let small = br#"{"seats": 7}"#.to_vec();
    let answer = put("application/jsonx", small.clone()).await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let answer = put("text/plain", small.clone()).await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let answer = put("application/json; charset=utf-8", small).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "{}", answer.text().await.unwrap());

    let mut huge = br#"{"seats": 8, "group_ids": ["#.to_vec();
    huge.extend(std::iter::repeat_n(b"\"f3e5e6c4-7f2d-4a4c-9b2c-8e2f3a8c01d2\",".as_slice(), 80_000).flatten());
    huge.extend(br#""f3e5e6c4-7f2d-4a4c-9b2c-8e2f3a8c01d2"]}"#);
    assert!(huge.len() > 3_000_000);
    let answer = put("application/json", huge).await.unwrap();
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_large", "{body}");
    let (_, settings) = site.api(Method::GET, "/api/v1/settings", None).await;
    assert_eq!(settings["seats"]["total"], 7, "the refused body changed nothing: {settings}");
}

#[tokio::test]
async fn many_duplicate_group_ids_are_one_group() {
    let site = Site::start(tenant(1)).await;
    let ids = vec!["F3E5E6C4-7F2D-4A4C-9B2C-8E2F3A8C01D2"; 20_000];
    let (status, body) = site.api(Method::PUT, "/api/v1/settings", Some(json!({ "group_ids": ids }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["group_ids"], json!(["f3e5e6c4-7f2d-4a4c-9b2c-8e2f3a8c01d2"]), "{body}");
}

#[tokio::test]
async fn an_implausible_secret_expiry_names_the_field() {
    let site = Site::start(tenant(1)).await;
    for date in ["0000-01-01", "9999-12-31", "2026-13-01"] {
        let (status, body) = site.api(Method::PUT, "/api/v1/settings", Some(json!({ "secret_expires": date }))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{date}: {body}");
        let fields = body.to_string();
        assert!(fields.contains("secret_expires"), "{date}: {body}");
    }
}

#[tokio::test]
async fn a_form_from_an_opaque_origin_is_refused_even_with_a_session_and_its_token() {
    let site = Site::start(tenant(1)).await;
    let (cookie, csrf) = site.login().await;
    let post = |origin: Option<String>| {
        let mut request = site.client.post(site.url("/settings/tokens")).header("cookie", &cookie).form(&[
            ("csrf", csrf.as_str()),
            ("name", "from a frame"),
            ("scope", "admin"),
        ]);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let refused = post(Some("null".into())).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    for fetch_site in ["cross-site", "same-site"] {
        let refused = site
            .client
            .post(site.url("/settings/tokens"))
            .header("cookie", &cookie)
            .header("sec-fetch-site", fetch_site)
            .form(&[("csrf", csrf.as_str()), ("name", "from a sibling"), ("scope", "admin")])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "Sec-Fetch-Site: {fetch_site}");
    }
    let (_, tokens) = site.api(Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(tokens.as_array().unwrap().len(), 3, "no token came from the opaque origin");

    let ours = post(Some(site.app.base().to_owned())).await.unwrap();
    assert_eq!(ours.status(), StatusCode::CREATED, "the same form from our own origin works");
    let (_, tokens) = site.api(Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(tokens.as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn search_folds_case_beyond_ascii() {
    let mut t = tenant(2);
    t.users[0].display_name = Some("Zoë Ünal".into());
    let site = Site::start(t).await;
    site.sync().await;
    for q in ["ZOË", "ünal", "zoë ünal"] {
        let (status, page) = site.api(Method::GET, &format!("/api/v1/users?q={}", urlencode(q)), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let names: Vec<_> = page["users"].as_array().unwrap().iter().map(|u| u["display_name"].clone()).collect();
        assert_eq!(names, vec![json!("Zoë Ünal")], "q={q}");
    }
}

#[tokio::test]
async fn header_bytes_that_are_not_text_get_an_answer_not_a_crash() {
    let site = Site::start(tenant(1)).await;
    let odd = reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap();
    for (name, path) in [("authorization", "/api/v1/settings"), ("cookie", "/users"), ("accept-language", "/login")] {
        let answer = site.client.get(site.url(path)).header(name, odd.clone()).send().await.unwrap();
        assert!(!answer.status().is_server_error(), "{name} on {path}: {}", answer.status());
    }
    let answer = site.client.get(site.url("/api/v1/settings")).header("authorization", odd).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    // The server still serves.
    let (status, _) = site.api(Method::GET, "/api/v1/settings", None).await;
    assert_eq!(status, StatusCode::OK);
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
