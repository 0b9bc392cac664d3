//! An edit-log segment replayed onto an empty namespace, as a restarting NameNode does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dfs_namenode::fuzzing::edit_segment(data);
});
