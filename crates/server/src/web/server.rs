//! The router of the whole web (pages, REST API, API browser, health and metrics) and the
//! bound server that also runs the scheduler.

use std::net::SocketAddr;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use super::state::AppState;
use super::{api, auth, error, metrics, pages};

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

async fn not_found(req: axum::extract::Request) -> axum::response::Response {
    let path = req.uri().path();
    if path.starts_with("/api/") {
        error::ApiError::not_found(format!("no API route {} {path}; see /api/v1/openapi.json", req.method()))
            .into_response()
    } else {
        (
            axum::http::StatusCode::NOT_FOUND,
            axum::response::Html("<!doctype html><title>Not found</title><p>Not found. <a href=\"/\">SafeGPT</a></p>"),
        )
            .into_response()
    }
}

async fn security_headers(req: axum::extract::Request, next: middleware::Next) -> axum::response::Response {
    let api_docs = req.uri().path().starts_with("/api/docs");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !api_docs {
        // Our pages load only their own CSS and JS; the API browser has inline bootstrapping.
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let (api_router, openapi) = api::router().split_for_parts();
    let docs: Router<AppState> = Router::from(
        utoipa_swagger_ui::SwaggerUi::new("/api/docs")
            .url("/api/v1/openapi.json", openapi)
            // The default validator is a Swagger server on the internet: the browser must not call it.
            .config(utoipa_swagger_ui::Config::new(["/api/v1/openapi.json"]).validator_url("none")),
    )
    .route_layer(middleware::from_fn_with_state(state.clone(), api::require_admin));
    Router::new()
        .merge(pages::router())
        .merge(api_router)
        .merge(docs)
        .route("/healthz", get(healthz))
        .route("/readyz", get(metrics::readyz))
        .route("/metrics", get(metrics::metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), auth::reject_cross_site))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// How often the courier delivers webhooks and sends e-mails.
const COURIER_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// A bound server; `local_addr` is known before it runs (port 0 in tests).
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

impl Server {
    pub async fn bind(listen: &str, state: AppState) -> std::io::Result<Server> {
        let listener = TcpListener::bind(listen).await?;
        Ok(Server { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves (and runs the scheduler and the retention periods) until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let courier = match self.state.config.scheduler {
            true => {
                Some(self.state.platform.courier(self.state.config.public_url.clone()).map_err(std::io::Error::other)?)
            }
            false => None,
        };
        let background = courier.map(|courier| {
            let platform = &self.state.platform;
            [
                tokio::spawn(platform.clone().run_scheduler()),
                tokio::spawn(platform.clone().run_retention()),
                tokio::spawn(courier.run(COURIER_TICK)),
            ]
        });
        let app = router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, app).with_graceful_shutdown(shutdown).await;
        for task in background.into_iter().flatten() {
            task.abort();
        }
        served
    }
}
