//! The NameNode's metrics: RPC calls and their latency per method, the edit log's fsyncs, and
//! the cluster's state, in Prometheus text format at `/metrics`.
//!
//! [`CountRpcs`] is a tower layer around the whole gRPC server, so it sees every call by its
//! path (`/dfs.ClientProtocol/GetListing`) before routing, whether the call succeeds or not. The
//! counts also feed the status page's `rpc`, which tests read to prove how many calls a client
//! operation costs (`ls -l` through a mount: one listing per page, no stat per entry). The
//! cluster gauges are read from [`Stats`] at each scrape, so they cannot drift from the state.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use tonic::codegen::{http, Service};

use crate::types::{AdminState, DatanodeInfo, Stats};

/// Distinct method names kept: a client sending made-up paths must not grow the map.
const MAX_METHODS: usize = 128;
/// Where calls outside dfs's two services, or beyond [`MAX_METHODS`], are counted.
const OTHER: &str = "other";
/// The services whose methods are counted by name.
const SERVICES: [&str; 2] = ["/dfs.ClientProtocol/", "/dfs.DatanodeProtocol/"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

/// Latency buckets from 50 µs to about 1.6 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(50e-6, 2.0, 16))
}

/// The edit-log writer's fsyncs; clones share their values, so the writer thread records into
/// the same histograms `/metrics` shows.
#[derive(Debug, Clone)]
pub struct SyncMetrics {
    pub seconds: Histogram,
    /// Edits made durable by each fsync.
    pub batch: Histogram,
}

impl Default for SyncMetrics {
    fn default() -> SyncMetrics {
        SyncMetrics {
            seconds: latency_histogram(),
            batch: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
        }
    }
}

/// Gauges set from [`Stats`] and the DataNode report just before each scrape.
#[derive(Default)]
struct ClusterGauges {
    datanodes: Family<StateLabel, Gauge>,
    capacity: Gauge,
    used: Gauge,
    remaining: Gauge,
    files: Gauge,
    directories: Gauge,
    blocks: Gauge,
    under_replicated: Gauge,
    corrupt: Gauge,
    missing: Gauge,
    pending_replications: Gauge,
    safe_mode: Gauge,
    resident_memory: Gauge,
}

/// One method's figures, looked up once per call.
struct Method {
    calls: AtomicU64,
    seconds: Histogram,
}

/// Everything the NameNode exports; shared by the RPC layer, the edit log and the HTTP server.
pub struct Metrics {
    registry: Registry,
    /// Per method name (`GetListing`): calls (for the status page) and latency.
    methods: RwLock<HashMap<String, Arc<Method>>>,
    rpc_seconds: Family<MethodLabel, Histogram, fn() -> Histogram>,
    cluster: ClusterGauges,
}

fn gauge_u64(g: &Gauge, v: u64) {
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
}

impl Metrics {
    /// Registers every metric, the edit log's `sync` among them.
    pub fn new(sync: &SyncMetrics) -> Metrics {
        let mut registry = Registry::with_prefix("dfs_namenode");
        let rpc_seconds: Family<MethodLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "rpc_duration",
            "gRPC calls by method, from request to response",
            Unit::Seconds,
            rpc_seconds.clone(),
        );
        registry.register_with_unit(
            "edit_log_sync_duration",
            "fsyncs of the edit log",
            Unit::Seconds,
            sync.seconds.clone(),
        );
        registry.register(
            "edit_log_sync_batch",
            "edits made durable by one fsync (the group commit's size)",
            sync.batch.clone(),
        );
        let cluster = ClusterGauges::default();
        let c = &cluster;
        registry.register(
            "datanodes",
            "DataNodes by state (live, dead, decommissioning, decommissioned)",
            c.datanodes.clone(),
        );
        for (name, help, unit, g) in [
            (
                "capacity",
                "raw capacity of live DataNodes",
                Some(Unit::Bytes),
                &c.capacity,
            ),
            (
                "used",
                "bytes of block replicas stored",
                Some(Unit::Bytes),
                &c.used,
            ),
            (
                "remaining",
                "free bytes on live DataNodes",
                Some(Unit::Bytes),
                &c.remaining,
            ),
            (
                "resident_memory",
                "the NameNode's resident memory",
                Some(Unit::Bytes),
                &c.resident_memory,
            ),
            (
                "files",
                "files, symbolic links and special files",
                None,
                &c.files,
            ),
            ("directories", "directories", None, &c.directories),
            ("blocks", "blocks", None, &c.blocks),
            (
                "under_replicated_blocks",
                "blocks with fewer live replicas than asked",
                None,
                &c.under_replicated,
            ),
            (
                "corrupt_blocks",
                "blocks with a corrupt replica",
                None,
                &c.corrupt,
            ),
            (
                "missing_blocks",
                "blocks with no live replica",
                None,
                &c.missing,
            ),
            (
                "pending_replications",
                "replica copies ordered and not yet reported",
                None,
                &c.pending_replications,
            ),
            (
                "safe_mode",
                "1 while the NameNode is in safe mode",
                None,
                &c.safe_mode,
            ),
        ] {
            match unit {
                Some(u) => registry.register_with_unit(name, help, u, g.clone()),
                None => registry.register(name, help, g.clone()),
            }
        }
        Metrics {
            registry,
            methods: RwLock::default(),
            rpc_seconds,
            cluster,
        }
    }

    /// Counts a call to `path` and returns its method's figures. Names are bounded: made-up
    /// paths cannot grow the maps.
    fn call(&self, path: &str) -> Arc<Method> {
        let name = SERVICES
            .iter()
            .find_map(|s| path.strip_prefix(s))
            .unwrap_or(OTHER);
        let known = self
            .methods
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned();
        let m = known.unwrap_or_else(|| {
            let mut all = self.methods.write().unwrap_or_else(|p| p.into_inner());
            let name = if all.len() < MAX_METHODS { name } else { OTHER };
            all.entry(name.to_string())
                .or_insert_with(|| {
                    let label = MethodLabel {
                        method: name.to_string(),
                    };
                    Arc::new(Method {
                        calls: AtomicU64::new(0),
                        seconds: self.rpc_seconds.get_or_create(&label).clone(),
                    })
                })
                .clone()
        });
        m.calls.fetch_add(1, Ordering::Relaxed);
        m
    }

    /// Calls per method so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.methods
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, m)| (k.clone(), m.calls.load(Ordering::Relaxed)))
            .collect()
    }

    /// The Prometheus text exposition, with the cluster gauges set from `stats` and `nodes`.
    pub fn encode(&self, stats: &Stats, nodes: &[DatanodeInfo], rss: u64) -> String {
        let c = &self.cluster;
        for state in ["live", "dead", "decommissioning", "decommissioned"] {
            let n = nodes.iter().filter(|d| node_state(d) == state).count();
            c.datanodes
                .get_or_create(&StateLabel { state })
                .set(n as i64);
        }
        for (g, v) in [
            (&c.capacity, stats.capacity),
            (&c.used, stats.dfs_used),
            (&c.remaining, stats.remaining),
            (&c.resident_memory, rss),
            (&c.files, stats.files),
            (&c.directories, stats.directories),
            (&c.blocks, stats.blocks),
            (&c.under_replicated, stats.under_replicated),
            (&c.corrupt, stats.corrupt_blocks),
            (&c.missing, stats.missing_blocks),
            (&c.pending_replications, stats.pending_replications),
            (&c.safe_mode, u64::from(stats.safe_mode)),
        ] {
            gauge_u64(g, v);
        }
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// How the metrics and the web UI name a DataNode's state.
pub fn node_state(d: &DatanodeInfo) -> &'static str {
    match (d.alive, d.admin_state) {
        (false, _) => "dead",
        (true, AdminState::DecommissionInProgress) => "decommissioning",
        (true, AdminState::Decommissioned) => "decommissioned",
        (true, _) => "live",
    }
}

/// The tower layer that counts and times calls into [`Metrics`].
#[derive(Clone)]
pub struct CountRpcs(pub Arc<Metrics>);

impl<S> tower_layer::Layer<S> for CountRpcs {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B> Service<http::Request<B>> for Counted<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (method, started) = (self.metrics.call(req.uri().path()), Instant::now());
        let call = self.inner.call(req);
        Box::pin(async move {
            let r = call.await;
            method.seconds.observe(started.elapsed().as_secs_f64());
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_method_and_bounds_the_names() {
        let m = Metrics::new(&SyncMetrics::default());
        m.call("/dfs.ClientProtocol/GetListing");
        m.call("/dfs.ClientProtocol/GetListing");
        m.call("/dfs.DatanodeProtocol/Heartbeat");
        m.call("/grpc.health.v1.Health/Check");
        let s = m.snapshot();
        assert_eq!((s["GetListing"], s["Heartbeat"], s[OTHER]), (2, 1, 1));
        for i in 0..1000 {
            m.call(&format!("/dfs.ClientProtocol/Junk{i}"));
        }
        let s = m.snapshot();
        assert_eq!(s.len(), MAX_METHODS);
        assert_eq!(s[OTHER], 1 + 1000 - (MAX_METHODS as u64 - 3));
    }

    #[test]
    fn the_exposition_carries_latencies_and_the_cluster_state() {
        let sync = SyncMetrics::default();
        let m = Metrics::new(&sync);
        m.call("/dfs.ClientProtocol/Mkdirs").seconds.observe(0.002);
        sync.seconds.observe(0.001);
        sync.batch.observe(7.0);
        let stats = Stats {
            files: 3,
            safe_mode: true,
            capacity: 1 << 40,
            ..Stats::default()
        };
        let text = m.encode(&stats, &[], 4096);
        for line in [
            "dfs_namenode_rpc_duration_seconds_count{method=\"Mkdirs\"} 1",
            "dfs_namenode_edit_log_sync_duration_seconds_count 1",
            "dfs_namenode_edit_log_sync_batch_sum 7.0",
            "dfs_namenode_files 3",
            "dfs_namenode_safe_mode 1",
            "dfs_namenode_capacity_bytes 1099511627776",
            "dfs_namenode_datanodes{state=\"live\"} 0",
            "dfs_namenode_resident_memory_bytes 4096",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
