//! Users as the directory keeps them, and users as Entra reports them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Where a directory user comes from. Only `Entra` users are managed by the sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Entra,
    Local,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Entra => "entra",
            Source::Local => "local",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "entra" => Some(Source::Entra),
            "local" => Some(Source::Local),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Disabled,
    /// In scope, but no seat was free when the user arrived. Holds no seat.
    AwaitingLicense,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled => "disabled",
            Status::AwaitingLicense => "awaiting_license",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Status::Active),
            "disabled" => Some(Status::Disabled),
            "awaiting_license" => Some(Status::AwaitingLicense),
            _ => None,
        }
    }

    /// Active and disabled users hold a seat; users awaiting a license do not.
    pub fn holds_seat(self) -> bool {
        matches!(self, Status::Active | Status::Disabled)
    }
}

/// Why a user is disabled, or (for users kept active) why it is out of scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    NotInGroup,
    DeletedInEntra,
    DisabledInEntra,
    GuestExcluded,
    /// An administrator's decision; the sync never overrides it.
    Admin,
}

impl DisabledReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisabledReason::NotInGroup => "not_in_group",
            DisabledReason::DeletedInEntra => "deleted_in_entra",
            DisabledReason::DisabledInEntra => "disabled_in_entra",
            DisabledReason::GuestExcluded => "guest_excluded",
            DisabledReason::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "not_in_group" => DisabledReason::NotInGroup,
            "deleted_in_entra" => DisabledReason::DeletedInEntra,
            "disabled_in_entra" => DisabledReason::DisabledInEntra,
            "guest_excluded" => DisabledReason::GuestExcluded,
            "admin" => DisabledReason::Admin,
            _ => return None,
        })
    }

    /// A human sentence for logs, audit rows and the UI.
    pub fn describe(self) -> &'static str {
        match self {
            DisabledReason::NotInGroup => "not a member of the configured group(s)",
            DisabledReason::DeletedInEntra => "deleted in Entra ID",
            DisabledReason::DisabledInEntra => "account disabled in Entra ID",
            DisabledReason::GuestExcluded => "guest user, and guests are not included",
            DisabledReason::Admin => "disabled by an administrator",
        }
    }
}

/// The attributes the sync copies from Entra. Compared field by field to detect updates.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Profile {
    pub email: String,
    pub user_principal_name: Option<String>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
}

impl Profile {
    /// Names of the fields that differ between `self` and `other`, in a stable order.
    pub fn changed_fields(&self, other: &Profile) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.email != other.email {
            changed.push("email");
        }
        let pairs: [(&'static str, &Option<String>, &Option<String>); 6] = [
            ("user_principal_name", &self.user_principal_name, &other.user_principal_name),
            ("display_name", &self.display_name, &other.display_name),
            ("given_name", &self.given_name, &other.given_name),
            ("surname", &self.surname, &other.surname),
            ("job_title", &self.job_title, &other.job_title),
            ("department", &self.department, &other.department),
        ];
        for (name, a, b) in pairs {
            if a != b {
                changed.push(name);
            }
        }
        changed
    }
}

/// A user of the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalUser {
    pub id: Uuid,
    pub source: Source,
    /// The Entra object id: the one key that never changes. `None` for local accounts.
    pub azure_object_id: Option<String>,
    pub profile: Profile,
    pub status: Status,
    pub disabled_reason: Option<DisabledReason>,
    pub disabled_at: Option<OffsetDateTime>,
    /// False when the user is no longer in scope in Entra but was kept (auto-disable off,
    /// disabled by an administrator, or awaiting a license).
    pub in_scope: bool,
    pub created_at: OffsetDateTime,
}

impl LocalUser {
    /// True when the sync disabled this user (as opposed to an administrator).
    pub fn disabled_by_sync(&self) -> bool {
        self.status == Status::Disabled && !matches!(self.disabled_reason, Some(DisabledReason::Admin) | None)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserType {
    Member,
    Guest,
}

/// A user as read from Microsoft Graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteUser {
    pub id: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub account_enabled: bool,
    pub user_type: UserType,
    /// The first address of `otherMails`: where a guest without a mailbox is reached.
    #[serde(default)]
    pub other_mail: Option<String>,
}

/// An address mail can go to: not empty, not a guest's `#EXT#` UPN, and an e-mail address
/// at all (Entra lets attributes hold anything; markup or a line break never becomes an
/// address here).
fn usable_address(s: Option<&str>) -> Option<&str> {
    s.map(str::trim)
        .filter(|s| !s.is_empty() && !s.to_ascii_uppercase().contains(GUEST_UPN_MARK) && crate::Email::parse(s).is_ok())
}

/// Entra's mark of a guest's UPN (`alias_home.example#EXT#@tenant.onmicrosoft.com`):
/// an address nobody receives mail at.
const GUEST_UPN_MARK: &str = "#EXT#";

impl RemoteUser {
    /// The e-mail address the directory uses: `mail`; else, for a member, its UPN, and for
    /// a guest the first of `otherMails` (where its invitation went); else the other of
    /// the two; else none (empty). A guest's `#EXT#` UPN is never an address.
    pub fn email(&self) -> &str {
        let upn = usable_address(Some(&self.user_principal_name));
        let other = usable_address(self.other_mail.as_deref());
        let fallback = match self.user_type {
            UserType::Member => upn.or(other),
            UserType::Guest => other.or(upn),
        };
        usable_address(self.mail.as_deref()).or(fallback).unwrap_or("")
    }

    /// Whether Entra holds an address for this user that is not one (`mail`, or a member's
    /// UPN, or `otherMails`, set but not an e-mail address): the run counts these.
    pub fn has_invalid_address(&self) -> bool {
        self.view().has_invalid_address()
    }

    /// The address that may link an unlinked local account: `mail` or a member's UPN, the
    /// addresses the tenant vouches for. `otherMails` is only where a guest is reached.
    pub fn linking_email(&self) -> Option<&str> {
        usable_address(self.mail.as_deref()).or_else(|| {
            (self.user_type == UserType::Member).then(|| usable_address(Some(&self.user_principal_name))).flatten()
        })
    }

    /// A stable 64-bit digest of every field (FNV-1a), to tell cheaply whether a stored
    /// copy of this user differs. The same on every platform and release.
    pub fn fingerprint(&self) -> u64 {
        self.view().fingerprint()
    }

    fn view(&self) -> UserView<'_> {
        UserView {
            texts: [
                Some(&self.id),
                Some(&self.user_principal_name),
                self.mail.as_deref(),
                self.display_name.as_deref(),
                self.given_name.as_deref(),
                self.surname.as_deref(),
                self.job_title.as_deref(),
                self.department.as_deref(),
                self.other_mail.as_deref(),
            ],
            account_enabled: self.account_enabled,
            user_type: self.user_type,
        }
    }

    pub fn profile(&self) -> Profile {
        Profile {
            email: self.email().to_owned(),
            user_principal_name: Some(self.user_principal_name.clone()),
            display_name: self.display_name.clone(),
            given_name: self.given_name.clone(),
            surname: self.surname.clone(),
            job_title: self.job_title.clone(),
            department: self.department.clone(),
        }
    }
}

/// A whole user's properties borrowed, wherever they are kept (a [`RemoteUser`], or the
/// bytes of a packed one): what is computed from them is computed once, here.
pub(crate) struct UserView<'a> {
    /// id, UPN, mail, display name, given name, surname, job title, department, other mail.
    pub texts: [Option<&'a str>; 9],
    pub account_enabled: bool,
    pub user_type: UserType,
}

impl UserView<'_> {
    pub fn has_invalid_address(&self) -> bool {
        let [_, upn, mail, .., other_mail] = self.texts;
        let upn = upn.filter(|u| !u.to_ascii_uppercase().contains(GUEST_UPN_MARK));
        [mail, upn, other_mail]
            .into_iter()
            .flatten()
            .map(str::trim)
            .any(|a| !a.is_empty() && crate::Email::parse(a).is_err())
    }

    pub fn fingerprint(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        };
        let [fields @ .., other_mail] = self.texts;
        for field in fields {
            // A marker before each field keeps None, "" and shifted text apart.
            match field {
                None => eat(&[0]),
                Some(text) => {
                    eat(&[1]);
                    eat(text.as_bytes());
                    eat(&[0xff]);
                }
            }
        }
        eat(&[u8::from(self.account_enabled), u8::from(self.user_type == UserType::Guest)]);
        // Added after the first release: only a set value counts, so the fingerprints of
        // users without one stay what stored copies hold.
        if let Some(other) = other_mail {
            eat(&[2]);
            eat(other.as_bytes());
        }
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_changes_with_every_field_and_only_then() {
        let user = RemoteUser {
            id: "u1".into(),
            user_principal_name: "a@x".into(),
            mail: Some("a@x".into()),
            display_name: Some("A".into()),
            given_name: None,
            surname: Some("".into()),
            job_title: None,
            department: None,
            account_enabled: true,
            user_type: UserType::Member,
            other_mail: None,
        };
        assert_eq!(user.fingerprint(), user.clone().fingerprint());
        let variants = [
            RemoteUser { id: "u2".into(), ..user.clone() },
            RemoteUser { mail: None, ..user.clone() },
            RemoteUser { display_name: Some("AB".into()), ..user.clone() },
            RemoteUser { given_name: Some("".into()), ..user.clone() },
            RemoteUser { surname: None, ..user.clone() },
            RemoteUser { job_title: Some("A".into()), ..user.clone() },
            // The same text moved to the next field.
            RemoteUser { display_name: None, given_name: Some("A".into()), ..user.clone() },
            RemoteUser { account_enabled: false, ..user.clone() },
            RemoteUser { user_type: UserType::Guest, ..user.clone() },
            RemoteUser { other_mail: Some("a@home".into()), ..user.clone() },
        ];
        for v in &variants {
            assert_ne!(v.fingerprint(), user.fingerprint(), "{v:?}");
        }
        // Fixed forever: stored copies are compared with it across releases.
        assert_eq!(user.fingerprint(), 15_804_224_522_369_639_257);
    }

    #[test]
    fn a_guests_address_is_its_mail_else_its_other_mail_never_its_ext_upn() {
        let guest = RemoteUser {
            id: "g".into(),
            user_principal_name: "bo_home.example#EXT#@tenant.onmicrosoft.com".into(),
            mail: None,
            display_name: None,
            given_name: None,
            surname: None,
            job_title: None,
            department: None,
            account_enabled: true,
            user_type: UserType::Guest,
            other_mail: Some("bo@home.example".into()),
        };
        assert_eq!(guest.email(), "bo@home.example");
        assert_eq!(guest.linking_email(), None, "otherMails reaches a guest but links nobody");
        assert_eq!(RemoteUser { mail: Some("bo@work.example".into()), ..guest.clone() }.email(), "bo@work.example");
        assert_eq!(
            RemoteUser { other_mail: None, ..guest.clone() }.email(),
            "",
            "no address rather than the #EXT# UPN"
        );
        // A member converted from a guest keeps its #EXT# UPN: still not an address.
        let member = RemoteUser { user_type: UserType::Member, ..guest.clone() };
        assert_eq!(member.email(), "bo@home.example");
        assert_eq!(RemoteUser { other_mail: None, ..member.clone() }.email(), "");
        let plain = RemoteUser { user_principal_name: "cy@contoso.example".into(), ..member };
        assert_eq!(plain.email(), "cy@contoso.example", "a member without mail: its UPN first");
    }
}
