//! One volume directory: its layout, its `VERSION` file, free space and a health probe.
//!
//! ```text
//! <volume>/VERSION                                   "layout_version=1\ndatanode_uuid=<32 hex>\n"
//! <volume>/current/finalized/subdir<XX>/blk_<id>     finalized block data
//! <volume>/current/finalized/subdir<XX>/blk_<id>_<gs>.meta
//! <volume>/current/rbw/blk_<id>                      replicas being written
//! <volume>/current/rbw/blk_<id>_<gs>.meta
//! ```
//! `<id>` and `<gs>` are decimal; `XX` is `(id >> 8) & 0xff` as two lowercase hex digits, so
//! sequentially allocated ids fill one directory with 256 blocks before moving to the next and the
//! 256 directories share the load evenly.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::types::BlockId;
use crate::{Error, Result};

const VERSION_FILE: &str = "VERSION";
const LAYOUT_VERSION: u32 = 1;
/// Probe files are `.probe.<n>`, `n` unique in the process: the heartbeat's check and an I/O
/// error's check may probe one volume at once, and a shared name would let one remove the other's
/// file, which then fails a healthy volume with NotFound.
const PROBE_PREFIX: &str = ".probe.";
static NEXT_PROBE: AtomicU64 = AtomicU64::new(0);

/// Paths of one volume. Immutable; whether it failed is tracked by the store.
#[derive(Debug, Clone)]
pub(crate) struct Volume {
    pub root: PathBuf,
}

/// Space on a volume's file system, as reported to the NameNode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Space {
    /// Bytes of the file system minus the reserved bytes.
    pub capacity: u64,
    /// Bytes available to dfs: free to unprivileged users minus the reserved bytes.
    pub remaining: u64,
}

impl Volume {
    pub fn new(root: PathBuf) -> Self {
        Volume { root }
    }

    pub fn current(&self) -> PathBuf {
        self.root.join("current")
    }

    pub fn finalized(&self) -> PathBuf {
        self.current().join("finalized")
    }

    pub fn rbw(&self) -> PathBuf {
        self.current().join("rbw")
    }

    /// The finalized subdirectory a block lives in.
    pub fn finalized_subdir(&self, id: BlockId) -> PathBuf {
        self.finalized()
            .join(format!("subdir{:02x}", (id.0 >> 8) & 0xff))
    }

    /// Creates the directory tree (idempotent) and fsyncs what it created.
    pub fn create_dirs(&self) -> Result<()> {
        for dir in [
            self.root.clone(),
            self.current(),
            self.finalized(),
            self.rbw(),
        ] {
            if !dir.is_dir() {
                fs::create_dir_all(&dir).map_err(Error::io(format!("create {}", dir.display())))?;
                if let Some(parent) = dir.parent() {
                    fsync_dir(parent)?;
                }
            }
        }
        Ok(())
    }

    /// The DataNode uuid recorded in this volume, if it has a VERSION file.
    pub fn read_uuid(&self) -> Result<Option<String>> {
        let path = self.root.join(VERSION_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("read {}", path.display()))(e)),
        };
        parse_version(&text)
            .map(Some)
            .map_err(|reason| Error::Volume {
                path: self.root.clone(),
                reason,
            })
    }

    /// Writes the VERSION file atomically (temp file, fsync, rename, fsync dir).
    pub fn write_uuid(&self, uuid: &str) -> Result<()> {
        let tmp = self.root.join("VERSION.tmp");
        let path = self.root.join(VERSION_FILE);
        let body = format!("layout_version={LAYOUT_VERSION}\ndatanode_uuid={uuid}\n");
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(body.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(Error::io(format!("write {}", path.display())))?;
        fsync_dir(&self.root)
    }

    /// Space on the volume's file system, less `reserved`.
    pub fn space(&self, reserved: u64) -> Result<Space> {
        let st =
            statvfs(&self.root).map_err(Error::io(format!("statvfs {}", self.root.display())))?;
        Ok(Space {
            capacity: st.0.saturating_sub(reserved),
            remaining: st.1.saturating_sub(reserved),
        })
    }

    /// Checks that the volume still works: its directories exist and a file can be created,
    /// written, fsynced and removed in `current/`. A full file system passes: it still reads,
    /// deletes and takes writes once space is freed, so running out of room is not a failure
    /// (the write that met it fails with a no-space status instead).
    pub fn probe(&self) -> io::Result<()> {
        for dir in [self.finalized(), self.rbw()] {
            if !fs::metadata(&dir)?.is_dir() {
                return Err(io::Error::other(format!(
                    "{} is not a directory",
                    dir.display()
                )));
            }
        }
        let n = NEXT_PROBE.fetch_add(1, Ordering::Relaxed);
        let path = self.current().join(format!("{PROBE_PREFIX}{n}"));
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)?;
            f.write_all(b"probe")?;
            f.sync_all()
        };
        match write() {
            Ok(()) => fs::remove_file(&path),
            Err(e) if is_no_space(&e) => match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            Err(e) => Err(e),
        }
    }
}

/// Whether an I/O error means the file system (or the user's quota) is full, which says nothing
/// about the health of the volume.
pub(crate) fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// Parses a VERSION file; returns the uuid.
fn parse_version(text: &str) -> std::result::Result<String, String> {
    let mut uuid = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("VERSION line {line:?} is not key=value"));
        };
        match key {
            "layout_version" if value.parse::<u32>().ok() != Some(LAYOUT_VERSION) => {
                return Err(format!("unsupported layout_version {value:?}"));
            }
            "datanode_uuid" => {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("datanode_uuid {value:?} is not hex"));
                }
                uuid = Some(value.to_ascii_lowercase());
            }
            _ => {} // unknown keys are kept for forward compatibility
        }
    }
    uuid.ok_or_else(|| "VERSION has no datanode_uuid".to_string())
}

/// A fresh 128-bit uuid from the kernel's random source, as 32 lowercase hex digits.
pub(crate) fn generate_uuid() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(Error::io("read /dev/urandom"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// fsync a directory so that renames and creations in it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(format!("fsync directory {}", dir.display())))
}

/// (total bytes, bytes available to unprivileged users) of the file system holding `path`.
fn statvfs(path: &Path) -> io::Result<(u64, u64)> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable memory of the right
    // type; statvfs fully initializes it when it returns 0.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: rc == 0, so the struct was initialized.
    let st = unsafe { st.assume_init() };
    // The field types vary by platform (u32 or u64); widening is lossless everywhere.
    #[allow(clippy::useless_conversion)]
    let (blocks, bavail, frsize) = (
        u64::from(st.f_blocks),
        u64::from(st.f_bavail),
        u64::from(st.f_frsize),
    );
    Ok((blocks.saturating_mul(frsize), bavail.saturating_mul(frsize)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_file_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let v = Volume::new(dir.path().join("v"));
        v.create_dirs().unwrap();
        assert_eq!(v.read_uuid().unwrap(), None);
        let uuid = generate_uuid().unwrap();
        assert_eq!(uuid.len(), 32);
        v.write_uuid(&uuid).unwrap();
        assert_eq!(v.read_uuid().unwrap(), Some(uuid));
        assert!(parse_version("datanode_uuid=zz\n").is_err());
        assert!(parse_version("layout_version=9\ndatanode_uuid=ab\n").is_err());
        assert!(parse_version("garbage").is_err());
        assert!(parse_version("").is_err());
        v.probe().unwrap();
        let s = v.space(0).unwrap();
        assert!(s.capacity > 0 && s.remaining <= s.capacity);
        assert_eq!(v.space(u64::MAX).unwrap().remaining, 0);
        assert_eq!(
            v.finalized_subdir(BlockId(0x1234)),
            v.finalized().join("subdir12")
        );
    }

    #[test]
    fn concurrent_probes_of_a_healthy_volume_all_pass() {
        let dir = tempfile::tempdir().unwrap();
        let v = Volume::new(dir.path().join("v"));
        v.create_dirs().unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        v.probe().unwrap();
                    }
                });
            }
        });
        assert_eq!(
            fs::read_dir(v.current()).unwrap().count(),
            2,
            "probe files left"
        );
    }
}
