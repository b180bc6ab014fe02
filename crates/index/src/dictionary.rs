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
}
