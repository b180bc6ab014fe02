//! Character classes and a byte scanner shared by the policy parser and attribute parsing.
//!
//! Everything here works on bytes and never indexes out of bounds: the scanner uses `get`
//! and reports positions as byte offsets into the original `&str`.

use super::error::{PolicyError, PolicyErrorKind};

/// First character of a name: `[A-Za-z_]`.
pub(crate) fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

/// Later characters of a name: `[A-Za-z0-9_.-]`.
pub(crate) fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// Characters of an unquoted value: `[A-Za-z0-9_.@/+-]`.
pub(crate) fn is_value_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'/' | b'+' | b'-')
}

/// Whitespace between tokens: ASCII space, tab, line feed, carriage return.
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// `and`, `or`, `of` in any case.
pub(crate) fn is_reserved(word: &str) -> bool {
    ["and", "or", "of"]
        .iter()
        .any(|kw| word.eq_ignore_ascii_case(kw))
}

/// Whether `name` is a syntactically valid, non-reserved attribute name.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let valid_chars = name.as_bytes().split_first().is_some_and(|(&first, rest)| {
        is_name_start(first) && rest.iter().all(|&b| is_name_char(b))
    });
    valid_chars && !is_reserved(name)
}

/// Whether a value must be double-quoted in policy text.
pub(crate) fn needs_quotes(value: &str) -> bool {
    value.is_empty() || !value.bytes().all(is_value_char)
}

/// Writes a value in policy syntax: bare when possible, otherwise quoted with `"` and `\`
/// escaped.
pub(crate) fn write_value(out: &mut impl core::fmt::Write, value: &str) -> core::fmt::Result {
    if !needs_quotes(value) {
        return out.write_str(value);
    }
    out.write_char('"')?;
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.write_char('\\')?;
        }
        out.write_char(c)?;
    }
    out.write_char('"')
}

/// A cursor over the input.
pub(crate) struct Scanner<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self { src, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    pub(crate) fn bump(&mut self) {
        if !self.at_end() {
            self.pos += 1;
        }
    }

    pub(crate) fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    /// Consumes `byte` if it is next.
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// An "unexpected character" (or "unexpected end") error at the current position.
    pub(crate) fn unexpected(&self, expected: &'static str) -> PolicyError {
        let kind = match self
            .src
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
        {
            Some(found) => PolicyErrorKind::UnexpectedChar { found, expected },
            None => PolicyErrorKind::UnexpectedEnd { expected },
        };
        PolicyError::new(kind, self.pos)
    }

    /// Looks at the word (maximal run of name characters starting with a name-start
    /// character) at the current position without consuming it.
    pub(crate) fn peek_word(&self) -> Option<&'a str> {
        let bytes = self.src.as_bytes();
        let first = *bytes.get(self.pos)?;
        if !is_name_start(first) {
            return None;
        }
        let len = bytes
            .get(self.pos..)?
            .iter()
            .take_while(|&&b| is_name_char(b))
            .count();
        self.src.get(self.pos..self.pos + len)
    }

    /// Consumes a word (see [`Self::peek_word`]).
    pub(crate) fn word(&mut self) -> Option<&'a str> {
        let word = self.peek_word()?;
        self.pos += word.len();
        Some(word)
    }

    /// Whether the next word is the keyword `kw` (case-insensitive).
    pub(crate) fn at_keyword(&self, kw: &str) -> bool {
        self.peek_word().is_some_and(|w| w.eq_ignore_ascii_case(kw))
    }

    /// Consumes a decimal number that fits in `T`. The number must not be glued to a
    /// following name character, so `3abc` and `2of` are rejected rather than split.
    pub(crate) fn number<T: TryFrom<u64>>(&mut self) -> Result<T, PolicyError> {
        let start = self.pos;
        let invalid = || PolicyError::new(PolicyErrorKind::InvalidNumber, start);
        if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Err(self.unexpected("a decimal number"));
        }
        let mut value: u64 = 0;
        while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                .filter(|&v| T::try_from(v).is_ok())
                .ok_or_else(invalid)?;
            self.pos += 1;
        }
        if self.peek().is_some_and(is_name_char) {
            return Err(invalid());
        }
        T::try_from(value).map_err(|_| invalid())
    }

    /// Consumes an attribute value right after the `:`: either a run of value characters or a
    /// double-quoted string with `\"` and `\\` escapes. Returns the unescaped value.
    pub(crate) fn value(&mut self) -> Result<String, PolicyError> {
        let start = self.pos;
        if self.peek() == Some(b'"') {
            return self.quoted();
        }
        while self.peek().is_some_and(is_value_char) {
            self.pos += 1;
        }
        match self.src.get(start..self.pos) {
            Some(v) if !v.is_empty() => Ok(v.to_owned()),
            _ => Err(self.unexpected("an attribute value")),
        }
    }

    fn quoted(&mut self) -> Result<String, PolicyError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        // Copy unescaped runs as whole slices, so multi-byte UTF-8 stays intact.
        let mut run_start = self.pos;
        loop {
            match self.peek() {
                None => return Err(PolicyError::new(PolicyErrorKind::UnterminatedString, open)),
                Some(b'"') => {
                    out.push_str(self.src.get(run_start..self.pos).unwrap_or_default());
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    out.push_str(self.src.get(run_start..self.pos).unwrap_or_default());
                    let escape_at = self.pos;
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => out.push(char::from(c)),
                        None => {
                            return Err(PolicyError::new(
                                PolicyErrorKind::UnterminatedString,
                                open,
                            ));
                        }
                        Some(_) => {
                            return Err(PolicyError::new(
                                PolicyErrorKind::InvalidEscape,
                                escape_at,
                            ));
                        }
                    }
                    self.pos += 1;
                    run_start = self.pos;
                }
                Some(_) => self.pos += 1,
            }
        }
        if out.is_empty() {
            return Err(PolicyError::new(PolicyErrorKind::EmptyValue, open));
        }
        Ok(out)
    }
}
