//! The member registry seen from the client: attribute hashes, and the decoding of the
//! registry's storage answers and events into [`MemberInfo`], [`RegisteredMember`] and
//! [`Registrar`].

use std::collections::HashMap;
use std::num::NonZeroU32;

use alloy::primitives::{Address, B256, keccak256};
use alloy::sol_types::SolEvent;

use crate::backend::ChainLog;
use crate::bindings::MedsealRegistry as R;
use crate::error::{LedgerError, LedgerResult};
use crate::events::{decode_event, in_chain_order};
use crate::types::{MemberInfo, MemberRevocation, MemberStatus, RegisteredMember, Registrar};

/// The registry's name of an attribute (the key of its version counter): keccak256 of the
/// attribute's text, exactly as given (e.g. `role:doctor`). Pass these to
/// [`Ledger::revoke_member`](crate::Ledger::revoke_member) and
/// [`Ledger::attribute_versions`](crate::Ledger::attribute_versions).
pub fn attribute_hash(attribute: &str) -> B256 {
    keccak256(attribute.as_bytes())
}

/// The contract's `MemberStatus` value.
pub(crate) fn member_status(value: u8) -> LedgerResult<MemberStatus> {
    match value {
        0 => Ok(MemberStatus::Unregistered),
        1 => Ok(MemberStatus::Active),
        2 => Ok(MemberStatus::Revoked),
        other => Err(LedgerError::Corrupt(format!(
            "the registry returned unknown member status {other}"
        ))),
    }
}

/// A stored registration as [`MemberInfo`].
pub(crate) fn member_info(member: Address, stored: &R::Member) -> LedgerResult<MemberInfo> {
    Ok(MemberInfo {
        member,
        status: member_status(stored.status)?,
        registrar: stored.registrar,
        attributes_digest: stored.attributesDigest,
        valid_through: NonZeroU32::new(stored.validThrough),
    })
}

/// Folds `MemberRegistered` / `MemberRevoked` logs (any order; sorted here) into one entry per
/// member, in the order of first registration: the latest registration, plus the revocation.
pub(crate) fn fold_members(logs: Vec<ChainLog>) -> LedgerResult<Vec<RegisteredMember>> {
    let mut members: Vec<RegisteredMember> = Vec::new();
    let mut position: HashMap<Address, usize> = HashMap::new();
    for log in in_chain_order(logs) {
        if log.topics.first() == Some(&R::MemberRegistered::SIGNATURE_HASH) {
            let e = decode_event::<R::MemberRegistered>(&log)?;
            let entry = RegisteredMember {
                member: e.member,
                name: e.name,
                registrar: e.registrar,
                attributes: e.attributes,
                attributes_digest: e.attributesDigest,
                valid_through: NonZeroU32::new(e.validThrough),
                block_number: log.block_number,
                revoked: None,
            };
            match position.get(&e.member) {
                Some(&i) => {
                    let slot = members
                        .get_mut(i)
                        .ok_or_else(|| LedgerError::Corrupt("member index out of range".into()))?;
                    if slot.revoked.is_some() {
                        return Err(LedgerError::Corrupt(format!(
                            "MemberRegistered for {} after its revocation",
                            e.member
                        )));
                    }
                    *slot = entry;
                }
                None => {
                    position.insert(e.member, members.len());
                    members.push(entry);
                }
            }
        } else {
            let e = decode_event::<R::MemberRevoked>(&log)?;
            let slot = position
                .get(&e.member)
                .and_then(|&i| members.get_mut(i))
                .ok_or_else(|| {
                    LedgerError::Corrupt(format!(
                        "MemberRevoked for {}, which was never registered",
                        e.member
                    ))
                })?;
            slot.revoked = Some(MemberRevocation {
                by: e.by,
                reason: e.reason,
                block_number: log.block_number,
            });
        }
    }
    Ok(members)
}

/// Folds `RegistrarAppointed` / `RegistrarDismissed` logs into one entry per registrar, in
/// the order of first appointment.
pub(crate) fn fold_registrars(logs: Vec<ChainLog>) -> LedgerResult<Vec<Registrar>> {
    let mut registrars: Vec<Registrar> = Vec::new();
    let mut position: HashMap<Address, usize> = HashMap::new();
    for log in in_chain_order(logs) {
        if log.topics.first() == Some(&R::RegistrarAppointed::SIGNATURE_HASH) {
            let e = decode_event::<R::RegistrarAppointed>(&log)?;
            let entry = Registrar {
                registrar: e.registrar,
                name: e.name,
                appointed: true,
            };
            match position
                .get(&e.registrar)
                .and_then(|&i| registrars.get_mut(i))
            {
                Some(slot) => *slot = entry,
                None => {
                    position.insert(e.registrar, registrars.len());
                    registrars.push(entry);
                }
            }
        } else {
            let e = decode_event::<R::RegistrarDismissed>(&log)?;
            let slot = position
                .get(&e.registrar)
                .and_then(|&i| registrars.get_mut(i))
                .ok_or_else(|| {
                    LedgerError::Corrupt(format!(
                        "RegistrarDismissed for {}, which was never appointed",
                        e.registrar
                    ))
                })?;
            slot.appointed = false;
        }
    }
    Ok(registrars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_hash_is_keccak_of_the_text() {
        assert_eq!(
            attribute_hash("role:doctor"),
            keccak256(b"role:doctor".as_slice())
        );
        assert_ne!(attribute_hash("role:doctor"), attribute_hash("role:nurse"));
    }

    #[test]
    fn unknown_status_is_corrupt() {
        assert_eq!(member_status(1).unwrap(), MemberStatus::Active);
        assert!(matches!(member_status(3), Err(LedgerError::Corrupt(_))));
    }
}
