//! Inode numbers ↔ paths. FUSE names files by inode number; the NameNode by path. Inode numbers
//! are the NameNode's inode ids, so they are stable across lookups and renames; this table only
//! remembers the current path of each inode the kernel holds a reference to, and forgets it when
//! the kernel does (`forget`), so memory does not grow with every file ever looked up.
//!
//! An inode whose name went away through this mount (unlinked, or replaced by a rename) is
//! orphaned: it has no path any more, so an open handle on it can never reach the file that
//! now has its old name.

use std::collections::HashMap;
use std::sync::Mutex;

/// FUSE's root inode number, which is also the NameNode's root inode id.
pub const ROOT: u64 = 1;

#[derive(Default)]
pub struct Inodes {
    nodes: Mutex<HashMap<u64, Node>>,
}

struct Node {
    /// None once orphaned.
    path: Option<String>,
    lookups: u64,
}

impl Inodes {
    pub fn new() -> Inodes {
        let t = Inodes::default();
        t.lock().insert(
            ROOT,
            Node {
                path: Some("/".into()),
                lookups: 1,
            },
        );
        t
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Node>> {
        crate::lock(&self.nodes)
    }

    pub fn path(&self, ino: u64) -> Option<String> {
        self.lock().get(&ino).and_then(|n| n.path.clone())
    }

    /// The kernel got a reference to `ino` (lookup, create, mkdir, readdirplus entry).
    pub fn remember(&self, ino: u64, path: &str) {
        let mut t = self.lock();
        let n = t.entry(ino).or_insert_with(|| Node {
            path: None,
            lookups: 0,
        });
        n.path = Some(path.to_string());
        n.lookups += 1;
    }

    /// The kernel dropped `n` references to `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        if ino == ROOT {
            return;
        }
        let mut t = self.lock();
        if let Some(node) = t.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(n);
            if node.lookups == 0 {
                t.remove(&ino);
            }
        }
    }

    /// `from` (a file or a whole tree) is now at `to`; what `to` named before is orphaned.
    pub fn renamed(&self, from: &str, to: &str) {
        if from == to {
            return;
        }
        let mut t = self.lock();
        orphan(&mut t, to);
        let prefix = format!("{from}/");
        for p in t.values_mut().filter_map(|n| n.path.as_mut()) {
            if p == from {
                *p = to.to_string();
            } else if let Some(rest) = p.strip_prefix(&prefix) {
                *p = format!("{to}/{rest}");
            }
        }
    }

    /// `path` was deleted: it and everything below it are orphaned.
    pub fn removed(&self, path: &str) {
        orphan(&mut self.lock(), path);
    }
}

fn orphan(t: &mut HashMap<u64, Node>, path: &str) {
    let prefix = format!("{path}/");
    for n in t.values_mut() {
        if n.path
            .as_deref()
            .is_some_and(|p| p == path || p.starts_with(&prefix))
        {
            n.path = None;
        }
    }
}

/// `dir/name` as a dfs path.
pub fn child(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forget_releases_and_rename_moves_trees() {
        let t = Inodes::new();
        t.remember(5, "/a");
        t.remember(6, "/a/b");
        t.remember(7, "/ab");
        t.renamed("/a", "/x");
        assert_eq!(t.path(6).as_deref(), Some("/x/b"));
        assert_eq!(t.path(7).as_deref(), Some("/ab"));
        t.remember(5, "/x");
        t.forget(5, 1);
        assert!(t.path(5).is_some());
        t.forget(5, 1);
        assert!(t.path(5).is_none());
        t.forget(ROOT, 100);
        assert_eq!(t.path(ROOT).as_deref(), Some("/"));
        assert_eq!(child("/", "a"), "/a");
    }

    #[test]
    fn replaced_and_removed_inodes_lose_their_path() {
        let t = Inodes::new();
        t.remember(5, "/doc");
        t.remember(6, "/.doc.swp");
        t.remember(7, "/d");
        t.remember(8, "/d/f");
        t.renamed("/.doc.swp", "/doc");
        assert_eq!(t.path(6).as_deref(), Some("/doc"));
        assert_eq!(t.path(5), None, "the replaced file is orphaned");
        t.removed("/d");
        assert_eq!((t.path(7), t.path(8)), (None, None));
        // An orphan still counts the kernel's references until it forgets them.
        t.remember(5, "/again");
        assert_eq!(t.path(5).as_deref(), Some("/again"));
        t.renamed("/again", "/again");
        assert_eq!(
            t.path(5).as_deref(),
            Some("/again"),
            "a rename onto itself changes nothing"
        );
    }
}
