//! [`DfsFs`]: the `fuser::Filesystem`. Each method is a thin adapter: it takes what it needs
//! from the request and runs the work as a task on the mount's tokio runtime, which replies.
//! The kernel's session threads only read requests, so a slow DataNode delays the requests
//! waiting for it and nothing else. Errors become errno in `errno` only.
//!
//! Writes: the first write through a handle opens a client writer (appending, or the writer
//! from `create`), so data streams through the pipeline as it comes and is never buffered
//! whole. One writer per file serves every handle of this mount, so two processes appending to
//! one file share one lease. Only writes at the end of the file are possible (an `O_APPEND`
//! handle always writes there); others answer EOPNOTSUPP. `flush` (every `close(2)`) completes
//! the file when no other handle may write it, and hflushes it otherwise: close-to-open
//! consistency either way. `fsync` is `hsync`.
//!
//! Reads: one stream per handle reads forward; the kernel's concurrent read-ahead requests
//! arrive out of order, so the stream's recent bytes are kept in a [`Window`] from which the
//! late ones are served.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dfs_client::user::{group_name, user_name, UserInfo};
use dfs_client::{CreateOptions, DfsClient, FileReader, FileStatus, FileWriter};
use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    Request, TimeOrNow, WriteFlags,
};
use tokio::runtime::Handle;

use crate::errno::{errno, owner_errno};
use crate::ids::Ids;
use crate::inodes::{child, Inodes, ROOT};
use crate::window::{Window, KEEP};
use crate::{lock, MountOptions};

/// What every operation returns: the errno is chosen where the client error is met.
type Reply<T> = std::result::Result<T, Errno>;

/// How far ahead of its stream a read may land and still be served by reading forward (the
/// bytes in between are kept for the requests that arrive late), rather than by moving the
/// stream: more than the kernel's read-ahead ever has in flight.
const MAX_SKIP: u64 = KEEP;
/// Bytes read from a stream at a time (the largest FUSE request).
const CHUNK: u64 = 1 << 20;
/// uid/gid shown for owners and groups unknown to the local databases.
const NOBODY: u32 = 65534;

pub struct DfsFs {
    fs: Arc<Fs>,
}

/// Requests whose tasks have not finished. Unmounting waits for them, so that a release that
/// is completing a file is not cut off when the mount process exits.
#[derive(Default)]
pub struct InFlight {
    n: Mutex<usize>,
    idle: Condvar,
}

impl InFlight {
    fn start(self: &Arc<Self>) -> InFlightGuard {
        *lock(&self.n) += 1;
        InFlightGuard(self.clone())
    }

    /// Waits until no request is in flight, at most `timeout`; false if some still are.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let n = lock(&self.n);
        let (n, _) = self
            .idle
            .wait_timeout_while(n, timeout, |n| *n > 0)
            .unwrap_or_else(PoisonError::into_inner);
        *n == 0
    }
}

/// Counts a request as in flight until dropped (also when its task panics).
struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut n = lock(&self.0.n);
        *n -= 1;
        if *n == 0 {
            self.0.idle.notify_all();
        }
    }
}

struct Fs {
    rt: Handle,
    client: DfsClient,
    opts: MountOptions,
    inodes: Inodes,
    handles: Mutex<HashMap<u64, Open>>,
    next_fh: AtomicU64,
    /// One client per calling (uid, gid), so the NameNode checks that user's permissions.
    users: Mutex<HashMap<(u32, u32), DfsClient>>,
    /// Files with open handles, by inode.
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    in_flight: Arc<InFlight>,
    ids: Ids,
}

#[derive(Clone)]
enum Open {
    File(Arc<FileHandleState>),
    /// A tokio mutex: held across the listing RPC.
    Dir(Arc<tokio::sync::Mutex<Listing>>),
}

/// A file this mount has open, shared by all of its handles.
struct OpenFile {
    ino: u64,
    /// The file's length as this mount last knew it: while it writes, longer than the NameNode
    /// knows, and the kernel must never be told less.
    length: AtomicU64,
    /// Whether `write` holds a writer (read without the lock by `attr`).
    writing: AtomicBool,
    /// Bumped whenever the file's bytes change other than by this mount's writer appending
    /// (completion, truncation, a new length seen at the NameNode): a read stream opened
    /// before is dropped rather than trusted.
    version: AtomicU64,
    /// A tokio mutex: held across the writer's network calls.
    write: tokio::sync::Mutex<Writing>,
    /// Open handles, and those that may write; opening and the last close change them under
    /// `Fs::files`' lock.
    counts: Mutex<(usize, usize)>,
}

impl OpenFile {
    fn new(ino: u64, length: u64, writer: Option<FileWriter>) -> OpenFile {
        OpenFile {
            ino,
            length: AtomicU64::new(length),
            writing: AtomicBool::new(writer.is_some()),
            version: AtomicU64::new(0),
            write: tokio::sync::Mutex::new(Writing {
                writer,
                times: None,
            }),
            counts: Mutex::new((0, 0)),
        }
    }

    fn changed(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// The NameNode says the file is `len` bytes long: unless this mount is writing it (and
    /// knows better), a different length means it changed elsewhere.
    fn saw_length(&self, len: u64) {
        if !self.writing.load(Ordering::Acquire) && self.length.swap(len, Ordering::AcqRel) != len {
            self.changed();
        }
    }
}

struct Writing {
    writer: Option<FileWriter>,
    /// (who, mtime, atime) set while writing: completing the file sets the mtime, so they are
    /// set again after it, as the user who set them (`cp -p`, `touch` on an open file).
    times: Option<(DfsClient, Option<u64>, Option<u64>)>,
}

struct FileHandleState {
    file: Arc<OpenFile>,
    /// The client of the user who opened the handle.
    client: DfsClient,
    writable: bool,
    append: bool,
    /// A tokio mutex: held across the stream's reads.
    stream: tokio::sync::Mutex<Option<Stream>>,
}

/// A handle's read stream: `reader` is positioned at `window.end()`.
struct Stream {
    reader: FileReader,
    window: Window,
    /// The file's `version` when the stream opened.
    version: u64,
}

/// A directory being listed, one NameNode page at a time: only the current page is kept.
struct Listing {
    path: String,
    /// Index in the directory of `entries[0]`.
    base: usize,
    entries: Vec<FileStatus>,
    done: bool,
}

/// The calling process's ids.
#[derive(Clone, Copy)]
struct Caller {
    uid: u32,
    gid: u32,
}

impl Caller {
    fn of(req: &Request) -> Caller {
        Caller {
            uid: req.uid(),
            gid: req.gid(),
        }
    }
}

trait OrErrno<T> {
    fn or_errno(self) -> Reply<T>;
}

impl<T> OrErrno<T> for dfs_client::Result<T> {
    fn or_errno(self) -> Reply<T> {
        self.map_err(|e| errno(&e))
    }
}

/// The changes of one `setattr`.
struct SetAttr {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    atime: Option<TimeOrNow>,
    mtime: Option<TimeOrNow>,
}

impl DfsFs {
    pub fn new(rt: Handle, client: DfsClient, opts: MountOptions) -> DfsFs {
        DfsFs {
            fs: Arc::new(Fs {
                rt,
                client,
                opts,
                inodes: Inodes::new(),
                handles: Mutex::new(HashMap::new()),
                next_fh: AtomicU64::new(1),
                users: Mutex::new(HashMap::new()),
                files: Mutex::new(HashMap::new()),
                in_flight: Arc::default(),
                ids: Ids::default(),
            }),
        }
    }

    /// The requests still running, for unmounting to wait on.
    pub fn in_flight(&self) -> Arc<InFlight> {
        self.fs.in_flight.clone()
    }

    /// Runs `work` on the runtime; the session thread goes back to the kernel at once.
    fn run<F>(&self, work: impl FnOnce(Arc<Fs>) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let guard = self.fs.in_flight.start();
        let work = work(self.fs.clone());
        self.fs.rt.spawn(async move {
            work.await;
            drop(guard);
        });
    }
}

impl Fs {
    /// The client acting as the caller.
    fn client(&self, c: Caller) -> DfsClient {
        lock(&self.users)
            .entry((c.uid, c.gid))
            .or_insert_with(|| {
                let _guard = self.rt.enter();
                self.client.with_user(UserInfo::from_ids(c.uid, c.gid))
            })
            .clone()
    }

    fn path(&self, ino: u64) -> Reply<String> {
        self.inodes.path(ino).ok_or(Errno::ESTALE)
    }

    fn child_path(&self, parent: u64, name: &OsStr) -> Reply<String> {
        let name = name.to_str().ok_or(Errno::EINVAL)?;
        Ok(child(&self.path(parent)?, name))
    }

    fn attr(&self, st: &FileStatus) -> FileAttr {
        let ino = if st.inode_id == 0 { ROOT } else { st.inode_id };
        let mut size = st.length;
        if let Some(f) = lock(&self.files).get(&ino) {
            f.saw_length(st.length);
            if f.writing.load(Ordering::Acquire) {
                size = size.max(f.length.load(Ordering::Acquire));
            }
        }
        let t = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: t(st.atime_ms),
            mtime: t(st.mtime_ms),
            ctime: t(st.mtime_ms),
            crtime: t(st.mtime_ms),
            kind: file_type(st),
            perm: st.permission as u16,
            nlink: if st.is_dir() { 2 } else { 1 },
            uid: self.ids.uid(&st.owner).unwrap_or(NOBODY),
            gid: self.ids.gid(&st.group).unwrap_or(NOBODY),
            rdev: 0,
            blksize: CHUNK as u32,
            flags: 0,
        }
    }

    /// Looks `path` up and hands the kernel a reference to it.
    async fn entry(&self, client: &DfsClient, path: &str) -> Reply<FileAttr> {
        let st = client.stat(path).await.or_errno()?;
        let attr = self.attr(&st);
        self.inodes.remember(attr.ino.0, path);
        Ok(attr)
    }

    /// The status of inode `ino`, at `path`: ESTALE when the path now names another file.
    async fn stat_ino(&self, client: &DfsClient, ino: u64, path: &str) -> Reply<FileStatus> {
        let st = client.stat(path).await.or_errno()?;
        if st.inode_id != ino && !(ino == ROOT && path == "/") {
            tracing::info!("{path} is no longer inode {ino} (replaced by another client)");
            return Err(Errno::ESTALE);
        }
        Ok(st)
    }

    async fn getattr(&self, c: Caller, ino: u64) -> Reply<FileAttr> {
        let path = self.path(ino)?;
        Ok(self.attr(&self.stat_ino(&self.client(c), ino, &path).await?))
    }

    fn new_fh(&self, open: Open) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.handles).insert(fh, open);
        fh
    }

    fn handle(&self, fh: FileHandle) -> Reply<Open> {
        lock(&self.handles).get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    fn file_handle(&self, fh: FileHandle) -> Reply<Arc<FileHandleState>> {
        match self.handle(fh)? {
            Open::File(f) => Ok(f),
            Open::Dir(_) => Err(Errno::EISDIR),
        }
    }

    fn listing(&self, fh: FileHandle) -> Reply<Arc<tokio::sync::Mutex<Listing>>> {
        match self.handle(fh)? {
            Open::Dir(l) => Ok(l),
            Open::File(_) => Err(Errno::ENOTDIR),
        }
    }

    /// The shared state of `ino`, counting one more handle. A new state takes `writer` (from
    /// `create`); it is handed back if the file was open here already.
    fn open_file(
        &self,
        ino: u64,
        length: u64,
        writable: bool,
        writer: Option<FileWriter>,
    ) -> (Arc<OpenFile>, Option<FileWriter>) {
        let mut writer = writer;
        let mut files = lock(&self.files);
        let f = files
            .entry(ino)
            .or_insert_with(|| Arc::new(OpenFile::new(ino, length, writer.take())))
            .clone();
        f.saw_length(length);
        let mut counts = lock(&f.counts);
        counts.0 += 1;
        counts.1 += usize::from(writable);
        drop(counts);
        (f, writer)
    }

    /// A handle of `f` that may write closes: true when it was the last such.
    fn stop_writing(&self, f: &OpenFile) -> bool {
        let mut counts = lock(&f.counts);
        counts.1 -= 1;
        counts.1 == 0
    }

    /// A handle of `f` closes (after [`Fs::stop_writing`] and any completion, so that the file
    /// opened again meanwhile finds the same state and waits for the completion).
    fn close_handle(&self, f: &Arc<OpenFile>) {
        let mut files = lock(&self.files);
        let mut counts = lock(&f.counts);
        counts.0 -= 1;
        if counts.0 == 0 && files.get(&f.ino).is_some_and(|g| Arc::ptr_eq(f, g)) {
            files.remove(&f.ino);
        }
    }

    /// What a closing handle that may write does: completes the file if it was the last such.
    async fn stop_writing_and_complete(&self, client: &DfsClient, f: &OpenFile) -> Reply<()> {
        if !self.stop_writing(f) {
            return Ok(());
        }
        let mut w = f.write.lock().await;
        self.complete(client, f, &mut w).await
    }

    /// Whether the caller may access `st` (at `path`) as `mask` asks. The mode bits decide at
    /// once when they allow it; otherwise the NameNode has the last word (its superusers,
    /// supergroup and `dfs.permissions.enabled` only ever allow more).
    async fn allowed(
        &self,
        c: Caller,
        client: &DfsClient,
        path: &str,
        st: &FileStatus,
        mask: AccessFlags,
    ) -> Reply<()> {
        if may(c, client, st, mask) {
            return Ok(());
        }
        client
            .check_access(path, (mask.bits() & 7) as u32)
            .await
            .or_errno()
    }

    /// unlink (`dir` false) and rmdir (`dir` true): the NameNode's non-recursive delete removes a
    /// file or an empty directory alike, so the kind POSIX requires is checked here first.
    async fn remove(&self, c: Caller, parent: u64, name: &OsStr, dir: bool) -> Reply<()> {
        let path = self.child_path(parent, name)?;
        let client = self.client(c);
        match (client.stat(&path).await.or_errno()?.is_dir(), dir) {
            (true, false) => return Err(Errno::EISDIR),
            (false, true) => return Err(Errno::ENOTDIR),
            _ => {}
        }
        client.delete(&path, false).await.or_errno()?;
        self.inodes.removed(&path);
        Ok(())
    }

    async fn rename(
        &self,
        c: Caller,
        (parent, name): (u64, &OsStr),
        (newparent, newname): (u64, &OsStr),
        flags: RenameFlags,
    ) -> Reply<()> {
        let from = self.child_path(parent, name)?;
        let to = self.child_path(newparent, newname)?;
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            return Err(Errno::EINVAL);
        }
        // POSIX rename replaces an existing destination; RENAME_NOREPLACE asks it not to.
        let overwrite = !flags.contains(RenameFlags::RENAME_NOREPLACE);
        self.client(c)
            .rename(&from, &to, overwrite)
            .await
            .or_errno()?;
        self.inodes.renamed(&from, &to);
        Ok(())
    }

    async fn setattr(&self, c: Caller, ino: u64, changes: SetAttr) -> Reply<FileAttr> {
        let client = self.client(c);
        let path = self.path(ino)?;
        if let Some(mode) = changes.mode {
            client
                .set_permission(&path, mode & 0o7777)
                .await
                .map_err(|e| owner_errno(&e))?;
        }
        if changes.uid.is_some() || changes.gid.is_some() {
            let owner = changes
                .uid
                .map(|u| user_name(u).unwrap_or_else(|| u.to_string()));
            let group = changes
                .gid
                .map(|g| group_name(g).unwrap_or_else(|| g.to_string()));
            client
                .set_owner(&path, owner.as_deref(), group.as_deref())
                .await
                .map_err(|e| owner_errno(&e))?;
        }
        if let Some(size) = changes.size {
            // Changing the length is writing, also when another handle's writer does it.
            let st = self.stat_ino(&client, ino, &path).await?;
            self.allowed(c, &client, &path, &st, AccessFlags::W_OK)
                .await?;
            // truncate(2) by path comes without a handle: the call counts as one.
            let (file, _) = self.open_file(ino, st.length, true, None);
            let truncated = self.truncate(&client, &file, size).await;
            let completed = self.stop_writing_and_complete(&client, &file).await;
            self.close_handle(&file);
            truncated.and(completed)?;
        }
        let mut times = None;
        if changes.atime.is_some() || changes.mtime.is_some() {
            let ms = |t: TimeOrNow| {
                let t = match t {
                    TimeOrNow::Now => SystemTime::now(),
                    TimeOrNow::SpecificTime(t) => t,
                };
                t.duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64)
            };
            let (mtime, atime) = (changes.mtime.map(ms), changes.atime.map(ms));
            // Set now (the NameNode checks the caller may), and again after completion if the
            // file is being written here.
            client
                .set_times(&path, mtime, atime)
                .await
                .map_err(|e| owner_errno(&e))?;
            let file = lock(&self.files).get(&ino).cloned();
            if let Some(f) = file {
                let mut w = f.write.lock().await;
                if w.writer.is_some() {
                    let prev = w.times.take().map(|(_, m, a)| (m, a)).unwrap_or_default();
                    w.times = Some((client.clone(), mtime.or(prev.0), atime.or(prev.1)));
                }
            }
            times = Some((mtime, atime));
        }
        let mut attr = self.attr(&self.stat_ino(&client, ino, &path).await?);
        if let Some((mtime, atime)) = times {
            // Deferred times are what the file will have: show them now.
            let t = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
            attr.mtime = mtime.map_or(attr.mtime, t);
            attr.atime = atime.map_or(attr.atime, t);
        }
        Ok(attr)
    }

    /// Truncation dfs can do: to 0 (the NameNode), to the current length (nothing), or to more
    /// (zeros appended). Cutting a file elsewhere would rewrite its last block: EOPNOTSUPP.
    async fn truncate(&self, client: &DfsClient, f: &OpenFile, size: u64) -> Reply<()> {
        let mut w = f.write.lock().await;
        let writing = w.writer.is_some();
        let len = if writing {
            f.length.load(Ordering::Acquire)
        } else {
            let path = self.path(f.ino)?;
            self.stat_ino(client, f.ino, &path).await?.length
        };
        if size > len {
            let (writer, len) = self.writer(client, f, &mut w).await?;
            if size > len {
                append_zeros(client, writer, size - len).await?;
                f.length.store(size, Ordering::Release);
                return Ok(());
            }
        }
        if size < len {
            if writing || size != 0 {
                tracing::warn!(
                    "truncate of inode {} from {len} to {size} bytes refused: dfs only cuts a \
                     file to 0 when it is not being written",
                    f.ino
                );
                return Err(Errno::EOPNOTSUPP);
            }
            let path = self.path(f.ino)?;
            client.truncate(&path, 0).await.or_errno()?;
            f.length.store(0, Ordering::Release);
            f.changed();
        }
        Ok(())
    }

    async fn open(&self, c: Caller, ino: u64, flags: OpenFlags) -> Reply<u64> {
        let client = self.client(c);
        let path = self.path(ino)?;
        let st = self.stat_ino(&client, ino, &path).await?;
        if st.is_dir() {
            return Err(Errno::EISDIR);
        }
        let (mask, writable) = match flags.acc_mode() {
            fuser::OpenAccMode::O_RDONLY => (AccessFlags::R_OK, false),
            fuser::OpenAccMode::O_WRONLY => (AccessFlags::W_OK, true),
            fuser::OpenAccMode::O_RDWR => (AccessFlags::R_OK | AccessFlags::W_OK, true),
        };
        self.allowed(c, &client, &path, &st, mask).await?;
        let (file, _) = self.open_file(ino, st.length, writable, None);
        if writable && flags.0 & libc::O_TRUNC != 0 {
            if let Err(e) = self.truncate(&client, &file, 0).await {
                // Truncating to 0 opens no writer: there is nothing to complete.
                self.stop_writing(&file);
                self.close_handle(&file);
                return Err(e);
            }
        }
        Ok(self.new_fh(Open::File(Arc::new(FileHandleState {
            file,
            client,
            writable,
            append: flags.0 & libc::O_APPEND != 0,
            stream: tokio::sync::Mutex::new(None),
        }))))
    }

    async fn create(
        &self,
        c: Caller,
        parent: u64,
        name: &OsStr,
        permission: u32,
        flags: i32,
    ) -> Reply<(FileAttr, u64)> {
        let path = self.child_path(parent, name)?;
        let client = self.client(c);
        let opts = CreateOptions {
            permission: Some(permission),
            ..Default::default()
        };
        let writer = client.create(&path, opts).await.or_errno()?;
        // The NameNode's answer to create describes the new file: no stat needed.
        let attr = self.attr(writer.status());
        self.inodes.remember(attr.ino.0, &path);
        let (file, not_taken) = self.open_file(attr.ino.0, 0, true, Some(writer));
        if let Some(writer) = not_taken {
            // The new inode was open here already (it cannot be: ids are never reused).
            file.write.lock().await.writer = Some(writer);
            file.writing.store(true, Ordering::Release);
        }
        let fh = self.new_fh(Open::File(Arc::new(FileHandleState {
            file,
            client,
            writable: true,
            append: flags & libc::O_APPEND != 0,
            stream: tokio::sync::Mutex::new(None),
        })));
        Ok((attr, fh))
    }

    async fn write(&self, h: &FileHandleState, offset: u64, data: &[u8]) -> Reply<()> {
        let f = &h.file;
        let mut w = f.write.lock().await;
        let (writer, len) = self.writer(&h.client, f, &mut w).await?;
        // O_APPEND writes go to the end whatever the kernel's idea of the size.
        let offset = if h.append { len } else { offset };
        if offset < len {
            tracing::warn!(
                "write to inode {} at offset {offset} refused: the file is {len} bytes long and \
                 dfs does not rewrite data (random writes are not supported)",
                f.ino
            );
            return Err(Errno::EOPNOTSUPP);
        }
        // A write past the end (`cp` of a sparse file seeks over holes) leaves a hole that
        // reads as zeros: write the zeros.
        append_zeros(&h.client, writer, offset - len).await?;
        writer.write(data).await.or_errno()?;
        f.length
            .store(offset + data.len() as u64, Ordering::Release);
        Ok(())
    }

    /// The file's writer in this mount, opened (appending) if there is none, and the file's
    /// length.
    async fn writer<'w>(
        &self,
        client: &DfsClient,
        f: &OpenFile,
        w: &'w mut Writing,
    ) -> Reply<(&'w mut FileWriter, u64)> {
        let writer = match w.writer.take() {
            Some(writer) => writer,
            None => {
                let path = self.path(f.ino)?;
                let mut writer = client.append(&path).await.or_errno()?;
                if writer.file_id() != f.ino {
                    // The path now names another file: leave that one as it was.
                    tracing::info!("{path} is no longer inode {} (replaced elsewhere)", f.ino);
                    let _ = writer.close().await;
                    return Err(Errno::ESTALE);
                }
                f.length.store(writer.len(), Ordering::Release);
                f.writing.store(true, Ordering::Release);
                writer
            }
        };
        let len = writer.len();
        Ok((w.writer.insert(writer), len))
    }

    /// Makes what this handle wrote visible to others: completes the file when `last` (no other
    /// handle may write it), else hflushes.
    async fn flush(&self, h: &FileHandleState, last: bool) -> Reply<()> {
        let mut w = h.file.write.lock().await;
        match &mut w.writer {
            None => Ok(()),
            Some(writer) if !last => writer.hflush().await.or_errno(),
            Some(_) => self.complete(&h.client, &h.file, &mut w).await,
        }
    }

    /// Closes the file's writer (which completes the file at the NameNode), then sets again
    /// the times set while it was being written.
    async fn complete(&self, client: &DfsClient, f: &OpenFile, w: &mut Writing) -> Reply<()> {
        let Some(mut writer) = w.writer.take() else {
            return Ok(());
        };
        let closed = writer.close().await;
        // Only now: until the NameNode has the length, the kernel must be told this mount's.
        f.writing.store(false, Ordering::Release);
        f.changed();
        if let Err(e) = &closed {
            // Left alone, the file would stay leased to this mount's client, which renews all
            // its leases: have it closed at what its DataNodes hold, so it can be written again.
            tracing::warn!(
                "completing inode {} failed: {e}; recovering its lease",
                f.ino
            );
            if let Ok(path) = self.path(f.ino) {
                if self.stat_ino(client, f.ino, &path).await.is_ok() {
                    if let Err(e) = client.recover_lease(&path).await {
                        tracing::warn!("recovering the lease of {path} failed: {e}");
                    }
                }
            }
        }
        if let (Some((who, mtime, atime)), Ok(path)) = (w.times.take(), self.path(f.ino)) {
            who.set_times(&path, mtime, atime)
                .await
                .map_err(|e| owner_errno(&e))?;
        }
        closed.or_errno()
    }

    async fn fsync(&self, h: &FileHandleState) -> Reply<()> {
        match &mut h.file.write.lock().await.writer {
            Some(w) => w.hsync().await.or_errno(),
            None => Ok(()),
        }
    }

    async fn release(&self, h: &FileHandleState) -> Reply<()> {
        let completed = if h.writable {
            self.stop_writing_and_complete(&h.client, &h.file).await
        } else {
            Ok(())
        };
        self.close_handle(&h.file);
        completed
    }

    async fn read(&self, h: &FileHandleState, offset: u64, size: u32) -> Reply<Bytes> {
        let mut slot = h.stream.lock().await;
        let version = h.file.version.load(Ordering::Acquire);
        // A stream that failed is dropped (the `?`s below): the next read opens a new one.
        let mut s = match slot.take() {
            Some(s)
                if s.version == version
                    && offset >= s.window.start()
                    && offset <= s.window.end() + MAX_SKIP =>
            {
                s
            }
            _ => Stream {
                reader: self.open_reader(h, offset).await?,
                window: Window::at(offset),
                version,
            },
        };
        let end = offset + u64::from(size);
        let mut refreshed = false;
        while s.window.end() < end {
            let mut buf = vec![0u8; (end - s.window.end()).min(CHUNK) as usize];
            let n = s.reader.read_full(&mut buf).await.or_errno()?;
            if n > 0 {
                buf.truncate(n);
                s.window.push(Bytes::from(buf));
                continue;
            }
            // The end of the file as the stream knows it, but the kernel asks for more. Past the
            // page holding that end (the kernel reads whole pages), or while this mount writes
            // the file, the file has grown since the stream opened: look again, once.
            let page_end = s.window.end().next_multiple_of(4096);
            if refreshed || (end <= page_end && !h.file.writing.load(Ordering::Acquire)) {
                break;
            }
            refreshed = true;
            s.reader = self.open_reader(h, s.window.end()).await?;
        }
        let data = if offset > s.window.end() {
            Bytes::new()
        } else {
            s.window.slice(offset, size as usize)
        };
        *slot = Some(s);
        Ok(data)
    }

    /// A reader of the handle's file at `pos` that sees everything this mount wrote to it.
    async fn open_reader(&self, h: &FileHandleState, pos: u64) -> Reply<FileReader> {
        self.flush_own_writes(&h.file).await?;
        let path = self.path(h.file.ino)?;
        let mut reader = h.client.open(&path).await.or_errno()?;
        if reader.file_id() != h.file.ino {
            tracing::info!(
                "{path} is no longer inode {} (replaced elsewhere)",
                h.file.ino
            );
            return Err(Errno::ESTALE);
        }
        reader.seek(pos);
        Ok(reader)
    }

    /// hflushes this mount's writer of `f`, if any.
    async fn flush_own_writes(&self, f: &OpenFile) -> Reply<()> {
        if !f.writing.load(Ordering::Acquire) {
            return Ok(());
        }
        match &mut f.write.lock().await.writer {
            Some(w) => w.hflush().await.or_errno(),
            None => Ok(()),
        }
    }

    /// Entry `k` of the listing (None past the end), fetching pages as needed.
    async fn list_entry(
        &self,
        client: &DfsClient,
        l: &mut Listing,
        k: usize,
    ) -> Reply<Option<FileStatus>> {
        if k < l.base {
            // The kernel went back (rewinddir): list again from the start.
            l.base = 0;
            l.entries.clear();
            l.done = false;
        }
        while k >= l.base + l.entries.len() && !l.done {
            let after = l.entries.last().map(|e| e.name.clone()).unwrap_or_default();
            let page = client.list_page(&l.path, &after, 0).await.or_errno()?;
            l.base += l.entries.len();
            l.done = !page.has_more();
            l.entries = page.entries;
        }
        Ok(l.entries.get(k - l.base).cloned())
    }

    async fn readdir(
        &self,
        c: Caller,
        ino: u64,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listing = match self.listing(fh) {
            Ok(l) => l,
            Err(e) => return reply.error(e),
        };
        let client = self.client(c);
        let mut l = listing.lock().await;
        // Offsets 0 and 1 are "." and ".."; entry k is at offset k + 2.
        for i in offset as usize.. {
            let (name, kind, ino) = match i {
                0 => (".".to_string(), FileType::Directory, ino),
                1 => ("..".to_string(), FileType::Directory, ino),
                _ => match self.list_entry(&client, &mut l, i - 2).await {
                    Ok(Some(e)) => (e.name.clone(), file_type(&e), e.inode_id),
                    Ok(None) => break,
                    // What was added is answered; the kernel asks again from there.
                    Err(_) if i > offset as usize => break,
                    Err(e) => return reply.error(e),
                },
            };
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok()
    }

    async fn readdirplus(
        &self,
        c: Caller,
        ino: u64,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let listing = match self.listing(fh) {
            Ok(l) => l,
            Err(e) => return reply.error(e),
        };
        let dir_attr = match self.getattr(c, ino).await {
            Ok(a) => a,
            Err(e) => return reply.error(e),
        };
        let client = self.client(c);
        let mut l = listing.lock().await;
        let ttl = self.opts.entry_timeout;
        for i in offset as usize.. {
            if i < 2 {
                // The kernel takes no reference to "." and "..".
                let name = if i == 0 { "." } else { ".." };
                if reply.add(
                    INodeNo(ino),
                    (i + 1) as u64,
                    name,
                    &ttl,
                    &dir_attr,
                    Generation(0),
                ) {
                    break;
                }
                continue;
            }
            let e = match self.list_entry(&client, &mut l, i - 2).await {
                Ok(Some(e)) => e,
                Ok(None) => break,
                // The entries added hold the kernel's references (remembered): they must be
                // answered. The kernel asks again from there and meets the error then.
                Err(_) if i > offset as usize => break,
                Err(e) => return reply.error(e),
            };
            let attr = self.attr(&e);
            if reply.add(
                attr.ino,
                (i + 1) as u64,
                &e.name,
                &ttl,
                &attr,
                Generation(0),
            ) {
                break;
            }
            // The kernel now holds a reference, as after a lookup.
            self.inodes.remember(attr.ino.0, &child(&l.path, &e.name));
        }
        reply.ok()
    }
}

/// Appends `n` zero bytes (a hole made real: dfs files have no sparse regions). A hole larger
/// than the cluster's free space is refused at once rather than written until the cluster is
/// full.
async fn append_zeros(client: &DfsClient, writer: &mut FileWriter, mut n: u64) -> Reply<()> {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    if n > CHUNK {
        let free = client.stats().await.or_errno()?.remaining;
        if n > free {
            tracing::warn!(
                "a hole of {n} bytes in {} refused: the cluster has {free} bytes free",
                writer.path()
            );
            return Err(Errno::ENOSPC);
        }
    }
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        writer.write(&ZEROS[..k]).await.or_errno()?;
        n -= k as u64;
    }
    Ok(())
}

/// Whether the mode bits of `st` let the caller (acting as `client`'s user) access it as `mask`
/// asks; root may do anything but execute what nobody may execute.
fn may(c: Caller, client: &DfsClient, st: &FileStatus, mask: AccessFlags) -> bool {
    let want = (mask.bits() & 7) as u32;
    if want == 0 {
        return true;
    }
    let p = st.permission;
    if c.uid == 0 {
        return want & 1 == 0 || st.is_dir() || p & 0o111 != 0;
    }
    let user = client.user();
    let bits = if user.name == st.owner {
        (p >> 6) & 7
    } else if user.groups.contains(&st.group) {
        (p >> 3) & 7
    } else {
        p & 7
    };
    bits & want == want
}

fn file_type(st: &FileStatus) -> FileType {
    if st.is_dir() {
        FileType::Directory
    } else {
        FileType::RegularFile
    }
}

impl fuser::Filesystem for DfsFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // 1 MiB requests and read-ahead (the kernel caps requests at fs.fuse.max_pages_limit).
        let _ = config.set_max_write(CHUNK as u32);
        let _ = config.set_max_readahead(CHUNK as u32);
        // `ls -l` gets names and attributes in one listing RPC per page, not a stat per
        // entry; O_TRUNC comes with open (one request, not open + setattr); lookups and
        // listings in one directory may run concurrently. Each only where the kernel has it.
        for cap in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_ATOMIC_O_TRUNC,
            InitFlags::FUSE_PARALLEL_DIROPS,
        ] {
            if config.add_capabilities(cap).is_err() {
                tracing::info!("the kernel lacks {cap:?}");
            }
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let (c, name) = (Caller::of(req), name.to_owned());
        self.run(|fs| async move {
            let found = async {
                let path = fs.child_path(parent.0, &name)?;
                fs.entry(&fs.client(c), &path).await
            };
            match found.await {
                Ok(attr) => reply.entry(&fs.opts.entry_timeout, &attr, Generation(0)),
                Err(e) => reply.error(e),
            }
        })
    }

    // dfs has regular files and directories only: what POSIX says a file system without the
    // others answers is EPERM.
    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM)
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM)
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM)
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.inodes.forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let c = Caller::of(req);
        self.run(|fs| async move {
            match fs.getattr(c, ino.0).await {
                Ok(attr) => reply.attr(&fs.opts.attr_timeout, &attr),
                Err(e) => reply.error(e),
            }
        })
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let c = Caller::of(req);
        let changes = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        };
        self.run(|fs| async move {
            match fs.setattr(c, ino.0, changes).await {
                Ok(attr) => reply.attr(&fs.opts.attr_timeout, &attr),
                Err(e) => reply.error(e),
            }
        })
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let (c, name) = (Caller::of(req), name.to_owned());
        self.run(|fs| async move {
            let made = async {
                let path = fs.child_path(parent.0, &name)?;
                let client = fs.client(c);
                client
                    .mkdirs_with_permission(&path, mode & !umask & 0o7777, false)
                    .await
                    .or_errno()?;
                fs.entry(&client, &path).await
            };
            match made.await {
                Ok(attr) => reply.entry(&fs.opts.entry_timeout, &attr, Generation(0)),
                Err(e) => reply.error(e),
            }
        })
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let (c, name) = (Caller::of(req), name.to_owned());
        self.run(|fs| async move { done(reply, fs.remove(c, parent.0, &name, false).await) })
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let (c, name) = (Caller::of(req), name.to_owned());
        self.run(|fs| async move { done(reply, fs.remove(c, parent.0, &name, true).await) })
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let c = Caller::of(req);
        let (name, newname): (OsString, OsString) = (name.to_owned(), newname.to_owned());
        self.run(|fs| async move {
            let renamed = fs
                .rename(c, (parent.0, &name), (newparent.0, &newname), flags)
                .await;
            done(reply, renamed)
        })
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let c = Caller::of(req);
        self.run(|fs| async move {
            match fs.open(c, ino.0, flags).await {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
                Err(e) => reply.error(e),
            }
        })
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let (c, name) = (Caller::of(req), name.to_owned());
        self.run(|fs| async move {
            match fs
                .create(c, parent.0, &name, mode & !umask & 0o7777, flags)
                .await
            {
                Ok((attr, fh)) => reply.created(
                    &fs.opts.entry_timeout,
                    &attr,
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::empty(),
                ),
                Err(e) => reply.error(e),
            }
        })
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.run(|fs| async move {
            let data = match fs.file_handle(fh) {
                Ok(h) => fs.read(&h, offset, size).await,
                Err(e) => Err(e),
            };
            match data {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(e),
            }
        })
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // The request's buffer belongs to the session thread: the task gets a copy.
        let data = data.to_vec();
        self.run(|fs| async move {
            let written = match fs.file_handle(fh) {
                Ok(h) => fs.write(&h, offset, &data).await,
                Err(e) => Err(e),
            };
            match written {
                Ok(()) => reply.written(data.len() as u32),
                Err(e) => reply.error(e),
            }
        })
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.run(|fs| async move {
            let flushed = match fs.handle(fh) {
                Ok(Open::File(h)) if h.writable => {
                    let last = lock(&h.file.counts).1 <= 1;
                    fs.flush(&h, last).await
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            done(reply, flushed)
        })
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.run(|fs| async move {
            let synced = match fs.file_handle(fh) {
                Ok(h) => fs.fsync(&h).await,
                Err(e) => Err(e),
            };
            done(reply, synced)
        })
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let open = lock(&self.fs.handles).remove(&fh.0);
        self.run(|fs| async move {
            let released = match open {
                Some(Open::File(h)) => fs.release(&h).await,
                _ => Ok(()),
            };
            done(reply, released)
        })
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let path = match self.fs.path(ino.0) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let listing = Listing {
            path,
            base: 0,
            entries: Vec::new(),
            done: false,
        };
        let fh = self
            .fs
            .new_fh(Open::Dir(Arc::new(tokio::sync::Mutex::new(listing))));
        reply.opened(FileHandle(fh), FopenFlags::empty())
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        let c = Caller::of(req);
        self.run(|fs| async move { fs.readdir(c, ino.0, fh, offset, reply).await })
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        let c = Caller::of(req);
        self.run(|fs| async move { fs.readdirplus(c, ino.0, fh, offset, reply).await })
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        lock(&self.fs.handles).remove(&fh.0);
        reply.ok()
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.run(|fs| async move {
            match fs.client.stats().await.or_errno() {
                Ok(s) => {
                    const BSIZE: u64 = 4096;
                    let files = s.files + s.directories;
                    reply.statfs(
                        s.capacity / BSIZE,
                        s.remaining / BSIZE,
                        s.remaining / BSIZE,
                        files + (1 << 32),
                        1 << 32,
                        BSIZE as u32,
                        255,
                        BSIZE as u32,
                    )
                }
                Err(e) => reply.error(e),
            }
        })
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let c = Caller::of(req);
        self.run(|fs| async move {
            let allowed = async {
                let path = fs.path(ino.0)?;
                let client = fs.client(c);
                let st = fs.stat_ino(&client, ino.0, &path).await?;
                fs.allowed(c, &client, &path, &st, mask).await
            };
            done(reply, allowed.await)
        })
    }
}

fn done(reply: ReplyEmpty, result: Reply<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}
