//! Configuration: every `dfs.*` key with its type, default and meaning (the table in
//! docs/config.md is this list), read from a TOML file and `-D key=value` overrides, validated
//! once, then turned into each library's own config struct.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bytes, with an optional binary suffix: `512`, `64K`, `4M`, `1G`, `1T`.
    Size,
    /// `500ms`, `3s`, `10m`, `1h`, `21d`; a bare number is seconds.
    Duration,
    Int,
    Float,
    Bool,
    /// Octal permission bits, e.g. `022`.
    Octal,
    Text,
}

/// One configuration key.
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    /// Inclusive bounds of an `Int` or `Size` value: the libraries take these as `u32`, `usize`
    /// or a positive count, so a value outside is refused (naming the key) rather than cast.
    pub range: (u64, u64),
    pub default: &'static str,
    pub doc: &'static str,
}

/// `u32::MAX`, the bound of every key a library takes as a `u32`.
const U32: u64 = u32::MAX as u64;

/// Largest `dfs.bytes-per-checksum`: what DataNodes accept.
const MAX_BPC: u64 = dfs_proto::checksum::MAX_BYTES_PER_CHECKSUM as u64;
/// Largest `dfs.fuse.read-ahead`: set in KiB as a `u32`; 1 GiB is far beyond any use.
const MAX_READ_AHEAD: u64 = 1 << 30;

macro_rules! keys {
    ($($name:literal $kind:ident $([$min:expr, $max:expr])? $default:literal $doc:literal;)*) => {
        /// Every key dfs understands. An unknown key is an error that names it.
        pub const KEYS: &[Key] = &[$(Key {
            name: $name,
            kind: Kind::$kind,
            range: range!($([$min, $max])?),
            default: $default,
            doc: $doc,
        }),*];
    };
}

/// A key's range: as given, else any `u64`.
macro_rules! range {
    () => {
        (0, u64::MAX)
    };
    ([$min:expr, $max:expr]) => {
        ($min, $max)
    };
}

keys! {
    "dfs.namenode.rpc-address" Text "127.0.0.1:8020" "NameNode RPC address: where `dfs namenode` listens and where clients and DataNodes connect.";
    "dfs.namenode.http-address" Text "127.0.0.1:9870" "NameNode HTTP address: the web UI at `/`, JSON status at `/status`, Prometheus metrics at `/metrics`.";
    "dfs.namenode.name.dir" Text "./dfs-data/namenode" "NameNode metadata directory (edit log, checkpoints).";
    "dfs.datanode.data.dir" Text "./dfs-data/datanode" "DataNode volume directories, comma-separated.";
    "dfs.datanode.address" Text "127.0.0.1:9866" "DataNode data-transfer address.";
    "dfs.datanode.http.address" Text "127.0.0.1:9864" "DataNode HTTP address (Prometheus metrics at `/metrics`).";
    "dfs.datanode.hostname" Text "" "Host a DataNode advertises to clients and other DataNodes. Empty: the IP it listens on; for a wildcard listen address (`0.0.0.0`, `::`), the local IP facing the NameNode, or `127.0.0.1` when that cannot be found.";
    "dfs.blocksize" Size [1, u64::MAX] "128M" "Block size of new files; a DataNode puts a new replica only on a volume with room for a block this big.";
    "dfs.replication" Int [1, U32] "3" "Replication of new files.";
    "dfs.bytes-per-checksum" Size [1, MAX_BPC] "512" "Bytes covered by each CRC32C.";
    "dfs.heartbeat.interval" Duration "3s" "DataNode heartbeat interval.";
    "dfs.blockreport.interval" Duration "6h" "Interval between full block reports.";
    "dfs.namenode.datanode.dead.interval" Duration "630s" "A DataNode silent this long is dead; its replicas are re-created elsewhere.";
    "dfs.namenode.replication.interval" Duration "3s" "How often the NameNode looks for under- and over-replicated blocks.";
    "dfs.namenode.replication.max-streams" Int [1, U32] "2" "Replica copies a DataNode is asked to make at once.";
    "dfs.namenode.replication.min" Int [1, U32] "1" "Smallest replication a file may have: a create or `setrep` asking for less is refused. Closing a file needs only one finalized replica of its last block, whatever this says.";
    "dfs.replication.max" Int [1, U32] "512" "Largest replication a file may ask for.";
    "dfs.namenode.fs-limits.min-block-size" Size "1K" "Smallest block size a file may ask for (a block size must also be a multiple of 512).";
    "dfs.namenode.checkpoint.period" Duration "1h" "Checkpoint the namespace at least this often.";
    "dfs.namenode.checkpoint.txns" Int [1, u64::MAX] "1000000" "Checkpoint after this many edit-log transactions.";
    "dfs.namenode.edits.sync-interval" Duration "1s" "Longest a change written to the edit log waits for its fsync when no client asks sooner: what a power loss of the NameNode's machine may take from clients that do not ask for durable replies. 0: every change is fsynced before its reply, whatever clients ask (HDFS).";
    "dfs.namenode.lease.soft-limit" Duration "60s" "A writer silent this long loses its lease to another client that asks.";
    "dfs.namenode.lease.hard-limit" Duration "20m" "A client silent this long loses its leases: a file it was writing is closed, and one it held open after it was unlinked is deleted.";
    "dfs.namenode.safemode.threshold-pct" Float "0.999" "Fraction of blocks that must be reported before leaving safe mode.";
    "dfs.namenode.safemode.extension" Duration "30s" "How long safe mode lasts after the threshold is reached.";
    "dfs.namenode.accesstime.precision" Duration "1h" "A read records the file's access time (one logged op) only when the stored one is older than this; 0 never records it.";
    "dfs.ls.limit" Int [1, U32] "1000" "Entries per listing page.";
    "dfs.namenode.fs-limits.max-xattrs-per-inode" Int [0, U32] "32" "Extended attributes an inode may have; one more is refused (ENOSPC).";
    "dfs.namenode.fs-limits.max-xattr-size" Size [1, 65791] "16384" "Bytes of an extended attribute's name and value together; a bigger one is refused (E2BIG).";
    "fs.trash.interval" Float "0" "Minutes a deleted path stays in its owner's trash (`/user/NAME/.Trash`) before the NameNode deletes it; 0 turns trash off and `dfs rm` deletes at once. Fractions are allowed.";
    "fs.trash.checkpoint.interval" Float "0" "Minutes between the NameNode's trash checkpoints (`Current` renamed to the time); 0 means `fs.trash.interval`.";
    "dfs.permissions.enabled" Bool "true" "Check owner/group/mode on every namespace operation.";
    "dfs.permissions.superusergroup" Text "supergroup" "Members of this group are superusers; the root directory's group when a new namespace is formatted.";
    "fs.permissions.umask-mode" Octal "022" "Permission bits removed from new files and directories.";
    "dfs.client.socket-timeout" Duration "60s" "A DataNode connection stalled this long fails over (clients and DataNodes).";
    "dfs.client.connect-timeout" Duration "10s" "Connecting to the NameNode gives up after this.";
    "dfs.client.lease.renew-interval" Duration "30s" "How often a client with files open (for reading or writing) renews its leases.";
    "dfs.client.durable-replies" Bool "true" "The library and the shell: every NameNode reply waits until every change before it is fsynced, and every finished block is fsynced by its DataNodes (HDFS's guarantee). false: replies wait until changes are written, which survives a crash of any process; a power loss may take the last `dfs.namenode.edits.sync-interval` of them and unsynced block data, never what fsync, fsyncdir or hsync covered.";
    "dfs.client.write.max-packets-in-flight" Int [1, U32] "80" "Unacknowledged packets per write pipeline.";
    "dfs.datanode.scan.period" Duration "504h" "The block scanner re-verifies every finalized replica once per period.";
    "dfs.block.scanner.volume.bytes.per.second" Size "8M" "Block scanner read rate per DataNode; 0: unpaced.";
    "dfs.datanode.du.reserved" Size "0" "Bytes per volume kept free for non-dfs use.";
    "dfs.datanode.max.transfer.threads" Int [1, U32] "4096" "Concurrent data-transfer connections per DataNode.";
    "dfs.fuse.durable-replies" Bool "false" "`dfs.client.durable-replies` for mounts: false by default, so a mount keeps what a local file system keeps (everything survives a crash of any process; a power loss keeps what fsync and fsyncdir covered).";
    "dfs.datanode.synconclose" Bool "false" "fsync every replica when its block is finished, even when the client did not ask.";
    "dfs.fuse.attr-timeout" Duration "1s" "How long the kernel caches a mounted file's attributes.";
    "dfs.fuse.entry-timeout" Duration "1s" "How long the kernel caches a mounted directory entry.";
    "dfs.fuse.threads" Int [1, 1024] "4" "Threads reading a mount's kernel requests (each request then runs as a task).";
    "dfs.fuse.read-ahead" Size [0, MAX_READ_AHEAD] "1M" "Read-ahead set on a mount after mounting (the kernel's default is 128K).";
}

/// A validated set of values: every key has one (its default unless set).
#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            values: KEYS
                .iter()
                .map(|k| (k.name, k.default.to_string()))
                .collect(),
        }
    }
}

impl Config {
    /// Defaults, then the TOML file (if any), then `-D key=value` overrides in order.
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<Config> {
        let mut c = Config::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read config file {}", path.display()))?;
            c.set_toml(&text)
                .with_context(|| format!("config file {}", path.display()))?;
        }
        for o in overrides {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| anyhow!("-D {o}: expected key=value"))?;
            c.set(k.trim(), v.trim())
                .with_context(|| format!("-D {o}"))?;
        }
        Ok(c)
    }

    /// Sets every key of a TOML document (nested tables join their keys with dots).
    pub fn set_toml(&mut self, text: &str) -> Result<()> {
        let table: toml::Table = toml::from_str(text).context("parse")?;
        let mut flat = Vec::new();
        flatten("", &toml::Value::Table(table), &mut flat)?;
        for (k, v) in flat {
            self.set(&k, &v)?;
        }
        Ok(())
    }

    /// Sets one key after checking that it exists and its value parses.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let k = KEYS.iter().find(|k| k.name == key).ok_or_else(|| {
            anyhow!("unknown configuration key {key:?} (docs/config.md lists them all)")
        })?;
        check(k, value).map_err(|e| anyhow!("{key} = {value:?}: {e}"))?;
        self.values.insert(k.name, value.to_string());
        Ok(())
    }

    fn raw(&self, key: &str) -> &str {
        self.values
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("configuration key {key} is not registered"))
    }

    pub fn text(&self, key: &str) -> String {
        self.raw(key).to_string()
    }
    pub fn size(&self, key: &str) -> u64 {
        parse_size(self.raw(key)).expect("validated on set")
    }
    pub fn duration(&self, key: &str) -> Duration {
        parse_duration(self.raw(key)).expect("validated on set")
    }
    pub fn int(&self, key: &str) -> u64 {
        self.raw(key).parse().expect("validated on set")
    }
    /// An `Int` key whose range fits a `u32`.
    fn int_u32(&self, key: &str) -> u32 {
        u32::try_from(self.int(key)).expect("range-checked on set")
    }
    pub fn float(&self, key: &str) -> f64 {
        self.raw(key).parse().expect("validated on set")
    }
    /// A `Float` key counting minutes, as HDFS's trash keys do (fractions allowed; below 0 is 0).
    pub fn minutes(&self, key: &str) -> Duration {
        Duration::from_secs_f64(self.float(key).clamp(0.0, 1e9) * 60.0)
    }
    pub fn bool(&self, key: &str) -> bool {
        self.raw(key).parse().expect("validated on set")
    }
    pub fn octal(&self, key: &str) -> u32 {
        u32::from_str_radix(self.raw(key), 8).expect("validated on set")
    }

    /// Every key and value, for `-D` forwarding to child processes.
    pub fn overrides(&self) -> Vec<String> {
        self.values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    pub fn client(&self, namenode: &str) -> dfs_client::ClientConfig {
        dfs_client::ClientConfig {
            namenode: namenode.to_string(),
            block_size: self.size("dfs.blocksize"),
            replication: self.int_u32("dfs.replication"),
            bytes_per_checksum: u32::try_from(self.size("dfs.bytes-per-checksum"))
                .expect("range-checked on set"),
            socket_timeout: self.duration("dfs.client.socket-timeout"),
            connect_timeout: self.duration("dfs.client.connect-timeout"),
            lease_renew_interval: self.duration("dfs.client.lease.renew-interval"),
            max_packets_in_flight: self.int_u32("dfs.client.write.max-packets-in-flight") as usize,
            umask: self.octal("fs.permissions.umask-mode"),
            durable_replies: self.bool("dfs.client.durable-replies"),
            user: None,
        }
    }

    /// [`Config::client`] for a mount, which keeps what a local file system keeps unless
    /// `dfs.fuse.durable-replies` says otherwise.
    pub fn mount_client(&self, namenode: &str) -> dfs_client::ClientConfig {
        dfs_client::ClientConfig {
            durable_replies: self.bool("dfs.fuse.durable-replies"),
            ..self.client(namenode)
        }
    }

    pub fn namenode(&self, dir: PathBuf) -> dfs_namenode::Config {
        dfs_namenode::Config {
            dir,
            heartbeat_interval: self.duration("dfs.heartbeat.interval"),
            dead_interval: self.duration("dfs.namenode.datanode.dead.interval"),
            replication_check_interval: self.duration("dfs.namenode.replication.interval"),
            replication_max_streams: self.int_u32("dfs.namenode.replication.max-streams"),
            checkpoint_period: self.duration("dfs.namenode.checkpoint.period"),
            edits_sync_interval: self.duration("dfs.namenode.edits.sync-interval"),
            checkpoint_txns: self.int("dfs.namenode.checkpoint.txns"),
            lease_soft_limit: self.duration("dfs.namenode.lease.soft-limit"),
            lease_hard_limit: self.duration("dfs.namenode.lease.hard-limit"),
            min_replication: self.int_u32("dfs.namenode.replication.min"),
            max_replication: self.int_u32("dfs.replication.max"),
            min_block_size: self.size("dfs.namenode.fs-limits.min-block-size"),
            listing_limit: self.int_u32("dfs.ls.limit"),
            access_time_precision: self.duration("dfs.namenode.accesstime.precision"),
            permissions_enabled: self.bool("dfs.permissions.enabled"),
            superuser: dfs_client::user::UserInfo::current().name,
            supergroup: self.text("dfs.permissions.superusergroup"),
            safemode_threshold: self.float("dfs.namenode.safemode.threshold-pct"),
            safemode_extension: self.duration("dfs.namenode.safemode.extension"),
            max_xattrs_per_inode: self.int("dfs.namenode.fs-limits.max-xattrs-per-inode") as usize,
            max_xattr_size: self.size("dfs.namenode.fs-limits.max-xattr-size") as usize,
            trash_interval: self.minutes("fs.trash.interval"),
            trash_checkpoint_interval: self.minutes("fs.trash.checkpoint.interval"),
        }
    }

    pub fn fuse(&self) -> dfs_fuse::MountOptions {
        dfs_fuse::MountOptions {
            attr_timeout: self.duration("dfs.fuse.attr-timeout"),
            entry_timeout: self.duration("dfs.fuse.entry-timeout"),
            threads: self.int_u32("dfs.fuse.threads") as usize,
            read_ahead_kb: u32::try_from(self.size("dfs.fuse.read-ahead") / 1024)
                .expect("range-checked on set"),
        }
    }

    pub fn datanode(&self, volumes: Vec<PathBuf>, namenode: &str) -> dfs_datanode::Config {
        let host = self.text("dfs.datanode.hostname");
        dfs_datanode::Config {
            volumes,
            namenode: namenode.to_string(),
            advertise_host: (!host.is_empty()).then_some(host),
            heartbeat_interval: self.duration("dfs.heartbeat.interval"),
            block_report_interval: self.duration("dfs.blockreport.interval"),
            socket_timeout: self.duration("dfs.client.socket-timeout"),
            scan_period: self.duration("dfs.datanode.scan.period"),
            scan_bytes_per_sec: self.size("dfs.block.scanner.volume.bytes.per.second"),
            du_reserved: self.size("dfs.datanode.du.reserved"),
            block_size: self.size("dfs.blocksize"),
            max_transfer_threads: self.int_u32("dfs.datanode.max.transfer.threads") as usize,
            sync_on_close: self.bool("dfs.datanode.synconclose"),
        }
    }
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut Vec<(String, String)>) -> Result<()> {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out)?;
            }
        }
        toml::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        toml::Value::Integer(i) => out.push((prefix.to_string(), i.to_string())),
        toml::Value::Float(f) => out.push((prefix.to_string(), f.to_string())),
        toml::Value::Boolean(b) => out.push((prefix.to_string(), b.to_string())),
        other => bail!("{prefix}: unsupported value {other} (use a string, number or boolean)"),
    }
    Ok(())
}

fn check(key: &Key, v: &str) -> std::result::Result<(), String> {
    let in_range = |n: u64| {
        let (min, max) = key.range;
        if (min..=max).contains(&n) {
            Ok(())
        } else {
            Err(format!("must be {}", range_text(key.range)))
        }
    };
    match key.kind {
        Kind::Size => in_range(parse_size(v)?),
        Kind::Duration => parse_duration(v).map(drop),
        Kind::Int => in_range(
            v.parse::<u64>()
                .map_err(|_| "expected a whole number".to_string())?,
        ),
        Kind::Float => match v.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(()),
            _ => Err("expected a number".into()),
        },
        Kind::Bool => v
            .parse::<bool>()
            .map(drop)
            .map_err(|_| "expected true or false".into()),
        Kind::Octal => u32::from_str_radix(v, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .map(drop)
            .ok_or_else(|| "expected octal permission bits such as 022".into()),
        Kind::Text => Ok(()),
    }
}

/// A key's range as docs/config.md states it: "at least 1", "from 1 to 65536"; empty for any
/// `u64`.
pub fn range_text((min, max): (u64, u64)) -> String {
    match (min, max) {
        (0, u64::MAX) => String::new(),
        (min, u64::MAX) => format!("at least {min}"),
        (min, max) => format!("from {min} to {max}"),
    }
}

/// `4M` → 4194304. Binary suffixes K, M, G, T (an optional trailing `B` or `iB` is accepted).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some(c @ ('k' | 'K' | 'm' | 'M' | 'g' | 'G' | 't' | 'T')) => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                _ => 40,
            };
            (&t[..t.len() - 1], 1u64 << shift)
        }
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("expected a size such as 512, 64K, 4M or 1G, got {s:?}"))
}

/// `500ms` → 0.5 s; units ms, s, m, h, d; a bare number is seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("expected a duration such as 500ms, 3s, 10m, 1h or 2d, got {s:?}");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let ms = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" | "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    };
    ms.map(Duration::from_millis).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("4M").unwrap(), 4 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert!(parse_size("4X").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("630").unwrap(), Duration::from_secs(630));
        assert_eq!(parse_duration("20m").unwrap(), Duration::from_secs(1200));
        assert!(parse_duration("3 parsecs").is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = Config::load(None, &["dfs.replicaton=2".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("dfs.replicaton"), "{e:#}");
        let e = Config::load(None, &["dfs.blocksize=lots".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("dfs.blocksize"), "{e:#}");
        let e = Config::load(None, &["novalue".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("key=value"), "{e:#}");
    }

    #[test]
    fn toml_file_then_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("dfs.toml");
        std::fs::write(
            &f,
            "[dfs]\nreplication = 2\nblocksize = \"4M\"\n\"heartbeat.interval\" = \"1s\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&f), &["dfs.replication=1".into()]).unwrap();
        assert_eq!(c.int("dfs.replication"), 1);
        assert_eq!(c.size("dfs.blocksize"), 4 << 20);
        assert_eq!(c.duration("dfs.heartbeat.interval"), Duration::from_secs(1));
        std::fs::write(&f, "[dfs]\nno_such = 1\n").unwrap();
        let e = Config::load(Some(&f), &[]).unwrap_err();
        assert!(format!("{e:#}").contains("dfs.no_such"), "{e:#}");
    }

    #[test]
    fn every_default_is_valid() {
        for k in KEYS {
            check(k, k.default).unwrap_or_else(|e| panic!("{}: {e}", k.name));
        }
    }

    #[test]
    fn numbers_outside_a_keys_range_are_refused_not_cast() {
        for (kv, named) in [
            ("dfs.bytes-per-checksum=4G", "from 1 to 65536"),
            ("dfs.bytes-per-checksum=0", "from 1 to 65536"),
            ("dfs.replication=4294967297", "from 1 to 4294967295"),
            ("dfs.replication=0", "from 1 to 4294967295"),
            ("dfs.ls.limit=0", "from 1 to 4294967295"),
            ("dfs.fuse.read-ahead=8T", "from 0 to 1073741824"),
        ] {
            let e = Config::load(None, &[kv.into()]).unwrap_err();
            let msg = format!("{e:#}");
            let key = kv.split('=').next().unwrap();
            assert!(msg.contains(key) && msg.contains(named), "{kv}: {msg}");
        }
        let c = Config::load(
            None,
            &[
                "dfs.bytes-per-checksum=64K".into(),
                "dfs.replication=4294967295".into(),
            ],
        )
        .unwrap();
        let client = c.client("nn:1");
        assert_eq!(
            (client.bytes_per_checksum, client.replication),
            (65536, u32::MAX)
        );
    }
}

#[cfg(test)]
mod doc_tests {
    /// docs/config.md must list every key with its default.
    #[test]
    fn config_doc_lists_every_key() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config.md"))
                .unwrap();
        for k in super::KEYS {
            let row = format!("| `{}` | ", k.name);
            let line = doc.lines().find(|l| l.starts_with(&row));
            let line = line.unwrap_or_else(|| panic!("docs/config.md does not list {}", k.name));
            assert!(
                line.contains(&format!("`{}`", k.default)),
                "docs/config.md: wrong default for {}",
                k.name
            );
            let range = super::range_text(k.range);
            assert!(
                line.contains(&range),
                "docs/config.md: {} must say its range ({range})",
                k.name
            );
        }
    }
}
