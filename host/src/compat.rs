//! Which versions of the `hostbill:provisioning` WIT package this host runs.
//!
//! The rule (semver on the package): a component is compatible when it targets the host's major
//! version and a minor version no newer than the host's. An older minor only lacks what was added
//! since; a newer minor may import functions this host does not provide, and another major is a
//! different contract. The patch level never matters. The check runs before any instantiation.

use semver::{Version, VersionReq};

use crate::bindings::{WIT_PACKAGE, WIT_VERSION};

/// The host's package version.
pub fn host_version() -> Version {
    Version::parse(WIT_VERSION).expect("WIT_VERSION is semver")
}

/// The supported range: `>=2.0.0, <2.2.0` for a 2.1 host (a pre-release never matches it).
pub fn supported() -> VersionReq {
    let v = host_version();
    VersionReq::parse(&format!(">={}.0.0, <{}.{}.0", v.major, v.major, v.minor + 1)).expect("a valid range")
}

/// The supported range, for messages: `>=2.0.0, <2.2.0`.
pub fn supported_range() -> String {
    supported().to_string()
}

/// Checks a component's targeted version (`None`: it exports no `hostbill:provisioning` module).
pub fn check(targeted: Option<&str>) -> Result<Version, String> {
    let range = supported_range();
    let Some(raw) = targeted else {
        return Err(format!(
            "it exports no {WIT_PACKAGE}/module interface (a different world?); this host runs {WIT_PACKAGE} {range}"
        ));
    };
    let version = Version::parse(raw)
        .map_err(|e| format!("it targets {WIT_PACKAGE}@{raw}, which is not a semver version ({e})"))?;
    if supported().matches(&version) {
        Ok(version)
    } else {
        Err(format!("it targets {WIT_PACKAGE}@{version}; this host runs {WIT_PACKAGE} {range}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_major_and_no_newer_minor() {
        assert!(check(Some("2.0.0")).is_ok());
        assert!(check(Some("2.0.7")).is_ok());
        assert!(check(Some("2.1.0")).is_ok());
        let newer = check(Some("2.2.0")).unwrap_err();
        assert!(newer.contains("@2.2.0") && newer.contains(">=2.0.0, <2.2.0"), "{newer}");
        assert!(check(Some("3.0.0")).unwrap_err().contains("@3.0.0"));
        // 1.x had App fields field3..field5, which HostBill's App table does not have.
        assert!(check(Some("1.0.0")).unwrap_err().contains("@1.0.0"));
        assert!(check(Some("0.9.0")).is_err());
        assert!(check(Some("2.0.0-rc1")).is_err());
        assert!(check(Some("x")).unwrap_err().contains("not a semver"));
        assert!(check(None).unwrap_err().contains("exports no"));
    }
}
