//! A full read's users staged on disk as the pages arrive, so that memory holds a run of
//! entries and a slice of users, not the tenant.
//!
//! A `users/delta` round's entries are gathered in runs of at most [`RUN_ENTRIES`]; each
//! run is folded (one entry per user, later reports laid over earlier ones) and written, in
//! id order, to a file. When the round has ended the runs are merged by id: every entry of
//! a run arrived before every entry of the next one, so reports about one user fold in run
//! order, as they would have in one vector. The merged users are written in id order to one
//! more file, with a mark where each slice begins; a full read plans, writes and copies them
//! a slice at a time from there.
//!
//! The files are made in the temporary directory (`TMPDIR`) already unlinked (`O_TMPFILE`
//! where the file system has it): a crash leaves nothing behind, and nothing else can open
//! them. Records are a kind, a length and the bytes; every record is checked when read back.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, ErrorKind, Read, Seek, Write};
use std::marker::PhantomData;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use safegpt_core::{MemberKind, Membership, PackedPatch, PackedUser, RemoteUser, Scope};
use safegpt_graph::UserDelta;

use crate::read::{Entry, fold};

/// `users/delta` entries held before a run is folded and written: ~10 MB of a typical
/// tenant's users.
pub(crate) const RUN_ENTRIES: usize = 65_536;
/// `members@delta` entries held before a run is written: ~10 MB.
pub(crate) const MEMBER_RUN_ENTRIES: usize = 131_072;
/// Ids of covered users held before a run is written: ~8 MB.
const COVERED_RUN_ENTRIES: usize = 131_072;

/// A first round's entry: packed, for a first round holds every user of the tenant (and
/// boxed ids keep it as small as a packed user, which it becomes in place).
///
/// Entries fold in runs, and the runs fold again when merged, so laying over must give the
/// same whatever the grouping: a report that follows a removal in its run remembers it
/// (`after_removal`), and replaces, rather than completes, what earlier runs reported.
#[derive(Debug, PartialEq)]
pub(crate) enum Packed {
    Present { patch: PackedPatch, after_removal: bool },
    Removed { id: Box<str>, permanent: bool },
}

impl From<UserDelta> for Packed {
    fn from(entry: UserDelta) -> Self {
        match entry {
            UserDelta::Present(patch) => Packed::Present { patch: PackedPatch::pack(&patch), after_removal: false },
            UserDelta::Removed { id, permanent } => Packed::Removed { id: id.into_boxed_str(), permanent },
        }
    }
}

impl Entry for Packed {
    fn id(&self) -> &str {
        match self {
            Packed::Present { patch, .. } => patch.id(),
            Packed::Removed { id, .. } => id,
        }
    }

    fn lay_over(&mut self, later: &mut Self) {
        match (self, later) {
            (Packed::Present { patch: known, .. }, Packed::Present { patch: later, after_removal: false }) => {
                let mut merged = known.unpack();
                merged.merge(later.unpack());
                *known = PackedPatch::pack(&merged);
            }
            // A removal, or a report after one, replaces what is known.
            (known, later) => {
                let revived = matches!((&*known, &*later), (Packed::Removed { .. }, Packed::Present { .. }));
                std::mem::swap(known, later);
                if let Packed::Present { after_removal, .. } = known {
                    *after_removal |= revived;
                }
            }
        }
    }
}

/// What an external sort holds: entries ordered by a key, folded to one per key in the
/// order they arrived, written to and read back from a run's file.
pub(crate) trait Record: Sized {
    /// The order of the keys (`Equal`: the same key).
    fn order(&self, other: &Self) -> Ordering;
    /// `later`, an entry with the same key that arrived later, laid over this one.
    fn fold(&mut self, later: &mut Self);
    /// A run's entries, in arrival order, sorted by key and folded to one per key.
    fn fold_run(entries: Vec<Self>) -> Vec<Self>;
    fn write(&self, out: &mut impl Write) -> io::Result<()>;
    /// The next entry, or `None` at the end of the file.
    fn read(input: &mut impl Read) -> io::Result<Option<Self>>;
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, format!("a staged file of the full read holds {what}"))
}

/// An unlinked file in the temporary directory.
fn staging_file() -> io::Result<File> {
    tempfile::tempfile()
}

fn write_bytes(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| corrupt("an entry over 4 GB"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(bytes)
}

fn read_bytes(input: &mut impl Read) -> io::Result<Box<[u8]>> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize].into_boxed_slice();
    input.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn read_text(input: &mut impl Read) -> io::Result<Box<str>> {
    String::from_utf8(read_bytes(input)?.into_vec()).map(String::into_boxed_str).map_err(|_| corrupt("text not UTF-8"))
}

/// A record's first byte, or `None` at the end of the file.
fn read_kind(input: &mut impl Read) -> io::Result<Option<u8>> {
    let mut kind = [0u8; 1];
    match input.read_exact(&mut kind) {
        Ok(()) => Ok(Some(kind[0])),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// The kinds of a `users/delta` run's records.
const PRESENT: u8 = 0;
const DELETED_SOFTLY: u8 = 1;
const DELETED_FOR_GOOD: u8 = 2;
const PRESENT_AFTER_REMOVAL: u8 = 3;

impl Record for Packed {
    fn order(&self, other: &Self) -> Ordering {
        self.id().cmp(other.id())
    }

    fn fold(&mut self, later: &mut Self) {
        self.lay_over(later);
    }

    fn fold_run(entries: Vec<Self>) -> Vec<Self> {
        fold(entries)
    }

    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let (kind, bytes) = match self {
            Packed::Present { patch, after_removal: false } => (PRESENT, patch.as_bytes()),
            Packed::Present { patch, after_removal: true } => (PRESENT_AFTER_REMOVAL, patch.as_bytes()),
            Packed::Removed { id, permanent: false } => (DELETED_SOFTLY, id.as_bytes()),
            Packed::Removed { id, permanent: true } => (DELETED_FOR_GOOD, id.as_bytes()),
        };
        out.write_all(&[kind])?;
        write_bytes(out, bytes)
    }

    fn read(input: &mut impl Read) -> io::Result<Option<Self>> {
        let Some(kind) = read_kind(input)? else { return Ok(None) };
        Ok(Some(match kind {
            PRESENT | PRESENT_AFTER_REMOVAL => Packed::Present {
                patch: PackedPatch::from_bytes(read_bytes(input)?).ok_or_else(|| corrupt("a malformed entry"))?,
                after_removal: kind == PRESENT_AFTER_REMOVAL,
            },
            DELETED_SOFTLY => Packed::Removed { id: read_text(input)?, permanent: false },
            DELETED_FOR_GOOD => Packed::Removed { id: read_text(input)?, permanent: true },
            _ => return Err(corrupt("an unknown kind of entry")),
        }))
    }
}

/// A `members@delta` entry: the member of a group and what it is (`None`: removed), with
/// its place in its run, which fits where the entry would otherwise be padding.
pub(crate) struct MemberEntry {
    pub group_id: Arc<str>,
    pub member_id: Box<str>,
    pub kind: Option<MemberKind>,
    pub arrival: u32,
}

impl MemberEntry {
    fn edge(&self) -> (&str, &str) {
        (&self.group_id, &self.member_id)
    }
}

impl Record for MemberEntry {
    fn order(&self, other: &Self) -> Ordering {
        self.edge().cmp(&other.edge())
    }

    fn fold(&mut self, later: &mut Self) {
        self.kind = later.kind;
    }

    fn fold_run(mut entries: Vec<Self>) -> Vec<Self> {
        // By edge, then arrival (an unstable sort needs no scratch buffer); the last report
        // of each edge moves into the first, which is kept.
        entries.sort_unstable_by(|a, b| (a.edge(), a.arrival).cmp(&(b.edge(), b.arrival)));
        entries.dedup_by(|later, kept| {
            let same = later.edge() == kept.edge();
            if same {
                kept.kind = later.kind;
            }
            same
        });
        entries
    }

    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let kind = match self.kind {
            None => 0,
            Some(MemberKind::User) => 1,
            Some(MemberKind::Group) => 2,
        };
        out.write_all(&[kind])?;
        write_bytes(out, self.group_id.as_bytes())?;
        write_bytes(out, self.member_id.as_bytes())
    }

    fn read(input: &mut impl Read) -> io::Result<Option<Self>> {
        let Some(kind) = read_kind(input)? else { return Ok(None) };
        let kind = match kind {
            0 => None,
            1 => Some(MemberKind::User),
            2 => Some(MemberKind::Group),
            _ => return Err(corrupt("an unknown kind of member")),
        };
        let group_id: Arc<str> = read_text(input)?.into();
        Ok(Some(MemberEntry { group_id, member_id: read_text(input)?, kind, arrival: 0 }))
    }
}

/// The id of a user the scope covers.
pub(crate) struct CoveredId(pub Box<str>);

impl Record for CoveredId {
    fn order(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }

    fn fold(&mut self, _: &mut Self) {}

    fn fold_run(mut entries: Vec<Self>) -> Vec<Self> {
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, kept| later.0 == kept.0);
        entries
    }

    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&[0])?;
        write_bytes(out, self.0.as_bytes())
    }

    fn read(input: &mut impl Read) -> io::Result<Option<Self>> {
        match read_kind(input)? {
            None => Ok(None),
            Some(0) => Ok(Some(CoveredId(read_text(input)?))),
            Some(_) => Err(corrupt("an unknown kind of id")),
        }
    }
}

/// Entries gathered as they arrive and written in folded runs of at most `run_entries`.
pub(crate) struct Sorter<R> {
    files: Vec<File>,
    entries: Vec<R>,
    run_entries: usize,
}

impl<R: Record> Sorter<R> {
    pub(crate) fn new(run_entries: usize) -> Self {
        Sorter { files: Vec::new(), entries: Vec::new(), run_entries: run_entries.max(1) }
    }

    /// How many entries the current run holds: an entry's place in it.
    pub(crate) fn held(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn push(&mut self, entry: R) -> io::Result<()> {
        self.entries.push(entry);
        if self.entries.len() >= self.run_entries { self.spill() } else { Ok(()) }
    }

    /// Folds the entries held and writes them, in key order, as the next run.
    fn spill(&mut self) -> io::Result<()> {
        let entries = R::fold_run(std::mem::take(&mut self.entries));
        let mut out = BufWriter::new(staging_file()?);
        for entry in &entries {
            entry.write(&mut out)?;
        }
        self.files.push(out.into_inner().map_err(io::IntoInnerError::into_error)?);
        Ok(())
    }

    /// Every entry written: they can now be merged, as often as needed.
    pub(crate) fn finish(mut self) -> io::Result<Sorted<R>> {
        if !self.entries.is_empty() {
            self.spill()?;
        }
        Ok(Sorted { files: self.files, entry: PhantomData })
    }
}

/// The runs of a finished [`Sorter`].
pub(crate) struct Sorted<R> {
    files: Vec<File>,
    entry: PhantomData<fn() -> R>,
}

impl<R: Record> Sorted<R> {
    /// The entries folded to one per key, in key order: reports of one key fold in the
    /// order of their runs, as every entry of a run arrived before every entry of the next.
    pub(crate) fn merge(&self) -> io::Result<Merged<'_, R>> {
        let mut runs = Vec::with_capacity(self.files.len());
        let mut heads = Vec::with_capacity(self.files.len());
        for mut file in &self.files {
            file.rewind()?;
            let mut run = BufReader::new(file);
            heads.push(R::read(&mut run)?);
            runs.push(run);
        }
        Ok(Merged { runs, heads })
    }
}

/// A merge of the runs, read an entry at a time.
pub(crate) struct Merged<'a, R> {
    runs: Vec<BufReader<&'a File>>,
    heads: Vec<Option<R>>,
}

impl<R: Record> Merged<'_, R> {
    pub(crate) fn next(&mut self) -> io::Result<Option<R>> {
        let Merged { runs, heads } = self;
        // The earliest run among those whose head has the least key.
        let mut first: Option<usize> = None;
        for i in 0..heads.len() {
            let (Some(head), least) = (&heads[i], first.and_then(|f| heads[f].as_ref())) else { continue };
            if least.is_none_or(|least| head.order(least) == Ordering::Less) {
                first = Some(i);
            }
        }
        let Some(first) = first else { return Ok(None) };
        let next = R::read(&mut runs[first])?;
        let mut folded = std::mem::replace(&mut heads[first], next).expect("a head");
        for later in first + 1..heads.len() {
            if heads[later].as_ref().is_some_and(|head| head.order(&folded) == Ordering::Equal) {
                let next = R::read(&mut runs[later])?;
                let mut entry = std::mem::replace(&mut heads[later], next).expect("a head");
                folded.fold(&mut entry);
            }
        }
        Ok(Some(folded))
    }
}

/// The memberships a full read gathered: a `groups/delta` round's member entries, staged.
pub(crate) struct StagedMemberships {
    sorted: Sorted<MemberEntry>,
    /// The groups that exist at the round's end, in id order.
    groups: Vec<String>,
}

impl StagedMemberships {
    pub(crate) fn new(sorted: Sorted<MemberEntry>, groups: Vec<String>) -> Self {
        StagedMemberships { sorted, groups }
    }

    pub(crate) fn groups(&self) -> &[String] {
        &self.groups
    }

    /// The memberships that hold at the round's end, by group and member: the last report
    /// of each edge wins, and only groups that still exist keep members.
    pub(crate) fn read(&self) -> io::Result<Memberships<'_>> {
        Ok(Memberships { merged: self.sorted.merge()?, groups: &self.groups })
    }

    /// The users `scope` covers, in id order, staged (`None`: every user is covered).
    pub(crate) fn covered(&self, scope: &Scope) -> io::Result<Option<Sorted<CoveredId>>> {
        if scope.is_whole_tenant() {
            return Ok(None);
        }
        // The edges between groups are few; the groups they nest under the scope's, fewer.
        let mut nested = Vec::new();
        let mut all = self.read()?;
        while let Some(m) = all.next()? {
            if m.kind == MemberKind::Group {
                nested.push((m.group_id, m.member_id));
            }
        }
        let covering = scope.groups_covered(nested.iter().map(|(g, m)| (&**g, &**m)));
        let mut covered = Sorter::new(COVERED_RUN_ENTRIES);
        let mut all = self.read()?;
        while let Some(m) = all.next()? {
            if m.kind == MemberKind::User && covering.contains(&*m.group_id) {
                covered.push(CoveredId(m.member_id))?;
            }
        }
        covered.finish().map(Some)
    }
}

/// The memberships of a [`StagedMemberships`], read one at a time.
pub(crate) struct Memberships<'a> {
    merged: Merged<'a, MemberEntry>,
    groups: &'a [String],
}

impl Memberships<'_> {
    pub(crate) fn next(&mut self) -> io::Result<Option<Membership>> {
        while let Some(MemberEntry { group_id, member_id, kind, .. }) = self.merged.next()? {
            let exists = || self.groups.binary_search_by(|g| g.as_str().cmp(&group_id)).is_ok();
            if let Some(kind) = kind.filter(|_| exists()) {
                return Ok(Some(Membership { group_id, member_id, kind }));
            }
        }
        Ok(None)
    }
}

/// A full read's users, written in strictly increasing id order.
pub(crate) struct UsersWriter {
    out: BufWriter<File>,
    written: u64,
    len: usize,
    slice: usize,
    marks: Vec<(Box<str>, u64)>,
    last_id: String,
}

impl UsersWriter {
    /// Users cut in slices of `slice` users.
    pub(crate) fn new(slice: usize) -> io::Result<Self> {
        Ok(UsersWriter {
            out: BufWriter::new(staging_file()?),
            written: 0,
            len: 0,
            slice: slice.max(1),
            marks: Vec::new(),
            last_id: String::new(),
        })
    }

    pub(crate) fn push(&mut self, user: &PackedUser) -> io::Result<()> {
        let id = user.id();
        if self.len > 0 && id <= self.last_id.as_str() {
            return Err(corrupt(&format!("Entra ids out of order or repeated: {} then {id}", self.last_id)));
        }
        self.last_id.clear();
        self.last_id.push_str(id);
        if self.len.is_multiple_of(self.slice) {
            self.marks.push((id.into(), self.written));
        }
        let (bytes, fingerprint) = user.staged();
        write_bytes(&mut self.out, bytes)?;
        self.out.write_all(&fingerprint.to_le_bytes())?;
        self.written += 4 + bytes.len() as u64 + 8;
        self.len += 1;
        Ok(())
    }

    /// The users written, and `directly` (users read apart, none of them written).
    pub(crate) fn finish(self, directly: Vec<PackedUser>) -> io::Result<StagedUsers> {
        let file = self.out.into_inner().map_err(io::IntoInnerError::into_error)?;
        let mut staged = StagedUsers { file, end: self.written, len: self.len, marks: self.marks, extra: Vec::new() };
        staged.put(directly);
        staged.len += staged.extra.len();
        Ok(staged)
    }
}

/// Every user of the tenant as a full read gathered them, in id order on disk, and the few
/// read apart (directly, or found back when confirming removals) in memory, which win over
/// the same id on disk.
pub(crate) struct StagedUsers {
    file: File,
    end: u64,
    len: usize,
    /// The first id of each slice and where its records begin.
    marks: Vec<(Box<str>, u64)>,
    /// In id order, each once.
    extra: Vec<PackedUser>,
}

/// The users of an id range `[from, to)` (open where `None`): together the ranges cover
/// every id, so a directory user linked to an id Entra no longer has still falls in one.
#[derive(Debug, PartialEq)]
pub(crate) struct SliceBounds<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    records: Range<u64>,
}

impl StagedUsers {
    /// How many users the read gathered.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Puts `users` among the users, in place of the same id.
    pub(crate) fn put(&mut self, users: impl IntoIterator<Item = PackedUser>) {
        for user in users {
            match self.extra.binary_search_by(|u| u.id().cmp(user.id())) {
                Ok(i) => self.extra[i] = user,
                Err(i) => self.extra.insert(i, user),
            }
        }
    }

    /// Puts what Graph said directly about users found back (members of the scope).
    pub(crate) fn take_back(&mut self, back: &[RemoteUser]) {
        self.put(back.iter().map(|user| {
            let mut packed = PackedUser::pack(user);
            packed.cover();
            packed
        }));
    }

    /// The slices, in id order; one open at both ends when there are no users on disk.
    pub(crate) fn slices(&self) -> Vec<SliceBounds<'_>> {
        if self.marks.is_empty() {
            return vec![SliceBounds { from: None, to: None, records: 0..self.end }];
        }
        (0..self.marks.len())
            .map(|i| SliceBounds {
                from: (i > 0).then(|| &*self.marks[i].0),
                to: self.marks.get(i + 1).map(|next| &*next.0),
                records: self.marks[i].1..self.marks.get(i + 1).map_or(self.end, |next| next.1),
            })
            .collect()
    }

    /// A slice's users, in id order.
    pub(crate) fn load(&self, slice: &SliceBounds<'_>) -> io::Result<Vec<PackedUser>> {
        let mut bytes = vec![0u8; (slice.records.end - slice.records.start) as usize];
        self.file.read_exact_at(&mut bytes, slice.records.start)?;
        let mut input = bytes.as_slice();
        let in_slice = |id: &str| slice.from.is_none_or(|from| id >= from) && slice.to.is_none_or(|to| id < to);
        let mut extra = self.extra.iter().filter(|u| in_slice(u.id())).peekable();
        let mut users: Vec<PackedUser> = Vec::new();
        while !input.is_empty() {
            let bytes = read_bytes(&mut input)?;
            let mut fingerprint = [0u8; 8];
            input.read_exact(&mut fingerprint)?;
            let user = PackedUser::from_staged(bytes, u64::from_le_bytes(fingerprint))
                .ok_or_else(|| corrupt("a malformed user"))?;
            // Bytes damaged on disk could move a user out of its place, or its slice.
            if !in_slice(user.id()) || users.last().is_some_and(|last| last.id() >= user.id()) {
                return Err(corrupt("a user out of order"));
            }
            while let Some(before) = extra.next_if(|e| e.id() < user.id()) {
                users.push(before.clone());
            }
            match extra.next_if(|e| e.id() == user.id()) {
                Some(instead) => users.push(instead.clone()),
                None => users.push(user),
            }
        }
        users.extend(extra.cloned());
        Ok(users)
    }
}

#[cfg(test)]
mod tests {
    use safegpt_core::{UserPatch, UserType};

    use super::*;

    fn user(id: &str, name: &str) -> RemoteUser {
        RemoteUser {
            id: id.into(),
            user_principal_name: format!("{id}@contoso.com"),
            mail: None,
            display_name: Some(name.into()),
            given_name: None,
            surname: None,
            job_title: None,
            department: None,
            account_enabled: true,
            user_type: UserType::Member,
            other_mail: None,
        }
    }

    fn whole(id: &str, name: &str) -> UserDelta {
        UserDelta::Present(UserPatch {
            id: id.into(),
            user_principal_name: Some(Some(format!("{id}@contoso.com"))),
            display_name: Some(Some(name.into())),
            account_enabled: Some(Some(true)),
            user_type: Some(Some(UserType::Member)),
            ..UserPatch::default()
        })
    }

    fn titled(id: &str, title: &str) -> UserDelta {
        UserDelta::Present(UserPatch { id: id.into(), job_title: Some(Some(title.into())), ..UserPatch::default() })
    }

    fn removed(id: &str, permanent: bool) -> UserDelta {
        UserDelta::Removed { id: id.into(), permanent }
    }

    fn merged<R: Record>(entries: impl IntoIterator<Item = R>, run_entries: usize) -> Vec<R> {
        let mut sorter = Sorter::new(run_entries);
        for entry in entries {
            sorter.push(entry).unwrap();
        }
        let sorted = sorter.finish().unwrap();
        let mut merged = sorted.merge().unwrap();
        let mut all = Vec::new();
        while let Some(entry) = merged.next().unwrap() {
            all.push(entry);
        }
        all
    }

    #[test]
    fn runs_merge_as_one_round_folds_whatever_the_run_size() {
        let entries = vec![
            whole("u5", "E"),
            whole("u1", "A"),
            removed("u3", false),
            titled("u1", "Clerk"),
            whole("u3", "C"),
            removed("u5", true),
            whole("u2", "B"),
            titled("u2", "Boss"),
            removed("u4", false),
            titled("u1", "Chief"),
            // Present, then removed and reported again in part: the part alone is left.
            whole("u6", "F"),
            removed("u6", false),
            titled("u6", "Cook"),
        ];
        let folded: Vec<Packed> = fold(entries.iter().cloned().map(Packed::from).collect());
        assert!(
            matches!(folded.last(), Some(Packed::Present { patch, .. }) if patch.unpack().display_name.is_none()),
            "what a removed user was is not laid under its later report"
        );
        for run_entries in 1..=entries.len() + 1 {
            let all = merged(entries.iter().cloned().map(Packed::from), run_entries);
            assert_eq!(all, folded, "runs of {run_entries}");
        }
        // The same, twice: a merge can be read again.
        let mut sorter = Sorter::new(3);
        entries.iter().cloned().try_for_each(|e| sorter.push(Packed::from(e))).unwrap();
        let sorted = sorter.finish().unwrap();
        for _ in 0..2 {
            let mut merged = sorted.merge().unwrap();
            let mut n = 0;
            while merged.next().unwrap().is_some() {
                n += 1;
            }
            assert_eq!(n, folded.len());
        }
    }

    proptest::proptest! {
        #[test]
        fn any_round_merges_as_it_folds(
            picks in proptest::collection::vec((0..3usize, 0..4u8), 0..40),
            run_entries in 1..12usize,
        ) {
            let entries: Vec<UserDelta> = picks
                .iter()
                .enumerate()
                .map(|(n, (id, kind))| {
                    let id = format!("u{id}");
                    match kind {
                        0 => whole(&id, &format!("name {n}")),
                        1 => titled(&id, &format!("title {n}")),
                        2 => removed(&id, false),
                        _ => removed(&id, true),
                    }
                })
                .collect();
            let folded: Vec<Packed> = fold(entries.iter().cloned().map(Packed::from).collect());
            proptest::prop_assert_eq!(merged(entries.into_iter().map(Packed::from), run_entries), folded);
        }
    }

    #[test]
    fn member_entries_merge_to_the_memberships_at_the_rounds_end() {
        const G: &str = "11111111-1111-4111-8111-111111111111";
        const H: &str = "22222222-2222-4222-8222-222222222222";
        let (g, h, gone): (Arc<str>, Arc<str>, Arc<str>) =
            (G.into(), H.into(), "33333333-3333-4333-8333-333333333333".into());
        let (user, group) = (Some(MemberKind::User), Some(MemberKind::Group));
        let entries = [
            (&g, "u1", user),
            (&h, "u2", None),
            (&g, "u2", user),
            (&gone, "u1", user),
            (&h, "u2", user),
            (&g, "u1", None),
            (&g, H, group),
            (&g, "u3", None),
            (&h, "u1", user),
            (&h, "u1", user),
        ];
        for run_entries in 1..=entries.len() + 1 {
            let mut sorter = Sorter::new(run_entries);
            for (group_id, member, kind) in entries.iter().cloned() {
                let arrival = sorter.held() as u32;
                let entry = MemberEntry { group_id: group_id.clone(), member_id: member.into(), kind, arrival };
                sorter.push(entry).unwrap();
            }
            let staged = StagedMemberships::new(sorter.finish().unwrap(), vec![G.into(), H.into()]);
            let mut read = staged.read().unwrap();
            let mut held = Vec::new();
            while let Some(m) = read.next().unwrap() {
                held.push((m.group_id.to_string(), m.member_id.to_string(), m.kind));
            }
            let expect = [
                (G, H, MemberKind::Group),
                (G, "u2", MemberKind::User),
                (H, "u1", MemberKind::User),
                (H, "u2", MemberKind::User),
            ]
            .map(|(g, m, k)| (g.to_owned(), m.to_owned(), k));
            assert_eq!(
                held, expect,
                "runs of {run_entries}: added then removed: gone; removed then added: held; repeated: once; \
                 a deleted group: no members"
            );
            let group_ids = vec![safegpt_core::GroupId::parse(G).unwrap()];
            let scope = Scope::new(&safegpt_core::Settings { group_ids, ..Default::default() });
            let covered = staged.covered(&scope).unwrap().unwrap();
            let ids: Vec<String> = merged_ids(&covered);
            assert_eq!(ids, ["u1", "u2"], "u2 in G, u1 and u2 in H nested in G, each once");
        }
    }

    fn merged_ids(covered: &Sorted<CoveredId>) -> Vec<String> {
        let mut merged = covered.merge().unwrap();
        let mut ids = Vec::new();
        while let Some(CoveredId(id)) = merged.next().unwrap() {
            ids.push(id.into_string());
        }
        ids
    }

    #[test]
    fn staged_users_come_back_by_slice_the_ones_read_apart_winning() {
        let ids = ["a", "c", "e", "g", "i"];
        for size in 1..=6 {
            let mut writer = UsersWriter::new(size).unwrap();
            for id in ids {
                writer.push(&PackedUser::pack(&user(id, "disk"))).unwrap();
            }
            assert!(writer.push(&PackedUser::pack(&user("i", "again"))).is_err(), "repeated ids refused");
            let mut staged = writer.finish(vec![PackedUser::pack(&user("b", "apart"))]).unwrap();
            staged.take_back(&[user("e", "back"), user("z", "back")]);
            assert_eq!(staged.len(), 6);
            let slices = staged.slices();
            assert_eq!(slices.len(), ids.len().div_ceil(size));
            assert_eq!((slices[0].from, slices.last().unwrap().to), (None, None), "open at both ends");
            for pair in slices.windows(2) {
                assert_eq!(pair[0].to, pair[1].from, "the ranges meet");
            }
            let loaded: Vec<PackedUser> = slices.iter().flat_map(|s| staged.load(s).unwrap()).collect();
            let seen: Vec<(String, Option<String>, bool)> =
                loaded.iter().map(|u| (u.id().to_owned(), u.unpack().display_name, u.covered())).collect();
            let expect = [("a", "disk"), ("b", "apart"), ("c", "disk"), ("e", "back"), ("g", "disk"), ("i", "disk")];
            let mut expect: Vec<(String, Option<String>, bool)> =
                expect.iter().map(|(id, name)| (id.to_string(), Some(name.to_string()), *name == "back")).collect();
            expect.push(("z".into(), Some("back".into()), true));
            assert_eq!(seen, expect, "slices of {size}");
        }
        let empty = UsersWriter::new(3).unwrap().finish(vec![PackedUser::pack(&user("b", "apart"))]).unwrap();
        let slices = empty.slices();
        assert_eq!(slices.iter().map(|s| (s.from, s.to)).collect::<Vec<_>>(), [(None, None)], "one slice, every id");
        assert_eq!(empty.load(&slices[0]).unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_staged_file_is_refused_not_read_as_users() {
        let mut writer = UsersWriter::new(10).unwrap();
        writer.push(&PackedUser::pack(&user("a", "A"))).unwrap();
        let staged = writer.finish(Vec::new()).unwrap();
        let slice = &staged.slices()[0];
        // The id's tag (after the length and the flags), then the flags.
        staged.file.write_all_at(&[0xff], 5).unwrap();
        assert_eq!(staged.load(slice).unwrap_err().kind(), ErrorKind::InvalidData);
        staged.file.write_all_at(&[3], 5).unwrap();
        staged.load(slice).unwrap();
        staged.file.write_all_at(&[0x80 | 0x2a], 4).unwrap();
        assert_eq!(staged.load(slice).unwrap_err().kind(), ErrorKind::InvalidData, "flags no user has");
    }
}
