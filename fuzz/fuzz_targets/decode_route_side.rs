//! The route's decoder (vnet messages in) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::codec::{RouteCodec, VnetCodec};
use proto::message::VnetMsg;

mod common;

fuzz_target!(|data: &[u8]| {
    common::check::<RouteCodec, VnetCodec>(data, |msg: &VnetMsg| {
        // The route validates every message it reads; it must not panic.
        if let Err(err) = msg.validate() {
            let _ = err.to_string();
        }
    });
});
