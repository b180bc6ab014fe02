//! dag-pb node encoding (`PBNode { Links, Data }`) as go-merkledag writes it:
//! links first, every link with `Hash`, `Name` (empty) and `Tsize`.

use crate::cid::Cid;
use crate::protobuf::{FieldReader, FieldValue, len_field_size, put_len_prefix, varint_field_size};

const NODE_DATA: u64 = 1;
const NODE_LINKS: u64 = 2;
const LINK_HASH: u64 = 1;
const LINK_NAME: u64 = 2;
const LINK_TSIZE: u64 = 3;

/// A link from a dag-pb node to a child block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PbLink {
    /// The child.
    pub(crate) cid: Cid,
    /// Cumulative size of the child's DAG (its block plus all descendants).
    pub(crate) tsize: u64,
}

/// A decoded dag-pb node borrowing its data from the block.
#[derive(Debug)]
pub(crate) struct PbNode<'a> {
    /// Links in order.
    pub(crate) links: Vec<PbLink>,
    /// The `Data` field, if present (UnixFS metadata for files).
    pub(crate) data: Option<&'a [u8]>,
}

fn link_body_len(link: &PbLink) -> usize {
    len_field_size(LINK_HASH, link.cid.encoded_len())
        + len_field_size(LINK_NAME, 0)
        + varint_field_size(LINK_TSIZE, link.tsize)
}

/// Encodes a node with `links` and `data`, byte-identical to Kubo.
pub(crate) fn encode_node(links: &[PbLink], data: &[u8]) -> Vec<u8> {
    let capacity = links
        .iter()
        .map(|l| len_field_size(NODE_LINKS, link_body_len(l)))
        .sum::<usize>()
        + len_field_size(NODE_DATA, data.len());
    let mut out = Vec::with_capacity(capacity);
    for link in links {
        put_len_prefix(&mut out, NODE_LINKS, link_body_len(link));
        put_len_prefix(&mut out, LINK_HASH, link.cid.encoded_len());
        link.cid.write_bytes(&mut out);
        put_len_prefix(&mut out, LINK_NAME, 0);
        crate::protobuf::put_varint_field(&mut out, LINK_TSIZE, link.tsize);
    }
    crate::protobuf::put_bytes_field(&mut out, NODE_DATA, data);
    out
}

/// Decodes a dag-pb block. Unknown fields are rejected, as the dag-pb spec
/// requires; a link without a hash is invalid.
pub(crate) fn decode_node(block: &[u8]) -> Result<PbNode<'_>, String> {
    let mut node = PbNode {
        links: Vec::new(),
        data: None,
    };
    let mut fields = FieldReader::new(block);
    while let Some((field, value)) = fields.next_field()? {
        match (field, value) {
            (NODE_DATA, FieldValue::Bytes(bytes)) => node.data = Some(bytes),
            (NODE_LINKS, FieldValue::Bytes(bytes)) => node.links.push(decode_link(bytes)?),
            (field, _) => return Err(format!("unexpected PBNode field {field}")),
        }
    }
    Ok(node)
}

fn decode_link(bytes: &[u8]) -> Result<PbLink, String> {
    let mut cid = None;
    let mut tsize = 0;
    let mut fields = FieldReader::new(bytes);
    while let Some((field, value)) = fields.next_field()? {
        match (field, value) {
            (LINK_HASH, FieldValue::Bytes(hash)) => {
                cid = Some(Cid::from_bytes(hash).map_err(|e| format!("link hash: {e}"))?);
            }
            (LINK_NAME, FieldValue::Bytes(_)) => {}
            (LINK_TSIZE, FieldValue::Varint(size)) => tsize = size,
            (field, _) => return Err(format!("unexpected PBLink field {field}")),
        }
    }
    let cid = cid.ok_or("link without a hash")?;
    Ok(PbLink { cid, tsize })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cid::{CidVersion, Codec};

    #[test]
    fn link_layout_matches_go_merkledag() {
        let child = Cid::for_block(CidVersion::V0, Codec::DagPb, b"child");
        let links = [PbLink {
            cid: child,
            tsize: 300,
        }];
        let block = encode_node(&links, &[8, 2]);
        let mut expected = vec![0x12, 0x29, 0x0a, 0x22];
        expected.extend_from_slice(&child.to_bytes());
        expected.extend_from_slice(&[0x12, 0x00, 0x18, 0xac, 0x02, 0x0a, 0x02, 8, 2]);
        assert_eq!(block, expected);
        let decoded = decode_node(&block).unwrap();
        assert_eq!(decoded.links, links);
        assert_eq!(decoded.data, Some(&[8u8, 2][..]));
    }

    #[test]
    fn rejects_malformed_nodes() {
        assert!(
            decode_node(&[0x12, 0x02, 0x12, 0x00]).is_err(),
            "link without hash"
        );
        assert!(decode_node(&[0x18, 0x01]).is_err(), "unknown node field");
        assert!(decode_node(&[0x0a, 0x09, 0x01]).is_err(), "truncated data");
    }
}
