//! Links, special files, extended attributes and ACLs through the client API and the `dfs`
//! shell, against a real cluster; and their survival of a NameNode killed and restarted.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{cluster, dfs_err, dfs_ok, read_all};
use dfs_client::{AclEntry, EntryOptions, Error, FileKind, XAttrFlag};

#[test]
fn the_client_resolves_symbolic_links_the_namenode_reports() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let client = c.client().unwrap();
    let a = client.as_async();
    client.block_on(async {
        a.mkdirs("/real/sub", true).await.unwrap();
        let mut w = a.create("/real/sub/f", Default::default()).await.unwrap();
        w.write(b"through links").await.unwrap();
        w.close().await.unwrap();
        let e = EntryOptions::default();
        a.create_symlink(b"/real", "/abs", e.clone()).await.unwrap();
        a.create_symlink(b"real/sub", "/rel", e.clone())
            .await
            .unwrap();
        a.create_symlink(b"../real/sub/f", "/real/up", e.clone())
            .await
            .unwrap();
        a.create_symlink(b"loop2", "/loop1", e.clone())
            .await
            .unwrap();
        a.create_symlink(b"loop1", "/loop2", e.clone())
            .await
            .unwrap();
        a.create_symlink(b"nowhere", "/dangling", e).await.unwrap();
        // Links anywhere in a path are followed, relative ones from their directory.
        for p in ["/abs/sub/f", "/rel/f", "/real/up"] {
            let mut r = a.open(p).await.unwrap();
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"through links", "{p}");
        }
        assert_eq!(a.stat("/rel").await.unwrap().kind, FileKind::Directory);
        let l = a.symlink_status("/rel").await.unwrap();
        assert_eq!(
            (l.kind, l.symlink.as_slice()),
            (FileKind::Symlink, &b"real/sub"[..])
        );
        assert_eq!(a.read_link("/abs").await.unwrap(), b"/real");
        assert_eq!(a.list("/abs/sub").await.unwrap().len(), 1);
        // Entry operations act on the link: renaming and deleting it leaves the target.
        a.rename("/abs", "/abs2", false).await.unwrap();
        assert!(a.delete("/abs2", false).await.unwrap());
        assert!(a.exists("/real/sub/f").await.unwrap());
        // A loop ends in ELOOP, a dangling link in "not found".
        assert!(matches!(
            a.stat("/loop1").await,
            Err(Error::TooManySymlinks(_))
        ));
        assert!(matches!(
            a.open("/loop1/x").await,
            Err(Error::TooManySymlinks(_))
        ));
        assert!(matches!(a.stat("/dangling").await, Err(Error::NotFound(_))));
        // Hard links: one file, two names, counted once.
        let st = a.link("/real/sub/f", "/hard").await.unwrap();
        assert_eq!(st.nlink, 2);
        assert!(matches!(
            a.link("/real", "/dirlink").await,
            Err(Error::NotPermitted(_))
        ));
        let s = a.content_summary("/").await.unwrap();
        assert_eq!(s.length, 13, "{s:?}");
        a.delete("/real/sub/f", false).await.unwrap();
        assert_eq!(a.stat("/hard").await.unwrap().nlink, 1);
        // Special files are metadata; a regular one made by mknod is empty and closed.
        let st = a
            .mknod("/fifo", FileKind::Fifo, 0, EntryOptions::default())
            .await
            .unwrap();
        assert_eq!(st.kind, FileKind::Fifo);
        let st = a
            .mknod("/empty", FileKind::File, 0, EntryOptions::default())
            .await
            .unwrap();
        assert!(!st.under_construction && st.length == 0);
    });
    assert_eq!(read_all(&client, "/hard"), b"through links");
}

#[test]
fn the_shell_makes_and_shows_links_xattrs_and_acls() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let client = c.client().unwrap();
    let mut w = client.create("/data", Default::default()).unwrap();
    w.write_all(b"payload").unwrap();
    w.close().unwrap();
    dfs_ok(&c, &["ln", "-s", "/data", "/link"]);
    dfs_ok(&c, &["ln", "/data", "/hard"]);
    let ls = dfs_ok(&c, &["ls", "/"]);
    let line = |name: &str| {
        ls.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not in {ls}"))
            .to_string()
    };
    assert!(
        line("/link").starts_with('l') && line("/link").ends_with("/link -> /data"),
        "{ls}"
    );
    let hard = line("/hard");
    let fields: Vec<&str> = hard.split_whitespace().collect();
    assert_eq!(&fields[..2], &["-rw-r--r--", "2"], "{ls}");
    let stat = dfs_ok(&c, &["stat", "/link"]);
    assert!(stat.contains("Type: symbolic link -> /data"), "{stat}");
    let st: serde_json::Value =
        serde_json::from_str(&dfs_ok(&c, &["stat", "--json", "/hard"])).unwrap();
    assert_eq!(
        (&st["type"], &st["nlink"]),
        (&"file".into(), &2.into()),
        "{st}"
    );
    // Commands on what a path names follow the link; rm removes the link itself.
    assert_eq!(dfs_ok(&c, &["cat", "/link"]), "payload");
    dfs_ok(&c, &["rm", "/link"]);
    assert_eq!(dfs_ok(&c, &["cat", "/data"]), "payload");

    // Extended attributes, with hdfs dfs's flags and encodings.
    dfs_ok(&c, &["setfattr", "-n", "user.text", "-v", "hello", "/data"]);
    dfs_ok(
        &c,
        &["setfattr", "-n", "user.bin", "-v", "0x00ff10", "/data"],
    );
    dfs_ok(&c, &["setfattr", "-n", "user.b64", "-v", "0saGk=", "/data"]);
    let all = dfs_ok(&c, &["getfattr", "-d", "/data"]);
    assert!(all.starts_with("# file: /data\n"), "{all}");
    assert!(
        all.contains("user.text=\"hello\"") && all.contains("user.b64=\"hi\""),
        "{all}"
    );
    let hex = dfs_ok(&c, &["getfattr", "-n", "user.bin", "-e", "hex", "/data"]);
    assert!(hex.contains("user.bin=0x00ff10"), "{hex}");
    assert_eq!(
        client
            .block_on(client.as_async().get_xattr("/hard", "user.b64"))
            .unwrap(),
        b"hi"
    );
    dfs_ok(&c, &["setfattr", "-x", "user.text", "/data"]);
    let err = dfs_err(&c, &["getfattr", "-n", "user.text", "/data"]);
    assert!(err.contains("user.text"), "{err}");
    let err = dfs_err(&c, &["setfattr", "-n", "bogus.name", "-v", "1", "/data"]);
    assert!(err.contains("not supported"), "{err}");
    let a = client.as_async();
    let e = client
        .block_on(a.set_xattr("/data", "user.bin", b"", XAttrFlag::Create))
        .unwrap_err();
    assert!(matches!(e, Error::AlreadyExists(_)), "{e}");

    // ACLs: getfacl's output, setfacl -m, -x, -k, -b, --set, and the + in ls.
    dfs_ok(&c, &["mkdir", "/shared"]);
    dfs_ok(
        &c,
        &[
            "setfacl",
            "-m",
            "user:bob:rwx,default:group:dev:r-x",
            "/shared",
        ],
    );
    let acl = dfs_ok(&c, &["getfacl", "/shared"]);
    for want in [
        "# file: /shared",
        "user::rwx",
        "user:bob:rwx",
        "group::r-x",
        "mask::rwx",
        "other::r-x",
        "default:group:dev:r-x",
        "default:mask::r-x",
    ] {
        assert!(acl.lines().any(|l| l == want), "{want} not in {acl}");
    }
    assert!(dfs_ok(&c, &["ls", "/"]).contains("drwxrwxr-x+"));
    dfs_ok(&c, &["touchz", "/shared/child"]);
    let child = dfs_ok(&c, &["getfacl", "/shared/child"]);
    assert!(
        child.lines().any(|l| l == "group:dev:r-x"),
        "inherited: {child}"
    );
    dfs_ok(&c, &["setfacl", "-x", "user:bob", "/shared"]);
    dfs_ok(&c, &["setfacl", "-k", "/shared"]);
    let acl = dfs_ok(&c, &["getfacl", "/shared"]);
    assert!(!acl.contains("bob") && !acl.contains("default"), "{acl}");
    dfs_ok(
        &c,
        &[
            "setfacl",
            "--set",
            "user::rw-,group::r--,other::---,user:carol:rw-",
            "/data",
        ],
    );
    let st = client.block_on(a.get_acl("/data")).unwrap();
    assert_eq!(st.permission & 0o777, 0o660, "{st:?}");
    assert!(st
        .acl
        .entries
        .contains(&AclEntry::parse("user:carol:rw-").unwrap()));
    dfs_ok(&c, &["setfacl", "-b", "/data"]);
    assert!(!dfs_ok(&c, &["getfacl", "/data"]).contains("carol"));
    let err = dfs_err(&c, &["setfacl", "-m", "user:bob:rwz", "/data"]);
    assert!(err.contains("invalid permission"), "{err}");
    dfs_ok(&c, &["chgrp", "-R", "staff", "/shared"]);
    let st: serde_json::Value =
        serde_json::from_str(&dfs_ok(&c, &["stat", "--json", "/shared/child"])).unwrap();
    assert_eq!(st["group"], "staff");
}

#[test]
fn links_xattrs_acls_and_orphans_survive_a_namenode_kill() {
    let mut c = cluster()
        .datanodes(1)
        .replication(1)
        .conf("dfs.namenode.safemode.extension", "0s")
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let a = client.as_async();
    let mut w = client.create("/f", Default::default()).unwrap();
    w.write_all(b"kept open").unwrap();
    w.close().unwrap();
    client.block_on(async {
        a.link("/f", "/g").await.unwrap();
        a.create_symlink(b"f", "/l", EntryOptions::default())
            .await
            .unwrap();
        a.set_xattr("/f", "user.k", b"v", XAttrFlag::Any)
            .await
            .unwrap();
        a.modify_acl_entries("/f", &[AclEntry::parse("user:bob:r--").unwrap()])
            .await
            .unwrap();
    });
    // An open file, unlinked: an orphan held by this client.
    let mut held = client.open("/g").unwrap();
    client.block_on(async {
        a.delete("/f", false).await.unwrap();
        a.delete("/g", false).await.unwrap();
    });
    c.kill_namenode();
    c.restart_namenode().unwrap();
    c.wait_for_safe_mode_off(Duration::from_secs(30)).unwrap();
    let mut got = String::new();
    held.read_to_string(&mut got).unwrap();
    assert_eq!(got, "kept open", "read by inode path after the restart");
    let l = client.block_on(a.symlink_status("/l")).unwrap();
    assert_eq!(l.symlink, b"f");
    // The rest came back with the log.
    let mut w = client.create("/x", Default::default()).unwrap();
    w.write_all(b"x").unwrap();
    w.close().unwrap();
    client.block_on(async {
        a.link("/x", "/y").await.unwrap();
        a.set_xattr("/y", "user.k", b"v2", XAttrFlag::Any)
            .await
            .unwrap();
        a.mkdirs("/d", false).await.unwrap();
        let entries = [
            AclEntry::parse("user:bob:r-x").unwrap(),
            AclEntry::parse("default:user:bob:rwx").unwrap(),
        ];
        a.modify_acl_entries("/d", &entries).await.unwrap();
    });
    c.kill_namenode();
    c.restart_namenode().unwrap();
    c.wait_for_safe_mode_off(Duration::from_secs(30)).unwrap();
    client.block_on(async {
        assert_eq!(a.stat("/x").await.unwrap().nlink, 2);
        assert_eq!(a.get_xattr("/x", "user.k").await.unwrap(), b"v2");
        let acl = a.get_acl("/d").await.unwrap();
        let full: Vec<String> = acl.full().iter().map(|e| e.to_string()).collect();
        assert!(
            full.contains(&"user:bob:r-x".to_string())
                && full.contains(&"default:user:bob:rwx".to_string()),
            "{full:?}"
        );
    });
    drop(held);
}
