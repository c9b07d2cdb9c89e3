//! A user as one delta entry reports it. Microsoft's delta contract: "updated instances are
//! represented by their id with at least the properties that have been updated, but
//! additional properties may be included"; properties never set are left out. So every
//! property may be absent, and absent is not `null`: an absent property keeps what is
//! known, an explicit `null` clears it, and a missing `accountEnabled` or `userType` never
//! changes anyone's status.

use crate::user::{RemoteUser, UserType};

/// One property of a delta entry: absent (`None`), explicitly `null` (`Some(None)`), or a value.
pub type Sent<T> = Option<Option<T>>;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserPatch {
    pub id: String,
    pub user_principal_name: Sent<String>,
    pub mail: Sent<String>,
    pub display_name: Sent<String>,
    pub given_name: Sent<String>,
    pub surname: Sent<String>,
    pub job_title: Sent<String>,
    pub department: Sent<String>,
    pub account_enabled: Sent<bool>,
    pub user_type: Sent<UserType>,
    /// The first address of `otherMails` (`Some(None)`: the list was sent empty).
    pub other_mail: Sent<String>,
}

fn over<T: Clone>(sent: Sent<T>, known: &Option<T>) -> Option<T> {
    match sent {
        Some(value) => value,
        None => known.clone(),
    }
}

/// What is assumed of a user nothing is known of: nothing set, and Entra's defaults for a
/// new account (enabled, a member).
fn blank() -> RemoteUser {
    RemoteUser {
        id: String::new(),
        user_principal_name: String::new(),
        mail: None,
        display_name: None,
        given_name: None,
        surname: None,
        job_title: None,
        department: None,
        account_enabled: true,
        user_type: UserType::Member,
        other_mail: None,
    }
}

impl UserPatch {
    /// Lays a later entry of the same round over this one, property by property.
    pub fn merge(&mut self, later: UserPatch) {
        fn take<T>(mine: &mut Sent<T>, later: Sent<T>) {
            if later.is_some() {
                *mine = later;
            }
        }
        take(&mut self.user_principal_name, later.user_principal_name);
        take(&mut self.mail, later.mail);
        take(&mut self.display_name, later.display_name);
        take(&mut self.given_name, later.given_name);
        take(&mut self.surname, later.surname);
        take(&mut self.job_title, later.job_title);
        take(&mut self.department, later.department);
        take(&mut self.account_enabled, later.account_enabled);
        take(&mut self.user_type, later.user_type);
        take(&mut self.other_mail, later.other_mail);
    }

    /// Whether the entry carries what every user has (its UPN, `accountEnabled`, `userType`),
    /// so that it makes a user without anything known to lay it over.
    pub fn is_whole(&self) -> bool {
        matches!(self.user_principal_name, Some(Some(_)))
            && matches!(self.account_enabled, Some(Some(_)))
            && matches!(self.user_type, Some(Some(_)))
    }

    /// The user after this entry, laid over what was known of it (`base`, the copy of
    /// Entra). `None` when nothing is known and the entry is not whole: then the user must
    /// be read whole, directly.
    pub fn apply(self, base: Option<&RemoteUser>) -> Option<RemoteUser> {
        let unknown;
        let known = match base {
            Some(base) => base,
            None if self.is_whole() => {
                unknown = blank();
                &unknown
            }
            None => return None,
        };
        Some(RemoteUser {
            id: self.id,
            user_principal_name: match self.user_principal_name {
                Some(Some(upn)) => upn,
                _ => known.user_principal_name.clone(),
            },
            mail: over(self.mail, &known.mail),
            display_name: over(self.display_name, &known.display_name),
            given_name: over(self.given_name, &known.given_name),
            surname: over(self.surname, &known.surname),
            job_title: over(self.job_title, &known.job_title),
            department: over(self.department, &known.department),
            account_enabled: self.account_enabled.flatten().unwrap_or(known.account_enabled),
            user_type: self.user_type.flatten().unwrap_or(known.user_type),
            other_mail: over(self.other_mail, &known.other_mail),
        })
    }

    /// A user read directly (`GET /users/{id}` with `$select`), where Graph sends every
    /// selected property: a `null` `accountEnabled` counts as enabled (Entra's default for
    /// a new account) and a `null` `userType` as a member, as Entra treats them.
    pub fn into_read_user(self) -> RemoteUser {
        self.apply(Some(&blank())).expect("with something known, every entry makes a user")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> RemoteUser {
        RemoteUser {
            id: "u1".into(),
            user_principal_name: "ann@x".into(),
            mail: Some("ann@x".into()),
            display_name: Some("Ann".into()),
            given_name: Some("Ann".into()),
            surname: Some("Smith".into()),
            job_title: Some("Clerk".into()),
            department: Some("Sales".into()),
            account_enabled: false,
            user_type: UserType::Guest,
            other_mail: Some("ann@home".into()),
        }
    }

    #[test]
    fn absent_properties_keep_what_is_known_and_null_clears() {
        let patch = UserPatch {
            id: "u1".into(),
            display_name: Some(Some("Ann B".into())),
            job_title: Some(None),
            ..UserPatch::default()
        };
        let after = patch.apply(Some(&known())).unwrap();
        assert_eq!(
            after,
            RemoteUser { display_name: Some("Ann B".into()), job_title: None, ..known() },
            "only the display name and the cleared job title changed; status fields kept"
        );
    }

    #[test]
    fn a_null_account_enabled_or_user_type_never_changes_status() {
        let patch =
            UserPatch { id: "u1".into(), account_enabled: Some(None), user_type: Some(None), ..UserPatch::default() };
        assert_eq!(patch.apply(Some(&known())).unwrap(), known());
    }

    #[test]
    fn without_a_known_user_an_entry_must_carry_the_essentials() {
        let partial = UserPatch { id: "u2".into(), display_name: Some(Some("Bo".into())), ..UserPatch::default() };
        assert!(!partial.is_whole());
        assert_eq!(partial.clone().apply(None), None, "read it directly instead of guessing");
        let whole = UserPatch {
            user_principal_name: Some(Some("bo@x".into())),
            account_enabled: Some(Some(true)),
            user_type: Some(Some(UserType::Member)),
            ..partial
        };
        let user = whole.apply(None).unwrap();
        assert_eq!((user.display_name.as_deref(), user.mail, user.account_enabled), (Some("Bo"), None, true));
    }

    #[test]
    fn later_entries_of_a_round_win_property_by_property() {
        let mut first = UserPatch {
            id: "u1".into(),
            display_name: Some(Some("A".into())),
            surname: Some(Some("S".into())),
            ..UserPatch::default()
        };
        first.merge(UserPatch {
            id: "u1".into(),
            display_name: Some(Some("B".into())),
            account_enabled: Some(Some(true)),
            ..UserPatch::default()
        });
        assert_eq!(first.display_name, Some(Some("B".into())));
        assert_eq!(first.surname, Some(Some("S".into())));
        assert_eq!(first.account_enabled, Some(Some(true)));
    }

    #[test]
    fn a_direct_read_with_nulls_gets_entras_defaults() {
        let read = UserPatch {
            id: "u3".into(),
            user_principal_name: Some(Some("c@x".into())),
            account_enabled: Some(None),
            user_type: Some(None),
            ..UserPatch::default()
        };
        let user = read.into_read_user();
        assert!(user.account_enabled);
        assert_eq!(user.user_type, UserType::Member);
    }
}
