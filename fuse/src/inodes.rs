//! Inode numbers ↔ paths. FUSE names files by inode number; the NameNode by path. Inode numbers
//! are the NameNode's inode ids, so they are stable across lookups and renames; this table only
//! remembers the current path of each inode the kernel holds a reference to, and forgets it when
//! the kernel does (`forget`), so memory does not grow with every file ever looked up.

use std::collections::HashMap;
use std::sync::Mutex;

/// FUSE's root inode number, which is also the NameNode's root inode id.
pub const ROOT: u64 = 1;

#[derive(Default)]
pub struct Inodes {
    nodes: Mutex<HashMap<u64, Node>>,
}

struct Node {
    path: String,
    lookups: u64,
}

impl Inodes {
    pub fn new() -> Inodes {
        let t = Inodes::default();
        t.lock().insert(
            ROOT,
            Node {
                path: "/".into(),
                lookups: 1,
            },
        );
        t
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Node>> {
        self.nodes.lock().expect("inode table poisoned")
    }

    pub fn path(&self, ino: u64) -> Option<String> {
        self.lock().get(&ino).map(|n| n.path.clone())
    }

    /// The kernel got a reference to `ino` (lookup, create, mkdir, readdirplus entry).
    pub fn remember(&self, ino: u64, path: &str) {
        let mut t = self.lock();
        let n = t.entry(ino).or_insert_with(|| Node {
            path: path.to_string(),
            lookups: 0,
        });
        n.path = path.to_string();
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

    /// `from` (a file or a whole tree) is now at `to`.
    pub fn renamed(&self, from: &str, to: &str) {
        let prefix = format!("{from}/");
        for n in self.lock().values_mut() {
            if n.path == from {
                n.path = to.to_string();
            } else if let Some(rest) = n.path.strip_prefix(&prefix) {
                n.path = format!("{to}/{rest}");
            }
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
}
