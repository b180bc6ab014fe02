//! The hybrid envelope: CP-ABE KEM → HKDF → AES-256-GCM in the STREAM construction.
//!
//! ```text
//! header   = "MSAB" | version | kind=5 | scheme | curve | segment_size u32
//!            | ciphertext_len u32 | ABE ciphertext (canonical encoding)
//! key      = HKDF-SHA256(salt = "MEDSEAL-V1-ENVELOPE", ikm = KEM key,
//!                        info = "aes-256-gcm-stream" | SHA-256(header) | SHA-256(aad))
//! segments = AES-256-GCM(key, nonce_i, plaintext_i), i = 0, 1, ...
//! nonce_i  = 0^7 | i (u32, big-endian) | last (1 if this is the final segment, else 0)
//! ```
//!
//! Every segment but the last holds exactly `segment_size` plaintext bytes; the last holds
//! 0..=segment_size (an empty payload is one empty final segment). The counter stops
//! reordering, the `last` flag stops truncation and extension at a segment boundary, and
//! the header (which contains the whole ABE ciphertext and its policy) is bound through
//! the key derivation, so changing any byte of an envelope makes it fail to open.
//! Memory stays O(segment) however large the payload.
//!
//! **Chosen-ciphertext security.** The DEM key is derived from the KEM key *and* the
//! complete header, so a modified envelope opens only if the attacker can forge
//! AES-GCM under a key they do not know (INT-CTXT), unless the modification leaves the
//! KEM key recoverable by them. That is the standard hashed-KEM argument: the hybrid is
//! IND-CCA in the random-oracle model if the ABE KEM is one-way under plaintext-checking
//! attacks (OW-PCA). FAME and BSW07 are proven CPA-secure; OW-PCA for them rests on a
//! gap-type assumption that is believed but not proven here. We document this rather than
//! claim more.
//!
//! **Streaming open releases plaintext before the end is authenticated.** Each segment
//! is authentic and in order when written out, but truncation is only detected at the
//! end: if [`open_stream`] returns an error, discard everything it wrote. [`open`]
//! returns all or nothing.
//!
//! # Data streams under a data-encryption key
//!
//! Bulk data (record attachments of any size) is sealed with a random 32-byte
//! [`DataKey`] (DEK) instead of a fresh KEM key; the DEK itself travels separately,
//! sealed in an ordinary envelope ([`seal`] of [`DataKey::as_bytes`]). Sharing a record
//! then re-wraps only the DEK and never re-encrypts the attachments.
//!
//! ```text
//! header   = "MSAB" | version | kind=6 | scheme=0 | curve=0 | segment_size u32
//! key      = HKDF-SHA256(salt = "MEDSEAL-V1-DATA", ikm = DEK,
//!                        info = "aes-256-gcm-stream" | SHA-256(header) | SHA-256(aad))
//! segments = exactly as in the envelope above (same nonces, same `last` flag)
//! ```
//!
//! A data stream belongs to no ABE scheme and uses no curve, so its scheme and curve
//! bytes are 0 (never a valid [`crate::SchemeId`] or curve id); a reader rejects any
//! other value, and an envelope given to [`open_with_key`] (or a data stream given to
//! [`open_stream`]) is rejected as [`DecodeError::WrongKind`] before any key is derived.
//! The salt differs from the envelope's, so a DEK and a KEM key never derive the same
//! AES key even if their bytes were equal. The segment loops are shared with the
//! envelope, and so are its guarantees: reordering, truncation, extension and any
//! changed byte fail with the opaque [`Error::Decryption`] (or a [`DecodeError`] for a
//! malformed header), and memory stays O(segment).
//!
//! **One DEK, one plaintext per `aad`.** There is no per-stream randomness: the AES key
//! and nonces depend only on the DEK, the header (i.e. the segment size) and `aad`.
//! Sealing the *same* plaintext twice gives the same bytes (harmless), but sealing two
//! *different* plaintexts under the same DEK, `aad` and segment size reuses AES-GCM
//! nonces, which reveals the XOR of the plaintexts and lets an attacker forge segments.
//! Use a fresh [`DataKey`] per stream, or make `aad` unique per stream and per version
//! (e.g. record id | attachment id | revision), never re-sealing edited data under an
//! old `aad`.
//!
//! **Streaming open releases plaintext before the end is authenticated**, exactly as
//! for [`open_stream`]: if [`open_with_key`] returns an error, discard everything it
//! wrote. [`open_bytes_with_key`] returns all or nothing.

use crate::codec::{Kind, Reader, Writer};
use crate::error::{DecodeError, Error, Result};
use crate::policy::Policy;
use crate::scheme::{Encoding, KemKey, Scheme};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

use zeroize::{Zeroize, Zeroizing};

/// Default plaintext bytes per segment.
pub const DEFAULT_SEGMENT_SIZE: u32 = 64 * 1024;
/// Smallest accepted segment size.
pub const MIN_SEGMENT_SIZE: u32 = 16;
/// Largest accepted segment size (bounds the memory an opener allocates).
pub const MAX_SEGMENT_SIZE: u32 = 16 * 1024 * 1024;
/// Largest embedded ABE ciphertext.
pub const MAX_HEADER_CIPHERTEXT: u32 = 1024 * 1024;

const TAG_BYTES: usize = 16;
/// HKDF salt of envelopes (input: the KEM key).
const ENVELOPE_SALT: &[u8] = b"MEDSEAL-V1-ENVELOPE";
/// HKDF salt of data streams (input: the DEK); distinct from [`ENVELOPE_SALT`].
const DATA_SALT: &[u8] = b"MEDSEAL-V1-DATA";
/// Length of a data-stream header: the 8-byte prefix and the segment size.
const DATA_HEADER_BYTES: usize = 12;

crate::secret_bytes32! {
    /// A 32-byte data-encryption key (DEK) for [`seal_with_key`] and [`open_with_key`].
    ///
    /// Generate one per stream (or see the module docs on `aad`), wrap it for its readers
    /// with [`seal`] of [`DataKey::as_bytes`], and rebuild it after [`open`] with
    /// [`DataKey::from_slice`]. Zeroized on drop, `Debug` redacted, compared in constant
    /// time. Deliberately not `Clone`: borrow it, or share it behind an `Arc`.
    pub struct DataKey;
    "The key bytes. Handle with care: this is the secret that protects the data."
}

impl DataKey {
    /// Draws a fresh key from `rng`.
    pub fn generate(rng: &mut (impl CryptoRngCore + ?Sized)) -> Self {
        let mut key = Self([0u8; 32]);
        rng.fill_bytes(&mut key.0);
        key
    }

    /// Wraps existing key bytes. The caller's copy of `bytes` is not wiped: pass a value
    /// it will not keep, or zeroize it; [`DataKey::from_slice`] copies from a buffer the
    /// caller wipes, leaving no other copy.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Copies a 32-byte key straight out of `bytes` (e.g. an opened DEK envelope, which
    /// the caller then wipes); `None` if `bytes` is not 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut key = Self([0u8; 32]);
        if bytes.len() != key.0.len() {
            return None;
        }
        key.0.copy_from_slice(bytes);
        Some(key)
    }
}

/// A parsed envelope header: the ABE ciphertext (and so the policy) and the segment size.
pub struct Header<S: Scheme> {
    ciphertext: S::Ciphertext,
    segment_size: u32,
    bytes: Vec<u8>,
}

impl<S: Scheme> Header<S> {
    /// The policy the envelope is encrypted under.
    pub fn policy(&self) -> &Policy {
        S::policy(&self.ciphertext)
    }

    /// Plaintext bytes per segment.
    pub fn segment_size(&self) -> u32 {
        self.segment_size
    }

    /// The encoded header (the bytes that precede the first segment).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Reads and checks a header from the start of a stream, leaving the reader at the
    /// first segment.
    pub fn read_from(reader: &mut impl Read) -> Result<Self> {
        let mut fixed = [0u8; 16];
        read_exact_or_truncated(reader, &mut fixed)?;
        let mut r = Reader::for_scheme(&fixed, Kind::Envelope, S::ID)?;
        let segment_size = r.u32()?;
        decode_segment_size(segment_size)?;
        // The 16 bytes are all there: only the limit can fail.
        let ct_len = r.count("envelope ciphertext", MAX_HEADER_CIPHERTEXT as usize, 0)?;
        let mut bytes = Vec::with_capacity(16 + ct_len);
        bytes.extend_from_slice(&fixed);
        bytes.resize(16 + ct_len, 0);
        read_exact_or_truncated(reader, &mut bytes[16..])?;
        let ciphertext = S::Ciphertext::from_bytes(&bytes[16..])?;
        Ok(Self {
            ciphertext,
            segment_size,
            bytes,
        })
    }

    fn new(ciphertext: S::Ciphertext, segment_size: u32) -> Self {
        let mut w = Writer::for_scheme(Kind::Envelope, S::ID);
        w.u32(segment_size).bytes(&ciphertext.to_bytes());
        Self {
            ciphertext,
            segment_size,
            bytes: w.finish(),
        }
    }

    fn cipher(&self, kem: &KemKey, aad: &[u8]) -> Result<Aes256Gcm> {
        derive_cipher(ENVELOPE_SALT, kem.as_bytes(), &self.bytes, aad)
    }
}

/// HKDF-SHA256(salt, ikm, "aes-256-gcm-stream" | SHA-256(header) | SHA-256(aad)).
fn derive_cipher(salt: &[u8], ikm: &[u8; 32], header: &[u8], aad: &[u8]) -> Result<Aes256Gcm> {
    let mut info = Vec::with_capacity(18 + 64);
    info.extend_from_slice(b"aes-256-gcm-stream");
    info.extend_from_slice(&Sha256::digest(header));
    info.extend_from_slice(&Sha256::digest(aad));
    let hk = hkdf::Hkdf::<Sha256>::new(Some(salt), ikm);
    let mut key = Zeroizing::new([0u8; 32]);
    hk.expand(&info, key.as_mut())
        .map_err(|_| Error::Decryption)?;
    Aes256Gcm::new_from_slice(key.as_ref()).map_err(|_| Error::Decryption)
}

/// Rejects a segment size outside the limits (sealing side).
fn check_segment_size(segment_size: u32) -> Result<()> {
    decode_segment_size(segment_size).map_err(crate::share::creation_error)
}

/// Rejects a segment size outside the limits (decoding side), before any allocation.
fn decode_segment_size(segment_size: u32) -> Result<(), DecodeError> {
    if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
        return Err(DecodeError::TooLarge {
            what: "segment size",
            found: segment_size.into(),
            limit: MAX_SEGMENT_SIZE.into(),
        });
    }
    Ok(())
}

impl<S: Scheme> core::fmt::Debug for Header<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Header")
            .field("policy", &self.policy().to_string())
            .field("segment_size", &self.segment_size)
            .finish_non_exhaustive()
    }
}

fn nonce(counter: u32, last: bool) -> Nonce<aes_gcm::aes::cipher::consts::U12> {
    let mut n = [0u8; 12];
    n[7..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n.into()
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn read_exact_or_truncated(reader: &mut impl Read, buf: &mut [u8]) -> Result<()> {
    if read_full(reader, buf)? != buf.len() {
        return Err(DecodeError::Truncated.into());
    }
    Ok(())
}

/// Writes the STREAM segments of `plaintext` (the header is already written); returns
/// the number of plaintext bytes. `segment_size` must be within the limits.
fn seal_segments(
    cipher: &Aes256Gcm,
    segment_size: u32,
    mut plaintext: impl Read,
    mut out: impl Write,
) -> Result<u64> {
    // One byte of look-ahead tells whether the current segment is the last.
    let seg = segment_size as usize;
    let mut buf = Zeroizing::new(vec![0u8; seg + 1]);
    let mut have = read_full(&mut plaintext, &mut buf[..seg + 1])?;
    let mut counter: u32 = 0;
    let mut total: u64 = 0;
    loop {
        let last = have <= seg;
        let len = have.min(seg);
        let carry = if last { None } else { buf.get(seg).copied() };
        let tag = cipher
            .encrypt_in_place_detached(&nonce(counter, last), &[], &mut buf[..len])
            .map_err(|_| Error::Decryption)?;
        out.write_all(&buf[..len])?;
        out.write_all(&tag)?;
        total += len as u64;
        if last {
            break;
        }
        counter = counter.checked_add(1).ok_or(Error::LimitExceeded {
            what: "segment count",
            limit: u32::MAX.into(),
        })?;
        buf[0] = carry.unwrap_or_default();
        have = 1 + read_full(&mut plaintext, &mut buf[1..seg + 1])?;
    }
    out.flush()?;
    Ok(total)
}

/// Reads, authenticates and writes out the STREAM segments that follow a header;
/// returns the number of plaintext bytes. `segment_size` must be within the limits
/// (checked by the header decoder). On error, `out` may hold authentic but incomplete
/// plaintext.
fn open_segments(
    cipher: &Aes256Gcm,
    segment_size: u32,
    mut sealed: impl Read,
    mut out: impl Write,
) -> Result<u64> {
    let seg = segment_size as usize;
    let chunk = seg + TAG_BYTES;
    let mut buf = Zeroizing::new(vec![0u8; chunk + 1]);
    let mut have = read_full(&mut sealed, &mut buf[..chunk + 1])?;
    let mut counter: u32 = 0;
    let mut total: u64 = 0;
    loop {
        let last = have <= chunk;
        let len = have.min(chunk);
        if len < TAG_BYTES {
            return Err(Error::Decryption);
        }
        let carry = if last { None } else { buf.get(chunk).copied() };
        let body = len - TAG_BYTES;
        let mut tag = Tag::default();
        tag.copy_from_slice(&buf[body..len]);
        cipher
            .decrypt_in_place_detached(&nonce(counter, last), &[], &mut buf[..body], &tag)
            .map_err(|_| Error::Decryption)?;
        out.write_all(&buf[..body])?;
        total += body as u64;
        if last {
            break;
        }
        counter = counter.checked_add(1).ok_or(Error::Decryption)?;
        buf[0] = carry.unwrap_or_default();
        have = 1 + read_full(&mut sealed, &mut buf[1..chunk + 1])?;
    }
    out.flush()?;
    Ok(total)
}

/// Encrypts a stream under `policy`; returns the number of plaintext bytes.
///
/// `aad` is bound into the key derivation (e.g. a record id); the same bytes must be
/// given to open. Memory use is O(`segment_size`).
pub fn seal_stream<S: Scheme, R: CryptoRngCore + ?Sized>(
    pk: &S::PublicKey,
    policy: &Policy,
    aad: &[u8],
    segment_size: u32,
    plaintext: impl Read,
    mut out: impl Write,
    rng: &mut R,
) -> Result<u64> {
    check_segment_size(segment_size)?;
    let (kem, ct) = S::encapsulate(pk, policy, rng)?;
    let header = Header::<S>::new(ct, segment_size);
    let cipher = header.cipher(&kem, aad)?;
    out.write_all(&header.bytes)?;
    seal_segments(&cipher, segment_size, plaintext, out)
}

/// Decrypts a stream; returns the number of plaintext bytes written.
///
/// Fails with [`Error::PolicyNotSatisfied`] before reading any segment if the key cannot
/// satisfy the policy, and with the opaque [`Error::Decryption`] on any authentication
/// failure. **On error, discard everything written to `out`** (see the module docs).
pub fn open_stream<S: Scheme>(
    key: &S::UserKey,
    aad: &[u8],
    mut envelope: impl Read,
    out: impl Write,
) -> Result<u64> {
    let header = Header::<S>::read_from(&mut envelope)?;
    let kem = S::decapsulate(key, &header.ciphertext)?;
    let cipher = header.cipher(&kem, aad)?;
    open_segments(&cipher, header.segment_size, envelope, out)
}

/// Encrypts `plaintext` under `policy` into one envelope (default segment size).
pub fn seal<S: Scheme, R: CryptoRngCore + ?Sized>(
    pk: &S::PublicKey,
    policy: &Policy,
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(plaintext.len() + plaintext.len() / 4096 + 4096);
    seal_stream::<S, R>(
        pk,
        policy,
        aad,
        DEFAULT_SEGMENT_SIZE,
        plaintext,
        &mut out,
        rng,
    )?;
    Ok(out)
}

/// Decrypts a whole envelope: all or nothing.
pub fn open<S: Scheme>(key: &S::UserKey, aad: &[u8], envelope: &[u8]) -> Result<Vec<u8>> {
    all_or_nothing(envelope.len(), |out| {
        open_stream::<S>(key, aad, envelope, out)
    })
}

/// Runs a streaming open into a buffer of `capacity` bytes, which is zeroized and dropped
/// if the open fails.
fn all_or_nothing(
    capacity: usize,
    open: impl FnOnce(&mut Vec<u8>) -> Result<u64>,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity);
    match open(&mut out) {
        Ok(_) => Ok(out),
        Err(e) => {
            out.zeroize();
            Err(e)
        }
    }
}

/// Checks that an envelope's header parses and returns it, without decrypting.
pub fn inspect<S: Scheme>(envelope: &[u8]) -> Result<Header<S>> {
    let mut reader = envelope;
    Header::<S>::read_from(&mut reader)
}

/// The header of a data stream: the prefix (kind 6, scheme 0, curve 0) and the segment
/// size.
fn data_header(segment_size: u32) -> Vec<u8> {
    let mut w = Writer::unkeyed(Kind::DataStream);
    w.u32(segment_size);
    w.finish()
}

/// Reads and checks a data-stream header; returns its bytes and the segment size.
fn read_data_header(reader: &mut impl Read) -> Result<([u8; DATA_HEADER_BYTES], u32)> {
    let mut bytes = [0u8; DATA_HEADER_BYTES];
    read_exact_or_truncated(reader, &mut bytes)?;
    let mut r = Reader::unkeyed(&bytes, Kind::DataStream)?;
    let segment_size = r.u32()?;
    r.finish()?;
    decode_segment_size(segment_size)?;
    Ok((bytes, segment_size))
}

/// Encrypts a stream under a data-encryption key; returns the number of plaintext bytes.
///
/// `aad` is bound into the key derivation (e.g. record id and attachment id); the same
/// bytes must be given to open. **Never seal two different plaintexts under the same
/// key and `aad`** (see the module docs). Memory use is O(`segment_size`); fails with
/// [`Error::LimitExceeded`] if `segment_size` is outside
/// [`MIN_SEGMENT_SIZE`]..=[`MAX_SEGMENT_SIZE`].
pub fn seal_with_key(
    key: &DataKey,
    aad: &[u8],
    segment_size: u32,
    plaintext: impl Read,
    mut out: impl Write,
) -> Result<u64> {
    check_segment_size(segment_size)?;
    let header = data_header(segment_size);
    let cipher = derive_cipher(DATA_SALT, key.as_bytes(), &header, aad)?;
    out.write_all(&header)?;
    seal_segments(&cipher, segment_size, plaintext, out)
}

/// Decrypts a stream sealed by [`seal_with_key`]; returns the number of plaintext bytes
/// written.
///
/// Fails with a [`DecodeError`] if the header is malformed (an envelope or other object
/// is [`DecodeError::WrongKind`]; the segment size is checked before anything is
/// allocated), and with the opaque [`Error::Decryption`] on any authentication failure
/// (wrong key, wrong `aad`, tampering, truncation, extension). **On error, discard
/// everything written to `out`** (see the module docs).
pub fn open_with_key(
    key: &DataKey,
    aad: &[u8],
    mut sealed: impl Read,
    out: impl Write,
) -> Result<u64> {
    let (header, segment_size) = read_data_header(&mut sealed)?;
    let cipher = derive_cipher(DATA_SALT, key.as_bytes(), &header, aad)?;
    open_segments(&cipher, segment_size, sealed, out)
}

/// Encrypts a whole buffer under a data-encryption key ([`DEFAULT_SEGMENT_SIZE`]).
///
/// The same rule as [`seal_with_key`]: never two different plaintexts under one key and
/// `aad`.
pub fn seal_bytes_with_key(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let segments = plaintext.len() / DEFAULT_SEGMENT_SIZE as usize + 1;
    let mut out = Vec::with_capacity(
        DATA_HEADER_BYTES
            .saturating_add(plaintext.len())
            .saturating_add(segments.saturating_mul(TAG_BYTES)),
    );
    seal_with_key(key, aad, DEFAULT_SEGMENT_SIZE, plaintext, &mut out)?;
    Ok(out)
}

/// Decrypts a whole data stream: all or nothing (the partial output is zeroized on
/// failure).
pub fn open_bytes_with_key(key: &DataKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    all_or_nothing(sealed.len(), |out| open_with_key(key, aad, sealed, out))
}
