//! The cluster mounted for real with `dfs mount`, used by everyday tools as subprocesses.
//! Fails loudly where FUSE cannot be used, unless DFS_SKIP_FUSE_TESTS=1.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use dfs_cluster::MiniCluster;

/// A `dfs mount --foreground` child; unmounts (SIGTERM, then `umount -l`) when dropped, also when
/// the test failed.
struct Mounted {
    child: Child,
    dir: tempfile::TempDir,
}

impl Mounted {
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if is_mounted(self.dir.path()) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

fn is_mounted(p: &Path) -> bool {
    let canon = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(canon.to_str().unwrap_or("")))
}

fn mount(c: &MiniCluster) -> Option<Mounted> {
    if std::env::var("DFS_SKIP_FUSE_TESTS").as_deref() == Ok("1") {
        eprintln!("DFS_SKIP_FUSE_TESTS=1: skipping a FUSE test");
        return None;
    }
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: FUSE tests need it (set DFS_SKIP_FUSE_TESTS=1 to skip them)"
    );
    let dir = tempfile::Builder::new()
        .prefix("dfs-mnt-")
        .tempdir()
        .unwrap();
    let out = c.dir().join(format!(
        "mount-{}.out",
        dir.path().file_name().unwrap().to_string_lossy()
    ));
    let child = c
        .command()
        .args([
            "-D",
            "dfs.fuse.attr-timeout=0s",
            "-D",
            "dfs.fuse.entry-timeout=0s",
        ])
        .arg("mount")
        .arg("--foreground")
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(out.with_extension("log")).unwrap())
        .spawn()
        .unwrap();
    let m = Mounted { child, dir };
    eventually(Duration::from_secs(30), "the mount", || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|s| s.contains("mounted at"))
            .map(drop)
    });
    assert!(is_mounted(m.path()), "not in /proc/self/mountinfo");
    Some(m)
}

fn sh(script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "`{script}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh_fails(script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(!out.status.success(), "`{script}` should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

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

    // dd streams; a write in the middle of a file is refused rather than corrupting it.
    sh(&format!(
        "dd if={big_s} of={mnt}/dd.bin bs=1M status=none && cmp {big_s} {mnt}/dd.bin"
    ));
    let err = sh_fails(&format!(
        "dd if=/dev/zero of={mnt}/dd.bin bs=1 count=1 seek=10 conv=notrunc status=none"
    ));
    assert!(err.contains("not supported"), "{err}");
    sh(&format!("cmp {big_s} {mnt}/dd.bin"));

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
    let ls = sh(&format!("ls {mnt}/many | wc -l"));
    assert_eq!(ls.trim(), "35");
    let found = sh(&format!("find {mnt}/many -type f | wc -l"));
    assert_eq!(found.trim(), "35");
    let du = sh(&format!("du -s --apparent-size -B1 {mnt}/many"));
    assert!(du.starts_with(char::is_numeric), "{du}");
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
