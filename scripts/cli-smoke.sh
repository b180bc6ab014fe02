#!/usr/bin/env bash
# End-to-end smoke test of the `medseal` command-line example on the embedded backends
# (block store and chain in a fresh temporary data directory; no services needed).
#
#   cargo build --release --example medseal
#   scripts/cli-smoke.sh [path/to/medseal]     # default: target/release/examples/medseal
#
# Builds nothing. Prints every check; exits non-zero at the first unexpected result.
# With MEDSEAL_SMOKE_ETH_RPC set to a local anvil node (scripts/anvil-node.sh), it also checks
# how an unfunded key is reported there.
# Needs bash, coreutils, grep, od, dd; uses node (if installed) to validate JSON output.
set -euo pipefail

BIN=${1:-target/release/examples/medseal}
if [[ ! -x $BIN ]]; then
    echo "cli-smoke: no executable at $BIN (cargo build --release --example medseal)" >&2
    exit 1
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/medseal-cli-smoke.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export MEDSEAL_DIR=$WORK/data
unset MEDSEAL_IPFS_API MEDSEAL_ETH_RPC MEDSEAL_REGISTRY MEDSEAL_ETH_KEY MEDSEAL_AUTHORITY_NEW_PASSPHRASE
# The authority key's passphrase, non-interactively (the commands would ask on a terminal).
PASSPHRASE="smoke-test passphrase"
export MEDSEAL_AUTHORITY_PASSPHRASE=$PASSPHRASE
CHECKS=0

step() { printf '\n== %s\n' "$*"; }
fail() {
    printf 'cli-smoke: FAIL: %s\n' "$*" >&2
    exit 1
}
pass() {
    CHECKS=$((CHECKS + 1))
    printf '   ok  %s\n' "$*"
}

# ms EXPECTED_EXIT ARGS...: runs the CLI; stdout in $OUT, stderr in $ERR.
ms() {
    local want=$1 code=0
    shift
    "$BIN" "$@" >"$WORK/stdout" 2>"$WORK/stderr" || code=$?
    OUT=$(cat "$WORK/stdout")
    ERR=$(cat "$WORK/stderr")
    if [[ $code != "$want" ]]; then
        printf '   command: medseal %s\n--- stdout\n%s\n--- stderr\n%s\n---\n' "$*" "$OUT" "$ERR" >&2
        fail "exit code $code, expected $want"
    fi
    pass "medseal $* -> exit $code"
}

has_node=false
command -v node >/dev/null 2>&1 && has_node=true

# With --json: stdout is one JSON document (one line; parsed by node when available).
check_json() {
    [[ $(wc -l <"$WORK/stdout") == 1 && $OUT == \{*\} ]] || fail "stdout is not one JSON document: $OUT"
    if $has_node; then
        node -e 'JSON.parse(require("fs").readFileSync(0, "utf8"))' <"$WORK/stdout" ||
            fail "stdout is not valid JSON: $OUT"
    fi
}
out_has() { grep -qF -- "$1" <<<"$OUT" || fail "stdout lacks '$1': $OUT"; }
out_lacks() { ! grep -qF -- "$1" <<<"$OUT" || fail "stdout has '$1': $OUT"; }
err_has() { grep -qF -- "$1" <<<"$ERR" || fail "stderr lacks '$1': $ERR"; }
err_lacks() { ! grep -qF -- "$1" <<<"$ERR" || fail "stderr has '$1': $ERR"; }
# How many "accessed" events the audit trail of record $1 holds.
reads_of() {
    "$BIN" --json audit "$1" >"$WORK/audit.json" 2>/dev/null || fail "audit $1 failed"
    grep -o '"type":"accessed"' "$WORK/audit.json" | wc -l
}
# The value of the first "record":N in the JSON on stdout.
record_id() { grep -o '"record":[0-9]*' <<<"$OUT" | head -n1 | cut -d: -f2; }
# Every "record":N in the JSON on stdout, sorted, space-separated.
record_ids() { grep -o '"record":[0-9]*' <<<"$OUT" | cut -d: -f2 | sort -n | tr '\n' ' ' | sed 's/ $//'; }
mode_of() { stat -c %a "$1"; }
empty_dir() { [[ -d $1 && -z $(ls -A "$1") ]]; }

step "init and authority"
ms 0 init
[[ -d $MEDSEAL_DIR && ! -e $MEDSEAL_DIR/medseal.json ]] || fail "init: no data dir, or a config without flags"
pass "data dir created, no medseal.json without flags"
ms 4 authority keygen dr-ada --attr role:doctor
err_has "medseal authority setup"
pass "keygen before setup says which command to run"
ms 0 --json authority setup
check_json
[[ $(mode_of "$MEDSEAL_DIR/authority.key") == 600 ]] || fail "authority.key mode $(mode_of "$MEDSEAL_DIR/authority.key")"
pass "authority.key has mode 0600"
ms 1 authority setup
err_has "already exists"
pass "setup refuses to overwrite authority.key"

step "member keys"
ms 0 authority keygen dr-ada --attr role:doctor --attr dept:cardiology
out_has "role:doctor"
ms 0 authority keygen nurse-sam --attr role:nurse --attr dept:cardiology
ms 0 authority keygen rui --attr role:researcher --attr level=2
ms 0 authority keygen dr-olu --attr role:doctor --attr dept:neurology
for m in dr-ada nurse-sam rui dr-olu; do
    [[ $(mode_of "$MEDSEAL_DIR/members/$m.key") == 600 ]] || fail "$m.key is not mode 0600"
done
pass "member keys have mode 0600"
ms 1 authority keygen dr-ada --attr role:doctor
ms 0 --json members
check_json
for m in dr-ada nurse-sam rui dr-olu; do out_has "\"name\":\"$m\""; done
out_has '"level=2"'
pass "members lists all four with their attributes"

step "authority key custody: sealed key, wrong passphrase, backup shares, restore"
KEY=$MEDSEAL_DIR/authority.key
[[ $(head -c 4 "$KEY") == MSAS ]] || fail "authority.key is not sealed (magic $(head -c 4 "$KEY"))"
pass "authority.key is sealed under the passphrase (MSAS)"
MEDSEAL_AUTHORITY_PASSPHRASE="not the passphrase" ms 3 authority keygen nobody-1 --attr role:x
err_has "wrong passphrase"
err_has "medseal authority restore"
MEDSEAL_AUTHORITY_PASSPHRASE="not the passphrase" ms 3 --json authority keygen nobody-1 --attr role:x
check_json
out_has '"kind":"wrong_passphrase"'
[[ ! -e $MEDSEAL_DIR/members/nobody-1.key ]] || fail "a wrong passphrase issued a key"
pass "a wrong passphrase: exit 3, kind wrong_passphrase, a hint to restore, no key issued"
ms 0 --dir "$WORK/short" init
MEDSEAL_AUTHORITY_PASSPHRASE="short" ms 1 --dir "$WORK/short" authority setup
err_has "at least 8 characters"
ms 1 authority protect
err_has "already sealed"
ms 0 --json authority backup --shares 2/3 --out "$WORK/shares"
check_json
out_has '"threshold":2'
out_has '"count":3'
SHARES=("$WORK"/shares/authority-share-*-of-3.txt)
[[ ${#SHARES[@]} == 3 ]] || fail "backup wrote ${#SHARES[@]} share files, expected 3"
for f in "${SHARES[@]}"; do
    [[ $(mode_of "$f") == 600 ]] || fail "$f has mode $(mode_of "$f")"
    grep -q '^medseal-authority-share v1 authority=[0-9a-f]* set=[0-9a-f]* share=[123]/3 k=2 ' "$f" ||
        fail "$f is not a share line"
done
pass "backup 2/3 wrote three share files (mode 0600, one line each)"
ms 0 authority backup --shares 2/3 --out "$WORK/shares2"
out_has "different holder"
out_has "offline"
SHARES2=("$WORK"/shares2/authority-share-*-of-3.txt)
ms 2 authority backup --shares 1/3
ms 2 authority backup --shares 4/3
pass "backup prints the procedure; 1/3 and 4/3 are usage errors"
cp "$KEY" "$WORK/authority.key.orig"
rm "$KEY"
ms 4 authority keygen nobody-2 --attr role:x
ms 1 authority restore "${SHARES[0]}"
err_has "1 distinct share(s) given, 2 needed"
ms 1 --json authority restore "${SHARES[0]}" "${SHARES[0]}"
check_json
out_has '"kind":"invalid_share"'
out_has "given twice"
DAMAGED=$WORK/damaged-share.txt
sed -E 's/ k=2 0/ k=2 1/; t; s/ k=2 ./ k=2 0/' "${SHARES[1]}" >"$DAMAGED"
ms 1 authority restore "${SHARES[0]}" "$DAMAGED"
err_has "damaged-share.txt"
err_has "share 2/3 is damaged"
ms 1 authority restore "${SHARES[0]}" "${SHARES2[1]}"
err_has "different backups"
[[ ! -e $KEY ]] || fail "a refused restore wrote authority.key"
pass "restore refuses 1 share (2 needed), a duplicate, a damaged share (named), two backups' shares"
NEWPASS="restored passphrase"
MEDSEAL_AUTHORITY_PASSPHRASE=$NEWPASS ms 0 --json authority restore "${SHARES[2]}" "${SHARES[0]}"
check_json
out_has '"shares_used":2'
[[ $(mode_of "$KEY") == 600 && $(head -c 4 "$KEY") == MSAS ]] || fail "the restored key is not sealed with mode 0600"
MEDSEAL_AUTHORITY_PASSPHRASE=$NEWPASS ms 0 authority keygen dr-eve --attr role:doctor
ms 3 authority keygen dr-eve-2 --attr role:doctor
pass "restore from 2 of 3 shares: sealed under the new passphrase, keygen works with it (not the old one)"
ms 1 authority restore "${SHARES[0]}" "${SHARES[1]}"
err_has "already exists"
MEDSEAL_AUTHORITY_PASSPHRASE=$NEWPASS MEDSEAL_AUTHORITY_NEW_PASSPHRASE=$PASSPHRASE ms 0 authority passwd
out_has "passphrase changed"
ms 0 authority keygen dr-eve-2 --attr role:doctor
pass "restore does not overwrite; passwd changes the passphrase back"
ms 0 --dir "$WORK/other" init
ms 0 --dir "$WORK/other" authority setup
ms 0 --dir "$WORK/other" authority backup --shares 2/2 --out "$WORK/other-shares"
ms 1 authority restore --force "$WORK"/other-shares/*.txt
err_has "holds another authority's public key"
ms 0 authority keygen dr-eve-3 --attr role:doctor
pass "restore --force refuses another authority's shares (the installed public key), key unchanged"
rm -f "$MEDSEAL_DIR"/members/dr-eve*.key
# A plain (unsealed) key file of an earlier release: the fuzz corpus's valid authority key.
LEGACY_KEY=$(cd "$(dirname "$0")/.." && pwd)/fuzz/corpus/decode_authority_key/valid
ms 0 --dir "$WORK/legacy" init
install -m 600 "$LEGACY_KEY" "$WORK/legacy/authority.key"
ms 4 --dir "$WORK/legacy" authority keygen x --attr role:x
err_has "is not sealed under a passphrase"
err_has "medseal authority protect"
ms 0 --dir "$WORK/legacy" authority protect
[[ $(head -c 4 "$WORK/legacy/authority.key") == MSAS && $(mode_of "$WORK/legacy/authority.key") == 600 ]] ||
    fail "protect did not seal the plain key in place with mode 0600"
MEDSEAL_AUTHORITY_PASSPHRASE="not the passphrase" ms 3 --dir "$WORK/legacy" authority keygen x --attr role:x
ms 4 --dir "$WORK/legacy" authority keygen x --attr role:x
err_lacks "not sealed"
pass "a plain key of an earlier release loads with a warning; protect seals it in place"

step "put two records"
printf '%%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%%%EOF\n' >"$WORK/ecg.pdf"
printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0' >"$WORK/xray.png"
printf 'free-text note\n' >"$WORK/note.bin"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$WORK/scan.dcm"
ms 0 --json put --as dr-ada --name "ECG report" --policy "role:doctor and dept:cardiology" \
    --keyword icd10:I10 --keyword term:hypertension \
    --attach "$WORK/ecg.pdf" --attach "$WORK/xray.png" --attach "$WORK/note.bin=text/plain"
check_json
A=$(record_id)
err_lacks "warning"
out_has '"content_type":"application/pdf"'
out_has '"content_type":"image/png"'
out_has '"content_type":"text/plain"'
out_has '"manifest_cid":"'
pass "record A = $A with guessed and explicit content types"
ms 0 --json put --as dr-ada --name "Cohort imaging" \
    --policy "role:researcher or (role:doctor and dept:cardiology)" \
    --keyword icd10:I10 --keyword icd10:E11.9 --attach "$WORK/scan.dcm"
check_json
B=$(record_id)
out_has '"content_type":"application/dicom"'
out_has '"size":8388608'
[[ -n $A && -n $B && $A != "$B" ]] || fail "record ids A=$A B=$B"
pass "record B = $B (8 MiB DICOM attachment)"

step "get: allowed and refused readers"
ms 0 get --as dr-ada "$A" --out "$WORK/ada"
cmp -s "$WORK/ecg.pdf" "$WORK/ada/ecg.pdf" && cmp -s "$WORK/xray.png" "$WORK/ada/xray.png" &&
    cmp -s "$WORK/note.bin" "$WORK/ada/note.bin" || fail "owner's attachments differ from the originals"
pass "owner reads record A's attachments back byte for byte"
READS=$(reads_of "$A")
ms 1 get --as dr-ada "$A" --out "$WORK/ada"
err_has "already exists"
[[ $(reads_of "$A") == "$READS" ]] || fail "a refused get --out logged a read ($READS -> $(reads_of "$A"))"
pass "get --out refuses to overwrite, and logs no read on chain"
ms 0 get --as dr-ada "$A" --out "$WORK/ada" --force
[[ $(reads_of "$A") == $((READS + 1)) ]] || fail "a get --out --force logged $(reads_of "$A") reads, expected $((READS + 1))"
pass "the get that does write logs one read"
ms 3 get --as nurse-sam "$A"
err_has "access denied"
err_has "hint: ask the owner for access: \`medseal request --as nurse-sam $A\`"
ms 3 get --as rui "$A"
ms 3 --json get --as dr-olu "$A"
check_json
out_has '"kind":"access_denied"'
pass "refused readers exit 3 (JSON error on stdout with --json)"
ms 0 --json get --as rui "$B" --out "$WORK/rui"
check_json
out_has '"name":"Cohort imaging"'
cmp -s "$WORK/scan.dcm" "$WORK/rui/scan.dcm" || fail "researcher's copy of the 8 MiB attachment differs"
pass "researcher reads record B's 8 MiB attachment"
ms 3 get --as nurse-sam "$B"

step "search by ICD-10 code"
ms 0 --json search --as rui icd10:I10
check_json
[[ $(record_ids) == "$B" ]] || fail "researcher's hits for icd10:I10 are [$(record_ids)], expected [$B]"
pass "researcher finds only record B"
ms 0 --json search --as dr-ada icd10:i10
[[ $(record_ids) == "$A $B" ]] || fail "owner's hits are [$(record_ids)], expected [$A $B]"
out_has '"name":"dr-ada"'
pass "cardiology doctor finds A and B, owner name resolved"
ms 0 --json search --as rui icd10:E11.9
[[ $(record_ids) == "$B" ]] || fail "hits for icd10:E11.9 are [$(record_ids)]"
ms 0 --json search --as nurse-sam icd10:I10
[[ -z $(record_ids) ]] || fail "nurse finds [$(record_ids)]"
pass "nurse finds nothing"
ms 0 --json search --as dr-olu term:hypertension
[[ -z $(record_ids) ]] || fail "outside doctor finds [$(record_ids)]"
ms 0 search --as dr-ada icd10:E11.9
out_has "1 record(s) for icd10:E11.9:"
out_lacks "icd10:e119"
ms 0 search --as nurse-sam ICD10:I10
out_has "no records found for ICD10:I10 that nurse-sam can search"
pass "search echoes the keyword as given, not its normalised form"
ms 2 search --as rui icd:I48.0
err_has "unknown keyword type \`icd\`"
err_has "icd10, term"
BEFORE=$(find "$MEDSEAL_DIR/blocks" -type f | wc -l)
ms 2 --json put --as dr-ada --name "typo" --policy role:doctor --keyword icd-10:I48.0 --attach "$WORK/note.bin"
check_json
out_has '"kind":"invalid_keyword"'
out_has 'icd10, term'
[[ $(find "$MEDSEAL_DIR/blocks" -type f | wc -l) == "$BEFORE" ]] || fail "a rejected keyword stored blocks"
pass "unknown keyword types exit 2, list the known ones, store nothing"
ms 2 search --as rui nocolon
err_has "keyword"
ms 2 put --as dr-ada --name "bad policy" --policy "role:doctor and"
err_has "policy"
pass "keyword and policy syntax errors exit 2 (usage)"

step "share and revoke"
ms 0 share --as dr-ada "$A" --with nurse-sam
ms 0 get --as nurse-sam "$A"
out_has "ECG report"
pass "nurse reads A once shared"
ms 0 --json records --as nurse-sam
check_json
grep -q "\"shared_with_me\":\[{[^]]*\"record\":$A" <<<"$OUT" || fail "A is not in nurse's shared records: $OUT"
out_has '"title":"ECG report"'
pass "records lists A as shared with the nurse, with its title"
ms 3 share --as nurse-sam "$A" --with rui
err_has "not by the acting member"
pass "a non-owner cannot share (exit 3)"
ms 0 revoke --as dr-ada "$A" --from nurse-sam
out_has "re-encrypted under a new key"
out_lacks "re-wrapped"
ms 3 get --as nurse-sam "$A"
pass "nurse is refused after revocation"

step "request and answer"
ms 0 request --as dr-olu "$A"
ms 0 --json requests --as dr-ada
check_json
out_has '"name":"dr-olu"'
[[ $(record_ids) == "$A" ]] || fail "pending requests: $OUT"
ms 1 request --as dr-olu "$A"
err_has "already requested"
err_has "\`medseal requests --as dr-ada\`"
pass "a repeated request names the owner who answers it"
ms 0 answer --as dr-ada "$A" --requester dr-olu --deny
ms 0 --json requests --as dr-ada
[[ $OUT == '{"requests":[]}' ]] || fail "requests after deny: $OUT"
pass "denied request is gone"
ms 3 get --as dr-olu "$A"
ms 0 request --as dr-olu "$A"
ms 0 answer --as dr-ada "$A" --requester dr-olu --approve
ms 0 get --as dr-olu "$A" --out "$WORK/olu"
cmp -s "$WORK/ecg.pdf" "$WORK/olu/ecg.pdf" || fail "approved reader's copy differs"
pass "approved requester reads A"
ms 2 answer --as dr-ada "$A" --requester dr-olu
err_has "--approve"
err_has "--deny"
ms 2 answer --as dr-ada "$A" --requester dr-olu --approve --deny
ms 1 answer --as dr-ada "$A" --requester nurse-sam --deny
err_has "\`medseal requests --as dr-ada\`"
pass "answer names both --approve and --deny; hints name the acting member"

step "records and audit"
ms 0 --json records --as dr-ada
check_json
grep -q "\"owned\":\[{\"created_at\":[0-9]*,\"manifest_cid\":\"[^\"]*\",\"owner\":{[^}]*},\"record\":$A" <<<"$OUT" ||
    fail "dr-ada's owned records: $OUT"
out_has "\"record\":$B"
pass "owner lists A and B"
READS=$(reads_of "$A")
ms 0 records --as dr-ada
out_has "dr-ada owns 2 record(s)"
out_has "record $A  \"ECG report\""
out_has "record $B  \"Cohort imaging\""
ms 0 --json records --as dr-ada
out_has '"title":"Cohort imaging"'
[[ $(reads_of "$A") == "$READS" ]] || fail "listing logged a read of A"
pass "records shows titles to the owner, and logs no read"
ms 0 --json records --as nurse-sam
out_lacks '"title"'
pass "after the revocation the nurse lists no record (and no title)"
ms 0 --json audit "$A"
check_json
for t in created updated access_granted access_revoked access_requested access_denied accessed; do
    out_has "\"type\":\"$t\""
done
out_has '"name":"nurse-sam"'
out_has '"name":"dr-olu"'
pass "audit trail of A has every event kind, with member names"
ms 0 audit "$A"
out_has "access revoked from nurse-sam"
out_has "read by dr-olu"
out_has "updated by dr-ada"
out_lacks "re-wrapped"

step "not found and usage errors"
ms 4 get --as dr-ada 999
err_has "unknown record 999"
err_has "\`medseal records --as dr-ada\`"
ms 4 --json audit 999
check_json
out_has '"kind":"unknown_record"'
out_has '--as <member>'
out_lacks 'NAME'
ms 4 get --as nobody "$A"
err_has "medseal members"
err_has "keygen nobody"
err_lacks "NAME"
pass "hints name the member, never a literal NAME"
ms 4 share --as dr-ada "$A" --with nobody
ms 4 --dir "$WORK/missing" records --as dr-ada
err_has "medseal init"
ms 2 get "$A"
ms 2 --json frobnicate
check_json
out_has '"kind":"usage"'
ms 2 get --as dr-ada not-a-number

step "move records to another store through a CAR file"
CAR=$WORK/ada.car
ms 0 --json export --as dr-ada --all-mine --car "$CAR"
check_json
out_has "\"records\":[$A,$B]"
out_has '"manifests":2'
out_has '"attachments":4'
[[ -s $CAR ]] || fail "no CAR file written"
pass "dr-ada's records and index exported to a CAR file ($(stat -c %s "$CAR") bytes)"
ms 1 export --as dr-ada --record "$A" --car "$CAR"
err_has "already exists"
ms 3 export --as nurse-sam --record "$A" --car "$WORK/nurse.car"
ms 4 export --as nurse-sam --all-mine --car "$WORK/nurse.car"
err_has "owns no records"
[[ ! -e $WORK/nurse.car ]] || fail "a refused export left a file"
ms 2 export --as dr-ada --car "$WORK/nothing.car"
pass "export refuses to overwrite, refuses unreadable records, needs a selection"
# Another data directory on the same chain: the chain journal, authority and member keys are
# copied; its block store starts empty.
MOVED=$WORK/moved
mkdir "$MOVED"
cp -r "$MEDSEAL_DIR"/chain.journal* "$MEDSEAL_DIR/authority.pub" "$MEDSEAL_DIR/members" "$MOVED/"
ms 1 --dir "$MOVED" get --as dr-ada "$A"
err_has "not found"
printf 'not a car\n' >"$WORK/garbage.car"
ms 1 --json --dir "$MOVED" import --car "$WORK/garbage.car"
check_json
out_has '"kind":"invalid_car"'
# A byte of the first block (past the header and the section's length and CID) altered.
read -r B0 B1 <<<"$(od -An -tu1 -N2 "$CAR")"
if ((B0 < 128)); then HEADER_END=$((1 + B0)); else HEADER_END=$((2 + (B0 - 128) + 128 * B1)); fi
OFF=$((HEADER_END + 3 + 34 + 20))
BYTE=$(od -An -tu1 -j "$OFF" -N1 "$CAR" | tr -d ' ')
cp "$CAR" "$WORK/flipped.car"
# shellcheck disable=SC2059
printf "\\$(printf '%03o' $((BYTE ^ 0x5a)))" | dd of="$WORK/flipped.car" bs=1 seek="$OFF" conv=notrunc status=none
cmp -s "$CAR" "$WORK/flipped.car" && fail "byte not flipped"
ms 5 --dir "$MOVED" import --car "$WORK/flipped.car"
err_has "tampering detected"
ms 0 --json --dir "$MOVED" import --car "$CAR" --dry-run
out_has '"dry_run":true'
ms 1 --dir "$MOVED" get --as dr-ada "$A"
pass "garbage and altered CAR files are refused (exit 1, 5); a dry run stores nothing"
head -c $(($(stat -c %s "$CAR") / 2)) "$CAR" >"$WORK/cut.car"
ms 1 --json --dir "$MOVED" import --car "$WORK/cut.car"
check_json
out_has '"kind":"invalid_car"'
pass "a CAR file cut short is refused (exit 1)"
ms 0 --json --dir "$MOVED" import --car "$CAR"
check_json
out_has '"dry_run":false'
ms 0 --dir "$MOVED" get --as dr-ada "$A" --out "$WORK/moved-ada"
cmp -s "$WORK/ecg.pdf" "$WORK/moved-ada/ecg.pdf" && cmp -s "$WORK/note.bin" "$WORK/moved-ada/note.bin" ||
    fail "record A read from the moved store differs"
ms 0 --dir "$MOVED" get --as rui "$B" --out "$WORK/moved-rui"
cmp -s "$WORK/scan.dcm" "$WORK/moved-rui/scan.dcm" || fail "record B's 8 MiB attachment differs after the move"
ms 0 --json --dir "$MOVED" search --as dr-ada icd10:I10
[[ $(record_ids) == "$A $B" ]] || fail "search in the moved store finds [$(record_ids)], expected [$A $B]"
pass "the imported store reads A and B byte for byte and searches them"
ms 0 --dir "$MOVED" import --car "$CAR"
out_has "pinned"
pass "importing the same file again is harmless"

step "policies naming attributes no issued key carries"
ms 0 --json put --as dr-ada --name "Bare word" --policy "doctor or (role:docter and dept:cardiology)" \
    --attach "$WORK/note.bin"
err_has "no issued key carries the policy's attribute \`doctor\`"
err_has "did you mean \`role:doctor\`"
err_has "attribute \`role:docter\`"
err_lacks "\`dept:cardiology\`"
pass "a policy naming attributes no issued key carries is stored with a warning naming them and close issued ones"
ms 0 put --as dr-ada --name "Numeric" --policy "lvl >= 2 and role:researcher" --attach "$WORK/note.bin"
err_has "attribute \`lvl\`"
err_has "\`level\`"
pass "a misspelt numeric attribute is named too"

step "tampered block"
BLOCK=$(find "$MEDSEAL_DIR/blocks" -type f -name '*.data' -printf '%s %p\n' | sort -n | tail -n1 | cut -d' ' -f2-)
[[ -n $BLOCK ]] || fail "no block files under $MEDSEAL_DIR/blocks"
SIZE=$(stat -c %s "$BLOCK")
OFF=$((SIZE / 2))
BYTE=$(od -An -tu1 -j "$OFF" -N1 "$BLOCK" | tr -d ' ')
chmod u+w "$BLOCK"
# shellcheck disable=SC2059
printf "\\$(printf '%03o' $((BYTE ^ 0x5a)))" | dd of="$BLOCK" bs=1 seek="$OFF" conv=notrunc status=none
[[ $(od -An -tu1 -j "$OFF" -N1 "$BLOCK" | tr -d ' ') != "$BYTE" ]] || fail "byte not flipped"
pass "flipped byte $OFF of the largest block ($SIZE bytes, $(basename "$BLOCK"))"
mkdir "$WORK/tampered"
ms 5 get --as rui "$B" --out "$WORK/tampered"
err_has "tampering detected"
empty_dir "$WORK/tampered" || fail "files left after tampering: $(ls -A "$WORK/tampered")"
pass "tampered download exits 5 and leaves no file (not even a temporary one)"
ms 5 --json get --as dr-ada "$B" --out "$WORK/tampered"
check_json
out_has '"kind":"tampered"'
empty_dir "$WORK/tampered" || fail "files left after tampering: $(ls -A "$WORK/tampered")"
ms 0 get --as dr-ada "$A" --out "$WORK/untouched"
cmp -s "$WORK/ecg.pdf" "$WORK/untouched/ecg.pdf" || fail "record A damaged"
pass "record A is unaffected"

step "import an archive"
mkdir -p "$WORK/archive/nested"
for i in 1 2 3 4; do printf 'discharge letter %d\n' "$i" >"$WORK/archive/letter-$i.txt"; done
printf 'not imported\n' >"$WORK/archive/nested/deep.txt"
ms 0 --json import --as dr-ada --policy "role:doctor and dept:cardiology" --keyword icd10:J45 \
    --keyword term:asthma "$WORK/archive"
check_json
out_has '"imported":4'
out_has '"already_imported":0'
out_has '"name":"letter-3.txt"'
IMPORTED=$(record_ids)
[[ $(wc -w <<<"$IMPORTED") == 4 ]] || fail "import stored [$IMPORTED]"
err_has "imported 4 record(s)"
pass "a directory of four files is imported as four records [$IMPORTED]; the subdirectory is skipped"
ms 0 --json search --as dr-ada icd10:J45
[[ $(record_ids) == "$IMPORTED" ]] || fail "hits for icd10:J45 are [$(record_ids)], expected [$IMPORTED]"
pass "search finds every imported record"
ms 0 get --as dr-ada "${IMPORTED%% *}" --out "$WORK/imported"
cmp -s "$WORK/archive/letter-1.txt" "$WORK/imported/letter-1.txt" || fail "imported attachment differs"
pass "an imported record reads back byte for byte"
ms 0 --json import --as dr-ada --policy "role:doctor and dept:cardiology" --keyword icd10:J45 \
    --keyword term:asthma "$WORK/archive"
out_has '"imported":0'
out_has '"already_imported":4'
ms 0 --json search --as dr-ada icd10:J45
[[ $(record_ids) == "$IMPORTED" ]] || fail "re-run duplicated records: [$(record_ids)]"
pass "re-running the same import stores nothing new"
printf 'discharge letter 5\n' >"$WORK/archive/letter-5.txt"
ms 0 --json import --as dr-ada --policy "role:doctor and dept:cardiology" --keyword icd10:J45 \
    --keyword term:asthma "$WORK/archive"
out_has '"imported":1'
out_has '"name":"letter-5.txt"'
pass "a file added to the archive is the only record imported by the next run"
cat >"$WORK/records.jsonl" <<'JSONL'
# migrated from the old archive
{"name": "Asthma follow-up", "keywords": ["icd10:J45.909"], "attachments": ["archive/letter-1.txt"]}

{"name": "Spirometry", "policy": "role:nurse", "attachments": [{"path": "archive/letter-2.txt", "content_type": "text/plain"}]}
{"name": "Broken", "keywords": ["nocolon"], "attachments": []}
JSONL
BEFORE=$(find "$MEDSEAL_DIR/blocks" -type f | wc -l)
ms 2 import --as dr-ada --policy role:doctor --manifest "$WORK/records.jsonl"
err_has "records.jsonl line 5:"
err_has "keyword"
[[ $(find "$MEDSEAL_DIR/blocks" -type f | wc -l) == "$BEFORE" ]] || fail "a rejected manifest stored blocks"
pass "a bad keyword is rejected with its line number, before anything is stored"
sed -i '$d' "$WORK/records.jsonl"
printf '{"name": "Gone", "attachments": ["archive/missing.pdf"]}\n' >>"$WORK/records.jsonl"
ms 1 import --as dr-ada --policy role:doctor --manifest "$WORK/records.jsonl"
err_has "records.jsonl line 5:"
err_has "missing.pdf"
printf '{"name": "Typo", "attachment": []}\n' >"$WORK/typo.jsonl"
ms 1 --json import --as dr-ada --policy role:doctor --manifest "$WORK/typo.jsonl"
check_json
out_has '"kind":"invalid_input"'
out_has 'line 1'
pass "a missing attachment and an unknown field are rejected with their line numbers"
sed -i '$d' "$WORK/records.jsonl"
ms 0 --json import --as dr-ada --policy role:doctor --manifest "$WORK/records.jsonl"
out_has '"imported":2'
ms 0 --json search --as dr-ada icd10:J45.909
[[ $(wc -w <<<"$(record_ids)") == 1 ]] || fail "hits for icd10:J45.909: [$(record_ids)]"
ms 0 --json import --as dr-ada --policy role:doctor --manifest "$WORK/records.jsonl"
out_has '"imported":0'
pass "a manifest imports its records once"
ms 2 import --as dr-ada "$WORK/archive"
err_has "--policy"
mkdir "$WORK/big"
for i in $(seq 1 300); do printf 'lab result %d\n' "$i" >"$WORK/big/lab-$i.txt"; done
"$BIN" import --as rui --policy role:researcher --keyword term:lab "$WORK/big" >/dev/null 2>&1 &
sleep 1.5
kill -9 $! 2>/dev/null || true
wait $! 2>/dev/null || true
pass "an import of 300 files was killed (SIGKILL) after 1.5 s"
ms 0 --json import --as rui --policy role:researcher --keyword term:lab "$WORK/big"
out_has '"partitions":1'
out_has '"shards_after":1'
pass "the import ends with one live index shard for rui's one partition"
ms 0 --json search --as rui term:lab
[[ $(wc -w <<<"$(record_ids)") == 300 && -z $(grep -o '"record":[0-9]*' <<<"$OUT" | sort | uniq -d) ]] ||
    fail "after the re-run, term:lab finds $(wc -w <<<"$(record_ids)") records (expected 300, once each)"
ms 0 --json records --as rui
[[ $(grep -o '"record":' <<<"$OUT" | wc -l) == 300 ]] || fail "rui owns $(grep -o '"record":' <<<"$OUT" | wc -l) records"
pass "the re-run completed the import: 300 records, none twice"
ms 2 import --as dr-ada

step "compact the search index"
ms 0 --json search --as dr-ada icd10:J45
HITS_BEFORE=$(record_ids)
ms 0 --json compact --as dr-ada
check_json
PARTS=$(grep -o '"partitions":[0-9]*' <<<"$OUT" | cut -d: -f2)
[[ $PARTS -ge 2 ]] || fail "dr-ada has $PARTS index partitions, expected several: $OUT"
out_has "\"shards_after\":$PARTS"
pass "compact leaves one live shard in each of dr-ada's $PARTS partitions"
ms 0 --json search --as dr-ada icd10:J45
[[ $(record_ids) == "$HITS_BEFORE" ]] || fail "after compact, icd10:J45 finds [$(record_ids)], before [$HITS_BEFORE]"
pass "search finds the same records after compact"
ms 0 compact --as dr-ada
out_has "nothing to compact"
ms 0 --json compact --as dr-ada
out_has '"compacted":0'
pass "a second compact does nothing"
ms 4 compact --as nobody

if [[ -n ${MEDSEAL_SMOKE_ETH_RPC:-} ]]; then
    step "an unfunded key on an Ethereum node ($MEDSEAL_SMOKE_ETH_RPC)"
    ETH=(--dir "$WORK/eth")
    # anvil's well-known dev accounts (public test keys): 0 deploys the registry, 1 is funded.
    DEV0=ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
    DEV1=59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d
    MEDSEAL_ETH_KEY=$DEV0 ms 0 "${ETH[@]}" init --eth-rpc "$MEDSEAL_SMOKE_ETH_RPC"
    # Only the registry's deployer (dev account 0) hands its authority role to the
    # authority's chain account: a setup run with another key keeps the authority and says
    # which key to use; the next command run with the deployer's key hands the role over.
    MEDSEAL_ETH_KEY=$DEV1 ms 3 "${ETH[@]}" authority setup
    err_has "the registry's authority role was not handed"
    err_has "MEDSEAL_ETH_KEY set to the secret key of"
    [[ -e $WORK/eth/authority.key ]] || fail "the failed hand-over lost the authority key"
    ms 3 "${ETH[@]}" authority keygen early --attr role:doctor
    [[ ! -e $WORK/eth/members/early.key ]] || fail "keygen issued a key it could not register"
    pass "setup from another account than the deployer keeps the authority and names the key to use"
    # The authority's chain account registers members and pays for it: fund it.
    AUTH_ACCOUNT=$(grep -o "authority's chain account 0x[0-9a-fA-F]*" <<<"$ERR" | head -n1 | awk '{print $4}')
    curl -sf -H 'Content-Type: application/json' -X POST "$MEDSEAL_SMOKE_ETH_RPC" \
        -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"anvil_setBalance\",\"params\":[\"$AUTH_ACCOUNT\",\"0x3635c9adc5dea00000\"]}" >/dev/null ||
        fail "could not fund the authority's account '$AUTH_ACCOUNT'"
    MEDSEAL_ETH_KEY=$DEV0 ms 0 "${ETH[@]}" --json authority keygen poor --attr role:doctor
    check_json
    POOR=$(grep -o '"address":"0x[0-9a-fA-F]*"' <<<"$OUT" | cut -d'"' -f4)
    out_has '"balance_wei":"0"'
    err_has "warning: poor ($POOR) holds no ETH"
    pass "keygen warns that the new key $POOR holds no ETH"
    ms 0 "${ETH[@]}" authority keygen rich --attr role:doctor --eth-key "$DEV1"
    err_lacks "warning"
    out_has "balance: "
    pass "keygen of a funded key does not warn"
    ms 1 "${ETH[@]}" put --as poor --name "unpaid" --policy role:doctor --attach "$WORK/note.bin"
    err_has "account $POOR cannot pay for this transaction: it holds 0 ETH (0 wei)"
    err_has "hint: send ETH to $POOR"
    err_lacks "running"
    ms 1 "${ETH[@]}" --json put --as poor --name "unpaid" --policy role:doctor --attach "$WORK/note.bin"
    check_json
    out_has '"kind":"insufficient_funds"'
    pass "a put from the unfunded key names the address and the amounts, not a node problem"
    ms 0 "${ETH[@]}" put --as rich --name "paid" --policy role:doctor --attach "$WORK/note.bin"
    pass "the funded member stores"
    ms 0 "${ETH[@]}" --json put --as rich --name "for doctors" --policy role:doctor --attach "$WORK/note.bin"
    R1=$(record_id)
    ms 0 "${ETH[@]}" authority revoke poor --reason "key issued by mistake"
    out_has "renewed rich"
    ms 0 "${ETH[@]}" members
    out_has "reason: key issued by mistake"
    ms 0 "${ETH[@]}" rewrap --as rich
    out_has "re-wrapped the key capsules of records"
    out_has "$R1 (attachments unchanged)"
    ms 0 "${ETH[@]}" get --as rich "$R1"
    pass "on the node: revoke, renewal of the remaining doctor, rewrap, and the renewed key reads"
fi

step "a put that failed after its intent, repeated; idempotency keys; Ctrl-C during a put; gc"
# dr-olu's records, counted from `records --json` (its recovery note goes to stderr).
owned_count() {
    "$BIN" --json records --as dr-olu >"$WORK/owned" 2>"$WORK/owned.err" || fail "records --as dr-olu failed"
    grep -o '"owned":\[[^]]*\]' "$WORK/owned" | grep -o '"record":' | wc -l
}
block_files() { find "$MEDSEAL_DIR/blocks/blocks" -name '*.data' | sort; }
# The index shard among the block files new since $1 (a `block_files` listing): the one
# holding an index encoding (magic "MSIX"). Not the newest by time: blocks written in
# the same clock tick are not ordered.
new_shard_block() {
    local shard
    shard=$(comm -13 "$1" <(block_files) | xargs -r grep -l --binary-files=text MSIX)
    [[ -n $shard && $(wc -l <<<"$shard") == 1 ]] || fail "expected one new index shard block, found: $shard"
    printf '%s\n' "$shard"
}
block_count() { find "$MEDSEAL_DIR/blocks/blocks" -name '*.data' | wc -l; }
# The second put under a policy merges the first one's index shard. With that shard's
# block taken away (as if the store lost it), the second put fails after its intent was
# saved and its record created on chain.
fail_second_put() {
    local policy=$1
    printf 'EEG %s\n' "$policy" >"$WORK/eeg-a.txt"
    printf 'EEG follow-up %s\n' "$policy" >"$WORK/eeg-b.txt"
    block_files >"$WORK/blocks-before"
    ms 0 put --as dr-olu --name "EEG" --policy "$policy" --keyword icd10:G40 --attach "$WORK/eeg-a.txt"
    SHARD=$(new_shard_block "$WORK/blocks-before")
    mv "$SHARD" "$WORK/shard.data"
    BEFORE=$(owned_count)
    ms 1 put --as dr-olu --name "EEG follow-up" --policy "$policy" --keyword icd10:G40 \
        --attach "$WORK/eeg-b.txt"
    err_has "not found"
    mv "$WORK/shard.data" "$SHARD"
    pass "a put under \"$policy\" failed after its intent (a block it needed was missing)"
}
fail_second_put "role:doctor and dept:neurology"
ms 0 put --as dr-olu --name "EEG follow-up" --policy "role:doctor and dept:neurology" \
    --keyword icd10:G40 --attach "$WORK/eeg-b.txt"
out_has "completed the interrupted put of record"
[[ $(owned_count) == $((BEFORE + 1)) ]] || fail "dr-olu owns $(owned_count) records, expected $((BEFORE + 1))"
pass "repeating the failed put completed it: one record, not two"
fail_second_put "dept:neurology"
ms 0 --json recover --as dr-olu
check_json
[[ $(grep -o '"completed":\[[0-9]*\]' <<<"$OUT") != '"completed":[]' ]] || fail "recover completed nothing: $OUT"
ms 0 --json recover --as dr-olu
out_has '"completed":[]'
ms 0 --json put --as dr-olu --name "EEG follow-up" --policy "dept:neurology" \
    --keyword icd10:G40 --attach "$WORK/eeg-b.txt"
check_json
out_has '"outcome":"completed_interrupted"'
out_has '"completed_interrupted":true'
[[ $(owned_count) == $((BEFORE + 1)) ]] || fail "dr-olu owns $(owned_count) records, expected $((BEFORE + 1))"
ms 0 --json search --as dr-olu icd10:G40
[[ $(wc -w <<<"$(record_ids)") == 4 ]] || fail "icd10:G40 finds [$(record_ids)], expected 4 records"
pass "recover completed it, the repeated put claimed it (JSON), every record is searchable"

BEFORE=$(owned_count)
ms 0 --json put --as dr-olu --name "Referral" --policy role:doctor --key ref-77
out_has '"outcome":"created"'
ms 0 put --as dr-olu --name "Referral" --policy role:doctor --idempotency-key ref-77
out_has 'already stored under key "ref-77"'
ms 1 --json put --as dr-olu --name "Another referral" --policy role:doctor --key ref-77
out_has '"kind":"idempotency_key_reused"'
[[ $(owned_count) == $((BEFORE + 1)) ]] || fail "a keyed put repeated stored $(($(owned_count) - BEFORE)) records"
pass "a keyed put repeated returns its record; the key cannot name another record"

# Ctrl-C while a 200 MB attachment is being encrypted.
head -c $((200 * 1024 * 1024)) /dev/urandom >"$WORK/mri.bin"
BEFORE=$(owned_count)
"$BIN" put --as dr-olu --name "MRI" --policy role:doctor --keyword icd10:G35 \
    --attach "$WORK/mri.bin" >"$WORK/stdout" 2>"$WORK/stderr" &
PID=$!
for _ in $(seq 1 400); do
    [[ -n $(ls -A "$MEDSEAL_DIR/blocks/tmp") ]] && break
    sleep 0.02
done
kill -INT "$PID"
CODE=0
wait "$PID" || CODE=$?
ERR=$(cat "$WORK/stderr")
[[ $CODE == 130 ]] || fail "put after Ctrl-C: exit $CODE, expected 130 ($ERR)"
err_has "interrupted"
empty_dir "$MEDSEAL_DIR/blocks/tmp" || fail "temp files left after Ctrl-C: $(ls "$MEDSEAL_DIR/blocks/tmp" | head -3)"
if grep -qF "was not created" <<<"$ERR"; then
    [[ $(owned_count) == "$BEFORE" ]] || fail "Ctrl-C said not created, yet dr-olu owns a new record"
else
    err_has "intent was saved"
fi
printf '      %s\n' "$ERR"
pass "Ctrl-C during the put: exit 130, it says what happened and what was kept, no temp file left"
BLOCKS=$(block_count)
ms 5 gc --dry-run
err_has "tampering detected"
ms 5 gc
[[ $(block_count) == "$BLOCKS" ]] || fail "gc deleted blocks while a pinned block was damaged"
pass "gc refuses, deleting nothing, while a pinned block is damaged (the one flipped above)"
# shellcheck disable=SC2059
printf "\\$(printf '%03o' "$BYTE")" | dd of="$BLOCK" bs=1 seek="$OFF" conv=notrunc status=none
ms 0 --json gc --dry-run
check_json
out_has '"dry_run":true'
WOULD=$(grep -o '"removed_blocks":[0-9]*' <<<"$OUT" | cut -d: -f2)
BLOCKS=$(block_count)
[[ $WOULD -ge 1 ]] || fail "gc --dry-run finds nothing to remove (the merged index shards are unpinned)"
ms 0 gc --dry-run
out_has "would remove $WOULD unpinned block(s)"
[[ $(block_count) == "$BLOCKS" ]] || fail "gc --dry-run deleted blocks"
ms 0 gc
out_has "removed $WOULD unpinned block(s)"
[[ $(block_count) == $((BLOCKS - WOULD)) ]] || fail "gc left $(block_count) blocks, expected $((BLOCKS - WOULD))"
ms 0 --json gc --dry-run
out_has '"removed_blocks":0'
pass "gc --dry-run counted $WOULD unpinned blocks and deleted none; gc removed exactly them"
ms 0 --json put --as dr-olu --name "MRI" --policy role:doctor --keyword icd10:G35 --attach "$WORK/mri.bin"
grep -qE '"outcome":"(created|completed_interrupted)"' <<<"$OUT" || fail "the re-run put: $OUT"
[[ $(owned_count) == $((BEFORE + 1)) ]] || fail "after the re-run dr-olu owns $(owned_count) records, expected $((BEFORE + 1))"
ms 0 get --as dr-olu "$(record_id)" --out "$WORK/mri-out"
cmp -s "$WORK/mri.bin" "$WORK/mri-out/mri.bin" || fail "the re-run put's attachment differs"
rm -f "$WORK/mri.bin" "$WORK/mri-out/mri.bin"
pass "the same put run again stored exactly one record, and it reads back"

step "keys that expire: keygen --valid-until, members, get/search of newer records, renew"
ms 0 authority keygen old-kim --attr role:nurse --attr dept:cardiology --valid-until 2024-01
err_has "already expired"
out_has "EXPIRED after 2024-01"
KIM=$(grep -o '0x[0-9a-fA-F]\{40\}' <<<"$OUT" | head -n1)
ms 0 authority keygen dr-vic --attr role:doctor --valid-until 2099-12
out_has "valid through 2099-12"
err_lacks "warning"
ms 2 authority keygen dr-zed --attr role:doctor --valid-until 2027-13
ms 2 authority keygen dr-zed --attr role:doctor --valid-until 2023-12
ms 1 authority keygen dr-zed --attr valid-year:2030
err_has "reserved"
ms 0 --json members
check_json
out_has '"name":"old-kim","registered_by":"authority","status":"expired","valid_through":"2024-01"'
out_has '"name":"dr-vic","registered_by":"authority","status":"active","valid_through":"2099-12"'
out_lacks 'valid-month:'
ms 0 members
out_has "EXPIRED after 2024-01"
out_has "valid through 2099-12"
pass "members shows each key's validity and marks the expired one"
ms 1 put --as dr-vic --name "bad" --policy "role:nurse and valid-month:2099-01"
err_has "reserved"
ms 0 --json put --as dr-vic --name "Ward note" --policy "role:nurse and dept:cardiology" --keyword term:ward-note
W=$(record_id)
ms 3 get --as old-kim "$W"
err_has "the key has expired or predates expiry: ask the authority to renew it"
err_has "medseal authority renew old-kim"
ms 3 --json get --as old-kim "$W"
out_has '"kind":"key_expired"'
ms 0 --json search --as old-kim term:ward-note
out_lacks "\"record\":$W"
err_has "expired after 2024-01"
ms 0 get --as nurse-sam "$W"
pass "an expired key cannot read (or find) a record created after it expired; a valid one can"
ms 0 authority renew old-kim --valid-until 2099-06
out_has "renewed the key of old-kim"
out_has "valid through 2099-06 (was 2024-01)"
out_has "$KIM (unchanged)"
[[ $(mode_of "$MEDSEAL_DIR/members/old-kim.key") == 600 ]] || fail "renewed old-kim.key is not mode 0600"
ms 0 get --as old-kim "$W"
ms 0 --json search --as old-kim term:ward-note
out_has "\"record\":$W"
err_lacks "expired"
ms 0 members
out_lacks "EXPIRED"
ms 4 authority renew nobody
pass "renew keeps the address and attributes; the renewed key reads and finds the record"

step "patients: records for a patient, consent, break-glass"
ms 0 authority keygen pat --attr role:patient
ms 0 authority keygen dr-er --attr role:doctor --attr access:emergency
ms 1 put --as dr-ada --name "self" --policy "dept:cardiology" --for dr-ada
err_has "another member than its owner"
ms 0 --json put --as dr-ada --name "Echo report for Pat" --policy "dept:cardiology" --for pat --emergency
check_json
P=$(record_id)
out_has '"emergency":"access:emergency"'
ms 0 put --as dr-ada --name "Plain note for Pat" --policy "dept:cardiology" --for pat
out_has "patient:"
ms 0 get --as pat "$P"
out_has "Echo report for Pat"
ms 0 --json records --as pat --about
out_has '"about_me":[{'
out_has "\"record\":$P"
pass "the patient reads the record and finds it in records --about"
ms 0 request --as dr-olu "$P"
out_has "pat"
ms 0 --json requests --as pat
out_has "\"record\":$P"
ms 0 --json requests --as dr-ada
out_lacks "\"record\":$P"
ms 3 answer --as dr-ada "$P" --requester dr-olu --approve
err_has "controlled by its subject"
ms 0 answer --as pat "$P" --requester dr-olu --approve
ms 0 get --as dr-olu "$P"
ms 0 get --as dr-ada "$P"
pass "requests go to the patient; the owner's approval is refused; the patient's lets dr-olu read"
ms 0 revoke --as pat "$P" --from dr-olu
ms 3 get --as dr-olu "$P"
pass "the patient revokes: dr-olu is refused"
ms 3 get --as dr-er "$P"
err_has "break-glass"
ms 1 get --as dr-er "$P" --emergency ""
ms 0 get --as dr-er "$P" --emergency "unconscious patient, ER bay 2"
out_has "EMERGENCY ACCESS"
ms 0 audit "$P"
out_has "!! EMERGENCY ACCESS (break-glass) by dr-er"
out_has "unconscious patient, ER bay 2"
out_has "access granted to dr-olu"
out_has "by pat"
ms 0 --json audit "$P"
out_has '"type":"emergency_access"'
out_has '"type":"subject"'
pass "break-glass needs a reason, is logged and shown in the patient's audit trail"

step "member registry: members from chain, register, revoke, rewrap"
# A key of this authority that the chain never registered: issued in a copy of the data
# directory (its own embedded chain) and brought back.
cp -r "$MEDSEAL_DIR" "$WORK/fork"
ms 0 --dir "$WORK/fork" authority keygen nurse-ivy --attr role:nurse --attr dept:cardiology
cp "$WORK/fork/members/nurse-ivy.key" "$MEDSEAL_DIR/members/"
rm -rf "$WORK/fork"
ms 0 members
out_has "nurse-ivy        NOT REGISTERED"
out_has "authority register nurse-ivy"
ms 0 --json put --as dr-ada --name "Nursing plan" --policy "role:nurse and dept:cardiology"
N1=$(record_id)
ms 3 share --as dr-ada "$N1" --with nurse-ivy
err_has "not an active registered member: it is not registered"
err_has "medseal authority register"
ms 3 --json share --as dr-ada "$N1" --with nurse-ivy
out_has '"kind":"not_a_member"'
pass "members lists an unregistered key; sharing with it is refused with a hint"
ms 0 authority register nurse-ivy
out_has "registered nurse-ivy"
ms 0 authority register nurse-ivy
out_has "registered already"
ms 0 --json members
out_has '"key_here":true,"key_protected":false,"name":"nurse-ivy","registered_by":"authority","status":"active"'
out_lacks "unregistered_keys\":[\""
pass "authority register registers the key once; members shows it active"
ms 0 get --as nurse-sam "$N1"
ms 0 --json authority revoke nurse-sam --reason "left the hospital"
check_json
out_has '"revoked_now":true'
out_has '"role:nurse":1'
out_has '"dept:cardiology":1'
for m in dr-ada nurse-ivy old-kim; do out_has "\"name\":\"$m\""; done
out_lacks '"name":"dr-vic"'
out_lacks '"name":"rui"'
pass "revoke bumps nurse-sam's attributes and renews only the keys that hold one"
ms 0 members
out_has "REVOKED"
out_has "reason: left the hospital"
ms 0 --json put --as dr-ada --name "Nursing plan, week 2" --policy "role:nurse and dept:cardiology"
N2=$(record_id)
ms 3 get --as nurse-sam "$N2"
ms 0 get --as nurse-ivy "$N2"
ms 3 share --as dr-ada "$N1" --with nurse-sam
err_has "it was revoked"
pass "a record stored after the revocation is refused to nurse-sam's key; a renewed nurse reads it"
ms 0 get --as nurse-sam "$N1"
ms 0 rewrap --as dr-ada
out_has "re-wrapped the key capsules"
ms 3 get --as nurse-sam "$N1"
ms 0 get --as nurse-ivy "$N1"
ms 0 get --as pat "$P"
ms 0 rewrap --as dr-ada
out_has "already at the current attribute versions"
pass "rewrap: the revoked key no longer opens the earlier record; a second run changes nothing"
ms 0 authority revoke nurse-sam --reason "left the hospital"
out_has "was revoked already"
out_has "none needed"
ms 4 authority revoke nobody --reason x
pass "a repeated revoke finishes (nothing left to renew); an unknown member is not found"
# The revocation bumped role:nurse and dept:cardiology: a key issued now carries the new
# versions, and records stored under them are found by search (not only read).
ms 0 authority keygen dr-kai --attr role:doctor --attr dept:cardiology
ms 0 --json put --as dr-kai --name "After the revocation" \
    --policy "role:doctor and dept:cardiology" --keyword term:afterrevoke
K1=$(record_id)
ms 0 --json put --as dr-kai --name "Ward round" --policy "dept:cardiology" --keyword term:afterrevoke
K2=$(record_id)
ms 0 --json search --as dr-kai term:afterrevoke
[[ $(record_ids) == "$K1 $K2" ]] || fail "dr-kai found $(record_ids), not $K1 $K2"
ms 0 --json search --as dr-ada term:afterrevoke
[[ $(record_ids) == "$K1 $K2" ]] || fail "renewed dr-ada found $(record_ids), not $K1 $K2"
ms 0 --json search --as nurse-ivy term:afterrevoke
[[ $(record_ids) == "$K2" ]] || fail "renewed nurse-ivy found $(record_ids), not $K2"
ms 0 --json search --as nurse-sam term:afterrevoke
[[ -z $(record_ids) ]] || fail "revoked nurse-sam found $(record_ids)"
ms 3 get --as nurse-sam "$K2"
pass "after a revocation: a new key's records under bumped attributes are found by it and renewed keys, not by the revoked key"

step "member keys sealed under a passphrase: protect, keygen --protect, renew, members"
MPASS="member smoke passphrase"
ms 0 authority keygen dr-sol --attr role:doctor --attr dept:cardiology
ms 0 --json put --as dr-sol --name "Sealed-key note" --policy "role:doctor and dept:cardiology" \
    --keyword term:sealedkey
S=$(record_id)
SOL=$MEDSEAL_DIR/members/dr-sol.key
MEDSEAL_MEMBER_PASSPHRASE="short" ms 1 protect dr-sol
err_has "at least 8 characters"
[[ $(head -c 4 "$SOL") == MSMK ]] || fail "a refused protect changed the key file"
MEDSEAL_MEMBER_PASSPHRASE=$MPASS ms 0 --json protect dr-sol
check_json
[[ $(head -c 4 "$SOL") == MSMS && $(mode_of "$SOL") == 600 ]] ||
    fail "protect did not seal dr-sol's key in place with mode 0600"
MEDSEAL_MEMBER_PASSPHRASE=$MPASS ms 1 protect dr-sol
err_has "already sealed"
pass "protect seals a plain member key in place (MSMS, 0600), refuses a short passphrase and a sealed key"
ms 1 get --as dr-sol "$S" </dev/null
err_has "MEDSEAL_MEMBER_PASSPHRASE"
MEDSEAL_MEMBER_PASSPHRASE="not the passphrase" ms 3 --json get --as dr-sol "$S"
check_json
out_has '"kind":"wrong_passphrase"'
MEDSEAL_MEMBER_PASSPHRASE="not the passphrase" ms 3 search --as dr-sol term:sealedkey
err_has "wrong passphrase"
err_has "ask the authority for a new key"
pass "a sealed member key: no terminal and no variable fails with a hint; a wrong passphrase exits 3"
MEDSEAL_MEMBER_PASSPHRASE=$MPASS ms 0 --json get --as dr-sol "$S"
out_has '"name":"Sealed-key note"'
MEDSEAL_MEMBER_PASSPHRASE=$MPASS ms 0 --json search --as dr-sol term:sealedkey
out_has "\"record\":$S"
out_has '"name":"dr-sol"'
pass "with its passphrase the sealed key gets and searches (and names its member)"
ms 0 --json members </dev/null
out_has '"key_here":true,"key_protected":true,"name":"dr-sol"'
out_has '"protected_keys":["dr-sol"]'
ms 0 members </dev/null
out_has "key protected"
pass "members marks the protected key without asking for a passphrase"
MEDSEAL_MEMBER_PASSPHRASE=$MPASS ms 0 authority keygen dr-tam --attr role:doctor \
    --attr dept:cardiology --protect
out_has "sealed under its passphrase"
TAM=$MEDSEAL_DIR/members/dr-tam.key
[[ $(head -c 4 "$TAM") == MSMS && $(mode_of "$TAM") == 600 ]] || fail "keygen --protect wrote no sealed key"
MEDSEAL_MEMBER_PASSPHRASE=$MPASS ms 0 get --as dr-tam "$S"
MEDSEAL_MEMBER_PASSPHRASE="short" ms 1 authority keygen dr-uma --attr role:doctor --protect
[[ ! -e $MEDSEAL_DIR/members/dr-uma.key ]] || fail "a refused passphrase left a key"
pass "keygen --protect writes the key sealed; a refused passphrase issues nothing"
MEDSEAL_MEMBER_PASSPHRASE=$MPASS ms 0 authority renew dr-tam --valid-until 2040-12
[[ $(head -c 4 "$TAM") == MSMS ]] || fail "renew wrote the sealed key back plain"
MEDSEAL_MEMBER_PASSPHRASE="not the passphrase" ms 3 get --as dr-tam "$S"
MEDSEAL_MEMBER_PASSPHRASE=$MPASS ms 0 --json records --as dr-tam
pass "renew keeps the key sealed under the same passphrase"
ms 0 authority keygen dr-vex --attr role:doctor
ms 0 --json authority revoke dr-vex --reason "smoke test" </dev/null
out_has '"protected_not_renewed":["dr-sol","dr-tam"]'
err_has "not renewed"
MEDSEAL_MEMBER_PASSPHRASE=$MPASS ms 0 --json authority revoke dr-vex --reason "smoke test"
out_has '"name":"dr-sol"'
out_has '"name":"dr-tam"'
out_has '"protected_not_renewed":[]'
[[ $(head -c 4 "$SOL") == MSMS && $(head -c 4 "$TAM") == MSMS ]] || fail "revoke wrote a renewed sealed key back plain"
MEDSEAL_MEMBER_PASSPHRASE=$MPASS ms 0 get --as dr-sol "$S"
pass "revoke leaves sealed keys it cannot open for a re-run, which renews them sealed"
cp "$MEDSEAL_DIR/authority.key" "$MEDSEAL_DIR/members/mixup.key"
MEDSEAL_MEMBER_PASSPHRASE=$PASSPHRASE ms 1 get --as mixup "$S"
err_has "the sealed authority key, not a member's key"
rm -f "$MEDSEAL_DIR/members/mixup.key"
pass "a sealed authority key is never opened as a member key"

printf '\ncli-smoke: %d passed, 0 failed\n' "$CHECKS"
