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

use crate::codec::{Kind, Reader, Writer};
use crate::error::{DecodeError, Error, Result};
use crate::policy::Policy;
use crate::scheme::{Encoding, KemKey, Scheme};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use zeroize::Zeroizing;

/// Default plaintext bytes per segment.
pub const DEFAULT_SEGMENT_SIZE: u32 = 64 * 1024;
/// Smallest accepted segment size.
pub const MIN_SEGMENT_SIZE: u32 = 16;
/// Largest accepted segment size (bounds the memory an opener allocates).
pub const MAX_SEGMENT_SIZE: u32 = 16 * 1024 * 1024;
/// Largest embedded ABE ciphertext.
pub const MAX_HEADER_CIPHERTEXT: u32 = 1024 * 1024;

const TAG_BYTES: usize = 16;

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
        let mut r = Reader::new(&fixed, Kind::Envelope, S::ID)?;
        let segment_size = r.u32()?;
        let ct_len = r.u32()?;
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
            return Err(DecodeError::TooLarge {
                what: "segment size",
                found: segment_size.into(),
                limit: MAX_SEGMENT_SIZE.into(),
            }
            .into());
        }
        if ct_len > MAX_HEADER_CIPHERTEXT {
            return Err(DecodeError::TooLarge {
                what: "envelope ciphertext",
                found: ct_len.into(),
                limit: MAX_HEADER_CIPHERTEXT.into(),
            }
            .into());
        }
        let mut bytes = Vec::with_capacity(16 + ct_len as usize);
        bytes.extend_from_slice(&fixed);
        bytes.resize(16 + ct_len as usize, 0);
        read_exact_or_truncated(reader, &mut bytes[16..])?;
        let ciphertext = S::Ciphertext::from_bytes(&bytes[16..])?;
        Ok(Self {
            ciphertext,
            segment_size,
            bytes,
        })
    }

    fn new(ciphertext: S::Ciphertext, segment_size: u32) -> Self {
        let ct = ciphertext.to_bytes();
        let mut w = Writer::new(Kind::Envelope, S::ID);
        w.u32(segment_size);
        w.bytes(&ct);
        Self {
            ciphertext,
            segment_size,
            bytes: w.finish(),
        }
    }

    fn cipher(&self, kem: &KemKey, aad: &[u8]) -> Result<Aes256Gcm> {
        let mut info = Vec::with_capacity(18 + 64);
        info.extend_from_slice(b"aes-256-gcm-stream");
        info.extend_from_slice(&Sha256::digest(&self.bytes));
        info.extend_from_slice(&Sha256::digest(aad));
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"MEDSEAL-V1-ENVELOPE"), kem.as_bytes());
        let mut key = Zeroizing::new([0u8; 32]);
        hk.expand(&info, key.as_mut())
            .map_err(|_| Error::Decryption)?;
        Aes256Gcm::new_from_slice(key.as_ref()).map_err(|_| Error::Decryption)
    }
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

/// Encrypts a stream under `policy`; returns the number of plaintext bytes.
///
/// `aad` is bound into the key derivation (e.g. a record id); the same bytes must be
/// given to open. Memory use is O(`segment_size`).
pub fn seal_stream<S: Scheme, R: CryptoRngCore + ?Sized>(
    pk: &S::PublicKey,
    policy: &Policy,
    aad: &[u8],
    segment_size: u32,
    mut plaintext: impl Read,
    mut out: impl Write,
    rng: &mut R,
) -> Result<u64> {
    if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
        return Err(Error::LimitExceeded {
            what: "segment size",
            limit: MAX_SEGMENT_SIZE.into(),
        });
    }
    let (kem, ct) = S::encapsulate(pk, policy, rng)?;
    let header = Header::<S>::new(ct, segment_size);
    let cipher = header.cipher(&kem, aad)?;
    out.write_all(&header.bytes)?;

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

/// Decrypts a stream; returns the number of plaintext bytes written.
///
/// Fails with [`Error::PolicyNotSatisfied`] before reading any segment if the key cannot
/// satisfy the policy, and with the opaque [`Error::Decryption`] on any authentication
/// failure. **On error, discard everything written to `out`** (see the module docs).
pub fn open_stream<S: Scheme>(
    key: &S::UserKey,
    aad: &[u8],
    mut envelope: impl Read,
    mut out: impl Write,
) -> Result<u64> {
    let header = Header::<S>::read_from(&mut envelope)?;
    let kem = S::decapsulate(key, &header.ciphertext)?;
    let cipher = header.cipher(&kem, aad)?;
    let seg = header.segment_size as usize;
    let chunk = seg + TAG_BYTES;
    let mut buf = Zeroizing::new(vec![0u8; chunk + 1]);
    let mut have = read_full(&mut envelope, &mut buf[..chunk + 1])?;
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
        have = 1 + read_full(&mut envelope, &mut buf[1..chunk + 1])?;
    }
    out.flush()?;
    Ok(total)
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
    let mut out = Vec::with_capacity(envelope.len());
    match open_stream::<S>(key, aad, envelope, &mut out) {
        Ok(_) => Ok(out),
        Err(e) => {
            zeroize::Zeroize::zeroize(&mut out);
            Err(e)
        }
    }
}

/// Checks that an envelope's header parses and returns it, without decrypting.
pub fn inspect<S: Scheme>(envelope: &[u8]) -> Result<Header<S>> {
    let mut reader = envelope;
    Header::<S>::read_from(&mut reader)
}
