//! Unsigned LEB128 varints as used by protobuf, multiformats and CAR.

/// Appends `value` as an unsigned varint.
pub(crate) fn write_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Number of bytes `value` takes as a varint.
pub(crate) fn uvarint_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Reads a varint from the front of `input`, returning it and the bytes used.
/// `None` if truncated, longer than 10 bytes, overflowing, or not minimal
/// (a trailing zero byte), which multiformats forbids.
pub(crate) fn read_uvarint(input: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (index, &byte) in input.iter().enumerate().take(10) {
        let low = u64::from(byte & 0x7f);
        let shift = 7 * index as u32;
        if index == 9 && byte > 1 {
            return None;
        }
        value |= low << shift;
        if byte & 0x80 == 0 {
            if index > 0 && byte == 0 {
                return None;
            }
            return Some((value, index + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lengths() {
        for value in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            write_uvarint(&mut buf, value);
            assert_eq!(buf.len(), uvarint_len(value), "length of {value}");
            assert_eq!(read_uvarint(&buf), Some((value, buf.len())));
        }
        let mut buf = Vec::new();
        write_uvarint(&mut buf, 300);
        assert_eq!(buf, [0xac, 0x02]);
    }

    #[test]
    fn rejects_bad_encodings() {
        assert_eq!(read_uvarint(&[]), None);
        assert_eq!(read_uvarint(&[0x80]), None, "truncated");
        assert_eq!(read_uvarint(&[0x80, 0x00]), None, "not minimal");
        assert_eq!(read_uvarint(&[0xff; 11]), None, "too long");
        assert_eq!(
            read_uvarint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None,
            "overflow"
        );
    }
}
