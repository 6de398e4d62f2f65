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

/// A set of ids that is nearly always tiny: the pushes a worker holds unanswered, the pushes
/// in flight on one worker connection. Up to [`FEW`] ids live in an array searched in line;
/// more spill into an [`IdSet`], so any number of ids, in any order, works as a hash set would,
/// while the usual one or two cost no hashing.
#[derive(Debug, Default)]
pub(crate) struct FewIds {
    few: [u64; FEW],
    /// How many of `few` are in the set.
    len: usize,
    more: IdSet,
}

/// How many ids [`FewIds`] keeps without hashing.
const FEW: usize = 8;

impl FewIds {
    /// True when `id` is in the set.
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.few[..self.len].contains(&id) || (!self.more.is_empty() && self.more.contains(&id))
    }

    /// Adds `id`; false when it was in the set already.
    pub(crate) fn insert(&mut self, id: u64) -> bool {
        if self.few[..self.len].contains(&id) {
            return false;
        }
        if self.len < FEW && (self.more.is_empty() || !self.more.contains(&id)) {
            self.few[self.len] = id;
            self.len += 1;
            return true;
        }
        self.more.insert(id)
    }

    /// Removes `id`; false when it was not in the set.
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        if let Some(at) = self.few[..self.len].iter().position(|&x| x == id) {
            self.len -= 1;
            self.few[at] = self.few[self.len];
            return true;
        }
        !self.more.is_empty() && self.more.remove(&id)
    }

    /// How many ids the set holds.
    pub(crate) fn len(&self) -> usize {
        self.len + self.more.len()
    }

    /// True when the set holds no id.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0 && self.more.is_empty()
    }

    /// Empties the set.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.more.clear();
    }

    /// Empties the set, yielding every id it held (in no particular order).
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = u64> + '_ {
        let few = self.few;
        let len = std::mem::take(&mut self.len);
        few.into_iter().take(len).chain(self.more.drain())
    }
}

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

    /// Any sequence of inserts and removes leaves `FewIds` holding what a hash set would,
    /// whether the ids stay few or spill over.
    #[test]
    fn few_ids_behave_as_a_hash_set() {
        let mut seed = 0x9e37_79b9_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for range in [3, 12, 40] {
            let mut few = FewIds::default();
            let mut set = std::collections::HashSet::new();
            for step in 0..20_000 {
                let id = next(range);
                match next(3) {
                    0 | 1 if step % 1000 < 600 => assert_eq!(few.insert(id), set.insert(id), "insert {id}"),
                    _ => assert_eq!(few.remove(id), set.remove(&id), "remove {id}"),
                }
                assert_eq!(few.len(), set.len());
                assert_eq!(few.is_empty(), set.is_empty());
                let probe = next(range);
                assert_eq!(few.contains(probe), set.contains(&probe), "contains {probe}");
            }
            for id in 0..range {
                assert_eq!(few.contains(id), set.contains(&id), "{id}");
            }
            let mut drained: Vec<u64> = few.drain().collect();
            drained.sort_unstable();
            let mut expected: Vec<u64> = set.into_iter().collect();
            expected.sort_unstable();
            assert_eq!(drained, expected);
            assert!(few.is_empty() && !few.contains(expected.first().copied().unwrap_or(0)));
            few.insert(1);
            few.clear();
            assert_eq!(few.len(), 0);
        }
    }

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
