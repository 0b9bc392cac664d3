//! [`DfsFs`] and its shared state [`Fs`]: identities, attributes, and the namespace operations
//! (lookup, attributes, directories, links, special files, renames, removals).
//!
//! Addressing: a FUSE inode number is the NameNode's inode id, and every call names what it
//! works on by inode path (`/.reserved/.inodes/INO`, or `/.reserved/.inodes/PARENT/NAME` for
//! an entry), so no table of paths is kept: a rename by another client, a hard link with two
//! names, an unlinked file still open are all addressed alike.
//!
//! Permissions: the kernel checks them (`default_permissions`, with the POSIX ACLs this mount
//! serves from the NameNode): it knows the caller's supplementary groups and capabilities. So
//! the mount calls the NameNode as its own user (root, a dfs superuser, when root mounts),
//! except to create an entry, which it does as the caller (with the caller's groups, read from
//! `/proc`), so the NameNode gives the new inode the caller's owner and group and checks the
//! parent as POSIX does.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dfs_client::user::UserInfo;
use dfs_client::{DfsClient, EntryOptions, FileKind, FileStatus};
use fuser::{Errno, FileAttr, FileType, INodeNo, Request, TimeOrNow};
use tokio::runtime::Handle;

use crate::errno::errno;
use crate::files::OpenFile;
use crate::ids::Ids;
use crate::xattr::Hints;
use crate::{lock, MountOptions};

/// What every operation returns: the errno is chosen where the client error is met.
pub(crate) type Reply<T> = std::result::Result<T, Errno>;

/// Bytes read from a stream at a time (the largest FUSE request).
pub(crate) const CHUNK: u64 = 1 << 20;
/// uid/gid shown for owners and groups unknown to the local databases.
const NOBODY: u32 = 65534;

pub struct DfsFs {
    pub(crate) fs: Arc<Fs>,
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

pub(crate) struct Fs {
    pub(crate) rt: Handle,
    /// The mount's own identity: every call but the creation of entries.
    pub(crate) client: DfsClient,
    pub(crate) opts: MountOptions,
    pub(crate) handles: Mutex<HashMap<u64, crate::files::Open>>,
    next_fh: AtomicU64,
    /// Clients acting as each creator (uid and groups seen).
    creators: Mutex<HashMap<(u32, Vec<u32>), DfsClient>>,
    /// Files with open handles, by inode.
    pub(crate) files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    in_flight: Arc<InFlight>,
    pub(crate) ids: Ids,
    pub(crate) hints: Hints,
}

/// The calling process.
#[derive(Clone, Copy)]
pub(crate) struct Caller {
    uid: u32,
    gid: u32,
    pid: u32,
}

impl Caller {
    pub(crate) fn of(req: &Request) -> Caller {
        Caller {
            uid: req.uid(),
            gid: req.gid(),
            pid: req.pid(),
        }
    }
}

pub(crate) trait OrErrno<T> {
    fn or_errno(self) -> Reply<T>;
}

impl<T> OrErrno<T> for dfs_client::Result<T> {
    fn or_errno(self) -> Reply<T> {
        self.map_err(|e| errno(&e))
    }
}

/// The inode path of `ino`.
pub(crate) fn ipath(ino: u64) -> String {
    format!("{}{ino}", dfs_client::path::INODES_PREFIX)
}

/// The inode path of entry `name` of directory `parent`.
pub(crate) fn child(parent: u64, name: &OsStr) -> Reply<String> {
    let name = name.to_str().ok_or(Errno::EINVAL)?;
    if name.len() > dfs_client::path::MAX_COMPONENT_LEN {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(format!("{}/{name}", ipath(parent)))
}

/// The supplementary groups of process `pid` (the kernel does not send them): `/proc`'s
/// `Groups:` line, empty if the process is gone.
fn supplementary_groups(pid: u32) -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// What the mount creates is made as this set of attributes: the caller's mode and umask, and
/// group.
pub(crate) struct NewEntry {
    pub mode: u32,
    pub umask: u32,
}

impl DfsFs {
    pub fn new(rt: Handle, client: DfsClient, opts: MountOptions) -> DfsFs {
        DfsFs {
            fs: Arc::new(Fs {
                rt,
                client,
                handles: Mutex::new(HashMap::new()),
                next_fh: AtomicU64::new(1),
                creators: Mutex::new(HashMap::new()),
                files: Mutex::new(HashMap::new()),
                in_flight: Arc::default(),
                ids: Ids::default(),
                hints: Hints::new(opts.attr_timeout),
                opts,
            }),
        }
    }

    /// The requests still running, for unmounting to wait on.
    pub fn in_flight(&self) -> Arc<InFlight> {
        self.fs.in_flight.clone()
    }

    /// Runs `work` on the runtime; the session thread goes back to the kernel at once.
    pub(crate) fn run<F>(&self, work: impl FnOnce(Arc<Fs>) -> F)
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
    /// The client creating entries as the caller: its user, its group first, then its
    /// supplementary groups.
    pub(crate) fn creator(&self, c: Caller) -> DfsClient {
        let mut gids = vec![c.gid];
        for g in supplementary_groups(c.pid) {
            if !gids.contains(&g) {
                gids.push(g);
            }
        }
        let key = (c.uid, gids);
        if let Some(client) = lock(&self.creators).get(&key) {
            return client.clone();
        }
        let user = UserInfo {
            name: self.ids.user_name(c.uid),
            groups: key.1.iter().map(|g| self.ids.group_name(*g)).collect(),
        };
        let client = {
            let _guard = self.rt.enter();
            self.client.with_user(user)
        };
        lock(&self.creators).insert(key, client.clone());
        client
    }

    /// How the caller's new entry is made: its mode with and without the umask (a parent's
    /// default ACL replaces the umask), and the group the caller runs as.
    pub(crate) fn entry_options(&self, c: Caller, e: &NewEntry) -> EntryOptions {
        EntryOptions {
            permission: Some(e.mode & !e.umask & 0o7777),
            unmasked: Some(e.mode & 0o7777),
            group: Some(self.ids.group_name(c.gid)),
            create_parent: false,
        }
    }

    /// The attributes the kernel is given for `st` (the status also refreshes the xattr hint).
    pub(crate) fn attr(&self, st: &FileStatus) -> FileAttr {
        self.hints.note(st);
        let ino = st.inode_id.max(1);
        let mut size = st.length;
        if let Some(f) = lock(&self.files).get(&ino) {
            size = f.shown_length(st.length);
        }
        let t = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: t(st.atime_ms),
            mtime: t(st.mtime_ms),
            ctime: t(st.ctime_ms),
            crtime: t(st.ctime_ms),
            kind: file_type(st.kind),
            perm: st.permission as u16,
            nlink: st.nlink,
            uid: self.ids.uid(&st.owner).unwrap_or(NOBODY),
            gid: self.ids.gid(&st.group).unwrap_or(NOBODY),
            rdev: st.rdev as u32,
            blksize: CHUNK as u32,
            flags: 0,
        }
    }

    /// The status of inode `ino`.
    pub(crate) async fn status(&self, ino: u64) -> Reply<FileStatus> {
        self.client.symlink_status(&ipath(ino)).await.or_errno()
    }

    pub(crate) async fn getattr(&self, ino: u64) -> Reply<FileAttr> {
        Ok(self.attr(&self.status(ino).await?))
    }

    pub(crate) async fn lookup(&self, parent: u64, name: &OsStr) -> Reply<FileAttr> {
        let path = child(parent, name)?;
        match self.client.try_symlink_status(&path).await.or_errno()? {
            Some(st) => Ok(self.attr(&st)),
            None => Err(Errno::ENOENT),
        }
    }

    pub(crate) fn new_fh(&self, open: crate::files::Open) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.handles).insert(fh, open);
        fh
    }

    pub(crate) async fn mkdir(
        &self,
        c: Caller,
        parent: u64,
        name: &OsStr,
        e: NewEntry,
    ) -> Reply<FileAttr> {
        let path = child(parent, name)?;
        let opts = self.entry_options(c, &e);
        let st = self.creator(c).mkdir(&path, opts).await.or_errno()?;
        Ok(self.attr(&st))
    }

    pub(crate) async fn mknod(
        &self,
        c: Caller,
        parent: u64,
        name: &OsStr,
        e: NewEntry,
        rdev: u32,
    ) -> Reply<FileAttr> {
        let path = child(parent, name)?;
        let kind = match e.mode & libc::S_IFMT {
            libc::S_IFREG | 0 => FileKind::File,
            libc::S_IFIFO => FileKind::Fifo,
            libc::S_IFSOCK => FileKind::Socket,
            libc::S_IFCHR => FileKind::CharDevice,
            libc::S_IFBLK => FileKind::BlockDevice,
            _ => return Err(Errno::EINVAL),
        };
        let opts = self.entry_options(c, &e);
        let st = self
            .creator(c)
            .mknod(&path, kind, u64::from(rdev), opts)
            .await
            .or_errno()?;
        Ok(self.attr(&st))
    }

    pub(crate) async fn symlink(
        &self,
        c: Caller,
        parent: u64,
        name: &OsStr,
        target: &[u8],
    ) -> Reply<FileAttr> {
        let path = child(parent, name)?;
        let opts = EntryOptions {
            group: Some(self.ids.group_name(c.gid)),
            ..Default::default()
        };
        let st = self
            .creator(c)
            .create_symlink(target, &path, opts)
            .await
            .or_errno()?;
        Ok(self.attr(&st))
    }

    pub(crate) async fn readlink(&self, ino: u64) -> Reply<Vec<u8>> {
        let st = self.status(ino).await?;
        if !st.is_symlink() {
            return Err(Errno::EINVAL);
        }
        Ok(st.symlink)
    }

    pub(crate) async fn link(&self, ino: u64, newparent: u64, newname: &OsStr) -> Reply<FileAttr> {
        let dst = child(newparent, newname)?;
        let st = self.client.link(&ipath(ino), &dst).await.or_errno()?;
        Ok(self.attr(&st))
    }

    /// unlink (`dir` false) and rmdir (`dir` true). A file still open stays (the NameNode keeps
    /// it for this mount's holds) until its last handle closes.
    pub(crate) async fn remove(&self, parent: u64, name: &OsStr, dir: bool) -> Reply<()> {
        let path = child(parent, name)?;
        if dir {
            self.client.rmdir(&path).await.or_errno()
        } else {
            self.client.unlink(&path).await.or_errno()
        }
    }

    pub(crate) async fn rename(
        &self,
        (parent, name): (u64, &OsStr),
        (newparent, newname): (u64, &OsStr),
        flags: fuser::RenameFlags,
    ) -> Reply<()> {
        use fuser::RenameFlags;
        let from = child(parent, name)?;
        let to = child(newparent, newname)?;
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            return Err(Errno::EINVAL);
        }
        // POSIX rename replaces an existing destination; RENAME_NOREPLACE asks it not to.
        let overwrite = !flags.contains(RenameFlags::RENAME_NOREPLACE);
        self.client.rename(&from, &to, overwrite).await.or_errno()
    }

    /// Times to set: POSIX `UTIME_NOW` for every time given is "now" (write permission is
    /// enough), anything else explicit (owner only); the kernel checked which applies.
    pub(crate) async fn set_times(
        &self,
        ino: u64,
        mtime: Option<TimeOrNow>,
        atime: Option<TimeOrNow>,
    ) -> Reply<(Option<u64>, Option<u64>)> {
        let path = ipath(ino);
        let now = |t: &Option<TimeOrNow>| t.as_ref().is_none_or(|t| matches!(t, TimeOrNow::Now));
        if now(&mtime) && now(&atime) {
            self.client
                .set_times_to_now(&path, mtime.is_some(), atime.is_some())
                .await
                .or_errno()?;
            return Ok((None, None));
        }
        let ms = |t: TimeOrNow| {
            let t = match t {
                TimeOrNow::Now => SystemTime::now(),
                TimeOrNow::SpecificTime(t) => t,
            };
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        };
        let (m, a) = (mtime.map(ms), atime.map(ms));
        self.client.set_times(&path, m, a).await.or_errno()?;
        Ok((m, a))
    }
}

fn file_type(k: FileKind) -> FileType {
    match k {
        FileKind::File => FileType::RegularFile,
        FileKind::Directory => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
        FileKind::CharDevice => FileType::CharDevice,
        FileKind::BlockDevice => FileType::BlockDevice,
    }
}

pub(crate) fn listing_type(st: &FileStatus) -> FileType {
    file_type(st.kind)
}
