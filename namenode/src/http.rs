//! A minimal HTTP/1.1 status server, hand-written on tokio (no HTTP dependency for one page).
//!
//! `GET /` or `GET /status` → 200 with the cluster status as JSON; any other path → 404 JSON;
//! anything malformed, oversized or too slow → 400 and close. Every response closes the
//! connection.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::server::Shared;

/// Largest request head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Time allowed to send the request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait in the accept backlog.
const MAX_CONNECTIONS: usize = 64;

/// Accepts until `stop` flips; open connections are aborted then.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            a = listener.accept() => a,
        };
        // Reap finished connections so the set does not grow.
        while conns.try_join_next().is_some() {}
        match accepted {
            Ok((stream, _)) => {
                let shared = shared.clone();
                conns.spawn(async move {
                    if let Err(e) = handle(stream, &shared).await {
                        tracing::debug!(error = %e, "http connection failed");
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// Reads the request head: bytes up to and including the blank line.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Some(buf);
        }
        if buf.len() >= MAX_HEAD {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Status,
    NotFound(String),
    BadRequest(&'static str),
}

/// Parses the request line of a head.
pub fn route(head: &[u8]) -> Route {
    let Ok(text) = std::str::from_utf8(head) else {
        return Route::BadRequest("request head is not UTF-8");
    };
    let line = text.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest("malformed request line");
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest("unsupported HTTP version");
    }
    if method != "GET" {
        return Route::BadRequest("only GET is supported");
    }
    let path = target.split('?').next().unwrap_or("");
    match path {
        "/" | "/status" => Route::Status,
        other => Route::NotFound(other.to_string()),
    }
}

async fn handle(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let head = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream))
        .await
        .ok()
        .flatten();
    let (code, reason, body) = match head.as_deref().map(route) {
        None => (
            400,
            "Bad Request",
            json!({"error": "incomplete, oversized or slow request head"}),
        ),
        Some(Route::BadRequest(why)) => (400, "Bad Request", json!({ "error": why })),
        Some(Route::NotFound(p)) => (404, "Not Found", json!({ "error": "not found", "path": p })),
        Some(Route::Status) => match status_json(shared) {
            Ok(v) => (200, "OK", v),
            Err(e) => (
                500,
                "Internal Server Error",
                json!({ "error": e.to_string() }),
            ),
        },
    };
    let body = body.to_string();
    let resp = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

/// The status document.
pub fn status_json(shared: &Shared) -> crate::Result<Value> {
    let now = std::time::Instant::now();
    let st = shared.lock()?;
    let s = st.stats();
    let dns: Vec<Value> = st
        .datanode_report(now)
        .into_iter()
        .map(|d| {
            json!({
                "uuid": d.id.uuid,
                "addr": d.id.addr(),
                "alive": d.alive,
                "capacity": d.storage.capacity,
                "used": d.storage.dfs_used,
                "remaining": d.storage.remaining,
                "blocks": d.num_blocks,
                "last_heartbeat_ms_ago": d.last_heartbeat_ms_ago,
                "admin_state": d.admin_state.as_str(),
                "blocks_to_drain": d.blocks_to_drain,
            })
        })
        .collect();
    Ok(json!({
        "cluster_id": st.cluster_id(),
        "safe_mode": s.safe_mode,
        "capacity": s.capacity,
        "dfs_used": s.dfs_used,
        "remaining": s.remaining,
        "live_datanodes": s.live_datanodes,
        "dead_datanodes": s.dead_datanodes,
        "files": s.files,
        "directories": s.directories,
        "blocks": s.blocks,
        "under_replicated": s.under_replicated,
        "corrupt_blocks": s.corrupt_blocks,
        "missing_blocks": s.missing_blocks,
        "pending_replications": s.pending_replications,
        "rpc": shared.rpc.snapshot(),
        "datanodes": dns,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Route::Status);
        assert_eq!(route(b"GET /status?x=1 HTTP/1.0\r\n\r\n"), Route::Status);
        assert_eq!(
            route(b"GET /nope HTTP/1.1\r\n\r\n"),
            Route::NotFound("/nope".into())
        );
        assert!(matches!(
            route(b"POST / HTTP/1.1\r\n\r\n"),
            Route::BadRequest(_)
        ));
        assert!(matches!(route(b"garbage\r\n\r\n"), Route::BadRequest(_)));
        assert!(matches!(
            route(b"GET / SPDY/9\r\n\r\n"),
            Route::BadRequest(_)
        ));
        assert!(matches!(
            route(&[0xff, 0xfe, b'\n', b'\n']),
            Route::BadRequest(_)
        ));
    }
}
