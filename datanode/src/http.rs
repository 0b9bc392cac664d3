//! The DataNode's HTTP server (HDFS's info port, 9864): `GET /metrics` in Prometheus text
//! format; anything else is 404.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::shutdown::Shutdown;
use crate::transfer::XferContext;

/// How long open connections may finish their requests at shutdown.
const DRAIN: Duration = Duration::from_secs(2);

pub(crate) async fn serve(listener: TcpListener, ctx: Arc<XferContext>, mut down: Shutdown) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(ctx);
    let mut stopped = down.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        stopped.wait().await;
    });
    let mut server = tokio::spawn(async move { server.await });
    down.wait().await;
    match tokio::time::timeout(DRAIN, &mut server).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "http server failed"),
        Ok(_) => {}
        Err(_) => server.abort(),
    }
}

async fn metrics(State(ctx): State<Arc<XferContext>>) -> impl IntoResponse {
    let storage = ctx.storage.clone();
    let text = tokio::task::spawn_blocking(move || ctx.metrics.encode(&storage))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        text,
    )
}
