//! dfs as an [`object_store::ObjectStore`], so that DataFusion, delta-rs, Polars and everything
//! else built on `object_store` reads and writes dfs.
//!
//! Module map:
//! - this file: [`DfsObjectStore`] and the `ObjectStore` methods.
//! - `upload`: multipart uploads, streamed in order into one dfs writer.
//! - `errors`: the one mapping of dfs client errors to `object_store` errors.
//!
//! How objects map onto the namespace: an object `a/b/c` is the file `ROOT/a/b/c` (its encoded
//! path, as `object_store::path::Path` spells it), directories are created as puts need them and
//! removed when a delete or rename leaves them empty, so a listing shows only what objects imply.
//! Every put writes a hidden staging file beside its target (`.dfs-upload-CLIENT-N`, never listed)
//! and renames it into place on the NameNode, so readers see the old object or the new one,
//! never a part: `PutMode::Create` is a rename that refuses to replace, `rename` is the
//! NameNode's atomic rename. Listings are paged (one NameNode page at a time) and streamed.
//! An object's ETag is its inode, modification time and length; conditional gets use it.

mod errors;
mod upload;

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use dfs_client::{BlockLocation, CreateOptions, DfsClient, FileStatus};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    Attributes, CopyMode, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload,
    PutResult, RenameOptions, RenameTargetMode, Result,
};

use errors::{dfs_error, not_found};

/// Bytes read per chunk of a get's stream.
const READ_CHUNK: usize = 1 << 20;
/// What a staging file's name starts with.
const STAGING: &str = ".dfs-upload-";

/// An [`ObjectStore`] over a dfs directory. Cheap to clone: clones share one client.
#[derive(Clone)]
pub struct DfsObjectStore {
    client: DfsClient,
    /// The directory holding the objects, without a trailing slash (`""` for `/`).
    root: Arc<str>,
}

impl fmt::Debug for DfsObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DfsObjectStore")
            .field("root", &self.root)
            .finish()
    }
}

impl fmt::Display for DfsObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let root = if self.root.is_empty() {
            "/"
        } else {
            &self.root
        };
        write!(f, "DfsObjectStore({root})")
    }
}

/// Whether a directory entry is a staging file of a put in progress.
fn is_staging(name: &str) -> bool {
    name.starts_with(STAGING)
}

/// Staging files made by this process: with the client's name (random per client), what makes
/// every staging name unique.
static STAGED: AtomicU64 = AtomicU64::new(0);

fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((p, _)) => p,
    }
}

fn millis(ms: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX)).unwrap_or_default()
}

impl DfsObjectStore {
    /// Objects under the dfs directory `root` (created by the first put; `/` for the whole
    /// namespace).
    pub fn new(client: DfsClient, root: &str) -> DfsObjectStore {
        DfsObjectStore {
            client,
            root: root.trim_end_matches('/').into(),
        }
    }

    /// Where the object at `location` lives in the namespace.
    fn dfs_path(&self, location: &Path) -> String {
        match location.as_ref() {
            "" if self.root.is_empty() => "/".to_string(),
            "" => self.root.to_string(),
            p => format!("{}/{p}", self.root),
        }
    }

    /// The object a namespace path `dfs` (below the root) is.
    fn location(&self, dfs: &str) -> Result<Path> {
        let rel = dfs.strip_prefix(&*self.root).unwrap_or(dfs);
        Ok(Path::parse(rel)?)
    }

    fn meta(&self, location: Path, st: &FileStatus) -> ObjectMeta {
        ObjectMeta {
            location,
            last_modified: millis(st.mtime_ms),
            size: st.length,
            e_tag: Some(format!(
                "{:x}-{:x}-{:x}",
                st.inode_id, st.mtime_ms, st.length
            )),
            version: None,
        }
    }

    /// The object's status: `NotFound` for a directory, as for nothing at all.
    async fn file_status(&self, location: &Path) -> Result<FileStatus> {
        let path = self.dfs_path(location);
        match self.client.try_stat(&path).await {
            Ok(Some(st)) if st.is_file() => Ok(st),
            Ok(_) => Err(not_found(&path)),
            Err(e) => Err(dfs_error(e, &path)),
        }
    }

    /// Where the bytes of `location` are: each block's range and the DataNodes holding it, for
    /// schedulers that place work beside its data.
    pub async fn block_locations(&self, location: &Path) -> Result<Vec<BlockLocation>> {
        let path = self.dfs_path(location);
        self.client
            .block_locations(&path, 0, 0)
            .await
            .map_err(|e| dfs_error(e, &path))
    }

    /// Creates a staging file beside `target` (and their directory), ready to be written. It
    /// never replaces a file: each writer has a staging file of its own.
    async fn create_staging(&self, target: &str) -> Result<(String, dfs_client::FileWriter)> {
        let dir = parent(target);
        let base = dir.trim_end_matches('/');
        for _ in 0..4 {
            let n = STAGED.fetch_add(1, Ordering::Relaxed);
            let staging = format!("{base}/{STAGING}{}-{n}", self.client.client_name());
            self.client
                .mkdirs(dir, true)
                .await
                .map_err(|e| dfs_error(e, dir))?;
            match self.client.create(&staging, CreateOptions::default()).await {
                Ok(w) => return Ok((staging, w)),
                // A name taken, or the directory pruned by a delete meanwhile: again.
                Err(dfs_client::Error::AlreadyExists(_) | dfs_client::Error::NotFound(_)) => {}
                Err(e) => return Err(dfs_error(e, target)),
            }
        }
        Err(object_store::Error::Generic {
            store: "dfs",
            source: format!("no staging file could be made beside {target}").into(),
        })
    }

    /// Removes a failed put's staging file and the directories it leaves empty.
    async fn discard(&self, staging: &str) {
        let _ = self.client.delete(staging, false).await;
        self.prune(staging).await;
    }

    /// Opens the object at `location`, with the metadata of what was opened: what a reader gets
    /// is that object, even when a put replaces it meanwhile.
    async fn open(&self, location: &Path) -> Result<(dfs_client::FileReader, ObjectMeta)> {
        let path = self.dfs_path(location);
        let reader = self
            .client
            .open(&path)
            .await
            .map_err(|e| dfs_error(e, &path))?;
        let st = match reader.status() {
            Some(st) => st.clone(),
            None => self
                .client
                .stat(&path)
                .await
                .map_err(|e| dfs_error(e, &path))?,
        };
        if !st.is_file() {
            return Err(not_found(&path));
        }
        let meta = self.meta(location.clone(), &st);
        Ok((reader, meta))
    }

    /// Moves a finished staging file to `target`; without `overwrite` an existing target is
    /// `AlreadyExists` (and the staging file is removed).
    async fn publish(&self, staging: &str, target: &str, overwrite: bool) -> Result<PutResult> {
        if let Err(e) = self.client.rename(staging, target, overwrite).await {
            self.discard(staging).await;
            return Err(dfs_error(e, target));
        }
        let st = self
            .client
            .stat(target)
            .await
            .map_err(|e| dfs_error(e, target))?;
        Ok(PutResult {
            e_tag: self.meta(Path::default(), &st).e_tag,
            version: None,
        })
    }

    /// Removes the directories above `path` that are left empty, up to the root.
    async fn prune(&self, path: &str) {
        let mut dir = parent(path).to_string();
        while dir.len() > self.root.len() && dir != "/" {
            // A directory that is not empty is refused: that ends it.
            if !matches!(self.client.delete(&dir, false).await, Ok(true)) {
                return;
            }
            dir = parent(&dir).to_string();
        }
    }

    async fn delete_one(&self, location: &Path) -> Result<()> {
        let path = self.dfs_path(location);
        match self.client.try_stat(&path).await {
            Ok(Some(st)) if st.is_file() => {}
            // Nothing there (or a directory, which is not an object): done, as on S3.
            Ok(_) => return Ok(()),
            Err(e) => return Err(dfs_error(e, &path)),
        }
        self.client
            .delete(&path, false)
            .await
            .map_err(|e| dfs_error(e, &path))?;
        self.prune(&path).await;
        Ok(())
    }

    /// One page of the directory `dir` after `after`: its objects, subdirectories and where the
    /// next page starts (`None` at the end). A directory gone meanwhile (its last object deleted)
    /// is an empty page; a name no object path can have is left out.
    async fn page(&self, dir: &str, after: &str) -> Result<Page> {
        let page = match self.client.list_page(dir, after, 0).await {
            Ok(p) => p,
            Err(dfs_client::Error::NotFound(_)) => dfs_client::ListingPage::default(),
            Err(e) => return Err(dfs_error(e, dir)),
        };
        let next = (page.remaining > 0)
            .then(|| page.entries.last().map(|e| e.name.clone()))
            .flatten();
        let mut out = Page {
            objects: Vec::new(),
            dirs: Vec::new(),
            next,
        };
        let base = dir.trim_end_matches('/');
        for e in page.entries {
            let child = format!("{base}/{}", e.name);
            if e.is_dir() {
                out.dirs.push(child);
            } else if e.is_file() && !is_staging(&e.name) {
                if let Ok(location) = self.location(&child) {
                    out.objects.push(self.meta(location, &e));
                }
            }
        }
        Ok(out)
    }

    /// The directory a listing of `prefix` walks, if there is one.
    async fn listed_dir(&self, prefix: Option<&Path>) -> Result<Option<String>> {
        let dir = self.dfs_path(prefix.unwrap_or(&Path::default()));
        match self.client.try_stat(&dir).await {
            Ok(Some(st)) if st.is_dir() => Ok(Some(dir)),
            Ok(_) => Ok(None),
            Err(e) => Err(dfs_error(e, &dir)),
        }
    }
}

struct Page {
    objects: Vec<ObjectMeta>,
    dirs: Vec<String>,
    next: Option<String>,
}

#[async_trait]
impl ObjectStore for DfsObjectStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let overwrite = match opts.mode {
            PutMode::Overwrite => true,
            PutMode::Create => false,
            PutMode::Update(_) => {
                return Err(object_store::Error::NotImplemented {
                    operation: "put with PutMode::Update".into(),
                    implementer: self.to_string(),
                })
            }
        };
        let target = self.dfs_path(location);
        let (staging, mut w) = self.create_staging(&target).await?;
        let written = async {
            for chunk in &payload {
                w.write(chunk).await?;
            }
            w.close().await
        };
        if let Err(e) = written.await {
            self.discard(&staging).await;
            return Err(dfs_error(e, &target));
        }
        self.publish(&staging, &target, overwrite).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let target = self.dfs_path(location);
        let (staging, writer) = self.create_staging(&target).await?;
        Ok(Box::new(upload::Upload::start(
            self.clone(),
            staging,
            target,
            writer,
        )))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let path = self.dfs_path(location);
        let (mut reader, meta) = self.open(location).await?;
        options.check_preconditions(&meta)?;
        let range: Range<u64> = match &options.range {
            Some(r) => r
                .as_range(meta.size)
                .map_err(|e| object_store::Error::Generic {
                    store: "dfs",
                    source: Box::new(e),
                })?,
            None => 0..meta.size,
        };
        let payload = if options.head || range.is_empty() {
            stream::empty().boxed()
        } else {
            reader.seek(range.start);
            let end = range.end;
            stream::try_unfold((reader, range.start), move |(mut r, pos)| {
                let path = path.clone();
                async move {
                    if pos >= end {
                        return Ok(None);
                    }
                    let mut buf = vec![0u8; (end - pos).min(READ_CHUNK as u64) as usize];
                    let n = r.read(&mut buf).await.map_err(|e| dfs_error(e, &path))?;
                    if n == 0 {
                        return Err(object_store::Error::Generic {
                            store: "dfs",
                            source: format!("{path} ended at {pos}, before {end}").into(),
                        });
                    }
                    buf.truncate(n);
                    Ok(Some((Bytes::from(buf), (r, pos + n as u64))))
                }
            })
            .boxed()
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(payload),
            meta,
            range,
            attributes: Attributes::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let this = self.clone();
        locations
            .then(move |l| {
                let this = this.clone();
                async move {
                    let l = l?;
                    this.delete_one(&l).await?;
                    Ok(l)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let (this, prefix) = (self.clone(), prefix.cloned());
        // Directories still to walk, each with where its next page starts.
        let start = async move {
            let dirs = match this.listed_dir(prefix.as_ref()).await? {
                Some(d) => vec![(d, String::new())],
                None => Vec::new(),
            };
            Ok::<_, object_store::Error>((this, dirs))
        };
        stream::once(start)
            .map_ok(|(this, dirs)| {
                stream::try_unfold(dirs, move |mut dirs| {
                    let this = this.clone();
                    async move {
                        let Some((dir, after)) = dirs.pop() else {
                            return Ok::<_, object_store::Error>(None);
                        };
                        let page = this.page(&dir, &after).await?;
                        if let Some(next) = page.next {
                            dirs.push((dir, next));
                        }
                        dirs.extend(page.dirs.into_iter().map(|d| (d, String::new())));
                        Ok(Some((stream::iter(page.objects.into_iter().map(Ok)), dirs)))
                    }
                })
                .try_flatten()
            })
            .try_flatten()
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut out = ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
        };
        let Some(dir) = self.listed_dir(prefix).await? else {
            return Ok(out);
        };
        let mut after = String::new();
        loop {
            let page = self.page(&dir, &after).await?;
            out.objects.extend(page.objects);
            out.common_prefixes
                .extend(page.dirs.iter().filter_map(|d| self.location(d).ok()));
            match page.next {
                Some(next) => after = next,
                None => return Ok(out),
            }
        }
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let (src, target) = (self.dfs_path(from), self.dfs_path(to));
        let (mut r, _) = self.open(from).await?;
        let (staging, mut w) = self.create_staging(&target).await?;
        let copied = async {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                let n = r.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                w.write(&buf[..n]).await?;
            }
            w.close().await
        };
        if let Err(e) = copied.await {
            self.discard(&staging).await;
            return Err(dfs_error(e, &src));
        }
        let overwrite = matches!(options.mode, CopyMode::Overwrite);
        self.publish(&staging, &target, overwrite).await.map(drop)
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        let (src, target) = (self.dfs_path(from), self.dfs_path(to));
        self.file_status(from).await?;
        let dir = parent(&target);
        self.client
            .mkdirs(dir, true)
            .await
            .map_err(|e| dfs_error(e, dir))?;
        let overwrite = matches!(options.target_mode, RenameTargetMode::Overwrite);
        self.client
            .rename(&src, &target, overwrite)
            .await
            .map_err(|e| dfs_error(e, &target))?;
        self.prune(&src).await;
        Ok(())
    }
}
