//! Directory listings, one NameNode page at a time: only the current page is kept.

use dfs_client::FileStatus;
use fuser::{FileHandle, FileType, Generation, INodeNo, ReplyDirectory, ReplyDirectoryPlus};

use crate::fs::{ipath, listing_type, Fs, OrErrno, Reply};

pub(crate) struct Listing {
    path: String,
    /// Index in the directory of `entries[0]`.
    base: usize,
    entries: Vec<FileStatus>,
    done: bool,
}

impl Listing {
    pub(crate) fn new(ino: u64) -> Listing {
        Listing {
            path: ipath(ino),
            base: 0,
            entries: Vec::new(),
            done: false,
        }
    }
}

impl Fs {
    /// Entry `k` of the listing (None past the end), fetching pages as needed.
    async fn list_entry(&self, l: &mut Listing, k: usize) -> Reply<Option<FileStatus>> {
        if k < l.base {
            // The kernel went back (rewinddir): list again from the start.
            l.base = 0;
            l.entries.clear();
            l.done = false;
        }
        while k >= l.base + l.entries.len() && !l.done {
            let after = l.entries.last().map(|e| e.name.clone()).unwrap_or_default();
            let page = self.client.list_page(&l.path, &after, 0).await.or_errno()?;
            l.base += l.entries.len();
            l.done = !page.has_more();
            l.entries = page.entries;
        }
        Ok(l.entries.get(k - l.base).cloned())
    }

    pub(crate) async fn readdir(
        &self,
        ino: u64,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listing = match self.listing(fh) {
            Ok(l) => l,
            Err(e) => return reply.error(e),
        };
        let mut l = listing.lock().await;
        // Offsets 0 and 1 are "." and ".."; entry k is at offset k + 2.
        for i in offset as usize.. {
            let (name, kind, ino) = match i {
                0 => (".".to_string(), FileType::Directory, ino),
                1 => ("..".to_string(), FileType::Directory, ino),
                _ => match self.list_entry(&mut l, i - 2).await {
                    Ok(Some(e)) => (e.name.clone(), listing_type(&e), e.inode_id),
                    Ok(None) => break,
                    // What was added is answered; the kernel asks again from there.
                    Err(_) if i > offset as usize => break,
                    Err(e) => return reply.error(e),
                },
            };
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok()
    }

    pub(crate) async fn readdirplus(
        &self,
        ino: u64,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let listing = match self.listing(fh) {
            Ok(l) => l,
            Err(e) => return reply.error(e),
        };
        let dir_attr = match self.getattr(ino).await {
            Ok(a) => a,
            Err(e) => return reply.error(e),
        };
        let mut l = listing.lock().await;
        let ttl = self.opts.entry_timeout;
        for i in offset as usize.. {
            if i < 2 {
                // The kernel takes no reference to "." and "..".
                let name = if i == 0 { "." } else { ".." };
                if reply.add(
                    INodeNo(ino),
                    (i + 1) as u64,
                    name,
                    &ttl,
                    &dir_attr,
                    Generation(0),
                ) {
                    break;
                }
                continue;
            }
            let e = match self.list_entry(&mut l, i - 2).await {
                Ok(Some(e)) => e,
                Ok(None) => break,
                // The entries added hold the kernel's references: they must be answered. The
                // kernel asks again from there and meets the error then.
                Err(_) if i > offset as usize => break,
                Err(e) => return reply.error(e),
            };
            let attr = self.attr(&e);
            if reply.add(
                attr.ino,
                (i + 1) as u64,
                &e.name,
                &ttl,
                &attr,
                Generation(0),
            ) {
                break;
            }
        }
        reply.ok()
    }
}
