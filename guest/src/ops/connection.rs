//! Test Connection: proves the API answers and that the session token has admin rights.

use super::settings;
use crate::api::CloudPe;
use crate::transport::Platform;
use crate::wit::{AppSettings, Check, ConnectionReport, LogLevel, ModuleError};

/// Runs two checks and reports both: `getchecksum` (the API answers; CloudPe may accept it with
/// only a valid appid) and a one-row `getaccounts` (the session token works for admin calls).
pub fn test_connection(platform: &impl Platform, app: &AppSettings) -> Result<ConnectionReport, ModuleError> {
    let settings = settings(app)?;
    let api = CloudPe::new(&settings, platform);
    let origin = settings.base_url.origin();
    let reachable = match api.checksum() {
        Ok(_) => Check { name: "API reachable".into(), passed: true, detail: format!("{origin} answered getchecksum") },
        Err(e) => Check { name: "API reachable".into(), passed: false, detail: e.message() },
    };
    let admin = match api.accounts_page(None, 0, 1) {
        Ok(page) => Check {
            name: "Admin credentials".into(),
            passed: true,
            detail: format!("the session token may list accounts ({} visible)", page.total_count),
        },
        Err(e) => Check { name: "Admin credentials".into(), passed: false, detail: e.message() },
    };
    for check in [&reachable, &admin] {
        let level = if check.passed { LogLevel::Info } else { LogLevel::Error };
        let verdict = if check.passed { "passed" } else { "FAILED" };
        platform.log(level, &format!("test connection: {} {verdict}: {}", check.name, check.detail));
    }
    Ok(ConnectionReport { checks: vec![reachable, admin] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{FakeCloudPe, app};

    #[test]
    fn both_checks_are_reported() {
        let cloud = FakeCloudPe::new(&[(1, 1, None), (2, 1, None)]);
        let checks = test_connection(&cloud, &app()).unwrap().checks;
        assert_eq!(checks.len(), 2);
        assert!(checks.iter().all(|c| c.passed), "{checks:?}");
        assert!(checks[1].detail.contains("2 visible"));
    }

    #[test]
    fn a_bad_session_fails_only_the_admin_check() {
        let cloud = FakeCloudPe::new(&[]);
        let mut bad = app();
        bad.field2 = Some("nope-nope-nope".into());
        // the fake's getchecksum also checks the session; the admin check must fail in any case
        let checks = test_connection(&cloud, &bad).unwrap().checks;
        assert!(!checks[1].passed);
        assert!(
            checks[1].detail.contains("rejected the session token") && !checks[1].detail.contains("nope-nope-nope")
        );
    }

    #[test]
    fn bad_settings_are_a_configuration_error() {
        let cloud = FakeCloudPe::new(&[]);
        let mut bad = app();
        bad.status_url = Some("api.example.com".into());
        assert!(matches!(test_connection(&cloud, &bad), Err(ModuleError::Configuration(_))));
        assert!(cloud.requests.borrow().is_empty());
    }
}
