//! [`Vault`]: the end-to-end API over a content store and a ledger.
//!
//! One file per concept: [`records`] (put, get, read), [`search`], [`access`] (sharing,
//! revocation, requests, listings, audit), [`titles`] (record titles for listings),
//! [`owner`] (the owner's index state and the recovery of interrupted puts), [`compact`]
//! (major index compaction), [`car`] (moving records between stores) and [`registry`]
//! (the member registry, attribute versions and re-wrapping after a revocation).

mod access;
mod car;
mod compact;
mod keycache;
mod owner;
mod records;
mod registry;
mod search;
mod titles;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand_core::OsRng;

use crate::abe::{Encoding, Fame, Policy, Scheme, fame};
use crate::chain::{Address, Ledger, RecordId, RecordInfo};
use crate::config::Config;
use crate::error::{Error, InvalidInput, Pointer, Result, Tampering};
use crate::fsutil::{read_optional, write_atomic};
use crate::identity::{Member, id_attribute};
use crate::pipe::Progress;
use crate::storage::{Cid, ContentStore, GcReport};
use crate::validity::Clock;

pub use access::{Listing, RecordPage};
pub use car::RecordContent;
pub use compact::{COMPACTION_PROGRESS, CompactScope, CompactionReport};
pub use keycache::SEARCH_KEYS_DIR;
pub use records::{
    Attachment, BULK_BATCH, EMERGENCY_ATTRIBUTE, MAX_EMERGENCY_REASON_LEN, MAX_IDEMPOTENCY_KEY_LEN,
    MAX_KEYWORDS, MAX_RECORD_NAME_LEN, NewRecord, OpenedRecord, PutOutcome, PutReceipt,
};
pub use registry::{Adoption, RevocationReport, RewrapReport};
pub use search::{INDEX_CACHE_FILE, RejectedPartition, SearchHit, SearchResults};
pub use titles::TITLES_DIR;

/// File (in the data directory) holding the attribute authority's public key.
pub const AUTHORITY_PUBLIC_KEY_FILE: &str = "authority.pub";

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
    /// Shared, so that its hash-to-curve cache serves every encryption (a clone of the key
    /// starts with an empty cache).
    pk: Option<Arc<fame::PublicKey>>,
    owner_lock: tokio::sync::Mutex<()>,
    /// Owners' private index states kept decoded between owner operations (see
    /// `Vault::owner_state`).
    owner_states: std::sync::Mutex<std::collections::HashMap<Address, crate::state::OwnerState>>,
    search: std::sync::Mutex<search::SearchCache>,
    /// Members whose key was checked to come from the installed authority.
    checked: std::sync::Mutex<HashSet<Address>>,
    /// Title caches read so far, by the digest of their key (see `titles`): a listing
    /// reads only what other processes appended since.
    title_caches: std::sync::Mutex<std::collections::HashMap<[u8; 32], titles::TitleCache>>,
    progress: Option<Progress>,
    /// Dates what the vault creates (records, shares, partition epochs).
    clock: Clock,
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

fn parse_cid(text: &str, pointer: Pointer) -> Result<Cid> {
    text.parse().map_err(|_| {
        Error::Tampered(Tampering::InvalidCid {
            pointer,
            text: text.to_owned(),
        })
    })
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
        let (store, ledger) = config.open_backends(dir).await?;
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
            .map(|bytes| fame::PublicKey::from_bytes(&bytes).map(Arc::new))
            .transpose()?;
        Ok(Self {
            dir,
            store,
            ledger,
            pk,
            owner_lock: tokio::sync::Mutex::new(()),
            owner_states: std::sync::Mutex::default(),
            checked: std::sync::Mutex::default(),
            title_caches: std::sync::Mutex::default(),
            search: std::sync::Mutex::new(search::SearchCache::default()),
            progress: None,
            clock: Clock::system(),
        })
    }

    /// Reports attachment bytes as they are encrypted or decrypted.
    pub fn set_progress(&mut self, progress: Progress) {
        self.progress = Some(progress);
    }

    /// Sets the clock that dates what this vault creates: records (their capsule's
    /// validity clause), shares and index partition epochs (see [`crate::validity`]).
    /// The default is [`Clock::system`], the system clock's UTC month.
    ///
    /// A fixed clock is for tests, replays, and imports that should be dated as of a
    /// given month. A clock set in the past lets keys that expired since read what the
    /// vault creates (as an owner could also choose by its policy); in the future, it
    /// keeps keys valid now from reading it. It is deliberately not a configuration
    /// setting: only the code that owns the vault sets it.
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// The clock that dates what this vault creates.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Installs the attribute authority's public key (written to
    /// `<dir>/authority.pub`). Every member of a deployment must use the same one.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be written; [`Error::InvalidInput`] if a different key is
    /// already installed.
    pub fn install_authority(&mut self, pk: &fame::PublicKey) -> Result<()> {
        if let Some(existing) = &self.pk {
            if **existing == *pk {
                return Ok(());
            }
            return Err(InvalidInput::OtherAuthority {
                path: self.dir.join(AUTHORITY_PUBLIC_KEY_FILE),
            }
            .into());
        }
        write_atomic(
            &self.dir.join(AUTHORITY_PUBLIC_KEY_FILE),
            &pk.to_bytes(),
            false,
        )?;
        self.pk = Some(Arc::new(pk.clone()));
        Ok(())
    }

    /// The authority's public key.
    ///
    /// # Errors
    /// [`Error::NoAuthority`] if none is installed.
    pub fn public_key(&self) -> Result<&fame::PublicKey> {
        self.pk
            .as_deref()
            .ok_or_else(|| Error::NoAuthority(self.dir.clone()))
    }

    /// The authority's public key, shared (for encryptions on blocking threads: its hash
    /// cache stays warm across records).
    pub(super) fn shared_public_key(&self) -> Result<Arc<fame::PublicKey>> {
        self.pk
            .clone()
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

    /// Removes the blocks of the content store that no pin reaches (see
    /// [`ContentStore::collect_garbage`]): what interrupted puts left behind (blocks
    /// committed before the put stopped; a put's temporary files are removed when it
    /// is cancelled, and by the next open after a crash), index shards that merges
    /// superseded, manifests that sharing replaced. With `dry_run`, only counts them.
    /// Every record stays readable: whatever a record, index or capsule needs is
    /// pinned before the chain names it, and puts under way wait for the collection
    /// (and it for them).
    ///
    /// # Errors
    /// [`Error::Storage`]: `StorageError::Unsupported` on an IPFS node (whose operator
    /// collects its garbage), or a pinned DAG that cannot be read completely (nothing
    /// is deleted then).
    pub async fn gc(&self, dry_run: bool) -> Result<GcReport> {
        Ok(self.store.collect_garbage(dry_run).await?)
    }

    /// The ledger (signing as an arbitrary account; use [`Ledger::for_signer`] to act).
    pub fn ledger(&self) -> &Arc<dyn Ledger> {
        &self.ledger
    }

    /// Refuses a member whose key another authority issued: everything it stored would be
    /// unreadable, even by itself. Checked once per member and vault by encapsulating to
    /// the member's own `id:` attribute under the installed public key and decapsulating
    /// with its key (no format change: keys carry no authority fingerprint).
    fn check_member(&self, member: &Member) -> Result<()> {
        let address = member.address();
        let cached = |set: &HashSet<Address>| set.contains(&address);
        if self.checked.lock().is_ok_and(|set| cached(&set)) {
            return Ok(());
        }
        let pk = self.public_key()?;
        let policy = Policy::attribute(&id_attribute(address))?;
        let (sent, ct) = Fame::encapsulate(pk, &policy, &mut OsRng)?;
        match Fame::decapsulate(member.key(), &ct) {
            Ok(got) if got == sent => {}
            _ => return Err(InvalidInput::ForeignKey { member: address }.into()),
        }
        if let Ok(mut set) = self.checked.lock() {
            set.insert(address);
        }
        Ok(())
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
}
