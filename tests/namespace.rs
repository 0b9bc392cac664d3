//! Namespace operations end to end, and bad input of every class getting a clear error.

mod common;

use std::io::Write;

use common::*;
use dfs_client::Error;

#[test]
fn rename_and_delete_whole_trees() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let client = c.client().unwrap();
    client.mkdirs("/a/b/c", true).unwrap();
    for (i, p) in ["/a/f1", "/a/b/f2", "/a/b/c/f3"].iter().enumerate() {
        let mut w = client.create(p, Default::default()).unwrap();
        w.write_all(&data(1000 + i, i as u64)).unwrap();
        w.close().unwrap();
    }
    client.rename("/a", "/x", false).unwrap();
    assert!(client.try_stat("/a").unwrap().is_none());
    let back = read_all(&client, "/x/b/c/f3");
    assert_eq!(back, data(1002, 2));
    let names: Vec<_> = client
        .list("/x/b")
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["c", "f2"]);

    // Rename onto an existing path: refused without overwrite, replaced with it.
    client
        .create("/y", Default::default())
        .unwrap()
        .close()
        .unwrap();
    assert!(matches!(
        client.rename("/x/f1", "/y", false),
        Err(Error::AlreadyExists(_))
    ));
    client.rename("/x/f1", "/y", true).unwrap();
    assert_eq!(client.stat("/y").unwrap().length, 1000);
    // A directory cannot move below itself.
    assert!(client.rename("/x", "/x/b/inside", false).is_err());

    assert!(matches!(
        client.delete("/x", false),
        Err(Error::NotEmpty(_))
    ));
    assert!(client.delete("/x", true).unwrap());
    assert!(client.try_stat("/x/b/c/f3").unwrap().is_none());
    assert!(
        !client.delete("/x", true).unwrap(),
        "deleting a missing path reports false"
    );
    let summary = client
        .block_on(client.as_async().content_summary("/"))
        .unwrap();
    assert_eq!(summary.file_count, 1, "only /y is left");
}

#[test]
fn listing_pages_through_large_directories() {
    let c = cluster()
        .datanodes(1)
        .replication(1)
        .conf("dfs.ls.limit", "7")
        .start()
        .unwrap();
    let client = c.client().unwrap();
    client.mkdirs("/many", false).unwrap();
    for i in 0..30 {
        client.mkdirs(&format!("/many/d{i:03}"), false).unwrap();
    }
    let page = client
        .block_on(client.as_async().list_page("/many", "", 0))
        .unwrap();
    assert_eq!(page.entries.len(), 7);
    assert!(page.remaining >= 1, "more follow: {}", page.remaining);
    let all = client.list("/many").unwrap();
    assert_eq!(all.len(), 30);
    assert!(all.windows(2).all(|w| w[0].name < w[1].name));
    let out = dfs_ok(&c, &["ls", "/many"]);
    assert!(out.starts_with("Found 30 items"), "{out}");
}

#[test]
fn bad_paths_get_a_clear_error() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let client = c.client().unwrap();
    let long = format!("/{}", "n".repeat(256));
    for bad in [
        "relative/path",
        "/a/../b",
        "/a/./b",
        "/a//b",
        "/nul\0byte",
        "",
    ] {
        match client.mkdirs(bad, true) {
            Err(Error::InvalidPath(msg)) => assert!(msg.contains("invalid path"), "{msg}"),
            other => panic!("{bad:?}: expected InvalidPath, got {other:?}"),
        }
    }
    // Too long is its own kind (ENAMETOOLONG), not a malformed path.
    match client.mkdirs(&long, true) {
        Err(Error::NameTooLong(msg)) => assert!(msg.contains("longer than 255"), "{msg}"),
        other => panic!("expected NameTooLong, got {other:?}"),
    }
    let err = dfs_err(&c, &["mkdir", "-p", "relative/dir"]);
    assert!(
        err.contains("invalid path") && err.contains("not absolute"),
        "{err}"
    );
    let err = dfs_err(&c, &["ls", "/no/such/dir"]);
    assert!(err.contains("/no/such/dir"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn file_and_directory_kind_errors() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let client = c.client().unwrap();
    client.mkdirs("/d", false).unwrap();
    client
        .create("/f", Default::default())
        .unwrap()
        .close()
        .unwrap();
    assert!(matches!(
        client.create("/d", Default::default()),
        Err(Error::IsADirectory(_))
    ));
    assert!(matches!(
        client.create("/f", Default::default()),
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        client.mkdirs("/f/sub", true),
        Err(Error::NotADirectory(_)) | Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        client.mkdirs("/d", false),
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(client.open("/d"), Err(Error::IsADirectory(_))));
    assert!(matches!(client.open("/missing"), Err(Error::NotFound(_))));
    assert!(matches!(
        client.mkdirs("/missing/child", false),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn permissions_are_checked_for_other_users() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let root = c.client().unwrap();
    root.mkdirs("/private", false).unwrap();
    root.block_on(root.as_async().set_permission("/private", 0o700))
        .unwrap();
    let mut cfg = c.client_config();
    cfg.user = Some(dfs_client::user::UserInfo {
        name: "alice".into(),
        groups: vec!["users".into()],
    });
    let alice = dfs_client::blocking::DfsClient::connect(cfg).unwrap();
    assert!(matches!(
        alice.list("/private"),
        Err(Error::PermissionDenied(_))
    ));
    assert!(matches!(
        alice.mkdirs("/private/x", false),
        Err(Error::PermissionDenied(_))
    ));
    assert!(
        matches!(alice.mkdirs("/top", false), Err(Error::PermissionDenied(_))),
        "/ is 755 root"
    );
    root.mkdirs("/home/alice", true).unwrap();
    root.block_on(
        root.as_async()
            .set_owner("/home/alice", Some("alice"), None),
    )
    .unwrap();
    alice.mkdirs("/home/alice/work", false).unwrap();
    assert_eq!(alice.stat("/home/alice/work").unwrap().owner, "alice");
}
