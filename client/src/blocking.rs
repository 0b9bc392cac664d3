//! A synchronous client for code that is not async: each call runs on a runtime this client
//! owns (two worker threads, so lease renewal and pipeline acks progress between calls).
//! [`FileWriter`] is a `std::io::Write + Seek`, [`FileReader`] a `std::io::Read + Seek`.

use std::io::{self, SeekFrom};
use std::sync::Arc;

use tokio::runtime::Runtime;

use crate::client::CreateOptions;
use crate::config::ClientConfig;
use crate::error::Result;
use crate::types::*;

/// The blocking twin of [`crate::DfsClient`].
///
/// ```no_run
/// use std::io::{Read, Write};
/// let client = dfs_client::blocking::DfsClient::connect(Default::default())?;
/// let mut w = client.create("/x", Default::default())?;
/// w.write_all(b"data")?;
/// w.close()?;
/// let mut s = String::new();
/// client.open("/x")?.read_to_string(&mut s)?;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct DfsClient {
    rt: Arc<Runtime>,
    inner: crate::DfsClient,
}

impl DfsClient {
    pub fn connect(config: ClientConfig) -> Result<DfsClient> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dfs-client")
            .enable_all()
            .build()?;
        let inner = rt.block_on(crate::DfsClient::connect(config))?;
        Ok(DfsClient {
            rt: Arc::new(rt),
            inner,
        })
    }

    /// The async client this one drives.
    pub fn as_async(&self) -> &crate::DfsClient {
        &self.inner
    }

    /// Runs any async client call to completion.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub fn create(&self, path: &str, opts: CreateOptions) -> Result<FileWriter> {
        let w = self.rt.block_on(self.inner.create(path, opts))?;
        Ok(FileWriter::new(self.rt.clone(), w))
    }

    pub fn append(&self, path: &str) -> Result<FileWriter> {
        let w = self.rt.block_on(self.inner.append(path))?;
        Ok(FileWriter::new(self.rt.clone(), w))
    }

    pub fn open(&self, path: &str) -> Result<FileReader> {
        let r = self.rt.block_on(self.inner.open(path))?;
        Ok(FileReader {
            rt: self.rt.clone(),
            inner: r,
        })
    }

    pub fn mkdirs(&self, path: &str, create_parent: bool) -> Result<()> {
        self.rt.block_on(self.inner.mkdirs(path, create_parent))
    }
    pub fn stat(&self, path: &str) -> Result<FileStatus> {
        self.rt.block_on(self.inner.stat(path))
    }
    pub fn try_stat(&self, path: &str) -> Result<Option<FileStatus>> {
        self.rt.block_on(self.inner.try_stat(path))
    }
    pub fn list(&self, path: &str) -> Result<Vec<FileStatus>> {
        self.rt.block_on(self.inner.list(path))
    }
    pub fn rename(&self, src: &str, dst: &str, overwrite: bool) -> Result<()> {
        self.rt.block_on(self.inner.rename(src, dst, overwrite))
    }
    pub fn delete(&self, path: &str, recursive: bool) -> Result<bool> {
        self.rt.block_on(self.inner.delete(path, recursive))
    }
    pub fn truncate(&self, path: &str, length: u64) -> Result<()> {
        self.rt.block_on(self.inner.truncate(path, length))
    }
    pub fn block_locations(
        &self,
        path: &str,
        offset: u64,
        length: u64,
    ) -> Result<Vec<BlockLocation>> {
        self.rt
            .block_on(self.inner.block_locations(path, offset, length))
    }
    pub fn fsck(&self, path: &str) -> Result<FsckReport> {
        self.rt.block_on(self.inner.fsck(path))
    }
    pub fn file_checksum(&self, path: &str) -> Result<FileChecksum> {
        self.rt.block_on(self.inner.file_checksum(path))
    }
}

/// A `std::io::Write + Seek` over [`crate::FileWriter`]: writes land at the position, which
/// starts at the end of the file and may be moved anywhere, past the end too (the gap reads as
/// zeros). `flush` is `hflush`; call [`close`](Self::close) to complete the file (dropping an
/// unclosed writer closes it too, but cannot report errors).
pub struct FileWriter {
    rt: Arc<Runtime>,
    inner: crate::FileWriter,
    pos: u64,
}

impl FileWriter {
    fn new(rt: Arc<Runtime>, inner: crate::FileWriter) -> FileWriter {
        let pos = inner.len();
        FileWriter { rt, inner, pos }
    }
    /// The file's length, with every byte written so far.
    pub fn len(&self) -> u64 {
        self.inner.len()
    }
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
    /// Writes all of `data` at `offset`, leaving the position alone (as `pwrite`).
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.rt.block_on(self.inner.write_at(offset, data))
    }
    pub fn hflush(&mut self) -> Result<()> {
        self.rt.block_on(self.inner.hflush())
    }
    pub fn hsync(&mut self) -> Result<()> {
        self.rt.block_on(self.inner.hsync())
    }
    pub fn close(mut self) -> Result<()> {
        self.rt.block_on(self.inner.close())
    }
}

impl io::Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.rt.block_on(self.inner.write_at(self.pos, buf))?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(self.hflush()?)
    }
}

impl io::Seek for FileWriter {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = seek_target(pos, self.inner.len(), self.pos)?;
        Ok(self.pos)
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if let Err(e) = self.rt.block_on(self.inner.close()) {
            tracing::warn!(path = %self.inner.path(), "closing a dropped writer failed: {e}");
        }
    }
}

/// A `std::io::Read + Seek` over [`crate::FileReader`].
pub struct FileReader {
    rt: Arc<Runtime>,
    inner: crate::FileReader,
}

impl FileReader {
    pub fn len(&self) -> u64 {
        self.inner.len()
    }
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

impl io::Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.rt.block_on(self.inner.read(buf))?)
    }
}

impl io::Seek for FileReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = seek_target(pos, self.inner.len(), self.inner.position())?;
        self.inner.seek(target);
        Ok(target)
    }
}

/// Where a seek from `pos` lands in a file of `len` bytes read or written at `at`.
fn seek_target(pos: SeekFrom, len: u64, at: u64) -> io::Result<u64> {
    match pos {
        SeekFrom::Start(p) => Some(p),
        SeekFrom::End(d) => len.checked_add_signed(d),
        SeekFrom::Current(d) => at.checked_add_signed(d),
    }
    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))
}
