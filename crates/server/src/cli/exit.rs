//! Exit codes of `safegpt`, and the one place an operation's error becomes one.

use safegpt_app::AppError;
use safegpt_store::StoreError;

pub const OK: u8 = 0;
/// A sync or a connection test failed, or another runtime error.
pub const FAILED: u8 = 1;
/// Invalid input: a flag, a value or a missing argument. Nothing was saved.
pub const INVALID: u8 = 2;
/// The sync was held by the deletion threshold; nothing was changed.
pub const HELD: u8 = 3;
/// Another sync is running (in this or another process); nothing was changed.
pub const ALREADY_RUNNING: u8 = 4;

/// A failure of a command, with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn invalid(message: impl Into<String>) -> Self {
        Failure { code: INVALID, message: message.into() }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Failure { code: FAILED, message: message.into() }
    }
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        match e {
            // One line per field, so that a script's log shows each.
            AppError::Invalid(fields) => Failure::invalid(
                fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("\n"),
            ),
            e @ (AppError::NotFound(_) | AppError::Gone(_) | AppError::Conflict { .. }) => {
                Failure::invalid(e.to_string())
            }
            AppError::Inactive => Failure::failed(INACTIVE),
            // stderr is the CLI's log: the cause goes there.
            AppError::Internal(cause) => Failure::failed(cause),
            other => Failure::failed(other.to_string()),
        }
    }
}

/// What the CLI says when Azure User Sync is switched off.
pub const INACTIVE: &str = "Azure User Sync is not active; switch it on first (safegpt azure configure --active true)";

/// Opening the database: a URL or directory the operator gave is their input.
impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnsupportedUrl(_) | StoreError::Unopenable(_) => Failure::invalid(e.to_string()),
            other => AppError::from(other).into(),
        }
    }
}
