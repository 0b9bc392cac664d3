//! The `dfs` command line: clap definitions, and dispatch to the roles and the shell commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{ArgAction, Args, Parser, Subcommand};

use crate::config::Config;
use crate::{roles, shell};

#[derive(Parser, Debug)]
#[command(
    name = "dfs",
    version,
    about = "dfs: a distributed file system",
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// TOML configuration file (keys as in docs/config.md).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Sets a configuration key, e.g. `-D dfs.replication=1` (repeatable).
    #[arg(short = 'D', global = true, value_name = "KEY=VALUE", action = ArgAction::Append)]
    pub define: Vec<String>,
    /// NameNode address for shell commands (default: $DFS_NAMENODE, else dfs.namenode.rpc-address).
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub namenode: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs a NameNode.
    Namenode(roles::NamenodeArgs),
    /// Runs a DataNode.
    Datanode(roles::DatanodeArgs),
    /// Runs a whole local cluster (a NameNode and N DataNodes) in this process.
    Up(roles::UpArgs),
    /// Mounts the cluster as a POSIX file system (FUSE).
    Mount(roles::MountArgs),
    /// Lists a directory (or a file; a symbolic link is shown itself, with its target).
    #[command(disable_help_flag = true)]
    Ls {
        #[arg(short = 'R')]
        recursive: bool,
        #[arg(short = 'h')]
        human: bool,
        /// Directories as themselves, not their contents.
        #[arg(short = 'd')]
        directory: bool,
        /// Paths only.
        #[arg(short = 'C', conflicts_with = "json")]
        paths_only: bool,
        /// Newest first.
        #[arg(short = 't')]
        by_time: bool,
        /// Largest first.
        #[arg(short = 'S')]
        by_size: bool,
        /// Reverse the order.
        #[arg(short = 'r')]
        reverse: bool,
        /// Access times instead of modification times (shown, and sorted by with -t).
        #[arg(short = 'u')]
        atime: bool,
        #[arg(long)]
        json: bool,
        #[arg(long, action = ArgAction::Help)]
        help: Option<bool>,
        #[arg(default_value = "/")]
        paths: Vec<String>,
    },
    /// Creates directories.
    Mkdir {
        /// Create parents as needed, no error if the directory exists.
        #[arg(short = 'p')]
        parents: bool,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Copies local files (or `-` for stdin) into dfs.
    Put {
        /// Overwrite an existing destination.
        #[arg(short = 'f')]
        force: bool,
        #[arg(required = true, num_args = 2.., value_name = "LOCAL... DEST")]
        args: Vec<String>,
    },
    /// Copies dfs files to the local file system.
    Get {
        #[arg(short = 'f')]
        force: bool,
        #[arg(required = true, num_args = 2.., value_name = "SRC... LOCALDEST")]
        args: Vec<String>,
    },
    /// Prints files to stdout.
    Cat {
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Prints the first KiB of a file.
    Head { path: String },
    /// Prints the last KiB of a file; with -f, then what is appended, until interrupted.
    Tail {
        #[arg(short = 'f')]
        follow: bool,
        path: String,
    },
    /// Finds paths whose name matches a glob (-name, or -iname ignoring case), as `hdfs dfs
    /// -find`; prints them one per line (-print) or NUL-terminated (-print0).
    Find {
        /// Names matching this glob (also `-name`).
        #[arg(long, conflicts_with = "iname")]
        name: Option<String>,
        /// The same, ignoring case (also `-iname`).
        #[arg(long)]
        iname: Option<String>,
        /// One path per line, the default (also `-print`).
        #[arg(long)]
        print: bool,
        /// NUL after each path (also `-print0`).
        #[arg(long)]
        print0: bool,
        #[arg(default_value = "/")]
        paths: Vec<String>,
    },
    /// Sets access and modification times (-a or -m for one) to now or to -t
    /// yyyyMMdd:HHmmss (UTC), creating missing files unless -c.
    Touch {
        /// The access time only.
        #[arg(short = 'a')]
        access: bool,
        /// The modification time only.
        #[arg(short = 'm')]
        modification: bool,
        /// This time (UTC) instead of now.
        #[arg(short = 't', value_name = "yyyyMMdd:HHmmss")]
        time: Option<String>,
        /// Create no missing file.
        #[arg(short = 'c')]
        no_create: bool,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Like put, then deletes the local sources.
    #[command(name = "moveFromLocal")]
    MoveFromLocal {
        #[arg(required = true, num_args = 2.., value_name = "LOCAL... DEST")]
        args: Vec<String>,
    },
    /// Like get, then deletes the dfs source.
    #[command(name = "moveToLocal")]
    MoveToLocal { src: String, dest: PathBuf },
    /// Prints a command's usage (every command's without one).
    Usage { command: Option<String> },
    /// Prints a command's help (every command's without one).
    #[command(name = "help")]
    Help { command: Option<String> },
    /// Concatenates a directory's files (in name order), or one file, into a local file.
    Getmerge {
        /// Adds a newline after each file (also `-nl`).
        #[arg(long)]
        nl: bool,
        /// Skips empty files (also `-skip-empty-file`).
        #[arg(long)]
        skip_empty_file: bool,
        src: String,
        dest: PathBuf,
    },
    /// Appends local files (or `-` for stdin) to a dfs file, creating it if missing.
    Append {
        #[arg(required = true, num_args = 2.., value_name = "LOCAL... DEST")]
        args: Vec<String>,
    },
    /// Deletes files (and with -r, directories).
    Rm {
        #[arg(short = 'r', short_alias = 'R')]
        recursive: bool,
        /// No error for missing paths.
        #[arg(short = 'f')]
        force: bool,
        /// Deletes at once, even with trash on (also `-skipTrash`).
        #[arg(long = "skipTrash")]
        skip_trash: bool,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Checkpoints this user's trash and deletes checkpoints older than `fs.trash.interval`.
    Expunge {
        /// Deletes everything in the trash now (also `-immediate`).
        #[arg(long)]
        immediate: bool,
    },
    /// Deletes empty directories.
    Rmdir {
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Renames or moves into a directory.
    Mv {
        #[arg(required = true, num_args = 2.., value_name = "SRC... DEST")]
        args: Vec<String>,
    },
    /// Copies within dfs.
    Cp {
        #[arg(short = 'f')]
        force: bool,
        #[arg(required = true, num_args = 2.., value_name = "SRC... DEST")]
        args: Vec<String>,
    },
    /// Shows a path's metadata (a symbolic link's own, with its target).
    Stat {
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Shows space used.
    #[command(disable_help_flag = true)]
    Du {
        /// One total per argument.
        #[arg(short = 's')]
        summary: bool,
        #[arg(short = 'h')]
        human: bool,
        #[arg(long, action = ArgAction::Help)]
        help: Option<bool>,
        #[arg(default_value = "/")]
        paths: Vec<String>,
    },
    /// Shows the cluster's capacity.
    #[command(disable_help_flag = true)]
    Df {
        #[arg(short = 'h')]
        human: bool,
        #[arg(long, action = ArgAction::Help)]
        help: Option<bool>,
    },
    /// Counts directories, files and bytes: DIR_COUNT FILE_COUNT CONTENT_SIZE PATHNAME.
    Count {
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Creates empty files.
    Touchz {
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Sets the length of files: cuts them, or grows them by a hole that reads as zeros.
    Truncate {
        /// Wait for the cut to complete (as `hdfs dfs -truncate -w`; dfs cuts the file's map at
        /// once, so there is never block recovery to wait for).
        #[arg(short = 'w')]
        wait: bool,
        length: u64,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Tests a path: exit 0 if true, 1 if false.
    Test(TestArgs),
    /// Sets the replication of files (of every file below a directory).
    Setrep {
        replication: u32,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Changes permission bits (octal, e.g. 755).
    Chmod {
        #[arg(short = 'R')]
        recursive: bool,
        mode: String,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Changes owner and/or group: OWNER, OWNER:GROUP or :GROUP.
    Chown {
        #[arg(short = 'R')]
        recursive: bool,
        owner: String,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Changes the group of files (of everything below a directory with -R).
    Chgrp {
        #[arg(short = 'R')]
        recursive: bool,
        group: String,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Makes a link: with -s a symbolic link LINK to TARGET (stored as given, never resolved
    /// by the NameNode; commands on what a path names follow it, rm and mv act on the link), else
    /// a hard link LINK to the file TARGET.
    Ln {
        #[arg(short = 's')]
        symbolic: bool,
        target: String,
        link: String,
    },
    /// Shows extended attributes, one (-n NAME) or all (-d), as `hdfs dfs -getfattr`: -e text,
    /// hex or base64 encodes the values.
    Getfattr {
        #[arg(short = 'R')]
        recursive: bool,
        #[arg(short = 'n', conflicts_with = "dump", required_unless_present = "dump")]
        name: Option<String>,
        #[arg(short = 'd')]
        dump: bool,
        #[arg(short = 'e', value_parser = ["text", "hex", "base64"])]
        encoding: Option<String>,
        path: String,
    },
    /// Sets (-n NAME [-v VALUE]) or removes (-x NAME) an extended attribute, as `hdfs dfs
    /// -setfattr`: a value "0x..." is hex, "0s..." base64, anything else text.
    Setfattr {
        #[arg(
            short = 'n',
            conflicts_with = "remove",
            required_unless_present = "remove"
        )]
        name: Option<String>,
        #[arg(short = 'v', requires = "name")]
        value: Option<String>,
        #[arg(short = 'x')]
        remove: Option<String>,
        path: String,
    },
    /// Shows ACLs (owner, group, entries, then the default ACL).
    Getfacl {
        #[arg(short = 'R')]
        recursive: bool,
        path: String,
    },
    /// Changes ACLs, as `hdfs dfs -setfacl`: -m SPEC adds or modifies entries, -x SPEC removes
    /// them, -b removes all but the base entries, -k the default ACL, --set SPEC replaces all.
    /// A SPEC is comma-separated `[default:]user|group|mask|other:[name]:rwx`.
    Setfacl {
        #[arg(short = 'R')]
        recursive: bool,
        #[arg(short = 'b')]
        remove_all: bool,
        #[arg(short = 'k')]
        remove_default: bool,
        #[arg(short = 'm')]
        modify: Option<String>,
        #[arg(short = 'x')]
        remove: Option<String>,
        #[arg(long = "set")]
        set: Option<String>,
        path: String,
    },
    /// Prints each file's checksum, computed by the DataNodes.
    Checksum {
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Checks the health of files: every block's replicas.
    Fsck {
        #[arg(default_value = "/")]
        path: String,
        #[arg(long)]
        json: bool,
    },
    /// Cluster administration.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Measures sequential write or read throughput (in the spirit of TestDFSIO).
    Bench(crate::bench::BenchArgs),
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct TestArgs {
    /// The path exists.
    #[arg(short = 'e', value_name = "PATH")]
    pub exists: Option<String>,
    /// The path is a directory.
    #[arg(short = 'd', value_name = "PATH")]
    pub dir: Option<String>,
    /// The path is a file.
    #[arg(short = 'f', value_name = "PATH")]
    pub file: Option<String>,
    /// The path is a file of zero length.
    #[arg(short = 'z', value_name = "PATH")]
    pub zero: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Capacity and the state of every DataNode.
    Report {
        #[arg(long)]
        json: bool,
    },
    /// Gets, enters or leaves safe mode.
    Safemode {
        #[arg(value_parser = ["get", "enter", "leave"])]
        action: String,
    },
    /// Drains a DataNode (HOST:PORT or uuid) before it is taken out of service.
    Decommission { datanode: String },
    /// Closes a file left open by a dead writer.
    RecoverLease { path: String },
}

/// Parses the command line and runs it; the `dfs` binary is just this.
pub fn main() -> ExitCode {
    let cli = Cli::parse_from(std::env::args_os().map(hdfs_long_flag));
    let role = matches!(
        cli.command,
        Command::Namenode(_) | Command::Datanode(_) | Command::Up(_) | Command::Mount(_)
    );
    init_logging(role);
    match run(cli) {
        Ok(code) => code,
        Err(e) if e.chain().any(|c| c.is::<shell::StdoutClosed>()) => {
            ExitCode::from(STDOUT_CLOSED_STATUS)
        }
        Err(e) => {
            eprintln!("dfs: {}", shell::describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// `hdfs dfs` spells some long flags with one dash (`getmerge -nl`); they are taken as clap's
/// `--nl`. Only these: any other single-dash word stays a cluster of short flags.
fn hdfs_long_flag(arg: std::ffi::OsString) -> std::ffi::OsString {
    const ONE_DASH: [&str; 9] = [
        "-nl",
        "-skip-empty-file",
        "-skipTrash",
        "-immediate",
        "-name",
        "-iname",
        "-print",
        "-print0",
        "-help",
    ];
    match arg.to_str() {
        Some(a) if ONE_DASH.contains(&a) => format!("-{a}").into(),
        _ => arg,
    }
}

/// Exit status of a command whose standard output was closed under it: 128 + SIGPIPE, what a
/// shell reports for `cat` in `cat big | head` (see [`shell::StdoutClosed`]).
const STDOUT_CLOSED_STATUS: u8 = 128 + libc::SIGPIPE as u8;

/// Roles log what they do; shell commands print their result and, on failure, one line of
/// their own: what the client recovered from on the way (a replica failed over, a DataNode
/// excluded) shows with `RUST_LOG=warn`.
fn init_logging(role: bool) {
    let default = if role { "info" } else { "error" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn run(cli: Cli) -> Result<ExitCode> {
    let config = Config::load(cli.config.as_deref(), &cli.define)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let namenode = cli
        .namenode
        .clone()
        .or_else(|| std::env::var("DFS_NAMENODE").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| config.text("dfs.namenode.rpc-address"));
    rt.block_on(async move {
        match cli.command {
            Command::Namenode(a) => roles::namenode(&config, a).await.map(|_| ExitCode::SUCCESS),
            Command::Datanode(a) => roles::datanode(&config, a, &namenode)
                .await
                .map(|_| ExitCode::SUCCESS),
            Command::Up(a) => roles::up(&config, a).await.map(|_| ExitCode::SUCCESS),
            Command::Mount(a) => roles::mount(&config, a, &namenode)
                .await
                .map(|_| ExitCode::SUCCESS),
            Command::Bench(a) => crate::bench::run(&config, &namenode, a)
                .await
                .map(|_| ExitCode::SUCCESS),
            Command::Usage { command } => {
                shell::print_help(command.as_deref(), false).map(|_| ExitCode::SUCCESS)
            }
            Command::Help { command } => {
                shell::print_help(command.as_deref(), true).map(|_| ExitCode::SUCCESS)
            }
            other => shell::run(&config, &namenode, other).await,
        }
    })
}
