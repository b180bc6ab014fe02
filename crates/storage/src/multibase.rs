//! The two text encodings CIDs use here: base58btc (CIDv0, `Qm…`) and
//! RFC 4648 base32 without padding (CIDv1 `b…`, and flatfs block file names).

const BASE58_ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BASE32_LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// RFC 4648 base32 upper case: flatfs block keys (and so shard names) use it.
pub(crate) const BASE32_UPPER: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Encodes `bytes` as base58btc (Bitcoin alphabet).
pub(crate) fn base58btc_encode(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    // Little-endian base-58 digits of the big-endian input number.
    let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 138 / 100 + 1);
    for &byte in &bytes[zeros..] {
        let mut carry = u32::from(byte);
        for digit in digits.iter_mut() {
            carry += u32::from(*digit) << 8;
            *digit = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(std::iter::repeat_n('1', zeros));
    out.extend(
        digits
            .iter()
            .rev()
            .map(|&d| char::from(BASE58_ALPHABET[usize::from(d)])),
    );
    out
}

/// Decodes base58btc text; `None` on a character outside the alphabet.
pub(crate) fn base58btc_decode(text: &str) -> Option<Vec<u8>> {
    let zeros = text.bytes().take_while(|&c| c == b'1').count();
    let mut bytes: Vec<u8> = Vec::with_capacity(text.len());
    for c in text.bytes().skip(zeros) {
        let value = BASE58_ALPHABET.iter().position(|&a| a == c)?;
        let mut carry = value as u32;
        for byte in bytes.iter_mut() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(bytes.iter().rev());
    Some(out)
}

fn base32_encode_with(bytes: &[u8], alphabet: &[u8; 32]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(alphabet[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(alphabet[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Encodes `bytes` as lowercase RFC 4648 base32 without padding.
pub(crate) fn base32_lower_encode(bytes: &[u8]) -> String {
    base32_encode_with(bytes, BASE32_LOWER)
}

/// Encodes `bytes` as uppercase RFC 4648 base32 without padding (flatfs keys).
pub(crate) fn base32_upper_encode(bytes: &[u8]) -> String {
    base32_encode_with(bytes, BASE32_UPPER)
}

/// Decodes unpadded RFC 4648 base32 in either case (not mixed within a
/// character, but per character); `None` on invalid characters or
/// non-zero trailing bits.
pub(crate) fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in text.bytes() {
        let value = match c {
            b'a'..=b'z' => c - b'a',
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    // Leftover bits must be padding zeros, and a whole leftover byte's
    // worth of characters (5+ bits) cannot come from a valid encoding.
    if bits >= 5 || buffer != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58_known_vectors() {
        assert_eq!(base58btc_encode(b"hello world"), "StV1DL6CwTryKyV");
        assert_eq!(base58btc_encode(&[0, 0, 1]), "112");
        assert_eq!(base58btc_encode(&[]), "");
        assert_eq!(base58btc_decode("StV1DL6CwTryKyV").unwrap(), b"hello world");
        assert_eq!(base58btc_decode("112").unwrap(), vec![0, 0, 1]);
        assert!(base58btc_decode("0OIl").is_none());
    }

    #[test]
    fn base32_rfc4648_vectors() {
        // RFC 4648 section 10, padding stripped.
        let cases = [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base32_lower_encode(plain.as_bytes()), encoded);
            assert_eq!(
                base32_upper_encode(plain.as_bytes()),
                encoded.to_uppercase()
            );
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
            assert_eq!(
                base32_decode(&encoded.to_uppercase()).unwrap(),
                plain.as_bytes()
            );
        }
        assert!(base32_decode("mzxw6yr").is_none(), "non-zero trailing bits");
        assert!(base32_decode("m1").is_none(), "invalid character");
        assert!(base32_decode("m").is_none(), "dangling character");
    }

    #[test]
    fn round_trips_arbitrary_bytes() {
        for len in 0..40usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            assert_eq!(base58btc_decode(&base58btc_encode(&bytes)).unwrap(), bytes);
            assert_eq!(base32_decode(&base32_lower_encode(&bytes)).unwrap(), bytes);
        }
    }
}
