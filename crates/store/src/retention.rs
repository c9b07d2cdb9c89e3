//! Retention: removing what is older than the operator keeps, in small batches. Each batch
//! is one short transaction, so a sync waiting for the database waits for one batch at most.

use time::OffsetDateTime;

use crate::{Result, Store, ts};

/// What a retention pass may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// The lists of changes of runs started before the cut-off (the run and its counts by
    /// action and reason stay). A held run keeps its list until it is decided.
    RunChanges,
    AuditLog,
    /// The outbox: a service that follows it must read within the retention period.
    Events,
}

impl Store {
    /// Removes up to `batch` rows of `kept` older than `before`; returns how many went (0:
    /// nothing older is left).
    pub async fn prune_batch(
        &self,
        kept: Kept,
        before: OffsetDateTime,
        batch: u32,
        now: OffsetDateTime,
    ) -> Result<u64> {
        let before = ts(before);
        let batch = i64::from(batch.max(1));
        let sql = match kept {
            Kept::RunChanges => return self.prune_run_changes(&before, batch, now).await,
            // Ids grow with time, so the oldest rows are found first, without an index on `at`.
            Kept::AuditLog => {
                "DELETE FROM audit_log WHERE id IN
                     (SELECT id FROM audit_log WHERE org_id = $1 AND at < $2 ORDER BY id LIMIT $3)"
            }
            Kept::Events => {
                "DELETE FROM events WHERE seq IN
                     (SELECT seq FROM events WHERE org_id = $1 AND at < $2 ORDER BY seq LIMIT $3)"
            }
        };
        let done = sqlx::query(sql).bind(&self.org).bind(before).bind(batch).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// One batch of the oldest run's list of changes; the run is marked once its list is gone.
    async fn prune_run_changes(&self, before: &str, batch: i64, now: OffsetDateTime) -> Result<u64> {
        let run: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM sync_runs
             WHERE org_id = $1 AND started_at < $2 AND changes_removed_at IS NULL AND status NOT IN ('running', 'held')
             ORDER BY started_at LIMIT 1",
        )
        .bind(&self.org)
        .bind(before)
        .fetch_optional(&self.pool)
        .await?;
        let Some((run_id,)) = run else { return Ok(0) };
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query(
            "DELETE FROM run_changes WHERE run_id = $1 AND seq IN
                 (SELECT seq FROM run_changes WHERE run_id = $1 ORDER BY seq LIMIT $2)",
        )
        .bind(&run_id)
        .bind(batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if deleted < batch as u64 {
            sqlx::query("UPDATE sync_runs SET changes_removed_at = $2 WHERE id = $1")
                .bind(&run_id)
                .bind(ts(now))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        // A run with no changes left still counts as work done, so the caller goes on.
        Ok(deleted.max(1))
    }
}
