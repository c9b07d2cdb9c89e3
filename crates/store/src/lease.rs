//! The sync lease (at most one sync per organisation, across processes) and the shared
//! schedule of the next run.
//!
//! Taking the lease is one conditional upsert: it succeeds when no lease exists, when the
//! current one expired, or when this holder has it already. Both SQLite and PostgreSQL
//! execute it atomically, so two processes can never both hold it.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::{Result, Store, parse_ts, ts};

/// Who holds the lease right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub holder: String,
    pub run_id: Option<Uuid>,
    pub expires_at: OffsetDateTime,
}

impl Store {
    /// Takes the lease for `holder` until `now + ttl`, or answers who holds it.
    pub async fn acquire_lease(
        &self,
        holder: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<std::result::Result<(), LeaseHolder>> {
        let taken = sqlx::query(
            "INSERT INTO sync_lease (org_id, holder, run_id, expires_at) VALUES ($1, $2, NULL, $3)
             ON CONFLICT (org_id) DO UPDATE SET holder = excluded.holder, run_id = NULL, expires_at = excluded.expires_at
             WHERE sync_lease.expires_at < $4 OR sync_lease.holder = excluded.holder",
        )
        .bind(&self.org)
        .bind(holder)
        .bind(ts(now + ttl))
        .bind(ts(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if taken == 1 {
            return Ok(Ok(()));
        }
        Ok(Err(self.lease_holder().await?.unwrap_or(LeaseHolder {
            holder: "unknown".into(),
            run_id: None,
            expires_at: now,
        })))
    }

    pub async fn lease_holder(&self) -> Result<Option<LeaseHolder>> {
        let row: Option<(String, Option<String>, String)> =
            sqlx::query_as("SELECT holder, run_id, expires_at FROM sync_lease WHERE org_id = $1")
                .bind(&self.org)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(holder, run_id, expires_at)| {
            Ok(LeaseHolder {
                holder,
                run_id: run_id.and_then(|id| Uuid::parse_str(&id).ok()),
                expires_at: parse_ts(&expires_at)?,
            })
        })
        .transpose()
    }

    /// Extends the lease and records the run it protects; `false` when `holder` lost it.
    pub async fn renew_lease(
        &self,
        holder: &str,
        run_id: Option<Uuid>,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<bool> {
        let renewed = sqlx::query(
            "UPDATE sync_lease SET expires_at = $3, run_id = COALESCE($4, run_id) WHERE org_id = $1 AND holder = $2",
        )
        .bind(&self.org)
        .bind(holder)
        .bind(ts(now + ttl))
        .bind(run_id.map(|id| id.to_string()))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(renewed == 1)
    }

    pub async fn release_lease(&self, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM sync_lease WHERE org_id = $1 AND holder = $2")
            .bind(&self.org)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// When the scheduler should start the next sync (`None`: not scheduled yet).
    pub async fn next_run_at(&self) -> Result<Option<OffsetDateTime>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT next_run_at FROM sync_schedule WHERE org_id = $1")
            .bind(&self.org)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|(at,)| parse_ts(&at)).transpose()
    }

    pub async fn set_next_run_at(&self, at: OffsetDateTime) -> Result<()> {
        sqlx::query(
            "INSERT INTO sync_schedule (org_id, next_run_at) VALUES ($1, $2)
             ON CONFLICT (org_id) DO UPDATE SET next_run_at = excluded.next_run_at",
        )
        .bind(&self.org)
        .bind(ts(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves the next run from `expected` to `next`, only if no other instance moved it
    /// first: the instance whose update succeeds starts the scheduled run.
    pub async fn claim_scheduled_run(&self, expected: OffsetDateTime, next: OffsetDateTime) -> Result<bool> {
        let claimed = sqlx::query("UPDATE sync_schedule SET next_run_at = $3 WHERE org_id = $1 AND next_run_at = $2")
            .bind(&self.org)
            .bind(ts(expected))
            .bind(ts(next))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(claimed == 1)
    }
}

/// What `/metrics` reads from the database: shared by every instance, so the numbers agree
/// whichever instance is scraped.
#[derive(Debug, Clone, Default)]
pub struct DirectoryStats {
    /// Runs by status, all time.
    pub runs_by_status: Vec<(String, u64)>,
    /// Durations in seconds of the most recent finished runs.
    pub run_durations: Vec<f64>,
    pub users_by_status: Vec<(String, u64)>,
    pub last_success: Option<OffsetDateTime>,
}

impl Store {
    /// For `/readyz`: the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn directory_stats(&self) -> Result<DirectoryStats> {
        let count = |rows: Vec<(String, i64)>| rows.into_iter().map(|(k, n)| (k, n.max(0) as u64)).collect();
        let runs: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM sync_runs WHERE org_id = $1 GROUP BY status ORDER BY status")
                .bind(&self.org)
                .fetch_all(&self.pool)
                .await?;
        let users: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM users WHERE org_id = $1 GROUP BY status ORDER BY status")
                .bind(&self.org)
                .fetch_all(&self.pool)
                .await?;
        let times: Vec<(String, String)> = sqlx::query_as(
            "SELECT started_at, finished_at FROM sync_runs WHERE org_id = $1 AND finished_at IS NOT NULL
             ORDER BY started_at DESC LIMIT 10000",
        )
        .bind(&self.org)
        .fetch_all(&self.pool)
        .await?;
        let mut run_durations = Vec::with_capacity(times.len());
        for (started, finished) in times {
            run_durations.push((parse_ts(&finished)? - parse_ts(&started)?).as_seconds_f64().max(0.0));
        }
        let last: Option<(String,)> = sqlx::query_as(
            "SELECT finished_at FROM sync_runs WHERE org_id = $1 AND status = 'succeeded' AND finished_at IS NOT NULL
             ORDER BY finished_at DESC LIMIT 1",
        )
        .bind(&self.org)
        .fetch_optional(&self.pool)
        .await?;
        Ok(DirectoryStats {
            runs_by_status: count(runs),
            run_durations,
            users_by_status: count(users),
            last_success: last.map(|(at,)| parse_ts(&at)).transpose()?,
        })
    }
}
