//! A run's plan written a slice at a time, in one transaction: the engine plans a slice of
//! the tenant, hands its changes over, and plans the next, so that memory holds a slice and
//! a crash still leaves all of the run or none of it.

use safegpt_core::{Change, Counts, LocalUser, Membership, PackedUser};
use serde_json::json;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::mirror::{Advance, MirrorWrite};
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
    /// A full read is applied: its users and memberships are copied a part at a time.
    copying_users: bool,
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
        let copying_users = advance.is_some_and(|a| matches!(a.mirror, MirrorWrite::Replace { .. }));
        Ok(PlanWriter {
            store: self,
            tx,
            run_id,
            applying: true,
            copying_users,
            written: 0,
            breakdown: Breakdown::default(),
        })
    }

    /// Begins recording what a dry run or a held run would do, without touching users. As
    /// for applying, the plan must be made from the directory as it is now (what a held run
    /// lists is what an administrator approves), and no one writes users while it is read.
    pub async fn begin_listing(&self, run_id: Uuid, planned_from: DirectoryVersion) -> Result<PlanWriter<'_>> {
        let mut tx = self.begin_event_write().await?;
        if self.directory_version_on(&mut tx).await? != planned_from {
            return Err(StoreError::DirectoryMoved);
        }
        Ok(PlanWriter {
            store: self,
            tx,
            run_id,
            applying: false,
            copying_users: false,
            written: 0,
            breakdown: Breakdown::default(),
        })
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
        let (range, bounds) = byte_range(self.backend, "azure_object_id", from, to, 2);
        let id = byte_order(self.backend, "azure_object_id");
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND azure_object_id IS NOT NULL{range} ORDER BY {id}"
        );
        let mut query = sqlx::query_as::<_, UserRow>(AssertSqlSafe(sql)).bind(&self.org);
        for bound in bounds {
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

/// `column` compared byte by byte, as Rust compares ids. PostgreSQL compares text by the
/// database's collation unless told otherwise; its indexes `users_by_azure_object_id_bytes`
/// and `entra_users_by_id_bytes` are in byte order.
fn byte_order(backend: Backend, column: &str) -> String {
    match backend {
        Backend::Postgres => format!("{column} COLLATE \"C\""),
        Backend::Sqlite => column.to_owned(),
    }
}

/// The conditions ` AND column >= $n AND column < $n+1` for the bounds given (ids in
/// `[from, to)`, byte by byte), numbered from `first`, and the bounds to bind in order.
pub(crate) fn byte_range<'b>(
    backend: Backend,
    column: &str,
    from: Option<&'b str>,
    to: Option<&'b str>,
    first: usize,
) -> (String, Vec<&'b str>) {
    let column = byte_order(backend, column);
    let (mut sql, mut bounds) = (String::new(), Vec::new());
    for (bound, op) in [(from, ">="), (to, "<")] {
        if let Some(bound) = bound {
            sql.push_str(&format!(" AND {column} {op} ${}", first + bounds.len()));
            bounds.push(bound);
        }
    }
    (sql, bounds)
}

impl PlanWriter<'_> {
    /// Makes the copy of Entra's memberships of the groups in `[from, to)` equal to
    /// `memberships` (the full read's, by group and member), when applying a full read;
    /// otherwise nothing.
    pub async fn copy_memberships(
        &mut self,
        from: Option<&str>,
        to: Option<&str>,
        memberships: &[Membership],
    ) -> Result<()> {
        if self.copying_users {
            self.store.copy_memberships_on(&mut self.tx, from, to, memberships).await?;
        }
        Ok(())
    }

    /// Makes the copy of Entra's users in `[from, to)` equal to `users` (the full read's
    /// users of that range, in id order), when applying a full read; otherwise nothing.
    pub async fn copy_users(&mut self, from: Option<&str>, to: Option<&str>, users: &[PackedUser]) -> Result<()> {
        if self.copying_users {
            self.store.copy_users_on(&mut self.tx, from, to, users).await?;
        }
        Ok(())
    }

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
        store.finish(&mut tx, run_id, RunStatus::Succeeded, counts, &breakdown.counts(), totals, None, now).await?;
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
        store.finish(&mut tx, run_id, status, counts, &breakdown.counts(), totals, error, now).await?;
        if status == RunStatus::Held {
            let details = json!({"would_disable": counts.disabled, "message": error.map(|e| e.message.clone())});
            store.insert_audit(&mut tx, now, &format!("sync:{run_id}"), "sync.held", None, &details).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
