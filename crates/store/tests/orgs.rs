//! Organisations in the store: an older deployment moves into `default` whole, and every
//! organisation's rows stay its own.

use safegpt_core::Email;
use safegpt_store::testing::{execute, migrate_until, test_database_url};
use safegpt_store::{AdminRole, DEFAULT_ORG, OrgChange, Sealer, Store, StoreError, token_hash};
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-12-03 12:00 UTC);

async fn open(url: &str) -> Store {
    Store::open(url, Sealer::from_key([42; 32])).await.unwrap()
}

#[tokio::test]
async fn an_older_deployment_moves_into_default_with_its_administrators_sessions_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_database_url(dir.path()).await;
    // The schema before organisations (migration 9), with what a deployment had then.
    migrate_until(&url, 9).await;
    let cookie = "a-session-cookie-value";
    let token = "sgpt_an-older-token";
    execute(
        &url,
        &format!(
            "INSERT INTO admins (id, org_id, email, password_hash, created_at)
               VALUES ('0190c3a2-0000-7000-8000-000000000001', 'default', 'Ann@Example.org', '$argon2id$x', '2026-01-01T00:00:00Z');
             INSERT INTO sessions (id_hash, org_id, admin_id, csrf_token, created_at, expires_at)
               VALUES ('{}', 'default', '0190c3a2-0000-7000-8000-000000000001', 'csrf', '2026-12-03T11:00:00Z', '2026-12-03T19:00:00Z');
             INSERT INTO api_tokens (id, org_id, name, token_hash, created_by, created_at, scope)
               VALUES ('0190c3a2-0000-7000-8000-000000000002', 'default', 'ci', '{}', 'cli', '2026-01-01T00:00:00Z', 'sync');
             INSERT INTO audit_log (org_id, at, actor, action, target, details)
               VALUES ('default', '2026-01-01T00:00:00Z', 'cli', 'token.created', 'ci', '{{}}');",
            token_hash(cookie),
            token_hash(token)
        ),
    )
    .await;

    let store = open(&url).await;
    let orgs = store.orgs().await.unwrap();
    assert_eq!(orgs.iter().map(|o| o.slug.as_str()).collect::<Vec<_>>(), [DEFAULT_ORG]);
    let admin = store.admin_by_email("ann@example.org").await.unwrap().expect("the administrator is kept");
    assert_eq!((admin.org.as_deref(), admin.platform), (Some(DEFAULT_ORG), false), "default's, and not the platform's");
    let session = store.session(cookie, NOW, time::Duration::hours(8)).await.unwrap().expect("still signed in");
    assert_eq!((session.org.as_deref(), session.platform), (Some(DEFAULT_ORG), false));
    let kept = store.authenticate_api_token(token, NOW).await.unwrap().expect("the token still works");
    assert_eq!((kept.org.as_deref(), kept.scope.as_str()), (Some(DEFAULT_ORG), "sync"));
    let audit = store.audit_log(10).await.unwrap();
    assert_eq!(audit.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(), ["token.created"]);
    // New audit rows continue after the old ones.
    store.audit("cli", "check", None, &serde_json::json!({}), NOW).await.unwrap();
    let audit = store.audit_log(10).await.unwrap();
    assert!(audit[0].id > audit[1].id, "{audit:?}");
}

#[tokio::test]
async fn each_organisation_sees_only_its_own_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_database_url(dir.path()).await;
    let platform = open(&url).await;
    platform.create_org("acme", "Acme", "nl", "cli", NOW).await.unwrap();
    let acme = platform.for_org("acme");
    let default = platform.for_org(DEFAULT_ORG);

    let err = platform.create_org("acme", "Acme again", "en", "cli", NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { field: Some("slug"), .. }), "{err}");

    // Users, tokens, audit: written in one, invisible from the other.
    let email = Email::parse("pat@acme.example").unwrap();
    let pat = acme.add_local_user(&email, "Pat", "cli", NOW).await.unwrap();
    assert!(default.users(Default::default()).await.unwrap().is_empty());
    assert!(default.find_user(&pat.id.to_string()).await.is_err(), "an id of another organisation is not found");
    let (token, value) = acme.create_api_token("acme-ci", "admin", "cli", NOW).await.unwrap();
    assert!(default.api_tokens().await.unwrap().is_empty());
    let err = default.revoke_api_token(&token.id.to_string(), "cli", NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert_eq!(platform.authenticate_api_token(&value, NOW).await.unwrap().unwrap().org.as_deref(), Some("acme"));
    assert!(default.audit_log(50).await.unwrap().iter().all(|a| a.target.as_deref() != Some("acme-ci")));
    assert!(acme.audit_log(50).await.unwrap().iter().any(|a| a.action == "token.created"));

    // A platform token belongs to no organisation and is listed with none.
    let (platform_token, _) = platform.create_platform_token("ops", "admin", "cli", NOW).await.unwrap();
    assert_eq!(platform_token.org, None);
    assert_eq!(platform.platform_tokens().await.unwrap().len(), 1);
    assert_eq!(acme.api_tokens().await.unwrap().len(), 1);
    assert!(acme.revoke_api_token(&platform_token.id.to_string(), "cli", NOW).await.is_err());
    assert!(platform.platform_audit_log(10).await.unwrap().iter().any(|a| a.action == "token.created"));

    // E-mail addresses of administrators are unique across organisations.
    let role = |org: &str| AdminRole { org: Some(org.to_owned()), platform: false };
    let email = Email::parse("boss@example.org").unwrap();
    acme.create_admin(&email, "$argon2id$x", &role("acme"), "cli", NOW).await.unwrap();
    let err = default.create_admin(&email, "$argon2id$y", &role(DEFAULT_ORG), "cli", NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { field: Some("email"), .. }), "{err}");

    // Disabling keeps everything; enabling again clears the mark.
    let off = OrgChange { disabled: Some(true), ..OrgChange::default() };
    assert!(platform.change_org("acme", &off, "cli", NOW).await.unwrap().disabled_at.is_some());
    assert_eq!(acme.users(Default::default()).await.unwrap().len(), 1);
    let on = OrgChange { disabled: Some(false), ..OrgChange::default() };
    assert_eq!(platform.change_org("acme", &on, "cli", NOW).await.unwrap().disabled_at, None);
    let missing = platform.change_org("nope", &OrgChange::default(), "cli", NOW).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
}
