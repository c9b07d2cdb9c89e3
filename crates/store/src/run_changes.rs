//! A run's list of changes: written with the run, read a page at a time (a run of a million
//! changes is never read whole), summarised by action and reason in the run itself, and
//! removed after the retention period while the summary stays.

use std::collections::BTreeMap;

use safegpt_core::Change;
use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};
use uuid::Uuid;

use crate::batch::{Arg, insert_rows};
use crate::{Backend, Result, Store};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RunChange {
    pub seq: i64,
    pub user_id: String,
    pub azure_object_id: Option<String>,
    pub email: String,
    pub action: String,
    pub reason_code: String,
    pub reason: String,
    #[sqlx(try_from = "String")]
    pub fields: JsonList,
}

#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct JsonList(pub Vec<String>);

impl TryFrom<String> for JsonList {
    type Error = serde_json::Error;
    fn try_from(s: String) -> std::result::Result<Self, Self::Error> {
        serde_json::from_str(&s).map(JsonList)
    }
}

/// How many changes of a run share an action and a reason: the run's summary, kept with the
/// run (it outlives the list of changes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCount {
    pub action: String,
    pub reason_code: String,
    /// The reason as administrators read it (e.g. "out of scope: deleted in Entra ID").
    pub reason: String,
    pub count: u64,
}

/// The summary of a plan's changes by action then reason, added to a slice at a time.
#[derive(Debug, Default)]
pub(crate) struct Breakdown(BTreeMap<(&'static str, &'static str, String), u64>);

impl Breakdown {
    pub(crate) fn add(&mut self, changes: &[Change]) {
        for change in changes {
            *self.0.entry((change.action.as_str(), change.reason.code(), change.reason.describe())).or_default() += 1;
        }
    }

    pub(crate) fn counts(self) -> Vec<ChangeCount> {
        self.0
            .into_iter()
            .map(|((action, code, reason), count)| ChangeCount {
                action: action.to_owned(),
                reason_code: code.to_owned(),
                reason,
                count,
            })
            .collect()
    }
}

/// Which of a run's changes to list. Every part is optional; they combine with AND.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    /// `create`, `update`, `enable`, `disable` or `remove`.
    pub action: Option<String>,
    /// A reason code, e.g. `out_of_scope`.
    pub reason_code: Option<String>,
    /// Part of the e-mail address (case folded in ASCII), or a whole user or Entra object id.
    pub text: Option<String>,
}

/// One page of a run's changes, in the order the run made them.
#[derive(Debug, Clone)]
pub struct ChangePage {
    pub changes: Vec<RunChange>,
    /// The `seq` to continue after, when more changes match.
    pub next_after: Option<i64>,
}

/// Changes written per multi-row statement group.
pub(crate) const APPLY_CHUNK: usize = 2000;

/// Writes the run's list of changes (what it did, or would do), numbered from `first_seq`.
pub(crate) async fn insert_changes(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    run_id: Uuid,
    first_seq: usize,
    changes: &[Change],
) -> Result<()> {
    let run = run_id.to_string();
    let rows: Vec<Vec<Arg>> = changes
        .iter()
        .enumerate()
        .map(|(seq, change)| {
            let user = change.user();
            vec![
                run.as_str().into(),
                ((first_seq + seq) as i64).into(),
                change.user_id.to_string().into(),
                user.azure_object_id.clone().into(),
                user.profile.email.clone().into(),
                change.action.as_str().into(),
                change.reason.code().into(),
                change.reason.describe().into(),
                serde_json::to_string(&change.fields).unwrap_or_default().into(),
            ]
        })
        .collect();
    insert_rows(
        tx,
        backend,
        "INSERT INTO run_changes (run_id, seq, user_id, azure_object_id, email, action, reason_code, reason, fields) VALUES",
        "",
        9,
        rows,
    )
    .await
}

/// `%` and `_` are LIKE's wildcards: a search for "a_b" means those three characters.
fn like_pattern(text: &str) -> String {
    let escaped = text.to_ascii_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

impl Store {
    /// Up to `limit` changes of a run after `after` (a `seq`), matching `filter`. Keyset
    /// paging on the run's primary key: every page costs the same, the last as the first.
    pub async fn run_changes(&self, run_id: Uuid, filter: &ChangeFilter, after: i64, limit: u32) -> Result<ChangePage> {
        let text = filter.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let mut changes: Vec<RunChange> = sqlx::query_as(
            "SELECT seq, user_id, azure_object_id, email, action, reason_code, reason, fields
             FROM run_changes
             WHERE run_id = $1 AND seq > $2
               AND ($3 IS NULL OR action = $3)
               AND ($4 IS NULL OR reason_code = $4)
               AND ($5 IS NULL OR LOWER(email) LIKE $5 ESCAPE '\\' OR user_id = $6 OR azure_object_id = $6)
             ORDER BY seq LIMIT $7",
        )
        .bind(run_id.to_string())
        .bind(after)
        .bind(filter.action.as_deref())
        .bind(filter.reason_code.as_deref())
        .bind(text.map(like_pattern))
        .bind(text)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = changes.len() > limit as usize;
        changes.truncate(limit as usize);
        let next_after = if more { changes.last().map(|c| c.seq) } else { None };
        Ok(ChangePage { changes, next_after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_for_wildcards_means_the_characters() {
        assert_eq!(like_pattern("A_b%c\\"), "%a\\_b\\%c\\\\%");
    }
}
