//! Bounded under hostile peers: the reference under clients that try to make
//! it hold, compute or keep open without limit while a well-behaved client
//! keeps being served.

mod reference;
