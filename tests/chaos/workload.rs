//! The soak's workload: writers through the client library and through the mount, each owning a
//! directory of files it creates, appends to, renames, deletes and reads back, and the model of
//! what every file must hold.
//!
//! Only an acknowledged operation changes what a file must hold. An operation that failed may or
//! may not have happened: a failed write leaves a file that may be absent or hold a prefix of what
//! was written, a failed append one that holds the acknowledged bytes and a prefix of the rest.
//! A failed rename or delete is resolved by looking, once the NameNode answers again: no one else
//! touches a worker's files.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dfs_client::blocking::DfsClient;

use crate::common::data;
use crate::Rng;

/// What a file must hold: `data[..n]` for some `n` in `min..=data.len()`, or nothing at all when
/// `may_be_absent`.
#[derive(Clone, Debug)]
pub struct Expect {
    pub data: Vec<u8>,
    pub min: usize,
    pub may_be_absent: bool,
}

impl Expect {
    fn exact(data: Vec<u8>) -> Expect {
        Expect {
            min: data.len(),
            data,
            may_be_absent: false,
        }
    }
    fn is_exact(&self) -> bool {
        self.min == self.data.len() && !self.may_be_absent
    }
    /// Why `found` (None: the file does not exist) breaks the expectation, if it does.
    pub fn diverges(&self, found: Option<&[u8]>) -> Option<String> {
        let Some(found) = found else {
            return (!self.may_be_absent).then(|| "the file is missing".to_string());
        };
        if found.len() < self.min || found.len() > self.data.len() {
            return Some(format!(
                "{} bytes, expected {}..={}",
                found.len(),
                self.min,
                self.data.len()
            ));
        }
        let at = found.iter().zip(&self.data).position(|(a, b)| a != b)?;
        Some(format!("the bytes differ at offset {at}"))
    }
}

/// Every file the workload made, by dfs path.
pub type Model = Arc<Mutex<BTreeMap<String, Expect>>>;

/// What the workers did, for the summary.
#[derive(Default)]
pub struct Tally {
    pub acknowledged: AtomicU64,
    pub failed: AtomicU64,
    pub reads_verified: AtomicU64,
    pub bytes_verified: AtomicU64,
    pub read_errors: AtomicU64,
    /// Reads that returned other bytes than the file holds: the one outcome never allowed.
    pub wrong_reads: Mutex<Vec<String>>,
}

/// How a worker reaches dfs: the client library, or the mount with ordinary file calls.
pub enum Via {
    Client(DfsClient),
    Mount(PathBuf),
}

impl Via {
    fn local(&self, path: &str) -> PathBuf {
        match self {
            Via::Mount(root) => root.join(path.trim_start_matches('/')),
            Via::Client(_) => unreachable!("only the mount has local paths"),
        }
    }

    fn write_new(&self, path: &str, bytes: &[u8]) -> Result<(), String> {
        match self {
            Via::Client(c) => {
                let opts = dfs_client::CreateOptions {
                    create_parent: true,
                    ..Default::default()
                };
                let mut w = c.create(path, opts).map_err(|e| e.to_string())?;
                w.write_all(bytes).map_err(|e| e.to_string())?;
                w.close().map_err(|e| e.to_string())
            }
            Via::Mount(_) => {
                let mut f =
                    std::fs::File::create_new(self.local(path)).map_err(|e| e.to_string())?;
                f.write_all(bytes).map_err(|e| e.to_string())?;
                f.sync_all().map_err(|e| e.to_string())
            }
        }
    }

    fn append(&self, path: &str, bytes: &[u8]) -> Result<(), String> {
        match self {
            Via::Client(c) => {
                let mut w = c.append(path).map_err(|e| e.to_string())?;
                w.write_all(bytes).map_err(|e| e.to_string())?;
                w.close().map_err(|e| e.to_string())
            }
            Via::Mount(_) => {
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(self.local(path))
                    .map_err(|e| e.to_string())?;
                f.write_all(bytes).map_err(|e| e.to_string())?;
                f.sync_all().map_err(|e| e.to_string())
            }
        }
    }

    fn rename(&self, src: &str, dst: &str) -> Result<(), String> {
        match self {
            Via::Client(c) => c.rename(src, dst, false).map_err(|e| e.to_string()),
            Via::Mount(_) => {
                std::fs::rename(self.local(src), self.local(dst)).map_err(|e| e.to_string())
            }
        }
    }

    fn delete(&self, path: &str) -> Result<(), String> {
        match self {
            Via::Client(c) => c.delete(path, false).map(drop).map_err(|e| e.to_string()),
            Via::Mount(_) => std::fs::remove_file(self.local(path)).map_err(|e| e.to_string()),
        }
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        match self {
            Via::Client(c) => client_read(c, path),
            Via::Mount(_) => std::fs::read(self.local(path)).map_err(|e| e.to_string()),
        }
    }

    /// Whether `path` exists, asking until the answer comes (the NameNode may be restarting).
    fn exists(&self, path: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = match self {
                Via::Client(c) => c
                    .try_stat(path)
                    .map(|s| s.is_some())
                    .map_err(|e| e.to_string()),
                Via::Mount(_) => match std::fs::symlink_metadata(self.local(path)) {
                    Ok(_) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(e.to_string()),
                },
            };
            match answer {
                Ok(b) => return b,
                Err(e) if Instant::now() > deadline => panic!("stat {path} keeps failing: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

/// A worker deletes rather than writes once it has this many files: the data stays bounded
/// however long the soak runs, and the final check reads it all in seconds.
const MAX_FILES: usize = 40;

/// One worker: its own directory, files and random choices.
pub struct Worker {
    pub name: String,
    pub via: Via,
    pub rng: Rng,
    pub model: Model,
    pub tally: Arc<Tally>,
    pub stop: Arc<AtomicBool>,
    /// This worker's acknowledged files (exact expectations only).
    files: Vec<String>,
    next: u64,
}

impl Worker {
    pub fn new(
        name: &str,
        via: Via,
        seed: u64,
        model: Model,
        tally: Arc<Tally>,
        stop: Arc<AtomicBool>,
    ) -> Worker {
        Worker {
            name: name.to_string(),
            via,
            rng: Rng::new(seed),
            model,
            tally,
            stop,
            files: Vec::new(),
            next: 0,
        }
    }

    fn dir(&self) -> String {
        format!("/chaos/{}", self.name)
    }

    pub fn run(mut self) {
        if let Via::Mount(_) = self.via {
            // The client makes its parents itself; through the mount, the directory comes first.
            while std::fs::create_dir_all(self.via.local(&self.dir())).is_err() {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        while !self.stop.load(Ordering::Relaxed) {
            match self.rng.below(100) {
                _ if self.files.is_empty() => self.write_new(),
                _ if self.files.len() >= MAX_FILES => self.delete(),
                0..=34 => self.write_new(),
                35..=49 => self.append(),
                50..=59 => self.rename(),
                60..=69 => self.delete(),
                _ => self.read(),
            }
        }
    }

    fn expect(&self, path: &str, e: Expect) {
        self.model.lock().unwrap().insert(path.to_string(), e);
    }

    fn outcome(&self, r: &Result<(), String>) -> bool {
        let counter = if r.is_ok() {
            &self.tally.acknowledged
        } else {
            &self.tally.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        r.is_ok()
    }

    /// A file of a random size: empty, under a chunk, or several blocks.
    fn random_len(&mut self) -> usize {
        match self.rng.below(10) {
            0 => 0,
            1..=3 => self.rng.below(4096) as usize,
            4..=7 => self.rng.below(512 * 1024) as usize,
            _ => self.rng.below(3 * 1024 * 1024) as usize,
        }
    }

    fn write_new(&mut self) {
        let path = format!("{}/f{}", self.dir(), self.next);
        self.next += 1;
        let len = self.random_len();
        let bytes = data(len, self.rng.next_u64());
        let r = self.via.write_new(&path, &bytes);
        if self.outcome(&r) {
            self.expect(&path, Expect::exact(bytes));
            self.files.push(path);
        } else {
            self.expect(
                &path,
                Expect {
                    data: bytes,
                    min: 0,
                    may_be_absent: true,
                },
            );
        }
    }

    fn pick(&mut self) -> usize {
        self.rng.below(self.files.len() as u64) as usize
    }

    fn append(&mut self) {
        let i = self.pick();
        let path = self.files[i].clone();
        let old = self.model.lock().unwrap()[&path].data.clone();
        let len = self.rng.below(256 * 1024) as usize;
        let mut all = old.clone();
        all.extend(data(len, self.rng.next_u64()));
        let r = self.via.append(&path, &all[old.len()..]);
        if self.outcome(&r) {
            self.expect(&path, Expect::exact(all));
        } else {
            self.expect(
                &path,
                Expect {
                    data: all,
                    min: old.len(),
                    may_be_absent: false,
                },
            );
            self.files.swap_remove(i);
        }
    }

    fn rename(&mut self) {
        let i = self.pick();
        let src = self.files[i].clone();
        let dst = format!("{}/f{}", self.dir(), self.next);
        self.next += 1;
        let r = self.via.rename(&src, &dst);
        let done = self.outcome(&r) || (self.via.exists(&dst) && !self.via.exists(&src));
        if done {
            let mut m = self.model.lock().unwrap();
            let e = m.remove(&src).expect("a worker's file is in the model");
            m.insert(dst.clone(), e);
            self.files[i] = dst;
        }
    }

    fn delete(&mut self) {
        let i = self.pick();
        let path = self.files[i].clone();
        let r = self.via.delete(&path);
        if self.outcome(&r) || !self.via.exists(&path) {
            self.model.lock().unwrap().remove(&path);
            self.files.swap_remove(i);
        }
    }

    fn read(&mut self) {
        let i = self.pick();
        let path = self.files[i].clone();
        let e = self.model.lock().unwrap()[&path].clone();
        debug_assert!(e.is_exact());
        match self.via.read(&path) {
            Ok(back) => match e.diverges(Some(&back)) {
                None => {
                    self.tally.reads_verified.fetch_add(1, Ordering::Relaxed);
                    self.tally
                        .bytes_verified
                        .fetch_add(back.len() as u64, Ordering::Relaxed);
                }
                Some(why) => {
                    let what = format!("{} read {path}: {why}", self.name);
                    eprintln!("chaos: WRONG READ: {what}");
                    self.tally.wrong_reads.lock().unwrap().push(what);
                }
            },
            Err(_) => {
                self.tally.read_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Reads a dfs file through the client for the final check: `Ok(None)` when it does not exist.
pub fn read_back(client: &DfsClient, path: &str) -> Result<Option<Vec<u8>>, String> {
    if client.try_stat(path).map_err(|e| e.to_string())?.is_none() {
        return Ok(None);
    }
    client_read(client, path).map(Some)
}

fn client_read(c: &DfsClient, path: &str) -> Result<Vec<u8>, String> {
    let mut back = Vec::new();
    let mut r = c.open(path).map_err(|e| e.to_string())?;
    r.read_to_end(&mut back).map_err(|e| e.to_string())?;
    Ok(back)
}

/// Whether `p` is (or is under) a directory named `name`.
pub fn under(p: &Path, name: &str) -> bool {
    p.components().any(|c| c.as_os_str() == name)
}
