//! What a rule's groups are doing (inactive, pending, firing) and how one
//! evaluation moves them on. Pure: counts and the time in, the next state
//! and the notifications it calls for out, so every rule of `for`,
//! `repeat_interval` and resolving is tested here without a clock.

use super::rule::MAX_GROUPS;
use crate::domain::time::Micros;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A group's values by `group_by` key (`{"service": "checkout"}`); empty for
/// a rule without `group_by`.
pub type Labels = BTreeMap<String, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

/// One group of a rule after an evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    pub labels: Labels,
    pub state: AlertState,
    /// The count of the last evaluation.
    pub value: u64,
    /// Since when the count has exceeded the threshold (pending or firing):
    /// an alert's `startsAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since: Option<Micros>,
    /// When the last "firing" notification (first or repeated) was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_at: Option<Micros>,
}

/// A rule's state as it is persisted and shown.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    /// Groups that are pending or firing, and the largest others counted.
    pub groups: Vec<GroupState>,
    /// The largest group's count at the last evaluation.
    pub last_value: Option<u64>,
    pub last_evaluation: Option<Micros>,
    /// Why the last evaluation failed, or what it had to leave out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RuleState {
    /// The rule's state: firing when any group fires, else pending when any
    /// group is pending.
    pub fn overall(&self) -> AlertState {
        let has = |state| self.groups.iter().any(|g| g.state == state);
        if has(AlertState::Firing) {
            AlertState::Firing
        } else if has(AlertState::Pending) {
            AlertState::Pending
        } else {
            AlertState::Inactive
        }
    }

    pub fn firing_groups(&self) -> usize {
        self.groups
            .iter()
            .filter(|g| g.state == AlertState::Firing)
            .count()
    }
}

/// The parts of a rule that decide its state.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub threshold: f64,
    pub for_duration: Duration,
    pub repeat_interval: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// The group started firing.
    Fired,
    /// Still firing, and `repeat_interval` has passed since the last notice.
    Repeated,
    /// It was firing and no longer exceeds the threshold.
    Resolved,
}

/// A notification an evaluation calls for.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub change: Change,
    pub group: GroupState,
    /// When a resolved alert ended.
    pub ends_at: Option<Micros>,
}

fn micros(duration: Duration) -> Micros {
    duration.as_micros().min(i64::MAX as u128) as Micros
}

impl RuleState {
    /// The state after an evaluation at `now` that counted `counts` per
    /// group (groups not listed counted 0), and the notifications due.
    pub fn advance(
        &self,
        counts: Vec<(Labels, u64)>,
        timing: Timing,
        now: Micros,
    ) -> (RuleState, Vec<Transition>) {
        let total_groups = counts.len();
        let mut counts: BTreeMap<Labels, u64> = counts.into_iter().collect();
        let previous: BTreeMap<&Labels, &GroupState> =
            self.groups.iter().map(|g| (&g.labels, g)).collect();
        // Bounded: the groups already active, then the largest counts.
        let mut ranked: Vec<(&Labels, u64)> = counts.iter().map(|(l, c)| (l, *c)).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let mut kept: BTreeSet<Labels> = self
            .groups
            .iter()
            .filter(|g| g.state != AlertState::Inactive)
            .map(|g| g.labels.clone())
            .collect();
        for (labels, _) in ranked {
            if kept.len() >= MAX_GROUPS {
                break;
            }
            kept.insert(labels.clone());
        }
        let error = (total_groups > MAX_GROUPS)
            .then(|| format!("{total_groups} groups: only the {MAX_GROUPS} largest are evaluated"));

        let mut groups = Vec::with_capacity(kept.len());
        let mut transitions = Vec::new();
        for labels in kept {
            let value = counts.remove(&labels).unwrap_or(0);
            let exceeds = value as f64 > timing.threshold;
            let before = previous.get(&labels);
            let was = before.map_or(AlertState::Inactive, |g| g.state);
            let mut group = GroupState {
                labels,
                state: AlertState::Inactive,
                value,
                active_since: None,
                notified_at: None,
            };
            match (was, exceeds) {
                (AlertState::Firing, true) => {
                    let before = before.expect("a firing group was in the previous state");
                    group.state = AlertState::Firing;
                    group.active_since = before.active_since;
                    group.notified_at = before.notified_at;
                    let due = timing.repeat_interval.is_some_and(|repeat| {
                        before
                            .notified_at
                            .is_none_or(|sent| now - sent >= micros(repeat))
                    });
                    if due {
                        group.notified_at = Some(now);
                        transitions.push(Transition {
                            change: Change::Repeated,
                            group: group.clone(),
                            ends_at: None,
                        });
                    }
                }
                (AlertState::Firing, false) => {
                    let before = before.expect("a firing group was in the previous state");
                    transitions.push(Transition {
                        change: Change::Resolved,
                        group: GroupState {
                            state: AlertState::Inactive,
                            active_since: before.active_since,
                            notified_at: before.notified_at,
                            ..group.clone()
                        },
                        ends_at: Some(now),
                    });
                }
                (AlertState::Pending | AlertState::Inactive, true) => {
                    let since = before
                        .filter(|g| g.state == AlertState::Pending)
                        .and_then(|g| g.active_since)
                        .unwrap_or(now);
                    group.active_since = Some(since);
                    if now - since >= micros(timing.for_duration) {
                        group.state = AlertState::Firing;
                        group.notified_at = Some(now);
                        transitions.push(Transition {
                            change: Change::Fired,
                            group: group.clone(),
                            ends_at: None,
                        });
                    } else {
                        group.state = AlertState::Pending;
                    }
                }
                (AlertState::Pending | AlertState::Inactive, false) => {}
            }
            // Quiet groups are not kept: they come back when they count again.
            if group.state != AlertState::Inactive || group.value > 0 {
                groups.push(group);
            }
        }
        groups.sort_by(|a, b| {
            (b.state as u8)
                .cmp(&(a.state as u8))
                .then_with(|| b.value.cmp(&a.value))
                .then_with(|| a.labels.cmp(&b.labels))
        });
        let state = RuleState {
            last_value: Some(groups.iter().map(|g| g.value).max().unwrap_or(0)),
            groups,
            last_evaluation: Some(now),
            error,
        };
        (state, transitions)
    }

    /// The state after an evaluation that could not count: nothing moves.
    pub fn failed(&self, error: String, now: Micros) -> RuleState {
        RuleState {
            last_evaluation: Some(now),
            error: Some(error),
            ..self.clone()
        }
    }

    /// Every firing group resolved at `now` (the rule was deleted).
    pub fn resolve_all(&self, now: Micros) -> Vec<Transition> {
        self.groups
            .iter()
            .filter(|g| g.state == AlertState::Firing)
            .map(|g| Transition {
                change: Change::Resolved,
                group: GroupState {
                    state: AlertState::Inactive,
                    ..g.clone()
                },
                ends_at: Some(now),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Micros = 1_000_000;

    fn timing(for_secs: u64, repeat_secs: Option<u64>) -> Timing {
        Timing {
            threshold: 10.0,
            for_duration: Duration::from_secs(for_secs),
            repeat_interval: repeat_secs.map(Duration::from_secs),
        }
    }

    fn one(value: u64) -> Vec<(Labels, u64)> {
        vec![(Labels::new(), value)]
    }

    fn changes(transitions: &[Transition]) -> Vec<Change> {
        transitions.iter().map(|t| t.change).collect()
    }

    #[test]
    fn a_spike_fires_once_and_resolves_once() {
        let t = timing(0, None);
        let (state, fired) = RuleState::default().advance(one(11), t, 100 * S);
        assert_eq!(changes(&fired), [Change::Fired]);
        assert_eq!(state.overall(), AlertState::Firing);
        assert_eq!(state.groups[0].active_since, Some(100 * S));
        let (state, again) = state.advance(one(50), t, 101 * S);
        assert!(again.is_empty(), "unchanged: not sent again");
        let (state, same) = state.advance(one(10), t, 102 * S);
        assert_eq!(changes(&same), [Change::Resolved], "10 does not exceed 10");
        assert_eq!(same[0].ends_at, Some(102 * S));
        assert_eq!(same[0].group.active_since, Some(100 * S));
        assert_eq!(state.overall(), AlertState::Inactive);
        assert_eq!(state.last_value, Some(10));
        let (state, quiet) = state.advance(one(0), t, 103 * S);
        assert!(quiet.is_empty());
        assert!(state.groups.is_empty(), "quiet groups are dropped");
    }

    #[test]
    fn for_holds_it_pending_and_a_dip_starts_over() {
        let t = timing(3, None);
        let (state, none) = RuleState::default().advance(one(20), t, 0);
        assert!(none.is_empty());
        assert_eq!(state.overall(), AlertState::Pending);
        let (state, none) = state.advance(one(20), t, 2 * S);
        assert!(none.is_empty());
        let (dipped, none) = state.advance(one(5), t, 3 * S);
        assert!(none.is_empty(), "pending never notifies");
        let (state, none) = dipped.advance(one(20), t, 4 * S);
        assert!(none.is_empty(), "the clock restarts after a dip");
        let (state, none) = state.advance(one(20), t, 6 * S);
        assert!(none.is_empty());
        let (state, fired) = state.advance(one(20), t, 7 * S);
        assert_eq!(changes(&fired), [Change::Fired]);
        assert_eq!(fired[0].group.active_since, Some(4 * S));
        assert_eq!(state.overall(), AlertState::Firing);
    }

    #[test]
    fn repeat_interval_resends_while_firing() {
        let t = timing(0, Some(5));
        let (state, fired) = RuleState::default().advance(one(20), t, 0);
        assert_eq!(changes(&fired), [Change::Fired]);
        let (state, none) = state.advance(one(20), t, 4 * S);
        assert!(none.is_empty());
        let (state, repeated) = state.advance(one(20), t, 5 * S);
        assert_eq!(changes(&repeated), [Change::Repeated]);
        let (state, none) = state.advance(one(20), t, 9 * S);
        assert!(none.is_empty());
        let (_, repeated) = state.advance(one(20), t, 10 * S);
        assert_eq!(changes(&repeated), [Change::Repeated]);
    }

    #[test]
    fn groups_move_on_their_own() {
        let t = timing(0, None);
        let labels = |service: &str| Labels::from([("service".to_string(), service.to_string())]);
        let (state, fired) =
            RuleState::default().advance(vec![(labels("a"), 20), (labels("b"), 3)], t, 0);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].group.labels, labels("a"));
        assert_eq!(state.groups.len(), 2);
        // a disappears from the counts (0): resolved; b spikes: fires.
        let (state, moved) = state.advance(vec![(labels("b"), 30)], t, S);
        let mut moved: Vec<_> = moved
            .iter()
            .map(|m| (m.change, m.group.labels["service"].clone()))
            .collect();
        moved.sort_by_key(|(_, s)| s.clone());
        assert_eq!(
            moved,
            [(Change::Resolved, "a".into()), (Change::Fired, "b".into())]
        );
        assert_eq!(state.firing_groups(), 1);
        assert_eq!(state.resolve_all(2 * S).len(), 1);
    }

    #[test]
    fn at_most_a_hundred_groups_but_active_ones_are_kept() {
        let t = timing(0, None);
        let labels = |n: usize| Labels::from([("k".to_string(), n.to_string())]);
        let (state, _) = RuleState::default().advance(vec![(labels(999), 11)], t, 0);
        let many: Vec<_> = (0..150).map(|n| (labels(n), 100 + n as u64)).collect();
        let mut with_active = many.clone();
        with_active.push((labels(999), 11));
        let (state, fired) = state.advance(with_active, t, S);
        assert_eq!(state.groups.len(), MAX_GROUPS);
        assert!(state.groups.iter().any(|g| g.labels == labels(999)));
        assert!(state.error.as_deref().unwrap_or("").contains("151 groups"));
        assert_eq!(fired.len(), MAX_GROUPS - 1, "the new largest fire");
    }

    #[test]
    fn a_failed_evaluation_changes_nothing_but_the_error() {
        let (state, _) = RuleState::default().advance(one(20), timing(0, None), 0);
        let failed = state.failed("store unavailable".into(), S);
        assert_eq!(failed.groups, state.groups);
        assert_eq!(failed.error.as_deref(), Some("store unavailable"));
        let json = serde_json::to_string(&failed).unwrap();
        let back: RuleState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, failed);
    }
}
