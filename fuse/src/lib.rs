//! The dfs FUSE driver: a cluster mounted as a POSIX file system, on the pure-Rust `fuser` crate
//! (as root it mounts with `mount(2)` on `/dev/fuse`: no libfuse, no `fusermount3`).
//!
//! Module map:
//! - `fs`: [`fs::DfsFs`] and its state: identities, attributes, namespace operations (inode
//!   numbers are NameNode inode ids, addressed by inode path).
//! - `filesystem`: the `fuser::Filesystem` implementation (thin adapters).
//! - `files`: open files: handles, reads, writes, flushes, truncation.
//! - `dir`: listings, page by page.
//! - `xattr`: extended attributes, and ACLs through theirs; `acl`: the kernel's ACL format.
//! - `ids`: owner and group names ↔ local ids, cached (the C library is slow on unknown names).
//! - `window`: the bytes a handle's read stream produced most recently (out-of-order read-ahead).
//! - `errno`: client error → errno, in one place.
//!
//! [`mount`] mounts and returns a [`Mount`]; dropping it (or [`Mount::unmount`]) unmounts.

mod acl;
mod dir;
mod errno;
mod files;
mod filesystem;
pub mod fs;
mod ids;
mod window;
mod xattr;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use dfs_client::DfsClient;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot mount at {path}: {source}")]
    Mount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot unmount {path}: {source}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Locks `m` even if a task panicked while holding it: every update under these locks is
/// complete before anything can panic, and one failed request must not take the mount down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a mount behaves; the `dfs.fuse.*` keys fill it.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// How long the kernel may cache attributes (`dfs.fuse.attr-timeout`).
    pub attr_timeout: Duration,
    /// How long the kernel may cache names (`dfs.fuse.entry-timeout`).
    pub entry_timeout: Duration,
    /// Threads reading kernel requests; each request then runs as a task on the runtime.
    pub threads: usize,
    /// Read-ahead set on the mount's backing device after mounting (the kernel's default for a
    /// FUSE mount, 128 KiB, halves sequential reads).
    pub read_ahead_kb: u32,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            attr_timeout: Duration::from_secs(1),
            entry_timeout: Duration::from_secs(1),
            threads: 4,
            read_ahead_kb: 1024,
        }
    }
}

/// How long unmounting waits for requests still running (files being completed).
const DRAIN: Duration = Duration::from_secs(30);

/// A mounted file system; unmounts when dropped.
pub struct Mount {
    session: Option<fuser::BackgroundSession>,
    path: PathBuf,
    in_flight: std::sync::Arc<fs::InFlight>,
}

/// Mounts `client`'s cluster at `mountpoint`. The file system's calls run the async client on
/// `rt`, which must outlive the mount.
pub fn mount(
    client: DfsClient,
    rt: tokio::runtime::Handle,
    mountpoint: &Path,
    opts: MountOptions,
) -> Result<Mount> {
    let err = |source| Error::Mount {
        path: mountpoint.to_path_buf(),
        source,
    };
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName(format!("dfs://{}", client.config().namenode)),
        // The type `fuse.dfs`, for `df -t` and `findmnt -t` (fuser passes its Subtype option
        // only to fusermount, so it goes to the kernel as a plain option).
        fuser::MountOption::CUSTOM("subtype=dfs".into()),
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
        // The kernel checks permissions, with the caller's real groups and capabilities.
        fuser::MountOption::DefaultPermissions,
    ];
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        // Root mounts for everyone; the kernel checks each caller's permissions.
        config.acl = fuser::SessionACL::All;
    }
    config.n_threads = Some(opts.threads.max(1));
    config.clone_fd = true;
    let read_ahead = opts.read_ahead_kb;
    let fs = fs::DfsFs::new(rt, client, opts);
    let in_flight = fs.in_flight();
    let session = fuser::Session::new(fs, mountpoint, &config)
        .and_then(|s| s.spawn())
        .map_err(err)?;
    raise_read_ahead(mountpoint, read_ahead);
    Ok(Mount {
        session: Some(session),
        path: mountpoint.to_path_buf(),
        in_flight,
    })
}

/// Sets `/sys/class/bdi/MAJOR:MINOR/read_ahead_kb` of the mount; best effort (it needs root).
fn raise_read_ahead(mountpoint: &Path, kb: u32) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(mountpoint) else {
        return;
    };
    let dev = meta.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let knob = format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb");
    if let Err(e) = std::fs::write(&knob, kb.to_string()) {
        tracing::info!("could not raise read-ahead ({knob}): {e}");
    }
}

impl Mount {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// False once the file system was unmounted from outside (`umount`, `fusermount3 -u`).
    pub fn is_mounted(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| !s.guard.is_finished())
    }

    /// Unmounts and waits for the session to end.
    pub fn unmount(mut self) -> Result<()> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        if session.guard.is_finished() {
            return Ok(());
        }
        let unmounted = match session.umount_and_join() {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => self.detach(),
            r => r.map_err(|source| Error::Unmount {
                path: self.path.clone(),
                source,
            }),
        };
        if !self.in_flight.wait_idle(DRAIN) {
            tracing::warn!(
                "requests to {} still running after {DRAIN:?}; leaving them",
                self.path.display()
            );
        }
        unmounted
    }

    /// A process still uses the mount (an open file, a shell inside it): detach it now, as
    /// `umount -l` does, rather than leave a dead mount behind when this process exits. Its
    /// users are served until then, and see ENOTCONN after.
    fn detach(&self) -> Result<()> {
        let err = |source| Error::Unmount {
            path: self.path.clone(),
            source,
        };
        let path = std::ffi::CString::new(self.path.as_os_str().as_encoded_bytes())
            .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
        if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        tracing::warn!(
            "{} was busy: detached it; processes still using it get errors",
            self.path.display()
        );
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_inner() {
            tracing::warn!("{e}");
        }
    }
}
