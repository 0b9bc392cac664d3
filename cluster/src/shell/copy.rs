//! The commands that move file contents: `put`, `get`, `cat`, `append`, `cp` and `getmerge`,
//! each streaming through one buffer, with a progress bar on a terminal.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use dfs_client::{CreateOptions, FileStatus};

use super::progress::Progress;
use super::{base_name, join, stdout_error, Shell, COPY_BUF};

/// What `getmerge` adds between files.
pub(super) struct Merge {
    /// A newline after each file (`-nl`).
    pub newline: bool,
    /// Skip empty files, newline included (`-skip-empty-file`).
    pub skip_empty: bool,
}

impl Shell {
    pub(super) async fn put(&self, sources: &[String], dest: &str, force: bool) -> Result<()> {
        let into = self.target_dir(dest, sources.len()).await?;
        for src in sources {
            let to = match (&into, src.as_str()) {
                (Some(d), "-") => {
                    bail!("put: reading stdin needs a file destination, {d} is a directory")
                }
                (Some(d), s) => join(d, &base_name(s)?),
                (None, _) => dest.to_string(),
            };
            if src == "-" {
                let bar = Progress::new(&to, None);
                self.upload(&mut std::io::stdin().lock(), &to, force, &bar)
                    .await?;
            } else {
                self.put_path(Path::new(src), &to, force).await?;
            }
        }
        Ok(())
    }

    async fn put_path(&self, local: &Path, to: &str, force: bool) -> Result<()> {
        let meta = std::fs::metadata(local).with_context(|| format!("{}", local.display()))?;
        if meta.is_dir() {
            self.client.mkdirs(to, true).await?;
            let mut entries: Vec<_> = std::fs::read_dir(local)
                .with_context(|| format!("{}", local.display()))?
                .collect::<std::io::Result<_>>()?;
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let name = e.file_name().to_string_lossy().into_owned();
                Box::pin(self.put_path(&e.path(), &join(to, &name), force)).await?;
            }
            return Ok(());
        }
        let mut f = std::fs::File::open(local).with_context(|| format!("{}", local.display()))?;
        let bar = Progress::new(to, Some(meta.len()));
        self.upload(&mut f, to, force, &bar).await
    }

    /// Streams `input` into `to` through a temporary `to._COPYING_`, renamed into place at the
    /// end (as HDFS does), so a failed copy never leaves a truncated file under the real name.
    async fn upload(
        &self,
        input: &mut dyn Read,
        to: &str,
        force: bool,
        bar: &Progress,
    ) -> Result<()> {
        if !force && self.client.exists(to).await? {
            bail!("{to}: file exists (use -f to overwrite)");
        }
        let tmp = format!("{to}._COPYING_");
        let opts = CreateOptions {
            overwrite: true,
            ..Default::default()
        };
        let mut w = self.client.create(&tmp, opts).await?;
        let mut buf = vec![0u8; COPY_BUF];
        loop {
            let n = input.read(&mut buf).context("read local input")?;
            if n == 0 {
                break;
            }
            w.write(&buf[..n]).await?;
            bar.add(n);
        }
        w.close().await?;
        self.client.rename(&tmp, to, force).await?;
        bar.finish();
        Ok(())
    }

    pub(super) async fn get(&self, src: &str, dest: &Path, force: bool, many: bool) -> Result<()> {
        let st = self.client.stat(src).await?;
        let target = if dest.is_dir() {
            dest.join(base_name(src)?)
        } else if many {
            bail!(
                "{}: is not a directory (needed for several sources)",
                dest.display()
            );
        } else {
            dest.to_path_buf()
        };
        self.download_tree(src, &st, &target, force).await
    }

    async fn download_tree(
        &self,
        src: &str,
        st: &FileStatus,
        to: &Path,
        force: bool,
    ) -> Result<()> {
        if st.is_dir() {
            std::fs::create_dir_all(to).with_context(|| format!("{}", to.display()))?;
            for e in self.client.list(src).await? {
                Box::pin(self.download_tree(&join(src, &e.name), &e, &to.join(&e.name), force))
                    .await?;
            }
            return Ok(());
        }
        if !force && to.exists() {
            bail!("{}: file exists (use -f to overwrite)", to.display());
        }
        let mut f = std::fs::File::create(to).with_context(|| format!("{}", to.display()))?;
        let bar = Progress::new(src, Some(st.length));
        self.copy_out(src, 0, None, &mut f, &bar).await?;
        f.sync_all().with_context(|| format!("{}", to.display()))?;
        bar.finish();
        Ok(())
    }

    pub(super) async fn cat(&self, path: &str, from: u64, limit: Option<u64>) -> Result<()> {
        let mut out = std::io::stdout().lock();
        self.copy_out(path, from, limit, &mut out, &Progress::none())
            .await
            .map_err(|e| match e.downcast::<std::io::Error>() {
                Ok(io) => stdout_error(io),
                Err(other) => other,
            })
    }

    /// Copies `path` from byte `from` (at most `limit` bytes) to `out`.
    async fn copy_out(
        &self,
        path: &str,
        from: u64,
        limit: Option<u64>,
        out: &mut dyn Write,
        bar: &Progress,
    ) -> Result<()> {
        let mut r = self.client.open(path).await?;
        r.seek(from);
        let mut left = limit.unwrap_or(u64::MAX);
        let mut buf = vec![0u8; COPY_BUF];
        while left > 0 {
            let want = (buf.len() as u64).min(left) as usize;
            let n = r.read(&mut buf[..want]).await?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            bar.add(n);
            left -= n as u64;
        }
        out.flush()?;
        Ok(())
    }

    pub(super) async fn append(&self, sources: &[String], dest: &str) -> Result<()> {
        let mut w = match self.client.append(dest).await {
            Err(dfs_client::Error::NotFound(_)) => {
                self.client.create(dest, CreateOptions::default()).await?
            }
            r => r?,
        };
        // The total is known when every source is a file.
        let total = sources
            .iter()
            .map(|s| (s != "-").then(|| std::fs::metadata(s).ok().map(|m| m.len())))
            .sum::<Option<Option<u64>>>()
            .flatten();
        let bar = Progress::new(dest, total);
        let mut buf = vec![0u8; COPY_BUF];
        for src in sources {
            let mut input: Box<dyn Read> = if src == "-" {
                Box::new(std::io::stdin())
            } else {
                Box::new(std::fs::File::open(src).with_context(|| src.clone())?)
            };
            loop {
                let n = input
                    .read(&mut buf)
                    .with_context(|| format!("read {src}"))?;
                if n == 0 {
                    break;
                }
                w.write(&buf[..n]).await?;
                bar.add(n);
            }
        }
        w.close().await?;
        bar.finish();
        Ok(())
    }

    pub(super) async fn copy_tree(&self, src: &str, to: &str, force: bool) -> Result<()> {
        let st = self.client.stat(src).await?;
        if st.is_dir() {
            if to == src || to.starts_with(&format!("{src}/")) {
                bail!("cp: cannot copy {src} into itself ({to})");
            }
            self.client.mkdirs(to, true).await?;
            for e in self.client.list(src).await? {
                Box::pin(self.copy_tree(&join(src, &e.name), &join(to, &e.name), force)).await?;
            }
            return Ok(());
        }
        if !force && self.client.exists(to).await? {
            bail!("{to}: file exists (use -f to overwrite)");
        }
        let opts = CreateOptions {
            overwrite: force,
            replication: st.replication,
            block_size: st.block_size,
            ..Default::default()
        };
        let mut r = self.client.open(src).await?;
        let mut w = self.client.create(to, opts).await?;
        let bar = Progress::new(to, Some(st.length));
        let mut buf = vec![0u8; COPY_BUF];
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            w.write(&buf[..n]).await?;
            bar.add(n);
        }
        w.close().await?;
        bar.finish();
        Ok(())
    }

    /// `getmerge`: the files of `src` (a directory's files in name order, or one file),
    /// concatenated into the local file `dest`.
    pub(super) async fn getmerge(&self, src: &str, dest: &Path, merge: Merge) -> Result<()> {
        let st = self.client.stat(src).await?;
        let files: Vec<(String, FileStatus)> = if st.is_dir() {
            let mut all: Vec<_> = self
                .client
                .list(src)
                .await?
                .into_iter()
                .filter(|e| e.is_file())
                .map(|e| (join(src, &e.name), e))
                .collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all
        } else {
            vec![(src.to_string(), st)]
        };
        let files: Vec<_> = files
            .into_iter()
            .filter(|(_, s)| !(merge.skip_empty && s.length == 0))
            .collect();
        let total = files.iter().map(|(_, s)| s.length).sum();
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(dest).with_context(|| format!("{}", dest.display()))?,
        );
        let bar = Progress::new(&dest.display().to_string(), Some(total));
        for (path, _) in &files {
            self.copy_out(path, 0, None, &mut out, &bar).await?;
            if merge.newline {
                out.write_all(b"\n")?;
            }
        }
        let f = out.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()
            .with_context(|| format!("{}", dest.display()))?;
        bar.finish();
        Ok(())
    }
}
