//! Decoding of revert data into typed [`LedgerError`]s.

use alloy::sol_types::SolInterface;

use crate::bindings::MedsealRegistry::MedsealRegistryErrors as Errors;
use crate::error::{EMPTY_FIELD_NAMES, LedgerError};
use crate::types::RecordId;

/// Maps the revert data of a registry call to the matching [`LedgerError`]; data that is not a
/// declared custom error becomes [`LedgerError::Reverted`].
pub(crate) fn decode_revert(data: &[u8]) -> LedgerError {
    let Ok(error) = Errors::abi_decode(data) else {
        return LedgerError::Reverted {
            data: data.to_vec(),
        };
    };
    // The errors about a record and one account (`user` or `caller`).
    macro_rules! record_and {
        ($e:ident, $variant:ident, $account:ident) => {
            LedgerError::$variant {
                record: RecordId($e.record),
                $account: $e.$account,
            }
        };
    }
    match error {
        Errors::NotOwner(e) => record_and!(e, NotOwner, caller),
        Errors::UnknownRecord(e) => LedgerError::UnknownRecord {
            record: RecordId(e.record),
        },
        // A field name the contract never reports cannot come from this contract.
        Errors::EmptyField(e) => match EMPTY_FIELD_NAMES
            .iter()
            .copied()
            .find(|name| *name == e.field)
        {
            Some(field) => LedgerError::EmptyField { field },
            None => LedgerError::Reverted {
                data: data.to_vec(),
            },
        },
        Errors::InvalidUser(e) => LedgerError::InvalidUser { user: e.user },
        Errors::AlreadyGranted(e) => record_and!(e, AlreadyGranted, user),
        Errors::NotGranted(e) => record_and!(e, NotGranted, user),
        Errors::AlreadyRequested(e) => record_and!(e, AlreadyRequested, user),
        Errors::NoPendingRequest(e) => record_and!(e, NoPendingRequest, user),
        Errors::NotAuthorized(e) => record_and!(e, NotAuthorized, caller),
        Errors::AlreadyAnchored(e) => LedgerError::AlreadyAnchored {
            anchorer: e.anchorer,
            partition: e.partition,
            last_seq: e.lastSeq,
        },
        Errors::AnchorOutOfOrder(e) => LedgerError::AnchorOutOfOrder {
            anchorer: e.anchorer,
            partition: e.partition,
            first_seq: e.firstSeq,
            last_seq: e.lastSeq,
        },
        Errors::LengthMismatch(e) => LedgerError::LengthMismatch {
            manifests: e.manifestCids.saturating_to(),
            policies: e.policyHashes.saturating_to(),
        },
        Errors::AlreadyPublished(e) => LedgerError::AlreadyPublished {
            publisher: e.publisher,
            partition: e.partition,
            epoch: e.epoch,
        },
        Errors::NotController(e) => LedgerError::NotController {
            record: RecordId(e.record),
            caller: e.caller,
            controller: e.controller,
        },
        Errors::InvalidSubject(e) => LedgerError::InvalidSubject { subject: e.subject },
        Errors::SubjectCountMismatch(e) => LedgerError::SubjectCountMismatch {
            manifests: e.manifestCids.saturating_to(),
            subjects: e.subjects.saturating_to(),
        },
        Errors::NotAuthority(e) => LedgerError::NotAuthority {
            caller: e.caller,
            authority: e.authority,
        },
        Errors::NotRegistrar(e) => LedgerError::NotRegistrar { caller: e.caller },
        Errors::UnknownRegistrar(e) => LedgerError::UnknownRegistrar {
            registrar: e.registrar,
        },
        Errors::NotMemberRegistrar(e) => LedgerError::NotMemberRegistrar {
            member: e.member,
            caller: e.caller,
            registrar: e.registrar,
        },
        Errors::UnknownMember(e) => LedgerError::UnknownMember { member: e.member },
        Errors::MemberIsRevoked(e) => LedgerError::MemberRevoked { member: e.member },
        Errors::InvalidAccount(e) => LedgerError::InvalidAccount { account: e.account },
        Errors::ReasonTooLong(e) => LedgerError::ReasonTooLong {
            length: e.length.saturating_to(),
            max: e.max.saturating_to(),
        },
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::Address;
    use alloy::sol_types::SolError;

    use super::*;
    use crate::bindings::MedsealRegistry;

    #[test]
    fn decodes_declared_errors() {
        let caller = Address::repeat_byte(7);
        let data = MedsealRegistry::NotOwner { record: 3, caller }.abi_encode();
        assert!(matches!(
            decode_revert(&data),
            LedgerError::NotOwner { record: RecordId(3), caller: c } if c == caller
        ));
        let data = MedsealRegistry::EmptyField {
            field: "policyHash".into(),
        }
        .abi_encode();
        assert!(matches!(
            decode_revert(&data),
            LedgerError::EmptyField {
                field: "policyHash"
            }
        ));
        let data = MedsealRegistry::EmptyField {
            field: "somethingElse".into(),
        }
        .abi_encode();
        assert!(matches!(
            decode_revert(&data),
            LedgerError::Reverted { data: d } if d == data
        ));
    }

    #[test]
    fn decodes_the_consent_and_registry_errors() {
        let (caller, controller) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let data = MedsealRegistry::NotController {
            record: 7,
            caller,
            controller,
        }
        .abi_encode();
        let error = decode_revert(&data);
        assert!(matches!(
            error,
            LedgerError::NotController { record: RecordId(7), caller: c, controller: k }
                if c == caller && k == controller
        ));
        let text = error.to_string();
        assert!(text.contains(&format!("only {controller}")), "{text}");
        assert!(text.contains("record #7"), "{text}");
        let data = MedsealRegistry::NotMemberRegistrar {
            member: caller,
            caller: controller,
            registrar: Address::repeat_byte(3),
        }
        .abi_encode();
        assert!(matches!(
            decode_revert(&data),
            LedgerError::NotMemberRegistrar { registrar, .. } if registrar == Address::repeat_byte(3)
        ));
        let data = MedsealRegistry::ReasonTooLong {
            length: alloy::primitives::U256::from(2000),
            max: alloy::primitives::U256::from(1024),
        }
        .abi_encode();
        assert!(matches!(
            decode_revert(&data),
            LedgerError::ReasonTooLong {
                length: 2000,
                max: 1024
            }
        ));
        let data = MedsealRegistry::EmptyField {
            field: "reason".into(),
        }
        .abi_encode();
        assert!(matches!(
            decode_revert(&data),
            LedgerError::EmptyField { field: "reason" }
        ));
    }

    #[test]
    fn unknown_data_is_kept_raw() {
        let data = [0xde, 0xad, 0xbe, 0xef];
        assert!(matches!(
            decode_revert(&data),
            LedgerError::Reverted { data: d } if d == data
        ));
    }
}
