//! Moving records between stores: CAR v1 export of what a vault needs to read and search
//! them, and import of such a file into the configured store.
//!
//! A record lives in two places: the chain (its owner, manifest CID, policy hash, grants,
//! the owner's published partition capsules and index anchors) and the content store (the
//! sealed manifest, the encrypted attachments, the capsules and the index shards). Moving
//! the store content is enough for a vault on the same chain to read and search the
//! records: the chain names every CID and every byte is verified against it. See
//! [`Vault::record_content`] for what is carried.

use super::{Vault, parse_cid};
use crate::chain::{Address, RecordId};
use crate::error::{Error, Pointer, Result};
use crate::identity::Member;
use crate::storage::{self, ByteStream, CarImport, Cid, StorageError};

/// The store content of some records: what [`Vault::export_car`] writes, from
/// [`Vault::record_content`]. Each list is in the order first met, without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordContent {
    /// The records.
    pub records: Vec<RecordId>,
    /// Their owners.
    pub owners: Vec<Address>,
    /// The records' current sealed manifests.
    pub manifests: Vec<Cid>,
    /// Their encrypted attachments (roots of UnixFS DAGs).
    pub attachments: Vec<Cid>,
    /// Every partition capsule the owners published (every epoch).
    pub capsules: Vec<Cid>,
    /// The live index shards of those partitions.
    pub shards: Vec<Cid>,
}

impl RecordContent {
    /// Every root, in the order manifests, attachments, capsules, shards (a CID in two
    /// lists once).
    pub fn roots(&self) -> Vec<Cid> {
        let mut seen = std::collections::HashSet::new();
        self.manifests
            .iter()
            .chain(&self.attachments)
            .chain(&self.capsules)
            .chain(&self.shards)
            .filter(|cid| seen.insert(**cid))
            .copied()
            .collect()
    }
}

fn push_new<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

impl Vault {
    /// The store content a vault on the same chain needs to read and search `records`:
    ///
    /// - each record's current manifest and attachments (reading them needs `reader`'s
    ///   key to open the manifest, which names the attachments: the owner, a grantee or a
    ///   member whose attributes satisfy the policy);
    /// - the whole searchable index of each record's owner: every partition capsule the
    ///   owner published (all epochs) and each partition's live shards (as the chain
    ///   anchors them). A search walks every partition on the chain, so an owner's index
    ///   moves as a whole, with any of its records.
    ///
    /// Older manifests (before a share or revocation re-sealed the record) and superseded
    /// shards are not carried: nothing on the chain points to them any more. Neither are
    /// the data directory's own files (authority public key, owners' private index state,
    /// import journals, caches): they are not store content.
    ///
    /// Opening a manifest here is not logged on chain as an access (no attachment is
    /// decrypted, and exporting needs no transaction).
    ///
    /// # Errors
    /// [`Error::UnknownRecord`], [`Error::AccessDenied`] if `reader` cannot open a record,
    /// [`Error::Tampered`] if a manifest or pointer fails verification, storage and chain
    /// errors.
    pub async fn record_content(
        &self,
        reader: &Member,
        records: &[RecordId],
    ) -> Result<RecordContent> {
        let mut content = RecordContent::default();
        for &record in records {
            if content.records.contains(&record) {
                continue;
            }
            let info = self.record_info(record).await?;
            let manifest = self.fetch_manifest(&info).await?;
            let dek = match manifest.open_key(reader.key()) {
                Ok(dek) => dek,
                Err(crate::abe::Error::PolicyNotSatisfied) => {
                    return Err(Error::AccessDenied { record });
                }
                Err(e) => return Err(e.into()),
            };
            let body = manifest.open_body(&dek)?;
            content.records.push(record);
            push_new(&mut content.owners, info.owner);
            push_new(
                &mut content.manifests,
                parse_cid(&info.manifest_cid, Pointer::Record)?,
            );
            for attachment in &body.attachments {
                push_new(
                    &mut content.attachments,
                    parse_cid(&attachment.cid, Pointer::Manifest)?,
                );
            }
        }
        for &owner in &content.owners.clone() {
            for entry in self.ledger.capsules(Some(owner)).await? {
                push_new(
                    &mut content.capsules,
                    parse_cid(&entry.capsule_cid, Pointer::PublishedCapsule)?,
                );
                for anchor in self
                    .ledger
                    .live_index_anchors(owner, entry.partition)
                    .await?
                {
                    push_new(
                        &mut content.shards,
                        parse_cid(&anchor.shard_cid, Pointer::IndexAnchor)?,
                    );
                }
            }
        }
        Ok(content)
    }

    /// Streams `content` from the store as one CAR v1 file whose header names every root
    /// ([`RecordContent::roots`]), each DAG complete and every block verified as it is read;
    /// memory stays O(one block), whatever the attachments' sizes. `ipfs dag import` of the
    /// file (or [`Vault::import_car`]) stores and pins it all.
    pub fn export_car(&self, content: &RecordContent) -> ByteStream {
        storage::export_car_roots(std::sync::Arc::clone(&self.store), content.roots())
    }

    /// Imports a CAR v1 file into this vault's store (the configured one: local, or the
    /// IPFS node): every block is verified against its CID before it is stored, in bounded
    /// memory; then the file's roots are pinned. Importing the same file twice is harmless.
    ///
    /// # Errors
    /// [`Error::Storage`] with [`StorageError::InvalidCar`] for input that is not a whole
    /// CAR v1 (garbage, a section cut off, another version), or one that lacks blocks its
    /// own blocks or header name and that the store does not hold either (a file cut short
    /// between two blocks, a partial DAG): nothing is pinned then. [`Error::Tampered`] if a
    /// block does not hash to its CID. Blocks stored before a failure stay unpinned
    /// (garbage collection removes them).
    pub async fn import_car(&self, car: ByteStream) -> Result<CarImport> {
        let imported = storage::import_car(&*self.store, car).await?;
        let mut absent = Vec::new();
        for cid in &imported.missing {
            if !self.store.has(cid).await? {
                absent.push(cid);
            }
        }
        if let Some(first) = absent.first() {
            return Err(Error::Storage(StorageError::InvalidCar(format!(
                "the file lacks {} block(s) that its blocks or header name and that the store \
                 does not hold (first: {first}): it was cut short or holds partial DAGs; \
                 nothing was pinned",
                absent.len()
            ))));
        }
        self.store.pin_many(&imported.roots).await?;
        Ok(imported)
    }
}
