//! Entra's users as a full read holds them: each in one allocation of its bytes.
//!
//! A full read keeps every user of the tenant until it has planned and written the slices
//! (a million at most tenants' worst). As `UserPatch` or `RemoteUser` a user is a struct of
//! nine strings, each its own allocation: ~420 bytes for a user whose text is ~170. Packed
//! it is its text, a length byte per property and a box.
//!
//! Layout: one byte of flags (bits 0–1 `accountEnabled`, bits 2–3 `userType`: 0 absent,
//! 1 null, 2 false / member, 3 true / guest; bit 4 a whole user's coverage), then the nine text properties in the order of
//! [`Texts`], each a LEB128 tag (0 absent, 1 null, n + 2 a value of n bytes) and its bytes.

use crate::user::UserView;
use crate::{RemoteUser, Sent, UserPatch, UserType};

/// The text properties, in their packed order: id, UPN, mail, display name, given name,
/// surname, job title, department, other mail.
type Texts<'a> = [Sent<&'a str>; 9];

/// The flag of a covered user, above the bits of `accountEnabled` and `userType`.
const COVERED: u8 = 1 << 4;

/// A `users/delta` entry's properties (absent, null or a value), packed.
#[derive(Clone, PartialEq, Eq)]
pub struct PackedPatch(Box<[u8]>);

/// A whole user ([`RemoteUser`]), packed, with its fingerprint (which the copy of Entra is
/// compared by).
#[derive(Clone, PartialEq, Eq)]
pub struct PackedUser {
    packed: PackedPatch,
    fingerprint: u64,
}

impl std::fmt::Debug for PackedPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.unpack().fmt(f)
    }
}

impl std::fmt::Debug for PackedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.unpack().fmt(f)
    }
}

fn flag<T>(sent: Sent<T>, is_set: impl Fn(T) -> bool) -> u8 {
    match sent {
        None => 0,
        Some(None) => 1,
        Some(Some(v)) => 2 + u8::from(is_set(v)),
    }
}

fn unflag<T>(bits: u8, set: T, unset: T) -> Sent<T> {
    match bits & 3 {
        0 => None,
        1 => Some(None),
        2 => Some(Some(unset)),
        _ => Some(Some(set)),
    }
}

/// `accountEnabled` and `userType` from the flags byte.
fn flags(byte: u8) -> (Sent<bool>, Sent<UserType>) {
    (unflag(byte, true, false), unflag(byte >> 2, UserType::Guest, UserType::Member))
}

fn push_tag(bytes: &mut Vec<u8>, mut tag: usize) {
    loop {
        let low = (tag & 0x7f) as u8;
        tag >>= 7;
        if tag == 0 {
            bytes.push(low);
            return;
        }
        bytes.push(low | 0x80);
    }
}

fn pack(texts: &Texts<'_>, enabled: Sent<bool>, user_type: Sent<UserType>) -> PackedPatch {
    let text_len: usize = texts.iter().map(|t| t.flatten().map_or(0, str::len)).sum();
    let mut bytes = Vec::with_capacity(1 + texts.len() * 2 + text_len);
    bytes.push(flag(enabled, |v| v) | flag(user_type, |t| t == UserType::Guest) << 2);
    for text in texts {
        match text {
            None => push_tag(&mut bytes, 0),
            Some(None) => push_tag(&mut bytes, 1),
            Some(Some(value)) => {
                push_tag(&mut bytes, value.len() + 2);
                bytes.extend_from_slice(value.as_bytes());
            }
        }
    }
    PackedPatch(bytes.into_boxed_slice())
}

/// The LEB128 tag that starts at `at`, moving `at` past it; `None` past the end of the
/// bytes or beyond a `usize`.
fn checked_tag_at(bytes: &[u8], at: &mut usize) -> Option<usize> {
    let (mut tag, mut shift) = (0usize, 0u32);
    loop {
        let byte = *bytes.get(*at)?;
        *at += 1;
        tag |= usize::from(byte & 0x7f).checked_shl(shift).filter(|_| shift < usize::BITS)?;
        shift += 7;
        if byte & 0x80 == 0 {
            return Some(tag);
        }
    }
}

/// The LEB128 tag that starts at `at`, moving `at` past it.
fn tag_at(bytes: &[u8], at: &mut usize) -> usize {
    let (mut tag, mut shift) = (0usize, 0);
    loop {
        let byte = bytes[*at];
        *at += 1;
        tag |= usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return tag;
        }
    }
}

impl PackedPatch {
    pub fn pack(patch: &UserPatch) -> Self {
        fn text(t: &Sent<String>) -> Sent<&str> {
            t.as_ref().map(Option::as_deref)
        }
        let texts = [
            Some(Some(patch.id.as_str())),
            text(&patch.user_principal_name),
            text(&patch.mail),
            text(&patch.display_name),
            text(&patch.given_name),
            text(&patch.surname),
            text(&patch.job_title),
            text(&patch.department),
            text(&patch.other_mail),
        ];
        pack(&texts, patch.account_enabled, patch.user_type)
    }

    /// The flags and the text properties, borrowed from the bytes.
    fn texts(&self) -> (u8, Texts<'_>) {
        let mut at = 1;
        let mut texts: Texts<'_> = [None; 9];
        for text in &mut texts {
            *text = self.text_at(&mut at);
        }
        (self.0[0], texts)
    }

    /// The text property that starts at `at`, moving `at` past it.
    fn text_at(&self, at: &mut usize) -> Sent<&str> {
        match tag_at(&self.0, at) {
            0 => None,
            1 => Some(None),
            n => {
                let value = &self.0[*at..*at + n - 2];
                *at += n - 2;
                Some(Some(std::str::from_utf8(value).expect("packed from a str")))
            }
        }
    }

    /// The bytes, as staged on disk (see [`PackedPatch::from_bytes`]).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Bytes [`PackedPatch::as_bytes`] gave, read back from where they were staged: `None`
    /// unless they are a flags byte (no bit set beyond the known ones) and nine well-formed properties, the first (the id) a
    /// value, each value UTF-8, and nothing after.
    pub fn from_bytes(bytes: Box<[u8]>) -> Option<Self> {
        if bytes.first()? & !(COVERED | 0x0f) != 0 {
            return None;
        }
        let mut at = 1;
        for i in 0..9 {
            let tag = checked_tag_at(&bytes, &mut at)?;
            if i == 0 && tag < 2 {
                return None;
            }
            if tag >= 2 {
                let end = at.checked_add(tag - 2)?;
                std::str::from_utf8(bytes.get(at..end)?).ok()?;
                at = end;
            }
        }
        (at == bytes.len()).then_some(PackedPatch(bytes))
    }

    /// The id, read alone: searches and sorts by id read nothing else.
    pub fn id(&self) -> &str {
        self.text_at(&mut 1).flatten().unwrap_or_default()
    }

    pub fn unpack(&self) -> UserPatch {
        let (flags_byte, texts) = self.texts();
        let (enabled, user_type) = flags(flags_byte);
        let owned = |i: usize| texts[i].map(|t| t.map(str::to_owned));
        UserPatch {
            id: self.id().to_owned(),
            user_principal_name: owned(1),
            mail: owned(2),
            display_name: owned(3),
            given_name: owned(4),
            surname: owned(5),
            job_title: owned(6),
            department: owned(7),
            other_mail: owned(8),
            account_enabled: enabled,
            user_type,
        }
    }
}

impl PackedUser {
    pub fn pack(user: &RemoteUser) -> Self {
        let texts = [
            Some(Some(user.id.as_str())),
            Some(Some(user.user_principal_name.as_str())),
            Some(user.mail.as_deref()),
            Some(user.display_name.as_deref()),
            Some(user.given_name.as_deref()),
            Some(user.surname.as_deref()),
            Some(user.job_title.as_deref()),
            Some(user.department.as_deref()),
            Some(user.other_mail.as_deref()),
        ];
        PackedUser {
            packed: pack(&texts, Some(Some(user.account_enabled)), Some(Some(user.user_type))),
            fingerprint: user.fingerprint(),
        }
    }

    /// A round's entry that carries a whole user (UPN, `accountEnabled` and `userType`
    /// set), made the user in place: what the entry left out the user does not have. An
    /// entry that lacks any of the three is given back.
    pub fn from_whole(mut patch: PackedPatch) -> Result<Self, PackedPatch> {
        let (enabled, user_type) = flags(patch.0[0]);
        let mut at = 1;
        patch.text_at(&mut at);
        let upn = patch.text_at(&mut at);
        if !matches!((enabled, user_type, upn), (Some(Some(_)), Some(Some(_)), Some(Some(_)))) {
            return Err(patch);
        }
        // Absent (tag 0) becomes null (tag 1): one byte either way.
        let mut at = 1;
        for _ in 0..9 {
            let start = at;
            match tag_at(&patch.0, &mut at) {
                0 => patch.0[start] = 1,
                1 => {}
                n => at += n - 2,
            }
        }
        let mut user = PackedUser { packed: patch, fingerprint: 0 };
        user.fingerprint = user.view().fingerprint();
        Ok(user)
    }

    fn view(&self) -> UserView<'_> {
        let (flags_byte, texts) = self.packed.texts();
        let (enabled, user_type) = flags(flags_byte);
        // A whole user's flags are always set (see `from_whole`).
        UserView {
            texts: texts.map(Option::flatten),
            account_enabled: enabled.flatten().unwrap_or(true),
            user_type: user_type.flatten().unwrap_or(UserType::Member),
        }
    }

    /// Whether Entra holds an address for this user that is not one (see
    /// [`RemoteUser::has_invalid_address`]).
    pub fn has_invalid_address(&self) -> bool {
        self.view().has_invalid_address()
    }

    pub fn id(&self) -> &str {
        self.packed.id()
    }

    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Whether the scope covers the user (a member of a configured group, directly or by
    /// nesting), as the full read marked it: a set of a million ids took more memory than
    /// the users' text.
    pub fn covered(&self) -> bool {
        self.packed.0[0] & COVERED != 0
    }

    pub fn cover(&mut self) {
        self.packed.0[0] |= COVERED;
    }

    pub fn unpack(&self) -> RemoteUser {
        self.packed.unpack().apply(None).expect("packed from a whole user")
    }

    /// The bytes (coverage included) and the fingerprint, as staged on disk (see
    /// [`PackedUser::from_staged`]).
    pub fn staged(&self) -> (&[u8], u64) {
        (self.packed.as_bytes(), self.fingerprint)
    }

    /// What [`PackedUser::staged`] gave, read back: `None` unless the bytes are a packed
    /// whole user (every property set, as `from_whole` leaves them). The fingerprint is
    /// taken as staged: computing it again would cost a hash per user per pass.
    pub fn from_staged(bytes: Box<[u8]>, fingerprint: u64) -> Option<Self> {
        let packed = PackedPatch::from_bytes(bytes)?;
        let (flags_byte, texts) = packed.texts();
        let (enabled, user_type) = flags(flags_byte);
        let whole = enabled.flatten().is_some()
            && user_type.flatten().is_some()
            && texts[1].flatten().is_some()
            && texts.iter().all(Option::is_some);
        whole.then_some(PackedUser { packed, fingerprint })
    }
}

impl From<&RemoteUser> for PackedUser {
    fn from(user: &RemoteUser) -> Self {
        PackedUser::pack(user)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn text() -> impl Strategy<Value = String> {
        // Long enough for a two-byte tag; any Unicode.
        prop_oneof![".{0,12}", ".{120,140}"]
    }

    fn sent<T: std::fmt::Debug + Clone>(value: impl Strategy<Value = T>) -> impl Strategy<Value = Sent<T>> {
        prop_oneof![Just(None), Just(Some(None)), value.prop_map(|v| Some(Some(v)))]
    }

    fn user_type() -> impl Strategy<Value = UserType> {
        prop_oneof![Just(UserType::Member), Just(UserType::Guest)]
    }

    prop_compose! {
        fn patch()(
            id in text(), texts in proptest::collection::vec(sent(text()), 8),
            enabled in sent(any::<bool>()), user_type in sent(user_type()),
        ) -> UserPatch {
            let mut texts = texts.into_iter();
            let mut next = || texts.next().unwrap();
            UserPatch {
                id, user_principal_name: next(), mail: next(), display_name: next(), given_name: next(),
                surname: next(), job_title: next(), department: next(), other_mail: next(),
                account_enabled: enabled, user_type,
            }
        }
    }

    /// Every property of the patch present (absent ones are what `from_whole` fills).
    fn patch_is_filled(patch: &UserPatch) -> bool {
        PackedPatch::pack(patch).texts().1.iter().all(Option::is_some)
    }

    proptest! {
        #[test]
        fn a_patch_unpacks_to_itself_absent_null_and_values_kept_apart(patch in patch()) {
            let packed = PackedPatch::pack(&patch);
            prop_assert_eq!(packed.id(), patch.id.as_str());
            prop_assert_eq!(packed.unpack(), patch);
        }

        #[test]
        fn a_user_unpacks_to_itself_with_its_fingerprint(patch in patch()) {
            let mut whole = patch;
            whole.user_principal_name = Some(Some(whole.user_principal_name.flatten().unwrap_or_default()));
            whole.account_enabled = Some(Some(whole.account_enabled.flatten().unwrap_or(true)));
            whole.user_type = Some(Some(whole.user_type.flatten().unwrap_or(UserType::Member)));
            let user = whole.apply(None).unwrap();
            let packed = PackedUser::pack(&user);
            prop_assert_eq!(packed.id(), user.id.as_str());
            prop_assert_eq!(packed.fingerprint(), user.fingerprint());
            prop_assert_eq!(packed.unpack(), user.clone());
            let mut covered = packed.clone();
            covered.cover();
            prop_assert!(covered.covered() && !packed.covered());
            prop_assert_eq!(covered.unpack(), user, "coverage is not a property of the user");
            let (bytes, fingerprint) = covered.staged();
            let back = PackedUser::from_staged(bytes.into(), fingerprint);
            prop_assert_eq!(back.as_ref(), Some(&covered), "staged and read back, coverage kept");
            prop_assert!(back.unwrap().covered());
        }

        #[test]
        fn staged_bytes_are_checked_when_read_back(patch in patch(), cut in any::<prop::sample::Index>()) {
            let packed = PackedPatch::pack(&patch);
            prop_assert_eq!(PackedPatch::from_bytes(packed.as_bytes().into()), Some(packed.clone()));
            let bytes = packed.as_bytes();
            let shorter = &bytes[..cut.index(bytes.len())];
            prop_assert_eq!(PackedPatch::from_bytes(shorter.into()), None, "cut short");
            let longer = [bytes, &[0]].concat();
            prop_assert_eq!(PackedPatch::from_bytes(longer.into()), None, "with bytes after it");
            let whole = PackedUser::from_whole(packed.clone()).is_ok();
            prop_assert_eq!(PackedUser::from_staged(packed.as_bytes().into(), 0).is_some(), whole && patch_is_filled(&patch),
                "only a whole user is read back as a user");
        }

        #[test]
        fn an_entry_becomes_a_user_in_place_only_when_whole(mut patch in patch(), whole in any::<bool>()) {
            if whole {
                patch.user_principal_name = Some(patch.user_principal_name.flatten().or(Some(String::new())));
                patch.account_enabled = Some(patch.account_enabled.flatten().or(Some(false)));
                patch.user_type = Some(patch.user_type.flatten().or(Some(UserType::Guest)));
            }
            let packed = PackedPatch::pack(&patch);
            match (PackedUser::from_whole(packed.clone()), patch.clone().apply(None)) {
                (Ok(made), Some(user)) => {
                    prop_assert_eq!(made.fingerprint(), user.fingerprint());
                    prop_assert_eq!(made.has_invalid_address(), user.has_invalid_address());
                    prop_assert_eq!(made.clone(), PackedUser::pack(&user), "the same bytes as the user packed");
                    prop_assert_eq!(made.unpack(), user);
                }
                (Err(back), None) => prop_assert_eq!(back, packed, "given back untouched"),
                (made, user) => prop_assert!(false, "in place: {made:?}, applied: {user:?}"),
            }
        }
    }
}
