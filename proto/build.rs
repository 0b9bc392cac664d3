//! Generates the prost types and tonic services from `proto/dfs.proto` with protox, so the build
//! needs no system `protoc`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/dfs.proto");
    let fds = protox::compile(["proto/dfs.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
