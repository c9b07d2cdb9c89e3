//! One error type for every operation. The web maps it to HTTP once (`web/error.rs`), the
//! CLI to exit codes once (`Failure`); neither looks inside a message to learn what failed.

use safegpt_core::{FieldError, InvalidSettings};
use safegpt_store::StoreError;
use safegpt_sync::{StartError, SyncError};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is wrong; each entry names a field and the fix.
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// What the request names existed but was removed by a retention period: asking again
    /// will not bring it back.
    #[error("{0}")]
    Gone(String),
    /// The request contradicts the directory's state (a taken e-mail, no free seat, a run
    /// that is not held); `field` names the request field at fault, when one is.
    #[error("{}{message}", .field.map(|f| format!("{f}: ")).unwrap_or_default())]
    Conflict { field: Option<&'static str>, message: String },
    /// One sync at a time per organisation.
    #[error("a sync is already running{}; wait for it to finish", .run_id.map(|id| format!(" (run {id})")).unwrap_or_default())]
    AlreadyRunning { run_id: Option<Uuid> },
    /// Azure User Sync lacks settings a sync needs; each entry names one.
    #[error("Azure User Sync is not configured: {}", .0.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; "))]
    NotConfigured(Vec<FieldError>),
    /// Azure User Sync is switched off.
    #[error("Azure User Sync is not active")]
    Inactive,
    /// The principal may not do this.
    #[error("{0}")]
    Unauthorised(String),
    /// Entra or Graph refused or failed; `kind` is the stable failure kind (`invalid_client`,
    /// `forbidden`, `throttled`, …) and `message` its cause and fix.
    #[error("{message}")]
    Upstream { kind: String, message: String },
    /// The process lost the sync lease while it worked; nothing was applied.
    #[error("{0}")]
    LeaseLost(String),
    /// A fault of this deployment (database, sealed data, a corrupt row): the cause is for
    /// the log, not for the caller.
    #[error("{0}")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

fn describe(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

impl AppError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AppError::Invalid(vec![FieldError { field, message: message.into() }])
    }

    /// Stable, for programs (the CLI's `--json` output and the API's `code`).
    pub fn kind(&self) -> &str {
        match self {
            AppError::Invalid(_) => "invalid",
            AppError::NotFound(_) => "not_found",
            AppError::Gone(_) => "gone",
            AppError::Conflict { .. } => "conflict",
            AppError::AlreadyRunning { .. } => "already_running",
            AppError::NotConfigured(_) => "not_configured",
            AppError::Inactive => "inactive",
            AppError::Unauthorised(_) => "forbidden",
            AppError::Upstream { kind, .. } => kind,
            AppError::LeaseLost(_) => "lease_lost",
            AppError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => AppError::NotFound(e.to_string()),
            StoreError::Conflict { field, message } => AppError::Conflict { field, message },
            StoreError::Fenced => AppError::LeaseLost(e.to_string()),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<InvalidSettings> for AppError {
    fn from(invalid: InvalidSettings) -> Self {
        AppError::Invalid(invalid.0)
    }
}

impl From<SyncError> for AppError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::NotConfigured(missing) => AppError::NotConfigured(missing),
            SyncError::Inactive => AppError::Inactive,
            SyncError::Store(e) => e.into(),
            SyncError::Client(e) => AppError::Upstream { kind: e.kind.as_str().to_owned(), message: e.message },
            SyncError::Failed(failure) => {
                let record = failure.record();
                AppError::Upstream { kind: record.kind, message: record.message }
            }
            SyncError::AlreadyRunning { run_id } => AppError::AlreadyRunning { run_id },
            e @ SyncError::OrgDisabled(_) => AppError::Unauthorised(e.to_string()),
            e @ SyncError::LeaseLost(_) => AppError::LeaseLost(e.to_string()),
        }
    }
}

impl From<StartError> for AppError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::AlreadyRunning(run_id) => AppError::AlreadyRunning { run_id: Some(run_id) },
            StartError::Sync(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_their_field_and_corrupt_rows_are_internal() {
        let taken = AppError::from(StoreError::Conflict { field: Some("email"), message: "taken".into() });
        assert!(matches!(taken, AppError::Conflict { field: Some("email"), .. }));
        assert_eq!(taken.to_string(), "email: taken");
        let corrupt = AppError::from(StoreError::Corrupt { what: "run x".into(), cause: "unknown status".into() });
        assert_eq!(corrupt.kind(), "internal");
        let missing = AppError::from(StoreError::NotFound { entity: safegpt_store::Entity::Run, key: "r1".into() });
        assert_eq!((missing.kind(), missing.to_string().as_str()), ("not_found", "no sync run with id 'r1'"));
    }

    #[test]
    fn invalid_names_every_field() {
        let e = AppError::Invalid(vec![
            FieldError { field: "tenant_id", message: "missing".into() },
            FieldError { field: "seats", message: "not a number".into() },
        ]);
        assert_eq!(e.to_string(), "tenant_id: missing; seats: not a number");
    }
}
