//! API priority and fairness with upstream's built-in configuration: each request is classified
//! by the default FlowSchemas into a priority level, or exempted (the `system:masters` group and
//! health probes, so an administrator is never throttled). Every level owns a share of the
//! server's concurrency (`--max-requests-inflight` plus `--max-mutating-requests-inflight`);
//! past it, requests wait in the level's queues instead of failing at once. A flow (the user, or
//! the namespace for some schemas) is dealt a hand of queues by shuffle sharding and joins the
//! shortest; freed seats go to the queues in turn, so one busy flow cannot starve the others.
//! 429 with Retry-After comes only when the hand's shortest queue is full or the wait outlasts
//! a quarter of the request timeout, as upstream.
//!
//! Not yet as upstream: the FlowSchema and PriorityLevelConfiguration objects (the built-in
//! configuration is fixed), seats lent between levels, requests that take several seats (large
//! lists), and watches (long-running requests are not counted, as with max-in-flight).

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;

use super::authentication::RequestUser;
use super::max_in_flight::too_many_requests;
use super::{Filter, FilterFuture, Next};
use crate::authn::UserInfo;
use crate::body::Request;
use crate::request_info::RequestInfo;

/// A priority level of upstream's built-in configuration: its concurrency shares and queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LevelSpec {
    name: &'static str,
    /// `nominalConcurrencyShares`.
    shares: usize,
    /// Queues; 0 means excess requests are rejected rather than queued.
    queues: usize,
    hand_size: usize,
    queue_length_limit: usize,
}

const fn level(
    name: &'static str,
    shares: usize,
    queues: usize,
    hand_size: usize,
    queue_length_limit: usize,
) -> LevelSpec {
    LevelSpec {
        name,
        shares,
        queues,
        hand_size,
        queue_length_limit,
    }
}

/// The limited levels, indexed by [`LevelId`]. `exempt` has no limit and is not listed.
const LEVELS: [LevelSpec; 7] = [
    level("system", 30, 64, 6, 50),
    level("node-high", 40, 64, 6, 50),
    level("leader-election", 10, 16, 4, 50),
    level("workload-high", 40, 128, 6, 50),
    level("workload-low", 100, 128, 6, 50),
    level("global-default", 20, 128, 6, 50),
    level("catch-all", 5, 0, 0, 0),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LevelId {
    System = 0,
    NodeHigh = 1,
    LeaderElection = 2,
    WorkloadHigh = 3,
    WorkloadLow = 4,
    GlobalDefault = 5,
}

/// What the FlowSchemas made of a request.
#[derive(Debug, PartialEq, Eq)]
enum Classification<'a> {
    Exempt,
    Limited {
        level: LevelId,
        /// The matching FlowSchema and its distinguisher: requests of one flow share a hand.
        schema: &'static str,
        flow: &'a str,
    },
}

const MASTERS: &str = "system:masters";
const NODES: &str = "system:nodes";
const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
const KUBE_SYSTEM_SERVICE_ACCOUNT: &str = "system:serviceaccount:kube-system:";
const CONTROLLER_MANAGER: &str = "system:kube-controller-manager";
const SCHEDULER: &str = "system:kube-scheduler";
const ANONYMOUS: &str = "system:anonymous";

/// Classify as upstream's default FlowSchemas do, in their matching precedence.
fn classify<'a>(user: Option<&'a UserInfo>, info: &'a RequestInfo) -> Classification<'a> {
    let name = user.map_or(ANONYMOUS, |user| user.name.as_str());
    let in_group = |group: &str| user.is_some_and(|user| user.groups.iter().any(|g| g == group));
    let kube_system_sa = name.starts_with(KUBE_SYSTEM_SERVICE_ACCOUNT);
    let namespaced = info.is_resource_request && !info.namespace.is_empty();
    let election_verb = matches!(info.verb.as_str(), "get" | "create" | "update");
    let resource_is = |group: &str, resources: &[&str]| {
        info.is_resource_request
            && info.api_group == group
            && info.subresource.is_empty()
            && resources.contains(&info.resource.as_str())
    };
    let limited = |level, schema, flow| Classification::Limited {
        level,
        schema,
        flow,
    };

    // exempt (1), probes (2)
    if in_group(MASTERS)
        || (!info.is_resource_request
            && info.verb == "get"
            && matches!(info.path.as_str(), "/healthz" | "/readyz" | "/livez"))
    {
        return Classification::Exempt;
    }
    // system-leader-election (100)
    if (name == CONTROLLER_MANAGER || name == SCHEDULER || kube_system_sa)
        && election_verb
        && namespaced
        && resource_is("coordination.k8s.io", &["leases"])
    {
        return limited(LevelId::LeaderElection, "system-leader-election", name);
    }
    // endpoint-controller (150)
    if (name == CONTROLLER_MANAGER
        || name == "system:serviceaccount:kube-system:endpoint-controller"
        || name == "system:serviceaccount:kube-system:endpointslicemirroring-controller")
        && election_verb
        && namespaced
        && resource_is("", &["endpoints"])
    {
        return limited(LevelId::WorkloadHigh, "endpoint-controller", name);
    }
    // workload-leader-election (200)
    if kube_system_sa
        && election_verb
        && namespaced
        && (resource_is("", &["endpoints", "configmaps"])
            || resource_is("coordination.k8s.io", &["leases"]))
    {
        return limited(LevelId::LeaderElection, "workload-leader-election", name);
    }
    if in_group(NODES) {
        // system-node-high (400)
        let node_object = info.is_resource_request
            && info.api_group.is_empty()
            && info.resource == "nodes"
            && (info.subresource.is_empty() || info.subresource == "status");
        if node_object || (namespaced && resource_is("coordination.k8s.io", &["leases"])) {
            return limited(LevelId::NodeHigh, "system-node-high", name);
        }
        // system-nodes (500)
        return limited(LevelId::System, "system-nodes", name);
    }
    // kube-controller-manager, kube-scheduler (800), kube-system-service-accounts (900): one
    // flow per namespace.
    for (matches, schema) in [
        (name == CONTROLLER_MANAGER, "kube-controller-manager"),
        (name == SCHEDULER, "kube-scheduler"),
        (kube_system_sa, "kube-system-service-accounts"),
    ] {
        if matches {
            return limited(LevelId::WorkloadHigh, schema, &info.namespace);
        }
    }
    // service-accounts (9000)
    if in_group(SERVICE_ACCOUNTS) {
        return limited(LevelId::WorkloadLow, "service-accounts", name);
    }
    // global-default (9900) matches every user, so catch-all (10000) is never reached.
    limited(LevelId::GlobalDefault, "global-default", name)
}

/// Each level's seats: the server's concurrency split by shares, rounded up, as upstream.
fn seats(server_concurrency: usize, spec: &LevelSpec) -> usize {
    let total: usize = LEVELS.iter().map(|level| level.shares).sum();
    (server_concurrency * spec.shares).div_ceil(total).max(1)
}

/// Deal a hand of `hand` distinct queue indices below `deck` from a flow's hash (shuffle
/// sharding: two flows rarely share a whole hand, so one heavy flow fills few others' queues).
fn deal(mut hash: u64, deck: usize, hand: usize) -> Vec<usize> {
    let hand = hand.min(deck);
    let mut cards: Vec<usize> = Vec::with_capacity(hand);
    // The dealt cards in order, to step over.
    let mut taken: Vec<usize> = Vec::with_capacity(hand);
    for dealt in 0..hand {
        let remaining = (deck - dealt) as u64;
        let mut card = (hash % remaining) as usize;
        hash /= remaining;
        // `card` counts among the cards not yet dealt: step over the dealt ones, in order.
        for &dealt_card in &taken {
            if dealt_card <= card {
                card += 1;
            }
        }
        taken.insert(taken.partition_point(|&t| t < card), card);
        cards.push(card);
    }
    cards
}

/// One priority level: its seats in use and the requests waiting for one.
struct Level {
    spec: LevelSpec,
    seats: usize,
    state: Mutex<LevelState>,
}

struct LevelState {
    in_use: usize,
    queues: Vec<VecDeque<Waiter>>,
    waiting: usize,
    /// The queue the next freed seat looks at first: seats go round the queues in turn.
    next_queue: usize,
    next_id: u64,
}

struct Waiter {
    id: u64,
    grant: oneshot::Sender<()>,
}

/// The answer to a request for a seat.
enum Admission {
    Seat(Seat),
    Queued(Queued),
    Rejected,
}

/// A seat held; dropping it hands the seat to the next waiter or frees it.
struct Seat {
    level: Arc<Level>,
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.level.release();
    }
}

/// A place in a queue. Dropping it (the client went away) leaves the queue, or gives back the
/// seat if one was granted meanwhile.
struct Queued {
    level: Arc<Level>,
    queue: usize,
    id: u64,
    granted: oneshot::Receiver<()>,
    settled: bool,
}

impl Queued {
    /// Wait at most `limit` for a seat; `None` when the wait ran out (the request is rejected).
    async fn wait(mut self, limit: Duration) -> Option<Seat> {
        let granted = tokio::time::timeout(limit, &mut self.granted).await;
        self.settled = true;
        let level = Arc::clone(&self.level);
        if matches!(granted, Ok(Ok(()))) || !level.leave(self.queue, self.id) {
            // Granted, possibly just as the wait ran out.
            return Some(Seat { level });
        }
        None
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        if !self.settled && !self.level.leave(self.queue, self.id) {
            self.level.release();
        }
    }
}

impl Level {
    fn new(spec: LevelSpec, seats: usize) -> Arc<Self> {
        Arc::new(Level {
            spec,
            seats: seats.max(1),
            state: Mutex::new(LevelState {
                in_use: 0,
                queues: (0..spec.queues).map(|_| VecDeque::new()).collect(),
                waiting: 0,
                next_queue: 0,
                next_id: 0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LevelState> {
        // The state stays consistent at every unlock; a panic elsewhere does not void it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A seat now, a place in the shortest queue of the flow's hand, or a rejection.
    fn admit(self: &Arc<Self>, flow_hash: u64) -> Admission {
        let mut state = self.lock();
        if state.waiting == 0 && state.in_use < self.seats {
            state.in_use += 1;
            return Admission::Seat(Seat {
                level: Arc::clone(self),
            });
        }
        let hand = deal(flow_hash, state.queues.len(), self.spec.hand_size);
        let Some(queue) = hand
            .into_iter()
            .min_by_key(|&queue| state.queues[queue].len())
        else {
            return Admission::Rejected;
        };
        if state.queues[queue].len() >= self.spec.queue_length_limit {
            return Admission::Rejected;
        }
        let (grant, granted) = oneshot::channel();
        let id = state.next_id;
        state.next_id += 1;
        state.queues[queue].push_back(Waiter { id, grant });
        state.waiting += 1;
        Admission::Queued(Queued {
            level: Arc::clone(self),
            queue,
            id,
            granted,
            settled: false,
        })
    }

    /// Take a waiter out of its queue; false when it is no longer there (a seat was granted).
    fn leave(&self, queue: usize, id: u64) -> bool {
        let mut state = self.lock();
        let Some(position) = state.queues[queue].iter().position(|w| w.id == id) else {
            return false;
        };
        state.queues[queue].remove(position);
        state.waiting -= 1;
        true
    }

    /// A seat came free: grant it to the next queue's oldest waiter, else free it.
    fn release(&self) {
        let mut state = self.lock();
        let count = state.queues.len();
        for step in 0..count {
            let queue = (state.next_queue + step) % count;
            while let Some(waiter) = state.queues[queue].pop_front() {
                state.waiting -= 1;
                if waiter.grant.send(()).is_ok() {
                    state.next_queue = (queue + 1) % count;
                    return;
                }
            }
        }
        state.in_use = state.in_use.saturating_sub(1);
    }
}

/// The filter: classifies each request and admits it through its level.
pub struct PriorityAndFairness {
    levels: Vec<Arc<Level>>,
    wait_limit: Duration,
}

impl PriorityAndFairness {
    /// Levels sized from the server's concurrency (`--max-requests-inflight` plus
    /// `--max-mutating-requests-inflight`); queued requests wait at most a quarter of the
    /// request timeout (and never more than a minute), as upstream.
    pub fn new(server_concurrency: usize, request_timeout: Duration) -> Self {
        let levels = LEVELS
            .iter()
            .map(|spec| Level::new(*spec, seats(server_concurrency, spec)))
            .collect();
        PriorityAndFairness {
            levels,
            wait_limit: (request_timeout / 4).min(Duration::from_secs(60)),
        }
    }
}

fn flow_hash(schema: &str, flow: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    schema.hash(&mut hasher);
    flow.hash(&mut hasher);
    hasher.finish()
}

impl Filter for PriorityAndFairness {
    fn filter(&self, request: Request, next: Next) -> FilterFuture {
        let classification = match request.extensions().get::<RequestInfo>() {
            Some(info) if !info.is_long_running() => {
                let user = request
                    .extensions()
                    .get::<RequestUser>()
                    .and_then(|user| user.0.as_deref());
                classify(user, info)
            }
            _ => Classification::Exempt,
        };
        let Classification::Limited {
            level,
            schema,
            flow,
        } = classification
        else {
            return next.run(request);
        };
        let admission = self.levels[level as usize].admit(flow_hash(schema, flow));
        let wait_limit = self.wait_limit;
        Box::pin(async move {
            let _seat = match admission {
                Admission::Seat(seat) => seat,
                Admission::Queued(queued) => match queued.wait(wait_limit).await {
                    Some(seat) => seat,
                    None => return too_many_requests(),
                },
                Admission::Rejected => return too_many_requests(),
            };
            next.run(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            uid: String::new(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    fn info(method: &str, path: &str) -> RequestInfo {
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        RequestInfo::parse(&method, path, None).unwrap()
    }

    fn level_of(classification: Classification) -> Option<(LevelId, &'static str, String)> {
        match classification {
            Classification::Exempt => None,
            Classification::Limited {
                level,
                schema,
                flow,
            } => Some((level, schema, flow.to_owned())),
        }
    }

    #[test]
    fn classification_follows_the_default_flow_schemas() {
        let admin = user("admin", &[MASTERS, "system:authenticated"]);
        let list = info("GET", "/api/v1/namespaces/default/configmaps");
        assert_eq!(classify(Some(&admin), &list), Classification::Exempt);
        assert_eq!(
            classify(None, &info("GET", "/readyz")),
            Classification::Exempt
        );
        assert_eq!(
            level_of(classify(None, &info("GET", "/readyz/etcd"))),
            Some((LevelId::GlobalDefault, "global-default", ANONYMOUS.into()))
        );
        let alice = user("alice", &["system:authenticated"]);
        assert_eq!(
            level_of(classify(Some(&alice), &list)),
            Some((LevelId::GlobalDefault, "global-default", "alice".into()))
        );

        let sa = user(
            "system:serviceaccount:kube-system:generic-garbage-collector",
            &[SERVICE_ACCOUNTS, "system:serviceaccounts:kube-system"],
        );
        let lease = info(
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x",
        );
        assert_eq!(
            level_of(classify(Some(&sa), &lease)).map(|l| l.1),
            Some("system-leader-election")
        );
        let cm_update = info("PUT", "/api/v1/namespaces/kube-system/configmaps/x");
        assert_eq!(
            level_of(classify(Some(&sa), &cm_update)).map(|l| l.1),
            Some("workload-leader-election")
        );
        assert_eq!(
            level_of(classify(Some(&sa), &list)),
            Some((
                LevelId::WorkloadHigh,
                "kube-system-service-accounts",
                "default".into()
            ))
        );
        let app_sa = user("system:serviceaccount:apps:builder", &[SERVICE_ACCOUNTS]);
        assert_eq!(
            level_of(classify(Some(&app_sa), &list)).map(|l| l.0),
            Some(LevelId::WorkloadLow)
        );

        let node = user("system:node:n1", &[NODES]);
        assert_eq!(
            level_of(classify(
                Some(&node),
                &info("PATCH", "/api/v1/nodes/n1/status")
            ))
            .map(|l| l.0),
            Some(LevelId::NodeHigh)
        );
        assert_eq!(
            level_of(classify(Some(&node), &list)).map(|l| l.0),
            Some(LevelId::System)
        );
        let kcm = user(CONTROLLER_MANAGER, &[]);
        assert_eq!(
            level_of(classify(
                Some(&kcm),
                &info("PUT", "/api/v1/namespaces/ns1/endpoints/svc")
            ))
            .map(|l| l.1),
            Some("endpoint-controller")
        );
        assert_eq!(
            level_of(classify(Some(&kcm), &list)),
            Some((
                LevelId::WorkloadHigh,
                "kube-controller-manager",
                "default".into()
            ))
        );
    }

    #[test]
    fn seats_split_the_server_concurrency_by_shares() {
        let by_name = |name: &str| {
            LEVELS
                .iter()
                .find(|level| level.name == name)
                .map(|level| seats(600, level))
        };
        // 600 seats over 245 shares, rounded up, as upstream sizes its default levels.
        assert_eq!(by_name("global-default"), Some(49));
        assert_eq!(by_name("workload-low"), Some(245));
        assert_eq!(by_name("leader-election"), Some(25));
        assert_eq!(by_name("catch-all"), Some(13));
    }

    #[test]
    fn hands_are_distinct_queues_of_the_deck() {
        let spread = (0..1000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        for hash in [0, 1, 7, u64::MAX].into_iter().chain(spread) {
            let mut hand = deal(hash, 128, 6);
            assert_eq!(hand.len(), 6);
            assert!(hand.iter().all(|&q| q < 128));
            hand.sort_unstable();
            hand.dedup();
            assert_eq!(hand.len(), 6, "hand of {hash} repeats a queue");
        }
        let mut whole = deal(12345, 4, 6);
        whole.sort_unstable();
        assert_eq!(whole, vec![0, 1, 2, 3]);
    }

    fn small_level(queues: usize, queue_length_limit: usize) -> Arc<Level> {
        Level::new(level("test", 1, queues, 1, queue_length_limit), 1)
    }

    fn queued(admission: Admission) -> Queued {
        match admission {
            Admission::Queued(queued) => queued,
            Admission::Seat(_) => panic!("expected to queue, got a seat"),
            Admission::Rejected => panic!("expected to queue, was rejected"),
        }
    }

    #[tokio::test]
    async fn excess_requests_wait_in_order_and_a_full_queue_rejects() {
        let level = small_level(1, 2);
        let Admission::Seat(first) = level.admit(1) else {
            panic!("the first request finds a free seat");
        };
        let second = queued(level.admit(1));
        let third = queued(level.admit(1));
        assert!(matches!(level.admit(1), Admission::Rejected));

        let third = tokio::spawn(third.wait(Duration::from_secs(10)));
        let second = tokio::spawn(second.wait(Duration::from_secs(10)));
        drop(first);
        let second = second
            .await
            .unwrap()
            .expect("the oldest waiter gets the seat");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !third.is_finished(),
            "one seat serves one request at a time"
        );
        drop(second);
        let third = third.await.unwrap().expect("then the next one");
        drop(third);
        assert!(matches!(level.admit(1), Admission::Seat(_)));
    }

    #[tokio::test]
    async fn a_wait_that_runs_out_leaves_the_queue() {
        let level = small_level(1, 1);
        let Admission::Seat(_held) = level.admit(1) else {
            panic!("a free seat");
        };
        let waiting = queued(level.admit(1));
        assert!(matches!(level.admit(1), Admission::Rejected));
        assert!(waiting.wait(Duration::from_millis(10)).await.is_none());
        // Its place is free again.
        drop(queued(level.admit(1)));
        assert!(matches!(level.admit(1), Admission::Queued(_)));
    }

    #[tokio::test]
    async fn a_dropped_waiter_passes_a_granted_seat_on() {
        let level = small_level(2, 5);
        let Admission::Seat(held) = level.admit(1) else {
            panic!("a free seat");
        };
        let abandoned = queued(level.admit(1));
        let patient = queued(level.admit(1));
        drop(held); // the seat goes to `abandoned`, whose client has gone away
        drop(abandoned);
        let seat = patient.wait(Duration::from_secs(10)).await;
        assert!(seat.is_some(), "the seat moved on to the next waiter");
    }

    #[tokio::test]
    async fn freed_seats_go_round_the_queues() {
        let level = small_level(2, 10);
        let Admission::Seat(held) = level.admit(0) else {
            panic!("a free seat");
        };
        // With one queue per hand, hashes 0 and 1 land in different queues of two.
        let heavy: Vec<_> = (0..3).map(|_| queued(level.admit(0))).collect();
        let light = queued(level.admit(1));
        assert_ne!(heavy[0].queue, light.queue);
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, waiter) in heavy
            .into_iter()
            .map(|w| ("heavy", w))
            .chain([("light", light)])
        {
            let order = Arc::clone(&order);
            tasks.push(tokio::spawn(async move {
                let seat = waiter.wait(Duration::from_secs(10)).await;
                order.lock().unwrap().push(name);
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(seat);
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        // The light flow does not wait behind the heavy flow's whole backlog.
        assert_eq!(order[..2].iter().filter(|n| **n == "light").count(), 1);
    }
}
