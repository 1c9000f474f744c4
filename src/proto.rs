//! The contract's protos, compiled by `build.rs`.

/// The file descriptor set of `proto/`, embedded for prost-reflect and server
/// reflection.
pub const CONTRACT_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/contract_descriptor.bin"));

/// ChatService, Greeter and SensorService: no proto package, as the contract fixes.
pub mod contract {
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

/// The Observer, package `conform.v1`.
pub mod observer {
    include!(concat!(env!("OUT_DIR"), "/conform.v1.rs"));
}
