//! # medseal-chain
//!
//! The on-chain part of medseal: the `MedsealRegistry` Solidity contract
//! (`contracts/MedsealRegistry.sol`, compiled to the committed artifact
//! `contracts/MedsealRegistry.json`) and two ways to use it through one [`Ledger`] trait:
//!
//! * [`EmbeddedChain`] (the default): the committed bytecode runs in-process on revm with the
//!   PRAGUE rules; transactions are secp256k1-signed and the sender is recovered from the
//!   signature; one block per transaction, hash-chained; optionally persisted as an append-only
//!   checksummed journal that is replayed (and re-verified) on open and survives crashes.
//! * [`RpcChain`]: any Ethereum JSON-RPC node over HTTP (anvil in the tests), with a local
//!   signer, receipt waiting, typed revert decoding and bounded retries.
//!
//! A [`Ledger`] acts for one signing account (its [`sender`](Ledger::sender));
//! [`Ledger::for_signer`] (or the inherent `with_signer` of either type) gives a handle to the
//! same deployment that signs for another account, sharing the chain state or connection.
//!
//! A chain implements six required methods of [`Ledger`] (sender, registry address,
//! `for_signer`, and [`transact`](Ledger::transact) / [`call`](Ledger::call) /
//! [`logs`](Ledger::logs) against the registry); every registry operation is a provided method
//! on top of them. A wrapper that delegates the required methods can override single
//! operations (the vault's tests inject faults that way).
//!
//! Hashes, partition ids and Merkle roots are [`B256`]; content identifiers are opaque strings
//! to this crate (it never parses them).
//!
//! ## What the contract stores (gas design)
//!
//! Gas targets: [`gas_report::GAS_TARGETS`] budgets `createRecord`, `grantAccess` and
//! `anchorIndex`, independent of how many records exist (see `BENCHMARKS.md` for measured
//! numbers).
//!
//! * A record is two storage slots: owner + created/updated timestamps + flags packed in one, and
//!   `keccak256(abi.encode(keccak256(manifestCid), policyHash))`. Full CIDs and policy hashes
//!   appear only in calldata and events; [`Ledger::record`] takes them from the newest event
//!   matching the commitment. Record ids come from a counter that starts at 1 (set by the
//!   constructor), so each `createRecord` pays the same; [`Ledger::create_records`] creates many
//!   in one transaction (bulk import, about 50k gas per record in batches of 100).
//! * Access is one slot per (record, user): `None` / `Requested` / `Granted`.
//! * **There are no per-owner or per-user storage lists.** Appending to one would add ~22k gas
//!   to every create and grant. [`Ledger::records_of`] and [`Ledger::shared_with`] are answered
//!   from the indexed events (`RecordCreated.owner`, `AccessGranted.user`,
//!   `AccessRevoked.user`): every state change emits an event, so replaying them reproduces the
//!   access state exactly. The same events form the audit trail ([`Ledger::audit_trail`]).
//! * Index anchors and key capsules store one word each, keyed by (sender, partition,
//!   last batch), resp. (sender, partition, epoch): `keccak256(abi.encode(merkleRoot,
//!   firstSeq))`, resp. `keccak256(abi.encode(keccak256(capsuleCid), policyHash))`. A partition
//!   id already binds its epoch. An owner anchors every batch of a partition once, in order, as
//!   the last batch of a shard holding batches `firstSeq..=lastSeq` (alone, or merged with the
//!   newest earlier shards, which it supersedes). [`Ledger::index_head`] finds the number of
//!   anchored batches in one view call (O(log n) storage reads) and
//!   [`Ledger::live_index_anchors`] walks back from it through the live shards.
//!   [`Ledger::index_anchor`] and [`Ledger::capsule`] read the stored word and take the CID from
//!   the matching event; the listings [`Ledger::index_anchors`] (a partition's whole anchor
//!   history) and [`Ledger::capsules`] (all, or one publisher's) come from the indexed
//!   `IndexAnchored` / `CapsulePublished` events alone, again without any storage list.
//!
//! * A record may have a *subject* (the patient, [`Ledger::create_record_for`],
//!   [`Ledger::create_records_for`]). The header slot carries a flags byte (timestamps are
//!   40-bit) whose "has a subject" bit says whether a third slot holds the subject, so records
//!   without one cost what they did and the owner path of `grantAccess` reads one record slot.
//!
//! ## Patients, members and break-glass
//!
//! * **Consent.** The *controller* of a record is its subject if it has one, else its owner
//!   ([`Ledger::controller`], [`RecordInfo::controller`]). Only the controller grants, denies
//!   and revokes access; anyone else fails with [`LedgerError::NotController`], which names the
//!   controller. Requests are addressed to the controller (the indexed approver of
//!   `AccessRequested`, so [`Ledger::pending_requests`] of a patient is one topic query), and
//!   every decision names who decided ([`AuditEvent::AccessGranted`]`{ by, .. }`, ...). Owner
//!   and subject always read; only the owner updates. [`Ledger::records_about`] lists a
//!   patient's records from the indexed `RecordSubject` events.
//! * **Member registry.** The deployer is the *authority* ([`Ledger::authority`],
//!   [`Ledger::transfer_authority`]); it appoints and dismisses *registrars*
//!   ([`Ledger::appoint_registrar`], [`Ledger::registrars`]), e.g. one per hospital. The
//!   authority or a registrar registers members ([`Ledger::register_member`]: name, attributes
//!   issued and their digest, last valid month); the `MemberRegistered` event is the on-chain
//!   log of key issuance, and registering an active member again renews it. Storage keeps
//!   (registrar, validity, status) and the digest in two slots per member, read by
//!   [`Ledger::member`] and, for a list, [`Ledger::members_status`];
//!   [`Ledger::registered_members`] folds the events (names, attributes, revocations). The
//!   contract does not interpret time: the client compares the validity with its clock.
//!   [`Ledger::revoke_member`] revokes permanently, with a reason, and bumps the version of the
//!   listed attributes ([`attribute_hash`], [`Ledger::attribute_versions`]), so that records
//!   encrypted afterwards need a key issued after the bump.
//! * **Break-glass.** [`Ledger::log_emergency_access`] records who opens a record under an
//!   emergency role and why ([`AuditEvent::EmergencyAccess`]), before the key is opened. The
//!   contract cannot see ABE attributes, so anyone may log; that the log precedes every
//!   emergency read relies on the client.
//!
//! ## Contract build
//!
//! `contracts/build.sh` compiles the Solidity source with the exact solcjs version pinned in
//! `contracts/package-lock.json` (standard JSON, `evmVersion: prague`, `viaIR`, optimizer on, no
//! CBOR metadata) into `contracts/MedsealRegistry.json`; `contracts/check.sh` fails if the
//! committed artifact differs from a fresh build. The Rust bindings ([`bindings`]) are generated
//! from that artifact by `alloy::sol!` at compile time.
//!
//! ## Tests
//!
//! * `tests/conformance/`: one behavioural suite, run on the embedded chain (in memory and
//!   journaled, `tests/embedded_conformance.rs`) and on a JSON-RPC node
//!   (`tests/rpc_conformance.rs`). The node URL comes from `MEDSEAL_ETH_RPC` (loopback only;
//!   `scripts/anvil-node.sh start` prints it); unset, those tests are skipped with a notice,
//!   unless `CI=true`, where they fail.
//! * `tests/embedded_journal.rs`: replay, torn tails, tampering; `tests/crash_recovery.rs`:
//!   SIGKILLed child writers (the test binary re-executes itself) plus injected torn tails.
//! * `tests/gas_targets.rs`: the gas targets with 1,000 records present.
//! * `tests/ledger_wrapper.rs`: a wrapper that implements the required methods by delegation
//!   and overrides single operations.
//!
//! ## Example
//!
//! ```
//! # async fn demo() -> Result<(), medseal_chain::LedgerError> {
//! use std::sync::Arc;
//! use medseal_chain::{B256, EmbeddedChain, Ledger, PrivateKeySigner};
//!
//! let alice = PrivateKeySigner::random();
//! let bob = PrivateKeySigner::random();
//! let chain = EmbeddedChain::in_memory(alice.clone())?;
//! let as_alice: Arc<dyn Ledger> = Arc::new(chain.clone());
//! let as_bob: Arc<dyn Ledger> = as_alice.for_signer(bob.clone());
//! assert_eq!(as_bob.sender(), bob.address());
//!
//! let policy_hash = B256::repeat_byte(7);
//! let created = as_alice.create_record("bafy-manifest", policy_hash).await?;
//! as_alice.grant_access(created.record, bob.address()).await?;
//! assert!(as_bob.can_access(created.record, bob.address()).await?);
//! assert_eq!(as_bob.shared_with(bob.address()).await?, vec![created.record]);
//!
//! as_bob.publish_capsule(B256::repeat_byte(1), 0, "bafy-capsule", policy_hash).await?;
//! let capsules = as_alice.capsules(Some(bob.address())).await?;
//! assert_eq!(capsules[0].capsule_cid, "bafy-capsule");
//! # Ok(()) }
//! # tokio_test_block_on(demo());
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

#[doc(hidden)]
pub mod __fuzz {
    //! Fuzzing entry points (not a public API).
    pub use crate::embedded::fuzz::decode_journal;
}
mod backend;
pub mod bindings;
pub mod dev_keys;
mod embedded;
mod error;
mod events;
pub mod gas_report;
mod ledger;
mod members;
mod revert;
mod rpc;
mod signing;
mod types;

pub use alloy::primitives::{Address, B256, U256};
pub use alloy::signers::local::PrivateKeySigner;

pub use crate::backend::{ChainLog, LogFilter, TxOutcome};
pub use crate::embedded::{BlockInfo, EMBEDDED_CHAIN_ID, EmbeddedChain};
pub use crate::error::{BoxError, LedgerError, LedgerResult};
pub use crate::ledger::Ledger;
pub use crate::members::attribute_hash;
pub use crate::rpc::{LogCacheStats, RpcChain, RpcOptions};
pub use crate::types::{
    AccessRequest, AccessState, AuditEntry, AuditEvent, CreatedRecord, CreatedRecords, HeadCheck,
    IndexAnchor, MemberInfo, MemberRevocation, MemberStatus, PublishedCapsule, RecordId,
    RecordInfo, RegisteredMember, Registrar, TxReceipt,
};
