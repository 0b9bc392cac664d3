//! Unit tests of the namespace: every op, resolution and the image round trip, without files.

use dfs_proto::path::DfsPath;

use super::*;
use crate::op::{Op, Orphan};

pub(crate) fn p(s: &str) -> DfsPath {
    DfsPath::parse(s).unwrap()
}

pub(crate) fn mkdir(ns: &mut Namespace, path: &str) {
    let id = ns.next_inode_id();
    ns.apply(&Op::Mkdir {
        inode_id: id,
        path: p(path),
        permission: 0o755,
        owner: "alice".into(),
        group: "users".into(),
        mtime_ms: 10,
    })
    .unwrap();
}

pub(crate) fn create(ns: &mut Namespace, path: &str, overwrite: bool) -> Result<Applied> {
    let id = ns.next_inode_id();
    ns.apply(&Op::Create {
        inode_id: id,
        path: p(path),
        permission: 0o644,
        owner: "alice".into(),
        group: "users".into(),
        mtime_ms: 20,
        replication: 3,
        block_size: 1024,
        client_name: "c1".into(),
        overwrite,
        orphans: vec![],
    })
}

pub(crate) fn add_block(ns: &mut Namespace, path: &str, len: u64) -> Block {
    let b = Block {
        id: ns.next_block_id(),
        gs: ns.gen_stamp(),
        num_bytes: len,
    };
    ns.apply(&Op::AddBlock {
        path: p(path),
        previous: None,
        block: b,
        mtime_ms: 30,
        log: false,
    })
    .unwrap();
    b
}

#[test]
fn create_and_overwrite() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    mkdir(&mut ns, "/a");
    create(&mut ns, "/a/f", false).unwrap();
    let b = add_block(&mut ns, "/a/f", 100);
    assert!(matches!(
        create(&mut ns, "/a/f", false),
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        create(&mut ns, "/a", true),
        Err(Error::IsADirectory(_))
    ));
    assert!(matches!(
        create(&mut ns, "/nope/f", false),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        create(&mut ns, "/a/f/g", false),
        Err(Error::NotADirectory(_))
    ));
    let applied = create(&mut ns, "/a/f", true).unwrap();
    assert_eq!(applied.removed_blocks, vec![b]);
    assert_eq!(ns.num_files(), 1);
    assert_eq!(ns.num_blocks(), 0);
    let st = ns.status(ns.resolve(&p("/a/f")).unwrap()).unwrap();
    assert!(st.under_construction);
    assert_eq!(st.lease_holder, "c1");
    assert_eq!(st.length, 0);
}

#[test]
fn blocks_and_counters() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    create(&mut ns, "/f", false).unwrap();
    let b1 = add_block(&mut ns, "/f", 0);
    let mut fin = b1;
    fin.num_bytes = 1024;
    let b2 = Block {
        id: ns.next_block_id(),
        gs: ns.gen_stamp(),
        num_bytes: 0,
    };
    ns.apply(&Op::AddBlock {
        path: p("/f"),
        previous: Some(fin),
        block: b2,
        mtime_ms: 1,
        log: false,
    })
    .unwrap();
    let id = ns.resolve(&p("/f")).unwrap();
    assert_eq!(ns.file(id).unwrap().blocks, vec![fin, b2]);
    assert_eq!(ns.next_block_id().0, b2.id.0 + 1);
    let (fid, _, idx) = ns.block_file(b2.id).unwrap();
    assert_eq!((fid, idx), (id, 1));
    ns.apply(&Op::AbandonBlock {
        path: p("/f"),
        block_id: b2.id,
    })
    .unwrap();
    assert!(ns.block_file(b2.id).is_none());
    ns.apply(&Op::SetGenerationStamp { gs: GenStamp(5000) })
        .unwrap();
    assert_eq!(ns.gen_stamp(), GenStamp(5000));
    ns.apply(&Op::Close {
        path: p("/f"),
        blocks: vec![fin],
        mtime_ms: 2,
    })
    .unwrap();
    let st = ns.status(id).unwrap();
    assert!(!st.under_construction);
    assert_eq!(st.length, 1024);
    // A closed file cannot take blocks.
    assert!(ns
        .apply(&Op::AddBlock {
            path: p("/f"),
            previous: None,
            block: Block {
                id: BlockId(1 << 40),
                gs: GenStamp(1),
                num_bytes: 0
            },
            mtime_ms: 3,
            log: false,
        })
        .is_err());
}

#[test]
fn rename_files_and_dirs() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    mkdir(&mut ns, "/a");
    mkdir(&mut ns, "/a/b");
    mkdir(&mut ns, "/c");
    create(&mut ns, "/a/b/f", false).unwrap();
    create(&mut ns, "/g", false).unwrap();
    let rn = |ns: &mut Namespace, s: &str, d: &str, o: bool| {
        ns.apply(&Op::Rename {
            src: p(s),
            dst: p(d),
            overwrite: o,
            mtime_ms: 5,
            orphans: vec![],
        })
    };
    // Directory move keeps the subtree.
    rn(&mut ns, "/a/b", "/c/b2", false).unwrap();
    assert!(ns.resolve(&p("/c/b2/f")).is_ok());
    assert!(ns.lookup(&p("/a/b")).unwrap().is_none());
    // Into itself.
    assert!(matches!(
        rn(&mut ns, "/c", "/c/b2/x", false),
        Err(Error::InvalidRename(_))
    ));
    assert!(matches!(
        rn(&mut ns, "/", "/x", false),
        Err(Error::InvalidRename(_))
    ));
    // Existing destination.
    assert!(matches!(
        rn(&mut ns, "/g", "/c/b2/f", false),
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        rn(&mut ns, "/g", "/c", true),
        Err(Error::IsADirectory(_))
    ));
    assert!(matches!(
        rn(&mut ns, "/c", "/g", true),
        Err(Error::NotADirectory(_))
    ));
    assert!(matches!(
        rn(&mut ns, "/a", "/c", true),
        Err(Error::NotEmpty(_))
    ));
    let g = ns.resolve(&p("/g")).unwrap();
    let applied = rn(&mut ns, "/g", "/c/b2/f", true).unwrap();
    assert_eq!(applied.removed_files.len(), 1);
    assert_eq!(ns.resolve(&p("/c/b2/f")).unwrap(), g);
    assert_eq!(ns.num_files(), 1);
    // Empty directory replaced by a directory.
    mkdir(&mut ns, "/empty");
    rn(&mut ns, "/a", "/empty", true).unwrap();
    assert!(ns.resolve(&p("/empty")).is_ok());
    assert!(ns.lookup(&p("/a")).unwrap().is_none());
    // Missing parent.
    assert!(matches!(
        rn(&mut ns, "/c", "/nope/x", false),
        Err(Error::NotFound(_))
    ));
    // Same path is a no-op.
    rn(&mut ns, "/c", "/c", false).unwrap();
    assert_eq!(ns.path_of(g), "/c/b2/f");
}

#[test]
fn delete_subtree() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    mkdir(&mut ns, "/a");
    mkdir(&mut ns, "/a/b");
    create(&mut ns, "/a/b/f", false).unwrap();
    let b = add_block(&mut ns, "/a/b/f", 3);
    let applied = ns
        .apply(&Op::Delete {
            path: p("/a"),
            mtime_ms: 1,
            orphans: vec![],
        })
        .unwrap();
    assert_eq!(applied.removed_blocks, vec![b]);
    assert_eq!((ns.num_dirs(), ns.num_files(), ns.num_blocks()), (1, 0, 0));
    assert!(ns
        .apply(&Op::Delete {
            path: p("/"),
            mtime_ms: 1,
            orphans: vec![],
        })
        .is_err());
}

#[test]
fn paged_listing() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    mkdir(&mut ns, "/d");
    for i in 0..25 {
        create(&mut ns, &format!("/d/f{i:02}"), false).unwrap();
    }
    let d = ns.resolve(&p("/d")).unwrap();
    let mut names = Vec::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let (page, remaining) = ns.list(d, &after, 10);
        pages += 1;
        names.extend(page.iter().map(|s| s.name.clone()));
        after = page.last().map(|s| s.name.clone()).unwrap_or_default();
        // Only "more follow" is known: the rest of the directory is not counted.
        assert_eq!(remaining, u64::from(names.len() < 25));
        if remaining == 0 {
            break;
        }
    }
    assert_eq!(pages, 3);
    // A page that ends exactly at the last entry says so: no empty page follows.
    assert_eq!(ns.list(d, "", 25).1, 0);
    assert_eq!(ns.list(d, "f14", 10).1, 0);
    assert_eq!(ns.list(d, "f14", 9).1, 1);
    let expected: Vec<String> = (0..25).map(|i| format!("f{i:02}")).collect();
    assert_eq!(names, expected);
    let f = ns.resolve(&p("/d/f03")).unwrap();
    let (one, rem) = ns.list(f, "", 10);
    assert_eq!((one.len(), one[0].name.as_str(), rem), (1, "f03", 0));
}

#[test]
fn summary_counts_dir_itself() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    mkdir(&mut ns, "/a");
    mkdir(&mut ns, "/a/b");
    create(&mut ns, "/a/f", false).unwrap();
    add_block(&mut ns, "/a/f", 100);
    create(&mut ns, "/a/b/g", false).unwrap();
    add_block(&mut ns, "/a/b/g", 10);
    let s = ns.content_summary(ns.resolve(&p("/a")).unwrap());
    assert_eq!(
        s,
        ContentSummary {
            length: 110,
            file_count: 2,
            directory_count: 2,
            space_consumed: 330
        }
    );
}

#[test]
fn image_round_trip_rebuilds_structure() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    mkdir(&mut ns, "/a");
    mkdir(&mut ns, "/a/b");
    create(&mut ns, "/a/b/f", false).unwrap();
    add_block(&mut ns, "/a/b/f", 3);
    let inodes = ns.image_entries();
    let back = Namespace::from_image(inodes.clone(), ns.counters()).unwrap();
    assert_eq!(back, ns);
    // A child before its parent is refused.
    let mut swapped = inodes.clone();
    swapped.swap(1, 3);
    assert!(matches!(
        Namespace::from_image(swapped, ns.counters()),
        Err(Error::Corrupt(_))
    ));
    // So is whatever no path could name, and ids with no successor: errors, not panics.
    let hostile: [fn(&mut [ImageEntry]); 6] = [
        |v| v[0].inode.name = "root".into(),
        |v| v[1].inode.name = "a\0b".into(),
        |v| v[1].inode.name = "x".repeat(256),
        |v| v[1].inode.name = "a/b".into(),
        |v| v[3].inode.id = InodeId(u64::MAX),
        |v| {
            if let InodeKind::File(f) = &mut v[3].inode.kind {
                f.blocks[0].id = BlockId(u64::MAX);
            }
        },
    ];
    for (i, damage) in hostile.iter().enumerate() {
        let mut bad = inodes.clone();
        damage(&mut bad);
        assert!(
            matches!(
                Namespace::from_image(bad, ns.counters()),
                Err(Error::Corrupt(_))
            ),
            "damage #{i} accepted"
        );
    }
    // A 255-byte name is fine.
    let mut long = inodes;
    long[1].inode.name = "x".repeat(255);
    Namespace::from_image(long, ns.counters()).unwrap();
}

#[test]
fn replayed_ids_without_a_successor_are_refused() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    let e = ns
        .apply(&Op::Mkdir {
            inode_id: InodeId(u64::MAX),
            path: p("/a"),
            permission: 0o755,
            owner: "u".into(),
            group: "g".into(),
            mtime_ms: 1,
        })
        .unwrap_err();
    assert!(matches!(e, Error::Corrupt(_)), "{e}");
    assert!(ns.lookup(&p("/a")).unwrap().is_none());
    create(&mut ns, "/f", false).unwrap();
    let e = ns
        .apply(&Op::AddBlock {
            path: p("/f"),
            previous: None,
            block: Block {
                id: BlockId(u64::MAX),
                gs: ns.gen_stamp(),
                num_bytes: 0,
            },
            mtime_ms: 1,
            log: false,
        })
        .unwrap_err();
    assert!(matches!(e, Error::Corrupt(_)), "{e}");
    assert_eq!(ns.num_blocks(), 0);
}

fn op_ok(ns: &mut Namespace, op: Op) -> Applied {
    ns.apply(&op).unwrap_or_else(|e| panic!("{op:?}: {e}"))
}

fn symlink(ns: &mut Namespace, path: &str, target: &[u8]) -> InodeId {
    let id = ns.next_inode_id();
    op_ok(
        ns,
        Op::Symlink {
            inode_id: id,
            path: p(path),
            target: target.to_vec(),
            owner: "alice".into(),
            group: "users".into(),
            mtime_ms: 40,
        },
    );
    id
}

fn link(ns: &mut Namespace, src: &str, dst: &str, ms: u64) -> Result<Applied> {
    ns.apply(&Op::Link {
        src: p(src),
        dst: p(dst),
        mtime_ms: ms,
    })
}

fn delete(ns: &mut Namespace, path: &str, orphans: Vec<Orphan>) -> Result<Applied> {
    ns.apply(&Op::Delete {
        path: p(path),
        mtime_ms: 50,
        orphans,
    })
}

#[test]
fn symlinks_are_never_followed() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    mkdir(&mut ns, "/d");
    create(&mut ns, "/d/f", false).unwrap();
    let l = symlink(&mut ns, "/l", b"/d");
    let st = ns.status(l).unwrap();
    assert_eq!(
        (st.file_type, st.symlink.as_slice(), st.length),
        (FileType::Symlink, &b"/d"[..], 2)
    );
    // Through the link: the client must resolve it.
    match ns.walk(&p("/l/f")) {
        Err(Error::UnresolvedLink { link, rest }) => {
            assert_eq!((link.as_str(), rest.as_str()), ("/l", "f"))
        }
        other => panic!("{other:?}"),
    }
    // As the last component: entry operations see the link itself...
    assert_eq!(ns.resolve(&p("/l")).unwrap(), l);
    // ...operations on its target are told to follow it, except by the link's own inode path.
    assert!(matches!(
        ns.resolve_following(&p("/l")),
        Err(Error::UnresolvedLink { .. })
    ));
    assert_eq!(ns.resolve_following(&DfsPath::inode(l.0)).unwrap().0, l);
    // A symbolic link is an entry like any other: renamed, deleted.
    op_ok(
        &mut ns,
        Op::Rename {
            src: p("/l"),
            dst: p("/d/l2"),
            overwrite: false,
            mtime_ms: 5,
            orphans: vec![],
        },
    );
    assert_eq!(ns.path_of(l), "/d/l2");
    delete(&mut ns, "/d/l2", vec![]).unwrap();
    assert!(ns.inode(l).is_none());
    assert_eq!(ns.num_files(), 1);
}

#[test]
fn hard_links_share_one_inode_counted_once() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    mkdir(&mut ns, "/a");
    mkdir(&mut ns, "/b");
    create(&mut ns, "/a/f", false).unwrap();
    let b = add_block(&mut ns, "/a/f", 10);
    let f = ns.resolve(&p("/a/f")).unwrap();
    link(&mut ns, "/a/f", "/b/g", 60).unwrap();
    link(&mut ns, "/a/f", "/a/h", 61).unwrap();
    assert_eq!(ns.nlink(f), 3);
    assert_eq!(ns.resolve(&p("/b/g")).unwrap(), f);
    assert_eq!(ns.inode(f).unwrap().ctime_ms, 61);
    assert_eq!(
        ns.inode(ns.resolve(&p("/b")).unwrap()).unwrap().mtime_ms,
        60
    );
    // A listing shows each entry's own name; counts see one file.
    let (page, _) = ns.list(ns.resolve(&p("/b")).unwrap(), "", 10);
    assert_eq!((page[0].name.as_str(), page[0].nlink), ("g", 3));
    let s = ns.content_summary(InodeId::ROOT);
    assert_eq!((s.file_count, s.length, s.directory_count), (1, 10, 3));
    // Directories cannot be linked; names must be free; the count has a limit.
    assert!(matches!(
        link(&mut ns, "/a", "/x", 1),
        Err(Error::NotPermitted(_))
    ));
    assert!(matches!(
        link(&mut ns, "/a/f", "/b/g", 1),
        Err(Error::AlreadyExists(_))
    ));
    // Renaming onto another name of the same file does nothing.
    op_ok(
        &mut ns,
        Op::Rename {
            src: p("/a/h"),
            dst: p("/b/g"),
            overwrite: true,
            mtime_ms: 7,
            orphans: vec![],
        },
    );
    assert!(ns.lookup(&p("/a/h")).unwrap().is_some());
    assert_eq!(ns.nlink(f), 3);
    // Removing the first name moves it to another; blocks go with the last.
    assert!(delete(&mut ns, "/a/f", vec![])
        .unwrap()
        .removed_blocks
        .is_empty());
    assert_eq!(ns.nlink(f), 2);
    assert_ne!(ns.path_of(f), "/a/f");
    let image = ns.image_entries();
    assert_eq!(Namespace::from_image(image, ns.counters()).unwrap(), ns);
    op_ok(
        &mut ns,
        Op::Rename {
            src: p("/b/g"),
            dst: p("/a/moved"),
            overwrite: false,
            mtime_ms: 8,
            orphans: vec![],
        },
    );
    assert!(delete(&mut ns, "/a/h", vec![])
        .unwrap()
        .removed_blocks
        .is_empty());
    assert_eq!(ns.path_of(f), "/a/moved");
    assert_eq!(
        delete(&mut ns, "/a/moved", vec![]).unwrap().removed_blocks,
        vec![b]
    );
    assert_eq!((ns.num_files(), ns.num_blocks()), (0, 0));
}

#[test]
fn a_tree_deleted_keeps_files_linked_from_outside() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    mkdir(&mut ns, "/t");
    mkdir(&mut ns, "/t/sub");
    create(&mut ns, "/t/sub/f", false).unwrap();
    add_block(&mut ns, "/t/sub/f", 5);
    create(&mut ns, "/t/g", false).unwrap();
    let g = add_block(&mut ns, "/t/g", 6);
    link(&mut ns, "/t/sub/f", "/outside", 1).unwrap();
    link(&mut ns, "/t/g", "/t/sub/g2", 1).unwrap();
    let applied = delete(&mut ns, "/t", vec![]).unwrap();
    assert_eq!(applied.removed_blocks, vec![g]);
    let f = ns.resolve(&p("/outside")).unwrap();
    assert_eq!((ns.nlink(f), ns.path_of(f).as_str()), (1, "/outside"));
    assert_eq!((ns.num_dirs(), ns.num_files()), (1, 1));
}

#[test]
fn directories_count_their_subdirectories_as_links() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    mkdir(&mut ns, "/a");
    mkdir(&mut ns, "/a/b");
    mkdir(&mut ns, "/a/c");
    create(&mut ns, "/a/f", false).unwrap();
    let a = ns.resolve(&p("/a")).unwrap();
    assert_eq!((ns.nlink(InodeId::ROOT), ns.nlink(a)), (3, 4));
    op_ok(
        &mut ns,
        Op::Rename {
            src: p("/a/b"),
            dst: p("/b"),
            overwrite: false,
            mtime_ms: 1,
            orphans: vec![],
        },
    );
    assert_eq!((ns.nlink(InodeId::ROOT), ns.nlink(a)), (4, 3));
    delete(&mut ns, "/a", vec![]).unwrap();
    assert_eq!(ns.nlink(InodeId::ROOT), 3);
    let image = ns.image_entries();
    assert_eq!(Namespace::from_image(image, ns.counters()).unwrap(), ns);
}

#[test]
fn an_unlinked_file_held_open_is_an_orphan_until_released() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    create(&mut ns, "/f", false).unwrap();
    let b = add_block(&mut ns, "/f", 3);
    let f = ns.resolve(&p("/f")).unwrap();
    let held = vec![Orphan {
        inode: f,
        holders: vec!["c1".into(), "c2".into()],
    }];
    let applied = delete(&mut ns, "/f", held).unwrap();
    assert_eq!(
        (applied.orphaned.clone(), applied.removed_blocks.len()),
        (vec![f], 0)
    );
    assert!(ns.lookup(&p("/f")).unwrap().is_none());
    assert_eq!(ns.resolve(&DfsPath::inode(f.0)).unwrap(), f);
    assert_eq!(
        (ns.nlink(f), ns.path_of(f)),
        (0, DfsPath::inode(f.0).to_string())
    );
    // Writable through its inode path.
    op_ok(
        &mut ns,
        Op::Close {
            path: DfsPath::inode(f.0),
            blocks: vec![Block { num_bytes: 4, ..b }],
            mtime_ms: 9,
        },
    );
    assert_eq!(ns.file(f).unwrap().length(), 4);
    // Survives an image.
    let image = ns.image_entries();
    assert_eq!(Namespace::from_image(image, ns.counters()).unwrap(), ns);
    assert!(ns
        .apply(&Op::Link {
            src: DfsPath::inode(f.0),
            dst: p("/again"),
            mtime_ms: 1
        })
        .is_err());
    let r = op_ok(
        &mut ns,
        Op::ReleaseOrphan {
            inode_id: f,
            holder: Some("c1".into()),
        },
    );
    assert!(r.removed_blocks.is_empty());
    let r = op_ok(
        &mut ns,
        Op::ReleaseOrphan {
            inode_id: f,
            holder: Some("c2".into()),
        },
    );
    assert_eq!(r.removed_blocks.len(), 1);
    assert!(ns.inode(f).is_none());
    assert!(ns
        .apply(&Op::ReleaseOrphan {
            inode_id: f,
            holder: None
        })
        .is_err());
    assert_eq!((ns.num_files(), ns.num_blocks()), (0, 0));
}

#[test]
fn a_file_replaced_by_rename_while_held_stays() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    create(&mut ns, "/old", false).unwrap();
    create(&mut ns, "/new", false).unwrap();
    let old = ns.resolve(&p("/old")).unwrap();
    let applied = op_ok(
        &mut ns,
        Op::Rename {
            src: p("/new"),
            dst: p("/old"),
            overwrite: true,
            mtime_ms: 3,
            orphans: vec![Orphan {
                inode: old,
                holders: vec!["c".into()],
            }],
        },
    );
    assert_eq!(applied.orphaned, vec![old]);
    assert!(ns.is_orphan(old));
    op_ok(
        &mut ns,
        Op::ReleaseOrphan {
            inode_id: old,
            holder: None,
        },
    );
    assert!(ns.inode(old).is_none());
}

#[test]
fn special_files_xattrs_and_times() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    let id = ns.next_inode_id();
    op_ok(
        &mut ns,
        Op::Mknod {
            inode_id: id,
            path: p("/dev0"),
            file_type: FileType::BlockDevice,
            permission: 0o600,
            owner: "root".into(),
            group: "disk".into(),
            mtime_ms: 7,
            rdev: 0x0801,
            replication: 0,
            block_size: 0,
        },
    );
    let st = ns.status(id).unwrap();
    assert_eq!(
        (st.file_type, st.rdev, st.nlink),
        (FileType::BlockDevice, 0x0801, 1)
    );
    let fifo = ns.next_inode_id();
    op_ok(
        &mut ns,
        Op::Mknod {
            inode_id: fifo,
            path: p("/fifo"),
            file_type: FileType::Fifo,
            permission: 0o644,
            owner: "a".into(),
            group: "g".into(),
            mtime_ms: 8,
            rdev: 0,
            replication: 0,
            block_size: 0,
        },
    );
    // A regular file made by mknod is closed and empty.
    let reg = ns.next_inode_id();
    op_ok(
        &mut ns,
        Op::Mknod {
            inode_id: reg,
            path: p("/reg"),
            file_type: FileType::File,
            permission: 0o644,
            owner: "a".into(),
            group: "g".into(),
            mtime_ms: 8,
            rdev: 0,
            replication: 2,
            block_size: 1024,
        },
    );
    assert!(!ns.file(reg).unwrap().under_construction());
    assert!(ns
        .apply(&Op::Mknod {
            inode_id: ns.next_inode_id(),
            path: p("/d"),
            file_type: FileType::Directory,
            permission: 0,
            owner: "a".into(),
            group: "g".into(),
            mtime_ms: 8,
            rdev: 0,
            replication: 0,
            block_size: 0
        })
        .is_err());
    op_ok(
        &mut ns,
        Op::SetXAttr {
            path: p("/fifo"),
            name: "user.b".into(),
            value: b"2".to_vec(),
            ctime_ms: 20,
        },
    );
    op_ok(
        &mut ns,
        Op::SetXAttr {
            path: p("/fifo"),
            name: "user.a".into(),
            value: b"1".to_vec(),
            ctime_ms: 21,
        },
    );
    op_ok(
        &mut ns,
        Op::SetXAttr {
            path: p("/fifo"),
            name: "user.a".into(),
            value: b"one".to_vec(),
            ctime_ms: 22,
        },
    );
    let i = ns.inode(fifo).unwrap();
    assert_eq!(
        i.xattrs.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
        ["user.a", "user.b"]
    );
    assert_eq!(
        (
            i.xattr("user.a").unwrap().value.as_slice(),
            i.ctime_ms,
            i.mtime_ms
        ),
        (&b"one"[..], 22, 8)
    );
    op_ok(
        &mut ns,
        Op::RemoveXAttr {
            path: p("/fifo"),
            name: "user.b".into(),
            ctime_ms: 23,
        },
    );
    assert!(matches!(
        ns.apply(&Op::RemoveXAttr {
            path: p("/fifo"),
            name: "user.b".into(),
            ctime_ms: 24
        }),
        Err(Error::NoSuchAttribute(_))
    ));
    // Status changes move the ctime only; records without one (earlier versions) leave it.
    op_ok(
        &mut ns,
        Op::SetPermission {
            path: p("/fifo"),
            permission: 0o600,
            ctime_ms: 30,
        },
    );
    op_ok(
        &mut ns,
        Op::SetOwner {
            path: p("/fifo"),
            owner: "b".into(),
            group: String::new(),
            ctime_ms: 0,
        },
    );
    let i = ns.inode(fifo).unwrap();
    assert_eq!((i.ctime_ms, i.mtime_ms, i.owner.as_str()), (30, 8, "b"));
    // The root's mtime and ctime moved with each new entry.
    let root = ns.inode(InodeId::ROOT).unwrap();
    assert_eq!((root.mtime_ms, root.ctime_ms), (8, 8));
    let image = ns.image_entries();
    assert_eq!(Namespace::from_image(image, ns.counters()).unwrap(), ns);
}

#[test]
fn truncation_cuts_extents_and_frees_unreferenced_blocks() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    create(&mut ns, "/f", false).unwrap();
    let b1 = add_block(&mut ns, "/f", 0);
    let b1 = Block {
        num_bytes: 1024,
        ..b1
    };
    let b2 = Block {
        id: ns.next_block_id(),
        gs: ns.gen_stamp(),
        num_bytes: 0,
    };
    op_ok(
        &mut ns,
        Op::AddBlock {
            path: p("/f"),
            previous: Some(b1),
            block: b2,
            mtime_ms: 31,
            log: false,
        },
    );
    let b2 = Block {
        num_bytes: 100,
        ..b2
    };
    op_ok(
        &mut ns,
        Op::Close {
            path: p("/f"),
            blocks: vec![b1, b2],
            mtime_ms: 32,
        },
    );
    let f = ns.resolve(&p("/f")).unwrap();
    assert_eq!(ns.file(f).unwrap().length(), 1124);
    let cut = |ns: &mut Namespace, len| {
        op_ok(
            ns,
            Op::Truncate {
                path: p("/f"),
                new_length: len,
                mtime_ms: 40,
            },
        )
    };
    assert!(cut(&mut ns, 1100).removed_blocks.is_empty());
    assert!(cut(&mut ns, 5000).removed_blocks.is_empty());
    assert_eq!(ns.status(f).unwrap().length, 5000);
    let image = ns.image_entries();
    assert_eq!(Namespace::from_image(image, ns.counters()).unwrap(), ns);
    assert_eq!(cut(&mut ns, 10).removed_blocks, vec![b2]);
    assert_eq!(ns.num_blocks(), 1);
    assert_eq!(cut(&mut ns, 0).removed_blocks, vec![b1]);
    let i = ns.inode(f).unwrap();
    assert_eq!((i.mtime_ms, i.ctime_ms, ns.num_blocks()), (40, 40, 0));
}

#[test]
fn inode_paths_name_inodes_and_their_entries() {
    let mut ns = Namespace::new("root", "supergroup", 0);
    mkdir(&mut ns, "/d");
    let d = ns.resolve(&p("/d")).unwrap();
    let id = ns.next_inode_id();
    op_ok(
        &mut ns,
        Op::Mkdir {
            inode_id: id,
            path: DfsPath::inode_child(d.0, "sub").unwrap(),
            permission: 0o700,
            owner: "a".into(),
            group: "g".into(),
            mtime_ms: 3,
        },
    );
    assert_eq!(ns.resolve(&p("/d/sub")).unwrap(), id);
    let w = ns.walk(&DfsPath::inode_child(d.0, "sub").unwrap()).unwrap();
    assert_eq!((w.entry(), w.parent()), (Some((d, "sub")), Some(d)));
    let bare = ns.walk(&DfsPath::inode(d.0)).unwrap();
    assert_eq!((bare.entry(), bare.parent(), bare.last()), (None, None, d));
    assert!(matches!(
        ns.walk(&DfsPath::inode(999)),
        Err(Error::NotFound(_))
    ));
    // A bare inode path names no entry: it cannot be deleted or renamed.
    assert!(delete(&mut ns, &DfsPath::inode(id.0).to_string(), vec![]).is_err());
    // The root's .reserved is not for users.
    assert!(matches!(
        ns.new_entry(&p("/.reserved")),
        Err(Error::InvalidArgument(_))
    ));
    ns.new_entry(&p("/d/.reserved")).unwrap();
}
