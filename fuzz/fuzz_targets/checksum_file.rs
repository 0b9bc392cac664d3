//! A replica's checksum file and block file, verified as a restarting DataNode does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte says how much of the rest is the checksum file.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (meta, block) = rest.split_at(usize::from(n).min(rest.len()));
    let _ = dfs_datanode::fuzzing::checksum_file(meta, block);
});
