//! The block scanner: walks every finalized replica once per scan period at a bounded read rate,
//! verifies it against its checksums and reports corrupt ones to the NameNode.
//!
//! Pacing is per block: after verifying `n` bytes the scanner sleeps `n / rate` seconds. A pass
//! that ends early waits for the rest of the period.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::shutdown::Shutdown;
use crate::storage::{Storage, Verification};
use crate::types::{BadReplica, ReplicaState};

pub(crate) async fn run(
    storage: Arc<Storage>,
    bad: mpsc::UnboundedSender<BadReplica>,
    period: Duration,
    bytes_per_sec: u64,
    mut shutdown: Shutdown,
) {
    loop {
        let started = Instant::now();
        let ids = storage.finalized_ids();
        let (mut scanned, mut corrupt) = (0usize, 0usize);
        for id in ids {
            if shutdown.is_down() {
                return;
            }
            let s = storage.clone();
            let (outcome, bytes) =
                match tokio::task::spawn_blocking(move || s.verify_finalized(id)).await {
                    Ok(Ok(x)) => x,
                    Ok(Err(e)) => {
                        warn!(block = %id, "scanner cannot read replica: {e}");
                        continue;
                    }
                    Err(e) => {
                        warn!("scanner task failed: {e}");
                        continue;
                    }
                };
            scanned += 1;
            if let Verification::Corrupt { verified } = outcome {
                // Report only if the replica is still the finalized one that was checked (an
                // append or recovery may have reopened it meanwhile).
                if let Some(v) = storage
                    .get(id)
                    .filter(|v| v.state == ReplicaState::Finalized)
                {
                    corrupt += 1;
                    warn!(block = %v.block, verified, "block scanner found a corrupt replica");
                    let _ = bad.send(BadReplica::Local(v.block));
                }
            }
            if bytes_per_sec > 0 && bytes > 0 {
                let pause = Duration::from_secs_f64(bytes as f64 / bytes_per_sec as f64);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.wait() => return,
                }
            }
        }
        if scanned > 0 {
            info!(scanned, corrupt, "block scanner pass done");
        }
        tokio::select! {
            _ = tokio::time::sleep_until(started + period.max(Duration::from_secs(1))) => {}
            _ = shutdown.wait() => return,
        }
    }
}
