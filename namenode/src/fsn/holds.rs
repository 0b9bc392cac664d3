//! Open files: which client holds which file open, and the orphans they keep.
//!
//! A client holds a file from GetBlockLocations with `hold`, Create or Append until it releases
//! it (ReleaseHolds) or its lease expires (`dfs.namenode.lease.hard-limit` without a renewal). A
//! file that loses its last name while held becomes an orphan owned by its holders (logged, so
//! it survives a restart); the last release deletes it and frees its blocks.

use super::*;

impl FsState {
    /// ReleaseHolds: `client` closed these files.
    pub fn release_holds(&mut self, client: &str, files: &[InodeId]) -> Result<()> {
        if client.is_empty() {
            return Err(inval("client_name is required"));
        }
        for id in files {
            self.leases.release(client, *id);
            let holds_orphan = self
                .ns
                .orphans()
                .any(|(o, holders)| o == *id && holders.contains(client));
            // In safe mode the release waits for the lease monitor (see `expire_holds`).
            if holds_orphan && self.check_writable("release an unlinked file").is_ok() {
                self.log(Op::ReleaseOrphan {
                    inode_id: *id,
                    holder: Some(client.to_string()),
                })?;
            }
        }
        Ok(())
    }

    /// RenewLease: renews every lease and hold of `client`; `holds` registers again the files
    /// it holds open (after it saw this NameNode's `instance` for the first time). Returns the
    /// instance.
    pub fn renew_lease(&mut self, client: &str, holds: &[InodeId], now: Now) -> Result<u64> {
        if client.is_empty() {
            return Err(inval("client_name is required"));
        }
        for id in holds {
            if self.ns.inode(*id).is_some() {
                self.leases.hold(client, *id, now.at);
            }
        }
        self.leases.renew(client, now.at);
        Ok(self.instance)
    }

    /// Drops the holds of clients silent past the hard limit, then releases every orphan's
    /// holders that hold it no more (expired now, or released while the release could not be
    /// logged, in safe mode).
    pub(super) fn expire_holds(&mut self, now: Now) {
        for (holder, files) in self.leases.expire_holds(now.at, self.cfg.lease_hard_limit) {
            tracing::info!(%holder, files = files.len(), "holds expired");
        }
        let stale: Vec<(InodeId, String)> = self
            .ns
            .orphans()
            .flat_map(|(id, holders)| {
                let live = self.leases.holders_of(id);
                holders
                    .iter()
                    .filter(move |h| !live.contains(*h))
                    .map(move |h| (id, h.clone()))
            })
            .collect();
        for (id, holder) in stale {
            let op = Op::ReleaseOrphan {
                inode_id: id,
                holder: Some(holder),
            };
            if let Err(e) = self.log(op) {
                tracing::warn!(inode = %id, error = %e, "could not release an orphan");
            }
        }
    }
}
