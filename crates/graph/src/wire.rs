//! Graph's JSON shapes, as far as the sync reads them.

use safegpt_core::{MemberKind, RemoteUser, Sent, UserPatch, UserType};

use crate::{GroupDelta, MemberDelta, UserDelta};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    #[serde(deserialize_with = "number_or_string")]
    pub expires_in: u64,
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        N(u64),
        S(String),
    }
    match Either::deserialize(d)? {
        Either::N(n) => Ok(n),
        Either::S(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// One page of a collection. Unknown properties are skipped without buffering.
#[derive(Debug, Deserialize)]
pub(crate) struct Page<W> {
    #[serde(default = "Vec::new")]
    pub value: Vec<W>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
    /// Only on the last page of a delta round: where the next round starts.
    #[serde(rename = "@odata.deltaLink", default)]
    pub delta_link: Option<String>,
}

/// Absent stays `None`; an explicit `null` becomes `Some(None)` (see `UserPatch`).
fn sent<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Sent<T>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A user as Graph sends it: in a delta round any property may be absent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireUser {
    id: String,
    #[serde(default, deserialize_with = "sent")]
    user_principal_name: Sent<String>,
    #[serde(default, deserialize_with = "sent")]
    mail: Sent<String>,
    #[serde(default, deserialize_with = "sent")]
    display_name: Sent<String>,
    #[serde(default, deserialize_with = "sent")]
    given_name: Sent<String>,
    #[serde(default, deserialize_with = "sent")]
    surname: Sent<String>,
    #[serde(default, deserialize_with = "sent")]
    job_title: Sent<String>,
    #[serde(default, deserialize_with = "sent")]
    department: Sent<String>,
    #[serde(default, deserialize_with = "sent")]
    account_enabled: Sent<bool>,
    #[serde(default, deserialize_with = "sent")]
    user_type: Sent<String>,
    #[serde(default, deserialize_with = "sent")]
    other_mails: Sent<Vec<String>>,
    /// Delta only: the user was deleted (`changed`: soft, restorable; `deleted`: for good).
    #[serde(rename = "@removed", default)]
    removed: Option<WireRemoved>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireRemoved {
    #[serde(default)]
    reason: Option<String>,
}

impl WireRemoved {
    /// `deleted`: gone for good. Anything else (`changed`, or no reason) may come back.
    fn permanent(&self) -> bool {
        self.reason.as_deref().is_some_and(|r| r.eq_ignore_ascii_case("deleted"))
    }
}

#[derive(Debug, Deserialize)]
pub struct WireMember {
    #[serde(rename = "@odata.type", default)]
    odata_type: Option<String>,
    id: String,
    /// In `members@delta`: the member left the group (or was deleted).
    #[serde(rename = "@removed", default)]
    removed: Option<serde::de::IgnoredAny>,
}

/// A group in a `groups/delta` round.
#[derive(Debug, Deserialize)]
pub struct WireGroupDelta {
    id: String,
    #[serde(rename = "@removed", default)]
    removed: Option<WireRemoved>,
    #[serde(rename = "members@delta", default)]
    members: Vec<WireMember>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireGroup {
    #[serde(default)]
    pub display_name: Option<String>,
}

pub(crate) fn patch_from_wire(w: WireUser) -> UserPatch {
    UserPatch {
        id: w.id,
        user_principal_name: w.user_principal_name,
        mail: w.mail,
        display_name: w.display_name,
        given_name: w.given_name,
        surname: w.surname,
        job_title: w.job_title,
        department: w.department,
        account_enabled: w.account_enabled,
        user_type: w
            .user_type
            .map(|t| t.map(|t| if t.eq_ignore_ascii_case("guest") { UserType::Guest } else { UserType::Member })),
        other_mail: w.other_mails.map(|list| list.and_then(|l| l.into_iter().find(|m| !m.trim().is_empty()))),
    }
}

/// A user read with `$select` (every selected property is sent, `null` when unset).
pub(crate) fn user_from_wire(w: WireUser) -> Option<RemoteUser> {
    Some(patch_from_wire(w).into_read_user())
}

pub(crate) fn user_delta_from_wire(w: WireUser) -> Option<UserDelta> {
    Some(match &w.removed {
        Some(removed) => UserDelta::Removed { id: w.id, permanent: removed.permanent() },
        None => UserDelta::Present(patch_from_wire(w)),
    })
}

fn member_kind(odata_type: Option<&str>) -> Option<MemberKind> {
    match odata_type {
        Some("#microsoft.graph.user") => Some(MemberKind::User),
        Some("#microsoft.graph.group") => Some(MemberKind::Group),
        _ => None,
    }
}

pub(crate) fn group_delta_from_wire(w: WireGroupDelta) -> Option<GroupDelta> {
    let members = w
        .members
        .into_iter()
        .filter_map(|m| {
            let removed = m.removed.is_some();
            // A removed member may come without its type; it is removed whatever it was.
            let kind = member_kind(m.odata_type.as_deref());
            (removed || kind.is_some()).then_some(MemberDelta { id: m.id, kind: kind.filter(|_| !removed) })
        })
        .collect();
    Some(GroupDelta {
        id: w.id,
        removed: w.removed.is_some(),
        permanent: w.removed.as_ref().is_some_and(WireRemoved::permanent),
        members,
    })
}

pub(crate) fn user_id_from_member(m: WireMember) -> Option<String> {
    (m.odata_type.as_deref() == Some("#microsoft.graph.user")).then_some(m.id)
}

pub(crate) fn member_id(m: WireMember) -> Option<String> {
    Some(m.id)
}
