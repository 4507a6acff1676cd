//! Any query string against every `/api/*` parameter parser: a query model
//! or an error naming a parameter, never a panic; accepted values obey the
//! limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oglogstream::query::params;

fuzz_target!(|data: &[u8]| {
    let Ok(query_string) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pairs) = params::decode(query_string) else {
        return;
    };
    let scope = oglogstream::store::filter::Scope::default();
    if let Ok(query) = params::log_query(&pairs, &scope) {
        assert!((1..=params::MAX_LIMIT).contains(&query.limit));
        assert!(query.offset <= params::MAX_OFFSET);
    }
    let _ = params::filter_only(&pairs, &scope);
    let _ = params::services_query(&pairs, &scope);
    let _ = params::live_filter(&pairs, &["api_key"], &scope);
    if let Ok(histogram) = params::histogram_query(&pairs, 1_790_000_000_000_000, &scope) {
        let (from, to) = histogram.filter.bounds();
        assert!(from < to && histogram.interval > 0);
        let first = from - from.rem_euclid(histogram.interval);
        assert!(params::ceil_div(to - first, histogram.interval) <= params::MAX_BUCKETS);
    }
});
