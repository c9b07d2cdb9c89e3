//! A minimal HTTP/1.1 client for graph-sim's tests, so the simulator is exercised exactly
//! as on the wire (and without a TLS stack).

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Reply {
    pub status: u16,
    /// The head, lowercased (not every test file reads it).
    #[allow(dead_code)]
    pub headers: String,
    pub body: Value,
}

/// One request with `Connection: close`; the answer parsed as JSON (`Null` if it is not).
pub async fn call(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    Reply { status, headers: head.to_ascii_lowercase(), body: serde_json::from_str(body).unwrap_or(Value::Null) }
}
