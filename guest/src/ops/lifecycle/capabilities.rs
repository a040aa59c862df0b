//! The capability probe: which optional CloudPe methods the token may call. Writes nothing.

use crate::transport::Platform;
use crate::wit::{AppSettings, Capability, ModuleError};

/// Probes every optional method (billing history, group list, set group, create account, user
/// info) and says, for each, whether the token may call it.
pub fn capabilities(platform: &impl Platform, app: &AppSettings) -> Result<Vec<Capability>, ModuleError> {
    let _ = (platform, app);
    Err(ModuleError::Unexpected("capabilities: not built yet".into()))
}
