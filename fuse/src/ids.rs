//! [`Ids`]: owner and group names to local ids and back, cached. Every attribute the mount
//! returns names an owner and a group, and the C library answers a name it does not know (such
//! as the NameNode's `supergroup`) only after reading every source it has: about 0.2 ms a time,
//! more than the NameNode takes to answer the stat itself. An id the local databases do not
//! know travels as its number, and a name that is a number maps back to it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dfs_client::user::{group_id, group_name, user_id, user_name};

use crate::lock;

/// How long an answer is kept: local accounts change rarely, and a change shows within this.
const TTL: Duration = Duration::from_secs(60);
/// Names kept at most (cleared when full: a mount sees few distinct owners and groups).
const MAX_NAMES: usize = 4096;

type Cache<K, V> = Mutex<HashMap<K, (V, Instant)>>;

#[derive(Default)]
pub struct Ids {
    users: Cache<String, Option<u32>>,
    groups: Cache<String, Option<u32>>,
    user_names: Cache<u32, String>,
    group_names: Cache<u32, String>,
}

impl Ids {
    /// The local uid of user `name`, None if there is no such local user.
    pub fn uid(&self, name: &str) -> Option<u32> {
        cached(&self.users, name.to_string(), || {
            user_id(name).or_else(|| number(name))
        })
    }

    /// The local gid of group `name`, None if there is no such local group.
    pub fn gid(&self, name: &str) -> Option<u32> {
        cached(&self.groups, name.to_string(), || {
            group_id(name).or_else(|| number(name))
        })
    }

    /// The name dfs knows uid `uid` by: its local name, else the number.
    pub fn user_name(&self, uid: u32) -> String {
        cached(&self.user_names, uid, || {
            user_name(uid).unwrap_or_else(|| uid.to_string())
        })
    }

    /// The name dfs knows gid `gid` by.
    pub fn group_name(&self, gid: u32) -> String {
        cached(&self.group_names, gid, || {
            group_name(gid).unwrap_or_else(|| gid.to_string())
        })
    }
}

/// A name that is a plain decimal number, as an id (how an unknown id travels).
fn number(name: &str) -> Option<u32> {
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
}

fn cached<K, V>(cache: &Cache<K, V>, key: K, look_up: impl FnOnce() -> V) -> V
where
    K: std::hash::Hash + Eq,
    V: Clone,
{
    if let Some((v, at)) = lock(cache).get(&key) {
        if at.elapsed() < TTL {
            return v.clone();
        }
    }
    let v = look_up();
    let mut c = lock(cache);
    if c.len() >= MAX_NAMES {
        c.clear();
    }
    c.insert(key, (v.clone(), Instant::now()));
    v
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
        // Ids without a local name travel as numbers, and come back.
        assert_eq!(ids.user_name(987_654), "987654");
        assert_eq!(ids.uid("987654"), Some(987_654));
        assert_eq!(ids.group_name(0), "root");
        assert_eq!(ids.gid("12"), group_id("12").or(Some(12)));
    }
}
