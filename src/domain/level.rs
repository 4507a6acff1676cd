//! Log severity levels, parsed case-insensitively and stored lowercase.

use serde::{Serialize, Serializer};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    pub const NAMES: &'static str = "debug, info, warn, error, fatal";

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// Case-insensitive; `None` for anything that is not one of the five names.
    pub fn parse(text: &str) -> Option<Level> {
        Level::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(text))
    }

    /// Also accepts the other names shippers and people use for levels, any
    /// case: syslog's and OpenTelemetry's severities, Python's and Java's
    /// level names. Every protocol decoder and the query language map level
    /// names through this one table, so they cannot drift apart.
    pub fn parse_alias(text: &str) -> Option<Level> {
        if let Some(level) = Level::parse(text) {
            return Some(level);
        }
        const ALIASES: &[(&str, Level)] = &[
            ("trace", Level::Debug),
            ("notice", Level::Info),
            ("informational", Level::Info),
            ("warning", Level::Warn),
            ("err", Level::Error),
            ("critical", Level::Fatal),
            ("crit", Level::Fatal),
            ("alert", Level::Fatal),
            ("emerg", Level::Fatal),
            ("emergency", Level::Fatal),
            ("panic", Level::Fatal),
        ];
        ALIASES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|(_, level)| *level)
    }

    /// The small integer both stores keep, so level filters compare integers.
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Level> {
        Level::ALL.get(code as usize).copied()
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Level {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A set of levels as a bit mask: cheap to copy and to test per record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LevelSet(u8);

impl LevelSet {
    pub fn insert(&mut self, level: Level) {
        self.0 |= 1 << level.code();
    }

    pub fn contains(self, level: Level) -> bool {
        self.0 & (1 << level.code()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Level> {
        Level::ALL.into_iter().filter(move |l| self.contains(*l))
    }

    /// Parses `error` or a comma list such as `warn,error`.
    pub fn parse_list(text: &str) -> Result<LevelSet, String> {
        let mut set = LevelSet::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match Level::parse(part) {
                Some(level) => set.insert(level),
                None => {
                    return Err(format!(
                        "unknown level {part:?}: use one of {}",
                        Level::NAMES
                    ));
                }
            }
        }
        if set.is_empty() {
            return Err(format!("empty level list: use one of {}", Level::NAMES));
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_case_and_rejects_others() {
        assert_eq!(Level::parse("WARN"), Some(Level::Warn));
        assert_eq!(Level::parse("Fatal"), Some(Level::Fatal));
        assert_eq!(Level::parse("warning"), None);
        assert_eq!(Level::parse(""), None);
    }

    #[test]
    fn aliases_map_to_the_five_levels() {
        for (name, level) in [
            ("WARNING", Level::Warn),
            ("err", Level::Error),
            ("Critical", Level::Fatal),
            ("crit", Level::Fatal),
            ("alert", Level::Fatal),
            ("EMERG", Level::Fatal),
            ("emergency", Level::Fatal),
            ("panic", Level::Fatal),
            ("notice", Level::Info),
            ("informational", Level::Info),
            ("trace", Level::Debug),
            ("error", Level::Error),
        ] {
            assert_eq!(Level::parse_alias(name), Some(level), "{name}");
        }
        assert_eq!(Level::parse_alias("loud"), None);
        assert_eq!(Level::parse_alias(""), None);
        assert_eq!(
            Level::parse("warning"),
            None,
            "the strict parser is unchanged"
        );
    }

    #[test]
    fn codes_round_trip() {
        for level in Level::ALL {
            assert_eq!(Level::from_code(level.code()), Some(level));
        }
        assert_eq!(Level::from_code(5), None);
    }

    #[test]
    fn level_lists() {
        let set = LevelSet::parse_list("error, WARN").unwrap();
        assert!(set.contains(Level::Error) && set.contains(Level::Warn));
        assert!(!set.contains(Level::Info));
        assert!(LevelSet::parse_list("error,nope").is_err());
        assert!(LevelSet::parse_list(" , ").is_err());
    }
}
