//! One consumer group under the classic protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup),
//! as Kafka's group coordinator runs it: generations, a leader that computes the assignment,
//! member ids issued by the coordinator (KIP-394), static members (KIP-345), session and
//! rebalance timeouts.
//!
//! Everything here is synchronous and takes the time as an argument, so the rules can be tested
//! without a network or a clock. A request that must wait (a join until the rebalance completes,
//! a sync until the leader's assignment arrives) gets a oneshot receiver; the group answers it
//! when the moment comes, from a later request or from [`Group::tick`].

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::protocol::codes;

/// Where a group is in its life, with Kafka's names (DescribeGroups and ListGroups show them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

/// Limits from the broker's configuration (Kafka's `group.*` settings).
#[derive(Clone, Debug)]
pub struct GroupLimits {
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group waits
    /// for more members, so that a fleet starting together gets one rebalance, not one each.
    pub initial_rebalance_delay: Duration,
    pub max_size: usize,
}

impl Default for GroupLimits {
    fn default() -> Self {
        Self {
            min_session_timeout: Duration::from_secs(6),
            max_session_timeout: Duration::from_secs(1800),
            initial_rebalance_delay: Duration::from_secs(3),
            max_size: usize::MAX,
        }
    }
}

pub struct JoinRequest {
    pub version: i16,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct JoinResult {
    pub error: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    pub member_id: String,
    /// For the leader: every member with its metadata for the chosen protocol.
    pub members: Vec<JoinedMember>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

impl JoinResult {
    fn error(error: i16, member_id: &str) -> Self {
        Self {
            error,
            generation_id: -1,
            member_id: member_id.to_owned(),
            ..Self::default()
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    fn error(error: i16) -> Self {
        Self {
            error,
            ..Self::default()
        }
    }
}

pub struct SyncRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

/// A join or sync answered now, or later through the receiver.
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

pub struct Member {
    pub id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
    heartbeat_deadline: Instant,
}

impl Member {
    /// This member's metadata for `protocol`.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

pub struct Group {
    pub id: String,
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    /// By member id; ordered, so the first member to lead is the same on every run.
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED (KIP-394) and not yet used to join, with
    /// the moment they lapse.
    pending: HashMap<String, Instant>,
    /// `group.instance.id` → member id (KIP-345).
    statics: HashMap<String, String>,
    /// When the join phase of a rebalance ends, whoever has not rejoined by then.
    join_deadline: Option<Instant>,
    /// The first rebalance of an empty group waits at least until here for more members.
    initial_delay_until: Option<Instant>,
    limits: GroupLimits,
}

impl Group {
    pub fn new(id: String, limits: GroupLimits) -> Self {
        Self {
            id,
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            statics: HashMap::new(),
            join_deadline: None,
            initial_delay_until: None,
            limits,
        }
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    fn new_member_id(&self, client_id: &str) -> String {
        format!("{client_id}-{}", uuid::Uuid::new_v4())
    }

    /// The protocols every member supports (all of a new member's, for an empty group).
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
    }

    pub fn join(&mut self, req: JoinRequest, now: Instant) -> Reply<JoinResult> {
        let fail = |code| Reply::Now(JoinResult::error(code, &req.member_id));
        if self.state == GroupState::Dead {
            return fail(codes::COORDINATOR_NOT_AVAILABLE);
        }
        if req.session_timeout < self.limits.min_session_timeout
            || req.session_timeout > self.limits.max_session_timeout
        {
            return fail(codes::INVALID_SESSION_TIMEOUT);
        }
        if !self.supports(&req.protocol_type, &req.protocols) {
            return fail(codes::INCONSISTENT_GROUP_PROTOCOL);
        }
        if req.member_id.is_empty() {
            return self.join_unknown(req, now);
        }
        if self.pending.remove(&req.member_id).is_some() {
            return self.add_member_and_rebalance(req.member_id.clone(), req, now);
        }
        if let Some(instance) = &req.group_instance_id {
            if self.statics.get(instance) != Some(&req.member_id) {
                return fail(if self.statics.contains_key(instance) {
                    codes::FENCED_INSTANCE_ID
                } else {
                    codes::UNKNOWN_MEMBER_ID
                });
            }
        }
        if !self.members.contains_key(&req.member_id) {
            return fail(codes::UNKNOWN_MEMBER_ID);
        }
        self.join_current(req, now)
    }

    fn join_unknown(&mut self, req: JoinRequest, now: Instant) -> Reply<JoinResult> {
        if let Some(instance) = req.group_instance_id.clone() {
            if let Some(old_id) = self.statics.get(&instance).cloned() {
                return self.replace_static(old_id, req, now);
            }
        }
        if self.members.len() + self.pending.len() >= self.limits.max_size {
            return Reply::Now(JoinResult::error(codes::GROUP_MAX_SIZE_REACHED, ""));
        }
        let member_id = self.new_member_id(&req.client_id);
        if req.version >= 4 && req.group_instance_id.is_none() {
            // KIP-394: the member must come back with this id, so a client that times out and
            // retries does not leave a ghost member behind.
            let lapses = now + req.session_timeout;
            self.pending.insert(member_id.clone(), lapses);
            return Reply::Now(JoinResult::error(codes::MEMBER_ID_REQUIRED, &member_id));
        }
        self.add_member_and_rebalance(member_id, req, now)
    }

    /// A static member back under a new member id: it takes the old member's place, and a
    /// stable group keeps its assignment without a rebalance (KIP-345).
    fn replace_static(
        &mut self,
        old_id: String,
        req: JoinRequest,
        now: Instant,
    ) -> Reply<JoinResult> {
        let new_id = self.new_member_id(&req.client_id);
        let Some(mut member) = self.members.remove(&old_id) else {
            // The mapping outlived its member; start over as a new one.
            self.statics
                .remove(req.group_instance_id.as_deref().unwrap_or_default());
            return self.add_member_and_rebalance(new_id, req, now);
        };
        // Whoever still waits under the old id is a zombie of the same instance.
        if let Some(w) = member.join_waiter.take() {
            let _ = w.send(JoinResult::error(codes::FENCED_INSTANCE_ID, &old_id));
        }
        if let Some(w) = member.sync_waiter.take() {
            let _ = w.send(SyncResult::error(codes::FENCED_INSTANCE_ID));
        }
        let protocols_changed = member.protocols != req.protocols;
        member.id = new_id.clone();
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        member.session_timeout = req.session_timeout;
        member.rebalance_timeout = req.rebalance_timeout;
        member.protocols = req.protocols.clone();
        member.heartbeat_deadline = now + req.session_timeout;
        if let Some(instance) = &req.group_instance_id {
            self.statics.insert(instance.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        self.members.insert(new_id.clone(), member);
        match self.state {
            GroupState::Stable if !protocols_changed => {
                let is_leader = self.leader.as_deref() == Some(new_id.as_str());
                let mut result = self.current_join_result(&new_id, is_leader && req.version < 9);
                // The leader is told not to assign again: the assignment stands (v9+).
                result.skip_assignment = is_leader && req.version >= 9;
                Reply::Now(result)
            }
            GroupState::PreparingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(&new_id) {
                    m.join_waiter = Some(tx);
                }
                self.try_complete_join(now);
                Reply::Later(rx)
            }
            _ => self.wait_for_rebalance(&new_id, now),
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        req: JoinRequest,
        now: Instant,
    ) -> Reply<JoinResult> {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(instance) = &req.group_instance_id {
            self.statics.insert(instance.clone(), member_id.clone());
        }
        let (tx, rx) = oneshot::channel();
        self.members.insert(
            member_id.clone(),
            Member {
                id: member_id,
                group_instance_id: req.group_instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout: req.session_timeout,
                rebalance_timeout: req.rebalance_timeout,
                protocol_type: req.protocol_type,
                protocols: req.protocols,
                assignment: Bytes::new(),
                join_waiter: Some(tx),
                sync_waiter: None,
                heartbeat_deadline: now + req.session_timeout,
            },
        );
        match self.state {
            GroupState::PreparingRebalance => {
                // A newcomer during the initial delay pushes it back, within the rebalance timeout.
                if let (Some(until), Some(deadline)) =
                    (self.initial_delay_until, self.join_deadline)
                {
                    let later = now + self.limits.initial_rebalance_delay;
                    self.initial_delay_until = Some(later.min(deadline).max(until));
                }
                self.try_complete_join(now);
            }
            _ => self.prepare_rebalance(now),
        }
        Reply::Later(rx)
    }

    fn join_current(&mut self, req: JoinRequest, now: Instant) -> Reply<JoinResult> {
        let member_id = req.member_id.clone();
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        let Some(member) = self.members.get_mut(&member_id) else {
            return Reply::Now(JoinResult::error(codes::UNKNOWN_MEMBER_ID, &member_id));
        };
        let same = member.protocols == req.protocols;
        member.session_timeout = req.session_timeout;
        member.rebalance_timeout = req.rebalance_timeout;
        member.heartbeat_deadline = now + req.session_timeout;
        member.protocols = req.protocols;
        match self.state {
            GroupState::PreparingRebalance => {
                let (tx, rx) = oneshot::channel();
                member.join_waiter = Some(tx);
                self.try_complete_join(now);
                Reply::Later(rx)
            }
            // It lost the answer to its join: give it again.
            GroupState::CompletingRebalance if same => {
                Reply::Now(self.current_join_result(&member_id, is_leader))
            }
            // A follower rejoining with nothing new gets the current generation; the leader
            // rejoining, or anyone with new metadata, means a new assignment is wanted.
            GroupState::Stable if same && !is_leader => {
                Reply::Now(self.current_join_result(&member_id, false))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.wait_for_rebalance(&member_id, now)
            }
            GroupState::Empty | GroupState::Dead => {
                Reply::Now(JoinResult::error(codes::UNKNOWN_MEMBER_ID, &member_id))
            }
        }
    }

    fn wait_for_rebalance(&mut self, member_id: &str, now: Instant) -> Reply<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if let Some(m) = self.members.get_mut(member_id) {
            m.join_waiter = Some(tx);
        }
        self.prepare_rebalance(now);
        Reply::Later(rx)
    }

    fn current_join_result(&self, member_id: &str, with_members: bool) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinResult {
            error: codes::NONE,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members: if with_members {
                self.joined_members(&protocol)
            } else {
                Vec::new()
            },
        }
    }

    fn joined_members(&self, protocol: &str) -> Vec<JoinedMember> {
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }

    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            // The assignment being waited for is void: everyone rejoins.
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult::error(codes::REBALANCE_IN_PROGRESS));
                }
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        let deadline = now + timeout;
        if self.state == GroupState::Empty {
            let delay = self.limits.initial_rebalance_delay.min(timeout);
            self.initial_delay_until = Some(now + delay);
        } else {
            self.initial_delay_until = None;
        }
        self.join_deadline = Some(deadline);
        self.state = GroupState::PreparingRebalance;
        self.try_complete_join(now);
    }

    /// Ends the join phase once every member has rejoined (and no issued member id is still
    /// expected), or at the deadline without those that did not.
    fn try_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        if self.initial_delay_until.is_some_and(|until| now < until) {
            return;
        }
        let all_joined = self.members.values().all(|m| m.join_waiter.is_some());
        let timed_out = self.join_deadline.is_some_and(|d| now >= d);
        if !(timed_out || all_joined && self.pending.is_empty()) {
            return;
        }
        if timed_out {
            let gone: Vec<String> = self
                .members
                .values()
                .filter(|m| m.join_waiter.is_none())
                .map(|m| m.id.clone())
                .collect();
            for id in gone {
                self.remove_member(&id);
            }
        }
        self.complete_join(now);
    }

    fn complete_join(&mut self, now: Instant) {
        self.join_deadline = None;
        self.initial_delay_until = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.protocol_type = None;
            self.leader = None;
            return;
        }
        self.protocol = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone().unwrap_or_default();
        let everyone = self.joined_members(&protocol);
        for m in self.members.values_mut() {
            m.heartbeat_deadline = now + m.session_timeout;
            let Some(w) = m.join_waiter.take() else {
                continue;
            };
            let _ = w.send(JoinResult {
                error: codes::NONE,
                generation_id: self.generation,
                protocol_type: self.protocol_type.clone(),
                protocol_name: self.protocol.clone(),
                leader: leader.clone(),
                skip_assignment: false,
                member_id: m.id.clone(),
                members: if m.id == leader {
                    everyone.clone()
                } else {
                    Vec::new()
                },
            });
        }
    }

    /// Kafka's choice: each member votes for the first protocol in its own order that all
    /// members support; the most votes win, ties to the protocol named first by the group's
    /// first member.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .collect();
        let mut votes: Vec<(usize, &String)> = candidates.iter().map(|c| (0, *c)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n)) {
                if let Some(v) = votes.iter_mut().find(|(_, c)| *c == name) {
                    v.0 += 1;
                }
            }
        }
        let best = votes.iter().map(|(n, _)| *n).max()?;
        votes
            .into_iter()
            .find(|(n, _)| *n == best)
            .map(|(_, name)| name.clone())
    }

    fn remove_member(&mut self, member_id: &str) {
        let Some(mut m) = self.members.remove(member_id) else {
            return;
        };
        if let Some(instance) = &m.group_instance_id {
            if self.statics.get(instance).map(String::as_str) == Some(member_id) {
                self.statics.remove(instance);
            }
        }
        if let Some(w) = m.join_waiter.take() {
            let _ = w.send(JoinResult::error(codes::UNKNOWN_MEMBER_ID, member_id));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(SyncResult::error(codes::UNKNOWN_MEMBER_ID));
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
    }

    /// After members left or expired: the rest must rebalance, or the join phase may now be
    /// complete.
    fn after_removal(&mut self, now: Instant) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now),
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Member and generation checks shared by SyncGroup, Heartbeat and OffsetCommit.
    fn check_member(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), i16> {
        if let Some(instance) = instance {
            match self.statics.get(instance) {
                Some(id) if id != member_id => return Err(codes::FENCED_INSTANCE_ID),
                _ => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(codes::UNKNOWN_MEMBER_ID);
        }
        if generation != self.generation {
            return Err(codes::ILLEGAL_GENERATION);
        }
        Ok(())
    }

    pub fn sync(&mut self, req: SyncRequest, now: Instant) -> Reply<SyncResult> {
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            return Reply::Now(SyncResult::error(codes::UNKNOWN_MEMBER_ID));
        }
        if let Err(code) = self.check_member(
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
        ) {
            return Reply::Now(SyncResult::error(code));
        }
        let mismatch =
            |ours: &Option<String>, theirs: &Option<String>| theirs.is_some() && ours != theirs;
        if mismatch(&self.protocol_type, &req.protocol_type)
            || mismatch(&self.protocol, &req.protocol_name)
        {
            return Reply::Now(SyncResult::error(codes::INCONSISTENT_GROUP_PROTOCOL));
        }
        match self.state {
            GroupState::PreparingRebalance => {
                Reply::Now(SyncResult::error(codes::REBALANCE_IN_PROGRESS))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(&req.member_id) {
                    m.sync_waiter = Some(tx);
                    m.heartbeat_deadline = now + m.session_timeout;
                }
                if self.leader.as_deref() == Some(req.member_id.as_str()) {
                    let mut given: HashMap<String, Bytes> = req.assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    for m in self.members.values_mut() {
                        if let Some(w) = m.sync_waiter.take() {
                            let _ = w.send(SyncResult {
                                error: codes::NONE,
                                protocol_type: self.protocol_type.clone(),
                                protocol_name: self.protocol.clone(),
                                assignment: m.assignment.clone(),
                            });
                        }
                    }
                }
                Reply::Later(rx)
            }
            GroupState::Stable => {
                let assignment = self
                    .members
                    .get_mut(&req.member_id)
                    .map(|m| {
                        m.heartbeat_deadline = now + m.session_timeout;
                        m.assignment.clone()
                    })
                    .unwrap_or_default();
                Reply::Now(SyncResult {
                    error: codes::NONE,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    assignment,
                })
            }
            GroupState::Empty | GroupState::Dead => {
                Reply::Now(SyncResult::error(codes::UNKNOWN_MEMBER_ID))
            }
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            return codes::UNKNOWN_MEMBER_ID;
        }
        if let Err(code) = self.check_member(member_id, instance, generation) {
            return code;
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.heartbeat_deadline = now + m.session_timeout;
        }
        match self.state {
            GroupState::PreparingRebalance => codes::REBALANCE_IN_PROGRESS,
            _ => codes::NONE,
        }
    }

    /// LeaveGroup for one member, named by member id, by instance id, or both.
    pub fn leave(&mut self, member_id: &str, instance: Option<&str>, now: Instant) -> i16 {
        let target = match instance {
            Some(instance) => match self.statics.get(instance) {
                None => return codes::UNKNOWN_MEMBER_ID,
                Some(id) if !member_id.is_empty() && id != member_id => {
                    return codes::FENCED_INSTANCE_ID
                }
                Some(id) => id.clone(),
            },
            None => member_id.to_owned(),
        };
        if self.pending.remove(&target).is_some() {
            self.try_complete_join(now);
            return codes::NONE;
        }
        if !self.members.contains_key(&target) {
            return codes::UNKNOWN_MEMBER_ID;
        }
        self.remove_member(&target);
        self.after_removal(now);
        codes::NONE
    }

    /// Whether an OffsetCommit from this member may be stored, as Kafka decides it: a commit
    /// from outside the group (generation -1, no member id) only while the group has no members.
    pub fn check_commit(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), i16> {
        if self.state == GroupState::Dead {
            return Err(codes::COORDINATOR_NOT_AVAILABLE);
        }
        if generation < 0 && member_id.is_empty() {
            return if self.members.is_empty() {
                Ok(())
            } else {
                Err(codes::UNKNOWN_MEMBER_ID)
            };
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(codes::REBALANCE_IN_PROGRESS);
        }
        self.check_member(member_id, instance, generation)?;
        // A commit is a sign of life too.
        if let Some(m) = self.members.get_mut(member_id) {
            m.heartbeat_deadline = now + m.session_timeout;
        }
        Ok(())
    }

    /// Whether a TxnOffsetCommit from this member may be stored, as Kafka's coordinator decides
    /// it (KIP-447): no member id and no generation (a producer that does not name its consumer,
    /// v0-2) always may; a named member must be in the group, a named generation the current
    /// one. Unlike OffsetCommit, a rebalance in progress does not stop it: the transaction
    /// fences a zombie by its generation, and the offsets wait in it until it commits.
    pub fn check_txn_commit(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), i16> {
        if self.state == GroupState::Dead {
            return Err(codes::COORDINATOR_NOT_AVAILABLE);
        }
        if let Some(instance) = instance {
            match self.statics.get(instance) {
                Some(id) if id != member_id => return Err(codes::FENCED_INSTANCE_ID),
                _ => {}
            }
        }
        if !member_id.is_empty() && !self.members.contains_key(member_id) {
            return Err(codes::UNKNOWN_MEMBER_ID);
        }
        if generation >= 0 && generation != self.generation {
            return Err(codes::ILLEGAL_GENERATION);
        }
        Ok(())
    }

    /// Expires silent members and lapsed member ids, and ends join phases whose time is up.
    pub fn tick(&mut self, now: Instant) {
        self.pending.retain(|_, lapses| *lapses > now);
        let expired: Vec<String> = self
            .members
            .values()
            // A member waiting for its join answer is not expected to heartbeat.
            .filter(|m| m.join_waiter.is_none() && m.heartbeat_deadline <= now)
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member(id);
        }
        if expired.is_empty() {
            self.try_complete_join(now);
        } else {
            self.after_removal(now);
        }
    }

    /// Marks the group gone (DeleteGroups); every waiter is told.
    pub fn kill(&mut self) {
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            self.remove_member(&id);
        }
        self.pending.clear();
        self.state = GroupState::Dead;
    }
}

#[cfg(test)]
#[path = "classic_tests.rs"]
mod tests;
