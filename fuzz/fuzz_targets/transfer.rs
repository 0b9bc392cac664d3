//! A data-transfer connection as a DataNode reads it: the op frame, then packets, each
//! verified against its checksums.
#![no_main]

use std::sync::OnceLock;

use dfs_proto::frame::read_frame;
use dfs_proto::packet::read_packet;
use dfs_proto::pb::OpRequest;
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size the packets are read with (1..=256 and 512).
    let Some((&b, mut rest)) = data.split_first() else {
        return;
    };
    let bpc = if b == 0 { 512 } else { u32::from(b) };
    runtime().block_on(async {
        let _ = read_frame::<_, OpRequest>(&mut rest).await;
        while let Ok(p) = read_packet(&mut rest, bpc).await {
            let _ = p.verify(bpc);
            if p.header.last_packet {
                break;
            }
        }
    });
});
