//! A vnet's decoder (route messages in) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::codec::{RouteCodec, VnetCodec};
use proto::message::RouteMsg;

mod common;

fuzz_target!(|data: &[u8]| {
    common::check::<VnetCodec, RouteCodec>(data, |msg: &RouteMsg| {
        let _ = format!("{msg:?}");
    });
});
