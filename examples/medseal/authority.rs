//! Setting up: `init`, `authority setup`, `authority keygen`, `authority renew`.

use std::fmt;
use std::path::Path;

use clap::Args;
use medseal::abe::Encoding;
use medseal::chain::U256;
use medseal::{
    AUTHORITY_PUBLIC_KEY_FILE, Authority, CONFIG_FILE, Config, Member, Month, PrivateKeySigner,
    Validity, Vault,
};
use rand_core::OsRng;
use serde::Serialize;

use crate::Ctx;
use crate::fail::{CliResult, Failure};
use crate::local::{self, AUTHORITY_KEY_FILE, open};
use crate::report::as_display;

/// The backends a data directory uses (`None`: the embedded one).
#[derive(Serialize)]
pub struct Backends {
    ipfs_api: Option<String>,
    eth_rpc: Option<String>,
    registry: Option<String>,
}

#[derive(Serialize)]
pub struct Initialised {
    dir: String,
    config_written: bool,
    backends: Backends,
    authority_installed: bool,
}

impl fmt::Display for Initialised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = Path::new(&self.dir);
        writeln!(f, "initialised {}", self.dir)?;
        if self.config_written {
            writeln!(f, "  config:    {}", dir.join(CONFIG_FILE).display())?;
        }
        let embedded = |file| format!("embedded ({})", dir.join(file).display());
        let b = &self.backends;
        let store = match &b.ipfs_api {
            Some(url) => format!("IPFS (Kubo API {url})"),
            None => embedded("blocks"),
        };
        let chain = match (&b.eth_rpc, &b.registry) {
            (Some(url), Some(registry)) => format!("Ethereum node {url}, registry {registry}"),
            (Some(url), None) => format!("Ethereum node {url}"),
            (None, _) => embedded("chain.journal"),
        };
        writeln!(f, "  store:     {store}\n  chain:     {chain}")?;
        if self.authority_installed {
            writeln!(f, "  authority: installed")
        } else {
            writeln!(f, "next: `medseal authority setup`")
        }
    }
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Kubo RPC API base URL (default: embedded block store in DIR/blocks)
    #[arg(long, value_name = "URL")]
    ipfs_api: Option<String>,
    /// Ethereum JSON-RPC URL (default: embedded chain in DIR/chain.journal)
    #[arg(long, value_name = "URL")]
    eth_rpc: Option<String>,
    /// Address of a deployed MedsealRegistry on --eth-rpc
    #[arg(long, value_name = "ADDR")]
    registry: Option<String>,
}

pub async fn init(ctx: &Ctx, args: InitArgs) -> CliResult<Initialised> {
    let dir = &ctx.dir;
    std::fs::create_dir_all(dir).map_err(|e| Failure::io(dir, &e))?;
    let config_written =
        args.ipfs_api.is_some() || args.eth_rpc.is_some() || args.registry.is_some();
    if config_written {
        let mut config = Config::from_file(dir)?;
        config.ipfs_api = args.ipfs_api.or(config.ipfs_api);
        config.eth_rpc = args.eth_rpc.or(config.eth_rpc);
        config.registry = args.registry.or(config.registry);
        config.save(dir)?;
    }
    // Creates the embedded store and chain (or deploys a registry, with MEDSEAL_ETH_KEY).
    let authority_installed = Vault::open(dir).await?.public_key().is_ok();
    let config = Config::load(dir)?;
    Ok(Initialised {
        dir: dir.display().to_string(),
        config_written,
        backends: Backends {
            ipfs_api: config.ipfs_api,
            eth_rpc: config.eth_rpc,
            registry: config.registry,
        },
        authority_installed,
    })
}

#[derive(Serialize)]
pub struct AuthorityCreated {
    authority_key: String,
    public_key: String,
    /// The authority's chain account: the registry's authority, which registers and
    /// revokes members (on an Ethereum node it pays their gas).
    #[serde(serialize_with = "as_display")]
    chain_account: medseal::Address,
}

impl fmt::Display for AuthorityCreated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secret, public) = (&self.authority_key, &self.public_key);
        let account = self.chain_account;
        writeln!(
            f,
            "attribute authority created\n  \
             secret key: {secret} (sealed under the passphrase, mode 0600; keep it offline)\n  \
             public key: {public} (installed)\n  \
             chain account: {account} (the registry's authority: registers members)\n\
             next: `medseal authority backup --shares 3/5` (backup shares for different \
             holders), then `medseal authority keygen <name> --attr role:doctor --attr \
             dept:cardiology`"
        )
    }
}

pub async fn setup(ctx: &Ctx, force: bool) -> CliResult<AuthorityCreated> {
    let mut vault = open(ctx).await?;
    let key_path = ctx.dir.join(AUTHORITY_KEY_FILE);
    if !force && key_path.symlink_metadata().is_ok() {
        return Err(Failure::exists(&key_path).hint(
            "the authority exists already; `medseal authority keygen` issues keys with it \
             (--force replaces it, but only in a vault that has no authority public key yet)",
        ));
    }
    if vault.public_key().is_ok() {
        // A vault keeps its authority: records and member keys depend on it.
        return Err(Failure::other(
            "authority_exists",
            format!(
                "{} already holds an authority public key",
                ctx.dir.join(AUTHORITY_PUBLIC_KEY_FILE).display()
            ),
        )
        .hint(
            "a vault's authority cannot be replaced (its records and member keys depend \
             on it); use a new data directory for a new authority",
        ));
    }
    let authority = Authority::setup(&mut OsRng);
    let sealed = crate::custody::sealed_new(&authority)?;
    // Secret first (so a public key is never installed without its secret), then the
    // public key.
    local::write_secret(&key_path, &sealed, force)?;
    vault.install_authority(authority.public_key())?;
    // The registry's authority role goes to the authority's own chain account, which
    // registers (and revokes) members from now on. If this fails (a registry deployed by
    // another account), the key is kept: keygen, renew, register and revoke adopt first.
    vault.adopt_authority(&authority).await.map_err(|e| {
        let failure = Failure::from(e);
        let message = format!(
            "the authority was created ({}), but the registry's authority role was not \
             handed to its chain account: {}",
            key_path.display(),
            failure.message
        );
        Failure { message, ..failure }
    })?;
    if Config::load(&ctx.dir).is_ok_and(|c| c.eth_rpc.is_some()) {
        eprintln!(
            "warning: the authority's chain account {} registers and revokes members and \
             pays their gas: fund it",
            authority.chain_signer().address()
        );
    }
    Ok(AuthorityCreated {
        authority_key: key_path.display().to_string(),
        public_key: ctx
            .dir
            .join(AUTHORITY_PUBLIC_KEY_FILE)
            .display()
            .to_string(),
        chain_account: authority.chain_signer().address(),
    })
}

/// A member key as listed.
#[derive(Serialize)]
pub struct MemberView {
    name: String,
    #[serde(serialize_with = "as_display")]
    address: medseal::Address,
    /// The attributes the authority chose (without the reserved `id:` and `valid-*`).
    attributes: Vec<String>,
    /// The last month (`YYYY-MM`, UTC) whose records the key opens; `null` for a key
    /// issued before keys carried a validity (it opens nothing created since).
    valid_through: Option<String>,
    /// Whether the current month is past the key's validity (or it has none).
    expired: bool,
}

impl From<&Member> for MemberView {
    fn from(member: &Member) -> Self {
        let validity = member.validity();
        Self {
            name: member.name().to_owned(),
            address: member.address(),
            attributes: member.own_attributes(),
            valid_through: validity.map(|v| v.last_month().to_string()),
            expired: !validity.is_some_and(|v| v.covers(Month::current_utc())),
        }
    }
}

impl MemberView {
    /// `through 2027-03`, `EXPIRED after 2024-01`, or `no validity (issued before expiry)`.
    fn validity_text(&self) -> String {
        match (&self.valid_through, self.expired) {
            (Some(month), false) => format!("valid through {month}"),
            (Some(month), true) => format!("EXPIRED after {month}"),
            (None, _) => "EXPIRED: no validity (issued before keys expired)".to_owned(),
        }
    }
}

/// Parses `--valid-until YYYY-MM`.
fn parse_month(text: &str) -> Result<Month, String> {
    text.trim().parse::<Month>().map_err(|e| e.to_string())
}

/// The validity asked for, or 12 months from now; warns if it is already over.
fn validity_arg(valid_until: Option<Month>) -> Validity {
    let validity = valid_until.map_or_else(|| Validity::months_from_now(12), Validity::until);
    if !validity.covers(Month::current_utc()) {
        eprintln!(
            "warning: a key valid through {} is already expired: it opens only records \
             created up to then (an archive reader's key)",
            validity.last_month()
        );
    }
    validity
}

#[derive(Serialize)]
pub struct Issued {
    #[serde(flatten)]
    member: MemberView,
    key_file: String,
    /// Whether the key file is sealed under a passphrase (`--protect`).
    protected: bool,
    /// The account's balance in wei on an Ethereum node (absent on the embedded chain,
    /// which charges no gas, or if the node could not be asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    balance_wei: Option<String>,
}

impl fmt::Display for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.member;
        writeln!(f, "issued a key to {}", m.name)?;
        writeln!(f, "  address:    {}", m.address)?;
        writeln!(f, "  attributes: {}", m.attributes.join(", "))?;
        writeln!(f, "  validity:   {}", m.validity_text())?;
        let sealed = if self.protected {
            ", sealed under its passphrase"
        } else {
            ""
        };
        writeln!(f, "  key file:   {} (mode 0600{sealed})", self.key_file)?;
        if let Some(wei) = &self.balance_wei {
            writeln!(f, "  balance:    {wei} wei")?;
        }
        Ok(())
    }
}

/// On an Ethereum node, the new member's balance, with a warning on stderr if it holds
/// nothing: every put, share and request the member makes pays gas. `None` on the
/// embedded chain (no gas) or if the node cannot be asked (also a warning: the key is
/// issued either way).
async fn check_funds(ctx: &Ctx, member: &Member) -> Option<U256> {
    let config = Config::load(&ctx.dir).ok()?;
    let url = config.eth_rpc?;
    let address = member.address();
    let balance = match open(ctx).await {
        Ok(vault) => vault
            .ledger()
            .balance(address)
            .await
            .map_err(|e| e.to_string()),
        Err(failure) => Err(failure.message),
    };
    match balance {
        Ok(Some(balance)) => {
            if balance.is_zero() {
                eprintln!(
                    "warning: {} ({address}) holds no ETH on {url}: its puts, shares and \
                     requests pay gas and will fail until the account is funded (send ETH to \
                     {address})",
                    member.name()
                );
            }
            Some(balance)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!("warning: could not check the balance of {address} on {url}: {e}");
            None
        }
    }
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Member name (letters, digits, `.`, `_`, `-`)
    name: String,
    /// Attribute, e.g. role:doctor, dept:cardiology, level=3 (repeatable)
    #[arg(long = "attr", value_name = "ATTR")]
    attrs: Vec<String>,
    /// Hex secret key of the member's chain account (default: a new random one;
    /// on a real chain the account must be funded)
    #[arg(long, value_name = "HEX")]
    eth_key: Option<String>,
    /// Last month (UTC) whose records the key opens (default: 12 months from now)
    #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
    valid_until: Option<Month>,
    /// Seal the new key under a passphrase (asked twice, or MEDSEAL_MEMBER_PASSPHRASE):
    /// every command run as the member then needs it
    #[arg(long)]
    protect: bool,
}

/// The authority of DIR/authority.key, checked against the installed public key.
pub fn installed_authority(ctx: &Ctx) -> CliResult<Authority> {
    let authority = local::load_authority(&ctx.dir)?;
    // The vault must use this authority's public key, or nothing it issues will open.
    let public_path = ctx.dir.join(AUTHORITY_PUBLIC_KEY_FILE);
    let installed = local::read_key(&public_path, || {
        Failure::no_authority(&ctx.dir)
            .hint("the authority's public key is not installed: run `medseal authority setup`")
    })?;
    if installed != authority.public_key().to_bytes() {
        let (secret, public) = (ctx.dir.join(AUTHORITY_KEY_FILE), public_path.display());
        let message = format!(
            "{} does not belong to the public key installed in {public}",
            secret.display()
        );
        return Err(Failure::other("authority_mismatch", message));
    }
    Ok(authority)
}

pub async fn keygen(ctx: &Ctx, args: &KeygenArgs) -> CliResult<Issued> {
    let name = args.name.as_str();
    local::existing_dir(&ctx.dir)?;
    local::check_member_name(name)?;
    let path = local::member_path(&ctx.dir, name);
    if path.symlink_metadata().is_ok() {
        return Err(Failure::exists(&path).hint(format!(
            "member {name} exists; choose another name (or delete the file to re-issue, \
             which loses access to the member's records)"
        )));
    }
    let authority = installed_authority(ctx)?;
    // Asked before anything is issued or registered, so that a refused passphrase
    // leaves nothing behind.
    let passphrase = if args.protect {
        Some(crate::custody::new_member_passphrase(name)?)
    } else {
        None
    };
    let signer = match &args.eth_key {
        Some(hex) => hex
            .trim()
            .trim_start_matches("0x")
            .parse::<PrivateKeySigner>()
            .map_err(|e| {
                Failure::invalid_input(format!(
                    "--eth-key is not a secp256k1 secret key in hex: {e}"
                ))
            })?,
        None => PrivateKeySigner::random(),
    };
    let validity = validity_arg(args.valid_until);
    // The on-chain registration is the issuance log; sharing needs it. The registry's
    // authority role first (a no-op once adopted), so that no key is written that cannot
    // be registered. The key is issued at the chain's current attribute versions (after
    // a revocation, a key at version 0 would not open nor find new records, and the
    // registry refuses it).
    let vault = open(ctx).await?;
    vault.adopt_authority(&authority).await?;
    let member = vault
        .issue_member(&authority, name, &args.attrs, validity, signer)
        .await?;
    let file = local::member_file(&member, passphrase.as_ref())?;
    local::write_secret(&path, &file, false)?;
    vault.register_member(&authority, &member).await?;
    let balance = check_funds(ctx, &member).await;
    Ok(Issued {
        member: MemberView::from(&member),
        key_file: path.display().to_string(),
        protected: passphrase.is_some(),
        balance_wei: balance.map(|b| b.to_string()),
    })
}

#[derive(Args, Debug)]
pub struct RenewArgs {
    /// Member name (a key in DIR/members)
    name: String,
    /// Last month (UTC) whose records the renewed key opens (default: 12 months from now)
    #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
    valid_until: Option<Month>,
}

#[derive(Serialize)]
pub struct Renewed {
    #[serde(flatten)]
    member: MemberView,
    /// The old key's last month (`null`: it had no validity).
    previous_valid_through: Option<String>,
    key_file: String,
}

impl fmt::Display for Renewed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.member;
        writeln!(f, "renewed the key of {}", m.name)?;
        writeln!(f, "  address:    {} (unchanged)", m.address)?;
        writeln!(f, "  attributes: {}", m.attributes.join(", "))?;
        let before = self.previous_valid_through.as_deref().unwrap_or("none");
        writeln!(f, "  validity:   {} (was {before})", m.validity_text())?;
        writeln!(f, "  key file:   {} (replaced, mode 0600)", self.key_file)
    }
}

/// Renews a member key in place: the new key replaces DIR/members/NAME.key atomically
/// (a temporary file, fsynced, renamed over it; a sealed key is opened with its
/// passphrase and the new one sealed under the same), without a backup: the renewed key reads
/// everything the old one did up to the new last month, and a copy of a secret key left
/// behind is one more to protect.
pub async fn renew(ctx: &Ctx, args: &RenewArgs) -> CliResult<Renewed> {
    let name = args.name.as_str();
    local::existing_dir(&ctx.dir)?;
    local::check_member_name(name)?;
    let authority = installed_authority(ctx)?;
    let (old, passphrase) = local::load_member_file(&ctx.dir, name)?;
    let validity = validity_arg(args.valid_until);
    // At the chain's current versions of its attributes, registered on chain.
    let vault = open(ctx).await?;
    vault.adopt_authority(&authority).await?;
    let member = vault.renew_member(&authority, &old, validity).await?;
    let path = local::member_path(&ctx.dir, name);
    // A sealed key stays sealed, under the same passphrase.
    let file = local::member_file(&member, passphrase.as_ref())?;
    local::write_secret(&path, &file, true)?;
    Ok(Renewed {
        member: MemberView::from(&member),
        previous_valid_through: old.validity().map(|v| v.last_month().to_string()),
        key_file: path.display().to_string(),
    })
}
