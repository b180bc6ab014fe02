//! [`Vault`]: the end-to-end API over a content store and a ledger.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use rand_core::OsRng;
use sha2::{Digest, Sha256};

use crate::abe::envelope::DataKey;
use crate::abe::{Encoding, Policy, fame};
use crate::chain::{
    AccessRequest, AccessState, Address, AuditEntry, AuditEvent, Capsule as CapsuleEntry,
    EmbeddedChain, Ledger, PrivateKeySigner, RecordId, RecordInfo, RpcChain,
};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::fsutil::{read_optional, write_atomic};
use crate::identity::{Member, id_attribute};
use crate::index::sse::{
    Capsule, IndexHost, KeywordKey, OwnerPartition, Partition, PartitionId, PartitionKey, Shard,
    ShardRoot,
};
use crate::index::{Keyword, RecordRef};
use crate::manifest::{AttachmentInfo, Body, MAX_ATTACHMENTS, Manifest, attachment_aad};
use crate::pipe::{self, Progress, Source};
use crate::state::{OwnerState, PartitionState, PendingPut, hex32};
use crate::storage::{Cid, ContentStore, KuboStore, LocalStore, PutOptions, StorageError};

/// File (in the data directory) holding the attribute authority's public key.
pub const AUTHORITY_PUBLIC_KEY_FILE: &str = "authority.pub";
/// Most keywords per record.
pub const MAX_KEYWORDS: usize = 4096;
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
            return Err(Error::InvalidInput(format!(
                "{} attachments (at most {MAX_ATTACHMENTS})",
                self.attachments.len()
            )));
        }
        if self.keywords.len() > MAX_KEYWORDS {
            return Err(Error::InvalidInput(format!(
                "{} keywords (at most {MAX_KEYWORDS})",
                self.keywords.len()
            )));
        }
        for a in &self.attachments {
            check_name("attachment name", &a.name)?;
            check_name("content type", &a.content_type)?;
        }
        Ok(())
    }
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.trim().is_empty()
        || name.len() > MAX_RECORD_NAME_LEN
        || name.chars().any(char::is_control)
    {
        return Err(Error::InvalidInput(format!(
            "{what} must be 1..={MAX_RECORD_NAME_LEN} bytes without control characters: {name:?}"
        )));
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

/// What [`Vault::put`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutReceipt {
    /// The record's id on the chain.
    pub record: RecordId,
    /// CID of the sealed manifest.
    pub manifest_cid: String,
    /// The attachments as stored.
    pub attachments: Vec<AttachmentInfo>,
    /// CID of the index shard holding the record's keywords (none without keywords).
    pub shard_cid: Option<String>,
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
    pub manifest_cid: String,
    /// The attachments.
    pub attachments: Vec<AttachmentInfo>,
    dek: DataKey,
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

/// A verified search result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct SearchHit {
    /// The matching record.
    pub record: RecordId,
    /// Its owner (the partition's publisher).
    pub owner: Address,
}

/// The outcome of [`Vault::search`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SearchResults {
    /// Verified hits, ordered by record id.
    pub hits: Vec<SearchHit>,
    /// Partitions the user could open but that failed verification (skipped).
    pub rejected: Vec<RejectedPartition>,
}

impl SearchResults {
    /// The matching record ids, ascending.
    pub fn records(&self) -> Vec<RecordId> {
        self.hits.iter().map(|h| h.record).collect()
    }
}

/// A published index partition that failed verification during a search.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedPartition {
    /// Who published it.
    pub publisher: Address,
    /// The partition id.
    pub partition: [u8; 32],
    /// Its epoch.
    pub epoch: u64,
    /// Why it was rejected.
    pub reason: String,
}

#[derive(Default)]
struct SearchCache {
    host: IndexHost,
    /// Roots of the shards inserted into `host`, per partition, in anchor order.
    loaded: HashMap<PartitionId, Vec<ShardRoot>>,
    /// Opened partition keys per (reader, partition); `None`: the policy is not satisfied.
    keys: HashMap<(Address, [u8; 32]), Option<PartitionKey>>,
}

/// Encrypted, searchable, auditable record storage over a [`ContentStore`] and a
/// [`Ledger`].
///
/// One `Vault` serves every member: operations take the acting [`Member`] (whose key
/// decrypts and whose signer sends the chain transactions). Owner operations are
/// serialised within the vault; use one vault per data directory per process.
pub struct Vault {
    dir: PathBuf,
    store: Arc<dyn ContentStore>,
    ledger: Arc<dyn Ledger>,
    pk: Option<fame::PublicKey>,
    owner_lock: tokio::sync::Mutex<()>,
    search: std::sync::Mutex<SearchCache>,
    progress: Option<Progress>,
}

impl core::fmt::Debug for Vault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Vault")
            .field("dir", &self.dir)
            .field("store", &self.store)
            .field("registry", &self.ledger.registry_address())
            .finish_non_exhaustive()
    }
}

fn policy_hash(policy: &Policy) -> [u8; 32] {
    Sha256::digest(policy.to_string().as_bytes()).into()
}

fn record_ref(record: RecordId) -> Result<RecordRef> {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&record.0.to_be_bytes());
    Ok(RecordRef::new(bytes)?)
}

fn record_of_ref(r: &RecordRef) -> Result<RecordId> {
    let bytes = r.as_bytes();
    let (id, rest) = bytes.split_at(8);
    if rest.iter().any(|&b| b != 0) {
        return Err(Error::Tampered(
            "index entry is not a record reference".into(),
        ));
    }
    let mut be = [0u8; 8];
    be.copy_from_slice(id);
    Ok(RecordId(u64::from_be_bytes(be)))
}

fn parse_cid(text: &str, what: &str) -> Result<Cid> {
    text.parse()
        .map_err(|e| Error::Tampered(format!("{what} points to an invalid CID {text:?}: {e}")))
}

/// The policy a record key is wrapped under.
fn capsule_policy(
    base: &Policy,
    owner: Address,
    grantees: impl IntoIterator<Item = Address>,
) -> Result<Policy> {
    let mut children = vec![base.clone(), Policy::attribute(&id_attribute(owner))?];
    for user in grantees {
        children.push(Policy::attribute(&id_attribute(user))?);
    }
    Ok(Policy::or(children)?)
}

impl Vault {
    /// Opens (creating if needed) the vault in `dir` with the backends selected by
    /// [`Config::load`] (`<dir>/medseal.json` and environment; by default the embedded
    /// `LocalStore` in `<dir>/blocks` and the embedded chain in `<dir>/chain.journal`).
    ///
    /// # Errors
    /// [`Error::Config`], [`Error::Io`], or the backend's error if it cannot be opened or
    /// reached.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let config = Config::load(dir)?;
        Self::open_with(dir, &config).await
    }

    /// Opens the vault in `dir` with an explicit configuration. If `config` names an
    /// Ethereum node but no registry, one is deployed (with `config.eth_key`) and its
    /// address written to `<dir>/medseal.json`.
    ///
    /// # Errors
    /// As for [`Vault::open`].
    pub async fn open_with(dir: impl AsRef<Path>, config: &Config) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let store: Arc<dyn ContentStore> = match &config.ipfs_api {
            Some(url) => Arc::new(KuboStore::new(url.clone())?),
            None => Arc::new(LocalStore::open(dir.join("blocks")).await?),
        };
        let ledger: Arc<dyn Ledger> = match &config.eth_rpc {
            None => Arc::new(EmbeddedChain::open(
                dir.join("chain.journal"),
                PrivateKeySigner::random(),
            )?),
            Some(url) => {
                let signer = match &config.eth_key {
                    Some(hex_key) => hex_key
                        .trim_start_matches("0x")
                        .parse::<PrivateKeySigner>()
                        .map_err(|e| Error::Config(format!("eth_key: {e}")))?,
                    None => PrivateKeySigner::random(),
                };
                match &config.registry {
                    Some(address) => {
                        let address: Address = address
                            .parse()
                            .map_err(|e| Error::Config(format!("registry {address:?}: {e}")))?;
                        Arc::new(RpcChain::connect(url, signer, address).await?)
                    }
                    None => {
                        if config.eth_key.is_none() {
                            return Err(Error::Config(
                                "eth_rpc is set but neither registry nor eth_key: set \
                                 MEDSEAL_REGISTRY to a deployed registry, or MEDSEAL_ETH_KEY \
                                 to a funded key to deploy one"
                                    .into(),
                            ));
                        }
                        let chain = RpcChain::deploy(url, signer).await?;
                        let mut saved = Config::from_file(dir)?;
                        saved.eth_rpc = Some(url.clone());
                        saved.registry = Some(chain.registry_address().to_string());
                        saved.save(dir)?;
                        Arc::new(chain)
                    }
                }
            }
        };
        Self::with_backends(dir, store, ledger)
    }

    /// A vault over explicit backends; `dir` holds the authority public key and the
    /// owners' private index state.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Corrupt`] if the stored public key cannot be read.
    pub fn with_backends(
        dir: impl AsRef<Path>,
        store: Arc<dyn ContentStore>,
        ledger: Arc<dyn Ledger>,
    ) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        let pk = read_optional(&dir.join(AUTHORITY_PUBLIC_KEY_FILE))?
            .map(|bytes| fame::PublicKey::from_bytes(&bytes))
            .transpose()?;
        Ok(Self {
            dir,
            store,
            ledger,
            pk,
            owner_lock: tokio::sync::Mutex::new(()),
            search: std::sync::Mutex::new(SearchCache::default()),
            progress: None,
        })
    }

    /// Reports attachment bytes as they are encrypted or decrypted.
    pub fn set_progress(&mut self, progress: Progress) {
        self.progress = Some(progress);
    }

    /// Installs the attribute authority's public key (written to
    /// `<dir>/authority.pub`). Every member of a deployment must use the same one.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be written; [`Error::InvalidInput`] if a different key is
    /// already installed.
    pub fn install_authority(&mut self, pk: &fame::PublicKey) -> Result<()> {
        if let Some(existing) = &self.pk {
            if existing == pk {
                return Ok(());
            }
            return Err(Error::InvalidInput(format!(
                "{} already holds a different authority public key",
                self.dir.join(AUTHORITY_PUBLIC_KEY_FILE).display()
            )));
        }
        write_atomic(
            &self.dir.join(AUTHORITY_PUBLIC_KEY_FILE),
            &pk.to_bytes(),
            false,
        )?;
        self.pk = Some(pk.clone());
        Ok(())
    }

    /// The authority's public key.
    ///
    /// # Errors
    /// [`Error::NoAuthority`] if none is installed.
    pub fn public_key(&self) -> Result<&fame::PublicKey> {
        self.pk
            .as_ref()
            .ok_or_else(|| Error::NoAuthority(self.dir.clone()))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The content store.
    pub fn store(&self) -> &Arc<dyn ContentStore> {
        &self.store
    }

    /// The ledger (signing as an arbitrary account; use [`Ledger::for_signer`] to act).
    pub fn ledger(&self) -> &Arc<dyn Ledger> {
        &self.ledger
    }

    fn acting(&self, member: &Member) -> Arc<dyn Ledger> {
        self.ledger.for_signer(member.signer().clone())
    }

    async fn record_info(&self, record: RecordId) -> Result<RecordInfo> {
        self.ledger
            .record(record)
            .await
            .map_err(Error::unknown_or(record))
    }

    async fn owned_record(&self, owner: &Member, record: RecordId) -> Result<RecordInfo> {
        let info = self.record_info(record).await?;
        if info.owner != owner.address() {
            return Err(Error::NotOwner {
                record: record.0,
                owner: info.owner.to_string(),
            });
        }
        Ok(info)
    }

    async fn fetch_manifest(&self, info: &RecordInfo) -> Result<Manifest> {
        let cid = parse_cid(&info.manifest_cid, "the chain")?;
        let bytes = self.store.get(&cid).await?;
        let manifest = Manifest::from_bytes(&bytes)?;
        if policy_hash(&manifest.policy()?) != info.policy_hash {
            return Err(Error::Tampered(format!(
                "manifest of record {} is wrapped under a policy the chain does not record",
                info.record.0
            )));
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
        record.validate()?;
        let pk = self.public_key()?;
        let _guard = self.owner_lock.lock().await;
        let ledger = self.acting(owner);
        let mut state = OwnerState::load(&self.dir, owner.address())?;
        self.complete_pending(&*ledger, owner, &mut state, false)
            .await?;

        let dek = DataKey::generate(&mut OsRng);
        let mut attachments = Vec::with_capacity(record.attachments.len());
        for (index, a) in record.attachments.into_iter().enumerate() {
            let (cid, size) = pipe::seal_to_store(
                &*self.store,
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
        let wrapped = capsule_policy(&record.policy, owner.address(), [])?;
        let manifest = Manifest::seal(pk, &wrapped, &dek, &body, &mut OsRng)?;
        let manifest_cid = self
            .store
            .put(manifest.to_bytes().into(), PutOptions::new().with_pin(true))
            .await?
            .to_string();

        let mut keywords: Vec<String> = record
            .keywords
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect();
        keywords.sort();
        keywords.dedup();
        if !keywords.is_empty() {
            self.ensure_partition(&*ledger, owner, &mut state, &record.policy)
                .await?;
        }
        state.pending = Some(PendingPut {
            manifest_cid: manifest_cid.clone(),
            policy_hash: hex::encode(policy_hash(&wrapped)),
            policy: record.policy.to_string(),
            keywords,
        });
        state.save(&self.dir, owner.address())?;
        let (id, shard_cid) = self
            .complete_pending(&*ledger, owner, &mut state, true)
            .await?
            .ok_or_else(|| Error::corrupt("owner state", "pending put vanished"))?;
        Ok(PutReceipt {
            record: id,
            manifest_cid,
            attachments,
            shard_cid,
        })
    }

    /// Completes a put of `owner` that a crash interrupted (if any); returns its record.
    /// Called by every owner operation; call it directly after a restart to finish the
    /// work early.
    ///
    /// # Errors
    /// Storage and chain errors (the intent stays persisted; call again).
    pub async fn recover(&self, owner: &Member) -> Result<Option<RecordId>> {
        let _guard = self.owner_lock.lock().await;
        let ledger = self.acting(owner);
        let mut state = OwnerState::load(&self.dir, owner.address())?;
        Ok(self
            .complete_pending(&*ledger, owner, &mut state, false)
            .await?
            .map(|(id, _)| id))
    }

    async fn complete_pending(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        state: &mut OwnerState,
        fresh: bool,
    ) -> Result<Option<(RecordId, Option<String>)>> {
        let Some(pending) = state.pending.clone() else {
            return Ok(None);
        };
        let address = owner.address();
        // 1. The record on chain: created before a crash (found by its manifest CID), or
        // create it now. A fresh intent cannot have been sent yet: nothing to look for.
        let mut found = None;
        if !fresh {
            for id in ledger.records_of(address).await?.into_iter().rev() {
                if ledger.record(id).await?.manifest_cid == pending.manifest_cid {
                    found = Some(id);
                    break;
                }
            }
        }
        let id = match found {
            Some(id) => id,
            None => {
                let hash = hex32(&pending.policy_hash, "owner state")?;
                ledger
                    .create_record(&pending.manifest_cid, hash)
                    .await?
                    .record
            }
        };
        // 2. The index shard, then its anchor. Building is deterministic (same key,
        // counters, keywords and record), so after a crash anywhere in here the same shard
        // is rebuilt and matched against whatever the chain anchored; the advanced counters
        // are committed only with the final state write below.
        let mut shard_cid = None;
        if !pending.keywords.is_empty() {
            let policy: Policy = pending.policy.parse()?;
            let part = state
                .partition_mut(&pending.policy)
                .ok_or_else(|| Error::corrupt("owner state", "pending put has no partition"))?;
            let mut owner_part = resume_partition(address, &policy, part)?;
            let keywords = pending
                .keywords
                .iter()
                .map(|k| Keyword::parse(k))
                .collect::<core::result::Result<Vec<_>, _>>()?;
            let reference = record_ref(id)?;
            let shard = owner_part.batch(keywords.iter().map(|k| (k, reference)))?;
            let cid = self
                .store
                .put(shard.to_bytes().into(), PutOptions::new().with_pin(true))
                .await?
                .to_string();
            let root = *shard.root().as_bytes();
            let pid = *owner_part.id().as_bytes();
            let slot = part.next_slot;
            match ledger.index_anchor(address, pid, slot).await? {
                Some(anchor) if anchor.merkle_root == root => {}
                Some(_) => {
                    return Err(Error::corrupt(
                        "owner state",
                        "the chain anchors a different shard in this slot",
                    ));
                }
                None => {
                    ledger.anchor_index(pid, slot, &cid, root).await?;
                }
            }
            part.index = hex::encode(owner_part.to_bytes().as_slice());
            part.next_slot = slot + 1;
            shard_cid = Some(cid);
        }
        state.pending = None;
        state.save(&self.dir, address)?;
        Ok(Some((id, shard_cid)))
    }

    /// Makes sure `owner` has a published index partition for `policy`.
    async fn ensure_partition(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        state: &mut OwnerState,
        policy: &Policy,
    ) -> Result<()> {
        let text = policy.to_string();
        if state.partition_mut(&text).is_none() {
            let partition = Partition::new(owner.address().as_slice(), policy.clone(), 0)?;
            let created = OwnerPartition::create(partition, &mut OsRng);
            state.partitions.push(PartitionState {
                policy: text.clone(),
                epoch: 0,
                key: hex::encode(created.key().as_bytes()),
                next_slot: 0,
                index: hex::encode(created.to_bytes().as_slice()),
                published: false,
            });
            state.save(&self.dir, owner.address())?;
        }
        self.publish_partition(ledger, owner, state, &text).await
    }

    /// Publishes the capsule of the current partition of `policy_text` if the chain does
    /// not have it yet.
    async fn publish_partition(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        state: &mut OwnerState,
        policy_text: &str,
    ) -> Result<()> {
        let address = owner.address();
        let part = state
            .partition_mut(policy_text)
            .ok_or_else(|| Error::corrupt("owner state", "missing partition"))?;
        if part.published {
            return Ok(());
        }
        let policy: Policy = policy_text.parse()?;
        let partition = Partition::new(address.as_slice(), policy.clone(), part.epoch)?;
        let pid = *partition.id().as_bytes();
        if ledger.capsule(address, pid, part.epoch).await?.is_none() {
            let key = PartitionKey::from_bytes(hex32(&part.key, "owner state")?);
            let capsule = Capsule::seal(self.public_key()?, &partition, &key, &mut OsRng)?;
            let cid = self
                .store
                .put(
                    capsule.as_bytes().to_vec().into(),
                    PutOptions::new().with_pin(true),
                )
                .await?;
            ledger
                .publish_capsule(pid, part.epoch, &cid.to_string(), policy_hash(&policy))
                .await?;
        }
        part.published = true;
        state.save(&self.dir, address)
    }

    /// Opens a record with `reader`'s key: fetches the manifest the chain points to
    /// (verified against its CID and the chain's policy hash), unwraps the record key and
    /// decrypts the manifest. If the chain lets `reader` log accesses (owner or grantee),
    /// the access is recorded in the audit trail.
    ///
    /// # Errors
    /// [`Error::UnknownRecord`], [`Error::AccessDenied`] if the reader's attributes do
    /// not satisfy the record's policy, [`Error::Tampered`] if anything fails
    /// verification.
    pub async fn get(&self, reader: &Member, record: RecordId) -> Result<OpenedRecord> {
        let info = self.record_info(record).await?;
        let manifest = self.fetch_manifest(&info).await?;
        let dek = match manifest.open_key(reader.key()) {
            Ok(dek) => dek,
            Err(crate::abe::Error::PolicyNotSatisfied) => {
                return Err(Error::AccessDenied { record: record.0 });
            }
            Err(e) => return Err(e.into()),
        };
        let body = manifest.open_body(&dek)?;
        let policy: Policy = body.policy.parse()?;
        let address = reader.address();
        if info.owner == address || self.ledger.can_access(record, address).await? {
            self.acting(reader).log_access(record).await?;
        }
        Ok(OpenedRecord {
            record,
            owner: info.owner,
            name: body.name,
            policy,
            capsule_policy: manifest.policy()?,
            manifest_cid: info.manifest_cid,
            attachments: body.attachments,
            dek,
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
            Error::InvalidInput(format!(
                "record {} has {} attachments, no index {index}",
                record.record.0,
                record.attachments.len()
            ))
        })?;
        let cid = parse_cid(&info.cid, "the manifest")?;
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
            return Err(Error::Tampered(format!(
                "attachment {index} decrypted to {} bytes, the manifest says {size}",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Finds the records whose owners indexed `keyword` in a partition `user` can open.
    ///
    /// For every published partition capsule: checks it against the chain (CID,
    /// partition id, policy hash), opens it if the user's attributes satisfy its policy
    /// (one CP-ABE decryption per partition, cached), loads the partition's anchored
    /// shards (each verified against its CID and on-chain Merkle root), derives the
    /// search token, and verifies the answer's membership and absence proofs against the
    /// anchored roots; each hit must be a record its partition's publisher owns. The
    /// index host (here in-process) learns neither keyword nor results.
    ///
    /// Anyone can publish a partition on chain, so a partition that fails verification
    /// does not fail the search: it is skipped and reported in
    /// [`SearchResults::rejected`] (a tampered shard, a forged anchor, a capsule that
    /// does not match, a hit naming someone else's record).
    ///
    /// # Errors
    /// Storage and chain failures (unreachable node, timeouts).
    pub async fn search(&self, user: &Member, keyword: &Keyword) -> Result<SearchResults> {
        let mut results = SearchResults::default();
        let mut hits = BTreeSet::new();
        for entry in self.ledger.capsules(None).await? {
            match self.search_partition(user, &entry, keyword).await {
                Ok(found) => hits.extend(found),
                Err(Error::Storage(e)) if !matches!(e, StorageError::NotFound { .. }) => {
                    return Err(Error::Storage(e));
                }
                Err(Error::Ledger(e)) => return Err(Error::Ledger(e)),
                Err(e) => results.rejected.push(RejectedPartition {
                    publisher: entry.publisher,
                    partition: entry.partition,
                    epoch: entry.epoch,
                    reason: e.to_string(),
                }),
            }
        }
        results.hits = hits.into_iter().collect();
        Ok(results)
    }

    async fn search_partition(
        &self,
        user: &Member,
        entry: &CapsuleEntry,
        keyword: &Keyword,
    ) -> Result<Vec<SearchHit>> {
        let Some(key) = self.partition_key(user, entry).await? else {
            return Ok(Vec::new());
        };
        let roots = self.load_partition(entry).await?;
        if roots.is_empty() {
            return Ok(Vec::new());
        }
        let pid = PartitionId::from_bytes(entry.partition);
        let kw = KeywordKey::derive(&pid, &key, keyword);
        let answer = self.search_cache()?.host.prove(&kw.token());
        let mut hits = Vec::new();
        for r in kw.verify(&roots, &answer)? {
            let record = record_of_ref(&r)?;
            let owner = self.record_info(record).await?.owner;
            if owner != entry.publisher {
                return Err(Error::Tampered(format!(
                    "partition of {} lists record {record}, owned by {owner}",
                    entry.publisher
                )));
            }
            hits.push(SearchHit { record, owner });
        }
        Ok(hits)
    }

    fn search_cache(&self) -> Result<std::sync::MutexGuard<'_, SearchCache>> {
        self.search
            .lock()
            .map_err(|_| Error::corrupt("search cache", "poisoned by a panic"))
    }

    async fn partition_key(
        &self,
        user: &Member,
        entry: &CapsuleEntry,
    ) -> Result<Option<PartitionKey>> {
        let cache_key = (user.address(), entry.partition);
        if let Some(cached) = self.search_cache()?.keys.get(&cache_key) {
            return Ok(cached.clone());
        }
        let cid = parse_cid(&entry.capsule_cid, "a published capsule")?;
        let capsule = Capsule::from_bytes(&self.store.get(&cid).await?)
            .map_err(|e| Error::Tampered(format!("capsule {cid}: {e}")))?;
        let policy = capsule.policy()?;
        let pid = Partition::new(entry.publisher.as_slice(), policy.clone(), entry.epoch)?.id();
        if policy_hash(&policy) != entry.policy_hash || *pid.as_bytes() != entry.partition {
            return Err(Error::Tampered(format!(
                "capsule {cid} does not match the partition published on chain"
            )));
        }
        let key = if policy.is_satisfied_by(user.attributes()) {
            Some(capsule.open(user.key(), &pid)?)
        } else {
            None
        };
        self.search_cache()?.keys.insert(cache_key, key.clone());
        Ok(key)
    }

    /// Loads the anchored shards of a partition into the host; returns their roots in
    /// anchor order.
    async fn load_partition(&self, entry: &CapsuleEntry) -> Result<Vec<ShardRoot>> {
        let pid = PartitionId::from_bytes(entry.partition);
        let anchors = self
            .ledger
            .index_anchors(entry.publisher, entry.partition)
            .await?;
        for (slot, anchor) in anchors.iter().enumerate() {
            if anchor.epoch != slot as u64 {
                return Err(Error::Tampered(format!(
                    "index anchors of partition {} skip slot {slot}",
                    hex::encode(entry.partition)
                )));
            }
        }
        let loaded = self.search_cache()?.loaded.get(&pid).map_or(0, Vec::len);
        for anchor in anchors.iter().skip(loaded) {
            let cid = parse_cid(&anchor.shard_cid, "an index anchor")?;
            let shard = Shard::from_bytes(&self.store.get(&cid).await?)
                .map_err(|e| Error::Tampered(format!("shard {cid}: {e}")))?;
            let root = shard.root();
            if shard.partition() != &pid || root.as_bytes() != &anchor.merkle_root {
                return Err(Error::Tampered(format!(
                    "shard {cid} does not match its on-chain anchor"
                )));
            }
            let mut cache = self.search_cache()?;
            let have = cache.loaded.get(&pid).map_or(0, Vec::len);
            if have as u64 == anchor.epoch {
                cache.host.insert_shard(shard)?;
                cache.loaded.entry(pid).or_default().push(root);
            }
        }
        Ok(self
            .search_cache()?
            .loaded
            .get(&pid)
            .cloned()
            .unwrap_or_default())
    }

    /// Shares a record with a member (by address): grants access on chain and re-wraps
    /// only the record key under `policy or id:<owner> or id:<grantees…>`; the body and
    /// attachments are not re-encrypted or re-uploaded. Idempotent.
    ///
    /// # Errors
    /// [`Error::UnknownRecord`], [`Error::NotOwner`], storage and chain errors.
    pub async fn share(&self, owner: &Member, record: RecordId, user: Address) -> Result<()> {
        let _guard = self.owner_lock.lock().await;
        let ledger = self.acting(owner);
        let info = self.owned_record(owner, record).await?;
        if ledger.access_state(record, user).await? != AccessState::Granted {
            ledger.grant_access(record, user).await?;
        }
        self.rewrap(&*ledger, owner, &info).await?;
        Ok(())
    }

    /// Revokes a member's access: on-chain revoke; a **new record key**, under which the
    /// attachments are re-encrypted (streamed store → store) and the manifest re-sealed
    /// for the owner and the remaining grantees; the chain's pointer moves to the new
    /// manifest and the old objects are unpinned; then the owner's index partition for
    /// the record's policy rotates to a new epoch (entries added from now on are
    /// unlinkable to search tokens derived before).
    ///
    /// What revocation cannot do: a member who already read the record keeps what they
    /// read; copies of the old ciphertext fetched (or cached by other IPFS nodes) before
    /// the old objects are garbage-collected stay readable with the old record key; a
    /// member whose *attributes* satisfy the base policy still can read — change the
    /// policy or have the authority stop issuing those attributes. Idempotent: if it
    /// fails midway, call it again.
    ///
    /// # Errors
    /// As for [`Vault::share`].
    pub async fn revoke(&self, owner: &Member, record: RecordId, user: Address) -> Result<()> {
        let _guard = self.owner_lock.lock().await;
        let ledger = self.acting(owner);
        let info = self.owned_record(owner, record).await?;
        if ledger.access_state(record, user).await? == AccessState::Granted {
            ledger.revoke_access(record, user).await?;
        }
        let base = self.rekey(&*ledger, owner, &info).await?;
        self.rotate(&*ledger, owner, &base).await
    }

    /// Re-encrypts the record under a new key for the grantees the chain currently lists;
    /// returns the base policy.
    async fn rekey(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        info: &RecordInfo,
    ) -> Result<Policy> {
        let manifest = self.fetch_manifest(info).await?;
        let old = manifest.open_key(owner.key())?;
        let mut body = manifest.open_body(&old)?;
        let base: Policy = body.policy.parse()?;
        let wanted = capsule_policy(&base, owner.address(), self.grantees(info.record).await?)?;
        let new = DataKey::generate(&mut OsRng);
        let mut superseded = vec![parse_cid(&info.manifest_cid, "the chain")?];
        for (index, attachment) in body.attachments.iter_mut().enumerate() {
            let cid = parse_cid(&attachment.cid, "the manifest")?;
            let fresh = pipe::reseal_in_store(
                &*self.store,
                &cid,
                &old,
                &new,
                attachment_aad(index as u32),
                attachment.name.clone(),
            )
            .await?;
            attachment.cid = fresh.to_string();
            superseded.push(cid);
        }
        let sealed = Manifest::seal(self.public_key()?, &wanted, &new, &body, &mut OsRng)?;
        let cid = self
            .store
            .put(sealed.to_bytes().into(), PutOptions::new().with_pin(true))
            .await?;
        ledger
            .update_record(info.record, &cid.to_string(), policy_hash(&wanted))
            .await?;
        for old_cid in superseded {
            if let Err(e) = self.store.unpin(&old_cid).await {
                tracing::warn!(cid = %old_cid, error = %e, "could not unpin a superseded object");
            }
        }
        Ok(base)
    }

    /// Re-wraps the record key for the grantees the chain currently lists; returns the
    /// base policy.
    async fn rewrap(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        info: &RecordInfo,
    ) -> Result<Policy> {
        let mut manifest = self.fetch_manifest(info).await?;
        let dek = manifest.open_key(owner.key())?;
        let body = manifest.open_body(&dek)?;
        let base: Policy = body.policy.parse()?;
        let grantees = self.grantees(info.record).await?;
        let wanted = capsule_policy(&base, owner.address(), grantees)?;
        if wanted.to_string() != manifest.policy()?.to_string() {
            manifest.rewrap(self.public_key()?, &wanted, &dek, &mut OsRng)?;
            let cid = self
                .store
                .put(manifest.to_bytes().into(), PutOptions::new().with_pin(true))
                .await?;
            ledger
                .update_record(info.record, &cid.to_string(), policy_hash(&wanted))
                .await?;
        }
        Ok(base)
    }

    async fn grantees(&self, record: RecordId) -> Result<BTreeSet<Address>> {
        let mut users = BTreeSet::new();
        for entry in self.ledger.audit_trail(record).await? {
            match entry.event {
                AuditEvent::AccessGranted { user } => {
                    users.insert(user);
                }
                AuditEvent::AccessRevoked { user } => {
                    users.remove(&user);
                }
                _ => {}
            }
        }
        Ok(users)
    }

    async fn rotate(&self, ledger: &dyn Ledger, owner: &Member, policy: &Policy) -> Result<()> {
        let mut state = OwnerState::load(&self.dir, owner.address())?;
        self.complete_pending(ledger, owner, &mut state, false)
            .await?;
        let text = policy.to_string();
        let Some(part) = state.partition_mut(&text) else {
            return Ok(()); // nothing indexed under this policy yet
        };
        if part.next_slot == 0 {
            return Ok(()); // the current epoch holds no entries: nothing to rotate away from
        }
        let current = resume_partition(owner.address(), policy, part)?;
        let next = current.rotate(policy.clone(), &mut OsRng)?;
        *part = PartitionState {
            policy: text.clone(),
            epoch: next.partition().epoch(),
            key: hex::encode(next.key().as_bytes()),
            next_slot: 0,
            index: hex::encode(next.to_bytes().as_slice()),
            published: false,
        };
        state.save(&self.dir, owner.address())?;
        self.publish_partition(ledger, owner, &mut state, &text)
            .await
    }

    /// `user` asks the owner of `record` for access (recorded on chain).
    ///
    /// # Errors
    /// [`Error::UnknownRecord`]; chain errors (e.g. a request already pending).
    pub async fn request_access(&self, user: &Member, record: RecordId) -> Result<()> {
        self.acting(user)
            .request_access(record)
            .await
            .map_err(Error::unknown_or(record))?;
        Ok(())
    }

    /// Pending access requests for records `owner` owns.
    ///
    /// # Errors
    /// Chain errors.
    pub async fn pending_requests(&self, owner: &Member) -> Result<Vec<AccessRequest>> {
        Ok(self.ledger.pending_requests(owner.address()).await?)
    }

    /// Answers a pending request: `approve` shares the record with the requester
    /// ([`Vault::share`]); otherwise the request is denied on chain.
    ///
    /// # Errors
    /// As for [`Vault::share`]; denying fails if no request is pending.
    pub async fn answer_request(
        &self,
        owner: &Member,
        record: RecordId,
        requester: Address,
        approve: bool,
    ) -> Result<()> {
        if approve {
            return self.share(owner, record, requester).await;
        }
        self.owned_record(owner, record).await?;
        self.acting(owner).deny_access(record, requester).await?;
        Ok(())
    }

    /// Records owned by `owner`, oldest first (public chain data).
    ///
    /// # Errors
    /// Chain errors.
    pub async fn records_of(&self, owner: Address) -> Result<Vec<RecordInfo>> {
        self.infos(self.ledger.records_of(owner).await?).await
    }

    /// Records currently shared with `user` (granted, not revoked).
    ///
    /// # Errors
    /// Chain errors.
    pub async fn shared_with(&self, user: Address) -> Result<Vec<RecordInfo>> {
        self.infos(self.ledger.shared_with(user).await?).await
    }

    async fn infos(&self, ids: Vec<RecordId>) -> Result<Vec<RecordInfo>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.record_info(id).await?);
        }
        Ok(out)
    }

    /// The record's audit trail: every chain event (created, updated, granted, revoked,
    /// requested, denied, accessed), oldest first.
    ///
    /// # Errors
    /// [`Error::UnknownRecord`]; chain errors.
    pub async fn audit(&self, record: RecordId) -> Result<Vec<AuditEntry>> {
        self.record_info(record).await?;
        Ok(self.ledger.audit_trail(record).await?)
    }
}

fn resume_partition(
    owner: Address,
    policy: &Policy,
    part: &PartitionState,
) -> Result<OwnerPartition> {
    let partition = Partition::new(owner.as_slice(), policy.clone(), part.epoch)?;
    let key = PartitionKey::from_bytes(hex32(&part.key, "owner state")?);
    let bytes = hex::decode(&part.index).map_err(|e| Error::corrupt("owner state", e))?;
    let state = OwnerPartition::from_bytes(&bytes)?;
    if state.partition() != &partition
        || state.key() != &key
        || state.next_shard_seq() != part.next_slot
    {
        return Err(Error::corrupt(
            "owner state",
            "index state does not match its partition",
        ));
    }
    Ok(state)
}
