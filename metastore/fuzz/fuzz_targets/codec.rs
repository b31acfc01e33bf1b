//! Bytes as every postcard body a metastore node decodes from a peer, an agent or its own disk:
//! Raft's append, vote and snapshot requests and their answers, agents' writes and reads and their
//! answers, journal records, and snapshot states of every binary version (then rebuilt, as a node
//! does after reading one). None may panic or allocate past what the input holds. The first byte
//! picks the type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest, VoteResponse,
};
use skiff_metastore::codec::decode;
use skiff_metastore::raft::journal::Record;
use skiff_metastore::raft::{snapshot, TypeConfig};
use skiff_metastore::rpc::{NodeError, NodeId, Read, ReadAnswer};
use skiff_metastore::types::{Command, CommandResponse};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 12 {
        0 => drop(decode::<Command>(bytes)),
        1 => drop(decode::<Result<CommandResponse, NodeError>>(bytes)),
        2 => drop(decode::<Read>(bytes)),
        3 => drop(decode::<Result<ReadAnswer, NodeError>>(bytes)),
        4 => drop(decode::<Record>(bytes)),
        5 => drop(decode::<AppendEntriesRequest<TypeConfig>>(bytes)),
        6 => drop(decode::<AppendEntriesResponse<NodeId>>(bytes)),
        7 => drop(decode::<VoteRequest<NodeId>>(bytes)),
        8 => drop(decode::<VoteResponse<NodeId>>(bytes)),
        9 => drop(decode::<InstallSnapshotRequest<TypeConfig>>(bytes)),
        _ => {
            // Snapshot states: every binary version, 2 to 10 (the current one).
            let version = 2 + u32::from(kind / 12 % 9);
            if let Ok(mut state) = snapshot::decode_state(version, bytes) {
                state.rebuild_derived();
            }
        }
    }
});
