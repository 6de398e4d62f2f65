//! A map and a set keyed by request or correlation ids, with a hash cheaper than SipHash that
//! a peer still cannot aim at one bucket.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

/// A map keyed by request or correlation id. Ids are counters, not secrets: a multiply-and-
/// fold hash with a per-map random seed spreads them at a fraction of SipHash's cost, and a
/// peer that does not know the seed cannot aim its ids at one bucket.
pub(crate) type IdMap<V> = HashMap<u64, V, IdHash>;

/// A set of ids; see [`IdMap`].
pub(crate) type IdSet = HashSet<u64, IdHash>;

/// The [`BuildHasher`] of [`IdMap`] and [`IdSet`]: its seed is drawn once per map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdHash(u64);

impl Default for IdHash {
    fn default() -> Self {
        IdHash(std::collections::hash_map::RandomState::new().hash_one(0x5350_u64))
    }
}

impl BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher { seed: self.0, hash: 0 }
    }
}

/// Hashes one `u64` id; see [`IdMap`].
#[derive(Debug)]
pub(crate) struct IdHasher {
    seed: u64,
    hash: u64,
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `u64` keys; correct for any other.
        for &b in bytes {
            self.write_u64(self.hash ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, id: u64) {
        let product = u128::from(id ^ self.seed) * u128::from(0x9e37_79b9_7f4a_7c15_u64);
        self.hash = (product as u64) ^ ((product >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_map_spreads_consecutive_ids() {
        let hash = IdHash::default();
        let mut buckets = [0u32; 64];
        for id in (1..=6400u64).step_by(2) {
            buckets[(hash.hash_one(id) & 63) as usize] += 1;
        }
        // 3,200 ids over 64 buckets: 50 each on average.
        assert!(buckets.iter().all(|&n| (20..=90).contains(&n)), "{buckets:?}");
        let mut map = IdMap::default();
        for id in 0..1000u64 {
            map.insert(id * 2, id);
        }
        assert!((0..1000u64).all(|id| map.get(&(id * 2)) == Some(&id)));
    }
}
