//! Consumer groups: the coordinator's in-memory state for the groups this agent coordinates.
//!
//! A group is coordinated by one live agent, chosen by rendezvous hashing of its id over the
//! live agents ([`crate::membership::coordinator_of`]); the others answer NOT_COORDINATOR. The
//! membership of a group (who is in it, the generation, the assignment) lives only here: if this
//! agent dies, its groups move to another one and their members rejoin there, which is a
//! rebalance, as when a Kafka coordinator fails over. Committed offsets are in the metastore and
//! survive anything.

pub mod classic;
pub mod consumer;
pub mod lag;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

pub use classic::{Group, GroupLimits, GroupState};
pub use consumer::{ConsumerGroup, ConsumerLimits};

/// How often silent members and ended join phases are looked for.
const TICK: Duration = Duration::from_millis(100);

pub type SharedGroup = Arc<Mutex<Group>>;
pub type SharedConsumerGroup = Arc<Mutex<ConsumerGroup>>;

/// The groups this agent coordinates: classic ones (JoinGroup) and KIP-848 consumer ones
/// (ConsumerGroupHeartbeat). A group id is one or the other while it has members.
pub struct Coordinator {
    groups: Mutex<HashMap<String, SharedGroup>>,
    consumers: Mutex<HashMap<String, SharedConsumerGroup>>,
    limits: GroupLimits,
    consumer_limits: ConsumerLimits,
}

/// A consumer group's lock. Never held across an `.await`.
pub fn lock_consumer(group: &SharedConsumerGroup) -> MutexGuard<'_, ConsumerGroup> {
    group.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The group's lock. Never held across an `.await`.
pub fn lock(group: &SharedGroup) -> MutexGuard<'_, Group> {
    // Group methods do not panic on client input; if one ever did, the group's state as it was
    // is still the best answer for the other members.
    group.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Coordinator {
    pub fn new(limits: GroupLimits, consumer_limits: ConsumerLimits) -> Arc<Self> {
        Arc::new(Self {
            groups: Mutex::new(HashMap::new()),
            consumers: Mutex::new(HashMap::new()),
            limits,
            consumer_limits,
        })
    }

    pub fn consumer_limits(&self) -> &ConsumerLimits {
        &self.consumer_limits
    }

    fn consumer_map(&self) -> MutexGuard<'_, HashMap<String, SharedConsumerGroup>> {
        self.consumers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The consumer group, created empty if this agent does not know it yet.
    pub fn consumer_group(&self, id: &str) -> SharedConsumerGroup {
        self.consumer_map()
            .entry(id.to_owned())
            .or_insert_with(|| {
                let g = ConsumerGroup::new(id.to_owned(), self.consumer_limits.clone());
                Arc::new(Mutex::new(g))
            })
            .clone()
    }

    pub fn existing_consumer(&self, id: &str) -> Option<SharedConsumerGroup> {
        self.consumer_map()
            .get(id)
            .filter(|g| !lock_consumer(g).is_empty())
            .cloned()
    }

    pub fn all_consumers(&self) -> Vec<SharedConsumerGroup> {
        self.consumer_map().values().cloned().collect()
    }

    /// Whether a classic group with members holds this id.
    pub fn has_classic_members(&self, id: &str) -> bool {
        self.existing(id).is_some_and(|g| !lock(&g).is_empty())
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
        self.consumer_map().remove(id);
    }

    pub fn tick(&self, now: Instant) {
        for g in self.all() {
            lock(&g).tick(now);
        }
        for g in self.all_consumers() {
            lock_consumer(&g).tick(now);
        }
        self.consumer_map()
            .retain(|_, g| Arc::strong_count(g) > 1 || !lock_consumer(g).is_empty());
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
