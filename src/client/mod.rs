//! Client-side conformance: the same conversations driven by a client under
//! test (a command the user gives) against the reference server, judged on
//! what the client reported and what the server saw of it.
//!
//! - [`plan`]: the JSON interface between the kit and the client under test.

pub mod plan;
