//! Deserializers for imbl's maps and vectors that do not trust a length read off the wire.
//!
//! imbl's own `Deserialize` impls allocate a `Vec` of the length the encoding announces before
//! reading a single element, so six bytes of postcard announcing 2^30 entries made the process
//! try to allocate 24 GB and abort (found by the `codec` fuzz target, metastore/fuzz). A snapshot
//! arrives from a peer, so its decoding must be as safe as any RPC body's. These read the same
//! encoding (a map as a map, a vector as a sequence) and pre-allocate at most what serde's own
//! collections do, 1 MiB, then grow as elements actually arrive.

use std::fmt;
use std::marker::PhantomData;

use imbl::{OrdMap, Vector};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// What serde's `size_hint::cautious` allows: the announced length, up to 1 MiB of elements.
fn cautious<T>(hint: Option<usize>) -> usize {
    let max = (1 << 20) / std::mem::size_of::<T>().max(1);
    hint.unwrap_or(0).min(max)
}

/// An [`OrdMap`] decoded with a capped pre-allocation.
pub struct CappedMap<K: Ord + Clone, V: Clone>(pub OrdMap<K, V>);

impl<'de, K, V> Deserialize<'de> for CappedMap<K, V>
where
    K: Deserialize<'de> + Ord + Clone,
    V: Deserialize<'de> + Clone,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<K, V>(PhantomData<(K, V)>);
        impl<'de, K, V> Visitor<'de> for MapVisitor<K, V>
        where
            K: Deserialize<'de> + Ord + Clone,
            V: Deserialize<'de> + Clone,
        {
            type Value = CappedMap<K, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(cautious::<(K, V)>(access.size_hint()));
                while let Some(entry) = access.next_entry()? {
                    entries.push(entry);
                }
                Ok(CappedMap(OrdMap::from(entries)))
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

/// For `#[serde(deserialize_with = "crate::capped::map")]` on an [`OrdMap`] field.
pub fn map<'de, D, K, V>(d: D) -> Result<OrdMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + Clone,
    V: Deserialize<'de> + Clone,
{
    CappedMap::deserialize(d).map(|m| m.0)
}

/// [`map`] for a map of maps, both capped.
pub fn map_of_maps<'de, D, K, K2, V>(d: D) -> Result<OrdMap<K, OrdMap<K2, V>>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + Clone,
    K2: Deserialize<'de> + Ord + Clone,
    V: Deserialize<'de> + Clone,
{
    let outer: CappedMap<K, CappedMap<K2, V>> = CappedMap::deserialize(d)?;
    Ok(outer.0.into_iter().map(|(k, inner)| (k, inner.0)).collect())
}

impl<K: Ord + Clone, V: Clone> Clone for CappedMap<K, V> {
    fn clone(&self) -> Self {
        CappedMap(self.0.clone())
    }
}

/// For `#[serde(deserialize_with = "crate::capped::vector")]` on a [`Vector`] field.
pub fn vector<'de, D, T>(d: D) -> Result<Vector<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Clone,
{
    struct SeqVisitor<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de> + Clone> Visitor<'de> for SeqVisitor<T> {
        type Value = Vector<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::with_capacity(cautious::<T>(access.size_hint()));
            while let Some(item) = access.next_element()? {
                items.push(item);
            }
            Ok(Vector::from(items))
        }
    }
    d.deserialize_seq(SeqVisitor(PhantomData))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
    struct Holder {
        #[serde(deserialize_with = "map")]
        m: OrdMap<u32, String>,
        #[serde(deserialize_with = "vector")]
        v: Vector<u64>,
        #[serde(deserialize_with = "map_of_maps")]
        mm: OrdMap<String, OrdMap<u8, i64>>,
    }

    #[test]
    fn the_encoding_is_imbls() {
        let h = Holder {
            m: OrdMap::from(vec![(1u32, "a".to_string()), (2u32, "b".to_string())]),
            v: Vector::from(vec![5u64, 6, 7]),
            mm: OrdMap::from(vec![("g".to_string(), OrdMap::from(vec![(1u8, -1i64)]))]),
        };
        let bytes = crate::codec::encode(&h).unwrap();
        assert_eq!(crate::codec::decode::<Holder>(&bytes).unwrap(), h);
        let json = serde_json::to_vec(&h).unwrap();
        assert_eq!(serde_json::from_slice::<Holder>(&json).unwrap(), h);
    }

    /// The fuzz target's find: a map announcing 2^30 entries in a few bytes.
    #[test]
    fn a_huge_announced_length_is_an_error_not_an_allocation() {
        let mut bytes = vec![0x80, 0x80, 0x80, 0x80, 0x04]; // varint 2^30
        bytes.extend([0u8; 4]);
        assert!(crate::codec::decode::<Holder>(&bytes).is_err());
        assert!(crate::codec::decode::<CappedMap<u32, u32>>(&bytes).is_err());
    }
}
