//! Decisions on held runs: one conditional update decides each, and a confirmation
//! approves only the changes its run listed.

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::runs::{RUN_COLUMNS, RunRow};
use crate::{Result, RunChange, RunRecord, RunStatus, Store, StoreError, ts};

impl Store {
    /// Decides a held run: `Confirmed` or `Cancelled`, with one conditional update, so that
    /// of two decisions at the same instant exactly one wins; the loser gets a conflict and
    /// must not act. A confirmation records its follow-up run afterwards
    /// ([`Store::record_follow_up`]).
    pub async fn decide_held(&self, run_id: Uuid, outcome: RunStatus, actor: &str, now: OffsetDateTime) -> Result<()> {
        debug_assert!(matches!(outcome, RunStatus::Confirmed | RunStatus::Cancelled));
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE sync_runs SET status = $3, resolved_by = $4, resolved_at = $5, follow_up_run = NULL
             WHERE org_id = $1 AND id = $2 AND status = 'held'",
        )
        .bind(&self.org)
        .bind(run_id.to_string())
        .bind(outcome.as_str())
        .bind(actor)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            // Unknown here (another organisation's run included) is "not found", as for
            // every other route naming a run; a run of this organisation is not held.
            let exists: Option<(String,)> =
                sqlx::query_as("SELECT status FROM sync_runs WHERE org_id = $1 AND id = $2")
                    .bind(&self.org)
                    .bind(run_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound { entity: crate::Entity::Run, key: run_id.to_string() });
            }
            return Err(StoreError::conflict(
                None,
                format!("run {run_id} is not waiting for a decision (only a held run can be confirmed or cancelled)"),
            ));
        }
        let action = if outcome == RunStatus::Confirmed { "sync.confirmed" } else { "sync.cancelled" };
        self.insert_audit(&mut tx, now, actor, action, Some(&run_id.to_string()), &json!({})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The run that a confirmation started.
    pub async fn record_follow_up(&self, held_run: Uuid, follow_up: Uuid) -> Result<()> {
        sqlx::query("UPDATE sync_runs SET follow_up_run = $3 WHERE org_id = $1 AND id = $2")
            .bind(&self.org)
            .bind(held_run.to_string())
            .bind(follow_up.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Undoes a confirmation whose run never started (another sync running, inactive): the
    /// run waits for a decision again. Once a follow-up is recorded it stays decided.
    pub async fn reopen_held(&self, run_id: Uuid, why: &str, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let reopened = sqlx::query(
            "UPDATE sync_runs SET status = 'held', resolved_by = NULL, resolved_at = NULL
             WHERE org_id = $1 AND id = $2 AND status = 'confirmed' AND follow_up_run IS NULL",
        )
        .bind(&self.org)
        .bind(run_id.to_string())
        .execute(&mut *tx)
        .await?;
        if reopened.rows_affected() == 1 {
            let details = json!({"why": why});
            self.insert_audit(&mut tx, now, "system", "sync.reopened", Some(&run_id.to_string()), &details).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The users a held run would disable or remove: what confirming it approves.
    pub async fn held_run_targets(&self, run_id: Uuid) -> Result<Vec<RunChange>> {
        let changes: Vec<RunChange> = sqlx::query_as(
            "SELECT seq, user_id, azure_object_id, email, action, reason_code, reason, fields
             FROM run_changes WHERE run_id = $1 AND action IN ('disable', 'remove') ORDER BY seq",
        )
        .bind(run_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(changes)
    }

    /// The newest run waiting for a decision, if any.
    pub async fn latest_held_run(&self) -> Result<Option<RunRecord>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE org_id = $1 AND status = 'held' ORDER BY started_at DESC, id DESC LIMIT 1"
        );
        let row: Option<RunRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&self.org).fetch_optional(&self.pool).await?;
        row.map(RunRecord::try_from).transpose()
    }
}
