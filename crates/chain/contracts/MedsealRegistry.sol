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
///      * A record occupies exactly two storage slots: `owner` (20 bytes) packed with the
///        `createdAt` / `updatedAt` timestamps (6 bytes each) in one slot, then a 32-byte
///        commitment `keccak256(abi.encode(keccak256(manifestCid), policyHash))` to the
///        manifest pointer (CID) and the policy hash. Neither is stored in full: they travel
///        in calldata and are emitted in events, and a reader checks the event it uses against
///        the commitment. `createRecords` creates many records in one transaction (bulk import).
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
///      * Index anchors and key capsules store one 32-byte word each (a commitment to the Merkle
///        root and first batch, resp. to capsule CID + policy hash) keyed by (sender, partition,
///        lastSeq), resp. (sender, partition, epoch); the CIDs are in the events. An index
///        partition id already binds its epoch. The owner numbers a partition's batches 0, 1,
///        2, ... and anchors every batch exactly once, in order, as the last batch of a shard
///        that holds batches firstSeq..=lastSeq: either the batch alone or the batch merged with
///        the newest earlier shards (logarithmic merging), which it then supersedes. The live
///        shards are found from the newest anchor backwards (`indexHead`, then the anchor ending
///        at firstSeq - 1, ...); superseded anchors stay in the event log for audit.
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

    /// @dev Two storage slots per record.
    struct Record {
        RecordHeader header;
        /// keccak256(abi.encode(keccak256(manifestCid), policyHash))
        bytes32 commitment;
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
    /// @notice `anchorer` already anchored the index shard ending at batch `lastSeq` of `partition`.
    error AlreadyAnchored(address anchorer, bytes32 partition, uint64 lastSeq);
    /// @notice Batches must be anchored in order: `lastSeq - 1` is not anchored yet, or
    ///         `firstSeq > lastSeq`.
    error AnchorOutOfOrder(address anchorer, bytes32 partition, uint64 firstSeq, uint64 lastSeq);
    /// @notice `createRecords` got arrays of different lengths.
    error LengthMismatch(uint256 manifestCids, uint256 policyHashes);
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
    /// @notice `anchorer` anchored the encrypted-index shard holding batches `firstSeq..=lastSeq`
    ///         of `partition`; it supersedes the shards anchored for those batches before.
    event IndexAnchored(
        address indexed anchorer,
        bytes32 indexed partition,
        uint64 indexed lastSeq,
        uint64 firstSeq,
        bytes32 merkleRoot,
        string shardCid
    );
    /// @notice `publisher` published a key capsule for (`partition`, `epoch`).
    event CapsulePublished(
        address indexed publisher, bytes32 indexed partition, uint64 indexed epoch, bytes32 policyHash, string capsuleCid
    );

    /// @notice An anchor slot: the shard `anchorer` anchored as ending at batch `lastSeq` of
    ///         `partition`.
    struct AnchorSlot {
        address anchorer;
        bytes32 partition;
        uint64 lastSeq;
    }

    /// @notice Records that should all be owned by `owner`.
    struct OwnedRecords {
        address owner;
        uint64[] records;
    }

    uint64 private _nextRecordId;
    mapping(uint64 record => Record) private _records;
    mapping(uint64 record => mapping(address user => Access)) private _access;
    mapping(bytes32 key => bytes32 commitment) private _anchors;
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
        record = _nextRecordId;
        _nextRecordId = record + 1;
        _create(record, manifestCid, policyHash);
    }

    /// @notice Creates one record per manifest CID (with the policy hash at the same position),
    ///         owned by the caller, with consecutive ids; returns the first id. For bulk
    ///         import: the record counter is written once per call.
    function createRecords(string[] calldata manifestCids, bytes32[] calldata policyHashes)
        external
        returns (uint64 first)
    {
        if (manifestCids.length != policyHashes.length) {
            revert LengthMismatch(manifestCids.length, policyHashes.length);
        }
        if (manifestCids.length == 0) revert EmptyField("manifestCids");
        first = _nextRecordId;
        uint64 n = uint64(manifestCids.length);
        _nextRecordId = first + n;
        for (uint64 i = 0; i < n; ++i) {
            _create(first + i, manifestCids[i], policyHashes[i]);
        }
    }

    /// @notice Replaces the manifest pointer and policy hash of a record (owner only).
    function updateRecord(uint64 record, string calldata manifestCid, bytes32 policyHash) external {
        if (bytes(manifestCid).length == 0) revert EmptyField("manifestCid");
        if (policyHash == bytes32(0)) revert EmptyField("policyHash");
        Record storage r = _records[record];
        _requireOwner(record, r.header.owner);
        r.header.updatedAt = uint48(block.timestamp);
        r.commitment = _commit(manifestCid, policyHash);
        emit RecordUpdated(record, msg.sender, policyHash, manifestCid);
    }

    /// @notice Returns the stored fields of a record; reverts with `UnknownRecord` if absent.
    ///         `commitment` is keccak256(abi.encode(keccak256(manifestCid), policyHash)) of the
    ///         current manifest CID and policy hash (both in the newest create/update event).
    function getRecord(uint64 record)
        external
        view
        returns (address owner, uint48 createdAt, uint48 updatedAt, bytes32 commitment)
    {
        Record storage r = _records[record];
        RecordHeader memory h = r.header;
        if (h.owner == address(0)) revert UnknownRecord(record);
        return (h.owner, h.createdAt, h.updatedAt, r.commitment);
    }

    /// @notice Position of the first of `records` that `owner` does not own (unknown records
    ///         included), or `records.length` if it owns them all: one call checks a whole
    ///         search answer.
    function firstNotOwnedBy(address owner, uint64[] calldata records) external view returns (uint256) {
        for (uint256 i = 0; i < records.length; ++i) {
            if (_records[records[i]].header.owner != owner) return i;
        }
        return records.length;
    }

    /// @notice `firstNotOwnedBy` over several owners in one call (a search's hits from every
    ///         partition): the first group holding a record its owner does not own, and that
    ///         record's position in it; (`groups.length`, 0) if every record is owned.
    function firstNotOwnedByAll(OwnedRecords[] calldata groups)
        external
        view
        returns (uint256 group, uint256 position)
    {
        for (uint256 g = 0; g < groups.length; ++g) {
            address owner = groups[g].owner;
            uint64[] calldata records = groups[g].records;
            for (uint256 i = 0; i < records.length; ++i) {
                if (_records[records[i]].header.owner != owner) return (g, i);
            }
        }
        return (groups.length, 0);
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

    /// @notice Anchors the Merkle root of the encrypted-index shard holding batches
    ///         `firstSeq..=lastSeq` of a partition. Batch `lastSeq` must be the next one: every
    ///         earlier batch is anchored (as the last of some shard) and `lastSeq` is not. Each
    ///         (caller, partition, lastSeq) is anchored once; the anchor is immutable.
    function anchorIndex(
        bytes32 partition,
        uint64 firstSeq,
        uint64 lastSeq,
        string calldata shardCid,
        bytes32 merkleRoot
    ) external {
        if (bytes(shardCid).length == 0) revert EmptyField("shardCid");
        if (merkleRoot == bytes32(0)) revert EmptyField("merkleRoot");
        bytes32 key = _slotKey(msg.sender, partition, lastSeq);
        if (_anchors[key] != bytes32(0)) revert AlreadyAnchored(msg.sender, partition, lastSeq);
        if (firstSeq > lastSeq || (lastSeq != 0 && !_anchored(msg.sender, partition, lastSeq - 1))) {
            revert AnchorOutOfOrder(msg.sender, partition, firstSeq, lastSeq);
        }
        _anchors[key] = keccak256(abi.encode(merkleRoot, firstSeq));
        emit IndexAnchored(msg.sender, partition, lastSeq, firstSeq, merkleRoot, shardCid);
    }

    /// @notice keccak256(abi.encode(merkleRoot, firstSeq)) of the shard `anchorer` anchored as
    ///         ending at batch `lastSeq` of `partition`, or zero.
    function anchorCommitment(address anchorer, bytes32 partition, uint64 lastSeq) external view returns (bytes32) {
        return _anchors[_slotKey(anchorer, partition, lastSeq)];
    }

    /// @notice `anchorCommitment` of each slot, in order: one call checks the index heads of
    ///         every partition a search reads.
    function anchorCommitments(AnchorSlot[] calldata slots) external view returns (bytes32[] memory commitments) {
        commitments = new bytes32[](slots.length);
        for (uint256 i = 0; i < slots.length; ++i) {
            commitments[i] = _anchors[_slotKey(slots[i].anchorer, slots[i].partition, slots[i].lastSeq)];
        }
    }

    /// @notice Number of batches of `partition` that `anchorer` anchored (they are 0..count-1:
    ///         anchors come in order). O(log count) storage reads, by galloping then bisection.
    function indexHead(address anchorer, bytes32 partition) external view returns (uint64 count) {
        if (!_anchored(anchorer, partition, 0)) return 0;
        uint64 low = 0; // anchored
        uint64 step = 1;
        uint64 high = 1; // not anchored, once the gallop stops
        while (_anchored(anchorer, partition, high)) {
            low = high;
            step *= 2;
            high = low + step;
        }
        while (high - low > 1) {
            uint64 mid = low + (high - low) / 2;
            if (_anchored(anchorer, partition, mid)) low = mid;
            else high = mid;
        }
        return low + 1;
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

    function _create(uint64 record, string calldata manifestCid, bytes32 policyHash) private {
        if (bytes(manifestCid).length == 0) revert EmptyField("manifestCid");
        if (policyHash == bytes32(0)) revert EmptyField("policyHash");
        uint48 now48 = uint48(block.timestamp);
        Record storage r = _records[record];
        r.header = RecordHeader({owner: msg.sender, createdAt: now48, updatedAt: now48});
        r.commitment = _commit(manifestCid, policyHash);
        emit RecordCreated(record, msg.sender, policyHash, manifestCid);
    }

    function _commit(string calldata manifestCid, bytes32 policyHash) private pure returns (bytes32) {
        return keccak256(abi.encode(keccak256(bytes(manifestCid)), policyHash));
    }

    function _anchored(address who, bytes32 partition, uint64 seq) private view returns (bool) {
        return _anchors[_slotKey(who, partition, seq)] != bytes32(0);
    }

    function _requireOwner(uint64 record, address owner) private view {
        if (owner == address(0)) revert UnknownRecord(record);
        if (owner != msg.sender) revert NotOwner(record, msg.sender);
    }

    /// @dev `n` is the last batch's sequence number for anchors, the epoch for capsules.
    function _slotKey(address who, bytes32 partition, uint64 n) private pure returns (bytes32) {
        return keccak256(abi.encode(who, partition, n));
    }
}
