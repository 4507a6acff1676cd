//! Where one message ends in a byte stream (syslog over TCP, RFC 6587):
//! octet counting (`<length> SP <message>`; the counted message may end in a
//! newline) or non-transparent framing (each message ends at a newline). A
//! sender may mix them; each message's first byte tells which it is (a
//! digit starts a count, `<` a syslog message). Blank lines and NULs between
//! messages are skipped.
//!
//! A message longer than `max_frame` is reported once as [`Frame::TooLong`]
//! and skipped (its count, or up to its newline) without ever holding more
//! than `max_frame` bytes of it, so the connection's later messages still
//! arrive.

/// At most this many digits in an octet count (a count up to 999,999,999).
const MAX_COUNT_DIGITS: usize = 9;

#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Message(&'a [u8]),
    TooLong,
}

#[derive(Debug)]
enum Skip {
    Nothing,
    Bytes(usize),
    ToNewline,
}

#[derive(Debug)]
pub struct Framer {
    buffer: Vec<u8>,
    start: usize,
    max_frame: usize,
    skip: Skip,
}

impl Framer {
    pub fn new(max_frame: usize) -> Framer {
        Framer {
            buffer: Vec::with_capacity(64 * 1024),
            start: 0,
            max_frame: max_frame.max(1),
            skip: Skip::Nothing,
        }
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, data: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buffer.len() {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(data);
    }

    /// The next whole frame, or `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        loop {
            let available = self.buffer.len() - self.start;
            match self.skip {
                Skip::Nothing => {}
                Skip::Bytes(remaining) => {
                    let taken = remaining.min(available);
                    self.start += taken;
                    if taken < remaining {
                        self.skip = Skip::Bytes(remaining - taken);
                        return None;
                    }
                    self.skip = Skip::Nothing;
                    continue;
                }
                Skip::ToNewline => match memchr::memchr(b'\n', &self.buffer[self.start..]) {
                    Some(at) => {
                        self.start += at + 1;
                        self.skip = Skip::Nothing;
                        continue;
                    }
                    None => {
                        self.start = self.buffer.len();
                        return None;
                    }
                },
            }
            let rest = &self.buffer[self.start..];
            let first = *rest.first()?;
            if matches!(first, b'\n' | b'\r' | 0 | b' ' | b'\t') {
                self.start += 1;
                continue;
            }
            if first.is_ascii_digit() {
                let digits = rest
                    .iter()
                    .take(MAX_COUNT_DIGITS + 1)
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                match rest.get(digits) {
                    None if digits <= MAX_COUNT_DIGITS => return None,
                    Some(b' ') if digits <= MAX_COUNT_DIGITS => {
                        let length: usize = std::str::from_utf8(&rest[..digits])
                            .ok()
                            .and_then(|text| text.parse().ok())
                            .unwrap_or(0);
                        let body_start = self.start + digits + 1;
                        if length > self.max_frame {
                            self.start = body_start;
                            self.skip = Skip::Bytes(length);
                            return Some(Frame::TooLong);
                        }
                        if self.buffer.len() - body_start < length {
                            return None;
                        }
                        self.start = body_start + length;
                        let frame = &self.buffer[body_start..body_start + length];
                        return Some(Frame::Message(trim_line_end(frame)));
                    }
                    // Digits not followed by a space: not a count, so a line.
                    _ => {}
                }
            }
            let line_start = self.start;
            match memchr::memchr(b'\n', rest) {
                Some(at) if at > self.max_frame => {
                    self.start += at + 1;
                    return Some(Frame::TooLong);
                }
                Some(at) => {
                    self.start += at + 1;
                    return Some(Frame::Message(trim_line_end(
                        &self.buffer[line_start..line_start + at],
                    )));
                }
                None if rest.len() > self.max_frame => {
                    self.start = self.buffer.len();
                    self.skip = Skip::ToNewline;
                    return Some(Frame::TooLong);
                }
                None => return None,
            }
        }
    }

    /// At the end of the stream: what is left, as the last message (a last
    /// line without its newline).
    pub fn finish(&mut self) -> Option<Frame<'_>> {
        let rest = &self.buffer[self.start..];
        self.start = self.buffer.len();
        if !matches!(self.skip, Skip::Nothing)
            || rest.iter().all(|b| b.is_ascii_whitespace() || *b == 0)
        {
            return None;
        }
        Some(Frame::Message(trim_line_end(rest)))
    }

    /// Bytes held for a message not complete yet.
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.start
    }
}

fn trim_line_end(mut frame: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r' | 0] = frame {
        frame = rest;
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]], max_frame: usize) -> Vec<String> {
        let mut framer = Framer::new(max_frame);
        let mut out = Vec::new();
        for chunk in chunks {
            framer.extend(chunk);
            while let Some(frame) = framer.next_frame() {
                out.push(describe(frame));
            }
        }
        if let Some(frame) = framer.finish() {
            out.push(describe(frame));
        }
        out
    }

    fn describe(frame: Frame<'_>) -> String {
        match frame {
            Frame::Message(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Frame::TooLong => "<too long>".into(),
        }
    }

    #[test]
    fn newline_and_octet_counting_mixed_and_split_anywhere() {
        let stream: &[u8] = b"<13>first\r\n\n11 <13>second\n<13>third\n9 <13>4th 5\n<13>no newline";
        let expected = vec![
            "<13>first",
            "<13>second",
            "<13>third",
            "<13>4th 5",
            "<13>no newline",
        ];
        assert_eq!(frames(&[stream], 1024), expected);
        // Every split point gives the same frames.
        for cut in 0..stream.len() {
            assert_eq!(
                frames(&[&stream[..cut], &stream[cut..]], 1024),
                expected,
                "cut at {cut}"
            );
        }
        // Byte by byte.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(frames(&bytes, 1024), expected);
    }

    #[test]
    fn too_long_frames_are_skipped_not_held() {
        let long_line = [b"<13>".as_slice(), &[b'x'; 100], b"\n<13>after line\n"].concat();
        assert_eq!(
            frames(&[&long_line], 20),
            vec!["<too long>", "<13>after line"]
        );
        let long_count = [b"100 ".as_slice(), &[b'y'; 100], b"9 <13>after"].concat();
        let mut framer = Framer::new(20);
        framer.extend(&long_count[..50]);
        assert_eq!(framer.next_frame(), Some(Frame::TooLong));
        assert_eq!(framer.next_frame(), None);
        assert!(framer.buffered() <= 20);
        framer.extend(&long_count[50..]);
        assert_eq!(framer.next_frame(), Some(Frame::Message(b"<13>after")));
        // A line without an end is dropped once past the limit, and its rest
        // up to the newline too.
        assert_eq!(
            frames(&[&[b'z'; 30], &[b'z'; 30], b"\n<13>ok\n"], 20),
            vec!["<too long>", "<13>ok"]
        );
    }

    #[test]
    fn digits_without_a_space_are_a_line() {
        assert_eq!(frames(&[b"2024: a line\n"], 100), vec!["2024: a line"]);
        assert_eq!(frames(&[b"12345678901 x\n"], 100), vec!["12345678901 x"]);
    }
}
