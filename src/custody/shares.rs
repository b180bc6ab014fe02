//! k-of-n backup shares of the authority key (Shamir's secret sharing over GF(256), by
//! the `blahaj` crate), each a self-describing line of text:
//!
//! ```text
//! medseal-authority-share v1 authority=<16 hex> set=<8 hex> share=<i>/<n> k=<k> <hex> check=<8 hex>
//! ```
//!
//! * `authority` is the first 8 bytes of SHA-256 over the authority's public key: it binds
//!   the share to one authority, and is checked again against the restored key;
//! * `set` is random per [`Authority::split`] call: shares of two backups of the same
//!   authority do not combine (their polynomials differ), so they are refused as such;
//! * `share=i/n` is the share's index (its Shamir x-coordinate) and the set's size, `k` the
//!   threshold;
//! * the payload is the share's bytes in lowercase hex (as long as twice the authority
//!   encoding: a file to store, not a line to type);
//! * `check` is the first 4 bytes of SHA-256 over the line before it (hex parsed, so case
//!   does not matter): a mistyped or damaged character is reported as such, naming the
//!   share.
//!
//! Anyone holding `k` shares of a set holds the master key. The GF(256) arithmetic uses
//! lookup tables indexed by secret bytes (not constant-time): split and combine on the
//! offline authority machine, not on a shared host.

use core::fmt;
use core::str::FromStr;

use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::abe::Encoding;
use crate::error::{Error, InvalidInput, Result};
use crate::identity::Authority;

const PREFIX: &str = "medseal-authority-share";
const VERSION: &str = "v1";
/// Longest share line accepted, in bytes (checked before parsing).
pub const MAX_SHARE_LINE: usize = 1 << 16;
const AUTHORITY_ID_LEN: usize = 8;
const SET_ID_LEN: usize = 4;
const CHECK_LEN: usize = 4;

/// One backup share of an authority key ([`Authority::split`]); [`Authority::combine`]
/// rebuilds the key from any `k` shares of a set.
///
/// `Display` is the share line; [`FromStr`] parses it (surrounding whitespace allowed).
/// `Debug` shows the header, never the payload, which is zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorityShare {
    authority: [u8; AUTHORITY_ID_LEN],
    set: [u8; SET_ID_LEN],
    index: u8,
    count: u8,
    threshold: u8,
    payload: Zeroizing<Vec<u8>>,
}

/// Why shares were refused (the payload of [`InvalidInput::Share`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShareError {
    /// `k` and `n` for [`Authority::split`] are out of range.
    #[error(
        "a backup needs 2 <= k <= n <= 255 shares (got {threshold} of {count}); a 1-of-n \
         share would be a plain copy of the key"
    )]
    Threshold {
        /// k.
        threshold: u8,
        /// n.
        count: u8,
    },
    /// The text is not a share line of the expected format.
    #[error("not a medseal authority share line: {0}")]
    Malformed(&'static str),
    /// The line's check value does not match: a character was changed or mistyped.
    #[error(
        "share {index}/{count} is damaged: its check value does not match (a character was \
         changed or mistyped)"
    )]
    Damaged {
        /// The index the line claims.
        index: u8,
        /// The set size the line claims.
        count: u8,
    },
    /// No shares were given.
    #[error("no shares given")]
    NoShares,
    /// Fewer shares than the threshold.
    #[error("{given} distinct share(s) given, {needed} needed (this set is {needed}-of-{count})")]
    TooFew {
        /// Distinct shares given.
        given: usize,
        /// The set's threshold k.
        needed: u8,
        /// The set's size n.
        count: u8,
    },
    /// The same share was given twice.
    #[error("share {index} was given twice")]
    Duplicate {
        /// Its index.
        index: u8,
    },
    /// Shares of different authorities.
    #[error("the shares belong to different authorities ({first} and {other})")]
    MixedAuthorities {
        /// The first share's authority id.
        first: String,
        /// Another authority id among the shares.
        other: String,
    },
    /// Shares of different backups (sets) of one authority.
    #[error(
        "the shares come from different backups (sets {first} and {other}): shares of \
         different backups do not combine; use {needed} shares of one set"
    )]
    MixedSets {
        /// The first share's set id.
        first: String,
        /// Another set id among the shares.
        other: String,
        /// The first set's threshold.
        needed: u8,
    },
    /// Shares of one set disagree on k, n or payload length (a share was altered along
    /// with its check value).
    #[error("share {index} disagrees with the others of its set on k, n or length")]
    Inconsistent {
        /// The share that disagrees.
        index: u8,
    },
    /// The shares passed every check but do not combine to a valid key of their
    /// authority (a share was altered along with its check value).
    #[error(
        "the shares do not combine to the authority key (one of them was altered along \
         with its check value)"
    )]
    DoNotCombine,
}

impl From<ShareError> for Error {
    fn from(e: ShareError) -> Self {
        Error::InvalidInput(InvalidInput::Share(e))
    }
}

/// The id binding shares to one authority: SHA-256 over its public key, first 8 bytes.
fn authority_id(authority: &Authority) -> [u8; AUTHORITY_ID_LEN] {
    let digest = Sha256::digest(authority.public_key().to_bytes());
    let mut id = [0u8; AUTHORITY_ID_LEN];
    id.copy_from_slice(&digest[..AUTHORITY_ID_LEN]);
    id
}

/// The caller's RNG (rand_core 0.6, the workspace's) as the rand_core 0.10 RNG `blahaj`
/// draws its polynomial coefficients from.
struct Rng010<'a, R: ?Sized>(&'a mut R);

impl<R: CryptoRngCore + ?Sized> rand_core_010::TryRng for Rng010<'_, R> {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.0.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

impl<R: CryptoRngCore + ?Sized> rand_core_010::TryCryptoRng for Rng010<'_, R> {}

impl Authority {
    /// Splits the secret encoding ([`Authority::to_bytes`]) into `count` shares of which
    /// any `threshold` rebuild it ([`Authority::combine`]) and fewer reveal nothing about
    /// it. The shares get a fresh random set id.
    ///
    /// # Errors
    /// [`ShareError::Threshold`] unless 2 <= `threshold` <= `count` (<= 255).
    pub fn split<R: CryptoRngCore + ?Sized>(
        &self,
        threshold: u8,
        count: u8,
        rng: &mut R,
    ) -> Result<Vec<AuthorityShare>> {
        if threshold < 2 || threshold > count {
            return Err(ShareError::Threshold { threshold, count }.into());
        }
        let mut set = [0u8; SET_ID_LEN];
        rng.fill_bytes(&mut set);
        let authority = authority_id(self);
        let secret = Zeroizing::new(self.to_bytes());
        let mut rng = Rng010(rng);
        let shares = blahaj::Sharks(threshold)
            .dealer_rng(&secret, &mut rng)
            .take(usize::from(count))
            .map(|share| {
                let bytes = Zeroizing::new(Vec::from(&share));
                // blahaj's shares are x = 1, 2, ..., n: the first byte, then y.
                let (x, y) = bytes.split_first().map_or((0, &[][..]), |(x, y)| (*x, y));
                AuthorityShare {
                    authority,
                    set,
                    index: x,
                    count,
                    threshold,
                    payload: Zeroizing::new(y.to_vec()),
                }
            })
            .collect();
        Ok(shares)
    }

    /// Rebuilds an authority from `k` or more shares of one set ([`Authority::split`]).
    ///
    /// # Errors
    /// [`ShareError`] (as [`InvalidInput::Share`]): [`ShareError::NoShares`],
    /// [`ShareError::MixedAuthorities`], [`ShareError::MixedSets`],
    /// [`ShareError::Inconsistent`], [`ShareError::Duplicate`], [`ShareError::TooFew`]
    /// (naming how many are needed), or [`ShareError::DoNotCombine`] if the result is not
    /// a valid key pair of the shares' authority.
    pub fn combine(shares: &[AuthorityShare]) -> Result<Self> {
        let first = shares.first().ok_or(ShareError::NoShares)?;
        let mut seen = [false; 256];
        for share in shares {
            if share.authority != first.authority {
                return Err(ShareError::MixedAuthorities {
                    first: first.authority_id(),
                    other: share.authority_id(),
                }
                .into());
            }
            if share.set != first.set {
                return Err(ShareError::MixedSets {
                    first: first.set_id(),
                    other: share.set_id(),
                    needed: first.threshold,
                }
                .into());
            }
            if (share.count, share.threshold, share.payload.len())
                != (first.count, first.threshold, first.payload.len())
            {
                return Err(ShareError::Inconsistent { index: share.index }.into());
            }
            let slot = &mut seen[usize::from(share.index)];
            if *slot {
                return Err(ShareError::Duplicate { index: share.index }.into());
            }
            *slot = true;
        }
        if shares.len() < usize::from(first.threshold) {
            return Err(ShareError::TooFew {
                given: shares.len(),
                needed: first.threshold,
                count: first.count,
            }
            .into());
        }
        let points: Vec<blahaj::Share> = shares
            .iter()
            .filter_map(|s| {
                let mut bytes = Zeroizing::new(Vec::with_capacity(s.payload.len() + 1));
                bytes.push(s.index);
                bytes.extend_from_slice(&s.payload);
                blahaj::Share::try_from(bytes.as_slice()).ok()
            })
            .collect();
        let secret = blahaj::Sharks(first.threshold)
            .recover(&points)
            .map(Zeroizing::new)
            .map_err(|_| ShareError::DoNotCombine)?;
        let authority = Authority::from_bytes(&secret).map_err(|_| ShareError::DoNotCombine)?;
        if authority_id(&authority) != first.authority {
            return Err(ShareError::DoNotCombine.into());
        }
        Ok(authority)
    }
}

impl AuthorityShare {
    /// The id of the share's authority (16 hex digits: SHA-256 of its public key, first 8
    /// bytes).
    pub fn authority_id(&self) -> String {
        hex::encode(self.authority)
    }

    /// Whether this share belongs to `authority`.
    pub fn belongs_to(&self, authority: &Authority) -> bool {
        authority_id(authority) == self.authority
    }

    /// The id of the share's set (8 hex digits, random per [`Authority::split`]).
    pub fn set_id(&self) -> String {
        hex::encode(self.set)
    }

    /// The share's index, 1..=n.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The set's size n.
    pub fn count(&self) -> u8 {
        self.count
    }

    /// The set's threshold k.
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// The line up to (not including) ` check=`: what the check value covers.
    fn body(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{PREFIX} {VERSION} authority={} set={} share={}/{} k={} {}",
            self.authority_id(),
            self.set_id(),
            self.index,
            self.count,
            self.threshold,
            Zeroizing::new(hex::encode(self.payload.as_slice())).as_str(),
        ))
    }

    /// The share line (what `Display` writes), in a buffer zeroized on drop.
    pub fn to_line(&self) -> Zeroizing<String> {
        let body = self.body();
        let check = line_check(&body);
        Zeroizing::new(format!("{} check={}", body.as_str(), hex::encode(check)))
    }
}

fn line_check(body: &str) -> [u8; CHECK_LEN] {
    let digest = Sha256::digest(body.as_bytes());
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&digest[..CHECK_LEN]);
    out
}

impl fmt::Display for AuthorityShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_line())
    }
}

impl fmt::Debug for AuthorityShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorityShare")
            .field("authority", &self.authority_id())
            .field("set", &self.set_id())
            .field("index", &self.index)
            .field("count", &self.count)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

fn field<'a>(token: Option<&'a str>, key: &str, what: &'static str) -> Result<&'a str, ShareError> {
    token
        .and_then(|t| t.strip_prefix(key))
        .and_then(|t| t.strip_prefix('='))
        .ok_or(ShareError::Malformed(what))
}

fn hex_array<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N], ShareError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|_| ShareError::Malformed(what))?;
    Ok(out)
}

fn number(text: &str, what: &'static str) -> Result<u8, ShareError> {
    // Canonical decimal only: `02` or `+2` would print differently than it parsed.
    if text.is_empty()
        || text.len() > 3
        || text.starts_with('0')
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ShareError::Malformed(what));
    }
    text.parse().map_err(|_| ShareError::Malformed(what))
}

impl FromStr for AuthorityShare {
    type Err = Error;

    /// Parses a share line.
    ///
    /// # Errors
    /// [`ShareError::Malformed`] for text that is not a share line (too long, wrong
    /// prefix or version, a missing or malformed field); [`ShareError::Damaged`] if the
    /// check value does not match (naming the index the line claims), including a payload
    /// that is not hex.
    fn from_str(line: &str) -> Result<Self> {
        parse(line).map_err(Error::from)
    }
}

fn parse(line: &str) -> Result<AuthorityShare, ShareError> {
    if line.len() > MAX_SHARE_LINE {
        return Err(ShareError::Malformed("the line is too long"));
    }
    let mut tokens = line.split_ascii_whitespace();
    if tokens.next() != Some(PREFIX) {
        return Err(ShareError::Malformed(
            "it does not start with `medseal-authority-share`",
        ));
    }
    if tokens.next() != Some(VERSION) {
        return Err(ShareError::Malformed(
            "unsupported version (this release reads v1)",
        ));
    }
    let authority = hex_array(
        field(tokens.next(), "authority", "authority id")?,
        "authority id",
    )?;
    let set = hex_array(field(tokens.next(), "set", "set id")?, "set id")?;
    let (index, count) = field(tokens.next(), "share", "share=i/n")?
        .split_once('/')
        .ok_or(ShareError::Malformed("share=i/n"))?;
    let (index, count) = (number(index, "share index")?, number(count, "share count")?);
    let threshold = number(field(tokens.next(), "k", "k")?, "k")?;
    let payload_hex = tokens.next().ok_or(ShareError::Malformed("payload"))?;
    let check: [u8; CHECK_LEN] =
        hex_array(field(tokens.next(), "check", "check value")?, "check value")?;
    if tokens.next().is_some() {
        return Err(ShareError::Malformed("text after the check value"));
    }
    let damaged = ShareError::Damaged { index, count };
    // A non-hex payload character is a typo like any other: reported as damage.
    let payload = Zeroizing::new(hex::decode(payload_hex).map_err(|_| damaged.clone())?);
    let share = AuthorityShare {
        authority,
        set,
        index,
        count,
        threshold,
        payload,
    };
    if line_check(&share.body()) != check {
        return Err(damaged);
    }
    // A line that checks out but states an impossible set was written by something else.
    if threshold < 2 || threshold > count || index == 0 || index > count || share.payload.is_empty()
    {
        return Err(ShareError::Malformed(
            "index, n and k must satisfy 1 <= i <= n and 2 <= k <= n",
        ));
    }
    Ok(share)
}
