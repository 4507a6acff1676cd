//! Query-string parsing for `/api/*` and `/ws/live`: pure functions from
//! decoded pairs to the store's query model, every error naming its parameter.

use crate::domain::LevelSet;
use crate::domain::query::{self as language, Expr, FieldName, TextField};
use crate::domain::time::{MAX_MICROS, Micros, parse_instant};
use crate::store::filter::Scope;
use crate::store::{FacetQuery, HistogramQuery, LogFilter, LogQuery, Order};

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;
pub const MAX_OFFSET: usize = 1_000_000;
pub const MAX_TEXT_CHARS: usize = 1000;
pub const MAX_SERVICE_CHARS: usize = 100;
pub const MAX_BUCKETS: i64 = 2000;
const SECOND: Micros = 1_000_000;
const DAY: Micros = 86_400 * SECOND;

#[derive(Debug, PartialEq, Eq)]
pub struct ParamError {
    pub name: String,
    pub message: String,
    /// For `query`: the 1-based character column of the fault.
    pub position: Option<usize>,
}

pub(crate) fn error(name: &str, message: impl Into<String>) -> ParamError {
    ParamError {
        name: name.to_string(),
        message: message.into(),
        position: None,
    }
}

/// Decodes `a=1&b=2`; a malformed string is an error on `query`.
pub fn decode(query_string: &str) -> Result<Vec<(String, String)>, ParamError> {
    serde_urlencoded::from_str(query_string)
        .map_err(|e| error("query", format!("not valid URL encoding: {e}")))
}

/// The decoded parameters, checked against the names an endpoint accepts.
pub struct Params<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Params<'a> {
    pub fn new(pairs: &'a [(String, String)], accepted: &[&str]) -> Result<Params<'a>, ParamError> {
        for (name, _) in pairs {
            if !accepted.contains(&name.as_str()) {
                return Err(error(
                    name,
                    format!("unknown parameter; accepted here: {}", accepted.join(", ")),
                ));
            }
        }
        Ok(Params { pairs })
    }

    /// The single value of `name`; empty values count as absent.
    pub fn one(&self, name: &str) -> Result<Option<&'a str>, ParamError> {
        let mut values = self
            .pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty());
        let first = values.next();
        if values.next().is_some() {
            return Err(error(name, "given more than once"));
        }
        Ok(first)
    }

    pub fn number(
        &self,
        name: &str,
        default: usize,
        min: usize,
        max: usize,
    ) -> Result<usize, ParamError> {
        let Some(text) = self.one(name)? else {
            return Ok(default);
        };
        let value: usize = text.trim().parse().map_err(|_| {
            error(
                name,
                format!("expected a whole number from {min} to {max}, got {text:?}"),
            )
        })?;
        if value < min || value > max {
            return Err(error(
                name,
                format!("must be from {min} to {max}, got {value}"),
            ));
        }
        Ok(value)
    }

    fn instant(&self, name: &str) -> Result<Option<Micros>, ParamError> {
        self.one(name)?
            .map(|text| parse_instant(text.trim()).map_err(|e| error(name, e)))
            .transpose()
    }

    fn text(&self, name: &str, max_chars: usize) -> Result<Option<String>, ParamError> {
        let Some(text) = self.one(name)? else {
            return Ok(None);
        };
        if text.chars().count() > max_chars {
            return Err(error(name, format!("longer than {max_chars} characters")));
        }
        Ok(Some(text.to_lowercase()))
    }

    /// `query`, parsed by the query language; absent or blank matches all.
    fn expr(&self) -> Result<Expr, ParamError> {
        let Some(text) = self.one("query")? else {
            return Ok(Expr::everything());
        };
        language::parse(text).map_err(|e| ParamError {
            name: "query".into(),
            message: e.to_string(),
            position: Some(e.position),
        })
    }

    /// The order of rows, `desc` (newest first) by default.
    pub fn order(&self) -> Result<Order, ParamError> {
        match self.one("order")?.map(str::to_ascii_lowercase).as_deref() {
            None | Some("desc") => Ok(Order::Desc),
            Some("asc") => Ok(Order::Asc),
            Some(other) => Err(error(
                "order",
                format!("expected asc or desc, got {other:?}"),
            )),
        }
    }

    /// `level`, `service`, `q`, `from`, `to`, `query`. Repeated `level`
    /// values add up.
    /// `scope`: whose logs the request may read (from its key, session or
    /// tenant header); every filter carries it into the store.
    pub fn filter(&self, scope: &Scope) -> Result<LogFilter, ParamError> {
        let mut levels: Option<LevelSet> = None;
        for (_, value) in self.pairs.iter().filter(|(n, _)| n == "level") {
            if value.trim().is_empty() {
                continue;
            }
            let parsed = LevelSet::parse_list(value).map_err(|e| error("level", e))?;
            let set = levels.get_or_insert_with(LevelSet::default);
            parsed.iter().for_each(|level| set.insert(level));
        }
        let filter = LogFilter {
            levels,
            service: self.text("service", MAX_SERVICE_CHARS)?,
            text: self.text("q", MAX_TEXT_CHARS)?,
            from: self.instant("from")?,
            to: self.instant("to")?,
            expr: self.expr()?,
            scope: scope.clone(),
        };
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && from > to
        {
            return Err(error("to", "must not be before from"));
        }
        Ok(filter)
    }
}

pub const FILTER_PARAMS: &[&str] = &["level", "service", "q", "from", "to", "query"];

/// `/api/logs`: the filters, `limit`, `order` and either `offset` or a
/// `cursor` (checked against the filters and order it was made for).
pub fn log_query(pairs: &[(String, String)], scope: &Scope) -> Result<LogQuery, ParamError> {
    let params = Params::new(
        pairs,
        &[FILTER_PARAMS, &["limit", "offset", "order", "cursor"]].concat(),
    )?;
    let filter = params.filter(scope)?;
    let order = params.order()?;
    let after = match params.one("cursor")? {
        None => None,
        Some(_) if params.one("offset")?.is_some() => {
            return Err(error(
                "cursor",
                "cannot be combined with offset: a cursor already says where the page starts; drop offset",
            ));
        }
        Some(token) => {
            Some(super::cursor::decode(token, &filter, order).map_err(|e| error("cursor", e))?)
        }
    };
    Ok(LogQuery {
        limit: params.number("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?,
        offset: params.number("offset", 0, 0, MAX_OFFSET)?,
        filter,
        order,
        after,
    })
}

/// Fields a facet query may name at most.
pub const MAX_FACET_FIELDS: usize = 50;
/// Attribute columns a CSV export may name at most.
pub const MAX_EXPORT_COLUMNS: usize = 64;
pub const MAX_EXPORT_LIMIT: usize = 100_000_000;
pub const MAX_CONTEXT: usize = 500;

/// A comma list (`fields=level,region`): trimmed, empty entries dropped,
/// duplicates dropped.
fn name_list(params: &Params, name: &str, most: usize) -> Result<Option<Vec<String>>, ParamError> {
    let Some(text) = params.one(name)? else {
        return Ok(None);
    };
    let mut names: Vec<String> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if !names.iter().any(|n| n == entry) {
            names.push(entry.to_string());
        }
    }
    if names.len() > most {
        return Err(error(
            name,
            format!("at most {most} names, got {}", names.len()),
        ));
    }
    Ok(Some(names).filter(|names| !names.is_empty()))
}

/// `/api/facets`: the filters, `fields` and `limit` (values per field).
pub fn facet_query(pairs: &[(String, String)], scope: &Scope) -> Result<FacetQuery, ParamError> {
    let params = Params::new(pairs, &[FILTER_PARAMS, &["fields", "limit"]].concat())?;
    let fields = name_list(&params, "fields", MAX_FACET_FIELDS)?
        .map(|names| {
            names
                .iter()
                .map(|name| match FieldName::parse_reference(name) {
                    FieldName::Text(TextField::Message | TextField::Id) => Err(error(
                        "fields",
                        format!(
                            "{name:?} has a different value on nearly every log: facet level, service or attributes (@{name} for an attribute of that name)"
                        ),
                    )),
                    FieldName::Text(TextField::Attribute(key)) if key.is_empty() => {
                        Err(error("fields", "@ must be followed by an attribute name"))
                    }
                    field => Ok(field),
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(FacetQuery {
        filter: params.filter(scope)?,
        fields,
        limit: params.number("limit", 10, 1, 100)?,
    })
}

/// How `/api/export` writes rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    /// `columns`: one column per named attribute instead of `attributes`.
    Csv {
        columns: Option<Vec<String>>,
    },
}

/// What `/api/export` streams.
#[derive(Debug)]
pub struct ExportQuery {
    pub filter: LogFilter,
    pub order: Order,
    pub format: Format,
    /// Rows at most; every matching row when absent.
    pub limit: Option<u64>,
}

/// `/api/export`: the filters, `order`, `format` (`ndjson`, the default, or
/// `csv`), `limit` and, for CSV, `columns`.
pub fn export_query(pairs: &[(String, String)], scope: &Scope) -> Result<ExportQuery, ParamError> {
    let params = Params::new(
        pairs,
        &[FILTER_PARAMS, &["format", "order", "limit", "columns"]].concat(),
    )?;
    let columns = name_list(&params, "columns", MAX_EXPORT_COLUMNS)?.map(|names| {
        names
            .into_iter()
            .map(|name| name.strip_prefix('@').map(str::to_string).unwrap_or(name))
            .collect::<Vec<_>>()
    });
    let format = match params
        .one("format")?
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("ndjson") => {
            if columns.is_some() {
                return Err(error(
                    "columns",
                    "only for format=csv: NDJSON rows carry every attribute",
                ));
            }
            Format::Ndjson
        }
        Some("csv") => Format::Csv { columns },
        Some(other) => {
            return Err(error(
                "format",
                format!("expected ndjson or csv, got {other:?}"),
            ));
        }
    };
    let limit = match params.one("limit")? {
        None => None,
        Some(_) => Some(params.number("limit", 0, 1, MAX_EXPORT_LIMIT)? as u64),
    };
    Ok(ExportQuery {
        filter: params.filter(scope)?,
        order: params.order()?,
        format,
        limit,
    })
}

/// What `/api/logs/{id}/context` reads around the log.
#[derive(Debug)]
pub struct ContextQuery {
    pub filter: LogFilter,
    pub before: usize,
    pub after: usize,
    /// `scope=all`: every service, not only the log's own.
    pub all_services: bool,
}

pub fn context_query(
    pairs: &[(String, String)],
    scope: &Scope,
) -> Result<ContextQuery, ParamError> {
    let params = Params::new(
        pairs,
        &[FILTER_PARAMS, &["before", "after", "scope"]].concat(),
    )?;
    let all_services = match params.one("scope")?.map(str::to_ascii_lowercase).as_deref() {
        None | Some("service") => false,
        Some("all") => true,
        Some(other) => {
            return Err(error(
                "scope",
                format!("expected service or all, got {other:?}"),
            ));
        }
    };
    Ok(ContextQuery {
        filter: params.filter(scope)?,
        before: params.number("before", 20, 0, MAX_CONTEXT)?,
        after: params.number("after", 20, 0, MAX_CONTEXT)?,
        all_services,
    })
}

pub fn filter_only(pairs: &[(String, String)], scope: &Scope) -> Result<LogFilter, ParamError> {
    Params::new(pairs, FILTER_PARAMS)?.filter(scope)
}

/// `/api/services`: the filters plus a `limit` on the number of services.
pub fn services_query(
    pairs: &[(String, String)],
    scope: &Scope,
) -> Result<(LogFilter, usize), ParamError> {
    let params = Params::new(pairs, &[FILTER_PARAMS, &["limit"]].concat())?;
    Ok((
        params.filter(scope)?,
        params.number("limit", 100, 1, 10_000)?,
    ))
}

/// `/ws/live`: `level`, `service`, `q` and `query` (time bounds make no
/// sense live).
pub fn live_filter(
    pairs: &[(String, String)],
    extra: &[&str],
    scope: &Scope,
) -> Result<LogFilter, ParamError> {
    Params::new(
        pairs,
        &[&["level", "service", "q", "query"], extra].concat(),
    )?
    .filter(scope)
}

/// Nice bucket widths, in seconds, for automatic histogram intervals.
const NICE_INTERVALS: &[i64] = &[
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
    172_800, 604_800, 2_592_000,
];
const TARGET_BUCKETS: i64 = 120;

/// `from`/`to` default to the last 24 hours; `interval` (`30s`, `5m`, `1h`,
/// `1d`) defaults to a nice width giving at most about 120 buckets.
pub fn histogram_query(
    pairs: &[(String, String)],
    now: Micros,
    scope: &Scope,
) -> Result<HistogramQuery, ParamError> {
    let params = Params::new(pairs, &[FILTER_PARAMS, &["interval", "by"]].concat())?;
    let mut filter = params.filter(scope)?;
    let to = filter.to.unwrap_or(now.min(MAX_MICROS - SECOND) + 1);
    let from = filter.from.unwrap_or((to - DAY).max(0));
    if from >= to {
        return Err(error("from", "must be before to"));
    }
    let span = to - from;
    let interval = match params.one("interval")? {
        Some(text) => parse_interval(text).map_err(|e| error("interval", e))?,
        None => NICE_INTERVALS
            .iter()
            .map(|s| s * SECOND)
            .find(|width| ceil_div(span, *width) <= TARGET_BUCKETS)
            .unwrap_or(*NICE_INTERVALS.last().unwrap_or(&86_400) * SECOND),
    };
    let first_bucket = from - from.rem_euclid(interval);
    if ceil_div(to - first_bucket, interval) > MAX_BUCKETS {
        return Err(error(
            "interval",
            format!(
                "too small for the range: at most {MAX_BUCKETS} buckets; widen it or narrow from/to"
            ),
        ));
    }
    filter.from = Some(from);
    filter.to = Some(to);
    Ok(HistogramQuery { filter, interval })
}

/// `/api/histogram`'s `by`: the field the counts split by (`level`,
/// `service` or an attribute, `@name` for one named like a field).
pub fn histogram_split(pairs: &[(String, String)]) -> Result<Option<FieldName>, ParamError> {
    let params = Params::new(pairs, &[FILTER_PARAMS, &["interval", "by"]].concat())?;
    let Some(name) = params.one("by")? else {
        return Ok(None);
    };
    match FieldName::parse_reference(name.trim()) {
        FieldName::Text(TextField::Message | TextField::Id) => Err(error(
            "by",
            format!(
                "{name:?} differs on nearly every log: split by level, service or an attribute (@{name} for an attribute of that name)"
            ),
        )),
        FieldName::Text(TextField::Attribute(key)) if key.is_empty() => {
            Err(error("by", "@ must be followed by an attribute name"))
        }
        field => Ok(Some(field)),
    }
}

/// `/api/patterns`: the filters, `limit` (patterns listed, 50 by default).
pub fn patterns_query(
    pairs: &[(String, String)],
    scope: &Scope,
) -> Result<(LogFilter, usize), ParamError> {
    let params = Params::new(pairs, &[FILTER_PARAMS, &["limit"]].concat())?;
    Ok((params.filter(scope)?, params.number("limit", 50, 1, 1000)?))
}

/// Ceiling division for positive divisors (`i64::div_ceil` is unstable).
pub fn ceil_div(value: i64, divisor: i64) -> i64 {
    value.div_euclid(divisor) + i64::from(value.rem_euclid(divisor) != 0)
}

/// `10s`, `5m`, `1h`, `1d`, `1w`: a whole number and a unit, at least 1s.
pub fn parse_interval(text: &str) -> Result<Micros, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| {
        format!("expected a number and a unit such as 30s, 5m, 1h or 1d, got {text:?}")
    })?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| {
        format!("expected a number and a unit such as 30s, 5m, 1h or 1d, got {text:?}")
    })?;
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h, d or w")),
    };
    let seconds = number
        .checked_mul(unit_seconds)
        .filter(|s| (1..=366 * 86_400).contains(s))
        .ok_or_else(|| "must be from 1s to 366d".to_string())?;
    Ok(seconds * SECOND)
}

/// `90s` -> `90s`, `300s` -> `5m`: the label the API answers with.
pub fn format_interval(interval: Micros) -> String {
    let seconds = interval / SECOND;
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Level;

    fn pairs(query: &str) -> Vec<(String, String)> {
        decode(query).unwrap()
    }

    #[test]
    fn log_query_defaults_and_filters() {
        let query = log_query(&pairs(""), &Scope::default()).unwrap();
        assert_eq!(
            (query.limit, query.offset, query.order),
            (100, 0, Order::Desc)
        );
        let query = log_query(&pairs("level=ERROR,warn&service=Pay&q=Time%20Out&from=1000&to=2025-01-01T00:00:00Z&limit=5&offset=10&order=asc"), &Scope::default()).unwrap();
        let levels = query.filter.levels.unwrap();
        assert!(
            levels.contains(Level::Error)
                && levels.contains(Level::Warn)
                && !levels.contains(Level::Info)
        );
        assert_eq!(query.filter.service.as_deref(), Some("pay"));
        assert_eq!(query.filter.text.as_deref(), Some("time out"));
        assert_eq!(query.filter.from, Some(1_000_000));
        assert_eq!(query.order, Order::Asc);
    }

    #[test]
    fn bad_parameters_are_named() {
        for (query, name) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=ten", "limit"),
            ("offset=-1", "offset"),
            ("order=up", "order"),
            ("level=loud", "level"),
            ("from=yesterday", "from"),
            ("from=2000&to=1000", "to"),
            ("levle=info", "levle"),
            ("limit=1&limit=2", "limit"),
        ] {
            assert_eq!(
                log_query(&pairs(query), &Scope::default())
                    .unwrap_err()
                    .name,
                name,
                "{query}"
            );
        }
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(
            log_query(&pairs(&format!("q={long}")), &Scope::default())
                .unwrap_err()
                .name,
            "q"
        );
    }

    #[test]
    fn repeated_levels_combine_and_empty_values_are_absent() {
        let query = log_query(
            &pairs("level=info&level=fatal&q=&service="),
            &Scope::default(),
        )
        .unwrap();
        assert!(query.filter.levels.unwrap().contains(Level::Fatal));
        assert_eq!(query.filter.text, None);
        assert_eq!(query.filter.service, None);
    }

    #[test]
    fn histogram_intervals() {
        let hour = 3600 * SECOND;
        let query = histogram_query(&pairs("from=0&to=3600000"), 0, &Scope::default()).unwrap();
        assert_eq!(query.interval, 30 * SECOND, "1 h / 30 s = 120 buckets");
        let query = histogram_query(
            &pairs("from=0&to=3600000&interval=5m"),
            0,
            &Scope::default(),
        )
        .unwrap();
        assert_eq!(query.interval, 300 * SECOND);
        assert_eq!(
            histogram_query(
                &pairs("from=0&to=86400000&interval=1s"),
                0,
                &Scope::default()
            )
            .unwrap_err()
            .name,
            "interval"
        );
        assert_eq!(
            histogram_query(&pairs("interval=5x"), hour, &Scope::default())
                .unwrap_err()
                .name,
            "interval"
        );
        let query = histogram_query(&pairs(""), 10 * DAY, &Scope::default()).unwrap();
        assert_eq!(query.filter.to.unwrap() - query.filter.from.unwrap(), DAY);
        assert_eq!(format_interval(300 * SECOND), "5m");
        assert_eq!(
            histogram_split(&pairs("by=@level")).unwrap(),
            Some(FieldName::Text(TextField::Attribute("level".into())))
        );
        assert_eq!(
            histogram_split(&pairs("by=service")).unwrap(),
            Some(FieldName::Text(TextField::Service))
        );
        assert_eq!(
            histogram_split(&pairs("by=message")).unwrap_err().name,
            "by"
        );
        assert_eq!(histogram_split(&pairs("")).unwrap(), None);
        assert_eq!(format_interval(90 * SECOND), "90s");
    }
}
