//! `patterns`: the selected logs' messages grouped into templates by the
//! domain's miner (`domain::patterns`), with per-step counts per level, as
//! Loki's pattern ingester answers Drilldown's Patterns tab. Mined at
//! query time from the newest `MAX_LINES` logs of the range (the counts
//! are exact below that).

use super::answer;
use super::error::LokiError;
use super::execute::{KeyResolver, for_each_raw_row, for_each_row, micros_from_start_end};
use super::params::{DEFAULT_SINCE, LokiParams, NANOS_PER_SECOND};
use super::request::{bounded, now_nanos};
use super::selection::parse_selection;
use crate::domain::logql::{LogQueryEvaluator, LogQueryOptions, Progress, Query};
use crate::domain::patterns::{MinerOptions, PatternMiner, PatternSummary, SampleGrid};
use crate::query::QueryState;
use crate::store::Store;
use crate::store::{LogFilter, Order};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// Lines mined at most per request, newest first.
pub const MAX_LINES: usize = 200_000;
/// Rows per store read.
const PAGE: usize = 5000;

pub async fn patterns(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, LokiError> {
    let params = LokiParams::read(&request, payload).await?;
    let store: &dyn Store = &state.scoped(&request);
    let selection = parse_selection(Some(params.query()?))?;
    let (start, end) = params.range(now_nanos(), DEFAULT_SINCE)?;
    let step = params
        .duration("step")?
        .filter(|step| *step > 0)
        .unwrap_or_else(|| super::params::default_step(start, end))
        .max(1000);
    let (from, to) = micros_from_start_end(start, end);
    let model = state.loki.label_model();
    let grid = SampleGrid {
        start_micros: from - from.rem_euclid(step / 1000),
        step_micros: step / 1000,
    };
    let patterns = bounded(&state, &request, async {
        let names = super::execute::names_to_resolve(&Query::Log(selection.clone()));
        let resolver = KeyResolver::for_names(store, &names, from, to).await?;
        let plan = selection.push_down(&|label| resolver.keys_for(label));
        let filter = LogFilter {
            expr: plan.expr,
            text: plan.text_hint,
            from: Some(from),
            to: Some(to),
            ..Default::default()
        };
        let mut miner = PatternMiner::new(MinerOptions {
            samples: Some(grid),
            ..MinerOptions::default()
        });
        let mut mined = 0usize;
        if plan.residual.is_empty() {
            for_each_raw_row(store, &filter, Order::Desc, PAGE, |row| {
                miner.add_message(
                    row.timestamp,
                    row.level,
                    &row.service,
                    &row.id,
                    &row.message,
                );
                mined += 1;
                mined < MAX_LINES
            })
            .await?;
        } else {
            // Stages that must run on rows decide which rows count.
            let options = LogQueryOptions {
                limit: 1,
                categorize_labels: false,
            };
            for_each_row(store, &filter, Order::Desc, PAGE, |row| {
                let passes = LogQueryEvaluator::new(&plan.residual, &model, options)
                    .map(|mut evaluator| evaluator.push(row) == Progress::Full)
                    .unwrap_or(false);
                if passes {
                    miner.add(row);
                    mined += 1;
                }
                mined < MAX_LINES
            })
            .await?;
        }
        Ok(miner.finish())
    })
    .await?;
    answer::success(&LokiPatterns(&patterns))
}

/// `[{"pattern", "level", "samples": [[seconds, count], …]}, …]`: one item
/// per pattern and level, as Loki answers.
struct LokiPatterns<'a>(&'a [PatternSummary]);

impl Serialize for LokiPatterns<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut list = serializer.serialize_seq(None)?;
        for pattern in self.0 {
            for (level, samples) in &pattern.samples_by_level {
                list.serialize_element(&Item {
                    pattern: &pattern.pattern,
                    level: level.as_str(),
                    samples,
                })?;
            }
        }
        list.end()
    }
}

struct Item<'a> {
    pattern: &'a str,
    level: &'a str,
    samples: &'a [(i64, u64)],
}

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let seconds: Vec<(i64, u64)> = self
            .samples
            .iter()
            .map(|(micros, count)| (micros * 1000 / NANOS_PER_SECOND, *count))
            .collect();
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("pattern", self.pattern)?;
        map.serialize_entry("level", self.level)?;
        map.serialize_entry("samples", &seconds)?;
        map.end()
    }
}
