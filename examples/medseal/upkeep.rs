//! Upkeep: completing interrupted puts (`recover`, and on every command run as a
//! member), what Ctrl-C during a put leaves, `compact` and `gc`.

use std::fmt;

use clap::Args;
use medseal::{CompactScope, CompactionReport, Member, RecordId, Vault};
use serde::Serialize;

use crate::fail::{CliResult, EXIT_INTERRUPTED, Failure};
use crate::local::{self, open_member};
use crate::report::MemberRef;
use crate::show;
use crate::{Actor, Ctx};

/// `record 4`, `records 4, 5, 6`.
pub fn records_phrase(ids: &[RecordId]) -> String {
    let list: Vec<String> = ids.iter().map(|id| id.0.to_string()).collect();
    match list.as_slice() {
        [one] => format!("record {one}"),
        _ => format!("records {}", list.join(", ")),
    }
}

/// Completes `member`'s interrupted put, if any, and says so on stderr. A failure is a
/// warning: the command goes on (an owner operation completes the put itself anyway).
pub async fn complete_interrupted(vault: &Vault, member: &Member) {
    match vault.complete_interrupted(member).await {
        Ok(ids) if !ids.is_empty() => eprintln!(
            "completed the interrupted put of {} (repeat that put to get its receipt)",
            records_phrase(&ids)
        ),
        Ok(_) => {}
        Err(e) => eprintln!(
            "warning: an interrupted put of {} could not be completed yet: {}; \
             `medseal recover --as {}` tries again",
            member.name(),
            show::printable(&e.to_string()),
            member.name()
        ),
    }
}

/// What to do after Ctrl-C stopped a put of `member` (`what` names it, e.g. "the
/// record" or "the batch of 100 records"): the failure to report, with exit code 130.
/// Says whether the put's intent was saved (then repeating the put completes it), else
/// that nothing reached the chain, that its temp files are gone, and what the store
/// kept until `medseal gc`.
pub async fn interrupted(ctx: &Ctx, vault: &Vault, member: &Member, what: &str) -> Failure {
    let name = member.name();
    let (message, hint) = match vault.has_interrupted_put(member.address()).await {
        Ok(true) => (
            format!(
                "interrupted after the put's intent was saved: {what} is stored and pinned, \
                 and may already be on chain"
            ),
            format!(
                "run the same command again to complete it (or `medseal recover --as {name}`); \
                 it will not be stored twice"
            ),
        ),
        Ok(false) => {
            let kept = match local::local_store(ctx).await {
                Some(store) => match store.stats().abandoned_bytes {
                    0 => "nothing of it was kept".to_owned(),
                    bytes => format!(
                        "{} of its encrypted blocks stay in the store, unpinned, until \
                         `medseal gc` removes them",
                        show::size(bytes)
                    ),
                },
                None => "blocks already uploaded to the IPFS node stay unpinned until the \
                         node collects its garbage"
                    .to_owned(),
            };
            (
                format!(
                    "interrupted: {what} was not created (nothing reached the chain); its \
                     temporary files were removed and {kept}"
                ),
                "run the same command again to store it".to_owned(),
            )
        }
        Err(e) => (
            format!("interrupted; the put's state could not be read: {e}"),
            format!("`medseal recover --as {name}` completes the put if its intent was saved"),
        ),
    };
    Failure::new(EXIT_INTERRUPTED, "interrupted", message).hint(hint)
}

#[derive(Serialize)]
pub struct Recovered {
    member: MemberRef,
    /// The records of the interrupted put this run completed (empty if none).
    completed: Vec<u64>,
}

impl fmt::Display for Recovered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = self.member.short();
        if self.completed.is_empty() {
            return writeln!(f, "{who} has no interrupted put");
        }
        let ids: Vec<RecordId> = self.completed.iter().copied().map(RecordId).collect();
        writeln!(
            f,
            "completed the interrupted put of {} for {who} (repeat that put to get its receipt)",
            records_phrase(&ids)
        )
    }
}

/// `recover --as NAME`: completes the member's interrupted put, if any.
pub async fn recover(ctx: &Ctx, actor: &Actor) -> CliResult<Recovered> {
    let (vault, member) = open_member(ctx, &actor.name).await?;
    let completed = vault.complete_interrupted(&member).await?;
    Ok(Recovered {
        member: MemberRef::from(&member),
        completed: completed.into_iter().map(|id| id.0).collect(),
    })
}

#[derive(Args, Debug)]
pub struct GcArgs {
    /// Count what would be removed; delete nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Serialize)]
pub struct Collected {
    dry_run: bool,
    removed_blocks: usize,
    removed_bytes: u64,
    kept_blocks: usize,
    kept_bytes: u64,
}

impl fmt::Display for Collected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        writeln!(
            f,
            "{verb} {} unpinned block(s), {}; kept {} block(s), {}",
            self.removed_blocks,
            show::size(self.removed_bytes),
            self.kept_blocks,
            show::size(self.kept_bytes)
        )
    }
}

/// `gc [--dry-run]`: removes the blocks no pin reaches.
pub async fn gc(ctx: &Ctx, args: &GcArgs) -> CliResult<Collected> {
    let vault = local::open(ctx).await?;
    let report = vault.gc(args.dry_run).await.map_err(|e| {
        let unsupported = matches!(
            &e,
            medseal::Error::Storage(medseal::storage::StorageError::Unsupported { .. })
        );
        let failure = Failure::from(e);
        if unsupported {
            failure.hint("garbage collection of an IPFS node is run on the node (`ipfs repo gc`)")
        } else {
            failure
        }
    })?;
    Ok(Collected {
        dry_run: report.dry_run,
        removed_blocks: report.removed_blocks,
        removed_bytes: report.removed_bytes,
        kept_blocks: report.kept_blocks,
        kept_bytes: report.kept_bytes,
    })
}

/// What a compaction of the search index did (`compact`, and the end of `import`).
#[derive(Serialize)]
pub struct IndexCompaction {
    /// The member's current index partitions (one per policy).
    partitions: usize,
    /// Partitions whose live shards were merged into one.
    compacted: usize,
    /// Partitions too large to merge into one shard (left as they were).
    too_large: usize,
    shards_before: usize,
    shards_after: usize,
    /// Entries of the shards written.
    entries: u64,
    /// Bytes of the shards written.
    bytes: u64,
    seconds: f64,
}

impl From<CompactionReport> for IndexCompaction {
    fn from(r: CompactionReport) -> Self {
        Self {
            partitions: r.partitions,
            compacted: r.compacted,
            too_large: r.too_large,
            shards_before: r.shards_before,
            shards_after: r.shards_after,
            entries: r.entries,
            bytes: r.bytes,
            seconds: r.elapsed.as_secs_f64(),
        }
    }
}

impl IndexCompaction {
    /// One line, e.g. `search index: 2 partition(s), 9 -> 2 live shards (...)`.
    pub fn line(&self) -> String {
        let mut line = format!(
            "search index: {} partition(s), {} -> {} live shard(s)",
            self.partitions, self.shards_before, self.shards_after
        );
        if self.compacted > 0 {
            line.push_str(&format!(
                "; compacted {} partition(s): {} entries, {} in {:.1} s",
                self.compacted,
                self.entries,
                show::size(self.bytes),
                self.seconds
            ));
        } else {
            line.push_str("; nothing to compact");
        }
        if self.too_large > 0 {
            line.push_str(&format!(
                "; {} partition(s) too large for one shard, left as they were",
                self.too_large
            ));
        }
        line
    }
}

/// Compacts `member`'s search index, showing a progress bar if `progress`.
pub async fn compact_index(
    vault: &mut Vault,
    member: &Member,
    progress: bool,
) -> medseal::Result<IndexCompaction> {
    let bars = show::Bars::install(vault, "compacted", progress);
    let report = vault
        .compact_index(member, CompactScope::AllPartitions)
        .await;
    bars.finish();
    Ok(report?.into())
}

#[derive(Serialize)]
pub struct Compacted {
    member: MemberRef,
    #[serde(flatten)]
    index: IndexCompaction,
}

impl fmt::Display for Compacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} for {}", self.index.line(), self.member.short())
    }
}

/// `compact --as NAME`: merges every live shard of each of the member's index partitions
/// into one (what `import` does at its end).
pub async fn compact(ctx: &Ctx, actor: &Actor) -> CliResult<Compacted> {
    let (mut vault, member) = open_member(ctx, &actor.name).await?;
    let index = compact_index(&mut vault, &member, ctx.progress).await?;
    Ok(Compacted {
        member: MemberRef::from(&member),
        index,
    })
}
