//! Streaming helpers shared by the large-payload tests: a deterministic payload of any
//! length and a sink that hashes what it is given.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::io::{Read, Write};

/// Deterministic pseudo-random bytes, `len` of them; byte `i` depends only on `i`, so the
/// stream is the same whatever sizes the reader asks for.
pub(crate) struct Payload {
    pos: u64,
    len: u64,
}

impl Payload {
    pub(crate) fn new(len: u64) -> Self {
        Self { pos: 0, len }
    }
}

fn word(i: u64) -> [u8; 8] {
    // splitmix64
    let mut z = i.wrapping_add(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    (z ^ (z >> 31)).to_le_bytes()
}

impl Read for Payload {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min((self.len - self.pos) as usize);
        for (k, b) in buf[..n].iter_mut().enumerate() {
            let i = self.pos + k as u64;
            *b = word(i / 8)[(i % 8) as usize];
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Hashes what it is given and records the total and the largest single write.
pub(crate) struct Hashing {
    pub(crate) hash: Sha256,
    pub(crate) total: u64,
    pub(crate) largest_write: usize,
}

impl Hashing {
    pub(crate) fn new() -> Self {
        Self {
            hash: Sha256::new(),
            total: 0,
            largest_write: 0,
        }
    }
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hash.update(buf);
        self.total += buf.len() as u64;
        self.largest_write = self.largest_write.max(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
