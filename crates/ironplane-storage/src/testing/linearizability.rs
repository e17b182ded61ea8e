//! A linearizability checker for histories of get/create/CAS-update/delete on a few keys.
//!
//! The model is one register per key holding `None` or `(value, mod_revision)`, with create,
//! compare-and-swap on the modification revision, and delete. Linearizability is compositional,
//! so each key is checked on its own: a depth-first search (Wing & Gong, with Lowe's memo of
//! visited `(linearized set, state)` pairs) for an order of the key's operations that respects
//! real time (an operation that responded before another was invoked comes first) and that the
//! model accepts. Across keys, the revisions of successful writes must also respect real time.
//!
//! Times are ticks of one shared counter, so "responded before invoked" is exact.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::Revision;

/// An operation as invoked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read the key at the current revision.
    Get,
    /// Create the key with a value.
    Create(Bytes),
    /// Replace the value if the modification revision is the expected one.
    Update {
        /// The new value.
        value: Bytes,
        /// The expected modification revision.
        expected: Revision,
    },
    /// Delete the key, if given only at that modification revision.
    Delete(Option<Revision>),
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A get's answer: the value and modification revision, or nothing.
    Got(Option<(Bytes, Revision)>),
    /// A create or update committed at this revision.
    Written(Revision),
    /// A delete committed at this revision.
    Deleted(Revision),
    /// A create found the key.
    AlreadyExists,
    /// An update or delete found no key.
    NotFound,
    /// An update or delete found another modification revision.
    Conflict,
}

/// One completed operation.
#[derive(Clone, Debug)]
pub struct Record {
    /// The key it acted on.
    pub key: String,
    /// What was asked.
    pub op: Op,
    /// What came back.
    pub outcome: Outcome,
    /// Tick taken just before the call.
    pub invoked: u64,
    /// Tick taken just after the answer.
    pub responded: u64,
}

/// A shared clock for recording histories.
#[derive(Debug, Default)]
pub struct Clock(AtomicU64);

impl Clock {
    /// The next tick.
    pub fn tick(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

type State = Option<(Bytes, Revision)>;

/// Apply `op` with `outcome` to `state`; `None` if the model forbids it.
fn step(state: &State, op: &Op, outcome: &Outcome) -> Option<State> {
    let mod_rev = state.as_ref().map(|(_, r)| *r);
    match (op, outcome) {
        (Op::Get, Outcome::Got(got)) => (got == state).then(|| state.clone()),
        (Op::Create(value), Outcome::Written(rev)) => {
            state.is_none().then(|| Some((value.clone(), *rev)))
        }
        (Op::Create(_), Outcome::AlreadyExists) => state.is_some().then(|| state.clone()),
        (Op::Update { value, expected }, Outcome::Written(rev)) => {
            (mod_rev == Some(*expected) && *rev > *expected).then(|| Some((value.clone(), *rev)))
        }
        (Op::Update { expected, .. }, Outcome::Conflict) => {
            matches!(mod_rev, Some(m) if m != *expected).then(|| state.clone())
        }
        (Op::Update { .. } | Op::Delete(_), Outcome::NotFound) => {
            state.is_none().then(|| state.clone())
        }
        (Op::Delete(expected), Outcome::Deleted(rev)) => match (mod_rev, expected) {
            (Some(m), None) if *rev > m => Some(None),
            (Some(m), Some(e)) if m == *e && *rev > m => Some(None),
            _ => None,
        },
        (Op::Delete(Some(expected)), Outcome::Conflict) => {
            matches!(mod_rev, Some(m) if m != *expected).then(|| state.clone())
        }
        _ => None,
    }
}

/// Check a history; `Err` explains the first violation found.
pub fn check(history: &[Record]) -> Result<(), String> {
    let mut by_key: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for record in history {
        by_key.entry(&record.key).or_default().push(record);
    }
    for (key, records) in by_key {
        if records.len() > 128 {
            return Err(format!(
                "{key}: more than 128 operations; record fewer per key"
            ));
        }
        let mut memo = HashSet::new();
        if !search(&records, 0, &None, &mut memo) {
            return Err(format!(
                "{key}: no linearization of these {} operations: {records:#?}",
                records.len()
            ));
        }
    }
    // Across keys: revisions of successful writes follow real time and are unique.
    let mut writes: Vec<(&Record, Revision)> = history
        .iter()
        .filter_map(|r| match r.outcome {
            Outcome::Written(rev) | Outcome::Deleted(rev) => Some((r, rev)),
            _ => None,
        })
        .collect();
    writes.sort_by_key(|(_, rev)| *rev);
    for pair in writes.windows(2) {
        if pair[0].1 == pair[1].1 {
            return Err(format!(
                "two writes committed at revision {}: {:?} and {:?}",
                pair[0].1, pair[0].0, pair[1].0
            ));
        }
    }
    for (i, (a, ra)) in writes.iter().enumerate() {
        // Every later revision must not have finished before this one began.
        if let Some((b, rb)) = writes[i + 1..]
            .iter()
            .find(|(b, _)| b.responded < a.invoked)
        {
            return Err(format!(
                "revision {rb} finished before revision {ra} began: {b:?} then {a:?}"
            ));
        }
    }
    Ok(())
}

fn search(
    records: &[&Record],
    done: u128,
    state: &State,
    memo: &mut HashSet<(u128, State)>,
) -> bool {
    let all = if records.len() == 128 {
        u128::MAX
    } else {
        (1u128 << records.len()) - 1
    };
    if done == all {
        return true;
    }
    if !memo.insert((done, state.clone())) {
        return false;
    }
    let pending = |i: &usize| done & (1u128 << i) == 0;
    // An operation may go next only if no pending operation responded before it was invoked.
    let earliest_response = (0..records.len())
        .filter(pending)
        .map(|i| records[i].responded)
        .min()
        .unwrap_or(u64::MAX);
    for i in (0..records.len()).filter(pending) {
        let record = records[i];
        if record.invoked > earliest_response {
            continue;
        }
        if let Some(next) = step(state, &record.op, &record.outcome)
            && search(records, done | (1u128 << i), &next, memo)
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, op: Op, outcome: Outcome, invoked: u64, responded: u64) -> Record {
        Record {
            key: key.into(),
            op,
            outcome,
            invoked,
            responded,
        }
    }

    fn v(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn accepts_a_legal_concurrent_history() {
        // A get that overlaps the create may see either state.
        let history = vec![
            rec("k", Op::Create(v("a")), Outcome::Written(5), 0, 3),
            rec("k", Op::Get, Outcome::Got(None), 1, 2),
            rec("k", Op::Get, Outcome::Got(Some((v("a"), 5))), 4, 5),
            rec(
                "k",
                Op::Update {
                    value: v("b"),
                    expected: 5,
                },
                Outcome::Written(7),
                6,
                9,
            ),
            rec(
                "k",
                Op::Update {
                    value: v("c"),
                    expected: 5,
                },
                Outcome::Conflict,
                7,
                8,
            ),
            rec("k", Op::Delete(Some(7)), Outcome::Deleted(8), 10, 11),
            rec("k", Op::Delete(None), Outcome::NotFound, 12, 13),
        ];
        assert_eq!(check(&history), Ok(()));
    }

    #[test]
    fn rejects_a_stale_read() {
        // The create finished before the get began, yet the get saw nothing.
        let history = vec![
            rec("k", Op::Create(v("a")), Outcome::Written(5), 0, 1),
            rec("k", Op::Get, Outcome::Got(None), 2, 3),
        ];
        assert!(check(&history).is_err());
    }

    #[test]
    fn rejects_a_lost_update() {
        // Two CAS updates from the same revision both succeeded.
        let history = vec![
            rec("k", Op::Create(v("a")), Outcome::Written(1), 0, 1),
            rec(
                "k",
                Op::Update {
                    value: v("b"),
                    expected: 1,
                },
                Outcome::Written(2),
                2,
                5,
            ),
            rec(
                "k",
                Op::Update {
                    value: v("c"),
                    expected: 1,
                },
                Outcome::Written(3),
                3,
                4,
            ),
        ];
        assert!(check(&history).is_err());
    }

    #[test]
    fn rejects_revisions_against_real_time() {
        // Different keys, but the later write got the lower revision.
        let history = vec![
            rec("a", Op::Create(v("a")), Outcome::Written(9), 0, 1),
            rec("b", Op::Create(v("b")), Outcome::Written(4), 2, 3),
        ];
        assert!(check(&history).is_err());
    }
}
