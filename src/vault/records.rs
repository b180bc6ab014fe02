//! Records: put, get and attachment reads.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use rand_core::OsRng;
use sha2::{Digest, Sha256};

use super::{Vault, parse_cid};
use crate::abe::Policy;
use crate::abe::envelope::DataKey;
use crate::chain::{Address, RecordId, RecordInfo};
use crate::error::{Error, InvalidInput, Pointer, Result, Tampering};
use crate::identity::Member;
use crate::index::Keyword;
use crate::manifest::{
    AttachmentInfo, Body, CapsuleDates, MAX_ATTACHMENTS, Manifest, RecordParties, attachment_aad,
    capsule_policy, emergency_of, policy_hash, without_emergency,
};
use crate::pipe::{self, Source};
use crate::state::{CompletedPut, OwnerState, PendingPut, PutIdentity};
use crate::storage::{Cid, ContentStore, PutOptions};
use crate::validity::{Month, Validity};
use crate::versions::AttributeVersions;

/// Most keywords per record.
pub const MAX_KEYWORDS: usize = 4096;
/// Records per batch of [`Vault::put_many`]: one `createRecords` transaction (about 5M gas
/// for 100, well within a block) and one index shard per policy each.
pub const BULK_BATCH: usize = 100;
/// Longest record or attachment name, in bytes.
pub const MAX_RECORD_NAME_LEN: usize = 1024;
/// Longest idempotency key ([`NewRecord::idempotency_key`]), in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 256;
/// Longest break-glass reason ([`Vault::get_emergency`]), in bytes (the contract's
/// `MAX_REASON_BYTES`).
pub const MAX_EMERGENCY_REASON_LEN: usize = 1024;
/// The conventional emergency policy: the attribute the authority issues to emergency
/// staff (e.g. ER doctors), for [`NewRecord::emergency`].
pub const EMERGENCY_ATTRIBUTE: &str = "access:emergency";

/// A record to store: a name, an access policy, search keywords and attachments.
#[derive(Debug)]
pub struct NewRecord {
    name: String,
    policy: Policy,
    keywords: Vec<Keyword>,
    attachments: Vec<Attachment>,
    key: Option<String>,
    subject: Option<Address>,
    emergency: Option<Policy>,
}

impl NewRecord {
    /// A record readable by keys whose attributes satisfy `policy` and that are valid in
    /// the month it is put (see [`crate::validity`]), and by its owner. `policy` must not
    /// name the reserved `valid-year` / `valid-month` attributes (checked by the put).
    pub fn new(name: impl Into<String>, policy: Policy) -> Self {
        Self {
            name: name.into(),
            policy,
            keywords: Vec::new(),
            attachments: Vec::new(),
            key: None,
            subject: None,
            emergency: None,
        }
    }

    /// Makes `subject` (the patient, by address) the record's subject: the subject always
    /// reads it (`or id:<subject>` in the capsule, undated), controls it (answers access
    /// requests, shares and revokes; the owner no longer does) and finds it with
    /// [`Vault::records_about`]. The owner keeps reading and updating it. The chain records
    /// the subject at creation (`createRecordFor`). A subject equal to the owner (or zero)
    /// is refused by the put ([`InvalidInput::InvalidSubject`]).
    pub fn subject(mut self, subject: Address) -> Self {
        self.subject = Some(subject);
        self
    }

    /// Lets keys satisfying `policy` read the record in an emergency (break-glass), e.g.
    /// `access:emergency` ([`EMERGENCY_ATTRIBUTE`], which the authority issues to emergency
    /// staff). The capsule gets `or (<policy> and V(created))`; such a reader opens the
    /// record only through [`Vault::get_emergency`], which logs the stated reason on chain
    /// first (client-side: see there). `policy` must not be a bare `id:` attribute nor name
    /// reserved attributes.
    pub fn emergency(mut self, policy: Policy) -> Self {
        self.emergency = Some(policy);
        self
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

    /// Names this put for retries (1 to [`MAX_IDEMPOTENCY_KEY_LEN`] bytes, chosen by the
    /// caller, e.g. the source system's document id): a put of the owner with a key
    /// already stored returns that put's receipt ([`PutOutcome::AlreadyStored`]) and
    /// stores nothing; one whose put was interrupted completes it
    /// ([`PutOutcome::CompletedInterrupted`]). Keys are kept for good in the owner's
    /// state. A key must always name the same record (name, policy, keywords,
    /// attachment names and content types): reusing it for another record is
    /// [`InvalidInput::IdempotencyKeyReused`]. Without a key, only a put that was
    /// interrupted is matched, by content (see [`Vault::put`]).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The digest of what describes the record without reading its attachments: name,
    /// policy, keywords (canonical, sorted, once each), attachment names and content
    /// types.
    fn description_digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(b"medseal put description v1");
        field(self.name.as_bytes());
        field(self.policy.to_string().as_bytes());
        let mut keywords: Vec<&str> = self.keywords.iter().map(Keyword::as_str).collect();
        keywords.sort_unstable();
        keywords.dedup();
        field(&(keywords.len() as u64).to_be_bytes());
        for k in keywords {
            field(k.as_bytes());
        }
        field(&(self.attachments.len() as u64).to_be_bytes());
        for a in &self.attachments {
            field(a.name.as_bytes());
            field(a.content_type.as_bytes());
        }
        // Only when set: descriptions of records without them are unchanged.
        if let Some(subject) = &self.subject {
            field(b"subject");
            field(subject.as_slice());
        }
        if let Some(emergency) = &self.emergency {
            field(b"emergency");
            field(emergency.to_string().as_bytes());
        }
        h.finalize().into()
    }

    fn validate(&self) -> Result<()> {
        check_name("record name", &self.name)?;
        for policy in std::iter::once(&self.policy).chain(&self.emergency) {
            if let Some(attribute) = crate::validity::reserved_in(policy)
                .or_else(|| crate::versions::version_spelling_in(policy))
            {
                return Err(InvalidInput::ReservedAttribute { attribute }.into());
            }
        }
        if let Some(subject) = self.subject
            && subject.is_zero()
        {
            return Err(InvalidInput::InvalidSubject { subject }.into());
        }
        if let Some(key) = &self.key
            && (key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN)
        {
            return Err(InvalidInput::Name {
                what: "idempotency key",
                name: key.clone(),
                max: MAX_IDEMPOTENCY_KEY_LEN,
            }
            .into());
        }
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

/// Why `reader` cannot open a record wrapped under `capsule`: [`Error::KeyExpired`] if
/// its attributes would satisfy the capsule with a validity covering a dated clause of
/// it (the creation month, or the month of the reader's share), else
/// [`Error::AccessDenied`]. Tried from the earliest month on, so the error names the
/// oldest month the key would need.
fn denied(record: RecordId, reader: &Member, capsule: &Policy) -> Error {
    let dates = CapsuleDates::of(capsule);
    let mut months: Vec<Month> = dates.created.into_iter().collect();
    months.extend(dates.shared.values().flatten().copied());
    months.sort_unstable();
    months.dedup();
    for needed in months {
        let mut attrs = reader.attributes().clone();
        let extended = Validity::until(needed)
            .attributes()
            .iter()
            .try_for_each(|a| attrs.insert(a).map(|_| ()));
        if extended.is_ok() && capsule.is_satisfied_by(&attrs) {
            return Error::KeyExpired {
                record,
                needed,
                valid_through: reader.validity(),
            };
        }
    }
    Error::AccessDenied { record }
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
    identity: PutIdentity,
    subject: Option<Address>,
}

/// The digest of a record's content: its description digest, and each attachment's
/// size and SHA-256 (computed while sealing).
fn content_digest(description: &[u8; 32], attachments: &[(u64, [u8; 32])]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"medseal put content v1");
    h.update(description);
    for (size, sha256) in attachments {
        h.update(size.to_be_bytes());
        h.update(sha256);
    }
    h.finalize().into()
}

/// How [`Vault::put`] came by a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutOutcome {
    /// This call stored the record.
    Created,
    /// An earlier put of the same record (the same idempotency key, or without a key
    /// the same content) was interrupted after its intent was saved; it was completed
    /// (by this call, or by a recovery since) and this is its record. This call stored
    /// nothing new.
    CompletedInterrupted,
    /// A put with the same idempotency key stored the record before; this is its
    /// receipt and nothing was stored.
    AlreadyStored,
}

/// What [`Vault::put`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutReceipt {
    /// The record's id on the chain.
    pub record: RecordId,
    /// CID of the sealed manifest (as first stored: sharing replaces it on chain).
    pub manifest_cid: Cid,
    /// The attachments as stored.
    pub attachments: Vec<AttachmentInfo>,
    /// CID of the index shard holding the record's keywords (none without keywords; as
    /// first anchored: later merges supersede it).
    pub shard_cid: Option<Cid>,
    /// Whether this call created the record or found it stored by an earlier put.
    pub outcome: PutOutcome,
    /// Records of another put of this owner, interrupted earlier, that this call
    /// completed before its own (on the first receipt of a call only; usually empty).
    /// A retry of that put will claim them instead of storing them again.
    pub recovered: Vec<RecordId>,
}

impl PutReceipt {
    fn completed(c: &CompletedPut, outcome: PutOutcome) -> Result<Self> {
        let cid = |text: &str| {
            text.parse::<Cid>()
                .map_err(|_| Error::inconsistent("owner state", "a stored receipt has a bad CID"))
        };
        Ok(Self {
            record: RecordId(c.record),
            manifest_cid: cid(&c.manifest_cid)?,
            attachments: c.attachments.clone(),
            shard_cid: c.shard_cid.as_deref().map(cid).transpose()?,
            outcome,
            recovered: Vec::new(),
        })
    }
}

/// A record of the call found stored by an earlier put.
enum Found {
    /// The recovered record at this index of [`OwnerState::recovered`] (claimed once the
    /// call succeeds).
    Recovered(usize),
    /// A completed keyed put.
    Keyed(CompletedPut),
}

/// The earlier put of `identity` (a keyed one) the state knows of, if any; refuses a
/// key reused for another record.
fn find_keyed(
    state: &OwnerState,
    identity: &PutIdentity,
    claimed: &[usize],
) -> Result<Option<Found>> {
    let PutIdentity::Key { key, description } = identity else {
        return Ok(None);
    };
    let same_key =
        |c: &CompletedPut| matches!(&c.identity, PutIdentity::Key { key: k, .. } if k == key);
    let check = |c: &CompletedPut| match &c.identity {
        PutIdentity::Key { description: d, .. } if d == description => Ok(()),
        _ => Err(Error::from(InvalidInput::IdempotencyKeyReused {
            key: key.clone(),
        })),
    };
    let recovered = state
        .recovered()
        .iter()
        .enumerate()
        .find(|(i, c)| !claimed.contains(i) && same_key(c));
    if let Some((i, c)) = recovered {
        check(c)?;
        return Ok(Some(Found::Recovered(i)));
    }
    match state.keyed(key) {
        Some(c) => {
            check(c)?;
            Ok(Some(Found::Keyed(c.clone())))
        }
        None => Ok(None),
    }
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
    /// The policy the record key is currently wrapped under: the base policy AND-ed with
    /// the validity clause of the month the record was created, `or` the owner's `id:`
    /// attribute, `or` each grantee's `id:` attribute AND-ed with the clause of the month
    /// it was shared (see [`crate::validity`]).
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
    /// the key wrapped under the policy and the validity clause of the vault clock's month
    /// (or the owner's `id:`; see [`crate::validity`]), the sealed manifest,
    /// `createRecord` on chain, and the keywords as one anchored index shard of the
    /// owner's partition for this policy.
    ///
    /// Crash-safe: the intent is persisted (fsynced) before the first chain transaction
    /// and the new index state after the last; if the process dies in between (or the
    /// chain fails), the next owner operation ([`Vault::recover`]) completes the put: it
    /// finds the record on chain (or creates it), rebuilds the same shard
    /// deterministically and anchors it if the chain does not have it yet.
    ///
    /// Idempotent under retry: a put of the record an interrupted put began does not
    /// store it again. It completes that put (if a recovery has not already) and returns
    /// its receipt with [`PutOutcome::CompletedInterrupted`]. The record is recognised
    /// by its idempotency key ([`NewRecord::idempotency_key`]; a key stored before also
    /// returns its receipt, [`PutOutcome::AlreadyStored`], without reading the
    /// attachments), or without a key by its content: name, policy, keywords and each
    /// attachment's name, content type, size and SHA-256 (computed while encrypting, so
    /// such a retry encrypts once more and then discards the copy). An unkeyed record
    /// is matched only against the last interrupted puts a recovery completed and no
    /// retry has claimed yet, each at most once: an identical record put on purpose
    /// after a completed put is a new record. A pending put that does not match is
    /// completed first and reported in [`PutReceipt::recovered`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for bad names, keys or too many attachments/keywords (and
    /// [`InvalidInput::IdempotencyKeyReused`], and [`InvalidInput::ReservedAttribute`] for
    /// a policy naming `valid-year` or `valid-month`), [`Error::NoAuthority`], and
    /// storage/chain errors (nothing already stored is lost).
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
    /// At the end of an import (once, not after every call: each compaction rewrites the
    /// owner's whole partition), call [`Vault::compact_index`], so that each partition is
    /// one shard (a search proves absence once per live shard), then
    /// [`Vault::refresh_index_cache`], so that the first search after it does not fetch
    /// the new shards.
    ///
    /// Crash-safe per batch like [`Vault::put`]: a batch's intent is persisted before its
    /// first chain transaction; an interrupted batch is completed by the next owner
    /// operation ([`Vault::recover`]); batches before it are complete, batches after it
    /// were not started (call again with the remaining records). Retries are matched per
    /// record as for [`Vault::put`]: give the records idempotency keys to make a repeated
    /// call of the whole input safe (without keys, only the interrupted batch's records
    /// are recognised).
    ///
    /// # Errors
    /// As [`Vault::put`]; all records are validated before anything is stored, and two
    /// records with one idempotency key are refused.
    pub async fn put_many(
        &self,
        owner: &Member,
        records: Vec<NewRecord>,
    ) -> Result<Vec<PutReceipt>> {
        let mut keys = std::collections::HashSet::new();
        for record in &records {
            record.validate()?;
            if let Some(key) = &record.key
                && !keys.insert(key.as_str())
            {
                return Err(InvalidInput::IdempotencyKeyReused { key: key.clone() }.into());
            }
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
        context: &SealContext<'_>,
        record: NewRecord,
        description: [u8; 32],
    ) -> Result<SealedRecord> {
        let &SealContext {
            pk,
            owner,
            now,
            versions,
        } = context;
        let dek = Arc::new(DataKey::generate(&mut OsRng));
        let mut attachments = Vec::with_capacity(record.attachments.len());
        let mut digests = Vec::with_capacity(record.attachments.len());
        for (index, a) in record.attachments.into_iter().enumerate() {
            let sealed = pipe::seal_to_store(
                batch,
                &dek,
                attachment_aad(index as u32),
                a.source,
                a.name.clone(),
                self.progress.clone(),
            )
            .await?;
            digests.push((sealed.size, sealed.sha256));
            attachments.push(AttachmentInfo {
                name: a.name,
                content_type: a.content_type,
                size: sealed.size,
                cid: sealed.cid.to_string(),
            });
        }
        let identity = match record.key {
            Some(key) => PutIdentity::Key { key, description },
            None => PutIdentity::Content(content_digest(&description, &digests)),
        };
        let body = Body {
            name: record.name,
            policy: record.policy.to_string(),
            attachments: attachments.clone(),
        };
        let dates = CapsuleDates {
            created: Some(now),
            ..CapsuleDates::default()
        };
        let wrapped = capsule_policy(
            &record.policy,
            &dates,
            now,
            owner,
            [],
            versions,
            RecordParties {
                subject: record.subject,
                emergency: record.emergency.as_ref(),
            },
        )?;
        let (pk, sealing, key) = (Arc::clone(pk), wrapped.clone(), Arc::clone(&dek));
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
            identity,
            subject: record.subject,
        })
    }

    /// Stores one batch of records (at most [`BULK_BATCH`]) under one intent, after
    /// completing a pending put and setting aside the records earlier puts stored.
    async fn put_batch(&self, owner: &Member, records: Vec<NewRecord>) -> Result<Vec<PutReceipt>> {
        for record in &records {
            record.validate()?;
        }
        let descriptions: Vec<[u8; 32]> =
            records.iter().map(NewRecord::description_digest).collect();
        let pk = &self.shared_public_key()?;
        let names: Vec<String> = records.iter().map(|r| r.name.clone()).collect();
        if let Some(subject) = records
            .iter()
            .filter_map(|r| r.subject)
            .find(|s| *s == owner.address())
        {
            return Err(InvalidInput::InvalidSubject { subject }.into());
        }
        let _guard = self.owner_lock.lock().await;
        self.check_member(owner)?;
        // One month for the whole batch: its records and the partition epochs they are
        // indexed in carry the same validity clause.
        let now = self.clock.now();
        let ledger = self.acting(owner);
        let mut state = self.owner_state(owner.address())?;
        let recovered: Vec<RecordId> = self
            .complete_pending(&*ledger, owner, &mut state, false)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        // (The policies are copied out: a record's reader need not be `Sync`.)
        let indexed: Vec<Policy> = records
            .iter()
            .filter(|r| !r.keywords.is_empty())
            .map(|r| r.policy.clone())
            .collect();
        self.check_index_heads(&*ledger, owner.address(), &mut state, indexed.iter())
            .await?;

        // Records stored before: keyed ones are found without sealing them. Claims of
        // recovered records take effect only once the call succeeds (a failed call
        // leaves them for its retry).
        let mut found: Vec<Option<Found>> = Vec::with_capacity(records.len());
        let mut claimed: Vec<usize> = Vec::new();
        let mut to_seal = Vec::new();
        for (i, (record, description)) in records.into_iter().zip(descriptions).enumerate() {
            let identity = record
                .key
                .clone()
                .map(|key| PutIdentity::Key { key, description });
            match identity
                .map(|id| find_keyed(&state, &id, &claimed))
                .transpose()?
                .flatten()
            {
                Some(f) => {
                    if let Found::Recovered(index) = f {
                        claimed.push(index);
                    }
                    found.push(Some(f));
                }
                None => {
                    found.push(None);
                    to_seal.push((i, record, description));
                }
            }
        }

        let mut created: Vec<(usize, SealedRecord, RecordId, Option<Cid>)> = Vec::new();
        if !to_seal.is_empty() {
            // Seal and store the records a few at a time (encryption on blocking
            // threads, store writes overlapping) into one store batch. Committing the
            // batch makes all their blocks durable and then pins every attachment and
            // manifest in one step (on the local store: one block sync and one pin
            // transaction instead of one of each per put), before the intent below can
            // name a manifest. What can wait on the chain is done before the commit (the
            // record count) or before the batch begins (the partitions: publishing one
            // stores its capsule, and a store put inside an open batch could wait behind
            // a garbage collection that waits for the batch), so that an interruption
            // leaves either no pin (the batch's temp files are removed, or at worst
            // blocks wait unpinned for garbage collection) or a saved intent.
            // (The policies are copied out: a record's reader need not be `Sync`.)
            let indexed: Vec<Policy> = to_seal
                .iter()
                .filter(|(_, record, _)| !record.keywords.is_empty())
                .map(|(_, record, _)| record.policy.clone())
                .collect();
            // The chain's current attribute versions of every policy of the batch, read
            // once for it (never kept across operations: a stale version would let a
            // revoked key read the new records).
            // Emergency policies too: a revoked emergency key must not open new records.
            let policies: Vec<Policy> = to_seal
                .iter()
                .flat_map(|(_, record, _)| {
                    std::iter::once(record.policy.clone()).chain(record.emergency.clone())
                })
                .collect();
            let versions = self.policy_versions(&policies).await?;
            let versions = &versions;
            let context = SealContext {
                pk,
                owner: owner.address(),
                now,
                versions,
            };
            let context = &context;
            for policy in &indexed {
                self.ensure_partition(&*ledger, owner, &mut state, policy, now, versions)
                    .await?;
            }
            let batch = self.store.begin_batch().await?;
            let sealed: Vec<(usize, SealedRecord)> = futures_util::stream::iter(to_seal)
                .map(|(i, record, description)| {
                    let batch = &*batch;
                    async move {
                        let sealed = self
                            .seal_record(batch, context, record, description)
                            .await?;
                        Ok::<_, Error>((i, sealed))
                    }
                })
                .buffered(SEAL_CONCURRENCY)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_>>()?;
            // Unkeyed records an interrupted put stored already: the new copy is dropped.
            let mut fresh = Vec::with_capacity(sealed.len());
            let mut discarded = Vec::new();
            for (i, s) in sealed {
                let earlier =
                    matches!(s.identity, PutIdentity::Content(_))
                        .then(|| {
                            state.recovered().iter().enumerate().position(|(j, c)| {
                                !claimed.contains(&j) && c.identity == s.identity
                            })
                        })
                        .flatten();
                match earlier {
                    Some(index) => {
                        claimed.push(index);
                        found[i] = Some(Found::Recovered(index));
                        discarded.push(s);
                    }
                    None => fresh.push((i, s)),
                }
            }
            if fresh.is_empty() {
                // Nothing to commit: dropping the batch deletes what it staged.
                drop(batch);
            } else {
                for s in &discarded {
                    batch.unpin(&s.manifest_cid).await?;
                    for a in &s.attachments {
                        batch.unpin(&parse_cid(&a.cid, Pointer::Manifest)?).await?;
                    }
                }
                let before = ledger.record_count().await?;
                batch.commit().await?;
                for (_, s) in &fresh {
                    state.pending.push(PendingPut {
                        manifest_cid: s.manifest_cid.to_string(),
                        capsule_policy: policy_hash(&s.wrapped).0,
                        policy: policy_hash(&s.policy).0,
                        keywords: s.keywords.clone(),
                        identity: Some(s.identity.clone()),
                        attachments: s.attachments.clone(),
                        subject: s.subject,
                    });
                }
                state.pending_after = before;
                state.save(&self.dir, owner.address())?;
                let done = self
                    .complete_pending(&*ledger, owner, &mut state, true)
                    .await?;
                created = fresh
                    .into_iter()
                    .zip(done)
                    .map(|((i, s), (record, shard))| (i, s, record, shard))
                    .collect();
            }
        }

        // Everything is stored: build the receipts, then make the claims durable.
        let mut receipts: Vec<Option<PutReceipt>> = Vec::with_capacity(found.len());
        for f in &found {
            receipts.push(match f {
                Some(Found::Recovered(index)) => {
                    let c = state.recovered().get(*index).ok_or_else(|| {
                        Error::inconsistent("owner state", "a claimed record vanished")
                    })?;
                    Some(PutReceipt::completed(c, PutOutcome::CompletedInterrupted)?)
                }
                Some(Found::Keyed(c)) => Some(PutReceipt::completed(c, PutOutcome::AlreadyStored)?),
                None => None,
            });
        }
        let titles: Vec<(String, usize)> = created
            .iter()
            .map(|(i, s, _, _)| (s.manifest_cid.to_string(), *i))
            .collect();
        for (i, s, record, shard_cid) in created {
            if let Some(slot) = receipts.get_mut(i) {
                *slot = Some(PutReceipt {
                    record,
                    manifest_cid: s.manifest_cid,
                    attachments: s.attachments,
                    shard_cid,
                    outcome: PutOutcome::Created,
                    recovered: Vec::new(),
                });
            }
        }
        if !claimed.is_empty() {
            state.claim_recovered(&claimed);
            state.save(&self.dir, owner.address())?;
        }
        self.keep_owner_state(owner.address(), state);
        self.remember_titles(
            owner,
            titles
                .iter()
                .filter_map(|(manifest, i)| Some((manifest.as_str(), names.get(*i)?.as_str()))),
        );
        let mut receipts: Vec<PutReceipt> = receipts
            .into_iter()
            .map(|r| {
                r.ok_or_else(|| Error::inconsistent("owner state", "a record without receipt"))
            })
            .collect::<Result<_>>()?;
        let own: Vec<RecordId> = receipts.iter().map(|r| r.record).collect();
        if let Some(first) = receipts.first_mut() {
            first.recovered = recovered
                .into_iter()
                .filter(|id| !own.contains(id))
                .collect();
        }
        Ok(receipts)
    }

    /// Opens a record with `reader`'s key: fetches the manifest the chain points to
    /// (verified against its CID and the chain's policy hash), unwraps the record key and
    /// decrypts the manifest. If the chain lets `reader` log accesses (owner or grantee),
    /// the access is recorded in the audit trail. The same as [`Vault::open_record`] then
    /// [`Vault::log_read`].
    ///
    /// # Errors
    /// [`Error::UnknownRecord`], [`Error::AccessDenied`] if the reader's attributes do
    /// not satisfy the record's policy, [`Error::KeyExpired`] if they would but the key
    /// is not valid for the month the record was created (or shared with the reader) in,
    /// [`Error::EmergencyOnly`] if the key satisfies only the record's emergency clause
    /// (use [`Vault::get_emergency`] with a reason), [`Error::Tampered`] if anything fails
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

    /// Break-glass: opens a record with `reader`'s key under the record's emergency clause
    /// ([`NewRecord::emergency`]), stating why. The reason (1 to
    /// [`MAX_EMERGENCY_REASON_LEN`] bytes, not blank) is logged on chain
    /// (`log_emergency_access`) **before** the record key is opened: if the log transaction
    /// fails, nothing is opened. The entry ([`AuditEvent::EmergencyAccess`](crate::chain::AuditEvent::EmergencyAccess))
    /// names the reader and the reason in the record's audit trail (the patient's). A reader
    /// who can read the record without break-glass may use it too (it is then logged all
    /// the same).
    ///
    /// **What enforces this.** The client: the contract cannot see ABE attributes, and a
    /// key satisfying the emergency clause could open the record without logging (a
    /// modified client). What would enforce it is a party that releases the key only after
    /// the on-chain log: e.g. a key-release service holding the emergency clause's share of
    /// the record key, or threshold decryption by custodians who each check the
    /// `EmergencyAccess` event before answering. Until then, the log deters and exposes
    /// rather than prevents.
    ///
    /// # Errors
    /// [`InvalidInput::Reason`] for a blank or too long reason, [`Error::UnknownRecord`],
    /// [`Error::AccessDenied`] (nothing logged) if the record has no emergency clause the
    /// reader's key satisfies (nor another clause it does), chain errors of the log
    /// (nothing opened), and as for [`Vault::get`].
    pub async fn get_emergency(
        &self,
        reader: &Member,
        record: RecordId,
        reason: &str,
    ) -> Result<OpenedRecord> {
        if reason.trim().is_empty() || reason.len() > MAX_EMERGENCY_REASON_LEN {
            return Err(InvalidInput::Reason {
                len: reason.len(),
                max: MAX_EMERGENCY_REASON_LEN,
            }
            .into());
        }
        let info = self.record_info(record).await?;
        let manifest = self.fetch_manifest(&info).await?;
        let capsule = manifest.policy()?;
        // Nothing is logged for a reader the capsule does not let in at all.
        if emergency_of(&capsule).is_none() || !capsule.is_satisfied_by(reader.attributes()) {
            return Err(denied(record, reader, &capsule));
        }
        self.acting(reader)
            .log_emergency_access(record, reason)
            .await
            .map_err(Error::unknown_or(record))?;
        self.open_manifest(reader, &info, &manifest, true)
    }

    /// Records about `subject` (the patient), oldest first (public chain data: the
    /// `RecordSubject` events).
    ///
    /// # Errors
    /// Chain errors.
    pub async fn records_about(&self, subject: Address) -> Result<Vec<RecordInfo>> {
        let mut out = Vec::new();
        for id in self.ledger.records_about(subject).await? {
            out.push(self.record_info(id).await?);
        }
        Ok(out)
    }

    pub(super) async fn open_info(
        &self,
        reader: &Member,
        info: &RecordInfo,
    ) -> Result<OpenedRecord> {
        let manifest = self.fetch_manifest(info).await?;
        self.open_manifest(reader, info, &manifest, false)
    }

    /// Opens `manifest` (of `info`) with `reader`'s key; unless `emergency`, refuses a
    /// reader whose key satisfies only the emergency clause ([`Error::EmergencyOnly`]).
    fn open_manifest(
        &self,
        reader: &Member,
        info: &RecordInfo,
        manifest: &Manifest,
        emergency: bool,
    ) -> Result<OpenedRecord> {
        let record = info.record;
        let capsule = manifest.policy()?;
        if !emergency
            && let Some(plain) = without_emergency(&capsule)
            && capsule.is_satisfied_by(reader.attributes())
            && !plain.is_satisfied_by(reader.attributes())
        {
            return Err(Error::EmergencyOnly { record });
        }
        let dek = match manifest.open_key(reader.key()) {
            Ok(dek) => dek,
            Err(crate::abe::Error::PolicyNotSatisfied) => {
                return Err(denied(record, reader, &capsule));
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
            capsule_policy: capsule,
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

/// What every record of a put batch is sealed with.
struct SealContext<'a> {
    pk: &'a Arc<crate::abe::fame::PublicKey>,
    owner: Address,
    now: Month,
    /// The chain's current versions of the batch's policies (base and emergency).
    versions: &'a AttributeVersions,
}
