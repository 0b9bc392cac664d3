//! `find`, as `hdfs dfs -find`: every path at or below the given ones whose last component
//! matches `-name` (a glob; `-iname` ignores case), printed one per line (`-print`) or
//! NUL-terminated (`-print0`).

use std::io::Write;

use anyhow::{Context, Result};
use glob::{MatchOptions, Pattern};

use super::ls::Listing;
use super::{stdout_error, Shell};

/// What `find` was asked.
pub(super) struct FindOptions {
    /// The glob and whether it ignores case; `None` matches everything.
    pub name: Option<(String, bool)>,
    pub print0: bool,
}

impl Shell {
    pub(super) async fn find(&self, roots: &[String], o: &FindOptions) -> Result<()> {
        let pattern = match &o.name {
            Some((glob, ignore_case)) => Some((
                Pattern::new(glob).with_context(|| format!("find: bad pattern {glob:?}"))?,
                MatchOptions {
                    case_sensitive: !ignore_case,
                    ..MatchOptions::new()
                },
            )),
            None => None,
        };
        let matches = |path: &str| {
            let name = path
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or(path);
            pattern
                .as_ref()
                .is_none_or(|(p, opts)| p.matches_with(name, *opts))
        };
        let end = if o.print0 { "\0" } else { "\n" };
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for root in roots {
            let st = self.client.symlink_status(root).await?;
            if matches(root) {
                write!(out, "{root}{end}").map_err(stdout_error)?;
            }
            if st.is_dir() {
                let mut walk = Listing::new(&self.client, root, true);
                while let Some((p, _)) = walk.next().await? {
                    if matches(&p) {
                        write!(out, "{p}{end}").map_err(stdout_error)?;
                    }
                }
            }
        }
        out.flush().map_err(stdout_error)
    }
}
