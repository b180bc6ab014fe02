//! Presentation helpers: progress bars, timestamps, content types, safe display.

use std::path::Path;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};
use medseal::Progress;

/// Progress bars on stderr, one per attachment, fed by [`medseal::Vault::set_progress`].
pub struct Bars {
    verb: &'static str,
    current: Mutex<Option<Bar>>,
}

struct Bar {
    label: String,
    done: u64,
    finished: bool,
    bar: ProgressBar,
}

impl Bars {
    pub fn new(verb: &'static str) -> Arc<Self> {
        Arc::new(Self {
            verb,
            current: Mutex::new(None),
        })
    }

    /// The callback to install in the vault.
    pub fn callback(self: &Arc<Self>) -> Progress {
        let bars = Arc::clone(self);
        Arc::new(move |label: &str, done: u64, total: Option<u64>| {
            bars.update(label, done, total);
        })
    }

    fn update(&self, label: &str, done: u64, total: Option<u64>) {
        let Ok(mut current) = self.current.lock() else {
            return;
        };
        // Same attachment while the count does not go back; else a new one starts.
        let same = matches!(&*current, Some(b) if b.label == label && b.done <= done);
        if !same {
            if let Some(old) = current.take()
                && !old.finished
            {
                old.bar.finish();
            }
            let bar = match total {
                Some(total) => ProgressBar::new(total).with_style(
                    ProgressStyle::with_template(
                        "{prefix} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                    )
                    .map(|s| s.progress_chars("=> "))
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template(
                        "{prefix} {msg} {spinner} {bytes} {bytes_per_sec}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
            }
            .with_prefix(self.verb)
            .with_message(printable(label));
            *current = Some(Bar {
                label: label.to_owned(),
                done,
                finished: false,
                bar,
            });
        }
        if let Some(b) = current.as_mut()
            && !b.finished
        {
            b.done = done;
            b.bar.set_position(done);
            if total.is_some_and(|t| done >= t) {
                b.bar.finish();
                b.finished = true;
            }
        }
    }

    /// Finishes the bar still shown, if any.
    pub fn finish(&self) {
        if let Ok(mut current) = self.current.lock()
            && let Some(b) = current.take()
            && !b.finished
        {
            b.bar.finish();
        }
    }
}

/// `text` with control characters escaped (names come from other members' manifests).
pub fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// The content type of a file, guessed from its extension.
pub fn guess_content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "txt" => "text/plain",
        "json" => "application/json",
        "xml" => "application/xml",
        "dcm" => "application/dicom",
        _ => "application/octet-stream",
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A byte count for people.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
