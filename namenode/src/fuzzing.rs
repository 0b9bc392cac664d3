//! Entry points for the fuzz targets in `fuzz/` and the property tests beside them. Each feeds
//! bytes from outside (an edit-log segment, a checkpoint image, a session of RPC requests)
//! through the code the NameNode loads or serves them with. Any input must end in `Ok` or an error: never a panic, a hang or an
//! allocation without bound.
//!
//! Random bytes rarely pass a CRC32C, so each entry point also has a *framed* mode (the first
//! input byte is odd): the rest is cut into payloads, each given a valid record header, so the
//! fuzzer reaches the decoders behind the checksums.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dfs_proto::error_kind::{GROUPS_KEY, USER_KEY};
use dfs_proto::pb;
use dfs_proto::pb::client_protocol_server::ClientProtocol;
use dfs_proto::pb::datanode_protocol_server::DatanodeProtocol;
use prost::Message;
use tonic::{Request, Status};

use crate::checkpoint::{self, IMAGE_MAGIC};
use crate::editlog::{self, EditLog, EDIT_MAGIC};
use crate::fsn::{FsState, Now};
use crate::namespace::Namespace;
use crate::server::Shared;
use crate::service::Service;
use crate::{record, storage, Config};

/// Cuts `bytes` into payloads (each led by a one-byte length) and frames each as a record.
fn framed(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        record::encode(&tail[..n], &mut out);
        rest = &tail[n..];
    }
    out
}

/// Splits off the mode byte: `(framed?, rest)`.
fn mode(bytes: &[u8]) -> (bool, &[u8]) {
    match bytes.split_first() {
        Some((m, rest)) => (m & 1 == 1, rest),
        None => (false, bytes),
    }
}

/// A fresh directory under the system temporary directory, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> std::io::Result<ScratchDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("dfs-fuzz-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replays `bytes` as the only edit segment onto an empty namespace, as a restart would.
/// Returns the last txid applied.
pub fn edit_segment(bytes: &[u8]) -> crate::Result<u64> {
    let (framed_mode, rest) = mode(bytes);
    let contents = if framed_mode {
        let mut s = EDIT_MAGIC.to_vec();
        s.extend(framed(rest));
        s
    } else {
        rest.to_vec()
    };
    let dir = ScratchDir::new().map_err(|e| crate::Error::io("create a scratch dir", e))?;
    std::fs::write(dir.0.join(editlog::segment_name(1)), contents)
        .map_err(|e| crate::Error::io("write the segment", e))?;
    let mut ns = Namespace::new("root", "supergroup", 0);
    editlog::replay(&dir.0, 0, |_, op| ns.apply(&op).map(|_| ()))
}

/// Decodes `bytes` as a checkpoint image; one that decodes must survive being encoded and
/// decoded again with the same transaction id.
pub fn image(bytes: &[u8]) -> crate::Result<()> {
    let (framed_mode, rest) = mode(bytes);
    let contents = if framed_mode {
        let mut s = IMAGE_MAGIC.to_vec();
        s.extend(framed(rest));
        s.extend(crc32c::crc32c(&s).to_be_bytes());
        s
    } else {
        rest.to_vec()
    };
    let img = checkpoint::decode(&contents, "fuzzed image")?;
    let again = checkpoint::encode(&img.ns, &img.cluster_id, img.txid);
    let back = checkpoint::decode(&again, "re-encoded image")
        .unwrap_or_else(|e| panic!("a decoded image does not decode after encoding: {e}"));
    assert_eq!(back.txid, img.txid);
    Ok(())
}

/// Declares the RPCs a fuzzed session may call, in a fixed order: [`RPCS`] names them and `call`
/// decodes a payload as the request of the one chosen and calls the service's handler with it.
macro_rules! rpcs {
    ($($service:ident :: $method:ident ( $req:ident )),* $(,)?) => {
        /// Every RPC of both services, as `Service::method`, in the order sessions index them.
        pub const RPCS: &[&str] = &[$(concat!(stringify!($service), "::", stringify!($method))),*];

        async fn call(svc: &Service, rpc: usize, payload: &[u8], user: &User) -> Outcome {
            match RPCS[rpc] {
                $(concat!(stringify!($service), "::", stringify!($method)) => {
                    let msg = pb::$req::decode(payload)
                        .map_err(|e| Status::invalid_argument(e.to_string()))?;
                    <Service as $service>::$method(svc, user.request(msg)).await.map(drop)
                })*
                _ => unreachable!("an RPC index is always below RPCS.len()"),
            }
        }
    };
}

rpcs! {
    ClientProtocol::mkdirs(MkdirsRequest),
    ClientProtocol::create(CreateRequest),
    ClientProtocol::append(AppendRequest),
    ClientProtocol::add_block(AddBlockRequest),
    ClientProtocol::abandon_block(AbandonBlockRequest),
    ClientProtocol::complete(CompleteRequest),
    ClientProtocol::commit_extents(CommitExtentsRequest),
    ClientProtocol::fsync(FsyncRequest),
    ClientProtocol::update_block_for_pipeline(UpdateBlockForPipelineRequest),
    ClientProtocol::update_pipeline(UpdatePipelineRequest),
    ClientProtocol::get_additional_datanode(GetAdditionalDatanodeRequest),
    ClientProtocol::renew_lease(RenewLeaseRequest),
    ClientProtocol::recover_lease(RecoverLeaseRequest),
    ClientProtocol::get_file_info(GetFileInfoRequest),
    ClientProtocol::check_access(CheckAccessRequest),
    ClientProtocol::get_listing(GetListingRequest),
    ClientProtocol::get_block_locations(GetBlockLocationsRequest),
    ClientProtocol::rename(RenameRequest),
    ClientProtocol::delete(DeleteRequest),
    ClientProtocol::set_replication(SetReplicationRequest),
    ClientProtocol::set_permission(SetPermissionRequest),
    ClientProtocol::set_owner(SetOwnerRequest),
    ClientProtocol::set_times(SetTimesRequest),
    ClientProtocol::truncate(TruncateRequest),
    ClientProtocol::get_content_summary(GetContentSummaryRequest),
    ClientProtocol::report_bad_blocks(ReportBadBlocksRequest),
    ClientProtocol::get_stats(GetStatsRequest),
    ClientProtocol::get_datanode_report(GetDatanodeReportRequest),
    ClientProtocol::fsck(FsckRequest),
    ClientProtocol::safe_mode(SafeModeRequest),
    ClientProtocol::decommission(DecommissionRequest),
    ClientProtocol::create_symlink(CreateSymlinkRequest),
    ClientProtocol::link(LinkRequest),
    ClientProtocol::mknod(MknodRequest),
    ClientProtocol::set_x_attr(SetXAttrRequest),
    ClientProtocol::get_x_attrs(GetXAttrsRequest),
    ClientProtocol::list_x_attrs(ListXAttrsRequest),
    ClientProtocol::remove_x_attr(RemoveXAttrRequest),
    ClientProtocol::set_acl(SetAclRequest),
    ClientProtocol::modify_acl_entries(ModifyAclEntriesRequest),
    ClientProtocol::remove_acl_entries(RemoveAclEntriesRequest),
    ClientProtocol::remove_default_acl(RemoveDefaultAclRequest),
    ClientProtocol::remove_acl(RemoveAclRequest),
    ClientProtocol::get_acl_status(GetAclStatusRequest),
    ClientProtocol::release_holds(ReleaseHoldsRequest),
    DatanodeProtocol::register(RegisterRequest),
    DatanodeProtocol::heartbeat(HeartbeatRequest),
    DatanodeProtocol::block_report(BlockReportRequest),
    DatanodeProtocol::block_received_and_deleted(BlockReceivedAndDeletedRequest),
    DatanodeProtocol::report_bad_blocks(DnReportBadBlocksRequest),
    DatanodeProtocol::commit_block_synchronization(CommitBlockSynchronizationRequest),
}

/// What one call of a session answered; a payload that does not decode is `InvalidArgument`.
pub type Outcome = std::result::Result<(), Status>;

/// Who makes a call: the superuser, or an ordinary user the permission checks apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum User {
    Root,
    Alice,
}

impl User {
    fn request<T>(self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        let (user, groups) = match self {
            User::Root => ("root", "supergroup"),
            User::Alice => ("alice", "staff"),
        };
        req.metadata_mut()
            .insert(USER_KEY, user.parse().expect("ASCII"));
        req.metadata_mut()
            .insert(GROUPS_KEY, groups.parse().expect("ASCII"));
        req
    }
}

/// A call waits at most this long. Some handlers wait for DataNodes that a session has none of
/// (a Complete for its last block's first replica): the answer the client would retry on is as
/// good as a late one here, and a session stays fast.
const CALL_LIMIT: Duration = Duration::from_millis(20);

/// Encodes one call of a session: `[selector, length, payload…]`. The selector's low bit picks
/// the user; the rest, modulo [`RPCS`]'s length, the RPC. Payloads longer than 255 bytes are cut.
pub fn encode_call(rpc: &str, user: User, msg: &impl Message, out: &mut Vec<u8>) {
    let index = RPCS
        .iter()
        .position(|r| *r == rpc)
        .unwrap_or_else(|| panic!("no RPC named {rpc}"));
    let selector =
        u8::try_from(index << 1).expect("fewer than 128 RPCs") | (user == User::Alice) as u8;
    let payload = msg.encode_to_vec();
    let n = payload.len().min(255);
    out.push(selector);
    out.push(n as u8);
    out.extend_from_slice(&payload[..n]);
}

/// Runs `bytes` as a session of RPC calls (see [`encode_call`]) against a NameNode service over a
/// fresh namespace and edit log, as clients and DataNodes reach it over gRPC. Returns what each
/// call answered.
pub fn rpc_session(bytes: &[u8]) -> crate::Result<Vec<Outcome>> {
    let dir = ScratchDir::new().map_err(|e| crate::Error::io("create a scratch dir", e))?;
    let loaded = storage::load_or_format(&dir.0, "root", "supergroup", 1)?;
    let cur = storage::current_dir(&dir.0);
    let log = EditLog::open(&cur, loaded.last_txid + 1)?;
    let cfg = Config {
        dir: dir.0.clone(),
        safemode_extension: Duration::ZERO,
        ..Config::default()
    };
    let state = FsState::new(cfg, loaded.ns, loaded.cluster_id, log, Now::current());
    let svc = Service::new(Arc::new(Shared::new(
        state,
        cur,
        loaded.image_txid,
        Arc::new(crate::metrics::Metrics::new(&Default::default())),
    )));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| crate::Error::io("start a runtime", e))?;
    Ok(rt.block_on(async {
        let mut outcomes = Vec::new();
        let mut rest = bytes;
        while let [selector, len, tail @ ..] = rest {
            let n = usize::from(*len).min(tail.len());
            let (payload, after) = tail.split_at(n);
            rest = after;
            let rpc = usize::from(selector >> 1) % RPCS.len();
            let user = if selector & 1 == 1 {
                User::Alice
            } else {
                User::Root
            };
            let outcome = tokio::time::timeout(CALL_LIMIT, call(&svc, rpc, payload, &user))
                .await
                .unwrap_or_else(|_| Err(Status::deadline_exceeded("the call waited too long")));
            outcomes.push(outcome);
        }
        outcomes
    }))
}

/// A session that registers a DataNode and writes, lists, renames and deletes a file as an
/// ordinary user: the corpus's seed (fuzz/corpus/rpc/seed), from which the fuzzer reaches the
/// write path and the DataNode protocol rather than only the requests that need no state.
pub fn rpc_seed() -> Vec<u8> {
    let dn = pb::DatanodeId {
        uuid: "dn-1".into(),
        host: "127.0.0.1".into(),
        xfer_port: 9866,
    };
    let storage = pb::StorageReport {
        capacity: 1 << 40,
        remaining: 1 << 40,
        num_volumes: 1,
        ..Default::default()
    };
    let (a, r) = (User::Alice, User::Root);
    let mut s = Vec::new();
    let register = pb::RegisterRequest {
        id: Some(dn),
        storage: Some(storage),
    };
    encode_call("DatanodeProtocol::register", r, &register, &mut s);
    let heartbeat = pb::HeartbeatRequest {
        uuid: "dn-1".into(),
        storage: Some(storage),
        xceivers: 0,
    };
    encode_call("DatanodeProtocol::heartbeat", r, &heartbeat, &mut s);
    let mkdirs = pb::MkdirsRequest {
        path: "/d".into(),
        permission: Some(0o777),
        create_parent: true,
        ..Default::default()
    };
    encode_call("ClientProtocol::mkdirs", r, &mkdirs, &mut s);
    let create = pb::CreateRequest {
        path: "/d/f".into(),
        client_name: "c1".into(),
        replication: 1,
        block_size: 1 << 20,
        ..Default::default()
    };
    encode_call("ClientProtocol::create", a, &create, &mut s);
    let add_block = pb::AddBlockRequest {
        path: "/d/f".into(),
        client_name: "c1".into(),
        ..Default::default()
    };
    encode_call("ClientProtocol::add_block", a, &add_block, &mut s);
    let locations = pb::GetBlockLocationsRequest {
        path: "/d/f".into(),
        length: u64::MAX,
        ..Default::default()
    };
    encode_call("ClientProtocol::get_block_locations", a, &locations, &mut s);
    let xattr = pb::SetXAttrRequest {
        path: "/d/f".into(),
        xattr: Some(pb::XAttr {
            name: "user.k".into(),
            value: b"v".to_vec(),
        }),
        flags: 0,
    };
    encode_call("ClientProtocol::set_x_attr", a, &xattr, &mut s);
    let rename = pb::RenameRequest {
        src: "/d/f".into(),
        dst: "/d/g".into(),
        overwrite: false,
    };
    encode_call("ClientProtocol::rename", a, &rename, &mut s);
    let listing = pb::GetListingRequest {
        path: "/d".into(),
        ..Default::default()
    };
    encode_call("ClientProtocol::get_listing", a, &listing, &mut s);
    let fsck = pb::FsckRequest { path: "/".into() };
    encode_call("ClientProtocol::fsck", r, &fsck, &mut s);
    let delete = pb::DeleteRequest {
        path: "/d".into(),
        recursive: true,
        directory: None,
    };
    encode_call("ClientProtocol::delete", r, &delete, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn edit_segments_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = edit_segment(&bytes);
        }

        #[test]
        fn images_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = image(&bytes);
        }
    }

    proptest! {
        // Each session starts a namespace with its own edit log: fewer cases.
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn rpc_sessions_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
            rpc_session(&bytes).unwrap();
        }

        #[test]
        fn a_mutated_seed_session_never_panics(
            flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let mut bytes = rpc_seed();
            for (at, x) in flips {
                let n = bytes.len();
                bytes[at % n] ^= x;
            }
            rpc_session(&bytes).unwrap();
        }
    }

    #[test]
    fn the_seed_session_reaches_the_write_path() {
        let outcomes = rpc_session(&rpc_seed()).unwrap();
        assert_eq!(outcomes.len(), 11);
        for (i, o) in outcomes.iter().enumerate() {
            assert!(o.is_ok(), "call {i} of the seed: {o:?}");
        }
    }

    #[test]
    fn the_kept_seed_is_the_seed_session() {
        // fuzz/corpus/rpc/seed is rpc_seed(): after changing one, write the other with
        // `DFS_WRITE_FUZZ_SEED=1 cargo test -p dfs-namenode the_kept_seed`.
        let kept = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/rpc/seed");
        if std::env::var_os("DFS_WRITE_FUZZ_SEED").is_some() {
            std::fs::create_dir_all(kept.parent().unwrap()).unwrap();
            std::fs::write(&kept, rpc_seed()).unwrap();
        }
        assert_eq!(std::fs::read(&kept).unwrap(), rpc_seed());
    }

    #[test]
    fn a_payload_that_does_not_decode_is_an_invalid_argument() {
        // Mkdirs, field 1 (path) as a length-delimited string running past the end.
        let outcomes = rpc_session(&[0, 2, 0x0a, 0x05]).unwrap();
        assert_eq!(
            outcomes[0].as_ref().unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn framed_mode_reaches_the_decoders() {
        // A record that does not decode, and an image of one empty header record: framed, each is
        // refused for what it says, not for its checksum.
        let e = edit_segment(&[1, 1, 0xff]).unwrap_err().to_string();
        assert!(
            e.contains("a record with a valid checksum does not decode"),
            "{e}"
        );
        let e = image(&[1, 0]).unwrap_err().to_string();
        assert!(e.contains("no root inode"), "{e}");
    }
}
