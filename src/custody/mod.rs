//! Key custody: the authority's secret encoding sealed at rest under a passphrase
//! ([`Authority::seal`]) and split into k-of-n backup shares ([`Authority::split`], in
//! [`shares`]); a member's key sealed the same way ([`Member::seal`]).
//!
//! The operating procedure (offline authority machine, who holds which share, restoring,
//! rotating the passphrase) is in [`crate::notes::custody`].
//!
//! ```
//! use medseal::{Authority, AuthorityShare, Error, KdfParams};
//! use rand_core::OsRng;
//!
//! let authority = Authority::setup(&mut OsRng);
//! // Small parameters keep the example fast; keys at rest use `KdfParams::DEFAULT`.
//! let params = KdfParams::new(64, 1, 1)?;
//! let sealed = authority.seal(b"five random words go here", &params, &mut OsRng)?;
//! assert!(medseal::is_sealed(&sealed));
//! let opened = Authority::open_sealed(&sealed, b"five random words go here")?;
//! assert_eq!(opened.public_key(), authority.public_key());
//! assert!(matches!(
//!     Authority::open_sealed(&sealed, b"a guess"),
//!     Err(Error::WrongPassphrase)
//! ));
//!
//! // 2-of-3 backup shares, each a line of text for one holder.
//! let lines: Vec<String> = authority
//!     .split(2, 3, &mut OsRng)?
//!     .iter()
//!     .map(ToString::to_string)
//!     .collect();
//! let two: Vec<AuthorityShare> = vec![lines[2].parse()?, lines[0].parse()?];
//! let restored = Authority::combine(&two)?;
//! assert_eq!(restored.public_key(), authority.public_key());
//! assert!(Authority::combine(&two[..1]).is_err());
//! # Ok::<(), Error>(())
//! ```
//!
//! # Member keys
//!
//! A member key ([`Member::to_bytes`]: the CP-ABE key and the secret key of the member's
//! chain account) can be sealed under the member's passphrase with [`Member::seal`] and
//! opened with [`Member::open_sealed`]; [`is_sealed_member`] tells a sealed file from a
//! plain one. The file is the sealed authority file below with the magic `"MSMS"`, with
//! the same KDF, checks and errors. The two kinds never open as each other: either
//! `open_sealed` refuses the other kind's file with [`Error::Corrupt`] naming the mix-up,
//! before deriving anything. A copied sealed member key is useless without the passphrase
//! (each guess costs one Argon2id evaluation); once opened, the key is in the process's
//! memory while in use, like a plain one. There are no backup shares of member keys: a
//! member who forgets the passphrase needs a new key from the authority.
//!
//! ```
//! use medseal::{Authority, Error, KdfParams, Member};
//! use rand_core::OsRng;
//!
//! let authority = Authority::setup(&mut OsRng);
//! let signer = medseal::PrivateKeySigner::random();
//! let validity = medseal::Validity::months_from_now(12);
//! let member = authority.issue("alice", ["role:doctor"], validity, signer, &mut OsRng)?;
//! let params = KdfParams::new(64, 1, 1)?;
//! let sealed = member.seal(b"alice's own passphrase", &params, &mut OsRng)?;
//! assert!(medseal::is_sealed_member(&sealed) && !medseal::is_sealed(&sealed));
//! let opened = Member::open_sealed(&sealed, b"alice's own passphrase")?;
//! assert_eq!(opened.address(), member.address());
//! assert!(matches!(
//!     Member::open_sealed(&sealed, b"a guess"),
//!     Err(Error::WrongPassphrase)
//! ));
//! assert!(matches!(
//!     Authority::open_sealed(&sealed, b"alice's own passphrase"),
//!     Err(Error::Corrupt { .. })
//! ));
//! # Ok::<(), Error>(())
//! ```
//!
//! # The sealed file
//!
//! ```text
//! "MSAS" | version 1 | m KiB (u32) | t (u32) | p (u32) | salt (16) | nonce (12)
//!        | passphrase check (16) | u32 length | AES-256-GCM ciphertext and tag
//!        | checksum (16)
//! ```
//!
//! Integers are big-endian. Argon2id (version 0x13) with the stated parameters derives 48
//! bytes from the passphrase and salt: the first 32 are the AES-256-GCM key, the last 16
//! the passphrase check. The ciphertext is that of [`Authority::to_bytes`], with every
//! byte before the length as associated data. The checksum is the first 16 bytes of
//! SHA-256 over everything before it.
//!
//! Opening checks, in this order: the structure and the checksum (a damaged file is
//! [`Error::Corrupt`]), the KDF parameters against [`KdfParams`]' caps (before any
//! memory is allocated for them), the passphrase check ([`Error::WrongPassphrase`]), then
//! the AEAD tag ([`Error::Corrupt`]: the file was altered by someone who recomputed its
//! checksum) and the key pair ([`Authority::from_bytes`]). The passphrase check tells a
//! wrong passphrase from damage; it gives an attacker who holds the file nothing the
//! ciphertext does not (each guess still costs one Argon2id evaluation).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::abe::codec::{Reader, Writer};
use crate::error::{Error, InvalidInput, Result};
use crate::identity::{Authority, Member};

pub mod shares;

pub use shares::{AuthorityShare, MAX_SHARE_LINE, ShareError};

/// The magic bytes of a sealed authority key file.
pub const SEALED_MAGIC: [u8; 4] = *b"MSAS";
/// The magic bytes of a sealed member key file.
pub const SEALED_MEMBER_MAGIC: [u8; 4] = *b"MSMS";
const VERSION: u8 = 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const CHECK_LEN: usize = 16;
const CHECKSUM_LEN: usize = 16;
const KEY_LEN: usize = 32;
/// Longest sealed plaintext accepted (an authority or member encoding is a few KiB).
const MAX_SEALED_BYTES: usize = 1 << 20;
const WHAT: &str = "sealed authority key";

/// Argon2id cost parameters of a sealed authority or member key.
///
/// The default ([`KdfParams::DEFAULT`]) is m = 64 MiB, t = 3, p = 1: the memory and pass
/// count of RFC 9106's second recommended option (the one for machines that cannot spare
/// 2 GiB), with one lane because this implementation computes lanes one after another
/// (more lanes would cost us the same time and help only an attacker with parallel
/// hardware). It is above every OWASP Password Storage Cheat Sheet minimum (e.g. 19 MiB
/// with t = 2, 46 MiB with t = 1) and takes well under a second on a current laptop; the
/// authority unseals its key once per session, so the cost falls on guessing, not on use.
///
/// Parameters are bounded (see the `MAX_*` constants) both when sealing and when opening:
/// a crafted file cannot make the reader allocate more than [`KdfParams::MAX_MEMORY_KIB`]
/// or spin for hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

impl KdfParams {
    /// m = 64 MiB, t = 3, p = 1 (see the type's documentation for why).
    pub const DEFAULT: Self = Self {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };
    /// The largest memory cost accepted: 1 GiB (in KiB).
    pub const MAX_MEMORY_KIB: u32 = 1 << 20;
    /// The largest pass count accepted.
    pub const MAX_ITERATIONS: u32 = 32;
    /// The largest lane count accepted.
    pub const MAX_PARALLELISM: u32 = 16;

    /// Parameters of `memory_kib` KiB, `iterations` passes and `parallelism` lanes.
    ///
    /// # Errors
    /// [`InvalidInput::KdfParams`] unless 1 <= `iterations` <= [`Self::MAX_ITERATIONS`],
    /// 1 <= `parallelism` <= [`Self::MAX_PARALLELISM`] and 8 × `parallelism` <=
    /// `memory_kib` <= [`Self::MAX_MEMORY_KIB`] (Argon2 needs 8 KiB per lane).
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self> {
        let ok = (1..=Self::MAX_ITERATIONS).contains(&iterations)
            && (1..=Self::MAX_PARALLELISM).contains(&parallelism)
            && (8 * parallelism..=Self::MAX_MEMORY_KIB).contains(&memory_kib);
        if !ok {
            return Err(InvalidInput::KdfParams {
                memory_kib,
                iterations,
                parallelism,
            }
            .into());
        }
        Ok(Self {
            memory_kib,
            iterations,
            parallelism,
        })
    }

    /// Memory cost in KiB (m).
    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Number of passes (t).
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Number of lanes (p).
    pub fn parallelism(&self) -> u32 {
        self.parallelism
    }

    /// Derives the AES key and the passphrase check.
    fn derive(
        &self,
        passphrase: &[u8],
        salt: &[u8],
    ) -> Result<Zeroizing<[u8; KEY_LEN + CHECK_LEN]>> {
        let params = argon2::Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEY_LEN + CHECK_LEN),
        )
        .map_err(|_| InvalidInput::KdfParams {
            memory_kib: self.memory_kib,
            iterations: self.iterations,
            parallelism: self.parallelism,
        })?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; KEY_LEN + CHECK_LEN]);
        argon
            .hash_password_into(passphrase, salt, out.as_mut_slice())
            .map_err(|e| match e {
                argon2::Error::PwdTooLong => Error::InvalidInput(InvalidInput::Passphrase),
                _ => Error::OutOfMemory("the passphrase key derivation (Argon2id)"),
            })?;
        Ok(out)
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Whether `bytes` is a sealed authority key file ([`Authority::seal`]) rather than the
/// plain encoding ([`Authority::to_bytes`], magic `MSAU`) that earlier releases wrote.
/// Looks at the magic bytes only; [`Authority::open_sealed`] checks the rest.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(&SEALED_MAGIC)
}

/// Whether `bytes` is a sealed member key file ([`Member::seal`]) rather than the plain
/// encoding ([`Member::to_bytes`], magic `MSMK`). Looks at the magic bytes only;
/// [`Member::open_sealed`] checks the rest.
pub fn is_sealed_member(bytes: &[u8]) -> bool {
    bytes.starts_with(&SEALED_MEMBER_MAGIC)
}

/// What differs between the two kinds of sealed file: the magic and the words of the
/// errors. Everything else (layout, KDF, AEAD, checks) is shared.
struct Kind {
    magic: [u8; 4],
    what: &'static str,
    /// The other kind's magic, refused with `mistaken` rather than as damage.
    other_magic: [u8; 4],
    mistaken: &'static str,
    damaged: &'static str,
}

const AUTHORITY_FILE: Kind = Kind {
    magic: SEALED_MAGIC,
    what: WHAT,
    other_magic: SEALED_MEMBER_MAGIC,
    mistaken: "this is a sealed member key, not the authority's key",
    damaged: "checksum mismatch: the file is damaged (restore it from a copy or from the \
              backup shares)",
};

const MEMBER_FILE: Kind = Kind {
    magic: SEALED_MEMBER_MAGIC,
    what: "sealed member key",
    other_magic: SEALED_MAGIC,
    mistaken: "this is the sealed authority key, not a member's key",
    damaged: "checksum mismatch: the file is damaged (restore it from a copy, or ask the \
              authority for a new key)",
};

/// The parts of a sealed file, checked for structure, checksum and parameter bounds.
struct Sealed<'a> {
    header: &'a [u8],
    params: KdfParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
    check: [u8; CHECK_LEN],
    ciphertext: &'a [u8],
}

fn checksum(bytes: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::digest(bytes);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
}

impl<'a> Sealed<'a> {
    fn parse(kind: &Kind, bytes: &'a [u8]) -> Result<Self> {
        if bytes.starts_with(&kind.other_magic) {
            return Err(Error::inconsistent(kind.what, kind.mistaken));
        }
        let corrupt = |e| Error::corrupt(kind.what, e);
        let mut r = Reader::new(bytes, kind.magic, VERSION).map_err(corrupt)?;
        let (memory_kib, iterations, parallelism) = (
            r.u32().map_err(corrupt)?,
            r.u32().map_err(corrupt)?,
            r.u32().map_err(corrupt)?,
        );
        let salt = r.array().map_err(corrupt)?;
        let nonce = r.array().map_err(corrupt)?;
        let check = r.array().map_err(corrupt)?;
        let header_len = bytes.len() - r.remaining();
        let ciphertext = r
            .bytes("sealed key", MAX_SEALED_BYTES + 16)
            .map_err(corrupt)?;
        let body_len = bytes.len() - r.remaining();
        let stored: [u8; CHECKSUM_LEN] = r.array().map_err(corrupt)?;
        r.finish().map_err(corrupt)?;
        let (header, body) = (&bytes[..header_len], &bytes[..body_len]);
        if !bool::from(checksum(body).ct_eq(&stored)) {
            return Err(Error::inconsistent(kind.what, kind.damaged));
        }
        // Bounded before anything is derived, so no allocation follows from the file.
        let params = KdfParams::new(memory_kib, iterations, parallelism)?;
        Ok(Self {
            header,
            params,
            salt,
            nonce,
            check,
            ciphertext,
        })
    }
}

/// Seals `plaintext` as a file of `kind` (the format of the module documentation).
fn seal<R: CryptoRngCore + ?Sized>(
    kind: &Kind,
    plaintext: &[u8],
    passphrase: &[u8],
    params: &KdfParams,
    rng: &mut R,
) -> Result<Vec<u8>> {
    if passphrase.is_empty() {
        return Err(InvalidInput::Passphrase.into());
    }
    if plaintext.len() > MAX_SEALED_BYTES {
        return Err(Error::inconsistent(
            kind.what,
            "the key is too large to seal",
        ));
    }
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut nonce);
    let derived = params.derive(passphrase, &salt)?;
    let (key, check) = derived.split_at(KEY_LEN);
    let mut w = Writer::new(kind.magic, VERSION);
    w.u32(params.memory_kib)
        .u32(params.iterations)
        .u32(params.parallelism)
        .raw(&salt)
        .raw(&nonce)
        .raw(check);
    let header = w.finish();
    let cipher = Aes256Gcm::new_from_slice(key)
        .map_err(|_| Error::inconsistent(kind.what, "derived key length"))?;
    let ciphertext = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &header,
            },
        )
        .map_err(|_| Error::inconsistent(kind.what, "encryption failed"))?;
    let mut out = header;
    out.extend_from_slice(
        &u32::try_from(ciphertext.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&ciphertext);
    let sum = checksum(&out);
    out.extend_from_slice(&sum);
    Ok(out)
}

/// Opens a file of `kind` written by [`seal`]: its plaintext, to be decoded by the caller.
fn open(kind: &Kind, bytes: &[u8], passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let sealed = Sealed::parse(kind, bytes)?;
    let derived = sealed.params.derive(passphrase, &sealed.salt)?;
    let (key, check) = derived.split_at(KEY_LEN);
    if !bool::from(check.ct_eq(&sealed.check)) {
        return Err(Error::WrongPassphrase);
    }
    let cipher = Aes256Gcm::new_from_slice(key)
        .map_err(|_| Error::inconsistent(kind.what, "derived key length"))?;
    cipher
        .decrypt(
            &Nonce::from(sealed.nonce),
            Payload {
                msg: sealed.ciphertext,
                aad: sealed.header,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| {
            Error::inconsistent(
                kind.what,
                "the sealed key does not authenticate: the file was altered",
            )
        })
}

/// The KDF parameters of a sealed authority key file (to reseal it with the same cost,
/// or to show them), after checking its structure, checksum and parameter caps. Derives
/// nothing.
///
/// # Errors
/// [`Error::Corrupt`] for a damaged or malformed file (or a sealed member key);
/// [`InvalidInput::KdfParams`] for parameters above the caps.
pub fn sealed_params(bytes: &[u8]) -> Result<KdfParams> {
    Sealed::parse(&AUTHORITY_FILE, bytes).map(|s| s.params)
}

impl Authority {
    /// Encrypts [`Authority::to_bytes`] under `passphrase` (see the [module
    /// documentation](crate::custody) for the format): Argon2id with `params` and a fresh
    /// 16-byte salt, AES-256-GCM with a fresh nonce. The derived key and the plaintext are
    /// zeroized.
    ///
    /// # Errors
    /// [`InvalidInput::Passphrase`] for an empty (or absurdly long) passphrase;
    /// [`Error::OutOfMemory`] if the KDF's memory cannot be allocated.
    pub fn seal<R: CryptoRngCore + ?Sized>(
        &self,
        passphrase: &[u8],
        params: &KdfParams,
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        let plaintext = Zeroizing::new(self.to_bytes());
        seal(&AUTHORITY_FILE, &plaintext, passphrase, params, rng)
    }

    /// Opens a file written by [`Authority::seal`].
    ///
    /// # Errors
    /// [`Error::WrongPassphrase`] if `passphrase` is not the one it was sealed under;
    /// [`Error::Corrupt`] for a damaged, malformed or altered file, or a sealed member key
    /// ([`Member::seal`]); [`InvalidInput::KdfParams`] for KDF parameters above the caps
    /// (refused before any memory is allocated for them); [`Error::OutOfMemory`] if the
    /// KDF's memory cannot be allocated.
    pub fn open_sealed(bytes: &[u8], passphrase: &[u8]) -> Result<Self> {
        let plaintext = open(&AUTHORITY_FILE, bytes, passphrase)?;
        Authority::from_bytes(&plaintext)
    }
}

impl Member {
    /// Encrypts [`Member::to_bytes`] (the ABE key and the chain account's secret key)
    /// under `passphrase`: the format of a sealed authority key (see the [module
    /// documentation](crate::custody)) with the magic `MSMS`, so that neither kind of file
    /// opens as the other. The derived key and the plaintext are zeroized.
    ///
    /// # Errors
    /// [`InvalidInput::Passphrase`] for an empty (or absurdly long) passphrase;
    /// [`Error::OutOfMemory`] if the KDF's memory cannot be allocated.
    pub fn seal<R: CryptoRngCore + ?Sized>(
        &self,
        passphrase: &[u8],
        params: &KdfParams,
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        let plaintext = Zeroizing::new(self.to_bytes());
        seal(&MEMBER_FILE, &plaintext, passphrase, params, rng)
    }

    /// Opens a file written by [`Member::seal`].
    ///
    /// # Errors
    /// [`Error::WrongPassphrase`] if `passphrase` is not the one it was sealed under;
    /// [`Error::Corrupt`] for a damaged, malformed or altered file, or a sealed authority
    /// key ([`Authority::seal`]); [`InvalidInput::KdfParams`] for KDF parameters above the
    /// caps (refused before any memory is allocated for them); [`Error::OutOfMemory`] if
    /// the KDF's memory cannot be allocated.
    pub fn open_sealed(bytes: &[u8], passphrase: &[u8]) -> Result<Self> {
        let plaintext = open(&MEMBER_FILE, bytes, passphrase)?;
        Member::from_bytes(&plaintext)
    }
}
