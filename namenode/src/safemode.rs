//! Safe mode: read-only while the block map is too incomplete to judge replication.
//!
//! Automatic safe mode starts when the NameNode loads a namespace with complete blocks and ends
//! `extension` after the fraction of complete blocks with at least one reported replica first
//! reaches `threshold`. Manual safe mode (the SafeMode RPC) lasts until a manual leave.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct SafeMode {
    manual: bool,
    auto: bool,
    threshold: f64,
    extension: Duration,
    reached_at: Option<Instant>,
    reported: u64,
    total: u64,
}

impl SafeMode {
    /// Starts in automatic safe mode when there are `total_blocks` complete blocks to wait for.
    pub fn new(total_blocks: u64, threshold: f64, extension: Duration) -> SafeMode {
        SafeMode {
            manual: false,
            auto: total_blocks > 0 && threshold > 0.0,
            threshold,
            extension,
            reached_at: None,
            reported: 0,
            total: total_blocks,
        }
    }

    pub fn is_on(&self) -> bool {
        self.manual || self.auto
    }

    /// Still waiting for block reports (as opposed to off or only manually on).
    pub fn is_auto(&self) -> bool {
        self.auto
    }

    pub fn enter_manual(&mut self) {
        self.manual = true;
    }

    /// Leaves both manual and automatic safe mode.
    pub fn leave(&mut self) {
        self.manual = false;
        self.auto = false;
    }

    /// Feeds the current counts; returns true when automatic safe mode just ended.
    pub fn update(&mut self, reported: u64, total: u64, now: Instant) -> bool {
        self.reported = reported;
        self.total = total;
        if !self.auto {
            return false;
        }
        let needed = (self.threshold * total as f64).ceil() as u64;
        if reported < needed {
            self.reached_at = None;
            return false;
        }
        let at = *self.reached_at.get_or_insert(now);
        if now.saturating_duration_since(at) >= self.extension {
            self.auto = false;
            return true;
        }
        false
    }

    /// Human-readable state for the SafeMode RPC and logs.
    pub fn status(&self, now: Instant) -> String {
        if self.manual {
            return "Safe mode is ON (entered manually). Use \"safemode leave\" to turn it off."
                .into();
        }
        if !self.auto {
            return "Safe mode is OFF.".into();
        }
        let needed = (self.threshold * self.total as f64).ceil() as u64;
        match self.reached_at {
            Some(at) => {
                let left = self.extension.saturating_sub(now.saturating_duration_since(at));
                format!(
                    "Safe mode is ON. {} of {} blocks reported (threshold {}); leaving in {}s.",
                    self.reported,
                    self.total,
                    needed,
                    left.as_secs()
                )
            }
            None => format!(
                "Safe mode is ON. {} of {} blocks reported; {} more needed to reach the threshold {:.4}.",
                self.reported,
                self.total,
                needed.saturating_sub(self.reported),
                self.threshold
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_namespace_is_not_in_safe_mode() {
        assert!(!SafeMode::new(0, 0.999, Duration::from_secs(30)).is_on());
    }

    #[test]
    fn threshold_then_extension() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut sm = SafeMode::new(1000, 0.999, s(30));
        assert!(sm.is_on());
        assert!(!sm.update(998, 1000, t0));
        assert!(sm.status(t0).contains("more needed"));
        assert!(!sm.update(999, 1000, t0 + s(1)));
        assert!(!sm.update(999, 1000, t0 + s(20)));
        assert!(sm.is_on());
        assert!(sm.update(1000, 1000, t0 + s(31)));
        assert!(!sm.is_on());
    }

    #[test]
    fn manual_stays_until_leave() {
        let t0 = Instant::now();
        let mut sm = SafeMode::new(0, 0.999, Duration::ZERO);
        sm.enter_manual();
        sm.update(0, 0, t0);
        assert!(sm.is_on());
        sm.leave();
        assert!(!sm.is_on());
    }
}
