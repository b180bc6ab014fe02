//! The member registry on chain: `members`, `authority register`, `authority revoke`,
//! and the owners' `rewrap` after a revocation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use medseal::chain::{Address, MemberStatus, RegisteredMember};
use medseal::{Authority, Member, Month, Vault};
use serde::Serialize;

use crate::authority::installed_authority;
use crate::custody::Secret;
use crate::fail::{CliResult, Failure};
use crate::local::{self, KeyFile, open, open_member};
use crate::report::as_display;
use crate::upkeep::records_phrase;
use crate::{Actor, Ctx};

/// A member as the registry on chain lists it.
#[derive(Serialize)]
pub struct ChainMember {
    name: String,
    #[serde(serialize_with = "as_display")]
    address: Address,
    /// `active`, `expired` or `revoked`.
    status: &'static str,
    attributes: Vec<String>,
    /// Last month (`YYYY-MM`) of the registered validity; `null`: never expires.
    valid_through: Option<String>,
    /// Who registered the current key: `authority`, or the registrar's name.
    registered_by: String,
    /// The revocation's reason, if revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_reason: Option<String>,
    /// Whether the member's key is in DIR/members (a sealed key, not opened to list,
    /// counts for the registered members of its file's name).
    key_here: bool,
    /// Whether that key is sealed under a passphrase.
    key_protected: bool,
}

#[derive(Serialize)]
pub struct Members {
    members: Vec<ChainMember>,
    /// Keys in DIR/members the registry does not know (sharing with them is refused).
    unregistered_keys: Vec<String>,
    /// Names of the keys in DIR/members sealed under a passphrase (`medseal protect`).
    protected_keys: Vec<String>,
}

impl fmt::Display for Members {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.members.is_empty() && self.unregistered_keys.is_empty() {
            return writeln!(
                f,
                "no members yet: `medseal authority keygen <name> --attr role:doctor`"
            );
        }
        for m in &self.members {
            let validity = match (&m.valid_through, m.status) {
                (_, "revoked") => "REVOKED".to_owned(),
                (Some(month), "expired") => format!("EXPIRED after {month}"),
                (Some(month), _) => format!("valid through {month}"),
                (None, _) => "no expiry".to_owned(),
            };
            writeln!(
                f,
                "{:<16} {}  {:<24} {}  (by {}{})",
                m.name,
                m.address,
                validity,
                m.attributes.join(", "),
                m.registered_by,
                match (m.key_here, m.key_protected) {
                    (true, true) => "; key protected",
                    (true, false) => "",
                    (false, _) => "; key not here",
                }
            )?;
            if let Some(reason) = &m.revoked_reason {
                writeln!(f, "{:<16} reason: {reason}", "")?;
            }
        }
        for name in &self.unregistered_keys {
            let protected = if self.protected_keys.contains(name) {
                ", protected"
            } else {
                ""
            };
            writeln!(
                f,
                "{name:<16} NOT REGISTERED (key in DIR/members{protected}): `medseal authority \
                 register {name}`"
            )?;
        }
        Ok(())
    }
}

/// The status of a registered member at `now`.
fn status(member: &RegisteredMember, now: Month) -> &'static str {
    if member.revoked.is_some() {
        "revoked"
    } else if member
        .valid_through
        .is_some_and(|through| Month::from_number(through) < now)
    {
        "expired"
    } else {
        "active"
    }
}

/// `members`: every member the registry on chain lists, and the keys in DIR/members it
/// does not. Sealed keys are not opened (listing asks for no passphrase): a sealed
/// `NAME.key` is matched to the registered members named NAME.
pub async fn members(ctx: &Ctx) -> CliResult<Members> {
    local::existing_dir(&ctx.dir)?;
    let vault = open(ctx).await?;
    let registered = vault.members().await?;
    let ledger = vault.ledger();
    let authority = ledger.authority().await?;
    let registrars: BTreeMap<Address, String> = ledger
        .registrars()
        .await?
        .into_iter()
        .map(|r| (r.registrar, r.name))
        .collect();
    let mut local_keys = BTreeMap::new();
    let mut protected = BTreeSet::new();
    for (path, key) in local::members(&ctx.dir)? {
        match key {
            Ok(KeyFile::Plain(member)) => {
                local_keys.insert(member.address(), member.name().to_owned());
            }
            Ok(KeyFile::Sealed(name)) => {
                protected.insert(name);
            }
            Err(e) => eprintln!("warning: {}: {e}", path.display()),
        }
    }
    let now = Month::current_utc();
    let members = registered
        .iter()
        .map(|m| ChainMember {
            name: m.name.clone(),
            address: m.member,
            status: status(m, now),
            attributes: m.attributes.clone(),
            valid_through: m.valid_through.map(|n| Month::from_number(n).to_string()),
            registered_by: if m.registrar == authority {
                "authority".to_owned()
            } else {
                registrars
                    .get(&m.registrar)
                    .cloned()
                    .unwrap_or_else(|| m.registrar.to_string())
            },
            revoked_reason: m.revoked.as_ref().map(|r| r.reason.clone()),
            key_here: local_keys.contains_key(&m.member) || protected.contains(&m.name),
            key_protected: !local_keys.contains_key(&m.member) && protected.contains(&m.name),
        })
        .collect();
    for m in &registered {
        local_keys.remove(&m.member);
    }
    let mut unregistered: BTreeSet<String> = local_keys.into_values().collect();
    unregistered.extend(
        protected
            .iter()
            .filter(|name| !registered.iter().any(|m| &m.name == *name))
            .cloned(),
    );
    Ok(Members {
        members,
        unregistered_keys: unregistered.into_iter().collect(),
        protected_keys: protected.into_iter().collect(),
    })
}

#[derive(Args, Debug)]
pub struct RegisterArgs {
    /// Member name (a key in DIR/members)
    name: String,
}

#[derive(Serialize)]
pub struct Registered {
    name: String,
    #[serde(serialize_with = "as_display")]
    address: Address,
    /// False if the registry already listed this very key (nothing was sent).
    registered: bool,
}

impl fmt::Display for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.registered {
            writeln!(f, "registered {} ({}) on chain", self.name, self.address)
        } else {
            writeln!(
                f,
                "{} ({}) is registered already with this key",
                self.name, self.address
            )
        }
    }
}

/// `authority register NAME`: registers a key of DIR/members on chain (a key issued
/// before the registry, or whose registration `keygen` could not send). A key the
/// registry already lists, with the same attributes and validity, is not sent again.
pub async fn register(ctx: &Ctx, args: &RegisterArgs) -> CliResult<Registered> {
    local::existing_dir(&ctx.dir)?;
    local::check_member_name(&args.name)?;
    let authority = installed_authority(ctx)?;
    let member = local::load_member(&ctx.dir, &args.name)?;
    let vault = open(ctx).await?;
    vault.adopt_authority(&authority).await?;
    let status = vault
        .ledger()
        .members_status(&[member.address()])
        .await?
        .pop();
    let same = status.is_some_and(|info| {
        info.status == MemberStatus::Active
            && info.attributes_digest == member.attributes_digest()
            && info.valid_through == member.validity().map(|v| v.last_month().number())
    });
    if !same {
        vault.register_member(&authority, &member).await?;
    }
    Ok(Registered {
        name: member.name().to_owned(),
        address: member.address(),
        registered: !same,
    })
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The member: a name in DIR/members or a 0x address
    member: String,
    /// Why (recorded on chain, at most 1,024 bytes), e.g. "left the hospital"
    #[arg(long, value_name = "TEXT")]
    reason: String,
}

/// A key renewed because a revocation bumped one of its attributes.
#[derive(Serialize)]
pub struct RenewedKey {
    name: String,
    #[serde(serialize_with = "as_display")]
    address: Address,
    valid_through: Option<String>,
}

#[derive(Serialize)]
pub struct Revoked {
    name: String,
    #[serde(serialize_with = "as_display")]
    address: Address,
    /// False if the member was revoked already (a re-run after an interruption: only the
    /// renewals were done).
    revoked_now: bool,
    /// The attribute versions the revocation bumped (`role:nurse` → 1).
    bumped: BTreeMap<String, u32>,
    /// Keys in DIR/members renewed at the new versions (and registered).
    renewed: Vec<RenewedKey>,
    /// Active members holding a bumped attribute whose keys are not in DIR/members:
    /// renew them where their keys are kept.
    renew_elsewhere: Vec<String>,
    /// Keys in DIR/members at old versions left as they are because they are expired.
    expired_not_renewed: Vec<String>,
    /// Sealed keys in DIR/members that may hold a bumped attribute but were not opened
    /// (no passphrase, or a wrong one): renew each with `medseal authority renew NAME`.
    protected_not_renewed: Vec<String>,
}

impl fmt::Display for Revoked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.revoked_now {
            writeln!(f, "revoked {} ({}) on chain", self.name, self.address)?;
        } else {
            writeln!(
                f,
                "{} ({}) was revoked already; finished the renewals",
                self.name, self.address
            )?;
        }
        if !self.bumped.is_empty() {
            let bumped: Vec<String> = self
                .bumped
                .iter()
                .map(|(unit, v)| format!("{unit} -> v{v}"))
                .collect();
            writeln!(f, "  attribute versions: {}", bumped.join(", "))?;
        }
        if self.renewed.is_empty() {
            writeln!(f, "  renewed keys: none needed")?;
        }
        for key in &self.renewed {
            let through = key.valid_through.as_deref().unwrap_or("no expiry");
            writeln!(f, "  renewed {} (valid through {through})", key.name)?;
        }
        for who in &self.renew_elsewhere {
            writeln!(
                f,
                "  renew where its key is kept: {who} (holds a bumped attribute)"
            )?;
        }
        for name in &self.expired_not_renewed {
            writeln!(
                f,
                "  not renewed (expired): {name}; `medseal authority renew {name}` when it returns"
            )?;
        }
        for name in &self.protected_not_renewed {
            writeln!(
                f,
                "  not renewed (its sealed key was not opened): {name}; `medseal authority \
                 renew {name}` with its passphrase"
            )?;
        }
        writeln!(
            f,
            "next: each owner re-wraps existing records so the revoked key cannot open them \
             either: `medseal rewrap --as OWNER` (what was already read stays read)"
        )
    }
}

/// `authority revoke MEMBER --reason TEXT`: revokes the member on chain (bumping its
/// attributes' versions), then renews at the new versions every active key of
/// DIR/members that holds a bumped attribute. A re-run after an interruption skips the
/// revocation and finishes the renewals.
pub async fn revoke(ctx: &Ctx, args: &RevokeArgs) -> CliResult<Revoked> {
    local::existing_dir(&ctx.dir)?;
    let target = local::resolve_member(&ctx.dir, &args.member)?;
    let authority = installed_authority(ctx)?;
    let vault = open(ctx).await?;
    vault.adopt_authority(&authority).await?;
    let registered = vault.members().await?;
    let entry = registered
        .iter()
        .find(|m| m.member == target.address)
        .ok_or_else(|| {
            Failure::new(
                crate::fail::EXIT_NOT_FOUND,
                "unknown_member",
                format!(
                    "{} is not a registered member: nothing to revoke",
                    target.short()
                ),
            )
            .hint("`medseal members` lists the registered members")
        })?;
    let (revoked_now, bumped, affected) = if entry.revoked.is_some() {
        let versions = vault.attribute_versions(&entry.attributes).await?;
        (false, versions, Vec::new())
    } else {
        let report = vault
            .revoke_member(&authority, target.address, &args.reason)
            .await?;
        (true, report.bumped, report.affected)
    };
    let renewals = renew_stale_keys(ctx, &vault, &authority, entry, &registered).await?;
    let renew_elsewhere = affected
        .iter()
        .filter(|m| !renewals.seen.contains(&m.member) && !renewals.protected.contains(&m.name))
        .map(|m| format!("{} ({})", m.name, m.member))
        .collect();
    Ok(Revoked {
        name: entry.name.clone(),
        address: target.address,
        revoked_now,
        bumped: bumped.iter().map(|(u, v)| (u.to_owned(), v)).collect(),
        renewed: renewals.renewed,
        renew_elsewhere,
        expired_not_renewed: renewals.expired,
        protected_not_renewed: renewals.protected,
    })
}

struct Renewals {
    /// Addresses of the active registered keys of DIR/members looked at.
    seen: Vec<Address>,
    renewed: Vec<RenewedKey>,
    expired: Vec<String>,
    /// Names of sealed keys that could need a renewal but were not opened.
    protected: Vec<String>,
}

/// Renews, at the chain's current versions, every key of DIR/members (but `revoked`'s)
/// that is registered and active on chain and carries an attribute at an older version;
/// each keeps its validity. Keys already at the current versions are left alone, so a
/// re-run continues where an interrupted one stopped.
///
/// A sealed key is opened (its passphrase asked for, or read from
/// `MEDSEAL_MEMBER_PASSPHRASE`) only if the registry lists an active member of its name
/// sharing an attribute with the revoked member; the renewed key is sealed under the
/// same passphrase. One that cannot be opened is reported, not renewed.
async fn renew_stale_keys(
    ctx: &Ctx,
    vault: &Vault,
    authority: &Authority,
    revoked: &RegisteredMember,
    registered: &[RegisteredMember],
) -> CliResult<Renewals> {
    let mut keys: Vec<(std::path::PathBuf, Member, Option<Secret>)> = Vec::new();
    let mut protected = Vec::new();
    let may_be_stale = |name: &str| {
        registered.iter().any(|m| {
            m.name == name
                && m.member != revoked.member
                && m.revoked.is_none()
                && m.attributes.iter().any(|a| revoked.attributes.contains(a))
        })
    };
    for (path, key) in local::members(&ctx.dir)? {
        match key {
            Ok(KeyFile::Plain(member)) if member.address() != revoked.member => {
                keys.push((path, *member, None));
            }
            Ok(KeyFile::Sealed(name)) if may_be_stale(&name) => {
                match local::load_member_file(&ctx.dir, &name) {
                    Ok((member, passphrase)) if member.address() != revoked.member => {
                        keys.push((path, member, passphrase));
                    }
                    Ok(_) => {}
                    Err(failure) => {
                        eprintln!(
                            "warning: {}: not renewed: {}",
                            path.display(),
                            failure.message
                        );
                        protected.push(name);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => eprintln!("warning: {}: {e}", path.display()),
        }
    }
    let addresses: Vec<Address> = keys.iter().map(|(_, m, _)| m.address()).collect();
    let statuses = vault.ledger().members_status(&addresses).await?;
    let now = Month::current_utc();
    let mut out = Renewals {
        seen: Vec::new(),
        renewed: Vec::new(),
        expired: Vec::new(),
        protected,
    };
    for ((path, member, passphrase), info) in keys.iter().zip(statuses) {
        if info.status != MemberStatus::Active {
            continue;
        }
        out.seen.push(member.address());
        let current = vault.attribute_versions(&member.own_attributes()).await?;
        if member.versions().max(&current) == member.versions() {
            continue;
        }
        let Some(validity) = member.validity().filter(|v| v.covers(now)) else {
            out.expired.push(member.name().to_owned());
            continue;
        };
        let renewed = vault.renew_member(authority, member, validity).await?;
        // A sealed key stays sealed, under the same passphrase.
        let file = local::member_file(&renewed, passphrase.as_ref())?;
        local::write_secret(path, &file, true)?;
        out.renewed.push(RenewedKey {
            name: renewed.name().to_owned(),
            address: renewed.address(),
            valid_through: renewed.validity().map(|v| v.last_month().to_string()),
        });
    }
    Ok(out)
}

#[derive(Serialize)]
pub struct Rewrapped {
    name: String,
    rewrapped: Vec<u64>,
    up_to_date: usize,
}

impl fmt::Display for Rewrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<medseal::RecordId> = self
            .rewrapped
            .iter()
            .map(|&id| medseal::RecordId(id))
            .collect();
        if ids.is_empty() {
            writeln!(
                f,
                "{}: all {} record(s) already at the current attribute versions",
                self.name, self.up_to_date
            )
        } else {
            writeln!(
                f,
                "{}: re-wrapped the key capsules of {} (attachments unchanged); {} already \
                 current\n  keys revoked before now cannot open these from now on; what \
                 they read before stays read",
                self.name,
                records_phrase(&ids),
                self.up_to_date
            )
        }
    }
}

/// `rewrap --as NAME`: re-wraps the capsules of the member's records at the current
/// attribute versions (after a revocation).
pub async fn rewrap(ctx: &Ctx, actor: &Actor) -> CliResult<Rewrapped> {
    let (mut vault, member) = open_member(ctx, &actor.name).await?;
    let bar = if ctx.progress {
        let style =
            ProgressStyle::with_template("re-wrapping [{bar:30}] {pos}/{len} records {eta}")
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        ProgressBar::new(0).with_style(style)
    } else {
        ProgressBar::hidden()
    };
    let shown = bar.clone();
    vault.set_progress(std::sync::Arc::new(
        move |label: &str, done: u64, total: Option<u64>| {
            if label == "rewrap" {
                if let Some(total) = total {
                    shown.set_length(total);
                }
                shown.set_position(done);
            }
        },
    ));
    let report = vault.rewrap_records(&member).await;
    bar.finish_and_clear();
    let report = report?;
    Ok(Rewrapped {
        name: member.name().to_owned(),
        rewrapped: report.rewrapped.iter().map(|r| r.0).collect(),
        up_to_date: report.up_to_date,
    })
}
