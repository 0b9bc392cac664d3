//! The long-running roles: `dfs namenode`, `dfs datanode`, `dfs up` (a NameNode and N
//! DataNodes in one process, optionally mounted) and `dfs mount`. Each binds its listeners (or
//! mounts) here, prints one line to stdout saying where it listens (the MiniCluster reads it),
//! and hands over to the library's `run` (or `dfs_fuse::mount`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;

#[derive(Args, Debug)]
pub struct NamenodeArgs {
    /// Metadata directory (default: dfs.namenode.name.dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// RPC address (default: dfs.namenode.rpc-address).
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// HTTP status address (default: dfs.namenode.http-address).
    #[arg(long, value_name = "HOST:PORT")]
    pub http_addr: Option<String>,
}

#[derive(Args, Debug)]
pub struct DatanodeArgs {
    /// Volume directory (repeatable; default: dfs.datanode.data.dir).
    #[arg(long)]
    pub dir: Vec<PathBuf>,
    /// Data-transfer address (default: dfs.datanode.address).
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// HTTP address, serving `/metrics` (default: dfs.datanode.http.address).
    #[arg(long, value_name = "HOST:PORT")]
    pub http_addr: Option<String>,
}

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Where the cluster keeps its data: DIR/namenode and DIR/datanode-N.
    #[arg(long, default_value = "./dfs-data")]
    pub dir: PathBuf,
    /// How many DataNodes to run.
    #[arg(long, default_value_t = 3)]
    pub datanodes: usize,
    /// Also mount the cluster here (created if missing), unmounted when the cluster stops.
    #[arg(long, value_name = "DIR")]
    pub mount: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct MountArgs {
    /// Where to mount (created if missing).
    pub mountpoint: PathBuf,
    /// Stay in the foreground (default: detach once mounted, logging to
    /// $TMPDIR/dfs-mount-<pid>.log).
    #[arg(long)]
    pub foreground: bool,
}

/// Resolves when the process gets SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot listen for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

/// The mount's client of the NameNode this process just started, retrying while it loads its
/// state.
async fn connect_when_ready(config: &Config, addr: &str) -> Result<dfs_client::DfsClient> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match dfs_client::DfsClient::connect(config.mount_client(addr)).await {
            Ok(c) => return Ok(c),
            Err(e) if tokio::time::Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

async fn bind(addr: &str, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind the {what} address {addr}"))
}

/// One line on stdout, flushed at once, so a parent process can learn the addresses.
fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub async fn namenode(config: &Config, args: NamenodeArgs) -> Result<()> {
    let dir = args
        .dir
        .unwrap_or_else(|| config.text("dfs.namenode.name.dir").into());
    let rpc = bind(
        &args
            .addr
            .unwrap_or_else(|| config.text("dfs.namenode.rpc-address")),
        "NameNode RPC",
    )
    .await?;
    let http = bind(
        &args
            .http_addr
            .unwrap_or_else(|| config.text("dfs.namenode.http-address")),
        "NameNode HTTP",
    )
    .await?;
    announce(&format!(
        "namenode rpc={} http={}",
        rpc.local_addr()?,
        http.local_addr()?
    ));
    dfs_namenode::run(rpc, http, config.namenode(dir), shutdown_signal())
        .await
        .context("NameNode failed")
}

pub async fn datanode(config: &Config, args: DatanodeArgs, namenode: &str) -> Result<()> {
    let volumes = if args.dir.is_empty() {
        config
            .text("dfs.datanode.data.dir")
            .split(',')
            .map(|s| PathBuf::from(s.trim()))
            .collect()
    } else {
        args.dir
    };
    let xfer = bind(
        &args
            .addr
            .unwrap_or_else(|| config.text("dfs.datanode.address")),
        "DataNode",
    )
    .await?;
    let http = bind(
        &args
            .http_addr
            .unwrap_or_else(|| config.text("dfs.datanode.http.address")),
        "DataNode HTTP",
    )
    .await?;
    announce(&format!(
        "datanode xfer={} http={}",
        xfer.local_addr()?,
        http.local_addr()?
    ));
    let listeners = dfs_datanode::Listeners { xfer, http };
    dfs_datanode::run(
        listeners,
        config.datanode(volumes, namenode),
        shutdown_signal(),
    )
    .await
    .context("DataNode failed")
}

/// `dfs mount`: mounts, then serves until SIGINT/SIGTERM (unmounting) or an external unmount.
pub async fn mount(config: &Config, args: MountArgs, namenode: &str) -> Result<()> {
    if !args.foreground {
        return detach(&args.mountpoint);
    }
    let client = dfs_client::DfsClient::connect(config.mount_client(namenode)).await?;
    let m = mount_at(config, client.clone(), &args.mountpoint).await?;
    announce(&format!(
        "dfs mounted at {} (NameNode {namenode})",
        args.mountpoint.display()
    ));
    let served = serve_mount(m, shutdown_signal()).await;
    // Unmounted: files unlinked while open here are closed now, not when the lease expires.
    if let Err(e) = client.release_all().await {
        tracing::warn!("could not tell the NameNode the mount's files are closed: {e}");
    }
    served
}

/// Mounts `client`'s cluster at `dir` (created if missing).
async fn mount_at(
    config: &Config,
    client: dfs_client::DfsClient,
    dir: &std::path::Path,
) -> Result<dfs_fuse::Mount> {
    std::fs::create_dir_all(dir).with_context(|| format!("create mountpoint {}", dir.display()))?;
    let (dir, opts) = (dir.to_path_buf(), config.fuse());
    let rt = tokio::runtime::Handle::current();
    Ok(tokio::task::spawn_blocking(move || dfs_fuse::mount(client, rt, &dir, opts)).await??)
}

/// Serves until `stop` resolves (then unmounts) or the mount disappears from outside.
async fn serve_mount(
    m: dfs_fuse::Mount,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                if !m.is_mounted() {
                    tracing::info!("{} was unmounted", m.path().display());
                    return Ok(());
                }
            }
        }
    }
    tokio::task::spawn_blocking(move || m.unmount()).await??;
    Ok(())
}

/// Runs `dfs ... mount --foreground` as a detached child and returns once it has mounted, or
/// with the child's own error when it could not.
fn detach(mountpoint: &std::path::Path) -> Result<()> {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let log = std::env::temp_dir().join(format!("dfs-mount-{}.log", std::process::id()));
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    args.push("--foreground".into());
    let mut child =
        std::process::Command::new(std::env::current_exe().context("find the dfs binary")?)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(
                std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?,
            )
            .process_group(0)
            .spawn()
            .context("start the mount process")?;
    let out = child.stdout.take().context("mount process stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    if line.contains("mounted at") {
        println!(
            "{} (pid {}, log {})",
            line.trim_end(),
            child.id(),
            log.display()
        );
        return Ok(());
    }
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let reason = text
        .lines()
        .rev()
        .find(|l| l.starts_with("dfs: "))
        .map(|l| l.trim_start_matches("dfs: ").to_string());
    bail!(
        "{}",
        reason.unwrap_or_else(|| format!(
            "could not mount {} (see {})",
            mountpoint.display(),
            log.display()
        ))
    )
}

/// A NameNode and `n` DataNodes in this process, stopped together on Ctrl-C or SIGTERM.
pub async fn up(config: &Config, args: UpArgs) -> Result<()> {
    if args.datanodes == 0 {
        bail!("--datanodes must be at least 1");
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let rpc = bind(&config.text("dfs.namenode.rpc-address"), "NameNode RPC").await?;
    let http = bind(&config.text("dfs.namenode.http-address"), "NameNode HTTP").await?;
    let nn_addr = rpc.local_addr()?.to_string();
    let http_addr = http.local_addr()?.to_string();
    let mut tasks = tokio::task::JoinSet::new();
    let nn_config = config.namenode(args.dir.join("namenode"));
    let nn_stop = stopped();
    tasks.spawn(async move {
        dfs_namenode::run(rpc, http, nn_config, nn_stop)
            .await
            .context("NameNode failed")
    });
    let mut dn_addrs = Vec::new();
    for i in 0..args.datanodes {
        let xfer = bind("127.0.0.1:0", "DataNode").await?;
        let http = bind("127.0.0.1:0", "DataNode HTTP").await?;
        dn_addrs.push(format!(
            "{} (http {})",
            xfer.local_addr()?,
            http.local_addr()?
        ));
        let listeners = dfs_datanode::Listeners { xfer, http };
        let dn_config =
            config.datanode(vec![args.dir.join(format!("datanode-{}", i + 1))], &nn_addr);
        let dn_stop = stopped();
        tasks.spawn(async move {
            dfs_datanode::run(listeners, dn_config, dn_stop)
                .await
                .context("DataNode failed")
        });
    }
    let mounted = match &args.mount {
        Some(dir) => {
            let client = connect_when_ready(config, &nn_addr).await?;
            Some(mount_at(config, client, dir).await?)
        }
        None => None,
    };
    announce(&format!(
        "dfs is up: NameNode rpc={nn_addr} web UI http://{http_addr}/, {} DataNodes at {}, data in {}{}\n\
         try: dfs --namenode {nn_addr} ls /      (Ctrl-C stops the cluster)",
        args.datanodes,
        dn_addrs.join(" "),
        args.dir.display(),
        args.mount.as_ref().map(|m| format!(", mounted at {}", m.display())).unwrap_or_default(),
    ));
    let mut failure = None;
    let node_failed = async {
        match tasks.join_next().await {
            Some(r) => r
                .context("a node panicked")
                .and_then(|r| r)
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("a node stopped unexpectedly")),
            None => anyhow::anyhow!("no node is running"),
        }
    };
    tokio::select! {
        r = async {
            match mounted {
                Some(m) => serve_mount(m, shutdown_signal()).await,
                None => { shutdown_signal().await; Ok(()) }
            }
        } => { if let Err(e) = r { failure = Some(e); } }
        e = node_failed => { failure = Some(e); }
    }
    let _ = stop_tx.send(true);
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r.context("a node panicked").and_then(|r| r) {
            failure.get_or_insert(e);
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
