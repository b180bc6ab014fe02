//! The ICD-10-CM code list as a keyword dictionary (benchmarks, examples, and the
//! keyword-guessing demonstration).
//!
//! The list (public domain, US CDC/NCHS) is vendored as `data/icd10cm.tsv.gz`;
//! `icd10cm` (feature `icd10`) decompresses the embedded copy. [`parse_tsv`] is always
//! available for a copy obtained otherwise.

/// One code of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icd10Code {
    /// The code without its dot, e.g. `I10`, `E119`.
    pub code: String,
    /// Whether the code is billable (a leaf of the classification).
    pub billable: bool,
    /// The description.
    pub description: String,
}

/// Parses the TSV text (`code\tbillable\tdescription`, header line optional); lines that
/// do not have three fields are skipped.
pub fn parse_tsv(text: &str) -> Vec<Icd10Code> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '\t');
            let code = fields.next()?.trim();
            let billable = match fields.next()?.trim() {
                "1" => true,
                "0" => false,
                _ => return None, // the header line, or malformed
            };
            let description = fields.next()?.trim();
            (!code.is_empty()).then(|| Icd10Code {
                code: code.to_owned(),
                billable,
                description: description.to_owned(),
            })
        })
        .collect()
}

/// The embedded ICD-10-CM code list (95,622 codes), decompressed and parsed.
///
/// # Errors
/// [`crate::Error::Decode`] if the embedded data does not decompress (a build problem).
#[cfg(feature = "icd10")]
pub fn icd10cm() -> crate::Result<Vec<Icd10Code>> {
    use std::io::Read;
    const GZ: &[u8] = include_bytes!("../data/icd10cm.tsv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(GZ)
        .read_to_string(&mut text)
        .map_err(|_| crate::DecodeError::Truncated)?;
    Ok(parse_tsv(&text))
}

/// The index benchmarks' workload: index entries `(keyword, record)` with keywords drawn
/// from the ICD-10-CM list by a Zipf law (s = 1) over a random popularity order of the
/// codes, [`Workload::KEYWORDS_PER_RECORD`] distinct keywords per record. One definition
/// for every report that compares on it (the index report, the comparisons with other
/// libraries), so they index the same entries.
#[cfg(feature = "icd10")]
#[derive(Debug, Clone)]
pub struct Workload {
    /// The codes as keywords, most popular first.
    pub keywords: Vec<crate::Keyword>,
    /// The popularity law over `keywords`' indices.
    pub zipf: Zipf,
}

#[cfg(feature = "icd10")]
impl Workload {
    /// Index entries per record.
    pub const KEYWORDS_PER_RECORD: u64 = 5;

    /// The ICD-10-CM list in the popularity order of a Fisher–Yates shuffle driven by
    /// `shuffle` (the reports use a ChaCha20 stream of seed 7).
    ///
    /// # Errors
    /// As [`icd10cm`]; a code that is not a valid keyword (none in the embedded list).
    pub fn icd10<R: rand_core::RngCore + ?Sized>(shuffle: &mut R) -> crate::Result<Self> {
        let mut keywords = icd10cm()?
            .iter()
            .map(|c| crate::Keyword::icd10(&c.code))
            .collect::<Result<Vec<_>, _>>()?;
        for i in (1..keywords.len()).rev() {
            let j = (shuffle.next_u64() % (i as u64 + 1)) as usize;
            keywords.swap(i, j);
        }
        Ok(Self {
            zipf: Zipf::new(keywords.len(), 1.0),
            keywords,
        })
    }

    /// The record of entry `i`'s record number `i / 5`: `r + 1` big-endian in the first 8
    /// bytes, a fixed tag in the next 8 (never all zero).
    pub fn record(r: u64) -> crate::RecordRef {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&(r + 1).to_be_bytes());
        b[8..16].copy_from_slice(&0x6d65_6473_6561_6c21u64.to_be_bytes());
        // Nonzero: bytes 8..16 are the tag.
        crate::RecordRef(b)
    }

    /// Entries `range` of the workload: entry `i` belongs to record `i / 5`, and a
    /// record's keywords are distinct Zipf draws from `rng`. `range` should start at a
    /// multiple of 5 (a record's earlier keywords outside `range` are not seen).
    pub fn pairs<R: rand_core::RngCore + ?Sized>(
        &self,
        rng: &mut R,
        range: core::ops::Range<u64>,
    ) -> Vec<(&crate::Keyword, crate::RecordRef)> {
        let mut out: Vec<(&crate::Keyword, crate::RecordRef)> =
            Vec::with_capacity(range.clone().count());
        for i in range {
            let first = (i - i % Self::KEYWORDS_PER_RECORD) as usize;
            let r = Self::record(i / Self::KEYWORDS_PER_RECORD);
            let k = loop {
                let k = &self.keywords[self.zipf.sample(rng)];
                // The same record's earlier keywords in this batch.
                let start = out.len().saturating_sub(i as usize - first);
                if !out[start..].iter().any(|(kw, rr)| *rr == r && *kw == k) {
                    break k;
                }
            };
            out.push((k, r));
        }
        out
    }
}

/// A Zipf distribution over ranks `0..n` (rank `k` has weight `1 / (k + 1)^s`), for
/// realistic keyword frequencies in benchmarks: a few diagnoses are very common, most
/// are rare.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// The distribution over `n` ranks with exponent `s` (1.0 is the classic law).
    pub fn new(n: usize, s: f64) -> Self {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (0..n)
            .map(|k| {
                acc += 1.0 / ((k + 1) as f64).powf(s);
                acc
            })
            .collect();
        for x in &mut cdf {
            *x /= acc;
        }
        Self { cdf }
    }

    /// The probability of rank `k`.
    pub fn probability(&self, k: usize) -> f64 {
        let hi = self.cdf.get(k).copied().unwrap_or(0.0);
        let lo = k
            .checked_sub(1)
            .and_then(|j| self.cdf.get(j))
            .copied()
            .unwrap_or(0.0);
        hi - lo
    }

    /// A rank drawn with `rng` (inverse CDF by binary search).
    pub fn sample<R: rand_core::RngCore + ?Sized>(&self, rng: &mut R) -> usize {
        // 53 random bits → uniform in [0, 1).
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len().saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let codes =
            parse_tsv("code\tbillable\tdescription\nA00\t0\tCholera\nbad\nI10\t1\tHypertension\n");
        assert_eq!(codes.len(), 2);
        assert_eq!(codes[1].code, "I10");
        assert!(codes[1].billable);
        assert!(!codes[0].billable);
    }

    #[test]
    fn zipf_is_skewed_and_in_range() {
        use rand_core::SeedableRng;
        let z = Zipf::new(1000, 1.0);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut counts = vec![0usize; 1000];
        for _ in 0..100_000 {
            counts[z.sample(&mut rng)] += 1;
        }
        // Rank 0 has probability 1/H_1000 ≈ 0.134; rank 1 half of that.
        assert!((12_000..15_000).contains(&counts[0]), "{}", counts[0]);
        assert!((5_500..7_800).contains(&counts[1]), "{}", counts[1]);
        assert!((z.probability(0) - 2.0 * z.probability(1)).abs() < 1e-12);
    }

    #[cfg(feature = "icd10")]
    #[test]
    fn workload_records_have_distinct_zipf_keywords() {
        use rand_core::SeedableRng;
        let w = Workload::icd10(&mut rand_chacha::ChaCha20Rng::seed_from_u64(7)).unwrap();
        assert_eq!(w.keywords.len(), 95_622);
        // The shuffle is the seed's: the same order twice, another with another seed.
        let again = Workload::icd10(&mut rand_chacha::ChaCha20Rng::seed_from_u64(7)).unwrap();
        let other = Workload::icd10(&mut rand_chacha::ChaCha20Rng::seed_from_u64(8)).unwrap();
        assert_eq!(w.keywords[..100], again.keywords[..100]);
        assert_ne!(w.keywords[..100], other.keywords[..100]);
        let pairs = w.pairs(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1), 0..5_000);
        assert_eq!(pairs.len(), 5_000);
        let per = Workload::KEYWORDS_PER_RECORD as usize;
        for (r, rec) in pairs.chunks(per).enumerate() {
            assert!(rec.iter().all(|(_, x)| *x == Workload::record(r as u64)));
            let mut kws: Vec<_> = rec.iter().map(|(k, _)| k.as_str()).collect();
            kws.sort_unstable();
            kws.dedup();
            assert_eq!(kws.len(), per, "record {r} repeats a keyword");
        }
        // Zipf: the most popular keyword (p ≈ 1/12) is far more frequent than the rest.
        let top = pairs.iter().filter(|(k, _)| *k == &w.keywords[0]).count();
        assert!((250..600).contains(&top), "top keyword drawn {top} times");
        assert_ne!(Workload::record(0), Workload::record(1));
    }
}
