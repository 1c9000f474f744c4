//! Byte-level views of the two framings a gRPC call rides on: HTTP/2 frames
//! ([`frame`]) and gRPC's length-prefixed messages ([`message`]). Both are
//! incremental, because neither TCP reads nor DATA frames respect the
//! boundaries of what they carry.

pub mod bounds;
pub mod frame;
pub mod log;
pub mod message;
pub mod recorder;
