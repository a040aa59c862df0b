//! The link review: a reconciliation, the links it proposes, and group drift.

use crate::transport::Platform;
use crate::wit::{AccountContext, AppSettings, LinkReview, ModuleError, SyncOptions};

/// Reads every CloudPe user once; reports what `reconcile` reports, proposes a link for each
/// account without a CloudPe id whose client's email matches exactly one user, and lists linked
/// accounts whose user is outside the group their product names. Changes nothing.
pub fn review(
    platform: &impl Platform,
    app: &AppSettings,
    accounts: &[AccountContext],
    options: SyncOptions,
) -> Result<LinkReview, ModuleError> {
    let _ = (platform, app, accounts, options);
    Err(ModuleError::Unexpected("review: not built yet".into()))
}
