//! The platform's view of every organisation's sync health, read in two queries however
//! many organisations there are.

use safegpt_core::Settings;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::orgs::{org_from_row, settings_of};
use crate::runs::{RUN_COLUMNS, RunRow};
use crate::{Org, Result, RunRecord, Store, parse_ts};

/// One organisation's sync health.
#[derive(Debug, Clone)]
pub struct OrgHealth {
    pub org: Org,
    pub settings: Settings,
    /// Its newest run (a dry run too).
    pub last_run: Option<RunRecord>,
    /// Runs held by the deletion threshold, waiting for a decision.
    pub held_runs: u64,
    /// The start of the first failed run after the last successful one: when the
    /// organisation stopped following Entra (`None`: its newest run did not fail).
    pub failing_since: Option<OffsetDateTime>,
    pub seats_used: u64,
}

type HealthRow =
    (String, String, String, String, Option<String>, Option<String>, Option<String>, i64, i64, Option<String>);

impl Store {
    /// Every organisation's health, by slug. Platform-wide: shows no user.
    pub async fn org_health(&self) -> Result<Vec<OrgHealth>> {
        let rows: Vec<HealthRow> = sqlx::query_as(
            "SELECT o.id, o.name, o.language, o.created_at, o.disabled_at, s.body,
                 (SELECT r.id FROM sync_runs r WHERE r.org_id = o.id ORDER BY r.started_at DESC, r.id DESC LIMIT 1),
                 (SELECT COUNT(*) FROM sync_runs h WHERE h.org_id = o.id AND h.status = 'held'),
                 (SELECT COUNT(*) FROM users u WHERE u.org_id = o.id AND u.status IN ('active', 'disabled')),
                 (SELECT MIN(f.started_at) FROM sync_runs f WHERE f.org_id = o.id AND f.status = 'failed'
                     AND f.started_at > COALESCE((SELECT MAX(k.started_at) FROM sync_runs k
                                                  WHERE k.org_id = o.id AND k.status = 'succeeded'), ''))
             FROM orgs o LEFT JOIN settings s ON s.org_id = o.id ORDER BY o.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let last_ids: Vec<String> = rows.iter().filter_map(|r| r.6.clone()).collect();
        let mut last_runs = std::collections::HashMap::new();
        for chunk in last_ids.chunks(500) {
            let marks = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
            let sql = format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE id IN ({marks})");
            let mut query = sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.pool).await? {
                let run = RunRecord::try_from(row)?;
                last_runs.insert(run.id, run);
            }
        }
        rows.into_iter()
            .map(|(slug, name, language, created_at, disabled_at, body, last, held, seats, failed_from)| {
                let settings = settings_of(&slug, body)?;
                let last_run = last.and_then(|id| Uuid::parse_str(&id).ok()).and_then(|id| last_runs.remove(&id));
                let failing = last_run.as_ref().is_some_and(|r| r.status == crate::RunStatus::Failed);
                Ok(OrgHealth {
                    org: org_from_row((slug, name, language, created_at, disabled_at))?,
                    settings,
                    last_run,
                    held_runs: held as u64,
                    failing_since: if failing { failed_from.as_deref().map(parse_ts).transpose()? } else { None },
                    seats_used: seats as u64,
                })
            })
            .collect()
    }
}
