//! The SafeGPT directory's domain: users, settings and the pure sync planner.
//! Nothing here does I/O or reads the clock.

pub mod ids;
pub mod membership;
pub mod patch;
pub mod planner;
pub mod settings;
pub mod user;

pub use ids::Email;
pub use membership::{EntraChanges, MemberKind, Membership};
pub use patch::{Sent, UserPatch};
pub use planner::{
    Action, Change, ChangeReason, Counts, Hold, Plan, Policy, Seats, Snapshot, Untouched, plan, plan_subset,
};
pub use settings::{Cloud, FieldError, InvalidSettings, SecretWarning, Settings, SettingsPatch};
pub use user::{DisabledReason, LocalUser, Profile, RemoteUser, Source, Status, UserType};
