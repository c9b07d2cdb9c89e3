//! How strictly graph-sim plays Microsoft Graph. Every switch defaults to what Microsoft
//! documents (or what Graph's users report it doing), so every test meets the strict
//! service unless it turns a behaviour off on purpose. Set in the tenant file
//! (`"fidelity": {…}`) or replaced at run time with `PUT /_sim/fidelity`.
//! `docs/graph-fidelity.md` names the Microsoft page behind each switch.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Fidelity {
    /// Later delta rounds send an updated user as its id and the properties that changed
    /// since the round's start ("at least the properties that have been updated").
    /// `Prefer: return=minimal` does this whatever the switch says.
    pub partial_updates: bool,
    /// Properties that were never set are left out of delta entries instead of `null`.
    pub omit_unset_properties: bool,
    /// Entra's soft delete: a deleted user or group keeps its memberships, hidden from
    /// member lists and from `groups/delta`, and gets them back on restore. Off: a delete
    /// drops the memberships (reported), and a restore comes back without them.
    pub soft_delete_keeps_memberships: bool,
    /// A group's `members@delta` is split into entries of at most this many members, and a
    /// split group always continues on the next page (0: never split).
    pub group_members_per_entry: usize,
    /// At most this many objects per delta page, whatever `Prefer: odata.maxpagesize`
    /// asks (a preference Graph may not honour); 0: as asked.
    pub page_size_limit: usize,
    /// Every page after the first repeats the last object of the page before.
    pub duplicates: bool,
    /// Objects come in no particular order within a page.
    pub shuffle: bool,
    /// Every round starts with an empty page that carries a `nextLink`.
    pub empty_pages: bool,
    /// A restored user is not reported by `users/delta` until it changes again (reported
    /// for `$select` queries: microsoft-graph-docs issue 5821). Off by default.
    pub hide_restores: bool,
    /// A change shows up one delta round late (replication between Graph's replicas).
    /// Off by default. Rounds that start from a delta link lag; first rounds never do.
    pub replication_delay: bool,
}

impl Default for Fidelity {
    fn default() -> Self {
        Fidelity {
            partial_updates: true,
            omit_unset_properties: true,
            soft_delete_keeps_memberships: true,
            group_members_per_entry: 100,
            page_size_limit: 0,
            duplicates: true,
            shuffle: true,
            empty_pages: true,
            hide_restores: false,
            replication_delay: false,
        }
    }
}

impl Fidelity {
    /// graph-sim as it was before it modelled these behaviours: whole objects, memberships
    /// dropped on delete, one ordered entry per object. For tests that isolate something else.
    pub fn lenient() -> Self {
        Fidelity {
            partial_updates: false,
            omit_unset_properties: false,
            soft_delete_keeps_memberships: false,
            group_members_per_entry: 0,
            page_size_limit: 0,
            duplicates: false,
            shuffle: false,
            empty_pages: false,
            hide_restores: false,
            replication_delay: false,
        }
    }
}
