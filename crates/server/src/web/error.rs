//! One error type for the REST API, mapped to HTTP in one place:
//! `{"error": {"code", "message", "field"?, "errors"?}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use safegpt_app::AppError;
use safegpt_core::FieldError;
use safegpt_store::StoreError;
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

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        // The application names the groups field as the CLI flag (`group_id`); requests call
        // it `group_ids`.
        let request_field = |f: &str| if f == "group_id" { "group_ids".to_owned() } else { f.to_owned() };
        let with_fields = |status: StatusCode, code: &str, message: String, fields: &[FieldError]| {
            let mut error = ApiError::new(status, code, message);
            error.detail.errors = fields
                .iter()
                .map(|e| FieldMessage { field: request_field(e.field), message: e.message.clone() })
                .collect();
            error.detail.field = error.detail.errors.first().map(|e| e.field.clone());
            error
        };
        match e {
            AppError::Invalid(fields) => {
                let message =
                    fields.iter().map(|e| format!("{}: {}", request_field(e.field), e.message)).collect::<Vec<_>>();
                with_fields(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message.join("; "), &fields)
            }
            AppError::NotConfigured(ref missing) => {
                with_fields(StatusCode::UNPROCESSABLE_ENTITY, "not_configured", e.to_string(), missing)
            }
            AppError::NotFound(message) => ApiError::not_found(message),
            AppError::Gone(message) => ApiError::new(StatusCode::GONE, "gone", message),
            AppError::Conflict { field, .. } => {
                let mut error = ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string());
                error.detail.field = field.map(str::to_owned);
                error
            }
            AppError::AlreadyRunning { .. } => ApiError::new(StatusCode::CONFLICT, "already_running", e.to_string()),
            AppError::Inactive => ApiError::new(
                StatusCode::CONFLICT,
                "inactive",
                "Azure User Sync is not active; switch it on (settings field 'active') first",
            )
            .with_field("active"),
            AppError::Unauthorised(message) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", message),
            AppError::Upstream { kind, message } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, &kind, message),
            AppError::LeaseLost(message) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "lease_lost", message),
            AppError::Internal(cause) => ApiError::internal(&cause),
        }
    }
}

/// What the web asks the store itself (sessions, token checks) fails like an operation.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        AppError::from(e).into()
    }
}
