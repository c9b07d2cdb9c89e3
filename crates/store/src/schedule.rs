//! The schedule of every organisation's syncs, shared by every instance on the database:
//! planned from the settings, claimed when due by exactly one instance, and moved on after
//! each run (backing off while an organisation keeps failing).

use safegpt_core::Settings;
use time::OffsetDateTime;

use crate::orgs::settings_of;
use crate::{Backend, Result, Store, parse_ts, ts};

/// One enabled organisation as the scheduler plans it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub org: String,
    pub settings: Settings,
    pub next_run_at: Option<OffsetDateTime>,
    /// Consecutive failed scheduled runs.
    pub failures: u32,
}

/// An organisation, its settings' JSON, its next run and its failures in a row.
type ScheduleRow = (String, Option<String>, Option<String>, Option<i64>);

impl Store {
    /// Every enabled organisation's settings and schedule, in one query. Platform-wide.
    pub async fn schedules(&self) -> Result<Vec<Planned>> {
        let rows: Vec<ScheduleRow> = sqlx::query_as(
            "SELECT o.id, s.body, sc.next_run_at, sc.failures FROM orgs o
             LEFT JOIN settings s ON s.org_id = o.id LEFT JOIN sync_schedule sc ON sc.org_id = o.id
             WHERE o.disabled_at IS NULL ORDER BY o.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(org, body, next, failures)| {
                let settings = settings_of(&org, body)?;
                let next_run_at = next.as_deref().map(parse_ts).transpose()?;
                Ok(Planned { org, settings, next_run_at, failures: failures.unwrap_or(0).clamp(0, 64) as u32 })
            })
            .collect()
    }

    /// Claims up to `limit` syncs due at `now` (of enabled organisations; those whose last
    /// runs did not fail first, so that failing ones wait behind healthy ones, then the
    /// longest due) for this instance, moving each one's next run to `hold_until`, so that no
    /// other instance claims it too; the caller plans the real next run after starting it.
    /// If this instance dies first, the sync is due again at `hold_until`. Platform-wide.
    ///
    /// PostgreSQL: rows another instance is claiming at this instant are skipped (`FOR
    /// UPDATE SKIP LOCKED`), not waited for. SQLite: the one writer makes the statement one
    /// act.
    /// Returns each claimed organisation with its consecutive failures.
    pub async fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: u32,
        hold_until: OffsetDateTime,
    ) -> Result<Vec<(String, u32)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let sql = match self.backend {
            Backend::Postgres => {
                "WITH due AS (
                     SELECT sc.org_id FROM sync_schedule sc JOIN orgs o ON o.id = sc.org_id
                     WHERE sc.next_run_at <= $1 AND o.disabled_at IS NULL
                     ORDER BY sc.failures, sc.next_run_at LIMIT $2 FOR UPDATE OF sc SKIP LOCKED)
                 UPDATE sync_schedule SET next_run_at = $3 FROM due WHERE sync_schedule.org_id = due.org_id
                 RETURNING sync_schedule.org_id, sync_schedule.failures"
            }
            Backend::Sqlite => {
                "UPDATE sync_schedule SET next_run_at = $3 WHERE next_run_at <= $1 AND org_id IN (
                     SELECT sc.org_id FROM sync_schedule sc JOIN orgs o ON o.id = sc.org_id
                     WHERE sc.next_run_at <= $1 AND o.disabled_at IS NULL ORDER BY sc.failures, sc.next_run_at LIMIT $2)
                 RETURNING org_id, failures"
            }
        };
        let rows: Vec<(String, i64)> =
            sqlx::query_as(sql).bind(ts(now)).bind(i64::from(limit)).bind(ts(hold_until)).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(org, failures)| (org, failures.clamp(0, 64) as u32)).collect())
    }

    /// Plans this organisation's next run and how many scheduled runs failed in a row.
    pub async fn schedule_next(&self, at: OffsetDateTime, failures: u32) -> Result<()> {
        sqlx::query(
            "INSERT INTO sync_schedule (org_id, next_run_at, failures) VALUES ($1, $2, $3)
             ON CONFLICT (org_id) DO UPDATE SET next_run_at = excluded.next_run_at, failures = excluded.failures",
        )
        .bind(&self.org)
        .bind(ts(at))
        .bind(i64::from(failures))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets this organisation's schedule (switched off): when it is switched on again,
    /// the next run is planned from then.
    pub async fn unschedule(&self) -> Result<()> {
        sqlx::query("DELETE FROM sync_schedule WHERE org_id = $1").bind(&self.org).execute(&self.pool).await?;
        Ok(())
    }
}
