//! [`DfsClient`]: every namespace operation, and the entry points to readers and writers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use dfs_proto::path::DfsPath;
use dfs_proto::pb::{self, op_request::Op};

use crate::config::ClientConfig;
use crate::datanode::{self, Conn};
use crate::error::{Error, Result};
use crate::namenode::{call, Namenode};
use crate::reader::FileReader;
use crate::types::*;
use crate::user::UserInfo;
use crate::writer::FileWriter;

/// Options for [`DfsClient::create`]; the defaults come from the client's configuration.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub overwrite: bool,
    pub create_parent: bool,
    /// 0: the client's `dfs.replication`.
    pub replication: u32,
    /// 0: the client's `dfs.blocksize`.
    pub block_size: u64,
    /// `None`: 0o666 less the umask.
    pub permission: Option<u32>,
}

/// An async dfs client. Cheap to clone; clones share one NameNode connection and lease renewer.
///
/// ```no_run
/// # async fn demo() -> dfs_client::Result<()> {
/// use dfs_client::{ClientConfig, CreateOptions, DfsClient};
/// let client = DfsClient::connect(ClientConfig::default()).await?;
/// let mut w = client.create("/tmp/hello.txt", CreateOptions::default()).await?;
/// w.write(b"hello, dfs\n").await?;
/// w.close().await?;
/// let mut r = client.open("/tmp/hello.txt").await?;
/// let mut text = Vec::new();
/// r.read_to_end(&mut text).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DfsClient {
    inner: Arc<ClientInner>,
}

/// What readers and writers share with their client.
pub(crate) struct ClientInner {
    pub(crate) nn: Namenode,
    pub(crate) cfg: ClientConfig,
    pub(crate) user: UserInfo,
    /// Names this client's leases at the NameNode.
    pub(crate) client_name: String,
    /// This machine's address as the NameNode sees it, for placing a replica locally.
    pub(crate) client_host: String,
    open_writers: AtomicUsize,
}

impl ClientInner {
    /// The NameNode's block list for `[offset, offset + length)` of `path`, local replicas first.
    pub(crate) async fn locations(
        &self,
        path: &str,
        offset: u64,
        length: u64,
    ) -> Result<pb::LocatedBlocks> {
        let req = pb::GetBlockLocationsRequest {
            path: path.to_string(),
            offset,
            length,
            client_host: self.client_host.clone(),
        };
        Ok(call!(self.nn, get_block_locations, req)?
            .locations
            .unwrap_or_default())
    }

    pub(crate) fn writer_opened(&self) {
        self.open_writers.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn writer_closed(&self) {
        self.open_writers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl DfsClient {
    /// Connects to the NameNode at `config.namenode`; fails fast with
    /// [`Error::Unavailable`] when it cannot be reached.
    pub async fn connect(config: ClientConfig) -> Result<DfsClient> {
        let user = config.user.clone().unwrap_or_else(UserInfo::current);
        let client_host = local_ip_towards(&config.namenode, config.connect_timeout).await?;
        let nn = Namenode::connect(&config.namenode, &user, config.connect_timeout).await?;
        let client_name = format!("DFSClient_{}_{:x}", std::process::id(), random_u64());
        let inner = Arc::new(ClientInner {
            nn,
            cfg: config,
            user,
            client_name,
            client_host,
            open_writers: AtomicUsize::new(0),
        });
        tokio::spawn(renew_leases(Arc::downgrade(&inner)));
        Ok(DfsClient { inner })
    }

    /// This client acting as `user` (sharing its NameNode connection and lease name), as a
    /// FUSE mount does for each calling uid so that the NameNode checks that user's permissions.
    /// Must be called within the client's tokio runtime.
    pub fn with_user(&self, user: UserInfo) -> DfsClient {
        let inner = Arc::new(ClientInner {
            nn: self.inner.nn.with_user(&user),
            cfg: self.inner.cfg.clone(),
            user,
            client_name: self.inner.client_name.clone(),
            client_host: self.inner.client_host.clone(),
            open_writers: AtomicUsize::new(0),
        });
        tokio::spawn(renew_leases(Arc::downgrade(&inner)));
        DfsClient { inner }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// The user this client acts as.
    pub fn user(&self) -> &UserInfo {
        &self.inner.user
    }

    /// The name this client's write leases are held under.
    pub fn client_name(&self) -> &str {
        &self.inner.client_name
    }

    fn path(p: &str) -> Result<String> {
        Ok(DfsPath::parse(p)?.as_str().to_string())
    }

    /// Creates a directory; with `create_parent`, missing parents too and no error if it exists.
    pub async fn mkdirs(&self, path: &str, create_parent: bool) -> Result<()> {
        self.mkdirs_with_permission(path, 0o777 & !self.inner.cfg.umask, create_parent)
            .await
    }

    pub async fn mkdirs_with_permission(
        &self,
        path: &str,
        permission: u32,
        create_parent: bool,
    ) -> Result<()> {
        let req = pb::MkdirsRequest {
            path: Self::path(path)?,
            permission: Some(permission),
            create_parent,
        };
        call!(self.inner.nn, mkdirs, req)?;
        Ok(())
    }

    /// Creates a file and opens it for writing, holding its lease until the writer is closed.
    pub async fn create(&self, path: &str, opts: CreateOptions) -> Result<FileWriter> {
        let path = Self::path(path)?;
        let req = pb::CreateRequest {
            path: path.clone(),
            permission: Some(opts.permission.unwrap_or(0o666 & !self.inner.cfg.umask)),
            client_name: self.inner.client_name.clone(),
            overwrite: opts.overwrite,
            create_parent: opts.create_parent,
            replication: if opts.replication == 0 {
                self.inner.cfg.replication
            } else {
                opts.replication
            },
            block_size: if opts.block_size == 0 {
                self.inner.cfg.block_size
            } else {
                opts.block_size
            },
        };
        let status = call!(self.inner.nn, create, req)?
            .status
            .ok_or_else(|| Error::Namenode("Create returned no status".into()))?;
        FileWriter::new(self.inner.clone(), path, &status, None).await
    }

    /// Opens an existing file for appending at its end.
    pub async fn append(&self, path: &str) -> Result<FileWriter> {
        let path = Self::path(path)?;
        let req = pb::AppendRequest {
            path: path.clone(),
            client_name: self.inner.client_name.clone(),
        };
        let resp = call!(self.inner.nn, append, req)?;
        let status = resp
            .status
            .ok_or_else(|| Error::Namenode("Append returned no status".into()))?;
        FileWriter::new(self.inner.clone(), path, &status, resp.last_block).await
    }

    /// Opens a file for reading.
    pub async fn open(&self, path: &str) -> Result<FileReader> {
        let st = self.stat(path).await?;
        if st.is_dir() {
            return Err(Error::IsADirectory(format!("is a directory: {path}")));
        }
        FileReader::open(self.inner.clone(), Self::path(path)?).await
    }

    /// Metadata of `path`, or [`Error::NotFound`].
    pub async fn stat(&self, path: &str) -> Result<FileStatus> {
        self.try_stat(path)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no such file or directory: {path}")))
    }

    /// Metadata of `path`, `None` if it does not exist.
    pub async fn try_stat(&self, path: &str) -> Result<Option<FileStatus>> {
        let req = pb::GetFileInfoRequest {
            path: Self::path(path)?,
        };
        Ok(call!(self.inner.nn, get_file_info, req)?
            .status
            .map(FileStatus::from))
    }

    pub async fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.try_stat(path).await?.is_some())
    }

    /// One page of a directory listing (entries sorted by name, after `start_after`); a file
    /// lists as itself. `limit` 0 takes the NameNode's page size.
    pub async fn list_page(
        &self,
        path: &str,
        start_after: &str,
        limit: u32,
    ) -> Result<ListingPage> {
        let req = pb::GetListingRequest {
            path: Self::path(path)?,
            start_after: start_after.to_string(),
            limit,
        };
        let resp = call!(self.inner.nn, get_listing, req)?;
        Ok(ListingPage {
            entries: resp.entries.into_iter().map(FileStatus::from).collect(),
            remaining: resp.remaining,
        })
    }

    /// The whole listing, page by page.
    pub async fn list(&self, path: &str) -> Result<Vec<FileStatus>> {
        let mut all = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.list_page(path, &after, 0).await?;
            let more = page.has_more();
            if let Some(last) = page.entries.last() {
                after = last.name.clone();
            }
            all.extend(page.entries);
            if !more {
                return Ok(all);
            }
        }
    }

    /// Renames atomically. With `overwrite`, an existing file (or empty directory) at `dst` is
    /// replaced, as POSIX `rename` does; without it an existing `dst` is an error.
    pub async fn rename(&self, src: &str, dst: &str, overwrite: bool) -> Result<()> {
        let req = pb::RenameRequest {
            src: Self::path(src)?,
            dst: Self::path(dst)?,
            overwrite,
        };
        call!(self.inner.nn, rename, req)?;
        Ok(())
    }

    /// Deletes a file or (with `recursive`) a tree; `false` when nothing was there.
    pub async fn delete(&self, path: &str, recursive: bool) -> Result<bool> {
        let req = pb::DeleteRequest {
            path: Self::path(path)?,
            recursive,
        };
        Ok(call!(self.inner.nn, delete, req)?.deleted)
    }

    pub async fn set_replication(&self, path: &str, replication: u32) -> Result<()> {
        let req = pb::SetReplicationRequest {
            path: Self::path(path)?,
            replication,
        };
        call!(self.inner.nn, set_replication, req)?;
        Ok(())
    }

    pub async fn set_permission(&self, path: &str, permission: u32) -> Result<()> {
        let req = pb::SetPermissionRequest {
            path: Self::path(path)?,
            permission,
        };
        call!(self.inner.nn, set_permission, req)?;
        Ok(())
    }

    /// Changes owner and/or group (`None` keeps the current one).
    pub async fn set_owner(
        &self,
        path: &str,
        owner: Option<&str>,
        group: Option<&str>,
    ) -> Result<()> {
        let req = pb::SetOwnerRequest {
            path: Self::path(path)?,
            owner: owner.unwrap_or_default().to_string(),
            group: group.unwrap_or_default().to_string(),
        };
        call!(self.inner.nn, set_owner, req)?;
        Ok(())
    }

    pub async fn set_times(
        &self,
        path: &str,
        mtime_ms: Option<u64>,
        atime_ms: Option<u64>,
    ) -> Result<()> {
        let req = pb::SetTimesRequest {
            path: Self::path(path)?,
            mtime_ms,
            atime_ms,
        };
        call!(self.inner.nn, set_times, req)?;
        Ok(())
    }

    /// Truncates a closed file to `new_length` (0, or its current length).
    pub async fn truncate(&self, path: &str, new_length: u64) -> Result<()> {
        let req = pb::TruncateRequest {
            path: Self::path(path)?,
            new_length,
            client_name: self.inner.client_name.clone(),
        };
        call!(self.inner.nn, truncate, req)?;
        Ok(())
    }

    pub async fn content_summary(&self, path: &str) -> Result<ContentSummary> {
        let req = pb::GetContentSummaryRequest {
            path: Self::path(path)?,
        };
        Ok(call!(self.inner.nn, get_content_summary, req)?
            .summary
            .unwrap_or_default()
            .into())
    }

    /// Where the blocks overlapping `[offset, offset + length)` live.
    pub async fn block_locations(
        &self,
        path: &str,
        offset: u64,
        length: u64,
    ) -> Result<Vec<BlockLocation>> {
        let locs = self
            .inner
            .locations(&Self::path(path)?, offset, length)
            .await?;
        Ok(locs.blocks.iter().map(BlockLocation::from).collect())
    }

    /// A checksum of the file's content computed by the DataNodes from their stored CRCs,
    /// without moving the data (see [`FileChecksum`]).
    pub async fn file_checksum(&self, path: &str) -> Result<FileChecksum> {
        let st = self.stat(path).await?;
        if st.is_dir() {
            return Err(Error::IsADirectory(format!("is a directory: {path}")));
        }
        let locs = self
            .inner
            .locations(&Self::path(path)?, 0, u64::MAX)
            .await?;
        let mut crcs = Vec::with_capacity(locs.blocks.len() * 4);
        // The chunking the replicas were written with (an empty file has none: the default).
        let mut file_bpc = None;
        for lb in &locs.blocks {
            let (crc, bpc) = self.block_checksum(path, lb).await?;
            match file_bpc {
                Some(b) if b != bpc => {
                    return Err(Error::NotSupported(format!(
                        "checksum of {path}: its blocks were written with different bytes per \
                         checksum ({b} and {bpc}), so no one checksum describes the file"
                    )))
                }
                _ => file_bpc = Some(bpc),
            }
            crcs.extend_from_slice(&crc.to_be_bytes());
        }
        let bpc = file_bpc.unwrap_or(dfs_proto::checksum::DEFAULT_BYTES_PER_CHECKSUM);
        Ok(FileChecksum {
            algorithm: format!("CRC32C-OF-CRC32C-{bpc}"),
            value: crc32c::crc32c(&crcs),
            length: locs.file_length,
        })
    }

    /// One replica's CRC of its chunk CRCs, and the bytes per checksum of those chunks.
    async fn block_checksum(&self, path: &str, lb: &pb::LocatedBlock) -> Result<(u32, u32)> {
        let block = lb.block.unwrap_or_default();
        let mut reasons = Vec::new();
        for dn in lb.locations.iter().filter_map(|l| l.id.as_ref()) {
            let op = Op::BlockChecksum(pb::BlockChecksumOp { block: Some(block) });
            match Conn::open::<pb::BlockChecksumResponse>(dn, op, self.inner.cfg.socket_timeout)
                .await
            {
                Ok((_, r)) => match datanode::check(r.status, &r.message, dn).and_then(|()| {
                    dfs_proto::checksum::validate_bytes_per_checksum(r.bytes_per_checksum)
                        .map_err(|e| format!("DataNode {}: {e}", datanode::addr(dn)))
                }) {
                    Ok(bpc) => return Ok((r.crc_of_crcs, bpc)),
                    Err(e) => reasons.push(e),
                },
                Err(e) => reasons.push(format!("{}: {e}", datanode::addr(dn))),
            }
        }
        Err(Error::BlockMissing {
            path: path.to_string(),
            offset: lb.offset,
            reason: if reasons.is_empty() {
                "no replica".to_string()
            } else {
                reasons.join("; ")
            },
        })
    }

    pub async fn stats(&self) -> Result<ClusterStats> {
        Ok(call!(self.inner.nn, get_stats, pb::GetStatsRequest {})?.into())
    }

    pub async fn datanode_report(&self) -> Result<Vec<DatanodeReport>> {
        let r = call!(
            self.inner.nn,
            get_datanode_report,
            pb::GetDatanodeReportRequest {}
        )?;
        Ok(r.datanodes.into_iter().map(DatanodeReport::from).collect())
    }

    pub async fn fsck(&self, path: &str) -> Result<FsckReport> {
        let req = pb::FsckRequest {
            path: Self::path(path)?,
        };
        Ok(call!(self.inner.nn, fsck, req)?.into())
    }

    /// Gets, enters or leaves safe mode; returns whether it is on and the NameNode's status line.
    pub async fn safe_mode(&self, action: SafeModeAction) -> Result<(bool, String)> {
        let action = match action {
            SafeModeAction::Get => pb::SafeModeAction::SafemodeGet,
            SafeModeAction::Enter => pb::SafeModeAction::SafemodeEnter,
            SafeModeAction::Leave => pb::SafeModeAction::SafemodeLeave,
        };
        let r = call!(
            self.inner.nn,
            safe_mode,
            pb::SafeModeRequest {
                action: action as i32
            }
        )?;
        Ok((r.on, r.status))
    }

    /// Starts lease recovery of a file left open by a dead writer; `true` once it is closed.
    /// Whether this client's user may access `path` as `access` asks (bits 4 read, 2 write,
    /// 1 execute), by the NameNode's rules: `Err(PermissionDenied)` when not.
    pub async fn check_access(&self, path: &str, access: u32) -> Result<()> {
        let req = pb::CheckAccessRequest {
            path: Self::path(path)?,
            access,
        };
        call!(self.inner.nn, check_access, req)?;
        Ok(())
    }

    pub async fn recover_lease(&self, path: &str) -> Result<bool> {
        let req = pb::RecoverLeaseRequest {
            path: Self::path(path)?,
            client_name: self.inner.client_name.clone(),
        };
        Ok(call!(self.inner.nn, recover_lease, req)?.closed)
    }

    /// Starts draining a DataNode (`host:port` or uuid) before it is taken out of service.
    pub async fn decommission(&self, datanode: &str) -> Result<()> {
        let req = pb::DecommissionRequest {
            datanode: datanode.to_string(),
        };
        call!(self.inner.nn, decommission, req)?;
        Ok(())
    }
}

/// Renews this client's leases while it has files open for writing; ends with the client.
async fn renew_leases(inner: Weak<ClientInner>) {
    let interval = match inner.upgrade() {
        Some(i) => i.cfg.lease_renew_interval,
        None => return,
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.open_writers.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let req = pb::RenewLeaseRequest {
            client_name: inner.client_name.clone(),
        };
        if let Err(e) = call!(inner.nn, renew_lease, req) {
            tracing::warn!("could not renew leases: {e}");
        }
    }
}

/// The local address used to reach `addr`: how the NameNode will see this host.
async fn local_ip_towards(addr: &str, timeout: std::time::Duration) -> Result<String> {
    let unreachable = |reason: String| Error::Unavailable {
        addr: addr.to_string(),
        reason,
    };
    let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| unreachable(format!("no answer within {timeout:?}")))?
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(stream.local_addr()?.ip().to_string())
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
