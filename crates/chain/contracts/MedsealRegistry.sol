// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title MedsealRegistry
/// @notice On-chain registry of encrypted medical records: who owns which record, who may
///         read it, which encrypted-index shards and key capsules were published, and an
///         audit trail of every change.
///
/// @dev Storage / gas design (the gas targets of createRecord, grantAccess and anchorIndex are
///      defined in medseal-chain's `gas_report::GAS_TARGETS` and must hold independently of how
///      many records exist):
///
///      * A record occupies exactly three storage slots: `owner` (20 bytes) packed with the
///        `createdAt` / `updatedAt` timestamps (6 bytes each) in one slot, then the 32-byte
///        keccak256 digest of the manifest pointer (CID) and the 32-byte policy hash.
///        Full CIDs are never stored: they travel in calldata and are emitted in events.
///      * Record ids come from a counter that the constructor initialises to 1, so every
///        `createRecord` pays the same nonzero->nonzero price for the counter update
///        (no first-record surcharge).
///      * Access is one slot per (record, user): None / Requested / Granted. Granting,
///        requesting, denying and revoking touch that slot only.
///      * There are NO per-owner or per-user storage arrays: appending to one would cost
///        another ~22k gas per grant/record and blow the budget. `recordsOf(owner)` and
///        `sharedWith(user)` are answered off-chain from the indexed events
///        (`RecordCreated.owner`, `AccessGranted.user` / `AccessRevoked.user`); every state
///        change emits an event, so the event log is a complete audit trail and replaying
///        it reproduces the access state exactly.
///      * Index anchors and key capsules store one 32-byte word each (the Merkle root, resp.
///        a commitment to capsule CID + policy hash) keyed by (sender, partition, shardSeq),
///        resp. (sender, partition, epoch); the CIDs are in the events. An index partition id
///        already binds its epoch; `shardSeq` numbers the partition's shards 0, 1, 2, ...
contract MedsealRegistry {
    /// @notice Access state of one user for one record.
    enum Access {
        None,
        Requested,
        Granted
    }

    /// @dev One storage slot: 160 + 48 + 48 bits.
    struct RecordHeader {
        address owner;
        uint48 createdAt;
        uint48 updatedAt;
    }

    /// @dev Three storage slots per record.
    struct Record {
        RecordHeader header;
        bytes32 manifestDigest;
        bytes32 policyHash;
    }

    /// @notice The caller is not the owner of `record`.
    error NotOwner(uint64 record, address caller);
    /// @notice No record with id `record` exists.
    error UnknownRecord(uint64 record);
    /// @notice A required field (named by `field`) was empty or zero.
    error EmptyField(string field);
    /// @notice `user` cannot be the subject of this access operation (zero address or the owner).
    error InvalidUser(address user);
    /// @notice `user` already has access to `record`.
    error AlreadyGranted(uint64 record, address user);
    /// @notice `user` has no access to `record` that could be revoked.
    error NotGranted(uint64 record, address user);
    /// @notice `user` already has a pending access request for `record`.
    error AlreadyRequested(uint64 record, address user);
    /// @notice `user` has no pending access request for `record`.
    error NoPendingRequest(uint64 record, address user);
    /// @notice `caller` may not read `record`, so it cannot log an access either.
    error NotAuthorized(uint64 record, address caller);
    /// @notice `anchorer` already anchored an index shard for (`partition`, `shardSeq`).
    error AlreadyAnchored(address anchorer, bytes32 partition, uint64 shardSeq);
    /// @notice `publisher` already published a capsule for (`partition`, `epoch`).
    error AlreadyPublished(address publisher, bytes32 partition, uint64 epoch);

    /// @notice A record was created by `owner`.
    event RecordCreated(uint64 indexed record, address indexed owner, bytes32 policyHash, string manifestCid);
    /// @notice The owner replaced the manifest pointer and/or policy of a record.
    event RecordUpdated(uint64 indexed record, address indexed owner, bytes32 policyHash, string manifestCid);
    /// @notice The owner granted `user` access to `record`.
    event AccessGranted(uint64 indexed record, address indexed user);
    /// @notice The owner revoked the access of `user` to `record`.
    event AccessRevoked(uint64 indexed record, address indexed user);
    /// @notice `requester` asked `owner` for access to `record`.
    event AccessRequested(uint64 indexed record, address indexed requester, address indexed owner);
    /// @notice The owner denied the pending request of `user` for `record`.
    event AccessDenied(uint64 indexed record, address indexed user);
    /// @notice `accessor` (owner or grantee) recorded that it accessed `record`.
    event AccessLogged(uint64 indexed record, address indexed accessor);
    /// @notice `anchorer` anchored encrypted-index shard number `shardSeq` of `partition`.
    event IndexAnchored(
        address indexed anchorer, bytes32 indexed partition, uint64 indexed shardSeq, bytes32 merkleRoot, string shardCid
    );
    /// @notice `publisher` published a key capsule for (`partition`, `epoch`).
    event CapsulePublished(
        address indexed publisher, bytes32 indexed partition, uint64 indexed epoch, bytes32 policyHash, string capsuleCid
    );

    uint64 private _nextRecordId;
    mapping(uint64 record => Record) private _records;
    mapping(uint64 record => mapping(address user => Access)) private _access;
    mapping(bytes32 key => bytes32 merkleRoot) private _anchors;
    mapping(bytes32 key => bytes32 commitment) private _capsules;

    constructor() {
        // Nonzero from the start: every createRecord pays the same counter-update price.
        _nextRecordId = 1;
    }

    // ------------------------------------------------------------------ records

    /// @notice Creates a record owned by the caller and returns its id (ids start at 1).
    /// @param manifestCid content identifier of the encrypted record manifest (not stored, only its digest)
    /// @param policyHash hash of the access policy the record is encrypted under (nonzero)
    function createRecord(string calldata manifestCid, bytes32 policyHash) external returns (uint64 record) {
        if (bytes(manifestCid).length == 0) revert EmptyField("manifestCid");
        if (policyHash == bytes32(0)) revert EmptyField("policyHash");
        record = _nextRecordId;
        _nextRecordId = record + 1;
        uint48 now48 = uint48(block.timestamp);
        Record storage r = _records[record];
        r.header = RecordHeader({owner: msg.sender, createdAt: now48, updatedAt: now48});
        r.manifestDigest = keccak256(bytes(manifestCid));
        r.policyHash = policyHash;
        emit RecordCreated(record, msg.sender, policyHash, manifestCid);
    }

    /// @notice Replaces the manifest pointer and policy hash of a record (owner only).
    function updateRecord(uint64 record, string calldata manifestCid, bytes32 policyHash) external {
        if (bytes(manifestCid).length == 0) revert EmptyField("manifestCid");
        if (policyHash == bytes32(0)) revert EmptyField("policyHash");
        Record storage r = _records[record];
        _requireOwner(record, r.header.owner);
        r.header.updatedAt = uint48(block.timestamp);
        r.manifestDigest = keccak256(bytes(manifestCid));
        r.policyHash = policyHash;
        emit RecordUpdated(record, msg.sender, policyHash, manifestCid);
    }

    /// @notice Returns the stored fields of a record; reverts with `UnknownRecord` if absent.
    function getRecord(uint64 record)
        external
        view
        returns (address owner, uint48 createdAt, uint48 updatedAt, bytes32 manifestDigest, bytes32 policyHash)
    {
        Record storage r = _records[record];
        RecordHeader memory h = r.header;
        if (h.owner == address(0)) revert UnknownRecord(record);
        return (h.owner, h.createdAt, h.updatedAt, r.manifestDigest, r.policyHash);
    }

    /// @notice Number of records created so far (record ids are 1..=recordCount()).
    function recordCount() external view returns (uint64) {
        return _nextRecordId - 1;
    }

    // ------------------------------------------------------------------ access control

    /// @notice Grants `user` read access to `record` (owner only). Answers a pending request too.
    function grantAccess(uint64 record, address user) external {
        address owner = _records[record].header.owner;
        _requireOwner(record, owner);
        if (user == address(0) || user == owner) revert InvalidUser(user);
        mapping(address => Access) storage acl = _access[record];
        if (acl[user] == Access.Granted) revert AlreadyGranted(record, user);
        acl[user] = Access.Granted;
        emit AccessGranted(record, user);
    }

    /// @notice Revokes the access of `user` to `record` (owner only).
    function revokeAccess(uint64 record, address user) external {
        _requireOwner(record, _records[record].header.owner);
        mapping(address => Access) storage acl = _access[record];
        if (acl[user] != Access.Granted) revert NotGranted(record, user);
        acl[user] = Access.None;
        emit AccessRevoked(record, user);
    }

    /// @notice The caller asks the owner of `record` for access.
    function requestAccess(uint64 record) external {
        address owner = _records[record].header.owner;
        if (owner == address(0)) revert UnknownRecord(record);
        if (msg.sender == owner) revert InvalidUser(msg.sender);
        mapping(address => Access) storage acl = _access[record];
        Access state = acl[msg.sender];
        if (state == Access.Granted) revert AlreadyGranted(record, msg.sender);
        if (state == Access.Requested) revert AlreadyRequested(record, msg.sender);
        acl[msg.sender] = Access.Requested;
        emit AccessRequested(record, msg.sender, owner);
    }

    /// @notice Denies the pending access request of `user` for `record` (owner only).
    function denyAccess(uint64 record, address user) external {
        _requireOwner(record, _records[record].header.owner);
        mapping(address => Access) storage acl = _access[record];
        if (acl[user] != Access.Requested) revert NoPendingRequest(record, user);
        acl[user] = Access.None;
        emit AccessDenied(record, user);
    }

    /// @notice Whether `user` may read `record` (the owner always may).
    function canAccess(uint64 record, address user) public view returns (bool) {
        address owner = _records[record].header.owner;
        if (owner == address(0)) revert UnknownRecord(record);
        return user == owner || _access[record][user] == Access.Granted;
    }

    /// @notice Access state of `user` for `record` (None for the owner, who needs no grant).
    function accessState(uint64 record, address user) external view returns (Access) {
        if (_records[record].header.owner == address(0)) revert UnknownRecord(record);
        return _access[record][user];
    }

    /// @notice Records in the audit trail that the caller (owner or grantee) accessed `record`.
    function logAccess(uint64 record) external {
        if (!canAccess(record, msg.sender)) revert NotAuthorized(record, msg.sender);
        emit AccessLogged(record, msg.sender);
    }

    // ------------------------------------------------------------------ index anchors and capsules

    /// @notice Anchors the Merkle root of shard number `shardSeq` (0, 1, 2, ...) of an
    ///         encrypted-index partition. Each (caller, partition, shardSeq) can be anchored
    ///         once; the root is immutable.
    function anchorIndex(bytes32 partition, uint64 shardSeq, string calldata shardCid, bytes32 merkleRoot) external {
        if (bytes(shardCid).length == 0) revert EmptyField("shardCid");
        if (merkleRoot == bytes32(0)) revert EmptyField("merkleRoot");
        bytes32 key = _slotKey(msg.sender, partition, shardSeq);
        if (_anchors[key] != bytes32(0)) revert AlreadyAnchored(msg.sender, partition, shardSeq);
        _anchors[key] = merkleRoot;
        emit IndexAnchored(msg.sender, partition, shardSeq, merkleRoot, shardCid);
    }

    /// @notice Merkle root anchored by `anchorer` for (`partition`, `shardSeq`), or zero.
    function anchoredRoot(address anchorer, bytes32 partition, uint64 shardSeq) external view returns (bytes32) {
        return _anchors[_slotKey(anchorer, partition, shardSeq)];
    }

    /// @notice Publishes the key capsule of (`partition`, `epoch`), encrypted under `policyHash`.
    ///         Each (caller, partition, epoch) can be published once.
    function publishCapsule(bytes32 partition, uint64 epoch, string calldata capsuleCid, bytes32 policyHash) external {
        if (bytes(capsuleCid).length == 0) revert EmptyField("capsuleCid");
        if (policyHash == bytes32(0)) revert EmptyField("policyHash");
        bytes32 key = _slotKey(msg.sender, partition, epoch);
        if (_capsules[key] != bytes32(0)) revert AlreadyPublished(msg.sender, partition, epoch);
        _capsules[key] = keccak256(abi.encode(keccak256(bytes(capsuleCid)), policyHash));
        emit CapsulePublished(msg.sender, partition, epoch, policyHash, capsuleCid);
    }

    /// @notice keccak256(abi.encode(keccak256(capsuleCid), policyHash)) of the capsule published
    ///         by `publisher` for (`partition`, `epoch`), or zero.
    function capsuleCommitment(address publisher, bytes32 partition, uint64 epoch) external view returns (bytes32) {
        return _capsules[_slotKey(publisher, partition, epoch)];
    }

    // ------------------------------------------------------------------ internals

    function _requireOwner(uint64 record, address owner) private view {
        if (owner == address(0)) revert UnknownRecord(record);
        if (owner != msg.sender) revert NotOwner(record, msg.sender);
    }

    /// @dev `n` is the shard sequence number for anchors, the epoch for capsules.
    function _slotKey(address who, bytes32 partition, uint64 n) private pure returns (bytes32) {
        return keccak256(abi.encode(who, partition, n));
    }
}
