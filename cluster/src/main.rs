//! The `dfs` binary: every role and command; all the work is in the `dfs_cluster` library.
fn main() -> std::process::ExitCode {
    dfs_cluster::cli::main()
}
