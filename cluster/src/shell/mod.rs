//! The shell commands users know from `hdfs dfs`, over the async client. Errors become one line
//! on stderr and exit code 1 (see [`describe`]); a closed standard output ends a command quietly
//! (see [`StdoutClosed`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use dfs_client::{CreateOptions, DfsClient, FileStatus, SafeModeAction};
use serde_json::json;

use crate::cli::{AdminCommand, Command, TestArgs};
use crate::config::Config;

mod attrs;
mod copy;
mod format;
mod progress;
mod trash;

pub use dfs_proto::display::size;
use format::{fsck_json, ls_line, now_ms, print_fsck, print_stat, status_json};

/// Read/copy buffer: big enough to fill several packets per call.
const COPY_BUF: usize = 1 << 20;

/// Standard output was closed by its reader (`dfs ls -R / | head`). Rust ignores SIGPIPE, so
/// instead of dying from it as `cat` does, a shell command stops with this error and the `dfs`
/// binary exits quietly with the status a shell reports for a process killed by SIGPIPE. (Roles
/// keep SIGPIPE ignored: a server must not die because a peer's socket closed.)
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// The error for a failed write to standard output: [`StdoutClosed`] for a broken pipe.
pub fn stdout_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        anyhow::Error::new(StdoutClosed)
    } else {
        anyhow::Error::new(e).context("write to standard output")
    }
}

/// `println!` for shell commands: returns [`StdoutClosed`] (or another write error) from the
/// enclosing function instead of panicking when standard output is gone.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*).map_err($crate::shell::stdout_error)?
    }};
}
pub(crate) use outln;

/// One line saying what went wrong: the outermost context and the root cause.
pub fn describe(e: &anyhow::Error) -> String {
    let root = e.root_cause().to_string();
    let top = e.to_string();
    if top == root {
        top
    } else {
        format!("{top}: {root}")
    }
}

pub async fn run(config: &Config, namenode: &str, cmd: Command) -> Result<ExitCode> {
    let client = DfsClient::connect(config.client(namenode)).await?;
    let sh = Shell {
        client,
        trash: !config.minutes("fs.trash.interval").is_zero(),
    };
    let result = sh.dispatch(cmd).await;
    // The process exits next: what it held open (a failed upload's file) is closed now, not
    // when its lease expires.
    if let Err(e) = sh.client.release_all().await {
        tracing::warn!("could not tell the NameNode this command's files are closed: {e}");
    }
    result
}

struct Shell {
    client: DfsClient,
    /// `fs.trash.interval` > 0: `rm` moves to the trash.
    trash: bool,
}

/// Drops trailing slashes so `dfs put f /dir/` means `/dir`; everything else is validated by
/// the client and the NameNode.
fn norm(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() && p.starts_with('/') {
        "/".into()
    } else {
        t.into()
    }
}

/// What `rm` was asked.
struct Removal {
    recursive: bool,
    force: bool,
    /// Move to the trash instead of deleting (trash on and no `-skipTrash`).
    trash: bool,
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn base_name(p: &str) -> Result<String> {
    Path::new(p)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow!("{p}: has no file name"))
}

impl Shell {
    async fn dispatch(&self, cmd: Command) -> Result<ExitCode> {
        match cmd {
            Command::Ls {
                recursive,
                human,
                json,
                paths,
                ..
            } => {
                for p in paths {
                    self.ls(&norm(&p), recursive, human, json).await?;
                }
            }
            Command::Mkdir { parents, paths } => {
                for p in paths {
                    self.client.mkdirs(&norm(&p), parents).await?;
                }
            }
            Command::Put { force, mut args } => {
                let dest = norm(&args.pop().expect("clap requires 2 args"));
                self.put(&args, &dest, force).await?;
            }
            Command::Get { force, mut args } => {
                let dest = PathBuf::from(args.pop().expect("clap requires 2 args"));
                for src in &args {
                    self.get(&norm(src), &dest, force, args.len() > 1).await?;
                }
            }
            Command::Cat { paths } => {
                for p in paths {
                    self.cat(&norm(&p), 0, None).await?;
                }
            }
            Command::Head { path } => self.cat(&norm(&path), 0, Some(1024)).await?,
            Command::Tail { path } => {
                let len = self.client.stat(&norm(&path)).await?.length;
                self.cat(&norm(&path), len.saturating_sub(1024), None)
                    .await?;
            }
            Command::Getmerge {
                nl,
                skip_empty_file,
                src,
                dest,
            } => {
                let merge = copy::Merge {
                    newline: nl,
                    skip_empty: skip_empty_file,
                };
                self.getmerge(&norm(&src), &dest, merge).await?;
            }
            Command::Append { mut args } => {
                let dest = norm(&args.pop().expect("clap requires 2 args"));
                self.append(&args, &dest).await?;
            }
            Command::Rm {
                recursive,
                force,
                skip_trash,
                paths,
            } => {
                let rm = Removal {
                    recursive,
                    force,
                    trash: self.trash && !skip_trash,
                };
                for p in paths {
                    self.rm(&norm(&p), &rm).await?;
                }
            }
            Command::Expunge { immediate } => self.expunge(immediate).await?,
            Command::Rmdir { paths } => {
                for p in paths {
                    self.rmdir(&norm(&p)).await?;
                }
            }
            Command::Mv { mut args } => {
                let dest = norm(&args.pop().expect("clap requires 2 args"));
                let into = self.target_dir(&dest, args.len()).await?;
                for src in &args {
                    let src = norm(src);
                    let to = match &into {
                        Some(d) => join(d, &base_name(&src)?),
                        None => dest.clone(),
                    };
                    self.client.rename(&src, &to, false).await?;
                }
            }
            Command::Cp { force, mut args } => {
                let dest = norm(&args.pop().expect("clap requires 2 args"));
                let into = self.target_dir(&dest, args.len()).await?;
                for src in &args {
                    let src = norm(src);
                    let to = match &into {
                        Some(d) => join(d, &base_name(&src)?),
                        None => dest.clone(),
                    };
                    self.copy_tree(&src, &to, force).await?;
                }
            }
            Command::Stat { json, paths } => {
                for p in paths {
                    let p = norm(&p);
                    let st = self.client.symlink_status(&p).await?;
                    if json {
                        outln!("{}", status_json(&p, &st));
                    } else {
                        print_stat(&p, &st)?;
                    }
                }
            }
            Command::Du {
                summary,
                human,
                paths,
                ..
            } => {
                for p in paths {
                    self.du(&norm(&p), summary, human).await?;
                }
            }
            Command::Df { human, .. } => {
                let s = self.client.stats().await?;
                let pct = if s.capacity == 0 {
                    0.0
                } else {
                    s.used as f64 * 100.0 / s.capacity as f64
                };
                outln!(
                    "{:<24} {:>14} {:>14} {:>14} {:>5}",
                    "Filesystem",
                    "Size",
                    "Used",
                    "Available",
                    "Use%"
                );
                outln!(
                    "{:<24} {:>14} {:>14} {:>14} {:>4.0}%",
                    format!("dfs://{}", self.client.config().namenode),
                    size(s.capacity, human),
                    size(s.used, human),
                    size(s.remaining, human),
                    pct
                );
            }
            Command::Count { paths } => {
                for p in paths {
                    let p = norm(&p);
                    let c = self.client.content_summary(&p).await?;
                    outln!(
                        "{:>12} {:>12} {:>18} {p}",
                        c.directory_count,
                        c.file_count,
                        c.length
                    );
                }
            }
            Command::Touchz { paths } => {
                for p in paths {
                    let p = norm(&p);
                    match self.client.try_stat(&p).await? {
                        Some(st) if st.is_dir() => bail!("{p}: is a directory"),
                        Some(st) if st.length > 0 => bail!("{p}: not a zero-length file"),
                        Some(_) => {
                            let now = now_ms();
                            self.client.set_times(&p, Some(now), Some(now)).await?;
                        }
                        None => {
                            self.client
                                .create(&p, CreateOptions::default())
                                .await?
                                .close()
                                .await?
                        }
                    }
                }
            }
            Command::Truncate {
                wait: _,
                length,
                paths,
            } => {
                for p in paths {
                    let p = norm(&p);
                    if self.client.stat(&p).await?.is_dir() {
                        bail!("{p}: is a directory");
                    }
                    self.client.truncate(&p, length).await?;
                    outln!("Truncated {p} to length: {length}");
                }
            }
            Command::Test(t) => return self.test(t).await,
            Command::Setrep { replication, paths } => {
                for p in paths {
                    for f in self.files_below(&norm(&p)).await? {
                        self.client.set_replication(&f, replication).await?;
                        outln!("Replication {replication} set: {f}");
                    }
                }
            }
            Command::Chmod {
                recursive,
                mode,
                paths,
            } => {
                let bits = u32::from_str_radix(&mode, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| anyhow!("chmod: {mode:?} is not an octal mode such as 755"))?;
                for p in paths {
                    for f in self.maybe_recursive(&norm(&p), recursive).await? {
                        self.client.set_permission(&f, bits).await?;
                    }
                }
            }
            Command::Chown {
                recursive,
                owner,
                paths,
            } => {
                let (o, g) = match owner.split_once(':') {
                    Some((o, g)) => (o, g),
                    None => (owner.as_str(), ""),
                };
                let (o, g) = ((!o.is_empty()).then_some(o), (!g.is_empty()).then_some(g));
                if o.is_none() && g.is_none() {
                    bail!("chown: give OWNER, OWNER:GROUP or :GROUP");
                }
                for p in paths {
                    for f in self.maybe_recursive(&norm(&p), recursive).await? {
                        self.client.set_owner(&f, o, g).await?;
                    }
                }
            }
            Command::Chgrp {
                recursive,
                group,
                paths,
            } => self.chgrp(&group, &paths, recursive).await?,
            Command::Ln {
                symbolic,
                target,
                link,
            } => self.ln(symbolic, &target, &link).await?,
            Command::Getfattr {
                recursive,
                name,
                encoding,
                path,
                ..
            } => {
                self.getfattr(&path, name.as_deref(), encoding.as_deref(), recursive)
                    .await?
            }
            Command::Setfattr {
                name,
                value,
                remove,
                path,
            } => {
                self.setfattr(&path, name.as_deref(), value.as_deref(), remove.as_deref())
                    .await?
            }
            Command::Getfacl { recursive, path } => self.getfacl(&path, recursive).await?,
            Command::Setfacl {
                recursive,
                remove_all,
                remove_default,
                modify,
                remove,
                set,
                path,
            } => {
                let change = attrs::AclChange::from_flags(
                    remove_all,
                    remove_default,
                    modify.as_deref(),
                    remove.as_deref(),
                    set.as_deref(),
                )?;
                self.setfacl(&path, &change, recursive).await?
            }
            Command::Checksum { paths } => {
                for p in paths {
                    let p = norm(&p);
                    let c = self.client.file_checksum(&p).await?;
                    outln!("{p}\t{c}");
                }
            }
            Command::Fsck { path, json } => return self.fsck(&norm(&path), json).await,
            Command::Admin(a) => self.admin(a).await?,
            Command::Namenode(_)
            | Command::Datanode(_)
            | Command::Up(_)
            | Command::Mount(_)
            | Command::Bench(_) => {
                unreachable!("roles are dispatched in cli::run")
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    /// With several sources the destination must be a directory; with one, a directory
    /// destination means "into it".
    async fn target_dir(&self, dest: &str, sources: usize) -> Result<Option<String>> {
        match self.client.try_stat(dest).await? {
            Some(st) if st.is_dir() => Ok(Some(dest.to_string())),
            _ if sources > 1 => bail!("{dest}: is not a directory (needed for several sources)"),
            _ => Ok(None),
        }
    }

    /// Prints a listing as it arrives, one NameNode page at a time (a directory of millions of
    /// entries is never held in memory). `Found N items` is the directory's size when it was
    /// looked up, printed first as HDFS does; entries added or removed while the pages are
    /// fetched can make it differ from the lines that follow.
    async fn ls(&self, path: &str, recursive: bool, human: bool, json: bool) -> Result<()> {
        let st = self.client.symlink_status(path).await?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let line = |out: &mut dyn Write, p: &str, s: &FileStatus, first: bool| {
            if json {
                let sep = if first { "" } else { "," };
                write!(out, "{sep}{}", status_json(p, s))
            } else {
                writeln!(out, "{}", ls_line(p, s, human))
            }
        };
        if json {
            write!(out, "[").map_err(stdout_error)?;
        }
        if st.is_dir() {
            if !json && !recursive {
                writeln!(out, "Found {} items", st.children).map_err(stdout_error)?;
            }
            let mut walk = Listing::new(&self.client, path, recursive);
            let mut first = true;
            while let Some((p, s)) = walk.next().await? {
                line(&mut out, &p, &s, first).map_err(stdout_error)?;
                first = false;
                if !walk.buffered() {
                    // The next entry costs a round trip: show what we have meanwhile.
                    out.flush().map_err(stdout_error)?;
                }
            }
        } else {
            line(&mut out, path, &st, true).map_err(stdout_error)?;
        }
        if json {
            writeln!(out, "]").map_err(stdout_error)?;
        }
        out.flush().map_err(stdout_error)
    }

    /// Entries of `dir` (and below, when recursive), in listing order, with full paths.
    async fn collect(&self, dir: &str, recursive: bool) -> Result<Vec<(String, FileStatus)>> {
        let mut walk = Listing::new(&self.client, dir, recursive);
        let mut out = Vec::new();
        while let Some(e) = walk.next().await? {
            out.push(e);
        }
        Ok(out)
    }

    /// Every file at or below `path`.
    async fn files_below(&self, path: &str) -> Result<Vec<String>> {
        let st = self.client.stat(path).await?;
        if !st.is_dir() {
            return Ok(vec![path.to_string()]);
        }
        Ok(self
            .collect(path, true)
            .await?
            .into_iter()
            .filter(|(_, s)| s.is_file())
            .map(|(p, _)| p)
            .collect())
    }

    /// `path`, and with `recursive` everything below it but symbolic links (whose targets may
    /// lie anywhere: `chmod -R` changes the tree it was given, as POSIX tools do).
    async fn maybe_recursive(&self, path: &str, recursive: bool) -> Result<Vec<String>> {
        let mut all = vec![path.to_string()];
        if recursive && self.client.stat(path).await?.is_dir() {
            let rows = self.collect(path, true).await?;
            all.extend(
                rows.into_iter()
                    .filter(|(_, s)| !s.is_symlink())
                    .map(|(p, _)| p),
            );
        }
        Ok(all)
    }

    async fn rm(&self, path: &str, how: &Removal) -> Result<()> {
        match self.client.try_stat(path).await? {
            None if how.force => Ok(()),
            None => bail!("{path}: no such file or directory"),
            Some(st) if st.is_dir() && !how.recursive => bail!("{path}: is a directory (use -r)"),
            Some(_) => {
                if !(how.trash && self.move_to_trash(path).await?) {
                    self.client.delete(path, how.recursive).await?;
                }
                Ok(())
            }
        }
    }

    /// Deletes an empty directory; the NameNode refuses a non-empty one ("directory not empty").
    async fn rmdir(&self, path: &str) -> Result<()> {
        if !self.client.stat(path).await?.is_dir() {
            bail!("not a directory: {path}");
        }
        self.client.delete(path, false).await?;
        Ok(())
    }

    async fn du(&self, path: &str, summary: bool, human: bool) -> Result<()> {
        let st = self.client.stat(path).await?;
        let entries: Vec<(String, FileStatus)> = if summary || !st.is_dir() {
            vec![(path.to_string(), st)]
        } else {
            self.client
                .list(path)
                .await?
                .into_iter()
                .map(|e| (join(path, &e.name), e))
                .collect()
        };
        for (p, _) in entries {
            let c = self.client.content_summary(&p).await?;
            outln!(
                "{:<12} {:<12} {p}",
                size(c.length, human),
                size(c.space_consumed, human)
            );
        }
        Ok(())
    }

    async fn test(&self, t: TestArgs) -> Result<ExitCode> {
        let (path, check): (String, fn(&FileStatus) -> bool) = if let Some(p) = t.exists {
            (p, |_| true)
        } else if let Some(p) = t.dir {
            (p, |s| s.is_dir())
        } else if let Some(p) = t.file {
            (p, |s| s.is_file())
        } else if let Some(p) = t.zero {
            (p, |s| s.is_file() && s.length == 0)
        } else {
            bail!("test: give one of -e, -d, -f, -z");
        };
        let ok = self
            .client
            .try_stat(&norm(&path))
            .await?
            .is_some_and(|s| check(&s));
        Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    async fn fsck(&self, path: &str, json: bool) -> Result<ExitCode> {
        let r = self.client.fsck(path).await?;
        if json {
            outln!("{}", fsck_json(path, &r));
        } else {
            print_fsck(path, &r)?;
        }
        Ok(if r.is_healthy() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    async fn admin(&self, cmd: AdminCommand) -> Result<()> {
        match cmd {
            AdminCommand::Report { json } => {
                let s = self.client.stats().await?;
                let dns = self.client.datanode_report().await?;
                if json {
                    let v = json!({
                        "capacity": s.capacity, "used": s.used, "remaining": s.remaining,
                        "live_datanodes": s.live_datanodes, "dead_datanodes": s.dead_datanodes,
                        "under_replicated_blocks": s.under_replicated, "corrupt_blocks": s.corrupt_blocks,
                        "missing_blocks": s.missing_blocks, "pending_replications": s.pending_replications,
                        "files": s.files, "directories": s.directories, "blocks": s.blocks, "safe_mode": s.safe_mode,
                        "datanodes": dns.iter().map(|d| json!({
                            "uuid": d.uuid, "addr": d.addr, "alive": d.alive, "admin_state": d.admin_state,
                            "capacity": d.capacity, "used": d.used, "remaining": d.remaining, "blocks": d.blocks,
                            "last_heartbeat_ms_ago": d.last_heartbeat_ms_ago, "failed_volumes": d.failed_volumes,
                            "blocks_to_drain": d.blocks_to_drain,
                        })).collect::<Vec<_>>(),
                    });
                    outln!("{v}");
                    return Ok(());
                }
                outln!(
                    "Configured Capacity: {} ({})",
                    s.capacity,
                    size(s.capacity, true)
                );
                outln!("DFS Used: {} ({})", s.used, size(s.used, true));
                outln!(
                    "DFS Remaining: {} ({})",
                    s.remaining,
                    size(s.remaining, true)
                );
                outln!(
                    "Files: {}  Directories: {}  Blocks: {}",
                    s.files,
                    s.directories,
                    s.blocks
                );
                outln!("Under replicated blocks: {}", s.under_replicated);
                outln!("Blocks with corrupt replicas: {}", s.corrupt_blocks);
                outln!("Missing blocks: {}", s.missing_blocks);
                outln!("Pending replications: {}", s.pending_replications);
                outln!("Safe mode: {}", if s.safe_mode { "ON" } else { "off" });
                outln!();
                outln!(
                    "Live datanodes ({}), dead datanodes ({}):",
                    s.live_datanodes,
                    s.dead_datanodes
                );
                for d in dns {
                    outln!();
                    outln!("Name: {} ({})", d.addr, d.uuid);
                    outln!(
                        "State: {}, {}",
                        if d.alive { "live" } else { "DEAD" },
                        d.admin_state
                    );
                    outln!(
                        "Capacity: {}  Used: {}  Remaining: {}",
                        size(d.capacity, true),
                        size(d.used, true),
                        size(d.remaining, true)
                    );
                    outln!(
                        "Blocks: {}  Failed volumes: {}  Last contact: {} ms ago",
                        d.blocks,
                        d.failed_volumes,
                        d.last_heartbeat_ms_ago
                    );
                    if d.admin_state == "decommissioning" {
                        outln!(
                            "Decommission in progress: {} block(s) still to copy elsewhere",
                            d.blocks_to_drain
                        );
                    }
                }
            }
            AdminCommand::Safemode { action } => {
                let a = match action.as_str() {
                    "enter" => SafeModeAction::Enter,
                    "leave" => SafeModeAction::Leave,
                    _ => SafeModeAction::Get,
                };
                // The NameNode's status line already says "Safe mode is ON/OFF ...".
                let (on, status) = self.client.safe_mode(a).await?;
                if status.is_empty() {
                    outln!("Safe mode is {}", if on { "ON" } else { "OFF" });
                } else {
                    outln!("{status}");
                }
            }
            AdminCommand::Decommission { datanode } => {
                self.client.decommission(&datanode).await?;
                outln!("Decommissioning {datanode}: see `dfs admin report` for progress");
            }
            AdminCommand::RecoverLease { path } => {
                let closed = self.client.recover_lease(&norm(&path)).await?;
                outln!(
                    "{}",
                    if closed {
                        "recover lease: file is closed"
                    } else {
                        "recover lease: recovery started, the file will be closed shortly"
                    }
                );
            }
        }
        Ok(())
    }
}

/// A directory listing walked depth first, one NameNode page per round trip: entries come out in
/// the order `hdfs dfs -ls -R` prints them (a directory's contents right after the directory
/// itself), and only one page per directory level is held in memory.
struct Listing<'a> {
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
    fn new(client: &'a DfsClient, dir: &str, recursive: bool) -> Listing<'a> {
        Listing {
            client,
            recursive,
            stack: vec![Level::new(dir.to_string())],
        }
    }

    /// The next entry with its full path; `None` when the walk is over.
    async fn next(&mut self) -> Result<Option<(String, FileStatus)>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(norm("/a/b/"), "/a/b");
        assert_eq!(norm("/"), "/");
        assert_eq!(join("/", "x"), "/x");
    }
}
