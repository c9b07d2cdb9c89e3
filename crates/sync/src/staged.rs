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

use std::fs::File;
use std::io::{self, BufReader, BufWriter, ErrorKind, Read, Seek, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;

use safegpt_core::{PackedPatch, PackedUser, RemoteUser};
use safegpt_graph::UserDelta;

use crate::read::{Entry, fold};

/// Entries held before a run is folded and written: ~10 MB of a typical tenant's users.
pub(crate) const RUN_ENTRIES: usize = 65_536;

/// A first round's entry: packed, for a first round holds every user of the tenant (and
/// boxed ids keep it as small as a packed user, which it becomes in place).
#[derive(Debug, PartialEq)]
pub(crate) enum Packed {
    Present(PackedPatch),
    Removed { id: Box<str>, permanent: bool },
}

impl From<UserDelta> for Packed {
    fn from(entry: UserDelta) -> Self {
        match entry {
            UserDelta::Present(patch) => Packed::Present(PackedPatch::pack(&patch)),
            UserDelta::Removed { id, permanent } => Packed::Removed { id: id.into_boxed_str(), permanent },
        }
    }
}

impl Entry for Packed {
    fn id(&self) -> &str {
        match self {
            Packed::Present(patch) => patch.id(),
            Packed::Removed { id, .. } => id,
        }
    }

    fn lay_over(&mut self, later: &mut Self) {
        match (self, later) {
            (Packed::Present(known), Packed::Present(later)) => {
                let mut merged = known.unpack();
                merged.merge(later.unpack());
                *known = PackedPatch::pack(&merged);
            }
            (known, later) => std::mem::swap(known, later),
        }
    }
}

/// The kinds of a run's records.
const PRESENT: u8 = 0;
const DELETED_SOFTLY: u8 = 1;
const DELETED_FOR_GOOD: u8 = 2;

fn corrupt(what: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, format!("a staged file of the full read holds {what}"))
}

/// An unlinked file in the temporary directory.
fn staging_file() -> io::Result<File> {
    tempfile::tempfile()
}

fn write_record(out: &mut impl Write, kind: u8, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| corrupt("an entry over 4 GB"))?;
    out.write_all(&[kind])?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(bytes)
}

/// A record's kind and bytes, or `None` at the end of the file.
fn read_record(input: &mut impl Read) -> io::Result<Option<(u8, Box<[u8]>)>> {
    let mut head = [0u8; 5];
    match input.read_exact(&mut head[..1]) {
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    input.read_exact(&mut head[1..])?;
    let len = u32::from_le_bytes(head[1..].try_into().expect("four bytes")) as usize;
    let mut bytes = vec![0u8; len].into_boxed_slice();
    input.read_exact(&mut bytes)?;
    Ok(Some((head[0], bytes)))
}

/// A `users/delta` round's entries, written in folded runs as they arrive.
pub(crate) struct Runs {
    files: Vec<File>,
    entries: Vec<Packed>,
    run_entries: usize,
}

impl Runs {
    pub(crate) fn new(run_entries: usize) -> Self {
        Runs { files: Vec::new(), entries: Vec::new(), run_entries: run_entries.max(1) }
    }

    pub(crate) fn push(&mut self, entry: Packed) -> io::Result<()> {
        self.entries.push(entry);
        if self.entries.len() >= self.run_entries { self.spill() } else { Ok(()) }
    }

    /// Folds the entries held and writes them, in id order, as the next run.
    fn spill(&mut self) -> io::Result<()> {
        let entries = fold(std::mem::take(&mut self.entries));
        let mut out = BufWriter::new(staging_file()?);
        for entry in &entries {
            match entry {
                Packed::Present(patch) => write_record(&mut out, PRESENT, patch.as_bytes())?,
                Packed::Removed { id, permanent } => {
                    let kind = if *permanent { DELETED_FOR_GOOD } else { DELETED_SOFTLY };
                    write_record(&mut out, kind, id.as_bytes())?;
                }
            }
        }
        let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.rewind()?;
        self.files.push(file);
        Ok(())
    }

    /// The round's entries folded to one per user, handed to `each` in id order.
    pub(crate) fn merge<E: From<io::Error>>(mut self, mut each: impl FnMut(Packed) -> Result<(), E>) -> Result<(), E> {
        if !self.entries.is_empty() {
            self.spill()?;
        }
        let mut runs: Vec<RunReader> = self.files.into_iter().map(|f| RunReader(BufReader::new(f))).collect();
        let mut heads: Vec<Option<Packed>> = Vec::with_capacity(runs.len());
        for run in &mut runs {
            heads.push(run.next()?);
        }
        loop {
            // The earliest run among those whose head has the least id.
            let mut first: Option<usize> = None;
            for (i, head) in heads.iter().enumerate() {
                if let Some(head) = head
                    && first.is_none_or(|f| head.id() < heads[f].as_ref().map_or("", Entry::id))
                {
                    first = Some(i);
                }
            }
            let Some(first) = first else { return Ok(()) };
            let mut folded = std::mem::replace(&mut heads[first], runs[first].next()?).expect("a head");
            for later in first + 1..heads.len() {
                if heads[later].as_ref().is_some_and(|head| head.id() == folded.id()) {
                    let mut entry = std::mem::replace(&mut heads[later], runs[later].next()?).expect("a head");
                    folded.lay_over(&mut entry);
                }
            }
            each(folded)?;
        }
    }
}

/// A run's entries read back in order, each checked.
struct RunReader(BufReader<File>);

impl RunReader {
    fn next(&mut self) -> io::Result<Option<Packed>> {
        let Some((kind, bytes)) = read_record(&mut self.0)? else { return Ok(None) };
        let id =
            || String::from_utf8(bytes.to_vec()).map(String::into_boxed_str).map_err(|_| corrupt("an id not UTF-8"));
        Ok(Some(match kind {
            PRESENT => Packed::Present(PackedPatch::from_bytes(bytes).ok_or_else(|| corrupt("a malformed entry"))?),
            DELETED_SOFTLY => Packed::Removed { id: id()?, permanent: false },
            DELETED_FOR_GOOD => Packed::Removed { id: id()?, permanent: true },
            _ => return Err(corrupt("an unknown kind of entry")),
        }))
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
        write_record(&mut self.out, PRESENT, bytes)?;
        self.out.write_all(&fingerprint.to_le_bytes())?;
        self.written += 1 + 4 + bytes.len() as u64 + 8;
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
        let mut users = Vec::new();
        while let Some((kind, bytes)) = read_record(&mut input)? {
            let mut fingerprint = [0u8; 8];
            input.read_exact(&mut fingerprint)?;
            let user = PackedUser::from_staged(bytes, u64::from_le_bytes(fingerprint))
                .filter(|_| kind == PRESENT)
                .ok_or_else(|| corrupt("a malformed user"))?;
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
        ];
        let folded: Vec<Packed> = fold(entries.iter().cloned().map(Packed::from).collect());
        for run_entries in 1..=entries.len() + 1 {
            let mut runs = Runs::new(run_entries);
            for entry in entries.iter().cloned() {
                runs.push(Packed::from(entry)).unwrap();
            }
            let mut merged = Vec::new();
            runs.merge(|entry| {
                merged.push(entry);
                Ok::<_, io::Error>(())
            })
            .unwrap();
            assert_eq!(merged, folded, "runs of {run_entries}");
        }
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
        staged.file.write_all_at(&[0xff], 6).unwrap();
        assert_eq!(staged.load(&staged.slices()[0]).unwrap_err().kind(), ErrorKind::InvalidData);
    }
}
