//! Read-only namespace RPCs: file status, access checks, listings, block locations.

use dfs_proto::path::DfsPath;

use super::*;

/// What GetBlockLocations asks.
#[derive(Debug, Clone)]
pub struct LocationsRequest {
    pub path: DfsPath,
    pub offset: u64,
    /// 0: to the end.
    pub length: u64,
    pub client_host: String,
    /// With `hold`, the client holds the file open from now on.
    pub client_name: String,
    pub hold: bool,
}

impl FsState {
    /// The status of what `path` names (a symbolic link itself, not its target), as its entry
    /// shows it; `None` when nothing is there.
    pub fn get_file_info(&mut self, c: &Caller, path: &DfsPath) -> Result<Option<FileStatus>> {
        let walk = match self.ns.walk(path) {
            Ok(w) => w,
            Err(Error::NotADirectory(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.checker.check_traverse(&self.ns, c, &walk)?;
        if !walk.exists() {
            return Ok(None);
        }
        let id = walk.last();
        Ok(match walk.name {
            Some(name) => self.ns.status_named(id, name),
            None => self.ns.status(id),
        })
    }

    /// CheckAccess: whether `c` may access `path` as `access` (READ | WRITE | EXECUTE) asks.
    pub fn check_path_access(&self, c: &Caller, path: &DfsPath, access: u32) -> Result<()> {
        let id = self.target(c, path)?;
        self.checker.check_access(&self.ns, c, id, access & 0o7)
    }

    pub fn get_listing(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        start_after: &str,
        limit: u32,
    ) -> Result<(Vec<FileStatus>, u64, FileStatus)> {
        let id = self.target(c, path)?;
        let is_dir = self.ns.inode(id).is_some_and(|i| i.is_dir());
        if is_dir {
            self.checker.check_access(&self.ns, c, id, READ | EXECUTE)?;
        }
        // At least one entry per page, whatever the configuration says: a page of 0 entries
        // with more to come would make every client loop forever.
        let page_size = self.cfg.listing_limit.max(1);
        let limit = if limit == 0 || limit > page_size {
            page_size
        } else {
            limit
        };
        let (entries, remaining) = self.ns.list(id, start_after, limit as usize);
        let dir = self
            .ns
            .status(id)
            .ok_or_else(|| Error::NotFound(path.to_string()))?;
        Ok((entries, remaining, dir))
    }

    /// The extents overlapping `[offset, offset + length)` with their blocks' locations.
    pub fn get_block_locations(
        &mut self,
        c: &Caller,
        req: &LocationsRequest,
        now: Now,
    ) -> Result<LocatedBlocks> {
        let path = &req.path;
        let id = self.target(c, path)?;
        let f = self.file(id, path)?.clone();
        self.checker.check_access(&self.ns, c, id, READ)?;
        if req.hold {
            if req.client_name.is_empty() {
                return Err(inval("holding a file open needs a client_name"));
            }
            self.leases.hold(&req.client_name, id, now.at);
        }
        self.note_access(id, now);
        let (offset, end) = (
            req.offset,
            if req.length == 0 {
                u64::MAX
            } else {
                req.offset.saturating_add(req.length)
            },
        );
        let n = f.extents().len();
        let mut blocks = Vec::new();
        let mut last_block = None;
        for (i, e) in f.extents().iter().enumerate() {
            let Some(idx) = f.blocks.iter().position(|b| b.id == e.block) else {
                continue;
            };
            let complete = f.block_complete(idx);
            // An empty block being written still overlaps a read at its offset.
            let overlaps = (e.off < end && e.end() > offset)
                || (!complete && e.off >= offset && e.off <= end && e.len == 0);
            if overlaps || i + 1 == n {
                let mut lb = self.locate(f.blocks[idx], e.off, complete, &req.client_host, now.at);
                lb.block_offset = e.block_off;
                lb.length = e.len;
                if overlaps {
                    blocks.push(lb.clone());
                }
                if i + 1 == n {
                    last_block = Some(lb);
                }
            }
        }
        Ok(LocatedBlocks {
            file_length: f.length(),
            blocks,
            under_construction: f.under_construction(),
            last_block,
            // A log block never grows the file: only a file appended to has a visible length.
            last_block_complete: !f.grows_with_last_block(),
            file_id: id.0,
            status: self.ns.status(id),
        })
    }

    /// Records a read as the file's access time, as HDFS does with
    /// `dfs.namenode.accesstime.precision`: only when the stored atime is older than the
    /// precision, so a hot file costs one logged op (and fsync) per precision, not one per read.
    /// Like every namespace change it goes through the edit log. Skipped in safe mode, when the
    /// precision is 0, and (with a warning) when it cannot be logged: a read never fails for it.
    fn note_access(&mut self, id: InodeId, now: Now) {
        let precision =
            u64::try_from(self.cfg.access_time_precision.as_millis()).unwrap_or(u64::MAX);
        let stale = self
            .ns
            .inode(id)
            .is_some_and(|i| now.ms.saturating_sub(i.atime_ms) > precision);
        if precision == 0 || !stale || self.check_writable("update access times").is_err() {
            return;
        }
        let op = Op::SetTimes {
            path: DfsPath::inode(id.0),
            mtime_ms: None,
            atime_ms: Some(now.ms),
            ctime_ms: 0,
        };
        if let Err(e) = self.log(op) {
            tracing::warn!(inode = %id, error = %e, "could not record the access time");
        }
    }
}
