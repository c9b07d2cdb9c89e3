//! A run's plan written a slice at a time, in one transaction: the engine plans a slice of
//! the tenant, hands its changes over, and plans the next, so that memory holds a slice and
//! a crash still leaves all of the run or none of it.

use safegpt_core::{Change, Counts, LocalUser};
use serde_json::json;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::mirror::Advance;
use crate::run_changes::{APPLY_CHUNK, Breakdown, insert_changes};
use crate::runs::{RunError, RunStatus, RunTotals};
use crate::users::{DirectoryVersion, USER_COLUMNS, UserRow, collect_users};
use crate::{Backend, Result, Store, StoreError, ts};

/// The plan of one run being written. Dropped without [`PlanWriter::applied`] or
/// [`PlanWriter::listed`], it writes nothing.
pub struct PlanWriter<'s> {
    store: &'s Store,
    tx: Transaction<'static, Any>,
    run_id: Uuid,
    /// Users, events and audit rows are written; otherwise only the run's list (a dry run,
    /// a held run).
    applying: bool,
    written: usize,
    breakdown: Breakdown,
}

impl Store {
    /// Begins applying a run's plan: refuses it if anyone wrote users since `planned_from`
    /// (see [`Store::apply_plan`]), then writes `advance` (the copy of Entra and the cursor).
    pub async fn begin_apply(
        &self,
        run_id: Uuid,
        planned_from: DirectoryVersion,
        advance: Option<&Advance<'_>>,
    ) -> Result<PlanWriter<'_>> {
        let mut tx = self.begin_event_write().await?;
        if self.directory_version_on(&mut tx).await? != planned_from {
            return Err(StoreError::DirectoryMoved);
        }
        if let Some(advance) = advance {
            self.write_advance(&mut tx, advance).await?;
        }
        Ok(PlanWriter { store: self, tx, run_id, applying: true, written: 0, breakdown: Breakdown::default() })
    }

    /// Begins recording what a dry run or a held run would do, without touching users. As
    /// for applying, the plan must be made from the directory as it is now (what a held run
    /// lists is what an administrator approves), and no one writes users while it is read.
    pub async fn begin_listing(&self, run_id: Uuid, planned_from: DirectoryVersion) -> Result<PlanWriter<'_>> {
        let mut tx = self.begin_event_write().await?;
        if self.directory_version_on(&mut tx).await? != planned_from {
            return Err(StoreError::DirectoryMoved);
        }
        Ok(PlanWriter { store: self, tx, run_id, applying: false, written: 0, breakdown: Breakdown::default() })
    }

    /// The directory users linked to an Entra id in `[from, to)` (open where `None`), in id
    /// order. Ids compare byte by byte, as Rust compares them, on both databases.
    pub async fn linked_users(&self, from: Option<&str>, to: Option<&str>) -> Result<Vec<LocalUser>> {
        self.linked_users_on(&mut *self.pool.acquire().await?, from, to).await
    }

    async fn linked_users_on(
        &self,
        conn: &mut AnyConnection,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<LocalUser>> {
        // PostgreSQL compares text by the database's collation unless told otherwise; its
        // index `users_by_azure_object_id_bytes` is in the same byte order.
        let id = if self.backend == Backend::Postgres { "azure_object_id COLLATE \"C\"" } else { "azure_object_id" };
        let mut sql = format!("SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND azure_object_id IS NOT NULL");
        let mut n = 1;
        for (bound, op) in [(from, ">="), (to, "<")] {
            if bound.is_some() {
                n += 1;
                sql.push_str(&format!(" AND {id} {op} ${n}"));
            }
        }
        sql.push_str(&format!(" ORDER BY {id}"));
        let mut query = sqlx::query_as::<_, UserRow>(AssertSqlSafe(sql)).bind(&self.org);
        for bound in [from, to].into_iter().flatten() {
            query = query.bind(bound.to_owned());
        }
        collect_users(query.fetch(conn)).await
    }

    /// The directory's local accounts that no Entra user is linked to, oldest first.
    pub async fn unlinked_users(&self) -> Result<Vec<LocalUser>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND azure_object_id IS NULL ORDER BY created_at, id"
        );
        collect_users(sqlx::query_as::<_, UserRow>(AssertSqlSafe(sql)).bind(&self.org).fetch(&self.pool)).await
    }
}

impl PlanWriter<'_> {
    /// [`Store::linked_users`], read inside the writing transaction: while applying, no one
    /// else writes users, so these are the rows the changes are made from.
    pub async fn linked_users(&mut self, from: Option<&str>, to: Option<&str>) -> Result<Vec<LocalUser>> {
        self.store.linked_users_on(&mut self.tx, from, to).await
    }

    /// Writes the next changes of the run, in order.
    pub async fn write(&mut self, changes: &[Change], now: OffsetDateTime) -> Result<()> {
        let PlanWriter { store, run_id, .. } = *self;
        for chunk in changes.chunks(APPLY_CHUNK) {
            if self.applying {
                store.apply_chunk(&mut self.tx, run_id, self.written, chunk, now).await?;
            } else {
                insert_changes(&mut self.tx, store.backend, run_id, self.written, chunk).await?;
            }
            self.breakdown.add(chunk);
            self.written += chunk.len();
        }
        Ok(())
    }

    /// Ends an applied run with its counts, and commits all of it.
    pub async fn applied(self, counts: Counts, totals: RunTotals, now: OffsetDateTime) -> Result<()> {
        let PlanWriter { store, mut tx, run_id, written, breakdown, .. } = self;
        let run = run_id.to_string();
        let actor = format!("sync:{run}");
        if written > 0 {
            store.move_directory_version(&mut tx).await?;
            let details = json!({"created": counts.created, "updated": counts.updated, "enabled": counts.enabled,
                                 "disabled": counts.disabled, "removed": counts.removed});
            store.insert_audit(&mut tx, now, &actor, "sync.applied", Some(&run), &details).await?;
        }
        Store::finish(&mut tx, run_id, RunStatus::Succeeded, counts, &breakdown.counts(), totals, None, now).await?;
        // What older held runs showed is out of date now: none can be confirmed any more.
        sqlx::query(
            "UPDATE sync_runs SET status = 'superseded', resolved_by = $3, resolved_at = $4, follow_up_run = $2
             WHERE org_id = $1 AND status = 'held'",
        )
        .bind(&store.org)
        .bind(&run)
        .bind(&actor)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends a dry run or a held run with the counts it would have, and commits its list.
    pub async fn listed(
        self,
        status: RunStatus,
        counts: Counts,
        totals: RunTotals,
        error: Option<&RunError>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let PlanWriter { store, mut tx, run_id, breakdown, .. } = self;
        Store::finish(&mut tx, run_id, status, counts, &breakdown.counts(), totals, error, now).await?;
        if status == RunStatus::Held {
            let details = json!({"would_disable": counts.disabled, "message": error.map(|e| e.message.clone())});
            store.insert_audit(&mut tx, now, &format!("sync:{run_id}"), "sync.held", None, &details).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
