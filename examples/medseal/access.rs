//! Access to records: `share`, `revoke`, `request`, `requests`, `answer`, `audit`.

use std::fmt;

use clap::{ArgGroup, Args};
use medseal::{AuditEvent, RecordId};
use serde::Serialize;

use crate::fail::{CliResult, Failure};
use crate::local::{self, Directory, open, open_as};
use crate::report::MemberRef;
use crate::show;
use crate::{Actor, Ctx, parse_record};

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Shared,
    Revoked,
}

#[derive(Serialize)]
pub struct Shared {
    record: u64,
    action: Action,
    member: MemberRef,
}

impl fmt::Display for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (record, who) = (self.record, &self.member);
        match self.action {
            Action::Shared => writeln!(f, "shared record {record} with {who}"),
            Action::Revoked => writeln!(
                f,
                "revoked {who}'s access to record {record} (the record was re-encrypted under \
                 a new key; what they already read stays with them)"
            ),
        }
    }
}

/// `share` (grants `target` access) and `revoke` (takes it back).
pub async fn share(
    ctx: &Ctx,
    name: &str,
    record: RecordId,
    target: &str,
    action: Action,
) -> CliResult<Shared> {
    let (vault, owner) = open_as(ctx, name).await?;
    let member = local::resolve_member(&ctx.dir, target)?;
    match action {
        Action::Shared => vault.share(&owner, record, member.address).await?,
        Action::Revoked => vault.revoke(&owner, record, member.address).await?,
    }
    Ok(Shared {
        record: record.0,
        action,
        member,
    })
}

#[derive(Serialize)]
pub struct Requested {
    record: u64,
    requester: MemberRef,
    /// Unknown if the record's details could not be read back.
    owner: Option<MemberRef>,
}

impl fmt::Display for Requested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (who, record) = (self.requester.short(), self.record);
        write!(f, "{who} asked for access to record {record}")?;
        if let Some(owner) = &self.owner {
            write!(f, "; {owner} answers with `medseal answer`")?;
        }
        writeln!(f)
    }
}

pub async fn request(ctx: &Ctx, name: &str, record: RecordId) -> CliResult<Requested> {
    let (vault, user) = open_as(ctx, name).await?;
    let requested = vault.request_access(&user, record).await;
    // Who answers: the record's patient if it has one, else its owner.
    let owner = vault.ledger().controller(record).await.ok();
    let directory = Directory::load(&ctx.dir);
    if let Err(e) = requested {
        let failure = Failure::from(e);
        // Name the owner who has to answer.
        return Err(match (failure.kind, owner) {
            ("already_requested", Some(owner)) => {
                let owner = directory.member(owner);
                let how = match &owner.name {
                    Some(name) => format!("`medseal requests --as {name}`"),
                    None => "`medseal requests`".to_owned(),
                };
                failure.hint(format!("{owner}, who answers, sees it in {how}"))
            }
            _ => failure,
        });
    }
    Ok(Requested {
        record: record.0,
        requester: MemberRef::from(&user),
        owner: owner.map(|o| directory.member(o)),
    })
}

#[derive(Serialize)]
pub struct Pending {
    requests: Vec<PendingRequest>,
    #[serde(skip)]
    owner: String,
}

#[derive(Serialize)]
struct PendingRequest {
    record: u64,
    requester: MemberRef,
}

impl fmt::Display for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.requests.is_empty() {
            writeln!(f, "no pending requests for {}'s records", self.owner)?;
        }
        for r in &self.requests {
            writeln!(f, "record {}  requested by {}", r.record, r.requester)?;
        }
        Ok(())
    }
}

pub async fn requests(ctx: &Ctx, name: &str) -> CliResult<Pending> {
    let (vault, owner) = open_as(ctx, name).await?;
    let pending = vault.pending_requests(&owner).await?;
    let directory = Directory::load(&ctx.dir);
    Ok(Pending {
        requests: pending
            .iter()
            .map(|r| PendingRequest {
                record: r.record.0,
                requester: directory.member(r.requester),
            })
            .collect(),
        owner: owner.name().to_owned(),
    })
}

#[derive(Serialize)]
pub struct Answered {
    record: u64,
    requester: MemberRef,
    approved: bool,
}

impl fmt::Display for Answered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (record, who) = (self.record, self.requester.short());
        if self.approved {
            writeln!(f, "approved: record {record} is shared with {who}")
        } else {
            writeln!(f, "denied {who}'s request for record {record}")
        }
    }
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("verdict").required(true).args(["approve", "deny"])))]
pub struct AnswerArgs {
    #[command(flatten)]
    pub actor: Actor,
    #[arg(value_parser = parse_record)]
    record: RecordId,
    /// Member name or 0x address of the requester
    #[arg(long, value_name = "MEMBER")]
    requester: String,
    /// Share the record with the requester
    #[arg(long)]
    approve: bool,
    /// Deny the request
    #[arg(long)]
    deny: bool,
}

pub async fn answer(ctx: &Ctx, args: AnswerArgs) -> CliResult<Answered> {
    let (vault, owner) = open_as(ctx, &args.actor.name).await?;
    let requester = local::resolve_member(&ctx.dir, &args.requester)?;
    let (record, approved) = (args.record, args.approve);
    vault
        .answer_request(&owner, record, requester.address, approved)
        .await?;
    Ok(Answered {
        record: record.0,
        requester,
        approved,
    })
}

#[derive(Serialize)]
pub struct Trail {
    record: u64,
    events: Vec<Entry>,
}

#[derive(Serialize)]
struct Entry {
    block: u64,
    timestamp: u64,
    time: String,
    tx_hash: String,
    event: Event,
}

/// An audit event, with its members named.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    Created(Wrap),
    Updated(Wrap),
    /// `by`: who decided (the controller: the patient, or the owner).
    AccessGranted {
        user: MemberRef,
        by: MemberRef,
    },
    AccessRevoked {
        user: MemberRef,
        by: MemberRef,
    },
    /// `approver`: who answers (the patient, or the owner).
    AccessRequested {
        requester: MemberRef,
        approver: MemberRef,
    },
    AccessDenied {
        user: MemberRef,
        by: MemberRef,
    },
    #[serde(rename = "accessed")]
    AccessLogged {
        accessor: MemberRef,
    },
    Subject {
        subject: MemberRef,
    },
    EmergencyAccess {
        accessor: MemberRef,
        reason: String,
    },
}

/// The record's manifest: at creation, then on every share (record key re-wrapped) and
/// revocation (record re-encrypted under a new key).
#[derive(Serialize)]
struct Wrap {
    /// The owner (created), or who updated it (the owner, or the patient).
    owner: MemberRef,
    manifest_cid: String,
    policy_hash: String,
}

impl Event {
    fn new(event: AuditEvent, d: &Directory) -> Self {
        use AuditEvent as A;
        let m = |address| d.member(address);
        let wrap = |owner, manifest_cid, policy_hash: medseal::chain::B256| Wrap {
            owner: m(owner),
            manifest_cid,
            policy_hash: hex::encode(policy_hash),
        };
        match event {
            A::Created {
                owner,
                manifest_cid,
                policy_hash,
            } => Self::Created(wrap(owner, manifest_cid, policy_hash)),
            A::Updated {
                by,
                manifest_cid,
                policy_hash,
            } => Self::Updated(wrap(by, manifest_cid, policy_hash)),
            A::AccessGranted { user, by } => Self::AccessGranted {
                user: m(user),
                by: m(by),
            },
            A::AccessRevoked { user, by } => Self::AccessRevoked {
                user: m(user),
                by: m(by),
            },
            A::AccessRequested {
                requester,
                approver,
            } => Self::AccessRequested {
                requester: m(requester),
                approver: m(approver),
            },
            A::AccessDenied { user, by } => Self::AccessDenied {
                user: m(user),
                by: m(by),
            },
            A::AccessLogged { accessor } => Self::AccessLogged {
                accessor: m(accessor),
            },
            A::Subject { subject } => Self::Subject {
                subject: m(subject),
            },
            A::EmergencyAccess { accessor, reason } => Self::EmergencyAccess {
                accessor: m(accessor),
                reason,
            },
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Created(w) => write!(f, "created by {} (manifest {})", w.owner, w.manifest_cid),
            // Sharing re-wraps the record key; revoking re-encrypts the record.
            Self::Updated(w) => {
                let (owner, cid) = (&w.owner, &w.manifest_cid);
                write!(f, "updated by {owner} (new manifest {cid})")
            }
            Self::AccessGranted { user, by } => write!(f, "access granted to {user} by {by}"),
            Self::AccessRevoked { user, by } => write!(f, "access revoked from {user} by {by}"),
            Self::AccessRequested {
                requester,
                approver,
            } => write!(
                f,
                "access requested by {requester} (answered by {approver})"
            ),
            Self::AccessDenied { user, by } => write!(f, "request denied to {user} by {by}"),
            Self::AccessLogged { accessor } => write!(f, "read by {accessor}"),
            Self::Subject { subject } => write!(f, "about patient {subject}"),
            Self::EmergencyAccess { accessor, reason } => write!(
                f,
                "!! EMERGENCY ACCESS (break-glass) by {accessor}: {}",
                show::printable(reason)
            ),
        }
    }
}

impl fmt::Display for Trail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.events.len();
        writeln!(f, "audit trail of record {} ({n} events)", self.record)?;
        let emergencies = self
            .events
            .iter()
            .filter(|e| matches!(e.event, Event::EmergencyAccess { .. }))
            .count();
        if emergencies > 0 {
            writeln!(
                f,
                "  !! {emergencies} EMERGENCY ACCESS(ES) (break-glass): see the entries marked !!"
            )?;
        }
        for e in &self.events {
            writeln!(f, "  {}  block {:>5}  {}", e.time, e.block, e.event)?;
        }
        Ok(())
    }
}

pub async fn audit(ctx: &Ctx, record: RecordId) -> CliResult<Trail> {
    let vault = open(ctx).await?;
    let trail = vault.audit(record).await?;
    let directory = Directory::load(&ctx.dir);
    Ok(Trail {
        record: record.0,
        events: trail
            .into_iter()
            .map(|e| Entry {
                block: e.block_number,
                timestamp: e.timestamp,
                time: show::utc(e.timestamp),
                tx_hash: format!("0x{}", hex::encode(e.tx_hash)),
                event: Event::new(e.event, &directory),
            })
            .collect(),
    })
}
