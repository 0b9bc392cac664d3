//! A real mount of a MiniCluster (`dfs mount --foreground`), and ways to run programs in it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use dfs_cluster::MiniCluster;

use super::status;

/// A `dfs mount --foreground` child; unmounts (SIGTERM, then `umount -l`) when dropped, also when
/// the test failed.
pub struct Mounted {
    pub child: Child,
    dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// SIGTERM, as a user's Ctrl-C or a service manager: returns how the mount process ended
    /// (None if it did not within 10 s).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- log of the mount at {} ---\n{}",
                self.path().display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        if self.terminate().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if is_mounted(self.dir.path()) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

pub fn is_mounted(p: &Path) -> bool {
    let canon = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(canon.to_str().unwrap_or("")))
}

/// Whether FUSE tests run here: they fail loudly where FUSE is missing, unless skipped.
pub fn fuse_available() -> bool {
    if std::env::var("DFS_SKIP_FUSE_TESTS").as_deref() == Ok("1") {
        eprintln!("DFS_SKIP_FUSE_TESTS=1: skipping a FUSE test");
        return false;
    }
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: FUSE tests need it (set DFS_SKIP_FUSE_TESTS=1 to skip them)"
    );
    true
}

/// Mounts `c` with the kernel's caches off (every test sees the NameNode's truth at once).
pub fn mount(c: &MiniCluster) -> Option<Mounted> {
    mount_with(
        c,
        &[
            "-D",
            "dfs.fuse.attr-timeout=0s",
            "-D",
            "dfs.fuse.entry-timeout=0s",
        ],
    )
}

pub fn mount_with(c: &MiniCluster, defines: &[&str]) -> Option<Mounted> {
    if !fuse_available() {
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("dfs-mnt-")
        .tempdir()
        .unwrap();
    let out = c.dir().join(format!(
        "mount-{}.out",
        dir.path().file_name().unwrap().to_string_lossy()
    ));
    let log = out.with_extension("log");
    let child = c
        .command()
        .args(defines)
        .arg("mount")
        .arg("--foreground")
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut m = Mounted { child, dir, log };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&out).is_ok_and(|s| s.contains("mounted at")) {
        if let Ok(Some(status)) = m.child.try_wait() {
            panic!(
                "dfs mount ended ({status}) before mounting: {}",
                std::fs::read_to_string(&m.log).unwrap_or_default()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "dfs mount did not mount in 30 s: {}",
            std::fs::read_to_string(&m.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(is_mounted(m.path()), "not in /proc/self/mountinfo");
    Some(m)
}

/// Calls of RPC `method` the NameNode has served.
pub fn rpc_calls(c: &MiniCluster, method: &str) -> u64 {
    status(c)["rpc"][method].as_u64().unwrap_or(0)
}

/// Runs `script` as the unprivileged user nobody.
pub fn sh_as_nobody(script: &str) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap()
}

/// Runs a Python program (the tests' way to make exact system calls).
pub fn python(program: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(program)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sh(script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "`{script}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sh_fails(script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(!out.status.success(), "`{script}` should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}
