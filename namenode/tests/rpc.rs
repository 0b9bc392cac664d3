//! End-to-end tests: `dfs_namenode::run` on 127.0.0.1:0 with a temporary directory, driven by
//! the generated tonic clients, with "DataNodes" played by the test through DatanodeProtocol.

use std::path::Path;
use std::time::Duration;

use dfs_namenode::Config;
use dfs_proto::error_kind::{ERROR_KIND_KEY, USER_KEY};
use dfs_proto::pb;
use dfs_proto::pb::client_protocol_client::ClientProtocolClient;
use dfs_proto::pb::datanode_protocol_client::DatanodeProtocolClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::Request;

struct Nn {
    rpc: String,
    http: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<dfs_namenode::Result<()>>,
}

impl Nn {
    async fn start(dir: &Path, tweak: impl FnOnce(&mut Config)) -> Nn {
        let rpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rpc_addr = rpc.local_addr().unwrap();
        let http_addr = http.local_addr().unwrap();
        let mut cfg = Config {
            dir: dir.to_path_buf(),
            safemode_extension: Duration::ZERO,
            ..Config::default()
        };
        tweak(&mut cfg);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(dfs_namenode::run(rpc, http, cfg, async move {
            let _ = rx.await;
        }));
        Nn {
            rpc: format!("http://{rpc_addr}"),
            http: http_addr,
            stop: Some(tx),
            task,
        }
    }

    async fn client(&self) -> ClientProtocolClient<Channel> {
        ClientProtocolClient::connect(self.rpc.clone())
            .await
            .unwrap()
    }

    async fn dn_client(&self) -> DatanodeProtocolClient<Channel> {
        DatanodeProtocolClient::connect(self.rpc.clone())
            .await
            .unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("namenode did not stop")
            .unwrap()
            .unwrap();
    }
}

fn as_user<T>(msg: T, user: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(USER_KEY, user.parse().unwrap());
    r
}

fn dn_id(uuid: &str, port: u32) -> pb::DatanodeId {
    pb::DatanodeId {
        uuid: uuid.into(),
        host: "127.0.0.1".into(),
        xfer_port: port,
    }
}

fn storage() -> pb::StorageReport {
    pb::StorageReport {
        capacity: 1 << 40,
        dfs_used: 0,
        remaining: 1 << 40,
        num_volumes: 1,
        failed_volumes: 0,
    }
}

async fn register(dn: &mut DatanodeProtocolClient<Channel>, uuid: &str, port: u32) -> String {
    dn.register(pb::RegisterRequest {
        id: Some(dn_id(uuid, port)),
        storage: Some(storage()),
    })
    .await
    .unwrap()
    .into_inner()
    .cluster_id
}

async fn heartbeat(dn: &mut DatanodeProtocolClient<Channel>, uuid: &str) -> pb::HeartbeatResponse {
    dn.heartbeat(pb::HeartbeatRequest {
        uuid: uuid.into(),
        storage: Some(storage()),
        xceivers: 0,
    })
    .await
    .unwrap()
    .into_inner()
}

async fn received(dn: &mut DatanodeProtocolClient<Channel>, uuid: &str, b: pb::ExtendedBlock) {
    dn.block_received_and_deleted(pb::BlockReceivedAndDeletedRequest {
        uuid: uuid.into(),
        blocks: vec![pb::ReceivedDeletedBlock {
            block: Some(b),
            status: pb::ReceivedDeletedStatus::Received as i32,
        }],
    })
    .await
    .unwrap();
}

/// create → AddBlock → blockReceived on every target → Complete. Returns the block.
async fn write_file(
    c: &mut ClientProtocolClient<Channel>,
    dn: &mut DatanodeProtocolClient<Channel>,
    path: &str,
    replication: u32,
    len: u64,
) -> pb::ExtendedBlock {
    c.create(as_user(
        pb::CreateRequest {
            path: path.into(),
            permission: Some(0o644),
            client_name: "writer".into(),
            overwrite: false,
            create_parent: true,
            replication,
            block_size: 1 << 20,
            ..Default::default()
        },
        "root",
    ))
    .await
    .unwrap();
    let lb = c
        .add_block(pb::AddBlockRequest {
            path: path.into(),
            client_name: "writer".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .block
        .unwrap();
    let mut b = lb.block.unwrap();
    b.num_bytes = len;
    for l in &lb.locations {
        received(dn, &l.id.as_ref().unwrap().uuid, b).await;
    }
    let done = c
        .complete(pb::CompleteRequest {
            path: path.into(),
            client_name: "writer".into(),
            last: Some(b),
            file_id: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .completed;
    assert!(done);
    b
}

async fn locations(c: &mut ClientProtocolClient<Channel>, path: &str) -> pb::LocatedBlocks {
    c.get_block_locations(as_user(
        pb::GetBlockLocationsRequest {
            path: path.into(),
            offset: 0,
            length: 0,
            client_host: String::new(),
            ..Default::default()
        },
        "root",
    ))
    .await
    .unwrap()
    .into_inner()
    .locations
    .unwrap()
}

#[tokio::test]
async fn write_then_restart_restores_everything() {
    let dir = tempfile::tempdir().unwrap();
    let nn = Nn::start(dir.path(), |_| {}).await;
    let mut c = nn.client().await;
    let mut dn = nn.dn_client().await;
    let cluster = register(&mut dn, "dn-1", 9001).await;
    assert!(cluster.starts_with("CID-"));
    register(&mut dn, "dn-2", 9002).await;
    let b = write_file(&mut c, &mut dn, "/data/a.txt", 2, 700).await;
    let before = locations(&mut c, "/data/a.txt").await;
    assert_eq!(before.file_length, 700);
    assert_eq!(before.blocks[0].locations.len(), 2);
    let info_before = c
        .get_file_info(as_user(
            pb::GetFileInfoRequest {
                path: "/data/a.txt".into(),
            },
            "root",
        ))
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    nn.stop().await;

    // A second run on the same directory: same cluster, same file, same block ids.
    let nn = Nn::start(dir.path(), |_| {}).await;
    let mut c = nn.client().await;
    let mut dn = nn.dn_client().await;
    let info = c
        .get_file_info(as_user(
            pb::GetFileInfoRequest {
                path: "/data/a.txt".into(),
            },
            "root",
        ))
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(info, info_before);
    // The block map is empty until the DataNodes come back; they must re-register.
    assert!(heartbeat(&mut dn, "dn-1").await.reregister);
    let safe = c
        .safe_mode(pb::SafeModeRequest {
            action: pb::SafeModeAction::SafemodeGet as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(safe.on, "{}", safe.status);
    assert_eq!(register(&mut dn, "dn-1", 9001).await, cluster);
    dn.block_report(pb::BlockReportRequest {
        uuid: "dn-1".into(),
        replicas: vec![pb::ReplicaReport {
            block: Some(b),
            state: pb::ReplicaState::Finalized as i32,
        }],
    })
    .await
    .unwrap();
    let after = locations(&mut c, "/data/a.txt").await;
    assert_eq!(after.file_length, 700);
    assert_eq!(after.blocks[0].block, Some(b));
    assert_eq!(after.blocks[0].locations.len(), 1);
    let safe = c
        .safe_mode(pb::SafeModeRequest {
            action: pb::SafeModeAction::SafemodeGet as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!safe.on, "{}", safe.status);
    // New blocks get new ids.
    let b2 = write_file(&mut c, &mut dn, "/data/b.txt", 1, 1).await;
    assert!(b2.block_id > b.block_id);
    nn.stop().await;
}

#[tokio::test]
async fn second_writer_gets_lease_conflict_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let nn = Nn::start(dir.path(), |_| {}).await;
    let mut c = nn.client().await;
    let create = |client: &str, overwrite: bool| pb::CreateRequest {
        path: "/f".into(),
        permission: Some(0o644),
        client_name: client.into(),
        overwrite,
        create_parent: false,
        replication: 1,
        block_size: 0,
        ..Default::default()
    };
    c.create(as_user(create("c1", false), "alice_is_root_here"))
        .await
        .unwrap_err();
    c.create(as_user(create("c1", false), "root"))
        .await
        .unwrap();
    for e in [
        c.create(as_user(create("c2", true), "root"))
            .await
            .unwrap_err(),
        c.append(as_user(
            pb::AppendRequest {
                path: "/f".into(),
                client_name: "c2".into(),
            },
            "root",
        ))
        .await
        .unwrap_err(),
    ] {
        assert_eq!(
            e.metadata().get(ERROR_KIND_KEY).unwrap().to_str().unwrap(),
            "LeaseConflict"
        );
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        assert!(e.message().contains("c1"), "{}", e.message());
    }
    // Other kinds map to their codes too.
    let e = c
        .mkdirs(as_user(
            pb::MkdirsRequest {
                path: "relative".into(),
                permission: None,
                create_parent: false,
                ..Default::default()
            },
            "root",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        e.metadata().get(ERROR_KIND_KEY).unwrap().to_str().unwrap(),
        "InvalidPath"
    );
    let e = c
        .get_listing(as_user(
            pb::GetListingRequest {
                path: "/missing".into(),
                ..Default::default()
            },
            "root",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    // Anonymous callers are "nobody": no write access to the root.
    let e = c
        .mkdirs(pb::MkdirsRequest {
            path: "/x".into(),
            permission: None,
            create_parent: false,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(e.message().contains("nobody"), "{}", e.message());
    nn.stop().await;
}

#[tokio::test]
async fn dead_datanode_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let nn = Nn::start(dir.path(), |c| {
        c.dead_interval = Duration::from_millis(1500);
        c.replication_check_interval = Duration::from_millis(100);
    })
    .await;
    let mut c = nn.client().await;
    let mut dn = nn.dn_client().await;
    for (i, u) in ["dn-1", "dn-2", "dn-3"].iter().enumerate() {
        register(&mut dn, u, 9001 + i as u32).await;
    }
    let b = write_file(&mut c, &mut dn, "/f", 2, 10).await;
    let holders: Vec<String> = locations(&mut c, "/f").await.blocks[0]
        .locations
        .iter()
        .map(|l| l.id.as_ref().unwrap().uuid.clone())
        .collect();
    assert_eq!(holders.len(), 2);
    let (dead, survivor) = (holders[0].clone(), holders[1].clone());
    let spare = ["dn-1", "dn-2", "dn-3"]
        .into_iter()
        .find(|u| !holders.iter().any(|h| h == u))
        .unwrap();
    // Keep the others alive; the dead one goes silent.
    let mut transfer = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        heartbeat(&mut dn, spare).await;
        let resp = heartbeat(&mut dn, &survivor).await;
        for cmd in resp.commands {
            if let Some(pb::datanode_command::Command::Transfer(t)) = cmd.command {
                transfer = Some(t);
            }
        }
        if transfer.is_some() {
            break;
        }
    }
    let t = transfer.expect("no TransferBlockCommand for the under-replicated block");
    assert_eq!(t.block, Some(b));
    assert_eq!(t.targets.len(), 1);
    assert_eq!(t.targets[0].uuid, spare);
    let locs = locations(&mut c, "/f").await;
    let uuids: Vec<&str> = locs.blocks[0]
        .locations
        .iter()
        .map(|l| l.id.as_ref().unwrap().uuid.as_str())
        .collect();
    assert_eq!(uuids, vec![survivor.as_str()]);
    let report = c
        .get_datanode_report(pb::GetDatanodeReportRequest {})
        .await
        .unwrap()
        .into_inner();
    let d = report
        .datanodes
        .iter()
        .find(|d| d.id.as_ref().unwrap().uuid == dead)
        .unwrap();
    assert!(!d.alive);
    // The HTTP status tells the same story.
    let mut s = tokio::net::TcpStream::connect(nn.http).await.unwrap();
    s.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    let body = resp.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["live_datanodes"], 2);
    assert_eq!(v["dead_datanodes"], 1);
    assert_eq!(v["files"], 1);
    assert_eq!(v["datanodes"].as_array().unwrap().len(), 3);
    let mut s = tokio::net::TcpStream::connect(nn.http).await.unwrap();
    s.write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
    nn.stop().await;
}

#[tokio::test]
async fn second_namenode_on_same_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let nn = Nn::start(dir.path(), |_| {}).await;
    // Make sure the first one is up (it holds the lock once it answers).
    nn.client()
        .await
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap();
    let other = Nn::start(dir.path(), |_| {}).await;
    let res = tokio::time::timeout(Duration::from_secs(10), other.task)
        .await
        .unwrap()
        .unwrap();
    assert!(res.is_err());
    nn.stop().await;
}

/// `fsimage_*` and `edits_*` files in the metadata directory, as (images, segments) txids.
fn metadata_files(dir: &Path) -> (Vec<u64>, Vec<u64>) {
    let mut images = Vec::new();
    let mut segments = Vec::new();
    for e in std::fs::read_dir(dir.join("current")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if let Some(t) = name.strip_prefix("fsimage_") {
            images.push(t.parse::<u64>().unwrap());
        } else if let Some(t) = name.strip_prefix("edits_") {
            segments.push(t.parse::<u64>().unwrap());
        }
    }
    images.sort_unstable();
    segments.sort_unstable();
    (images, segments)
}

async fn mkdirs(c: &mut ClientProtocolClient<Channel>, names: std::ops::Range<u32>) {
    for i in names {
        c.mkdirs(as_user(
            pb::MkdirsRequest {
                path: format!("/d{i}"),
                permission: None,
                create_parent: false,
                ..Default::default()
            },
            "root",
        ))
        .await
        .unwrap();
    }
}

/// Polls the metadata directory until `image` exists.
async fn wait_for_image(dir: &Path, image: u64) -> (Vec<u64>, Vec<u64>) {
    for _ in 0..100 {
        let files = metadata_files(dir);
        if files.0.contains(&image) {
            return files;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no checkpoint at txid {image}: {:?}", metadata_files(dir));
}

#[tokio::test]
async fn checkpoints_by_txn_count_and_at_shutdown_then_old_segments_go() {
    let dir = tempfile::tempdir().unwrap();
    let nn = Nn::start(dir.path(), |c| c.checkpoint_txns = 5).await;
    let mut c = nn.client().await;
    // Formatting wrote image 0; edits start at 1, where startup reserved ids. The checkpointer
    // looks every second, so it can only fire once a whole batch of 5 is in.
    mkdirs(&mut c, 1..5).await;
    assert_eq!(
        wait_for_image(dir.path(), 5).await,
        (vec![0, 5], vec![1, 6])
    );
    // The next checkpoint drops image 0, and with it the segment only image 0 needed.
    mkdirs(&mut c, 5..10).await;
    assert_eq!(
        wait_for_image(dir.path(), 10).await,
        (vec![5, 10], vec![6, 11])
    );
    // Fewer edits than the count: no periodic checkpoint, but one at a clean shutdown.
    mkdirs(&mut c, 10..13).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(metadata_files(dir.path()), (vec![5, 10], vec![6, 11]));
    nn.stop().await;
    assert_eq!(metadata_files(dir.path()), (vec![10, 13], vec![11, 14]));
    // And it loads: everything is there.
    let nn = Nn::start(dir.path(), |_| {}).await;
    let mut c = nn.client().await;
    let listing = c
        .get_listing(as_user(
            pb::GetListingRequest {
                path: "/".into(),
                ..Default::default()
            },
            "root",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listing.entries.len(), 12);
    assert_eq!(listing.dir.unwrap().children_num, 12);
    nn.stop().await;
}

#[tokio::test]
async fn checkpoints_by_period() {
    let dir = tempfile::tempdir().unwrap();
    let nn = Nn::start(dir.path(), |c| {
        c.checkpoint_period = Duration::from_secs(1);
    })
    .await;
    let mut c = nn.client().await;
    // Txid 1 reserved ids at startup, txid 2 is the mkdir: both are in long before a second.
    mkdirs(&mut c, 0..1).await;
    assert_eq!(
        wait_for_image(dir.path(), 2).await,
        (vec![0, 2], vec![1, 3])
    );
    nn.stop().await;
    // Nothing new since: shutdown writes no checkpoint.
    assert_eq!(metadata_files(dir.path()), (vec![0, 2], vec![1, 3]));
}

#[tokio::test]
async fn absurd_datanode_numbers_are_refused_or_saturate_and_never_poison_the_namenode() {
    let dir = tempfile::tempdir().unwrap();
    let nn = Nn::start(dir.path(), |_| {}).await;
    let mut c = nn.client().await;
    let mut dn = nn.dn_client().await;
    let huge = pb::StorageReport {
        capacity: u64::MAX,
        dfs_used: u64::MAX,
        remaining: u64::MAX,
        num_volumes: 1,
        failed_volumes: 0,
    };
    for (uuid, port) in [("dn-1", 9001), ("dn-2", 9002)] {
        dn.register(pb::RegisterRequest {
            id: Some(dn_id(uuid, port)),
            storage: Some(huge),
        })
        .await
        .unwrap();
    }
    // Two of them would overflow a sum: the totals saturate.
    let stats = c
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            stats.capacity,
            stats.dfs_used,
            stats.remaining,
            stats.live_datanodes
        ),
        (u64::MAX, u64::MAX, u64::MAX, 2)
    );
    // Numbers that contradict each other are refused with a reason.
    for bad in [
        pb::StorageReport {
            remaining: 2,
            capacity: 1,
            ..huge
        },
        pb::StorageReport {
            num_volumes: 1,
            failed_volumes: 2,
            ..huge
        },
    ] {
        let e = dn
            .heartbeat(pb::HeartbeatRequest {
                uuid: "dn-1".into(),
                storage: Some(bad),
                xceivers: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());
        assert!(e.message().contains("storage report"), "{}", e.message());
    }
    // Every later RPC still works.
    mkdirs(&mut c, 0..1).await;
    c.get_stats(pb::GetStatsRequest {}).await.unwrap();
    nn.stop().await;
}

#[tokio::test]
async fn an_absent_permission_takes_the_default_and_zero_is_a_real_mode() {
    let dir = tempfile::tempdir().unwrap();
    let nn = Nn::start(dir.path(), |_| {}).await;
    let mut c = nn.client().await;
    let mode = |c: &mut ClientProtocolClient<Channel>, path: &str| {
        let mut c = c.clone();
        let path = path.to_string();
        async move {
            c.get_file_info(as_user(pb::GetFileInfoRequest { path }, "root"))
                .await
                .unwrap()
                .into_inner()
                .status
                .unwrap()
                .permission
        }
    };
    for (path, permission) in [
        ("/default", None),
        ("/zero", Some(0)),
        ("/750", Some(0o750)),
    ] {
        c.mkdirs(as_user(
            pb::MkdirsRequest {
                path: path.into(),
                permission,
                create_parent: false,
                ..Default::default()
            },
            "root",
        ))
        .await
        .unwrap();
        let file = format!("{path}/f");
        c.create(as_user(
            pb::CreateRequest {
                path: file.clone(),
                permission: permission.map(|p| p & 0o666),
                client_name: "w".into(),
                replication: 1,
                ..Default::default()
            },
            "root",
        ))
        .await
        .unwrap();
        let (dir_mode, file_mode) = (mode(&mut c, path).await, mode(&mut c, &file).await);
        match permission {
            None => assert_eq!((dir_mode, file_mode), (0o755, 0o644)),
            Some(p) => assert_eq!((dir_mode, file_mode), (p, p & 0o666)),
        }
    }
    nn.stop().await;
}

#[tokio::test]
async fn complete_waits_for_the_last_blocks_first_report() {
    let dir = tempfile::tempdir().unwrap();
    let nn = Nn::start(dir.path(), |_| {}).await;
    let mut c = nn.client().await;
    let mut dn = nn.dn_client().await;
    register(&mut dn, "dn-1", 9001).await;
    heartbeat(&mut dn, "dn-1").await;
    for path in ["/reported", "/never"] {
        c.create(as_user(
            pb::CreateRequest {
                path: path.into(),
                permission: Some(0o644),
                client_name: "writer".into(),
                replication: 1,
                block_size: 1 << 20,
                ..Default::default()
            },
            "root",
        ))
        .await
        .unwrap();
    }
    let add = |path: &str| pb::AddBlockRequest {
        path: path.into(),
        client_name: "writer".into(),
        ..Default::default()
    };
    let block = |r: tonic::Response<pb::AddBlockResponse>| {
        let mut b = r.into_inner().block.unwrap().block.unwrap();
        b.num_bytes = 10;
        b
    };
    let b = block(c.add_block(add("/reported")).await.unwrap());
    let complete = |path: &str, b| pb::CompleteRequest {
        path: path.into(),
        client_name: "writer".into(),
        last: Some(b),
        file_id: 0,
    };
    // The replica is reported 300 ms after Complete was sent: the answer waits for it.
    let mut reporter = dn.clone();
    let report = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        received(&mut reporter, "dn-1", b).await;
    });
    let started = std::time::Instant::now();
    let done = c.complete(complete("/reported", b)).await.unwrap();
    assert!(
        done.into_inner().completed,
        "completed once the report came"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    report.await.unwrap();
    // No report at all: "not yet", after a bounded wait (the client asks again).
    let b = block(c.add_block(add("/never")).await.unwrap());
    let started = std::time::Instant::now();
    let done = c.complete(complete("/never", b)).await.unwrap();
    assert!(!done.into_inner().completed);
    assert!(started.elapsed() < Duration::from_secs(10));
    nn.stop().await;
}
