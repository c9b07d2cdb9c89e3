//! The sync's copy of Entra ID (users, groups, direct members) and the cursor of the delta
//! rounds. An incremental run reads only the rows its changes touch; a run writes the copy
//! in the transaction that applies its plan (see `Store::apply_plan`).

use std::collections::HashSet;

use safegpt_core::{EntraChanges, LocalUser, MemberKind, Membership, PackedUser, RemoteUser, Source, Status, UserType};
use sqlx::{Any, AssertSqlSafe, Transaction};

use time::OffsetDateTime;

use crate::batch::{Arg, IN_CHUNK, delete_ids, delete_where_in, insert_rows, org_and_in};
use crate::users::{USER_COLUMNS, UserRow};
use crate::writer::byte_range;
use crate::{Result, Store, StoreError, parse_ts, ts};
use futures_util::TryStreamExt;

/// Where the next delta rounds start, and what the copy was built for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncCursor {
    pub users_delta_link: Option<String>,
    pub groups_delta_link: Option<String>,
    /// When the copy was last rebuilt by a full read.
    pub full_read_at: Option<OffsetDateTime>,
    /// The scope settings of the last applied run (see the sync engine); another scope
    /// needs a full read.
    pub scope: Option<String>,
}

/// What a run writes to the copy beside its plan.
#[derive(Debug)]
pub enum MirrorWrite<'a> {
    /// A full read: the copy's groups are replaced, and its users and memberships a part at
    /// a time as the run's plan is written ([`crate::PlanWriter::copy_users`] and
    /// [`crate::PlanWriter::copy_memberships`]): a run that replaces the copy calls both
    /// for ranges that cover every id, or the copy keeps rows Entra no longer has.
    Replace { groups: &'a [String] },
    /// A delta round: its changes are merged in.
    Merge(&'a EntraChanges),
}

/// The copy and the cursor a run leaves behind when it applies.
#[derive(Debug)]
pub struct Advance<'a> {
    pub mirror: MirrorWrite<'a>,
    /// The users and groups Entra holds as deleted softly (restorable), after this run.
    pub tombstones: &'a [(String, MemberKind)],
    /// Graph contradicted the copy (a direct read found a user back): the next run reads
    /// everything.
    pub full_read_due: bool,
    pub users_delta_link: &'a str,
    pub groups_delta_link: &'a str,
    /// Set by a full read; `None` keeps the time of the last one.
    pub full_read_at: Option<OffsetDateTime>,
    pub scope: &'a str,
}

/// Totals over the whole directory, for the users an incremental plan leaves out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectoryTotals {
    pub synced: u64,
    pub seats_held: u64,
    pub synced_active: u64,
}

#[derive(sqlx::FromRow)]
struct EntraUserRow {
    id: String,
    user_principal_name: String,
    mail: Option<String>,
    display_name: Option<String>,
    given_name: Option<String>,
    surname: Option<String>,
    job_title: Option<String>,
    department: Option<String>,
    account_enabled: i64,
    user_type: String,
    other_mail: Option<String>,
}

impl From<EntraUserRow> for RemoteUser {
    fn from(r: EntraUserRow) -> RemoteUser {
        RemoteUser {
            id: r.id,
            user_principal_name: r.user_principal_name,
            mail: r.mail,
            display_name: r.display_name,
            given_name: r.given_name,
            surname: r.surname,
            job_title: r.job_title,
            department: r.department,
            account_enabled: r.account_enabled != 0,
            user_type: if r.user_type == "Guest" { UserType::Guest } else { UserType::Member },
            other_mail: r.other_mail,
        }
    }
}

const ENTRA_USER_COLUMNS: &str = "id, user_principal_name, mail, display_name, given_name, surname, job_title, \
     department, account_enabled, user_type, other_mail";

const ENTRA_USER_UPSERT_TAIL: &str = "ON CONFLICT (org_id, id) DO UPDATE SET fingerprint = excluded.fingerprint,
     user_principal_name = excluded.user_principal_name, mail = excluded.mail,
     display_name = excluded.display_name, given_name = excluded.given_name, surname = excluded.surname,
     job_title = excluded.job_title, department = excluded.department,
     account_enabled = excluded.account_enabled, user_type = excluded.user_type, other_mail = excluded.other_mail";

fn entra_user_row(org: &str, u: &RemoteUser) -> Vec<Arg> {
    vec![
        org.into(),
        u.id.as_str().into(),
        u.user_principal_name.as_str().into(),
        u.mail.as_deref().into(),
        u.display_name.as_deref().into(),
        u.given_name.as_deref().into(),
        u.surname.as_deref().into(),
        u.job_title.as_deref().into(),
        u.department.as_deref().into(),
        i64::from(u.account_enabled).into(),
        (if u.user_type == UserType::Guest { "Guest" } else { "Member" }).into(),
        u.other_mail.as_deref().into(),
        // Stored as the signed integer both databases have.
        (u.fingerprint() as i64).into(),
    ]
}

/// Rows are written a few thousand at a time so that a million-user copy is never built
/// as one list of bound values.
const WRITE_CHUNK: usize = 5_000;

impl Store {
    pub async fn sync_cursor(&self) -> Result<SyncCursor> {
        #[derive(sqlx::FromRow)]
        struct CursorRow {
            users_delta_link: Option<String>,
            groups_delta_link: Option<String>,
            full_read_at: Option<String>,
            scope: Option<String>,
        }
        let row: Option<CursorRow> = sqlx::query_as(
            "SELECT users_delta_link, groups_delta_link, full_read_at, scope FROM sync_cursor WHERE org_id = $1",
        )
        .bind(&self.org)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(SyncCursor::default());
        };
        Ok(SyncCursor {
            users_delta_link: row.users_delta_link,
            groups_delta_link: row.groups_delta_link,
            full_read_at: row.full_read_at.as_deref().map(parse_ts).transpose()?,
            scope: row.scope,
        })
    }

    /// The users and groups Entra deleted softly, as the last applied run saw them.
    pub async fn tombstones(&self) -> Result<Vec<(String, MemberKind)>> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, kind FROM entra_tombstones WHERE org_id = $1")
            .bind(&self.org)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, kind)| (id, if kind == "group" { MemberKind::Group } else { MemberKind::User }))
            .collect())
    }

    /// Replaces the set: it is small (what was deleted in the last 30 days).
    async fn write_tombstones(&self, tx: &mut Transaction<'_, Any>, all: &[(String, MemberKind)]) -> Result<()> {
        sqlx::query("DELETE FROM entra_tombstones WHERE org_id = $1").bind(&self.org).execute(&mut **tx).await?;
        // Once each: one multi-row upsert may not touch a row twice (PostgreSQL refuses).
        let unique: std::collections::BTreeMap<&str, MemberKind> =
            all.iter().map(|(id, k)| (id.as_str(), *k)).collect();
        let rows: Vec<Vec<Arg>> = unique
            .into_iter()
            .map(|(id, kind)| vec![self.org.as_str().into(), id.into(), kind.as_str().into()])
            .collect();
        insert_rows(
            tx,
            self.backend,
            "INSERT INTO entra_tombstones (org_id, id, kind) VALUES",
            "ON CONFLICT (org_id, id) DO UPDATE SET kind = excluded.kind",
            3,
            rows,
        )
        .await
    }

    /// Rows selected by `{head} org_id = $1 AND {column} IN (ids)`, chunked.
    async fn select_in<R>(&self, head: &str, column: &str, ids: &[String]) -> Result<Vec<R>>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        let mut out = Vec::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let sql = org_and_in(self.backend, head, column, chunk.len(), "");
            let mut query = sqlx::query_as::<_, R>(AssertSqlSafe(sql)).persistent(false).bind(self.org.clone());
            for id in chunk {
                query = query.bind(id.clone());
            }
            out.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// The copied Entra users among `ids` (absent ones are not in the tenant).
    pub async fn mirror_users(&self, ids: &[String]) -> Result<Vec<RemoteUser>> {
        let head = format!("SELECT {ENTRA_USER_COLUMNS} FROM entra_users WHERE");
        let rows: Vec<EntraUserRow> = self.select_in(&head, "id", ids).await?;
        Ok(rows.into_iter().map(RemoteUser::from).collect())
    }

    /// Every (parent, child) edge between groups: the group tree. Small next to the users.
    pub async fn mirror_group_edges(&self) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as("SELECT group_id, member_id FROM entra_members WHERE org_id = $1 AND kind = 'group'")
            .bind(&self.org)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The (group, member) memberships of the given members.
    pub async fn mirror_memberships_of(&self, member_ids: &[String]) -> Result<Vec<(String, String)>> {
        self.select_in("SELECT group_id, member_id FROM entra_members WHERE", "member_id", member_ids).await
    }

    /// The direct user members of the given groups.
    pub async fn mirror_user_members_of(&self, group_ids: &[String]) -> Result<Vec<String>> {
        let rows: Vec<(String, String)> =
            self.select_in("SELECT member_id, kind FROM entra_members WHERE", "group_id", group_ids).await?;
        Ok(rows.into_iter().filter(|(_, kind)| kind == MemberKind::User.as_str()).map(|(id, _)| id).collect())
    }

    /// Which of `ids` are groups of the copy.
    pub async fn mirror_groups_present(&self, ids: &[String]) -> Result<HashSet<String>> {
        let rows: Vec<(String,)> = self.select_in("SELECT id FROM entra_groups WHERE", "id", ids).await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The directory users linked to the given Entra ids.
    pub async fn users_by_azure_ids(&self, azure_ids: &[String]) -> Result<Vec<LocalUser>> {
        let head = format!("SELECT {USER_COLUMNS} FROM users WHERE");
        let rows: Vec<UserRow> = self.select_in(&head, "azure_object_id", azure_ids).await?;
        rows.into_iter().map(LocalUser::try_from).collect()
    }

    /// Users a plan must look at even when Entra reports no change for them: local accounts
    /// (they may be linked by e-mail), users awaiting a license (a seat may be free), users
    /// the sync disabled (their removal may be due) and active users out of scope (kept
    /// while auto-disable was off, or enabled by an administrator: the rules may disable
    /// them). Every other user is as the last plan left it, and planning it again with
    /// the same Entra data changes nothing. Oldest first, as a full plan sees them. The
    /// first condition repeats the partial index `users_needing_a_look`, so that the
    /// databases read only the index's few rows instead of the directory.
    pub async fn users_needing_a_look(&self) -> Result<Vec<LocalUser>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1
                 AND (source = 'local' OR status <> 'active' OR in_scope = 0)
                 AND (source = 'local' OR status = 'awaiting_license'
                      OR (status = 'disabled' AND disabled_reason IS NOT NULL AND disabled_reason <> 'admin')
                      OR (status = 'active' AND in_scope = 0))
             ORDER BY created_at, id"
        );
        let rows: Vec<UserRow> = sqlx::query_as(AssertSqlSafe(sql)).bind(&self.org).fetch_all(&self.pool).await?;
        rows.into_iter().map(LocalUser::try_from).collect()
    }

    pub async fn directory_totals(&self) -> Result<DirectoryTotals> {
        // Counted from the narrow index (org_id, source, status), not from the rows.
        let groups: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT source, status, COUNT(*) FROM users WHERE org_id = $1 GROUP BY source, status")
                .bind(&self.org)
                .fetch_all(&self.pool)
                .await?;
        let mut totals = DirectoryTotals::default();
        for (source, status, n) in groups {
            let (n, entra) = (n.max(0) as u64, Source::parse(&source) == Some(Source::Entra));
            let status = Status::parse(&status);
            totals.synced += if entra { n } else { 0 };
            totals.seats_held += if status.is_some_and(Status::holds_seat) { n } else { 0 };
            totals.synced_active += if entra && status == Some(Status::Active) { n } else { 0 };
        }
        Ok(totals)
    }

    /// Writes the copy and the cursor inside a run's transaction.
    pub(crate) async fn write_advance(&self, tx: &mut Transaction<'_, Any>, advance: &Advance<'_>) -> Result<()> {
        match &advance.mirror {
            MirrorWrite::Replace { groups } => self.replace_groups(tx, groups).await?,
            MirrorWrite::Merge(changes) => self.merge_changes(tx, changes).await?,
        }
        self.write_tombstones(tx, advance.tombstones).await?;
        sqlx::query(
            "INSERT INTO sync_cursor (org_id, users_delta_link, groups_delta_link, full_read_at, scope)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (org_id) DO UPDATE SET users_delta_link = excluded.users_delta_link,
                 groups_delta_link = excluded.groups_delta_link,
                 full_read_at = CASE WHEN $6 = 1 THEN NULL
                     ELSE COALESCE(excluded.full_read_at, sync_cursor.full_read_at) END,
                 scope = excluded.scope",
        )
        .bind(&self.org)
        .bind(advance.users_delta_link)
        .bind(advance.groups_delta_link)
        .bind(advance.full_read_at.filter(|_| !advance.full_read_due).map(ts))
        .bind(advance.scope)
        .bind(i64::from(advance.full_read_due))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Makes the copy's users whose ids are in `[from, to)` (open where `None`) equal to
    /// `users`, a full read's users of that range, by writing only what differs: a full read
    /// of an unchanged tenant reads the copy once and writes nothing.
    pub(crate) async fn copy_users_on(
        &self,
        tx: &mut Transaction<'_, Any>,
        from: Option<&str>,
        to: Option<&str>,
        users: &[PackedUser],
    ) -> Result<()> {
        // Stream the copy's rows of the range, find each among the read (in id order),
        // collect the difference. A flag per user rather than a map by id.
        in_order(users, |a, b| a.id() < b.id(), "the users of a full read")?;
        let mut seen = vec![false; users.len()];
        let mut stale = Vec::new();
        let mut changed: Vec<&PackedUser> = Vec::new();
        {
            let (range, bounds) = byte_range(self.backend, "id", from, to, 2);
            let sql = format!("SELECT id, fingerprint FROM entra_users WHERE org_id = $1{range}");
            let mut query = sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(sql)).bind(&self.org);
            for bound in bounds {
                query = query.bind(bound.to_owned());
            }
            let mut rows = query.fetch(&mut **tx);
            while let Some((id, fingerprint)) = rows.try_next().await? {
                match users.binary_search_by(|u| u.id().cmp(&id)) {
                    Err(_) => stale.push(id),
                    Ok(i) => {
                        seen[i] = true;
                        if users[i].fingerprint() as i64 != fingerprint {
                            changed.push(&users[i]);
                        }
                    }
                }
            }
        }
        changed.extend(users.iter().zip(&seen).filter(|(_, seen)| !**seen).map(|(user, _)| user));
        // In key order: the tables are clustered by their keys, and random inserts into a
        // B-tree cost a page split and a cache miss each (3× slower at 100,000 users).
        changed.sort_unstable_by(|a, b| a.id().cmp(b.id()));
        delete_ids(tx, self.backend, "entra_users", &self.org, &stale).await?;
        for chunk in changed.chunks(WRITE_CHUNK) {
            let chunk: Vec<RemoteUser> = chunk.iter().map(|u| u.unpack()).collect();
            self.upsert_entra_users(tx, chunk.iter()).await?;
        }
        Ok(())
    }

    /// Makes the copy's groups and memberships equal to a full read's by writing only what
    /// differs from it.
    async fn replace_groups(&self, tx: &mut Transaction<'_, Any>, groups: &[String]) -> Result<()> {
        let mut unseen: HashSet<&str> = groups.iter().map(String::as_str).collect();
        let mut stale = Vec::new();
        {
            let mut rows = sqlx::query_as::<_, (String,)>("SELECT id FROM entra_groups WHERE org_id = $1")
                .bind(&self.org)
                .fetch(&mut **tx);
            while let Some((id,)) = rows.try_next().await? {
                if !unseen.remove(id.as_str()) {
                    stale.push(id);
                }
            }
        }
        delete_ids(tx, self.backend, "entra_groups", &self.org, &stale).await?;
        self.insert_groups(tx, unseen.into_iter()).await
    }

    /// Makes the copy's memberships of the groups whose ids are in `[from, to)` (open where
    /// `None`) equal to `memberships`, a full read's memberships of those groups, by writing
    /// only what differs.
    pub(crate) async fn copy_memberships_on(
        &self,
        tx: &mut Transaction<'_, Any>,
        from: Option<&str>,
        to: Option<&str>,
        memberships: &[Membership],
    ) -> Result<()> {
        // By group, then member (as the read gives them): each streamed row found by search.
        fn key(m: &Membership) -> (&str, &str) {
            (&*m.group_id, &*m.member_id)
        }
        in_order(memberships, |a, b| key(a) < key(b), "the memberships of a full read")?;
        let mut seen = vec![false; memberships.len()];
        let mut stale = Vec::new();
        let mut changed: Vec<&Membership> = Vec::new();
        {
            let (range, bounds) = byte_range(self.backend, "group_id", from, to, 2);
            let sql = format!("SELECT group_id, member_id, kind FROM entra_members WHERE org_id = $1{range}");
            let mut query = sqlx::query_as::<_, (String, String, String)>(AssertSqlSafe(sql)).bind(&self.org);
            for bound in bounds {
                query = query.bind(bound.to_owned());
            }
            let mut rows = query.fetch(&mut **tx);
            while let Some((group_id, member_id, kind)) = rows.try_next().await? {
                match memberships.binary_search_by(|m| key(m).cmp(&(group_id.as_str(), member_id.as_str()))) {
                    Err(_) => stale.push((group_id, member_id)),
                    Ok(i) => {
                        seen[i] = true;
                        if memberships[i].kind.as_str() != kind {
                            changed.push(&memberships[i]);
                        }
                    }
                }
            }
        }
        changed.extend(memberships.iter().zip(&seen).filter(|(_, seen)| !**seen).map(|(m, _)| m));
        changed.sort_unstable();
        for (group_id, member_id) in &stale {
            self.delete_membership(tx, group_id, member_id).await?;
        }
        for chunk in changed.chunks(WRITE_CHUNK) {
            self.insert_memberships(tx, chunk.iter().copied()).await?;
        }
        Ok(())
    }

    async fn delete_membership(&self, tx: &mut Transaction<'_, Any>, group_id: &str, member_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM entra_members WHERE org_id = $1 AND group_id = $2 AND member_id = $3")
            .bind(&self.org)
            .bind(group_id)
            .bind(member_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn merge_changes(&self, tx: &mut Transaction<'_, Any>, changes: &EntraChanges) -> Result<()> {
        let (present, removed): (Vec<_>, Vec<_>) = changes.users.iter().partition(|(_, u)| u.is_some());
        self.upsert_entra_users(tx, present.iter().filter_map(|(_, u)| u.as_ref())).await?;
        let removed: Vec<String> = removed.into_iter().map(|(id, _)| id.clone()).collect();
        delete_ids(tx, self.backend, "entra_users", &self.org, &removed).await?;

        let (kept, gone): (Vec<_>, Vec<_>) = changes.groups.iter().partition(|(_, exists)| **exists);
        self.insert_groups(tx, kept.iter().map(|(id, _)| id.as_str())).await?;
        let gone: Vec<String> = gone.into_iter().map(|(id, _)| id.clone()).collect();
        delete_ids(tx, self.backend, "entra_groups", &self.org, &gone).await?;
        // A deleted group has no members and is a member of nothing.
        delete_where_in(tx, self.backend, "entra_members", "group_id", &self.org, &gone).await?;
        delete_where_in(tx, self.backend, "entra_members", "member_id", &self.org, &gone).await?;

        let mut added = Vec::new();
        for ((group_id, member_id), kind) in &changes.members {
            match kind {
                Some(kind) => added.push(Membership {
                    group_id: group_id.as_str().into(),
                    member_id: member_id.as_str().into(),
                    kind: *kind,
                }),
                None => self.delete_membership(tx, group_id, member_id).await?,
            }
        }
        // Added members of a group deleted in the same round are not kept.
        added.retain(|m| changes.groups.get(&*m.group_id) != Some(&false));
        self.insert_memberships(tx, added.iter()).await
    }

    async fn upsert_entra_users<'u>(
        &self,
        tx: &mut Transaction<'_, Any>,
        users: impl Iterator<Item = &'u RemoteUser>,
    ) -> Result<()> {
        let rows: Vec<Vec<Arg>> = users.map(|u| entra_user_row(&self.org, u)).collect();
        let head = format!("INSERT INTO entra_users (org_id, {ENTRA_USER_COLUMNS}, fingerprint) VALUES");
        insert_rows(tx, self.backend, &head, ENTRA_USER_UPSERT_TAIL, 13, rows).await
    }

    async fn insert_groups<'g>(
        &self,
        tx: &mut Transaction<'_, Any>,
        groups: impl Iterator<Item = &'g str>,
    ) -> Result<()> {
        let rows: Vec<Vec<Arg>> = groups.map(|g| vec![self.org.as_str().into(), g.into()]).collect();
        insert_rows(tx, self.backend, "INSERT INTO entra_groups (org_id, id) VALUES", "ON CONFLICT DO NOTHING", 2, rows)
            .await
    }

    async fn insert_memberships<'m>(
        &self,
        tx: &mut Transaction<'_, Any>,
        memberships: impl Iterator<Item = &'m Membership>,
    ) -> Result<()> {
        let rows: Vec<Vec<Arg>> = memberships
            .map(|m| {
                vec![self.org.as_str().into(), (&*m.group_id).into(), (&*m.member_id).into(), m.kind.as_str().into()]
            })
            .collect();
        insert_rows(
            tx,
            self.backend,
            "INSERT INTO entra_members (org_id, group_id, member_id, kind) VALUES",
            "ON CONFLICT (org_id, group_id, member_id) DO UPDATE SET kind = excluded.kind",
            4,
            rows,
        )
        .await
    }
}
/// Refuses `items` not in strictly ascending `key` order: the copy is compared with them
/// by binary search, which would take a row it cannot find for one Entra no longer has.
fn in_order<T>(items: &[T], before: impl Fn(&T, &T) -> bool, what: &str) -> Result<()> {
    match items.windows(2).position(|pair| !before(&pair[0], &pair[1])) {
        None => Ok(()),
        Some(at) => Err(StoreError::Corrupt { what: what.into(), cause: format!("out of order or repeated at {at}") }),
    }
}
