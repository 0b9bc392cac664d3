//! Trash as HDFS keeps it. `dfs rm` (the shell) moves a path under `/user/NAME/.Trash/Current/`
//! instead of deleting it; a checkpoint renames `Current` to the moment it was taken
//! (`yyMMddHHmmss`, UTC), and a checkpoint older than `fs.trash.interval` is deleted for good. The
//! NameNode checkpoints every user's trash each `fs.trash.checkpoint.interval` (the server's
//! emptier task calls [`FsState::empty_trash_of`] for each of [`FsState::trash_users`]);
//! `dfs expunge` does it at once for the caller's.

use dfs_proto::display::{from_utc, utc};
use dfs_proto::path::DfsPath;

use super::*;

/// Where users' homes are, and each one's trash below it.
const HOMES: &str = "/user";
const TRASH: &str = ".Trash";
const CURRENT: &str = "Current";

/// A checkpoint's name: the moment it was taken, `yyMMddHHmmss` in UTC.
fn checkpoint_name(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = utc(ms);
    format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}", y.rem_euclid(100))
}

/// When a checkpoint named `name` was taken (`None` for anything else in a trash).
fn checkpoint_time(name: &str) -> Option<u64> {
    let digits = name
        .get(..12)
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?;
    if !(name.len() == 12 || name[12..].starts_with('-')) {
        return None;
    }
    let n = |i: usize| digits[i..i + 2].parse::<u32>().ok();
    let (mo, d) = (n(2)?, n(4)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    Some(from_utc(
        2000 + i64::from(n(0)?),
        mo,
        d,
        n(6)?,
        n(8)?,
        n(10)?,
    ))
}

impl FsState {
    /// ExpungeTrash: checkpoints the caller's trash and deletes the expired checkpoints (every
    /// one with `immediate`). Trash off (`fs.trash.interval` 0), only `immediate` does anything.
    pub fn expunge_trash(&mut self, c: &Caller, immediate: bool, now: Now) -> Result<()> {
        self.check_writable("expunge the trash")?;
        let root = DfsPath::parse(HOMES)
            .and_then(|h| h.join(&c.user))
            .and_then(|h| h.join(TRASH))?;
        self.checkpoint_trash(c, &root, immediate, now)
    }

    /// The users with a trash, for the emptier (nothing while trash is off or in safe mode).
    pub fn trash_users(&mut self) -> Vec<String> {
        if self.cfg.trash_interval.is_zero() || self.check_writable("empty trash").is_err() {
            return Vec::new();
        }
        let su = self.superuser();
        let homes = DfsPath::parse(HOMES).expect("a valid path");
        let users = self.child_names(&su, &homes).unwrap_or_default(); // no /user yet
        users
            .into_iter()
            .filter(|u| {
                let root = homes.join(u).and_then(|h| h.join(TRASH));
                root.is_ok_and(|r| {
                    matches!(self.get_file_info(&su, &r), Ok(Some(s)) if s.file_type == FileType::Directory)
                })
            })
            .collect()
    }

    /// The emptier's step for one user's trash, as the superuser (one step per user, so the
    /// namespace lock is not held for all of them at once). A failure is logged; the next pass
    /// tries again.
    pub fn empty_trash_of(&mut self, user: &str, now: Now) {
        let su = self.superuser();
        let root = DfsPath::parse(HOMES)
            .and_then(|h| h.join(user))
            .and_then(|h| h.join(TRASH));
        let done = root.map_err(Error::from).and_then(|r| {
            self.check_writable("empty trash")?;
            self.checkpoint_trash(&su, &r, false, now)
        });
        if let Err(e) = done {
            tracing::warn!(user, error = %e, "trash checkpoint failed");
        }
    }

    fn superuser(&self) -> Caller {
        Caller {
            user: self.cfg.superuser.clone(),
            groups: Vec::new(),
        }
    }

    /// Deletes the expired checkpoints of the trash at `root`, then makes `Current` one.
    fn checkpoint_trash(&mut self, c: &Caller, root: &DfsPath, all: bool, now: Now) -> Result<()> {
        let keep = self.cfg.trash_interval;
        if keep.is_zero() && !all {
            return Ok(());
        }
        let names = match self.child_names(c, root) {
            Ok(n) => n,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        for name in &names {
            let Some(taken) = checkpoint_time(name) else {
                continue;
            };
            if all || taken.saturating_add(keep.as_millis() as u64) <= now.ms {
                self.delete(c, &root.join(name)?, true, None, now)?;
            }
        }
        if all {
            if names.iter().any(|n| n == CURRENT) {
                self.delete(c, &root.join(CURRENT)?, true, None, now)?;
            }
            return Ok(());
        }
        if names.iter().any(|n| n == CURRENT) {
            let base = checkpoint_name(now.ms);
            let mut name = base.clone();
            for i in 1.. {
                if !names.contains(&name) {
                    break;
                }
                name = format!("{base}-{i}");
            }
            self.rename(c, &root.join(CURRENT)?, &root.join(&name)?, false, now)?;
        }
        Ok(())
    }

    /// Every name in the directory at `path`, page by page.
    fn child_names(&mut self, c: &Caller, path: &DfsPath) -> Result<Vec<String>> {
        let mut names: Vec<String> = Vec::new();
        loop {
            let after = names.last().cloned().unwrap_or_default();
            let (page, remaining, _) = self.get_listing(c, path, &after, 0)?;
            names.extend(page.into_iter().map(|s| s.name));
            if remaining == 0 {
                return Ok(names);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_names_are_the_time_they_were_taken() {
        let ms = 1_763_731_259_000; // 2025-11-21 13:20:59 UTC
        assert_eq!(checkpoint_name(ms), "251121132059");
        assert_eq!(checkpoint_time("251121132059"), Some(ms));
        assert_eq!(checkpoint_time("251121132059-2"), Some(ms));
        for other in [
            "Current",
            "2511211320",
            "251321132059",
            "25112113205x",
            "251121132059x",
        ] {
            assert_eq!(checkpoint_time(other), None, "{other}");
        }
    }
}
