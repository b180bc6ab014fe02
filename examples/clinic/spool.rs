//! Uploaded files held until the record is stored: encrypted on the way to disk.
//!
//! A record is stored with all its attachments at once, and a multipart body delivers its
//! files one after the other, so each file is streamed into a temporary file first. The
//! temporary files are sealed under a fresh key that exists only in this process (AES-256-GCM
//! in 64 KiB segments, the envelope's data stream): a crash leaves ciphertext nobody can
//! open, never a patient's report in clear. Memory stays bounded by a few segments per
//! file, whatever its size. The folder is removed when the upload ends, stored or not.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::multipart::Field;
use bytes::Bytes;
use medseal::Attachment;
use medseal::abe::envelope::{self, DEFAULT_SEGMENT_SIZE, DataKey};
use rand_core::OsRng;
use tokio::sync::mpsc;

use crate::failure::Failure;

/// Folder of the data directory that holds uploads in progress.
pub const UPLOADS_DIR: &str = "clinic-uploads";
/// Longest wait for the next piece of an upload before it is abandoned.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

struct Spooled {
    name: String,
    content_type: String,
    len: u64,
    file: std::fs::File,
    aad: Vec<u8>,
}

/// The files of one upload.
pub struct Spool {
    folder: Arc<tempfile::TempDir>,
    key: Arc<DataKey>,
    files: Vec<Spooled>,
    total: u64,
    limit: u64,
}

impl Spool {
    pub fn new(data_dir: &Path, limit: u64) -> Result<Self, Failure> {
        let parent = data_dir.join(UPLOADS_DIR);
        let folder = std::fs::create_dir_all(&parent)
            .and_then(|()| {
                tempfile::Builder::new()
                    .prefix("upload-")
                    .tempdir_in(&parent)
            })
            .map_err(|e| {
                tracing::error!(error = %e, "cannot create an upload folder");
                Failure::internal()
            })?;
        Ok(Self {
            folder: Arc::new(folder),
            key: Arc::new(DataKey::generate(&mut OsRng)),
            files: Vec::new(),
            total: 0,
            limit,
        })
    }

    /// Streams one file of the form into the spool.
    pub async fn add(
        &mut self,
        name: String,
        content_type: String,
        mut field: Field<'_>,
    ) -> Result<(), Failure> {
        let index = self.files.len();
        let aad = format!("medseal clinic upload {index}").into_bytes();
        let path = self.folder.path().join(format!("{index}.sealed"));
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                tracing::error!(error = %e, "cannot create an upload file");
                Failure::internal()
            })?;
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        let sealer = {
            let (key, aad, file) = (Arc::clone(&self.key), aad.clone(), file.try_clone());
            tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
                let mut file = file?;
                let reader = ChannelReader {
                    rx,
                    current: Bytes::new(),
                };
                let n =
                    envelope::seal_with_key(&key, &aad, DEFAULT_SEGMENT_SIZE, reader, &mut file)
                        .map_err(std::io::Error::other)?;
                file.sync_data()?;
                Ok(n)
            })
        };
        let mut received = 0u64;
        let outcome = loop {
            let chunk = match tokio::time::timeout(READ_TIMEOUT, field.chunk()).await {
                Err(_) => break Err(Failure::timeout()),
                Ok(Err(e)) => {
                    break Err(Failure::bad_request(format!(
                        "The upload of {name} did not arrive whole: {e}"
                    )));
                }
                Ok(Ok(None)) => break Ok(()),
                Ok(Ok(Some(chunk))) => chunk,
            };
            received += chunk.len() as u64;
            if self.total + received > self.limit {
                break Err(Failure::too_large(self.limit));
            }
            if tx.send(chunk).await.is_err() {
                break Err(Failure::internal());
            }
        };
        drop(tx);
        let sealed = sealer.await;
        outcome?;
        let len = match sealed {
            Ok(Ok(len)) => len,
            failed => {
                tracing::error!(?failed, "cannot spool an upload");
                return Err(Failure::internal());
            }
        };
        self.total += len;
        self.files.push(Spooled {
            name,
            content_type,
            len,
            file,
            aad,
        });
        Ok(())
    }

    /// The spooled files as attachments that decrypt as the vault reads them (the
    /// folder lives until the last of them is dropped).
    pub fn attachments(self) -> Result<Vec<Attachment>, Failure> {
        let mut out = Vec::with_capacity(self.files.len());
        for spooled in self.files {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<u8>, String>>(4);
            let (key, folder) = (Arc::clone(&self.key), Arc::clone(&self.folder));
            let (mut file, aad) = (spooled.file, spooled.aad);
            std::thread::spawn(move || {
                use std::io::Seek;
                let _folder = folder;
                let mut writer = ChunkWriter(tx.clone());
                let opened = file
                    .seek(std::io::SeekFrom::Start(0))
                    .map_err(|e| e.to_string())
                    .and_then(|_| {
                        envelope::open_with_key(
                            &key,
                            &aad,
                            std::io::BufReader::new(file),
                            &mut writer,
                        )
                        .map_err(|e| e.to_string())
                    });
                if let Err(e) = opened {
                    let _ = tx.send(Err(e));
                }
            });
            let reader = SpoolReader {
                rx,
                current: Vec::new(),
                at: 0,
            };
            out.push(Attachment::reader(
                spooled.name,
                spooled.content_type,
                reader,
                Some(spooled.len),
            ));
        }
        Ok(out)
    }
}

/// The plaintext of a file as it arrives, for the sealing thread.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
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

/// Where the opening thread writes the plaintext.
struct ChunkWriter(std::sync::mpsc::SyncSender<Result<Vec<u8>, String>>);

impl std::io::Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .send(Ok(buf.to_vec()))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "reader gone"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The plaintext of a spooled file, for the vault; an authentication failure of the
/// spool (it was altered on disk) is a read error, never a short file.
struct SpoolReader {
    rx: std::sync::mpsc::Receiver<Result<Vec<u8>, String>>,
    current: Vec<u8>,
    at: usize,
}

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(std::io::Error::other(format!("upload spool: {e}"))),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
