//! A small JSON reader for the `json` and `unpack` parsers: it keeps
//! numbers as written (`1.50` stays `1.50`, as Loki's labels show them)
//! and the raw text of nested objects and arrays (what `json a="obj"`
//! extracts), in document order, with bounded nesting.

/// Deepest nesting read; deeper documents are a parse error.
const MAX_JSON_DEPTH: usize = 64;

#[derive(Clone, Debug, PartialEq)]
pub enum Json<'a> {
    /// Members in document order, and the object's raw text.
    Object(Vec<(String, Json<'a>)>, &'a str),
    Array(Vec<Json<'a>>, &'a str),
    String(String),
    /// As written.
    Number(&'a str),
    Bool(bool),
    Null,
}

impl<'a> Json<'a> {
    /// The value as a label: strings unquoted, numbers as written,
    /// `true`/`false`, `""` for null, raw JSON for objects and arrays.
    pub fn label_value(&self) -> String {
        match self {
            Json::Object(_, raw) | Json::Array(_, raw) => raw.to_string(),
            Json::String(text) => text.clone(),
            Json::Number(text) => text.to_string(),
            Json::Bool(flag) => flag.to_string(),
            Json::Null => String::new(),
        }
    }
}

/// Parses a whole document (surrounding whitespace allowed).
pub fn parse(text: &str) -> Result<Json<'_>, String> {
    let mut reader = Reader { text, at: 0 };
    reader.skip_whitespace();
    let value = reader.value(0)?;
    reader.skip_whitespace();
    if reader.at != text.len() {
        return Err(format!("unexpected character at offset {}", reader.at));
    }
    Ok(value)
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn error<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at offset {}", self.at))
    }

    fn value(&mut self, depth: usize) -> Result<Json<'a>, String> {
        if depth > MAX_JSON_DEPTH {
            return self.error("nested too deeply");
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            Some(b'n') => self.word("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => self.error("unexpected character"),
            None => self.error("unexpected end of input"),
        }
    }

    fn word(&mut self, word: &str, value: Json<'a>) -> Result<Json<'a>, String> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            self.error("invalid literal")
        }
    }

    fn number(&mut self) -> Result<Json<'a>, String> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let digits = |reader: &mut Reader| {
            let from = reader.at;
            while reader.peek().is_some_and(|b| b.is_ascii_digit()) {
                reader.at += 1;
            }
            reader.at > from
        };
        if !digits(self) {
            return self.error("invalid number");
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !digits(self) {
                return self.error("invalid number");
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if !digits(self) {
                return self.error("invalid number");
            }
        }
        Ok(Json::Number(&self.text[start..self.at]))
    }

    fn string(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.at..];
            let Some(special) = rest.find(['"', '\\']) else {
                return self.error("unterminated string");
            };
            out.push_str(&rest[..special]);
            self.at += special;
            if self.peek() == Some(b'"') {
                self.at += 1;
                return Ok(out);
            }
            self.at += 1;
            let escaped = match self.peek() {
                Some(b'"') => '"',
                Some(b'\\') => '\\',
                Some(b'/') => '/',
                Some(b'b') => '\u{8}',
                Some(b'f') => '\u{c}',
                Some(b'n') => '\n',
                Some(b'r') => '\r',
                Some(b't') => '\t',
                Some(b'u') => {
                    self.at += 1;
                    let high = self.hex4()?;
                    let code = if (0xD800..0xDC00).contains(&high)
                        && self.text[self.at..].starts_with("\\u")
                    {
                        self.at += 2;
                        let low = self.hex4()?;
                        0x10000 + ((high - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF)
                    } else {
                        high
                    };
                    out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                    continue;
                }
                _ => return self.error("invalid escape"),
            };
            out.push(escaped);
            self.at += 1;
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .ok_or("truncated escape")?;
        let value = u32::from_str_radix(digits, 16).map_err(|_| "invalid escape".to_string())?;
        self.at += 4;
        Ok(value)
    }

    fn object(&mut self, depth: usize) -> Result<Json<'a>, String> {
        let start = self.at;
        self.at += 1;
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Json::Object(members, &self.text[start..self.at]));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return self.error("expected a key");
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return self.error("expected ':'");
            }
            self.at += 1;
            self.skip_whitespace();
            let value = self.value(depth + 1)?;
            members.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Json::Object(members, &self.text[start..self.at]));
                }
                _ => return self.error("expected ',' or '}'"),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json<'a>, String> {
        let start = self.at;
        self.at += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Json::Array(items, &self.text[start..self.at]));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Json::Array(items, &self.text[start..self.at]));
                }
                _ => return self.error("expected ',' or ']'"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_numbers_and_raw_text() {
        let json =
            parse(r#" {"a": 1.50, "b": {"c": [1, "x"]}, "d": "\u00e9\n", "e": null, "f": true} "#)
                .unwrap();
        let Json::Object(members, _) = json else {
            panic!("not an object")
        };
        assert_eq!(members[0].1.label_value(), "1.50");
        assert_eq!(members[1].1.label_value(), r#"{"c": [1, "x"]}"#);
        assert_eq!(members[2].1.label_value(), "é\n");
        assert_eq!(members[3].1.label_value(), "");
        assert_eq!(members[4].1.label_value(), "true");
        assert_eq!(
            parse(r#""\ud83d\ude00""#).unwrap(),
            Json::String("😀".into())
        );
    }

    #[test]
    fn refuses_broken_documents() {
        for bad in [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "[1,]",
            "01x",
            "\"abc",
            "{\"a\":1} x",
            "tru",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&deep).is_err());
    }
}
