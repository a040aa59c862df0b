//! What a sync learned of each wanted CloudPe uid, kept beside the sorted list of those uids.
//!
//! A sync reads the same uids many times (once per listed user while paging, once per account
//! while deciding); a `BTreeMap` of a million entries cost more than a binary search in one
//! sorted `Vec`, in time and memory.

use super::Lookup;

/// The wanted uids (sorted, distinct) and, at the same index, what is known of each.
#[derive(Debug)]
pub struct Found {
    uids: Vec<u64>,
    lookups: Vec<Option<Lookup>>,
}

impl Found {
    /// Nothing known yet of `uids` (sorted, distinct).
    pub fn new(uids: Vec<u64>) -> Self {
        debug_assert!(uids.windows(2).all(|w| w[0] < w[1]), "uids must be sorted and distinct");
        let lookups = std::iter::repeat_with(|| None).take(uids.len()).collect();
        Found { uids, lookups }
    }

    /// The wanted uids, sorted.
    pub fn uids(&self) -> &[u64] {
        &self.uids
    }

    /// Where `uid` sits, if it is wanted.
    pub fn slot(&self, uid: u64) -> Option<usize> {
        self.uids.binary_search(&uid).ok()
    }

    /// What is known of `uid`, if anything.
    pub fn get(&self, uid: u64) -> Option<&Lookup> {
        self.at(self.slot(uid)?)
    }

    /// What is known of the wanted uid in `slot`, if anything.
    pub fn at(&self, slot: usize) -> Option<&Lookup> {
        self.lookups[slot].as_ref()
    }

    /// Records what is known of the wanted uid in `slot`, replacing what was.
    pub fn set(&mut self, slot: usize, lookup: Lookup) {
        self.lookups[slot] = Some(lookup);
    }

    /// Records what is known of `uid`; an uid that is not wanted is ignored.
    pub fn insert(&mut self, uid: u64, lookup: Lookup) {
        if let Some(slot) = self.slot(uid) {
            self.set(slot, lookup);
        }
    }

    /// Records `lookup(uid)` for each wanted uid nothing is known of yet, unless it is `None`.
    pub fn fill_unknown(&mut self, mut lookup: impl FnMut(u64) -> Option<Lookup>) {
        for (&uid, slot) in self.uids.iter().zip(&mut self.lookups) {
            if slot.is_none() {
                *slot = lookup(uid);
            }
        }
    }

    /// The wanted uids nothing is known of yet, in order.
    pub fn unknown(&self) -> impl Iterator<Item = u64> + '_ {
        self.uids.iter().zip(&self.lookups).filter(|(_, l)| l.is_none()).map(|(&uid, _)| uid)
    }

    /// The uids something is known of, with it, in order.
    pub fn known(&self) -> impl Iterator<Item = (u64, &Lookup)> {
        self.uids.iter().zip(&self.lookups).filter_map(|(&uid, l)| Some((uid, l.as_ref()?)))
    }
}

impl Extend<(u64, Lookup)> for Found {
    fn extend<I: IntoIterator<Item = (u64, Lookup)>>(&mut self, lookups: I) {
        for (uid, lookup) in lookups {
            self.insert(uid, lookup);
        }
    }
}

impl std::ops::Index<u64> for Found {
    type Output = Lookup;

    /// What is known of `uid`; panics when nothing is, as a map's index does.
    fn index(&self, uid: u64) -> &Lookup {
        self.get(uid).unwrap_or_else(|| panic!("nothing is known of uid {uid}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_is_known_beside_each_wanted_uid() {
        let mut found = Found::new(vec![3, 7, 12]);
        assert_eq!(found.known().count(), 0);
        found.insert(7, Ok(None));
        found.insert(99, Ok(None)); // not wanted: ignored
        assert!(found.get(7).is_some() && found.get(3).is_none() && found.get(99).is_none());
        assert_eq!(found.unknown().collect::<Vec<_>>(), [3, 12]);
        found.extend([(12, Err(crate::wit::ModuleError::Transport("down".into()))), (3, Ok(None))]);
        assert_eq!(found.known().map(|(uid, _)| uid).collect::<Vec<_>>(), [3, 7, 12]);
        assert!(found[12].is_err());
        assert_eq!(found.slot(12), Some(2));
        let mut found = Found::new(vec![1, 2, 3]);
        found.insert(2, Err(crate::wit::ModuleError::Transport("down".into())));
        found.fill_unknown(|uid| (uid != 3).then_some(Ok(None)));
        assert_eq!(found.at(0), Some(&Ok(None)));
        assert!(found.at(1).unwrap().is_err(), "what was known stays");
        assert_eq!(found.at(2), None);
    }
}
