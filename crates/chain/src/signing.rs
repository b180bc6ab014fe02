//! Building, signing, encoding and verifying EIP-1559 transactions (shared by both chains).

use alloy::consensus::transaction::SignerRecoverable;
use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::{Decodable2718, Encodable2718};
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;

use crate::error::LedgerError;
use crate::error::LedgerResult;

/// The unsigned fields of a transaction to sign.
#[derive(Debug, Clone)]
pub(crate) struct UnsignedCall {
    /// EIP-155 chain id.
    pub(crate) chain_id: u64,
    /// Sender nonce.
    pub(crate) nonce: u64,
    /// Gas limit.
    pub(crate) gas_limit: u64,
    /// EIP-1559 max fee per gas (wei).
    pub(crate) max_fee_per_gas: u128,
    /// EIP-1559 max priority fee per gas (wei).
    pub(crate) max_priority_fee_per_gas: u128,
    /// Call target, or contract creation.
    pub(crate) to: TxKind,
    /// Calldata (or init code).
    pub(crate) input: Vec<u8>,
}

/// A signed transaction, EIP-2718 encoded, with its hash.
#[derive(Debug, Clone)]
pub(crate) struct SignedTx {
    /// The transaction hash.
    pub(crate) hash: B256,
    /// The EIP-2718 encoding (type byte + RLP), as sent with `eth_sendRawTransaction`.
    pub(crate) raw: Vec<u8>,
}

/// Signs `call` as an EIP-1559 transaction.
pub(crate) fn sign_call(signer: &PrivateKeySigner, call: UnsignedCall) -> LedgerResult<SignedTx> {
    let tx = TxEip1559 {
        chain_id: call.chain_id,
        nonce: call.nonce,
        gas_limit: call.gas_limit,
        max_fee_per_gas: call.max_fee_per_gas,
        max_priority_fee_per_gas: call.max_priority_fee_per_gas,
        to: call.to,
        value: U256::ZERO,
        access_list: Default::default(),
        input: Bytes::from(call.input),
    };
    let signature = signer
        .sign_hash_sync(&tx.signature_hash())
        .map_err(|e| LedgerError::InvalidTransaction(format!("signing failed: {e}")))?;
    let envelope = TxEnvelope::from(tx.into_signed(signature));
    Ok(SignedTx {
        hash: *envelope.tx_hash(),
        raw: envelope.encoded_2718(),
    })
}

/// A decoded EIP-1559 transaction with the sender recovered from its signature.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedTx {
    /// The transaction hash.
    pub(crate) hash: B256,
    /// The signer, recovered from the signature (never taken on trust).
    pub(crate) sender: Address,
    /// The transaction body.
    pub(crate) tx: TxEip1559,
}

/// Decodes an EIP-2718 encoded EIP-1559 transaction and recovers its sender.
pub(crate) fn decode_and_recover(raw: &[u8]) -> LedgerResult<VerifiedTx> {
    let mut buf = raw;
    let envelope = TxEnvelope::decode_2718(&mut buf)
        .map_err(|e| LedgerError::InvalidTransaction(format!("undecodable transaction: {e}")))?;
    if !buf.is_empty() {
        return Err(LedgerError::InvalidTransaction(
            "trailing bytes after the transaction".into(),
        ));
    }
    let sender = envelope
        .recover_signer()
        .map_err(|e| LedgerError::InvalidTransaction(format!("bad signature: {e}")))?;
    let hash = *envelope.tx_hash();
    match envelope {
        TxEnvelope::Eip1559(signed) => Ok(VerifiedTx {
            hash,
            sender,
            tx: signed.strip_signature(),
        }),
        other => Err(LedgerError::InvalidTransaction(format!(
            "only EIP-1559 transactions are accepted, got type {}",
            other.tx_type()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(nonce: u64) -> UnsignedCall {
        UnsignedCall {
            chain_id: 7,
            nonce,
            gas_limit: 100_000,
            max_fee_per_gas: 0,
            max_priority_fee_per_gas: 0,
            to: TxKind::Call(Address::repeat_byte(1)),
            input: vec![1, 2, 3],
        }
    }

    #[test]
    fn round_trip_recovers_the_signer() {
        let signer = PrivateKeySigner::random();
        let signed = sign_call(&signer, call(5)).unwrap();
        let verified = decode_and_recover(&signed.raw).unwrap();
        assert_eq!(verified.sender, signer.address());
        assert_eq!(verified.hash, signed.hash);
        assert_eq!(verified.tx.nonce, 5);
        assert_eq!(verified.tx.input.as_ref(), &[1, 2, 3]);
    }

    #[test]
    fn tampered_transaction_does_not_recover_the_signer() {
        let signer = PrivateKeySigner::random();
        let mut raw = sign_call(&signer, call(0)).unwrap().raw;
        // Flip a bit in the calldata: the signature no longer matches this sender.
        let at = raw.len() - 70;
        raw[at] ^= 1;
        match decode_and_recover(&raw) {
            Ok(v) => assert_ne!(v.sender, signer.address()),
            Err(LedgerError::InvalidTransaction(_)) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}
