//! Bounded under hostile peers: the reference under clients that try to make
//! it hold, compute or keep open without limit while a well-behaved client
//! keeps being served, and the driver under servers that flood, stream
//! forever or never answer.

mod floods;
mod hostile;
mod memory;
mod reference;
