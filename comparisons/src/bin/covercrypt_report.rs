//! medseal's record-key capsule (FAME encapsulate / decapsulate) next to Cosmian
//! CoverCrypt 16.0.1 (encaps / decaps) under equivalent hospital access policies, in one
//! process, rounds interleaved, medians reported.
//!
//! ```text
//! cargo run --release --manifest-path comparisons/Cargo.toml --bin covercrypt_report -- [--quick | --smoke] [--json]
//! ```
//!
//! CoverCrypt runs twice: every attribute of its grid `Classic` (pre-quantum, Curve25519
//! only) and every attribute `Hybridized` (Curve25519 + ML-KEM-512). The schemes differ
//! in what they offer; see `comparisons/README.md` before reading a ratio.

use cosmian_cover_crypt::api::Covercrypt;
use cosmian_cover_crypt::traits::KemAc;
use cosmian_cover_crypt::{
    AccessPolicy, EncryptionHint, MasterPublicKey, MasterSecretKey, QualifiedAttribute,
    UserSecretKey, XEnc,
};
use cosmian_crypto_core::bytes_ser_de::Serializable;
use medseal_abe::{AttributeSet, Encoding, Fame, Policy, Scheme};
use medseal_comparisons::{Args, Mode, interleaved, load_average, ratio};
use rand_core::OsRng;
use std::cell::Cell;
use std::error::Error;
use std::hint::black_box;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// CoverCrypt's attribute grid: every dimension and attribute must be declared up front.
const GRID: &[(&str, &[&str])] = &[
    ("ROLE", &["doctor", "nurse", "researcher", "admin"]),
    (
        "DEPT",
        &[
            "cardiology",
            "oncology",
            "neurology",
            "pediatrics",
            "emergency",
        ],
    ),
    ("SITE", &["north", "south", "east"]),
];

/// The user: a doctor of two departments at two sites (5 attributes in medseal).
const MEDSEAL_KEY: &[&str] = &[
    "role:doctor",
    "dept:cardiology",
    "dept:oncology",
    "site:north",
    "site:south",
];
const CC_KEY: &str =
    "ROLE::doctor && (DEPT::cardiology || DEPT::oncology) && (SITE::north || SITE::south)";
/// A user who must be refused by both policies.
const MEDSEAL_OTHER: &[&str] = &["role:nurse", "dept:neurology", "site:east"];
const CC_OTHER: &str = "ROLE::nurse && DEPT::neurology && SITE::east";

/// (name, medseal policy, CoverCrypt access policy).
const POLICIES: &[(&str, &str, &str)] = &[
    (
        "narrow",
        "role:doctor and dept:cardiology",
        "ROLE::doctor && DEPT::cardiology",
    ),
    (
        "wide",
        "(role:doctor or role:nurse) and (dept:cardiology or dept:oncology) and site:north",
        "(ROLE::doctor || ROLE::nurse) && (DEPT::cardiology || DEPT::oncology) && SITE::north",
    ),
];

/// One CoverCrypt instance over the grid, every attribute in security mode `hint`.
struct Cc {
    cc: Covercrypt,
    msk: MasterSecretKey,
    mpk: MasterPublicKey,
}

impl Cc {
    fn new(hint: EncryptionHint) -> Result<Cc> {
        let cc = Covercrypt::default();
        let (mut msk, _) = cc.setup()?;
        for (dim, attrs) in GRID {
            msk.access_structure.add_anarchy((*dim).to_string())?;
            for a in *attrs {
                msk.access_structure
                    .add_attribute(QualifiedAttribute::new(dim, a), hint, None)?;
            }
        }
        let mpk = cc.update_msk(&mut msk)?;
        Ok(Cc { cc, msk, mpk })
    }

    fn keygen(&mut self, ap: &AccessPolicy) -> Result<UserSecretKey> {
        Ok(self.cc.generate_user_secret_key(&mut self.msk, ap)?)
    }
}

/// One row of the timing table and of the `--json` rows.
struct Row {
    op: &'static str,
    policy: &'static str,
    medseal_ms: f64,
    classic_ms: f64,
    hybrid_ms: f64,
}

/// Sizes of one scheme, in bytes.
struct Sizes {
    public_key: usize,
    user_key: usize,
    /// Per policy: (encapsulation bytes, encapsulations or LSSS rows).
    encapsulation: Vec<(usize, usize)>,
}

fn check(ok: bool, what: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(format!("correctness check failed: {what}").into())
    }
}

fn cc_bytes<T: Serializable>(x: &T) -> Result<usize>
where
    T::Error: 'static,
{
    Ok(x.serialize()?.len())
}

fn main() -> Result<()> {
    let args = Args::from_env("covercrypt_report");
    let rounds = match args.mode {
        Mode::Full => 31,
        Mode::Quick => 7,
        Mode::Smoke => 3,
    };
    let load_before = load_average();

    // medseal FAME.
    let (pk, msk) = Fame::setup(&mut OsRng);
    let attrs = AttributeSet::parse(MEDSEAL_KEY)?;
    let key = Fame::keygen(&pk, &msk, &attrs, &mut OsRng)?;
    let other = Fame::keygen(&pk, &msk, &AttributeSet::parse(MEDSEAL_OTHER)?, &mut OsRng)?;
    // CoverCrypt, classic and hybridized.
    let mut classic = Cc::new(EncryptionHint::Classic)?;
    let mut hybrid = Cc::new(EncryptionHint::Hybridized)?;
    let cc_key_ap = AccessPolicy::parse(CC_KEY)?;
    let cc_other_ap = AccessPolicy::parse(CC_OTHER)?;
    let classic_key = classic.keygen(&cc_key_ap)?;
    let classic_other = classic.keygen(&cc_other_ap)?;
    let hybrid_key = hybrid.keygen(&cc_key_ap)?;
    let hybrid_other = hybrid.keygen(&cc_other_ap)?;

    let mut rows = Vec::new();
    eprintln!("keygen ...");
    {
        // CoverCrypt's keygen takes its master key `&mut` (it registers the user for
        // tracing); failures are counted and checked after timing.
        let failures = Cell::new(0usize);
        let m = interleaved(
            rounds,
            &mut [
                &mut || {
                    let k = Fame::keygen(&pk, &msk, &attrs, &mut OsRng);
                    failures.set(failures.get() + usize::from(black_box(k).is_err()));
                },
                &mut || {
                    let k = classic.keygen(&cc_key_ap);
                    failures.set(failures.get() + usize::from(black_box(k).is_err()));
                },
                &mut || {
                    let k = hybrid.keygen(&cc_key_ap);
                    failures.set(failures.get() + usize::from(black_box(k).is_err()));
                },
            ],
        );
        check(failures.get() == 0, "keygen in the timed rounds")?;
        rows.push(Row {
            op: "keygen",
            policy: "-",
            medseal_ms: m[0],
            classic_ms: m[1],
            hybrid_ms: m[2],
        });
    }

    let mut medseal_sizes = Sizes {
        public_key: pk.to_bytes().len(),
        user_key: key.to_bytes().len(),
        encapsulation: Vec::new(),
    };
    let mut classic_sizes = Sizes {
        public_key: cc_bytes(&classic.mpk)?,
        user_key: cc_bytes(&classic_key)?,
        encapsulation: Vec::new(),
    };
    let mut hybrid_sizes = Sizes {
        public_key: cc_bytes(&hybrid.mpk)?,
        user_key: cc_bytes(&hybrid_key)?,
        encapsulation: Vec::new(),
    };
    let mut policy_texts = Vec::new();

    for &(name, ours_text, cc_text) in POLICIES {
        let policy: Policy = ours_text.parse()?;
        let ap = AccessPolicy::parse(cc_text)?;
        eprintln!("{name}: encapsulate ...");
        // Correctness first: the right key opens, the other user's does not.
        let (k, ct) = Fame::encapsulate(&pk, &policy, &mut OsRng)?;
        check(
            Fame::decapsulate(&key, &ct).is_ok_and(|d| d == k),
            "medseal key recovered",
        )?;
        check(
            Fame::decapsulate(&other, &ct).is_err(),
            "medseal refuses the other user",
        )?;
        let mut cc_ct = Vec::new();
        for (cc, usk, refused) in [
            (&classic, &classic_key, &classic_other),
            (&hybrid, &hybrid_key, &hybrid_other),
        ] {
            let (s, enc) = cc.cc.encaps(&cc.mpk, &ap)?;
            let opened = cc.cc.decaps(usk, &enc)?;
            check(opened.is_some_and(|d| *d == *s), "CoverCrypt key recovered")?;
            check(
                cc.cc.decaps(refused, &enc)?.is_none(),
                "CoverCrypt refuses the other user",
            )?;
            cc_ct.push(enc);
        }
        let ct_bytes = ct.to_bytes().len();
        medseal_sizes
            .encapsulation
            .push((ct_bytes, policy.leaf_count()));
        policy_texts.push(ours_text.len());
        let size = |e: &XEnc| cc_bytes(e).map(|b| (b, e.count()));
        classic_sizes.encapsulation.push(size(&cc_ct[0])?);
        hybrid_sizes.encapsulation.push(size(&cc_ct[1])?);

        let errors = Cell::new(0usize);
        let m = interleaved(
            rounds,
            &mut [
                &mut || {
                    black_box(Fame::encapsulate(&pk, &policy, &mut OsRng).ok());
                },
                &mut || {
                    errors.set(
                        errors.get()
                            + usize::from(black_box(classic.cc.encaps(&classic.mpk, &ap)).is_err()),
                    );
                },
                &mut || {
                    errors.set(
                        errors.get()
                            + usize::from(black_box(hybrid.cc.encaps(&hybrid.mpk, &ap)).is_err()),
                    );
                },
            ],
        );
        rows.push(Row {
            op: "encaps",
            policy: name,
            medseal_ms: m[0],
            classic_ms: m[1],
            hybrid_ms: m[2],
        });
        eprintln!("{name}: decapsulate ...");
        let (wrong, mut errors_ours) = (Cell::new(0usize), 0usize);
        let m = interleaved(
            rounds,
            &mut [
                &mut || {
                    errors_ours += usize::from(black_box(Fame::decapsulate(&key, &ct)).is_err());
                },
                &mut || {
                    wrong.set(
                        wrong.get()
                            + usize::from(!matches!(
                                black_box(classic.cc.decaps(&classic_key, &cc_ct[0])),
                                Ok(Some(_))
                            )),
                    );
                },
                &mut || {
                    wrong.set(
                        wrong.get()
                            + usize::from(!matches!(
                                black_box(hybrid.cc.decaps(&hybrid_key, &cc_ct[1])),
                                Ok(Some(_))
                            )),
                    );
                },
            ],
        );
        check(
            errors.get() == 0 && wrong.get() == 0,
            "CoverCrypt encaps/decaps in the timed rounds",
        )?;
        check(errors_ours == 0, "medseal decapsulate in the timed rounds")?;
        rows.push(Row {
            op: "decaps",
            policy: name,
            medseal_ms: m[0],
            classic_ms: m[1],
            hybrid_ms: m[2],
        });
    }
    let load_after = load_average();

    println!(
        "medseal FAME (BLS12-381) vs Cosmian CoverCrypt 16.0.1 ({} mode): medians of {rounds} interleaved rounds, one thread",
        args.mode.name()
    );
    println!("CoverCrypt grid: {}", grid_text());
    println!(
        "user key: medseal {{{}}}; CoverCrypt `{CC_KEY}`",
        MEDSEAL_KEY.join(", ")
    );
    for &(name, ours, cc) in POLICIES {
        println!("policy {name}: medseal `{ours}`; CoverCrypt `{cc}`");
    }
    println!();
    println!(
        "{:<7} {:<7} {:>11} {:>14} {:>10} {:>13} {:>10}",
        "op", "policy", "medseal ms", "CC classic ms", "clas/ours", "CC hybrid ms", "hyb/ours"
    );
    for r in &rows {
        println!(
            "{:<7} {:<7} {:>11.3} {:>14.3} {:>9.3}x {:>13.3} {:>9.3}x",
            r.op,
            r.policy,
            r.medseal_ms,
            r.classic_ms,
            ratio(r.medseal_ms, r.classic_ms),
            r.hybrid_ms,
            ratio(r.medseal_ms, r.hybrid_ms),
        );
    }
    println!(
        "(clas/ours, hyb/ours: CoverCrypt's time over medseal's, as in the other reports; below 1 CoverCrypt is faster)"
    );
    println!();
    println!(
        "{:<34} {:>14} {:>14} {:>14}",
        "bytes", "medseal FAME", "CC classic", "CC hybrid"
    );
    println!(
        "{:<34} {:>14} {:>14} {:>14}",
        "public key", medseal_sizes.public_key, classic_sizes.public_key, hybrid_sizes.public_key
    );
    println!(
        "{:<34} {:>14} {:>14} {:>14}",
        "user key", medseal_sizes.user_key, classic_sizes.user_key, hybrid_sizes.user_key
    );
    for (i, &(name, ..)) in POLICIES.iter().enumerate() {
        let (ob, orows) = medseal_sizes.encapsulation[i];
        let (cb, cn) = classic_sizes.encapsulation[i];
        let (hb, hn) = hybrid_sizes.encapsulation[i];
        println!(
            "{:<34} {:>14} {:>14} {:>14}",
            format!("encapsulation, {name}"),
            format!("{ob} ({orows} rows)"),
            format!("{cb} ({cn} coord)"),
            format!("{hb} ({hn} coord)"),
        );
    }
    println!(
        "(medseal ciphertexts include the policy text: {} bytes narrow, {} wide; CoverCrypt's carry no policy)",
        policy_texts[0], policy_texts[1]
    );
    println!(
        "CoverCrypt user key: {} coordinates; load average {} before, {} after",
        classic
            .msk
            .access_structure
            .ap_to_usk_rights(&cc_key_ap)?
            .len(),
        fmt_load(load_before),
        fmt_load(load_after)
    );

    if args.json {
        let sizes = |s: &Sizes| {
            serde_json::json!({
                "public_key": s.public_key,
                "user_key": s.user_key,
                "encapsulation": POLICIES.iter().zip(&s.encapsulation)
                    .map(|((name, ..), (b, n))| serde_json::json!({"policy": name, "bytes": b, "parts": n}))
                    .collect::<Vec<_>>(),
            })
        };
        let obj = serde_json::json!({
            "covercrypt_version": "16.0.1",
            "mode": args.mode.name(),
            "rounds": rounds,
            "load_average": [load_before, load_after],
            "rows": rows.iter().map(|r| serde_json::json!({
                "op": r.op,
                "policy": r.policy,
                "medseal_ms": r.medseal_ms,
                "covercrypt_classic_ms": r.classic_ms,
                "covercrypt_hybrid_ms": r.hybrid_ms,
                "classic_over_medseal": ratio(r.medseal_ms, r.classic_ms),
                "hybrid_over_medseal": ratio(r.medseal_ms, r.hybrid_ms),
            })).collect::<Vec<_>>(),
            "bytes": {
                "medseal": sizes(&medseal_sizes),
                "covercrypt_classic": sizes(&classic_sizes),
                "covercrypt_hybrid": sizes(&hybrid_sizes),
            },
        });
        println!("{obj}");
    }
    Ok(())
}

fn grid_text() -> String {
    GRID.iter()
        .map(|(d, a)| format!("{d} {{{}}}", a.join(", ")))
        .collect::<Vec<_>>()
        .join(" × ")
}

fn fmt_load(l: Option<f64>) -> String {
    l.map_or_else(|| "n/a".into(), |l| format!("{l:.2}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a medseal key for `attrs` and a CoverCrypt key for `cc_key` open a capsule
    /// under policy `i` of [`POLICIES`], in both CoverCrypt modes.
    fn opens(attrs: &[&str], cc_key: &str, i: usize) -> [bool; 3] {
        let (_, ours, theirs) = POLICIES[i];
        let (pk, msk) = Fame::setup(&mut OsRng);
        let key =
            Fame::keygen(&pk, &msk, &AttributeSet::parse(attrs).unwrap(), &mut OsRng).unwrap();
        let (k, ct) = Fame::encapsulate(&pk, &ours.parse().unwrap(), &mut OsRng).unwrap();
        let medseal = Fame::decapsulate(&key, &ct).is_ok_and(|d| d == k);
        let cc = |hint| {
            let mut cc = Cc::new(hint).unwrap();
            let usk = cc.keygen(&AccessPolicy::parse(cc_key).unwrap()).unwrap();
            let (s, enc) = cc
                .cc
                .encaps(&cc.mpk, &AccessPolicy::parse(theirs).unwrap())
                .unwrap();
            cc.cc.decaps(&usk, &enc).unwrap().is_some_and(|d| *d == *s)
        };
        [
            medseal,
            cc(EncryptionHint::Classic),
            cc(EncryptionHint::Hybridized),
        ]
    }

    /// The policies and keys are equivalent across the libraries: the same users open the
    /// same capsules, including a user who satisfies the narrow policy but not the wide one.
    #[test]
    fn same_users_open_the_same_capsules() {
        let elsewhere: &[&str] = &["role:doctor", "dept:cardiology", "site:east"];
        let cc_elsewhere = "ROLE::doctor && DEPT::cardiology && SITE::east";
        for i in 0..POLICIES.len() {
            assert_eq!(opens(MEDSEAL_KEY, CC_KEY, i), [true; 3], "policy {i}");
            assert_eq!(opens(MEDSEAL_OTHER, CC_OTHER, i), [false; 3], "policy {i}");
        }
        assert_eq!(opens(elsewhere, cc_elsewhere, 0), [true; 3]);
        assert_eq!(opens(elsewhere, cc_elsewhere, 1), [false; 3]);
    }
}
