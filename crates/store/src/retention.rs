//! Retention: removing what is older than the operator keeps, in small batches. Each batch
//! is one short transaction, so a sync waiting for the database waits for one batch at most.

use time::OffsetDateTime;

use crate::{Result, Store, ts};

/// What a retention pass may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// The lists of changes of runs started and decided before the cut-off (the run and its
    /// counts by action and reason stay). A held run keeps its list until it is decided, and
    /// a decided one for the whole period after its decision.
    RunChanges,
    AuditLog,
    /// The outbox, from its oldest end: a service that follows it must read within the
    /// retention period, or learn that it missed events ([`Store::events_removed_through`]).
    Events,
    /// The webhook delivery log and the e-mails sent or given up on (pending ones stay).
    Deliveries,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch {
    /// Rows removed.
    pub removed: u64,
    /// Whether older rows may be left: the caller goes on with another batch.
    pub more: bool,
}

impl Store {
    /// Removes up to `batch` rows of `kept` older than `before`.
    pub async fn prune_batch(
        &self,
        kept: Kept,
        before: OffsetDateTime,
        batch: u32,
        now: OffsetDateTime,
    ) -> Result<Batch> {
        let before = ts(before);
        let batch = i64::from(batch.max(1));
        let removed = match kept {
            Kept::RunChanges => return self.prune_run_changes(&before, batch, now).await,
            Kept::Events => self.prune_events(&before, batch).await?,
            Kept::Deliveries => self.prune_deliveries(&before, batch).await?,
            Kept::AuditLog => self.delete_oldest("audit_log", &before, batch).await?,
        };
        Ok(Batch { removed, more: removed >= batch as u64 })
    }

    /// Marks the runs whose lists are due as removed (at once, so that no reader is shown a
    /// list with its oldest changes missing), then removes one batch of a marked run's rows.
    ///
    /// Only runs that can never be decided again qualify: not running, not held, and not
    /// decided within the period (a held run is decided with one conditional update, and a
    /// confirmation reads its list right after; a run decided long ago is long applied).
    async fn prune_run_changes(&self, before: &str, batch: i64, now: OffsetDateTime) -> Result<Batch> {
        let marked = sqlx::query(
            "UPDATE sync_runs SET changes_removed_at = $3, changes_purge_pending = 1
             WHERE id IN (SELECT id FROM sync_runs
                          WHERE org_id = $1 AND started_at < $2 AND changes_removed_at IS NULL
                            AND status NOT IN ('running', 'held') AND (resolved_at IS NULL OR resolved_at < $2)
                          ORDER BY started_at LIMIT $4)
               AND changes_removed_at IS NULL",
        )
        .bind(&self.org)
        .bind(before)
        .bind(ts(now))
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let run: Option<(String,)> =
            sqlx::query_as("SELECT id FROM sync_runs WHERE org_id = $1 AND changes_purge_pending = 1 LIMIT 1")
                .bind(&self.org)
                .fetch_optional(&self.pool)
                .await?;
        let Some((run_id,)) = run else { return Ok(Batch { removed: 0, more: marked > 0 }) };
        let mut tx = self.begin_write().await?;
        let removed = sqlx::query(
            "DELETE FROM run_changes WHERE run_id = $1 AND seq IN
                 (SELECT seq FROM run_changes WHERE run_id = $1 ORDER BY seq LIMIT $2)",
        )
        .bind(&run_id)
        .bind(batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Done only when nothing is left: another instance may be removing the same list.
        sqlx::query(
            "UPDATE sync_runs SET changes_purge_pending = 0
             WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM run_changes WHERE run_id = $1)",
        )
        .bind(&run_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Batch { removed, more: true })
    }

    /// Removes the oldest events, up to `batch` of those older than `before`, as a prefix of
    /// the outbox, and notes how far it reaches. The prefix stops before the oldest event
    /// inside the period: an instance whose clock was behind may have written "old" events
    /// after newer ones.
    async fn prune_events(&self, before: &str, batch: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let (oldest_batch_end,): (Option<i64>,) = sqlx::query_as(
            "SELECT MAX(seq) FROM (SELECT seq FROM events WHERE org_id = $1 AND at < $2 ORDER BY seq LIMIT $3) AS oldest",
        )
        .bind(&self.org)
        .bind(before)
        .bind(batch)
        .fetch_one(&mut *tx)
        .await?;
        let first_kept: Option<(i64,)> =
            sqlx::query_as("SELECT seq FROM events WHERE org_id = $1 AND at >= $2 ORDER BY seq LIMIT 1")
                .bind(&self.org)
                .bind(before)
                .fetch_optional(&mut *tx)
                .await?;
        let through = match (oldest_batch_end, first_kept) {
            (Some(end), Some((kept,))) => end.min(kept - 1),
            (Some(end), None) => end,
            (None, _) => return Ok(0),
        };
        // Everything up to `through`, so that no follower finds a hole in the middle.
        let removed = sqlx::query("DELETE FROM events WHERE org_id = $1 AND seq <= $2")
            .bind(&self.org)
            .bind(through)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Ok(0);
        }
        // Never backwards: another instance may have removed further meanwhile.
        sqlx::query(
            "INSERT INTO events_removed (org_id, through_seq) VALUES ($1, $2)
             ON CONFLICT (org_id) DO UPDATE SET through_seq = CASE
                 WHEN excluded.through_seq > events_removed.through_seq THEN excluded.through_seq
                 ELSE events_removed.through_seq END",
        )
        .bind(&self.org)
        .bind(through)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Removes up to `batch` rows of `table` (a log with `id`, `org_id` and `at`) older than
    /// `before`. Ids grow with time, so the oldest rows are found first, without an index on `at`.
    async fn delete_oldest(&self, table: &'static str, before: &str, batch: i64) -> Result<u64> {
        let sql = format!(
            "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE org_id = $1 AND at < $2 ORDER BY id LIMIT $3)"
        );
        let done =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&self.org).bind(before).bind(batch).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// Removes up to `batch` delivery attempts, then e-mails, older than `before`.
    async fn prune_deliveries(&self, before: &str, batch: i64) -> Result<u64> {
        let attempts = self.delete_oldest("webhook_attempts", before, batch).await?;
        if attempts >= batch as u64 {
            return Ok(attempts);
        }
        let mails = sqlx::query(
            "DELETE FROM notifications WHERE id IN
                 (SELECT id FROM notifications WHERE org_id = $1 AND created_at < $2 AND status <> 'pending'
                  ORDER BY id LIMIT $3)",
        )
        .bind(&self.org)
        .bind(before)
        .bind(batch - attempts as i64)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(attempts + mails)
    }

    /// The newest event the retention period removed (0: none): a follower whose cursor is
    /// older missed events.
    pub async fn events_removed_through(&self) -> Result<i64> {
        let through: Option<(i64,)> = sqlx::query_as("SELECT through_seq FROM events_removed WHERE org_id = $1")
            .bind(&self.org)
            .fetch_optional(&self.pool)
            .await?;
        Ok(through.map_or(0, |(seq,)| seq))
    }
}
