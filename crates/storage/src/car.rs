//! CAR v1 (content-addressed archive) export and import of DAGs, the
//! format `ipfs dag export` writes and `ipfs dag import` reads.
//!
//! Layout: `varint(len) dag-cbor{"roots": [CID, ...], "version": 1}`
//! followed by sections `varint(len) CID block-bytes`.

use std::collections::{HashSet, VecDeque};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;

use crate::block::Block;
use crate::cid::Cid;
use crate::dag_reader::child_links;
use crate::error::{Result, StorageError};
use crate::store::{BlockSink, ByteStream, ContentStore};
use crate::varint::{read_uvarint, write_uvarint};

/// Largest section accepted on import (Kubo's block limit is 2 MiB).
const MAX_SECTION: u64 = 8 << 20;
/// Largest header accepted on import.
const MAX_HEADER: u64 = 1 << 20;
/// CBOR tag for CIDs in dag-cbor.
const CID_TAG: u64 = 42;
/// Imported blocks are handed to the sink in groups of about this many
/// bytes ([`BlockSink::put_blocks`]), so a store can make each group
/// durable at once; it bounds the import's memory.
const IMPORT_BATCH_BYTES: usize = 16 << 20;

/// The dag-cbor CAR v1 header for `roots`, byte-identical to go-car's.
fn encode_header(roots: &[Cid]) -> Vec<u8> {
    let mut cbor = Vec::new();
    cbor_head(&mut cbor, 5, 2);
    cbor_head(&mut cbor, 3, 5);
    cbor.extend_from_slice(b"roots");
    cbor_head(&mut cbor, 4, roots.len() as u64);
    for root in roots {
        let bytes = root.to_bytes();
        cbor_head(&mut cbor, 6, CID_TAG);
        // dag-cbor prefixes binary CIDs with the identity multibase 0x00.
        cbor_head(&mut cbor, 2, bytes.len() as u64 + 1);
        cbor.push(0);
        cbor.extend_from_slice(&bytes);
    }
    cbor_head(&mut cbor, 3, 7);
    cbor.extend_from_slice(b"version");
    cbor_head(&mut cbor, 0, 1);
    let mut out = Vec::with_capacity(cbor.len() + 2);
    write_uvarint(&mut out, cbor.len() as u64);
    out.extend_from_slice(&cbor);
    out
}

/// Writes a CBOR major type and argument in the shortest form.
fn cbor_head(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    if value < 24 {
        out.push(major | value as u8);
    } else if let Ok(v) = u8::try_from(value) {
        out.extend_from_slice(&[major | 24, v]);
    } else if let Ok(v) = u16::try_from(value) {
        out.push(major | 25);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(value) {
        out.push(major | 26);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// The length prefix and CID of a section holding `block_len` bytes of
/// `cid`'s block (the block's bytes follow it).
fn section_prefix(cid: &Cid, block_len: usize) -> Bytes {
    let cid_bytes = cid.to_bytes();
    let mut prefix = Vec::with_capacity(cid_bytes.len() + 10);
    write_uvarint(&mut prefix, (cid_bytes.len() + block_len) as u64);
    prefix.extend_from_slice(&cid_bytes);
    Bytes::from(prefix)
}

/// A whole CAR v1 of `blocks` in order, naming `roots`, as pieces (the
/// blocks' bytes are not copied).
pub(crate) fn car_pieces(roots: &[Cid], blocks: &[Block]) -> Vec<Bytes> {
    let mut pieces = Vec::with_capacity(1 + 2 * blocks.len());
    pieces.push(Bytes::from(encode_header(roots)));
    for block in blocks {
        pieces.push(section_prefix(block.cid(), block.data().len()));
        pieces.push(block.data().clone());
    }
    pieces
}

/// A cursor over header bytes with just enough CBOR to read a CAR header.
struct CborCursor<'a> {
    rest: &'a [u8],
}

impl<'a> CborCursor<'a> {
    fn head(&mut self) -> Result<(u8, u64)> {
        let bad = || StorageError::InvalidCar("truncated CBOR in header".into());
        let (&first, rest) = self.rest.split_first().ok_or_else(bad)?;
        let major = first >> 5;
        let info = first & 31;
        let width = match info {
            0..=23 => 0,
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => return Err(StorageError::InvalidCar("indefinite CBOR in header".into())),
        };
        let arg_bytes = rest.get(..width).ok_or_else(bad)?;
        let value = if width == 0 {
            u64::from(info)
        } else {
            arg_bytes.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b))
        };
        self.rest = rest.get(width..).ok_or_else(bad)?;
        Ok((major, value))
    }

    fn bytes(&mut self, len: u64) -> Result<&'a [u8]> {
        let len =
            usize::try_from(len).map_err(|_| StorageError::InvalidCar("huge CBOR item".into()))?;
        if len > self.rest.len() {
            return Err(StorageError::InvalidCar("truncated CBOR in header".into()));
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }
}

/// Parses the dag-cbor header, returning the roots. Only CAR version 1.
fn decode_header(cbor: &[u8]) -> Result<Vec<Cid>> {
    let invalid = |m: &str| StorageError::InvalidCar(m.to_owned());
    let mut cursor = CborCursor { rest: cbor };
    let (major, entries) = cursor.head()?;
    if major != 5 {
        return Err(invalid("header is not a CBOR map"));
    }
    let mut roots = None;
    let mut version = None;
    for _ in 0..entries {
        let (major, len) = cursor.head()?;
        if major != 3 {
            return Err(invalid("header key is not a string"));
        }
        match cursor.bytes(len)? {
            b"version" => {
                let (major, value) = cursor.head()?;
                if major != 0 {
                    return Err(invalid("version is not an integer"));
                }
                version = Some(value);
            }
            b"roots" => {
                let (major, count) = cursor.head()?;
                if major != 4 {
                    return Err(invalid("roots is not an array"));
                }
                let mut list = Vec::new();
                for _ in 0..count.min(1024) {
                    let (major, tag) = cursor.head()?;
                    if major != 6 || tag != CID_TAG {
                        return Err(invalid("root is not a tagged CID"));
                    }
                    let (major, len) = cursor.head()?;
                    if major != 2 {
                        return Err(invalid("root CID is not a byte string"));
                    }
                    match cursor.bytes(len)? {
                        [0, cid @ ..] => list.push(Cid::from_bytes(cid)?),
                        _ => return Err(invalid("root CID lacks the 0x00 prefix")),
                    }
                }
                if count > 1024 {
                    return Err(invalid("more than 1024 roots"));
                }
                roots = Some(list);
            }
            _ => return Err(invalid("unexpected key in header")),
        }
    }
    match version {
        Some(1) => {}
        Some(2) => return Err(invalid("CAR v2 is not supported, only v1")),
        Some(_) => return Err(invalid("unknown CAR version")),
        None => return Err(invalid("header has no version")),
    }
    roots.ok_or_else(|| invalid("header has no roots"))
}

/// Export state: header pending, then a depth-first walk of the DAG.
struct Exporter<S> {
    store: S,
    header: Option<Bytes>,
    stack: Vec<std::vec::IntoIter<Cid>>,
    seen: HashSet<Cid>,
    output: VecDeque<Bytes>,
}

impl<S: ContentStore> Exporter<S> {
    async fn next_piece(&mut self) -> Result<Option<Bytes>> {
        if let Some(header) = self.header.take() {
            return Ok(Some(header));
        }
        if let Some(piece) = self.output.pop_front() {
            return Ok(Some(piece));
        }
        while let Some(top) = self.stack.last_mut() {
            let Some(cid) = top.next() else {
                self.stack.pop();
                continue;
            };
            if !self.seen.insert(cid) {
                continue;
            }
            // get_block verifies: a CAR never carries unverified bytes.
            let block = self.store.get_block(&cid).await?;
            let links = child_links(&cid, &block)?;
            self.stack.push(links.into_iter());
            let prefix = section_prefix(&cid, block.len());
            self.output.push_back(block);
            return Ok(Some(prefix));
        }
        Ok(None)
    }
}

/// Streams the DAG under `root` from `store` as a CAR v1 file (blocks in
/// depth-first order, root first, duplicates once), the way
/// `ipfs dag export` does. Every block is verified as it is read.
pub fn export_car<S: ContentStore + 'static>(store: S, root: Cid) -> ByteStream {
    export_car_roots(store, vec![root])
}

/// Streams the DAGs under `roots` from `store` as one CAR v1 file whose
/// header names them all (in the order given, repeats once): each DAG
/// depth first, root first, and a block shared by several DAGs only where
/// it first occurs. Every block is verified as it is read; memory stays
/// O(one block + the CIDs written), whatever the DAGs' sizes.
///
/// `ipfs dag import` pins every root of such a file. An empty `roots`
/// gives a header without roots, which Kubo refuses to import.
pub fn export_car_roots<S: ContentStore + 'static>(store: S, roots: Vec<Cid>) -> ByteStream {
    let mut unique = roots;
    crate::store::dedup_in_order(&mut unique);
    let exporter = Exporter {
        store,
        header: Some(Bytes::from(encode_header(&unique))),
        stack: vec![unique.into_iter()],
        seen: HashSet::new(),
        output: VecDeque::new(),
    };
    Box::pin(futures_util::stream::try_unfold(
        exporter,
        |mut e| async move { Ok(e.next_piece().await?.map(|piece| (piece, e))) },
    ))
}

/// What [`import_car`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CarImport {
    /// Roots named by the header.
    pub roots: Vec<Cid>,
    /// Blocks stored (each verified against its CID).
    pub blocks: u64,
    /// Bytes of those blocks.
    pub bytes: u64,
    /// CIDs that blocks of the archive link to (dag-pb links) or that its
    /// header names as roots, but that the archive does not carry, in the
    /// order first met: the archive holds partial DAGs, or it was cut short
    /// at a section boundary. Empty for a complete archive such as
    /// [`export_car_roots`] writes.
    pub missing: Vec<Cid>,
}

/// The blocks an archive carries and the CIDs its blocks and header name.
/// Blocks count by multihash, as blockstores key them: a block carried
/// under a CIDv0 also serves its CIDv1 (and the other codec's).
#[derive(Default)]
struct Completeness {
    carried: HashSet<[u8; 32]>,
    /// Named but not (yet) carried, in the order first met.
    wanted: Vec<Cid>,
    wanted_set: HashSet<Cid>,
}

impl Completeness {
    fn want(&mut self, cid: Cid) {
        if !self.carried.contains(cid.digest()) && self.wanted_set.insert(cid) {
            self.wanted.push(cid);
        }
    }

    /// Records `block`; its links are wanted. A dag-pb block that does not
    /// decode links to nothing this can tell (it is stored all the same:
    /// the archive's blocks need not be UnixFS).
    fn carry(&mut self, block: &Block) {
        self.carried.insert(*block.cid().digest());
        if let Ok(links) = child_links(block.cid(), block.data()) {
            for link in links {
                self.want(link);
            }
        }
    }

    fn missing(self) -> Vec<Cid> {
        let carried = self.carried;
        self.wanted
            .into_iter()
            .filter(|cid| !carried.contains(cid.digest()))
            .collect()
    }
}

/// Buffered reading of a [`ByteStream`].
struct StreamReader {
    stream: ByteStream,
    buffer: BytesMut,
    done: bool,
}

impl StreamReader {
    /// Buffers at least `n` bytes unless the stream ends first.
    async fn fill(&mut self, n: usize) -> Result<()> {
        while self.buffer.len() < n && !self.done {
            match self.stream.next().await {
                Some(piece) => self.buffer.extend_from_slice(&piece?),
                None => self.done = true,
            }
        }
        Ok(())
    }

    /// The next varint, `None` at a clean end of input.
    async fn varint(&mut self) -> Result<Option<u64>> {
        self.fill(10).await?;
        if self.buffer.is_empty() {
            return Ok(None);
        }
        let (value, used) = read_uvarint(&self.buffer)
            .ok_or_else(|| StorageError::InvalidCar("malformed length varint".into()))?;
        self.buffer.advance(used);
        Ok(Some(value))
    }

    /// The next `len` bytes of `what` (named in the error if the input ends first).
    async fn exact(&mut self, len: usize, what: &str) -> Result<Bytes> {
        self.fill(len).await?;
        if self.buffer.len() < len {
            return Err(StorageError::InvalidCar(format!(
                "the input ends inside the {what} ({} of its {len} bytes present)",
                self.buffer.len()
            )));
        }
        Ok(self.buffer.split_to(len).freeze())
    }
}

/// Reads a CAR v1 stream into `sink`, verifying every block against its
/// CID ([`StorageError::IntegrityViolation`] on a mismatch). Does not pin.
/// Blocks reach the sink in groups of about 16 MiB
/// ([`BlockSink::put_blocks`]); when this returns `Ok`, all are stored.
/// Memory stays O(16 MiB + the CIDs read), whatever the archive's size.
///
/// Input that is not a whole CAR v1 (garbage, another version, a section
/// cut off in the middle, an oversized header or section) fails with
/// [`StorageError::InvalidCar`]; what was stored before the failure stays
/// (unpinned). An archive cut at a section boundary reads as a shorter
/// archive: its [`CarImport::missing`] names what it lacks.
pub async fn import_car<K: BlockSink + ?Sized>(sink: &K, car: ByteStream) -> Result<CarImport> {
    let mut reader = StreamReader {
        stream: car,
        buffer: BytesMut::new(),
        done: false,
    };
    let header_len = reader
        .varint()
        .await?
        .ok_or_else(|| StorageError::InvalidCar("empty input".into()))?;
    if header_len == 0 || header_len > MAX_HEADER {
        return Err(StorageError::InvalidCar(format!(
            "header length {header_len} is out of range (1 to {MAX_HEADER}): not a CAR v1 file"
        )));
    }
    let header = reader.exact(header_len as usize, "header").await?;
    let roots = decode_header(&header)?;
    let mut completeness = Completeness::default();
    for root in &roots {
        completeness.want(*root);
    }
    let mut blocks = 0;
    let mut bytes = 0u64;
    let mut pending = Vec::new();
    let mut pending_bytes = 0;
    while let Some(section_len) = reader.varint().await? {
        if section_len == 0 || section_len > MAX_SECTION {
            return Err(StorageError::InvalidCar(format!(
                "section length {section_len} is out of range (1 to {MAX_SECTION})"
            )));
        }
        let section = reader.exact(section_len as usize, "last section").await?;
        let (cid, used) = Cid::read_prefix(&section)?;
        let block = Block::new(cid, section.slice(used..))?;
        completeness.carry(&block);
        pending_bytes += block.data().len();
        bytes += block.data().len() as u64;
        pending.push(block);
        blocks += 1;
        if pending_bytes >= IMPORT_BATCH_BYTES {
            sink.put_blocks(std::mem::take(&mut pending)).await?;
            pending_bytes = 0;
        }
    }
    if !pending.is_empty() {
        sink.put_blocks(pending).await?;
    }
    Ok(CarImport {
        roots,
        blocks,
        bytes,
        missing: completeness.missing(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_go_car_bytes() {
        // go-car header for root QmbFMke1… (empty UnixFS file).
        let root: Cid = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
            .parse()
            .unwrap();
        let header = encode_header(&[root]);
        let mut expected = vec![0x38, 0xa2, 0x65];
        expected.extend_from_slice(b"roots");
        expected.extend_from_slice(&[0x81, 0xd8, 0x2a, 0x58, 0x23, 0x00]);
        expected.extend_from_slice(&root.to_bytes());
        expected.push(0x67);
        expected.extend_from_slice(b"version");
        expected.push(0x01);
        assert_eq!(header, expected);
        assert_eq!(decode_header(&header[1..]).unwrap(), vec![root]);
    }

    /// A block counts as carried whatever CID the archive names it by: stores key blocks
    /// by multihash, so a leaf carried as CIDv0 serves the CIDv1 its parent links to.
    #[tokio::test]
    async fn completeness_counts_blocks_by_multihash() {
        use crate::ImportFormat;
        use crate::dag_builder::{CHUNK_SIZE, DagBuilder};
        let mut builder = DagBuilder::new(ImportFormat::CidV1RawLeaves);
        builder.write(&vec![7u8; 2 * CHUNK_SIZE + 5]);
        let dag = builder.finish();
        let relabelled: Vec<Block> = dag
            .blocks
            .iter()
            .map(|b| match b.cid().codec() {
                crate::Codec::Raw => Block::computed(Cid::v0(*b.cid().digest()), b.data().clone()),
                crate::Codec::DagPb => b.clone(),
            })
            .collect();
        let pieces = car_pieces(&[dag.root], &relabelled);
        let stream: ByteStream = Box::pin(futures_util::stream::iter(pieces.into_iter().map(Ok)));
        let store = crate::MemoryStore::new();
        let imported = import_car(&store, stream).await.unwrap();
        assert!(imported.missing.is_empty(), "{:?}", imported.missing);
        assert_eq!(
            store.get(&dag.root).await.unwrap().len(),
            2 * CHUNK_SIZE + 5
        );
    }

    #[test]
    fn rejects_other_versions_and_garbage() {
        let root: Cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
            .parse()
            .unwrap();
        let mut header = encode_header(&[root]);
        let last = header.len() - 1;
        header[last] = 0x02;
        assert!(decode_header(&header[1..]).is_err(), "version 2");
        assert!(decode_header(&[0xa0]).is_err(), "no version");
        assert!(decode_header(&[0x01]).is_err(), "not a map");
        assert!(decode_header(&header[1..10]).is_err(), "truncated");
    }
}
