//! [`Ids`]: owner and group names to local ids, cached. Every attribute the mount returns names
//! an owner and a group, and the C library answers a name it does not know (such as the
//! NameNode's `supergroup`) only after reading every source it has: about 0.2 ms a time, more
//! than the NameNode takes to answer the stat itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dfs_client::user::{group_id, user_id};

use crate::lock;

/// How long an answer is kept: local accounts change rarely, and a change shows within this.
const TTL: Duration = Duration::from_secs(60);
/// Names kept at most (cleared when full: a mount sees few distinct owners and groups).
const MAX_NAMES: usize = 4096;

type Cache = Mutex<HashMap<String, (Option<u32>, Instant)>>;

#[derive(Default)]
pub struct Ids {
    users: Cache,
    groups: Cache,
}

impl Ids {
    /// The local uid of user `name`, None if there is no such local user.
    pub fn uid(&self, name: &str) -> Option<u32> {
        cached(&self.users, name, user_id)
    }

    /// The local gid of group `name`, None if there is no such local group.
    pub fn gid(&self, name: &str) -> Option<u32> {
        cached(&self.groups, name, group_id)
    }
}

fn cached(cache: &Cache, name: &str, look_up: fn(&str) -> Option<u32>) -> Option<u32> {
    if let Some(&(id, at)) = lock(cache).get(name) {
        if at.elapsed() < TTL {
            return id;
        }
    }
    let id = look_up(name);
    let mut c = lock(cache);
    if c.len() >= MAX_NAMES {
        c.clear();
    }
    c.insert(name.to_string(), (id, Instant::now()));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_as_the_databases_do_and_remembers() {
        let ids = Ids::default();
        assert_eq!(ids.uid("root"), Some(0));
        assert_eq!(ids.gid("root"), Some(0));
        assert_eq!(ids.uid("no-such-user-here"), None);
        assert_eq!(ids.gid("no-such-group-here"), None);
        // Answered from the cache now, unknown names included.
        assert_eq!(lock(&ids.groups).len(), 2);
        assert_eq!(ids.gid("no-such-group-here"), None);
        assert_eq!(ids.uid("root"), Some(0));
        assert_eq!(lock(&ids.users).len(), 2);
    }
}
