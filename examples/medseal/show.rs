//! Presentation helpers: progress bars, timestamps, content types, safe display.

use std::path::Path;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};
use medseal::Vault;

/// Progress bars on stderr, one per attachment, fed by [`medseal::Vault::set_progress`].
pub struct Bars {
    verb: &'static str,
    /// The attachment shown last: its label, its count so far and its bar.
    current: Mutex<Option<(String, u64, ProgressBar)>>,
}

impl Bars {
    /// Bars for the transfers of `vault`, drawn only if `enabled`.
    pub fn install(vault: &mut Vault, verb: &'static str, enabled: bool) -> Arc<Self> {
        let bars = Arc::new(Self {
            verb,
            current: Mutex::new(None),
        });
        if enabled {
            let shared = Arc::clone(&bars);
            vault.set_progress(Arc::new(
                move |label: &str, done: u64, total: Option<u64>| shared.update(label, done, total),
            ));
        }
        bars
    }

    fn update(&self, label: &str, done: u64, total: Option<u64>) {
        let Ok(mut current) = self.current.lock() else {
            return;
        };
        // Same attachment while the count does not go back; else a new one starts.
        if !matches!(&*current, Some((shown, count, _)) if shown == label && *count <= done) {
            if let Some((_, _, old)) = current.take()
                && !old.is_finished()
            {
                old.finish();
            }
            *current = Some((label.to_owned(), done, self.bar(label, total)));
        }
        if let Some((_, count, bar)) = current.as_mut()
            && !bar.is_finished()
        {
            *count = done;
            bar.set_position(done);
            if total.is_some_and(|t| done >= t) {
                bar.finish();
            }
        }
    }

    fn bar(&self, label: &str, total: Option<u64>) -> ProgressBar {
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::new(total),
                "{prefix} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            ),
            None => (
                ProgressBar::new_spinner(),
                "{prefix} {msg} {spinner} {bytes} {bytes_per_sec}",
            ),
        };
        let style = ProgressStyle::with_template(template)
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.with_style(style)
            .with_prefix(self.verb)
            .with_message(printable(label))
    }

    /// Finishes the bar still shown, if any.
    pub fn finish(&self) {
        if let Ok(mut current) = self.current.lock()
            && let Some((_, _, bar)) = current.take()
            && !bar.is_finished()
        {
            bar.finish();
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
