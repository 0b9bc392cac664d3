//! The shell commands users know from `hdfs dfs`, over the async client. Errors become one line
//! on stderr and exit code 1 (see [`describe`]); a closed standard output ends a command quietly
//! (see [`StdoutClosed`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use dfs_client::{CreateOptions, DfsClient, FileStatus, SafeModeAction};
use serde_json::json;

use crate::cli::{AdminCommand, Command, TestArgs};
use crate::config::Config;

mod attrs;
mod copy;
mod find;
mod format;
mod ls;
mod progress;
mod trash;

pub use dfs_proto::display::size;
use format::{fsck_json, now_ms, print_fsck, print_stat, status_json};
use ls::Listing;

/// How often `tail -f` looks for more (HDFS: 5 s; a terminal wants sooner).
const TAIL_FOLLOW_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

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

/// What `touch` was asked.
struct Times {
    /// `-t`, in milliseconds; `None`: now.
    at: Option<u64>,
    atime: bool,
    mtime: bool,
    /// Create missing files (no `-c`).
    create: bool,
}

/// `touch -t`'s `yyyyMMdd:HHmmss`, in UTC.
fn parse_touch_time(t: &str) -> Result<u64> {
    let bad = || anyhow!("touch: bad time {t:?} (expected yyyyMMdd:HHmmss)");
    let (date, time) = t.split_once(':').ok_or_else(bad)?;
    if date.len() != 8
        || time.len() != 6
        || !(date.chars().chain(time.chars())).all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let n = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let (mo, d) = (n(&date[4..6])?, n(&date[6..8])?);
    let (h, mi, s) = (n(&time[..2])?, n(&time[2..4])?, n(&time[4..])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59 {
        return Err(bad());
    }
    let y = i64::from(n(&date[..4])?);
    Ok(dfs_proto::display::from_utc(y, mo, d, h, mi, s))
}

/// `usage` and `help`: clap's text for one command, or for every command (no NameNode needed).
pub fn print_help(command: Option<&str>, long: bool) -> Result<()> {
    use clap::CommandFactory;
    let mut cli = crate::cli::Cli::command();
    cli.build(); // names each subcommand `dfs NAME`
    let text = match command.map(|c| c.trim_start_matches('-')) {
        Some(name) => {
            let sub = cli
                .find_subcommand_mut(name)
                .ok_or_else(|| anyhow!("{name}: no such command (try dfs help)"))?;
            if long {
                sub.render_long_help().to_string()
            } else {
                format!("{}", sub.render_usage())
            }
        }
        None if long => cli.render_long_help().to_string(),
        None => format!("{}", cli.render_usage()),
    };
    outln!("{}", text.trim_end());
    Ok(())
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
                directory,
                paths_only,
                by_time,
                by_size,
                reverse,
                atime,
                paths,
                ..
            } => {
                let o = ls::LsOptions {
                    recursive,
                    human,
                    json,
                    directory,
                    paths_only,
                    by_time,
                    by_size,
                    reverse,
                    atime,
                };
                for p in paths {
                    self.ls(&norm(&p), &o).await?;
                }
            }
            Command::Find {
                name,
                iname,
                print0,
                paths,
                ..
            } => {
                let o = find::FindOptions {
                    name: name.map(|n| (n, false)).or(iname.map(|n| (n, true))),
                    print0,
                };
                let roots: Vec<String> = paths.iter().map(|p| norm(p)).collect();
                self.find(&roots, &o).await?;
            }
            Command::Touch {
                access,
                modification,
                time,
                no_create,
                paths,
            } => {
                let at = time.as_deref().map(parse_touch_time).transpose()?;
                // Neither -a nor -m: both.
                let both = !access && !modification;
                let t = Times {
                    at,
                    atime: access || both,
                    mtime: modification || both,
                    create: !no_create,
                };
                for p in paths {
                    self.touch(&norm(&p), &t).await?;
                }
            }
            Command::MoveFromLocal { mut args } => {
                let dest = norm(&args.pop().expect("clap requires 2 args"));
                if args.iter().any(|a| a == "-") {
                    bail!("moveFromLocal: stdin (-) cannot be moved; use put");
                }
                self.put(&args, &dest, false).await?;
                for src in &args {
                    let local = Path::new(src);
                    let removed = if local.is_dir() {
                        std::fs::remove_dir_all(local)
                    } else {
                        std::fs::remove_file(local)
                    };
                    removed.with_context(|| format!("remove {src} after copying it"))?;
                }
            }
            Command::MoveToLocal { src, dest } => {
                let src = norm(&src);
                self.get(&src, &dest, false, false).await?;
                self.client.delete(&src, true).await?;
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
            Command::Tail { follow, path } => self.tail(&norm(&path), follow).await?,
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
            | Command::Bench(_)
            | Command::Usage { .. }
            | Command::Help { .. } => {
                unreachable!("roles, bench, usage and help are dispatched in cli::run")
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

    /// The last KiB; with `follow`, then every byte appended, until stdout closes or the
    /// process is interrupted.
    async fn tail(&self, path: &str, follow: bool) -> Result<()> {
        let mut len = self.client.stat(path).await?.length;
        let from = len.saturating_sub(1024);
        self.cat(path, from, Some(len - from)).await?;
        if !follow {
            return Ok(());
        }
        loop {
            tokio::time::sleep(TAIL_FOLLOW_DELAY).await;
            let now = self.client.stat(path).await?.length;
            if now > len {
                self.cat(path, len, Some(now - len)).await?;
            }
            len = now;
        }
    }

    async fn touch(&self, path: &str, t: &Times) -> Result<()> {
        if self.client.try_stat(path).await?.is_none() {
            if !t.create {
                return Ok(());
            }
            self.client
                .create(path, CreateOptions::default())
                .await?
                .close()
                .await?;
            if t.at.is_none() {
                return Ok(()); // just created: both times are now
            }
        }
        match t.at {
            Some(ms) => {
                let pick = |on: bool| on.then_some(ms);
                self.client
                    .set_times(path, pick(t.mtime), pick(t.atime))
                    .await?
            }
            None => self.client.set_times_to_now(path, t.mtime, t.atime).await?,
        }
        Ok(())
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
