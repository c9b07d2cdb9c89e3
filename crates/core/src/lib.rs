//! The SafeGPT directory's domain: users, settings and the pure sync planner.
//! Nothing here does I/O or reads the clock.

pub mod ids;
pub mod planner;
pub mod settings;
pub mod user;

pub use planner::{Action, Change, ChangeReason, Counts, Hold, Plan, Policy, Seats, Snapshot, plan};
pub use settings::{Cloud, FieldError, InvalidSettings, SecretWarning, Settings, SettingsPatch};
pub use user::{DisabledReason, LocalUser, Profile, RemoteUser, Source, Status, UserType};
