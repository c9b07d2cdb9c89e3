//! `users/delta` and `groups/delta` as Microsoft documents them ("Use delta query to track
//! changes in Microsoft Graph data", "Get incremental changes for users", "… for groups"),
//! strict by default (see [`crate::fidelity::Fidelity`]): partial updated objects, unset
//! properties left out, soft-deleted objects hidden from membership reports, large groups
//! split over entries and pages, repeated objects, no order within a page, empty pages
//! with a `nextLink`, hidden restores and replication delay.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use axum::http::{StatusCode, header};
use serde_json::{Map, Value, json};

use crate::graph_api::{
    DEFAULT_USER_PROPERTIES, USER_PROPERTIES, canonical_user_property, context, decode_token, encode_token,
    parse_select,
};
use crate::http::{GraphError, Request};
use crate::sim::{Sim, SimState};
use crate::tenant::{History, ObjectKind, SimGroup, SimUser};

const DEFAULT_DELTA_PAGE: usize = 200;

#[derive(Clone, Copy, PartialEq)]
pub enum DeltaKind {
    Users,
    Groups,
}

impl DeltaKind {
    fn tag(self) -> &'static str {
        match self {
            DeltaKind::Users => "du",
            DeltaKind::Groups => "dg",
        }
    }

    fn resource(self) -> &'static str {
        match self {
            DeltaKind::Users => "users",
            DeltaKind::Groups => "groups",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Where a delta round stands: changes with sequence in `(from, to]`, objects after
/// `after` (and, for a group split over entries, after its entry `chunk`).
struct Round {
    from: u64,
    to: u64,
    after: String,
    chunk: Option<usize>,
    select: Option<Vec<String>>,
    /// `Prefer: return=minimal`: only what changed.
    minimal: bool,
}

impl Round {
    fn contains(&self, seq: u64) -> bool {
        seq > self.from && seq <= self.to
    }

    fn touches(&self, history: &History) -> bool {
        history.any_in(self.from, self.to)
    }

    fn first(&self) -> bool {
        self.from == 0
    }

    fn select_joined(&self) -> String {
        self.select.as_ref().map(|s| s.join(",")).unwrap_or_default()
    }
}

fn invalid_token() -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "syncStateNotFound", "The delta token is not valid: syncStateNotFound")
}

pub fn delta(sim: &Sim, request: &Request, kind: DeltaKind) -> Result<Value, GraphError> {
    let (tag, resource) = (kind.tag(), kind.resource());
    let minimal = request
        .header("prefer")
        .is_some_and(|p| p.split(',').any(|part| part.trim().eq_ignore_ascii_case("return=minimal")));
    let mut state = sim.lock();
    let token = request.param("$skiptoken").or_else(|| request.param("$deltatoken"));
    let starts_round;
    let round = match token.as_deref() {
        None => {
            let select = parse_select(request, (kind == DeltaKind::Users).then_some(USER_PROPERTIES))?;
            starts_round = true;
            Round { from: 0, to: state.dir.seq, after: String::new(), chunk: None, select, minimal }
        }
        Some("latest") => {
            let select = request.param("$select").unwrap_or_default();
            let link = format!(
                "{}/v1.0/{resource}/delta?$deltatoken={}",
                sim.urls.graph,
                encode_token(&[tag, &state.dir.seq.to_string(), &select])
            );
            return Ok(json!({"@odata.context": context(sim, resource, None), "@odata.deltaLink": link, "value": []}));
        }
        Some(token) => {
            let parts = decode_token(token).ok_or_else(invalid_token)?;
            let (round, issued) = match parts.as_slice() {
                // A deltaLink: a new round from `seq` up to now (or, with replication
                // delay, up to where the directory stood when the previous round began).
                [t, seq, sel] if t == tag => {
                    let from: u64 = seq.parse().map_err(|_| invalid_token())?;
                    let now = state.dir.seq;
                    let to = if state.dir.fidelity.replication_delay {
                        let lagging = state.delta_lag[kind.index()].clamp(from, now);
                        state.delta_lag[kind.index()] = now;
                        lagging
                    } else {
                        now
                    };
                    starts_round = true;
                    (Round { from, to, after: String::new(), chunk: None, select: split(sel), minimal }, from)
                }
                // A nextLink inside a round.
                [t, from, to, after, chunk, sel] if *t == format!("{tag}p") => {
                    let (Ok(from), Ok(to)) = (from.parse(), to.parse()) else {
                        return Err(invalid_token());
                    };
                    starts_round = false;
                    let chunk = chunk.parse().ok();
                    (Round { from, to, after: after.clone(), chunk, select: split(sel), minimal }, to)
                }
                _ => return Err(invalid_token()),
            };
            if issued < state.delta_floor {
                let mut err = GraphError::new(
                    StatusCode::GONE,
                    "resyncRequired",
                    "The delta token is no longer valid; synchronize again from the initial delta request.",
                );
                err.headers.push((header::LOCATION, format!("{}/v1.0/{resource}/delta", sim.urls.graph)));
                return Err(err);
            }
            round
        }
    };

    let next_link = |after: &str, chunk: Option<usize>, round: &Round| {
        let chunk = chunk.map(|c| c.to_string()).unwrap_or_default();
        let token = encode_token(&[
            &format!("{tag}p"),
            &round.from.to_string(),
            &round.to.to_string(),
            after,
            &chunk,
            &round.select_joined(),
        ]);
        format!("{}/v1.0/{resource}/delta?$skiptoken={token}", sim.urls.graph)
    };
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(context(sim, resource, round.select.as_deref())));
    if starts_round && state.dir.fidelity.empty_pages {
        // Graph may answer a page with nothing in it and a link to go on.
        body.insert("@odata.nextLink".into(), json!(next_link("", None, &round)));
        body.insert("value".into(), json!([]));
        return Ok(Value::Object(body));
    }

    let page_size = request
        .header("prefer")
        .and_then(|p| p.split(',').find_map(|part| part.trim().strip_prefix("odata.maxpagesize=")))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .map_or(DEFAULT_DELTA_PAGE, |n| n.clamp(1, 999));
    let page_size = match state.dir.fidelity.page_size_limit {
        0 => page_size,
        limit => page_size.min(limit),
    };
    let page = match kind {
        DeltaKind::Users => user_page(&state, &round, page_size),
        DeltaKind::Groups => group_page(&state, &round, page_size),
    };
    let mut value = page.value;
    if state.dir.fidelity.shuffle {
        shuffle(&mut value, state.next_random());
    }
    drop(state);
    match page.next {
        Some((after, chunk)) => {
            body.insert("@odata.nextLink".into(), json!(next_link(&after, chunk, &round)));
        }
        None => {
            let token = encode_token(&[tag, &round.to.to_string(), &round.select_joined()]);
            body.insert(
                "@odata.deltaLink".into(),
                json!(format!("{}/v1.0/{resource}/delta?$deltatoken={token}", sim.urls.graph)),
            );
        }
    }
    body.insert("value".into(), Value::Array(value));
    Ok(Value::Object(body))
}

fn split(sel: &str) -> Option<Vec<String>> {
    (!sel.is_empty()).then(|| sel.split(',').map(str::to_owned).collect())
}

/// A page's objects, and where the next page starts (none: the round ends here).
struct Page {
    value: Vec<Value>,
    next: Option<(String, Option<usize>)>,
}

fn removed(id: &str, reason: &str) -> Value {
    json!({"id": id, "@removed": {"reason": reason}})
}

/// Up to `limit` keys of `map` after `after` that the round reports.
fn keys_in_round<'a, V>(
    map: &'a BTreeMap<String, V>,
    after: &str,
    limit: usize,
    in_round: impl Fn(&V) -> bool,
) -> impl Iterator<Item = &'a str> {
    map.range::<str, _>((Bound::Excluded(after), Bound::Unbounded))
        .filter(move |(_, v)| in_round(v))
        .map(|(k, _)| k.as_str())
        .take(limit)
}

fn user_page(state: &SimState, round: &Round, page_size: usize) -> Page {
    let dir = &state.dir;
    let mut ids: BTreeSet<&str> = BTreeSet::new();
    ids.extend(keys_in_round(&dir.users, &round.after, page_size + 1, |u| round.touches(&u.history)));
    // Soft-deleted users, even in a first round (Graph's own example shows `@removed` there).
    ids.extend(keys_in_round(&dir.deleted_users, &round.after, page_size + 1, |u| round.touches(&u.history)));
    if !round.first() {
        ids.extend(keys_in_round(&dir.purged_users, &round.after, page_size + 1, |seq| round.contains(*seq)));
    }
    let more = ids.len() > page_size;
    let ids: Vec<&str> = ids.into_iter().take(page_size).collect();
    let mut value = Vec::with_capacity(ids.len() + 1);
    if dir.fidelity.duplicates && !round.after.is_empty() {
        value.extend(user_entry(state, &round.after, round));
    }
    value.extend(ids.iter().filter_map(|id| user_entry(state, id, round)));
    let next = more.then(|| (ids.last().map(|s| (*s).to_owned()).unwrap_or_default(), None));
    Page { value, next }
}

/// How `users/delta` reports one user in this round, if at all.
fn user_entry(state: &SimState, id: &str, round: &Round) -> Option<Value> {
    let dir = &state.dir;
    if let Some(user) = dir.users.get(id).filter(|u| round.touches(&u.history)) {
        if dir.fidelity.hide_restores && !round.first() && user.restored_at == Some(user.history.last()) {
            // The restore is not reported: a round that also covers the deletion still says deleted.
            return user.deleted_at.filter(|d| round.contains(*d)).map(|_| removed(id, "changed"));
        }
        return Some(Value::Object(user_delta_value(
            user,
            round,
            dir.fidelity.partial_updates,
            dir.fidelity.omit_unset_properties,
        )));
    }
    if let Some(user) = dir.deleted_users.get(id)
        && round.touches(&user.history)
    {
        return Some(removed(id, "changed"));
    }
    dir.purged_users.get(id).filter(|seq| round.contains(**seq)).map(|_| removed(id, "deleted"))
}

fn user_delta_value(user: &SimUser, round: &Round, partial: bool, omit_unset: bool) -> Map<String, Value> {
    let names: Vec<&str> = match &round.select {
        Some(sel) => sel.iter().map(|p| canonical_user_property(p)).collect(),
        None => DEFAULT_USER_PROPERTIES.to_vec(),
    };
    // A user created or restored in this round is sent whole; an updated one may be sent
    // as what changed since the round's start.
    let whole = round.first() || user.appeared > round.from;
    let mut out = Map::new();
    out.insert("id".into(), json!(user.record.id));
    for name in names {
        let Some(value) = user.record.property(name) else {
            continue;
        };
        let changed = user.changed.get(name).is_some_and(|seq| *seq > round.from);
        let unset = value.is_null() || value == json!([]);
        let include = if whole {
            // Cleared in the round: an explicit null, whatever else.
            changed || !(omit_unset && unset)
        } else if partial || round.minimal {
            changed
        } else {
            changed || !(omit_unset && unset)
        };
        if include {
            out.insert(name.to_owned(), value);
        }
    }
    out
}

fn group_page(state: &SimState, round: &Round, page_size: usize) -> Page {
    let dir = &state.dir;
    let start = (Bound::Included(round.after.as_str()), Bound::Unbounded);
    let mut ids: BTreeSet<&str> = BTreeSet::new();
    ids.extend(dir.groups.range::<str, _>(start).filter(|(_, g)| round.touches(&g.history)).map(|(id, _)| id.as_str()));
    ids.extend(
        dir.deleted_groups
            .range::<str, _>(start)
            .filter(|(_, (_, seq))| round.contains(*seq))
            .map(|(id, _)| id.as_str()),
    );
    if !round.first() {
        ids.extend(
            dir.purged_groups
                .range::<str, _>(start)
                .filter(|(_, seq)| round.contains(**seq))
                .map(|(id, _)| id.as_str()),
        );
    }
    let mut value = Vec::new();
    if dir.fidelity.duplicates && !round.after.is_empty() {
        // The last entry of the page before, once more.
        let mut entries = group_entries(state, &round.after, round);
        let repeat = match round.chunk {
            Some(c) if c < entries.len() => Some(entries.swap_remove(c)),
            _ => entries.pop(),
        };
        value.extend(repeat);
    }
    // The position after the last entry sent: (group, its last entry sent unless it was its last).
    let mut last: Option<(String, Option<usize>)> = None;
    let mut taken = 0;
    for id in ids {
        let entries = group_entries(state, id, round);
        let count = entries.len();
        let first = if id == round.after { round.chunk.map_or(usize::MAX, |c| c + 1) } else { 0 };
        for (chunk, entry) in entries.into_iter().enumerate().skip(first) {
            if taken == page_size {
                return Page { value, next: last };
            }
            value.push(entry);
            taken += 1;
            last = Some((id.to_owned(), (chunk + 1 < count).then_some(chunk)));
            // A group split over entries always goes on over the next page.
            if chunk == 0 && count > 1 {
                return Page { value, next: last };
            }
        }
    }
    Page { value, next: None }
}

/// The entries `groups/delta` sends for one group in this round (none when it is not in it).
fn group_entries(state: &SimState, id: &str, round: &Round) -> Vec<Value> {
    let dir = &state.dir;
    if let Some(group) = dir.groups.get(id).filter(|g| round.touches(&g.history)) {
        return present_group_entries(state, id, group, round);
    }
    if let Some((group, _)) = dir.deleted_groups.get(id)
        && round.touches(&group.history)
    {
        return vec![removed(id, "changed")];
    }
    match dir.purged_groups.get(id) {
        Some(seq) if !round.first() && round.contains(*seq) => vec![removed(id, "deleted")],
        _ => Vec::new(),
    }
}

fn present_group_entries(state: &SimState, id: &str, group: &SimGroup, round: &Round) -> Vec<Value> {
    let dir = &state.dir;
    let with_members = round.select.as_ref().is_none_or(|s| s.iter().any(|x| x.eq_ignore_ascii_case("members")));
    let head = || {
        let mut out = Map::new();
        out.insert("id".into(), json!(id));
        out.insert("displayName".into(), json!(group.display_name));
        out
    };
    if !with_members {
        return vec![Value::Object(head())];
    }
    let member_type = |m: &str| dir.kind_of(m).unwrap_or(ObjectKind::User).odata_type();
    let members: Vec<Value> = if round.first() {
        group
            .members
            .iter()
            .filter(|m| dir.is_visible(m))
            .map(|m| json!({"@odata.type": member_type(m), "id": m}))
            .collect()
    } else {
        let mut net: BTreeMap<&str, bool> = BTreeMap::new();
        for change in dir.member_log.iter().filter(|c| c.group_id == id && round.contains(c.seq)) {
            net.insert(&change.member_id, change.added);
        }
        net.into_iter()
            // A soft-deleted member's memberships are not reported while it is deleted.
            .filter(|(m, added)| !added || dir.is_visible(m))
            .map(|(m, added)| {
                if added {
                    json!({"@odata.type": member_type(m), "id": m})
                } else {
                    json!({"@odata.type": member_type(m), "id": m, "@removed": {"reason": "deleted"}})
                }
            })
            .collect()
    };
    let per_entry = match dir.fidelity.group_members_per_entry {
        0 => members.len().max(1),
        n => n,
    };
    if members.is_empty() {
        let mut out = head();
        out.insert("members@delta".into(), json!([]));
        return vec![Value::Object(out)];
    }
    members
        .chunks(per_entry)
        .enumerate()
        .map(|(i, chunk)| {
            // Later entries of the same group carry only its id and more members.
            let mut out = if i == 0 { head() } else { Map::from_iter([("id".to_owned(), json!(id))]) };
            out.insert("members@delta".into(), Value::Array(chunk.to_vec()));
            Value::Object(out)
        })
        .collect()
}

/// A deterministic Fisher-Yates shuffle (xorshift), so runs are reproducible.
pub(crate) fn shuffle(items: &mut [Value], seed: u64) {
    let mut x = seed | 1;
    for i in (1..items.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        items.swap(i, (x % (i as u64 + 1)) as usize);
    }
}
