//! The small part of the protobuf wire format dag-pb and UnixFS need:
//! varint (type 0) and length-delimited (type 2) fields.

use crate::varint::{read_uvarint, uvarint_len, write_uvarint};

/// Wire type of varint fields.
const WIRE_VARINT: u64 = 0;
/// Wire type of 64-bit fields (only skipped).
const WIRE_FIXED64: u64 = 1;
/// Wire type of length-delimited fields.
const WIRE_LEN: u64 = 2;
/// Wire type of 32-bit fields (only skipped).
const WIRE_FIXED32: u64 = 5;

/// Appends a varint field.
pub(crate) fn put_varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    write_uvarint(out, field << 3 | WIRE_VARINT);
    write_uvarint(out, value);
}

/// Appends a length-delimited field.
pub(crate) fn put_bytes_field(out: &mut Vec<u8>, field: u64, value: &[u8]) {
    put_len_prefix(out, field, value.len());
    out.extend_from_slice(value);
}

/// Appends the tag and length of a length-delimited field whose body the
/// caller writes next.
pub(crate) fn put_len_prefix(out: &mut Vec<u8>, field: u64, len: usize) {
    write_uvarint(out, field << 3 | WIRE_LEN);
    write_uvarint(out, len as u64);
}

/// Encoded size of a length-delimited field with a body of `len` bytes.
pub(crate) fn len_field_size(field: u64, len: usize) -> usize {
    uvarint_len(field << 3 | WIRE_LEN) + uvarint_len(len as u64) + len
}

/// Encoded size of a varint field.
pub(crate) fn varint_field_size(field: u64, value: u64) -> usize {
    uvarint_len(field << 3 | WIRE_VARINT) + uvarint_len(value)
}

/// One decoded field value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldValue<'a> {
    /// A varint.
    Varint(u64),
    /// A length-delimited body.
    Bytes(&'a [u8]),
    /// A fixed-width value this crate never interprets.
    Fixed,
}

/// Iterates over the fields of one message, failing on malformed input.
pub(crate) struct FieldReader<'a> {
    rest: &'a [u8],
}

impl<'a> FieldReader<'a> {
    /// Reads the fields of `message`.
    pub(crate) fn new(message: &'a [u8]) -> Self {
        Self { rest: message }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], &'static str> {
        if len > self.rest.len() {
            return Err("field runs past the end of the message");
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn varint(&mut self) -> Result<u64, &'static str> {
        let (value, used) = read_uvarint(self.rest).ok_or("malformed varint")?;
        self.take(used)?;
        Ok(value)
    }

    /// The next `(field number, value)`, `Ok(None)` at the end.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u64, FieldValue<'a>)>, &'static str> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = tag >> 3;
        if field == 0 {
            return Err("field number 0");
        }
        let value = match tag & 7 {
            WIRE_VARINT => FieldValue::Varint(self.varint()?),
            WIRE_LEN => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length overflow")?;
                FieldValue::Bytes(self.take(len)?)
            }
            WIRE_FIXED64 => {
                self.take(8)?;
                FieldValue::Fixed
            }
            WIRE_FIXED32 => {
                self.take(4)?;
                FieldValue::Fixed
            }
            _ => return Err("unsupported wire type"),
        };
        Ok(Some((field, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_fields() {
        let mut msg = Vec::new();
        put_varint_field(&mut msg, 1, 2);
        put_bytes_field(&mut msg, 2, b"abc");
        put_varint_field(&mut msg, 3, 300);
        assert_eq!(
            msg,
            [0x08, 0x02, 0x12, 0x03, b'a', b'b', b'c', 0x18, 0xac, 0x02]
        );
        assert_eq!(
            msg.len(),
            varint_field_size(1, 2) + len_field_size(2, 3) + varint_field_size(3, 300)
        );
        let mut reader = FieldReader::new(&msg);
        assert_eq!(reader.next_field(), Ok(Some((1, FieldValue::Varint(2)))));
        assert_eq!(
            reader.next_field(),
            Ok(Some((2, FieldValue::Bytes(b"abc"))))
        );
        assert_eq!(reader.next_field(), Ok(Some((3, FieldValue::Varint(300)))));
        assert_eq!(reader.next_field(), Ok(None));
    }

    #[test]
    fn rejects_truncation_and_bad_tags() {
        assert!(FieldReader::new(&[0x12, 0x05, 1]).next_field().is_err());
        assert!(FieldReader::new(&[0x08]).next_field().is_err());
        assert!(FieldReader::new(&[0x00, 0x01]).next_field().is_err());
        assert!(
            FieldReader::new(&[0x0b]).next_field().is_err(),
            "group start"
        );
    }
}
