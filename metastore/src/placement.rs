//! Where partitions and groups are placed among the live agents: rendezvous hashing over their
//! broker ids. Agents use it to lead partitions and coordinate groups, and the state machine uses
//! the same function to refuse a group's offsets from an agent that no longer coordinates it, so
//! both must compute exactly the same placement: it lives here, once.

use crate::types::{AgentInfo, TopicId};

/// The agent that leads a partition: the highest score of a hash over (agent, topic, partition),
/// rendezvous hashing. Only the partitions of an agent that leaves or joins move.
pub fn leader_of(topic: TopicId, partition: i32, agents: &[AgentInfo]) -> Option<&AgentInfo> {
    agents.iter().max_by_key(|a| {
        let key = topic
            .as_bytes()
            .iter()
            .copied()
            .chain(partition.to_be_bytes());
        (score(a.broker_id, key), a.broker_id)
    })
}

/// The agent that coordinates a consumer group (or another coordinator key), by the same
/// rendezvous hashing as partition leaders: only the groups of an agent that leaves or joins move.
pub fn coordinator_of<'a>(key: &str, agents: &'a [AgentInfo]) -> Option<&'a AgentInfo> {
    agents.iter().max_by_key(|a| {
        // A tag byte keeps a group's key apart from any topic's.
        let key = std::iter::once(b'g').chain(key.bytes());
        (score(a.broker_id, key), a.broker_id)
    })
}

/// FNV-1a, written out: every agent must compute the same scores whatever its build, which the
/// standard library's hasher does not promise.
fn score(broker_id: i32, key: impl Iterator<Item = u8>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = broker_id.to_be_bytes().into_iter().chain(key);
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // FNV's low bits mix poorly for inputs this similar; a final avalanche (from splitmix64)
    // spreads them.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents(ids: &[i32]) -> Vec<AgentInfo> {
        ids.iter()
            .map(|&id| AgentInfo {
                broker_id: id,
                host: "h".into(),
                port: 9092 + id as u16,
                last_heartbeat_ms: 0,
                session_timeout_ms: 10_000,
            })
            .collect()
    }

    fn leaders(ids: &[i32]) -> Vec<i32> {
        let topic = TopicId::from_u128(7);
        let agents = agents(ids);
        (0..1000)
            .map(|p| {
                leader_of(topic, p, &agents)
                    .map(|a| a.broker_id)
                    .unwrap_or(-1)
            })
            .collect()
    }

    #[test]
    fn partitions_spread_over_agents() {
        let l = leaders(&[0, 1, 2]);
        for id in 0..3 {
            let n = l.iter().filter(|&&x| x == id).count();
            assert!((250..420).contains(&n), "agent {id} leads {n} of 1000");
        }
    }

    #[test]
    fn only_the_partitions_of_a_departed_agent_move() {
        let before = leaders(&[0, 1, 2]);
        let after = leaders(&[0, 2]);
        for (b, a) in before.iter().zip(&after) {
            if *b != 1 {
                assert_eq!(a, b, "a partition not led by the departed agent moved");
            } else {
                assert_ne!(*a, 1);
            }
        }
    }

    #[test]
    fn no_agents_no_leader() {
        assert!(leader_of(TopicId::from_u128(1), 0, &[]).is_none());
    }
}
