//! A short list kept in place. Some lists made for every connection nearly always hold a few
//! items (a Zeek history's letters, an endpoint's TIME-WAIT timers, an anomaly's packets): kept
//! inside their owner, they are copied with it and cost no allocation; a longer one moves to
//! the heap, whole.

/// Up to `N` items (at most 255) in place, more on the heap. Serialised as the list it holds.
#[derive(Debug, Clone)]
pub struct InlineVec<T, const N: usize>(Repr<T, N>);

#[derive(Debug, Clone)]
enum Repr<T, const N: usize> {
    Inline { len: u8, items: [T; N] },
    Heap(Vec<T>),
}

impl<T: Copy + Default, const N: usize> Default for InlineVec<T, N> {
    fn default() -> Self {
        // The length is a byte, so that a list of bytes takes no more room than a `Vec`.
        const { assert!(N <= u8::MAX as usize) };
        InlineVec(Repr::Inline {
            len: 0,
            items: [T::default(); N],
        })
    }
}

impl<T: Copy + Default, const N: usize> InlineVec<T, N> {
    pub fn push(&mut self, item: T) {
        match &mut self.0 {
            Repr::Inline { len, items } => match items.get_mut(usize::from(*len)) {
                Some(room) => {
                    *room = item;
                    *len += 1;
                }
                None => {
                    let mut spilled = Vec::with_capacity(2 * N);
                    spilled.extend_from_slice(items);
                    spilled.push(item);
                    self.0 = Repr::Heap(spilled);
                }
            },
            Repr::Heap(v) => v.push(item),
        }
    }

    pub fn as_slice(&self) -> &[T] {
        match &self.0 {
            Repr::Inline { len, items } => items.get(..usize::from(*len)).unwrap_or_default(),
            Repr::Heap(v) => v,
        }
    }

    /// Whether the items are still in place.
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }
}

impl<T: Copy + Default + serde::Serialize, const N: usize> serde::Serialize for InlineVec<T, N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_stay_in_place_up_to_the_room_and_spill_whole_after_it() {
        let mut list: InlineVec<(usize, i64), 2> = InlineVec::default();
        let mut expected = Vec::new();
        for i in 0..7 {
            list.push((i, -(i as i64)));
            expected.push((i, -(i as i64)));
            assert_eq!(list.as_slice(), expected);
            assert_eq!(list.is_inline(), i < 2);
            assert_eq!(list.clone().as_slice(), expected);
            assert_eq!(
                serde_json::to_string(&list).ok(),
                serde_json::to_string(&expected).ok()
            );
        }
    }
}
