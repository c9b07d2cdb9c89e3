//! Sync runs, the one-transaction application of a plan, the audit log and the event outbox.

use safegpt_core::{Action, Change, Counts, LocalUser, Plan};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{Any, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::batch::{Arg, delete_ids, insert_rows};
use crate::mirror::Advance;
use crate::run_changes::{ChangeCount, insert_changes};
use crate::users::{DirectoryVersion, upsert_users};
use crate::{Backend, Entity, Result, Store, StoreError, parse_ts, ts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// Stopped by the deletion threshold; nothing applied.
    Held,
    DryRun,
    /// The process ended while the run was in progress; nothing of it was applied.
    Interrupted,
    /// A held run an administrator confirmed; a follow-up run applied it.
    Confirmed,
    /// A held run an administrator cancelled; nothing applied.
    Cancelled,
    /// A held run no one decided on before a later run applied: it can no longer be
    /// confirmed (what it showed is out of date).
    Superseded,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Held => "held",
            RunStatus::DryRun => "dry_run",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Confirmed => "confirmed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Superseded => "superseded",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "held" => RunStatus::Held,
            "dry_run" => RunStatus::DryRun,
            "interrupted" => RunStatus::Interrupted,
            "confirmed" => RunStatus::Confirmed,
            "cancelled" => RunStatus::Cancelled,
            "superseded" => RunStatus::Superseded,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunError {
    pub kind: String,
    pub message: String,
    pub detail: Option<String>,
}

/// What was read while a run gathered its snapshot.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RunTotals {
    pub users_read: u64,
    pub graph_requests: u64,
    /// `full` (every user and group read) or `incremental` (delta rounds); `None` when the
    /// run failed before it read.
    pub read_mode: Option<ReadMode>,
    /// Users the run read directly from Graph before removing them.
    pub confirmed_users: u64,
    /// Of those, users Graph had back in scope: not removed.
    pub kept_users: u64,
    /// Users read whose address in Entra is not an e-mail address (stored without one).
    pub invalid_emails: u64,
}

/// How a run read Entra.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    Full,
    Incremental,
}

impl ReadMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadMode::Full => "full",
            ReadMode::Incremental => "incremental",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "full" => Some(ReadMode::Full),
            "incremental" => Some(ReadMode::Incremental),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: Uuid,
    pub trigger: String,
    pub dry_run: bool,
    pub status: RunStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub counts: Counts,
    pub totals: RunTotals,
    pub error: Option<RunError>,
    /// For a confirmed or cancelled held run: who decided, when, and the run that applied it.
    pub resolution: Option<Resolution>,
    /// Its changes by action and reason (empty while it runs, and for a failed run).
    pub breakdown: Vec<ChangeCount>,
    /// When the retention period removed the list of its changes (the breakdown stays);
    /// `None` for a run that listed no changes: it lost nothing.
    #[serde(with = "time::serde::rfc3339::option")]
    pub changes_removed_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    pub by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub follow_up_run: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub details: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub user_id: String,
    pub payload: Value,
}

#[derive(sqlx::FromRow)]
pub(crate) struct RunRow {
    id: String,
    trigger: String,
    dry_run: i64,
    status: String,
    started_at: String,
    finished_at: Option<String>,
    created: i64,
    updated: i64,
    enabled: i64,
    disabled: i64,
    removed: i64,
    unchanged: i64,
    awaiting_license: i64,
    users_read: i64,
    graph_requests: i64,
    error_kind: Option<String>,
    error_message: Option<String>,
    error_detail: Option<String>,
    resolved_by: Option<String>,
    resolved_at: Option<String>,
    follow_up_run: Option<String>,
    read_mode: Option<String>,
    confirmed_users: i64,
    kept_users: i64,
    invalid_emails: i64,
    breakdown: Option<String>,
    changes_removed_at: Option<String>,
}

impl TryFrom<RunRow> for RunRecord {
    type Error = StoreError;
    fn try_from(r: RunRow) -> Result<RunRecord> {
        let n = |v: i64| v.max(0) as u64;
        let breakdown: Vec<ChangeCount> = match r.breakdown.as_deref() {
            Some(json) => {
                serde_json::from_str(json).map_err(|e| StoreError::corrupt(format!("breakdown of run {}", r.id), e))?
            }
            None => Vec::new(),
        };
        // Retention marks every run it passed; one that listed nothing lost nothing.
        let changes_removed_at = match r.changes_removed_at.as_deref() {
            Some(at) if !breakdown.is_empty() => Some(parse_ts(at)?),
            _ => None,
        };
        Ok(RunRecord {
            id: Uuid::parse_str(&r.id).map_err(|e| StoreError::corrupt(format!("run id '{}'", r.id), e))?,
            status: RunStatus::parse(&r.status).ok_or_else(|| {
                StoreError::corrupt(format!("run {}", r.id), format!("unknown status '{}'", r.status))
            })?,
            started_at: parse_ts(&r.started_at)?,
            finished_at: r.finished_at.as_deref().map(parse_ts).transpose()?,
            counts: Counts {
                created: n(r.created),
                updated: n(r.updated),
                enabled: n(r.enabled),
                disabled: n(r.disabled),
                removed: n(r.removed),
                unchanged: n(r.unchanged),
                awaiting_license: n(r.awaiting_license),
            },
            totals: RunTotals {
                users_read: n(r.users_read),
                graph_requests: n(r.graph_requests),
                read_mode: r.read_mode.as_deref().and_then(ReadMode::parse),
                confirmed_users: n(r.confirmed_users),
                kept_users: n(r.kept_users),
                invalid_emails: n(r.invalid_emails),
            },
            error: r.error_kind.map(|kind| RunError {
                kind,
                message: r.error_message.unwrap_or_default(),
                detail: r.error_detail,
            }),
            resolution: match (r.resolved_by, r.resolved_at) {
                (Some(by), Some(at)) => Some(Resolution {
                    by,
                    at: parse_ts(&at)?,
                    follow_up_run: r.follow_up_run.as_deref().and_then(|id| Uuid::parse_str(id).ok()),
                }),
                _ => None,
            },
            breakdown,
            changes_removed_at,
            trigger: r.trigger,
            dry_run: r.dry_run != 0,
        })
    }
}

pub(crate) const RUN_COLUMNS: &str = "id, trigger, dry_run, status, started_at, finished_at, created, updated, enabled, \
     disabled, removed, unchanged, awaiting_license, users_read, graph_requests, error_kind, error_message, error_detail, \
     resolved_by, resolved_at, follow_up_run, read_mode, confirmed_users, kept_users, invalid_emails, breakdown, \
     changes_removed_at";

impl Store {
    /// One audit row, in the caller's transaction.
    pub(crate) async fn insert_audit(
        &self,
        tx: &mut Transaction<'_, Any>,
        at: OffsetDateTime,
        actor: &str,
        action: &str,
        target: Option<&str>,
        details: &Value,
    ) -> Result<()> {
        self.insert_audit_for(tx, Some(&self.org), at, actor, action, target, details).await
    }

    /// An audit row of the organisation `org`, or of the platform itself (`None`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn insert_audit_for(
        &self,
        tx: &mut Transaction<'_, Any>,
        org: Option<&str>,
        at: OffsetDateTime,
        actor: &str,
        action: &str,
        target: Option<&str>,
        details: &Value,
    ) -> Result<()> {
        let row =
            vec![org.into(), ts(at).into(), actor.into(), action.into(), target.into(), details.to_string().into()];
        insert_rows(tx, self.backend, AUDIT_INSERT, "", 6, vec![row]).await
    }

    /// One event of the outbox, in the caller's transaction.
    pub(crate) async fn insert_event(
        &self,
        tx: &mut Transaction<'_, Any>,
        at: OffsetDateTime,
        kind: &str,
        user_id: Uuid,
        payload: &Value,
    ) -> Result<()> {
        let org = self.org.as_str();
        let row = vec![org.into(), ts(at).into(), kind.into(), user_id.to_string().into(), payload.to_string().into()];
        insert_rows(tx, self.backend, EVENT_INSERT, "", 5, vec![row]).await
    }
}

/// What the platform learns about a user change.
/// An event's payload as stored: without `user_id`, which the row holds in its own column and
/// [`Store::events`] puts back (a million events, 48 MB less).
pub(crate) fn event_payload(user: &LocalUser, changed: &[&str], reason: Option<&str>) -> Value {
    json!({
        "azure_object_id": user.azure_object_id,
        "email": user.profile.email,
        "status": user.status.as_str(),
        "changed": changed,
        "reason": reason,
    })
}

/// An event as read: a user event's payload gets its `user_id` back (stored in its column).
pub(crate) fn event_from_row(seq: i64, at: String, kind: String, user_id: String, payload: String) -> Event {
    let mut payload = serde_json::from_str(&payload).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut payload
        && !user_id.is_empty()
    {
        fields.entry("user_id").or_insert_with(|| Value::String(user_id.clone()));
    }
    Event { seq, at, kind, user_id, payload }
}

/// The event a run ending with `status` puts in the outbox: dry runs and interrupted runs
/// decided nothing; confirmed, cancelled and superseded are later decisions on a held run.
fn sync_event_kind(status: RunStatus) -> Option<&'static str> {
    match status {
        RunStatus::Succeeded => Some("sync.succeeded"),
        RunStatus::Failed => Some("sync.failed"),
        RunStatus::Held => Some("sync.held"),
        _ => None,
    }
}

const EVENT_INSERT: &str = "INSERT INTO events (org_id, at, kind, user_id, payload) VALUES";
const AUDIT_INSERT: &str = "INSERT INTO audit_log (org_id, at, actor, action, target, details) VALUES";

impl Store {
    /// Records the start of a run. Runs left `running` by a process that ended are marked
    /// `interrupted` first: their transaction never committed, so nothing of them applied.
    pub async fn start_run(&self, trigger: &str, dry_run: bool, now: OffsetDateTime) -> Result<Uuid> {
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE sync_runs SET status = 'interrupted', finished_at = $2,
                 error_kind = 'interrupted', error_message = 'the process ended before the run finished; nothing of it was applied'
             WHERE org_id = $1 AND status = 'running'",
        )
        .bind(&self.org)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO sync_runs (id, org_id, trigger, dry_run, status, started_at) VALUES ($1, $2, $3, $4, 'running', $5)",
        )
        .bind(id.to_string())
        .bind(&self.org)
        .bind(trigger)
        .bind(i64::from(dry_run))
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Ends a run: its record and, for a run that decided something (succeeded, failed or
    /// held), its `sync.*` event in the outbox, in the caller's transaction (one that took
    /// the outbox lock: [`Store::begin_event_write`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn finish(
        &self,
        tx: &mut Transaction<'_, Any>,
        run_id: Uuid,
        status: RunStatus,
        counts: Counts,
        breakdown: &[ChangeCount],
        totals: RunTotals,
        error: Option<&RunError>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let breakdown = serde_json::to_string(breakdown).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "UPDATE sync_runs SET status = $2, finished_at = $3, created = $4, updated = $5, enabled = $6,
                 disabled = $7, removed = $8, unchanged = $9, awaiting_license = $10, users_read = $11,
                 graph_requests = $12, error_kind = $13, error_message = $14, error_detail = $15,
                 read_mode = $16, confirmed_users = $17, kept_users = $18, invalid_emails = $19,
                 breakdown = $20
             WHERE id = $1",
        )
        .bind(run_id.to_string())
        .bind(status.as_str())
        .bind(ts(now))
        .bind(counts.created as i64)
        .bind(counts.updated as i64)
        .bind(counts.enabled as i64)
        .bind(counts.disabled as i64)
        .bind(counts.removed as i64)
        .bind(counts.unchanged as i64)
        .bind(counts.awaiting_license as i64)
        .bind(totals.users_read as i64)
        .bind(totals.graph_requests as i64)
        .bind(error.map(|e| e.kind.as_str()))
        .bind(error.map(|e| e.message.as_str()))
        .bind(error.and_then(|e| e.detail.as_deref()))
        .bind(totals.read_mode.map(ReadMode::as_str))
        .bind(totals.confirmed_users as i64)
        .bind(totals.kept_users as i64)
        .bind(totals.invalid_emails as i64)
        .bind(breakdown)
        .execute(&mut **tx)
        .await?;
        if let Some(kind) = sync_event_kind(status) {
            self.insert_sync_event(tx, run_id, kind, counts, error, now).await?;
        }
        Ok(())
    }

    /// A run's `sync.*` event: who follows the outbox learns of runs as of users. Its
    /// `user_id` column is empty (the feed gives `null`).
    async fn insert_sync_event(
        &self,
        tx: &mut Transaction<'_, Any>,
        run_id: Uuid,
        kind: &str,
        counts: Counts,
        error: Option<&RunError>,
        now: OffsetDateTime,
    ) -> Result<()> {
        // A dry run (a preview) decides nothing, even when it fails.
        let (dry_run,): (i64,) = sqlx::query_as("SELECT dry_run FROM sync_runs WHERE id = $1")
            .bind(run_id.to_string())
            .fetch_one(&mut **tx)
            .await?;
        if dry_run != 0 {
            return Ok(());
        }
        let payload = json!({
            "run_id": run_id,
            "status": kind.trim_start_matches("sync."),
            "created": counts.created, "updated": counts.updated, "enabled": counts.enabled,
            "disabled": counts.disabled, "removed": counts.removed,
            "error": error.map(|e| json!({"kind": e.kind, "message": e.message})),
        });
        let row = vec![self.org.as_str().into(), ts(now).into(), kind.into(), "".into(), payload.to_string().into()];
        insert_rows(tx, self.backend, EVENT_INSERT, "", 5, vec![row]).await
    }

    /// Applies a plan in one transaction: users, one event and one audit row per change, the
    /// run's change list, its final record and (with `advance`) the copy of Entra and the
    /// delta cursor it was planned from. A crash leaves either all of it or none.
    /// Rows are written with multi-row statements, a few per thousand changes.
    ///
    /// `planned_from` is where the directory stood before the plan's users were read: if
    /// anyone wrote users since (an administrator's disable, a new local account), the plan
    /// could undo it, so nothing is written and [`StoreError::DirectoryMoved`] says to plan
    /// again. Checked after taking the lock every writer of users takes first.
    pub async fn apply_plan(
        &self,
        run_id: Uuid,
        plan: &Plan,
        planned_from: DirectoryVersion,
        advance: Option<&Advance<'_>>,
        totals: RunTotals,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut writer = self.begin_apply(run_id, planned_from, advance).await?;
        writer.write(&plan.changes, now).await?;
        writer.applied(plan.counts, totals, now).await
    }

    /// After a full read PostgreSQL's statistics may still describe an empty directory
    /// (autovacuum analyses later), and it would then plan the next incremental runs'
    /// queries as scans; and until `users` is vacuumed its totals cannot be counted from the
    /// index alone. Refreshed here once a day, that halves every incremental run in between
    /// (60 -> 30 ms at 100,000 users). SQLite plans these queries well without statistics,
    /// but its write-ahead log holds the whole run. The engine calls this after a full read,
    /// once the run has released its lease.
    pub async fn tidy_after_full_read(&self) {
        if self.backend == Backend::Sqlite {
            // A full read writes its changes in one transaction, all of it into the WAL:
            // copied into the database and the file cut back now, not at some later write.
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await {
                tracing::warn!("could not checkpoint the write-ahead log: {e}");
            }
            return;
        }
        // VACUUM cannot run inside a transaction: each is a statement of its own.
        // A full read is also what writes a run of many changes: without statistics a page
        // of them is planned as a sort of the whole run (40 ms at 84,000, 2 ms after).
        for statement in
            ["VACUUM (ANALYZE) users", "ANALYZE entra_users", "ANALYZE entra_members", "ANALYZE run_changes"]
        {
            if let Err(e) = sqlx::query(statement).execute(&self.pool).await {
                tracing::warn!("could not refresh the statistics ({statement}): {e}");
            }
        }
    }

    pub(crate) async fn apply_chunk(
        &self,
        tx: &mut Transaction<'_, Any>,
        run_id: Uuid,
        first_seq: usize,
        changes: &[Change],
        now: OffsetDateTime,
    ) -> Result<()> {
        let actor = format!("sync:{run_id}");
        let at = ts(now);
        let mut upserts: Vec<&LocalUser> = Vec::new();
        let mut deletes: Vec<String> = Vec::new();
        let mut events: Vec<Vec<Arg>> = Vec::with_capacity(changes.len());
        let mut audits: Vec<Vec<Arg>> = Vec::with_capacity(changes.len());
        for change in changes {
            match change.after() {
                Some(after) => upserts.push(after),
                None => deletes.push(change.user_id.to_string()),
            }
            let user = change.user();
            let reason = change.reason.describe();
            let payload = event_payload(user, &change.fields, Some(&reason));
            let kind = change.action.event_kind();
            events.push(vec![
                self.org.as_str().into(),
                at.clone().into(),
                kind.into(),
                change.user_id.to_string().into(),
                payload.to_string().into(),
            ]);
            // A creation or an update is recorded once, in the run's change list (the run
            // has one `sync.applied` audit row); who lost or regained access, and who was
            // removed, is in the audit log user by user.
            if !matches!(change.action, Action::Disable | Action::Enable | Action::Remove) {
                continue;
            }
            let details = json!({"user_id": change.user_id, "azure_object_id": user.azure_object_id,
                                 "reason": reason, "fields": change.fields, "run_id": run_id});
            audits.push(vec![
                self.org.as_str().into(),
                at.clone().into(),
                actor.as_str().into(),
                kind.into(),
                Some(user.profile.email.as_str()).into(),
                details.to_string().into(),
            ]);
        }
        upsert_users(tx, self.backend, &self.org, &upserts, now).await?;
        delete_ids(tx, self.backend, "users", &self.org, &deletes).await?;
        insert_changes(tx, self.backend, run_id, first_seq, changes).await?;
        insert_rows(tx, self.backend, EVENT_INSERT, "", 5, events).await?;
        insert_rows(tx, self.backend, AUDIT_INSERT, "", 6, audits).await
    }

    /// Records what a dry run or a held run would do, without touching users.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_unapplied_plan(
        &self,
        run_id: Uuid,
        status: RunStatus,
        plan: &Plan,
        planned_from: DirectoryVersion,
        totals: RunTotals,
        error: Option<&RunError>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut writer = self.begin_listing(run_id, planned_from).await?;
        writer.write(&plan.changes, now).await?;
        writer.listed(status, plan.counts, totals, error, now).await
    }

    /// Ends a run as failed: nothing was applied.
    pub async fn fail_run(&self, run_id: Uuid, error: &RunError, totals: RunTotals, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin_event_write().await?;
        self.finish(&mut tx, run_id, RunStatus::Failed, Counts::default(), &[], totals, Some(error), now).await?;
        self.insert_audit(
            &mut tx,
            now,
            &format!("sync:{run_id}"),
            "sync.failed",
            None,
            &json!({"kind": error.kind, "message": error.message}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends a run that stopped on an error of the engine itself (not one of Entra's, which
    /// [`Store::fail_run`] records with the read totals): only while it is still `running`.
    pub async fn abandon_run(&self, run_id: Uuid, error: &RunError, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin_event_write().await?;
        let done = sqlx::query(
            "UPDATE sync_runs SET status = 'failed', finished_at = $2, error_kind = $3, error_message = $4
             WHERE id = $1 AND status = 'running'",
        )
        .bind(run_id.to_string())
        .bind(ts(now))
        .bind(&error.kind)
        .bind(&error.message)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            let details = json!({"kind": error.kind, "message": error.message});
            self.insert_audit(&mut tx, now, &format!("sync:{run_id}"), "sync.failed", None, &details).await?;
            self.insert_sync_event(&mut tx, run_id, "sync.failed", Counts::default(), Some(error), now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn runs(&self, limit: u32) -> Result<Vec<RunRecord>> {
        let sql =
            format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE org_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2");
        let rows: Vec<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&self.org)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(RunRecord::try_from).collect()
    }

    /// A run, by the id a caller typed; its changes are read a page at a time
    /// ([`Store::run_changes`]).
    pub async fn run(&self, id: &str) -> Result<RunRecord> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE org_id = $1 AND id = $2");
        let row: Option<RunRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&self.org).bind(id.trim()).fetch_optional(&self.pool).await?;
        row.ok_or_else(|| StoreError::NotFound { entity: Entity::Run, key: id.to_owned() })?.try_into()
    }

    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        self.audit_log_of(Some(&self.org), limit).await
    }

    /// The platform's own audit log (organisations and operators created, platform tokens),
    /// newest first.
    pub async fn platform_audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        self.audit_log_of(None, limit).await
    }

    async fn audit_log_of(&self, org: Option<&str>, limit: u32) -> Result<Vec<AuditEntry>> {
        // `org_id = $1` with NULL would match nothing: the platform's rows are asked for apart.
        let sql = "SELECT id, at, actor, action, target, details FROM audit_log
                   WHERE (org_id = $1 OR (org_id IS NULL AND $2 = 1)) ORDER BY id DESC LIMIT $3";
        let rows: Vec<(i64, String, String, String, Option<String>, String)> = sqlx::query_as(sql)
            .bind(org.unwrap_or(""))
            .bind(i64::from(org.is_none()))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, at, actor, action, target, details)| AuditEntry {
                id,
                at,
                actor,
                action,
                target,
                details: serde_json::from_str(&details).unwrap_or(Value::Null),
            })
            .collect())
    }

    /// Events after `after` (a sequence number), oldest first.
    pub async fn events(&self, after: i64, limit: u32) -> Result<Vec<Event>> {
        let rows: Vec<(i64, String, String, String, String)> = sqlx::query_as(
            "SELECT seq, at, kind, user_id, payload FROM events WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(&self.org)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, at, kind, user_id, payload)| event_from_row(seq, at, kind, user_id, payload))
            .collect())
    }
}
