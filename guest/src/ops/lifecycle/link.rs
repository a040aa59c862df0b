//! Create: link the account's CloudPe user (the client's id, or the client's email), or create it.

use crate::transport::Platform;
use crate::wit::{AccountContext, AppSettings, CreateOutcome, ModuleError};

/// Create, contract 2.4.0: verifies the user the client names, or finds it by the client's
/// email, or (App setting "On create" = provision) creates it.
pub fn create_account(
    platform: &impl Platform,
    app: &AppSettings,
    request: &AccountContext,
) -> Result<CreateOutcome, ModuleError> {
    let _ = (platform, app, request);
    Err(ModuleError::Unexpected("create-account: not built yet".into()))
}
