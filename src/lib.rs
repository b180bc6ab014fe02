#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub use medseal_abe as abe;
pub use medseal_chain as chain;
pub use medseal_index as index;
pub use medseal_storage as storage;

#[doc(hidden)]
pub mod __fuzz;
mod config;
pub mod custody;
mod error;
mod fsutil;
mod identity;
mod manifest;
pub mod notes;
mod pipe;
mod state;
pub mod validity;
mod vault;
pub mod versions;

pub use chain::{Address, AuditEntry, AuditEvent, PrivateKeySigner, RecordId, RecordInfo};
pub use config::{CONFIG_FILE, Config, RPC_LOG_CACHE_FILE, embedded_deployer};
pub use custody::{AuthorityShare, KdfParams, ShareError, is_sealed, is_sealed_member};
pub use error::{
    ConfigError, Corruption, Error, InvalidInput, Pointer, Result, Standing, Tampering,
};
pub use fsutil::AtomicFile;
pub use identity::{Authority, MAX_NAME_LEN, Member, id_attribute};
pub use index::Keyword;
pub use manifest::{AttachmentInfo, MAX_ATTACHMENTS, MAX_MANIFEST_BYTES};
pub use pipe::Progress;
pub use validity::{Clock, Month, Validity};
pub use vault::{
    AUTHORITY_PUBLIC_KEY_FILE, Adoption, Attachment, BULK_BATCH, COMPACTION_PROGRESS, CompactScope,
    CompactionReport, EMERGENCY_ATTRIBUTE, INDEX_CACHE_FILE, Listing, MAX_EMERGENCY_REASON_LEN,
    MAX_IDEMPOTENCY_KEY_LEN, MAX_KEYWORDS, MAX_RECORD_NAME_LEN, NewRecord, OpenedRecord,
    PutOutcome, PutReceipt, RecordContent, RecordPage, RejectedPartition, RevocationReport,
    RewrapReport, SEARCH_KEYS_DIR, SearchHit, SearchResults, TITLES_DIR, Vault,
};
pub use versions::{AttributeVersions, attribute_hash, versioned_policy};
