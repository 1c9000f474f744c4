//! The reference implementation of the contract (`docs/contract.md`): the server whose
//! transcripts are the golden snapshots.
//!
//! - [`config`]: every policy value, settable at start.
//! - [`call`]: what the server observed of each call, for the Observer.
//! - [`services`]: the contract's methods, control headers and the Observer.
//! - [`server`]: the accept loop on hyper's HTTP/2 server, the per-call layer
//!   (deadlines, sizes, response encoding, outcome), the IO tap that enforces
//!   the ping policy.

pub mod call;
pub mod config;
pub mod server;
pub mod services;

pub use call::{CallCtx, CallRegistry};
pub use config::{Encoding, PingPolicy, ReferenceConfig, ServerKeepalive};
pub use server::{ReferenceServer, ServeError};
