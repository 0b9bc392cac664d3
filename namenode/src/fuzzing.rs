//! Entry points for the fuzz targets in `fuzz/` and the property tests beside them. Each feeds
//! bytes from outside (an edit-log segment, a checkpoint image) through the code the NameNode
//! loads them with. Any input must end in `Ok` or an error: never a panic, a hang or an
//! allocation without bound.
//!
//! Random bytes rarely pass a CRC32C, so each entry point also has a *framed* mode (the first
//! input byte is odd): the rest is cut into payloads, each given a valid record header, so the
//! fuzzer reaches the decoders behind the checksums.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::checkpoint::{self, IMAGE_MAGIC};
use crate::editlog::{self, EDIT_MAGIC};
use crate::namespace::Namespace;
use crate::record;

/// Cuts `bytes` into payloads (each led by a one-byte length) and frames each as a record.
fn framed(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        record::encode(&tail[..n], &mut out);
        rest = &tail[n..];
    }
    out
}

/// Splits off the mode byte: `(framed?, rest)`.
fn mode(bytes: &[u8]) -> (bool, &[u8]) {
    match bytes.split_first() {
        Some((m, rest)) => (m & 1 == 1, rest),
        None => (false, bytes),
    }
}

/// A fresh directory under the system temporary directory, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> std::io::Result<ScratchDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("dfs-fuzz-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replays `bytes` as the only edit segment onto an empty namespace, as a restart would.
/// Returns the last txid applied.
pub fn edit_segment(bytes: &[u8]) -> crate::Result<u64> {
    let (framed_mode, rest) = mode(bytes);
    let contents = if framed_mode {
        let mut s = EDIT_MAGIC.to_vec();
        s.extend(framed(rest));
        s
    } else {
        rest.to_vec()
    };
    let dir = ScratchDir::new().map_err(|e| crate::Error::io("create a scratch dir", e))?;
    std::fs::write(dir.0.join(editlog::segment_name(1)), contents)
        .map_err(|e| crate::Error::io("write the segment", e))?;
    let mut ns = Namespace::new("root", "supergroup", 0);
    editlog::replay(&dir.0, 0, |_, op| ns.apply(&op).map(|_| ()))
}

/// Decodes `bytes` as a checkpoint image; one that decodes must survive being encoded and
/// decoded again with the same transaction id.
pub fn image(bytes: &[u8]) -> crate::Result<()> {
    let (framed_mode, rest) = mode(bytes);
    let contents = if framed_mode {
        let mut s = IMAGE_MAGIC.to_vec();
        s.extend(framed(rest));
        s.extend(crc32c::crc32c(&s).to_be_bytes());
        s
    } else {
        rest.to_vec()
    };
    let img = checkpoint::decode(&contents, "fuzzed image")?;
    let again = checkpoint::encode(&img.ns, &img.cluster_id, img.txid);
    let back = checkpoint::decode(&again, "re-encoded image")
        .unwrap_or_else(|e| panic!("a decoded image does not decode after encoding: {e}"));
    assert_eq!(back.txid, img.txid);
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn edit_segments_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = edit_segment(&bytes);
        }

        #[test]
        fn images_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = image(&bytes);
        }
    }

    #[test]
    fn framed_mode_reaches_the_decoders() {
        // A record that does not decode, and an image of one empty header record: framed, each is
        // refused for what it says, not for its checksum.
        let e = edit_segment(&[1, 1, 0xff]).unwrap_err().to_string();
        assert!(
            e.contains("a record with a valid checksum does not decode"),
            "{e}"
        );
        let e = image(&[1, 0]).unwrap_err().to_string();
        assert!(e.contains("no root inode"), "{e}");
    }
}
