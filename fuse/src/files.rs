//! Open files: handles, reads, writes, flushes and truncation.
//!
//! Writes: the first write through a handle opens a client writer (appending, or the writer
//! from `create`), so data streams through the pipeline as it comes and is never buffered
//! whole. One writer per file serves every handle of this mount, so two processes writing one
//! file share one lease and see each other's writes. A write lands where the kernel says (an
//! `O_APPEND` handle's at the end): over old bytes, or past the end, leaving a hole that stores
//! nothing; the client writer turns to log blocks for it (ARCHITECTURE.md, "Writing
//! anywhere"). The kernel's writeback of a shared writable `mmap` arrives as such writes.
//! `flush` (every `close(2)`) completes the file when no other handle may write it, and
//! hflushes it otherwise: close-to-open consistency either way. `fsync` is `hsync`. Truncation
//! completes the writer first (the NameNode cuts or grows only closed files), then cuts the
//! file's extents or adds a hole: no byte is rewritten.
//!
//! Reads: one stream per handle reads forward; the kernel's concurrent read-ahead requests
//! arrive out of order, so the stream's recent bytes are kept in a [`Window`] from which the
//! late ones are served.
//!
//! Every handle keeps its file open at the NameNode (a [`KeepOpen`]): unlinked or replaced, the
//! file stays readable and writable through the handle, by its inode path, until the last one
//! closes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use dfs_client::{CreateOptions, FileReader, FileWriter, KeepOpen};
use fuser::{Errno, FileAttr, FileHandle, OpenFlags, TimeOrNow};

use crate::fs::{child, ipath, Caller, Fs, NewEntry, OrErrno, Reply, CHUNK};
use crate::lock;
use crate::window::{Window, KEEP};

/// How far ahead of its stream a read may land and still be served by reading forward (the
/// bytes in between are kept for the requests that arrive late), rather than by moving the
/// stream: more than the kernel's read-ahead ever has in flight.
const MAX_SKIP: u64 = KEEP;

#[derive(Clone)]
pub(crate) enum Open {
    File(Arc<FileHandleState>),
    /// A tokio mutex: held across the listing RPC.
    Dir(Arc<tokio::sync::Mutex<crate::dir::Listing>>),
}

/// A file this mount has open, shared by all of its handles.
pub(crate) struct OpenFile {
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

    /// This mount's writer wrote: the file is `len` bytes long now, and `over` says whether the
    /// write went over old bytes (which a read stream may hold).
    fn wrote(&self, len: u64, over: bool) {
        self.length.store(len, Ordering::Release);
        if over {
            self.changed();
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

    /// The length the kernel is told when the NameNode says `len`.
    pub(crate) fn shown_length(&self, len: u64) -> u64 {
        self.saw_length(len);
        if self.writing.load(Ordering::Acquire) {
            len.max(self.length.load(Ordering::Acquire))
        } else {
            len
        }
    }
}

struct Writing {
    writer: Option<FileWriter>,
    /// (mtime, atime) set while writing: completing the file sets the mtime, so they are set
    /// again after it (`cp -p`, `touch` on an open file).
    times: Option<(Option<u64>, Option<u64>)>,
}

pub(crate) struct FileHandleState {
    file: Arc<OpenFile>,
    append: bool,
    writable: bool,
    /// A tokio mutex: held across the stream's reads.
    stream: tokio::sync::Mutex<Option<Stream>>,
    /// The file stays open at the NameNode while the handle is.
    _keep: KeepOpen,
}

/// A handle's read stream: `reader` is positioned at `window.end()`.
struct Stream {
    reader: FileReader,
    window: Window,
    /// The file's `version` when the stream opened.
    version: u64,
}

impl Fs {
    fn handle(&self, fh: FileHandle) -> Reply<Open> {
        lock(&self.handles).get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    pub(crate) fn file_handle(&self, fh: FileHandle) -> Reply<Arc<FileHandleState>> {
        match self.handle(fh)? {
            Open::File(f) => Ok(f),
            Open::Dir(_) => Err(Errno::EISDIR),
        }
    }

    pub(crate) fn listing(
        &self,
        fh: FileHandle,
    ) -> Reply<Arc<tokio::sync::Mutex<crate::dir::Listing>>> {
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
    async fn stop_writing_and_complete(&self, f: &OpenFile) -> Reply<()> {
        if !self.stop_writing(f) {
            return Ok(());
        }
        let mut w = f.write.lock().await;
        self.complete(f, &mut w).await
    }

    /// Changes the attributes `setattr` asks for, as the mount's user: the kernel checked the
    /// caller may (and computed the mode a chown or write by a non-owner leaves).
    pub(crate) async fn setattr(&self, ino: u64, changes: SetAttr) -> Reply<FileAttr> {
        let path = ipath(ino);
        if let Some(mode) = changes.mode {
            self.client
                .set_permission(&path, mode & 0o7777)
                .await
                .or_errno()?;
        }
        if changes.uid.is_some() || changes.gid.is_some() {
            let owner = changes.uid.map(|u| self.ids.user_name(u));
            let group = changes.gid.map(|g| self.ids.group_name(g));
            self.client
                .set_owner(&path, owner.as_deref(), group.as_deref())
                .await
                .or_errno()?;
        }
        if let Some(size) = changes.size {
            // truncate(2) by path comes without a handle: the call counts as one.
            let st = self.status(ino).await?;
            let (file, _) = self.open_file(ino, st.length, true, None);
            let truncated = self.truncate(&file, size, false).await;
            let completed = self.stop_writing_and_complete(&file).await;
            self.close_handle(&file);
            truncated.and(completed)?;
        }
        let mut times = None;
        if changes.atime.is_some() || changes.mtime.is_some() {
            let (mtime, atime) = self.set_times(ino, changes.mtime, changes.atime).await?;
            // Completing a file being written here sets its mtime: set them again after.
            let file = lock(&self.files).get(&ino).cloned();
            if let Some(f) = file {
                let mut w = f.write.lock().await;
                if w.writer.is_some() {
                    let now = std::time::SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    let (m, a) = (
                        changes.mtime.map(|_| mtime.unwrap_or(now)),
                        changes.atime.map(|_| atime.unwrap_or(now)),
                    );
                    let prev = w.times.take().unwrap_or_default();
                    w.times = Some((m.or(prev.0), a.or(prev.1)));
                    times = w.times;
                }
            }
        }
        let mut attr = self.getattr(ino).await?;
        if let Some((mtime, atime)) = times {
            // Deferred times are what the file will have: show them now.
            let t = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
            attr.mtime = mtime.map_or(attr.mtime, t);
            attr.atime = atime.map_or(attr.atime, t);
        }
        Ok(attr)
    }

    /// Sets the file's length (to at least `size` when `only_grow`): a writer of this mount is
    /// completed first (the NameNode cuts or grows closed files only), then the NameNode cuts its
    /// extents or adds a hole.
    async fn truncate(&self, f: &OpenFile, size: u64, only_grow: bool) -> Reply<()> {
        let mut w = f.write.lock().await;
        let len = if w.writer.is_some() {
            f.length.load(Ordering::Acquire)
        } else {
            self.status(f.ino).await?.length
        };
        let size = if only_grow { size.max(len) } else { size };
        if size == len {
            return Ok(());
        }
        self.complete(f, &mut w).await?;
        self.client.truncate(&ipath(f.ino), size).await.or_errno()?;
        f.length.store(size, Ordering::Release);
        f.changed();
        Ok(())
    }

    /// Preallocation: nothing is reserved (blocks are allocated as bytes arrive), but a range
    /// past the end grows the file by a hole, as the call promises.
    pub(crate) async fn fallocate(
        &self,
        h: &FileHandleState,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Reply<()> {
        if mode & !libc::FALLOC_FL_KEEP_SIZE != 0 {
            // Punching or collapsing would rewrite extents mid-file.
            return Err(Errno::EOPNOTSUPP);
        }
        let end = offset.checked_add(length).ok_or(Errno::EFBIG)?;
        if mode & libc::FALLOC_FL_KEEP_SIZE != 0 {
            return Ok(());
        }
        self.truncate(&h.file, end, true).await
    }

    pub(crate) async fn open(&self, ino: u64, flags: OpenFlags) -> Reply<u64> {
        let reader = self.client.open(&ipath(ino)).await.or_errno()?;
        let length = reader.len();
        let writable = !matches!(flags.acc_mode(), fuser::OpenAccMode::O_RDONLY);
        let (file, _) = self.open_file(ino, length, writable, None);
        let keep = reader.keep_open();
        // Taken before a truncation, which bumps it: the reader, opened before, is then dropped.
        let version = file.version.load(Ordering::Acquire);
        if writable && flags.0 & libc::O_TRUNC != 0 {
            if let Err(e) = self.truncate(&file, 0, false).await {
                self.stop_writing(&file);
                self.close_handle(&file);
                return Err(e);
            }
        }
        // While this mount writes the file, the reader may miss writes not flushed yet: the
        // first read opens one after flushing them.
        let stream = (!file.writing.load(Ordering::Acquire)).then_some(Stream {
            reader,
            window: Window::at(0),
            version,
        });
        Ok(self.new_fh(Open::File(Arc::new(FileHandleState {
            file,
            append: flags.0 & libc::O_APPEND != 0,
            writable,
            stream: tokio::sync::Mutex::new(stream),
            _keep: keep,
        }))))
    }

    pub(crate) async fn create(
        &self,
        c: Caller,
        parent: u64,
        name: &std::ffi::OsStr,
        e: NewEntry,
        flags: i32,
    ) -> Reply<(FileAttr, u64)> {
        let path = child(parent, name)?;
        let o = self.entry_options(c, &e);
        let opts = CreateOptions {
            permission: o.permission,
            unmasked: o.unmasked,
            group: o.group,
            ..Default::default()
        };
        let writer = self.creator(c).create(&path, opts).await.or_errno()?;
        // The NameNode's answer to create describes the new file: no stat needed.
        let attr = self.attr(writer.status());
        let keep = writer.keep_open();
        let (file, not_taken) = self.open_file(attr.ino.0, 0, true, Some(writer));
        if let Some(writer) = not_taken {
            // The new inode was open here already (it cannot be: ids are never reused).
            file.write.lock().await.writer = Some(writer);
            file.writing.store(true, Ordering::Release);
        }
        let fh = self.new_fh(Open::File(Arc::new(FileHandleState {
            file,
            append: flags & libc::O_APPEND != 0,
            writable: true,
            stream: tokio::sync::Mutex::new(None),
            _keep: keep,
        })));
        Ok((attr, fh))
    }

    pub(crate) async fn write(&self, h: &FileHandleState, offset: u64, data: &[u8]) -> Reply<()> {
        let f = &h.file;
        let mut w = f.write.lock().await;
        let (writer, len) = self.writer(f, &mut w).await?;
        // O_APPEND writes go to the end whatever the kernel's idea of the size.
        let offset = if h.append { len } else { offset };
        writer.write_at(offset, data).await.or_errno()?;
        f.wrote(writer.len(), offset < len);
        Ok(())
    }

    /// [`write`](Self::write) done at once on the calling thread, when no other request holds
    /// the file's writer and the writer can buffer the bytes without I/O
    /// ([`FileWriter::try_buffer`]); returns whether it was. `try_lock` never takes the writer
    /// from a task waiting for it, and a task not yet started runs a request concurrent with
    /// this one: the kernel sends one write(2), truncate or fsync of an inode at a time, and the
    /// pages of an mmap's writeback in flight together never overlap.
    pub(crate) fn write_now(&self, fh: FileHandle, offset: u64, data: &[u8]) -> bool {
        let Ok(h) = self.file_handle(fh) else {
            return false;
        };
        let f = &h.file;
        let Ok(mut w) = f.write.try_lock() else {
            return false;
        };
        let Some(writer) = w.writer.as_mut() else {
            return false;
        };
        let len = writer.len();
        let offset = if h.append { len } else { offset };
        if !writer.try_buffer(offset, data) {
            return false;
        }
        f.wrote(writer.len(), offset < len);
        true
    }

    /// The file's writer in this mount, opened (appending) if there is none, and the file's
    /// length.
    async fn writer<'w>(
        &self,
        f: &OpenFile,
        w: &'w mut Writing,
    ) -> Reply<(&'w mut FileWriter, u64)> {
        let writer = match w.writer.take() {
            Some(writer) => writer,
            None => {
                let writer = self.client.append(&ipath(f.ino)).await.or_errno()?;
                f.length.store(writer.len(), Ordering::Release);
                f.writing.store(true, Ordering::Release);
                writer
            }
        };
        let len = writer.len();
        Ok((w.writer.insert(writer), len))
    }

    /// Makes what this handle wrote visible to others: completes the file when no other handle
    /// may write it, else hflushes.
    pub(crate) async fn flush(&self, fh: FileHandle) -> Reply<()> {
        let h = match self.handle(fh)? {
            Open::File(h) if h.writable => h,
            _ => return Ok(()),
        };
        let last = lock(&h.file.counts).1 <= 1;
        let mut w = h.file.write.lock().await;
        match &mut w.writer {
            None => Ok(()),
            Some(writer) if !last => writer.hflush().await.or_errno(),
            Some(_) => self.complete(&h.file, &mut w).await,
        }
    }

    /// Closes the file's writer (which completes the file at the NameNode), then sets again
    /// the times set while it was being written.
    async fn complete(&self, f: &OpenFile, w: &mut Writing) -> Reply<()> {
        let Some(mut writer) = w.writer.take() else {
            return Ok(());
        };
        let closed = writer.close().await;
        // Only now: until the NameNode has the length, the kernel must be told this mount's.
        f.writing.store(false, Ordering::Release);
        f.changed();
        let path = ipath(f.ino);
        if let Err(e) = &closed {
            // Left alone, the file would stay leased to this mount's client, which renews all
            // its leases: have it closed at what its DataNodes hold, so it can be written again.
            tracing::warn!(
                "completing inode {} failed: {e}; recovering its lease",
                f.ino
            );
            if let Err(e) = self.client.recover_lease(&path).await {
                tracing::warn!("recovering the lease of inode {} failed: {e}", f.ino);
            }
        }
        if let Some((mtime, atime)) = w.times.take() {
            self.client
                .set_times(&path, mtime, atime)
                .await
                .or_errno()?;
        }
        closed.or_errno()
    }

    /// hsync of the file's writer, which also makes the namespace durable; with no writer, the
    /// namespace (the file's creation, its attributes) alone.
    pub(crate) async fn fsync(&self, h: &FileHandleState) -> Reply<()> {
        match &mut h.file.write.lock().await.writer {
            Some(w) => w.hsync().await.or_errno(),
            None => self.client.sync_metadata().await.or_errno(),
        }
    }

    pub(crate) async fn release(&self, h: &FileHandleState) -> Reply<()> {
        let completed = if h.writable {
            self.stop_writing_and_complete(&h.file).await
        } else {
            Ok(())
        };
        self.close_handle(&h.file);
        completed
    }

    pub(crate) async fn read(&self, h: &FileHandleState, offset: u64, size: u32) -> Reply<Bytes> {
        let mut slot = h.stream.lock().await;
        let version = h.file.version.load(Ordering::Acquire);
        // A stream that failed is dropped (the `?`s below): the next read opens a new one.
        let mut s = match slot.take() {
            Some(mut s)
                if s.version == version
                    && offset >= s.window.start()
                    && offset <= s.window.end() + MAX_SKIP =>
            {
                if s.window.start() == s.window.end() && s.window.end() != offset {
                    // The stream from `open`, not read yet: start it where the kernel asks.
                    s.reader.seek(offset);
                    s.window = Window::at(offset);
                }
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
        let mut reader = self.client.open(&ipath(h.file.ino)).await.or_errno()?;
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
}

/// The changes of one `setattr`.
pub(crate) struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeOrNow>,
    pub mtime: Option<TimeOrNow>,
}
