//! [`DfsFs`]: the `fuser::Filesystem`. Each method is a thin adapter: resolve the inode to a path,
//! call a helper that returns `Result<_, Error>` (running the async client on the mount's tokio
//! runtime), reply. Errors become errno in `errno::errno` only.
//!
//! Writes: a file handle gets a client writer at its first write, created (new file) or
//! appending (existing file), so data streams through the pipeline as it comes and is never
//! buffered whole. Only writes at the current end of the file are possible: the others answer
//! EOPNOTSUPP. `flush` (every `close(2)`) completes the file, which gives close-to-open
//! consistency; `fsync` is `hsync`.
//!
//! Reads: each handle keeps a few positioned readers, so the kernel's concurrent read-ahead
//! requests (served by several session threads) each continue a stream instead of seeking one.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dfs_client::user::{group_id, group_name, user_id, user_name, UserInfo};
use dfs_client::{CreateOptions, DfsClient, Error, FileReader, FileStatus, FileWriter};
use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    Request, TimeOrNow, WriteFlags,
};
use tokio::runtime::Handle;

use crate::errno::errno;
use crate::inodes::{child, Inodes, ROOT};
use crate::MountOptions;

type Result<T> = std::result::Result<T, Error>;

/// Readers kept per open file handle.
const READERS_PER_HANDLE: usize = 4;
/// uid/gid shown for owners and groups unknown to the local databases.
const NOBODY: u32 = 65534;

pub struct DfsFs {
    rt: Handle,
    client: DfsClient,
    opts: MountOptions,
    inodes: Inodes,
    handles: Mutex<HashMap<u64, Open>>,
    next_fh: AtomicU64,
    /// One client per calling (uid, gid), so the NameNode checks that user's permissions.
    users: Mutex<HashMap<(u32, u32), DfsClient>>,
    /// Files with a writer in this mount: their length as written so far, which the NameNode
    /// does not know yet and the kernel must not be told is shorter.
    writing: Mutex<HashMap<u64, Arc<AtomicU64>>>,
}

#[derive(Clone)]
enum Open {
    File(Arc<OpenFile>),
    Dir(Arc<Mutex<Listing>>),
}

struct OpenFile {
    ino: u64,
    path: String,
    client: DfsClient,
    writer: Mutex<Option<FileWriter>>,
    /// Length of the file as this handle knows it (grows with every write); shared with
    /// `DfsFs::writing` while the handle writes.
    length: Arc<AtomicU64>,
    readers: Mutex<Vec<FileReader>>,
}

/// A directory being listed, fetched one NameNode page at a time.
struct Listing {
    path: String,
    entries: Vec<FileStatus>,
    done: bool,
}

impl DfsFs {
    pub fn new(rt: Handle, client: DfsClient, opts: MountOptions) -> DfsFs {
        DfsFs {
            rt,
            client,
            opts,
            inodes: Inodes::new(),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            users: Mutex::new(HashMap::new()),
            writing: Mutex::new(HashMap::new()),
        }
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The client acting as the caller.
    fn client(&self, req: &Request) -> DfsClient {
        let key = (req.uid(), req.gid());
        let mut users = self.users.lock().expect("users poisoned");
        users
            .entry(key)
            .or_insert_with(|| {
                let _guard = self.rt.enter();
                self.client.with_user(UserInfo::from_ids(key.0, key.1))
            })
            .clone()
    }

    fn path(&self, ino: INodeNo) -> std::result::Result<String, Errno> {
        self.inodes.path(ino.0).ok_or(Errno::ESTALE)
    }

    fn child_path(&self, parent: INodeNo, name: &OsStr) -> std::result::Result<String, Errno> {
        let name = name.to_str().ok_or(Errno::EINVAL)?;
        Ok(child(&self.path(parent)?, name))
    }

    fn attr(&self, st: &FileStatus) -> FileAttr {
        let ino = if st.inode_id == 0 { ROOT } else { st.inode_id };
        let mut size = st.length;
        if let Some(len) = self.writing.lock().expect("writing poisoned").get(&ino) {
            size = size.max(len.load(Ordering::Relaxed));
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
            kind: if st.is_dir() {
                FileType::Directory
            } else {
                FileType::RegularFile
            },
            perm: st.permission as u16,
            nlink: if st.is_dir() { 2 } else { 1 },
            uid: user_id(&st.owner).unwrap_or(NOBODY),
            gid: group_id(&st.group).unwrap_or(NOBODY),
            rdev: 0,
            blksize: 1 << 20,
            flags: 0,
        }
    }

    /// Looks `path` up and hands the kernel a reference to it.
    fn entry(&self, client: &DfsClient, path: &str) -> Result<FileAttr> {
        let st = self.block_on(client.stat(path))?;
        let attr = self.attr(&st);
        self.inodes.remember(attr.ino.0, path);
        Ok(attr)
    }

    fn getattr_path(&self, client: &DfsClient, ino: u64, path: &str) -> Result<FileAttr> {
        let st = self.block_on(client.stat(path))?;
        if st.inode_id != ino && !(ino == ROOT && path == "/") {
            // The path now names another file: the one the kernel asks about is gone.
            return Err(Error::NotFound(format!("{path} was replaced")));
        }
        Ok(self.attr(&st))
    }

    fn new_fh(&self, open: Open) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles
            .lock()
            .expect("handles poisoned")
            .insert(fh, open);
        fh
    }

    fn handle(&self, fh: FileHandle) -> std::result::Result<Open, Errno> {
        self.handles
            .lock()
            .expect("handles poisoned")
            .get(&fh.0)
            .cloned()
            .ok_or(Errno::EBADF)
    }

    fn file(&self, fh: FileHandle) -> std::result::Result<Arc<OpenFile>, Errno> {
        match self.handle(fh)? {
            Open::File(f) => Ok(f),
            Open::Dir(_) => Err(Errno::EISDIR),
        }
    }

    /// unlink (`dir` false) and rmdir (`dir` true): the NameNode's non-recursive delete removes a
    /// file or an empty directory alike, so the kind POSIX requires is checked here first.
    fn remove(&self, req: &Request, parent: INodeNo, name: &OsStr, dir: bool, reply: ReplyEmpty) {
        let path = match self.child_path(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let client = self.client(req);
        let result = self.block_on(async {
            match (client.stat(&path).await?.is_dir(), dir) {
                (true, false) => Err(Error::IsADirectory(path.clone())),
                (false, true) => Err(Error::NotADirectory(path.clone())),
                _ => client.delete(&path, false).await,
            }
        });
        match result {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn do_setattr(&self, req: &Request, ino: INodeNo, changes: SetAttr) -> Result<FileAttr> {
        let client = self.client(req);
        let path = self
            .inodes
            .path(ino.0)
            .ok_or_else(|| Error::NotFound("stale inode".into()))?;
        if let Some(mode) = changes.mode {
            self.block_on(client.set_permission(&path, mode & 0o7777))?;
        }
        if changes.uid.is_some() || changes.gid.is_some() {
            let owner = changes
                .uid
                .map(|u| user_name(u).unwrap_or_else(|| u.to_string()));
            let group = changes
                .gid
                .map(|g| group_name(g).unwrap_or_else(|| g.to_string()));
            self.block_on(client.set_owner(&path, owner.as_deref(), group.as_deref()))?;
        }
        if let Some(size) = changes.size {
            self.truncate(&client, ino.0, &path, size)?;
        }
        if changes.atime.is_some() || changes.mtime.is_some() {
            let ms = |t: TimeOrNow| {
                let t = match t {
                    TimeOrNow::Now => SystemTime::now(),
                    TimeOrNow::SpecificTime(t) => t,
                };
                t.duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64)
            };
            self.block_on(client.set_times(&path, changes.mtime.map(ms), changes.atime.map(ms)))?;
        }
        self.getattr_path(&client, ino.0, &path)
    }

    /// Truncation the NameNode can do: to 0, or to the current length (a no-op).
    fn truncate(&self, client: &DfsClient, ino: u64, path: &str, size: u64) -> Result<()> {
        let writing = self
            .writing
            .lock()
            .expect("writing poisoned")
            .get(&ino)
            .cloned();
        if let Some(len) = writing {
            let len = len.load(Ordering::Relaxed);
            if size == len {
                return Ok(());
            }
            if len > 0 {
                return Err(Error::NotSupported(format!(
                    "cannot truncate {path} to {size} while it is being written ({len} bytes so far)"
                )));
            }
        }
        let st = self.block_on(client.stat(path))?;
        if st.length == size {
            return Ok(());
        }
        if size > st.length {
            return Err(Error::NotSupported(format!(
                "cannot extend {path} from {} to {size} bytes: dfs files grow only by appending",
                st.length
            )));
        }
        if size != 0 {
            tracing::warn!(
                "truncate {path} from {} to {size}: only truncation to 0 is supported",
                st.length
            );
        }
        self.block_on(client.truncate(path, size))
    }

    fn do_write(&self, f: &OpenFile, offset: u64, data: &[u8]) -> Result<()> {
        let mut w = f.writer.lock().expect("writer poisoned");
        let mut len = f.length.load(Ordering::Relaxed);
        if w.is_none() && offset != len {
            // The length seen at open may be stale: for `> file` the kernel opens first and
            // truncates (setattr) after.
            len = self.block_on(f.client.stat(&f.path))?.length;
            f.length.store(len, Ordering::Relaxed);
        }
        if offset != len {
            tracing::warn!(
                "write to {} at offset {offset} refused: the file is {len} bytes long and dfs \
                 only appends (random writes are not supported)",
                f.path
            );
            return Err(Error::NotSupported("random write".into()));
        }
        if w.is_none() {
            *w = Some(self.block_on(f.client.append(&f.path))?);
            self.writing
                .lock()
                .expect("writing poisoned")
                .insert(f.ino, f.length.clone());
        }
        let writer = w.as_mut().expect("writer just opened");
        self.block_on(writer.write(data))?;
        f.length.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Completes the file if this handle has been writing it.
    fn close_writer(&self, f: &OpenFile) -> Result<()> {
        let writer = f.writer.lock().expect("writer poisoned").take();
        let Some(mut w) = writer else { return Ok(()) };
        let result = self.block_on(w.close());
        self.writing
            .lock()
            .expect("writing poisoned")
            .remove(&f.ino);
        result
    }

    fn do_read(&self, f: &OpenFile, offset: u64, size: u32) -> Result<Vec<u8>> {
        // A reader already positioned at `offset`, else the least recently used one, else a new one.
        let reader = {
            let mut pool = f.readers.lock().expect("readers poisoned");
            match pool.iter().position(|r| r.position() == offset) {
                Some(i) => Some(pool.remove(i)),
                None if pool.len() >= READERS_PER_HANDLE => Some(pool.remove(0)),
                None => None,
            }
        };
        let mut reader = match reader {
            Some(r) => r,
            None => self.block_on(f.client.open(&f.path))?,
        };
        reader.seek(offset);
        let mut buf = vec![0u8; size as usize];
        let n = self.block_on(reader.read_full(&mut buf))?;
        buf.truncate(n);
        f.readers.lock().expect("readers poisoned").push(reader);
        Ok(buf)
    }

    fn fill_listing(&self, client: &DfsClient, l: &mut Listing, upto: usize) -> Result<()> {
        while !l.done && l.entries.len() < upto {
            let after = l.entries.last().map(|e| e.name.clone()).unwrap_or_default();
            let page = self.block_on(client.list_page(&l.path, &after, 0))?;
            l.done = page.remaining == 0 || page.entries.is_empty();
            l.entries.extend(page.entries);
        }
        Ok(())
    }

    fn check_access(&self, req: &Request, st: &FileStatus, mask: AccessFlags) -> bool {
        if mask.is_empty() {
            return true;
        }
        let want = (mask.bits() & 7) as u32;
        let p = st.permission;
        if req.uid() == 0 {
            // root may do anything, except execute what nobody may execute.
            return want & 1 == 0 || st.is_dir() || p & 0o111 != 0;
        }
        let user = UserInfo::from_ids(req.uid(), req.gid());
        let bits = if user.name == st.owner {
            (p >> 6) & 7
        } else if user.groups.contains(&st.group) {
            (p >> 3) & 7
        } else {
            p & 7
        };
        bits & want == want
    }
}

impl OpenFile {
    fn new(
        ino: u64,
        path: String,
        client: DfsClient,
        length: u64,
        writer: Option<FileWriter>,
    ) -> OpenFile {
        OpenFile {
            ino,
            path,
            client,
            writer: Mutex::new(writer),
            length: Arc::new(AtomicU64::new(length)),
            readers: Mutex::new(Vec::new()),
        }
    }
}

struct SetAttr {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    atime: Option<TimeOrNow>,
    mtime: Option<TimeOrNow>,
}

impl fuser::Filesystem for DfsFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // 1 MiB requests and read-ahead (the kernel caps requests at fs.fuse.max_pages_limit).
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(1 << 20);
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let path = match self.child_path(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        match self.entry(&self.client(req), &path) {
            Ok(attr) => reply.entry(&self.opts.entry_timeout, &attr, Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.inodes.forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let path = match self.path(ino) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        match self.getattr_path(&self.client(req), ino.0, &path) {
            Ok(attr) => reply.attr(&self.opts.attr_timeout, &attr),
            Err(e) => reply.error(errno(&e)),
        }
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
        let changes = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        };
        match self.do_setattr(req, ino, changes) {
            Ok(attr) => reply.attr(&self.opts.attr_timeout, &attr),
            Err(e) => reply.error(errno(&e)),
        }
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
        let path = match self.child_path(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let client = self.client(req);
        let result = self
            .block_on(client.mkdirs_with_permission(&path, mode & !umask & 0o7777, false))
            .and_then(|_| self.entry(&client, &path));
        match result {
            Ok(attr) => reply.entry(&self.opts.entry_timeout, &attr, Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(req, parent, name, false, reply)
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(req, parent, name, true, reply)
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
        let (from, to) = match (
            self.child_path(parent, name),
            self.child_path(newparent, newname),
        ) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(e), _) | (_, Err(e)) => return reply.error(e),
        };
        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            return reply.error(Errno::EINVAL);
        }
        // POSIX rename replaces an existing destination; RENAME_NOREPLACE asks it not to.
        let overwrite = !flags.contains(RenameFlags::RENAME_NOREPLACE);
        match self.block_on(self.client(req).rename(&from, &to, overwrite)) {
            Ok(()) => {
                self.inodes.renamed(&from, &to);
                reply.ok()
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let path = match self.path(ino) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let client = self.client(req);
        let writable = flags.acc_mode() != fuser::OpenAccMode::O_RDONLY;
        let result = (|| {
            let mut st = self.block_on(client.stat(&path))?;
            if st.is_dir() {
                return Err(Error::IsADirectory(path.clone()));
            }
            if writable && flags.0 & libc::O_TRUNC != 0 && st.length > 0 {
                self.block_on(client.truncate(&path, 0))?;
                st.length = 0;
            }
            Ok(OpenFile::new(
                ino.0,
                path.clone(),
                client.clone(),
                st.length,
                None,
            ))
        })();
        match result {
            Ok(f) => {
                let fh = self.new_fh(Open::File(Arc::new(f)));
                reply.opened(FileHandle(fh), FopenFlags::empty())
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let path = match self.child_path(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let client = self.client(req);
        let opts = CreateOptions {
            permission: Some(mode & !umask & 0o7777),
            ..Default::default()
        };
        let result = self.block_on(client.create(&path, opts)).and_then(|w| {
            let attr = self.entry(&client, &path)?;
            Ok((attr, w))
        });
        match result {
            Ok((attr, w)) => {
                let f = Arc::new(OpenFile::new(attr.ino.0, path, client, 0, Some(w)));
                self.writing
                    .lock()
                    .expect("writing poisoned")
                    .insert(attr.ino.0, f.length.clone());
                let fh = self.new_fh(Open::File(f));
                reply.created(
                    &self.opts.entry_timeout,
                    &attr,
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::empty(),
                )
            }
            Err(e) => reply.error(errno(&e)),
        }
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
        let f = match self.file(fh) {
            Ok(f) => f,
            Err(e) => return reply.error(e),
        };
        match self.do_read(&f, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(&e)),
        }
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
        let f = match self.file(fh) {
            Ok(f) => f,
            Err(e) => return reply.error(e),
        };
        match self.do_write(&f, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        match self.handle(fh) {
            Ok(Open::File(f)) => match self.close_writer(&f) {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            },
            Ok(Open::Dir(_)) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let f = match self.file(fh) {
            Ok(f) => f,
            Err(e) => return reply.error(e),
        };
        let mut w = f.writer.lock().expect("writer poisoned");
        let result = match w.as_mut() {
            Some(w) => self.block_on(w.hsync()),
            None => Ok(()),
        };
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
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
        let open = self.handles.lock().expect("handles poisoned").remove(&fh.0);
        match open {
            Some(Open::File(f)) => match self.close_writer(&f) {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            },
            _ => reply.ok(),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let path = match self.path(ino) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let listing = Listing {
            path,
            entries: Vec::new(),
            done: false,
        };
        let fh = self.new_fh(Open::Dir(Arc::new(Mutex::new(listing))));
        reply.opened(FileHandle(fh), FopenFlags::empty())
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Ok(Open::Dir(listing)) = self.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        let client = self.client(req);
        let mut l = listing.lock().expect("listing poisoned");
        let mut i = offset as usize;
        loop {
            // Offsets 0 and 1 are "." and ".."; entry k is at offset k + 2.
            let name_kind_ino = match i {
                0 => (".".to_string(), FileType::Directory, ino.0),
                1 => ("..".to_string(), FileType::Directory, ino.0),
                _ => {
                    if let Err(e) = self.fill_listing(&client, &mut l, i - 1) {
                        return reply.error(errno(&e));
                    }
                    let Some(e) = l.entries.get(i - 2) else { break };
                    let kind = if e.is_dir() {
                        FileType::Directory
                    } else {
                        FileType::RegularFile
                    };
                    (e.name.clone(), kind, e.inode_id)
                }
            };
            if reply.add(
                INodeNo(name_kind_ino.2),
                (i + 1) as u64,
                name_kind_ino.1,
                &name_kind_ino.0,
            ) {
                break;
            }
            i += 1;
        }
        reply.ok()
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let Ok(Open::Dir(listing)) = self.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        let client = self.client(req);
        let dir_attr = match self.getattr_path(
            &client,
            ino.0,
            &listing.lock().expect("listing poisoned").path,
        ) {
            Ok(a) => a,
            Err(e) => return reply.error(errno(&e)),
        };
        let mut l = listing.lock().expect("listing poisoned");
        let mut i = offset as usize;
        loop {
            if i < 2 {
                let name = if i == 0 { "." } else { ".." };
                if reply.add(
                    INodeNo(ino.0),
                    (i + 1) as u64,
                    name,
                    &self.opts.attr_timeout,
                    &dir_attr,
                    Generation(0),
                ) {
                    break;
                }
                i += 1;
                continue;
            }
            if let Err(e) = self.fill_listing(&client, &mut l, i - 1) {
                return reply.error(errno(&e));
            }
            let Some(e) = l.entries.get(i - 2) else { break };
            let attr = self.attr(e);
            let full = child(&l.path, &e.name);
            if reply.add(
                attr.ino,
                (i + 1) as u64,
                &e.name,
                &self.opts.entry_timeout,
                &attr,
                Generation(0),
            ) {
                break;
            }
            // The kernel now holds a reference, as after a lookup.
            self.inodes.remember(attr.ino.0, &full);
            i += 1;
        }
        reply.ok()
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.handles.lock().expect("handles poisoned").remove(&fh.0);
        reply.ok()
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.block_on(self.client.stats()) {
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
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let path = match self.path(ino) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        match self.block_on(self.client(req).stat(&path)) {
            Ok(st) if self.check_access(req, &st, mask) => reply.ok(),
            Ok(_) => reply.error(Errno::EACCES),
            Err(e) => reply.error(errno(&e)),
        }
    }
}
