//! The web UI: HTML rendered here from the NameNode's state, with its styles inline, so the
//! binary serves everything a browser needs and nothing comes from the internet.
//!
//! Pages: the overview (capacity, DataNodes, blocks, safe mode, version, uptime), the DataNodes
//! table, and a file browser (directories page by page, each file with its blocks and replica
//! locations). The browser reads as [`WEB_USER`], HDFS's static web user, so it shows only what
//! any user may see.

use std::fmt::Write;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use dfs_proto::display::{date, mode_string, size};
use dfs_proto::path::DfsPath;
use serde::Deserialize;

use super::AppState;
use crate::fsn::{LocationsRequest, Now};
use crate::metrics::node_state;
use crate::server::Durability;
use crate::types::{Caller, FileStatus, FileType, LocatedBlocks};

/// Who the file browser reads as (HDFS's `hadoop.http.staticuser.user`).
pub const WEB_USER: &str = "dr.who";

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222}\
nav{background:#1f3a5f;padding:.6em 1em}nav a{color:#fff;margin-right:1.5em;text-decoration:none}\
main{padding:1em 1.5em}table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#eef2f7}\
td.n{text-align:right}.bad{color:#b00020;font-weight:bold}.ok{color:#1b7f3b}";

/// HTML-escapes text for element content and quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value.
fn query_value(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn page(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <title>dfs · {t}</title><style>{STYLE}</style></head><body>\
         <nav><a href=\"/\">Overview</a><a href=\"/datanodes\">DataNodes</a>\
         <a href=\"/explorer?path=%2F\">Browse</a><a href=\"/status\">JSON</a>\
         <a href=\"/metrics\">Metrics</a></nav><main><h1>{t}</h1>{body}</main></body></html>",
        t = esc(title)
    ))
    .into_response()
}

fn error_page(code: StatusCode, what: &str) -> Response {
    let mut r = page("Error", &format!("<p class=bad>{}</p>", esc(what)));
    *r.status_mut() = code;
    r
}

/// A two-column table of `(label, value)`; values are HTML already.
fn facts(rows: &[(&str, String)]) -> String {
    let mut t = String::from("<table>");
    for (k, v) in rows {
        let _ = write!(t, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    t.push_str("</table>");
    t
}

fn uptime(since: Instant) -> String {
    let s = since.elapsed().as_secs();
    format!(
        "{}d {:02}h {:02}m {:02}s",
        s / 86_400,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60
    )
}

pub async fn overview(State(shared): State<AppState>) -> Response {
    let (s, nodes, cluster_id) = match shared.lock() {
        Ok(st) => (
            st.stats(),
            st.datanode_report(Instant::now()),
            st.cluster_id().to_string(),
        ),
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let count = |state| nodes.iter().filter(|d| node_state(d) == state).count();
    let flag = |n: u64| {
        if n == 0 {
            "0".to_string()
        } else {
            format!("<span class=bad>{n}</span>")
        }
    };
    let safe_mode = if s.safe_mode {
        "<span class=bad>ON</span>"
    } else {
        "<span class=ok>OFF</span>"
    };
    let body = facts(&[
        ("Cluster ID", esc(&cluster_id)),
        ("Version", env!("CARGO_PKG_VERSION").to_string()),
        ("Uptime", uptime(shared.started)),
        ("Safe mode", safe_mode.to_string()),
        ("Capacity", size(s.capacity, true)),
        ("DFS used", size(s.dfs_used, true)),
        ("Remaining", size(s.remaining, true)),
        ("Live DataNodes", count("live").to_string()),
        ("Dead DataNodes", flag(count("dead") as u64)),
        (
            "Decommissioning DataNodes",
            count("decommissioning").to_string(),
        ),
        ("Files", s.files.to_string()),
        ("Directories", s.directories.to_string()),
        ("Blocks", s.blocks.to_string()),
        ("Under-replicated blocks", flag(s.under_replicated)),
        ("Corrupt blocks", flag(s.corrupt_blocks)),
        ("Missing blocks", flag(s.missing_blocks)),
        ("Pending replications", s.pending_replications.to_string()),
    ]);
    page("Overview", &body)
}

pub async fn datanodes(State(shared): State<AppState>) -> Response {
    let nodes = match shared.lock() {
        Ok(st) => st.datanode_report(Instant::now()),
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let mut t = String::from(
        "<table><tr><th>Address</th><th>State</th><th>Capacity</th><th>Used</th>\
         <th>Remaining</th><th>Blocks</th><th>Last heartbeat</th><th>Blocks to drain</th>\
         <th>UUID</th></tr>",
    );
    for d in &nodes {
        let state = node_state(d);
        let class = if state == "dead" { "bad" } else { "ok" };
        let _ = write!(
            t,
            "<tr><td>{}</td><td class={class}>{state}</td><td class=n>{}</td><td class=n>{}</td>\
             <td class=n>{}</td><td class=n>{}</td><td class=n>{:.1} s ago</td>\
             <td class=n>{}</td><td>{}</td></tr>",
            esc(&d.id.addr()),
            size(d.storage.capacity, true),
            size(d.storage.dfs_used, true),
            size(d.storage.remaining, true),
            d.num_blocks,
            d.last_heartbeat_ms_ago as f64 / 1000.0,
            d.blocks_to_drain,
            esc(&d.id.uuid),
        );
    }
    t.push_str("</table>");
    page(&format!("DataNodes ({})", nodes.len()), &t)
}

#[derive(Deserialize)]
pub struct Browse {
    path: Option<String>,
    /// The last name of the previous page.
    after: Option<String>,
}

pub async fn explorer(State(shared): State<AppState>, Query(q): Query<Browse>) -> Response {
    let raw = q.path.unwrap_or_else(|| "/".to_string());
    let path = match DfsPath::parse(&raw) {
        Ok(p) => p,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let caller = Caller {
        user: WEB_USER.to_string(),
        groups: Vec::new(),
    };
    let found = shared
        .lock()
        .and_then(|mut st| st.get_file_info(&caller, &path));
    let status = match found {
        Ok(Some(s)) => s,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, &format!("{path}: no such file")),
        Err(e) => return error_page(StatusCode::FORBIDDEN, &e.to_string()),
    };
    let body = if status.file_type == FileType::Directory {
        let after = q.after.unwrap_or_default();
        let listed = shared.lock().and_then(|mut st| {
            let limit = st.cfg.listing_limit;
            st.get_listing(&caller, &path, &after, limit)
        });
        match listed {
            Ok((entries, remaining, _)) => directory(&path, &entries, remaining),
            Err(e) => return error_page(StatusCode::FORBIDDEN, &e.to_string()),
        }
    } else if status.file_type == FileType::File {
        let req = LocationsRequest {
            path: path.clone(),
            offset: 0,
            length: 0,
            client_host: String::new(),
            client_name: String::new(),
            hold: false,
        };
        let located = shared
            .exec(Durability::Written, |st| {
                st.get_block_locations(&caller, &req, Now::current())
            })
            .await;
        match located {
            Ok(l) => file(&status, &l),
            Err(e) => return error_page(StatusCode::FORBIDDEN, &e.to_string()),
        }
    } else {
        facts(&attributes(&status))
    };
    page(
        &format!("Browse {path}"),
        &format!("{}{body}", breadcrumbs(&path)),
    )
}

/// Links to every ancestor of `path`.
fn breadcrumbs(path: &DfsPath) -> String {
    let mut out = String::from("<p><a href=\"/explorer?path=%2F\">/</a>");
    let mut at = String::new();
    for c in path.components() {
        at.push('/');
        at.push_str(c);
        let _ = write!(
            out,
            " <a href=\"/explorer?path={}\">{}</a> /",
            query_value(&at),
            esc(c)
        );
    }
    out.push_str("</p>");
    out
}

fn kind(s: &FileStatus) -> &'static str {
    match s.file_type {
        FileType::File => "-",
        FileType::Directory => "d",
        FileType::Symlink => "l",
        FileType::Fifo => "p",
        FileType::Socket => "s",
        FileType::CharDevice => "c",
        FileType::BlockDevice => "b",
    }
}

fn directory(path: &DfsPath, entries: &[FileStatus], remaining: u64) -> String {
    let mut t = String::from(
        "<table><tr><th>Permission</th><th>Owner</th><th>Group</th><th>Size</th>\
         <th>Replication</th><th>Block size</th><th>Modified (UTC)</th><th>Name</th></tr>",
    );
    for e in entries {
        let name = match path.join(&e.name) {
            Ok(child) => format!(
                "<a href=\"/explorer?path={}\">{}</a>",
                query_value(child.as_str()),
                esc(&e.name)
            ),
            Err(_) => esc(&e.name),
        };
        let is_file = e.file_type == FileType::File;
        let _ = write!(
            t,
            "<tr><td>{}{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td>\
             <td class=n>{}</td><td>{}</td><td>{name}</td></tr>",
            kind(e),
            mode_string(e.permission),
            esc(&e.owner),
            esc(&e.group),
            size(e.length, true),
            if is_file {
                e.replication.to_string()
            } else {
                "-".into()
            },
            if is_file {
                size(e.block_size, true)
            } else {
                "-".into()
            },
            date(e.mtime_ms),
        );
    }
    t.push_str("</table>");
    if entries.is_empty() {
        t.push_str("<p>This directory is empty.</p>");
    }
    if let (Some(last), true) = (entries.last(), remaining > 0) {
        let _ = write!(
            t,
            "<p><a href=\"/explorer?path={}&amp;after={}\">Next page</a> ({remaining} more)</p>",
            query_value(path.as_str()),
            query_value(&last.name)
        );
    }
    t
}

fn attributes(s: &FileStatus) -> Vec<(&'static str, String)> {
    vec![
        (
            "Permission",
            format!("{}{}", kind(s), mode_string(s.permission)),
        ),
        ("Owner", esc(&s.owner)),
        ("Group", esc(&s.group)),
        (
            "Size",
            format!("{} ({} bytes)", size(s.length, true), s.length),
        ),
        ("Modified (UTC)", date(s.mtime_ms)),
        ("Inode", s.inode_id.0.to_string()),
    ]
}

fn file(s: &FileStatus, l: &LocatedBlocks) -> String {
    let mut rows = attributes(s);
    rows.push(("Replication", s.replication.to_string()));
    rows.push(("Block size", size(s.block_size, true)));
    if l.under_construction {
        rows.push(("Open for writing by", esc(&s.lease_holder)));
    }
    let mut t = facts(&rows);
    let _ = write!(
        t,
        "<h2>Blocks ({})</h2><table><tr><th>Block</th><th>Generation stamp</th>\
         <th>Offset</th><th>Length</th><th>Replicas</th></tr>",
        l.blocks.len()
    );
    for b in &l.blocks {
        let replicas: Vec<String> = b.locations.iter().map(|d| esc(&d.id.addr())).collect();
        let note = if b.corrupt {
            " <span class=bad>corrupt</span>"
        } else if b.under_construction {
            " (being written)"
        } else {
            ""
        };
        let _ = write!(
            t,
            "<tr><td>blk_{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>\
             <td>{}{note}</td></tr>",
            b.block.id.0,
            b.block.gs.0,
            b.offset,
            b.length,
            replicas.join(", ")
        );
    }
    t.push_str("</table>");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_links_encoded() {
        assert_eq!(
            esc("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
        assert_eq!(query_value("/a b/&c"), "%2Fa%20b%2F%26c");
        let p = DfsPath::parse("/x/<y>").unwrap();
        let b = breadcrumbs(&p);
        assert!(b.contains("path=%2Fx%2F%3Cy%3E\">&lt;y&gt;</a>"), "{b}");
    }
}
