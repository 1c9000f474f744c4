//! The generated messages (and servers) of ../../proto, shared by the server
//! and the client binaries.

include!(concat!(env!("OUT_DIR"), "/_.rs"));

/// The Observer's package, `conform.v1`.
pub mod observer {
    include!(concat!(env!("OUT_DIR"), "/conform.v1.rs"));
}
