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

/// The longest text attribute kept (Entra's own limits are lower: 256 for a display name,
/// 113 for a UPN's local part); an object id is a GUID.
const MAX_TEXT_CHARS: usize = 256;
const MAX_ID_CHARS: usize = 64;

/// Text from Entra made safe at the edge: control characters (NUL, CR/LF, ...) removed —
/// PostgreSQL cannot store NUL, and a line break has no place in a name or an address —
/// and the length bounded. The planner and the store only ever see clean text.
pub(crate) fn clean_text(raw: String, max_chars: usize) -> String {
    if !raw.contains(char::is_control) && raw.len() <= max_chars {
        return raw;
    }
    raw.chars().filter(|c| !c.is_control()).take(max_chars).collect()
}

fn clean_sent(sent: Sent<String>) -> Sent<String> {
    sent.map(|value| value.map(|v| clean_text(v, MAX_TEXT_CHARS)))
}

pub(crate) fn clean_id(raw: String) -> String {
    clean_text(raw, MAX_ID_CHARS)
}

pub(crate) fn patch_from_wire(w: WireUser) -> UserPatch {
    UserPatch {
        id: clean_id(w.id),
        user_principal_name: clean_sent(w.user_principal_name),
        mail: clean_sent(w.mail),
        display_name: clean_sent(w.display_name),
        given_name: clean_sent(w.given_name),
        surname: clean_sent(w.surname),
        job_title: clean_sent(w.job_title),
        department: clean_sent(w.department),
        account_enabled: w.account_enabled,
        user_type: w
            .user_type
            .map(|t| t.map(|t| if t.eq_ignore_ascii_case("guest") { UserType::Guest } else { UserType::Member })),
        other_mail: clean_sent(
            w.other_mails.map(|list| list.and_then(|l| l.into_iter().find(|m| !m.trim().is_empty()))),
        ),
    }
}

/// A user read with `$select` (every selected property is sent, `null` when unset).
pub(crate) fn user_from_wire(w: WireUser) -> Option<RemoteUser> {
    Some(patch_from_wire(w).into_read_user())
}

pub(crate) fn user_delta_from_wire(w: WireUser) -> Option<UserDelta> {
    Some(match &w.removed {
        Some(removed) => UserDelta::Removed { id: clean_id(w.id), permanent: removed.permanent() },
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
            (removed || kind.is_some()).then_some(MemberDelta { id: clean_id(m.id), kind: kind.filter(|_| !removed) })
        })
        .collect();
    Some(GroupDelta {
        id: clean_id(w.id),
        removed: w.removed.is_some(),
        permanent: w.removed.as_ref().is_some_and(WireRemoved::permanent),
        members,
    })
}

pub(crate) fn user_id_from_member(m: WireMember) -> Option<String> {
    (m.odata_type.as_deref() == Some("#microsoft.graph.user")).then(|| clean_id(m.id))
}

pub(crate) fn member_id(m: WireMember) -> Option<String> {
    Some(clean_id(m.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_entra_loses_control_characters_and_excess_length() {
        assert_eq!(clean_text("Ann\u{0} Lee\r\n".into(), 256), "Ann Lee");
        assert_eq!(clean_text("Zoë".into(), 256), "Zoë");
        assert_eq!(clean_text("é".repeat(300), 256).chars().count(), 256);
        let json = r#"{"id": "u1\u0000", "displayName": "A\u0000B", "mail": "a@x.org\r\nBcc: b@y.org"}"#;
        let patch = patch_from_wire(serde_json::from_str(json).unwrap());
        assert_eq!((patch.id.as_str(), patch.display_name), ("u1", Some(Some("AB".to_owned()))));
        assert_eq!(patch.mail, Some(Some("a@x.orgBcc: b@y.org".to_owned())), "not an address; the core refuses it");
    }
}
