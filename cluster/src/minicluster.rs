//! [`MiniCluster`]: a real cluster of child processes (`dfs namenode`, `dfs datanode`) on
//! 127.0.0.1 with ephemeral ports in a temporary directory, for end-to-end tests and benchmarks.
//! Nodes can be stopped (SIGTERM), killed (SIGKILL) and restarted on the same ports and
//! directories; dropping the cluster kills every child and removes the directory, also when a
//! test fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// Builds a [`MiniCluster`]; every interval defaults to something short so tests run in seconds.
pub struct MiniClusterBuilder {
    bin: PathBuf,
    datanodes: usize,
    volumes: usize,
    conf: Vec<(String, String)>,
}

impl MiniClusterBuilder {
    pub fn datanodes(mut self, n: usize) -> Self {
        self.datanodes = n;
        self
    }
    /// Volume directories per DataNode.
    pub fn volumes(mut self, n: usize) -> Self {
        self.volumes = n.max(1);
        self
    }
    pub fn block_size(self, bytes: u64) -> Self {
        self.conf("dfs.blocksize", &bytes.to_string())
    }
    pub fn replication(self, r: u32) -> Self {
        self.conf("dfs.replication", &r.to_string())
    }
    /// Any configuration key, passed to every node and client as `-D key=value`.
    pub fn conf(mut self, key: &str, value: &str) -> Self {
        self.conf.retain(|(k, _)| k != key);
        self.conf.push((key.to_string(), value.to_string()));
        self
    }

    pub fn start(self) -> Result<MiniCluster> {
        let dir = tempfile::Builder::new()
            .prefix("dfs-minicluster-")
            .tempdir()?;
        fs::create_dir_all(dir.path().join("logs"))?;
        let mut c = MiniCluster {
            bin: self.bin,
            conf: self.conf,
            namenode: Node::new("namenode", dir.path()),
            datanodes: Vec::new(),
            volumes: self.volumes,
            nn_addr: String::new(),
            http_addr: String::new(),
            dir,
        };
        c.start_namenode_at("127.0.0.1:0", "127.0.0.1:0")?;
        for _ in 0..self.datanodes {
            c.add_datanode_unchecked()?;
        }
        c.wait_for_live_datanodes(self.datanodes, Duration::from_secs(30))?;
        Ok(c)
    }
}

/// A running test cluster. See the module docs.
pub struct MiniCluster {
    bin: PathBuf,
    conf: Vec<(String, String)>,
    namenode: Node,
    datanodes: Vec<Node>,
    volumes: usize,
    nn_addr: String,
    http_addr: String,
    // Last, so it is removed after the children are gone.
    dir: tempfile::TempDir,
}

/// One child process and how to start it again.
struct Node {
    name: String,
    child: Option<Child>,
    args: Vec<String>,
    out: PathBuf,
    log: PathBuf,
    /// The address announced on stdout, reused on restart.
    addr: String,
    /// A DataNode's HTTP address, likewise.
    http: String,
}

impl Node {
    fn new(name: &str, dir: &Path) -> Node {
        Node {
            name: name.to_string(),
            child: None,
            args: Vec::new(),
            out: dir.join("logs").join(format!("{name}.out")),
            log: dir.join("logs").join(format!("{name}.log")),
            addr: String::new(),
            http: String::new(),
        }
    }

    fn spawn(&mut self, bin: &Path) -> Result<()> {
        let out = fs::File::create(&self.out)?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(bin)
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("DFS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {} ({})", self.name, bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits for the child's announcement line on stdout and returns it.
    fn announcement(&mut self, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(text) = fs::read_to_string(&self.out) {
                if let Some(line) = text.lines().next().filter(|_| text.contains('\n')) {
                    return Ok(line.to_string());
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("{} exited with {status}: {}", self.name, tail(&self.log));
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not start within {timeout:?}: {}",
                    self.name,
                    tail(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn signal(&mut self, sig: libc::c_int) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on our own child's pid; at worst it fails with ESRCH.
            unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        }
    }

    /// SIGKILL, then reap.
    fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    fn stop(&mut self, grace: Duration) -> Result<()> {
        self.signal(libc::SIGTERM);
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = c.try_wait()? {
                if !status.success() {
                    bail!(
                        "{} exited with {status} on SIGTERM: {}",
                        self.name,
                        tail(&self.log)
                    );
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        bail!("{} did not stop within {grace:?} of SIGTERM", self.name)
    }
}

/// The last lines of a log, for error messages.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The value of the `name` field (`rpc=`, `http=` ...) in a node's announcement line.
fn announced(line: &str, name: &str) -> Result<String> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no {name} in the announcement {line:?}"))
}

impl MiniCluster {
    /// A builder for a cluster run from the `dfs` binary at `bin` (in tests:
    /// `env!("CARGO_BIN_EXE_dfs")`).
    pub fn builder(bin: impl Into<PathBuf>) -> MiniClusterBuilder {
        MiniClusterBuilder {
            bin: bin.into(),
            datanodes: 3,
            volumes: 1,
            conf: vec![
                ("dfs.heartbeat.interval".into(), "500ms".into()),
                ("dfs.namenode.datanode.dead.interval".into(), "5s".into()),
                ("dfs.namenode.replication.interval".into(), "500ms".into()),
                ("dfs.namenode.safemode.extension".into(), "0s".into()),
                ("dfs.client.socket-timeout".into(), "10s".into()),
                ("dfs.client.connect-timeout".into(), "5s".into()),
            ],
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn namenode_addr(&self) -> &str {
        &self.nn_addr
    }
    pub fn http_addr(&self) -> &str {
        &self.http_addr
    }
    pub fn num_datanodes(&self) -> usize {
        self.datanodes.len()
    }
    /// `host:port` of DataNode `i`'s data-transfer server.
    pub fn datanode_addr(&self, i: usize) -> &str {
        &self.datanodes[i].addr
    }
    /// `host:port` of DataNode `i`'s HTTP server (`/metrics`).
    pub fn datanode_http_addr(&self, i: usize) -> &str {
        &self.datanodes[i].http
    }
    /// DataNode `i`'s volume directories.
    pub fn datanode_volumes(&self, i: usize) -> Vec<PathBuf> {
        (0..self.volumes)
            .map(|v| {
                self.dir
                    .path()
                    .join(format!("datanode-{i}"))
                    .join(format!("vol{v}"))
            })
            .collect()
    }
    /// The log file of the NameNode (`None`) or DataNode `i`.
    pub fn log_path(&self, datanode: Option<usize>) -> &Path {
        match datanode {
            None => &self.namenode.log,
            Some(i) => &self.datanodes[i].log,
        }
    }

    /// `-D key=value` for every configured key, as the nodes were given.
    pub fn defines(&self) -> Vec<String> {
        self.conf
            .iter()
            .flat_map(|(k, v)| ["-D".to_string(), format!("{k}={v}")])
            .collect()
    }

    /// Client settings for this cluster (its block size, replication and timeouts).
    pub fn client_config(&self) -> dfs_client::ClientConfig {
        let overrides: Vec<String> = self.conf.iter().map(|(k, v)| format!("{k}={v}")).collect();
        crate::config::Config::load(None, &overrides)
            .expect("the cluster's own configuration is valid")
            .client(&self.nn_addr)
    }

    /// A blocking client connected to this cluster.
    pub fn client(&self) -> Result<dfs_client::blocking::DfsClient> {
        Ok(dfs_client::blocking::DfsClient::connect(
            self.client_config(),
        )?)
    }

    /// A `dfs` command line aimed at this cluster: add the subcommand and run it.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(self.defines()).arg("--namenode").arg(&self.nn_addr);
        c
    }

    fn start_namenode_at(&mut self, rpc: &str, http: &str) -> Result<()> {
        let mut args = self.defines();
        args.extend([
            "namenode".into(),
            "--dir".into(),
            self.dir.path().join("namenode").display().to_string(),
            "--addr".into(),
            rpc.into(),
            "--http-addr".into(),
            http.into(),
        ]);
        self.namenode.args = args;
        self.namenode.spawn(&self.bin)?;
        let line = self.namenode.announcement(Duration::from_secs(30))?;
        // "namenode rpc=HOST:PORT http=HOST:PORT"
        self.nn_addr = announced(&line, "rpc=")?;
        self.http_addr = announced(&line, "http=")?;
        self.namenode.addr = self.nn_addr.clone();
        Ok(())
    }

    /// Starts one more DataNode and returns its index (without waiting for it to register).
    fn add_datanode_unchecked(&mut self) -> Result<usize> {
        let i = self.datanodes.len();
        let mut node = Node::new(&format!("datanode-{i}"), self.dir.path());
        let mut args = self.defines();
        args.extend(["--namenode".into(), self.nn_addr.clone(), "datanode".into()]);
        for v in 0..self.volumes {
            args.push("--dir".into());
            args.push(
                self.dir
                    .path()
                    .join(format!("datanode-{i}"))
                    .join(format!("vol{v}"))
                    .display()
                    .to_string(),
            );
        }
        let ephemeral = "127.0.0.1:0".to_string();
        args.extend(["--addr".into(), ephemeral.clone()]);
        args.extend(["--http-addr".into(), ephemeral]);
        node.args = args;
        node.spawn(&self.bin)?;
        let line = node.announcement(Duration::from_secs(30))?;
        // "datanode xfer=HOST:PORT http=HOST:PORT"
        node.addr = announced(&line, "xfer=")?;
        node.http = announced(&line, "http=")?;
        // Restarts reuse the ports, so the NameNode sees the same address again.
        let n = node.args.len();
        node.args[n - 3] = node.addr.clone();
        node.args[n - 1] = node.http.clone();
        self.datanodes.push(node);
        Ok(i)
    }

    /// Starts one more DataNode and waits until the NameNode counts it live.
    pub fn add_datanode(&mut self) -> Result<usize> {
        let before = self.live_datanodes()?;
        let i = self.add_datanode_unchecked()?;
        self.wait_for_live_datanodes(before + 1, Duration::from_secs(30))?;
        Ok(i)
    }

    /// Live DataNodes as the NameNode reports them.
    pub fn live_datanodes(&self) -> Result<usize> {
        let client = self.client()?;
        let report = client.block_on(client.as_async().datanode_report())?;
        Ok(report.iter().filter(|d| d.alive).count())
    }

    pub fn wait_for_live_datanodes(&self, n: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.live_datanodes() {
                Ok(live) if live >= n => return Ok(()),
                Ok(live) if Instant::now() > deadline => {
                    bail!("only {live} of {n} DataNodes live after {timeout:?}")
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context("waiting for DataNodes"))
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Waits until the NameNode is out of safe mode and takes mutations. After a restart it
    /// waits for block reports first, so live DataNodes alone do not mean it is writable.
    pub fn wait_for_safe_mode_off(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let on = self
                .client()
                .and_then(|c| Ok(c.block_on(c.as_async().stats())?.safe_mode));
            match on {
                Ok(false) => return Ok(()),
                Ok(true) if Instant::now() > deadline => {
                    bail!("the NameNode is still in safe mode after {timeout:?}")
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context("waiting for safe mode to end"))
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    pub fn kill_namenode(&mut self) {
        self.namenode.kill();
    }
    pub fn stop_namenode(&mut self) -> Result<()> {
        self.namenode.stop(Duration::from_secs(30))
    }
    /// Starts the NameNode again on the same ports and directory (after a kill or stop).
    pub fn restart_namenode(&mut self) -> Result<()> {
        if self.namenode.is_running() {
            self.stop_namenode()?;
        }
        let (rpc, http) = (self.nn_addr.clone(), self.http_addr.clone());
        self.start_namenode_at(&rpc, &http)
    }
    pub fn namenode_running(&mut self) -> bool {
        self.namenode.is_running()
    }

    pub fn kill_datanode(&mut self, i: usize) {
        self.datanodes[i].kill();
    }
    pub fn stop_datanode(&mut self, i: usize) -> Result<()> {
        self.datanodes[i].stop(Duration::from_secs(30))
    }
    /// Freezes DataNode `i` (SIGSTOP): it holds its connections but answers nothing, as a node
    /// stalled on a slow disk or swapping does.
    pub fn pause_datanode(&mut self, i: usize) {
        self.datanodes[i].signal(libc::SIGSTOP);
    }
    /// Lets a paused DataNode run again (SIGCONT).
    pub fn resume_datanode(&mut self, i: usize) {
        self.datanodes[i].signal(libc::SIGCONT);
    }
    /// Starts DataNode `i` again on the same port and volumes.
    pub fn restart_datanode(&mut self, i: usize) -> Result<()> {
        if self.datanodes[i].is_running() {
            self.stop_datanode(i)?;
        }
        let bin = self.bin.clone();
        let node = &mut self.datanodes[i];
        node.spawn(&bin)?;
        node.announcement(Duration::from_secs(30))?;
        Ok(())
    }

    /// Paths of every stored block file (`blk_<id>`, not its `.meta`) of `block_id`, on any
    /// DataNode, with the DataNode's index.
    pub fn replica_files(&self, block_id: u64) -> Vec<(usize, PathBuf)> {
        let name = format!("blk_{block_id}");
        let mut found = Vec::new();
        for i in 0..self.datanodes.len() {
            for v in self.datanode_volumes(i) {
                walk(&v, &mut |p| {
                    if p.file_name().and_then(|n| n.to_str()) == Some(name.as_str()) {
                        found.push((i, p.to_path_buf()));
                    }
                });
            }
        }
        found
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, f);
        } else {
            f(&p);
        }
    }
}

impl Drop for MiniCluster {
    fn drop(&mut self) {
        for d in &mut self.datanodes {
            d.kill();
        }
        self.namenode.kill();
        if std::thread::panicking() || std::env::var_os("DFS_KEEP_LOGS").is_some() {
            // Keep the logs of a failed test where a developer can read them.
            let keep = std::env::temp_dir().join(format!("dfs-failed-{}", std::process::id()));
            let _ = fs::create_dir_all(&keep);
            for e in fs::read_dir(self.dir.path().join("logs"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let _ = fs::copy(e.path(), keep.join(e.file_name()));
            }
            eprintln!("MiniCluster logs kept in {}", keep.display());
        }
    }
}
