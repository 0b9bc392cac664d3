//! Data-transfer tests over 127.0.0.1 without a NameNode: servers started directly on a store,
//! driven by a small hand-written client.

use std::net::SocketAddr;
use std::os::unix::fs::FileExt;

use bytes::Bytes;
use dfs_proto::packet::{read_packet, write_packet, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;

use super::*;
use crate::shutdown::{self, Trigger};
use crate::types::{BadReplica, ReplicaEvent};

const BPC: u32 = 512;
const T: Duration = Duration::from_secs(10);

struct Node {
    addr: SocketAddr,
    ctx: Arc<XferContext>,
    events: UnboundedReceiver<ReplicaEvent>,
    bad: UnboundedReceiver<BadReplica>,
    trigger: Trigger,
    server: tokio::task::JoinHandle<()>,
    _tmp: tempfile::TempDir,
}

impl Node {
    async fn start() -> Node {
        let tmp = tempfile::tempdir().unwrap();
        let (etx, events) = mpsc::unbounded_channel();
        let storage = Storage::open(&[tmp.path().join("v")], 0, etx).unwrap();
        let (btx, bad) = mpsc::unbounded_channel();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ctx = Arc::new(XferContext {
            me: Peer {
                uuid: storage.uuid().to_string(),
                host: "127.0.0.1".into(),
                port: addr.port(),
            },
            storage,
            socket_timeout: T,
            sync_on_close: false,
            active: AtomicUsize::new(0),
            bad_blocks: btx,
            metrics: crate::metrics::Metrics::new(),
        });
        let (trigger, down) = shutdown::channel();
        let server = tokio::spawn(serve(listener, ctx.clone(), 16, down));
        Node {
            addr,
            ctx,
            events,
            bad,
            trigger,
            server,
            _tmp: tmp,
        }
    }

    fn id(&self) -> pb::DatanodeId {
        (&self.ctx.me).into()
    }

    async fn stop(self) {
        self.trigger.fire();
        self.server.await.unwrap();
    }
}

use crate::types::Peer;

fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

async fn connect(node: &Node) -> (Reader, Writer) {
    let s = TcpStream::connect(node.addr).await.unwrap();
    let (r, w) = s.into_split();
    (BufReader::new(r), BufWriter::new(w))
}

async fn request<M: Message + Default>(node: &Node, op: Op) -> (M, Reader, Writer) {
    let (mut r, mut w) = connect(node).await;
    send(&mut w, &OpRequest { op: Some(op) }, T).await.unwrap();
    let resp: M = read_frame(&mut r).await.unwrap();
    (resp, r, w)
}

fn write_op(block: Block, targets: &[&Node], stage: pb::Stage, min_bytes: u64) -> Op {
    Op::WriteBlock(pb::WriteBlockOp {
        block: Some(block.into()),
        targets: targets.iter().map(|n| n.id()).collect(),
        stage: stage as i32,
        min_bytes_rcvd: min_bytes,
        bytes_per_checksum: BPC,
        client_name: "test-client".into(),
        source: None,
    })
}

/// Pieces of `data` as a client sends them after an hflush: 100 bytes, then 1000 (starting
/// mid-chunk), then a 37-byte synced partial, then 64 KiB packets.
fn pieces(total: usize) -> Vec<(usize, usize, bool)> {
    let mut v = vec![(0, 100, false), (100, 1100, false), (1100, 1137, true)];
    let mut pos = 1137;
    while pos < total {
        let end = (pos + 65536).min(total);
        v.push((pos, end, false));
        pos = end;
    }
    v
}

/// Streams packets for `pieces` of `data` (plus the last packet if `finish`) without waiting,
/// then collects one ack per packet.
async fn stream(
    r: &mut Reader,
    w: &mut Writer,
    base: u64,
    data: &[u8],
    pieces: &[(usize, usize, bool)],
    finish: bool,
) -> Vec<pb::PipelineAck> {
    let mut seqno = 0;
    for &(a, b, sync) in pieces {
        let p = Packet::new(
            seqno,
            base + a as u64,
            Bytes::copy_from_slice(&data[a..b]),
            BPC,
            sync,
        );
        write_packet(w, &p).await.unwrap();
        seqno += 1;
    }
    if finish {
        let end = base + pieces.last().map_or(0, |p| p.1) as u64;
        write_packet(w, &Packet::last(seqno, end, false))
            .await
            .unwrap();
        seqno += 1;
    }
    w.flush().await.unwrap();
    let mut acks = Vec::new();
    for _ in 0..seqno {
        acks.push(read_frame::<_, pb::PipelineAck>(r).await.unwrap());
    }
    acks
}

/// Reads `[offset, offset + length)` and checks every packet's checksums as a client does.
async fn read(
    node: &Node,
    block: Block,
    offset: u64,
    length: u64,
) -> (pb::ReadBlockResponse, Vec<u8>) {
    let op = Op::ReadBlock(pb::ReadBlockOp {
        block: Some(block.into()),
        offset,
        length,
        client_name: "reader".into(),
    });
    let (resp, mut r, _w): (pb::ReadBlockResponse, _, _) = request(node, op).await;
    let mut out = Vec::new();
    if resp.status != pb::Status::Success as i32 {
        return (resp, out);
    }
    let mut expect = resp.chunk_offset;
    loop {
        let p = read_packet(&mut r, resp.bytes_per_checksum).await.unwrap();
        if p.header.last_packet {
            assert!(p.data.is_empty());
            break;
        }
        assert_eq!(p.header.offset_in_block, expect, "packets are contiguous");
        p.verify(resp.bytes_per_checksum).expect("checksums verify");
        expect = p.end_offset();
        out.extend_from_slice(&p.data);
    }
    (resp, out)
}

async fn checksum_of(node: &Node, block: Block) -> pb::BlockChecksumResponse {
    let op = Op::BlockChecksum(pb::BlockChecksumOp {
        block: Some(block.into()),
    });
    request(node, op).await.0
}

async fn replica_len(node: &Node, block: Block) -> pb::ReplicaLengthResponse {
    let op = Op::ReplicaLength(pb::ReplicaLengthOp {
        block: Some(block.into()),
    });
    request(node, op).await.0
}

fn ok() -> i32 {
    pb::Status::Success as i32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_pipeline_write_then_read_everywhere() {
    let (mut a, mut b, mut c) = (
        Node::start().await,
        Node::start().await,
        Node::start().await,
    );
    let content = data(300_000, 1);
    let block = Block::new(1 << 30, 1001, 0);

    let (resp, mut r, mut w): (pb::WriteBlockResponse, _, _) =
        request(&a, write_op(block, &[&b, &c], pb::Stage::Create, 0)).await;
    assert_eq!(resp.status, ok(), "{}", resp.message);
    let pieces = pieces(content.len());
    let acks = stream(&mut r, &mut w, 0, &content, &pieces, true).await;
    assert_eq!(acks.len(), pieces.len() + 1);
    for (i, ack) in acks.iter().enumerate() {
        assert_eq!(ack.seqno, i as i64);
        assert_eq!(ack.replies, vec![ok(); 3], "{}", ack.message);
    }
    let done = Block::new(block.id.0, 1001, content.len() as u64);
    for n in [&mut a, &mut b, &mut c] {
        assert_eq!(n.events.try_recv().unwrap(), ReplicaEvent::Received(done));
        let v = n.ctx.storage.get(block.id).unwrap();
        assert_eq!((v.state, v.block), (ReplicaState::Finalized, done));
    }

    let len = content.len() as u64;
    let expected_crc = crc32c::crc32c(&dfs_proto::checksum::encode(&dfs_proto::checksum::compute(
        0, &content, BPC,
    )));
    for n in [&a, &b, &c] {
        for offset in [0, 513, len - 1] {
            let (resp, got) = read(n, done, offset, len - offset).await;
            assert_eq!(resp.status, ok(), "{}", resp.message);
            assert_eq!(resp.chunk_offset, offset / 512 * 512);
            assert_eq!(resp.replica_length, len);
            assert_eq!(resp.bytes_per_checksum, BPC);
            assert_eq!(got, &content[resp.chunk_offset as usize..]);
        }
        // A range ending mid-chunk: the partial tail piece gets its own CRC.
        let (resp, got) = read(n, done, 513, 100).await;
        assert_eq!(got, &content[512..613]);
        assert_eq!(resp.status, ok());
        // At the end: success with no data. Past the end: invalid.
        let (resp, got) = read(n, done, len, 10).await;
        assert_eq!((resp.status, got.len()), (ok(), 0));
        let (resp, _) = read(n, done, len + 1, 10).await;
        assert_eq!(resp.status, pb::Status::ErrorInvalid as i32);
        // Wrong generation stamp, unknown block.
        let (resp, _) = read(n, Block::new(block.id.0, 1000, 0), 0, 1).await;
        assert_eq!(resp.status, pb::Status::ErrorInvalid as i32);
        let (resp, _) = read(n, Block::new(5, 1, 0), 0, 1).await;
        assert_eq!(resp.status, pb::Status::ErrorNotFound as i32);

        let sum = checksum_of(n, done).await;
        assert_eq!(sum.status, ok());
        assert_eq!((sum.num_bytes, sum.bytes_per_checksum), (len, BPC));
        assert_eq!(sum.crc_of_crcs, expected_crc);
        let rl = replica_len(n, done).await;
        assert_eq!((rl.visible_length, rl.generation_stamp), (len, 1001));
        assert_eq!(rl.state, pb::ReplicaState::Finalized as i32);
    }
    // Writing the same block again is refused.
    let (resp, _, _): (pb::WriteBlockResponse, _, _) =
        request(&a, write_op(block, &[], pb::Stage::Create, 0)).await;
    assert_eq!(resp.status, pb::Status::ErrorExists as i32);
    // Every connection ended, so the xceiver count drops back to zero.
    let deadline = tokio::time::Instant::now() + T;
    while a.ctx.active.load(Ordering::Relaxed) != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "connections stay counted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for n in [a, b, c] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbw_replica_is_readable_up_to_its_acked_length_then_appendable() {
    let (mut a, b) = (Node::start().await, Node::start().await);
    let content = data(70_000, 2);
    let block = Block::new(42, 7, 0);
    let (resp, mut r, mut w): (pb::WriteBlockResponse, _, _) =
        request(&a, write_op(block, &[&b], pb::Stage::Create, 0)).await;
    assert_eq!(resp.status, ok());
    // Write 1137 bytes and stop there: an open file after hflush.
    let acks = stream(&mut r, &mut w, 0, &content, &pieces(1137), false).await;
    assert!(acks.iter().all(|a| a.replies == vec![ok(); 2]));
    for n in [&a, &b] {
        let rl = replica_len(n, block).await;
        assert_eq!(
            (rl.visible_length, rl.state),
            (1137, pb::ReplicaState::Rbw as i32)
        );
        let (resp, got) = read(n, block, 1000, 1000).await;
        assert_eq!(resp.replica_length, 1137);
        assert_eq!(got, &content[512..1137]);
    }
    // Keep writing on the same connection, then close the block.
    let rest: Vec<(usize, usize, bool)> = vec![(1137, 40_000, false), (40_000, 70_000, false)];
    let mut seqno = 3;
    for &(x, y, _) in &rest {
        let p = Packet::new(
            seqno,
            x as u64,
            Bytes::copy_from_slice(&content[x..y]),
            BPC,
            false,
        );
        write_packet(&mut w, &p).await.unwrap();
        seqno += 1;
    }
    write_packet(&mut w, &Packet::last(seqno, 70_000, false))
        .await
        .unwrap();
    w.flush().await.unwrap();
    for s in 3..=seqno {
        let ack: pb::PipelineAck = read_frame(&mut r).await.unwrap();
        assert_eq!((ack.seqno, ack.replies.clone()), (s, vec![ok(); 2]));
    }
    let done = Block::new(42, 7, 70_000);
    assert_eq!(a.events.try_recv().unwrap(), ReplicaEvent::Received(done));
    drop((r, w));

    // Append: reopen with a new stamp and add a partial chunk's worth, then more.
    let more = data(5_000, 3);
    let appended = Block::new(42, 8, 0);
    let (resp, r, w): (pb::WriteBlockResponse, _, _) =
        request(&a, write_op(appended, &[&b], pb::Stage::Append, 69_999)).await;
    assert_eq!(
        resp.status,
        pb::Status::ErrorInvalid as i32,
        "length must match"
    );
    drop((r, w));
    let (resp, mut r, mut w): (pb::WriteBlockResponse, _, _) =
        request(&a, write_op(appended, &[&b], pb::Stage::Append, 70_000)).await;
    assert_eq!(resp.status, ok(), "{}", resp.message);
    let acks = stream(
        &mut r,
        &mut w,
        70_000,
        &more,
        &[(0, 300, false), (300, 5_000, false)],
        true,
    )
    .await;
    assert!(acks.iter().all(|a| a.replies == vec![ok(); 2]), "{acks:?}");
    let mut all = content.clone();
    all.extend(&more);
    let done = Block::new(42, 8, 75_000);
    for n in [&a, &b] {
        let (_, got) = read(n, done, 0, u64::MAX).await;
        assert_eq!(got, all);
        assert_eq!(
            checksum_of(n, done).await.crc_of_crcs,
            checksum_of(&a, done).await.crc_of_crcs
        );
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_closes_only_its_connection() {
    let node = Node::start().await;
    for garbage in [
        vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],          // absurd length
        vec![0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff], // undecodable body
        data(5000, 9),                                  // noise
        vec![0, 0, 0, 0],                               // an empty request: no op
    ] {
        let mut s = TcpStream::connect(node.addr).await.unwrap();
        s.write_all(&garbage).await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(T, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "the server closes without answering");
    }
    // A write op with an invalid bytes_per_checksum is refused with a status.
    let mut op = write_op(Block::new(1, 1, 0), &[], pb::Stage::Create, 0);
    if let Op::WriteBlock(w) = &mut op {
        w.bytes_per_checksum = 65537;
    }
    let (resp, _, _): (pb::WriteBlockResponse, _, _) = request(&node, op).await;
    assert_eq!(resp.status, pb::Status::ErrorInvalid as i32);
    // Still serving.
    let rl = replica_len(&node, Block::new(1, 1, 0)).await;
    assert_eq!(rl.status, pb::Status::ErrorNotFound as i32);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_offset_near_the_largest_u64_closes_only_its_connection() {
    let node = Node::start().await;
    let block = Block::new(5, 1, 0);
    let (resp, mut r, mut w): (pb::WriteBlockResponse, _, _) =
        request(&node, write_op(block, &[], pb::Stage::Create, 0)).await;
    assert_eq!(resp.status, ok());
    // offset + data_len overflows u64: the checksum count cannot even be computed.
    let header = pb::PacketHeader {
        seqno: 0,
        offset_in_block: u64::MAX - 10,
        data_len: 100,
        last_packet: false,
        sync: false,
    };
    write_frame(&mut w, &header).await.unwrap();
    w.write_all(&[0u8; 104]).await.unwrap();
    w.flush().await.unwrap();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(T, r.read_to_end(&mut rest))
        .await
        .expect("the connection is closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "nothing is acknowledged: {rest:?}");
    // The replica holds nothing and the server goes on serving.
    assert_eq!(node.ctx.storage.get(block.id).unwrap().bytes_on_disk, 0);
    let rl = replica_len(&node, block).await;
    assert_eq!((rl.status, rl.visible_length), (ok(), 0));
    let other = Block::new(6, 1, 0);
    let content = data(3000, 6);
    let (resp, mut r, mut w): (pb::WriteBlockResponse, _, _) =
        request(&node, write_op(other, &[], pb::Stage::Create, 0)).await;
    assert_eq!(resp.status, ok());
    let acks = stream(&mut r, &mut w, 0, &content, &[(0, 3000, false)], true).await;
    assert!(acks.iter().all(|a| a.replies == vec![ok()]));
    assert_eq!(read(&node, other, 0, 3000).await.1, content);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_packets_are_rejected_and_not_stored() {
    let node = Node::start().await;
    let block = Block::new(3, 1, 0);
    let content = data(2000, 4);
    let (resp, mut r, mut w): (pb::WriteBlockResponse, _, _) =
        request(&node, write_op(block, &[], pb::Stage::Create, 0)).await;
    assert_eq!(resp.status, ok());
    let good = Packet::new(0, 0, Bytes::copy_from_slice(&content[..1000]), BPC, false);
    let mut bad = Packet::new(
        1,
        1000,
        Bytes::copy_from_slice(&content[1000..]),
        BPC,
        false,
    );
    bad.checksums[1] ^= 0x10;
    write_packet(&mut w, &good).await.unwrap();
    write_packet(&mut w, &bad).await.unwrap();
    w.flush().await.unwrap();
    let a0: pb::PipelineAck = read_frame(&mut r).await.unwrap();
    let a1: pb::PipelineAck = read_frame(&mut r).await.unwrap();
    assert_eq!(a0.replies, vec![ok()]);
    assert_eq!(
        (a1.seqno, a1.replies.clone()),
        (1, vec![pb::Status::ErrorChecksum as i32])
    );
    // The connection is closed after the error ack.
    assert!(read_frame::<_, pb::PipelineAck>(&mut r).await.is_err());
    let v = node.ctx.storage.get(block.id).unwrap();
    assert_eq!(
        (v.bytes_on_disk, v.block.num_bytes, v.state),
        (1000, 1000, ReplicaState::Rbw)
    );
    let (_, got) = read(&node, block, 0, 5000).await;
    assert_eq!(got, &content[..1000]);

    // A packet at the wrong offset is refused too.
    let (resp, mut r, mut w): (pb::WriteBlockResponse, _, _) = request(
        &node,
        write_op(Block::new(4, 1, 0), &[], pb::Stage::Create, 0),
    )
    .await;
    assert_eq!(resp.status, ok());
    let p = Packet::new(0, 512, Bytes::copy_from_slice(&content[..10]), BPC, false);
    write_packet(&mut w, &p).await.unwrap();
    w.flush().await.unwrap();
    let ack: pb::PipelineAck = read_frame(&mut r).await.unwrap();
    assert_eq!(ack.replies, vec![pb::Status::ErrorInvalid as i32]);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_downstream_is_named_as_first_bad_link() {
    let (a, b) = (Node::start().await, Node::start().await);
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let dead_id = pb::DatanodeId {
        uuid: "dead".into(),
        host: "127.0.0.1".into(),
        xfer_port: u32::from(dead.port()),
    };
    let block = Block::new(11, 1, 0);
    let mut op = write_op(block, &[&b], pb::Stage::Create, 0);
    if let Op::WriteBlock(w) = &mut op {
        w.targets.push(dead_id);
    }
    let (resp, _, _): (pb::WriteBlockResponse, _, _) = request(&a, op).await;
    assert_eq!(resp.status, pb::Status::Error as i32);
    assert_eq!(resp.first_bad_link, dead.to_string(), "{}", resp.message);
    // The half-built pipeline leaves nothing behind.
    assert!(a.ctx.storage.get(block.id).is_none());
    assert!(b.ctx.storage.get(block.id).is_none());
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_command_replicates_and_recovery_agrees_on_a_length() {
    let (mut a, b, c) = (
        Node::start().await,
        Node::start().await,
        Node::start().await,
    );
    let content = data(150_000, 5);
    let block = Block::new(77, 3, 0);
    let (resp, mut r, mut w): (pb::WriteBlockResponse, _, _) =
        request(&a, write_op(block, &[], pb::Stage::Create, 0)).await;
    assert_eq!(resp.status, ok());
    stream(&mut r, &mut w, 0, &content, &pieces(content.len()), true).await;
    let done = Block::new(77, 3, content.len() as u64);

    let cmd = pb::TransferBlockCommand {
        block: Some(done.into()),
        targets: vec![b.id(), c.id()],
    };
    crate::commands::transfer_block(&a.ctx, &cmd, T)
        .await
        .unwrap();
    let want = checksum_of(&a, done).await.crc_of_crcs;
    for n in [&b, &c] {
        let v = n.ctx.storage.get(done.id).unwrap();
        assert_eq!((v.state, v.block), (ReplicaState::Finalized, done));
        assert_eq!(checksum_of(n, done).await.crc_of_crcs, want);
    }

    // A corrupt source replica: the target refuses it and the source reports itself bad.
    let path = a._tmp.path().join("v/current/finalized/subdir00/blk_77");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all_at(b"\x00\x01", 100_000)
        .unwrap();
    let mut d = Node::start().await;
    let cmd = pb::TransferBlockCommand {
        block: Some(done.into()),
        targets: vec![d.id()],
    };
    assert!(crate::commands::transfer_block(&a.ctx, &cmd, T)
        .await
        .is_err());
    assert_eq!(a.bad.recv().await.unwrap(), BadReplica::Local(done));
    // The target reports the source (reportRemoteBadBlock) and keeps nothing of the copy.
    assert_eq!(
        d.bad.recv().await.unwrap(),
        BadReplica::Remote {
            block: done,
            datanode: a.ctx.me.uuid.clone()
        }
    );
    assert!(
        d.ctx.storage.get(done.id).is_none(),
        "the corrupt copy stays"
    );
    assert!(d.ctx.storage.block_report().is_empty());
    // The next copy, from an intact replica, finds nothing in its way.
    let cmd = pb::TransferBlockCommand {
        block: Some(done.into()),
        targets: vec![d.id()],
    };
    crate::commands::transfer_block(&b.ctx, &cmd, T)
        .await
        .unwrap();
    let v = d.ctx.storage.get(done.id).unwrap();
    assert_eq!((v.state, v.block), (ReplicaState::Finalized, done));

    // Lease recovery over RBW replicas of different lengths: b and c hold the block open.
    let open = Block::new(88, 5, 0);
    for (n, len) in [(&b, 5000usize), (&c, 3000)] {
        let (resp, mut r, mut w): (pb::WriteBlockResponse, _, _) =
            request(n, write_op(open, &[], pb::Stage::Create, 0)).await;
        assert_eq!(resp.status, ok());
        stream(&mut r, &mut w, 0, &content, &[(0, len, false)], false).await;
    }
    // No NameNode listens: the final commit fails, after the replicas agreed.
    let nobody = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let client = crate::namenode::NnClient::new(
        tonic::transport::Endpoint::from_shared(format!("http://{nobody}"))
            .unwrap()
            .connect_lazy(),
    );
    let cmd = pb::RecoverBlockCommand {
        block: Some(open.into()),
        new_generation_stamp: 6,
        replicas: vec![b.id(), c.id(), d.id()],
    };
    let err = crate::commands::recover_block(&b.ctx, client, &cmd, T)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rpc(_)), "{err}");
    // The longest verified prefix is kept (a minimum would cut acknowledged bytes whenever one
    // replica is damaged); c, shorter, keeps its old stamp, and the NameNode replaces it.
    let agreed = Block::new(88, 6, 5000);
    let v = b.ctx.storage.get(open.id).unwrap();
    assert_eq!((v.state, v.block), (ReplicaState::Finalized, agreed));
    let (_, got) = read(&b, agreed, 0, u64::MAX).await;
    assert_eq!(got, &content[..5000]);
    assert_eq!(c.ctx.storage.get(open.id).unwrap().block.gs.0, 5);
    for n in [a, b, c, d] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_chunk_reaches_the_reader_even_when_the_range_ends_inside_it() {
    let node = Node::start().await;
    let content = data(4096, 6);
    let block = Block::new(600, 1, 0);
    let (resp, mut r, mut w): (pb::WriteBlockResponse, _, _) =
        request(&node, write_op(block, &[], pb::Stage::Create, 0)).await;
    assert_eq!(resp.status, ok());
    stream(&mut r, &mut w, 0, &content, &[(0, 4096, false)], true).await;
    let done = Block::new(600, 1, 4096);
    // Corrupt byte 1500 (chunk 2, bytes 1024..1536) on disk.
    let path = node
        ._tmp
        .path()
        .join("v/current/finalized/subdir02/blk_600");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all_at(&[content[1500] ^ 0xff], 1500)
        .unwrap();
    for (offset, length) in [(1030, 20), (1024, 500), (0, 4096), (1100, 1000)] {
        let op = Op::ReadBlock(pb::ReadBlockOp {
            block: Some(done.into()),
            offset,
            length,
            client_name: "reader".into(),
        });
        let (resp, mut r, _w): (pb::ReadBlockResponse, _, _) = request(&node, op).await;
        assert_eq!(resp.status, ok());
        let mut failures = 0;
        loop {
            let p = read_packet(&mut r, BPC).await.unwrap();
            if p.header.last_packet {
                break;
            }
            failures += usize::from(p.verify(BPC).is_err());
        }
        assert_eq!(
            failures, 1,
            "range {offset}+{length} must expose the corrupt chunk"
        );
    }
    // A range that stops before the bad chunk reads clean.
    let (resp, got) = read(&node, done, 0, 1000).await;
    assert_eq!(resp.status, ok());
    assert_eq!(got, &content[..1000]);
    node.stop().await;
}
