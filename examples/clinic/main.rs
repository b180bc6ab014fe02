//! `clinic`: the web portal of a medseal data directory, for the people of a hospital.
//!
//! ```sh
//! cargo run --release --example clinic -- [--dir DIR] [--listen 127.0.0.1:8080]
//! ```
//!
//! It serves the records of the data directory that the `medseal` command-line example
//! sets up (`medseal init`, `authority setup`, `keygen`, `authority register`): the
//! embedded backends by default, the IPFS node and Ethereum node of the directory's
//! configuration otherwise. A member signs in with a key that the directory holds
//! (`members/<name>.key`). Everything a page shows comes from the public [`Vault`] API.
//!
//! It listens on loopback unless told otherwise; bound to another address it warns, marks
//! its cookies `Secure` (put it behind a TLS-terminating proxy) and refuses keys that are
//! not protected by a passphrase.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod admin;
mod app;
mod assets;
mod auth;
#[cfg(test)]
mod browser;
mod failure;
mod pages;
mod records;
mod spool;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use medseal::Vault;

/// The clinic portal: a web interface to a medseal data directory.
#[derive(Debug, Parser)]
#[command(name = "clinic", version)]
struct Args {
    /// The data directory (as for the `medseal` command; default `MEDSEAL_DIR` if set,
    /// else `medseal-data`).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Address to listen on. Anything but loopback is reachable from other machines.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Largest upload accepted, in MiB (a record's attachments together).
    #[arg(long, default_value_t = 2048)]
    max_upload_mib: u64,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let dir = args
        .dir
        .or_else(|| std::env::var_os("MEDSEAL_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("medseal-data"));
    if !dir.is_dir() {
        return Err(format!(
            "data directory {} does not exist (create it with `medseal init`, or pass --dir)",
            dir.display()
        ));
    }
    let vault = Vault::open(&dir)
        .await
        .map_err(|e| format!("cannot open the vault in {}: {e}", dir.display()))?;
    let loopback = args.listen.ip().is_loopback();
    if !loopback {
        eprintln!(
            "warning: listening on {}, reachable from other machines. Serve it only behind \
             a TLS-terminating proxy (its cookies are marked Secure), and protect every \
             member key with a passphrase (`medseal protect NAME`): unprotected keys cannot \
             sign in here.",
            args.listen
        );
    }
    let config = app::Config {
        dir: dir.clone(),
        loopback,
        max_upload: args.max_upload_mib.saturating_mul(1024 * 1024),
        ..app::Config::default()
    };
    let state = app::App::new(vault, config);
    let router = app::router(state.clone());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    println!("clinic: serving {} on http://{local}/", dir.display());
    tokio::spawn(app::sweep_sessions(state));
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("server error: {e}"))
}
