//! The object_store conformance suite: object_store's own shared integration tests (its
//! `integration` feature), run against `DfsObjectStore` on a real MiniCluster and, to prove the
//! suite itself, against `object_store::memory::InMemory`; then what the suite leaves out:
//! paged listings, errors, and block locations.

mod common;

use std::sync::Arc;

use common::*;
use dfs_object_store::DfsObjectStore;
use futures::TryStreamExt;
use object_store::integration::*;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};

/// Every shared test that applies to a store without multipart-store internals or attributes;
/// `updates`: whether it does conditional updates (`PutMode::Update`), which dfs does not.
async fn suite(store: &Arc<dyn ObjectStore>, updates: bool) {
    put_get_delete_list(store.as_ref()).await;
    get_opts(store.as_ref()).await;
    put_opts(store.as_ref(), updates).await;
    list_uses_directories_correctly(store.as_ref()).await;
    list_with_delimiter(store.as_ref()).await;
    rename_and_copy(store.as_ref()).await;
    copy_if_not_exists(store.as_ref()).await;
    copy_rename_nonexistent_object(store.as_ref()).await;
    stream_get(store.as_ref()).await;
    multipart_race_condition(store.as_ref(), true).await;
    multipart_out_of_order(store.as_ref()).await;
    let missing = get_nonexistent_object(store.as_ref(), None).await;
    assert!(matches!(missing, Err(object_store::Error::NotFound { .. })));
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_shared_suite_passes_on_in_memory() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    rt().block_on(suite(&store, true));
}

#[test]
fn the_shared_suite_passes_on_dfs() {
    let c = cluster()
        .datanodes(1)
        .replication(1)
        .block_size(1 << 20)
        .conf("dfs.ls.limit", "7")
        .start()
        .unwrap();
    rt().block_on(async {
        let client = dfs_client::DfsClient::connect(c.client_config())
            .await
            .unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(DfsObjectStore::new(client, "/warehouse"));
        suite(&store, false).await;
    });
    // Nothing of a put, copy or upload is left behind.
    let left = dfs_ok(&c, &["ls", "-R", "/warehouse"]);
    assert!(!left.contains(".dfs-upload-"), "{left}");
}

#[test]
fn listings_are_paged_errors_are_typed_and_block_locations_are_there() {
    let c = cluster()
        .datanodes(2)
        .replication(2)
        .block_size(1 << 20)
        .conf("dfs.ls.limit", "5")
        .start()
        .unwrap();
    rt().block_on(async {
        let client = dfs_client::DfsClient::connect(c.client_config())
            .await
            .unwrap();
        let store = DfsObjectStore::new(client, "/");
        // 23 objects in one directory and 4 in another: more than four pages of five.
        for i in 0..23 {
            let p = Path::from(format!("t/p/{i:02}"));
            store.put(&p, vec![i as u8; 10].into()).await.unwrap();
        }
        for i in 0..4 {
            store
                .put(&Path::from(format!("t/q/r/{i}")), "x".into())
                .await
                .unwrap();
        }
        let all: Vec<_> = store
            .list(Some(&Path::from("t")))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(all.len(), 27);
        let top = store
            .list_with_delimiter(Some(&Path::from("t/p")))
            .await
            .unwrap();
        assert_eq!(top.objects.len(), 23);
        assert!(top.common_prefixes.is_empty());
        let t = store
            .list_with_delimiter(Some(&Path::from("t")))
            .await
            .unwrap();
        assert_eq!(
            t.common_prefixes,
            vec![Path::from("t/p"), Path::from("t/q")]
        );

        // Create refuses to replace; a missing object is NotFound.
        let create = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let err = store
            .put_opts(&Path::from("t/p/00"), "y".into(), create)
            .await
            .unwrap_err();
        assert!(
            matches!(err, object_store::Error::AlreadyExists { .. }),
            "{err}"
        );
        let err = store.head(&Path::from("t/nope")).await.unwrap_err();
        assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
        let err = store.get(&Path::from("t/p")).await.unwrap_err();
        assert!(
            matches!(err, object_store::Error::NotFound { .. }),
            "a directory is no object: {err}"
        );

        // A 2.5 MiB object spans three 1 MiB blocks, each on both DataNodes.
        let big = Path::from("t/big");
        store.put(&big, data(5 << 19, 3).into()).await.unwrap();
        let blocks = store.block_locations(&big).await.unwrap();
        assert_eq!(blocks.len(), 3);
        assert!(blocks.iter().all(|b| b.datanodes.len() == 2), "{blocks:?}");
        assert_eq!(blocks[2].offset, 2 << 20);

        // Deleting the last object of a directory leaves no empty directory behind.
        for i in 0..4 {
            store
                .delete(&Path::from(format!("t/q/r/{i}")))
                .await
                .unwrap();
        }
        let t = store
            .list_with_delimiter(Some(&Path::from("t")))
            .await
            .unwrap();
        assert_eq!(t.common_prefixes, vec![Path::from("t/p")]);
    });
}
