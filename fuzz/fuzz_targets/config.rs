//! A configuration file (TOML) applied over the defaults, as every `dfs` role loads it.
#![no_main]

use dfs_cluster::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut c = Config::load(None, &[]).expect("the defaults load");
    if c.set_toml(text).is_ok() {
        // Every value that was accepted must convert where the roles read it.
        let _ = c.client("127.0.0.1:8020");
        let _ = c.namenode("/nonexistent/name".into());
        let _ = c.datanode(vec!["/nonexistent/data".into()], "127.0.0.1:8020");
    }
});
