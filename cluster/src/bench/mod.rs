//! `dfs bench write|read`: sequential throughput of N files of SIZE each, written or read
//! concurrently, through the same client path users take (in the spirit of Hadoop's TestDFSIO).
//! `dfs bench meta` (module `meta`): NameNode operations per second at N concurrent clients.

mod meta;

use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use dfs_client::{CreateOptions, DfsClient};

use crate::config::{parse_size, Config};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// `write` creates the files, `read` reads back what `write` left, `meta` measures the
    /// NameNode (mkdirs, create, stat, list, rename, delete).
    #[arg(value_parser = ["write", "read", "meta"])]
    pub mode: String,
    /// Bytes per file (e.g. 1G).
    #[arg(long, default_value = "1G")]
    pub size: String,
    /// Files written or read at the same time.
    #[arg(long, default_value_t = 1)]
    pub files: usize,
    /// dfs directory holding the benchmark files.
    #[arg(long, default_value = "/benchmarks/dfs-bench")]
    pub dir: String,
    /// `meta`: concurrent clients, each with its own NameNode connection.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// `meta`: operations per phase, shared out among the clients.
    #[arg(long, default_value_t = 100_000)]
    pub ops: usize,
}

pub async fn run(config: &Config, namenode: &str, args: BenchArgs) -> Result<()> {
    if args.mode == "meta" {
        return meta::run(config, namenode, &args).await;
    }
    let size = parse_size(&args.size).map_err(anyhow::Error::msg)?;
    if args.files == 0 {
        bail!("--files must be at least 1");
    }
    let client = DfsClient::connect(config.client(namenode)).await?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    if args.mode == "write" {
        client.mkdirs(&args.dir, true).await?;
    }
    for i in 0..args.files {
        let client = client.clone();
        let path = format!("{}/file_{i}", args.dir);
        let write = args.mode == "write";
        tasks.spawn(async move {
            if write {
                write_file(&client, &path, size).await
            } else {
                read_file(&client, &path).await
            }
        });
    }
    let mut bytes = 0u64;
    while let Some(r) = tasks.join_next().await {
        bytes += r??;
    }
    let secs = started.elapsed().as_secs_f64();
    let mib = bytes as f64 / (1024.0 * 1024.0);
    crate::shell::outln!(
        "{}: {} file(s), {:.0} MiB in {:.2} s: {:.1} MiB/s (replication {}, block size {})",
        args.mode,
        args.files,
        mib,
        secs,
        mib / secs,
        config.int("dfs.replication"),
        crate::shell::size(config.size("dfs.blocksize"), true)
    );
    Ok(())
}

async fn write_file(client: &DfsClient, path: &str, size: u64) -> Result<u64> {
    // Incompressible, non-repeating-per-packet data, generated once.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let buf: Vec<u8> = (0..(1 << 20) + 7)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let opts = CreateOptions {
        overwrite: true,
        ..Default::default()
    };
    let mut w = client.create(path, opts).await?;
    let mut left = size;
    let mut i = 0usize;
    while left > 0 {
        let n = left.min(1 << 20) as usize;
        let off = i % 7;
        w.write(&buf[off..off + n]).await?;
        left -= n as u64;
        i += 1;
    }
    w.close().await?;
    Ok(size)
}

async fn read_file(client: &DfsClient, path: &str) -> Result<u64> {
    let mut r = client.open(path).await?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}
