//! Prints the CID `ipfs add` would give a file, computed locally.
//!
//! ```text
//! cargo run --release --example cid -- FILE                  # = ipfs add FILE
//! cargo run --release --example cid -- FILE --cid-version 1  # = ipfs add --cid-version 1 --raw-leaves FILE
//! ```
//!
//! Reads the file in 256 KiB chunks: memory stays constant for any size.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs::File;
use std::process::ExitCode;

use medseal::storage::{Cid, ImportFormat, cid_of_reader};

const USAGE: &str = "usage: cid FILE [--cid-version 0|1]";

fn parse_args(args: &[String]) -> Result<(String, ImportFormat), String> {
    let mut file = None;
    let mut format = ImportFormat::CidV0;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--cid-version" => match rest.next().map(String::as_str) {
                Some("0") => format = ImportFormat::CidV0,
                Some("1") => format = ImportFormat::CidV1RawLeaves,
                Some(other) => return Err(format!("unsupported --cid-version {other:?} (0 or 1)")),
                None => return Err("--cid-version needs a value (0 or 1)".to_owned()),
            },
            "-h" | "--help" => return Err(USAGE.to_owned()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            path if file.is_none() => file = Some(path.to_owned()),
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    let file = file.ok_or_else(|| "missing FILE".to_owned())?;
    Ok((file, format))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, format) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("cid: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match cid_of_file(&path, format) {
        Ok(cid) => {
            println!("{cid}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("cid: {message}");
            ExitCode::FAILURE
        }
    }
}

fn cid_of_file(path: &str, format: ImportFormat) -> Result<Cid, String> {
    let file = File::open(path).map_err(|error| format!("cannot open {path}: {error}"))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(format!("{path} is a directory (only files are supported)"));
    }
    cid_of_reader(file, format).map_err(|error| format!("reading {path} failed: {error}"))
}
