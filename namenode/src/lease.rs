//! Leases: which client may write which file, which files each client holds open, and when it
//! last proved it is alive.
//!
//! Leases are keyed by inode id, so renaming an open file (or its directory) needs no update.
//! The holder of each file is also persisted in the namespace (`FileMeta::client`); this module
//! adds the runtime part (renewal times, files being recovered). *Holds* are the files a client
//! has open (to read or write): a file unlinked while held becomes an orphan instead of being
//! deleted. Holds are runtime only: an orphan's holders are persisted in the namespace, and a
//! client registers its other holds again when it sees the NameNode restarted. Pure: times are
//! arguments.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::types::{BlockId, GenStamp, InodeId};

/// The holder a file's lease is reassigned to while the NameNode recovers it.
pub const RECOVERY_HOLDER: &str = "dfs-namenode-recovery";

#[derive(Debug, Clone)]
struct Lease {
    last_renewed: Instant,
    /// Files under construction by this holder.
    files: BTreeSet<InodeId>,
    /// Files this holder has open.
    held: BTreeSet<InodeId>,
}

impl Lease {
    fn new(now: Instant) -> Lease {
        Lease {
            last_renewed: now,
            files: BTreeSet::new(),
            held: BTreeSet::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.files.is_empty() && self.held.is_empty()
    }
}

/// A lease recovery in progress for one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    pub block: BlockId,
    pub new_gs: GenStamp,
    pub started: Instant,
    pub attempts: u32,
}

/// All leases.
#[derive(Debug, Default)]
pub struct Leases {
    holders: HashMap<String, Lease>,
    file_holder: HashMap<InodeId, String>,
    recovering: HashMap<InodeId, Recovery>,
    /// Who holds each file open.
    held_by: HashMap<InodeId, BTreeSet<String>>,
}

impl Leases {
    /// Gives `holder` the lease on `file` (renewing the holder).
    pub fn add(&mut self, holder: &str, file: InodeId, now: Instant) {
        self.remove(file);
        let l = self
            .holders
            .entry(holder.to_string())
            .or_insert_with(|| Lease::new(now));
        l.last_renewed = now;
        l.files.insert(file);
        self.file_holder.insert(file, holder.to_string());
    }

    /// `holder` has `file` open (renewing the holder).
    pub fn hold(&mut self, holder: &str, file: InodeId, now: Instant) {
        let l = self
            .holders
            .entry(holder.to_string())
            .or_insert_with(|| Lease::new(now));
        l.last_renewed = now;
        l.held.insert(file);
        self.held_by
            .entry(file)
            .or_default()
            .insert(holder.to_string());
    }

    /// `holder` closed `file`; whether it held it.
    pub fn release(&mut self, holder: &str, file: InodeId) -> bool {
        let Some(l) = self.holders.get_mut(holder) else {
            return false;
        };
        let had = l.held.remove(&file);
        if l.is_empty() {
            self.holders.remove(holder);
        }
        if let Some(h) = self.held_by.get_mut(&file) {
            h.remove(holder);
            if h.is_empty() {
                self.held_by.remove(&file);
            }
        }
        had
    }

    /// The clients holding `file` open. A writer holds what it writes; a writer that died
    /// without releasing its hold keeps the lease for recovery, but no longer the file.
    pub fn holders_of(&self, file: InodeId) -> BTreeSet<String> {
        self.held_by.get(&file).cloned().unwrap_or_default()
    }

    /// Forgets every hold on a file that is gone.
    pub fn forget_file(&mut self, file: InodeId) {
        self.remove(file);
        for h in self.held_by.remove(&file).unwrap_or_default() {
            if let Some(l) = self.holders.get_mut(&h) {
                l.held.remove(&file);
                if l.is_empty() {
                    self.holders.remove(&h);
                }
            }
        }
    }

    /// Holders silent for longer than `hard`, with the files they held open; their holds are
    /// dropped (their files under construction stay, for lease recovery).
    pub fn expire_holds(&mut self, now: Instant, hard: Duration) -> Vec<(String, Vec<InodeId>)> {
        let expired: Vec<String> = self
            .holders
            .iter()
            .filter(|(_, l)| {
                !l.held.is_empty() && now.saturating_duration_since(l.last_renewed) > hard
            })
            .map(|(h, _)| h.clone())
            .collect();
        let mut out = Vec::new();
        for h in expired {
            let files: Vec<InodeId> = self
                .holders
                .get(&h)
                .map(|l| l.held.iter().copied().collect())
                .unwrap_or_default();
            for f in &files {
                self.release(&h, *f);
            }
            out.push((h, files));
        }
        out
    }

    /// Releases whatever lease covers `file` (closed or deleted).
    pub fn remove(&mut self, file: InodeId) {
        self.recovering.remove(&file);
        let Some(holder) = self.file_holder.remove(&file) else {
            return;
        };
        if let Some(l) = self.holders.get_mut(&holder) {
            l.files.remove(&file);
            if l.is_empty() {
                self.holders.remove(&holder);
            }
        }
    }

    /// RenewLease: every lease of the holder. Returns whether it held any.
    pub fn renew(&mut self, holder: &str, now: Instant) -> bool {
        match self.holders.get_mut(holder) {
            Some(l) => {
                l.last_renewed = now;
                true
            }
            None => false,
        }
    }

    #[cfg(test)]
    pub fn holder(&self, file: InodeId) -> Option<&str> {
        self.file_holder.get(&file).map(String::as_str)
    }

    /// Whether the holder has not renewed within `limit`.
    pub fn expired(&self, holder: &str, now: Instant, limit: Duration) -> bool {
        self.holders
            .get(holder)
            .is_none_or(|l| now.saturating_duration_since(l.last_renewed) > limit)
    }

    /// Files whose holder has been silent for longer than `hard` (excluding files already being
    /// recovered).
    pub fn hard_expired(&self, now: Instant, hard: Duration) -> Vec<InodeId> {
        self.holders
            .iter()
            .filter(|(h, l)| {
                h.as_str() != RECOVERY_HOLDER
                    && now.saturating_duration_since(l.last_renewed) > hard
            })
            .flat_map(|(_, l)| l.files.iter().copied())
            .filter(|f| !self.recovering.contains_key(f))
            .collect()
    }

    pub fn start_recovery(&mut self, file: InodeId, r: Recovery) {
        self.recovering.insert(file, r);
    }

    pub fn recovery(&self, file: InodeId) -> Option<&Recovery> {
        self.recovering.get(&file)
    }

    /// Recoveries that started more than `timeout` ago (the primary never reported back).
    pub fn stuck_recoveries(&self, now: Instant, timeout: Duration) -> Vec<InodeId> {
        self.recovering
            .iter()
            .filter(|(_, r)| now.saturating_duration_since(r.started) > timeout)
            .map(|(f, _)| *f)
            .collect()
    }

    /// The files a holder has leases on.
    pub fn files_of(&self, holder: &str) -> Vec<InodeId> {
        self.holders
            .get(holder)
            .map(|l| l.files.iter().copied().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_renew_expire_release() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut l = Leases::default();
        l.add("c1", InodeId(10), t0);
        l.add("c1", InodeId(11), t0);
        l.add("c2", InodeId(12), t0);
        assert_eq!(l.holder(InodeId(11)), Some("c1"));
        assert!(l.renew("c1", t0 + s(50)));
        assert!(!l.renew("nobody", t0));
        assert!(!l.expired("c1", t0 + s(100), s(60)));
        assert!(l.expired("c2", t0 + s(100), s(60)));
        let mut hard = l.hard_expired(t0 + s(100), s(60));
        hard.sort();
        assert_eq!(hard, vec![InodeId(12)]);
        // Reassigning moves the file to the new holder.
        l.add(RECOVERY_HOLDER, InodeId(12), t0 + s(100));
        assert_eq!(l.holder(InodeId(12)), Some(RECOVERY_HOLDER));
        assert!(l
            .hard_expired(t0 + s(1000), s(60))
            .iter()
            .all(|f| *f != InodeId(12)));
        l.remove(InodeId(10));
        l.remove(InodeId(11));
        assert!(
            l.expired("c1", t0, s(60)),
            "a holder without files holds nothing"
        );
        assert_eq!(l.holder(InodeId(12)), Some(RECOVERY_HOLDER));
    }

    #[test]
    fn holds_keep_a_holder_alive_until_released_or_expired() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut l = Leases::default();
        l.hold("reader", InodeId(5), t0);
        l.hold("mount", InodeId(5), t0);
        l.add("mount", InodeId(6), t0);
        assert_eq!(
            l.holders_of(InodeId(5)).into_iter().collect::<Vec<_>>(),
            ["mount", "reader"]
        );
        assert!(l.holders_of(InodeId(6)).is_empty(), "a lease is no hold");
        assert!(l.release("reader", InodeId(5)));
        assert!(!l.release("reader", InodeId(5)));
        assert!(
            l.expired("reader", t0, s(60)),
            "nothing held, nothing renewed"
        );
        // The mount stops renewing: its holds expire, its file under construction stays for
        // lease recovery.
        let gone = l.expire_holds(t0 + s(100), s(60));
        assert_eq!(gone, vec![("mount".to_string(), vec![InodeId(5)])]);
        assert!(l.holders_of(InodeId(5)).is_empty());
        assert_eq!(l.hard_expired(t0 + s(100), s(60)), vec![InodeId(6)]);
        l.hold("c", InodeId(7), t0);
        l.forget_file(InodeId(7));
        assert!(l.holders_of(InodeId(7)).is_empty());
        assert!(l.expired("c", t0, s(60)));
    }
}
