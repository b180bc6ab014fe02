//! Key custody: the sealed authority key file (passphrase, damage, crafted parameters),
//! k-of-n backup shares (every k-subset restores; too few, mixed, duplicate and damaged
//! shares are refused and named), and sealed member keys (the same file, another magic:
//! neither kind opens as the other).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use medseal::abe::Encoding as _;
use medseal::{
    Authority, AuthorityShare, Error, InvalidInput, KdfParams, Member, PrivateKeySigner,
    ShareError, Validity, is_sealed, is_sealed_member,
};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_core::OsRng;
use sha2::{Digest, Sha256};

const PASS: &[u8] = b"correct horse battery staple";

/// Small parameters: the tests exercise the format, not the cost.
fn small() -> KdfParams {
    KdfParams::new(64, 1, 1).unwrap()
}

/// One authority for the whole file (setup costs a few milliseconds each time).
fn authority() -> &'static Authority {
    static AUTHORITY: OnceLock<Authority> = OnceLock::new();
    AUTHORITY.get_or_init(|| Authority::setup(&mut ChaCha20Rng::seed_from_u64(13)))
}

fn same(a: &Authority, b: &Authority) -> bool {
    a.to_bytes() == b.to_bytes()
}

/// One member of that authority.
fn member() -> &'static Member {
    static MEMBER: OnceLock<Member> = OnceLock::new();
    MEMBER.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(14);
        let signer = PrivateKeySigner::random();
        authority()
            .issue(
                "alice",
                ["role:doctor", "dept:cardiology"],
                Validity::through(2040, 12).unwrap(),
                signer,
                &mut rng,
            )
            .unwrap()
    })
}

#[test]
fn a_sealed_member_key_round_trips_and_is_not_the_plain_encoding() {
    let m = member();
    let sealed = m.seal(PASS, &small(), &mut OsRng).unwrap();
    assert!(is_sealed_member(&sealed));
    assert!(!is_sealed(&sealed));
    assert!(!is_sealed_member(&m.to_bytes()));
    assert_eq!(&sealed[..5], b"MSMS\x01");
    let back = Member::open_sealed(&sealed, PASS).unwrap();
    assert_eq!(back.to_bytes(), m.to_bytes());
    assert_eq!(back.name(), "alice");
    // The chain account's secret key does not appear in the file.
    let plain = m.to_bytes();
    let secret_at = 5 + 4 + "alice".len() + 4;
    let secret = &plain[secret_at..secret_at + 32];
    assert!(plain.windows(32).any(|w| w == secret));
    assert!(!sealed.windows(32).any(|w| w == secret));
    assert_ne!(sealed, m.seal(PASS, &small(), &mut OsRng).unwrap());
    assert!(matches!(
        m.seal(b"", &small(), &mut OsRng),
        Err(Error::InvalidInput(InvalidInput::Passphrase))
    ));
}

#[test]
fn a_wrong_passphrase_opens_no_member_key() {
    let sealed = member().seal(PASS, &small(), &mut OsRng).unwrap();
    for wrong in [&b"correct horse battery stapler"[..], b"", b"x"] {
        let err = Member::open_sealed(&sealed, wrong).unwrap_err();
        assert!(matches!(err, Error::WrongPassphrase), "{err:?}");
        assert!(
            err.to_string().contains("new key from the authority"),
            "{err}"
        );
    }
}

#[test]
fn sealed_authority_and_member_keys_never_open_as_each_other() {
    let member_file = member().seal(PASS, &small(), &mut OsRng).unwrap();
    let authority_file = authority().seal(PASS, &small(), &mut OsRng).unwrap();
    // Refused by kind, with the right passphrase, before any key derivation (the caps
    // are not even read: default-cost files are refused as fast).
    let err = Authority::open_sealed(&member_file, PASS).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("a sealed member key, not the authority's"),
        "{err}"
    );
    let err = Member::open_sealed(&authority_file, PASS).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("the sealed authority key, not a member's"),
        "{err}"
    );
    assert!(medseal::custody::sealed_params(&member_file).is_err());
    // Plain encodings are not sealed files of either kind.
    assert!(matches!(
        Member::open_sealed(&member().to_bytes(), PASS),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        Authority::open_sealed(&member().to_bytes(), PASS),
        Err(Error::Corrupt { .. })
    ));
    // Relabelling a member file as an authority's (checksum recomputed) does not make it
    // one: the magic is authenticated, so the AEAD refuses.
    let relabelled = forge(&member_file, |b| b[..4].copy_from_slice(b"MSAS"));
    assert!(matches!(
        Authority::open_sealed(&relabelled, PASS),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn a_flipped_byte_of_a_sealed_member_key_is_corruption() {
    let sealed = member().seal(PASS, &small(), &mut OsRng).unwrap();
    let positions = (0..80)
        .chain((80..sealed.len()).step_by(61))
        .chain(sealed.len() - 16..sealed.len());
    for i in positions {
        let mut damaged = sealed.clone();
        damaged[i] ^= 0x01;
        let err = Member::open_sealed(&damaged, PASS).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "byte {i}: {err:?}");
    }
    let mut damaged = sealed.clone();
    damaged[90] ^= 0x20;
    let err = Member::open_sealed(&damaged, PASS).unwrap_err();
    assert!(
        err.to_string().contains("ask the authority for a new key"),
        "{err}"
    );
    // Forged with a valid checksum: the AEAD refuses an altered ciphertext.
    let forged = forge(&sealed, |b| {
        let last = b.len() - 1;
        b[last] ^= 1;
    });
    let err = Member::open_sealed(&forged, PASS).unwrap_err();
    assert!(err.to_string().contains("does not authenticate"), "{err}");
}

#[test]
fn a_sealed_key_round_trips_and_is_not_the_plain_encoding() {
    let a = authority();
    let sealed = a.seal(PASS, &small(), &mut OsRng).unwrap();
    assert!(is_sealed(&sealed));
    assert!(!is_sealed(&a.to_bytes()));
    assert_eq!(&sealed[..5], b"MSAS\x01");
    let back = Authority::open_sealed(&sealed, PASS).unwrap();
    assert!(same(a, &back));
    assert_eq!(medseal::custody::sealed_params(&sealed).unwrap(), small());
    // The master key does not appear in the file.
    let plain = a.to_bytes();
    let tail = &plain[plain.len() - 32..];
    assert!(!sealed.windows(32).any(|w| w == tail));
    // Two seals of one key differ (fresh salt and nonce).
    assert_ne!(sealed, a.seal(PASS, &small(), &mut OsRng).unwrap());
}

#[test]
fn a_wrong_passphrase_is_its_own_error() {
    let sealed = authority().seal(PASS, &small(), &mut OsRng).unwrap();
    for wrong in [
        &b"correct horse battery stapler"[..],
        b"",
        b"Correct horse battery staple",
    ] {
        let err = Authority::open_sealed(&sealed, wrong).unwrap_err();
        assert!(matches!(err, Error::WrongPassphrase), "{err:?}");
        assert!(err.to_string().contains("wrong passphrase"), "{err}");
        assert!(err.to_string().contains("backup shares"), "{err}");
    }
    assert!(matches!(
        authority().seal(b"", &small(), &mut OsRng),
        Err(Error::InvalidInput(InvalidInput::Passphrase))
    ));
}

#[test]
fn damage_anywhere_is_corruption_not_a_wrong_passphrase() {
    let sealed = authority().seal(PASS, &small(), &mut OsRng).unwrap();
    // Every byte of the header, some of the ciphertext, the checksum.
    let positions = (0..80)
        .chain((80..sealed.len()).step_by(97))
        .chain(sealed.len() - 16..sealed.len());
    for i in positions {
        let mut damaged = sealed.clone();
        damaged[i] ^= 0x01;
        let err = Authority::open_sealed(&damaged, PASS).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "byte {i}: {err:?}");
    }
    for cut in [0, 4, 5, 20, 60, sealed.len() - 17, sealed.len() - 1] {
        assert!(
            matches!(
                Authority::open_sealed(&sealed[..cut], PASS),
                Err(Error::Corrupt { .. })
            ),
            "prefix {cut}"
        );
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(matches!(
        Authority::open_sealed(&longer, PASS),
        Err(Error::Corrupt { .. })
    ));
    let err = {
        let mut d = sealed.clone();
        d[100] ^= 0x40;
        Authority::open_sealed(&d, PASS).unwrap_err()
    };
    assert!(err.to_string().contains("damaged"), "{err}");
}

/// Re-encodes `sealed` with some bytes changed and a recomputed checksum (what an
/// attacker who understands the format can write).
fn forge(sealed: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut body = sealed[..sealed.len() - 16].to_vec();
    edit(&mut body);
    let sum = Sha256::digest(&body);
    body.extend_from_slice(&sum[..16]);
    body
}

#[test]
fn a_forged_file_with_a_valid_checksum_does_not_authenticate() {
    let sealed = authority().seal(PASS, &small(), &mut OsRng).unwrap();
    // Ciphertext altered: the passphrase check passes, the AEAD refuses.
    let ciphertext = forge(&sealed, |b| {
        let last = b.len() - 1;
        b[last] ^= 1;
    });
    let err = Authority::open_sealed(&ciphertext, PASS).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("does not authenticate"), "{err}");
    // The nonce (in the header, authenticated as associated data) altered.
    let nonce = forge(&sealed, |b| b[5 + 12 + 16] ^= 1);
    assert!(matches!(
        Authority::open_sealed(&nonce, PASS),
        Err(Error::Corrupt { .. })
    ));
    // The salt altered: another key is derived, so the passphrase check fails.
    let salt = forge(&sealed, |b| b[5 + 12] ^= 1);
    assert!(matches!(
        Authority::open_sealed(&salt, PASS),
        Err(Error::WrongPassphrase)
    ));
    // The checksum is what tells damage from a forgery: unforged, the same edit is damage.
    let mut damaged = sealed.clone();
    damaged[5 + 12] ^= 1;
    assert!(matches!(
        Authority::open_sealed(&damaged, PASS),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn kdf_parameters_above_the_caps_are_refused_before_any_allocation() {
    let sealed = authority().seal(PASS, &small(), &mut OsRng).unwrap();
    let set = |m: u32, t: u32, p: u32| {
        forge(&sealed, |b| {
            b[5..9].copy_from_slice(&m.to_be_bytes());
            b[9..13].copy_from_slice(&t.to_be_bytes());
            b[13..17].copy_from_slice(&p.to_be_bytes());
        })
    };
    let cap = KdfParams::MAX_MEMORY_KIB;
    for (m, t, p) in [
        (u32::MAX, 1, 1),
        (cap + 1, 1, 1),
        (64, KdfParams::MAX_ITERATIONS + 1, 1),
        (64, u32::MAX, 1),
        (1024, 1, KdfParams::MAX_PARALLELISM + 1),
        (64, 0, 1),
        (64, 1, 0),
        (7, 1, 1),
        (64, 1, 16),
    ] {
        let start = Instant::now();
        let err = Authority::open_sealed(&set(m, t, p), PASS).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidInput(InvalidInput::KdfParams { memory_kib, iterations, parallelism })
                    if (memory_kib, iterations, parallelism) == (m, t, p)
            ),
            "m={m} t={t} p={p}: {err:?}"
        );
        // Refused, not computed: 1 GiB of Argon2 would take seconds.
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "m={m} t={t} p={p}"
        );
        assert!(KdfParams::new(m, t, p).is_err());
    }
    assert!(KdfParams::new(cap, KdfParams::MAX_ITERATIONS, KdfParams::MAX_PARALLELISM).is_ok());
    // Within the caps, a forged parameter derives another key: a wrong passphrase.
    assert!(matches!(
        Authority::open_sealed(&set(128, 1, 1), PASS),
        Err(Error::WrongPassphrase)
    ));
}

#[test]
fn the_default_parameters_are_rfc_9106s_second_option_with_one_lane() {
    let d = KdfParams::default();
    assert_eq!(
        (d.memory_kib(), d.iterations(), d.parallelism()),
        (64 * 1024, 3, 1)
    );
    let sealed = authority().seal(PASS, &d, &mut OsRng).unwrap();
    assert_eq!(&sealed[5..17], &[0, 1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1]);
    assert!(same(
        authority(),
        &Authority::open_sealed(&sealed, PASS).unwrap()
    ));
    assert!(matches!(
        Authority::open_sealed(&sealed, b"nope"),
        Err(Error::WrongPassphrase)
    ));
}

fn share_error(result: Result<Authority, Error>) -> ShareError {
    match result {
        Err(Error::InvalidInput(InvalidInput::Share(e))) => e,
        other => panic!("expected a share error, got {other:?}"),
    }
}

fn parse(line: &str) -> Result<AuthorityShare, Error> {
    line.parse()
}

#[test]
fn every_k_subset_of_a_3_of_5_backup_restores() {
    let a = authority();
    let shares = a.split(3, 5, &mut OsRng).unwrap();
    assert_eq!(shares.len(), 5);
    let lines: Vec<String> = shares.iter().map(|s| s.to_string()).collect();
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.starts_with("medseal-authority-share v1 authority="),
            "{line}"
        );
        assert!(line.contains(&format!(" share={}/5 k=3 ", i + 1)), "{line}");
        assert!(!line.contains('\n'));
        // Lines parse back to the same share (and uppercase hex is the same share).
        assert_eq!(parse(line).unwrap(), shares[i]);
        let (body, check) = line.rsplit_once(" check=").unwrap();
        let (head, payload) = body.rsplit_once(' ').unwrap();
        let upper = format!(
            "  {head} {} check={}\n",
            payload.to_uppercase(),
            check.to_uppercase()
        );
        assert_eq!(parse(&upper).unwrap(), shares[i]);
        assert!(shares[i].belongs_to(a));
    }
    let parsed: Vec<AuthorityShare> = lines.iter().map(|l| parse(l).unwrap()).collect();
    let mut subsets = 0;
    for i in 0..5 {
        for j in i + 1..5 {
            for k in j + 1..5 {
                let subset = [parsed[k].clone(), parsed[i].clone(), parsed[j].clone()];
                assert!(
                    same(a, &Authority::combine(&subset).unwrap()),
                    "{i} {j} {k}"
                );
                subsets += 1;
            }
        }
    }
    assert_eq!(subsets, 10);
    // More than k works too.
    assert!(same(a, &Authority::combine(&parsed).unwrap()));
    // Debug never shows the payload.
    let debug = format!("{:?}", parsed[0]);
    assert!(!debug.contains(&lines[0][100..140]), "{debug}");
}

#[test]
fn fewer_than_k_shares_are_refused_naming_how_many_are_needed() {
    let shares = authority().split(3, 5, &mut OsRng).unwrap();
    for given in 1..3 {
        let e = share_error(Authority::combine(&shares[..given]));
        assert_eq!(
            e,
            ShareError::TooFew {
                given,
                needed: 3,
                count: 5
            }
        );
        assert!(e.to_string().contains("3 needed"), "{e}");
    }
    assert_eq!(share_error(Authority::combine(&[])), ShareError::NoShares);
}

#[test]
fn mixed_sets_and_authorities_and_duplicates_are_refused() {
    let a = authority();
    let first = a.split(2, 3, &mut OsRng).unwrap();
    let second = a.split(2, 3, &mut OsRng).unwrap();
    assert_ne!(first[0].set_id(), second[0].set_id());
    let e = share_error(Authority::combine(&[first[0].clone(), second[1].clone()]));
    assert!(matches!(e, ShareError::MixedSets { .. }), "{e:?}");
    assert!(e.to_string().contains("different backups"), "{e}");

    let other = Authority::setup(&mut OsRng)
        .split(2, 3, &mut OsRng)
        .unwrap();
    assert!(!other[0].belongs_to(a));
    let e = share_error(Authority::combine(&[first[0].clone(), other[1].clone()]));
    assert!(matches!(e, ShareError::MixedAuthorities { .. }), "{e:?}");

    let e = share_error(Authority::combine(&[first[1].clone(), first[1].clone()]));
    assert_eq!(e, ShareError::Duplicate { index: 2 });
    // A duplicate does not count towards k even with enough others.
    let e = share_error(Authority::combine(&[
        first[0].clone(),
        first[0].clone(),
        first[2].clone(),
    ]));
    assert_eq!(e, ShareError::Duplicate { index: 1 });
}

#[test]
fn a_flipped_character_names_the_damaged_share() {
    let shares = authority().split(2, 3, &mut OsRng).unwrap();
    let line = shares[1].to_string();
    let payload_at = line.find(" k=2 ").unwrap() + 5;
    let check_at = line.rfind(" check=").unwrap() + 7;
    // Positions in the payload, the ids, the check value.
    let authority_at = line.find("authority=").unwrap() + 10;
    let set_at = line.find("set=").unwrap() + 4;
    for at in [
        payload_at,
        payload_at + 1,
        payload_at + 300,
        check_at - 2,
        check_at,
        check_at + 7,
        authority_at,
        set_at + 3,
    ] {
        let mut bytes = line.clone().into_bytes();
        let c = bytes[at];
        // Another hex digit (a plausible typo), or a non-hex character.
        for replacement in [if c == b'0' { b'1' } else { b'0' }, b'g'] {
            bytes[at] = replacement;
            let text = String::from_utf8(bytes.clone()).unwrap();
            match parse(&text) {
                Err(Error::InvalidInput(InvalidInput::Share(ShareError::Damaged {
                    index: 2,
                    count: 3,
                }))) if at >= payload_at && at < check_at - 7 => {}
                Err(Error::InvalidInput(InvalidInput::Share(
                    ShareError::Damaged { .. } | ShareError::Malformed(_),
                ))) if at < payload_at || at >= check_at - 7 => {}
                other => panic!("position {at} -> {:?}: {other:?}", replacement as char),
            }
        }
    }
    let err = parse(&line.replacen(" k=2 ", " k=2 0", 1)).unwrap_err();
    assert!(err.to_string().contains("share 2/3 is damaged"), "{err}");
    // An index altered to look like another share is still caught by the check.
    let relabelled = line.replacen(" share=2/3 ", " share=3/3 ", 1);
    assert!(matches!(
        parse(&relabelled),
        Err(Error::InvalidInput(InvalidInput::Share(
            ShareError::Damaged { index: 3, count: 3 }
        )))
    ));
}

#[test]
fn malformed_share_lines_are_refused_without_panics() {
    let line = authority().split(2, 2, &mut OsRng).unwrap()[0].to_string();
    let tokens: Vec<&str> = line.split(' ').collect();
    let mut cases = vec![
        String::new(),
        "medseal-authority-share".into(),
        line.replacen("v1", "v2", 1),
        line.replacen("medseal-authority-share", "medseal-member-share", 1),
        format!("{line} extra"),
        "x".repeat(medseal::custody::MAX_SHARE_LINE + 1),
        line.replacen("share=1/2", "share=01/2", 1),
        line.replacen("share=1/2", "share=1-2", 1),
        line.replacen("k=2", "k=+2", 1),
    ];
    for drop in 0..tokens.len() {
        let mut t = tokens.clone();
        t.remove(drop);
        cases.push(t.join(" "));
    }
    for case in &cases {
        assert!(
            matches!(
                parse(case),
                Err(Error::InvalidInput(InvalidInput::Share(_)))
            ),
            "{case:.80}"
        );
    }
    // Lines whose check matches but that state an impossible set are refused too.
    for (k, i, n) in [(1u8, 1u8, 2u8), (3, 1, 2), (2, 0, 2), (2, 3, 2)] {
        let body = format!(
            "medseal-authority-share v1 authority=0011223344556677 set=8899aabb share={i}/{n} k={k} 00ff"
        );
        let check = hex::encode(&Sha256::digest(body.as_bytes())[..4]);
        let err = parse(&format!("{body} check={check}")).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidInput(InvalidInput::Share(ShareError::Malformed(_)))
            ),
            "k={k} i={i} n={n}: {err:?}"
        );
    }
}

#[test]
fn thresholds_out_of_range_are_refused() {
    let a = authority();
    for (k, n) in [(0, 3), (1, 3), (1, 1), (4, 3), (2, 1), (0, 0)] {
        assert!(
            matches!(
                a.split(k, n, &mut OsRng),
                Err(Error::InvalidInput(InvalidInput::Share(
                    ShareError::Threshold { .. }
                )))
            ),
            "{k}/{n}"
        );
    }
    let all = a.split(255, 255, &mut OsRng).unwrap();
    assert_eq!(all.len(), 255);
    assert_eq!(all[254].index(), 255);
    assert!(same(a, &Authority::combine(&all).unwrap()));
}

/// Shares that pass every check but were altered consistently (check value recomputed)
/// do not yield a key: the result is checked as a key pair of the shares' authority.
#[test]
fn consistently_altered_shares_do_not_combine() {
    let a = authority();
    let shares = a.split(2, 2, &mut OsRng).unwrap();
    let line = shares[0].to_string();
    let (body, _) = line.rsplit_once(" check=").unwrap();
    let (head, payload) = body.rsplit_once(' ').unwrap();
    let mut bytes = hex::decode(payload).unwrap();
    bytes[40] ^= 0x01;
    let forged_body = format!("{head} {}", hex::encode(&bytes));
    let check = hex::encode(&Sha256::digest(forged_body.as_bytes())[..4]);
    let forged = parse(&format!("{forged_body} check={check}")).unwrap();
    let e = share_error(Authority::combine(&[forged, shares[1].clone()]));
    assert_eq!(e, ShareError::DoNotCombine);
    // Sanity: the authority id in the line is SHA-256 of the public key.
    let id = hex::encode(&Sha256::digest(a.public_key().to_bytes())[..8]);
    assert_eq!(shares[0].authority_id(), id);
}
