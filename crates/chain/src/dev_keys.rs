//! Well-known development keys — **public knowledge, never use them for anything real.**
//!
//! These are the first accounts of the standard test mnemonic
//! (`test test test ... junk`) that anvil/hardhat fund at startup, so tests and the gas report
//! can sign on both the embedded chain and a local anvil node with the same addresses (which
//! makes gas numbers comparable byte for byte).

use alloy::signers::local::PrivateKeySigner;

use crate::error::LedgerError;

/// Private keys of anvil's dev accounts 0..=3 (hex, no `0x`).
pub const ANVIL_DEV_KEYS: [&str; 4] = [
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
];

/// The signer of anvil dev account `index` (0..=3).
pub fn anvil_dev_signer(index: usize) -> Result<PrivateKeySigner, LedgerError> {
    let key = ANVIL_DEV_KEYS
        .get(index)
        .ok_or_else(|| LedgerError::Config(format!("no anvil dev key #{index}")))?;
    key.parse()
        .map_err(|e| LedgerError::Config(format!("bad dev key #{index}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_account_zero_has_the_well_known_address() {
        let signer = anvil_dev_signer(0).unwrap();
        assert_eq!(
            signer.address().to_string(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
        assert!(anvil_dev_signer(4).is_err());
    }
}
