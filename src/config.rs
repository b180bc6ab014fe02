//! Backend configuration: which content store and which chain a [`Vault`](crate::Vault)
//! uses.
//!
//! Sources, later ones winning: the defaults (embedded store and chain in the data
//! directory), the file `<data dir>/medseal.json`, then the environment:
//!
//! | variable | file key | meaning |
//! |---|---|---|
//! | `MEDSEAL_IPFS_API` | `ipfs_api` | Kubo RPC API base URL, e.g. `http://127.0.0.1:5001`; unset: embedded `LocalStore` in `<dir>/blocks` |
//! | `MEDSEAL_ETH_RPC` | `eth_rpc` | Ethereum JSON-RPC URL, e.g. `http://127.0.0.1:8545`; unset: embedded chain in `<dir>/chain.journal` |
//! | `MEDSEAL_REGISTRY` | `registry` | address of a deployed `MedsealRegistry` on that node; unset: deployed on first open and written to the file |
//! | `MEDSEAL_ETH_KEY` | `eth_key` | hex secret key of the account that deploys the registry (only needed to deploy) |
//!
//! ```json
//! { "ipfs_api": "http://127.0.0.1:5001", "eth_rpc": "http://127.0.0.1:8545",
//!   "registry": "0x5FbDB2315678afecb367f032d93F642f64180aa3" }
//! ```

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::chain::{Address, EmbeddedChain, Ledger, PrivateKeySigner, RpcChain};
use crate::error::{ConfigError, Error, Result};
use crate::fsutil::{read_optional, write_atomic};
use crate::storage::{ContentStore, KuboStore, LocalStore};

/// The name of the configuration file in the data directory.
pub const CONFIG_FILE: &str = "medseal.json";

/// With an Ethereum node: the file (in the data directory) caching the registry's event
/// logs between processes, so that a query fetches only blocks it has not seen (see
/// `RpcChain::with_log_cache_file`). Deleting it is safe.
pub const RPC_LOG_CACHE_FILE: &str = "rpc-logs.redb";

/// The account that deploys the embedded chain's registry (and is the vault's sender on
/// it): anvil's well-known development account 0
/// (`0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266`, [`crate::chain::dev_keys`]). Its key is
/// public, which is harmless on a chain only this data directory holds: it makes the
/// deployer known, so that [`Vault::adopt_authority`](crate::Vault::adopt_authority) can
/// hand the registry's authority role from it to the attribute authority's own account.
/// (An embedded chain created before this was deployed by a random, discarded key: its
/// authority role cannot be adopted.)
pub fn embedded_deployer() -> Result<PrivateKeySigner> {
    Ok(crate::chain::dev_keys::anvil_dev_signer(0)?)
}

/// Backend selection. `None` everywhere is the embedded default (no services).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Kubo RPC API base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipfs_api: Option<String>,
    /// Ethereum JSON-RPC URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eth_rpc: Option<String>,
    /// Registry contract address on `eth_rpc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// Hex secret key of the deploying account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eth_key: Option<String>,
}

impl core::fmt::Debug for Config {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Config")
            .field("ipfs_api", &self.ipfs_api)
            .field("eth_rpc", &self.eth_rpc)
            .field("registry", &self.registry)
            .field("eth_key", &self.eth_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Config {
    /// The embedded default.
    pub fn embedded() -> Self {
        Self::default()
    }

    /// Reads `<dir>/medseal.json` (if present), then applies the environment variables.
    ///
    /// # Errors
    /// [`Error::Config`] if the file is not valid JSON of this shape, [`Error::Io`] if it
    /// cannot be read.
    pub fn load(dir: &Path) -> Result<Self> {
        let mut config = Self::from_file(dir)?;
        config.apply_env(|name| std::env::var(name).ok());
        Ok(config)
    }

    /// Reads `<dir>/medseal.json` only (defaults if absent).
    ///
    /// # Errors
    /// As for [`Config::load`].
    pub fn from_file(dir: &Path) -> Result<Self> {
        let path = dir.join(CONFIG_FILE);
        match read_optional(&path)? {
            None => Ok(Self::default()),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| ConfigError::File { path, source }.into()),
        }
    }

    /// Overrides fields from variables (`MEDSEAL_IPFS_API`, `MEDSEAL_ETH_RPC`,
    /// `MEDSEAL_REGISTRY`, `MEDSEAL_ETH_KEY`); empty values are ignored.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = get("MEDSEAL_IPFS_API") {
            self.ipfs_api = Some(v);
        }
        if let Some(v) = get("MEDSEAL_ETH_RPC") {
            self.eth_rpc = Some(v);
        }
        if let Some(v) = get("MEDSEAL_REGISTRY") {
            self.registry = Some(v);
        }
        if let Some(v) = get("MEDSEAL_ETH_KEY") {
            self.eth_key = Some(v);
        }
    }

    /// Writes the file `<dir>/medseal.json` atomically (without `eth_key`, which stays in
    /// the environment).
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let mut public = self.clone();
        public.eth_key = None;
        let bytes =
            serde_json::to_vec_pretty(&public).map_err(|e| Error::corrupt("configuration", e))?;
        write_atomic(&dir.join(CONFIG_FILE), &bytes, false)
    }

    /// Opens the backends this configuration selects, for the data directory `dir`
    /// (created if needed). With an Ethereum node but no registry, one is deployed (with
    /// `eth_key`) and its address written to `<dir>/medseal.json`.
    pub async fn open_backends(
        &self,
        dir: &Path,
    ) -> Result<(Arc<dyn ContentStore>, Arc<dyn Ledger>)> {
        let config = self;
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let store: Arc<dyn ContentStore> = match &config.ipfs_api {
            Some(url) => Arc::new(KuboStore::new(url.clone())?),
            None => Arc::new(LocalStore::open(dir.join("blocks")).await?),
        };
        let ledger: Arc<dyn Ledger> = match &config.eth_rpc {
            None => Arc::new(EmbeddedChain::open(
                dir.join("chain.journal"),
                embedded_deployer()?,
            )?),
            Some(url) => {
                let signer = match &config.eth_key {
                    Some(hex_key) => hex_key
                        .trim_start_matches("0x")
                        .parse::<PrivateKeySigner>()
                        .map_err(|_| ConfigError::EthKey)?,
                    None => PrivateKeySigner::random(),
                };
                match &config.registry {
                    Some(address) => {
                        let address: Address = address
                            .parse()
                            .map_err(|_| ConfigError::Registry(address.clone()))?;
                        Arc::new(
                            RpcChain::connect(url, signer, address)
                                .await?
                                .with_log_cache_file(dir.join(RPC_LOG_CACHE_FILE))
                                .await?,
                        )
                    }
                    None => {
                        if config.eth_key.is_none() {
                            return Err(ConfigError::NoRegistry.into());
                        }
                        let chain = RpcChain::deploy(url, signer)
                            .await?
                            .with_log_cache_file(dir.join(RPC_LOG_CACHE_FILE))
                            .await?;
                        let mut saved = Config::from_file(dir)?;
                        saved.eth_rpc = Some(url.clone());
                        saved.registry = Some(chain.registry_address().to_string());
                        saved.save(dir)?;
                        Arc::new(chain)
                    }
                }
            }
        };
        Ok((store, ledger))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::from_file(dir.path()).unwrap(), Config::embedded());
        let mut config = Config::embedded();
        config.ipfs_api = Some("http://127.0.0.1:5001".into());
        config.eth_key = Some("secret".into());
        config.save(dir.path()).unwrap();
        let saved = Config::from_file(dir.path()).unwrap();
        assert_eq!(saved.ipfs_api, config.ipfs_api);
        assert_eq!(saved.eth_key, None, "the key is never written");
        let mut loaded = saved.clone();
        loaded.apply_env(|name| match name {
            "MEDSEAL_ETH_RPC" => Some("http://127.0.0.1:8545".into()),
            "MEDSEAL_IPFS_API" => Some("  ".into()),
            _ => None,
        });
        assert_eq!(loaded.eth_rpc.as_deref(), Some("http://127.0.0.1:8545"));
        assert_eq!(
            loaded.ipfs_api, saved.ipfs_api,
            "blank variables are ignored"
        );
        std::fs::write(dir.path().join(CONFIG_FILE), b"{\"ipfs\": 1}").unwrap();
        assert!(matches!(
            Config::from_file(dir.path()),
            Err(Error::Config(ConfigError::File { .. }))
        ));
        assert!(!format!("{config:?}").contains("secret"));
    }
}
