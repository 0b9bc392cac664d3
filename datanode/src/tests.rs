//! `run` end to end against an in-test NameNode service: registration (with retries while the
//! NameNode is down), block reports, heartbeats, incremental reports, commands, re-registration,
//! shutdown.

use std::sync::Mutex;

use bytes::Bytes;
use dfs_proto::frame::{read_frame, write_frame};
use dfs_proto::packet::{write_packet, Packet};
use dfs_proto::pb::{self, datanode_protocol_server as server};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tonic::{Request, Response, Status};

use super::*;

#[derive(Default)]
struct NnState {
    registers: Vec<pb::RegisterRequest>,
    reports: Vec<pb::BlockReportRequest>,
    heartbeats: Vec<pb::HeartbeatRequest>,
    incremental: Vec<pb::ReceivedDeletedBlock>,
    commands: Vec<pb::DatanodeCommand>,
    commits: Vec<pb::CommitBlockSynchronizationRequest>,
    reregister: bool,
}

#[derive(Clone, Default)]
struct TestNamenode(Arc<Mutex<NnState>>);

impl TestNamenode {
    fn with<T>(&self, f: impl FnOnce(&mut NnState) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }
}

#[tonic::async_trait]
impl server::DatanodeProtocol for TestNamenode {
    async fn register(
        &self,
        r: Request<pb::RegisterRequest>,
    ) -> std::result::Result<Response<pb::RegisterResponse>, Status> {
        self.with(|s| s.registers.push(r.into_inner()));
        Ok(Response::new(pb::RegisterResponse {
            cluster_id: "test-cluster".into(),
        }))
    }
    async fn heartbeat(
        &self,
        r: Request<pb::HeartbeatRequest>,
    ) -> std::result::Result<Response<pb::HeartbeatResponse>, Status> {
        Ok(Response::new(self.with(|s| {
            s.heartbeats.push(r.into_inner());
            pb::HeartbeatResponse {
                commands: std::mem::take(&mut s.commands),
                reregister: std::mem::take(&mut s.reregister),
            }
        })))
    }
    async fn block_report(
        &self,
        r: Request<pb::BlockReportRequest>,
    ) -> std::result::Result<Response<pb::BlockReportResponse>, Status> {
        self.with(|s| s.reports.push(r.into_inner()));
        Ok(Response::new(pb::BlockReportResponse::default()))
    }
    async fn block_received_and_deleted(
        &self,
        r: Request<pb::BlockReceivedAndDeletedRequest>,
    ) -> std::result::Result<Response<pb::BlockReceivedAndDeletedResponse>, Status> {
        self.with(|s| s.incremental.extend(r.into_inner().blocks));
        Ok(Response::new(Default::default()))
    }
    async fn report_bad_blocks(
        &self,
        _r: Request<pb::DnReportBadBlocksRequest>,
    ) -> std::result::Result<Response<pb::DnReportBadBlocksResponse>, Status> {
        Ok(Response::new(Default::default()))
    }
    async fn commit_block_synchronization(
        &self,
        r: Request<pb::CommitBlockSynchronizationRequest>,
    ) -> std::result::Result<Response<pb::CommitBlockSynchronizationResponse>, Status> {
        self.with(|s| s.commits.push(r.into_inner()));
        Ok(Response::new(Default::default()))
    }
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A DeleteBlocksCommand for one replica.
fn delete_command(block: pb::ExtendedBlock) -> pb::DatanodeCommand {
    pb::DatanodeCommand {
        command: Some(pb::datanode_command::Command::Delete(
            pb::DeleteBlocksCommand {
                blocks: vec![block],
            },
        )),
    }
}

type Conn = (
    BufReader<tokio::net::tcp::OwnedReadHalf>,
    BufWriter<tokio::net::tcp::OwnedWriteHalf>,
);

/// Writes `data` as one block to a single DataNode and waits for every ack.
async fn write_block(addr: SocketAddr, block: pb::ExtendedBlock, data: &[u8]) {
    let (mut r, mut w) = write_first_packet(addr, block, data).await;
    write_packet(&mut w, &Packet::last(1, data.len() as u64, false))
        .await
        .unwrap();
    w.flush().await.unwrap();
    let ack: pb::PipelineAck = read_frame(&mut r).await.unwrap();
    assert_eq!(
        (ack.seqno, ack.replies),
        (1, vec![pb::Status::Success as i32])
    );
}

/// Opens a write pipeline to a single DataNode and sends `data` as its first packet, waiting
/// for its ack.
async fn write_first_packet(addr: SocketAddr, block: pb::ExtendedBlock, data: &[u8]) -> Conn {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (r, w) = s.into_split();
    let (mut r, mut w) = (BufReader::new(r), BufWriter::new(w));
    let op = pb::OpRequest {
        op: Some(pb::op_request::Op::WriteBlock(pb::WriteBlockOp {
            block: Some(block),
            targets: vec![],
            stage: pb::Stage::Create as i32,
            min_bytes_rcvd: 0,
            bytes_per_checksum: 512,
            client_name: "c".into(),
            source: None,
        })),
    };
    write_frame(&mut w, &op).await.unwrap();
    w.flush().await.unwrap();
    let resp: pb::WriteBlockResponse = read_frame(&mut r).await.unwrap();
    assert_eq!(resp.status, pb::Status::Success as i32, "{}", resp.message);
    write_packet(
        &mut w,
        &Packet::new(0, 0, Bytes::copy_from_slice(data), 512, false),
    )
    .await
    .unwrap();
    w.flush().await.unwrap();
    let ack: pb::PipelineAck = read_frame(&mut r).await.unwrap();
    assert_eq!(
        (ack.seqno, ack.replies),
        (0, vec![pb::Status::Success as i32])
    );
    (r, w)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datanode_lifecycle_against_a_namenode() {
    let tmp = tempfile::tempdir().unwrap();
    // The NameNode's port, not yet served: the DataNode must retry its registration.
    let nn_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let xfer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let xfer_addr = xfer.local_addr().unwrap();
    let config = Config {
        volumes: vec![tmp.path().join("a"), tmp.path().join("b")],
        namenode: nn_addr.to_string(),
        heartbeat_interval: Duration::from_millis(100),
        socket_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let listeners = Listeners {
        xfer,
        http: TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let dn = tokio::spawn(run(listeners, config, async {
        let _ = stop_rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let nn = TestNamenode::default();
    let listener = TcpListener::bind(nn_addr).await.unwrap();
    let (nn_stop_tx, nn_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let nn_server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(server::DatanodeProtocolServer::new(nn.clone()))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = nn_stop_rx.await;
                },
            ),
    );

    wait_until("registration and first block report", || {
        nn.with(|s| !s.reports.is_empty())
    })
    .await;
    let (id, uuid) = nn.with(|s| {
        let id = s.registers[0].id.clone().unwrap();
        assert_eq!(s.reports[0].replicas.len(), 0);
        assert_eq!(s.reports[0].uuid, id.uuid);
        (id.clone(), id.uuid)
    });
    assert_eq!(
        (id.host.as_str(), id.xfer_port),
        ("127.0.0.1", u32::from(xfer_addr.port()))
    );
    wait_until("heartbeats", || nn.with(|s| s.heartbeats.len() >= 2)).await;
    nn.with(|s| {
        let hb = s.heartbeats.last().unwrap();
        assert_eq!(hb.uuid, uuid);
        let st = hb.storage.unwrap();
        assert_eq!((st.num_volumes, st.failed_volumes), (2, 0));
        assert!(st.capacity > 0 && st.remaining <= st.capacity);
    });

    // A block written to the DataNode is reported received promptly.
    let block = pb::ExtendedBlock {
        block_id: 1234,
        generation_stamp: 5,
        num_bytes: 0,
    };
    let data = vec![42u8; 3000];
    write_block(xfer_addr, block, &data).await;
    let finalized = pb::ExtendedBlock {
        num_bytes: 3000,
        ..block
    };
    wait_until("the received report", || {
        nn.with(|s| !s.incremental.is_empty())
    })
    .await;
    nn.with(|s| {
        assert_eq!(
            s.incremental,
            vec![pb::ReceivedDeletedBlock {
                block: Some(finalized),
                status: pb::ReceivedDeletedStatus::Received as i32,
            }]
        )
    });

    // Re-registration on request comes with a full report holding the block.
    nn.with(|s| s.reregister = true);
    wait_until("re-registration", || {
        nn.with(|s| s.registers.len() == 2 && s.reports.len() == 2)
    })
    .await;
    nn.with(|s| {
        assert_eq!(
            s.reports[1].replicas,
            vec![pb::ReplicaReport {
                block: Some(finalized),
                state: pb::ReplicaState::Finalized as i32,
            }]
        )
    });

    // ReplicaLength answers only for the stamp asked (or, being written, a newer one).
    for (gs, status) in [(5, pb::Status::Success), (4, pb::Status::ErrorInvalid)] {
        let asked = pb::ExtendedBlock {
            generation_stamp: gs,
            ..finalized
        };
        let s = tokio::net::TcpStream::connect(xfer_addr).await.unwrap();
        let (r, w) = s.into_split();
        let (mut r, mut w) = (BufReader::new(r), BufWriter::new(w));
        let op = pb::OpRequest {
            op: Some(pb::op_request::Op::ReplicaLength(pb::ReplicaLengthOp {
                block: Some(asked),
            })),
        };
        write_frame(&mut w, &op).await.unwrap();
        w.flush().await.unwrap();
        let resp: pb::ReplicaLengthResponse = read_frame(&mut r).await.unwrap();
        assert_eq!(resp.status, status as i32, "stamp {gs}: {}", resp.message);
    }

    // Lease recovery of a block no DataNode has: the primary tells the NameNode to drop it.
    let never_written = pb::ExtendedBlock {
        block_id: 999,
        generation_stamp: 7,
        num_bytes: 0,
    };
    nn.with(|s| {
        s.commands.push(pb::DatanodeCommand {
            command: Some(pb::datanode_command::Command::Recover(
                pb::RecoverBlockCommand {
                    block: Some(never_written),
                    new_generation_stamp: 8,
                    replicas: vec![id.clone()],
                },
            )),
        })
    });
    wait_until("the recovery's commit", || {
        nn.with(|s| !s.commits.is_empty())
    })
    .await;
    nn.with(|s| {
        let c = &s.commits[0];
        assert_eq!(c.block, Some(never_written));
        assert!(c.delete_block && c.close_file, "{c:?}");
        assert_eq!(c.new_generation_stamp, 8);
    });

    // A delete command removes the replica and is reported back.
    nn.with(|s| s.commands.push(delete_command(finalized)));
    wait_until("the deleted report", || {
        nn.with(|s| s.incremental.len() == 2)
    })
    .await;
    nn.with(|s| {
        assert_eq!(
            s.incremental[1].status,
            pb::ReceivedDeletedStatus::Deleted as i32
        );
        assert_eq!(s.incremental[1].block, Some(finalized));
    });

    // A write whose client goes away mid-block leaves an unfinished replica, reported at once
    // (the NameNode deletes it if its block is gone); a delete naming an older stamp is refused
    // and the replica reported again.
    let unfinished = pb::ExtendedBlock {
        block_id: 1235,
        ..block
    };
    drop(write_first_packet(xfer_addr, unfinished, &data).await);
    let receiving = pb::ReceivedDeletedBlock {
        block: Some(pb::ExtendedBlock {
            num_bytes: 3000,
            ..unfinished
        }),
        status: pb::ReceivedDeletedStatus::Receiving as i32,
    };
    wait_until("the unfinished replica's report", || {
        nn.with(|s| s.incremental.len() == 3)
    })
    .await;
    nn.with(|s| assert_eq!(s.incremental[2], receiving));
    let older = pb::ExtendedBlock {
        generation_stamp: 4,
        ..unfinished
    };
    nn.with(|s| s.commands.push(delete_command(older)));
    wait_until("the refused delete's report", || {
        nn.with(|s| s.incremental.len() == 4)
    })
    .await;
    nn.with(|s| assert_eq!(s.incremental[3], receiving));

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), dn)
        .await
        .expect("run returns after shutdown")
        .unwrap()
        .unwrap();
    // Nothing listens on the data-transfer port any more.
    assert!(tokio::net::TcpStream::connect(xfer_addr).await.is_err());
    let _ = nn_stop_tx.send(());
    nn_server.await.unwrap().unwrap();
}
