//! `dfs bench meta`: NameNode throughput in the spirit of HDFS's NNThroughputBenchmark. N
//! clients, each with its own connection, run one phase at a time: mkdirs, create (with close),
//! stat, list, rename and delete, each on names of its own; every phase prints operations per
//! second, and the NameNode's resident memory is read after the create phase (when the namespace
//! is largest) and at the end. Durability follows `dfs.client.durable-replies`.

use std::time::Instant;

use anyhow::{bail, Result};
use dfs_client::DfsClient;
use tokio::task::JoinSet;

use super::BenchArgs;
use crate::config::Config;
use crate::shell::outln;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Mkdirs,
    Create,
    Stat,
    List,
    Rename,
    Delete,
}

const PHASES: [Phase; 6] = [
    Phase::Mkdirs,
    Phase::Create,
    Phase::Stat,
    Phase::List,
    Phase::Rename,
    Phase::Delete,
];

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Mkdirs => "mkdirs",
            Phase::Create => "create",
            Phase::Stat => "stat",
            Phase::List => "list",
            Phase::Rename => "rename",
            Phase::Delete => "delete",
        }
    }

    /// Operation `i` of the client whose directory is `dir`; returns how many operations it
    /// counts for (a listing counts the entries it returned).
    async fn run(self, c: &DfsClient, dir: &str, i: usize) -> Result<u64> {
        match self {
            Phase::Mkdirs => c.mkdirs(&format!("{dir}/d/{i}"), false).await?,
            Phase::Create => {
                let mut w = c
                    .create(&format!("{dir}/f/{i}"), Default::default())
                    .await?;
                w.close().await?;
            }
            Phase::Stat => {
                c.stat(&format!("{dir}/f/{i}")).await?;
            }
            Phase::List => return Ok(c.list(&format!("{dir}/f")).await?.len() as u64),
            Phase::Rename => {
                c.rename(&format!("{dir}/f/{i}"), &format!("{dir}/r/{i}"), false)
                    .await?
            }
            Phase::Delete => {
                c.delete(&format!("{dir}/r/{i}"), false).await?;
            }
        }
        Ok(1)
    }

    /// Operations each client runs when the phase has `per_client` of them (one listing).
    fn calls(self, per_client: usize) -> usize {
        if self == Phase::List {
            1
        } else {
            per_client
        }
    }
}

pub(super) async fn run(config: &Config, namenode: &str, args: &BenchArgs) -> Result<()> {
    if args.clients == 0 || args.ops == 0 {
        bail!("--clients and --ops must be at least 1");
    }
    let per_client = args.ops.div_ceil(args.clients);
    let cfg = config.client(namenode);
    let durable = cfg.durable_replies;
    let mut clients = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        clients.push(DfsClient::connect(cfg.clone()).await?);
    }
    let run_dir = format!("{}/meta-{}", args.dir, std::process::id());
    for (k, c) in clients.iter().enumerate() {
        for sub in ["d", "f", "r"] {
            c.mkdirs(&format!("{run_dir}/c{k}/{sub}"), true).await?;
        }
    }
    outln!(
        "meta: {} clients, {} operations per phase, durable replies {durable}",
        args.clients,
        per_client * args.clients
    );
    for phase in PHASES {
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for (k, c) in clients.iter().enumerate() {
            let (c, dir) = (c.clone(), format!("{run_dir}/c{k}"));
            tasks.spawn(async move {
                let mut n = 0;
                for i in 0..phase.calls(per_client) {
                    n += phase.run(&c, &dir, i).await?;
                }
                anyhow::Ok(n)
            });
        }
        let mut ops = 0u64;
        while let Some(r) = tasks.join_next().await {
            ops += r??;
        }
        let secs = started.elapsed().as_secs_f64();
        let unit = if phase == Phase::List {
            "entries"
        } else {
            "ops"
        };
        outln!(
            "{:<7} {:>10.0} {unit}/s  ({ops} in {secs:.2} s)",
            phase.name(),
            ops as f64 / secs
        );
        if phase == Phase::Create {
            print_rss(&clients[0], "with the files created").await?;
        }
    }
    // A closed file's hold is released in the background; a process about to exit must say so,
    // or the files deleted meanwhile stay (as orphans) until its lease expires.
    for c in &clients {
        c.release_all().await?;
    }
    clients[0].delete(&run_dir, true).await?;
    print_rss(&clients[0], "at the end").await
}

async fn print_rss(c: &DfsClient, when: &str) -> Result<()> {
    let s = c.stats().await?;
    outln!(
        "NameNode resident memory {when}: {:.1} MiB ({} files, {} directories)",
        s.namenode_rss as f64 / (1024.0 * 1024.0),
        s.files,
        s.directories
    );
    Ok(())
}
