//! A double-quoted value with backslash escapes, read up to its closing
//! quote: Loki's label values and syslog's structured-data parameters. Each
//! protocol says what its escapes mean.

use std::borrow::Cow;

/// `text` starts after the opening quote. Returns the value (borrowed when
/// it has no escapes) and what follows the closing quote; `None` when the
/// quote is never closed. `unescape` maps the character after a backslash
/// to what it stands for, or `None` to keep the backslash and the character.
pub fn quoted(text: &str, unescape: fn(char) -> Option<char>) -> Option<(Cow<'_, str>, &str)> {
    // A byte search: both are ASCII, never inside a multi-byte character.
    let end = memchr::memchr2(b'"', b'\\', text.as_bytes())?;
    if text.as_bytes()[end] == b'"' {
        return Some((Cow::Borrowed(&text[..end]), &text[end + 1..]));
    }
    let mut value = String::from(&text[..end]);
    let mut chars = text[end..].char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((Cow::Owned(value), &text[end + at + 1..])),
            '\\' => {
                let escaped = chars.next()?.1;
                match unescape(escaped) {
                    Some(meant) => value.push(meant),
                    None => {
                        value.push('\\');
                        value.push(escaped);
                    }
                }
            }
            other => value.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only_quotes(c: char) -> Option<char> {
        (c == '"').then_some(c)
    }

    #[test]
    fn borrowed_escaped_and_unclosed() {
        assert_eq!(
            quoted("plain\" rest", only_quotes),
            Some((Cow::Borrowed("plain"), " rest"))
        );
        assert_eq!(
            quoted(r#"a\"b\nc" rest"#, only_quotes),
            Some((Cow::Owned(r#"a"b\nc"#.to_string()), " rest"))
        );
        assert_eq!(quoted("never closed", only_quotes), None);
        assert_eq!(quoted("ends in \\", only_quotes), None);
    }
}
