//! The reference server's transport. Owned by the transport work.
