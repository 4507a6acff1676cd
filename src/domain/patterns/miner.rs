//! Grouping messages into templates, Drain-style, in one pass with
//! bounded memory.
//!
//! A message is cut into words and separators (`tokens.rs`); messages with
//! the same separators (so the same number of words) share a bucket. Each
//! bucket holds clusters: a template (a word, or `<_>` where words vary)
//! and statistics. A message joins the cluster it differs from in the
//! fewest constant words, if that is at most a third of the cluster's
//! constant words (the differing words become `<_>`); otherwise it starts
//! a cluster. At the end, clusters of a bucket that one generalizes or
//! that differ as little are folded together, placeholders separated only
//! by spaces are written as one, and equal templates are merged.
//!
//! Deterministic: the same rows in the same order give the same patterns.
//! Memory is bounded by `max_patterns` clusters (256 per bucket); past
//! that, a message that fits no cluster counts under the catch-all `<_>`
//! pattern, so the patterns already found stay as precise as they were.

use super::template::PLACEHOLDER;
use super::tokens::{Tokens, is_variable, tokenize};
use crate::domain::time::{Micros, write_rfc3339};
use crate::domain::{Level, LogRecord};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, HashMap};

/// Clusters per bucket (same separators) before messages are forced into
/// the nearest one.
const MAX_CLUSTERS_PER_BUCKET: usize = 256;
/// Services counted by name per pattern; the rest count under `(other)`.
const MAX_SERVICES_PER_PATTERN: usize = 100;
pub const OTHER_SERVICES: &str = "(other)";

/// Per-step counts: steps of `step_micros` from `start_micros`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleGrid {
    pub start_micros: Micros,
    pub step_micros: Micros,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinerOptions {
    /// Clusters kept at most (memory bound).
    pub max_patterns: usize,
    /// Where per-step samples are counted; `None` for none.
    pub samples: Option<SampleGrid>,
}

impl Default for MinerOptions {
    fn default() -> MinerOptions {
        MinerOptions {
            max_patterns: 5000,
            samples: None,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Stats {
    count: u64,
    levels: [u64; 5],
    services: BTreeMap<String, u64>,
    first_seen: Micros,
    last_seen: Micros,
    example_id: String,
    /// (step index, level code) → count.
    samples: BTreeMap<(i64, u8), u64>,
}

impl Stats {
    fn add_service(&mut self, service: &str, count: u64) {
        let key = if self.services.contains_key(service)
            || self.services.len() < MAX_SERVICES_PER_PATTERN
        {
            service
        } else {
            OTHER_SERVICES
        };
        *self.services.entry(key.to_string()).or_default() += count;
    }

    fn absorb(&mut self, other: Stats) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 || other.first_seen < self.first_seen {
            self.first_seen = other.first_seen;
            self.example_id = other.example_id;
        }
        if self.count == 0 || other.last_seen > self.last_seen {
            self.last_seen = other.last_seen;
        }
        self.count += other.count;
        for (mine, theirs) in self.levels.iter_mut().zip(other.levels) {
            *mine += theirs;
        }
        for (service, count) in other.services {
            self.add_service(&service, count);
        }
        for (key, count) in other.samples {
            *self.samples.entry(key).or_default() += count;
        }
    }
}

#[derive(Clone, Debug)]
struct Cluster {
    leading: String,
    /// A word, or `None` where words vary; each with the separator after it.
    words: Vec<(Option<String>, String)>,
    stats: Stats,
}

impl Cluster {
    fn constant_words(&self) -> usize {
        self.words.iter().filter(|(word, _)| word.is_some()).count()
    }

    /// How many differing words this cluster tolerates.
    fn tolerance(&self) -> usize {
        self.constant_words() / 3
    }

    fn difference(&self, words: &[Option<&str>]) -> usize {
        self.words
            .iter()
            .zip(words)
            .filter(|((mine, _), theirs)| match (mine, theirs) {
                (None, _) => false,
                (Some(mine), Some(theirs)) => mine != theirs,
                (Some(_), None) => true,
            })
            .count()
    }

    fn generalize(&mut self, words: &[Option<&str>]) {
        for ((mine, _), theirs) in self.words.iter_mut().zip(words) {
            if mine.is_some() && mine.as_deref() != *theirs {
                *mine = None;
            }
        }
    }

    /// The template, placeholders joined only by whitespace written once.
    fn render(&self) -> String {
        let mut out = self.leading.clone();
        let mut index = 0;
        while index < self.words.len() {
            let (word, separator) = &self.words[index];
            let mut separator = separator;
            match word {
                Some(word) => out.push_str(word),
                None => {
                    out.push_str(PLACEHOLDER);
                    while index + 1 < self.words.len()
                        && self.words[index + 1].0.is_none()
                        && !separator.is_empty()
                        && separator.chars().all(char::is_whitespace)
                    {
                        index += 1;
                        separator = &self.words[index].1;
                    }
                }
            }
            out.push_str(separator);
            index += 1;
        }
        out
    }
}

/// Groups messages into patterns; feed it with [`PatternMiner::add`], then
/// [`PatternMiner::finish`].
#[derive(Debug)]
pub struct PatternMiner {
    options: MinerOptions,
    clusters: Vec<Cluster>,
    buckets: HashMap<String, Vec<usize>>,
    catch_all: Stats,
}

fn shape_key(tokens: &Tokens<'_>) -> String {
    let mut key = String::from(tokens.leading);
    for (_, separator) in &tokens.words {
        key.push('\u{0}');
        key.push_str(separator);
    }
    key
}

impl PatternMiner {
    pub fn new(options: MinerOptions) -> PatternMiner {
        PatternMiner {
            options,
            clusters: Vec::new(),
            buckets: HashMap::new(),
            catch_all: Stats::default(),
        }
    }

    pub fn add(&mut self, record: &LogRecord) {
        self.add_message(
            record.timestamp,
            record.level,
            &record.service,
            &record.id,
            &record.message,
        );
    }

    pub fn add_message(
        &mut self,
        timestamp: Micros,
        level: Level,
        service: &str,
        id: &str,
        message: &str,
    ) {
        let tokens = tokenize(message);
        let words: Vec<Option<&str>> = tokens
            .words
            .iter()
            .map(|(word, _)| (!is_variable(word)).then_some(*word))
            .collect();
        let key = shape_key(&tokens);
        let bucket = self.buckets.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let nearest = bucket
            .iter()
            .map(|&index| (index, self.clusters[index].difference(&words)))
            .min_by_key(|(index, difference)| (*difference, *index));
        let fits =
            nearest.filter(|(index, difference)| *difference <= self.clusters[*index].tolerance());
        let room = self.clusters.len() < self.options.max_patterns
            && bucket.len() < MAX_CLUSTERS_PER_BUCKET;
        let target = match (fits, room) {
            (Some((index, _)), _) => Some(index),
            (None, true) => {
                self.clusters.push(Cluster {
                    leading: tokens.leading.to_string(),
                    words: tokens
                        .words
                        .iter()
                        .zip(&words)
                        .map(|((_, separator), word)| {
                            (word.map(str::to_string), separator.to_string())
                        })
                        .collect(),
                    stats: Stats::default(),
                });
                let index = self.clusters.len() - 1;
                self.buckets.entry(key).or_default().push(index);
                Some(index)
            }
            (None, false) => None,
        };
        let stats = match target {
            Some(index) => {
                self.clusters[index].generalize(&words);
                &mut self.clusters[index].stats
            }
            None => &mut self.catch_all,
        };
        record(stats, timestamp, level, service, id, self.options.samples);
    }

    /// The patterns, most frequent first (ties by pattern text).
    pub fn finish(mut self) -> Vec<PatternSummary> {
        let mut alive: Vec<bool> = vec![true; self.clusters.len()];
        let mut buckets: Vec<Vec<usize>> = self.buckets.into_values().collect();
        buckets.sort();
        for bucket in &buckets {
            fold_bucket(&mut self.clusters, &mut alive, bucket);
        }
        let mut by_pattern: BTreeMap<String, Stats> = BTreeMap::new();
        for (cluster, alive) in self.clusters.into_iter().zip(alive) {
            if alive {
                by_pattern
                    .entry(cluster.render())
                    .or_default()
                    .absorb(cluster.stats);
            }
        }
        if self.catch_all.count > 0 {
            by_pattern
                .entry(PLACEHOLDER.to_string())
                .or_default()
                .absorb(self.catch_all);
        }
        let mut patterns: Vec<PatternSummary> = by_pattern
            .into_iter()
            .map(|(pattern, stats)| PatternSummary::new(pattern, stats, self.options.samples))
            .collect();
        patterns.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.pattern.cmp(&b.pattern))
        });
        patterns
    }
}

fn record(
    stats: &mut Stats,
    timestamp: Micros,
    level: Level,
    service: &str,
    id: &str,
    grid: Option<SampleGrid>,
) {
    if stats.count == 0 || timestamp < stats.first_seen {
        stats.first_seen = timestamp;
        stats.example_id = id.to_string();
    }
    if stats.count == 0 || timestamp > stats.last_seen {
        stats.last_seen = timestamp;
    }
    stats.count += 1;
    stats.levels[usize::from(level.code())] += 1;
    stats.add_service(service, 1);
    if let Some(grid) = grid.filter(|grid| grid.step_micros > 0) {
        let step = (timestamp - grid.start_micros).div_euclid(grid.step_micros);
        *stats.samples.entry((step, level.code())).or_default() += 1;
    }
}

/// Folds the clusters of one bucket that one generalizes, or that differ
/// in no more words than both tolerate, until none do.
fn fold_bucket(clusters: &mut [Cluster], alive: &mut [bool], bucket: &[usize]) {
    loop {
        let mut folded = false;
        for (position, &keep) in bucket.iter().enumerate() {
            for &other in &bucket[position + 1..] {
                if !alive[keep] || !alive[other] {
                    continue;
                }
                let (mine, theirs) = (&clusters[keep], &clusters[other]);
                let differing: Vec<usize> = mine
                    .words
                    .iter()
                    .zip(&theirs.words)
                    .enumerate()
                    .filter(|(_, ((a, _), (b, _)))| a != b)
                    .map(|(index, _)| index)
                    .collect();
                let covers = differing.iter().all(|&index| mine.words[index].0.is_none());
                let tolerated = mine.tolerance().min(theirs.tolerance());
                if !covers && differing.len() > tolerated {
                    continue;
                }
                for index in differing {
                    clusters[keep].words[index].0 = None;
                }
                let stats = std::mem::take(&mut clusters[other].stats);
                clusters[keep].stats.absorb(stats);
                alive[other] = false;
                folded = true;
            }
        }
        if !folded {
            return;
        }
    }
}

/// One pattern and what it covers.
#[derive(Clone, Debug, PartialEq)]
pub struct PatternSummary {
    /// The template: literal text with `<_>` for the varying parts.
    pub pattern: String,
    pub count: u64,
    pub levels: BTreeMap<Level, u64>,
    pub services: BTreeMap<String, u64>,
    pub first_seen: Micros,
    pub last_seen: Micros,
    /// The id of the earliest message seen.
    pub example_id: String,
    /// (step start, count), every level together, for steps with logs.
    pub samples: Vec<(Micros, u64)>,
    /// The same per level (Loki's `patterns` answer is per level).
    pub samples_by_level: BTreeMap<Level, Vec<(Micros, u64)>>,
}

impl PatternSummary {
    fn new(pattern: String, stats: Stats, grid: Option<SampleGrid>) -> PatternSummary {
        let levels = Level::ALL
            .into_iter()
            .filter(|level| stats.levels[usize::from(level.code())] > 0)
            .map(|level| (level, stats.levels[usize::from(level.code())]))
            .collect();
        let mut samples: BTreeMap<Micros, u64> = BTreeMap::new();
        let mut samples_by_level: BTreeMap<Level, Vec<(Micros, u64)>> = BTreeMap::new();
        if let Some(grid) = grid {
            for ((step, code), count) in &stats.samples {
                let time = grid.start_micros + step * grid.step_micros;
                *samples.entry(time).or_default() += count;
                if let Some(level) = Level::from_code(*code) {
                    samples_by_level
                        .entry(level)
                        .or_default()
                        .push((time, *count));
                }
            }
        }
        for points in samples_by_level.values_mut() {
            points.sort();
        }
        PatternSummary {
            pattern,
            count: stats.count,
            levels,
            services: stats.services,
            first_seen: stats.first_seen,
            last_seen: stats.last_seen,
            example_id: stats.example_id,
            samples: samples.into_iter().collect(),
            samples_by_level,
        }
    }
}

/// `/api/patterns`' item: `{"pattern", "count", "levels", "services",
/// "first_seen", "last_seen", "example_id", "samples": [[ms, count], …]}`.
impl Serialize for PatternSummary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Samples<'a>(&'a [(Micros, u64)]);
        impl Serialize for Samples<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut list = serializer.serialize_seq(Some(self.0.len()))?;
                for (time, count) in self.0 {
                    list.serialize_element(&(time.div_euclid(1000), count))?;
                }
                list.end()
            }
        }
        let rfc3339 = |micros: Micros| {
            let mut text = String::new();
            write_rfc3339(&mut text, micros);
            text
        };
        let mut map = serializer.serialize_map(Some(8))?;
        map.serialize_entry("pattern", &self.pattern)?;
        map.serialize_entry("count", &self.count)?;
        map.serialize_entry("levels", &self.levels)?;
        map.serialize_entry("services", &self.services)?;
        map.serialize_entry("first_seen", &rfc3339(self.first_seen))?;
        map.serialize_entry("last_seen", &rfc3339(self.last_seen))?;
        map.serialize_entry("example_id", &self.example_id)?;
        map.serialize_entry("samples", &Samples(&self.samples))?;
        map.end()
    }
}
