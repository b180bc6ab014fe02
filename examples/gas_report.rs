//! Gas used by every `MedsealRegistry` operation, on the embedded chain or on a JSON-RPC node.
//!
//! ```text
//! cargo run --release --example gas_report -- [--json] [--rpc URL] [--records N]
//! ```
//!
//! Deploys a fresh registry (embedded revm chain by default; with `--rpc`, on the node at URL
//! using anvil's dev accounts 0 and 1), runs a fixed sequence of calls and prints a table of the
//! gas each used, with the design targets (`gas_report::GAS_TARGETS`). `createRecord@N` etc. are
//! measured after `N` records exist (default 1000) to show that gas does not grow with the
//! registry. With `--json` the last line is one JSON object with the gas and the verdict,
//! `{"gas": {"createRecord": N, ...}, "targets": {"createRecord": {"max": N, "holds": true},
//! ...}, "targets_hold": true}`. Exits with status 1 if a target is missed.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use medseal_chain::dev_keys::anvil_dev_signer;
use medseal_chain::gas_report::{self, GasReport};
use medseal_chain::{EmbeddedChain, LedgerError, RpcChain};

struct Args {
    json: bool,
    rpc: Option<String>,
    records: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        json: false,
        rpc: None,
        records: gas_report::DEFAULT_EXISTING_RECORDS,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => args.json = true,
            "--rpc" => args.rpc = Some(it.next().ok_or("--rpc needs a URL")?),
            "--records" => {
                args.records = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--records needs a number")?;
            }
            "-h" | "--help" => {
                return Err("usage: gas_report [--json] [--rpc URL] [--records N]".to_owned());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

async fn run(args: &Args) -> Result<(String, GasReport), LedgerError> {
    match &args.rpc {
        None => {
            let owner = EmbeddedChain::in_memory(anvil_dev_signer(0)?)?;
            let user = owner.with_signer(anvil_dev_signer(1)?);
            let report = gas_report::measure(&owner, &user, args.records).await?;
            Ok(("embedded revm chain (PRAGUE)".to_owned(), report))
        }
        Some(url) => {
            let owner = RpcChain::deploy(url, anvil_dev_signer(0)?).await?;
            let user = owner.with_signer(anvil_dev_signer(1)?);
            let report = gas_report::measure(&owner, &user, args.records).await?;
            Ok((
                format!("JSON-RPC node {url} (chain id {})", owner.chain_id()),
                report,
            ))
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (chain, report) = match runtime.block_on(run(&args)) {
        Ok(result) => result,
        Err(e) => {
            eprintln!("gas_report failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("MedsealRegistry gas on {chain}");
    println!("(@N: measured with N records already in the registry)");
    print!("{}", report.to_table());
    let missed = report.violations();
    for line in &missed {
        println!("TARGET MISSED: {line}");
    }
    if args.json {
        println!("{}", report.to_json());
    }
    if missed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
