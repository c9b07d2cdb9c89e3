//! Reading a few users directly, twenty requests per JSON batch (`POST /$batch`, "Combine
//! multiple HTTP requests using JSON batching"): to complete a user a delta round sent only
//! in part, and to confirm, before anyone is removed, that Entra still says so.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use safegpt_core::RemoteUser;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::error::classify_graph_error;
use crate::wire::{WireUser, patch_from_wire};
use crate::{GraphClient, GraphError, Purpose, USER_SELECT, retry};

/// Graph refuses more requests than this in one batch.
const MAX_BATCH: usize = 20;
/// `checkMemberGroups` takes at most this many group ids.
const MAX_GROUP_IDS: usize = 20;

/// What Graph says of one user now.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirmation {
    pub id: String,
    /// `None`: Graph does not have the user (deleted).
    pub user: Option<RemoteUser>,
    /// Which of the groups asked about the user is a member of, directly or through
    /// nested groups.
    pub member_of: Vec<String>,
}

#[derive(Debug, Clone)]
struct SubRequest {
    id: String,
    method: &'static str,
    url: String,
    body: Option<Value>,
}

impl SubRequest {
    fn to_json(&self) -> Value {
        let mut out = json!({"id": self.id, "method": self.method, "url": self.url});
        if let Some(body) = &self.body {
            out["body"] = body.clone();
            out["headers"] = json!({"Content-Type": "application/json"});
        }
        out
    }
}

#[derive(Debug, Deserialize)]
struct BatchAnswer {
    #[serde(default)]
    responses: Vec<SubResponse>,
}

#[derive(Debug, Deserialize)]
struct SubResponse {
    id: String,
    status: u16,
    #[serde(default)]
    headers: HashMap<String, Value>,
    #[serde(default)]
    body: Value,
}

impl SubResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str())
    }

    fn error(&self) -> GraphError {
        let body = serde_json::to_vec(&self.body).unwrap_or_default();
        let request_id = self.body["error"]["innerError"]["request-id"].as_str().unwrap_or("-");
        classify_graph_error(self.status, &body, &Purpose::Users, request_id)
    }
}

impl GraphClient {
    /// Reads the given users directly and, when `groups` are given, which of them each user
    /// is a member of (`checkMemberGroups`, nesting included).
    pub async fn confirm_users(&self, ids: &[String], groups: &[String]) -> Result<Vec<Confirmation>, GraphError> {
        let mut requests = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            requests.push(SubRequest {
                id: format!("u{i}"),
                method: "GET",
                url: format!("/users/{id}?$select={USER_SELECT}"),
                body: None,
            });
            for (k, chunk) in groups.chunks(MAX_GROUP_IDS).enumerate() {
                requests.push(SubRequest {
                    id: format!("m{i}-{k}"),
                    method: "POST",
                    url: format!("/users/{id}/checkMemberGroups"),
                    body: Some(json!({ "groupIds": chunk })),
                });
            }
        }
        let mut answers = self.batch(requests).await?;
        let mut out = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            let answer = answers.remove(&format!("u{i}")).expect("every request is answered");
            let user = match answer.status {
                200 => {
                    let wire: WireUser = serde_json::from_value(answer.body.clone()).map_err(|e| {
                        GraphError::new(
                            crate::ErrorKind::Unexpected,
                            "Microsoft Graph returned a user that is not of the expected shape.",
                            e.to_string(),
                        )
                    })?;
                    Some(patch_from_wire(wire).into_read_user())
                }
                404 => None,
                _ => return Err(answer.error()),
            };
            let mut member_of = Vec::new();
            for k in 0..groups.chunks(MAX_GROUP_IDS).len() {
                let answer = answers.remove(&format!("m{i}-{k}")).expect("every request is answered");
                match answer.status {
                    200 => member_of.extend(
                        answer.body["value"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v.as_str().map(str::to_owned)),
                    ),
                    404 => {}
                    _ => return Err(answer.error()),
                }
            }
            out.push(Confirmation { id: id.clone(), user, member_of });
        }
        Ok(out)
    }

    /// Sends requests in batches of twenty; requests answered 429, 503 or 504 (or another
    /// server error) inside a batch are sent again after their `Retry-After`, within the
    /// retry budget. Answers come in any order; they are returned by request id.
    async fn batch(&self, requests: Vec<SubRequest>) -> Result<HashMap<String, SubResponse>, GraphError> {
        let url = format!("{}/v1.0/$batch", self.endpoints.graph_url);
        // The budget runs from the last round that got answers, not from the start:
        // confirming thousands of users is long, and not a reason to give up; a Graph that
        // answers nothing but failures is.
        let mut progress_at = Instant::now();
        let mut results = HashMap::with_capacity(requests.len());
        let mut pending = requests;
        let mut rounds = 0u32;
        let mut server_errors = 0u32;
        while !pending.is_empty() {
            let by_id: HashMap<String, SubRequest> = pending.drain(..).map(|r| (r.id.clone(), r)).collect();
            let mut order: Vec<&SubRequest> = by_id.values().collect();
            order.sort_by(|a, b| a.id.cmp(&b.id));
            let mut again = Vec::new();
            let mut wait: Option<Duration> = None;
            let mut last_failure = None;
            let mut server_error = false;
            for chunk in order.chunks(MAX_BATCH) {
                let body = json!({ "requests": chunk.iter().map(|r| r.to_json()).collect::<Vec<_>>() });
                let answer: BatchAnswer = self.send(&url, Some(&body), &Purpose::Users, None, None).await?;
                for response in answer.responses {
                    let Some(request) = by_id.get(&response.id) else {
                        continue;
                    };
                    if response.status == 429 || response.status >= 500 {
                        if response.status == 429 {
                            self.count_throttled();
                        }
                        let after = response.header("retry-after").and_then(retry::parse_retry_after);
                        wait = wait.max(after);
                        server_error |= !matches!(response.status, 429 | 503 | 504);
                        again.push(request.clone());
                        last_failure = Some(response.error());
                    } else {
                        results.insert(response.id.clone(), response);
                    }
                }
            }
            let retried: std::collections::HashSet<&str> = again.iter().map(|r| r.id.as_str()).collect();
            let missing =
                by_id.keys().filter(|id| !results.contains_key(*id) && !retried.contains(id.as_str())).count();
            if missing > 0 {
                return Err(GraphError::new(
                    crate::ErrorKind::Unexpected,
                    "Microsoft Graph left requests of a batch unanswered.",
                    format!("no answer for {missing} request(s) of a $batch"),
                ));
            }
            if again.len() < by_id.len() {
                progress_at = Instant::now();
            }
            if let Some(error) = last_failure {
                rounds += 1;
                server_errors += u32::from(server_error);
                let wait = wait.unwrap_or_else(|| retry::backoff(&self.retry, rounds));
                if rounds >= self.retry.max_attempts
                    || server_errors > self.retry.server_error_retries
                    || progress_at.elapsed() + wait > self.retry.budget
                {
                    let mut error = error;
                    error.detail = format!("{}; inside a $batch, gave up after {rounds} attempt(s)", error.detail);
                    return Err(error);
                }
                self.traffic.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(wait).await;
            }
            pending = again;
        }
        Ok(results)
    }
}
