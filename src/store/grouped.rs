//! Counts grouped by time bucket and by any of level, service and one
//! attribute: the one counting capability behind LogQL's metric queries
//! (`sum by (…) (count_over_time(…))`), Drilldown's volumes and the
//! dashboard's "split by" histogram (`/api/histogram?by=`).
//!
//! What a store must answer (both stores; the contract test counts every
//! log in memory and compares):
//! - the logs matching `filter` (its time range included), counted per
//!   bucket `[b, b + interval)` with `b = origin + k * interval` (any whole
//!   `k`), or over the whole range when there is no interval;
//! - per distinct value of each dimension asked for; a dimension not asked
//!   for is `None` in every row. An attribute dimension's value is that of
//!   the first of its keys a log has, `None` when it has none;
//! - with `limit_groups = Some(n)`: the `n` groups (the dimension values
//!   together) with the most logs over the whole range (ties by the values'
//!   order) keep their rows; the logs of every other group are summed into
//!   rows marked `other`, per bucket;
//! - rows summed (one per bucket and group), no zero counts, ordered by
//!   bucket, then group ([`GroupedCount::normalize`]).
//!
//! Stores read their minute and hour rollups when the filter tests only
//! levels and services (`LogFilter::countable_by_level_and_service`), the
//! dimensions are level and service only and the buckets are whole
//! rollup buckets (`interval` and `origin` multiples of the grain); else
//! they count matching rows in the store, never shipping rows out.

use super::filter::LogFilter;
use crate::domain::Level;
use crate::domain::time::Micros;
use std::collections::{BTreeMap, HashMap};

/// What counts are grouped by, besides time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dimension {
    Level,
    Service,
    /// An attribute: the value of the first of these keys (in this order)
    /// that a log has. One key for most callers; LogQL names a label that
    /// several keys sanitize to (`http.status`, `http_status`).
    Attribute(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct GroupedCountQuery {
    /// The logs to count; `from`/`to` bound the range (open ends count
    /// everything, like every other read).
    pub filter: LogFilter,
    /// Bucket width; `None`: one bucket for the whole range.
    pub interval: Option<Micros>,
    /// Buckets start at `origin + k * interval` (ignored without an
    /// interval).
    pub origin: Micros,
    /// At most one `Attribute`; each dimension at most once.
    pub group_by: Vec<Dimension>,
    /// Keep the `n` largest groups, sum the rest as `other`.
    pub limit_groups: Option<usize>,
}

impl GroupedCountQuery {
    /// The attribute dimension's keys, if any.
    pub fn attribute_keys(&self) -> Option<&[String]> {
        self.group_by.iter().find_map(|dimension| match dimension {
            Dimension::Attribute(keys) => Some(keys.as_slice()),
            _ => None,
        })
    }

    pub fn by_level(&self) -> bool {
        self.group_by.contains(&Dimension::Level)
    }

    pub fn by_service(&self) -> bool {
        self.group_by.contains(&Dimension::Service)
    }

    /// The start of the bucket holding `timestamp`: `filter.from` (or 0)
    /// without an interval.
    pub fn bucket_of(&self, timestamp: Micros) -> Micros {
        match self.interval {
            Some(interval) if interval > 0 => {
                let since = timestamp.saturating_sub(self.origin);
                self.origin
                    .saturating_add(since.div_euclid(interval).saturating_mul(interval))
            }
            _ => self.filter.bounds().0,
        }
    }

    /// Whether a rollup of buckets `[b, b + grain)` (`b` a multiple of
    /// `grain`) can serve these buckets: each rollup bucket lies inside one
    /// of ours.
    pub fn tiled_by(&self, grain: Micros) -> bool {
        match self.interval {
            None => true,
            Some(interval) => interval % grain == 0 && self.origin.rem_euclid(grain) == 0,
        }
    }

    /// Whether the rollups keyed by (time, level, service) can count this.
    pub fn countable_from_rollups(&self) -> bool {
        self.filter.countable_by_level_and_service() && self.attribute_keys().is_none()
    }
}

/// One bucket's count for one group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupedCount {
    pub bucket_start: Micros,
    /// The logs of the groups beyond `limit_groups`, summed; the dimension
    /// values are then `None`.
    pub other: bool,
    pub level: Option<Level>,
    pub service: Option<String>,
    pub attribute: Option<String>,
    pub count: u64,
}

/// A group: the dimension values of a row.
type GroupKey = (Option<Level>, Option<String>, Option<String>);

impl GroupedCount {
    fn group(&self) -> GroupKey {
        (self.level, self.service.clone(), self.attribute.clone())
    }

    /// Rows that may name a (bucket, group) more than once (a store sums
    /// several sources): added up, zero counts left out, the group limit
    /// applied, ordered by bucket then group.
    pub fn normalize(rows: Vec<GroupedCount>, limit_groups: Option<usize>) -> Vec<GroupedCount> {
        let mut cells: BTreeMap<(Micros, bool, GroupKey), u64> = BTreeMap::new();
        for row in rows {
            if row.count == 0 {
                continue;
            }
            *cells
                .entry((row.bucket_start, row.other, row.group()))
                .or_default() += row.count;
        }
        if let Some(limit) = limit_groups {
            let mut totals: HashMap<&GroupKey, u64> = HashMap::new();
            for ((_, other, group), count) in &cells {
                if !*other {
                    *totals.entry(group).or_default() += count;
                }
            }
            let mut ranked: Vec<(&GroupKey, u64)> = totals.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            if ranked.len() > limit {
                let kept: std::collections::HashSet<GroupKey> = ranked
                    .iter()
                    .take(limit)
                    .map(|(group, _)| (*group).clone())
                    .collect();
                let mut limited: BTreeMap<(Micros, bool, GroupKey), u64> = BTreeMap::new();
                for ((bucket, other, group), count) in cells {
                    let key = if other || !kept.contains(&group) {
                        (bucket, true, (None, None, None))
                    } else {
                        (bucket, false, group)
                    };
                    *limited.entry(key).or_default() += count;
                }
                cells = limited;
            }
        }
        cells
            .into_iter()
            .map(
                |((bucket_start, other, (level, service, attribute)), count)| GroupedCount {
                    bucket_start,
                    other,
                    level,
                    service,
                    attribute,
                    count,
                },
            )
            .collect()
    }
}

/// The value of the first of `keys` present in `attributes`.
pub fn first_attribute<'a>(
    attributes: &'a crate::domain::Attributes,
    keys: &[String],
) -> Option<&'a str> {
    keys.iter()
        .find_map(|key| attributes.get(key))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bucket: Micros, attribute: &str, count: u64) -> GroupedCount {
        GroupedCount {
            bucket_start: bucket,
            other: false,
            level: None,
            service: None,
            attribute: Some(attribute.to_string()),
            count,
        }
    }

    #[test]
    fn buckets_start_at_the_origin() {
        let query = GroupedCountQuery {
            filter: LogFilter::default(),
            interval: Some(60),
            origin: 7,
            group_by: Vec::new(),
            limit_groups: None,
        };
        assert_eq!(query.bucket_of(7), 7);
        assert_eq!(query.bucket_of(66), 7);
        assert_eq!(query.bucket_of(67), 67);
        assert_eq!(query.bucket_of(6), -53);
        assert!(!query.tiled_by(60), "origin 7 is not on the minute");
        let aligned = GroupedCountQuery {
            origin: 120,
            interval: Some(300),
            ..query
        };
        assert!(aligned.tiled_by(60) && !aligned.tiled_by(120));
    }

    #[test]
    fn normalizing_sums_drops_zeros_and_limits_groups() {
        let rows = vec![
            row(0, "a", 1),
            row(0, "a", 2),
            row(60, "b", 5),
            row(0, "c", 1),
            row(60, "c", 1),
            row(0, "d", 0),
        ];
        let all = GroupedCount::normalize(rows.clone(), None);
        assert_eq!(all.len(), 4);
        assert_eq!(all[0], row(0, "a", 3));
        let limited = GroupedCount::normalize(rows, Some(1));
        assert_eq!(limited.len(), 3, "{limited:?}");
        assert!(limited[0].other);
        assert_eq!(limited[0].count, 4, "a and c in bucket 0");
        assert_eq!(limited[1], row(60, "b", 5));
        assert!(limited[2].other);
        assert_eq!(limited[2].count, 1, "c in bucket 60");
    }
}
