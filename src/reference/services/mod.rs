//! The contract's services (CONTRACT.md sections 2 and 3). Owned by the
//! services work; see `routes`.
