//! The record manifest: what is stored (content-addressed) for one record.
//!
//! ```text
//! manifest  = "MSMF" | 1 | u32 len | capsule | u32 len | sealed body
//! capsule   = medseal-abe envelope (FAME) of the 32-byte record key (DEK) under the
//!             record's access policy; aad = "medseal-record-capsule-v1" | SHA-256(sealed body)
//! body      = data stream sealed with the DEK; aad = "medseal-record-body-v1";
//!             plaintext = JSON { name, policy, attachments: [{ name, content_type, size, cid }] }
//! attachment i = data stream sealed with the DEK; aad = "medseal-attachment-v1" | u32 i
//! ```
//!
//! The capsule's policy is public (CP-ABE ciphertexts carry it): the record's base
//! policy `or` the owner's and grantees' `id:` attributes. Everything else about the
//! record — name, attachment names, types, sizes, CIDs — is in the sealed body. Sharing
//! replaces only the capsule: the body and the attachments keep their bytes and CIDs.
//! The capsule binds the body's digest, so a capsule cannot be moved onto another body.

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::abe::envelope::{self, DataKey};
use crate::abe::{Fame, Policy, fame};
use crate::error::{Error, Result};
use crate::fsutil::{BinReader, BinWriter};

/// Largest manifest accepted on read.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Most attachments per record.
pub const MAX_ATTACHMENTS: usize = 1024;

const CAPSULE_AAD: &[u8] = b"medseal-record-capsule-v1";
const BODY_AAD: &[u8] = b"medseal-record-body-v1";
const ATTACHMENT_AAD: &[u8] = b"medseal-attachment-v1";

/// One attachment as listed in a record's sealed manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentInfo {
    /// File name.
    pub name: String,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// CID of the encrypted attachment (a UnixFS file).
    pub cid: String,
}

/// The sealed part of a manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Body {
    pub(crate) name: String,
    /// The record's base policy (without the owner's and grantees' `id:` attributes).
    pub(crate) policy: String,
    pub(crate) attachments: Vec<AttachmentInfo>,
}

/// A parsed (still sealed) manifest.
pub(crate) struct Manifest {
    pub(crate) capsule: Vec<u8>,
    pub(crate) sealed_body: Vec<u8>,
}

/// The associated data of attachment `index`.
pub(crate) fn attachment_aad(index: u32) -> Vec<u8> {
    let mut aad = ATTACHMENT_AAD.to_vec();
    aad.extend_from_slice(&index.to_be_bytes());
    aad
}

fn capsule_aad(sealed_body: &[u8]) -> Vec<u8> {
    let mut aad = CAPSULE_AAD.to_vec();
    aad.extend_from_slice(&Sha256::digest(sealed_body));
    aad
}

impl Manifest {
    /// Seals `body` under `dek` and wraps `dek` under `policy`.
    pub(crate) fn seal<R: CryptoRngCore + ?Sized>(
        pk: &fame::PublicKey,
        policy: &Policy,
        dek: &DataKey,
        body: &Body,
        rng: &mut R,
    ) -> Result<Self> {
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(body).map_err(|e| Error::corrupt("manifest body", e))?,
        );
        let sealed_body = envelope::seal_bytes_with_key(dek, BODY_AAD, &json)?;
        let mut manifest = Self {
            capsule: Vec::new(),
            sealed_body,
        };
        manifest.rewrap(pk, policy, dek, rng)?;
        Ok(manifest)
    }

    /// Replaces the capsule with one wrapping `dek` under `policy` (the body is unchanged).
    pub(crate) fn rewrap<R: CryptoRngCore + ?Sized>(
        &mut self,
        pk: &fame::PublicKey,
        policy: &Policy,
        dek: &DataKey,
        rng: &mut R,
    ) -> Result<()> {
        self.capsule = envelope::seal::<Fame, _>(
            pk,
            policy,
            &capsule_aad(&self.sealed_body),
            dek.as_bytes(),
            rng,
        )?;
        Ok(())
    }

    /// The policy of the capsule (public).
    pub(crate) fn policy(&self) -> Result<Policy> {
        Ok(envelope::inspect::<Fame>(&self.capsule)?.policy().clone())
    }

    /// Opens the capsule with a user key. `PolicyNotSatisfied` passes through as
    /// [`crate::abe::Error::PolicyNotSatisfied`].
    pub(crate) fn open_key(&self, key: &fame::UserKey) -> Result<DataKey, crate::abe::Error> {
        let mut plain =
            envelope::open::<Fame>(key, &capsule_aad(&self.sealed_body), &self.capsule)?;
        let bytes =
            <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| crate::abe::Error::Decryption);
        zeroize::Zeroize::zeroize(&mut plain);
        Ok(DataKey::from_bytes(bytes?))
    }

    /// Decrypts and parses the body.
    pub(crate) fn open_body(&self, dek: &DataKey) -> Result<Body> {
        let json = zeroize::Zeroizing::new(
            envelope::open_bytes_with_key(dek, BODY_AAD, &self.sealed_body)
                .map_err(|_| Error::Tampered("manifest body does not authenticate".into()))?,
        );
        let body: Body =
            serde_json::from_slice(&json).map_err(|e| Error::corrupt("manifest body", e))?;
        if body.attachments.len() > MAX_ATTACHMENTS {
            return Err(Error::corrupt("manifest body", "too many attachments"));
        }
        Ok(body)
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        BinWriter::new(b"MSMF", 1)
            .bytes(&self.capsule)
            .bytes(&self.sealed_body)
            .finish()
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(Error::corrupt("manifest", "too large"));
        }
        let mut r = BinReader::new(bytes, b"MSMF", 1, "manifest")?;
        let capsule = r.bytes(MAX_MANIFEST_BYTES)?.to_vec();
        let sealed_body = r.bytes(MAX_MANIFEST_BYTES)?.to_vec();
        r.finish()?;
        envelope::inspect::<Fame>(&capsule)?;
        Ok(Self {
            capsule,
            sealed_body,
        })
    }
}
