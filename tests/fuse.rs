//! The cluster mounted for real with `dfs mount`, used by everyday tools as subprocesses.
//! Fails loudly where FUSE cannot be used, unless DFS_SKIP_FUSE_TESTS=1.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::mount::*;
use common::*;

#[test]
fn everyday_tools_on_a_mounted_cluster() {
    let c = cluster()
        .datanodes(3)
        .block_size(1 << 20)
        .replication(2)
        .start()
        .unwrap();
    let Some(m) = mount(&c) else { return };
    let mnt = m.path().display().to_string();
    let local = tempfile::tempdir().unwrap();
    let big = local.path().join("big.bin");
    std::fs::write(&big, data(3 * (1 << 20) + 12345, 21)).unwrap();
    let big_s = big.display();

    // cp of a multi-block file, cmp, and the same bytes through `dfs cat`.
    sh(&format!(
        "cp {big_s} {mnt}/big.bin && cmp {big_s} {mnt}/big.bin"
    ));
    let cat = c.command().args(["cat", "/big.bin"]).output().unwrap();
    assert!(
        cat.stdout == std::fs::read(&big).unwrap(),
        "dfs cat differs from what cp wrote"
    );
    // And the other way: dfs put, read through the mount.
    dfs_ok(&c, &["put", &big_s.to_string(), "/put.bin"]);
    sh(&format!("cmp {big_s} {mnt}/put.bin"));

    // >> appends, and > truncates.
    sh(&format!(
        "echo one >> {mnt}/log.txt && echo two >> {mnt}/log.txt"
    ));
    assert_eq!(
        std::fs::read_to_string(m.p("log.txt")).unwrap(),
        "one\ntwo\n"
    );
    assert_eq!(dfs_ok(&c, &["cat", "/log.txt"]), "one\ntwo\n");
    sh(&format!("echo fresh > {mnt}/log.txt"));
    assert_eq!(std::fs::read_to_string(m.p("log.txt")).unwrap(), "fresh\n");

    // mkdir -p, ls -l sizes and modes after chmod, mv over an existing file, rm -r.
    sh(&format!(
        "mkdir -p {mnt}/a/b/c && printf 12345 > {mnt}/a/b/c/five"
    ));
    sh(&format!("chmod 640 {mnt}/a/b/c/five"));
    let ls = sh(&format!("ls -l {mnt}/a/b/c"));
    assert!(ls.contains("-rw-r-----") && ls.contains(" 5 "), "{ls}");
    sh(&format!(
        "printf new > {mnt}/a/new && printf old > {mnt}/a/old && mv {mnt}/a/new {mnt}/a/old"
    ));
    assert_eq!(std::fs::read_to_string(m.p("a/old")).unwrap(), "new");
    assert!(!m.p("a/new").exists());
    sh(&format!("rm -r {mnt}/a"));
    assert!(!m.p("a").exists());
    assert!(dfs(&c, &["test", "-e", "/a"]).status.code() == Some(1));

    // df shows the cluster's capacity.
    let df = sh(&format!("df -k {mnt}"));
    assert!(df.lines().count() == 2 && df.contains("dfs"), "{df}");

    // tar: create from local files into the mount, extract from the mount into the mount.
    let tree = local.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/x.txt"), "x\n").unwrap();
    std::fs::write(tree.join("y.bin"), data(200_000, 22)).unwrap();
    sh(&format!(
        "tar -C {} -cf {mnt}/t.tar . && mkdir {mnt}/untar && tar -C {mnt}/untar -xf {mnt}/t.tar",
        tree.display()
    ));
    sh(&format!("diff -r {} {mnt}/untar", tree.display()));

    // mmap reading.
    let py = format!(
        "import mmap,sys\nf=open('{mnt}/big.bin','rb')\nm=mmap.mmap(f.fileno(),0,access=mmap.ACCESS_READ)\n\
         d=open('{big_s}','rb').read()\nassert m[:]==d, 'mmap differs'\nassert m[1048570:1048590]==d[1048570:1048590]\nprint(len(m))"
    );
    let out = sh(&format!("python3 -c \"{}\"", py.replace('"', "\\\"")));
    assert_eq!(out.trim(), (3 * (1 << 20) + 12345).to_string());

    // dd streams; `conv=notrunc` rewrites bytes in the middle of the file in place.
    sh(&format!(
        "dd if={big_s} of={mnt}/dd.bin bs=1M status=none && cmp {big_s} {mnt}/dd.bin"
    ));
    sh(&format!(
        "dd if=/dev/zero of={mnt}/dd.bin bs=1 count=1 seek=10 conv=notrunc status=none"
    ));
    let mut want = std::fs::read(&big).unwrap();
    want[10] = 0;
    assert!(std::fs::read(m.p("dd.bin")).unwrap() == want);

    // chown, touch with a given time, cp -p (times set on the open file before it is closed),
    // truncation; mv of a whole directory.
    sh(&format!(
        "printf 12345 > {mnt}/own && chown nobody:nogroup {mnt}/own && \
         touch -d '2020-01-02 03:04:05 UTC' {mnt}/own"
    ));
    let ls = sh(&format!("ls -l {mnt}/own"));
    assert!(ls.contains(" nobody nogroup "), "{ls}");
    assert_eq!(sh(&format!("stat -c %Y {mnt}/own")).trim(), "1577934245");
    sh(&format!(
        "touch -d '2019-05-06 07:08:09 UTC' {big_s} && cp -p {big_s} {mnt}/kept.bin && \
         cmp {big_s} {mnt}/kept.bin"
    ));
    assert_eq!(
        sh(&format!("stat -c %Y {mnt}/kept.bin")).trim(),
        "1557126489"
    );
    // Truncation to any length: a cut keeps the bytes before it; a huge length is a hole that
    // stores nothing.
    sh(&format!(
        "truncate -s 2 {mnt}/own && test \"$(cat {mnt}/own)\" = 12 && \
         truncate -s 1P {mnt}/own && test $(stat -c %s {mnt}/own) = 1125899906842624 && \
         test \"$(head -c 4 {mnt}/own | od -An -c | tr -d ' ')\" = '12\\0\\0' && \
         truncate -s 0 {mnt}/own && test ! -s {mnt}/own"
    ));
    // Growing a file is appending: a sparse file's holes and an extending truncate become zeros.
    let sparse = local.path().join("sparse");
    sh(&format!(
        "truncate -s 3M {sp} && printf x | dd of={sp} bs=1 seek=1048576 conv=notrunc status=none && \
         cp {sp} {mnt}/sparse && cmp {sp} {mnt}/sparse && \
         printf abc > {mnt}/grown && truncate -s 100000 {mnt}/grown",
        sp = sparse.display()
    ));
    let grown = std::fs::read(m.p("grown")).unwrap();
    assert!(grown.len() == 100_000 && &grown[..3] == b"abc" && grown[3..].iter().all(|&b| b == 0));
    // Hard and symbolic links.
    sh(&format!(
        "ln {mnt}/grown {mnt}/hard && test $(stat -c %h {mnt}/grown) = 2 && \
         ln -s grown {mnt}/soft && test \"$(readlink {mnt}/soft)\" = grown && cmp {mnt}/soft {mnt}/hard"
    ));
    sh(&format!(
        "mkdir -p {mnt}/d1/sub && echo deep > {mnt}/d1/sub/f && mv {mnt}/d1 {mnt}/d2"
    ));
    assert_eq!(dfs_ok(&c, &["cat", "/d2/sub/f"]), "deep\n");
    assert!(!m.p("d1").exists());

    // Errors are the right errno, not EIO.
    let err = sh_fails(&format!("cat {mnt}/missing"));
    assert!(err.contains("No such file"), "{err}");
    let err = sh_fails(&format!("mkdir {mnt}/big.bin/sub"));
    assert!(
        err.contains("Not a directory") || err.contains("File exists"),
        "{err}"
    );
    let err = sh_fails(&format!("rmdir {mnt}/untar"));
    assert!(err.contains("not empty"), "{err}");
}

#[test]
fn readdir_pages_and_rsync_and_find() {
    let c = cluster()
        .datanodes(1)
        .replication(1)
        .conf("dfs.ls.limit", "10")
        .start()
        .unwrap();
    let Some(m) = mount(&c) else { return };
    let mnt = m.path().display().to_string();
    sh(&format!(
        "mkdir {mnt}/many && for i in $(seq 1 35); do echo $i > {mnt}/many/f$i; done"
    ));
    {
        // `ls -l` through a mount with kernel caching (as users run it) costs one listing RPC
        // per page of 10 and no stat per entry: names and attributes come together.
        let Some(cached) = mount_with(&c, &[]) else {
            return;
        };
        let (lists, stats) = (rpc_calls(&c, "GetListing"), rpc_calls(&c, "GetFileInfo"));
        let ls = sh(&format!("ls -l {}/many", cached.path().display()));
        assert_eq!(ls.lines().filter(|l| l.starts_with("-rw")).count(), 35);
        let lists = rpc_calls(&c, "GetListing") - lists;
        let stats = rpc_calls(&c, "GetFileInfo") - stats;
        assert!(
            (4..=5).contains(&lists),
            "{lists} listing RPCs for 35 entries"
        );
        assert!(stats <= 3, "{stats} stat RPCs for `ls -l` of 35 entries");
    }
    let ls = sh(&format!("ls {mnt}/many | wc -l"));
    assert_eq!(ls.trim(), "35");
    let found = sh(&format!("find {mnt}/many -type f | wc -l"));
    assert_eq!(found.trim(), "35");
    // 9 files of 2 bytes ("1\n" ...) and 26 of 3.
    let du = sh(&format!("du -s --apparent-size -B1 {mnt}/many"));
    assert!(du.starts_with("96\t"), "{du}");
    assert!(
        Command::new("rsync")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "rsync is missing: scripts/test installs it"
    );
    let local = tempfile::tempdir().unwrap();
    sh(&format!("rsync -a {mnt}/many/ {}/", local.path().display()));
    sh(&format!(
        "rsync -a {}/ {mnt}/copy/ && diff -r {mnt}/many {mnt}/copy",
        local.path().display()
    ));
    // An editor's save: write a temp file, then rename it over the original.
    sh(&format!(
        "printf v1 > {mnt}/doc && printf v2 > {mnt}/.doc.swp && mv -f {mnt}/.doc.swp {mnt}/doc"
    ));
    assert_eq!(dfs_ok(&c, &["cat", "/doc"]), "v2");
}

#[test]
fn other_users_get_posix_errors() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let Some(m) = mount(&c) else { return };
    let mnt = m.path().display().to_string();
    // root is the superuser: it may do anything, and hands out a shared directory.
    sh(&format!(
        "printf secret > {mnt}/private && chmod 600 {mnt}/private && \
         mkdir {mnt}/shared && chmod 1777 {mnt}/shared"
    ));
    let out = sh_as_nobody(&format!("cat {mnt}/private"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("Permission denied"),
        "{err}"
    );
    let out = sh_as_nobody(&format!("chmod 777 {mnt}/private"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("Operation not permitted"),
        "{err}"
    );
    let out = sh_as_nobody(&format!(
        "echo mine > {mnt}/shared/mine && cat {mnt}/shared/mine"
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: serde_json::Value =
        serde_json::from_str(&dfs_ok(&c, &["stat", "--json", "/shared/mine"])).unwrap();
    assert_eq!(st["owner"], "nobody", "{st}");
    // Changing a file's length is writing it, also while another user's handle writes it.
    let out = sh_as_nobody(&format!("truncate -s 0 {mnt}/shared/../private"));
    assert!(!out.status.success(), "nobody truncated root's file");
    // (Not a shell's `exec 3>>f; echo more >&3`: the shell closes a copy of the descriptor
    // around the echo, which completes the file.)
    let holder = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import os, time\nfd = os.open('{mnt}/private', os.O_WRONLY | os.O_APPEND)\n\
             os.write(fd, b'more\\n')\ntime.sleep(30)"
        ))
        .spawn()
        .unwrap();
    // "secret" + "more\n": the holder's writer is open.
    eventually(Duration::from_secs(10), "the holder's write", || {
        (std::fs::metadata(m.p("private")).ok()?.len() == 11).then_some(())
    });
    // truncate(2) by path: no open (whose check would refuse first), only the setattr.
    let out = sh_as_nobody(&format!(
        "perl -e 'truncate(\"{mnt}/private\", 100) or die \"$!\\n\"'"
    ));
    let mut holder = holder;
    let _ = holder.kill();
    let _ = holder.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("Permission denied"),
        "{err}"
    );
    // Names the NameNode refuses get the errno POSIX names, not EIO.
    let err = sh_fails(&format!("touch {mnt}/{}", "n".repeat(256)));
    assert!(err.contains("File name too long"), "{err}");
    let err = sh_fails(&format!("touch {mnt}/$(printf '\\377')"));
    assert!(err.contains("Invalid argument"), "{err}");
    drop(m);

    // The kernel checks permissions, as on a local file system: the NameNode's supergroup is a
    // dfs notion (of its shell and API), so nobody, a member here, still may not read root's
    // private file through the mount.
    let c = cluster()
        .datanodes(1)
        .replication(1)
        .conf("dfs.permissions.superusergroup", "nogroup")
        .start()
        .unwrap();
    let Some(m) = mount(&c) else { return };
    let mnt = m.path().display().to_string();
    sh(&format!(
        "printf secret > {mnt}/private && chmod 600 {mnt}/private"
    ));
    let out = sh_as_nobody(&format!("cat {mnt}/private"));
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn handles_share_appends_read_their_own_writes_and_never_see_a_replacement() {
    let c = cluster()
        .datanodes(2)
        .replication(2)
        .block_size(1 << 20)
        .start()
        .unwrap();
    let Some(m) = mount(&c) else { return };
    let mnt = m.path().display().to_string();
    let dfs_bin = env!("CARGO_BIN_EXE_dfs");
    let nn = c.namenode_addr();
    python(&format!(
        r#"
import os, subprocess
mnt = '{mnt}'
# Two handles appending to one file, alternately: both land, in order.
p = mnt + '/shared.log'
a = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
b = os.open(p, os.O_WRONLY | os.O_APPEND)
for i in range(100):
    os.write(a if i % 2 == 0 else b, b'line %d\n' % i)
os.close(a); os.close(b)
want = b''.join(b'line %d\n' % i for i in range(100))
assert open(p, 'rb').read() == want, 'two appenders'
# A child inherits the descriptor and exits (closing, so flushing, it); the parent writes on.
fd = os.open(p, os.O_WRONLY | os.O_APPEND)
if os.fork() == 0:
    os.write(fd, b'child\n'); os._exit(0)
os.wait()
os.write(fd, b'parent\n'); os.close(fd)
assert open(p, 'rb').read() == want + b'child\nparent\n', 'dup and fork'
# A read-write handle reads back what it wrote, across blocks.
data = os.urandom(2500000)
with open(mnt + '/rw.bin', 'w+b') as f:
    f.write(data); f.flush()
    f.seek(0)
    assert f.read() == data, 'read own writes'
    f.write(b'tail')
    f.seek(len(data))
    assert f.read() == b'tail', 'read own appended writes'
# A reader open across changes made through other handles sees them: appended (as `tail -f`),
# then cut to nothing and written anew.
p = mnt + '/tailed'
open(p, 'wb').write(b'one\n')
r = open(p, 'rb', buffering=0)
assert r.read() == b'one\n'
with open(p, 'ab') as a:
    a.write(b'two\n')
assert r.read() == b'two\n', 'appended'
r.seek(0)
assert r.read() == b'one\ntwo\n', 'read again from the start'
with open(p, 'wb') as t:
    t.write(b'new')
r.seek(0)
assert r.read() == b'new', 'truncated and rewritten'
r.close()
# fsync: the data is durable and visible to other clients while the file is still open.
with open(mnt + '/synced', 'wb') as f:
    f.write(b'durable'); f.flush(); os.fsync(f.fileno())
    seen = subprocess.run(['{dfs_bin}', '--namenode', '{nn}', 'cat', '/synced'], capture_output=True).stdout
    assert seen == b'durable', seen
# A handle open on a file that a rename replaces never reads the new file's bytes.
old = os.urandom(3000000)
open(mnt + '/doc', 'wb').write(old)
f = open(mnt + '/doc', 'rb', buffering=0)
head = f.read(1000)
open(mnt + '/doc.new', 'wb').write(b'N' * 3000000)
os.rename(mnt + '/doc.new', mnt + '/doc')
try:
    rest = f.read()
    assert head + rest == old[:len(head + rest)], 'read bytes of the replacement'
except OSError as e:
    pass  # the replaced file's blocks are gone: an error, never other bytes
assert open(mnt + '/doc', 'rb').read() == b'N' * 3000000
"#
    ));
    assert_eq!(
        dfs_ok(&c, &["cat", "/shared.log"]).lines().count(),
        102,
        "through the shell too"
    );
}

#[test]
fn mounts_start_and_stop_cleanly() {
    if !fuse_available() {
        return;
    }
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    // A NameNode that cannot be reached: one clear line and a non-zero exit, not a hang.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_dfs"))
        .args(["--namenode", &free, "mount"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("cannot reach the NameNode at {free}")) && err.lines().count() == 1,
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!is_mounted(dir.path()));

    // SIGTERM unmounts and exits 0.
    let Some(mut m) = mount(&c) else { return };
    sh(&format!("echo hi > {}/f", m.path().display()));
    let status = m.terminate().expect("dfs mount did not stop on SIGTERM");
    assert!(status.success(), "{status}");
    assert!(!is_mounted(m.path()));

    // Also when a process still sits in the mount: it is detached, not left dead.
    let Some(mut m) = mount(&c) else { return };
    let mut squatter = Command::new("sleep")
        .arg("60")
        .current_dir(m.path())
        .spawn()
        .unwrap();
    let status = m.terminate();
    let _ = squatter.kill();
    let _ = squatter.wait();
    let status = status.expect("a busy dfs mount did not stop on SIGTERM");
    let log = std::fs::read_to_string(&m.log).unwrap_or_default();
    assert!(status.success(), "{status}: {log}");
    assert!(!is_mounted(m.path()), "{log}");
    assert!(log.contains("busy"), "{log}");

    // `dfs up --mount`: a whole local cluster, mounted; Ctrl-C (SIGINT) stops and unmounts it.
    let dir = tempfile::tempdir().unwrap();
    let (out_path, mnt) = (dir.path().join("up.out"), dir.path().join("mnt"));
    let mut up = dfs_up()
        .args(["-D", "dfs.replication=1", "up", "--datanodes", "1", "--dir"])
        .arg(dir.path().join("data"))
        .arg("--mount")
        .arg(&mnt)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let announced = eventually(Duration::from_secs(30), "dfs up --mount", || {
        std::fs::read_to_string(&out_path)
            .ok()
            .filter(|s| s.contains("mounted at"))
    });
    eventually(Duration::from_secs(30), "a write through the mount", || {
        std::fs::write(mnt.join("hello"), "world").ok()
    });
    assert_eq!(std::fs::read_to_string(mnt.join("hello")).unwrap(), "world");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(up.id() as libc::pid_t, libc::SIGINT) };
    let status = eventually(Duration::from_secs(30), "dfs up to stop", || {
        up.try_wait().unwrap()
    });
    if is_mounted(&mnt) {
        let _ = Command::new("umount").arg("-l").arg(&mnt).status();
    }
    assert!(status.success(), "{status}: {announced}");
    assert!(!is_mounted(&mnt));
}
