//! Shared state of a running simulator: the directory, issued tokens, faults and statistics.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::tenant::Directory;

/// Where the simulator says it lives, in links and discovery documents.
#[derive(Debug, Clone)]
pub struct PublicUrls {
    /// Root of the token endpoint, e.g. `http://127.0.0.1:8080` or `https://login.microsoftonline.com`.
    pub login: String,
    /// Root of Graph without `/v1.0`.
    pub graph: String,
}

#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub client_id: String,
    pub roles: Vec<String>,
    pub expires: Instant,
}

/// Faults to inject, replaced as a whole by `PUT /_sim/faults`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Faults {
    /// Fail matching requests.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    /// Answer a share of Graph requests with 429.
    #[serde(default)]
    pub throttle: Option<Throttle>,
    /// Extra latency for every Graph and token request.
    #[serde(default)]
    pub latency_ms: u64,
    /// Lifetime of newly issued access tokens (default 3599 s, as Entra).
    #[serde(default)]
    pub token_lifetime_secs: Option<u64>,
    /// Invalidate every delta token issued so far (a "synchronization reset").
    #[serde(default)]
    pub reset_delta_tokens: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    /// Prefix of the request path, e.g. `/v1.0/users` or `/{tenant}/oauth2/v2.0/token`.
    pub path: String,
    /// Optional substring the path and query must contain, e.g. `$skiptoken`.
    #[serde(default)]
    pub contains: Option<String>,
    /// Let this many matching requests through before failing.
    #[serde(default)]
    pub skip: u64,
    /// How many matching requests fail (after `skip`).
    pub count: u64,
    #[serde(default = "default_fault_status")]
    pub status: u16,
    /// Cut the connection in the middle of a 200 answer instead of answering `status`.
    #[serde(default)]
    pub reset: bool,
    /// Body to send; a Graph error body for `status` (with `code` if given) when absent.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// The Graph `error.code` of the default body, e.g. `Directory_ExpiredPageToken`.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub retry_after: Option<String>,
}

impl FaultRule {
    /// The Graph error body this rule answers with when it names no body.
    pub fn error_body(&self, request_id: &str) -> serde_json::Value {
        match &self.code {
            Some(code) => crate::http::graph_error_body(code, "Injected fault.", request_id),
            None => crate::http::default_error_for(self.status, request_id),
        }
    }
}

fn default_fault_status() -> u16 {
    500
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Throttle {
    /// Share of requests to throttle, 0.0–1.0.
    pub share: f64,
    /// `Retry-After` value as sent (decimal seconds); omitted when absent.
    #[serde(default)]
    pub retry_after: Option<String>,
}

#[derive(Debug, Default)]
pub struct Stats {
    /// (route, status) -> count.
    pub requests: BTreeMap<(String, u16), u64>,
    pub bytes_sent: u64,
}

pub struct SimState {
    pub dir: Directory,
    pub tokens: HashMap<String, IssuedToken>,
    pub faults: Faults,
    /// Matches seen per fault rule (index into `faults.rules`).
    pub rule_hits: Vec<u64>,
    /// Delta tokens issued before this sequence number are rejected.
    pub delta_floor: u64,
    /// Replication delay: per delta kind (users, groups), where the directory stood when
    /// the last round from a delta link began.
    pub delta_lag: [u64; 2],
    pub stats: Stats,
    rng: crate::generate::Rng,
    /// Which tenant of the server issued a token: its index, inside the token, as a real
    /// access token carries its `tid`.
    pub token_tag: usize,
}

impl SimState {
    pub fn new(dir: Directory) -> Self {
        SimState {
            dir,
            tokens: HashMap::new(),
            faults: Faults::default(),
            rule_hits: Vec::new(),
            delta_floor: 0,
            delta_lag: [0; 2],
            stats: Stats::default(),
            rng: crate::generate::Rng(0x9E37_79B9_7F4A_7C15),
            token_tag: 0,
        }
    }

    /// A deterministic pseudo-random number, so fault injection is reproducible.
    pub fn next_random(&mut self) -> u64 {
        self.rng.next()
    }

    pub fn set_faults(&mut self, faults: Faults) {
        if faults.reset_delta_tokens {
            self.delta_floor = self.dir.seq + 1;
            // Make sure the next token issued is above the floor.
            self.dir.seq += 1;
        }
        self.rule_hits = vec![0; faults.rules.len()];
        self.faults = faults;
    }

    pub fn token_lifetime(&self) -> Duration {
        Duration::from_secs(self.faults.token_lifetime_secs.unwrap_or(3599))
    }

    /// The first fault rule that fires for this request, if any.
    pub fn fire_rule(&mut self, path: &str, path_and_query: &str) -> Option<FaultRule> {
        for (i, rule) in self.faults.rules.iter().enumerate() {
            let matches =
                path.starts_with(&rule.path) && rule.contains.as_deref().is_none_or(|c| path_and_query.contains(c));
            if !matches {
                continue;
            }
            let hits = &mut self.rule_hits[i];
            *hits += 1;
            if *hits > rule.skip && *hits <= rule.skip + rule.count {
                return Some(rule.clone());
            }
        }
        None
    }

    pub fn should_throttle(&mut self) -> Option<Option<String>> {
        let throttle = self.faults.throttle.clone()?;
        let roll = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64;
        (roll < throttle.share).then_some(throttle.retry_after)
    }
}

/// Every tenant one server serves, found by the tenant id or domain in a token request's
/// path, and by the tag inside an access token for Graph requests.
#[derive(Clone)]
pub struct Tenants {
    sims: Arc<Vec<Sim>>,
    by_key: Arc<HashMap<String, usize>>,
}

impl Tenants {
    pub fn new(sims: Vec<Sim>) -> Tenants {
        let mut by_key = HashMap::new();
        for (i, sim) in sims.iter().enumerate() {
            let mut state = sim.lock();
            state.token_tag = i;
            by_key.insert(state.dir.tenant_id.to_ascii_lowercase(), i);
            by_key.insert(state.dir.domain.to_ascii_lowercase(), i);
        }
        Tenants { sims: Arc::new(sims), by_key: Arc::new(by_key) }
    }

    /// The first tenant: the one a single-tenant server serves.
    pub fn first(&self) -> &Sim {
        &self.sims[0]
    }

    pub fn all(&self) -> &[Sim] {
        &self.sims
    }

    /// The tenant with this id or domain.
    pub fn get(&self, tenant: &str) -> Option<&Sim> {
        self.by_key.get(&tenant.to_ascii_lowercase()).map(|i| &self.sims[*i])
    }

    /// The tenant that issued `token` (`simtok.TAG.RANDOM`); the first for anything else,
    /// which then refuses it as Graph refuses a token it never issued.
    pub fn for_token(&self, token: &str) -> &Sim {
        let tag = token.strip_prefix("simtok.").and_then(|rest| rest.split_once('.')).and_then(|(t, _)| t.parse().ok());
        tag.and_then(|i: usize| self.sims.get(i)).unwrap_or(&self.sims[0])
    }
}

/// A cheaply clonable handle on the simulator state.
#[derive(Clone)]
pub struct Sim {
    state: Arc<Mutex<SimState>>,
    pub urls: Arc<PublicUrls>,
}

impl Sim {
    pub fn new(dir: Directory, urls: PublicUrls) -> Self {
        Sim { state: Arc::new(Mutex::new(SimState::new(dir))), urls: Arc::new(urls) }
    }

    pub fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock leaves consistent data (every change is one
        // statement), so keep serving rather than poisoning the whole simulator.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
