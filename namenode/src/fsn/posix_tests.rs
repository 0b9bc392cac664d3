//! The POSIX rules of the decision core: new entries' groups and modes, set-ID bits, sticky
//! directories, times, links, special files, extended attributes, ACLs, and open files kept
//! after their last name goes.

use dfs_proto::path::DfsPath;

use super::tests::{alice, p, root, Calls, Fx};
use super::xattrs::{XATTR_CREATE, XATTR_REPLACE};
use super::*;
use crate::acl::{AclEntry, AclScope, AclType};
use crate::namespace::XAttr;

fn bob() -> Caller {
    Caller::new("bob", &["users"])
}

fn carol() -> Caller {
    Caller::new("carol", &["staff"])
}

fn mode(group: &str) -> NewMode {
    NewMode {
        permission: 0o777,
        unmasked: None,
        group: group.to_string(),
    }
}

fn mkdir(fx: &mut Fx, c: &Caller, path: &str, permission: u32) -> FileStatus {
    let req = MkdirsRequest {
        path: p(path),
        mode: NewMode::new(permission),
        create_parent: false,
    };
    fx.st.mkdirs(c, &req, fx.at(0)).unwrap()
}

fn create(fx: &mut Fx, c: &Caller, path: &str, mode: NewMode) -> Result<FileStatus> {
    let req = CreateRequest {
        path: p(path),
        mode,
        client: format!("client-{}", c.user),
        overwrite: false,
        create_parent: false,
        replication: 1,
        block_size: 0,
    };
    fx.st.create(c, &req, fx.at(0))
}

/// DataNode `uuid` registers again (after a restart) and reports its replica of `b`.
fn report(fx: &mut Fx, uuid: &str, b: Block) {
    fx.dn(uuid, 1);
    let r = crate::types::ReplicaReport {
        block: b,
        finalized: true,
    };
    fx.st.block_report(uuid, &[r], fx.at(1)).unwrap();
}

fn stat(fx: &mut Fx, path: &str) -> FileStatus {
    fx.st.get_file_info(&root(), &p(path)).unwrap().unwrap()
}

/// A world-writable directory owned by root, for users to work in.
fn shared(fx: &mut Fx, path: &str, permission: u32) {
    mkdir(fx, &root(), path, 0o777);
    fx.st
        .set_permission(&root(), &p(path), permission, fx.at(0))
        .unwrap();
}

#[test]
fn new_entries_take_the_creators_group_or_a_setgid_directorys() {
    let mut fx = Fx::new();
    shared(&mut fx, "/plain", 0o777);
    // The request names the creator's group (a mount does): POSIX.
    let st = create(&mut fx, &alice(), "/plain/f", mode("users")).unwrap();
    assert_eq!(st.group, "users");
    // None named (the shell, the API): the parent's, as HDFS.
    let st = create(&mut fx, &alice(), "/plain/g", mode("")).unwrap();
    assert_eq!(st.group, "supergroup");
    // A set-group-ID directory gives its group, and its bit to new directories.
    shared(&mut fx, "/sgid", 0o2777);
    fx.st
        .set_owner(&root(), &p("/sgid"), "", "staff", fx.at(0))
        .unwrap();
    let st = create(&mut fx, &alice(), "/sgid/f", mode("users")).unwrap();
    assert_eq!((st.group.as_str(), st.permission & 0o2000), ("staff", 0));
    let req = MkdirsRequest {
        path: p("/sgid/d"),
        mode: mode("users"),
        create_parent: false,
    };
    let st = fx.st.mkdirs(&alice(), &req, fx.at(0)).unwrap();
    assert_eq!((st.group.as_str(), st.permission), ("staff", 0o2777));
    // A group-executable set-group-ID file of a group its creator is not in loses the bit.
    let m = NewMode {
        permission: 0o2755,
        ..mode("users")
    };
    let st = create(&mut fx, &alice(), "/sgid/x", m).unwrap();
    assert_eq!(st.permission, 0o755);
    // The root's .reserved is for inode paths.
    let e = create(&mut fx, &root(), "/.reserved", mode("")).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

#[test]
fn set_id_bits_go_as_posix_says() {
    let mut fx = Fx::new();
    shared(&mut fx, "/w", 0o777);
    let st = create(&mut fx, &alice(), "/w/f", mode("users")).unwrap();
    fx.st
        .complete(&p("/w/f"), "client-alice", None, st.inode_id.0, fx.at(0))
        .unwrap();
    // chmod by the owner outside the file's group keeps everything but set-group-ID.
    fx.st
        .set_owner(&root(), &p("/w/f"), "", "staff", fx.at(0))
        .unwrap();
    fx.st
        .set_permission(&alice(), &p("/w/f"), 0o6775, fx.at(0))
        .unwrap();
    assert_eq!(stat(&mut fx, "/w/f").permission, 0o4775);
    // chown drops set-user-ID, and set-group-ID of a group-executable file.
    fx.st
        .set_permission(&root(), &p("/w/f"), 0o6775, fx.at(0))
        .unwrap();
    fx.st
        .set_owner(&root(), &p("/w/f"), "bob", "", fx.at(0))
        .unwrap();
    assert_eq!(stat(&mut fx, "/w/f").permission, 0o0775);
    // A write (append) by anyone but the superuser drops set-user-ID.
    fx.st
        .set_permission(&root(), &p("/w/f"), 0o4777, fx.at(0))
        .unwrap();
    fx.st
        .append(&carol(), &p("/w/f"), "client-carol", fx.at(0))
        .unwrap();
    assert_eq!(stat(&mut fx, "/w/f").permission, 0o0777);
    // Only the owner (or the superuser) changes modes, owners and groups: EPERM.
    let e = fx
        .st
        .set_permission(&carol(), &p("/w/f"), 0o700, fx.at(0))
        .unwrap_err();
    assert!(matches!(e, Error::NotPermitted(_)), "{e}");
    let e = fx
        .st
        .set_owner(&bob(), &p("/w/f"), "", "wheel", fx.at(0))
        .unwrap_err();
    assert!(
        matches!(e, Error::NotPermitted(_)),
        "{e}: bob is not in wheel"
    );
    fx.st
        .set_owner(&bob(), &p("/w/f"), "", "users", fx.at(0))
        .unwrap();
}

#[test]
fn sticky_directories_let_only_owners_remove_or_rename() {
    let mut fx = Fx::new();
    shared(&mut fx, "/tmp", 0o1777);
    create(&mut fx, &alice(), "/tmp/a", mode("users")).unwrap();
    let now = fx.at(0);
    let e = fx
        .st
        .delete(&bob(), &p("/tmp/a"), false, Some(false), now)
        .unwrap_err();
    assert!(matches!(e, Error::NotPermitted(_)), "{e}");
    let e = fx
        .st
        .rename(&bob(), &p("/tmp/a"), &p("/tmp/b"), false, now)
        .unwrap_err();
    assert!(matches!(e, Error::NotPermitted(_)), "{e}");
    fx.st
        .rename(&alice(), &p("/tmp/a"), &p("/tmp/b"), false, now)
        .unwrap();
    assert!(fx
        .st
        .delete(&root(), &p("/tmp/b"), false, Some(false), now)
        .unwrap());
}

#[test]
fn unlink_and_rmdir_check_the_kind_and_rename_of_a_directory_needs_write() {
    let mut fx = Fx::new();
    shared(&mut fx, "/w", 0o777);
    mkdir(&mut fx, &alice(), "/w/d", 0o555);
    mkdir(&mut fx, &alice(), "/w/e", 0o755);
    let now = fx.at(0);
    let e = fx.st.delete(&alice(), &p("/w/d"), false, Some(false), now);
    assert!(matches!(e, Err(Error::IsADirectory(_))), "{e:?}");
    create(&mut fx, &alice(), "/w/f", mode("")).unwrap();
    let e = fx.st.delete(&alice(), &p("/w/f"), false, Some(true), now);
    assert!(matches!(e, Err(Error::NotADirectory(_))), "{e:?}");
    let e = fx
        .st
        .delete(&alice(), &p("/w/gone"), false, Some(true), now);
    assert!(matches!(e, Err(Error::NotFound(_))), "{e:?}");
    // Moving a directory to another parent rewrites its "..": it must be writable.
    let e = fx
        .st
        .rename(&alice(), &p("/w/d"), &p("/w/e/d"), false, now)
        .unwrap_err();
    assert!(matches!(e, Error::PermissionDenied(_)), "{e}");
    fx.st
        .rename(&alice(), &p("/w/d"), &p("/w/d2"), false, now)
        .unwrap();
    let e = fx
        .st
        .rename(&alice(), &p("/w/e"), &p("/w/e/sub"), false, now)
        .unwrap_err();
    assert!(matches!(e, Error::InvalidRename(_)), "{e}");
}

#[test]
fn times_now_need_write_permission_other_times_ownership() {
    let mut fx = Fx::new();
    shared(&mut fx, "/w", 0o777);
    create(&mut fx, &alice(), "/w/f", mode("")).unwrap();
    fx.st
        .set_permission(&alice(), &p("/w/f"), 0o666, fx.at(0))
        .unwrap();
    let t = |path: &str, m: Option<u64>, now: bool| SetTimesRequest {
        path: p(path),
        mtime_ms: m,
        atime_ms: m,
        now,
    };
    // "Now" with write permission: set to the NameNode's clock, whatever was sent.
    fx.st
        .set_times(&bob(), &t("/w/f", Some(7), true), fx.at(50))
        .unwrap();
    let st = stat(&mut fx, "/w/f");
    assert_eq!(
        (st.mtime_ms, st.atime_ms, st.ctime_ms),
        (51_000, 51_000, 51_000)
    );
    let e = fx
        .st
        .set_times(&bob(), &t("/w/f", Some(7), false), fx.at(51))
        .unwrap_err();
    assert!(matches!(e, Error::NotPermitted(_)), "{e}");
    fx.st
        .set_permission(&alice(), &p("/w/f"), 0o644, fx.at(0))
        .unwrap();
    let e = fx
        .st
        .set_times(&bob(), &t("/w/f", Some(7), true), fx.at(52))
        .unwrap_err();
    assert!(matches!(e, Error::PermissionDenied(_)), "{e}");
    fx.st
        .set_times(&alice(), &t("/w/f", Some(7), false), fx.at(53))
        .unwrap();
    assert_eq!(stat(&mut fx, "/w/f").mtime_ms, 7);
}

#[test]
fn symlinks_are_reported_never_followed() {
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    mkdir(&mut fx, &root(), "/d", 0o755);
    fx.write_file("/d/f", 1, 0);
    let now = fx.at(0);
    let st = fx
        .st
        .create_symlink(&root(), b"d", &p("/l"), "", now)
        .unwrap();
    assert_eq!(
        (st.file_type, st.symlink.as_slice(), st.nlink),
        (FileType::Symlink, &b"d"[..], 1)
    );
    assert_eq!(stat(&mut fx, "/l").file_type, FileType::Symlink);
    match fx.st.locations_(&root(), &p("/l/f"), 0, 0, "", now) {
        Err(Error::UnresolvedLink { link, rest }) => {
            assert_eq!((link.as_str(), rest.as_str()), ("/l", "f"))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        fx.st.get_listing(&root(), &p("/l"), "", 0),
        Err(Error::UnresolvedLink { .. })
    ));
    for (target, want) in [(&b""[..], "NotFound"), (b"a\0b", "InvalidArgument")] {
        let e = fx
            .st
            .create_symlink(&root(), target, &p("/bad"), "", now)
            .unwrap_err();
        assert!(format!("{e:?}").starts_with(want), "{e:?}");
    }
    let long = vec![b'x'; 4096];
    let e = fx.st.create_symlink(&root(), &long, &p("/bad"), "", now);
    assert!(matches!(e, Err(Error::NameTooLong(_))), "{e:?}");
    fx.st
        .create_symlink(&root(), &long[..4095], &p("/ok"), "", now)
        .unwrap();
    let e = fx.st.create_symlink(&root(), b"x", &p("/l"), "", now);
    assert!(matches!(e, Err(Error::AlreadyExists(_))), "{e:?}");
}

#[test]
fn hard_links_keep_one_file_until_the_last_name_goes() {
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    mkdir(&mut fx, &root(), "/d", 0o755);
    let b = fx.write_file("/d/f", 1, 10);
    let now = fx.at(1);
    let st = fx.st.link(&root(), &p("/d/f"), &p("/g"), now).unwrap();
    assert_eq!((st.name.as_str(), st.nlink), ("g", 2));
    let e = fx.st.link(&root(), &p("/d"), &p("/dl"), now).unwrap_err();
    assert!(matches!(e, Error::NotPermitted(_)), "{e}");
    let e = fx.st.link(&root(), &p("/d/f"), &p("/g"), now).unwrap_err();
    assert!(matches!(e, Error::AlreadyExists(_)), "{e}");
    assert!(fx
        .st
        .delete(&root(), &p("/d/f"), false, Some(false), now)
        .unwrap());
    assert!(
        fx.heartbeat("d1", 1).unwrap().is_empty(),
        "no replica deleted yet"
    );
    assert_eq!(stat(&mut fx, "/g").nlink, 1);
    fx.st.locations_(&root(), &p("/g"), 0, 0, "", now).unwrap();
    fx.restart();
    report(&mut fx, "d1", b);
    assert_eq!(stat(&mut fx, "/g").nlink, 1);
    assert!(fx
        .st
        .delete(&root(), &p("/g"), false, Some(false), now)
        .unwrap());
    let cmds = fx.heartbeat("d1", 2).unwrap();
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::Delete(v) if v.iter().any(|x| x.id == b.id))),
        "{cmds:?}"
    );
}

#[test]
fn devices_need_the_superuser_fifos_and_sockets_anyone() {
    let mut fx = Fx::new();
    shared(&mut fx, "/w", 0o777);
    let req = |path: &str, t| MknodRequest {
        path: p(path),
        file_type: t,
        mode: NewMode::new(0o644),
        rdev: 0x0103,
        replication: 0,
        block_size: 0,
    };
    let now = fx.at(0);
    let e = fx
        .st
        .mknod(&alice(), &req("/w/null", FileType::CharDevice), now)
        .unwrap_err();
    assert!(matches!(e, Error::NotPermitted(_)), "{e}");
    let st = fx
        .st
        .mknod(&root(), &req("/w/null", FileType::CharDevice), now)
        .unwrap();
    assert_eq!((st.file_type, st.rdev), (FileType::CharDevice, 0x0103));
    for (n, t) in [
        ("fifo", FileType::Fifo),
        ("sock", FileType::Socket),
        ("reg", FileType::File),
    ] {
        let st = fx
            .st
            .mknod(&alice(), &req(&format!("/w/{n}"), t), now)
            .unwrap();
        assert_eq!((st.file_type, st.owner.as_str()), (t, "alice"));
    }
    assert!(!stat(&mut fx, "/w/reg").under_construction);
    let e = fx
        .st
        .mknod(&root(), &req("/w/dir", FileType::Directory), now);
    assert!(matches!(e, Err(Error::InvalidArgument(_))), "{e:?}");
}

fn x(name: &str, value: &[u8]) -> XAttr {
    XAttr {
        name: name.to_string(),
        value: value.to_vec(),
    }
}

#[test]
fn xattr_namespaces_flags_and_limits_are_linuxs() {
    let mut fx = Fx::with(|c| {
        c.max_xattrs_per_inode = 3;
        c.max_xattr_size = 64;
    });
    shared(&mut fx, "/w", 0o777);
    create(&mut fx, &alice(), "/w/f", NewMode::new(0o644)).unwrap();
    fx.st
        .create_symlink(&alice(), b"f", &p("/w/l"), "", fx.at(0))
        .unwrap();
    let now = fx.at(0);
    let set = |fx: &mut Fx, c: &Caller, path: &str, a: XAttr, flags: u32| {
        fx.st
            .set_xattr(c, &DfsPath::parse(path).unwrap(), &a, flags, now)
    };
    set(&mut fx, &alice(), "/w/f", x("user.a", b"1"), 0).unwrap();
    let e = set(&mut fx, &alice(), "/w/f", x("user.a", b"2"), XATTR_CREATE).unwrap_err();
    assert!(matches!(e, Error::AlreadyExists(_)), "{e}");
    let e = set(&mut fx, &alice(), "/w/f", x("user.b", b"2"), XATTR_REPLACE).unwrap_err();
    assert!(matches!(e, Error::NoSuchAttribute(_)), "{e}");
    set(&mut fx, &alice(), "/w/f", x("user.a", b"2"), XATTR_REPLACE).unwrap();
    // Who may: write permission for user.; the superuser for trusted. and security.
    let e = set(&mut fx, &bob(), "/w/f", x("user.b", b""), 0).unwrap_err();
    assert!(matches!(e, Error::PermissionDenied(_)), "{e}");
    let e = set(&mut fx, &alice(), "/w/f", x("trusted.t", b""), 0).unwrap_err();
    assert!(matches!(e, Error::NotPermitted(_)), "{e}");
    set(&mut fx, &root(), "/w/f", x("trusted.t", b"t"), 0).unwrap();
    set(&mut fx, &root(), "/w/f", x("security.s", b"s"), 0).unwrap();
    // user. lives only on files and directories (a link's own inode path names the link).
    let l = stat(&mut fx, "/w/l").inode_id.0;
    let e = set(
        &mut fx,
        &alice(),
        &DfsPath::inode(l).to_string(),
        x("user.a", b""),
        0,
    )
    .unwrap_err();
    assert!(matches!(e, Error::NotPermitted(_)), "{e}");
    // Limits: count (ENOSPC), size (E2BIG), name length (ERANGE), namespace (EOPNOTSUPP).
    let e = set(&mut fx, &alice(), "/w/f", x("user.c", b""), 0).unwrap_err();
    assert!(matches!(e, Error::NoSpace(_)), "{e}");
    let e = set(&mut fx, &alice(), "/w/f", x("user.a", &[0; 64]), 0).unwrap_err();
    assert!(matches!(e, Error::TooBig(_)), "{e}");
    let long = format!("user.{}", "n".repeat(251));
    let e = set(&mut fx, &alice(), "/w/f", x(&long, b""), 0).unwrap_err();
    assert!(matches!(e, Error::OutOfRange(_)), "{e}");
    let e = set(&mut fx, &alice(), "/w/f", x("os2.x", b""), 0).unwrap_err();
    assert!(matches!(e, Error::NotSupported(_)), "{e}");
    // What each sees: trusted. only the superuser; security. everyone.
    let names = |fx: &mut Fx, c: &Caller| fx.st.list_xattrs(c, &p("/w/f")).unwrap();
    assert_eq!(
        names(&mut fx, &root()),
        ["security.s", "trusted.t", "user.a"]
    );
    assert_eq!(names(&mut fx, &bob()), ["security.s", "user.a"]);
    let all = fx.st.get_xattrs(&bob(), &p("/w/f"), &[]).unwrap();
    assert_eq!(all, [x("security.s", b"s"), x("user.a", b"2")]);
    let e = fx
        .st
        .get_xattrs(&bob(), &p("/w/f"), &["trusted.t".to_string()])
        .unwrap_err();
    assert!(matches!(e, Error::NoSuchAttribute(_)), "{e}");
    fx.st
        .remove_xattr(&alice(), &p("/w/f"), "user.a", now)
        .unwrap();
    let e = fx
        .st
        .remove_xattr(&alice(), &p("/w/f"), "user.a", now)
        .unwrap_err();
    assert!(matches!(e, Error::NoSuchAttribute(_)), "{e}");
    fx.restart();
    assert_eq!(names(&mut fx, &root()), ["security.s", "trusted.t"]);
}

fn entry(scope: AclScope, kind: AclType, name: Option<&str>, perm: u32) -> AclEntry {
    AclEntry::new(scope, kind, name, perm)
}

#[test]
fn acls_grant_what_the_mode_refuses_and_are_inherited() {
    let mut fx = Fx::new();
    shared(&mut fx, "/w", 0o777);
    create(&mut fx, &alice(), "/w/f", NewMode::new(0o600)).unwrap();
    let now = fx.at(0);
    let read = |fx: &mut Fx, c: &Caller| fx.st.check_path_access(c, &p("/w/f"), READ);
    assert!(read(&mut fx, &bob()).is_err());
    let a = AclScope::Access;
    let grant = AclChange::Modify(vec![entry(a, AclType::User, Some("bob"), 4)]);
    let e = fx
        .st
        .change_acl(&bob(), &p("/w/f"), &grant, now)
        .unwrap_err();
    assert!(matches!(e, Error::NotPermitted(_)), "{e}");
    fx.st.change_acl(&alice(), &p("/w/f"), &grant, now).unwrap();
    read(&mut fx, &bob()).unwrap();
    assert!(read(&mut fx, &carol()).is_err());
    let st = stat(&mut fx, "/w/f");
    assert!(st.has_acl);
    assert_eq!(st.permission, 0o640, "the group bits are the mask");
    // chmod narrows the mask: bob loses read.
    fx.st
        .set_permission(&alice(), &p("/w/f"), 0o600, now)
        .unwrap();
    assert!(read(&mut fx, &bob()).is_err());
    let acl = fx.st.get_acl_status(&root(), &p("/w/f")).unwrap();
    assert_eq!(acl.acl.entries.len(), 2, "{acl:?}");
    // A default ACL is inherited by new children, replacing the umask.
    let d = AclScope::Default;
    mkdir(&mut fx, &alice(), "/w/d", 0o755);
    let dflt = AclChange::Modify(vec![entry(d, AclType::User, Some("bob"), 7)]);
    fx.st.change_acl(&alice(), &p("/w/d"), &dflt, now).unwrap();
    let m = NewMode {
        permission: 0o600,
        unmasked: Some(0o666),
        group: String::new(),
    };
    let st = create(&mut fx, &alice(), "/w/d/child", m).unwrap();
    assert_eq!(st.permission, 0o664);
    fx.st
        .check_path_access(&bob(), &p("/w/d/child"), READ | WRITE)
        .unwrap();
    let sub = MkdirsRequest {
        path: p("/w/d/sub"),
        mode: NewMode {
            permission: 0o700,
            unmasked: Some(0o777),
            group: String::new(),
        },
        create_parent: false,
    };
    fx.st.mkdirs(&alice(), &sub, now).unwrap();
    let acl = fx.st.get_acl_status(&root(), &p("/w/d/sub")).unwrap();
    assert!(acl.acl.entries.iter().any(|e| e.scope == d), "{acl:?}");
    // Only directories have default ACLs; removing the ACL restores plain mode bits.
    let e = fx
        .st
        .change_acl(&alice(), &p("/w/f"), &dflt, now)
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    fx.restart();
    fx.st
        .check_path_access(&bob(), &p("/w/d/child"), WRITE)
        .unwrap();
    fx.st
        .change_acl(&alice(), &p("/w/d/child"), &AclChange::RemoveAll, fx.at(0))
        .unwrap();
    assert!(!stat(&mut fx, "/w/d/child").has_acl);
}

#[test]
fn files_unlinked_while_held_stay_until_released_or_their_holder_expires() {
    let mut fx = Fx::with(|c| c.lease_hard_limit = std::time::Duration::from_secs(60));
    fx.dn("d1", 1);
    let b = fx.write_file("/f", 1, 10);
    fx.write_file("/g", 1, 10);
    let hold = |fx: &mut Fx, path: &str, client: &str| {
        let req = LocationsRequest {
            path: p(path),
            offset: 0,
            length: 0,
            client_host: String::new(),
            client_name: client.to_string(),
            hold: true,
        };
        fx.st.get_block_locations(&root(), &req, fx.at(1)).unwrap()
    };
    let f = hold(&mut fx, "/f", "reader").file_id;
    hold(&mut fx, "/f", "other");
    assert!(fx
        .st
        .delete(&root(), &p("/f"), false, Some(false), fx.at(2))
        .unwrap());
    assert!(fx.st.get_file_info(&root(), &p("/f")).unwrap().is_none());
    // Still readable by its inode path, with no name.
    let orphan = DfsPath::inode(f);
    let lbs = fx
        .st
        .locations_(&root(), &orphan, 0, 0, "", fx.at(2))
        .unwrap();
    assert_eq!((lbs.file_length, lbs.status.unwrap().nlink), (10, 0));
    assert!(
        fx.heartbeat("d1", 2).unwrap().is_empty(),
        "no replica deleted"
    );
    // A restart keeps it (the holders are logged), and their holds.
    fx.restart();
    report(&mut fx, "d1", b);
    fx.st
        .locations_(&root(), &orphan, 0, 0, "", fx.at(3))
        .unwrap();
    fx.st.release_holds("reader", &[InodeId(f)]).unwrap();
    fx.st
        .locations_(&root(), &orphan, 0, 0, "", fx.at(3))
        .unwrap();
    // The last holder goes silent: past the hard limit the orphan and its blocks go.
    fx.st.lease_tick(fx.at(100));
    let e = fx.st.locations_(&root(), &orphan, 0, 0, "", fx.at(100));
    assert!(matches!(e, Err(Error::NotFound(_))), "{e:?}");
    let cmds = fx.heartbeat("d1", 100).unwrap();
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::Delete(v) if v.iter().any(|x| x.id == b.id))),
        "{cmds:?}"
    );
    // A file nobody holds goes at once; a renewing holder keeps one across a restart.
    let g = hold(&mut fx, "/g", "mount").file_id;
    fx.restart();
    fx.dn("d1", 1);
    assert_ne!(
        fx.st.renew_lease("mount", &[InodeId(g)], fx.at(1)).unwrap(),
        0
    );
    fx.st
        .rename(&root(), &p("/f2"), &p("/g"), true, fx.at(1))
        .unwrap_err();
    fx.write_file("/h", 1, 10);
    fx.st
        .rename(&root(), &p("/h"), &p("/g"), true, fx.at(1))
        .unwrap();
    fx.st
        .locations_(&root(), &DfsPath::inode(g), 0, 0, "", fx.at(1))
        .unwrap();
    fx.st.release_holds("mount", &[InodeId(g)]).unwrap();
    assert!(fx
        .st
        .locations_(&root(), &DfsPath::inode(g), 0, 0, "", fx.at(1))
        .is_err());
}
