//! Dispatch: runs a command and returns its report.

use medseal::{Member, Vault};

use crate::access::{self, Action};
use crate::fail::CliResult;
use crate::report::Report;
use crate::{AuthorityCommand, Command, Ctx, authority, local, records};

pub async fn run(ctx: &Ctx, command: Command) -> CliResult<Box<dyn Report>> {
    Ok(match command {
        Command::Init {
            ipfs_api,
            eth_rpc,
            registry,
        } => Box::new(authority::init(ctx, ipfs_api, eth_rpc, registry).await?),
        Command::Authority(AuthorityCommand::Setup { force }) => {
            Box::new(authority::authority_setup(ctx, force).await?)
        }
        Command::Authority(AuthorityCommand::Keygen {
            name,
            attrs,
            eth_key,
        }) => Box::new(authority::keygen(ctx, &name, &attrs, eth_key.as_deref())?),
        Command::Members => Box::new(authority::members(ctx)?),
        Command::Put(args) => Box::new(records::put(ctx, args).await?),
        Command::Search { actor, keyword } => {
            Box::new(records::search(ctx, &actor.name, &keyword).await?)
        }
        Command::Get {
            actor,
            record,
            out,
            force,
        } => Box::new(records::get(ctx, &actor.name, record, out.as_deref(), force).await?),
        Command::Records { actor } => Box::new(records::records(ctx, &actor.name).await?),
        Command::Share {
            actor,
            record,
            with,
        } => Box::new(access::share(ctx, &actor.name, record, &with, Action::Shared).await?),
        Command::Revoke {
            actor,
            record,
            from,
        } => Box::new(access::share(ctx, &actor.name, record, &from, Action::Revoked).await?),
        Command::Request { actor, record } => {
            Box::new(access::request(ctx, &actor.name, record).await?)
        }
        Command::Requests { actor } => Box::new(access::requests(ctx, &actor.name).await?),
        Command::Answer {
            actor,
            record,
            requester,
            approve,
            deny: _,
        } => Box::new(access::answer(ctx, &actor.name, record, &requester, approve).await?),
        Command::Audit { record } => Box::new(access::audit(ctx, record).await?),
    })
}

/// Opens the vault of an existing data directory.
pub async fn open(ctx: &Ctx) -> CliResult<Vault> {
    local::existing_dir(&ctx.dir)?;
    Ok(Vault::open(&ctx.dir).await?)
}

/// Opens the vault and the acting member's key.
pub async fn open_as(ctx: &Ctx, name: &str) -> CliResult<(Vault, Member)> {
    let vault = open(ctx).await?;
    let member = local::load_member(&ctx.dir, name)?;
    Ok((vault, member))
}
