//! Verified reading of UnixFS file DAGs: every block is hashed against the
//! CID that named it before any of its bytes or links are used, and sizes
//! declared by parents are checked against what children actually hold.

use async_trait::async_trait;
use bytes::Bytes;

use crate::cid::{Cid, Codec};
use crate::dag_pb;
use crate::error::{Result, StorageError};
use crate::store::ByteStream;
use crate::unixfs::{self, TYPE_FILE, TYPE_RAW};

/// Deepest DAG accepted (Kubo's balanced trees of 2^64 bytes need 9 levels).
const MAX_DEPTH: usize = 64;

/// Where a DAG reader gets block bytes from. Implementations need not verify:
/// the reader hashes every block itself.
#[async_trait]
pub(crate) trait BlockSource: Send + Sync {
    /// The bytes stored under `cid`, or [`StorageError::NotFound`].
    async fn fetch(&self, cid: &Cid) -> Result<Bytes>;
}

/// Fetches `cid` from `source` and checks its hash.
pub(crate) async fn fetch_verified<S: BlockSource + ?Sized>(
    source: &S,
    cid: &Cid,
) -> Result<Bytes> {
    let bytes = source.fetch(cid).await?;
    if !cid.verifies(&bytes) {
        return Err(StorageError::integrity(
            *cid,
            format!("{} bytes received do not hash to the CID", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// The CIDs a verified block links to (all links, whatever the UnixFS type).
pub(crate) fn child_links(cid: &Cid, block: &[u8]) -> Result<Vec<Cid>> {
    match cid.codec() {
        Codec::Raw => Ok(Vec::new()),
        Codec::DagPb => {
            let node =
                dag_pb::decode_node(block).map_err(|e| StorageError::invalid_dag(*cid, e))?;
            Ok(node.links.into_iter().map(|l| l.cid).collect())
        }
    }
}

/// Visits every block of the DAG under `root` (depth first, verified),
/// calling `visit` with each CID and its bytes. Shared subtrees are visited
/// once per occurrence unless `visit` returns `false`, which skips the
/// block's children.
pub(crate) async fn walk_dag<S, F>(source: &S, root: &Cid, mut visit: F) -> Result<()>
where
    S: BlockSource + ?Sized,
    F: FnMut(&Cid, &Bytes) -> bool + Send,
{
    let mut stack = vec![vec![*root].into_iter()];
    while let Some(top) = stack.last_mut() {
        let Some(cid) = top.next() else {
            stack.pop();
            continue;
        };
        let block = fetch_verified(source, &cid).await?;
        if visit(&cid, &block) {
            let links = child_links(&cid, &block)?;
            if stack.len() > MAX_DEPTH {
                return Err(StorageError::invalid_dag(cid, "DAG deeper than 64 levels"));
            }
            stack.push(links.into_iter());
        }
    }
    Ok(())
}

/// A child still to read, with the file size its parent declared for it.
#[derive(Debug)]
struct PendingChild {
    cid: Cid,
    declared_size: Option<u64>,
}

/// Streams the file bytes of a UnixFS DAG in order. Holds one block and the
/// link lists along one root-to-leaf path: O(chunk) memory.
pub(crate) struct DagReader<S> {
    source: S,
    stack: Vec<std::vec::IntoIter<PendingChild>>,
}

impl<S: BlockSource + 'static> DagReader<S> {
    /// A reader for the file rooted at `root`.
    pub(crate) fn new(source: S, root: Cid) -> Self {
        let first = PendingChild {
            cid: root,
            declared_size: None,
        };
        Self {
            source,
            stack: vec![vec![first].into_iter()],
        }
    }

    /// The next non-empty piece of file data, `None` at the end.
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        while let Some(top) = self.stack.last_mut() {
            let Some(child) = top.next() else {
                self.stack.pop();
                continue;
            };
            let block = fetch_verified(&self.source, &child.cid).await?;
            let (data, children) = file_node_parts(&child, block)?;
            if !children.is_empty() {
                if self.stack.len() > MAX_DEPTH {
                    return Err(StorageError::invalid_dag(
                        child.cid,
                        "DAG deeper than 64 levels",
                    ));
                }
                self.stack.push(children.into_iter());
            }
            if !data.is_empty() {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    /// The reader as a stream of file pieces.
    pub(crate) fn into_stream(self) -> ByteStream {
        Box::pin(futures_util::stream::try_unfold(
            self,
            |mut reader| async move { Ok(reader.next_chunk().await?.map(|chunk| (chunk, reader))) },
        ))
    }
}

/// Splits a verified block into the file bytes it holds itself and the
/// children that follow, checking sizes against what the parent declared.
fn file_node_parts(node: &PendingChild, block: Bytes) -> Result<(Bytes, Vec<PendingChild>)> {
    let cid = node.cid;
    let size_mismatch = |actual: u64| {
        StorageError::integrity(
            cid,
            format!(
                "parent declares {} file bytes, block holds {actual}",
                node.declared_size.unwrap_or_default()
            ),
        )
    };
    if cid.codec() == Codec::Raw {
        if node.declared_size.is_some_and(|d| d != block.len() as u64) {
            return Err(size_mismatch(block.len() as u64));
        }
        return Ok((block, Vec::new()));
    }
    let pb = dag_pb::decode_node(&block).map_err(|e| StorageError::invalid_dag(cid, e))?;
    let data = pb
        .data
        .ok_or_else(|| StorageError::invalid_dag(cid, "dag-pb node without UnixFS data"))?;
    let unixfs = unixfs::decode_data(data).map_err(|e| StorageError::invalid_dag(cid, e))?;
    if unixfs.kind != TYPE_FILE && unixfs.kind != TYPE_RAW {
        return Err(StorageError::invalid_dag(
            cid,
            format!("UnixFS type {} is not a file", unixfs.kind),
        ));
    }
    let declared_children = !unixfs.blocksizes.is_empty();
    if declared_children && unixfs.blocksizes.len() != pb.links.len() {
        return Err(StorageError::invalid_dag(
            cid,
            format!(
                "{} links but {} blocksizes",
                pb.links.len(),
                unixfs.blocksizes.len()
            ),
        ));
    }
    let total = unixfs
        .blocksizes
        .iter()
        .try_fold(unixfs.data.len() as u64, |sum, size| sum.checked_add(*size))
        .ok_or_else(|| StorageError::invalid_dag(cid, "block sizes overflow"))?;
    if declared_children || pb.links.is_empty() {
        if unixfs.filesize.is_some_and(|f| f != total) {
            return Err(StorageError::integrity(
                cid,
                format!(
                    "filesize {} but content adds up to {total}",
                    unixfs.filesize.unwrap_or_default()
                ),
            ));
        }
        if node.declared_size.is_some_and(|d| d != total) {
            return Err(size_mismatch(total));
        }
    }
    let children = pb
        .links
        .iter()
        .enumerate()
        .map(|(index, link)| PendingChild {
            cid: link.cid,
            declared_size: unixfs.blocksizes.get(index).copied(),
        })
        .collect();
    Ok((block.slice_ref(unixfs.data), children))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag_builder::{DagBuilder, ImportFormat};
    use crate::dag_pb::PbLink;
    use crate::unixfs::{FileChild, internal_block};
    use futures_util::TryStreamExt;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct MapSource(Mutex<HashMap<Cid, Bytes>>);

    #[async_trait]
    impl BlockSource for MapSource {
        async fn fetch(&self, cid: &Cid) -> Result<Bytes> {
            self.0
                .lock()
                .unwrap()
                .get(cid)
                .cloned()
                .ok_or(StorageError::NotFound { cid: *cid })
        }
    }

    fn source_for(data: &[u8], format: ImportFormat) -> (MapSource, Cid) {
        let mut builder = DagBuilder::new(format);
        builder.write(data);
        let dag = builder.finish();
        let source = MapSource::default();
        for block in dag.blocks {
            let (cid, bytes) = block.into_parts();
            source.0.lock().unwrap().insert(cid, bytes);
        }
        (source, dag.root)
    }

    async fn read_all(source: MapSource, root: Cid) -> Result<Vec<u8>> {
        let pieces: Vec<Bytes> = DagReader::new(source, root)
            .into_stream()
            .try_collect()
            .await?;
        Ok(pieces.concat())
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 256) as u8).collect()
    }

    #[tokio::test]
    async fn reads_back_both_formats() {
        for len in [0, 1, 262_144, 600_000] {
            for format in [ImportFormat::CidV0, ImportFormat::CidV1RawLeaves] {
                let input = data(len);
                let (source, root) = source_for(&input, format);
                assert_eq!(
                    read_all(source, root).await.unwrap(),
                    input,
                    "{len} {format:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn tampered_leaf_is_an_integrity_violation() {
        let input = data(600_000);
        let (source, root) = source_for(&input, ImportFormat::CidV1RawLeaves);
        let victim = {
            let map = source.0.lock().unwrap();
            *map.keys().find(|c| c.codec() == Codec::Raw).unwrap()
        };
        {
            let mut map = source.0.lock().unwrap();
            let mut bytes = map[&victim].to_vec();
            bytes[1000] ^= 1;
            map.insert(victim, Bytes::from(bytes));
        }
        let err = read_all(source, root).await.unwrap_err();
        assert!(
            matches!(err, StorageError::IntegrityViolation { cid, .. } if cid == victim),
            "{err}"
        );
    }

    #[tokio::test]
    async fn missing_child_is_not_found() {
        let input = data(600_000);
        let (source, root) = source_for(&input, ImportFormat::CidV0);
        let victim = *source
            .0
            .lock()
            .unwrap()
            .keys()
            .find(|c| **c != root)
            .unwrap();
        source.0.lock().unwrap().remove(&victim);
        let err = read_all(source, root).await.unwrap_err();
        assert!(
            matches!(err, StorageError::NotFound { cid } if cid == victim),
            "{err}"
        );
    }

    #[tokio::test]
    async fn lying_blocksizes_are_caught() {
        // A correctly hashed parent whose blocksizes disagree with its leaf.
        let leaf = Bytes::from_static(b"four");
        let leaf_cid = Cid::for_block(crate::cid::CidVersion::V1, Codec::Raw, &leaf);
        let parent = internal_block(&[FileChild {
            link: PbLink {
                cid: leaf_cid,
                tsize: 4,
            },
            file_size: 5,
        }]);
        let parent_cid = Cid::for_block(crate::cid::CidVersion::V1, Codec::DagPb, &parent);
        let source = MapSource::default();
        source.0.lock().unwrap().insert(leaf_cid, leaf);
        source
            .0
            .lock()
            .unwrap()
            .insert(parent_cid, Bytes::from(parent));
        let err = read_all(source, parent_cid).await.unwrap_err();
        assert!(
            matches!(err, StorageError::IntegrityViolation { .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn directories_are_rejected() {
        // UnixFS Type=Directory (1).
        let block = dag_pb::encode_node(&[], &[0x08, 0x01]);
        let cid = Cid::for_block(crate::cid::CidVersion::V0, Codec::DagPb, &block);
        let source = MapSource::default();
        source.0.lock().unwrap().insert(cid, Bytes::from(block));
        let err = read_all(source, cid).await.unwrap_err();
        assert!(matches!(err, StorageError::InvalidDag { .. }), "{err}");
    }

    #[tokio::test]
    async fn inline_data_in_a_parent_comes_before_its_children() {
        let leaf = Bytes::from_static(b" world");
        let leaf_cid = Cid::for_block(crate::cid::CidVersion::V1, Codec::Raw, &leaf);
        let message = unixfs::file_data_message(b"hello", &[6]);
        let parent = dag_pb::encode_node(
            &[PbLink {
                cid: leaf_cid,
                tsize: 6,
            }],
            &message,
        );
        let parent_cid = Cid::for_block(crate::cid::CidVersion::V1, Codec::DagPb, &parent);
        let source = MapSource::default();
        source.0.lock().unwrap().insert(leaf_cid, leaf);
        source
            .0
            .lock()
            .unwrap()
            .insert(parent_cid, Bytes::from(parent));
        assert_eq!(read_all(source, parent_cid).await.unwrap(), b"hello world");
    }
}
