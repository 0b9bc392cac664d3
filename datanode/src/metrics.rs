//! The DataNode's metrics, in Prometheus text format at `/metrics` on its HTTP port: bytes and
//! packets received and sent, pipeline ack latency, block reports, volumes and replicas being
//! written. Counters move where the work happens; the storage gauges are read at each scrape.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::storage::Storage;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

pub(crate) struct Metrics {
    registry: Registry,
    bytes_written: Counter,
    packets_written: Counter,
    bytes_read: Counter,
    packets_read: Counter,
    ack_seconds: Histogram,
    block_reports: Counter,
    volumes: Family<StateLabel, Gauge>,
    replicas: Family<StateLabel, Gauge>,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("dfs_datanode"),
            bytes_written: Counter::default(),
            packets_written: Counter::default(),
            bytes_read: Counter::default(),
            packets_read: Counter::default(),
            // 50 µs to about 1.6 s.
            ack_seconds: Histogram::new(exponential_buckets(50e-6, 2.0, 16)),
            block_reports: Counter::default(),
            volumes: Family::default(),
            replicas: Family::default(),
        };
        let r = &mut m.registry;
        r.register_with_unit(
            "written",
            "block data received from clients and other DataNodes",
            Unit::Bytes,
            m.bytes_written.clone(),
        );
        r.register(
            "packets_written",
            "data packets received",
            m.packets_written.clone(),
        );
        r.register_with_unit(
            "read",
            "block data sent to readers and to other DataNodes",
            Unit::Bytes,
            m.bytes_read.clone(),
        );
        r.register("packets_read", "data packets sent", m.packets_read.clone());
        r.register_with_unit(
            "pipeline_ack_duration",
            "from a packet's arrival to its ack upstream (downstream acks included)",
            Unit::Seconds,
            m.ack_seconds.clone(),
        );
        r.register(
            "block_reports",
            "full block reports sent to the NameNode",
            m.block_reports.clone(),
        );
        r.register(
            "volumes",
            "volumes by state (healthy, failed)",
            m.volumes.clone(),
        );
        r.register(
            "replicas",
            "replicas by state (finalized, being_written)",
            m.replicas.clone(),
        );
        m
    }

    pub(crate) fn wrote_packet(&self, bytes: usize) {
        self.packets_written.inc();
        self.bytes_written.inc_by(bytes as u64);
    }

    pub(crate) fn sent(&self, bytes: u64, packets: u64) {
        self.bytes_read.inc_by(bytes);
        self.packets_read.inc_by(packets);
    }

    pub(crate) fn acked(&self, took: Duration) {
        self.ack_seconds.observe(took.as_secs_f64());
    }

    pub(crate) fn block_report_sent(&self) {
        self.block_reports.inc();
    }

    /// The exposition, with the storage gauges read now.
    pub(crate) fn encode(&self, storage: &Storage) -> String {
        let total = storage.num_volumes();
        let healthy = storage.healthy_volumes();
        for (state, n) in [("healthy", healthy), ("failed", total - healthy)] {
            self.volumes
                .get_or_create(&StateLabel { state })
                .set(n as i64);
        }
        let (finalized, rbw) = storage.replica_counts();
        for (state, n) in [("finalized", finalized), ("being_written", rbw)] {
            self.replicas
                .get_or_create(&StateLabel { state })
                .set(n as i64);
        }
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
