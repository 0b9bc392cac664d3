//! A session of ClientProtocol and DatanodeProtocol requests, each decoded from its wire bytes
//! and served by the NameNode's handlers over a fresh namespace, as gRPC delivers them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dfs_namenode::fuzzing::rpc_session(data).expect("a scratch NameNode starts");
});
