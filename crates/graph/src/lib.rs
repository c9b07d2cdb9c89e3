//! A thin Microsoft Graph client for the Azure User Sync: client-credentials tokens,
//! paging over `@odata.nextLink`, retries honouring `Retry-After`, and failures classified
//! into [`ErrorKind`]s an administrator can act on.

mod batch;
mod early_link;
mod error;
mod retry;
mod wire;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio::time::Instant;

pub use batch::Confirmation;
pub use error::{ErrorKind, GraphError, Purpose};
pub use retry::RetryPolicy;
use safegpt_core::{RemoteUser, UserPatch};
use wire::{Page, WireGroupDelta, WireMember, WireUser};

/// One user in a `users/delta` round. The same user may come more than once in a round.
#[derive(Debug, Clone, PartialEq)]
pub enum UserDelta {
    /// Created, changed or restored: what Graph sent of it, which on later rounds may be
    /// only the properties that changed (see [`UserPatch`]).
    Present(UserPatch),
    /// Deleted: soft (restorable for 30 days, its memberships kept) unless `permanent`.
    Removed { id: String, permanent: bool },
}

/// One group in a `groups/delta` round, with the direct members that changed (all of them
/// on a first round). The same group may come again on a later page; merge, don't replace.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDelta {
    pub id: String,
    pub removed: bool,
    /// Removed for good (a security group, or a purged Microsoft 365 group).
    pub permanent: bool,
    pub members: Vec<MemberDelta>,
}

/// A direct member in `members@delta`: `kind` is `None` when it left the group.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberDelta {
    pub id: String,
    pub kind: Option<safegpt_core::MemberKind>,
}

/// Where a delta round starts.
#[derive(Debug, Clone, Copy)]
pub enum DeltaStart<'a> {
    /// A first round: every object, then a delta link.
    Initial,
    /// The delta link a previous round ended with: only what changed since.
    Link(&'a str),
}

/// Delta rounds ask for Graph's largest pages (the default is 100–200 objects).
const DELTA_PREFER: &str = "odata.maxpagesize=999";

/// The properties the directory stores; nothing more is requested.
pub const USER_SELECT: &str =
    "id,userPrincipalName,mail,displayName,givenName,surname,jobTitle,department,accountEnabled,userType,otherMails";
/// Graph's maximum page size for users and member lists.
pub const PAGE_SIZE: u32 = 999;

/// Where to send requests: roots as for the clouds (`https://login.microsoftonline.com`,
/// `https://graph.microsoft.com`); the client appends `/{tenant}/oauth2/v2.0/token` and `/v1.0/…`.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub login_url: String,
    pub graph_url: String,
}

pub struct Credentials {
    /// Tenant GUID or verified domain.
    pub tenant: String,
    pub client_id: String,
    pub secret: SecretString,
}

/// Counters for run records and benchmarks.
#[derive(Debug, Default)]
pub struct Traffic {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
}

/// Requests of every client of this process, for `/metrics`: by HTTP status (`error` for
/// a transport failure) and how many were throttled (429).
#[derive(Debug, Default)]
pub struct ProcessTraffic {
    by_status: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    pub throttled: AtomicU64,
}

impl ProcessTraffic {
    pub fn get() -> &'static ProcessTraffic {
        static STATS: std::sync::OnceLock<ProcessTraffic> = std::sync::OnceLock::new();
        STATS.get_or_init(ProcessTraffic::default)
    }

    fn record(&self, status: &str) {
        *self.by_status.lock().expect("traffic lock").entry(status.to_owned()).or_default() += 1;
    }

    pub fn by_status(&self) -> Vec<(String, u64)> {
        self.by_status.lock().expect("traffic lock").iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

struct CachedToken {
    value: SecretString,
    refresh_at: Instant,
}

pub struct GraphClient {
    http: reqwest::Client,
    endpoints: Endpoints,
    credentials: Credentials,
    retry: RetryPolicy,
    token: Mutex<Option<CachedToken>>,
    pub traffic: Arc<Traffic>,
}

/// For a 3xx answer, where it points (if it says): `Some` means "a redirect".
fn redirect_location(response: &reqwest::Response) -> Option<Option<String>> {
    response
        .status()
        .is_redirection()
        .then(|| response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned))
}

/// One rustls provider (ring) for the whole process; every HTTP client calls this first.
pub fn install_crypto_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // Another part of the process may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl GraphClient {
    pub fn new(endpoints: Endpoints, credentials: Credentials, retry: RetryPolicy) -> Result<Self, GraphError> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(retry.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("SafeGPT-Directory/", env!("CARGO_PKG_VERSION")))
            // A redirect would carry the client secret (a 307 re-posts the token form) or
            // the access token to a host nobody configured: it is an error, not a detour.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GraphError::new(ErrorKind::Unexpected, "cannot build the HTTP client", e.to_string()))?;
        let endpoints = Endpoints {
            login_url: endpoints.login_url.trim_end_matches('/').to_owned(),
            graph_url: endpoints.graph_url.trim_end_matches('/').to_owned(),
        };
        Ok(GraphClient { http, endpoints, credentials, retry, token: Mutex::new(None), traffic: Arc::default() })
    }

    /// A valid access token: cached, refreshed shortly before `expires_in` runs out.
    /// The lock makes concurrent callers share one refresh.
    async fn access_token(&self, force_refresh: bool) -> Result<SecretString, GraphError> {
        let mut cached = self.token.lock().await;
        if !force_refresh
            && let Some(token) = cached.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        let fresh = retry::with_retry(&self.retry, &self.traffic, || self.request_token())
            .await
            .map_err(retry::Attempt::into_error)?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    async fn request_token(&self) -> Result<CachedToken, retry::Attempt> {
        let url = format!("{}/{}/oauth2/v2.0/token", self.endpoints.login_url, self.credentials.tenant);
        let scope = format!("{}/.default", self.endpoints.graph_url);
        let form = [
            ("client_id", self.credentials.client_id.as_str()),
            ("client_secret", self.credentials.secret.expose_secret()),
            ("scope", scope.as_str()),
            ("grant_type", "client_credentials"),
        ];
        let started = Instant::now();
        let response = self.http.post(&url).form(&form).send().await.map_err(|e| self.transport_failed(e))?;
        let status = response.status().as_u16();
        let retry_after = retry_after(&response);
        let location = redirect_location(&response);
        let body = response.bytes().await.map_err(|e| self.transport_failed(e))?;
        self.count(status, body.len());
        if let Some(location) = location {
            return Err(retry::Attempt::Fatal(error::redirect_refused(status, location.as_deref(), "token endpoint")));
        }
        if status == 200 {
            let token: wire::TokenResponse = serde_json::from_slice(&body).map_err(|e| {
                retry::Attempt::Fatal(GraphError::new(
                    ErrorKind::Unexpected,
                    "The token endpoint returned a body that is not a token response.",
                    e.to_string(),
                ))
            })?;
            let lifetime = Duration::from_secs(token.expires_in.max(1));
            // Refresh early: a tenth of the lifetime, at most five minutes, before expiry.
            let skew = (lifetime / 10).min(Duration::from_secs(300));
            return Ok(CachedToken { value: token.access_token.into(), refresh_at: started + lifetime - skew });
        }
        let error = error::classify_token_error(status, &body, &self.credentials.tenant, &self.credentials.client_id);
        if status == 429 {
            self.count_throttled();
        }
        match retry::attempt_for(status, error, retry_after) {
            // Entra's own throttling codes may come with another status.
            retry::Attempt::Fatal(error) if error.kind.is_transient() => Err(retry::Attempt::Retry(error, retry_after)),
            attempt => Err(attempt),
        }
    }

    /// Counts a 429, for the run and for `/metrics`.
    pub(crate) fn count_throttled(&self) {
        self.traffic.throttled.fetch_add(1, Ordering::Relaxed);
        ProcessTraffic::get().throttled.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self, status: u16, bytes: usize) {
        self.traffic.requests.fetch_add(1, Ordering::Relaxed);
        self.traffic.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        ProcessTraffic::get().record(&status.to_string());
    }

    fn transport_failed(&self, e: reqwest::Error) -> retry::Attempt {
        ProcessTraffic::get().record("error");
        retry::Attempt::transport(e)
    }

    /// GETs one Graph page and parses it, retrying transient failures and refreshing the
    /// token once on 401 `InvalidAuthenticationToken`.
    async fn get<R: DeserializeOwned>(
        &self,
        url: &str,
        purpose: &Purpose,
        prefer: Option<&str>,
    ) -> Result<R, GraphError> {
        self.send(url, None, purpose, prefer, None).await
    }

    /// GET (or, with a body, POST as JSON) with the retries of [`GraphClient::get`]. With
    /// `early`, a page's `@odata.nextLink` is put there as soon as the first bytes of the
    /// body show it.
    async fn send<R: DeserializeOwned>(
        &self,
        url: &str,
        body: Option<&serde_json::Value>,
        purpose: &Purpose,
        prefer: Option<&str>,
        early: Option<&EarlyLink>,
    ) -> Result<R, GraphError> {
        let mut refreshed = false;
        loop {
            let token = self.access_token(false).await?;
            let attempt = || self.try_send(url, body, &token, purpose, prefer, early);
            match retry::with_retry(&self.retry, &self.traffic, attempt).await {
                Err(retry::Attempt::TokenRejected(_)) if !refreshed => {
                    refreshed = true;
                    self.access_token(true).await?;
                }
                other => return other.map_err(retry::Attempt::into_error),
            }
        }
    }

    async fn try_send<R: DeserializeOwned>(
        &self,
        url: &str,
        body: Option<&serde_json::Value>,
        token: &SecretString,
        purpose: &Purpose,
        prefer: Option<&str>,
        early: Option<&EarlyLink>,
    ) -> Result<R, retry::Attempt> {
        let request = match body {
            None => self.http.get(url),
            Some(body) => self.http.post(url).json(body),
        };
        let mut request = request.bearer_auth(token.expose_secret()).header("Accept", "application/json");
        if let Some(prefer) = prefer {
            request = request.header("Prefer", prefer);
        }
        let response = request.send().await.map_err(|e| self.transport_failed(e))?;
        let status = response.status().as_u16();
        let retry_after = retry_after(&response);
        let request_id = response.headers().get("request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
        let location = redirect_location(&response);
        let body = match early {
            Some(early) if status == 200 && location.is_none() => {
                read_watching_for_link(response, early).await.map_err(|e| self.transport_failed(e))?
            }
            _ => response.bytes().await.map(Vec::from).map_err(|e| self.transport_failed(e))?,
        };
        self.count(status, body.len());
        if let Some(location) = location {
            return Err(retry::Attempt::Fatal(error::redirect_refused(status, location.as_deref(), "Graph endpoint")));
        }
        if status == 200 {
            return serde_json::from_slice(&body).map_err(|e| {
                retry::Attempt::Fatal(GraphError::new(
                    ErrorKind::Unexpected,
                    "Microsoft Graph returned a page that is not valid JSON of the expected shape.",
                    format!("{e}; request-id {request_id}"),
                ))
            });
        }
        let error = error::classify_graph_error(status, &body, purpose, &request_id);
        if status == 401 {
            return Err(retry::Attempt::TokenRejected(error));
        }
        if status == 429 {
            self.count_throttled();
        }
        Err(retry::attempt_for(status, error, retry_after))
    }

    /// Checks that a token can be obtained.
    pub async fn check_token(&self) -> Result<(), GraphError> {
        self.access_token(true).await.map(|_| ())
    }

    /// Every user of the tenant, page by page.
    pub fn users(&self) -> Pager<'_, WireUser, RemoteUser> {
        let url = format!("{}/v1.0/users?$select={USER_SELECT}&$top={PAGE_SIZE}", self.endpoints.graph_url);
        Pager::new(self, url, Purpose::Users, wire::user_from_wire)
    }

    /// A `users/delta` round: every user on a first round, else the users created, changed
    /// or deleted since the round that returned the link.
    pub fn users_delta(&self, start: DeltaStart<'_>) -> Pager<'_, WireUser, UserDelta> {
        let url = match start {
            DeltaStart::Initial => format!("{}/v1.0/users/delta?$select={USER_SELECT}", self.endpoints.graph_url),
            DeltaStart::Link(link) => link.to_owned(),
        };
        Pager { prefer: Some(DELTA_PREFER), ..Pager::new(self, url, Purpose::UsersDelta, wire::user_delta_from_wire) }
    }

    /// A `groups/delta` round over the tenant's groups with their direct members
    /// (`members@delta`): all of them on a first round, else the changes.
    pub fn groups_delta(&self, start: DeltaStart<'_>) -> Pager<'_, WireGroupDelta, GroupDelta> {
        let url = match start {
            DeltaStart::Initial => format!("{}/v1.0/groups/delta?$select=id,members", self.endpoints.graph_url),
            DeltaStart::Link(link) => link.to_owned(),
        };
        Pager { prefer: Some(DELTA_PREFER), ..Pager::new(self, url, Purpose::GroupsDelta, wire::group_delta_from_wire) }
    }

    /// Ids of the users that are members of `group_id`, directly or through nested groups.
    /// Other member objects (groups, devices, service principals) are skipped.
    pub fn transitive_user_ids(&self, group_id: &str) -> Pager<'_, WireMember, String> {
        let url = format!(
            "{}/v1.0/groups/{group_id}/transitiveMembers?$select=id&$top={PAGE_SIZE}",
            self.endpoints.graph_url
        );
        Pager::new(self, url, Purpose::Group(group_id.to_owned()), wire::user_id_from_member)
    }

    /// The ids of the soft-deleted users (`directory/deletedItems`, restorable for 30 days).
    pub fn deleted_user_ids(&self) -> Pager<'_, WireMember, String> {
        let url = format!(
            "{}/v1.0/directory/deletedItems/microsoft.graph.user?$select=id&$top={PAGE_SIZE}",
            self.endpoints.graph_url
        );
        Pager::new(self, url, Purpose::Users, wire::member_id)
    }

    /// Reads one user, to check that users can be read.
    pub async fn probe_users(&self) -> Result<(), GraphError> {
        let url = format!("{}/v1.0/users?$select=id&$top=1", self.endpoints.graph_url);
        let _: Page<WireMember> = self.get(&url, &Purpose::Users, None).await?;
        Ok(())
    }

    /// Reads one group (its display name), to check that it exists and is readable.
    pub async fn group_name(&self, group_id: &str) -> Result<String, GraphError> {
        let url = format!("{}/v1.0/groups/{group_id}?$select=id,displayName", self.endpoints.graph_url);
        let group: wire::WireGroup = self.get(&url, &Purpose::Group(group_id.to_owned()), None).await?;
        Ok(wire::clean_text(group.display_name.unwrap_or_default(), 256))
    }
}

/// Where a page's `@odata.nextLink` goes once the first bytes of its body show it.
type EarlyLink = std::sync::OnceLock<String>;

/// Reads a 200 answer's body chunk by chunk, setting `early` as soon as the link is known.
async fn read_watching_for_link(mut response: reqwest::Response, early: &EarlyLink) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::with_capacity(response.content_length().map_or(64 * 1024, |n| n.min(16 << 20) as usize));
    let mut watching = early.get().is_none();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if watching {
            match early_link::next_link(&body) {
                early_link::Scan::Found(link) => {
                    let _ = early.set(link);
                    watching = false;
                    // Back to the pager before reading and parsing the rest, so that the next
                    // request leaves now even when the whole page came in one read.
                    tokio::task::yield_now().await;
                }
                early_link::Scan::Never => watching = false,
                early_link::Scan::NotYet => {}
            }
        }
    }
    Ok(body)
}

/// The `Retry-After` of an answer, when it holds a usable value.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(retry::parse_retry_after)
}

type PageAnswer<'a, W> = Pin<Box<dyn Future<Output = Result<Page<W>, GraphError>> + Send + 'a>>;

/// A page's request on its way: its link, where its own next link will show, and its answer.
struct Fetch<'a, W> {
    url: String,
    early: Arc<EarlyLink>,
    /// Only ever reached through `&mut` (`get_mut`, no locking): the mutex makes the pager
    /// `Sync`, which a future is not, so a reference to it may live across an `.await`.
    answer: std::sync::Mutex<PageAnswer<'a, W>>,
    done: Option<Result<Page<W>, GraphError>>,
}

impl<'a, W: DeserializeOwned + Send + 'a> Fetch<'a, W> {
    fn start(client: &'a GraphClient, url: String, purpose: Purpose, prefer: Option<&'static str>) -> Self {
        let early = Arc::new(EarlyLink::new());
        let (link, watch) = (url.clone(), early.clone());
        let answer = Box::pin(async move { client.send(&link, None, &purpose, prefer, Some(&watch)).await });
        Fetch { url, early, answer: std::sync::Mutex::new(answer), done: None }
    }

    /// Drives the request on; keeps the answer once it is there.
    fn poll_on(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.done.is_none() {
            let answer = self.answer.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
            match answer.as_mut().poll(cx) {
                Poll::Ready(answer) => self.done = Some(answer),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(())
    }
}

/// Follows `@odata.nextLink`. The next page is requested as soon as the current one's first
/// bytes name it, while the rest of the current one arrives and is parsed, so a round costs
/// about one round trip per page; at most two pages of JSON are in memory.
pub struct Pager<'a, W, T> {
    client: &'a GraphClient,
    next: Option<String>,
    purpose: Purpose,
    convert: fn(W) -> Option<T>,
    prefer: Option<&'static str>,
    /// The request for the page after the one last returned, when it is already on its way.
    ahead: Option<Fetch<'a, W>>,
    pub pages: u64,
    /// Set by the last page of a delta round.
    pub delta_link: Option<String>,
}

impl<'a, W: DeserializeOwned + Send + 'a, T> Pager<'a, W, T> {
    fn new(client: &'a GraphClient, first: String, purpose: Purpose, convert: fn(W) -> Option<T>) -> Self {
        Pager { client, next: Some(first), purpose, convert, prefer: None, ahead: None, pages: 0, delta_link: None }
    }

    /// Links come from Graph's answers (or, for a delta link, from the database): the access
    /// token goes only to the configured Graph host.
    fn check_link(&self, url: &str) -> Result<(), GraphError> {
        let graph_root = format!("{}/", self.client.endpoints.graph_url);
        if url.starts_with(&graph_root) {
            return Ok(());
        }
        Err(GraphError::new(
            ErrorKind::Unexpected,
            format!("Microsoft Graph returned a link outside {graph_root}; it was not followed."),
            format!("link host differs from the configured Graph URL: {}", url.split('?').next().unwrap_or("")),
        ))
    }

    /// The next page's items, or `None` after the last page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<T>>, GraphError> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        self.check_link(&url)?;
        let mut current = match self.ahead.take() {
            Some(fetch) if fetch.url == url => fetch,
            _ => Fetch::start(self.client, url, self.purpose.clone(), self.prefer),
        };
        let mut ahead: Option<Fetch<'a, W>> = None;
        std::future::poll_fn(|cx| {
            loop {
                if let Some(fetch) = ahead.as_mut() {
                    let _ = fetch.poll_on(cx);
                }
                let done = current.poll_on(cx);
                // Not past a page that failed: its error ends the round.
                if ahead.is_none()
                    && !matches!(current.done, Some(Err(_)))
                    && let Some(link) = current.early.get().filter(|link| self.check_link(link).is_ok())
                {
                    ahead = Some(Fetch::start(self.client, link.clone(), self.purpose.clone(), self.prefer));
                    // Polled at once, so that its request leaves now.
                    continue;
                }
                return done;
            }
        })
        .await;
        let page = current.done.take().expect("polled to its answer")?;
        self.pages += 1;
        // What was requested ahead is kept only if it is the page Graph's answer names.
        self.ahead = ahead.filter(|fetch| page.next_link.as_deref() == Some(fetch.url.as_str()));
        self.next = page.next_link;
        if page.delta_link.is_some() {
            self.delta_link = page.delta_link;
        }
        Ok(Some(page.value.into_iter().filter_map(self.convert).collect()))
    }
}
