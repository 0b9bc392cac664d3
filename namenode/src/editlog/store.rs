//! Where segment bytes go: the disk ([`DiskStore`]), or in tests [`PowerCut`], which keeps what
//! was synced and loses some of the rest, as a power cut does.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Creates segment files. Reading goes through the real file system: a store only decides what
/// of the writes is on disk.
pub trait SegmentStore: Send + Sync + Debug {
    /// Creates (or truncates) `path`, writes `header`, and makes both the header and the file's
    /// directory entry durable.
    fn create(&self, path: &Path, header: &[u8]) -> io::Result<Box<dyn SegmentFile>>;
}

/// One segment being written.
pub trait SegmentFile: Send {
    /// Hands `buf` to the operating system: after this it survives a crash of the process.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes everything written durable: after this it survives a power loss.
    fn sync_data(&mut self) -> io::Result<()>;
}

/// Segments on the local file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskStore;

impl SegmentStore for DiskStore {
    fn create(&self, path: &Path, header: &[u8]) -> io::Result<Box<dyn SegmentFile>> {
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        Write::write_all(&mut f, header)?;
        File::sync_data(&f)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(Box::new(f))
    }
}

impl SegmentFile for File {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Write::write_all(self, buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }
}

#[cfg(test)]
pub use power_cut::PowerCut;

#[cfg(test)]
mod power_cut {
    use std::collections::HashMap;
    use std::fs::OpenOptions;
    use std::io;
    use std::os::unix::fs::FileExt;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    use super::{DiskStore, SegmentFile, SegmentStore};
    use crate::util::Rng;

    /// Bytes a disk writes at once: a power cut keeps or loses each sector as a whole.
    const SECTOR: u64 = 512;

    /// Writes through to real files and remembers, per file, how much was synced. A
    /// [`PowerCut::cut`] then does what a power loss may: the file keeps everything synced, and of
    /// the rest a random length survives, in which each sector independently reached the disk or
    /// reads as zeros (the page cache writes back in any order). After the cut, writes and syncs
    /// change nothing: the machine is off.
    #[derive(Debug, Clone, Default)]
    pub struct PowerCut {
        state: Arc<Mutex<State>>,
    }

    #[derive(Debug, Default)]
    struct State {
        files: HashMap<PathBuf, Extent>,
        off: bool,
    }

    #[derive(Debug, Clone, Copy, Default)]
    struct Extent {
        len: u64,
        synced: u64,
    }

    impl PowerCut {
        /// Cuts the power: applies a power loss to every file written, from `seed`.
        pub fn cut(&self, seed: u64) -> io::Result<()> {
            let mut rng = Rng::new(seed);
            let mut state = self.state.lock().unwrap();
            state.off = true;
            for (path, e) in state.files.iter_mut() {
                let kept = e.synced + rng.next_u64() % (e.len - e.synced + 1);
                let f = match OpenOptions::new().write(true).open(path) {
                    Ok(f) => f,
                    // Purged after a checkpoint: nothing of it is needed any more.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                let mut at = e.synced - e.synced % SECTOR;
                while at < kept {
                    if rng.next_u64().is_multiple_of(3) {
                        let n = SECTOR.min(kept - at);
                        let from = at.max(e.synced);
                        f.write_all_at(&vec![0; (at + n - from) as usize], from)?;
                    }
                    at += SECTOR;
                }
                f.set_len(kept)?;
                *e = Extent {
                    len: kept,
                    synced: kept,
                };
            }
            Ok(())
        }
    }

    impl SegmentStore for PowerCut {
        fn create(&self, path: &Path, header: &[u8]) -> io::Result<Box<dyn SegmentFile>> {
            let mut state = self.state.lock().unwrap();
            if state.off {
                return Err(io::Error::other("the power is off"));
            }
            let file = DiskStore.create(path, header)?;
            let len = header.len() as u64;
            state
                .files
                .insert(path.to_path_buf(), Extent { len, synced: len });
            Ok(Box::new(CutFile {
                file,
                path: path.to_path_buf(),
                state: self.state.clone(),
            }))
        }
    }

    struct CutFile {
        file: Box<dyn SegmentFile>,
        path: PathBuf,
        state: Arc<Mutex<State>>,
    }

    impl SegmentFile for CutFile {
        fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
            let mut state = self.state.lock().unwrap();
            if state.off {
                return Ok(());
            }
            self.file.write_all(buf)?;
            if let Some(e) = state.files.get_mut(&self.path) {
                e.len += buf.len() as u64;
            }
            Ok(())
        }

        fn sync_data(&mut self) -> io::Result<()> {
            // The real fsync is skipped: the test only needs to know what it would have covered.
            let mut state = self.state.lock().unwrap();
            if state.off {
                return Ok(());
            }
            if let Some(e) = state.files.get_mut(&self.path) {
                e.synced = e.len;
            }
            Ok(())
        }
    }
}
