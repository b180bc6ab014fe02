//! UnixFS `Data` messages for files, and the exact leaf and internal-node
//! blocks `ipfs add` produces.

use crate::dag_pb::{self, PbLink};
use crate::protobuf::{
    FieldReader, FieldValue, len_field_size, put_len_prefix, put_varint_field, varint_field_size,
};

/// Field number of `PBNode.Data`, which wraps the UnixFS message.
const PB_NODE_DATA: u64 = 1;
const DATA_TYPE: u64 = 1;
const DATA_DATA: u64 = 2;
const DATA_FILESIZE: u64 = 3;
const DATA_BLOCKSIZES: u64 = 4;

/// UnixFS `Data.Type` of a raw-data node (old go-ipfs leaves).
pub(crate) const TYPE_RAW: u64 = 0;
/// UnixFS `Data.Type` of a file node.
pub(crate) const TYPE_FILE: u64 = 2;

/// A decoded UnixFS `Data` message (the fields files use).
#[derive(Debug)]
pub(crate) struct UnixfsData<'a> {
    /// `Type`.
    pub(crate) kind: u64,
    /// `Data`: file bytes stored in this node.
    pub(crate) data: &'a [u8],
    /// `filesize`: bytes in this node's whole subtree.
    pub(crate) filesize: Option<u64>,
    /// `blocksizes`: file bytes under each link, in link order.
    pub(crate) blocksizes: Vec<u64>,
}

/// Decodes a UnixFS `Data` message. `blocksizes` is accepted packed or not.
pub(crate) fn decode_data(bytes: &[u8]) -> Result<UnixfsData<'_>, String> {
    let mut kind = None;
    let mut out = UnixfsData {
        kind: 0,
        data: &[],
        filesize: None,
        blocksizes: Vec::new(),
    };
    let mut fields = FieldReader::new(bytes);
    while let Some((field, value)) = fields.next_field()? {
        match (field, value) {
            (DATA_TYPE, FieldValue::Varint(v)) => kind = Some(v),
            (DATA_DATA, FieldValue::Bytes(b)) => out.data = b,
            (DATA_FILESIZE, FieldValue::Varint(v)) => out.filesize = Some(v),
            (DATA_BLOCKSIZES, FieldValue::Varint(v)) => out.blocksizes.push(v),
            (DATA_BLOCKSIZES, FieldValue::Bytes(packed)) => {
                let mut rest = packed;
                while !rest.is_empty() {
                    let (v, used) =
                        crate::varint::read_uvarint(rest).ok_or("malformed packed blocksizes")?;
                    out.blocksizes.push(v);
                    rest = rest.get(used..).unwrap_or_default();
                }
            }
            // hashType, fanout, mode, mtime and future fields do not
            // affect file content.
            _ => {}
        }
    }
    out.kind = kind.ok_or("UnixFS Data without Type")?;
    Ok(out)
}

/// The UnixFS message of a file leaf holding `len` bytes, minus the bytes
/// themselves: `(before, after)` such that `before ++ chunk ++ after` is the
/// whole dag-pb leaf block. Lets the CID be hashed without copying the chunk.
pub(crate) fn leaf_block_frame(len: usize) -> (Vec<u8>, Vec<u8>) {
    let mut after = Vec::with_capacity(11);
    if len == 0 {
        // An empty file: `Data` is absent (nil in Go), only the size remains.
        let mut before = Vec::with_capacity(6);
        let message_len =
            varint_field_size(DATA_TYPE, TYPE_FILE) + varint_field_size(DATA_FILESIZE, 0);
        put_len_prefix(&mut before, PB_NODE_DATA, message_len);
        put_varint_field(&mut before, DATA_TYPE, TYPE_FILE);
        put_varint_field(&mut before, DATA_FILESIZE, 0);
        return (before, after);
    }
    let message_len = varint_field_size(DATA_TYPE, TYPE_FILE)
        + len_field_size(DATA_DATA, len)
        + varint_field_size(DATA_FILESIZE, len as u64);
    let mut before = Vec::with_capacity(16);
    put_len_prefix(&mut before, PB_NODE_DATA, message_len);
    put_varint_field(&mut before, DATA_TYPE, TYPE_FILE);
    put_len_prefix(&mut before, DATA_DATA, len);
    put_varint_field(&mut after, DATA_FILESIZE, len as u64);
    (before, after)
}

/// The whole dag-pb leaf block of `chunk` (Kubo without `--raw-leaves`).
pub(crate) fn leaf_block(chunk: &[u8]) -> Vec<u8> {
    let (before, after) = leaf_block_frame(chunk.len());
    let mut block = Vec::with_capacity(before.len() + chunk.len() + after.len());
    block.extend_from_slice(&before);
    block.extend_from_slice(chunk);
    block.extend_from_slice(&after);
    block
}

/// A child of an internal node with the file bytes beneath it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileChild {
    /// The link (CID and cumulative DAG size).
    pub(crate) link: PbLink,
    /// File bytes under the link (`blocksizes` entry).
    pub(crate) file_size: u64,
}

/// The dag-pb block of an internal file node over `children`.
pub(crate) fn internal_block(children: &[FileChild]) -> Vec<u8> {
    let total: u64 = children.iter().map(|c| c.file_size).sum();
    let mut data = Vec::with_capacity(16 + children.len() * 4);
    put_varint_field(&mut data, DATA_TYPE, TYPE_FILE);
    put_varint_field(&mut data, DATA_FILESIZE, total);
    for child in children {
        put_varint_field(&mut data, DATA_BLOCKSIZES, child.file_size);
    }
    let links: Vec<PbLink> = children.iter().map(|c| c.link.clone()).collect();
    dag_pb::encode_node(&links, &data)
}

/// Encodes a UnixFS file message with inline data (used by tests to build
/// unusual but valid DAGs).
#[cfg(test)]
pub(crate) fn file_data_message(data: &[u8], blocksizes: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint_field(&mut out, DATA_TYPE, TYPE_FILE);
    if !data.is_empty() {
        crate::protobuf::put_bytes_field(&mut out, DATA_DATA, data);
    }
    put_varint_field(
        &mut out,
        DATA_FILESIZE,
        data.len() as u64 + blocksizes.iter().sum::<u64>(),
    );
    for size in blocksizes {
        put_varint_field(&mut out, DATA_BLOCKSIZES, *size);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_block_is_kubos() {
        // `ipfs add` of an empty file stores exactly these six bytes.
        assert_eq!(leaf_block(&[]), [0x0a, 0x04, 0x08, 0x02, 0x18, 0x00]);
    }

    #[test]
    fn leaf_block_decodes_back() {
        let block = leaf_block(b"hello");
        let node = dag_pb::decode_node(&block).unwrap();
        assert!(node.links.is_empty());
        let data = decode_data(node.data.unwrap()).unwrap();
        assert_eq!(data.kind, TYPE_FILE);
        assert_eq!(data.data, b"hello");
        assert_eq!(data.filesize, Some(5));
        assert_eq!(block.len(), 2 + 2 + 7 + 2);
    }

    #[test]
    fn packed_blocksizes_are_accepted() {
        // Type=File, blocksizes packed [3, 300].
        let message = [0x08, 0x02, 0x22, 0x03, 0x03, 0xac, 0x02];
        let data = decode_data(&message).unwrap();
        assert_eq!(data.blocksizes, [3, 300]);
        assert!(decode_data(&[0x18, 0x01]).is_err(), "missing Type");
    }
}
