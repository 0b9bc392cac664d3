//! The `fuser::Filesystem` implementation: thin adapters. Each method takes what it needs from
//! the request and runs the work as a task on the mount's tokio runtime, which replies; only a
//! write the file's writer buffers at once is answered on the session thread. The kernel's
//! session threads never wait on the network, so a slow DataNode delays the requests waiting
//! for it and nothing else.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::dir::Listing;
use crate::files::{Open, SetAttr};
use crate::fs::{Caller, DfsFs, Fs, NewEntry, OrErrno, Reply, CHUNK};
use crate::lock;
use crate::xattr::Value;

fn done(reply: ReplyEmpty, result: Reply<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn entry(fs: &Fs, reply: ReplyEntry, result: Reply<FileAttr>) {
    match result {
        Ok(attr) => reply.entry(&fs.opts.entry_timeout, &attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn xattr(reply: ReplyXattr, result: Reply<Value>) {
    match result {
        Ok(Value::Size(n)) => reply.size(n),
        Ok(Value::Data(d)) => reply.data(&d),
        Err(e) => reply.error(e),
    }
}

impl fuser::Filesystem for DfsFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // 1 MiB requests and read-ahead (the kernel caps requests at fs.fuse.max_pages_limit).
        let _ = config.set_max_write(CHUNK as u32);
        let _ = config.set_max_readahead(CHUNK as u32);
        // `ls -l` gets names and attributes in one listing RPC per page, not a stat per
        // entry; O_TRUNC comes with open (one request, not open + setattr); lookups and
        // listings in one directory may run concurrently; the kernel enforces POSIX ACLs (read
        // through getxattr) with the mode bits, and leaves the umask to the NameNode (a parent's
        // default ACL replaces it). Each only where the kernel has it.
        for cap in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_ATOMIC_O_TRUNC,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_POSIX_ACL,
            InitFlags::FUSE_DONT_MASK,
        ] {
            if config.add_capabilities(cap).is_err() {
                tracing::info!("the kernel lacks {cap:?}");
            }
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = name.to_owned();
        self.run(|fs| async move {
            let found = fs.lookup(parent.0, &name).await;
            entry(&fs, reply, found)
        })
    }

    fn forget(&self, _req: &Request, _ino: INodeNo, _nlookup: u64) {
        // Nothing is kept per inode: every call names its inode by inode path.
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.run(|fs| async move {
            match fs.getattr(ino.0).await {
                Ok(attr) => reply.attr(&fs.opts.attr_timeout, &attr),
                Err(e) => reply.error(e),
            }
        })
    }

    fn setattr(
        &self,
        _req: &Request,
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
        self.run(|fs| async move {
            match fs.setattr(ino.0, changes).await {
                Ok(attr) => reply.attr(&fs.opts.attr_timeout, &attr),
                Err(e) => reply.error(e),
            }
        })
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.run(|fs| async move {
            match fs.readlink(ino.0).await {
                Ok(target) => reply.data(&target),
                Err(e) => reply.error(e),
            }
        })
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let (c, name) = (Caller::of(req), name.to_owned());
        self.run(|fs| async move {
            let made = fs
                .mknod(c, parent.0, &name, NewEntry { mode, umask }, rdev)
                .await;
            entry(&fs, reply, made)
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
            let made = fs.mkdir(c, parent.0, &name, NewEntry { mode, umask }).await;
            entry(&fs, reply, made)
        })
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.run(|fs| async move { done(reply, fs.remove(parent.0, &name, false).await) })
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.run(|fs| async move { done(reply, fs.remove(parent.0, &name, true).await) })
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let c = Caller::of(req);
        let (name, target) = (link_name.to_owned(), target.as_os_str().as_bytes().to_vec());
        self.run(|fs| async move {
            let made = fs.symlink(c, parent.0, &name, &target).await;
            entry(&fs, reply, made)
        })
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let (name, newname): (OsString, OsString) = (name.to_owned(), newname.to_owned());
        self.run(|fs| async move {
            let renamed = fs
                .rename((parent.0, &name), (newparent.0, &newname), flags)
                .await;
            done(reply, renamed)
        })
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let newname = newname.to_owned();
        self.run(|fs| async move {
            let linked = fs.link(ino.0, newparent.0, &newname).await;
            entry(&fs, reply, linked)
        })
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.run(|fs| async move {
            match fs.open(ino.0, flags).await {
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
                .create(c, parent.0, &name, NewEntry { mode, umask }, flags)
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
        if self.fs.write_now(fh, offset, data) {
            return reply.written(data.len() as u32);
        }
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
        self.run(|fs| async move { done(reply, fs.flush(fh).await) })
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

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        self.run(|fs| async move {
            let allocated = match fs.file_handle(fh) {
                Ok(h) => fs.fallocate(&h, offset, length, mode).await,
                Err(e) => Err(e),
            };
            done(reply, allocated)
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
        let listing = Listing::new(ino.0);
        let fh = self
            .fs
            .new_fh(Open::Dir(Arc::new(tokio::sync::Mutex::new(listing))));
        reply.opened(FileHandle(fh), FopenFlags::empty())
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        self.run(|fs| async move { fs.readdir(ino.0, fh, offset, reply).await })
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        self.run(|fs| async move { fs.readdirplus(ino.0, fh, offset, reply).await })
    }

    /// Directory changes are NameNode changes: fsyncdir makes every one made so far durable.
    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.run(|fs| async move { done(reply, fs.client.sync_metadata().await.or_errno()) })
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
            match fs.client.stats().await {
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
                Err(e) => reply.error(crate::errno::errno(&e)),
            }
        })
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let (name, value) = (name.to_owned(), value.to_vec());
        self.run(|fs| async move { done(reply, fs.setxattr(ino.0, &name, &value, flags).await) })
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        // `ls -l` asks every entry for two attributes it almost never has: that answer is given
        // here, without a trip through the runtime.
        if name.to_str().is_some_and(|n| self.fs.hints.lacks(ino.0, n)) {
            return reply.error(Errno::ENODATA);
        }
        let name = name.to_owned();
        self.run(|fs| async move { xattr(reply, fs.getxattr(ino.0, &name, size).await) })
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.run(|fs| async move { xattr(reply, fs.listxattr(ino.0, size).await) })
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.run(|fs| async move { done(reply, fs.removexattr(ino.0, &name).await) })
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // The kernel checks access itself (default_permissions): this is never called; were it,
        // the kernel's own check has already passed.
        reply.ok()
    }
}
