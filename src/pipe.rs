//! Bridges between the synchronous streaming cipher (on a blocking thread) and the
//! asynchronous content store: attachments of any size pass through in bounded memory.

use std::io::{Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::abe::envelope::{self, DataKey};
use crate::error::{Error, Result, Tampering};
use crate::storage::{ByteStream, Cid, ContentStore, PutOptions, StorageError};

/// Segment size of sealed attachments.
pub(crate) const SEGMENT_SIZE: u32 = 256 * 1024;
const CHUNK: usize = 256 * 1024;
const DEPTH: usize = 4;

/// A progress callback: `(label, bytes done, total if known)`. Called from a blocking
/// thread as data flows.
pub type Progress = Arc<dyn Fn(&str, u64, Option<u64>) + Send + Sync>;

/// Where an attachment's bytes come from.
pub(crate) enum Source {
    /// In memory.
    Bytes(Bytes),
    /// A file, read while it is encrypted.
    File(std::path::PathBuf),
    /// Any reader, with its length if known (for progress output).
    Reader(Box<dyn Read + Send>, Option<u64>),
}

impl core::fmt::Debug for Source {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Source::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Source::File(p) => write!(f, "File({})", p.display()),
            Source::Reader(_, len) => write!(f, "Reader({len:?})"),
        }
    }
}

impl Source {
    fn open(self) -> Result<(Box<dyn Read + Send>, Option<u64>)> {
        Ok(match self {
            Source::Bytes(b) => {
                let len = b.len() as u64;
                (Box::new(std::io::Cursor::new(b)), Some(len))
            }
            Source::File(path) => {
                let file = std::fs::File::open(&path).map_err(Error::io(&path))?;
                let len = file.metadata().map(|m| m.len()).ok();
                (Box::new(file), len)
            }
            Source::Reader(r, len) => (r, len),
        })
    }
}

struct Counting<R> {
    inner: R,
    done: u64,
    total: Option<u64>,
    label: String,
    progress: Option<Progress>,
    reported: u64,
    /// SHA-256 of what was read (sealing: the record's content digest).
    digest: Option<Sha256>,
}

impl<R> Counting<R> {
    fn add(&mut self, n: usize) {
        self.done += n as u64;
        if let Some(p) = &self.progress
            && (self.done - self.reported >= 1 << 20 || n == 0)
        {
            self.reported = self.done;
            p(&self.label, self.done, self.total);
        }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let (Some(digest), Some(read)) = (&mut self.digest, buf.get(..n)) {
            digest.update(read);
        }
        self.add(n);
        Ok(n)
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.add(n);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(p) = &self.progress {
            p(&self.label, self.done, self.total);
        }
        self.inner.flush()
    }
}

/// Sends what is written, in chunks, to the store's upload stream.
struct ChannelWriter {
    tx: mpsc::Sender<crate::storage::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(core::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "upload stopped"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// What [`seal_to_store`] stored.
pub(crate) struct Sealed {
    /// The ciphertext's CID.
    pub(crate) cid: Cid,
    /// The plaintext size.
    pub(crate) size: u64,
    /// SHA-256 of the plaintext.
    pub(crate) sha256: [u8; 32],
}

/// Encrypts `source` under `dek` with `aad` and stores the result; returns its CID, the
/// plaintext size and the plaintext's SHA-256 (computed as it streams through).
pub(crate) async fn seal_to_store(
    store: &dyn ContentStore,
    dek: &Arc<DataKey>,
    aad: Vec<u8>,
    source: Source,
    label: String,
    progress: Option<Progress>,
) -> Result<Sealed> {
    let (tx, rx) = mpsc::channel::<crate::storage::Result<Bytes>>(DEPTH);
    // The blocking task shares the key; no copy of its bytes is made.
    let key = Arc::clone(dek);
    let sealer = tokio::task::spawn_blocking(move || -> Result<(u64, [u8; 32])> {
        let (reader, total) = source.open()?;
        let mut reader = Counting {
            inner: reader,
            done: 0,
            total,
            label,
            progress,
            reported: 0,
            digest: Some(Sha256::new()),
        };
        let mut writer = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let sealed = envelope::seal_with_key(&key, &aad, SEGMENT_SIZE, &mut reader, &mut writer);
        if let Err(e) = &sealed {
            // Make the upload fail instead of storing a truncated ciphertext.
            let _ = tx.blocking_send(Err(StorageError::Input(e.to_string().into())));
        }
        let size = sealed?;
        let digest = reader.digest.take().unwrap_or_default().finalize();
        Ok((size, digest.into()))
    });
    let stream: ByteStream = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let stored = store
        .put_stream(stream, PutOptions::new().with_pin(true))
        .await;
    let (size, sha256) = sealer
        .await
        .map_err(|_| Error::TaskFailed("encryption"))??;
    Ok(Sealed {
        cid: stored?,
        size,
        sha256,
    })
}

/// Reads a sealed object from the store (every block verified), decrypts it and writes
/// the plaintext to `out`, which is returned. On error, discard what was written.
#[allow(clippy::too_many_arguments)] // internal; every argument is distinct
pub(crate) async fn open_from_store<W: Write + Send + 'static>(
    store: &dyn ContentStore,
    cid: &Cid,
    dek: &Arc<DataKey>,
    aad: Vec<u8>,
    out: W,
    label: String,
    total: Option<u64>,
    progress: Option<Progress>,
) -> Result<W> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(DEPTH);
    let key = Arc::clone(dek);
    let opener = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx: &mut rx,
            current: Bytes::new(),
        };
        let mut writer = Counting {
            inner: out,
            done: 0,
            total,
            label,
            progress,
            reported: 0,
            digest: None,
        };
        let opened = envelope::open_with_key(&key, &aad, reader, &mut writer);
        (opened, writer.inner)
    });
    let mut stream = store.get_stream(cid);
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                if tx.send(chunk).await.is_err() {
                    break; // the opener stopped (it reports why)
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let (opened, out) = opener.await.map_err(|_| Error::TaskFailed("decryption"))?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    match opened {
        Ok(_) => Ok(out),
        Err(crate::abe::Error::Io(e)) => Err(Error::Io {
            path: "attachment output".into(),
            source: e,
        }),
        Err(_) => Err(Tampering::Attachment { cid: *cid }.into()),
    }
}

struct ChannelReader<'a> {
    rx: &'a mut mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Re-encrypts a stored sealed object under a new key without holding it in memory:
/// store → verify → decrypt (old key) → OS pipe → encrypt (new key) → store. Returns the
/// new object's CID. On error nothing refers to a partial result (it may remain in the
/// store, unreferenced).
pub(crate) async fn reseal_in_store(
    store: &dyn ContentStore,
    cid: &Cid,
    old: &Arc<DataKey>,
    new: &Arc<DataKey>,
    aad: Vec<u8>,
    label: String,
) -> Result<Cid> {
    let (pipe_r, pipe_w) = std::io::pipe().map_err(Error::io("pipe"))?;
    let (open_aad, open_label) = (aad.clone(), label.clone());
    let opening = async move {
        // Dropping the writer when done is the end of the plaintext for the sealer.
        open_from_store(store, cid, old, open_aad, pipe_w, open_label, None, None)
            .await
            .map(drop)
    };
    let sealing = seal_to_store(
        store,
        new,
        aad,
        Source::Reader(Box::new(pipe_r), None),
        label,
        None,
    );
    let (opened, sealed) = tokio::join!(opening, sealing);
    opened?;
    Ok(sealed?.cid)
}
