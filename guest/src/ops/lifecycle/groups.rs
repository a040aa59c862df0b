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

/// What [`apply_group`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupMove {
    /// The user was already in the group: nothing was sent.
    AlreadyThere,
    /// `setgroup` was sent and the user read back in the group.
    Moved {
        /// The group the user was in before ("" when CloudPe named none).
        from: String,
    },
}

/// Puts CloudPe user `uid` in `group` and confirms it by reading the user back; a lost reply is
/// read back, never guessed. Shared by ChangePackage and provisioning.
pub(super) fn apply_group(
    api: &crate::api::CloudPe<'_, impl Platform>,
    uid: u64,
    group: &str,
) -> Result<GroupMove, ModuleError> {
    let _ = (api, uid, group);
    Err(ModuleError::Unexpected("apply-group: not built yet".into()))
}
