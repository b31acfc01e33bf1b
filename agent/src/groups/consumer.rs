//! One consumer group under KIP-848's consumer protocol (ConsumerGroupHeartbeat): the broker
//! assigns partitions, and each member reconciles towards its target one heartbeat at a time.
//!
//! Epochs: the group epoch moves whenever membership, a subscription or a subscribed topic's
//! partition count changes; the target assignment is recomputed for it (the assignment epoch).
//! A member whose current partitions include some that its target does not must first give
//! those up (its heartbeat answer omits them, its epoch stays); once it has, it moves to the
//! assignment epoch and receives the target's partitions that no other member still holds. A
//! partition is never told to two members at once.
//!
//! A member subscribes by topic names, by a regular expression (`subscribed_topic_regex`,
//! v1), or both. Every heartbeat resolves the subscriptions against the topics as they stand,
//! so a topic created later that a member names or whose name its regex matches, and
//! partitions added later to a subscribed topic, move the group epoch and are assigned.
//!
//! Static members (`instance_id`, KIP-345 as KIP-848 has it): an instance id belongs to one
//! member at a time. A member joining with an instance id that an active member holds is
//! refused with UNRELEASED_INSTANCE_ID; once the holder leaves with epoch -2 its partitions
//! wait for it (until its session times out), and the next member to join with the instance
//! id takes them over, with its epoch. A heartbeat naming the instance id with another member
//! id is FENCED_INSTANCE_ID.
//!
//! Synchronous and clock-free like [`super::classic`]: the caller passes the time and the
//! topics' metadata.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::protocol::codes;

/// A partition, as KIP-848 names it: by topic id.
pub type Tp = (Uuid, i32);

/// The subscribed topics as the caller found them: name → (id, partition count).
pub type TopicsMeta = BTreeMap<String, (Uuid, i32)>;

/// Server-side assignors (`group.consumer.assignors`), the first being the default.
pub const ASSIGNORS: [&str; 2] = ["uniform", "range"];

/// The most a compiled subscription regex may take: a member cannot make the coordinator
/// allocate without bound.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Kafka matches a subscription regex against whole topic names (RE2J's `matches`).
fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            e.to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
}

#[derive(Clone, Debug)]
pub struct ConsumerLimits {
    /// `group.consumer.session.timeout.ms`.
    pub session_timeout: Duration,
    /// `group.consumer.heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `group.consumer.max.size`: members a group may have.
    pub max_size: usize,
}

impl Default for ConsumerLimits {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(5),
            max_size: i32::MAX as usize,
        }
    }
}

pub struct HeartbeatRequest {
    pub version: i16,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout: Duration,
    /// `None`: unchanged since the last heartbeat.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// `None`: unchanged; empty: no regex any more.
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// What the member holds now; `None`: unchanged.
    pub owned: Option<BTreeSet<Tp>>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Default, PartialEq)]
pub struct HeartbeatResult {
    pub error: i16,
    pub error_message: Option<String>,
    pub member_id: Option<String>,
    pub member_epoch: i32,
    /// `None`: the member's assignment has not changed.
    pub assignment: Option<BTreeSet<Tp>>,
}

impl HeartbeatResult {
    fn error(error: i16, message: &str) -> Self {
        Self {
            error,
            error_message: Some(message.to_owned()),
            ..Self::default()
        }
    }
}

#[derive(Clone, Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub epoch: i32,
    previous_epoch: i32,
    rebalance_timeout: Duration,
    pub subscribed: Vec<String>,
    /// The subscription regex, as the member sent it.
    pub regex: Option<String>,
    compiled: Option<regex::Regex>,
    /// The topics the member is subscribed to now: its names, and the topics its regex matches.
    resolved: BTreeSet<String>,
    /// A static member that left with epoch -2: its partitions wait for its instance id.
    left_static: bool,
    assignor: Option<String>,
    /// The partitions this member was last told it owns.
    pub current: BTreeSet<Tp>,
    session_deadline: Instant,
    /// Set while the member must give partitions up: by then, or it is fenced.
    revoke_deadline: Option<Instant>,
}

pub struct ConsumerGroup {
    pub id: String,
    group_epoch: i32,
    assignment_epoch: i32,
    members: BTreeMap<String, Member>,
    pub target: BTreeMap<String, BTreeSet<Tp>>,
    statics: HashMap<String, String>,
    /// The subscribed topics' metadata the target was computed from.
    metadata: TopicsMeta,
    limits: ConsumerLimits,
}

impl ConsumerGroup {
    pub fn new(id: String, limits: ConsumerLimits) -> Self {
        Self {
            id,
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            statics: HashMap::new(),
            metadata: BTreeMap::new(),
            limits,
        }
    }

    pub fn group_epoch(&self) -> i32 {
        self.group_epoch
    }

    pub fn assignment_epoch(&self) -> i32 {
        self.assignment_epoch
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.get(id)
    }

    /// Kafka's names for a consumer group's states.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.group_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch || self.target.get(&m.id) != Some(&m.current))
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Resolves every member's subscription against `topics`: its names and the topics its
    /// regex matches. Each distinct regex is matched once. True if any member's changed.
    fn resolve(&mut self, topics: &TopicsMeta) -> bool {
        let mut matched: HashMap<String, BTreeSet<String>> = HashMap::new();
        for m in self.members.values() {
            if let (Some(pattern), Some(re)) = (&m.regex, &m.compiled) {
                matched
                    .entry(pattern.clone())
                    .or_insert_with(|| topics.keys().filter(|t| re.is_match(t)).cloned().collect());
            }
        }
        let mut changed = false;
        for m in self.members.values_mut() {
            let mut resolved: BTreeSet<String> = m.subscribed.iter().cloned().collect();
            if let Some(set) = m.regex.as_ref().and_then(|p| matched.get(p)) {
                resolved.extend(set.iter().cloned());
            }
            if resolved != m.resolved {
                m.resolved = resolved;
                changed = true;
            }
        }
        changed
    }

    /// A member naming an instance id must be the member that holds it (Kafka's
    /// `throwIfStaticMemberIsUnknown` and `throwIfInstanceIdIsFenced`).
    fn check_instance(&self, req: &HeartbeatRequest) -> Result<(), HeartbeatResult> {
        let Some(instance) = &req.instance_id else {
            return Ok(());
        };
        match self.statics.get(instance) {
            None => Err(HeartbeatResult::error(
                codes::UNKNOWN_MEMBER_ID,
                &format!("Instance id {instance} is unknown."),
            )),
            Some(holder) if *holder != req.member_id => Err(HeartbeatResult::error(
                codes::FENCED_INSTANCE_ID,
                &format!(
                    "Static member {} with instance id {instance} was fenced by member {holder}.",
                    req.member_id
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    pub fn heartbeat(
        &mut self,
        req: HeartbeatRequest,
        topics: &TopicsMeta,
        now: Instant,
    ) -> HeartbeatResult {
        if let Some(a) = &req.server_assignor {
            if !ASSIGNORS.contains(&a.as_str()) {
                return HeartbeatResult::error(
                    codes::UNSUPPORTED_ASSIGNOR,
                    "unknown server assignor",
                );
            }
        }
        let regex = match req.subscribed_topic_regex.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(pattern) => match compile_regex(pattern) {
                Ok(re) => Some(Some((pattern.to_owned(), re))),
                Err(why) => {
                    return HeartbeatResult::error(
                        codes::INVALID_REGULAR_EXPRESSION,
                        &format!("SubscribedTopicRegex `{pattern}` is not a valid regular expression: {why}."),
                    )
                }
            },
        };
        let mut changed = false;
        let member_id = match req.member_epoch {
            0 => match self.join(&req, now) {
                Ok((id, new)) => {
                    changed = new;
                    id
                }
                Err(e) => return e,
            },
            -1 | -2 => return self.leave(&req, now),
            epoch if epoch > 0 => {
                if let Err(e) = self.check_instance(&req) {
                    return e;
                }
                let Some(m) = self.members.get(&req.member_id) else {
                    return HeartbeatResult::error(codes::UNKNOWN_MEMBER_ID, "unknown member");
                };
                let previous_ok = epoch == m.previous_epoch
                    && req.owned.as_ref().is_some_and(|o| o.is_subset(&m.current));
                if epoch != m.epoch && !previous_ok {
                    return HeartbeatResult::error(
                        codes::FENCED_MEMBER_EPOCH,
                        "stale member epoch",
                    );
                }
                req.member_id.clone()
            }
            _ => return HeartbeatResult::error(codes::INVALID_REQUEST, "invalid member epoch"),
        };
        if let Some(m) = self.members.get_mut(&member_id) {
            m.session_deadline = now + self.limits.session_timeout;
            m.rebalance_timeout = req.rebalance_timeout;
            m.rack_id = req.rack_id.clone().or(m.rack_id.take());
            if let Some(names) = &req.subscribed_topic_names {
                let mut names = names.clone();
                names.sort();
                names.dedup();
                if names != m.subscribed {
                    m.subscribed = names;
                    changed = true;
                }
            }
            if let Some(regex) = regex {
                let (pattern, compiled) = regex.unzip();
                if pattern != m.regex {
                    m.regex = pattern;
                    m.compiled = compiled;
                    changed = true;
                }
            }
            if req.server_assignor.is_some() {
                m.assignor = req.server_assignor.clone();
            }
            if let Some(owned) = &req.owned {
                // What it reports not holding any more has been released.
                m.current = m.current.intersection(owned).copied().collect();
            }
        }
        changed |= self.resolve(topics);
        let wanted: BTreeSet<&String> = self.members.values().flat_map(|m| &m.resolved).collect();
        let metadata: TopicsMeta = topics
            .iter()
            .filter(|(name, _)| wanted.contains(*name))
            .map(|(n, v)| (n.clone(), *v))
            .collect();
        if metadata != self.metadata {
            self.metadata = metadata;
            changed = true;
        }
        if changed {
            self.group_epoch += 1;
        }
        if self.assignment_epoch < self.group_epoch {
            self.target = self.compute_target();
            self.assignment_epoch = self.group_epoch;
        }
        let mut result = self.reconcile(&member_id, now);
        if req.member_epoch == 0 {
            // A joining member always gets its assignment, even an empty one.
            let current = self.members.get(&member_id).map(|m| m.current.clone());
            result.assignment = result.assignment.or(current);
        }
        result
    }

    /// Adds the member; true when that changes the group (not a static member's return).
    fn join(
        &mut self,
        req: &HeartbeatRequest,
        now: Instant,
    ) -> Result<(String, bool), HeartbeatResult> {
        if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
            return Err(HeartbeatResult::error(
                codes::INVALID_REQUEST,
                "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
            ));
        }
        let rejoining = self.members.contains_key(&req.member_id)
            || req
                .instance_id
                .as_ref()
                .is_some_and(|i| self.statics.contains_key(i));
        if !rejoining && self.members.len() >= self.limits.max_size {
            return Err(HeartbeatResult::error(
                codes::GROUP_MAX_SIZE_REACHED,
                &format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    self.limits.max_size
                ),
            ));
        }
        // v0: the broker names members; v1 (KIP-1082): the client does.
        let member_id = if req.member_id.is_empty() {
            Uuid::new_v4().simple().to_string()
        } else {
            req.member_id.clone()
        };
        let mut member = Member {
            id: member_id.clone(),
            instance_id: req.instance_id.clone(),
            rack_id: req.rack_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            epoch: 0,
            previous_epoch: -1,
            rebalance_timeout: req.rebalance_timeout,
            subscribed: Vec::new(),
            regex: None,
            compiled: None,
            resolved: BTreeSet::new(),
            left_static: false,
            assignor: req.server_assignor.clone(),
            current: BTreeSet::new(),
            session_deadline: now + self.limits.session_timeout,
            revoke_deadline: None,
        };
        if let Some(instance) = &req.instance_id {
            if let Some(old_id) = self.statics.get(instance).cloned() {
                // A static member back: it takes over its predecessor's place and partitions
                // (KIP-345), without moving the group epoch.
                if let Some(old) = self.members.get(&old_id) {
                    // Only once the holder has left (epoch -2) may another member take the
                    // instance id over; the holder itself may rejoin under its own id.
                    if !old.left_static && old_id != member_id {
                        return Err(HeartbeatResult::error(
                            codes::UNRELEASED_INSTANCE_ID,
                            &format!(
                                "Static member {member_id} with instance id {instance} cannot join the group because the instance id is owned by member {old_id}."
                            ),
                        ));
                    }
                }
                let mut returned = false;
                if let Some(old) = self.members.remove(&old_id) {
                    member.current = old.current;
                    member.epoch = old.epoch;
                    member.previous_epoch = old.previous_epoch;
                    member.subscribed = old.subscribed;
                    member.regex = old.regex;
                    member.compiled = old.compiled;
                    member.resolved = old.resolved;
                    if let Some(t) = self.target.remove(&old_id) {
                        self.target.insert(member_id.clone(), t);
                    }
                    returned = true;
                }
                self.statics.insert(instance.clone(), member_id.clone());
                self.members.insert(member_id.clone(), member);
                return Ok((member_id, !returned));
            }
            self.statics.insert(instance.clone(), member_id.clone());
        } else {
            // Rejoining under the same id (after being fenced) starts over.
            self.members.remove(&member_id);
        }
        self.members.insert(member_id.clone(), member);
        Ok((member_id, true))
    }

    fn leave(&mut self, req: &HeartbeatRequest, now: Instant) -> HeartbeatResult {
        if let Err(e) = self.check_instance(req) {
            return e;
        }
        let Some(m) = self.members.get(&req.member_id) else {
            return HeartbeatResult::error(codes::UNKNOWN_MEMBER_ID, "unknown member");
        };
        if req.member_epoch == -2 && m.instance_id.is_some() {
            // A static member leaving for a while: its partitions wait for it until its session
            // times out, and its instance id is free for the next member to join with it.
            if let Some(m) = self.members.get_mut(&req.member_id) {
                m.session_deadline = now + self.limits.session_timeout;
                m.left_static = true;
            }
        } else {
            self.remove(&req.member_id);
        }
        HeartbeatResult {
            member_id: Some(req.member_id.clone()),
            member_epoch: req.member_epoch,
            ..HeartbeatResult::default()
        }
    }

    fn remove(&mut self, member_id: &str) {
        if let Some(m) = self.members.remove(member_id) {
            if let Some(instance) = &m.instance_id {
                if self.statics.get(instance).map(String::as_str) == Some(member_id) {
                    self.statics.remove(instance);
                }
            }
            self.target.remove(member_id);
            self.group_epoch += 1;
        }
    }

    /// One step of the member towards its target.
    fn reconcile(&mut self, member_id: &str, now: Instant) -> HeartbeatResult {
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let held_by_others: BTreeSet<Tp> = self
            .members
            .values()
            .filter(|m| m.id != member_id)
            .flat_map(|m| m.current.iter().copied())
            .collect();
        let assignment_epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(member_id) else {
            return HeartbeatResult::error(codes::UNKNOWN_MEMBER_ID, "unknown member");
        };
        let mut result = HeartbeatResult {
            member_id: Some(m.id.clone()),
            ..HeartbeatResult::default()
        };
        if !m.current.is_subset(&target) {
            // First give up what is no longer this member's.
            let keep: BTreeSet<Tp> = m.current.intersection(&target).copied().collect();
            if m.revoke_deadline.is_none() {
                m.revoke_deadline = Some(now + m.rebalance_timeout);
            }
            result.member_epoch = m.epoch;
            result.assignment = Some(keep);
            return result;
        }
        m.revoke_deadline = None;
        let next: BTreeSet<Tp> = target
            .iter()
            .filter(|tp| m.current.contains(tp) || !held_by_others.contains(tp))
            .copied()
            .collect();
        if m.epoch != assignment_epoch || next != m.current {
            if m.epoch != assignment_epoch {
                m.previous_epoch = m.epoch;
                m.epoch = assignment_epoch;
            }
            m.current = next.clone();
            result.assignment = Some(next);
        }
        result.member_epoch = m.epoch;
        result
    }

    /// Expires members whose session ran out, and fences those that kept partitions past
    /// their rebalance timeout.
    pub fn tick(&mut self, now: Instant) {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.session_deadline <= now || m.revoke_deadline.is_some_and(|d| d <= now))
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            tracing::info!(group = %self.id, member = %id, "consumer group member expired");
            self.remove(&id);
        }
    }

    /// Whether an OffsetCommit (v9+) or OffsetFetch with this member and epoch may proceed.
    /// Whether a TxnOffsetCommit may be stored (KIP-447): no member id and no epoch always may;
    /// a named member must be in the group, at the epoch named (ILLEGAL_GENERATION otherwise,
    /// as Kafka's coordinator answers a transactional commit).
    pub fn check_txn_commit(&self, member_id: &str, epoch: i32) -> Result<(), i16> {
        if member_id.is_empty() && epoch < 0 {
            return Ok(());
        }
        let m = self
            .members
            .get(member_id)
            .ok_or(codes::UNKNOWN_MEMBER_ID)?;
        if epoch >= 0 && epoch != m.epoch {
            return Err(codes::ILLEGAL_GENERATION);
        }
        Ok(())
    }

    pub fn check_member_epoch(&self, member_id: &str, epoch: i32) -> Result<(), i16> {
        if epoch < 0 && member_id.is_empty() {
            return if self.members.is_empty() {
                Ok(())
            } else {
                Err(codes::UNKNOWN_MEMBER_ID)
            };
        }
        let m = self
            .members
            .get(member_id)
            .ok_or(codes::UNKNOWN_MEMBER_ID)?;
        if epoch != m.epoch {
            return Err(codes::STALE_MEMBER_EPOCH);
        }
        Ok(())
    }

    fn compute_target(&self) -> BTreeMap<String, BTreeSet<Tp>> {
        let assignor = self
            .members
            .values()
            .find_map(|m| m.assignor.as_deref())
            .unwrap_or(ASSIGNORS[0]);
        let subscriptions: BTreeMap<&str, BTreeSet<&str>> = self
            .members
            .values()
            .map(|m| {
                (
                    m.id.as_str(),
                    m.resolved.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        if assignor == "range" {
            range_assign(&subscriptions, &self.metadata)
        } else {
            uniform_assign(&subscriptions, &self.metadata, &self.target)
        }
    }
}

/// Kafka's range assignor: per topic, the subscribed members in id order each take a
/// contiguous range, the first ones one partition more when it does not divide evenly.
pub fn range_assign(
    subscriptions: &BTreeMap<&str, BTreeSet<&str>>,
    metadata: &TopicsMeta,
) -> BTreeMap<String, BTreeSet<Tp>> {
    let mut out: BTreeMap<String, BTreeSet<Tp>> = subscriptions
        .keys()
        .map(|m| (m.to_string(), BTreeSet::new()))
        .collect();
    for (name, &(id, partitions)) in metadata {
        let members: Vec<&str> = subscriptions
            .iter()
            .filter(|(_, s)| s.contains(name.as_str()))
            .map(|(m, _)| *m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let n = usize::try_from(partitions).unwrap_or(0);
        let (each, extra) = (n / members.len(), n % members.len());
        let mut next = 0usize;
        for (i, m) in members.iter().enumerate() {
            let take = each + usize::from(i < extra);
            let set = out.entry(m.to_string()).or_default();
            for p in next..next + take {
                set.insert((id, p as i32));
            }
            next += take;
        }
    }
    out
}

/// A balanced and sticky assignment: every subscribed partition goes to one member subscribed
/// to its topic; members keep what they had as long as that stays within an even share.
pub fn uniform_assign(
    subscriptions: &BTreeMap<&str, BTreeSet<&str>>,
    metadata: &TopicsMeta,
    previous: &BTreeMap<String, BTreeSet<Tp>>,
) -> BTreeMap<String, BTreeSet<Tp>> {
    let mut out: BTreeMap<String, BTreeSet<Tp>> = subscriptions
        .keys()
        .map(|m| (m.to_string(), BTreeSet::new()))
        .collect();
    // Every partition some member subscribes to, with who may take it.
    let mut partitions: Vec<(Tp, Vec<&str>)> = Vec::new();
    for (name, &(id, count)) in metadata {
        let eligible: Vec<&str> = subscriptions
            .iter()
            .filter(|(_, s)| s.contains(name.as_str()))
            .map(|(m, _)| *m)
            .collect();
        if eligible.is_empty() {
            continue;
        }
        for p in 0..count {
            partitions.push(((id, p), eligible.clone()));
        }
    }
    if out.is_empty() {
        return out;
    }
    let share = partitions.len().div_ceil(out.len());
    // Sticky pass: previous owners keep partitions up to an even share.
    let mut unassigned = Vec::new();
    for (tp, eligible) in &partitions {
        let owner = previous
            .iter()
            .find(|(_, set)| set.contains(tp))
            .map(|(m, _)| m.as_str())
            .filter(|m| eligible.contains(m));
        match owner.and_then(|m| out.get_mut(m)) {
            Some(set) if set.len() < share => {
                set.insert(*tp);
            }
            _ => unassigned.push((*tp, eligible)),
        }
    }
    // The rest to the eligible member holding the fewest.
    for (tp, eligible) in unassigned {
        let least = eligible
            .iter()
            .min_by_key(|m| (out.get(**m).map_or(0, BTreeSet::len), **m))
            .copied();
        if let Some(m) = least {
            out.entry(m.to_string()).or_default().insert(tp);
        }
    }
    out
}

#[cfg(test)]
#[path = "consumer_tests.rs"]
mod tests;
