//! Just enough Markdown for the docs tests: which lines are code, the
//! headings and the anchors GitHub gives them, the links and where they
//! point, the fenced blocks under a heading. No crate: the docs use plain
//! CommonMark, and a small reader whose rules are written here is easier to
//! trust than to configure.

/// A link as written: its line (1-based) and its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub line: usize,
    pub target: String,
}

/// A fenced code block: its info string (`bash`) and its lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub info: String,
    pub text: String,
}

/// One line of a document, with whether it is inside a fenced block.
struct Line<'a> {
    number: usize,
    text: &'a str,
    in_fence: bool,
    /// The fence's own opening or closing line.
    is_fence: bool,
}

/// The fence marker a line opens or closes with (three or more backticks or
/// tildes, after at most the indentation of a list item).
fn fence_marker(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    ['`', '~'].into_iter().find_map(|fence| {
        let run = trimmed.chars().take_while(|c| *c == fence).count();
        (run >= 3).then(|| &trimmed[..run])
    })
}

fn lines(markdown: &str) -> Vec<Line<'_>> {
    let mut open: Option<String> = None;
    let mut out = Vec::new();
    for (index, text) in markdown.lines().enumerate() {
        let marker = fence_marker(text);
        let is_fence = match (&open, marker) {
            // A fence closes only with a run of the same character at least
            // as long as the one that opened it.
            (Some(opening), Some(marker))
                if marker.starts_with(&opening[..1]) && marker.len() >= opening.len() =>
            {
                open = None;
                true
            }
            (None, Some(marker)) => {
                open = Some(marker.to_string());
                true
            }
            _ => false,
        };
        out.push(Line {
            number: index + 1,
            text,
            in_fence: open.is_some() && !is_fence,
            is_fence,
        });
    }
    out
}

/// The text of an ATX heading (`## Title ##` gives `Title`), if the line is one.
fn heading(line: &str) -> Option<(usize, &str)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let level = rest.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let text = &rest[level..];
    if !(text.is_empty() || text.starts_with(' ') || text.starts_with('\t')) {
        return None;
    }
    let text = text.trim().trim_end_matches('#').trim_end();
    Some((level, text))
}

/// Link and image syntax reduced to its visible text, as GitHub renders a
/// heading before it makes the anchor: `[text](url)` becomes `text`.
fn visible_text(heading: &str) -> String {
    let mut out = String::new();
    let mut rest = heading;
    while let Some(start) = rest.find('[') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find("](") {
            Some(close) if !after[..close].contains('[') => {
                let target_and_more = &after[close + 2..];
                match target_and_more.find(')') {
                    Some(end) => {
                        out.push_str(&after[..close]);
                        rest = &target_and_more[end + 1..];
                    }
                    None => {
                        out.push('[');
                        rest = after;
                    }
                }
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// GitHub's anchor for a heading: lowercase, every space a hyphen, and
/// anything that is not a letter, a digit, a hyphen or an underscore left
/// out (so `` `GET /api/logs` — search `` is `get-apilogs--search`).
pub fn slug(heading: &str) -> String {
    visible_text(heading)
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor a document offers: its headings' slugs, a repeated one
/// numbered as GitHub numbers it (`-1`, `-2`, ...).
pub fn anchors(markdown: &str) -> Vec<String> {
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    let mut out = Vec::new();
    for line in lines(markdown) {
        if line.in_fence || line.is_fence {
            continue;
        }
        let Some((_, text)) = heading(line.text) else {
            continue;
        };
        let base = slug(text);
        let count = seen.entry(base.clone()).or_insert(0);
        out.push(if *count == 0 {
            base.clone()
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    out
}

/// A line with its code spans blanked out, so `` `[a](b)` `` is no link.
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let run = rest[start..].chars().take_while(|c| *c == '`').count();
        let ticks = &rest[start..start + run];
        let after = &rest[start + run..];
        match after.find(ticks) {
            Some(end) => rest = &after[end + run..],
            // An unmatched run of backticks is literal text.
            None => {
                out.push_str(ticks);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The target of `(target "title")` or `(<target>)`.
fn link_target(inside: &str) -> String {
    let inside = inside.trim();
    if let Some(angled) = inside.strip_prefix('<') {
        return angled.split('>').next().unwrap_or_default().to_string();
    }
    inside
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Every inline link and image (`[text](target)`, `![alt](target)`) and
/// every reference definition (`[name]: target`) outside code.
pub fn links(markdown: &str) -> Vec<Link> {
    let mut out = Vec::new();
    for line in lines(markdown) {
        if line.in_fence || line.is_fence {
            continue;
        }
        let text = without_code_spans(line.text);
        let trimmed = text.trim_start();
        if trimmed.starts_with('[')
            && let Some(close) = trimmed.find("]:")
            && !trimmed[..close].contains("](")
        {
            out.push(Link {
                line: line.number,
                target: link_target(&trimmed[close + 2..]),
            });
            continue;
        }
        let mut rest = text.as_str();
        while let Some(open) = rest.find("](") {
            let after = &rest[open + 2..];
            let Some(close) = after.find(')') else {
                break;
            };
            out.push(Link {
                line: line.number,
                target: link_target(&after[..close]),
            });
            rest = &after[close + 1..];
        }
    }
    out
}

/// The fenced blocks between the heading whose text is `heading` and the
/// next heading of the same or a higher level.
pub fn blocks_under(markdown: &str, heading_text: &str) -> Vec<Block> {
    let mut inside: Option<usize> = None;
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for line in lines(markdown) {
        if !line.in_fence
            && !line.is_fence
            && let Some((level, text)) = heading(line.text)
        {
            match inside {
                Some(open) if level <= open => inside = None,
                None if text == heading_text => inside = Some(level),
                _ => {}
            }
            continue;
        }
        if inside.is_none() {
            continue;
        }
        if line.is_fence {
            match current.take() {
                Some(block) => blocks.push(block),
                None => {
                    let info = line.text.trim_start().trim_start_matches(['`', '~']);
                    current = Some(Block {
                        info: info.trim().to_string(),
                        text: String::new(),
                    });
                }
            }
        } else if let Some(block) = current.as_mut() {
            block.text.push_str(line.text);
            block.text.push('\n');
        }
    }
    blocks
}
