//! The fuzz entry point of the chain journal (see `crate::__fuzz`).

use super::block::BlockRecord;
use super::journal::{MAGIC, encode_record, scan_records};
use crate::signing::decode_and_recover;

/// Decodes a chain journal file as opening the chain does: its header, the checksummed
/// records (cutting a torn tail off, refusing damage followed by intact data), each
/// record's block, and each block's signed transaction. Whatever is read as intact
/// re-encodes to the bytes it was read from, a torn tail is only ever the end of the
/// file, and a decodable block re-encodes to its payload.
pub fn decode_journal(data: &[u8]) {
    let Some(body) = data.strip_prefix(MAGIC.as_slice()) else {
        return;
    };
    let Ok(scanned) = scan_records(body, MAGIC.len()) else {
        return;
    };
    let mut reencoded = MAGIC.to_vec();
    for record in &scanned.records {
        assert!(
            record.start as usize == reencoded.len(),
            "records are not contiguous"
        );
        reencoded.extend_from_slice(&encode_record(&record.payload));
        assert!(
            record.end as usize == reencoded.len(),
            "a record's range is not its encoding"
        );
        if let Ok(block) = BlockRecord::decode(&record.payload) {
            assert!(
                block.encode() == record.payload,
                "a decodable block is not canonical"
            );
            let _ = decode_and_recover(&block.raw_tx);
        }
    }
    assert!(
        data.get(..scanned.end) == Some(reencoded.as_slice()),
        "the intact records are not the file's bytes"
    );
    match scanned.torn_at {
        Some(offset) => assert!(offset == scanned.end, "a torn tail before the end"),
        None => assert!(scanned.end == data.len(), "bytes left after the records"),
    }
}
