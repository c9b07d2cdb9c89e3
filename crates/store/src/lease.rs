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

/// The lease as one holder took it: its generation is raised by every taking, so a holder
/// that stalled past its lease and wakes after another took over no longer matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub holder: String,
    pub generation: i64,
}

/// A released lease keeps its row (and so its generation): released is no holder, expired.
const RELEASED: &str = "";
const LONG_AGO: &str = "1970-01-01T00:00:00Z";

impl Store {
    /// Takes the lease for `holder` until `now + ttl` and returns its fence, or answers who
    /// holds it.
    pub async fn acquire_lease(
        &self,
        holder: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<std::result::Result<Fence, LeaseHolder>> {
        let taken: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO sync_lease (org_id, holder, run_id, expires_at, generation) VALUES ($1, $2, NULL, $3, 1)
             ON CONFLICT (org_id) DO UPDATE SET holder = excluded.holder, run_id = NULL, expires_at = excluded.expires_at,
                 generation = sync_lease.generation + 1
             WHERE sync_lease.expires_at < $4 OR sync_lease.holder = excluded.holder
             RETURNING generation",
        )
        .bind(&self.org)
        .bind(holder)
        .bind(ts(now + ttl))
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?;
        if let Some((generation,)) = taken {
            return Ok(Ok(Fence { holder: holder.to_owned(), generation }));
        }
        Ok(Err(self.lease_holder().await?.unwrap_or(LeaseHolder {
            holder: "unknown".into(),
            run_id: None,
            expires_at: now,
        })))
    }

    pub async fn lease_holder(&self) -> Result<Option<LeaseHolder>> {
        let row: Option<(String, Option<String>, String)> =
            sqlx::query_as("SELECT holder, run_id, expires_at FROM sync_lease WHERE org_id = $1 AND holder <> $2")
                .bind(&self.org)
                .bind(RELEASED)
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

    /// This store with every write transaction fenced by `fence`: each checks first, inside
    /// itself, that the lease is still the one taken, and writes nothing if another holder
    /// took it since ([`StoreError::Fenced`](crate::StoreError::Fenced)). On PostgreSQL the
    /// check also locks the lease row until the transaction ends, so no one takes the lease
    /// over in the middle of an apply.
    pub fn fenced(&self, fence: Fence) -> Store {
        Store { fence: Some(std::sync::Arc::new(fence)), ..self.for_org(&self.org) }
    }

    /// The check of [`Store::fenced`], in the caller's transaction.
    pub(crate) async fn check_fence(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<()> {
        let Some(fence) = &self.fence else { return Ok(()) };
        let current = sqlx::query(
            "UPDATE sync_lease SET generation = generation WHERE org_id = $1 AND holder = $2 AND generation = $3",
        )
        .bind(&self.org)
        .bind(&fence.holder)
        .bind(fence.generation)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if current == 1 { Ok(()) } else { Err(crate::StoreError::Fenced) }
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

    /// Releases the lease `fence` took, if it is still the current one: a run that ends
    /// never releases a lease taken after its own (another run of the same holder's).
    pub async fn release_lease(&self, fence: &Fence) -> Result<()> {
        sqlx::query(
            "UPDATE sync_lease SET holder = $4, run_id = NULL, expires_at = $5
             WHERE org_id = $1 AND holder = $2 AND generation = $3",
        )
        .bind(&self.org)
        .bind(&fence.holder)
        .bind(fence.generation)
        .bind(RELEASED)
        .bind(LONG_AGO)
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
