//! grpc-conform: a cross-language gRPC conformance and interop test kit.
//!
//! The pipeline, one module a stage: fixture (parse) → plan (select, expand)
//! → drive (talk to the target) → transcript (what was seen, normalised) →
//! snapshot (compare, write) → report (human, JSON, JUnit). The reference
//! server of the contract is [`reference`].

pub mod bench;
pub mod capabilities;
pub mod cli;
pub mod client;
pub mod client_driver;
pub mod contract;
pub mod coverage;
pub mod descriptors;
pub mod drive;
pub mod fixture;
pub mod judge;
pub mod known;
pub mod limits;
pub mod locate;
pub mod message;
pub mod model;
pub mod normalise;
pub mod partition;
pub mod plan;
pub mod proto;
pub mod reference;
pub mod report;
pub mod run;
pub mod session;
pub mod snapshot;
pub mod suggest;
pub mod tls;
pub mod transcript;
pub mod wire;
