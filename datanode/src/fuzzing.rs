//! Entry point for the fuzz target in `fuzz/` and the property test beside it: a replica's block
//! and checksum files as found on disk, read the way a restarting DataNode verifies them. Any
//! contents must end in a verified length or an error: never a panic or an allocation without
//! bound.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::meta;

/// Writes `meta_file` and `data` as a replica's two files and returns how many bytes of `data`
/// its checksums verify (`Err` when the checksum file's header is refused or a read fails).
pub fn checksum_file(meta_file: &[u8], data: &[u8]) -> std::io::Result<u64> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let base: PathBuf = std::env::temp_dir().join(format!("dfs-fuzz-{}-{n}", std::process::id()));
    let (data_path, meta_path) = (base.with_extension("data"), base.with_extension("meta"));
    let verify = || {
        std::fs::write(&data_path, data)?;
        std::fs::write(&meta_path, meta_file)?;
        let (d, m) = (
            std::fs::File::open(&data_path)?,
            std::fs::File::open(&meta_path)?,
        );
        let bpc = meta::read_header(&m)?;
        meta::verified_prefix(&d, &m, data.len() as u64, bpc)
    };
    let result = verify();
    let _ = std::fs::remove_file(&data_path);
    let _ = std::fs::remove_file(&meta_path);
    result
}

#[cfg(test)]
mod tests {
    use dfs_proto::checksum;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn checksum_files_never_panic(
            meta_file in prop::collection::vec(any::<u8>(), 0..512),
            data in prop::collection::vec(any::<u8>(), 0..4096),
        ) {
            let _ = checksum_file(&meta_file, &data);
        }

        /// A well-formed checksum file verifies its data up to the first damaged chunk.
        #[test]
        fn a_flipped_byte_stops_verification_at_its_chunk(
            data in prop::collection::vec(any::<u8>(), 1..4096),
            at in any::<prop::sample::Index>(),
        ) {
            let mut m = meta::encode_header(512).to_vec();
            m.extend(checksum::encode(&checksum::compute(0, &data, 512)));
            prop_assert_eq!(checksum_file(&m, &data).unwrap(), data.len() as u64);
            let i = at.index(data.len());
            let mut bad = data.clone();
            bad[i] ^= 0x5a;
            prop_assert_eq!(checksum_file(&m, &bad).unwrap(), (i / 512 * 512) as u64);
        }
    }
}
