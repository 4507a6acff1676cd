//! The values and functions of LogQL templates: Go's built-ins (`eq`,
//! `printf`, `len`, …), the `strings` functions Loki adds (`ToUpper`,
//! `Replace`, `TrimPrefix`, …) and the sprig ones it ships (`trunc`,
//! `default`, `replace`, `date`, …). As in sprig, a piped value is the last
//! argument: `{{ .x | trunc 5 }}` is `trunc 5 .x`.

use base64::Engine;
use std::fmt::Write;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Nanoseconds since the epoch (`__timestamp__`), printed in UTC.
    Time(i64),
    Nil,
}

impl Value {
    /// As `{{ … }}` prints it (Go's `fmt.Print`).
    pub fn to_text(&self) -> String {
        match self {
            Value::Str(text) => text.clone(),
            Value::Int(int) => int.to_string(),
            Value::Float(float) => go_float(*float),
            Value::Bool(flag) => flag.to_string(),
            Value::Time(nanos) => go_time(*nanos),
            Value::Nil => "<no value>".into(),
        }
    }

    /// Go's truth: empty, zero, false and nil are false.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Str(text) => !text.is_empty(),
            Value::Int(int) => *int != 0,
            Value::Float(float) => *float != 0.0,
            Value::Bool(flag) => *flag,
            Value::Time(_) => true,
            Value::Nil => false,
        }
    }

    fn as_int(&self) -> Result<i64, String> {
        match self {
            Value::Int(int) => Ok(*int),
            Value::Float(float) => Ok(*float as i64),
            Value::Str(text) => text
                .trim()
                .parse::<i64>()
                .or_else(|_| text.trim().parse::<f64>().map(|f| f as i64))
                .map_err(|_| format!("cannot use {text:?} as a number")),
            Value::Bool(flag) => Ok(i64::from(*flag)),
            Value::Time(nanos) => Ok(*nanos),
            Value::Nil => Ok(0),
        }
    }

    fn as_float(&self) -> Result<f64, String> {
        match self {
            Value::Float(float) => Ok(*float),
            Value::Str(text) => text
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("cannot use {text:?} as a number")),
            other => other.as_int().map(|int| int as f64),
        }
    }
}

const FUNCTIONS: &[&str] = &[
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and",
    "or",
    "not",
    "len",
    "printf",
    "print",
    "ToLower",
    "ToUpper",
    "Replace",
    "Trim",
    "TrimLeft",
    "TrimRight",
    "TrimPrefix",
    "TrimSuffix",
    "TrimSpace",
    "lower",
    "upper",
    "title",
    "trunc",
    "substr",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "default",
    "replace",
    "repeat",
    "trim",
    "trimAll",
    "trimPrefix",
    "trimSuffix",
    "regexReplaceAll",
    "regexReplaceAllLiteral",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "addf",
    "subf",
    "mulf",
    "divf",
    "max",
    "min",
    "date",
    "unixEpoch",
    "unixEpochMillis",
    "unixEpochNanos",
    "unixToTime",
    "alignLeft",
    "alignRight",
    "b64enc",
    "b64dec",
    "urlencode",
    "urldecode",
    "count",
];

pub fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

fn text(value: &Value) -> String {
    value.to_text()
}

fn arity(name: &str, args: &[Value], wanted: usize) -> Result<(), String> {
    if args.len() == wanted {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {wanted} got {}",
            args.len()
        ))
    }
}

/// Calls `name` with `args`.
pub fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
    let a = &args;
    let string_fn = |f: &dyn Fn(&str) -> String| -> Result<Value, String> {
        arity(name, a, 1)?;
        Ok(Value::Str(f(&text(&a[0]))))
    };
    match name {
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
            arity(name, a, 2)?;
            let ordering = compare(&a[0], &a[1]);
            let holds = match name {
                "eq" => ordering == Some(std::cmp::Ordering::Equal),
                "ne" => ordering != Some(std::cmp::Ordering::Equal),
                "lt" => ordering == Some(std::cmp::Ordering::Less),
                "le" => ordering.is_some_and(|o| o != std::cmp::Ordering::Greater),
                "gt" => ordering == Some(std::cmp::Ordering::Greater),
                _ => ordering.is_some_and(|o| o != std::cmp::Ordering::Less),
            };
            Ok(Value::Bool(holds))
        }
        "and" => Ok(a
            .iter()
            .find(|v| !v.is_true())
            .or(a.last())
            .cloned()
            .unwrap_or(Value::Nil)),
        "or" => Ok(a
            .iter()
            .find(|v| v.is_true())
            .or(a.last())
            .cloned()
            .unwrap_or(Value::Nil)),
        "not" => {
            arity(name, a, 1)?;
            Ok(Value::Bool(!a[0].is_true()))
        }
        "len" => {
            arity(name, a, 1)?;
            Ok(Value::Int(text(&a[0]).len() as i64))
        }
        "print" => Ok(Value::Str(a.iter().map(text).collect())),
        "printf" => {
            let (format, rest) = a.split_first().ok_or("printf needs a format")?;
            Ok(Value::Str(printf(&text(format), rest)))
        }
        "ToLower" | "lower" => string_fn(&|s| s.to_lowercase()),
        "ToUpper" | "upper" => string_fn(&|s| s.to_uppercase()),
        "TrimSpace" | "trim" => string_fn(&|s| s.trim().to_string()),
        "title" => string_fn(&title),
        "b64enc" => string_fn(&|s| base64::engine::general_purpose::STANDARD.encode(s)),
        "b64dec" => {
            arity(name, a, 1)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text(&a[0]))
                .map_err(|e| e.to_string())?;
            Ok(Value::Str(String::from_utf8_lossy(&bytes).into_owned()))
        }
        "urlencode" => string_fn(&|s| {
            serde_urlencoded::to_string([("", s)]).unwrap_or_default()[1..].to_string()
        }),
        "urldecode" => {
            arity(name, a, 1)?;
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_str(&format!("x={}", text(&a[0])))
                    .map_err(|e| e.to_string())?;
            Ok(Value::Str(
                pairs.into_iter().next().map(|(_, v)| v).unwrap_or_default(),
            ))
        }
        "Replace" => {
            arity(name, a, 4)?;
            let count = a[3].as_int()?;
            let (s, old, new) = (text(&a[0]), text(&a[1]), text(&a[2]));
            Ok(Value::Str(if count < 0 {
                s.replace(&old, &new)
            } else {
                s.replacen(&old, &new, count as usize)
            }))
        }
        "replace" => {
            arity(name, a, 3)?;
            Ok(Value::Str(text(&a[2]).replace(&text(&a[0]), &text(&a[1]))))
        }
        "Trim" | "TrimLeft" | "TrimRight" => {
            arity(name, a, 2)?;
            let cutset: Vec<char> = text(&a[1]).chars().collect();
            let s = text(&a[0]);
            let trimmed = match name {
                "Trim" => s.trim_matches(cutset.as_slice()),
                "TrimLeft" => s.trim_start_matches(cutset.as_slice()),
                _ => s.trim_end_matches(cutset.as_slice()),
            };
            Ok(Value::Str(trimmed.to_string()))
        }
        "trimAll" => {
            arity(name, a, 2)?;
            let cutset: Vec<char> = text(&a[0]).chars().collect();
            Ok(Value::Str(
                text(&a[1]).trim_matches(cutset.as_slice()).to_string(),
            ))
        }
        "TrimPrefix" | "TrimSuffix" | "trimPrefix" | "trimSuffix" => {
            arity(name, a, 2)?;
            let (s, affix) = if name.starts_with('T') {
                (text(&a[0]), text(&a[1]))
            } else {
                (text(&a[1]), text(&a[0]))
            };
            let trimmed = if name.ends_with("Prefix") {
                s.strip_prefix(affix.as_str()).unwrap_or(&s)
            } else {
                s.strip_suffix(affix.as_str()).unwrap_or(&s)
            };
            Ok(Value::Str(trimmed.to_string()))
        }
        "trunc" => {
            arity(name, a, 2)?;
            let count = a[0].as_int()?;
            let chars: Vec<char> = text(&a[1]).chars().collect();
            let kept: String = if count >= 0 {
                chars.iter().take(count as usize).collect()
            } else {
                let skip = chars.len().saturating_sub(count.unsigned_abs() as usize);
                chars[skip..].iter().collect()
            };
            Ok(Value::Str(kept))
        }
        "substr" => {
            arity(name, a, 3)?;
            let (start, end) = (a[0].as_int()?, a[1].as_int()?);
            let chars: Vec<char> = text(&a[2]).chars().collect();
            let len = chars.len() as i64;
            let (from, to) = if start < 0 {
                (0, end.clamp(0, len))
            } else if end < 0 || end > len {
                (start.min(len), len)
            } else {
                (start.min(end), end)
            };
            Ok(Value::Str(
                chars[from as usize..to as usize].iter().collect(),
            ))
        }
        "contains" | "hasPrefix" | "hasSuffix" => {
            arity(name, a, 2)?;
            let (needle, s) = (text(&a[0]), text(&a[1]));
            Ok(Value::Bool(match name {
                "contains" => s.contains(&needle),
                "hasPrefix" => s.starts_with(&needle),
                _ => s.ends_with(&needle),
            }))
        }
        "default" => {
            arity(name, a, 2)?;
            Ok(if a[1].is_true() {
                a[1].clone()
            } else {
                a[0].clone()
            })
        }
        "repeat" => {
            arity(name, a, 2)?;
            let count = a[0].as_int()?.clamp(0, 10_000) as usize;
            Ok(Value::Str(text(&a[1]).repeat(count)))
        }
        "regexReplaceAll" | "regexReplaceAllLiteral" | "count" => {
            let wanted = if name == "count" { 2 } else { 3 };
            arity(name, a, wanted)?;
            let regex = crate::domain::query::compile_regex(&text(&a[0]))?;
            let s = text(&a[1]);
            Ok(match name {
                "count" => Value::Int(regex.regex.find_iter(&s).count() as i64),
                // Go's `$1` and `${name}` in a replacement are Rust's too.
                "regexReplaceAll" => Value::Str(
                    regex
                        .regex
                        .replace_all(&s, text(&a[2]).as_str())
                        .into_owned(),
                ),
                _ => Value::Str(
                    regex
                        .regex
                        .replace_all(&s, regex::NoExpand(&text(&a[2])))
                        .into_owned(),
                ),
            })
        }
        "add" | "sub" | "mul" | "div" | "mod" | "max" | "min" => {
            if a.len() < 2 {
                return Err(format!(
                    "wrong number of args for {name}: want 2 got {}",
                    a.len()
                ));
            }
            let mut total = a[0].as_int()?;
            for value in &a[1..] {
                let value = value.as_int()?;
                total = match name {
                    "add" => total.wrapping_add(value),
                    "sub" => total.wrapping_sub(value),
                    "mul" => total.wrapping_mul(value),
                    "max" => total.max(value),
                    "min" => total.min(value),
                    _ if value == 0 => return Err("integer divide by zero".into()),
                    "div" => total.wrapping_div(value),
                    _ => total.wrapping_rem(value),
                };
            }
            Ok(Value::Int(total))
        }
        "addf" | "subf" | "mulf" | "divf" => {
            if a.len() < 2 {
                return Err(format!(
                    "wrong number of args for {name}: want 2 got {}",
                    a.len()
                ));
            }
            let mut total = a[0].as_float()?;
            for value in &a[1..] {
                let value = value.as_float()?;
                total = match name {
                    "addf" => total + value,
                    "subf" => total - value,
                    "mulf" => total * value,
                    _ => total / value,
                };
            }
            Ok(Value::Float(total))
        }
        "date" => {
            arity(name, a, 2)?;
            let nanos = match &a[1] {
                Value::Time(nanos) => *nanos,
                other => other.as_int()?.saturating_mul(1_000_000_000),
            };
            Ok(Value::Str(go_layout(&text(&a[0]), nanos)))
        }
        "unixEpoch" | "unixEpochMillis" | "unixEpochNanos" => {
            arity(name, a, 1)?;
            let nanos = a[0].as_int()?;
            Ok(Value::Int(match name {
                "unixEpoch" => nanos.div_euclid(1_000_000_000),
                "unixEpochMillis" => nanos.div_euclid(1_000_000),
                _ => nanos,
            }))
        }
        "unixToTime" => {
            arity(name, a, 1)?;
            let digits = text(&a[0]);
            let value: i64 = digits
                .trim()
                .parse()
                .map_err(|_| format!("unable to parse {digits:?} as a unix time"))?;
            // Seconds, milliseconds, microseconds or nanoseconds by length.
            let nanos = match digits.trim().trim_start_matches('-').len() {
                0..=10 => value.saturating_mul(1_000_000_000),
                11..=13 => value.saturating_mul(1_000_000),
                14..=16 => value.saturating_mul(1_000),
                _ => value,
            };
            Ok(Value::Time(nanos))
        }
        "alignLeft" | "alignRight" => {
            arity(name, a, 2)?;
            let width = a[0].as_int()?.clamp(0, 10_000) as usize;
            let s: String = text(&a[1]).chars().take(width).collect();
            let padding = " ".repeat(width - s.chars().count());
            Ok(Value::Str(if name == "alignLeft" {
                s + &padding
            } else {
                padding + &s
            }))
        }
        other => Err(format!("function {other:?} not defined")),
    }
}

fn compare(left: &Value, right: &Value) -> Option<std::cmp::Ordering> {
    match (left, right) {
        (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Nil, Value::Nil) => Some(std::cmp::Ordering::Equal),
        (Value::Str(_), _) | (_, Value::Str(_)) => Some(text(left).cmp(&text(right))),
        _ => left.as_float().ok()?.partial_cmp(&right.as_float().ok()?),
    }
}

fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at_word_start = true;
    for c in text.chars() {
        if at_word_start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_word_start = c.is_whitespace();
    }
    out
}

/// Go's `%v` of a float: shortest digits, exponent form from 1e21 and
/// below 1e-4.
pub fn go_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-4..1e21).contains(&magnitude) {
        let formatted = format!("{value:e}");
        let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    format!("{value}")
}

/// Go's `time.Time.String` in UTC: `2025-01-01 00:00:00.123 +0000 UTC`.
pub fn go_time(nanos: i64) -> String {
    let mut out = go_layout("2006-01-02 15:04:05", nanos);
    let fraction = nanos.rem_euclid(1_000_000_000);
    if fraction != 0 {
        let digits = format!("{fraction:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

/// Writes one element of a Go layout.
type LayoutWriter<'a> = &'a dyn Fn(&mut String);

/// A time formatted with a Go layout (reference time `Mon Jan 2 15:04:05
/// MST 2006`), in UTC.
pub fn go_layout(layout: &str, nanos: i64) -> String {
    let Ok(time) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)) else {
        return String::new();
    };
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let month = MONTHS[usize::from(u8::from(time.month())) - 1];
    let weekday = DAYS[usize::from(time.weekday().number_days_from_monday())];
    let hour12 = match time.hour() % 12 {
        0 => 12,
        other => other,
    };
    let fraction = time.nanosecond();
    let mut out = String::new();
    let mut rest = layout;
    // Longest tokens first, as Go's layout scanner prefers them.
    let tokens: &[(&str, LayoutWriter)] = &[
        ("January", &|o| o.push_str(month)),
        ("Monday", &|o| o.push_str(weekday)),
        ("2006", &|o| {
            let _ = write!(o, "{:04}", time.year());
        }),
        ("Z07:00", &|o| o.push('Z')),
        ("-07:00", &|o| o.push_str("+00:00")),
        ("-0700", &|o| o.push_str("+0000")),
        ("Z0700", &|o| o.push('Z')),
        (".000000000", &|o| {
            let _ = write!(o, ".{fraction:09}");
        }),
        (".000000", &|o| {
            let _ = write!(o, ".{:06}", fraction / 1_000);
        }),
        (".000", &|o| {
            let _ = write!(o, ".{:03}", fraction / 1_000_000);
        }),
        (".999999999", &|o| {
            if fraction != 0 {
                let digits = format!("{fraction:09}");
                let _ = write!(o, ".{}", digits.trim_end_matches('0'));
            }
        }),
        ("Jan", &|o| o.push_str(&month[..3])),
        ("Mon", &|o| o.push_str(&weekday[..3])),
        ("MST", &|o| o.push_str("UTC")),
        ("002", &|o| {
            let _ = write!(o, "{:03}", time.ordinal());
        }),
        ("01", &|o| {
            let _ = write!(o, "{:02}", u8::from(time.month()));
        }),
        ("02", &|o| {
            let _ = write!(o, "{:02}", time.day());
        }),
        ("_2", &|o| {
            let _ = write!(o, "{:>2}", time.day());
        }),
        ("06", &|o| {
            let _ = write!(o, "{:02}", time.year().rem_euclid(100));
        }),
        ("15", &|o| {
            let _ = write!(o, "{:02}", time.hour());
        }),
        ("03", &|o| {
            let _ = write!(o, "{hour12:02}");
        }),
        ("04", &|o| {
            let _ = write!(o, "{:02}", time.minute());
        }),
        ("05", &|o| {
            let _ = write!(o, "{:02}", time.second());
        }),
        ("PM", &|o| {
            o.push_str(if time.hour() >= 12 { "PM" } else { "AM" })
        }),
        ("pm", &|o| {
            o.push_str(if time.hour() >= 12 { "pm" } else { "am" })
        }),
        ("1", &|o| {
            let _ = write!(o, "{}", u8::from(time.month()));
        }),
        ("2", &|o| {
            let _ = write!(o, "{}", time.day());
        }),
        ("3", &|o| {
            let _ = write!(o, "{hour12}");
        }),
        ("4", &|o| {
            let _ = write!(o, "{}", time.minute());
        }),
        ("5", &|o| {
            let _ = write!(o, "{}", time.second());
        }),
    ];
    'outer: while let Some(c) = rest.chars().next() {
        for (token, write_token) in tokens {
            if let Some(after) = rest.strip_prefix(token) {
                write_token(&mut out);
                rest = after;
                continue 'outer;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A subset of Go's `fmt.Sprintf`: verbs `v s d f g e q x X t %` with the
/// flags `-`, `+`, `0`, a width and a precision.
pub fn printf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next_arg = args.iter();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut plus, mut zero) = (false, false, false);
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => left = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&digit) = chars.peek().filter(|c| c.is_ascii_digit()) {
            width.push(digit);
            chars.next();
        }
        let mut precision = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(&digit) = chars.peek().filter(|c| c.is_ascii_digit()) {
                digits.push(digit);
                chars.next();
            }
            precision = Some(digits.parse::<usize>().unwrap_or(0).min(64));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = next_arg.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        let body = match verb {
            'd' => match arg.as_int() {
                Ok(int) if plus && int >= 0 => format!("+{int}"),
                Ok(int) => int.to_string(),
                Err(_) => format!("%!d(string={})", text(arg)),
            },
            'f' | 'F' | 'e' | 'g' => match arg.as_float() {
                Ok(float) => {
                    let digits = precision.unwrap_or(6);
                    let formatted = match verb {
                        'e' => format!("{float:.digits$e}"),
                        'g' => go_float(float),
                        _ => format!("{float:.digits$}"),
                    };
                    if plus && float >= 0.0 {
                        format!("+{formatted}")
                    } else {
                        formatted
                    }
                }
                Err(_) => format!("%!{verb}(string={})", text(arg)),
            },
            'q' => format!("{:?}", text(arg)),
            'x' | 'X' => {
                let hex = match arg {
                    Value::Int(int) => format!("{int:x}"),
                    other => text(other).bytes().map(|b| format!("{b:02x}")).collect(),
                };
                if verb == 'X' { hex.to_uppercase() } else { hex }
            }
            't' => arg.is_true().to_string(),
            _ => {
                let mut body = text(arg);
                if let Some(precision) = precision.filter(|_| matches!(arg, Value::Str(_))) {
                    body = body.chars().take(precision).collect();
                }
                body
            }
        };
        let width: usize = width.parse::<usize>().unwrap_or(0).min(1024);
        let padding = width.saturating_sub(body.chars().count());
        if left {
            out.push_str(&body);
            out.push_str(&" ".repeat(padding));
        } else if zero && matches!(verb, 'd' | 'f' | 'F' | 'e' | 'g') {
            let (sign, digits) = match body.strip_prefix(['-', '+']) {
                Some(digits) => (&body[..1], digits),
                None => ("", body.as_str()),
            };
            out.push_str(sign);
            out.push_str(&"0".repeat(padding));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(padding));
            out.push_str(&body);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formatting() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(3.0), "3");
        assert_eq!(go_time(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_layout("Mon Jan _2 03:04:05PM 2006 .000", 1_735_732_800_500_000_000),
            "Wed Jan  1 12:00:00PM 2025 .500"
        );
        assert_eq!(
            printf(
                "%d%%|%5.1f|%q|%x",
                &[
                    Value::Int(5),
                    Value::Float(2.26),
                    Value::Str("a".into()),
                    Value::Int(255)
                ]
            ),
            "5%|  2.3|\"a\"|ff"
        );
        assert_eq!(printf("%s %s", &[Value::Str("a".into())]), "a %!s(MISSING)");
    }
}
