//! The `dfs` command as users type it: roles, configuration, shell commands, admin, errors.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

#[test]
fn shell_commands_tour() {
    let c = cluster()
        .datanodes(2)
        .replication(2)
        .block_size(256 * 1024)
        .start()
        .unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("in.bin");
    let content = data(700_000, 11);
    std::fs::write(&src, &content).unwrap();
    let src_s = src.to_str().unwrap();

    dfs_ok(&c, &["mkdir", "-p", "/user/alice/in"]);
    dfs_ok(&c, &["put", src_s, "/user/alice/in/"]);
    let err = dfs_err(&c, &["put", src_s, "/user/alice/in/in.bin"]);
    assert!(err.contains("exists"), "{err}");
    dfs_ok(&c, &["put", "-f", src_s, "/user/alice/in/in.bin"]);
    let ls = dfs_ok(&c, &["ls", "/user/alice/in"]);
    assert!(
        ls.contains("/user/alice/in/in.bin") && ls.contains("700000"),
        "{ls}"
    );
    let ls_h = dfs_ok(&c, &["ls", "-h", "/user/alice/in"]);
    assert!(ls_h.contains("683.6 K"), "{ls_h}");
    let json: serde_json::Value =
        serde_json::from_str(&dfs_ok(&c, &["ls", "--json", "/user/alice/in"])).unwrap();
    assert_eq!(json[0]["length"], 700000);
    assert_eq!(json[0]["replication"], 2);

    // cat, head, tail, get.
    let cat = c
        .command()
        .args(["cat", "/user/alice/in/in.bin"])
        .output()
        .unwrap();
    assert!(cat.stdout == content);
    let head = c
        .command()
        .args(["head", "/user/alice/in/in.bin"])
        .output()
        .unwrap();
    assert_eq!(head.stdout, content[..1024]);
    let tail = c
        .command()
        .args(["tail", "/user/alice/in/in.bin"])
        .output()
        .unwrap();
    assert_eq!(tail.stdout, content[content.len() - 1024..]);
    let got = local.path().join("got.bin");
    dfs_ok(&c, &["get", "/user/alice/in/in.bin", got.to_str().unwrap()]);
    assert!(std::fs::read(&got).unwrap() == content);

    // put from stdin, append from stdin and a file.
    let mut child = c
        .command()
        .args(["put", "-", "/user/alice/stdin.txt"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let tail_file = local.path().join("more.txt");
    std::fs::write(&tail_file, "more\n").unwrap();
    dfs_ok(
        &c,
        &[
            "append",
            tail_file.to_str().unwrap(),
            "/user/alice/stdin.txt",
        ],
    );
    assert_eq!(
        dfs_ok(&c, &["cat", "/user/alice/stdin.txt"]),
        "from stdin\nmore\n"
    );

    // mv, cp, touchz, test, stat.
    dfs_ok(&c, &["mkdir", "/user/alice/out"]);
    dfs_ok(&c, &["mv", "/user/alice/stdin.txt", "/user/alice/out"]);
    dfs_ok(
        &c,
        &["cp", "/user/alice/out/stdin.txt", "/user/alice/copy.txt"],
    );
    assert_eq!(
        dfs_ok(&c, &["cat", "/user/alice/copy.txt"]),
        "from stdin\nmore\n"
    );
    dfs_ok(&c, &["touchz", "/user/alice/empty"]);
    assert!(dfs(&c, &["test", "-z", "/user/alice/empty"])
        .status
        .success());
    assert!(dfs(&c, &["test", "-d", "/user/alice/out"]).status.success());
    assert!(!dfs(&c, &["test", "-f", "/user/alice/out"]).status.success());
    assert!(!dfs(&c, &["test", "-e", "/user/alice/nope"])
        .status
        .success());
    let st: serde_json::Value = serde_json::from_str(&dfs_ok(
        &c,
        &["stat", "--json", "/user/alice/out/stdin.txt"],
    ))
    .unwrap();
    assert_eq!(st["length"], 16);
    assert_eq!(st["type"], "file");

    // truncate: cut inside the file, then grow it by a hole of zeros (`-w` as in hdfs dfs).
    let out = dfs_ok(&c, &["truncate", "4", "/user/alice/copy.txt"]);
    assert_eq!(out.trim(), "Truncated /user/alice/copy.txt to length: 4");
    assert_eq!(dfs_ok(&c, &["cat", "/user/alice/copy.txt"]), "from");
    dfs_ok(&c, &["truncate", "-w", "6", "/user/alice/copy.txt"]);
    assert_eq!(dfs_ok(&c, &["cat", "/user/alice/copy.txt"]), "from\0\0");
    assert!(dfs_err(&c, &["truncate", "1", "/user/alice/out"]).contains("is a directory"));

    // chmod, chown, setrep, du, count, df, checksum.
    dfs_ok(&c, &["chmod", "-R", "750", "/user/alice"]);
    dfs_ok(&c, &["chown", "-R", "alice:staff", "/user/alice"]);
    let ls = dfs_ok(&c, &["ls", "/user/alice"]);
    assert!(
        ls.contains("drwxr-x---") && ls.contains("alice") && ls.contains("staff"),
        "{ls}"
    );
    dfs_ok(&c, &["setrep", "1", "/user/alice/in"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&dfs_ok(
            &c,
            &["stat", "--json", "/user/alice/in/in.bin"]
        ))
        .unwrap()["replication"],
        1
    );
    let du = dfs_ok(&c, &["du", "-s", "/user/alice/in"]);
    assert!(du.starts_with("700000"), "{du}");
    let count = dfs_ok(&c, &["count", "/user/alice"]);
    let fields: Vec<&str> = count.split_whitespace().collect();
    // alice, in, out; in.bin, stdin.txt, copy.txt (truncated to 6), empty.
    assert_eq!(
        &fields[..3],
        &["3", "4", &(700_000 + 16 + 6).to_string()],
        "{count}"
    );
    let df = dfs_ok(&c, &["df", "-h"]);
    assert!(df.contains("Filesystem") && df.contains("dfs://"), "{df}");
    let sum1 = dfs_ok(&c, &["checksum", "/user/alice/in/in.bin"]);
    dfs_ok(&c, &["put", src_s, "/again.bin"]);
    let sum2 = dfs_ok(&c, &["checksum", "/again.bin"]);
    assert_eq!(
        sum1.split('\t').nth(2),
        sum2.split('\t').nth(2),
        "equal content, equal checksum"
    );
    assert!(sum1.contains("CRC32C"), "{sum1}");

    // rm.
    let err = dfs_err(&c, &["rm", "/user/alice/out"]);
    assert!(err.contains("is a directory"), "{err}");
    dfs_ok(&c, &["rm", "-r", "/user/alice/out"]);
    dfs_ok(&c, &["rm", "-f", "/user/alice/never-existed"]);
    assert!(!dfs(&c, &["test", "-e", "/user/alice/out"]).status.success());

    // Admin report and fsck.
    let report: serde_json::Value =
        serde_json::from_str(&dfs_ok(&c, &["admin", "report", "--json"])).unwrap();
    assert_eq!(report["live_datanodes"], 2);
    assert_eq!(report["datanodes"].as_array().unwrap().len(), 2);
    let text = dfs_ok(&c, &["admin", "report"]);
    assert!(text.contains("Live datanodes (2)"), "{text}");
    let fsck_text = dfs_ok(&c, &["fsck", "/"]);
    assert!(fsck_text.contains("is HEALTHY"), "{fsck_text}");

    // The HTTP status endpoint.
    assert_eq!(status(&c)["live_datanodes"], 2);
}

#[test]
fn configuration_errors_and_unreachable_namenode() {
    let bin = env!("CARGO_BIN_EXE_dfs");
    let out = std::process::Command::new(bin)
        .args(["-D", "dfs.no.such.key=1", "ls", "/"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dfs.no.such.key"), "{err}");
    // -D after the subcommand works too, and a bad value is named.
    let out = std::process::Command::new(bin)
        .args(["ls", "/", "-D", "dfs.blocksize=huge"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("dfs.blocksize"),
        "{err}"
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free = listener.local_addr().unwrap().to_string();
    drop(listener);
    let out = std::process::Command::new(bin)
        .args(["--namenode", &free, "ls", "/"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("cannot reach the NameNode at {free}")),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bad.toml");
    std::fs::write(&conf, "[dfs]\nreplication = \"three\"\n").unwrap();
    let out = std::process::Command::new(bin)
        .args(["--config", conf.to_str().unwrap(), "ls", "/"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("dfs.replication"),
        "{err}"
    );
}

#[test]
fn dfs_up_runs_a_local_cluster_and_stops_on_sigterm() {
    let bin = env!("CARGO_BIN_EXE_dfs");
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("up.out");
    let child = dfs_up()
        .args([
            "-D",
            "dfs.heartbeat.interval=500ms",
            "up",
            "--datanodes",
            "2",
            "--dir",
            dir.path().join("data").to_str().unwrap(),
        ])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    /// Kills `dfs up` if the test fails before stopping it.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut guard = Reap(child);
    let pid = guard.0.id();
    let line = eventually(
        std::time::Duration::from_secs(30),
        "dfs up to announce itself",
        || {
            std::fs::read_to_string(&out_path)
                .ok()
                .filter(|s| s.contains("dfs is up"))
        },
    );
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("rpc="))
        .unwrap()
        .trim_end_matches(',')
        .to_string();
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(["--namenode", &addr, "-D", "dfs.replication=2"])
            .args(args)
            .output()
            .unwrap()
    };
    eventually(
        std::time::Duration::from_secs(30),
        "2 live DataNodes",
        || {
            let out = run(&["admin", "report", "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            (v["live_datanodes"] == 2).then_some(())
        },
    );
    let local = dir.path().join("hello.txt");
    std::fs::write(&local, "hello dfs\n").unwrap();
    assert!(run(&["put", local.to_str().unwrap(), "/hello.txt"])
        .status
        .success());
    assert_eq!(run(&["cat", "/hello.txt"]).stdout, b"hello dfs\n");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let status = guard.0.wait().unwrap();
    assert!(status.success(), "dfs up exited with {status}");
    assert!(dir.path().join("data/namenode").exists());
}

/// Runs `dfs ARGS` with a standard output whose reader is already gone, as in `dfs ... | head`
/// once `head` has exited.
fn dfs_into_closed_pipe(c: &dfs_cluster::MiniCluster, args: &[&str]) -> std::process::Output {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two descriptors we then own; the read end is closed at once.
    let (read_end, write_end) = unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    drop(read_end);
    c.command()
        .args(args)
        .stdout(std::process::Stdio::from(write_end))
        .output()
        .unwrap()
}

#[test]
fn shell_errors_broken_pipes_modes_and_safe_mode_status() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    dfs_ok(&c, &["mkdir", "/d"]);
    dfs_ok(&c, &["touchz", "/d/f"]);
    // One clear line each, and a failing exit status.
    for (args, says) in [
        (&["mkdir", "-p", "/d/f/sub"][..], "not a directory: /d/f"),
        (&["rmdir", "/d/f"][..], "not a directory: /d/f"),
        (&["cat", "/d"][..], "is a directory: /d"),
        (&["rm", "/d"][..], "/d: is a directory"),
        (&["rmdir", "/d"][..], "directory not empty: /d"),
        (
            &["ls", "/d/missing"][..],
            "no such file or directory: /d/missing",
        ),
    ] {
        let err = dfs_err(&c, args);
        assert!(err.contains(says), "dfs {args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "dfs {args:?}: {err}");
    }
    dfs_ok(&c, &["rm", "/d/f"]);
    dfs_ok(&c, &["rmdir", "/d"]);

    // A reader that went away (`| head`) ends a command quietly, with the status a shell shows
    // for `cat` killed by SIGPIPE; no panic, no backtrace.
    for i in 0..30 {
        dfs_ok(&c, &["touchz", &format!("/many{i:02}")]);
    }
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("x");
    std::fs::write(&src, "x").unwrap();
    dfs_ok(&c, &["put", src.to_str().unwrap(), "/one"]);
    for args in [
        &["admin", "report"][..],
        &["ls", "-R", "/"][..],
        &["ls", "--json", "/"][..],
        &["cat", "/one"][..],
        &["stat", "/many00"][..],
        &["admin", "safemode", "get"][..],
    ] {
        let out = dfs_into_closed_pipe(&c, args);
        assert_eq!(out.status.code(), Some(141), "dfs {args:?}: {out:?}");
        assert!(
            out.stderr.is_empty(),
            "dfs {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The NameNode's status line is printed once, not after its own prefix again.
    let get = dfs_ok(&c, &["admin", "safemode", "get"]);
    assert_eq!(get, "Safe mode is OFF.\n");

    // A umask of 777 makes mode-0 directories and files (0 is a mode, not "unset").
    let umask = ["-D", "fs.permissions.umask-mode=777"];
    dfs_ok(&c, &[&umask[..], &["mkdir", "/m0"][..]].concat());
    dfs_ok(
        &c,
        &[&umask[..], &["put", src.to_str().unwrap(), "/m0/x"][..]].concat(),
    );
    for p in ["/m0", "/m0/x"] {
        let st: serde_json::Value =
            serde_json::from_str(&dfs_ok(&c, &["stat", "--json", p])).unwrap();
        assert_eq!(st["permission"], "0", "{p}: {st}");
    }

    // No DataNode at all: a write says so.
    let empty = cluster().datanodes(0).start().unwrap();
    let err = dfs_err(&empty, &["put", src.to_str().unwrap(), "/x"]);
    assert!(err.contains("no live DataNodes"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn ls_streams_pages_in_tree_order_and_reports_decommission_progress() {
    let c = cluster()
        .datanodes(2)
        .replication(1)
        .block_size(64 * 1024)
        .conf("dfs.ls.limit", "3")
        // No replication monitor pass during the test: a decommission stays in progress.
        .conf("dfs.namenode.replication.interval", "1h")
        .start()
        .unwrap();
    // Pages of 3: a directory's entries come right after it, whatever the page boundaries.
    for d in ["/t/a/x", "/t/b", "/t/c", "/t/d/y/z"] {
        dfs_ok(&c, &["mkdir", "-p", d]);
    }
    for f in ["/t/a/f1", "/t/a/f2", "/t/a/f3", "/t/a/f4", "/t/e"] {
        dfs_ok(&c, &["touchz", f]);
    }
    let ls = dfs_ok(&c, &["ls", "-R", "/t"]);
    let paths: Vec<&str> = ls
        .lines()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/t/a", "/t/a/f1", "/t/a/f2", "/t/a/f3", "/t/a/f4", "/t/a/x", "/t/b", "/t/c", "/t/d",
            "/t/d/y", "/t/d/y/z", "/t/e"
        ],
        "{ls}"
    );
    let ls = dfs_ok(&c, &["ls", "/t/a"]);
    assert!(ls.starts_with("Found 5 items\n"), "{ls}");
    assert_eq!(ls.lines().count(), 6, "{ls}");
    let json: serde_json::Value =
        serde_json::from_str(&dfs_ok(&c, &["ls", "--json", "/t"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 5);
    // A page size of 0 would never end a listing: it is refused, naming the key.
    let err = dfs_err(&c, &["-D", "dfs.ls.limit=0", "ls", "/t"]);
    assert!(err.contains("dfs.ls.limit"), "{err}");

    // Decommission progress: the blocks the node still holds alone.
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("blocks");
    std::fs::write(&src, data(10 * 64 * 1024, 5)).unwrap();
    dfs_ok(&c, &["put", src.to_str().unwrap(), "/blocks"]);
    let report = || -> serde_json::Value {
        serde_json::from_str(&dfs_ok(&c, &["admin", "report", "--json"])).unwrap()
    };
    let busiest = eventually(
        std::time::Duration::from_secs(10),
        "the DataNodes to report 10 blocks",
        || {
            let r = report();
            let dns = r["datanodes"].as_array().unwrap().clone();
            let total: u64 = dns.iter().map(|d| d["blocks"].as_u64().unwrap()).sum();
            (total == 10).then(|| {
                dns.into_iter()
                    .max_by_key(|d| d["blocks"].as_u64().unwrap())
                    .unwrap()
            })
        },
    );
    let addr = busiest["addr"].as_str().unwrap();
    let held = busiest["blocks"].as_u64().unwrap();
    assert_eq!(busiest["blocks_to_drain"], 0, "not draining yet");
    dfs_ok(&c, &["admin", "decommission", addr]);
    let r = report();
    let d = r["datanodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["addr"] == addr)
        .unwrap()
        .clone();
    assert_eq!(d["admin_state"], "decommissioning", "{d}");
    assert_eq!(d["blocks_to_drain"], held, "{d}");
    let text = dfs_ok(&c, &["admin", "report"]);
    assert!(
        text.contains(&format!(
            "Decommission in progress: {held} block(s) still to copy elsewhere"
        )),
        "{text}"
    );
}

/// `dfs bench meta` runs every phase against the cluster's NameNode, with durable replies and
/// without, counts every operation, reports the NameNode's memory, and leaves nothing behind.
#[test]
fn bench_meta_measures_every_phase_and_cleans_up() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    for durable in ["true", "false"] {
        let define = format!("dfs.client.durable-replies={durable}");
        let out = dfs_ok(
            &c,
            &[
                "-D",
                &define,
                "bench",
                "meta",
                "--clients",
                "3",
                "--ops",
                "30",
            ],
        );
        assert!(out.contains(&format!("durable replies {durable}")), "{out}");
        for phase in ["mkdirs", "create", "stat", "rename", "delete"] {
            let line = out
                .lines()
                .find(|l| l.starts_with(phase))
                .unwrap_or_else(|| panic!("no {phase} line in {out}"));
            assert!(line.contains("ops/s") && line.contains("(30 in"), "{line}");
        }
        assert!(out.contains("entries/s  (30 in"), "{out}");
        assert!(
            out.contains("resident memory with the files created") && out.contains("(30 files"),
            "{out}"
        );
        assert!(
            !out.contains("memory with the files created: 0.0 MiB"),
            "{out}"
        );
        let end = out.lines().find(|l| l.contains("at the end")).unwrap();
        assert!(
            end.contains("(0 files"),
            "a deleted file outlived the run: {out}"
        );
    }
    assert_eq!(
        dfs_ok(&c, &["ls", "/benchmarks/dfs-bench"]),
        "Found 0 items\n"
    );
    let err = dfs_err(&c, &["bench", "meta", "--clients", "0"]);
    assert!(err.contains("at least 1"), "{err}");
}

/// Runs `dfs ARGS` in a pseudo-terminal (util-linux `script`), returning what the terminal
/// showed (standard output and standard error together) and whether it succeeded.
fn dfs_in_terminal(c: &dfs_cluster::minicluster::MiniCluster, args: &[&str]) -> (bool, String) {
    let mut words = vec![env!("CARGO_BIN_EXE_dfs").to_string()];
    words.extend(c.defines());
    words.extend(["--namenode".to_string(), c.namenode_addr().to_string()]);
    words.extend(args.iter().map(|a| a.to_string()));
    let line = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .expect("run script (util-linux)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `put`, `get`, `cp`, `append` and `getmerge` draw a progress bar (bytes, total, rate, ETA) on a
/// terminal and print nothing on a pipe; `getmerge` concatenates in name order, with `-nl` and
/// `-skip-empty-file` as `hdfs dfs` spells them.
#[test]
fn progress_bars_on_a_terminal_only_and_getmerge() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let local = tempfile::tempdir().unwrap();
    let big = local.path().join("big.bin");
    std::fs::write(&big, data(3 << 20, 4)).unwrap();
    let big_s = big.to_str().unwrap();
    let back = local.path().join("back.bin");
    let back_s = back.to_str().unwrap();

    for (args, what) in [
        (vec!["put", big_s, "/tty.bin"], "put"),
        (vec!["get", "/tty.bin", back_s], "get"),
        (vec!["cp", "/tty.bin", "/tty-copy.bin"], "cp"),
        (vec!["append", big_s, "/tty-copy.bin"], "append"),
    ] {
        let (ok, shown) = dfs_in_terminal(&c, &args);
        assert!(ok, "{what}: {shown}");
        assert!(
            shown.contains("3.00 MiB/3.00 MiB") && shown.contains("ETA"),
            "{what} on a terminal shows its progress: {shown:?}"
        );
    }
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&big).unwrap());
    // The same commands on pipes print nothing at all.
    let out = dfs(&c, &["put", big_s, "/piped.bin"]);
    assert!(out.status.success() && out.stderr.is_empty() && out.stdout.is_empty());
    std::fs::remove_file(&back).unwrap();
    let out = dfs(&c, &["get", "/piped.bin", back_s]);
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");

    dfs_ok(&c, &["mkdir", "/parts"]);
    for (name, body) in [("b", "second"), ("a", "first"), ("c", "")] {
        let f = local.path().join(name);
        std::fs::write(&f, body).unwrap();
        dfs_ok(&c, &["put", f.to_str().unwrap(), &format!("/parts/{name}")]);
    }
    dfs_ok(&c, &["mkdir", "/parts/sub"]);
    let merged = local.path().join("merged");
    let merged_s = merged.to_str().unwrap();
    dfs_ok(&c, &["getmerge", "/parts", merged_s]);
    assert_eq!(std::fs::read_to_string(&merged).unwrap(), "firstsecond");
    dfs_ok(&c, &["getmerge", "-nl", "/parts", merged_s]);
    assert_eq!(
        std::fs::read_to_string(&merged).unwrap(),
        "first\nsecond\n\n"
    );
    dfs_ok(
        &c,
        &["getmerge", "-nl", "-skip-empty-file", "/parts", merged_s],
    );
    assert_eq!(std::fs::read_to_string(&merged).unwrap(), "first\nsecond\n");
    let (ok, shown) = dfs_in_terminal(&c, &["getmerge", "/parts", merged_s]);
    assert!(ok && shown.contains("11 B/11 B"), "{shown:?}");
    let err = dfs_err(&c, &["getmerge", "/nope", merged_s]);
    assert!(err.contains("/nope"), "{err}");
}

/// Trash as `hdfs dfs` has it: with `fs.trash.interval` on, `rm` moves to
/// `/user/NAME/.Trash/Current/PATH` (a second one of the same name gets a suffix), `-skipTrash`
/// and anything already in the trash are deleted at once, the trash's ancestors are refused,
/// `expunge` checkpoints and `expunge -immediate` empties it; the NameNode's emptier expires
/// checkpoints by itself and frees their blocks.
#[test]
fn trash_keeps_what_rm_deletes_until_it_expires() {
    let user = dfs_client::user::UserInfo::current().name;
    let trash = format!("/user/{user}/.Trash");
    // An interval of an hour: nothing expires by itself while the first part runs.
    let c = cluster()
        .datanodes(1)
        .replication(1)
        .conf("fs.trash.interval", "60")
        .start()
        .unwrap();
    let local = tempfile::tempdir().unwrap();
    let f = local.path().join("f");
    std::fs::write(&f, b"precious").unwrap();
    let f = f.to_str().unwrap();
    dfs_ok(&c, &["mkdir", "-p", "/data/dir"]);
    dfs_ok(&c, &["put", f, "/data/a"]);
    dfs_ok(&c, &["put", f, "/data/dir/b"]);

    let out = dfs_ok(&c, &["rm", "/data/a"]);
    let at = format!("{trash}/Current/data/a");
    assert_eq!(out, format!("Moved: '/data/a' to trash at: {at}\n"));
    assert_eq!(dfs_ok(&c, &["cat", &at]), "precious");
    assert!(dfs_err(&c, &["ls", "/data/a"]).contains("/data/a"));
    // The trash's directories are the owner's alone, as HDFS makes them.
    for dir in [trash.clone(), format!("{trash}/Current/data")] {
        let st: serde_json::Value =
            serde_json::from_str(&dfs_ok(&c, &["stat", "--json", &dir])).unwrap();
        assert_eq!(st["permission"], "700", "{dir}");
    }
    let err = dfs_err(&c, &["rm", "/data/dir"]);
    assert!(err.contains("is a directory"), "{err}");
    dfs_ok(&c, &["rm", "-r", "/data/dir"]);
    assert_eq!(
        dfs_ok(&c, &["cat", &format!("{trash}/Current/data/dir/b")]),
        "precious"
    );
    // The same name again: kept beside the first.
    dfs_ok(&c, &["put", f, "/data/a"]);
    let out = dfs_ok(&c, &["rm", "/data/a"]);
    assert!(
        out.starts_with(&format!("Moved: '/data/a' to trash at: {at}1")),
        "{out}"
    );
    // -skipTrash (as hdfs spells it) deletes; so does rm of what is in the trash.
    dfs_ok(&c, &["put", f, "/data/c"]);
    assert_eq!(dfs_ok(&c, &["rm", "-skipTrash", "/data/c"]), "");
    assert_eq!(dfs_ok(&c, &["rm", &at]), "");
    assert!(!dfs(&c, &["test", "-e", &at]).status.success());
    let err = dfs_err(&c, &["rm", "-r", "/user"]);
    assert!(err.contains("contains the trash"), "{err}");

    // expunge: Current becomes a checkpoint named by the time (yyMMddHHmmss).
    dfs_ok(&c, &["expunge"]);
    let names: Vec<String> = dfs_ok(&c, &["ls", &trash])
        .lines()
        .skip(1)
        .map(|l| l.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].len() == 12 && names[0].bytes().all(|b| b.is_ascii_digit()),
        "{names:?}"
    );
    let kept = format!("{trash}/{}/data/dir/b", names[0]);
    assert_eq!(dfs_ok(&c, &["cat", &kept]), "precious");
    dfs_ok(&c, &["expunge", "-immediate"]);
    assert_eq!(dfs_ok(&c, &["ls", &trash]), "Found 0 items\n");
    drop(c);

    // An interval of 1.2 s: the NameNode checkpoints and expires by itself.
    let c = cluster()
        .datanodes(1)
        .replication(1)
        .conf("fs.trash.interval", "0.02")
        .start()
        .unwrap();
    dfs_ok(&c, &["put", f, "/gone"]);
    assert!(dfs_ok(&c, &["rm", "/gone"]).starts_with("Moved: '/gone'"));
    assert_eq!(admin_report(&c)["blocks"], 1);
    eventually(Duration::from_secs(20), "the trash to expire", || {
        let listing = dfs_ok(&c, &["ls", &trash]);
        (listing == "Found 0 items\n").then_some(())
    });
    eventually(Duration::from_secs(10), "the blocks to be freed", || {
        (admin_report(&c)["blocks"] == 0).then_some(())
    });
}

/// The commands and flags `hdfs dfs` users reach for: `find -name/-iname/-print0`, `touch -a -m
/// -t -c`, `ls -d -C -t -S -r -u`, `tail -f`, `moveFromLocal`, `moveToLocal`, `usage` and `help`,
/// with their errors and exit codes.
#[test]
fn find_touch_ls_flags_tail_follow_moves_and_help() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let local = tempfile::tempdir().unwrap();
    let put = |name: &str, body: &[u8], to: &str| {
        let f = local.path().join(name);
        std::fs::write(&f, body).unwrap();
        dfs_ok(&c, &["put", f.to_str().unwrap(), to]);
    };
    dfs_ok(&c, &["mkdir", "-p", "/f/sub/deep"]);
    put("a", b"1", "/f/a.txt");
    put("b", b"22", "/f/sub/B.TXT");
    put("c", b"333", "/f/sub/deep/c.log");

    // find
    let found = dfs_ok(&c, &["find", "/f", "-name", "*.txt", "-print"]);
    assert_eq!(found, "/f/a.txt\n");
    let found = dfs_ok(&c, &["find", "/f", "-iname", "*.txt"]);
    assert_eq!(found, "/f/a.txt\n/f/sub/B.TXT\n");
    let all = dfs_ok(&c, &["find", "/f"]);
    assert_eq!(all.lines().count(), 6, "{all}");
    let nul = dfs_ok(&c, &["find", "/f/sub", "-name", "c.*", "-print0"]);
    assert_eq!(nul, "/f/sub/deep/c.log\0");
    assert!(dfs_err(&c, &["find", "/nope"]).contains("/nope"));
    assert!(dfs_err(&c, &["find", "/f", "-name", "[x"]).contains("bad pattern"));

    // touch: creates, sets -t times, -a / -m alone, -c creates nothing
    dfs_ok(&c, &["touch", "/f/new"]);
    assert!(dfs(&c, &["test", "-z", "/f/new"]).status.success());
    dfs_ok(&c, &["touch", "-t", "20240229:123456", "/f/a.txt"]);
    let st: serde_json::Value =
        serde_json::from_str(&dfs_ok(&c, &["stat", "--json", "/f/a.txt"])).unwrap();
    assert_eq!(st["mtime_ms"], 1_709_210_096_000u64);
    assert_eq!(st["atime_ms"], 1_709_210_096_000u64);
    dfs_ok(&c, &["touch", "-m", "-t", "20250101:000000", "/f/a.txt"]);
    let st: serde_json::Value =
        serde_json::from_str(&dfs_ok(&c, &["stat", "--json", "/f/a.txt"])).unwrap();
    assert_eq!(st["mtime_ms"], 1_735_689_600_000u64);
    assert_eq!(
        st["atime_ms"], 1_709_210_096_000u64,
        "-m leaves the access time"
    );
    dfs_ok(&c, &["touch", "-c", "/f/not-made"]);
    assert!(!dfs(&c, &["test", "-e", "/f/not-made"]).status.success());
    assert!(dfs_err(&c, &["touch", "-t", "2024-02-29", "/f/x"]).contains("yyyyMMdd:HHmmss"));

    // ls flags
    let ls = dfs_ok(&c, &["ls", "-d", "/f"]);
    assert!(
        ls.starts_with('d') && ls.trim_end().ends_with(" /f") && ls.lines().count() == 1,
        "{ls}"
    );
    assert_eq!(
        dfs_ok(&c, &["ls", "-C", "/f"]),
        "/f/a.txt\n/f/new\n/f/sub\n"
    );
    let by_size = dfs_ok(&c, &["ls", "-C", "-S", "/f/sub/deep", "/f"]);
    assert_eq!(by_size, "/f/sub/deep/c.log\n/f/a.txt\n/f/new\n/f/sub\n");
    assert_eq!(
        dfs_ok(&c, &["ls", "-C", "-r", "/f"]),
        "/f/sub\n/f/new\n/f/a.txt\n"
    );
    // a.txt's mtime is 2025, the others' now: newest first puts it last; by access time (-u,
    // 2024 for a.txt) it still comes after the file made just now.
    assert_eq!(
        dfs_ok(&c, &["ls", "-C", "-t", "/f"]).lines().last(),
        Some("/f/a.txt")
    );
    let by_atime = dfs_ok(&c, &["ls", "-C", "-t", "-u", "/f"]);
    let at = |p: &str| by_atime.lines().position(|l| l == p).unwrap();
    assert!(at("/f/new") < at("/f/a.txt"), "{by_atime}");
    assert!(dfs_ok(&c, &["ls", "-u", "/f/a.txt"]).contains("2024-02-29 12:34"));

    // tail -f shows what is appended, until killed
    let mut tail = c
        .command()
        .args(["tail", "-f", "/f/a.txt"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = tail.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 64];
        while !String::from_utf8_lossy(&seen).contains("more") {
            match std::io::Read::read(&mut out, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        seen
    });
    std::thread::sleep(Duration::from_millis(300));
    let more = local.path().join("more");
    std::fs::write(&more, b"+more").unwrap();
    dfs_ok(&c, &["append", more.to_str().unwrap(), "/f/a.txt"]);
    let seen = reader.join().unwrap();
    let _ = tail.kill();
    let _ = tail.wait();
    assert_eq!(String::from_utf8_lossy(&seen), "1+more");

    // moveFromLocal removes the local source; moveToLocal the dfs one
    let src = local.path().join("m");
    std::fs::write(&src, b"moved").unwrap();
    dfs_ok(&c, &["moveFromLocal", src.to_str().unwrap(), "/f/m"]);
    assert!(!src.exists());
    let back = local.path().join("back");
    dfs_ok(&c, &["moveToLocal", "/f/m", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), b"moved");
    assert!(!dfs(&c, &["test", "-e", "/f/m"]).status.success());

    // usage and help
    let usage = dfs_ok(&c, &["usage", "find"]);
    assert!(
        usage.starts_with("Usage: dfs find") && usage.contains("[PATHS]"),
        "{usage}"
    );
    let help = dfs_ok(&c, &["help", "touch"]);
    assert!(
        help.contains("yyyyMMdd:HHmmss") && help.contains("-c"),
        "{help}"
    );
    assert!(dfs_ok(&c, &["help"]).contains("moveFromLocal"));
    let err = dfs_err(&c, &["usage", "frobnicate"]);
    assert!(err.contains("frobnicate: no such command"), "{err}");
}
