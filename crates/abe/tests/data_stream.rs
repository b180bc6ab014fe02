//! The symmetric data stream (`seal_with_key` / `open_with_key`): round trips at every
//! segment boundary, an independent re-implementation of the format, tampering,
//! truncation, extension, kind confusion with envelopes, limits, a golden file and a
//! 16 MiB stream through a pipe.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit};
use medseal_abe::envelope::{
    self, DEFAULT_SEGMENT_SIZE, DataKey, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, open_bytes_with_key,
    open_with_key, seal_bytes_with_key, seal_with_key,
};
use medseal_abe::{AttributeSet, Bsw07, DecodeError, Error, Fame, Policy, Scheme};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::PathBuf;

#[path = "common/stream.rs"]
mod stream;
use stream::{Hashing, Payload};

const HEADER: usize = 12;
const TAG: usize = 16;

fn key(seed: u64) -> DataKey {
    DataKey::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn seal_vec(key: &DataKey, aad: &[u8], seg: u32, plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let n = seal_with_key(key, aad, seg, plaintext, &mut out).unwrap();
    assert_eq!(n, plaintext.len() as u64);
    out
}

fn open_vec(key: &DataKey, aad: &[u8], sealed: &[u8]) -> medseal_abe::Result<Vec<u8>> {
    open_bytes_with_key(key, aad, sealed)
}

fn is_decryption(r: &medseal_abe::Result<Vec<u8>>) -> bool {
    matches!(r, Err(Error::Decryption))
}

/// Number of segments of a `len`-byte plaintext: at least one (the empty final segment).
fn segments(len: usize, seg: usize) -> usize {
    len.div_ceil(seg).max(1)
}

/// An independent implementation of the documented format (it shares no code with the
/// library): prefix, segment size, HKDF with the data salt, nonce `0^7 | i | last`.
fn reference_header(seg: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"MSAB");
    out.extend_from_slice(&[1, 6, 0, 0]);
    out.extend_from_slice(&seg.to_be_bytes());
    out
}

fn reference_cipher(key: &[u8; 32], aad: &[u8], seg: u32) -> Aes256Gcm {
    let mut info = b"aes-256-gcm-stream".to_vec();
    info.extend_from_slice(&Sha256::digest(reference_header(seg)));
    info.extend_from_slice(&Sha256::digest(aad));
    let mut okm = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(b"MEDSEAL-V1-DATA"), key)
        .expand(&info, &mut okm)
        .unwrap();
    Aes256Gcm::new_from_slice(&okm).unwrap()
}

/// One sealed segment (ciphertext | tag) with an explicit counter and `last` flag.
fn reference_segment(cipher: &Aes256Gcm, counter: u32, last: bool, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    nonce[7..11].copy_from_slice(&counter.to_be_bytes());
    nonce[11] = u8::from(last);
    let mut buf = plaintext.to_vec();
    let tag = cipher
        .encrypt_in_place_detached(&nonce.into(), &[], &mut buf)
        .unwrap();
    buf.extend_from_slice(&tag);
    buf
}

fn reference_seal(key: &[u8; 32], aad: &[u8], seg: u32, plaintext: &[u8]) -> Vec<u8> {
    let cipher = reference_cipher(key, aad, seg);
    let mut out = reference_header(seg);
    let chunks: Vec<&[u8]> = if plaintext.is_empty() {
        vec![&[]]
    } else {
        plaintext.chunks(seg as usize).collect()
    };
    for (i, chunk) in chunks.iter().enumerate() {
        out.extend_from_slice(&reference_segment(
            &cipher,
            i as u32,
            i + 1 == chunks.len(),
            chunk,
        ));
    }
    out
}

/// A reader that hands out at most `step` bytes per call (exercises short reads).
struct Dribble<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn round_trip_at_every_boundary() {
    let key = key(1);
    for seg in [16u32, 17, 64, 1000] {
        let s = seg as usize;
        for len in [0, 1, s - 1, s, s + 1, 2 * s, 3 * s + 5, 5 * s - 1] {
            let pt = payload(len, len as u64 + u64::from(seg));
            let sealed = seal_vec(&key, b"rec-1/att-1", seg, &pt);
            assert_eq!(
                sealed.len(),
                HEADER + len + TAG * segments(len, s),
                "seg {seg} len {len}"
            );
            assert_eq!(
                sealed,
                reference_seal(key.as_bytes(), b"rec-1/att-1", seg, &pt),
                "seg {seg} len {len}: differs from the reference implementation"
            );
            assert_eq!(open_vec(&key, b"rec-1/att-1", &sealed).unwrap(), pt);

            // Streaming both ways with short reads on each side.
            let mut streamed = Vec::new();
            seal_with_key(
                &key,
                b"rec-1/att-1",
                seg,
                Dribble { data: &pt, step: 7 },
                &mut streamed,
            )
            .unwrap();
            assert_eq!(streamed, sealed);
            let mut opened = Vec::new();
            let n = open_with_key(
                &key,
                b"rec-1/att-1",
                Dribble {
                    data: &sealed,
                    step: 5,
                },
                &mut opened,
            )
            .unwrap();
            assert_eq!(n, len as u64);
            assert_eq!(opened, pt);
        }
    }
}

#[test]
fn whole_buffer_helpers_use_the_default_segment_size() {
    let key = key(2);
    for len in [0usize, 1, 100_000, 2 * DEFAULT_SEGMENT_SIZE as usize] {
        let pt = payload(len, 9);
        let sealed = seal_bytes_with_key(&key, b"aad", &pt).unwrap();
        assert_eq!(&sealed[8..12], &DEFAULT_SEGMENT_SIZE.to_be_bytes());
        assert_eq!(
            sealed,
            reference_seal(key.as_bytes(), b"aad", DEFAULT_SEGMENT_SIZE, &pt)
        );
        assert_eq!(open_bytes_with_key(&key, b"aad", &sealed).unwrap(), pt);
    }
}

#[test]
fn wrong_key_or_aad_is_an_opaque_decryption_error() {
    let key = key(3);
    for len in [0usize, 10, 100] {
        let sealed = seal_vec(&key, b"rec-1", 32, &payload(len, 1));
        assert!(is_decryption(&open_vec(&self::key(4), b"rec-1", &sealed)));
        assert!(is_decryption(&open_vec(&key, b"rec-2", &sealed)));
        assert!(is_decryption(&open_vec(&key, b"", &sealed)));
        let mut bits = *key.as_bytes();
        bits[31] ^= 1;
        assert!(is_decryption(&open_vec(
            &DataKey::from_bytes(bits),
            b"rec-1",
            &sealed
        )));
        let mut sink = Vec::new();
        assert!(matches!(
            open_with_key(&self::key(4), b"rec-1", sealed.as_slice(), &mut sink),
            Err(Error::Decryption)
        ));
    }
}

#[test]
fn every_single_byte_flip_is_rejected() {
    let key = key(5);
    let pt = payload(40, 5); // segments of 16, 16, 8
    let sealed = seal_vec(&key, b"aad", 16, &pt);
    assert_eq!(sealed.len(), HEADER + 40 + 3 * TAG);
    for i in 0..sealed.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = sealed.clone();
            bad[i] ^= mask;
            let r = open_vec(&key, b"aad", &bad);
            if i >= HEADER {
                assert!(is_decryption(&r), "flip {mask:#x} at {i}: {r:?}");
            } else {
                // Header bytes: a decode error, or (another valid segment size) a
                // different derived key.
                assert!(
                    matches!(r, Err(Error::Decode(_) | Error::Decryption)),
                    "flip {mask:#x} at {i}: {r:?}"
                );
            }
        }
    }
}

#[test]
fn truncation_anywhere_is_rejected() {
    let key = key(6);
    let seg = 16usize;
    let pt = payload(3 * seg + 3, 6);
    let sealed = seal_vec(&key, b"aad", seg as u32, &pt);
    for cut in 0..sealed.len() {
        let r = open_vec(&key, b"aad", &sealed[..cut]);
        if cut < HEADER {
            assert!(
                matches!(r, Err(Error::Decode(DecodeError::Truncated))),
                "cut {cut}: {r:?}"
            );
        } else {
            assert!(is_decryption(&r), "cut {cut}: {r:?}");
        }
    }
    // Exactly at each segment boundary (header only, after 1, 2, 3 full segments), also
    // through the streaming API: authentic segments come out, then the error.
    for k in 0..=3 {
        let cut = HEADER + k * (seg + TAG);
        let mut out = Vec::new();
        let r = open_with_key(&key, b"aad", &sealed[..cut], &mut out);
        assert!(matches!(r, Err(Error::Decryption)), "boundary {k}: {r:?}");
        assert!(out.len() <= k * seg);
        assert_eq!(out, pt[..out.len()]);
    }
    // A stream of exactly one full segment, cut to its header: still rejected.
    let one = seal_vec(&key, b"aad", seg as u32, &pt[..seg]);
    assert!(is_decryption(&open_vec(&key, b"aad", &one[..HEADER])));
}

#[test]
fn extension_reordering_and_splicing_are_rejected() {
    let key = key(7);
    let seg = 16usize;
    let short_pt = payload(2 * seg, 7); // two full segments, the second final
    let long_pt = payload(4 * seg, 7); // same first two segments, four in all
    assert_eq!(short_pt, long_pt[..2 * seg]);
    let short = seal_vec(&key, b"aad", seg as u32, &short_pt);
    let long = seal_vec(&key, b"aad", seg as u32, &long_pt);
    let chunk = seg + TAG;
    // The non-final segments agree (same key, nonces, plaintext) ...
    assert_eq!(short[..HEADER + chunk], long[..HEADER + chunk]);
    // ... the final one does not (the `last` flag is in the nonce).
    assert_ne!(
        short[HEADER + chunk..],
        long[HEADER + chunk..HEADER + 2 * chunk]
    );

    // Appending the long stream's third segment to the short one.
    let mut ext = short.clone();
    ext.extend_from_slice(&long[HEADER + 2 * chunk..HEADER + 3 * chunk]);
    assert!(is_decryption(&open_vec(&key, b"aad", &ext)));
    // Appending the long stream's (final) fourth segment.
    let mut ext = short.clone();
    ext.extend_from_slice(&long[HEADER + 3 * chunk..]);
    assert!(is_decryption(&open_vec(&key, b"aad", &ext)));
    // Appending correctly authenticated segments with the next counter (only the key
    // holder can make these): the short stream's final segment is then opened as a
    // non-final one, and fails.
    let cipher = reference_cipher(key.as_bytes(), b"aad", seg as u32);
    for (last, body) in [
        (true, &b""[..]),
        (true, &b"more"[..]),
        (false, &[7u8; 16][..]),
    ] {
        let mut ext = short.clone();
        ext.extend_from_slice(&reference_segment(&cipher, 2, last, body));
        assert!(
            is_decryption(&open_vec(&key, b"aad", &ext)),
            "{last} {body:?}"
        );
    }
    // Sanity check of the forger: re-sealing the last segment as non-final and adding a
    // valid final one gives a stream that opens.
    let mut valid = short[..HEADER + chunk].to_vec();
    valid.extend_from_slice(&reference_segment(&cipher, 1, false, &short_pt[seg..]));
    valid.extend_from_slice(&reference_segment(&cipher, 2, true, b"more"));
    assert_eq!(
        open_vec(&key, b"aad", &valid).unwrap(),
        [&short_pt[..], b"more"].concat()
    );
    // Appending other bytes: an empty stream's final segment, one byte, a bare tag, the
    // stream's own segments again.
    let empty = seal_vec(&key, b"aad", seg as u32, b"");
    for tail in [
        &empty[HEADER..],
        &[0u8][..],
        &[0u8; TAG][..],
        &short[HEADER..],
    ] {
        let mut ext = short.clone();
        ext.extend_from_slice(tail);
        assert!(is_decryption(&open_vec(&key, b"aad", &ext)));
    }
    // Truncating the long stream to two segments (its second segment is not final).
    assert!(is_decryption(&open_vec(
        &key,
        b"aad",
        &long[..HEADER + 2 * chunk]
    )));
    // Swapping two segments, dropping a middle segment, duplicating one.
    let mut swapped = long.clone();
    swapped[HEADER..HEADER + 2 * chunk].copy_from_slice(
        &[
            &long[HEADER + chunk..HEADER + 2 * chunk],
            &long[HEADER..HEADER + chunk],
        ]
        .concat(),
    );
    assert!(is_decryption(&open_vec(&key, b"aad", &swapped)));
    let dropped = [&long[..HEADER + chunk], &long[HEADER + 2 * chunk..]].concat();
    assert!(is_decryption(&open_vec(&key, b"aad", &dropped)));
    let duplicated = [&long[..HEADER + chunk], &long[HEADER..]].concat();
    assert!(is_decryption(&open_vec(&key, b"aad", &duplicated)));
    // The originals still open.
    assert_eq!(open_vec(&key, b"aad", &short).unwrap(), short_pt);
    assert_eq!(open_vec(&key, b"aad", &long).unwrap(), long_pt);
}

fn fame_setup() -> (
    <Fame as Scheme>::PublicKey,
    <Fame as Scheme>::UserKey,
    ChaCha20Rng,
) {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let (pk, msk) = Fame::setup(&mut rng);
    let user = Fame::keygen(
        &pk,
        &msk,
        &AttributeSet::parse(["role:doctor"]).unwrap(),
        &mut rng,
    )
    .unwrap();
    (pk, user, rng)
}

#[test]
fn envelopes_and_data_streams_are_not_interchangeable() {
    let (pk, user, mut rng) = fame_setup();
    let policy: Policy = "role:doctor".parse().unwrap();
    let env = envelope::seal::<Fame, _>(&pk, &policy, b"aad", b"hello", &mut rng).unwrap();
    let data = seal_bytes_with_key(&key(9), b"aad", b"hello").unwrap();

    let expect_data = |r: medseal_abe::Result<Vec<u8>>| {
        assert!(
            matches!(
                r,
                Err(Error::Decode(DecodeError::WrongKind {
                    expected: "data stream",
                    found: 5
                }))
            ),
            "{r:?}"
        );
    };
    expect_data(open_bytes_with_key(&key(9), b"aad", &env));
    expect_data(open_with_key(&key(9), b"aad", env.as_slice(), Vec::new()).map(|_| Vec::new()));

    let wrong_kind = |r: &medseal_abe::Error| {
        matches!(
            r,
            Error::Decode(DecodeError::WrongKind {
                expected: "envelope",
                found: 6
            })
        )
    };
    assert!(wrong_kind(
        &envelope::open::<Fame>(&user, b"aad", &data).unwrap_err()
    ));
    assert!(wrong_kind(
        &envelope::open_stream::<Fame>(&user, b"aad", data.as_slice(), Vec::new()).unwrap_err()
    ));
    assert!(wrong_kind(&envelope::inspect::<Fame>(&data).unwrap_err()));
    assert!(wrong_kind(&envelope::inspect::<Bsw07>(&data).unwrap_err()));
    // The envelope is untouched and still opens.
    assert_eq!(
        envelope::open::<Fame>(&user, b"aad", &env).unwrap(),
        b"hello"
    );
}

#[test]
fn malformed_headers_are_decode_errors() {
    let key = key(10);
    let sealed = seal_vec(&key, b"aad", 16, b"some bytes");
    let patched = |i: usize, v: u8| {
        let mut b = sealed.clone();
        b[i] = v;
        open_vec(&key, b"aad", &b)
    };
    assert!(matches!(
        patched(0, b'X'),
        Err(Error::Decode(DecodeError::BadMagic))
    ));
    assert!(matches!(
        patched(4, 2),
        Err(Error::Decode(DecodeError::UnsupportedVersion(2)))
    ));
    assert!(matches!(
        patched(5, 4),
        Err(Error::Decode(DecodeError::WrongKind {
            expected: "data stream",
            found: 4
        }))
    ));
    for scheme in [1u8, 2, 255] {
        assert!(matches!(
            patched(6, scheme),
            Err(Error::Decode(DecodeError::WrongScheme { expected: "none", found })) if found == scheme
        ));
    }
    assert!(matches!(
        patched(7, 1),
        Err(Error::Decode(DecodeError::UnsupportedCurve(1)))
    ));
    // Segment sizes outside the limits are refused before anything is allocated (a
    // 4 GiB buffer would abort the test).
    for size in [0u32, MIN_SEGMENT_SIZE - 1, MAX_SEGMENT_SIZE + 1, u32::MAX] {
        let mut b = sealed.clone();
        b[8..12].copy_from_slice(&size.to_be_bytes());
        assert!(
            matches!(
                open_vec(&key, b"aad", &b),
                Err(Error::Decode(DecodeError::TooLarge {
                    what: "segment size",
                    ..
                }))
            ),
            "size {size}"
        );
    }
    // A different valid segment size changes the derived key.
    let mut b = sealed.clone();
    b[8..12].copy_from_slice(&17u32.to_be_bytes());
    assert!(is_decryption(&open_vec(&key, b"aad", &b)));
    // Shorter than a header.
    for cut in 0..HEADER {
        assert!(matches!(
            open_vec(&key, b"aad", &sealed[..cut]),
            Err(Error::Decode(DecodeError::Truncated))
        ));
    }
}

#[test]
fn sealing_rejects_segment_sizes_outside_the_limits() {
    let key = key(11);
    for size in [0u32, MIN_SEGMENT_SIZE - 1, MAX_SEGMENT_SIZE + 1, u32::MAX] {
        let mut out = Vec::new();
        assert!(matches!(
            seal_with_key(&key, b"", size, &b"x"[..], &mut out),
            Err(Error::LimitExceeded {
                what: "segment size",
                ..
            })
        ));
        assert!(out.is_empty(), "nothing is written before the check");
    }
    for size in [MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE] {
        let sealed = seal_vec(&key, b"", size, b"edge");
        assert_eq!(open_vec(&key, b"", &sealed).unwrap(), b"edge");
    }
}

#[test]
fn data_key_behaviour() {
    let a = key(12);
    let b = key(12);
    let c = key(13);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(DataKey::from_bytes(*a.as_bytes()), a);
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    assert_ne!(DataKey::generate(&mut rng), DataKey::generate(&mut rng));
    // Works with a `?Sized` RNG.
    let dyn_rng: &mut dyn rand_core::CryptoRngCore = &mut rng;
    let _ = DataKey::generate(dyn_rng);
    let debug = format!("{a:?}");
    assert!(debug.starts_with("DataKey"), "{debug}");
    let hex: String = a.as_bytes().iter().map(|x| format!("{x:02x}")).collect();
    assert!(!debug.contains(&hex[..8]), "Debug leaks key bytes: {debug}");
    assert!(!debug.contains('['), "Debug leaks key bytes: {debug}");
}

#[test]
fn sealing_is_deterministic_per_key_and_aad() {
    // Documented property: no per-stream randomness (hence: one plaintext per key and
    // aad). Different aad or key gives unrelated ciphertext.
    let key = key(14);
    let pt = payload(100, 14);
    let a = seal_vec(&key, b"rec-1/att-1", 32, &pt);
    assert_eq!(a, seal_vec(&key, b"rec-1/att-1", 32, &pt));
    let b = seal_vec(&key, b"rec-1/att-2", 32, &pt);
    assert_eq!(a[..HEADER], b[..HEADER]);
    assert_ne!(a[HEADER..HEADER + 32], b[HEADER..HEADER + 32]);
    let c = seal_vec(&self::key(15), b"rec-1/att-1", 32, &pt);
    assert_ne!(a[HEADER..HEADER + 32], c[HEADER..HEADER + 32]);
}

#[test]
fn wrapped_dek_end_to_end() {
    // The facade's pattern: the DEK sealed in an ABE envelope, the data under the DEK.
    let (pk, user, mut rng) = fame_setup();
    let policy: Policy = "role:doctor".parse().unwrap();
    let dek = DataKey::generate(&mut rng);
    let wrapped =
        envelope::seal::<Fame, _>(&pk, &policy, b"rec-7", dek.as_bytes(), &mut rng).unwrap();
    let attachment = payload(200_000, 7);
    let sealed = seal_bytes_with_key(&dek, b"rec-7/scan.dcm", &attachment).unwrap();

    let opened = envelope::open::<Fame>(&user, b"rec-7", &wrapped).unwrap();
    let bytes: [u8; 32] = opened.as_slice().try_into().unwrap();
    let dek2 = DataKey::from_bytes(bytes);
    assert_eq!(dek2, dek);
    assert_eq!(
        open_bytes_with_key(&dek2, b"rec-7/scan.dcm", &sealed).unwrap(),
        attachment
    );
}

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/data_stream.bin")
}

#[test]
fn golden_data_stream() {
    // Frozen bytes of format version 1; re-bless with MEDSEAL_BLESS=1 only together with
    // a format version bump.
    let key = DataKey::from_bytes(core::array::from_fn(|i| i as u8));
    let pt = b"golden attachment: chest X-ray, 2 views, no acute findings";
    let fresh = seal_vec(&key, b"record-1/attachment-1", 20, pt);
    let path = golden_path();
    if std::env::var_os("MEDSEAL_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (MEDSEAL_BLESS=1 creates it)", path.display()));
    assert!(
        committed == fresh,
        "data_stream.bin differs from fresh bytes"
    );
    assert_eq!(&committed[..12], b"MSAB\x01\x06\x00\x00\x00\x00\x00\x14");
    assert_eq!(
        open_vec(&key, b"record-1/attachment-1", &committed).unwrap(),
        pt
    );
}

// ---------------------------------------------------------------------------------
// 16 MiB through an OS pipe.

const BIG: u64 = 16 << 20;

#[test]
fn sixteen_mib_streams_through_a_pipe() {
    let mut expected = Hashing::new();
    std::io::copy(&mut Payload::new(BIG), &mut expected).unwrap();

    for seg in [DEFAULT_SEGMENT_SIZE, 4096] {
        let (reader, writer) = std::io::pipe().unwrap();
        let sealer = std::thread::spawn(move || {
            let mut writer = std::io::BufWriter::with_capacity(1 << 16, writer);
            seal_with_key(&key(16), b"big", seg, Payload::new(BIG), &mut writer).unwrap()
        });
        let mut opened = Hashing::new();
        let n = open_with_key(
            &key(16),
            b"big",
            std::io::BufReader::new(reader),
            &mut opened,
        )
        .unwrap();
        assert_eq!(sealer.join().unwrap(), BIG);
        assert_eq!(n, BIG);
        assert_eq!(opened.total, BIG);
        // The opener hands out plaintext a segment at a time, never the whole payload.
        assert!(opened.largest_write <= seg as usize, "seg {seg}");
        assert_eq!(
            opened.hash.clone().finalize(),
            expected.hash.clone().finalize()
        );
    }
}
