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
use crate::store::filter::Order;

/// Where the data is, as far as the server's part metadata tells cheaply:
/// whole UTC days (partitions) and the rows in each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extent {
    /// `(day start, rows)`, any order.
    pub days: Vec<(Micros, u64)>,
}

pub const DAY: Micros = 86_400_000_000;

impl Extent {
    /// The part of `[from, to)` that can hold data, and the rows per
    /// microsecond there (at least a tiny positive density).
    fn clip(&self, from: Micros, to: Micros) -> Option<(Micros, Micros, f64)> {
        let mut start = Micros::MAX;
        let mut end = Micros::MIN;
        let mut rows = 0u64;
        for &(day, n) in &self.days {
            let (day_start, day_end) = (day, day.saturating_add(DAY));
            if n == 0 || day_end <= from || day_start >= to {
                continue;
            }
            start = start.min(day_start.max(from));
            end = end.max(day_end.min(to));
            rows += n;
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
    /// Logs the first window is sized to hold (before filters).
    pub first_rows: u64,
    /// Each window is this many times wider than the one before.
    pub growth: i64,
    /// A fixed first width instead of one derived from the density (tests
    /// use it to put window edges where they want them).
    pub first_width: Option<Micros>,
}

impl Default for Stepping {
    fn default() -> Self {
        Stepping {
            first_rows: 8192,
            growth: 4,
            first_width: None,
        }
    }
}

/// The windows of one page query, in the order they must be read.
#[derive(Clone, Debug)]
pub struct Windows {
    order: Order,
    /// What is left to read: `[low, high)`.
    low: Micros,
    high: Micros,
    width: Micros,
    growth: i64,
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
        Windows {
            order,
            low,
            high,
            width,
            growth: stepping.growth.max(2),
        }
    }

    /// The next window to read, `[start, end)`, or `None` once the range is
    /// covered.
    pub fn next_window(&mut self) -> Option<(Micros, Micros)> {
        if self.low >= self.high {
            return None;
        }
        let width = self.width.min(self.high - self.low);
        self.width = self.width.saturating_mul(self.growth);
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
    /// 2025-01-01T00:00:00Z.
    const T0: Micros = 1_735_689_600_000_000;

    fn all(mut windows: Windows) -> Vec<(Micros, Micros)> {
        std::iter::from_fn(|| windows.next_window()).collect()
    }

    fn fixed(width: Micros) -> Stepping {
        Stepping {
            first_width: Some(width),
            ..Stepping::default()
        }
    }

    #[test]
    fn windows_tile_the_range_from_the_edge_without_gaps() {
        let extent = Extent {
            days: vec![(T0, 10), (T0 + DAY, 10)],
        };
        let (from, to) = (T0 + 5, T0 + DAY + 100 * SECOND);
        let desc = all(Windows::new(
            &extent,
            from,
            to,
            Order::Desc,
            1,
            fixed(SECOND),
        ));
        assert_eq!(desc[0], (to - SECOND, to));
        assert_eq!(desc[1], (to - 5 * SECOND, to - SECOND));
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
            fixed(SECOND),
        ));
        assert_eq!(asc[0], (from, from + SECOND));
        assert_eq!(asc[1], (from + SECOND, from + 5 * SECOND));
        assert_eq!(asc.last().unwrap().1, to);
        for pair in asc.windows(2) {
            assert_eq!(pair[0].1, pair[1].0);
        }
    }

    #[test]
    fn open_ranges_are_clipped_to_the_days_that_hold_data() {
        let extent = Extent {
            days: vec![(T0 + 3 * DAY, 5), (T0, 7), (T0 + 9 * DAY, 0)],
        };
        let windows = all(Windows::new(
            &extent,
            0,
            Micros::MAX,
            Order::Desc,
            100,
            Stepping::default(),
        ));
        assert_eq!(windows.first().unwrap().1, T0 + 4 * DAY);
        assert_eq!(windows.last().unwrap().0, T0);
        assert!(
            all(Windows::new(
                &extent,
                T0 + 5 * DAY,
                T0 + 9 * DAY,
                Order::Asc,
                1,
                fixed(1)
            ))
            .is_empty()
        );
        assert!(
            all(Windows::new(
                &Extent::default(),
                0,
                Micros::MAX,
                Order::Asc,
                1,
                fixed(1)
            ))
            .is_empty()
        );
    }

    #[test]
    fn the_first_window_holds_about_first_rows_at_the_density() {
        // 86,400 logs in a day: one a second.
        let extent = Extent {
            days: vec![(T0, 86_400)],
        };
        let stepping = Stepping {
            first_rows: 60,
            ..Stepping::default()
        };
        let mut windows = Windows::new(&extent, 0, Micros::MAX, Order::Desc, 10, stepping);
        let (start, end) = windows.next_window().unwrap();
        assert_eq!((start, end), (T0 + DAY - 60 * SECOND, T0 + DAY));
        // A page larger than first_rows gets a first window to match.
        let mut windows = Windows::new(&extent, 0, Micros::MAX, Order::Desc, 600, stepping);
        assert_eq!(windows.next_window().unwrap().0, T0 + DAY - 600 * SECOND);
        // Growth is geometric: few statements reach across a long range.
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
                <= 6
        );
    }
}
