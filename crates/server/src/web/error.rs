//! One error type for the REST API, mapped to HTTP in one place:
//! `{"error": {"code", "message", "field"?, "errors"?}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use safegpt_core::InvalidSettings;
use safegpt_store::StoreError;
use safegpt_sync::{StartError, SyncError};
use serde::Serialize;
use tracing::error;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldMessage {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: `unauthorized`, `forbidden`, `not_found`, `invalid`, `conflict`,
    /// `already_running`, `inactive`, `not_configured`, `too_many_requests`, `internal`.
    pub code: String,
    /// For people: the cause and the fix.
    pub message: String,
    /// The request field at fault, named as in the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every invalid field, when there are several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldMessage>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: ErrorDetail,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: ErrorDetail { code: code.to_owned(), message: message.into(), field: None, errors: Vec::new() },
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.detail.field = Some(field.into());
        self
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in as an administrator, or send an API token as 'Authorization: Bearer sgpt_…' \
             (create one under API tokens or with `safegpt tokens create --name N`)",
        )
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message).with_field(field)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        error!("internal error: {cause}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; the server log has the cause")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(ErrorBody { error: self.detail })).into_response()
    }
}

/// Store messages about input start with the field name ("email: …").
fn split_field(message: &str) -> (Option<&str>, &str) {
    match message.split_once(": ") {
        Some((field, _)) if !field.is_empty() && field.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') => {
            (Some(field), message)
        }
        _ => (None, message),
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        let (status, code) = match e {
            StoreError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            StoreError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            StoreError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            other => return ApiError::internal(&other),
        };
        let (field, message) = split_field(&message);
        let mut error = ApiError::new(status, code, message);
        error.detail.field = field.map(str::to_owned);
        error
    }
}

impl From<InvalidSettings> for ApiError {
    fn from(invalid: InvalidSettings) -> Self {
        // The core names the groups field as the CLI flag (`group_id`); requests call it `group_ids`.
        let request_field = |f: &str| if f == "group_id" { "group_ids".to_owned() } else { f.to_owned() };
        let errors: Vec<FieldMessage> = invalid
            .0
            .iter()
            .map(|e| FieldMessage { field: request_field(e.field), message: e.message.clone() })
            .collect();
        let first = errors.first().cloned();
        let message = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
        let mut error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message);
        error.detail.field = first.map(|e| e.field);
        error.detail.errors = errors;
        error
    }
}

impl From<SyncError> for ApiError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::NotConfigured(missing) => {
                let mut error = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "not_configured",
                    SyncError::NotConfigured(missing.clone()).to_string(),
                );
                error.detail.field = missing.first().map(|m| m.field.to_owned());
                error.detail.errors = missing
                    .iter()
                    .map(|m| FieldMessage { field: m.field.to_owned(), message: m.message.clone() })
                    .collect();
                error
            }
            SyncError::Inactive => ApiError::new(
                StatusCode::CONFLICT,
                "inactive",
                "Azure User Sync is not active; switch it on (settings field 'active') first",
            )
            .with_field("active"),
            SyncError::Store(e) => e.into(),
            SyncError::Client(e) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.kind.as_str(), e.message),
            e @ SyncError::AlreadyRunning { .. } => {
                ApiError::new(StatusCode::CONFLICT, "already_running", e.to_string())
            }
            e @ SyncError::LeaseLost(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "lease_lost", e.to_string()),
        }
    }
}

impl From<StartError> for ApiError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::AlreadyRunning(run_id) => ApiError::new(
                StatusCode::CONFLICT,
                "already_running",
                format!("a sync is already running (run {run_id}); wait for it to finish"),
            ),
            StartError::Sync(e) => e.into(),
        }
    }
}
