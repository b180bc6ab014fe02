//! The commands.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use medseal::abe::{Encoding, Policy};
use medseal::chain::AuditEvent;
use medseal::{
    AUTHORITY_PUBLIC_KEY_FILE, Attachment, AuditEntry, Authority, CONFIG_FILE, Config, Keyword,
    Member, NewRecord, PrivateKeySigner, RecordId, RecordInfo, Vault,
};
use rand_core::OsRng;
use serde_json::{Value, json};

use crate::fail::{CliResult, EXIT_OTHER, EXIT_TAMPERED, Failure};
use crate::local::{self, AUTHORITY_KEY_FILE, Directory, TempFiles};
use crate::show::{self, Bars, printable};
use crate::{AuthorityCommand, Command, Ctx, Output, PutArgs};

/// Appends a formatted line to a `String` (formatting into a `String` cannot fail).
macro_rules! outln {
    ($out:expr) => { $out.push('\n') };
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

pub async fn run(ctx: &Ctx, command: Command) -> CliResult<Output> {
    match command {
        Command::Init {
            ipfs_api,
            eth_rpc,
            registry,
        } => init(ctx, ipfs_api, eth_rpc, registry).await,
        Command::Authority(AuthorityCommand::Setup { force }) => authority_setup(ctx, force).await,
        Command::Authority(AuthorityCommand::Keygen {
            name,
            attrs,
            eth_key,
        }) => keygen(ctx, &name, &attrs, eth_key.as_deref()),
        Command::Members => members(ctx),
        Command::Put(args) => put(ctx, args).await,
        Command::Search { actor, keyword } => search(ctx, &actor.name, &keyword).await,
        Command::Get {
            actor,
            record,
            out,
            force,
        } => get(ctx, &actor.name, record, out.as_deref(), force).await,
        Command::Share {
            actor,
            record,
            with,
        } => share(ctx, &actor.name, record, &with, true).await,
        Command::Revoke {
            actor,
            record,
            from,
        } => share(ctx, &actor.name, record, &from, false).await,
        Command::Request { actor, record } => request(ctx, &actor.name, record).await,
        Command::Requests { actor } => requests(ctx, &actor.name).await,
        Command::Answer {
            actor,
            record,
            requester,
            approve,
            deny: _,
        } => answer(ctx, &actor.name, record, &requester, approve).await,
        Command::Records { actor } => records(ctx, &actor.name).await,
        Command::Audit { record } => audit(ctx, record).await,
    }
}

/// Opens the vault of an existing data directory.
async fn open(ctx: &Ctx) -> CliResult<Vault> {
    local::existing_dir(&ctx.dir)?;
    Ok(Vault::open(&ctx.dir).await?)
}

/// Opens the vault and the acting member's key.
async fn open_as(ctx: &Ctx, name: &str) -> CliResult<(Vault, Member)> {
    let vault = open(ctx).await?;
    let member = local::load_member(&ctx.dir, name)?;
    Ok((vault, member))
}

fn describe_backends(dir: &Path, config: &Config) -> (Value, String) {
    let store = match &config.ipfs_api {
        Some(url) => format!("IPFS (Kubo API {url})"),
        None => format!("embedded ({})", dir.join("blocks").display()),
    };
    let chain = match (&config.eth_rpc, &config.registry) {
        (Some(url), Some(registry)) => format!("Ethereum node {url}, registry {registry}"),
        (Some(url), None) => format!("Ethereum node {url}"),
        (None, _) => format!("embedded ({})", dir.join("chain.journal").display()),
    };
    (
        json!({
            "ipfs_api": config.ipfs_api,
            "eth_rpc": config.eth_rpc,
            "registry": config.registry,
        }),
        format!("  store:     {store}\n  chain:     {chain}\n"),
    )
}

async fn init(
    ctx: &Ctx,
    ipfs_api: Option<String>,
    eth_rpc: Option<String>,
    registry: Option<String>,
) -> CliResult<Output> {
    let dir = &ctx.dir;
    std::fs::create_dir_all(dir).map_err(|e| Failure::io(dir, &e))?;
    let mut wrote_config = false;
    if ipfs_api.is_some() || eth_rpc.is_some() || registry.is_some() {
        let mut config = Config::from_file(dir)?;
        if ipfs_api.is_some() {
            config.ipfs_api = ipfs_api;
        }
        if eth_rpc.is_some() {
            config.eth_rpc = eth_rpc;
        }
        if registry.is_some() {
            config.registry = registry;
        }
        config.save(dir)?;
        wrote_config = true;
    }
    // Creates the embedded store and chain (or deploys a registry, with MEDSEAL_ETH_KEY).
    let vault = Vault::open(dir).await?;
    let authority = vault.public_key().is_ok();
    drop(vault);
    let config = Config::load(dir)?;
    let (backends, backends_text) = describe_backends(dir, &config);
    let mut text = String::new();
    outln!(text, "initialised {}", dir.display());
    if wrote_config {
        outln!(text, "  config:    {}", dir.join(CONFIG_FILE).display());
    }
    text.push_str(&backends_text);
    if authority {
        outln!(text, "  authority: installed");
    } else {
        outln!(text, "next: `medseal authority setup`");
    }
    Ok(Output {
        json: json!({
            "dir": dir.display().to_string(),
            "config_written": wrote_config,
            "backends": backends,
            "authority_installed": authority,
        }),
        text,
    })
}

async fn authority_setup(ctx: &Ctx, force: bool) -> CliResult<Output> {
    let mut vault = open(ctx).await?;
    let key_path = ctx.dir.join(AUTHORITY_KEY_FILE);
    if !force && key_path.symlink_metadata().is_ok() {
        return Err(local::exists_failure(&key_path).hint(
            "the authority exists already; `medseal authority keygen` issues keys with it \
             (--force replaces it, but only in a vault that has no authority public key yet)",
        ));
    }
    if vault.public_key().is_ok() {
        // A vault keeps its authority: records and member keys depend on it.
        return Err(Failure::new(
            EXIT_OTHER,
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
    // Secret first (so a public key is never installed without its secret), then the
    // public key.
    local::write_secret(&key_path, &authority.to_bytes(), force)?;
    vault.install_authority(authority.public_key())?;
    let pub_path = ctx.dir.join(AUTHORITY_PUBLIC_KEY_FILE);
    let mut text = String::new();
    outln!(text, "attribute authority created");
    outln!(
        text,
        "  secret key: {} (mode 0600; keep it offline)",
        key_path.display()
    );
    outln!(text, "  public key: {} (installed)", pub_path.display());
    outln!(
        text,
        "next: `medseal authority keygen NAME --attr role:doctor --attr dept:cardiology`"
    );
    Ok(Output {
        json: json!({
            "authority_key": key_path.display().to_string(),
            "public_key": pub_path.display().to_string(),
        }),
        text,
    })
}

fn attribute_items(member: &Member) -> Vec<String> {
    member.attributes().items().collect()
}

fn member_json(member: &Member) -> Value {
    json!({
        "name": member.name(),
        "address": member.address().to_string(),
        "attributes": attribute_items(member),
    })
}

fn keygen(ctx: &Ctx, name: &str, attrs: &[String], eth_key: Option<&str>) -> CliResult<Output> {
    local::existing_dir(&ctx.dir)?;
    local::check_member_name(name)?;
    let path = local::member_path(&ctx.dir, name);
    if path.symlink_metadata().is_ok() {
        return Err(local::exists_failure(&path).hint(format!(
            "member {name} exists; choose another name (or delete the file to re-issue, \
             which loses access to the member's records)"
        )));
    }
    let authority = local::load_authority(&ctx.dir)?;
    // The vault must use this authority's public key, or nothing it issues will open.
    match std::fs::read(ctx.dir.join(AUTHORITY_PUBLIC_KEY_FILE)) {
        Ok(installed) if installed != authority.public_key().to_bytes() => {
            return Err(Failure::new(
                EXIT_OTHER,
                "authority_mismatch",
                format!(
                    "{} does not belong to the public key installed in {}",
                    ctx.dir.join(AUTHORITY_KEY_FILE).display(),
                    ctx.dir.join(AUTHORITY_PUBLIC_KEY_FILE).display()
                ),
            ));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::no_authority(&ctx.dir).hint(
                "the authority's public key is not installed: run `medseal authority setup`",
            ));
        }
        Err(e) => return Err(Failure::io(&ctx.dir.join(AUTHORITY_PUBLIC_KEY_FILE), &e)),
    }
    let signer = match eth_key {
        Some(hex) => hex
            .trim()
            .trim_start_matches("0x")
            .parse::<PrivateKeySigner>()
            .map_err(|e| {
                Failure::new(
                    EXIT_OTHER,
                    "invalid_input",
                    format!("--eth-key is not a secp256k1 secret key in hex: {e}"),
                )
            })?,
        None => PrivateKeySigner::random(),
    };
    let member = authority.issue(name, attrs, signer, &mut OsRng)?;
    local::write_secret(&path, &member.to_bytes(), false)?;
    let mut text = String::new();
    outln!(text, "issued a key to {}", member.name());
    outln!(text, "  address:    {}", member.address());
    outln!(
        text,
        "  attributes: {}",
        attribute_items(&member).join(", ")
    );
    outln!(text, "  key file:   {} (mode 0600)", path.display());
    let mut doc = member_json(&member);
    doc["key_file"] = json!(path.display().to_string());
    Ok(Output { json: doc, text })
}

fn members(ctx: &Ctx) -> CliResult<Output> {
    local::existing_dir(&ctx.dir)?;
    let mut list = Vec::new();
    let mut text = String::new();
    for (path, member) in local::members(&ctx.dir)? {
        match member {
            Ok(member) => {
                outln!(
                    text,
                    "{:<16} {}  {}",
                    member.name(),
                    member.address(),
                    attribute_items(&member)
                        .into_iter()
                        .filter(|a| !a.starts_with("id:"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                list.push(member_json(&member));
            }
            Err(e) => eprintln!("warning: {}: {e}", path.display()),
        }
    }
    if list.is_empty() {
        outln!(
            text,
            "no members yet: `medseal authority keygen NAME --attr role:doctor`"
        );
    }
    Ok(Output {
        json: json!({ "members": list }),
        text,
    })
}

/// `PATH[=CONTENT_TYPE]`: an existing file wins over splitting at `=`.
fn parse_attachment(spec: &str) -> CliResult<(PathBuf, String)> {
    let whole = PathBuf::from(spec);
    let (path, content_type) = if whole.is_file() {
        (whole, None)
    } else {
        match spec.rsplit_once('=') {
            Some((path, ct)) if !path.is_empty() && ct.contains('/') && !ct.contains(' ') => {
                (PathBuf::from(path), Some(ct.to_owned()))
            }
            _ => (whole, None),
        }
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => {
            return Err(Failure::new(
                EXIT_OTHER,
                "invalid_input",
                format!("--attach {}: not a regular file", path.display()),
            ));
        }
        Err(e) => return Err(Failure::io(&path, &e)),
    }
    let content_type = content_type.unwrap_or_else(|| show::guess_content_type(&path).to_owned());
    Ok((path, content_type))
}

fn attachments_json(attachments: &[medseal::AttachmentInfo]) -> Vec<Value> {
    attachments
        .iter()
        .enumerate()
        .map(|(index, a)| {
            json!({
                "index": index,
                "name": a.name,
                "content_type": a.content_type,
                "size": a.size,
                "cid": a.cid,
            })
        })
        .collect()
}

fn attachments_text(text: &mut String, attachments: &[medseal::AttachmentInfo]) {
    if attachments.is_empty() {
        outln!(text, "  attachments: none");
    }
    for (index, a) in attachments.iter().enumerate() {
        outln!(
            text,
            "  [{index}] {}  {}  {}  {}",
            printable(&a.name),
            printable(&a.content_type),
            show::size(a.size),
            printable(&a.cid)
        );
    }
}

async fn put(ctx: &Ctx, args: PutArgs) -> CliResult<Output> {
    let policy: Policy = args.policy.parse().map_err(medseal::Error::from)?;
    let mut keywords = Vec::new();
    for k in &args.keywords {
        keywords.push(Keyword::parse(k).map_err(medseal::Error::from)?);
    }
    let mut record = NewRecord::new(args.name.clone(), policy).keywords(keywords.clone());
    for spec in &args.attachments {
        let (path, content_type) = parse_attachment(spec)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec.clone());
        record = record.attach(Attachment::file(name, content_type, path));
    }
    let (mut vault, owner) = open_as(ctx, &args.actor.name).await?;
    let bars = Bars::new("encrypting");
    if ctx.progress {
        vault.set_progress(bars.callback());
    }
    let receipt = vault.put(&owner, record).await;
    bars.finish();
    let receipt = receipt?;
    let mut text = String::new();
    outln!(
        text,
        "stored record {} \"{}\" owned by {}",
        receipt.record.0,
        printable(&args.name),
        owner.name()
    );
    outln!(text, "  policy:      {}", args.policy);
    outln!(text, "  manifest:    {}", receipt.manifest_cid);
    if let Some(shard) = &receipt.shard_cid {
        let n = keywords.len();
        let plural = if n == 1 { "" } else { "s" };
        outln!(text, "  index shard: {shard} ({n} keyword{plural})");
    }
    attachments_text(&mut text, &receipt.attachments);
    Ok(Output {
        json: json!({
            "record": receipt.record.0,
            "owner": { "name": owner.name(), "address": owner.address().to_string() },
            "name": args.name,
            "manifest_cid": receipt.manifest_cid,
            "shard_cid": receipt.shard_cid,
            "keywords": keywords.iter().map(Keyword::as_str).collect::<Vec<_>>(),
            "attachments": attachments_json(&receipt.attachments),
        }),
        text,
    })
}

async fn search(ctx: &Ctx, name: &str, keyword: &str) -> CliResult<Output> {
    let keyword = Keyword::parse(keyword).map_err(medseal::Error::from)?;
    let (vault, member) = open_as(ctx, name).await?;
    let results = vault.search(&member, &keyword).await?;
    let directory = Directory::load(&ctx.dir);
    let mut text = String::new();
    if results.hits.is_empty() {
        outln!(
            text,
            "no records found for {} that {} can search",
            keyword.as_str(),
            member.name()
        );
    } else {
        outln!(
            text,
            "{} record(s) for {}:",
            results.hits.len(),
            keyword.as_str()
        );
    }
    for hit in &results.hits {
        outln!(
            text,
            "  record {}  owner {}",
            hit.record.0,
            directory.label(hit.owner)
        );
    }
    // Anyone can publish a partition: one that fails verification is skipped, not fatal.
    for r in &results.rejected {
        eprintln!(
            "warning: skipped an index partition of {} (epoch {}) that failed verification: {}",
            directory.label(r.publisher),
            r.epoch,
            printable(&r.reason)
        );
    }
    Ok(Output {
        json: json!({
            "keyword": keyword.as_str(),
            "hits": results.hits.iter().map(|h| json!({
                "record": h.record.0,
                "owner": directory.json(h.owner),
            })).collect::<Vec<_>>(),
            "rejected_partitions": results.rejected.iter().map(|r| json!({
                "publisher": directory.json(r.publisher),
                "partition": hex::encode(r.partition),
                "epoch": r.epoch,
                "reason": r.reason,
            })).collect::<Vec<_>>(),
        }),
        text,
    })
}

async fn get(
    ctx: &Ctx,
    name: &str,
    record: RecordId,
    out: Option<&Path>,
    force: bool,
) -> CliResult<Output> {
    let (mut vault, reader) = open_as(ctx, name).await?;
    let bars = Bars::new("decrypting");
    if ctx.progress {
        vault.set_progress(bars.callback());
    }
    let opened = vault.get(&reader, record).await?;
    let directory = Directory::load(&ctx.dir);
    let mut saved: Vec<Option<PathBuf>> = vec![None; opened.attachments.len()];
    if let Some(out) = out {
        let result = save_attachments(&vault, &opened, out, force).await;
        bars.finish();
        for (slot, path) in saved.iter_mut().zip(result?) {
            *slot = Some(path);
        }
    }
    let mut text = String::new();
    outln!(
        text,
        "record {} \"{}\"",
        opened.record.0,
        printable(&opened.name)
    );
    outln!(text, "  owner:    {}", directory.label(opened.owner));
    outln!(text, "  policy:   {}", opened.policy);
    outln!(text, "  wrapped:  {}", opened.capsule_policy);
    outln!(text, "  manifest: {}", opened.manifest_cid);
    attachments_text(&mut text, &opened.attachments);
    for path in saved.iter().flatten() {
        outln!(text, "  saved {}", path.display());
    }
    let mut attachments = attachments_json(&opened.attachments);
    for (doc, path) in attachments.iter_mut().zip(&saved) {
        doc["saved_to"] = json!(path.as_ref().map(|p| p.display().to_string()));
    }
    Ok(Output {
        json: json!({
            "record": opened.record.0,
            "owner": directory.json(opened.owner),
            "name": opened.name,
            "policy": opened.policy.to_string(),
            "capsule_policy": opened.capsule_policy.to_string(),
            "manifest_cid": opened.manifest_cid,
            "attachments": attachments,
        }),
        text,
    })
}

/// Decrypts every attachment into a temporary file in `out`, then moves them all into
/// place: on any error (tampering included) no output file is left behind.
async fn save_attachments(
    vault: &Vault,
    opened: &medseal::OpenedRecord,
    out: &Path,
    force: bool,
) -> CliResult<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|e| Failure::io(out, &e))?;
    let mut used = BTreeSet::new();
    let mut targets = Vec::new();
    for (index, a) in opened.attachments.iter().enumerate() {
        let mut file_name = local::safe_file_name(&a.name, index);
        if !used.insert(file_name.clone()) {
            file_name = format!("{index}-{file_name}");
            used.insert(file_name.clone());
        }
        let dest = out.join(file_name);
        if !force && dest.symlink_metadata().is_ok() {
            return Err(local::exists_failure(&dest));
        }
        targets.push(dest);
    }
    let mut temps = TempFiles::default();
    for (index, dest) in targets.iter().enumerate() {
        let (tmp, file) = local::create_temp(dest, true)?;
        temps.0.push(tmp.clone());
        let writer = BufWriter::with_capacity(1 << 20, file);
        let writer = vault.read_attachment(opened, index, writer).await?;
        let file = writer
            .into_inner()
            .map_err(|e| Failure::io(&tmp, e.error()))?;
        file.sync_all().map_err(|e| Failure::io(&tmp, &e))?;
        let written = file.metadata().map_err(|e| Failure::io(&tmp, &e))?.len();
        let expected = opened.attachments[index].size;
        if written != expected {
            return Err(Failure::new(
                EXIT_TAMPERED,
                "tampered",
                format!(
                    "tampering detected: attachment {index} decrypted to {written} bytes, \
                     the manifest says {expected}"
                ),
            ));
        }
    }
    // Everything verified: move into place (temps left over are removed on return).
    for (tmp, dest) in temps.0.clone().iter().zip(&targets) {
        local::commit(tmp, dest, force)?;
        temps.0.retain(|t| t != tmp);
    }
    local::sync_dir(out);
    Ok(targets)
}

async fn share(
    ctx: &Ctx,
    name: &str,
    record: RecordId,
    target: &str,
    grant: bool,
) -> CliResult<Output> {
    let (vault, owner) = open_as(ctx, name).await?;
    let (user, user_name) = local::resolve_member(&ctx.dir, target)?;
    if grant {
        vault.share(&owner, record, user).await?;
    } else {
        vault.revoke(&owner, record, user).await?;
    }
    let who = match &user_name {
        Some(n) => format!("{n} ({user})"),
        None => user.to_string(),
    };
    let text = if grant {
        format!("shared record {} with {who}\n", record.0)
    } else {
        format!(
            "revoked {who}'s access to record {} (the record key was re-wrapped; \
             what they already read stays with them)\n",
            record.0
        )
    };
    Ok(Output {
        json: json!({
            "record": record.0,
            "action": if grant { "shared" } else { "revoked" },
            "member": { "address": user.to_string(), "name": user_name },
        }),
        text,
    })
}

async fn request(ctx: &Ctx, name: &str, record: RecordId) -> CliResult<Output> {
    let (vault, user) = open_as(ctx, name).await?;
    vault.request_access(&user, record).await?;
    let owner = vault.ledger().record(record).await.ok().map(|i| i.owner);
    let directory = Directory::load(&ctx.dir);
    let mut text = format!("{} asked for access to record {}", user.name(), record.0);
    if let Some(owner) = owner {
        let _ = write!(
            text,
            "; its owner {} answers with `medseal answer`",
            directory.label(owner)
        );
    }
    text.push('\n');
    Ok(Output {
        json: json!({
            "record": record.0,
            "requester": directory.json(user.address()),
            "owner": owner.map(|o| directory.json(o)),
        }),
        text,
    })
}

async fn requests(ctx: &Ctx, name: &str) -> CliResult<Output> {
    let (vault, owner) = open_as(ctx, name).await?;
    let pending = vault.pending_requests(&owner).await?;
    let directory = Directory::load(&ctx.dir);
    let mut text = String::new();
    if pending.is_empty() {
        outln!(text, "no pending requests for {}'s records", owner.name());
    }
    for r in &pending {
        outln!(
            text,
            "record {}  requested by {}",
            r.record.0,
            directory.label(r.requester)
        );
    }
    Ok(Output {
        json: json!({
            "requests": pending.iter().map(|r| json!({
                "record": r.record.0,
                "requester": directory.json(r.requester),
            })).collect::<Vec<_>>(),
        }),
        text,
    })
}

async fn answer(
    ctx: &Ctx,
    name: &str,
    record: RecordId,
    requester: &str,
    approve: bool,
) -> CliResult<Output> {
    let (vault, owner) = open_as(ctx, name).await?;
    let (user, user_name) = local::resolve_member(&ctx.dir, requester)?;
    vault.answer_request(&owner, record, user, approve).await?;
    let who = user_name.clone().unwrap_or_else(|| user.to_string());
    let text = if approve {
        format!("approved: record {} is shared with {who}\n", record.0)
    } else {
        format!("denied {who}'s request for record {}\n", record.0)
    };
    Ok(Output {
        json: json!({
            "record": record.0,
            "requester": { "address": user.to_string(), "name": user_name },
            "approved": approve,
        }),
        text,
    })
}

fn info_json(info: &RecordInfo, directory: &Directory) -> Value {
    json!({
        "record": info.record.0,
        "owner": directory.json(info.owner),
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "manifest_cid": info.manifest_cid,
    })
}

fn info_text(text: &mut String, info: &RecordInfo, directory: &Directory, owner: bool) {
    let mut line = format!(
        "  record {}  created {}",
        info.record.0,
        show::utc(info.created_at)
    );
    if info.updated_at != info.created_at {
        let _ = write!(line, "  updated {}", show::utc(info.updated_at));
    }
    if owner {
        let _ = write!(line, "  owner {}", directory.label(info.owner));
    }
    outln!(text, "{line}");
}

async fn records(ctx: &Ctx, name: &str) -> CliResult<Output> {
    let (vault, member) = open_as(ctx, name).await?;
    let own = vault.records_of(member.address()).await?;
    let shared = vault.shared_with(member.address()).await?;
    let directory = Directory::load(&ctx.dir);
    let mut text = String::new();
    outln!(text, "{} owns {} record(s)", member.name(), own.len());
    for info in &own {
        info_text(&mut text, info, &directory, false);
    }
    outln!(
        text,
        "shared with {}: {} record(s)",
        member.name(),
        shared.len()
    );
    for info in &shared {
        info_text(&mut text, info, &directory, true);
    }
    Ok(Output {
        json: json!({
            "member": directory.json(member.address()),
            "owned": own.iter().map(|i| info_json(i, &directory)).collect::<Vec<_>>(),
            "shared_with_me": shared.iter().map(|i| info_json(i, &directory)).collect::<Vec<_>>(),
        }),
        text,
    })
}

fn event_json(event: &AuditEvent, d: &Directory) -> Value {
    match event {
        AuditEvent::Created {
            owner,
            manifest_cid,
            policy_hash,
        } => json!({ "type": "created", "owner": d.json(*owner),
            "manifest_cid": manifest_cid, "policy_hash": hex::encode(policy_hash) }),
        AuditEvent::Updated {
            owner,
            manifest_cid,
            policy_hash,
        } => json!({ "type": "updated", "owner": d.json(*owner),
            "manifest_cid": manifest_cid, "policy_hash": hex::encode(policy_hash) }),
        AuditEvent::AccessGranted { user } => {
            json!({ "type": "access_granted", "user": d.json(*user) })
        }
        AuditEvent::AccessRevoked { user } => {
            json!({ "type": "access_revoked", "user": d.json(*user) })
        }
        AuditEvent::AccessRequested { requester, owner } => json!({
            "type": "access_requested", "requester": d.json(*requester), "owner": d.json(*owner)
        }),
        AuditEvent::AccessDenied { user } => {
            json!({ "type": "access_denied", "user": d.json(*user) })
        }
        AuditEvent::AccessLogged { accessor } => {
            json!({ "type": "accessed", "accessor": d.json(*accessor) })
        }
    }
}

fn event_text(event: &AuditEvent, d: &Directory) -> String {
    match event {
        AuditEvent::Created {
            owner,
            manifest_cid,
            ..
        } => format!("created by {} (manifest {manifest_cid})", d.label(*owner)),
        AuditEvent::Updated {
            owner,
            manifest_cid,
            ..
        } => format!(
            "updated by {} (key re-wrapped, manifest {manifest_cid})",
            d.label(*owner)
        ),
        AuditEvent::AccessGranted { user } => format!("access granted to {}", d.label(*user)),
        AuditEvent::AccessRevoked { user } => format!("access revoked from {}", d.label(*user)),
        AuditEvent::AccessRequested { requester, .. } => {
            format!("access requested by {}", d.label(*requester))
        }
        AuditEvent::AccessDenied { user } => format!("request denied to {}", d.label(*user)),
        AuditEvent::AccessLogged { accessor } => format!("read by {}", d.label(*accessor)),
    }
}

async fn audit(ctx: &Ctx, record: RecordId) -> CliResult<Output> {
    let vault = open(ctx).await?;
    let trail: Vec<AuditEntry> = vault.audit(record).await?;
    let directory = Directory::load(&ctx.dir);
    let mut text = String::new();
    outln!(
        text,
        "audit trail of record {} ({} events)",
        record.0,
        trail.len()
    );
    for entry in &trail {
        outln!(
            text,
            "  {}  block {:>5}  {}",
            show::utc(entry.timestamp),
            entry.block_number,
            event_text(&entry.event, &directory)
        );
    }
    Ok(Output {
        json: json!({
            "record": record.0,
            "events": trail.iter().map(|e| json!({
                "block": e.block_number,
                "timestamp": e.timestamp,
                "time": show::utc(e.timestamp),
                "tx_hash": format!("0x{}", hex::encode(e.tx_hash)),
                "event": event_json(&e.event, &directory),
            })).collect::<Vec<_>>(),
        }),
        text,
    })
}
