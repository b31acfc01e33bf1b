//! The consumer protocol's assignment (`ConsumerProtocolAssignment`), which a classic group's
//! leader hands each member in SyncGroup and DescribeGroups relays as opaque bytes:
//!
//! ```text
//! version: int16
//! assigned_partitions: int32 count, then for each: topic (int16 length, UTF-8), partitions
//!     (int32 count, then int32 each)
//! user_data: nullable bytes (int32 length)   -- ignored, and tolerated when absent
//! ```
//!
//! Parsed by hand with bounds checks: the bytes come from a client, so no count is trusted
//! further than the bytes that follow it can hold.

/// The (topic, partition) pairs of an assignment, or `None` when the bytes are not one. Empty
/// bytes are an empty assignment (a member between a join and its sync).
pub fn parse(bytes: &[u8]) -> Option<Vec<(String, i32)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let mut r = Reader { bytes, pos: 0 };
    let _version = r.i16()?;
    let topics = r.count(6)?; // a topic takes at least its length and its partition count
    let mut out = Vec::new();
    for _ in 0..topics {
        let len = usize::try_from(r.i16()?).ok()?;
        let topic = std::str::from_utf8(r.take(len)?).ok()?.to_owned();
        let partitions = r.count(4)?;
        for _ in 0..partitions {
            out.push((topic.clone(), r.i32()?));
        }
    }
    Some(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// An array count, refused when negative or when the remaining bytes cannot hold that many
    /// elements of at least `min_size` bytes.
    fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = usize::try_from(self.i32()?).ok()?;
        let remaining = self.bytes.len() - self.pos;
        (n <= remaining / min_size).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])], user_data: Option<&[u8]>) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for (t, ps) in topics {
            b.extend_from_slice(&(t.len() as i16).to_be_bytes());
            b.extend_from_slice(t.as_bytes());
            b.extend_from_slice(&(ps.len() as i32).to_be_bytes());
            for p in *ps {
                b.extend_from_slice(&p.to_be_bytes());
            }
        }
        match user_data {
            Some(d) => {
                b.extend_from_slice(&(d.len() as i32).to_be_bytes());
                b.extend_from_slice(d);
            }
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        b
    }

    #[test]
    fn parses_topics_and_partitions() {
        let b = assignment(&[("a", &[0, 2]), ("bb", &[1])], Some(b"user"));
        assert_eq!(
            parse(&b),
            Some(vec![("a".into(), 0), ("a".into(), 2), ("bb".into(), 1)])
        );
        let b = assignment(&[], None);
        assert_eq!(parse(&b), Some(vec![]));
        assert_eq!(parse(&[]), Some(vec![]));
    }

    #[test]
    fn tolerates_a_missing_user_data() {
        let mut b = assignment(&[("t", &[5])], None);
        b.truncate(b.len() - 4);
        assert_eq!(parse(&b), Some(vec![("t".into(), 5)]));
    }

    #[test]
    fn refuses_what_the_bytes_cannot_hold() {
        let good = assignment(&[("topic", &[0, 1, 2])], Some(b"x"));
        // Every truncation inside the partitions is refused (the user data is optional).
        for cut in 1..good.len() - 5 {
            assert_eq!(parse(&good[..cut]), None, "cut at {cut}");
        }
        // Huge and negative counts.
        let mut b = 0i16.to_be_bytes().to_vec();
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(parse(&b), None);
        let mut b = 0i16.to_be_bytes().to_vec();
        b.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(parse(&b), None);
        let mut b = assignment(&[("t", &[])], None);
        b[9..13].copy_from_slice(&0x4000_0000i32.to_be_bytes());
        assert_eq!(parse(&b), None);
        // A negative topic length, and a topic that is not UTF-8.
        let mut b = assignment(&[("t", &[1])], None);
        b[6..8].copy_from_slice(&(-1i16).to_be_bytes());
        assert_eq!(parse(&b), None);
        let mut b = assignment(&[("t", &[1])], None);
        b[8] = 0xff;
        assert_eq!(parse(&b), None);
    }
}
