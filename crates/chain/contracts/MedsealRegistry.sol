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
///
///      Patients (record subjects):
///
///      * A record may have a *subject*, the patient it is about (`createRecordFor`,
///        `createRecordsFor`). The subject is fixed at creation and costs one extra slot only for
///        records that have one: the header slot carries a flags byte (timestamps are uint40,
///        enough until the year 36812) whose bit `HAS_SUBJECT` says whether the subject slot
///        exists, so the owner path of `grantAccess` still reads a single record slot.
///      * The *controller* of a record is its subject if it has one, else its owner. Only the
///        controller grants, denies and revokes access (consent); anybody else is rejected with
///        `NotController`, which names the controller. `requestAccess` addresses the controller
///        (the indexed `approver` of `AccessRequested`), so a patient's pending requests are one
///        topic query. Every consent event names who decided (`by`). The owner (the clinician
///        who created the record) always reads it; the subject always reads it. Both may update
///        it (`updateRecord`: a subject who shares or revokes re-wraps the record key and moves
///        the manifest pointer). `RecordSubject` is emitted at creation, so "records about me" is one topic
///        query.
///
///      Member registry:
///
///      * The *authority* is the deployer (`transferAuthority` hands the role on). It appoints
///        and dismisses *registrars* (e.g. one per hospital). The authority or a registrar
///        registers *members*: `MemberRegistered` carries the display name, the attributes
///        issued and their digest and the validity (a month number, year * 12 + month - 1, 0 =
///        never expires), and is the on-chain log of key issuance. Registering an active member
///        again is a renewal or re-issue (same event); only the authority or the member's
///        current registrar (whoever issued its current key) may do that. Storage keeps
///        (registrar, validThrough, status) in one slot and the attributes digest in a second;
///        names and attribute texts are only in the events.
///      * The contract does not interpret time: a client compares `validThrough` with its
///        clock. A dismissed registrar can no longer register or revoke; the members it
///        registered stay registered (the authority can revoke them).
///      * `revokeMember` (the authority, or the registrar that issued the member's current key)
///        revokes permanently (a revoked address cannot be registered again) and bumps the
///        version counter of each listed attribute (keccak256 of the attribute text), so that
///        clients encrypt new records under the new version and only re-issued keys open them.
///
///      Emergency access (break-glass): `logEmergencyAccess` records who opened which record
///      and why, before the client opens the key. The contract cannot see ABE attributes, so
///      anyone may log; that the log precedes every emergency read relies on the client.
contract MedsealRegistry {
    /// @notice Access state of one user for one record.
    enum Access {
        None,
        Requested,
        Granted
    }

    /// @notice Registration state of an address in the member registry.
    enum MemberStatus {
        None,
        Active,
        Revoked
    }

    /// @dev One storage slot: 160 + 40 + 40 + 8 bits.
    struct RecordHeader {
        address owner;
        uint40 createdAt;
        uint40 updatedAt;
        /// Bit 0 (`HAS_SUBJECT`): the record has a subject (third slot).
        uint8 flags;
    }

    /// @dev Two storage slots per record, three for a record with a subject.
    struct Record {
        RecordHeader header;
        /// keccak256(abi.encode(keccak256(manifestCid), policyHash))
        bytes32 commitment;
        /// The patient the record is about; written only when `HAS_SUBJECT` is set.
        address subject;
    }

    /// @notice A member's registration: two storage slots.
    struct Member {
        /// Who issued the member's current key (the authority or a registrar).
        address registrar;
        /// Last month of validity (year * 12 + month - 1); 0 = never expires.
        uint32 validThrough;
        MemberStatus status;
        /// Digest of the attributes issued (computed by the client; opaque to the contract).
        bytes32 attributesDigest;
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
    /// @notice Only `controller` (the record's subject, or its owner if it has none) may
    ///         grant, deny or revoke access to `record`; `caller` tried.
    error NotController(uint64 record, address caller, address controller);
    /// @notice `subject` cannot be a record's subject: the zero address, or the caller (the owner).
    error InvalidSubject(address subject);
    /// @notice `createRecordsFor` got `subjects` subjects for `manifestCids` records.
    error SubjectCountMismatch(uint256 manifestCids, uint256 subjects);
    /// @notice Only the authority (`authority`) may do this; `caller` tried.
    error NotAuthority(address caller, address authority);
    /// @notice `caller` is neither the authority nor an appointed registrar.
    error NotRegistrar(address caller);
    /// @notice `registrar` is not an appointed registrar (so it cannot be dismissed).
    error UnknownRegistrar(address registrar);
    /// @notice `caller` did not issue the current key of `member` (`registrar` did), and is not
    ///         the authority: it cannot renew or revoke that member.
    error NotMemberRegistrar(address member, address caller, address registrar);
    /// @notice `member` was never registered.
    error UnknownMember(address member);
    /// @notice `member` was revoked; revocation is permanent.
    error MemberIsRevoked(address member);
    /// @notice `account` cannot take this role (the zero address).
    error InvalidAccount(address account);
    /// @notice A reason of `length` bytes is longer than `max`.
    error ReasonTooLong(uint256 length, uint256 max);

    /// @notice A record was created by `owner`.
    event RecordCreated(uint64 indexed record, address indexed owner, bytes32 policyHash, string manifestCid);
    /// @notice `by` (the owner or the subject) replaced the manifest pointer and/or policy of a
    ///         record.
    event RecordUpdated(uint64 indexed record, address indexed by, bytes32 policyHash, string manifestCid);
    /// @notice `record` is about `subject` (a patient); emitted at creation, after `RecordCreated`.
    event RecordSubject(uint64 indexed record, address indexed subject);
    /// @notice The controller `by` granted `user` access to `record`.
    event AccessGranted(uint64 indexed record, address indexed user, address by);
    /// @notice The controller `by` revoked the access of `user` to `record`.
    event AccessRevoked(uint64 indexed record, address indexed user, address by);
    /// @notice `requester` asked `approver` (the record's controller) for access to `record`.
    event AccessRequested(uint64 indexed record, address indexed requester, address indexed approver);
    /// @notice The controller `by` denied the pending request of `user` for `record`.
    event AccessDenied(uint64 indexed record, address indexed user, address by);
    /// @notice `accessor` opened `record` under an emergency role, for `reason` (break-glass).
    event EmergencyAccess(uint64 indexed record, address indexed accessor, string reason);
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

    /// @notice The authority role passed from `previous` to `next`.
    event AuthorityTransferred(address indexed previous, address indexed next);
    /// @notice The authority appointed `registrar` (e.g. a hospital) under `name`.
    event RegistrarAppointed(address indexed registrar, string name);
    /// @notice The authority dismissed `registrar`.
    event RegistrarDismissed(address indexed registrar);
    /// @notice `registrar` issued `member` a key with `attributes` (digest `attributesDigest`),
    ///         valid through month `validThrough` (0 = never expires): a registration, or a
    ///         renewal / re-issue of an active member. The on-chain log of key issuance.
    event MemberRegistered(
        address indexed member,
        address indexed registrar,
        string name,
        bytes32 attributesDigest,
        string[] attributes,
        uint32 validThrough
    );
    /// @notice `by` revoked `member` for `reason` (permanent).
    event MemberRevoked(address indexed member, address indexed by, string reason);
    /// @notice The version of `attribute` (keccak256 of its text) is now `version`: records
    ///         encrypted under it from now on need a key issued after the bump.
    event AttributeVersionBumped(bytes32 indexed attribute, uint32 version);

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
    /// @dev In its own slot (declared after the mappings), so the record counter's slot is
    ///      not shared.
    address private _authority;
    mapping(address registrar => bool) private _registrars;
    mapping(address member => Member) private _members;
    mapping(bytes32 attribute => uint32 version) private _attributeVersions;

    /// @dev `RecordHeader.flags` bit: the record has a subject.
    uint8 private constant HAS_SUBJECT = 1;
    /// @notice Longest reason accepted by `revokeMember` and `logEmergencyAccess`, in bytes.
    uint256 public constant MAX_REASON_BYTES = 1024;

    constructor() {
        // Nonzero from the start: every createRecord pays the same counter-update price.
        _nextRecordId = 1;
        // No event: the deployment transaction names the first authority, and the registry's
        // log holds only what its functions emit.
        _authority = msg.sender;
    }

    // ------------------------------------------------------------------ records

    /// @notice Creates a record owned by the caller and returns its id (ids start at 1).
    /// @param manifestCid content identifier of the encrypted record manifest (not stored, only its digest)
    /// @param policyHash hash of the access policy the record is encrypted under (nonzero)
    function createRecord(string calldata manifestCid, bytes32 policyHash) external returns (uint64 record) {
        record = _nextRecordId;
        _nextRecordId = record + 1;
        _create(record, manifestCid, policyHash, address(0));
    }

    /// @notice Creates a record owned by the caller about `subject` (the patient), who becomes
    ///         its controller: the subject answers access requests and grants and revokes
    ///         access; the caller keeps reading and updating the record. Emits
    ///         `RecordCreated` and `RecordSubject`. Reverts `InvalidSubject` if `subject` is zero
    ///         or the caller.
    function createRecordFor(string calldata manifestCid, bytes32 policyHash, address subject)
        external
        returns (uint64 record)
    {
        _requireSubject(subject);
        record = _nextRecordId;
        _nextRecordId = record + 1;
        _create(record, manifestCid, policyHash, subject);
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
            _create(first + i, manifestCids[i], policyHashes[i], address(0));
        }
    }

    /// @notice `createRecords` with a subject per record (`createRecordFor` semantics): all
    ///         three arrays have the same length, every subject is nonzero and not the caller.
    function createRecordsFor(
        string[] calldata manifestCids,
        bytes32[] calldata policyHashes,
        address[] calldata subjects
    ) external returns (uint64 first) {
        if (manifestCids.length != policyHashes.length) {
            revert LengthMismatch(manifestCids.length, policyHashes.length);
        }
        if (manifestCids.length != subjects.length) {
            revert SubjectCountMismatch(manifestCids.length, subjects.length);
        }
        if (manifestCids.length == 0) revert EmptyField("manifestCids");
        first = _nextRecordId;
        uint64 n = uint64(manifestCids.length);
        _nextRecordId = first + n;
        for (uint64 i = 0; i < n; ++i) {
            _requireSubject(subjects[i]);
            _create(first + i, manifestCids[i], policyHashes[i], subjects[i]);
        }
    }

    /// @notice Replaces the manifest pointer and policy hash of a record: its owner, or its
    ///         subject (a patient who shares or revokes re-wraps the record key and moves the
    ///         pointer to the new manifest). Anybody else: `NotOwner`. `RecordUpdated.by` names
    ///         who updated it.
    function updateRecord(uint64 record, string calldata manifestCid, bytes32 policyHash) external {
        if (bytes(manifestCid).length == 0) revert EmptyField("manifestCid");
        if (policyHash == bytes32(0)) revert EmptyField("policyHash");
        Record storage r = _records[record];
        RecordHeader storage h = r.header;
        address owner = h.owner;
        // The owner's path reads the header slot only; the subject slot is read for others.
        if (owner != msg.sender) {
            if (owner == address(0)) revert UnknownRecord(record);
            if (h.flags & HAS_SUBJECT == 0 || r.subject != msg.sender) revert NotOwner(record, msg.sender);
        }
        h.updatedAt = uint40(block.timestamp);
        r.commitment = _commit(manifestCid, policyHash);
        emit RecordUpdated(record, msg.sender, policyHash, manifestCid);
    }

    /// @notice Returns the stored fields of a record; reverts with `UnknownRecord` if absent.
    ///         `commitment` is keccak256(abi.encode(keccak256(manifestCid), policyHash)) of the
    ///         current manifest CID and policy hash (both in the newest create/update event);
    ///         `subject` is the patient the record is about, or zero.
    function getRecord(uint64 record)
        external
        view
        returns (address owner, uint40 createdAt, uint40 updatedAt, bytes32 commitment, address subject)
    {
        Record storage r = _records[record];
        RecordHeader memory h = r.header;
        if (h.owner == address(0)) revert UnknownRecord(record);
        if (h.flags & HAS_SUBJECT != 0) subject = r.subject;
        return (h.owner, h.createdAt, h.updatedAt, r.commitment, subject);
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

    /// @notice Grants `user` read access to `record` (the controller only: the subject, or the
    ///         owner of a record without one). Answers a pending request too.
    function grantAccess(uint64 record, address user) external {
        (address owner, address subject) = _requireController(record);
        if (user == address(0) || user == owner || user == subject) revert InvalidUser(user);
        mapping(address => Access) storage acl = _access[record];
        if (acl[user] == Access.Granted) revert AlreadyGranted(record, user);
        acl[user] = Access.Granted;
        emit AccessGranted(record, user, msg.sender);
    }

    /// @notice Revokes the access of `user` to `record` (the controller only).
    function revokeAccess(uint64 record, address user) external {
        _requireController(record);
        mapping(address => Access) storage acl = _access[record];
        if (acl[user] != Access.Granted) revert NotGranted(record, user);
        acl[user] = Access.None;
        emit AccessRevoked(record, user, msg.sender);
    }

    /// @notice The caller asks the controller of `record` (its subject, or its owner) for access.
    ///         Owner and subject always read, so they cannot ask (`InvalidUser`).
    function requestAccess(uint64 record) external {
        (address owner, address subject) = _parties(record);
        if (msg.sender == owner || msg.sender == subject) revert InvalidUser(msg.sender);
        mapping(address => Access) storage acl = _access[record];
        Access state = acl[msg.sender];
        if (state == Access.Granted) revert AlreadyGranted(record, msg.sender);
        if (state == Access.Requested) revert AlreadyRequested(record, msg.sender);
        acl[msg.sender] = Access.Requested;
        emit AccessRequested(record, msg.sender, subject == address(0) ? owner : subject);
    }

    /// @notice Denies the pending access request of `user` for `record` (the controller only).
    function denyAccess(uint64 record, address user) external {
        _requireController(record);
        mapping(address => Access) storage acl = _access[record];
        if (acl[user] != Access.Requested) revert NoPendingRequest(record, user);
        acl[user] = Access.None;
        emit AccessDenied(record, user, msg.sender);
    }

    /// @notice Whether `user` may read `record`: its owner and its subject always may, others
    ///         once granted.
    function canAccess(uint64 record, address user) public view returns (bool) {
        (address owner, address subject) = _parties(record);
        return user == owner || (subject != address(0) && user == subject) || _access[record][user] == Access.Granted;
    }

    /// @notice The controller of `record`: its subject if it has one, else its owner. Only the
    ///         controller grants, denies and revokes access.
    function controllerOf(uint64 record) external view returns (address) {
        (address owner, address subject) = _parties(record);
        return subject == address(0) ? owner : subject;
    }

    /// @notice Access state of `user` for `record` (None for owner and subject, who need no grant).
    function accessState(uint64 record, address user) external view returns (Access) {
        if (_records[record].header.owner == address(0)) revert UnknownRecord(record);
        return _access[record][user];
    }

    /// @notice Records in the audit trail that the caller (owner, subject or grantee) accessed
    ///         `record`.
    function logAccess(uint64 record) external {
        if (!canAccess(record, msg.sender)) revert NotAuthorized(record, msg.sender);
        emit AccessLogged(record, msg.sender);
    }

    /// @notice Break-glass: records in the audit trail that the caller is about to open
    ///         `record` under an emergency role, and why (`reason`: 1 to `MAX_REASON_BYTES`
    ///         bytes). Open to anyone: the contract cannot see ABE attributes (whether the
    ///         caller's key satisfies the record's emergency clause); clients call this before
    ///         they open the key, and the patient's audit trail shows it prominently.
    function logEmergencyAccess(uint64 record, string calldata reason) external {
        if (_records[record].header.owner == address(0)) revert UnknownRecord(record);
        _requireReason(reason);
        emit EmergencyAccess(record, msg.sender, reason);
    }

    // ------------------------------------------------------------------ member registry

    /// @notice The authority: appoints and dismisses registrars, and registers and revokes any
    ///         member. Initially the deployer.
    function authority() external view returns (address) {
        return _authority;
    }

    /// @notice Hands the authority role to `next` (authority only; `next` nonzero).
    function transferAuthority(address next) external {
        _requireAuthority();
        if (next == address(0)) revert InvalidAccount(next);
        emit AuthorityTransferred(msg.sender, next);
        _authority = next;
    }

    /// @notice Appoints `registrar` (e.g. a hospital), named `name`, to register members
    ///         (authority only). Appointing a registrar again renames it.
    function appointRegistrar(address registrar, string calldata name) external {
        _requireAuthority();
        if (registrar == address(0)) revert InvalidAccount(registrar);
        if (bytes(name).length == 0) revert EmptyField("name");
        _registrars[registrar] = true;
        emit RegistrarAppointed(registrar, name);
    }

    /// @notice Dismisses `registrar` (authority only): it can no longer register, renew or
    ///         revoke. The members it registered stay registered.
    function dismissRegistrar(address registrar) external {
        _requireAuthority();
        if (!_registrars[registrar]) revert UnknownRegistrar(registrar);
        delete _registrars[registrar];
        emit RegistrarDismissed(registrar);
    }

    /// @notice Whether `account` is an appointed registrar (the authority is not one, but may do
    ///         everything a registrar may).
    function isRegistrar(address account) external view returns (bool) {
        return _registrars[account];
    }

    /// @notice Registers `account` under the display name `name` with the attributes issued to
    ///         it (`attributes`, non-empty texts; `attributesDigest`, nonzero, their digest as
    ///         the client computes it), valid through month `validThrough` (year * 12 + month -
    ///         1; 0 = never expires). By the authority or an appointed registrar. Registering an
    ///         active member again renews or re-issues its key (same event); only the authority
    ///         or the registrar that issued its current key may. The caller becomes the member's
    ///         registrar. A revoked member cannot be registered again (`MemberIsRevoked`).
    function registerMember(
        address account,
        string calldata name,
        bytes32 attributesDigest,
        string[] calldata attributes,
        uint32 validThrough
    ) external {
        _requireRegistrar();
        if (account == address(0)) revert InvalidAccount(account);
        if (bytes(name).length == 0) revert EmptyField("name");
        if (attributesDigest == bytes32(0)) revert EmptyField("attributesDigest");
        if (attributes.length == 0) revert EmptyField("attributes");
        for (uint256 i = 0; i < attributes.length; ++i) {
            if (bytes(attributes[i]).length == 0) revert EmptyField("attributes");
        }
        Member storage m = _members[account];
        // One slot read: status and registrar share the first slot.
        (MemberStatus status, address registrar) = (m.status, m.registrar);
        if (status == MemberStatus.Revoked) revert MemberIsRevoked(account);
        if (status == MemberStatus.Active && msg.sender != _authority && msg.sender != registrar) {
            revert NotMemberRegistrar(account, msg.sender, registrar);
        }
        _members[account] = Member({
            registrar: msg.sender,
            validThrough: validThrough,
            status: MemberStatus.Active,
            attributesDigest: attributesDigest
        });
        emit MemberRegistered(account, msg.sender, name, attributesDigest, attributes, validThrough);
    }

    /// @notice Revokes `account` permanently, for `reason` (1 to `MAX_REASON_BYTES` bytes), and
    ///         bumps the version of each of `bumpAttributes` (keccak256 of an attribute's text;
    ///         nonzero; a hash listed twice is bumped twice). By the authority or the registrar
    ///         that issued the account's current key (while appointed).
    function revokeMember(address account, string calldata reason, bytes32[] calldata bumpAttributes) external {
        _requireRegistrar();
        _requireReason(reason);
        Member storage m = _members[account];
        MemberStatus status = m.status;
        if (status == MemberStatus.None) revert UnknownMember(account);
        if (status == MemberStatus.Revoked) revert MemberIsRevoked(account);
        address registrar = m.registrar;
        if (msg.sender != _authority && msg.sender != registrar) {
            revert NotMemberRegistrar(account, msg.sender, registrar);
        }
        m.status = MemberStatus.Revoked;
        emit MemberRevoked(account, msg.sender, reason);
        for (uint256 i = 0; i < bumpAttributes.length; ++i) {
            bytes32 attribute = bumpAttributes[i];
            if (attribute == bytes32(0)) revert EmptyField("bumpAttributes");
            uint32 version = _attributeVersions[attribute] + 1;
            _attributeVersions[attribute] = version;
            emit AttributeVersionBumped(attribute, version);
        }
    }

    /// @notice The registration of `account`: who issued its current key, the attributes
    ///         digest, the last valid month (0 = never expires) and the status (None if never
    ///         registered).
    function member(address account)
        external
        view
        returns (address registrar, bytes32 attributesDigest, uint32 validThrough, MemberStatus status)
    {
        Member memory m = _members[account];
        return (m.registrar, m.attributesDigest, m.validThrough, m.status);
    }

    /// @notice `member` of each of `accounts`, in order: one call checks a list of recipients.
    function members(address[] calldata accounts) external view returns (Member[] memory out) {
        out = new Member[](accounts.length);
        for (uint256 i = 0; i < accounts.length; ++i) {
            out[i] = _members[accounts[i]];
        }
    }

    /// @notice The current version of each attribute (keccak256 of its text), in order; 0 for
    ///         one never bumped.
    function attributeVersions(bytes32[] calldata attributes) external view returns (uint32[] memory versions) {
        versions = new uint32[](attributes.length);
        for (uint256 i = 0; i < attributes.length; ++i) {
            versions[i] = _attributeVersions[attributes[i]];
        }
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

    /// @dev `subject` zero: a record without subject (two slots).
    function _create(uint64 record, string calldata manifestCid, bytes32 policyHash, address subject) private {
        if (bytes(manifestCid).length == 0) revert EmptyField("manifestCid");
        if (policyHash == bytes32(0)) revert EmptyField("policyHash");
        uint40 now40 = uint40(block.timestamp);
        Record storage r = _records[record];
        r.header = RecordHeader({
            owner: msg.sender,
            createdAt: now40,
            updatedAt: now40,
            flags: subject == address(0) ? 0 : HAS_SUBJECT
        });
        r.commitment = _commit(manifestCid, policyHash);
        emit RecordCreated(record, msg.sender, policyHash, manifestCid);
        if (subject != address(0)) {
            r.subject = subject;
            emit RecordSubject(record, subject);
        }
    }

    /// @dev Owner and subject (zero if none) of `record`; reverts `UnknownRecord` if absent.
    ///      Reads the subject slot only for records flagged `HAS_SUBJECT`.
    function _parties(uint64 record) private view returns (address owner, address subject) {
        Record storage r = _records[record];
        owner = r.header.owner;
        if (owner == address(0)) revert UnknownRecord(record);
        if (r.header.flags & HAS_SUBJECT != 0) subject = r.subject;
    }

    /// @dev `_parties`, after checking that the caller is the record's controller.
    function _requireController(uint64 record) private view returns (address owner, address subject) {
        (owner, subject) = _parties(record);
        address controller = subject == address(0) ? owner : subject;
        if (msg.sender != controller) revert NotController(record, msg.sender, controller);
    }

    function _requireSubject(address subject) private view {
        if (subject == address(0) || subject == msg.sender) revert InvalidSubject(subject);
    }

    function _requireAuthority() private view {
        if (msg.sender != _authority) revert NotAuthority(msg.sender, _authority);
    }

    /// @dev The caller is the authority or an appointed registrar.
    function _requireRegistrar() private view {
        if (msg.sender != _authority && !_registrars[msg.sender]) revert NotRegistrar(msg.sender);
    }

    function _requireReason(string calldata reason) private pure {
        uint256 length = bytes(reason).length;
        if (length == 0) revert EmptyField("reason");
        if (length > MAX_REASON_BYTES) revert ReasonTooLong(length, MAX_REASON_BYTES);
    }

    function _commit(string calldata manifestCid, bytes32 policyHash) private pure returns (bytes32) {
        return keccak256(abi.encode(keccak256(bytes(manifestCid)), policyHash));
    }

    function _anchored(address who, bytes32 partition, uint64 seq) private view returns (bool) {
        return _anchors[_slotKey(who, partition, seq)] != bytes32(0);
    }


    /// @dev `n` is the last batch's sequence number for anchors, the epoch for capsules.
    function _slotKey(address who, bytes32 partition, uint64 n) private pure returns (bytes32) {
        return keccak256(abi.encode(who, partition, n));
    }
}
