//! Records: put, get and attachment reads.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use rand_core::OsRng;

use super::{Vault, parse_cid};
use crate::abe::Policy;
use crate::abe::envelope::DataKey;
use crate::chain::{Address, RecordId, RecordInfo};
use crate::error::{Error, InvalidInput, Pointer, Result, Tampering};
use crate::identity::Member;
use crate::index::Keyword;
use crate::manifest::{
    AttachmentInfo, Body, MAX_ATTACHMENTS, Manifest, attachment_aad, capsule_policy, policy_hash,
};
use crate::pipe::{self, Source};
use crate::state::PendingPut;
use crate::storage::{Cid, ContentStore, PutOptions};

/// Most keywords per record.
pub const MAX_KEYWORDS: usize = 4096;
/// Records per batch of [`Vault::put_many`]: one `createRecords` transaction (about 5M gas
/// for 100, well within a block) and one index shard per policy each.
pub const BULK_BATCH: usize = 100;
/// Longest record or attachment name, in bytes.
pub const MAX_RECORD_NAME_LEN: usize = 1024;

/// A record to store: a name, an access policy, search keywords and attachments.
#[derive(Debug)]
pub struct NewRecord {
    name: String,
    policy: Policy,
    keywords: Vec<Keyword>,
    attachments: Vec<Attachment>,
}

impl NewRecord {
    /// A record readable by keys whose attributes satisfy `policy` (and by its owner).
    pub fn new(name: impl Into<String>, policy: Policy) -> Self {
        Self {
            name: name.into(),
            policy,
            keywords: Vec::new(),
            attachments: Vec::new(),
        }
    }

    /// Adds a search keyword (e.g. [`Keyword::icd10`]).
    pub fn keyword(mut self, keyword: Keyword) -> Self {
        self.keywords.push(keyword);
        self
    }

    /// Adds search keywords.
    pub fn keywords(mut self, keywords: impl IntoIterator<Item = Keyword>) -> Self {
        self.keywords.extend(keywords);
        self
    }

    /// Adds an attachment.
    pub fn attach(mut self, attachment: Attachment) -> Self {
        self.attachments.push(attachment);
        self
    }

    fn validate(&self) -> Result<()> {
        check_name("record name", &self.name)?;
        if self.attachments.len() > MAX_ATTACHMENTS {
            return Err(InvalidInput::TooMany {
                what: "attachments",
                count: self.attachments.len(),
                limit: MAX_ATTACHMENTS,
            }
            .into());
        }
        if self.keywords.len() > MAX_KEYWORDS {
            return Err(InvalidInput::TooMany {
                what: "keywords",
                count: self.keywords.len(),
                limit: MAX_KEYWORDS,
            }
            .into());
        }
        for a in &self.attachments {
            check_name("attachment name", &a.name)?;
            check_name("content type", &a.content_type)?;
        }
        Ok(())
    }
}

fn check_name(what: &'static str, name: &str) -> Result<()> {
    if name.trim().is_empty()
        || name.len() > MAX_RECORD_NAME_LEN
        || name.chars().any(char::is_control)
    {
        return Err(InvalidInput::Name {
            what,
            name: name.to_owned(),
            max: MAX_RECORD_NAME_LEN,
        }
        .into());
    }
    Ok(())
}

/// An attachment of a [`NewRecord`]: a name, a content type and the bytes (any size;
/// encrypted as they stream into the store).
#[derive(Debug)]
pub struct Attachment {
    name: String,
    content_type: String,
    source: Source,
}

impl Attachment {
    /// An attachment held in memory.
    pub fn bytes(
        name: impl Into<String>,
        content_type: impl Into<String>,
        data: impl Into<Bytes>,
    ) -> Self {
        Self {
            name: name.into(),
            content_type: content_type.into(),
            source: Source::Bytes(data.into()),
        }
    }

    /// An attachment read from a file while it is encrypted.
    pub fn file(
        name: impl Into<String>,
        content_type: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> Self {
        Self {
            name: name.into(),
            content_type: content_type.into(),
            source: Source::File(path.into()),
        }
    }

    /// An attachment read from any reader (`len`, if known, is used for progress output).
    pub fn reader(
        name: impl Into<String>,
        content_type: impl Into<String>,
        reader: impl std::io::Read + Send + 'static,
        len: Option<u64>,
    ) -> Self {
        Self {
            name: name.into(),
            content_type: content_type.into(),
            source: Source::Reader(Box::new(reader), len),
        }
    }
}

/// Records sealed concurrently by [`Vault::put_many`].
const SEAL_CONCURRENCY: usize = 4;

/// A record encrypted and stored, not yet on chain.
struct SealedRecord {
    manifest_cid: Cid,
    attachments: Vec<AttachmentInfo>,
    wrapped: Policy,
    policy: Policy,
    keywords: Vec<String>,
}

/// What [`Vault::put`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutReceipt {
    /// The record's id on the chain.
    pub record: RecordId,
    /// CID of the sealed manifest.
    pub manifest_cid: Cid,
    /// The attachments as stored.
    pub attachments: Vec<AttachmentInfo>,
    /// CID of the index shard holding the record's keywords (none without keywords).
    pub shard_cid: Option<Cid>,
}

/// A record opened with a reader's key: its metadata, and the key to read attachments
/// ([`Vault::read_attachment`]). `Debug` does not show the key.
#[non_exhaustive]
pub struct OpenedRecord {
    /// The record's id.
    pub record: RecordId,
    /// Its owner.
    pub owner: Address,
    /// Its name.
    pub name: String,
    /// The base policy the owner chose.
    pub policy: Policy,
    /// The policy the record key is currently wrapped under: the base policy `or` the
    /// owner's and grantees' `id:` attributes.
    pub capsule_policy: Policy,
    /// CID of the current manifest.
    pub manifest_cid: Cid,
    /// The attachments.
    pub attachments: Vec<AttachmentInfo>,
    dek: Arc<DataKey>,
}

impl core::fmt::Debug for OpenedRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpenedRecord")
            .field("record", &self.record)
            .field("owner", &self.owner)
            .field("name", &self.name)
            .field("policy", &self.policy.to_string())
            .field("attachments", &self.attachments)
            .finish_non_exhaustive()
    }
}

impl Vault {
    pub(super) async fn fetch_manifest(&self, info: &RecordInfo) -> Result<Manifest> {
        let cid = parse_cid(&info.manifest_cid, Pointer::Record)?;
        let bytes = self.store.get(&cid).await?;
        let manifest = Manifest::from_bytes(&bytes)?;
        if policy_hash(&manifest.policy()?) != info.policy_hash {
            return Err(Tampering::ManifestPolicy {
                record: info.record,
            }
            .into());
        }
        Ok(manifest)
    }

    /// Stores a record owned by `owner`: attachments encrypted under a fresh record key,
    /// the key wrapped under the policy (or the owner's `id:`), the sealed manifest,
    /// `createRecord` on chain, and the keywords as one anchored index shard of the
    /// owner's partition for this policy.
    ///
    /// Crash-safe: the intent is persisted (fsynced) before the first chain transaction
    /// and the new index state after the last; if the process dies in between, the next
    /// owner operation ([`Vault::recover`]) completes the put: it finds the record on
    /// chain (or creates it), rebuilds the same shard deterministically and anchors it if
    /// the chain does not have it yet.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for bad names or too many attachments/keywords,
    /// [`Error::NoAuthority`], and storage/chain errors (nothing already stored is lost).
    pub async fn put(&self, owner: &Member, record: NewRecord) -> Result<PutReceipt> {
        let mut receipts = self.put_batch(owner, vec![record]).await?;
        receipts
            .pop()
            .ok_or_else(|| Error::inconsistent("owner state", "pending put vanished"))
    }

    /// Stores many records owned by `owner` (bulk import of an existing archive), as
    /// [`Vault::put`] does one, but in batches of [`BULK_BATCH`]: per batch one
    /// `createRecords` transaction and, per policy, one index shard and anchor, so chain
    /// cost and index growth are amortised. Receipts come in input order.
    ///
    /// Call [`Vault::refresh_index_cache`] at the end of an import, so that the first
    /// search after it does not fetch the new shards.
    ///
    /// Crash-safe per batch like [`Vault::put`]: a batch's intent is persisted before its
    /// first chain transaction; an interrupted batch is completed by the next owner
    /// operation ([`Vault::recover`]); batches before it are complete, batches after it
    /// were not started (call again with the remaining records).
    ///
    /// # Errors
    /// As [`Vault::put`]; all records are validated before anything is stored.
    pub async fn put_many(
        &self,
        owner: &Member,
        records: Vec<NewRecord>,
    ) -> Result<Vec<PutReceipt>> {
        for record in &records {
            record.validate()?;
        }
        let mut receipts = Vec::with_capacity(records.len());
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let batch: Vec<NewRecord> = records.by_ref().take(BULK_BATCH).collect();
            receipts.extend(self.put_batch(owner, batch).await?);
        }
        Ok(receipts)
    }

    /// Encrypts one record's attachments and manifest and puts them (pinned) into
    /// `batch`: they are durable and pinned once the batch is committed.
    async fn seal_record(
        &self,
        batch: &dyn ContentStore,
        pk: &crate::abe::fame::PublicKey,
        owner: Address,
        record: NewRecord,
    ) -> Result<SealedRecord> {
        let dek = Arc::new(DataKey::generate(&mut OsRng));
        let mut attachments = Vec::with_capacity(record.attachments.len());
        for (index, a) in record.attachments.into_iter().enumerate() {
            let (cid, size) = pipe::seal_to_store(
                batch,
                &dek,
                attachment_aad(index as u32),
                a.source,
                a.name.clone(),
                self.progress.clone(),
            )
            .await?;
            attachments.push(AttachmentInfo {
                name: a.name,
                content_type: a.content_type,
                size,
                cid: cid.to_string(),
            });
        }
        let body = Body {
            name: record.name,
            policy: record.policy.to_string(),
            attachments: attachments.clone(),
        };
        let wrapped = capsule_policy(&record.policy, owner, [])?;
        let (pk, sealing, key) = (pk.clone(), wrapped.clone(), Arc::clone(&dek));
        let manifest = tokio::task::spawn_blocking(move || {
            Manifest::seal(&pk, &sealing, &key, &body, &mut OsRng)
        })
        .await
        .map_err(|_| Error::TaskFailed("encryption"))??;
        let manifest_cid = batch
            .put(manifest.to_bytes().into(), PutOptions::new().with_pin(true))
            .await?;
        let mut keywords: Vec<String> = record
            .keywords
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect();
        keywords.sort();
        keywords.dedup();
        Ok(SealedRecord {
            manifest_cid,
            attachments,
            wrapped,
            policy: record.policy,
            keywords,
        })
    }

    /// Stores one batch of records (at most [`BULK_BATCH`]) under one intent.
    async fn put_batch(&self, owner: &Member, records: Vec<NewRecord>) -> Result<Vec<PutReceipt>> {
        for record in &records {
            record.validate()?;
        }
        let pk = self.public_key()?;
        let names: Vec<String> = records.iter().map(|r| r.name.clone()).collect();
        let _guard = self.owner_lock.lock().await;
        self.check_member(owner)?;
        let ledger = self.acting(owner);
        let mut state = self.owner_state(owner.address())?;
        self.complete_pending(&*ledger, owner, &mut state, false)
            .await?;

        // Seal and store the records a few at a time (encryption on blocking threads, store
        // writes overlapping) into one store batch, then register them in order. Committing
        // the batch makes all their blocks durable and then pins every attachment and
        // manifest in one step (on the local store: one block sync and one pin transaction
        // instead of one of each per put), before the intent below can name a manifest: a
        // crash before the commit leaves at worst unpinned blocks and no intent, so the
        // batch was not started and re-running the import stores it again.
        let batch = self.store.begin_batch().await?;
        let sealed: Vec<SealedRecord> = futures_util::stream::iter(records)
            .map(|record| self.seal_record(&*batch, pk, owner.address(), record))
            .buffered(SEAL_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
        batch.commit().await?;
        let mut stored = Vec::with_capacity(sealed.len());
        for s in sealed {
            if !s.keywords.is_empty() {
                self.ensure_partition(&*ledger, owner, &mut state, &s.policy)
                    .await?;
            }
            state.pending.push(PendingPut {
                manifest_cid: s.manifest_cid.to_string(),
                capsule_policy: policy_hash(&s.wrapped).0,
                policy: policy_hash(&s.policy).0,
                keywords: s.keywords,
            });
            stored.push((s.manifest_cid, s.attachments));
        }
        state.pending_after = ledger.record_count().await?;
        state.save(&self.dir, owner.address())?;
        let done = self
            .complete_pending(&*ledger, owner, &mut state, true)
            .await?;
        self.keep_owner_state(owner.address(), state);
        let manifests: Vec<String> = stored.iter().map(|(cid, _)| cid.to_string()).collect();
        self.remember_titles(
            owner,
            manifests
                .iter()
                .map(String::as_str)
                .zip(names.iter().map(String::as_str)),
        );
        Ok(stored
            .into_iter()
            .zip(done)
            .map(
                |((manifest_cid, attachments), (record, shard_cid))| PutReceipt {
                    record,
                    manifest_cid,
                    attachments,
                    shard_cid,
                },
            )
            .collect())
    }

    /// Opens a record with `reader`'s key: fetches the manifest the chain points to
    /// (verified against its CID and the chain's policy hash), unwraps the record key and
    /// decrypts the manifest. If the chain lets `reader` log accesses (owner or grantee),
    /// the access is recorded in the audit trail. The same as [`Vault::open_record`] then
    /// [`Vault::log_read`].
    ///
    /// # Errors
    /// [`Error::UnknownRecord`], [`Error::AccessDenied`] if the reader's attributes do
    /// not satisfy the record's policy, [`Error::Tampered`] if anything fails
    /// verification.
    pub async fn get(&self, reader: &Member, record: RecordId) -> Result<OpenedRecord> {
        let opened = self.open_record(reader, record).await?;
        self.log_read(reader, &opened).await?;
        Ok(opened)
    }

    /// Opens a record as [`Vault::get`] does, without recording the access: for a caller
    /// that checks something before it reads (where attachments would be saved, say) and
    /// then calls [`Vault::log_read`], so that a read it refuses leaves no entry.
    ///
    /// The audit trail is kept by honest clients (whoever holds a key can decrypt without
    /// logging), so this opens nothing that `get` does not; it only lets the caller choose
    /// when the entry is written.
    ///
    /// # Errors
    /// As for [`Vault::get`].
    pub async fn open_record(&self, reader: &Member, record: RecordId) -> Result<OpenedRecord> {
        let info = self.record_info(record).await?;
        self.open_info(reader, &info).await
    }

    /// Records in the audit trail that `reader` read `opened`, if the chain lets it log
    /// accesses to the record (its owner or a grantee; a reader whose attributes satisfy
    /// the policy cannot). Returns whether an entry was written.
    ///
    /// # Errors
    /// Chain errors.
    pub async fn log_read(&self, reader: &Member, opened: &OpenedRecord) -> Result<bool> {
        let (record, address) = (opened.record, reader.address());
        if opened.owner == address || self.ledger.can_access(record, address).await? {
            self.acting(reader).log_access(record).await?;
            return Ok(true);
        }
        Ok(false)
    }

    pub(super) async fn open_info(
        &self,
        reader: &Member,
        info: &RecordInfo,
    ) -> Result<OpenedRecord> {
        let record = info.record;
        let manifest = self.fetch_manifest(info).await?;
        let dek = match manifest.open_key(reader.key()) {
            Ok(dek) => dek,
            Err(crate::abe::Error::PolicyNotSatisfied) => {
                return Err(Error::AccessDenied { record });
            }
            Err(e) => return Err(e.into()),
        };
        let body = manifest.open_body(&dek)?;
        let policy: Policy = body.policy.parse()?;
        Ok(OpenedRecord {
            record,
            owner: info.owner,
            name: body.name,
            policy,
            capsule_policy: manifest.policy()?,
            manifest_cid: parse_cid(&info.manifest_cid, Pointer::Record)?,
            attachments: body.attachments,
            dek: Arc::new(dek),
        })
    }

    /// Streams attachment `index` of an opened record, decrypted, into `out` (returned
    /// when done). Every block is verified against its CID and every segment
    /// authenticated; **on error discard what was written** (segments are released as
    /// they authenticate; truncation is only detected at the end).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad index, [`Error::Tampered`], storage errors,
    /// [`Error::Io`] if `out` fails.
    pub async fn read_attachment<W: std::io::Write + Send + 'static>(
        &self,
        record: &OpenedRecord,
        index: usize,
        out: W,
    ) -> Result<W> {
        let info = record.attachments.get(index).ok_or_else(|| {
            Error::from(InvalidInput::NoSuchAttachment {
                record: record.record,
                index,
                count: record.attachments.len(),
            })
        })?;
        let cid = parse_cid(&info.cid, Pointer::Manifest)?;
        pipe::open_from_store(
            &*self.store,
            &cid,
            &record.dek,
            attachment_aad(index as u32),
            out,
            info.name.clone(),
            Some(info.size),
            self.progress.clone(),
        )
        .await
    }

    /// Reads attachment `index` into memory (all or nothing).
    ///
    /// # Errors
    /// As for [`Vault::read_attachment`].
    pub async fn read_attachment_bytes(
        &self,
        record: &OpenedRecord,
        index: usize,
    ) -> Result<Vec<u8>> {
        let out = self.read_attachment(record, index, Vec::new()).await?;
        let size = record.attachments.get(index).map_or(0, |a| a.size);
        if out.len() as u64 != size {
            return Err(Tampering::AttachmentSize {
                index,
                found: out.len() as u64,
                expected: size,
            }
            .into());
        }
        Ok(out)
    }
}
