//! Commands decoded from the input, applied one after another to one state machine, as every
//! replica applies what the Raft log holds. A command that makes `apply` panic would stop every
//! replica at the same entry, so none may, whatever its fields say. The input is a sequence of
//! length-prefixed (one byte) postcard commands.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_metastore::codec::decode;
use skiff_metastore::state_machine::StateMachine;
use skiff_metastore::types::Command;

fuzz_target!(|data: &[u8]| {
    let mut state = StateMachine::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (cmd, tail) = tail.split_at(len);
        rest = tail;
        if let Ok(cmd) = decode::<Command>(cmd) {
            let _ = state.apply(&cmd);
        }
    }
});
