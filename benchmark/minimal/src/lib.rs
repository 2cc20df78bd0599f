//! The least a napi-rs addon can be: one exported function. The benchmark's
//! require() section loads it beside handover-native, each in a fresh
//! process, to tell what napi-rs itself costs from what ours adds.

use napi_derive::napi;

/// The sum of two numbers: something to call, to show the addon loaded.
#[napi]
pub fn sum(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}
