//! Content-addressed storage for medseal.
//!
//! - [`ContentStore`]: the object-safe async interface every backend
//!   implements (`Arc<dyn ContentStore>`), with verified reads.
//! - [`DagBuilder`], [`cid_of_reader`], [`cid_of_bytes`]: UnixFS DAGs and
//!   CIDs identical to Kubo's `ipfs add` (CIDv0 / CIDv1 with raw leaves).
//! - [`LocalStore`]: crash-safe directory blockstore with pins and GC.
//! - [`MemoryStore`]: in-memory store.
//! - [`CachedStore`]: bounded LRU read-through cache in front of any store.
//! - [`KuboStore`]: trustless client of a Kubo/js-ipfs node's RPC API.
//! - [`export_car`] / [`export_car_roots`] / [`import_car`]: CAR v1, for
//!   `ipfs dag import`/`export`; every store takes imported blocks
//!   ([`BlockSink`]).
//! - [`BlockingRuntime`]: drives the async API from synchronous code.

#[doc(hidden)]
pub mod __fuzz;
mod block;
mod blocking;
mod cache;
mod car;
mod cid;
mod dag_builder;
mod dag_pb;
mod dag_reader;
mod error;
mod kubo;
mod local;
mod memory;
mod multibase;
mod protobuf;
mod store;
mod unixfs;
mod varint;

pub use block::Block;
pub use blocking::BlockingRuntime;
pub use cache::{CacheStats, CachedStore};
pub use car::{CarImport, export_car, export_car_roots, import_car};
pub use cid::{Cid, CidError, CidVersion, Codec};
pub use dag_builder::{
    CHUNK_SIZE, DagBuilder, FinishedDag, ImportFormat, MAX_LINKS, cid_of_bytes, cid_of_reader,
};
pub use error::{BoxError, Result, StorageError};
pub use kubo::{KuboConfig, KuboStore};
pub use local::{LocalStats, LocalStore, StoredBlockInfo, VerifyReport};
pub use memory::MemoryStore;
pub use store::{
    BlockSink, ByteStream, ContentStore, GcReport, PutBatch, PutOptions, bytes_as_stream,
    write_stream_to,
};

/// The byte buffer type of the API (re-exported so callers need not depend
/// on `bytes` themselves).
pub use bytes::Bytes;
