//! Design notes (documentation only).

pub mod formats {
    //! # Wire formats (format version 1)
    //!
    //! Every object starts with the same 8-byte header:
    //!
    //! ```text
    //! magic "MSAB" | version u8 (= 1) | kind u8 | scheme u8 | curve u8 (1 = BLS12-381)
    //! kind:   1 public key, 2 master key, 3 user key, 4 ciphertext, 5 envelope,
    //!         6 data stream
    //! scheme: 1 FAME, 2 BSW07 (0 = none: data stream only)
    //! curve:  1 BLS12-381 (0 = none: data stream only)
    //! ```
    //!
    //! A decoder checks magic, version, kind, scheme and curve in that order, so an object
    //! of another kind is always reported as a wrong kind.
    //!
    //! Integers are big-endian. Variable-length fields carry a u32 length prefix. G1 points
    //! are 48-byte and G2 points 96-byte compressed encodings (ZCash/IETF format); decoders
    //! check they are on the curve, in the prime-order subgroup and not the identity.
    //! Target-group elements (public keys only) are 288-byte torus-compressed Fp6 values,
    //! checked for subgroup membership and canonical form. Scalars are 32-byte canonical
    //! little-endian. Counts are checked against limits and against the remaining input
    //! before anything is allocated; trailing bytes are an error; every decodable input
    //! re-encodes to itself (the fuzz targets assert this). The reader and writer are
    //! public in [`crate::codec`]; medseal-index and the facade use them for their own
    //! formats (their own magic).
    //!
    //! ## FAME (scheme 1)
    //!
    //! ```text
    //! public key: H1 G2 | H2 G2 | T1 Gt | T2 Gt
    //! master key: a1 | a2 | b1 | b2 (scalars) | g^d1 | g^d2 | g^d3 (G1)
    //! user key:   n u32 | n × attribute (u32 len + UTF-8, canonical, in the set's order)
    //!             | sk0: 3 × G2
    //!             | per label, in sorted label order: sk_y,1 | sk_y,2 | sk_y,3 (G1)
    //!             | sk'_1 | sk'_2 | sk'_3 (G1)
    //! ciphertext: policy (u32 len + canonical UTF-8) | ct0: 3 × G2 | rows u32
    //!             | per LSSS row: ct_i,1 | ct_i,2 | ct_i,3 (G1)
    //! ```
    //!
    //! ## BSW07 (scheme 2)
    //!
    //! ```text
    //! public key: h G1 | e(g1, g2)^alpha Gt
    //! master key: beta scalar | g2^alpha G2
    //! user key:   n u32 | n × attribute | D G2 | per label: D_j G1 | D'_j G2
    //! ciphertext: policy | C G1 | rows u32 | per row: C_y G2 | C'_y G1
    //! ```
    //!
    //! A user key's labels are derived from its attributes (a numeric attribute such as
    //! `level=5` covers 32 bit labels `level#i=b`), so they are not stored. The policy text
    //! must be in canonical form (the decoder re-prints it and compares), and the row count
    //! must equal the policy's LSSS rows.
    //!
    //! ## Envelope (kind 5)
    //!
    //! See [`crate::envelope`]: header (segment size, embedded ABE ciphertext), then
    //! AES-256-GCM STREAM segments.
    //!
    //! ## Data stream (kind 6)
    //!
    //! Bulk data under a random 32-byte data-encryption key ([`crate::envelope::DataKey`],
    //! itself wrapped in a kind-5 envelope), sealed by
    //! [`crate::envelope::seal_with_key`]:
    //!
    //! ```text
    //! header   = "MSAB" | 1 | 6 | scheme 0 | curve 0 | segment_size u32   (12 bytes)
    //! key      = HKDF-SHA256(salt = "MEDSEAL-V1-DATA", ikm = DEK,
    //!                        info = "aes-256-gcm-stream" | SHA-256(header) | SHA-256(aad))
    //! segments = as in the envelope: AES-256-GCM(key, 0^7 | i u32 | last u8, segment_i),
    //!            each ciphertext followed by its 16-byte tag
    //! ```
    //!
    //! A symmetric stream has no ABE scheme and no curve, so both bytes are 0 (no
    //! `SchemeId` or curve id is 0); any other value is rejected. The segment size must be
    //! within the envelope's limits (16 B ..= 16 MiB), checked before allocation. The
    //! HKDF salt differs from the envelope's (`MEDSEAL-V1-ENVELOPE`). There is no
    //! per-stream nonce: a DEK must never seal two different plaintexts under the same
    //! `aad` (see [`crate::envelope`]). As with envelopes, streaming open
    //! ([`crate::envelope::open_with_key`]) writes out authentic segments before the end
    //! of the stream is authenticated: on error, discard its output;
    //! [`crate::envelope::open_bytes_with_key`] is all or nothing.
    //!
    //! ## Hashing
    //!
    //! RFC 9380 `hash_to_curve`, suite `BLS12381G1_XMD:SHA-256_SSWU_RO_`, with DSTs
    //! `MEDSEAL-V1-FAME-ATTR_…`, `MEDSEAL-V1-FAME-COLUMN_…`, `MEDSEAL-V1-BSW07-ATTR_…`.
    //! FAME messages are `l u8 | t u8 | label bytes` (attributes) and `l | t | column u32`
    //! (LSSS columns, 0-based). Attribute labels are frozen: `name`, `name:value` (raw,
    //! unescaped value) and `name#bit=0|1` for numeric bits.
    //!
    //! Golden files under `tests/data` freeze all of the above; a change to any byte
    //! needs a new format version.
}

pub mod security {
    //! # What medseal-abe protects, and what it does not
    //!
    //! **Protected.** Confidentiality of sealed data against anyone whose key does not
    //! satisfy the policy, including coalitions of users (collusion resistance: keys are
    //! randomised per user, tested at the algebra level). Integrity of envelopes: any
    //! change to header, policy, embedded ABE ciphertext, segment, order or length is
    //! rejected. Decoders reject malformed, non-canonical, oversized and wrong-subgroup
    //! inputs without panicking (fuzzed).
    //!
    //! **Not protected.** The policy is public: it travels in clear in every ciphertext
    //! (anyone can read which attributes open a record). Ciphertext size reveals the
    //! number of LSSS rows and the payload length (rounded to nothing: no padding). The
    //! attribute authority holds the master key and can decrypt everything; there is no
    //! key revocation inside the scheme (revocation is done by re-encrypting under a new
    //! epoch and by the registry's access records). A user key, once issued, decrypts
    //! every past and future ciphertext its attributes satisfy. Data streams under a
    //! wrapped DEK ([`crate::envelope::seal_with_key`]) make sharing cheap but not
    //! revocable: whoever once opened the DEK envelope can open every stream under that
    //! DEK, whatever it is re-wrapped under later; revoking means a new DEK and
    //! re-encrypting the data.
    //!
    //! **Side channels.** Scalar multiplications by secrets use `blst`'s constant-time
    //! routines. Functions named `vartime_*` are variable time and only ever see public
    //! values (LSSS reconstruction coefficients, public hashes). Hashing to the curve
    //! handles public labels. The policy check before decryption depends only on public
    //! data and is reported as [`crate::Error::PolicyNotSatisfied`]; all other failures
    //! are the single opaque [`crate::Error::Decryption`].
    //!
    //! **Memory hygiene.** Secret scalars and key components are overwritten on drop,
    //! followed by a compiler fence; `KemKey` and `DataKey` are `ZeroizeOnDrop`; envelope
    //! and data-stream buffers are `Zeroizing`. This is best effort: copies the compiler or the curve library make in
    //! registers and temporaries cannot be reached from a library.
    //!
    //! **Chosen-ciphertext security** of the envelope: see [`crate::envelope`] for the
    //! argument and its assumption.
    //!
    //! **Randomness.** Every operation takes the caller's `CryptoRngCore`; nothing reads
    //! a global RNG.
}
