//! The CloudPe group of a product: its choices (the platform's group list) and ChangePackage.

use crate::transport::Platform;
use crate::wit::{AccountContext, AppSettings, ModuleError, OptionChoice, Outcome};

/// ChangePackage: puts the user in the group the product names, and reads it back to confirm.
pub fn change_package(
    platform: &impl Platform,
    app: &AppSettings,
    request: &AccountContext,
) -> Result<Outcome, ModuleError> {
    let _ = (platform, app, request);
    Err(ModuleError::Unexpected("change-package: not built yet".into()))
}

/// The choices of a product option filled from CloudPe (`CloudPe group`: the group list).
pub fn option_choices(
    platform: &impl Platform,
    app: &AppSettings,
    option: &str,
) -> Result<Vec<OptionChoice>, ModuleError> {
    let _ = (platform, app, option);
    Err(ModuleError::Unexpected("option-choices: not built yet".into()))
}
