//! Watching the cluster: Prometheus metrics on the NameNode and every DataNode, read with a
//! Prometheus text parser while a test applies load, and the NameNode's web UI in a real
//! headless Chromium.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// A scrape of `/metrics` at `addr`, parsed as Prometheus parses it.
fn scrape(addr: &str) -> prometheus_parse::Scrape {
    let (code, body) = http_get(addr, "/metrics");
    assert_eq!(code, 200, "{body}");
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("/metrics does not parse: {e}\n{body}"))
}

/// The value of `metric` (a counter, gauge, or a histogram's `_count` / `_sum`) with the label
/// `label`, if it is there.
fn value(s: &prometheus_parse::Scrape, metric: &str, label: Option<(&str, &str)>) -> Option<f64> {
    s.samples
        .iter()
        .filter(|x| x.metric == metric)
        .find(|x| label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match &x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{metric} is not a plain number: {other:?}"),
        })
}

fn must(s: &prometheus_parse::Scrape, metric: &str, label: Option<(&str, &str)>) -> f64 {
    value(s, metric, label).unwrap_or_else(|| panic!("no {metric} {label:?} in the scrape"))
}

fn datanode_total(c: &dfs_cluster::minicluster::MiniCluster, metric: &str) -> f64 {
    (0..c.num_datanodes())
        .map(|i| must(&scrape(c.datanode_http_addr(i)), metric, None))
        .sum()
}

#[test]
fn metrics_parse_and_move_with_the_load() {
    let c = cluster()
        .datanodes(2)
        .replication(2)
        .block_size(256 * 1024)
        .start()
        .unwrap();
    let before = scrape(c.http_addr());
    assert_eq!(
        must(&before, "dfs_namenode_datanodes", Some(("state", "live"))),
        2.0
    );
    assert_eq!(must(&before, "dfs_namenode_safe_mode", None), 0.0);
    assert!(must(&before, "dfs_namenode_capacity_bytes", None) > 0.0);
    assert!(must(&before, "dfs_namenode_resident_memory_bytes", None) > 0.0);
    let creates = |s: &prometheus_parse::Scrape| {
        value(
            s,
            "dfs_namenode_rpc_duration_seconds_count",
            Some(("method", "Create")),
        )
        .unwrap_or(0.0)
    };
    let (written0, read0) = (
        datanode_total(&c, "dfs_datanode_written_bytes_total"),
        datanode_total(&c, "dfs_datanode_read_bytes_total"),
    );

    // Load: three files of 600 000 bytes (3 blocks each, 2 replicas), each read back once.
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f");
    std::fs::write(&src, data(600_000, 5)).unwrap();
    dfs_ok(&c, &["mkdir", "/load"]);
    for i in 0..3 {
        dfs_ok(&c, &["put", src.to_str().unwrap(), &format!("/load/f{i}")]);
        let out = dfs(&c, &["cat", &format!("/load/f{i}")]);
        assert!(out.status.success() && out.stdout.len() == 600_000);
    }

    let after = scrape(c.http_addr());
    assert_eq!(creates(&after) - creates(&before), 3.0);
    assert_eq!(must(&after, "dfs_namenode_files", None), 3.0);
    assert_eq!(must(&after, "dfs_namenode_blocks", None), 9.0);
    assert!(
        must(
            &after,
            "dfs_namenode_edit_log_sync_duration_seconds_count",
            None
        ) > must(
            &before,
            "dfs_namenode_edit_log_sync_duration_seconds_count",
            None
        )
    );
    assert!(must(&after, "dfs_namenode_edit_log_sync_batch_sum", None) >= 3.0);
    let written = datanode_total(&c, "dfs_datanode_written_bytes_total") - written0;
    let read = datanode_total(&c, "dfs_datanode_read_bytes_total") - read0;
    assert_eq!(
        written,
        2.0 * 3.0 * 600_000.0,
        "every byte on both replicas"
    );
    assert!(read >= 3.0 * 600_000.0, "every byte read back once: {read}");
    for i in 0..c.num_datanodes() {
        let dn = scrape(c.datanode_http_addr(i));
        assert!(
            must(
                &dn,
                "dfs_datanode_pipeline_ack_duration_seconds_count",
                None
            ) >= 9.0
        );
        assert!(must(&dn, "dfs_datanode_packets_written_total", None) >= 9.0);
        assert!(must(&dn, "dfs_datanode_block_reports_total", None) >= 1.0);
        assert_eq!(
            must(&dn, "dfs_datanode_volumes", Some(("state", "healthy"))),
            1.0
        );
        assert_eq!(
            must(&dn, "dfs_datanode_volumes", Some(("state", "failed"))),
            0.0
        );
        assert_eq!(
            must(&dn, "dfs_datanode_replicas", Some(("state", "finalized"))),
            9.0
        );
        let (code, _) = http_get(c.datanode_http_addr(i), "/nope");
        assert_eq!(code, 404);
    }
}

/// Chromium's rendering of `url`, as its DOM after load.
fn render(url: &str, screenshot: Option<&Path>) -> String {
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--window-size=1200,900",
    ]);
    if let Some(p) = screenshot {
        cmd.arg(format!("--screenshot={}", p.display()));
    } else {
        cmd.arg("--dump-dom");
    }
    let out = cmd.arg(url).output().unwrap_or_else(|e| {
        panic!("cannot run chromium ({e}): scripts/test installs it (apt-get install chromium)")
    });
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text a person reads: the body of the DOM without its tags, entities decoded.
fn text(dom: &str) -> String {
    let body = dom.split_once("<body").map_or(dom, |(_, b)| b);
    let mut out = String::new();
    let mut in_tag = true;
    for ch in body.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
    [
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(words, |t, (entity, c)| t.replace(entity, c))
}

#[test]
fn the_web_ui_shows_the_cluster_its_nodes_and_files_in_a_browser() {
    let c = cluster()
        .datanodes(2)
        .replication(2)
        .block_size(256 * 1024)
        .start()
        .unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f");
    std::fs::write(&src, data(600_000, 9)).unwrap();
    dfs_ok(&c, &["mkdir", "-p", "/web/sub dir"]);
    dfs_ok(&c, &["put", src.to_str().unwrap(), "/web/a&b <1>.bin"]);
    let base = format!("http://{}", c.http_addr());

    let overview = text(&render(&format!("{base}/"), None));
    for want in [
        "Overview",
        "Safe mode OFF",
        "Live DataNodes 2",
        "Dead DataNodes 0",
        "Files 1",
        "Blocks 3",
        "Missing blocks 0",
        env!("CARGO_PKG_VERSION"),
        "Uptime",
    ] {
        assert!(
            overview.contains(want),
            "no {want:?} in the overview: {overview}"
        );
    }

    let nodes = text(&render(&format!("{base}/datanodes"), None));
    assert!(nodes.contains("DataNodes (2)"), "{nodes}");
    for i in 0..2 {
        assert!(nodes.contains(c.datanode_addr(i)), "{nodes}");
    }
    assert!(nodes.contains("live") && !nodes.contains("dead"), "{nodes}");

    let dir_dom = render(&format!("{base}/explorer?path=%2Fweb"), None);
    let dir = text(&dir_dom);
    assert!(dir.contains("Browse /web"), "{dir}");
    assert!(
        dir.contains("a&b <1>.bin") && dir.contains("sub dir"),
        "{dir}"
    );
    assert!(
        dir.contains("drwxr-xr-x") && dir.contains("-rw-r--r--"),
        "{dir}"
    );
    assert!(
        dir_dom.contains("href=\"/explorer?path=%2Fweb%2Fa%26b%20%3C1%3E%2Ebin\""),
        "the file's link: {dir_dom}"
    );

    let file = text(&render(
        &format!("{base}/explorer?path=%2Fweb%2Fa%26b%20%3C1%3E%2Ebin"),
        None,
    ));
    assert!(file.contains("Blocks (3)"), "{file}");
    assert_eq!(file.matches("blk_").count(), 3, "{file}");
    for i in 0..2 {
        assert_eq!(
            file.matches(c.datanode_addr(i)).count(),
            3,
            "every block on DataNode {i}: {file}"
        );
    }
    assert!(file.contains("600000 bytes"), "{file}");

    let missing = text(&render(&format!("{base}/explorer?path=%2Fnope"), None));
    assert!(missing.contains("/nope: no such file"), "{missing}");

    // A picture of the overview, for people reviewing the UI.
    let shot = c.dir().join("overview.png");
    render(&format!("{base}/"), Some(&shot));
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "a rendered page"
    );
    if let Ok(dir) = std::env::var("DFS_SCREENSHOT_DIR") {
        std::fs::copy(&shot, Path::new(&dir).join("webui-overview.png")).unwrap();
    }
}
