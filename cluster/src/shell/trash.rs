//! `rm` with trash on (`fs.trash.interval` > 0), as `hdfs dfs -rm` does it: the path moves to
//! `/user/NAME/.Trash/Current/` under its full path instead of being deleted, unless
//! `-skipTrash` or it is in the trash already. The NameNode checkpoints and expires trash;
//! `dfs expunge` asks it to do so now.

use anyhow::{bail, Result};

use super::{outln, Shell};

impl Shell {
    /// This user's trash.
    fn trash_root(&self) -> String {
        format!("/user/{}/.Trash", self.client.user().name)
    }

    /// Moves `path` (which exists) into the trash; `false` when it is in the trash already, so
    /// the caller deletes it instead.
    pub(super) async fn move_to_trash(&self, path: &str) -> Result<bool> {
        let root = self.trash_root();
        let inside = |p: &str, dir: &str| p == dir || p.starts_with(&format!("{dir}/"));
        if inside(path, &root) {
            return Ok(false);
        }
        if path == "/" || inside(&root, path) {
            bail!(
                "{path}: cannot be moved to the trash, as it contains the trash (use -skipTrash)"
            );
        }
        let current = format!("{root}/Current");
        let mut to = format!("{current}{path}");
        let parent = to.rsplit_once('/').map_or("/", |(p, _)| p).to_string();
        // 0700, as HDFS makes them: what a private directory protected stays private.
        self.client
            .mkdirs_with_permission(&root, 0o700, true)
            .await?;
        self.client
            .mkdirs_with_permission(&parent, 0o700, true)
            .await?;
        if self.client.exists(&to).await? {
            // Deleted before under the same name: keep both, as HDFS does.
            to = format!("{to}{}", super::format::now_ms());
        }
        self.client.rename(path, &to, false).await?;
        outln!("Moved: '{path}' to trash at: {to}");
        Ok(true)
    }

    pub(super) async fn expunge(&self, immediate: bool) -> Result<()> {
        self.client.expunge_trash(immediate).await?;
        Ok(())
    }
}
