//! Removes secrets (the App fields a module marks secret, and the App password) from everything
//! the host prints. Applied once, at the output boundary, to every string of the response. Every
//! stderr line is also made plain text first ([`plain`]): CloudPe's texts quoted in a log line
//! carry no terminal escapes or control characters to the admin's terminal or HostBill's pages.

use std::borrow::Cow;
use std::io::Write;
use std::sync::RwLock;

/// Replacement text for a secret.
pub const REDACTED: &str = "[REDACTED]";

/// A set of secret values and the encodings they may appear in.
#[derive(Debug, Default, Clone)]
pub struct Scrubber {
    needles: Vec<String>,
    /// Declared secrets of at least [`ECHOED_START_MIN`] × 2 characters, whose echoed start (see
    /// [`echoed_start`]) is redacted too: an API may echo the first
    /// characters of a token it rejected (`session [Cr0Z...] not valid`). See
    /// [`Scrubber::with_starts_of`].
    starts: Vec<String>,
    /// The shortest needle's length: a shorter text holds none (most strings of a sync report are
    /// shorter than any session token, so they cost one comparison).
    shortest: usize,
}

impl Scrubber {
    /// A scrubber for `secrets`; empty values are ignored.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Scrubber {
        let mut needles = Vec::new();
        for secret in secrets.into_iter().map(str::trim).filter(|s| !s.is_empty()) {
            needles.push(secret.to_string());
            // As it appears in a query string or form body, and percent-encoded.
            let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            needles.push(form.clone());
            needles.push(form.replace('+', "%20"));
        }
        // Longest first, so an encoded form is replaced whole before a plain one inside it.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        let shortest = needles.iter().map(String::len).min().unwrap_or(usize::MAX);
        Scrubber { needles, starts: Vec::new(), shortest }
    }

    /// This scrubber, also removing any start (of at least [`ECHOED_START_MIN`] characters) of
    /// each of `declared` that is at least twice that long. Only for values known to be secrets
    /// (those the module declares, and the App password): the start of an ordinary free-form
    /// value (`https://...`, `progress-...`) is an ordinary word.
    pub fn with_starts_of<'a>(mut self, declared: impl IntoIterator<Item = &'a str>) -> Scrubber {
        for secret in declared.into_iter().map(str::trim) {
            if secret.chars().count() >= 2 * ECHOED_START_MIN && !self.starts.iter().any(|s| s == secret) {
                self.starts.push(secret.to_string());
                self.shortest = self.shortest.min(ECHOED_START_MIN);
            }
        }
        self
    }

    /// `text` with every secret replaced (borrowed when there is none).
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        if text.len() < self.shortest {
            return out;
        }
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = Cow::Owned(out.replace(needle.as_str(), REDACTED));
            }
        }
        for secret in &self.starts {
            if let Some(clean) = redact_starts(&out, secret) {
                out = Cow::Owned(clean);
            }
        }
        out
    }
}

/// `text` without ANSI escape sequences (CSI, OSC and the other `ESC` sequences, as `anstream`'s
/// VT parser reads them) and without control characters: every C0 but newline and tab, DEL, C1,
/// and the bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069) that reorder what
/// a reader sees. Borrowed when there is nothing to remove.
pub fn plain(text: &str) -> Cow<'_, str> {
    let unwanted = |c: char| {
        (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unwanted) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for piece in anstream::adapter::strip_str(text) {
        out.extend(piece.chars().filter(|&c| !unwanted(c)));
    }
    Cow::Owned(out)
}

/// The fewest characters of a secret's start that are redacted wherever they appear (for secrets
/// of at least twice as many characters; shorter ones are redacted only whole).
pub const ECHOED_START_MIN: usize = 4;

/// `text` with every echoed start of `secret` ([`echoed_start`], at least its first
/// [`ECHOED_START_MIN`] characters) replaced by [`REDACTED`]; `None` if it holds no such start.
fn redact_starts(text: &str, secret: &str) -> Option<String> {
    let head_len = secret.char_indices().nth(ECHOED_START_MIN).map_or(secret.len(), |(at, _)| at);
    let head = &secret[..head_len];
    text.find(head)?;
    let (bytes, secret_bytes) = (text.as_bytes(), secret.as_bytes());
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some(at) = text[pos..].find(head) {
        let start = pos + at;
        let mut end = start + head.len();
        while end < bytes.len() && end - start < secret_bytes.len() && bytes[end] == secret_bytes[end - start] {
            end += 1;
        }
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str(&text[pos..start]);
        out.push_str(if echoed_start(&text[start..end], &text[end..], secret) { REDACTED } else { &text[start..end] });
        pos = end;
    }
    out.push_str(&text[pos..]);
    Some(out)
}

/// Whether `run`, a start of `secret` found in a text and followed there by `rest`, is an echo of
/// it: the whole secret, a start of at least [`ECHOED_START_LONG`] bytes (no ordinary word), or
/// a start cut with an ellipsis (`Cr0Z...`, `Cr0Z…`). A short start alone is left: a secret
/// beginning `host` must not remove every "host" of a report.
pub fn echoed_start(run: &str, rest: &str, secret: &str) -> bool {
    run.len() == secret.len() || run.len() >= ECHOED_START_LONG || rest.starts_with("...") || rest.starts_with('…')
}

/// The length from which a start of a secret is removed wherever it appears.
pub const ECHOED_START_LONG: usize = 12;

/// The secrets scrubbed from everything written to stderr (log lines of the host and of the
/// crates it uses, e.g. wasi-http's request traces).
static STDERR_SECRETS: RwLock<Option<Scrubber>> = RwLock::new(None);

/// Scrubs `scrubber`'s secrets from every later stderr line.
pub fn scrub_stderr_with(scrubber: Scrubber) {
    if let Ok(mut secrets) = STDERR_SECRETS.write() {
        *secrets = Some(scrubber);
    }
}

/// A `tracing` writer to stderr that scrubs each record before it is written, and ignores a
/// closed stderr instead of failing.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScrubbedStderr;

/// One record being written (see [`ScrubbedStderr`]).
pub struct ScrubbedRecord(Vec<u8>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ScrubbedStderr {
    type Writer = ScrubbedRecord;
    fn make_writer(&'a self) -> ScrubbedRecord {
        ScrubbedRecord(Vec::new())
    }
}

impl Write for ScrubbedRecord {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedRecord {
    fn drop(&mut self) {
        let bytes = String::from_utf8_lossy(&self.0);
        // Plain first: a secret split by an escape sequence is then found whole.
        let text = plain(&bytes);
        let clean = match STDERR_SECRETS.read().ok().as_deref().and_then(Option::as_ref) {
            Some(scrubber) => scrubber.text(&text).into_owned(),
            None => text.into_owned(),
        };
        let _ = std::io::stderr().write_all(clean.as_bytes());
    }
}

/// Writes a line to stderr, scrubbed; a closed stderr is ignored.
pub fn stderr_line(line: &str) {
    let mut record = ScrubbedRecord(Vec::with_capacity(line.len() + 1));
    record.0.extend_from_slice(line.as_bytes());
    record.0.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_encoded_forms_are_removed() {
        let s = Scrubber::new(["tok en/+=1", "", "  "]);
        assert_eq!(s.text("a tok en/+=1 b"), "a [REDACTED] b");
        assert_eq!(s.text("session=tok+en%2F%2B%3D1&x"), "session=[REDACTED]&x");
        assert_eq!(s.text("session=tok%20en%2F%2B%3D1"), "session=[REDACTED]");
        assert_eq!(s.text("nothing here"), "nothing here");
    }

    #[test]
    fn an_echoed_start_of_a_long_secret_is_removed() {
        let s = Scrubber::new(["Cr0Zq8vLw2-session"]).with_starts_of(["Cr0Zq8vLw2-session"]);
        assert_eq!(s.text("session [Cr0Z...] not valid"), "session [[REDACTED]...] not valid");
        assert_eq!(s.text("x Cr0Zq8vLw2-s y"), "x [REDACTED] y", "a long start");
        assert_eq!(s.text("x Cr0Zq8v y Cr0Z… z"), "x Cr0Zq8v y [REDACTED]… z", "a short start only when cut");
        assert_eq!(s.text("Cr0 stays"), "Cr0 stays");
        assert_eq!(Scrubber::new(["Cr0Zq8vLw2-session"]).text("[Cr0Z...]"), "[Cr0Z...]", "only declared secrets");
        let short = Scrubber::new(["abcdefg"]).with_starts_of(["abcdefg"]);
        assert_eq!(short.text("abcd abcdefg"), "abcd [REDACTED]", "a secret under 8 characters: only whole");
    }

    #[test]
    fn plain_removes_escapes_and_control_characters_only() {
        let hostile = "user \x1b[31m<b>x</b>\x1b[0m not found\x1b]0;pwned\x07\x1b[2J\0 \u{202E}gnp.exe\r\x08 \u{9b}\u{85}ok\tend\n";
        assert_eq!(plain(hostile), "user <b>x</b> not found gnp.exe ok\tend\n");
        // A secret split by an escape is whole once plain, so the scrubber finds it.
        let s = Scrubber::new(["sekrit-123"]);
        assert_eq!(s.text(&plain("token sekrit\x1b[0m-123")), "token [REDACTED]");
        assert!(matches!(plain("ordinary text, ünïcode ✓\n"), Cow::Borrowed(_)));
    }
}
