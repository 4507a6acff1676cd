//! Time windows for newest-first (and oldest-first) pages.
//!
//! A page of the newest 100 logs must not make the server sort every row in
//! the range. The store reads the range in windows instead, starting at the
//! edge the order begins from and widening each time: the first window is
//! sized to hold about [`Stepping::first_rows`] logs at the range's
//! density, each next one is [`Stepping::growth`] times wider, and stepping
//! stops as soon as the page is full. A page that an unfiltered store fills
//! from its newest few thousand rows reads those rows and little else; a
//! word in no log still reads everything, once, in a handful of statements.
//!
//! Windows are half-open `[start, end)` timestamp ranges that tile the range
//! without overlap, so every log (and every group of logs sharing one
//! timestamp) lies in exactly one window, and ordering by `(ts_us, id)`
//! inside each window, window after window, is the order of the whole range.
//! This module is pure: the store supplies the extent and runs the windows.

use crate::domain::time::Micros;
use crate::store::filter::{LogFilter, Order};

/// Where the data is, as far as the server's part metadata tells cheaply:
/// each part's rows and the first and last second it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extent {
    pub parts: Vec<PartSpan>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartSpan {
    pub rows: u64,
    /// The part's logs lie in `[start, end)`.
    pub start: Micros,
    pub end: Micros,
}

impl Extent {
    /// The part of `[from, to)` that can hold data, and the rows per
    /// microsecond there (at least a tiny positive density).
    fn clip(&self, from: Micros, to: Micros) -> Option<(Micros, Micros, f64)> {
        let mut start = Micros::MAX;
        let mut end = Micros::MIN;
        let mut rows = 0u64;
        for part in &self.parts {
            if part.rows == 0 || part.end <= from || part.start >= to {
                continue;
            }
            start = start.min(part.start.max(from));
            end = end.max(part.end.min(to));
            rows += part.rows;
        }
        (start < end).then(|| {
            let density = rows as f64 / (end - start) as f64;
            (start, end, density.max(f64::MIN_POSITIVE))
        })
    }
}

/// How windows grow. The defaults suit a server scanning a few hundred
/// thousand rows in a millisecond or two.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stepping {
    /// Logs the first window of an unfiltered page is sized to hold.
    pub first_rows: u64,
    /// The same with a filter: its pages read the filter's columns first
    /// and whole rows only for the page (see `sql::window_page`), so a wide
    /// first window is cheap and saves statements when matches are rare.
    pub filtered_first_rows: u64,
    /// Each window is at least this many times wider than the one before…
    pub growth: i64,
    /// …and at most this many: after an empty window, or as many as the
    /// matches seen so far say the rest of the page needs (with a margin).
    pub max_growth: i64,
    /// A fixed first width instead of one derived from the density (tests
    /// use it to put window edges where they want them).
    pub first_width: Option<Micros>,
}

impl Default for Stepping {
    fn default() -> Self {
        Stepping {
            first_rows: 4096,
            filtered_first_rows: 65_536,
            growth: 2,
            max_growth: 16,
            first_width: None,
        }
    }
}

impl Stepping {
    /// The stepping for a page with `filter` whose scope holds `share` (in
    /// `(0, 1]`) of the logs the extent counts. Unfiltered, its first
    /// window holds about `first_rows` of the scope's own logs (see
    /// `shares.rs`): for a tenant of 0.5% among 100, one window of 14 ms
    /// (p95) where capped at `filtered_first_rows` it took 24. A filtered
    /// page's first window is wide already and not scaled: scaled, a small
    /// tenant's spanned the whole week and read a granule of every part
    /// (80 ms, where stepping from the unscaled one took 39).
    pub fn for_page(self, filter: &LogFilter, share: f64) -> Stepping {
        let first_rows = if super::conditions::narrows_beyond_scope(filter) {
            self.filtered_first_rows
        } else {
            let rows = self.first_rows as f64 / share.clamp(f64::MIN_POSITIVE, 1.0);
            rows.min(u64::MAX as f64 / 2.0) as u64
        };
        Stepping { first_rows, ..self }
    }
}

/// The windows of one page query, in the order they must be read.
#[derive(Clone, Debug)]
pub struct Windows {
    order: Order,
    /// What is left to read: `[low, high)`.
    low: Micros,
    high: Micros,
    /// The width of the next window.
    width: Micros,
    growth: i64,
    max_growth: i64,
}

impl Windows {
    /// Windows over `[from, to)` clipped to `extent`; none when no data can
    /// be there.
    pub fn new(
        extent: &Extent,
        from: Micros,
        to: Micros,
        order: Order,
        need: u64,
        stepping: Stepping,
    ) -> Windows {
        let (low, high, width) = match extent.clip(from, to) {
            Some((low, high, density)) => {
                let rows = stepping.first_rows.max(need) as f64;
                let width = stepping
                    .first_width
                    .unwrap_or_else(|| (rows / density).min(i64::MAX as f64 / 2.0) as Micros);
                (low, high, width.max(1))
            }
            None => (0, 0, 1),
        };
        let growth = stepping.growth.max(1);
        Windows {
            order,
            low,
            high,
            width,
            growth,
            max_growth: stepping.max_growth.max(growth),
        }
    }

    /// The last window held `matched` logs and the page still needs
    /// `missing`: the next window is sized to hold them, by the rate seen
    /// (half as many again, for luck), within the growth bounds.
    pub fn found(&mut self, matched: u64, missing: u64) {
        let wanted = if matched == 0 {
            self.max_growth
        } else {
            let ratio = (missing as f64 * 1.5 / matched as f64).ceil();
            (ratio.min(self.max_growth as f64) as i64).max(self.growth)
        };
        self.width = self.width.saturating_mul(wanted);
    }

    /// The next window to read, `[start, end)`, or `None` once the range is
    /// covered. Call [`Windows::found`] after reading each one.
    pub fn next_window(&mut self) -> Option<(Micros, Micros)> {
        if self.low >= self.high {
            return None;
        }
        let width = self.width.min(self.high - self.low);
        Some(match self.order {
            Order::Desc => {
                let start = self.high - width;
                let window = (start, self.high);
                self.high = start;
                window
            }
            Order::Asc => {
                let end = self.low + width;
                let window = (self.low, end);
                self.low = end;
                window
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Micros = 1_000_000;
    const DAY: Micros = 86_400 * SECOND;
    /// 2025-01-01T00:00:00Z.
    const T0: Micros = 1_735_689_600_000_000;

    /// Every window, as if each held nothing.
    fn all(mut windows: Windows) -> Vec<(Micros, Micros)> {
        std::iter::from_fn(|| {
            let window = windows.next_window()?;
            windows.found(0, 1);
            Some(window)
        })
        .collect()
    }

    fn doubling(width: Micros) -> Stepping {
        Stepping {
            first_width: Some(width),
            growth: 2,
            max_growth: 2,
            ..Stepping::default()
        }
    }

    fn part(rows: u64, start: Micros, end: Micros) -> PartSpan {
        PartSpan { rows, start, end }
    }

    #[test]
    fn windows_tile_the_range_from_the_edge_without_gaps() {
        let extent = Extent {
            parts: vec![part(10, T0, T0 + DAY), part(10, T0 + DAY, T0 + 2 * DAY)],
        };
        let (from, to) = (T0 + 5, T0 + DAY + 100 * SECOND);
        let desc = all(Windows::new(
            &extent,
            from,
            to,
            Order::Desc,
            1,
            doubling(SECOND),
        ));
        assert_eq!(desc[0], (to - SECOND, to));
        assert_eq!(desc[1], (to - 3 * SECOND, to - SECOND));
        assert_eq!(desc.last().unwrap().0, from);
        for pair in desc.windows(2) {
            assert_eq!(pair[1].1, pair[0].0, "adjacent, no gap or overlap");
        }
        let asc = all(Windows::new(
            &extent,
            from,
            to,
            Order::Asc,
            1,
            doubling(SECOND),
        ));
        assert_eq!(asc[0], (from, from + SECOND));
        assert_eq!(asc[1], (from + SECOND, from + 3 * SECOND));
        assert_eq!(asc.last().unwrap().1, to);
        for pair in asc.windows(2) {
            assert_eq!(pair[0].1, pair[1].0);
        }
    }

    #[test]
    fn open_ranges_are_clipped_to_the_seconds_that_hold_data() {
        let extent = Extent {
            parts: vec![
                part(5, T0 + 3 * DAY, T0 + 3 * DAY + 7 * SECOND),
                part(7, T0 + 10 * SECOND, T0 + 20 * SECOND),
                part(0, T0 + 9 * DAY, T0 + 10 * DAY),
            ],
        };
        let windows = all(Windows::new(
            &extent,
            0,
            Micros::MAX,
            Order::Desc,
            100,
            Stepping::default(),
        ));
        assert_eq!(windows.first().unwrap().1, T0 + 3 * DAY + 7 * SECOND);
        assert_eq!(windows.last().unwrap().0, T0 + 10 * SECOND);
        let between = Windows::new(&extent, T0 + DAY, T0 + 2 * DAY, Order::Asc, 1, doubling(1));
        assert!(all(between).is_empty());
        let nothing = Windows::new(
            &Extent::default(),
            0,
            Micros::MAX,
            Order::Asc,
            1,
            doubling(1),
        );
        assert!(all(nothing).is_empty());
    }

    #[test]
    fn the_first_window_holds_about_first_rows_at_the_density() {
        // 86,400 logs in a day: one a second.
        let extent = Extent {
            parts: vec![part(86_400, T0, T0 + DAY)],
        };
        let stepping = Stepping {
            first_rows: 60,
            ..Stepping::default()
        };
        let mut windows = Windows::new(&extent, 0, Micros::MAX, Order::Desc, 10, stepping);
        assert_eq!(
            windows.next_window(),
            Some((T0 + DAY - 60 * SECOND, T0 + DAY))
        );
        // A page larger than first_rows gets a first window to match.
        let mut windows = Windows::new(&extent, 0, Micros::MAX, Order::Desc, 600, stepping);
        assert_eq!(windows.next_window().unwrap().0, T0 + DAY - 600 * SECOND);
        // A scope holding a tenth of the logs gets a window ten times as
        // wide: about as many of its own logs.
        let mut windows = Windows::new(
            &extent,
            0,
            Micros::MAX,
            Order::Desc,
            10,
            stepping.for_page(&LogFilter::default(), 0.1),
        );
        assert_eq!(windows.next_window().unwrap().0, T0 + DAY - 600 * SECOND);
        assert_eq!(stepping.for_page(&LogFilter::default(), 1.0), stepping);
        let errors = LogFilter {
            levels: Some(crate::domain::LevelSet::parse_list("error").unwrap()),
            ..LogFilter::default()
        };
        assert_eq!(
            stepping.for_page(&errors, 0.1).first_rows,
            stepping.filtered_first_rows,
            "a filtered page's first window is not scaled"
        );
        // Empty windows grow fast: few statements reach across a long range.
        assert!(
            all(Windows::new(
                &extent,
                0,
                Micros::MAX,
                Order::Desc,
                1,
                stepping
            ))
            .len()
                <= 5
        );
    }

    #[test]
    fn the_next_window_is_sized_by_the_matches_seen() {
        let extent = Extent {
            parts: vec![part(86_400, T0, T0 + DAY)],
        };
        let stepping = Stepping {
            first_width: Some(10 * SECOND),
            ..Stepping::default()
        };
        let width = |matched, missing| {
            let mut windows = Windows::new(&extent, T0, T0 + DAY, Order::Asc, 1, stepping);
            windows.next_window();
            windows.found(matched, missing);
            let (start, end) = windows.next_window().unwrap();
            (end - start) / SECOND
        };
        assert_eq!(width(10, 20), 30, "3 times: twice the matches, and a half");
        assert_eq!(width(50, 1), 20, "at least the least growth");
        assert_eq!(width(1, 1000), 160, "at most the most");
        assert_eq!(width(0, 5), 160, "an empty window: the most");
    }
}
