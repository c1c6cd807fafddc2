//! A fast, non-keyed hasher for the evaluator's internal maps (FxHash's mixing step: one
//! rotate, xor and multiply per 8 bytes).
//!
//! Why not the standard `SipHash`: the evaluator hashes short label strings and 64-bit
//! fingerprints tens of thousands of times per evaluation, where SipHash's per-call setup
//! shows in the profile. The keys are the operator's own rule names, label values and
//! fingerprints, not input an attacker picks per request, so flooding resistance buys nothing
//! here. Never use it for maps keyed by data from the network.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// [`HashMap`] with [`FxHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
/// [`HashSet`] with [`FxHasher`].
pub(crate) type FastSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// FxHash (as in rustc): not keyed, not DoS-resistant, fast on short keys.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_find_what_they_hold() {
        let mut m: FastMap<String, usize> = FastMap::default();
        for i in 0..1000 {
            m.insert(format!("check_{i:04}"), i);
        }
        for i in 0..1000 {
            assert_eq!(m.get(format!("check_{i:04}").as_str()), Some(&i));
        }
        assert_eq!(m.get("check_1000"), None);
    }
}
