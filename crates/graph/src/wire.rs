//! Graph's JSON shapes, as far as the sync reads them.

use safegpt_core::{MemberKind, RemoteUser, UserType};

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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireUser {
    id: String,
    #[serde(default)]
    user_principal_name: Option<String>,
    #[serde(default)]
    mail: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    surname: Option<String>,
    #[serde(default)]
    job_title: Option<String>,
    #[serde(default)]
    department: Option<String>,
    #[serde(default)]
    account_enabled: Option<bool>,
    #[serde(default)]
    user_type: Option<String>,
    /// Delta only: the user was deleted (`changed`: soft, restorable; `deleted`: for good).
    #[serde(rename = "@removed", default)]
    removed: Option<serde::de::IgnoredAny>,
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
    removed: Option<serde::de::IgnoredAny>,
    #[serde(rename = "members@delta", default)]
    members: Vec<WireMember>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireGroup {
    #[serde(default)]
    pub display_name: Option<String>,
}

pub(crate) fn user_from_wire(w: WireUser) -> Option<RemoteUser> {
    Some(RemoteUser {
        user_principal_name: w.user_principal_name.unwrap_or_default(),
        id: w.id,
        mail: w.mail,
        display_name: w.display_name,
        given_name: w.given_name,
        surname: w.surname,
        job_title: w.job_title,
        department: w.department,
        // Selected explicitly, so Graph always sends it; a missing value is treated as
        // enabled because only an explicit `false` is evidence of a disabled account.
        account_enabled: w.account_enabled.unwrap_or(true),
        user_type: match w.user_type.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("guest") => UserType::Guest,
            _ => UserType::Member,
        },
    })
}

pub(crate) fn user_delta_from_wire(w: WireUser) -> Option<UserDelta> {
    Some(if w.removed.is_some() { UserDelta::Removed(w.id) } else { UserDelta::Present(user_from_wire(w)?) })
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
    Some(GroupDelta { id: w.id, removed: w.removed.is_some(), members })
}

pub(crate) fn user_id_from_member(m: WireMember) -> Option<String> {
    (m.odata_type.as_deref() == Some("#microsoft.graph.user")).then_some(m.id)
}
