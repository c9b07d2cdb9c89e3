//! The audit log and API tokens.

use askama::Template;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use safegpt_app::TokenScope;
use serde::Deserialize;
use uuid::Uuid;

use super::frame::*;
use crate::web::auth::{Caller, CsrfForm, PageAdmin};
use crate::web::error::ApiError;
use crate::web::i18n::Texts;

pub(super) struct AuditRow {
    at: String,
    actor: String,
    action: String,
    target: String,
    /// The run a `sync.*` row is about, so that its changes are one click away.
    run_link: Option<String>,
    details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub(super) struct AuditPage {
    t: &'static Texts,
    f: Frame,
    entries: Vec<AuditRow>,
}

pub(super) async fn audit_page(PageAdmin(who): PageAdmin, headers: HeaderMap) -> Response {
    let (t, f) = frame(&headers, Some(&who), "/audit", "audit", texts_for(&headers).audit_title);
    let entries = match who.app.audit_log(500).await {
        Ok(e) => e,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let entries = entries
        .into_iter()
        .map(|e| {
            let target = e.target.unwrap_or_default();
            let run_link =
                (e.action.starts_with("sync.") && Uuid::parse_str(&target).is_ok()).then(|| format!("/runs/{target}"));
            AuditRow {
                at: e.at,
                actor: e.actor,
                action: e.action,
                target,
                run_link,
                details: serde_json::to_string_pretty(&e.details).unwrap_or_default(),
            }
        })
        .collect();
    render(StatusCode::OK, AuditPage { t, f, entries })
}

pub(super) struct TokenRow {
    scope: String,
    id: Uuid,
    name: String,
    created: String,
    last_used: String,
    revoked: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
pub(super) struct TokensPage {
    t: &'static Texts,
    f: Frame,
    csrf: String,
    tokens: Vec<TokenRow>,
    created: Option<String>,
    error: Option<String>,
}

pub(super) async fn render_tokens(
    headers: &HeaderMap,
    who: &Caller,
    status: StatusCode,
    created: Option<String>,
    error: Option<String>,
) -> Response {
    let (t, f) = frame(headers, Some(who), "/settings/tokens", "tokens", texts_for(headers).tokens_title);
    let tokens = match who.app.tokens().await {
        Ok(tokens) => tokens,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let tokens = tokens
        .iter()
        .map(|tok| TokenRow {
            id: tok.id,
            name: tok.name.clone(),
            scope: tok.scope.clone(),
            created: format!("{} ({})", fmt_time(tok.created_at), tok.created_by),
            last_used: tok.last_used_at.map_or_else(|| t.never.to_owned(), fmt_time),
            revoked: tok.revoked_at.map(fmt_time).unwrap_or_default(),
        })
        .collect();
    render(status, TokensPage { t, csrf: f.csrf.clone().unwrap_or_default(), f, tokens, created, error })
}

pub(super) async fn tokens_page(PageAdmin(who): PageAdmin, headers: HeaderMap) -> Response {
    render_tokens(&headers, &who, StatusCode::OK, None, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct TokenForm {
    name: String,
    scope: String,
}

pub(super) async fn token_create(headers: HeaderMap, CsrfForm(who, form): CsrfForm<TokenForm>) -> Response {
    let scope = if form.scope.is_empty() { Ok(TokenScope::Admin) } else { TokenScope::parse(&form.scope) };
    match async { who.app.create_token(&who.principal, &form.name, scope?).await }.await {
        Ok((_, value)) => render_tokens(&headers, &who, StatusCode::CREATED, Some(value), None).await,
        Err(e) => {
            let e = ApiError::from(e);
            render_tokens(&headers, &who, e.status, None, Some(e.detail.message)).await
        }
    }
}

pub(super) async fn token_revoke(
    headers: HeaderMap,
    Path(id): Path<String>,
    CsrfForm(who, NoFields {}): CsrfForm<NoFields>,
) -> Response {
    match who.app.revoke_token(&who.principal, &id).await {
        Ok(_) => see_other("/settings/tokens"),
        Err(e) => error_page(&headers, &who, ApiError::from(e), "/settings/tokens"),
    }
}
