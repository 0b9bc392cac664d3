//! A checkpoint image decoded (and, when it decodes, encoded and decoded again).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dfs_namenode::fuzzing::image(data);
});
