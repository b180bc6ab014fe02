//! The gas targets (`gas_report::GAS_TARGETS`) hold on the embedded chain with 1000 records
//! already present, and gas does not depend on the number of records.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use medseal_chain::EmbeddedChain;
use medseal_chain::dev_keys::anvil_dev_signer;
use medseal_chain::gas_report::{self, DEFAULT_EXISTING_RECORDS, GAS_TARGETS};

#[tokio::test]
async fn gas_targets_hold_with_a_thousand_records() {
    let owner = EmbeddedChain::in_memory(anvil_dev_signer(0).unwrap()).unwrap();
    let user = owner.with_signer(anvil_dev_signer(1).unwrap());
    let report = gas_report::measure(&owner, &user, DEFAULT_EXISTING_RECORDS)
        .await
        .unwrap();
    eprintln!("{}", report.to_table());
    eprintln!("{}", report.to_json());
    assert!(report.violations().is_empty(), "{:?}", report.violations());
    for (op, _) in GAS_TARGETS {
        assert_eq!(report.target_holds(op), Some(true), "{op}");
    }
    assert!(report.to_json().ends_with(r#""targets_hold": true}"#));
    let n = DEFAULT_EXISTING_RECORDS;
    assert_eq!(
        report.get("createRecord"),
        report.get(&format!("createRecord@{n}"))
    );
    assert_eq!(
        report.get("anchorIndex"),
        report.get(&format!("anchorIndex@{n}"))
    );
    // Record 1001 = 0x03e9 has one more nonzero calldata byte than record 1 (16 - 4 = 12 gas);
    // storage costs are identical.
    let grant = report.get("grantAccess").unwrap();
    let grant_later = report.get(&format!("grantAccess@{n}")).unwrap();
    assert_eq!(grant_later, grant + 12);
    // Sanity: the seed system paid ~290k / ~72k; we must be far below.
    let create_target = gas_report::target("createRecord").unwrap();
    assert!(report.get("createRecord").unwrap() < create_target);
}
