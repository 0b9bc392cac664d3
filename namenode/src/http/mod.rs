//! The NameNode's HTTP server (axum): the web UI for people (`ui`), the status document for
//! scripts, and metrics for Prometheus.
//!
//! - `GET /`, `/datanodes`, `/explorer?path=P&after=NAME`: HTML pages, everything inline.
//! - `GET /status`: the cluster status as JSON.
//! - `GET /metrics`: the Prometheus text exposition.
//! - anything else: 404 (JSON); a malformed request gets axum's 400.

mod ui;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::server::Shared;

/// How long open connections may finish their requests once the NameNode stops.
const DRAIN: Duration = Duration::from_secs(2);

type AppState = Arc<Shared>;

/// Serves until `stop` flips; connections still open [`DRAIN`] later are dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let app = Router::new()
        .route("/", get(ui::overview))
        .route("/datanodes", get(ui::datanodes))
        .route("/explorer", get(ui::explorer))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(shared);
    let mut stopped = stop.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stopped.wait_for(|s| *s).await;
    });
    let mut server = tokio::spawn(async move { server.await });
    let _ = stop.wait_for(|s| *s).await;
    match tokio::time::timeout(DRAIN, &mut server).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "http server failed"),
        Ok(_) => {}
        Err(_) => {
            tracing::debug!("http connections still open at shutdown are dropped");
            server.abort();
        }
    }
}

/// An error page or document: the status and what went wrong, as JSON.
fn error(code: StatusCode, e: impl std::fmt::Display) -> Response {
    (code, Json(json!({ "error": e.to_string() }))).into_response()
}

async fn not_found(uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "not found", "path": uri.path() })),
    )
        .into_response()
}

async fn status(State(shared): State<AppState>) -> Response {
    match status_json(&shared) {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn metrics(State(shared): State<AppState>) -> Response {
    let (stats, nodes) = match shared.lock() {
        Ok(st) => (st.stats(), st.datanode_report(Instant::now())),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let rss = crate::util::resident_bytes().unwrap_or(0);
    let text = shared.metrics.encode(&stats, &nodes, rss);
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        text,
    )
        .into_response()
}

/// The status document.
pub fn status_json(shared: &Shared) -> crate::Result<Value> {
    let now = Instant::now();
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
        "rpc": shared.metrics.snapshot(),
        "datanodes": dns,
    }))
}
