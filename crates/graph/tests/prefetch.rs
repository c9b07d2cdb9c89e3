//! The next page is requested while the current one is still arriving: a Graph stand-in on
//! 127.0.0.1 sends the first page's control information (with `@odata.nextLink`), then holds
//! the rest of that page back until the second page has been asked for (or a while passes).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use safegpt_graph::{Credentials, Endpoints, GraphClient, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

const USER_1: &str = "11111111-1111-4111-8111-111111111111";
const USER_2: &str = "22222222-2222-4222-8222-222222222222";

fn user(id: &str, n: u32) -> String {
    format!(
        r#"{{"id":"{id}","userPrincipalName":"u{n}@contoso.com","mail":"u{n}@contoso.com","displayName":"U {n}","accountEnabled":true,"userType":"Member"}}"#
    )
}

#[derive(Default)]
struct Seen {
    /// Request lines, in the order they came.
    requests: Mutex<Vec<String>>,
    second_page_asked: Notify,
    /// Whether page 2 was asked for before page 1's body was complete.
    asked_early: Mutex<Option<bool>>,
    /// How long page 1's rest is held back at most.
    hold: Duration,
}

/// Reads one request (head and body); `None` when the client closed the connection.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(head.lines().next().unwrap_or_default().to_owned())
}

/// Serves page 1 (naming `next` as its next link, held back as above), page 2 and tokens.
async fn serve(mut stream: TcpStream, next: String, seen: Arc<Seen>) {
    while let Some(line) = read_request(&mut stream).await {
        seen.requests.lock().unwrap().push(line.clone());
        let head =
            |len: usize| format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n");
        if line.starts_with("POST ") {
            let body = r#"{"token_type":"Bearer","expires_in":3600,"access_token":"token"}"#;
            stream.write_all(format!("{}{body}", head(body.len())).as_bytes()).await.unwrap();
        } else if line.contains("page=2") {
            seen.second_page_asked.notify_one();
            let body = format!(r#"{{"@odata.context":"ctx","value":[{}]}}"#, user(USER_2, 2));
            stream.write_all(format!("{}{body}", head(body.len())).as_bytes()).await.unwrap();
        } else {
            let first = format!(r#"{{"@odata.context":"ctx","@odata.nextLink":"{next}","value":["#);
            let rest = format!("{}]}}", user(USER_1, 1));
            stream.write_all(format!("{}{first}", head(first.len() + rest.len())).as_bytes()).await.unwrap();
            stream.flush().await.unwrap();
            let early = tokio::time::timeout(seen.hold, seen.second_page_asked.notified()).await.is_ok();
            *seen.asked_early.lock().unwrap() = Some(early);
            stream.write_all(rest.as_bytes()).await.unwrap();
        }
    }
}

/// A stand-in whose first page names `next(base)`; returns its base URL and what it saw.
async fn stand_in(next: impl FnOnce(&str) -> String, hold: Duration) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Seen { hold, ..Seen::default() });
    let (link, accept_seen) = (next(&base), seen.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, link.clone(), accept_seen.clone()));
        }
    });
    (base, seen)
}

fn client(base: &str) -> GraphClient {
    GraphClient::new(
        Endpoints { login_url: base.to_owned(), graph_url: base.to_owned() },
        Credentials { tenant: "contoso".into(), client_id: "app".into(), secret: "secret".to_owned().into() },
        RetryPolicy::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_next_page_is_asked_for_while_the_current_one_arrives() {
    let (base, seen) = stand_in(|base| format!("{base}/v1.0/users?page=2"), Duration::from_secs(5)).await;
    let client = client(&base);
    let mut pager = client.users();
    let first = pager.next_page().await.unwrap().unwrap();
    assert_eq!(first.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), [USER_1]);
    assert_eq!(*seen.asked_early.lock().unwrap(), Some(true), "page 2 was asked for before page 1 had arrived");
    let second = pager.next_page().await.unwrap().unwrap();
    assert_eq!(second.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), [USER_2]);
    assert!(pager.next_page().await.unwrap().is_none());
    let pages: Vec<String> = seen.requests.lock().unwrap().iter().filter(|l| l.starts_with("GET")).cloned().collect();
    assert_eq!(pages.len(), 2, "each page asked for once: {pages:?}");
    assert_eq!(pager.pages, 2);
}

#[tokio::test]
async fn a_link_to_another_host_is_not_followed_early_either() {
    // The other host is a second stand-in, which must see nothing.
    let (elsewhere, elsewhere_seen) = stand_in(|base| format!("{base}/v1.0/users?page=2"), Duration::ZERO).await;
    let (base, seen) = stand_in(move |_| format!("{elsewhere}/v1.0/users?page=2"), Duration::from_millis(300)).await;
    let client = client(&base);
    let mut pager = client.users();
    let first = pager.next_page().await.unwrap().unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(*seen.asked_early.lock().unwrap(), Some(false), "nothing was asked for early");
    let refused = pager.next_page().await.unwrap_err();
    assert!(refused.message.contains("link outside"), "{refused:?}");
    assert!(elsewhere_seen.requests.lock().unwrap().is_empty());
}
