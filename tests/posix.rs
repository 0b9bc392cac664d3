//! Ordinary programs in a mounted cluster, the way a user runs them: a Python venv, git with a
//! symbolic link, tar, cp -a and rsync -aHAX of a tree of every file type, a fifo, a Unix
//! socket, a file read after it is removed, ACLs granting another user access, attributes set by
//! this mount and by another client; and an unlinked
//! open file reclaimed once its holder dies. Fails loudly where FUSE cannot be used, unless
//! DFS_SKIP_FUSE_TESTS=1.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::mount::*;
use common::*;

/// Every entry of `dir`, one line each, sorted: path, type, mode, owner, size, link count (and
/// which entry it is linked with), target, user.* attributes, access ACL, content digest. Two
/// trees are alike when their manifests are.
fn manifest(dir: &str) -> String {
    python(&format!(
        r#"
import os, hashlib, stat
root = {dir:?}
first = {{}}
out = []
for base, dirs, files in os.walk(root):
    dirs.sort()
    for name in sorted(dirs + files):
        p = os.path.join(base, name)
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        kind = stat.S_IFMT(st.st_mode)
        link = ''
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            link = first.setdefault(st.st_ino, rel)
        target = os.readlink(p) if stat.S_ISLNK(st.st_mode) else ''
        attrs, acl = [], ''
        if not stat.S_ISLNK(st.st_mode):
            for a in sorted(os.listxattr(p)):
                if a.startswith('user.'):
                    attrs.append(a + '=' + os.getxattr(p, a).hex())
            try:
                acl = os.getxattr(p, 'system.posix_acl_access').hex()
            except OSError:
                pass
        digest = ''
        if stat.S_ISREG(st.st_mode):
            digest = hashlib.sha1(open(p, 'rb').read()).hexdigest()
        size = st.st_size if stat.S_ISREG(st.st_mode) else ''
        out.append(' '.join(map(str, [rel, oct(kind), oct(stat.S_IMODE(st.st_mode)), st.st_uid,
                   st.st_gid, size, st.st_nlink if not stat.S_ISDIR(st.st_mode) else '', link,
                   target, ','.join(attrs), acl, digest])))
print('\n'.join(out))
"#
    ))
}

/// A local tree of every kind of entry: files, a hard link, symbolic links (relative, absolute,
/// dangling), a fifo, a directory with the sticky bit, set-ID bits, another owner, xattrs, an ACL.
fn sample_tree(at: &std::path::Path) {
    let t = at.display();
    sh(&format!(
        "mkdir -p {t}/sub/deep && printf one > {t}/f && printf two > {t}/sub/deep/g && \
         ln {t}/f {t}/hard && ln -s f {t}/rel && ln -s /nowhere {t}/dangling && \
         ln -s sub/deep {t}/dirlink && mkfifo {t}/fifo && chmod 1777 {t}/sub && \
         chmod 4755 {t}/sub/deep/g && chown nobody:nogroup {t}/sub/deep && \
         setfattr -n user.color -v blue {t}/f && setfattr -n user.bin -v 0x00ff {t}/sub && \
         setfacl -m u:nobody:r {t}/sub/deep/g"
    ));
}

#[test]
fn tar_cp_and_rsync_round_trip_every_kind_of_entry() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let Some(m) = mount(&c) else { return };
    let mnt = m.path().display().to_string();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    sample_tree(&src);
    let want = manifest(src.to_str().unwrap());
    let tar = local.path().join("t.tar");
    sh(&format!(
        "tar --xattrs --acls -C {} -cpf {} . && mkdir {mnt}/untar && \
         tar --xattrs --acls -C {mnt}/untar -xpf {}",
        src.display(),
        tar.display(),
        tar.display()
    ));
    assert_eq!(manifest(&format!("{mnt}/untar")), want, "tar");
    sh(&format!("cp -a {} {mnt}/cpa", src.display()));
    assert_eq!(manifest(&format!("{mnt}/cpa")), want, "cp -a");
    sh(&format!("rsync -aHAX {}/ {mnt}/rsync/", src.display()));
    assert_eq!(manifest(&format!("{mnt}/rsync")), want, "rsync -aHAX");
    // And back out of the mount, by tar from inside it.
    let back = local.path().join("back");
    sh(&format!(
        "mkdir {b} && tar --xattrs --acls -C {mnt}/rsync -cpf - . | tar --xattrs --acls -C {b} -xpf -",
        b = back.display()
    ));
    assert_eq!(
        manifest(back.to_str().unwrap()),
        want,
        "tar out of the mount"
    );
}

#[test]
fn a_venv_and_git_work_in_the_mount() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let Some(m) = mount(&c) else { return };
    let mnt = m.path().display().to_string();
    sh(&format!("python3 -m venv --without-pip {mnt}/venv"));
    let prefix = sh(&format!(
        "{mnt}/venv/bin/python -c 'import sys; print(sys.prefix)'"
    ));
    assert_eq!(prefix.trim(), format!("{mnt}/venv"));
    let git = "git -c user.email=t@example.com -c user.name=t -c init.defaultBranch=main";
    sh(&format!(
        "mkdir {mnt}/repo && cd {mnt}/repo && {git} init -q && printf hi > a && ln -s a link && \
         {git} add . && {git} commit -qm init && cd {mnt} && {git} clone -q repo clone && \
         test \"$(readlink clone/link)\" = a && test \"$(cat clone/link)\" = hi && \
         cd clone && {git} status --porcelain | wc -c | grep -qx 0"
    ));
}

#[test]
fn fifos_sockets_and_files_removed_while_open_behave_as_posix_says() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let Some(m) = mount(&c) else { return };
    let mnt = m.path().display().to_string();
    // A fifo made in the mount carries data from a writer to a reader.
    sh(&format!("mkfifo {mnt}/pipe"));
    let reader = Command::new("cat")
        .arg(m.p("pipe"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    sh(&format!("printf 'through the fifo' > {mnt}/pipe"));
    let out = reader.wait_with_output().unwrap();
    assert_eq!(out.stdout, b"through the fifo");
    // A Unix socket bound on a path in the mount takes connections.
    let got = python(&format!(
        r#"
import os, socket, threading
path = {:?}
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
def serve():
    conn, _ = srv.accept()
    conn.sendall(conn.recv(100).upper())
    conn.close()
t = threading.Thread(target=serve)
t.start()
cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
cli.connect(path)
cli.sendall(b'hello socket')
print(cli.recv(100).decode())
t.join()
assert os.path.exists(path)
"#,
        m.p("sock").display()
    ));
    assert_eq!(got.trim(), "HELLO SOCKET");
    let ls = sh(&format!("ls -l {mnt}"));
    assert!(
        ls.lines()
            .any(|l| l.starts_with('p') && l.ends_with("pipe")),
        "{ls}"
    );
    assert!(
        ls.lines()
            .any(|l| l.starts_with('s') && l.ends_with("sock")),
        "{ls}"
    );
    // A file read and written through a handle after rm, and after being replaced by a rename.
    let got = python(&format!(
        r#"
import os
d = {mnt:?}
with open(d + '/doomed', 'w') as f:
    f.write('still here')
fd = os.open(d + '/doomed', os.O_RDWR | os.O_APPEND)
os.unlink(d + '/doomed')
assert not os.path.exists(d + '/doomed')
assert os.fstat(fd).st_nlink == 0
os.write(fd, b', and more')
os.lseek(fd, 0, 0)
print(os.read(fd, 100).decode())
os.close(fd)
with open(d + '/old', 'w') as f:
    f.write('old')
with open(d + '/new', 'w') as f:
    f.write('new')
fd = os.open(d + '/old', os.O_RDONLY)
os.rename(d + '/new', d + '/old')
print(os.read(fd, 100).decode(), open(d + '/old').read())
"#
    ));
    assert_eq!(got, "still here, and more\nold new\n");
}

#[test]
fn an_acl_grants_another_user_what_the_mode_refuses() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let Some(m) = mount(&c) else { return };
    let mnt = m.path().display().to_string();
    sh(&format!(
        "printf secret > {mnt}/private && chmod 600 {mnt}/private && mkdir -m 700 {mnt}/box && \
         printf inside > {mnt}/box/f"
    ));
    let denied = sh_as_nobody(&format!("cat {mnt}/private"));
    assert!(!denied.status.success());
    sh(&format!(
        "setfacl -m u:nobody:r {mnt}/private && setfacl -m u:nobody:rx {mnt}/box && \
         setfacl -m u:nobody:r {mnt}/box/f"
    ));
    let acl = sh(&format!("getfacl -p {mnt}/private"));
    assert!(acl.contains("user:nobody:r--"), "{acl}");
    assert!(sh(&format!("ls -l {mnt}/private")).starts_with("-rw-r-----+"));
    for f in ["private", "box/f"] {
        let out = sh_as_nobody(&format!("cat {mnt}/{f}"));
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Write is still refused; and the NameNode enforces the same ACL on its own clients.
    let out = sh_as_nobody(&format!("printf x >> {mnt}/private"));
    assert!(!out.status.success());
    let nobody = c.client_config();
    let nobody = dfs_client::ClientConfig {
        user: Some(dfs_client::user::UserInfo {
            name: "nobody".into(),
            groups: vec!["nogroup".into()],
        }),
        ..nobody
    };
    let client = dfs_client::blocking::DfsClient::connect(nobody).unwrap();
    assert_eq!(read_all(&client, "/private"), b"secret");
    assert!(client.append("/private").is_err());
    // A default ACL is inherited by what is created below.
    sh(&format!(
        "setfacl -d -m u:nobody:rw {mnt}/box && printf new > {mnt}/box/later && \
         getfacl -p {mnt}/box/later | grep -qx 'user:nobody:rw-'"
    ));
    let out = sh_as_nobody(&format!("printf more >> {mnt}/box/later"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn attributes_show_at_once_from_this_mount_and_within_the_timeout_from_another_client() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let timeouts = [
        "-D",
        "dfs.fuse.attr-timeout=1s",
        "-D",
        "dfs.fuse.entry-timeout=1s",
    ];
    let Some(m) = mount_with(&c, &timeouts) else {
        return;
    };
    let mnt = m.path().display().to_string();
    sh(&format!("touch {mnt}/f {mnt}/g && ls -l {mnt} >/dev/null"));
    // Fresh statuses say "no attributes"; this mount's own changes must not be hidden by that.
    let own = sh(&format!(
        "setfattr -n user.own -v 1 {mnt}/f && getfattr --only-values -n user.own {mnt}/f && \
         setfacl -m u:nobody:r {mnt}/f && getfacl -p {mnt}/f"
    ));
    assert!(
        own.starts_with('1') && own.contains("user:nobody:r--"),
        "{own}"
    );
    let client = c.client().unwrap();
    let a = client.as_async();
    client.block_on(async {
        a.set_xattr("/g", "user.k", b"v", dfs_client::XAttrFlag::Any)
            .await
            .unwrap();
        a.modify_acl_entries(
            "/g",
            &[dfs_client::AclEntry::parse("user:nobody:r--").unwrap()],
        )
        .await
        .unwrap();
    });
    std::thread::sleep(Duration::from_millis(1200));
    let other = sh(&format!(
        "getfattr --only-values -n user.k {mnt}/g && getfacl -p {mnt}/g && ls -l {mnt}/g"
    ));
    assert!(
        other.starts_with('v')
            && other.contains("user:nobody:r--")
            && other.contains("-rw-r--r--+"),
        "{other}"
    );
}

#[test]
fn an_unlinked_file_is_reclaimed_when_its_mount_dies() {
    let c = cluster()
        .datanodes(1)
        .replication(1)
        .conf("dfs.namenode.lease.hard-limit", "3s")
        .conf("dfs.client.lease.renew-interval", "1s")
        .start()
        .unwrap();
    let Some(mut m) = mount(&c) else { return };
    let mnt = m.path().display().to_string();
    sh(&format!("head -c 100000 /dev/urandom > {mnt}/big"));
    let mut holder = Reaped(
        Command::new("python3")
            .arg("-c")
            .arg(format!(
                "import os, time\nfd = os.open('{mnt}/big', os.O_RDONLY)\nos.unlink('{mnt}/big')\n\
                 print('unlinked', flush=True)\ntime.sleep(60)"
            ))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    let mut out = std::io::BufReader::new(holder.0.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "unlinked\n");
    let blocks = |c: &dfs_cluster::MiniCluster| status(c)["blocks"].as_u64().unwrap_or(u64::MAX);
    // Kept while held, past the hard limit since the mount renews.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(blocks(&c), 1, "an open unlinked file keeps its block");
    // The mount dies without releasing: after the hard limit the block goes.
    let _ = m.child.kill();
    let _ = m.child.wait();
    eventually(
        Duration::from_secs(20),
        "the orphan's block reclaimed",
        || (blocks(&c) == 0).then_some(()),
    );
}

/// A child process killed and waited for when dropped, also when the test fails.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
