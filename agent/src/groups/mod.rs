//! Consumer groups: the coordinator's in-memory state for the groups this agent coordinates.
//!
//! A group is coordinated by one live agent, chosen by rendezvous hashing of its id over the
//! live agents ([`crate::membership::coordinator_of`]); the others answer NOT_COORDINATOR. The
//! membership of a group (who is in it, the generation, the assignment) lives only here: if this
//! agent dies, its groups move to another one and their members rejoin there, which is a
//! rebalance, as when a Kafka coordinator fails over. Committed offsets are in the metastore and
//! survive anything.

pub mod classic;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

pub use classic::{Group, GroupLimits, GroupState};

/// How often silent members and ended join phases are looked for.
const TICK: Duration = Duration::from_millis(100);

pub type SharedGroup = Arc<Mutex<Group>>;

pub struct Coordinator {
    groups: Mutex<HashMap<String, SharedGroup>>,
    limits: GroupLimits,
}

/// The group's lock. Never held across an `.await`.
pub fn lock(group: &SharedGroup) -> MutexGuard<'_, Group> {
    // Group methods do not panic on client input; if one ever did, the group's state as it was
    // is still the best answer for the other members.
    group.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Coordinator {
    pub fn new(limits: GroupLimits) -> Arc<Self> {
        Arc::new(Self {
            groups: Mutex::new(HashMap::new()),
            limits,
        })
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, SharedGroup>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The group, created empty if this agent does not know it yet.
    pub fn group(&self, id: &str) -> SharedGroup {
        self.map()
            .entry(id.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(Group::new(id.to_owned(), self.limits.clone()))))
            .clone()
    }

    pub fn existing(&self, id: &str) -> Option<SharedGroup> {
        self.map().get(id).cloned()
    }

    pub fn all(&self) -> Vec<SharedGroup> {
        self.map().values().cloned().collect()
    }

    /// Forgets a group (DeleteGroups, or a group this agent no longer coordinates).
    pub fn remove(&self, id: &str) {
        if let Some(g) = self.map().remove(id) {
            lock(&g).kill();
        }
    }

    pub fn tick(&self, now: Instant) {
        for g in self.all() {
            lock(&g).tick(now);
        }
        // Empty groups hold nothing that is not in the metastore; one a request is using right
        // now (a second reference) stays.
        self.map().retain(|_, g| {
            if Arc::strong_count(g) > 1 {
                return true;
            }
            let g = lock(g);
            !(g.state() == GroupState::Empty && g.is_empty())
        });
    }

    pub fn spawn(self: &Arc<Self>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = every.tick() => me.tick(Instant::now()),
                }
            }
        })
    }
}
