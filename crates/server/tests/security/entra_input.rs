//! Whatever Entra holds is made safe at the edge; a run never stays `running` behind an
//! error.

use reqwest::{Method, StatusCode};

use crate::common::{Site, tenant};

#[tokio::test]
async fn nul_bytes_line_breaks_and_markup_from_entra_never_stop_a_sync() {
    let mut t = tenant(5);
    t.users[4].mail = Some("sean.o'brien@contoso.com".into());
    t.users[0].display_name = Some("Ann\u{0}Lee".into());
    t.users[0].department = Some("Sales\r\nX-Injected: 1".into());
    t.users[1].mail = Some("bob@contoso.com\r\n<script>alert(1)</script>".into());
    t.users[2].given_name = Some("x".repeat(5000));
    t.users[3].mail = Some("<img src=x>@contoso.com".into());
    t.users[3].user_principal_name = "not an address".into();
    let site = Site::start(t).await;
    let run = site.sync().await;
    assert_eq!(run["run"]["status"], "succeeded", "{run}");
    assert_eq!(run["run"]["invalid_emails"], 2, "{}", run["run"]);

    let (_, users) = site.api(Method::GET, "/api/v1/users?limit=500", None).await;
    let text = users.to_string();
    for forbidden in ["\\u0000", "\\r", "\\n", "<script>", "<img"] {
        assert!(!text.contains(forbidden), "{forbidden} reached the directory: {text}");
    }
    let by_upn =
        |upn: &str| users["users"].as_array().unwrap().iter().find(|u| u["user_principal_name"] == upn).cloned();
    let ann = by_upn("user1@contoso.onmicrosoft.com").unwrap();
    assert_eq!(
        (ann["display_name"].as_str(), ann["department"].as_str()),
        (Some("AnnLee"), Some("SalesX-Injected: 1"))
    );
    let sean = by_upn("user5@contoso.onmicrosoft.com").unwrap();
    assert_eq!(sean["email"], "sean.o'brien@contoso.com", "an apostrophe is part of real addresses");
    let bob = by_upn("user2@contoso.onmicrosoft.com").unwrap();
    assert_eq!(bob["email"], "user2@contoso.onmicrosoft.com", "an invalid mail falls back to the member's UPN");
    let (_, events) = site.api(Method::GET, "/api/v1/events?limit=500", None).await;
    assert!(!events.to_string().contains("<script>") && !events.to_string().contains("\\u0000"));
    let (status, page) =
        (site.client.get(site.url("/api/v1/users?q=annlee")).bearer_auth(&site.read_token).send().await)
            .map(|r| (r.status(), r))
            .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(page.text().await.unwrap().contains("AnnLee"));
}

#[tokio::test]
async fn markup_from_entra_is_text_on_every_page() {
    let mut t = tenant(2);
    t.users[0].display_name = Some("<script>alert('x')</script>".into());
    t.users[0].department = Some("\"><img src=x onerror=alert(1)>".into());
    let site = Site::start(t).await;
    let run = site.sync().await;
    let (cookie, _) = site.login().await;
    let run_page = format!("/runs/{}", run["run"]["id"].as_str().unwrap());
    for path in ["/users", "/users?q=script", run_page.as_str(), "/audit"] {
        let html = site.client.get(site.url(path)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(html.status(), StatusCode::OK, "{path}");
        let html = html.text().await.unwrap();
        assert!(!html.contains("<script>alert") && !html.contains("<img src=x"), "{path} carries live markup");
    }
    let users = site.client.get(site.url("/users")).header("cookie", &cookie).send().await.unwrap();
    // And if markup ever slipped through, the browser would run no inline script.
    let header = |name: &str| users.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert!(header("content-security-policy").contains("script-src 'self'"), "{:?}", users.headers());
    assert!(!header("content-security-policy").contains("unsafe-inline"));
    assert_eq!((header("x-frame-options"), header("x-content-type-options")), ("DENY".into(), "nosniff".into()));
    let users = users.text().await.unwrap();
    assert!(users.contains("&#60;script&#62;alert"), "the name is shown, as text: {users}");
}

#[tokio::test]
async fn a_run_that_fails_in_the_background_is_recorded_failed_with_its_cause() {
    let site = Site::start(tenant(3)).await;
    let refuse = if site.app.db_url.starts_with("postgres") {
        "CREATE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
         CREATE TRIGGER refuse_changes BEFORE INSERT ON run_changes FOR EACH STATEMENT EXECUTE FUNCTION refuse_writes();"
    } else {
        "CREATE TRIGGER refuse_changes BEFORE INSERT ON run_changes BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
    };
    safegpt_store::testing::execute(&site.app.db_url, refuse).await;
    let run = site.sync().await;
    assert_eq!(run["run"]["status"], "failed", "{run}");
    assert_eq!(run["run"]["error"]["kind"], "store", "{run}");
    assert!(run["run"]["error"]["message"].as_str().unwrap().contains("refused by the test"), "{run}");
    assert_eq!(site.count("active").await, 0, "nothing of the run was applied");
}
