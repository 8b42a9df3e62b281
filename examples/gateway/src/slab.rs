//! A vector of reusable slots, for the per-worker lists of waiting
//! deadlines ([`coarse`](crate::coarse)) and live connections
//! ([`conn`](crate::conn)): an entry keeps its index while it lives, and a
//! freed index is reused before the vector grows.

#[derive(Debug)]
pub struct Slab<T> {
    entries: Vec<Option<T>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Stores `value`; returns its index.
    pub fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        match self.free.pop() {
            Some(i) => {
                self.entries[i] = Some(value);
                i
            }
            None => {
                self.entries.push(Some(value));
                self.entries.len() - 1
            }
        }
    }

    /// Frees index `i` (given by [`insert`](Self::insert), not yet removed).
    pub fn remove(&mut self, i: usize) -> Option<T> {
        let value = self.entries[i].take();
        if value.is_some() {
            self.free.push(i);
            self.len -= 1;
        }
        value
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.entries.get_mut(i)?.as_mut()
    }

    /// The live entries.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.entries.iter_mut().flatten()
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_stay_put_and_freed_ones_are_reused() {
        let mut s = Slab::default();
        let a = s.insert('a');
        let b = s.insert('b');
        assert_eq!(s.remove(a), Some('a'));
        assert_eq!(s.remove(a), None, "removed twice");
        assert_eq!(s.len(), 1);
        let c = s.insert('c');
        assert_eq!(c, a, "a freed index comes back first");
        assert_eq!(s.get_mut(b), Some(&mut 'b'));
        let mut live: Vec<char> = s.iter_mut().map(|v| *v).collect();
        live.sort();
        assert_eq!(live, ['b', 'c']);
    }
}
