//! A sorted map that is a plain vector while it is small.
//!
//! The incremental engine keeps thousands of maps that hold one or two
//! entries (what each root read, the slices of each Service). A `BTreeMap`
//! allocates a whole node (eleven slots) for its first entry; this map
//! allocates exactly the entries it holds until it has more than
//! [`SMALL`], and only then becomes a `BTreeMap`.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::collections::btree_map;

/// Entries kept in the vector before the map turns into a `BTreeMap`.
pub const SMALL: usize = 8;

/// A map ordered by key; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmallMap<K, V> {
    /// Up to [`SMALL`] entries, sorted by key, without duplicates.
    Small(Vec<(K, V)>),
    /// More.
    Large(BTreeMap<K, V>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap::Small(Vec::new())
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    /// An empty map (allocates nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes room for `key` if it is missing: a full vector becomes a
    /// `BTreeMap`, and a vector grows 1, 2, 4, 8 rather than starting at four.
    fn make_room(&mut self, key: &K) {
        if let SmallMap::Small(v) = self
            && Self::position(v, key).is_err()
        {
            if v.len() >= SMALL {
                *self = SmallMap::Large(std::mem::take(v).into_iter().collect());
            } else if v.len() == v.capacity() {
                v.reserve_exact(v.len().max(1));
            }
        }
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.make_room(&key);
        match self {
            SmallMap::Small(v) => match Self::position(v, &key) {
                Ok(i) => Some(std::mem::replace(&mut v[i].1, value)),
                Err(i) => {
                    v.insert(i, (key, value));
                    None
                }
            },
            SmallMap::Large(m) => m.insert(key, value),
        }
    }

    fn position<Q>(v: &[(K, V)], key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        v.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value under `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self {
            SmallMap::Small(v) => Self::position(v, key).ok().map(|i| &v[i].1),
            SmallMap::Large(m) => m.get(key),
        }
    }

    /// The value under `key`, to change.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self {
            SmallMap::Small(v) => match Self::position(v, key) {
                Ok(i) => Some(&mut v[i].1),
                Err(_) => None,
            },
            SmallMap::Large(m) => m.get_mut(key),
        }
    }

    /// The value under `key`, inserted from `make` first if missing.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.make_room(&key);
        match self {
            SmallMap::Small(v) => {
                let i = match Self::position(v, &key) {
                    Ok(i) => i,
                    Err(i) => {
                        v.insert(i, (key, make()));
                        i
                    }
                };
                &mut v[i].1
            }
            SmallMap::Large(m) => m.entry(key).or_insert_with(make),
        }
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self {
            SmallMap::Small(v) => {
                let i = Self::position(v, key).ok()?;
                Some(v.remove(i).1)
            }
            SmallMap::Large(m) => m.remove(key),
        }
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        match self {
            SmallMap::Small(v) => v.len(),
            SmallMap::Large(m) => m.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries in key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        match self {
            SmallMap::Small(v) => Iter::Small(v.iter()),
            SmallMap::Large(m) => Iter::Large(m.iter()),
        }
    }

    /// The entries in key order, values changeable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        let (small, large) = match self {
            SmallMap::Small(v) => (Some(v.iter_mut().map(|(k, v)| (&*k, v))), None),
            SmallMap::Large(m) => (None, Some(m.iter_mut())),
        };
        small
            .into_iter()
            .flatten()
            .chain(large.into_iter().flatten())
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SmallMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = SmallMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

/// Iterator over a [`SmallMap`]'s entries in key order.
#[derive(Debug)]
pub enum Iter<'a, K, V> {
    /// Of the vector.
    Small(std::slice::Iter<'a, (K, V)>),
    /// Of the tree.
    Large(btree_map::Iter<'a, K, V>),
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(i) => i.next().map(|(k, v)| (k, v)),
            Iter::Large(i) => i.next(),
        }
    }
}

impl<'a, K: Ord, V> IntoIterator for &'a SmallMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation agrees with a `BTreeMap` on a deterministic mixed
    /// sequence that crosses the small/large boundary both ways.
    #[test]
    fn behaves_like_a_btreemap() {
        let mut ours: SmallMap<u32, u32> = SmallMap::new();
        let mut model: BTreeMap<u32, u32> = BTreeMap::new();
        let mut x: u32 = 12345;
        for step in 0..4000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let key = (x >> 16) % 24;
            if (x >> 8).is_multiple_of(3) {
                assert_eq!(ours.remove(&key), model.remove(&key), "step {step}");
            } else if (x >> 8) % 3 == 1 {
                *ours.get_or_insert_with(key, || 0) += step;
                *model.entry(key).or_insert(0) += step;
                if let (Some(a), Some(b)) = (ours.get_mut(&key), model.get_mut(&key)) {
                    *a += 1;
                    *b += 1;
                }
                for ((_, a), (_, b)) in ours.iter_mut().zip(model.iter_mut()) {
                    *a ^= 1;
                    *b ^= 1;
                }
            } else {
                assert_eq!(
                    ours.insert(key, step),
                    model.insert(key, step),
                    "step {step}"
                );
            }
            assert_eq!(ours.len(), model.len());
            assert_eq!(ours.get(&key), model.get(&key));
            assert_eq!(ours.contains_key(&key), model.contains_key(&key));
            let a: Vec<_> = ours.iter().collect();
            let b: Vec<_> = model.iter().collect();
            assert_eq!(a, b, "step {step}");
        }
    }

    #[test]
    fn stays_a_vector_until_it_is_large() {
        let mut m: SmallMap<u32, ()> = (0..SMALL as u32).map(|k| (k, ())).collect();
        assert!(matches!(m, SmallMap::Small(_)));
        m.insert(SMALL as u32, ());
        assert!(matches!(m, SmallMap::Large(_)));
        let mut one: SmallMap<u32, ()> = SmallMap::new();
        one.insert(7, ());
        match &one {
            SmallMap::Small(v) => assert_eq!(v.capacity(), 1),
            SmallMap::Large(_) => panic!("one entry is small"),
        }
    }
}
