//! The contract's services (CONTRACT.md sections 2 and 3): ChatService,
//! Greeter, SensorService, the Observer, plus health and reflection.

use super::{CallRegistry, ReferenceConfig};
use tonic::service::Routes;

/// Every service the reference serves, configured from `config`.
pub fn routes(_config: &ReferenceConfig, _registry: CallRegistry) -> Routes {
    let (_reporter, health) = tonic_health::server::health_reporter();
    Routes::new(health)
}
