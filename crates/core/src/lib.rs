//! The SafeGPT directory's domain: users, settings and the pure sync planner.
//! Nothing here does I/O or reads the clock.

pub mod ids;
pub mod membership;
pub mod packed;
pub mod patch;
pub mod planner;
pub mod scope;
pub mod settings;
pub mod user;
pub mod walk;

pub use ids::{ClientId, Email, GroupId, TenantId};
pub use membership::{EntraChanges, MemberKind, Membership};
pub use packed::{PackedPatch, PackedUser};
pub use patch::{Sent, UserPatch};
pub use planner::{
    Action, Change, ChangeReason, Counts, Hold, Plan, Policy, Rows, Seats, Snapshot, Untouched, plan, plan_subset,
};
pub use scope::{Covered, Reach, Scope};
pub use settings::{Cloud, FieldError, InvalidSettings, SecretWarning, Settings, SettingsPatch};
pub use user::{DisabledReason, LocalUser, Profile, RemoteUser, Source, Status, UserType};
pub use walk::{Counting, Decisions, Planning, Seen, Walk};
