//! Seeds and ids: the emulator's output depends only on its seed and its input.

use daglo_core::SplitMix64;

/// FNV-1a, to turn an input (a file name, a URL) into a seed.
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    daglo_core::fnv1a64(bytes)
}

/// A version-4-shaped UUID from the generator.
pub(crate) fn uuid(rng: &mut SplitMix64) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_reproducible_and_version_4_shaped() {
        let id = uuid(&mut SplitMix64::new(7));
        assert_eq!(id, uuid(&mut SplitMix64::new(7)));
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
