//! Kubo-identical UnixFS file DAGs: fixed 262144-byte chunks, balanced
//! layout with at most 174 links per node, CIDv0 with dag-pb leaves or
//! CIDv1 with raw leaves. Streaming: memory is one chunk plus one partial
//! node per tree level, whatever the file size.

use std::io::{self, Read};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::block::Block;
use crate::cid::{Cid, CidVersion, Codec};
use crate::dag_pb::PbLink;
use crate::unixfs::{self, FileChild};

/// Chunk size of Kubo's default `size-262144` chunker.
pub const CHUNK_SIZE: usize = 262_144;

/// Most links per node in Kubo's balanced layout (`helpers.DefaultLinksPerBlock`).
pub const MAX_LINKS: usize = 174;

/// Which `ipfs add` flavour to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ImportFormat {
    /// `ipfs add` defaults: CIDv0, leaves are dag-pb UnixFS nodes.
    #[default]
    CidV0,
    /// `ipfs add --cid-version 1 --raw-leaves`: CIDv1 (base32), raw leaves.
    CidV1RawLeaves,
}

impl ImportFormat {
    fn version(self) -> CidVersion {
        match self {
            Self::CidV0 => CidVersion::V0,
            Self::CidV1RawLeaves => CidVersion::V1,
        }
    }
}

/// The outcome of [`DagBuilder::finish`].
#[derive(Debug)]
pub struct FinishedDag {
    /// CID of the root block: what `ipfs add` prints.
    pub root: Cid,
    /// File bytes consumed.
    pub file_size: u64,
    /// Blocks produced since the last [`DagBuilder::take_blocks`], root last
    /// (empty for a builder made with [`DagBuilder::cid_only`]).
    pub blocks: Vec<Block>,
}

/// Incremental UnixFS DAG builder, equivalent to go-unixfs' balanced
/// layout: the tree is as shallow as possible and filled left to right,
/// and a file of one chunk is just its leaf.
#[derive(Debug)]
pub struct DagBuilder {
    format: ImportFormat,
    /// Always [`CHUNK_SIZE`] outside unit tests, which shrink it to build
    /// deep trees cheaply.
    chunk_size: usize,
    keep_blocks: bool,
    /// Bytes of the chunk being filled.
    pending: Vec<u8>,
    /// `levels[0]` holds leaves of the open lowest node, `levels[i]` the
    /// children of the open node at height `i + 1`.
    levels: Vec<Vec<FileChild>>,
    blocks: Vec<Block>,
    leaves: u64,
    file_size: u64,
}

impl DagBuilder {
    /// A builder that also returns every block (for storing the DAG).
    pub fn new(format: ImportFormat) -> Self {
        Self::with_block_output(format, true)
    }

    /// A builder that only computes the root CID (no block copies kept).
    pub fn cid_only(format: ImportFormat) -> Self {
        Self::with_block_output(format, false)
    }

    fn with_block_output(format: ImportFormat, keep_blocks: bool) -> Self {
        Self {
            format,
            chunk_size: CHUNK_SIZE,
            keep_blocks,
            pending: Vec::with_capacity(CHUNK_SIZE),
            levels: Vec::new(),
            blocks: Vec::new(),
            leaves: 0,
            file_size: 0,
        }
    }

    /// Feeds file bytes. Completed blocks become available from
    /// [`DagBuilder::take_blocks`].
    pub fn write(&mut self, mut data: &[u8]) {
        self.file_size += data.len() as u64;
        while !data.is_empty() {
            if self.pending.is_empty() && data.len() >= self.chunk_size {
                // Whole chunk straight from the caller's buffer: no copy.
                let (chunk, rest) = data.split_at(self.chunk_size);
                self.add_leaf(chunk);
                data = rest;
                continue;
            }
            let take = (self.chunk_size - self.pending.len()).min(data.len());
            let (head, rest) = data.split_at(take);
            self.pending.extend_from_slice(head);
            data = rest;
            if self.pending.len() == self.chunk_size {
                let chunk = std::mem::take(&mut self.pending);
                self.add_leaf(&chunk);
                self.pending = chunk;
                self.pending.clear();
            }
        }
    }

    /// Blocks completed so far, in an order where children precede parents.
    pub fn take_blocks(&mut self) -> Vec<Block> {
        std::mem::take(&mut self.blocks)
    }

    /// Flushes the last chunk and closes all open nodes.
    pub fn finish(mut self) -> FinishedDag {
        if !self.pending.is_empty() || self.leaves == 0 {
            // The empty file is a single empty leaf, as in Kubo.
            let chunk = std::mem::take(&mut self.pending);
            self.add_leaf(&chunk);
        }
        let mut level = 0;
        let root = loop {
            let highest = self
                .levels
                .iter()
                .rposition(|children| !children.is_empty())
                .unwrap_or(0);
            let open = self
                .levels
                .get_mut(level)
                .map(std::mem::take)
                .unwrap_or_default();
            if level >= highest && open.len() <= 1 {
                // Always Some: at least one leaf was added above.
                break open.into_iter().next();
            }
            if !open.is_empty() {
                let node = self.close_node(&open);
                self.push_child(level + 1, node);
            }
            level += 1;
        };
        let root = match root {
            Some(child) => child.link.cid,
            // Unreachable; fall back to the empty file rather than panic.
            None => Cid::for_block(CidVersion::V0, Codec::DagPb, &unixfs::leaf_block(&[])),
        };
        FinishedDag {
            root,
            file_size: self.file_size,
            blocks: self.blocks,
        }
    }

    fn add_leaf(&mut self, chunk: &[u8]) {
        self.leaves += 1;
        let (cid, block_len) = match self.format {
            ImportFormat::CidV1RawLeaves => {
                let cid = Cid::v1(Codec::Raw, Sha256::digest(chunk).into());
                if self.keep_blocks {
                    self.blocks
                        .push(Block::computed(cid, Bytes::copy_from_slice(chunk)));
                }
                (cid, chunk.len())
            }
            ImportFormat::CidV0 => {
                let (before, after) = unixfs::leaf_block_frame(chunk.len());
                let mut hasher = Sha256::new();
                hasher.update(&before);
                hasher.update(chunk);
                hasher.update(&after);
                let cid = Cid::v0(hasher.finalize().into());
                if self.keep_blocks {
                    let mut block = Vec::with_capacity(before.len() + chunk.len() + after.len());
                    block.extend_from_slice(&before);
                    block.extend_from_slice(chunk);
                    block.extend_from_slice(&after);
                    self.blocks.push(Block::computed(cid, Bytes::from(block)));
                }
                (cid, before.len() + chunk.len() + after.len())
            }
        };
        let leaf = FileChild {
            link: PbLink {
                cid,
                tsize: block_len as u64,
            },
            file_size: chunk.len() as u64,
        };
        self.push_child(0, leaf);
    }

    /// Appends `child` to the open node at `level`, first closing that node
    /// if it is full: a full node is only closed once more data exists, which
    /// is what keeps the tree as shallow as Kubo's.
    fn push_child(&mut self, level: usize, child: FileChild) {
        if self.levels.len() <= level {
            self.levels.resize_with(level + 1, Vec::new);
        }
        let full = self
            .levels
            .get(level)
            .is_some_and(|children| children.len() >= MAX_LINKS);
        if full {
            let children = self
                .levels
                .get_mut(level)
                .map(std::mem::take)
                .unwrap_or_default();
            let node = self.close_node(&children);
            self.push_child(level + 1, node);
        }
        if let Some(children) = self.levels.get_mut(level) {
            children.push(child);
        }
    }

    fn close_node(&mut self, children: &[FileChild]) -> FileChild {
        let block = unixfs::internal_block(children);
        let cid = Cid::for_block(self.format.version(), Codec::DagPb, &block);
        let tsize = block.len() as u64 + children.iter().map(|c| c.link.tsize).sum::<u64>();
        let file_size = children.iter().map(|c| c.file_size).sum();
        if self.keep_blocks {
            self.blocks.push(Block::computed(cid, Bytes::from(block)));
        }
        FileChild {
            link: PbLink { cid, tsize },
            file_size,
        }
    }
}

/// The CID `ipfs add` would print for `data`.
pub fn cid_of_bytes(data: &[u8], format: ImportFormat) -> Cid {
    let mut builder = DagBuilder::cid_only(format);
    builder.write(data);
    builder.finish().root
}

/// The CID `ipfs add` would print for everything `reader` yields, read in
/// chunk-sized pieces (memory stays O(chunk) for any input size).
pub fn cid_of_reader<R: Read>(mut reader: R, format: ImportFormat) -> io::Result<Cid> {
    let mut builder = DagBuilder::cid_only(format);
    let mut buffer = vec![0u8; CHUNK_SIZE];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        builder.write(buffer.get(..read).unwrap_or_default());
    }
    Ok(builder.finish().root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag_pb::decode_node;
    use crate::unixfs::decode_data;
    use std::collections::HashMap;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
            .collect()
    }

    fn build(data: &[u8], format: ImportFormat, piece: usize) -> FinishedDag {
        let mut builder = DagBuilder::new(format);
        let mut blocks = Vec::new();
        for part in data.chunks(piece.max(1)) {
            builder.write(part);
            blocks.extend(builder.take_blocks());
        }
        let mut done = builder.finish();
        blocks.append(&mut done.blocks);
        done.blocks = blocks;
        done
    }

    /// Height of the tree below `cid` and the file bytes it yields.
    fn walk(blocks: &HashMap<Cid, Bytes>, cid: &Cid, out: &mut Vec<u8>) -> usize {
        let block = &blocks[cid];
        assert!(cid.verifies(block));
        if cid.codec() == Codec::Raw {
            out.extend_from_slice(block);
            return 0;
        }
        let node = decode_node(block).unwrap();
        let data = decode_data(node.data.unwrap()).unwrap();
        out.extend_from_slice(data.data);
        assert!(node.links.len() <= MAX_LINKS);
        assert_eq!(data.blocksizes.len(), node.links.len());
        let mut height = 0;
        for link in &node.links {
            let start = out.len();
            height = height.max(1 + walk(blocks, &link.cid, out));
            assert!(out.len() > start);
        }
        height
    }

    #[test]
    fn streaming_piece_size_does_not_change_the_dag() {
        let data = pattern(3 * CHUNK_SIZE + 17);
        for format in [ImportFormat::CidV0, ImportFormat::CidV1RawLeaves] {
            let whole = build(&data, format, data.len());
            for piece in [1000, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 5] {
                let streamed = build(&data, format, piece);
                assert_eq!(streamed.root, whole.root);
                assert_eq!(streamed.blocks, whole.blocks);
            }
            assert_eq!(cid_of_bytes(&data, format), whole.root);
            assert_eq!(cid_of_reader(&data[..], format).unwrap(), whole.root);
            assert_eq!(whole.file_size, data.len() as u64);
        }
    }

    #[test]
    fn blocks_reassemble_the_file_and_root_is_last() {
        let data = pattern(5 * CHUNK_SIZE + 3);
        for format in [ImportFormat::CidV0, ImportFormat::CidV1RawLeaves] {
            let dag = build(&data, format, 70_000);
            assert_eq!(dag.blocks.last().map(|b| *b.cid()), Some(dag.root));
            let blocks: HashMap<Cid, Bytes> = dag
                .blocks
                .iter()
                .map(|b| (*b.cid(), b.data().clone()))
                .collect();
            let mut out = Vec::new();
            assert_eq!(walk(&blocks, &dag.root, &mut out), 1);
            assert_eq!(out, data);
        }
    }

    #[test]
    fn single_chunk_raw_leaf_is_the_raw_sha256() {
        let data = pattern(CHUNK_SIZE);
        let cid = cid_of_bytes(&data, ImportFormat::CidV1RawLeaves);
        assert_eq!(cid, Cid::for_block(CidVersion::V1, Codec::Raw, &data));
        let empty = cid_of_bytes(&[], ImportFormat::CidV1RawLeaves);
        assert_eq!(
            empty.to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }

    /// Depth and fan-out rules of the balanced layout, with 1-byte chunks so
    /// three-level trees stay small: 174 leaves fit under one node, 175 need
    /// a second level whose last child holds a single leaf, and 174² + 1 a
    /// third level.
    #[test]
    fn tree_shape_follows_the_balanced_layout() {
        let cases = [
            (1usize, 0usize, 0usize),
            (2, 1, 2),
            (174, 1, 174),
            (175, 2, 2),
            (174 * 2 + 1, 2, 3),
            (174 * 174, 2, 174),
            (174 * 174 + 1, 3, 2),
        ];
        for (chunks, expected_height, expected_root_links) in cases {
            let data = pattern(chunks);
            for format in [ImportFormat::CidV0, ImportFormat::CidV1RawLeaves] {
                let mut builder = DagBuilder::new(format);
                builder.chunk_size = 1;
                builder.write(&data);
                let dag = builder.finish();
                let blocks: HashMap<Cid, Bytes> = dag
                    .blocks
                    .iter()
                    .map(|b| (*b.cid(), b.data().clone()))
                    .collect();
                let mut out = Vec::new();
                let height = walk(&blocks, &dag.root, &mut out);
                assert_eq!(height, expected_height, "{chunks} chunks");
                assert_eq!(out, data);
                let root_links = if expected_height == 0 {
                    0
                } else {
                    decode_node(&blocks[&dag.root]).unwrap().links.len()
                };
                assert_eq!(root_links, expected_root_links, "{chunks} chunks");
            }
        }
    }

    /// The last leaf of a 175-chunk file sits alone under its own node,
    /// which Kubo keeps rather than linking the leaf from the root.
    #[test]
    fn partial_subtree_keeps_its_node() {
        let data = pattern(175);
        let mut builder = DagBuilder::new(ImportFormat::CidV1RawLeaves);
        builder.chunk_size = 1;
        builder.write(&data);
        let dag = builder.finish();
        let root = dag.blocks.last().unwrap();
        let node = decode_node(root.data()).unwrap();
        assert_eq!(node.links.len(), 2);
        let second = dag
            .blocks
            .iter()
            .find(|b| *b.cid() == node.links[1].cid)
            .unwrap();
        assert_eq!(second.cid().codec(), Codec::DagPb);
        assert_eq!(decode_node(second.data()).unwrap().links.len(), 1);
    }
}
