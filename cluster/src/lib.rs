//! Running dfs: configuration, the `dfs` command line, the local-cluster launcher and the
//! MiniCluster test harness.
//!
//! Module map:
//! - [`config`]: every `dfs.*` key (docs/config.md), TOML + `-D` overrides → each crate's config.
//! - [`cli`]: the clap command tree and dispatch; `src/main.rs` only calls [`cli::main`].
//! - [`roles`]: `dfs namenode`, `dfs datanode`, `dfs up`: bind, announce, call the library `run`;
//!   `dfs mount`: mount with `dfs_fuse::mount`, announce, serve until unmounted.
//! - [`shell`]: `ls`, `put`, `get`, `cat`, ... `fsck`, `admin`: the commands users type.
//! - [`bench`]: `dfs bench write|read`.
//! - [`minicluster`]: [`minicluster::MiniCluster`], real child-process clusters for tests.

pub mod bench;
pub mod cli;
pub mod config;
pub mod minicluster;
pub mod roles;
pub mod shell;

pub use minicluster::MiniCluster;
