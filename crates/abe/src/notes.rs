//! Design notes (documentation only).

pub mod formats {
    //! # Wire formats (format version 1)
    //!
    //! Every object starts with the same 8-byte header:
    //!
    //! ```text
    //! magic "MSAB" | version u8 (= 1) | kind u8 | scheme u8 | curve u8 (1 = BLS12-381)
    //! kind:   1 public key, 2 master key, 3 user key, 4 ciphertext, 5 envelope
    //! scheme: 1 FAME, 2 BSW07
    //! ```
    //!
    //! Integers are big-endian. Variable-length fields carry a u32 length prefix. G1 points
    //! are 48-byte and G2 points 96-byte compressed encodings (ZCash/IETF format); decoders
    //! check they are on the curve, in the prime-order subgroup and not the identity.
    //! Target-group elements (public keys only) are 288-byte torus-compressed Fp6 values,
    //! checked for subgroup membership and canonical form. Scalars are 32-byte canonical
    //! little-endian. Counts are checked against limits and against the remaining input
    //! before anything is allocated; trailing bytes are an error; every decodable input
    //! re-encodes to itself (the fuzz targets assert this).
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
    //! every past and future ciphertext its attributes satisfy.
    //!
    //! **Side channels.** Scalar multiplications by secrets use `blst`'s constant-time
    //! routines. Functions named `vartime_*` are variable time and only ever see public
    //! values (LSSS reconstruction coefficients, public hashes). Hashing to the curve
    //! handles public labels. The policy check before decryption depends only on public
    //! data and is reported as [`crate::Error::PolicyNotSatisfied`]; all other failures
    //! are the single opaque [`crate::Error::Decryption`].
    //!
    //! **Memory hygiene.** Secret scalars and key components are overwritten on drop,
    //! followed by a compiler fence; `KemKey` is `ZeroizeOnDrop`; envelope buffers are
    //! `Zeroizing`. This is best effort: copies the compiler or the curve library make in
    //! registers and temporaries cannot be reached from a library.
    //!
    //! **Chosen-ciphertext security** of the envelope: see [`crate::envelope`] for the
    //! argument and its assumption.
    //!
    //! **Randomness.** Every operation takes the caller's `CryptoRngCore`; nothing reads
    //! a global RNG.
}
