//! `ls` with `hdfs dfs -ls`'s flags, and [`Listing`], the paged depth-first walk that `ls -R`,
//! `find` and the recursive commands share.

use std::io::Write;

use anyhow::Result;
use dfs_client::{DfsClient, FileStatus};

use super::format::{ls_line, status_json};
use super::{join, stdout_error, Shell};

/// What `ls` was asked, beside the paths.
#[derive(Default)]
pub(super) struct LsOptions {
    pub recursive: bool,
    pub human: bool,
    pub json: bool,
    /// `-d`: a directory as itself, not its contents.
    pub directory: bool,
    /// `-C`: paths only.
    pub paths_only: bool,
    /// `-t`: newest first; `-S`: largest first; `-r`: reversed.
    pub by_time: bool,
    pub by_size: bool,
    pub reverse: bool,
    /// `-u`: access times instead of modification times (shown, and sorted by with `-t`).
    pub atime: bool,
}

impl LsOptions {
    fn sorted(&self) -> bool {
        self.by_time || self.by_size || self.reverse
    }

    /// Sorts one directory's entries as the flags say.
    fn sort(&self, entries: &mut [(String, FileStatus)]) {
        entries.sort_by(|(pa, a), (pb, b)| {
            let within = if self.by_time {
                let t = |s: &FileStatus| if self.atime { s.atime_ms } else { s.mtime_ms };
                t(b).cmp(&t(a))
            } else if self.by_size {
                b.length.cmp(&a.length)
            } else {
                pa.cmp(pb)
            };
            if self.reverse {
                within.reverse()
            } else {
                within
            }
        });
    }

    fn line(&self, p: &str, s: &FileStatus) -> String {
        if self.paths_only {
            return p.to_string();
        }
        if self.json {
            return status_json(p, s).to_string();
        }
        if self.atime {
            let shown = FileStatus {
                mtime_ms: s.atime_ms,
                ..s.clone()
            };
            return ls_line(p, &shown, self.human);
        }
        ls_line(p, s, self.human)
    }
}

impl Shell {
    /// Prints a listing as it arrives, one NameNode page at a time (a directory of millions of
    /// entries is never held in memory), unless a sort flag asks for a whole directory at once.
    /// `Found N items` is the directory's size when it was looked up, printed first as HDFS
    /// does; entries added or removed while the pages are fetched can make it differ.
    pub(super) async fn ls(&self, path: &str, o: &LsOptions) -> Result<()> {
        let st = self.client.symlink_status(path).await?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut first = true;
        let mut emit = |out: &mut dyn Write, p: &str, s: &FileStatus| {
            let sep = if o.json && !first { "," } else { "" };
            first = false;
            if o.json {
                write!(out, "{sep}{}", o.line(p, s))
            } else {
                writeln!(out, "{}", o.line(p, s))
            }
        };
        if o.json {
            write!(out, "[").map_err(stdout_error)?;
        }
        if st.is_dir() && !o.directory {
            if !o.json && !o.recursive && !o.paths_only {
                writeln!(out, "Found {} items", st.children).map_err(stdout_error)?;
            }
            if o.sorted() {
                // One directory at a time, sorted, each subdirectory's entries right after it
                // (as `ls -R` prints them): only the directories being walked are held.
                let mut stack = vec![self.sorted_children(path, o).await?.into_iter()];
                while let Some(level) = stack.last_mut() {
                    let Some((p, s)) = level.next() else {
                        stack.pop();
                        continue;
                    };
                    emit(&mut out, &p, &s).map_err(stdout_error)?;
                    if o.recursive && s.is_dir() {
                        stack.push(self.sorted_children(&p, o).await?.into_iter());
                    }
                }
            } else {
                let mut walk = Listing::new(&self.client, path, o.recursive);
                while let Some((p, s)) = walk.next().await? {
                    emit(&mut out, &p, &s).map_err(stdout_error)?;
                    if !walk.buffered() {
                        // The next entry costs a round trip: show what we have meanwhile.
                        out.flush().map_err(stdout_error)?;
                    }
                }
            }
        } else {
            emit(&mut out, path, &st).map_err(stdout_error)?;
        }
        if o.json {
            writeln!(out, "]").map_err(stdout_error)?;
        }
        out.flush().map_err(stdout_error)
    }

    /// A directory's entries, with full paths, sorted as `o` says.
    async fn sorted_children(&self, dir: &str, o: &LsOptions) -> Result<Vec<(String, FileStatus)>> {
        let mut walk = Listing::new(&self.client, dir, false);
        let mut all = Vec::new();
        while let Some(e) = walk.next().await? {
            all.push(e);
        }
        o.sort(&mut all);
        Ok(all)
    }
}

/// A directory listing walked depth first, one NameNode page per round trip: entries come out in
/// the order `hdfs dfs -ls -R` prints them (a directory's contents right after the directory
/// itself), and only one page per directory level is held in memory.
pub(super) struct Listing<'a> {
    client: &'a DfsClient,
    recursive: bool,
    /// The directories being walked, innermost last.
    stack: Vec<Level>,
}

/// One directory of a [`Listing`]: the rest of its current page and where the next page starts.
struct Level {
    dir: String,
    page: std::vec::IntoIter<FileStatus>,
    after: String,
    more: bool,
}

impl Level {
    /// A directory whose first page is fetched when it is needed.
    fn new(dir: String) -> Level {
        Level {
            dir,
            page: Vec::new().into_iter(),
            after: String::new(),
            more: true,
        }
    }
}

impl<'a> Listing<'a> {
    pub(super) fn new(client: &'a DfsClient, dir: &str, recursive: bool) -> Listing<'a> {
        Listing {
            client,
            recursive,
            stack: vec![Level::new(dir.to_string())],
        }
    }

    /// The next entry with its full path; `None` when the walk is over.
    pub(super) async fn next(&mut self) -> Result<Option<(String, FileStatus)>> {
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            if let Some(e) = top.page.next() {
                let p = join(&top.dir, &e.name);
                top.after.clone_from(&e.name);
                if self.recursive && e.is_dir() {
                    self.stack.push(Level::new(p.clone()));
                }
                return Ok(Some((p, e)));
            }
            if !top.more {
                self.stack.pop();
                continue;
            }
            let page = self.client.list_page(&top.dir, &top.after, 0).await?;
            top.more = page.has_more();
            top.page = page.entries.into_iter();
        }
    }

    /// Whether [`Listing::next`] can answer without asking the NameNode.
    fn buffered(&self) -> bool {
        for level in self.stack.iter().rev() {
            if level.page.len() > 0 {
                return true;
            }
            if level.more {
                return false;
            }
        }
        true
    }
}
