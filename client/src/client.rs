//! [`DfsClient`]: every namespace operation, and the entry points to readers and writers.
//!
//! Symbolic links: the NameNode never follows one. Every call that takes a path resolves the
//! links the NameNode reports on the way (at most 40, as Linux), so a link anywhere before the
//! last component works as POSIX says. At the last component, calls on what a link points to
//! (open, append, list, attributes) follow it; calls on entries (`symlink_status`, `delete`,
//! `rename`, `link`) act on the link itself, as `lstat`, `unlink` and `rename` do.

use std::future::Future;
use std::sync::Arc;

use dfs_proto::path::DfsPath;
use dfs_proto::pb::{self, op_request::Op};

use crate::config::ClientConfig;
use crate::datanode::{self, Conn};
use crate::error::{Error, Result};
use crate::holds::{Hold, Holds};
use crate::namenode::{call, Namenode};
use crate::reader::FileReader;
use crate::types::*;
use crate::user::UserInfo;
use crate::writer::FileWriter;

/// Most symbolic links one path may go through (Linux's MAXSYMLINKS).
pub const MAX_SYMLINKS: usize = 40;

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
    /// The mode before the umask: a parent with a default ACL uses it instead (POSIX).
    pub unmasked: Option<u32>,
    /// The group the new file takes (the caller's, as POSIX); `None`: the parent's (HDFS).
    pub group: Option<String>,
}

/// How a new directory, symbolic link or special file is made.
#[derive(Debug, Clone, Default)]
pub struct EntryOptions {
    /// `None`: 0o777 (0o666 for files) less the umask.
    pub permission: Option<u32>,
    pub unmasked: Option<u32>,
    pub group: Option<String>,
    /// Make missing parents (and, for a directory, succeed if it exists).
    pub create_parent: bool,
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
    /// Files open through this client name (its identities share it).
    holds: Arc<Holds>,
}

impl ClientInner {
    pub(crate) async fn sync_metadata(&self) -> Result<()> {
        if self.cfg.durable_replies {
            return Ok(());
        }
        let req = pb::GetFileInfoRequest { path: "/".into() };
        call!(self.nn.synced(), get_file_info, req)?;
        Ok(())
    }

    /// The NameNode's extents of `[offset, offset + length)` of `path`, local replicas first;
    /// with `hold`, the file is held open from now on.
    pub(crate) async fn locations(
        &self,
        path: &str,
        offset: u64,
        length: u64,
        hold: bool,
    ) -> Result<pb::LocatedBlocks> {
        let req = pb::GetBlockLocationsRequest {
            path: path.to_string(),
            offset,
            length,
            client_host: self.client_host.clone(),
            client_name: self.client_name.clone(),
            hold,
        };
        Ok(call!(self.nn, get_block_locations, req)?
            .locations
            .unwrap_or_default())
    }

    /// Counts a reader or writer of `file` (whose opening call told the NameNode it is held).
    pub(crate) fn hold(&self, file: u64) -> Hold {
        self.holds.hold(file)
    }
}

impl DfsClient {
    /// Connects to the NameNode at `config.namenode`; fails fast with
    /// [`Error::Unavailable`] when it cannot be reached.
    pub async fn connect(config: ClientConfig) -> Result<DfsClient> {
        let user = config.user.clone().unwrap_or_else(UserInfo::current);
        let client_host = local_ip_towards(&config.namenode, config.connect_timeout).await?;
        let nn = Namenode::connect(
            &config.namenode,
            &user,
            config.connect_timeout,
            config.durable_replies,
        )
        .await?;
        let client_name = format!("DFSClient_{}_{:x}", std::process::id(), random_u64());
        let holds = Holds::start(client_name.clone(), nn.clone(), config.lease_renew_interval);
        let inner = Arc::new(ClientInner {
            nn,
            cfg: config,
            user,
            client_name,
            client_host,
            holds,
        });
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
            holds: self.inner.holds.clone(),
        });
        DfsClient { inner }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// Makes every namespace change the NameNode made before this call survive a power loss:
    /// fsync and fsyncdir for a client whose replies do not wait for that (`durable_replies`
    /// false). One round trip; none when replies are durable anyway.
    pub async fn sync_metadata(&self) -> Result<()> {
        self.inner.sync_metadata().await
    }

    /// Tells the NameNode that every file this client (and its other identities) still holds
    /// open is closed. For a process about to exit: otherwise a file it unlinked while open, or
    /// that another client unlinked, stays until the client's lease expires
    /// (`dfs.namenode.lease.hard-limit`). Readers and writers still alive hold nothing after it.
    pub async fn release_all(&self) -> Result<()> {
        self.inner.holds.release_all(&self.inner.nn).await
    }

    /// `dfs expunge`: checkpoints this user's trash and deletes what expired (everything with
    /// `immediate`), as the NameNode's `fs.trash.interval` says.
    pub async fn expunge_trash(&self, immediate: bool) -> Result<()> {
        let req = pb::ExpungeTrashRequest { immediate };
        call!(self.inner.nn, expunge_trash, req).map(|_| ())
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

    /// Runs a NameNode call on `paths`, resolving every symbolic link the NameNode reports on
    /// the way (in each path it lies on) until the call stops meeting one.
    async fn follow<T, F, Fut>(&self, paths: &[&str], mut call: F) -> Result<T>
    where
        F: FnMut(Vec<String>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut paths: Vec<String> = paths.iter().map(|p| Self::path(p)).collect::<Result<_>>()?;
        for _ in 0..=MAX_SYMLINKS {
            match call(paths.clone()).await {
                Err(Error::UnresolvedLink { link, rest: _ }) => {
                    let target = self.link_target_path(&link).await?;
                    let mut moved = false;
                    for p in &mut paths {
                        if let Some(after) = p.strip_prefix(link.as_str()) {
                            if after.is_empty() || after.starts_with('/') {
                                *p = Self::path(&format!("{target}{after}"))?;
                                moved = true;
                            }
                        }
                    }
                    if !moved {
                        return Err(Error::UnresolvedLink {
                            link,
                            rest: String::new(),
                        });
                    }
                }
                r => return r,
            }
        }
        Err(Error::TooManySymlinks(format!(
            "more than {MAX_SYMLINKS} symbolic links resolving {}",
            paths.join(", ")
        )))
    }

    /// Where the symbolic link at `link` points, as an absolute path: relative targets are
    /// taken from the link's directory; `.` and `..` are resolved lexically.
    async fn link_target_path(&self, link: &str) -> Result<String> {
        let req = pb::GetFileInfoRequest {
            path: link.to_string(),
        };
        let st = call!(self.inner.nn, get_file_info, req)?
            .status
            .map(FileStatus::from)
            .ok_or_else(|| Error::NotFound(format!("no such file or directory: {link}")))?;
        let target = String::from_utf8(st.symlink)
            .map_err(|_| Error::InvalidPath(format!("the target of {link} is not UTF-8")))?;
        let base = if target.starts_with('/') {
            String::new()
        } else {
            link.rsplit_once('/').map_or("", |(dir, _)| dir).to_string()
        };
        let mut comps: Vec<&str> = base.split('/').filter(|c| !c.is_empty()).collect();
        for c in target.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    comps.pop();
                }
                c => comps.push(c),
            }
        }
        Ok(format!("/{}", comps.join("/")))
    }

    /// Creates a directory; with `create_parent`, missing parents too and no error if it exists.
    pub async fn mkdirs(&self, path: &str, create_parent: bool) -> Result<()> {
        let opts = EntryOptions {
            create_parent,
            ..Default::default()
        };
        self.mkdir(path, opts).await.map(|_| ())
    }

    pub async fn mkdirs_with_permission(
        &self,
        path: &str,
        permission: u32,
        create_parent: bool,
    ) -> Result<()> {
        let opts = EntryOptions {
            permission: Some(permission),
            create_parent,
            ..Default::default()
        };
        self.mkdir(path, opts).await.map(|_| ())
    }

    /// Creates a directory as `opts` says; its status.
    pub async fn mkdir(&self, path: &str, opts: EntryOptions) -> Result<FileStatus> {
        let umask = self.inner.cfg.umask;
        self.follow(&[path], |p| {
            let req = pb::MkdirsRequest {
                path: p[0].clone(),
                permission: Some(opts.permission.unwrap_or(0o777 & !umask)),
                create_parent: opts.create_parent,
                // A parent's default ACL replaces the umask (POSIX, HDFS).
                unmasked: opts.unmasked.or(Some(opts.permission.unwrap_or(0o777))),
                group: opts.group.clone().unwrap_or_default(),
            };
            async move { status(call!(self.inner.nn, mkdirs, req)?.status, "Mkdirs") }
        })
        .await
    }

    /// Creates a file and opens it for writing, holding its lease until the writer is closed.
    pub async fn create(&self, path: &str, opts: CreateOptions) -> Result<FileWriter> {
        let cfg = &self.inner.cfg;
        let (path, st) = self
            .follow(&[path], |p| {
                let req = pb::CreateRequest {
                    path: p[0].clone(),
                    permission: Some(opts.permission.unwrap_or(0o666 & !cfg.umask)),
                    client_name: self.inner.client_name.clone(),
                    overwrite: opts.overwrite,
                    create_parent: opts.create_parent,
                    replication: if opts.replication == 0 {
                        cfg.replication
                    } else {
                        opts.replication
                    },
                    block_size: if opts.block_size == 0 {
                        cfg.block_size
                    } else {
                        opts.block_size
                    },
                    unmasked: opts.unmasked.or(Some(opts.permission.unwrap_or(0o666))),
                    group: opts.group.clone().unwrap_or_default(),
                };
                async move {
                    let st = call!(self.inner.nn, create, req)?.status;
                    Ok((p[0].clone(), st))
                }
            })
            .await?;
        let st = st.ok_or_else(|| Error::Namenode("Create returned no status".into()))?;
        FileWriter::new(self.inner.clone(), path, &st, None).await
    }

    /// Opens an existing file for appending at its end.
    pub async fn append(&self, path: &str) -> Result<FileWriter> {
        let (path, resp) = self
            .follow(&[path], |p| {
                let req = pb::AppendRequest {
                    path: p[0].clone(),
                    client_name: self.inner.client_name.clone(),
                };
                async move { Ok((p[0].clone(), call!(self.inner.nn, append, req)?)) }
            })
            .await?;
        let status = resp
            .status
            .ok_or_else(|| Error::Namenode("Append returned no status".into()))?;
        FileWriter::new(self.inner.clone(), path, &status, resp.last_block).await
    }

    /// Opens a file for reading. The reader holds the file open: unlinked or replaced
    /// meanwhile, it is still read to its end.
    pub async fn open(&self, path: &str) -> Result<FileReader> {
        let locs = self
            .follow(&[path], |p| async move {
                self.inner.locations(&p[0], 0, u64::MAX, true).await
            })
            .await?;
        FileReader::open(self.inner.clone(), path, locs).await
    }

    /// Metadata of `path`, following a symbolic link at its end, or [`Error::NotFound`].
    pub async fn stat(&self, path: &str) -> Result<FileStatus> {
        self.try_stat(path)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no such file or directory: {path}")))
    }

    /// Metadata of `path` (following links), `None` if it does not exist.
    pub async fn try_stat(&self, path: &str) -> Result<Option<FileStatus>> {
        let mut p = Self::path(path)?;
        for _ in 0..=MAX_SYMLINKS {
            match self.try_symlink_status(&p).await? {
                Some(st) if st.is_symlink() => p = self.link_target_path(&p).await?,
                other => return Ok(other),
            }
        }
        Err(Error::TooManySymlinks(format!(
            "more than {MAX_SYMLINKS} symbolic links resolving {path}"
        )))
    }

    /// Metadata of `path` itself: a symbolic link's own (`lstat`).
    pub async fn symlink_status(&self, path: &str) -> Result<FileStatus> {
        self.try_symlink_status(path)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no such file or directory: {path}")))
    }

    pub async fn try_symlink_status(&self, path: &str) -> Result<Option<FileStatus>> {
        self.follow(&[path], |p| {
            let req = pb::GetFileInfoRequest { path: p[0].clone() };
            async move {
                Ok(call!(self.inner.nn, get_file_info, req)?
                    .status
                    .map(FileStatus::from))
            }
        })
        .await
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
        self.follow(&[path], |p| {
            let req = pb::GetListingRequest {
                path: p[0].clone(),
                start_after: start_after.to_string(),
                limit,
            };
            async move {
                let resp = call!(self.inner.nn, get_listing, req)?;
                Ok(ListingPage {
                    entries: resp.entries.into_iter().map(FileStatus::from).collect(),
                    remaining: resp.remaining,
                })
            }
        })
        .await
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

    /// Renames atomically (a symbolic link is renamed, not followed). With `overwrite`, an
    /// existing file (or empty directory) at `dst` is replaced, as POSIX `rename` does; without
    /// it an existing `dst` is an error.
    pub async fn rename(&self, src: &str, dst: &str, overwrite: bool) -> Result<()> {
        self.follow(&[src, dst], |p| {
            let req = pb::RenameRequest {
                src: p[0].clone(),
                dst: p[1].clone(),
                overwrite,
            };
            async move { call!(self.inner.nn, rename, req).map(|_| ()) }
        })
        .await
    }

    /// Deletes a file, link or (with `recursive`) a tree; `false` when nothing was there.
    pub async fn delete(&self, path: &str, recursive: bool) -> Result<bool> {
        self.remove(path, recursive, None).await
    }

    /// POSIX `unlink`: anything but a directory (else [`Error::IsADirectory`]).
    pub async fn unlink(&self, path: &str) -> Result<()> {
        self.remove(path, false, Some(false)).await.map(|_| ())
    }

    /// POSIX `rmdir`: an empty directory (else [`Error::NotADirectory`] or [`Error::NotEmpty`]).
    pub async fn rmdir(&self, path: &str) -> Result<()> {
        self.remove(path, false, Some(true)).await.map(|_| ())
    }

    async fn remove(&self, path: &str, recursive: bool, directory: Option<bool>) -> Result<bool> {
        self.follow(&[path], |p| {
            let req = pb::DeleteRequest {
                path: p[0].clone(),
                recursive,
                directory,
            };
            async move { Ok(call!(self.inner.nn, delete, req)?.deleted) }
        })
        .await
    }

    /// A symbolic link at `link` pointing to `target` (bytes, any but NUL), never interpreted
    /// by the NameNode.
    pub async fn create_symlink(
        &self,
        target: &[u8],
        link: &str,
        opts: EntryOptions,
    ) -> Result<FileStatus> {
        self.follow(&[link], |p| {
            let req = pb::CreateSymlinkRequest {
                target: target.to_vec(),
                link: p[0].clone(),
                create_parent: opts.create_parent,
                group: opts.group.clone().unwrap_or_default(),
            };
            async move {
                status(
                    call!(self.inner.nn, create_symlink, req)?.status,
                    "CreateSymlink",
                )
            }
        })
        .await
    }

    /// The target of the symbolic link at `path`.
    pub async fn read_link(&self, path: &str) -> Result<Vec<u8>> {
        let st = self.symlink_status(path).await?;
        if !st.is_symlink() {
            return Err(Error::InvalidArgument(format!(
                "{path} is not a symbolic link"
            )));
        }
        Ok(st.symlink)
    }

    /// A hard link: `dst` becomes another name of the file at `src` (a link at `src` is linked
    /// itself). Directories cannot be linked ([`Error::NotPermitted`]). Returns the file's status
    /// with its new link count.
    pub async fn link(&self, src: &str, dst: &str) -> Result<FileStatus> {
        self.follow(&[src, dst], |p| {
            let req = pb::LinkRequest {
                src: p[0].clone(),
                dst: p[1].clone(),
            };
            async move { status(call!(self.inner.nn, link, req)?.status, "Link") }
        })
        .await
    }

    /// A fifo, socket or device (metadata only: the kernel of whoever mounts dfs gives it its
    /// behaviour), or an empty closed file (`FileKind::File`).
    pub async fn mknod(
        &self,
        path: &str,
        kind: FileKind,
        rdev: u64,
        opts: EntryOptions,
    ) -> Result<FileStatus> {
        let cfg = &self.inner.cfg;
        let default = if kind == FileKind::File { 0o666 } else { 0o777 };
        self.follow(&[path], |p| {
            let req = pb::MknodRequest {
                path: p[0].clone(),
                file_type: kind.to_wire() as i32,
                permission: opts.permission.unwrap_or(default & !cfg.umask),
                unmasked: opts.unmasked.or(Some(opts.permission.unwrap_or(default))),
                rdev,
                group: opts.group.clone().unwrap_or_default(),
                replication: cfg.replication,
                block_size: cfg.block_size,
            };
            async move { status(call!(self.inner.nn, mknod, req)?.status, "Mknod") }
        })
        .await
    }

    pub async fn set_replication(&self, path: &str, replication: u32) -> Result<()> {
        self.follow(&[path], |p| {
            let req = pb::SetReplicationRequest {
                path: p[0].clone(),
                replication,
            };
            async move { call!(self.inner.nn, set_replication, req).map(|_| ()) }
        })
        .await
    }

    pub async fn set_permission(&self, path: &str, permission: u32) -> Result<()> {
        self.follow(&[path], |p| {
            let req = pb::SetPermissionRequest {
                path: p[0].clone(),
                permission,
            };
            async move { call!(self.inner.nn, set_permission, req).map(|_| ()) }
        })
        .await
    }

    /// Changes owner and/or group (`None` keeps the current one).
    pub async fn set_owner(
        &self,
        path: &str,
        owner: Option<&str>,
        group: Option<&str>,
    ) -> Result<()> {
        self.follow(&[path], |p| {
            let req = pb::SetOwnerRequest {
                path: p[0].clone(),
                owner: owner.unwrap_or_default().to_string(),
                group: group.unwrap_or_default().to_string(),
            };
            async move { call!(self.inner.nn, set_owner, req).map(|_| ()) }
        })
        .await
    }

    /// Sets the times given (owner or superuser only).
    pub async fn set_times(
        &self,
        path: &str,
        mtime_ms: Option<u64>,
        atime_ms: Option<u64>,
    ) -> Result<()> {
        self.times(path, mtime_ms, atime_ms, false).await
    }

    /// Sets the times asked for to the NameNode's current time (POSIX `UTIME_NOW`: write
    /// permission suffices).
    pub async fn set_times_to_now(&self, path: &str, mtime: bool, atime: bool) -> Result<()> {
        self.times(path, mtime.then_some(0), atime.then_some(0), true)
            .await
    }

    async fn times(
        &self,
        path: &str,
        mtime_ms: Option<u64>,
        atime_ms: Option<u64>,
        now: bool,
    ) -> Result<()> {
        self.follow(&[path], |p| {
            let req = pb::SetTimesRequest {
                path: p[0].clone(),
                mtime_ms,
                atime_ms,
                now,
            };
            async move { call!(self.inner.nn, set_times, req).map(|_| ()) }
        })
        .await
    }

    /// Truncates a closed file to `new_length`: a cut keeps no byte past it, a longer length
    /// adds a hole that reads as zeros.
    pub async fn truncate(&self, path: &str, new_length: u64) -> Result<()> {
        let (path, resp) = self
            .follow(&[path], |p| {
                let req = pb::TruncateRequest {
                    path: p[0].clone(),
                    new_length,
                    client_name: self.inner.client_name.clone(),
                };
                async move { Ok((p[0].clone(), call!(self.inner.nn, truncate, req)?)) }
            })
            .await?;
        if resp.compact.is_empty() {
            return Ok(());
        }
        // The cut left the file storing many times its length: copy what the NameNode named, as
        // a writer's close would. Only space is at stake, so a failure leaves the cut standing.
        let ranges = crate::writer::compaction_ranges(&resp.compact);
        let compacted = async { self.append(&path).await?.close_compacted(ranges).await };
        if let Err(e) = compacted.await {
            tracing::warn!(%path, "truncated, but not compacted: {e}");
        }
        Ok(())
    }

    /// Sets an extended attribute (`user.`, `trusted.` or `security.` namespace).
    pub async fn set_xattr(
        &self,
        path: &str,
        name: &str,
        value: &[u8],
        flag: XAttrFlag,
    ) -> Result<()> {
        let flags = match flag {
            XAttrFlag::Any => 0,
            XAttrFlag::Create => 1,
            XAttrFlag::Replace => 2,
        };
        self.follow(&[path], |p| {
            let req = pb::SetXAttrRequest {
                path: p[0].clone(),
                xattr: Some(pb::XAttr {
                    name: name.to_string(),
                    value: value.to_vec(),
                }),
                flags,
            };
            async move { call!(self.inner.nn, set_x_attr, req).map(|_| ()) }
        })
        .await
    }

    /// One extended attribute's value, or [`Error::NoSuchAttribute`].
    pub async fn get_xattr(&self, path: &str, name: &str) -> Result<Vec<u8>> {
        let x = self.xattrs(path, vec![name.to_string()]).await?;
        x.into_iter()
            .next()
            .map(|x| x.value)
            .ok_or_else(|| Error::NoSuchAttribute(format!("{name} of {path}")))
    }

    /// Every extended attribute the caller may read.
    pub async fn get_xattrs(&self, path: &str) -> Result<Vec<XAttr>> {
        self.xattrs(path, Vec::new()).await
    }

    async fn xattrs(&self, path: &str, names: Vec<String>) -> Result<Vec<XAttr>> {
        self.follow(&[path], |p| {
            let req = pb::GetXAttrsRequest {
                path: p[0].clone(),
                names: names.clone(),
            };
            async move {
                Ok(call!(self.inner.nn, get_x_attrs, req)?
                    .xattrs
                    .into_iter()
                    .map(|x| XAttr {
                        name: x.name,
                        value: x.value,
                    })
                    .collect())
            }
        })
        .await
    }

    /// The names of the extended attributes the caller may see.
    pub async fn list_xattrs(&self, path: &str) -> Result<Vec<String>> {
        self.follow(&[path], |p| {
            let req = pb::ListXAttrsRequest { path: p[0].clone() };
            async move { Ok(call!(self.inner.nn, list_x_attrs, req)?.names) }
        })
        .await
    }

    pub async fn remove_xattr(&self, path: &str, name: &str) -> Result<()> {
        self.follow(&[path], |p| {
            let req = pb::RemoveXAttrRequest {
                path: p[0].clone(),
                name: name.to_string(),
            };
            async move { call!(self.inner.nn, remove_x_attr, req).map(|_| ()) }
        })
        .await
    }

    /// Replaces the ACL (HDFS `setAcl`): the spec's access entries the access ACL, its default
    /// entries (if any) the default ACL.
    pub async fn set_acl(&self, path: &str, spec: &[AclEntry]) -> Result<()> {
        let entries: Vec<pb::AclEntry> = spec.iter().map(pb::AclEntry::from).collect();
        self.follow(&[path], |p| {
            let req = pb::SetAclRequest {
                path: p[0].clone(),
                entries: entries.clone(),
            };
            async move { call!(self.inner.nn, set_acl, req).map(|_| ()) }
        })
        .await
    }

    /// Adds or replaces the spec's entries (HDFS `modifyAclEntries`).
    pub async fn modify_acl_entries(&self, path: &str, spec: &[AclEntry]) -> Result<()> {
        let entries: Vec<pb::AclEntry> = spec.iter().map(pb::AclEntry::from).collect();
        self.follow(&[path], |p| {
            let req = pb::ModifyAclEntriesRequest {
                path: p[0].clone(),
                entries: entries.clone(),
            };
            async move { call!(self.inner.nn, modify_acl_entries, req).map(|_| ()) }
        })
        .await
    }

    /// Removes the entries matching the spec's scope, type and name.
    pub async fn remove_acl_entries(&self, path: &str, spec: &[AclEntry]) -> Result<()> {
        let entries: Vec<pb::AclEntry> = spec.iter().map(pb::AclEntry::from).collect();
        self.follow(&[path], |p| {
            let req = pb::RemoveAclEntriesRequest {
                path: p[0].clone(),
                entries: entries.clone(),
            };
            async move { call!(self.inner.nn, remove_acl_entries, req).map(|_| ()) }
        })
        .await
    }

    pub async fn remove_default_acl(&self, path: &str) -> Result<()> {
        self.follow(&[path], |p| {
            let req = pb::RemoveDefaultAclRequest { path: p[0].clone() };
            async move { call!(self.inner.nn, remove_default_acl, req).map(|_| ()) }
        })
        .await
    }

    /// Removes every ACL entry but the base ones, which stay as the mode bits.
    pub async fn remove_acl(&self, path: &str) -> Result<()> {
        self.follow(&[path], |p| {
            let req = pb::RemoveAclRequest { path: p[0].clone() };
            async move { call!(self.inner.nn, remove_acl, req).map(|_| ()) }
        })
        .await
    }

    pub async fn get_acl(&self, path: &str) -> Result<AclStatus> {
        self.follow(&[path], |p| {
            let req = pb::GetAclStatusRequest { path: p[0].clone() };
            async move {
                let r = call!(self.inner.nn, get_acl_status, req)?;
                AclStatus::try_from(r).map_err(Error::Namenode)
            }
        })
        .await
    }

    pub async fn content_summary(&self, path: &str) -> Result<ContentSummary> {
        self.follow(&[path], |p| {
            let req = pb::GetContentSummaryRequest { path: p[0].clone() };
            async move {
                Ok(call!(self.inner.nn, get_content_summary, req)?
                    .summary
                    .unwrap_or_default()
                    .into())
            }
        })
        .await
    }

    /// Where the extents overlapping `[offset, offset + length)` live.
    pub async fn block_locations(
        &self,
        path: &str,
        offset: u64,
        length: u64,
    ) -> Result<Vec<BlockLocation>> {
        let locs = self
            .follow(&[path], |p| async move {
                self.inner.locations(&p[0], offset, length, false).await
            })
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
            .follow(&[path], |p| async move {
                self.inner.locations(&p[0], 0, u64::MAX, false).await
            })
            .await?;
        let mut crcs = Vec::with_capacity(locs.blocks.len() * 4);
        // The chunking the replicas were written with (an empty file has none: the default).
        let mut file_bpc = None;
        for lb in &locs.blocks {
            let block = lb.block.unwrap_or_default();
            if lb.block_offset != 0 || lb.length != block.num_bytes {
                return Err(Error::NotSupported(format!(
                    "checksum of {path}: it holds part of a block (it was cut or written in \
                     place), which stored CRCs cannot describe"
                )));
            }
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
        self.follow(&[path], |p| {
            let req = pb::FsckRequest { path: p[0].clone() };
            async move { Ok(call!(self.inner.nn, fsck, req)?.into()) }
        })
        .await
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

    /// Whether this client's user may access `path` as `access` asks (bits 4 read, 2 write,
    /// 1 execute), by the NameNode's rules: `Err(PermissionDenied)` when not.
    pub async fn check_access(&self, path: &str, access: u32) -> Result<()> {
        self.follow(&[path], |p| {
            let req = pb::CheckAccessRequest {
                path: p[0].clone(),
                access,
            };
            async move { call!(self.inner.nn, check_access, req).map(|_| ()) }
        })
        .await
    }

    /// Starts lease recovery of a file left open by a dead writer; `true` once it is closed.
    pub async fn recover_lease(&self, path: &str) -> Result<bool> {
        self.follow(&[path], |p| {
            let req = pb::RecoverLeaseRequest {
                path: p[0].clone(),
                client_name: self.inner.client_name.clone(),
            };
            async move { Ok(call!(self.inner.nn, recover_lease, req)?.closed) }
        })
        .await
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

/// The status a creating call answered with.
fn status(st: Option<pb::FileStatus>, call: &str) -> Result<FileStatus> {
    st.map(FileStatus::from)
        .ok_or_else(|| Error::Namenode(format!("{call} returned no status")))
}
