//! Messages cut into words and the separators between them, and the words
//! that obviously vary told apart from the rest.
//!
//! Separators are runs of whitespace and the punctuation that delimits
//! fields (`= , ; ( ) [ ] { } | < >`); a double-quoted string is one word
//! between two quote separators, spaces and all. The separators are kept
//! byte for byte: two messages share a template only if they share them,
//! so a template rebuilt from words and separators matches every message
//! it groups.
//!
//! A word varies when it holds a digit (numbers, ids, UUIDs, IPs, times,
//! durations like `12ms`, sizes, versions), is an email or a URL, a run of
//! eight or more hex letters, or is very long (tokens, base64). Other
//! varying words (names, methods) are found by comparing messages (see
//! `miner.rs`).

/// Words per message considered; the rest of a longer message is one
/// varying word.
pub const MAX_WORDS: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens<'a> {
    /// The separator before the first word (possibly empty).
    pub leading: &'a str,
    /// Each word and the separator after it (possibly empty at the end).
    pub words: Vec<(&'a str, &'a str)>,
}

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '=' | ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '<' | '>'
        )
}

/// Cuts `message` into words and separators.
pub fn tokenize(message: &str) -> Tokens<'_> {
    let mut words: Vec<(usize, usize)> = Vec::new();
    let bytes = message.as_bytes();
    let mut at = 0;
    while at < message.len() {
        if words.len() + 1 == MAX_WORDS {
            // The rest of the message, from its next word, is one word.
            let rest = message[at..]
                .find(|c: char| !is_separator(c) && c != '"')
                .map(|offset| at + offset);
            if let Some(start) = rest {
                words.push((start, message.len()));
            }
            break;
        }
        let c = message[at..].chars().next().unwrap_or(' ');
        if c == '"'
            && let Some(close) = closing_quote(bytes, at + 1)
        {
            if close > at + 1 {
                words.push((at + 1, close));
            }
            at = close + 1;
            continue;
        }
        if is_separator(c) || c == '"' {
            at += c.len_utf8();
            continue;
        }
        let start = at;
        while let Some(next) = message[at..].chars().next() {
            if is_separator(next) || next == '"' {
                break;
            }
            at += next.len_utf8();
        }
        words.push((start, at));
    }
    let leading_end = words.first().map_or(message.len(), |(start, _)| *start);
    let mut tokens = Tokens {
        leading: &message[..leading_end],
        words: Vec::with_capacity(words.len()),
    };
    for (index, (start, end)) in words.iter().enumerate() {
        let next_start = words
            .get(index + 1)
            .map_or(message.len(), |(next, _)| *next);
        tokens
            .words
            .push((&message[*start..*end], &message[*end..next_start]));
    }
    tokens
}

/// The index of the quote closing a string opened before `from`.
fn closing_quote(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return Some(at),
            b'\n' => return None,
            _ => at += 1,
        }
    }
    None
}

/// Whether a word is obviously a varying part.
pub fn is_variable(word: &str) -> bool {
    if word.bytes().any(|b| b.is_ascii_digit()) {
        return true;
    }
    if word.len() >= 40 {
        return true;
    }
    if word.contains("://") {
        return true;
    }
    if let Some((user, domain)) = word.split_once('@')
        && !user.is_empty()
        && domain.contains('.')
    {
        return true;
    }
    word.len() >= 8 && word.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rebuilt(tokens: &Tokens) -> String {
        let mut out = tokens.leading.to_string();
        for (word, separator) in &tokens.words {
            out.push_str(word);
            out.push_str(separator);
        }
        out
    }

    #[test]
    fn words_and_separators_rebuild_the_message() {
        for message in [
            "connection reset by peer (pool 7)",
            "  leading and trailing  ",
            r#"level=info msg="request completed" took=12ms"#,
            "a,b;c|d[e]{f}<g>",
            "unterminated \"quote here",
            "",
            "   ",
            "ünïcödé wörds = ok",
            "multi\nline\n  trace",
        ] {
            let tokens = tokenize(message);
            assert_eq!(rebuilt(&tokens), message, "{message:?}: {tokens:?}");
        }
        let tokens = tokenize(r#"msg="request completed" n=1"#);
        let words: Vec<&str> = tokens.words.iter().map(|(w, _)| *w).collect();
        assert_eq!(words, ["msg", "request completed", "n", "1"]);
        assert_eq!(tokens.words[0].1, "=\"");
        assert_eq!(tokens.words[1].1, "\" ");
        let tokens = tokenize("connection reset by peer (pool 7)");
        assert_eq!(tokens.words.last(), Some(&("7", ")")));
    }

    #[test]
    fn long_messages_end_in_one_word() {
        let message = (0..300)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let tokens = tokenize(&message);
        assert_eq!(tokens.words.len(), MAX_WORDS);
        assert_eq!(rebuilt(&tokens), message);
    }

    #[test]
    fn obvious_variables() {
        for word in [
            "42",
            "12ms",
            "1.5s",
            "10.0.0.1",
            "10.0.0.1:8080",
            "550e8400-e29b-41d4-a716-446655440000",
            "deadbeefcafe",
            "ann@example.com",
            "https://x.io/a",
            "/users/7",
            "v2",
            "87%",
        ] {
            assert!(is_variable(word), "{word}");
        }
        for word in [
            "connection",
            "GET",
            "failed:",
            "/health",
            "checkout_redesign",
            "deadbee",
            "@here",
        ] {
            assert!(!is_variable(word), "{word}");
        }
    }
}
