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

/// The supported range: `>=2.0.0, <2.5.0` for a 2.4 host (a pre-release never matches it).
pub fn supported() -> VersionReq {
    let v = host_version();
    VersionReq::parse(&format!(">={}.0.0, <{}.{}.0", v.major, v.major, v.minor + 1)).expect("a valid range")
}

/// The supported range, for messages: `>=2.0.0, <2.5.0`.
pub fn supported_range() -> String {
    supported().to_string()
}

/// Why a component's contract version cannot run on this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompatError {
    /// The component exports no `hostbill:provisioning` module interface.
    #[error("it exports no {pkg}/module interface (a different world?); this host runs {pkg} {range}", pkg = WIT_PACKAGE, range = supported_range())]
    NoModule,
    /// The package version it targets is not semver.
    #[error("it targets {pkg}@{raw}, which is not a semver version ({reason})", pkg = WIT_PACKAGE)]
    NotSemver { raw: String, reason: String },
    /// Another major, a newer minor, or a pre-release.
    #[error("it targets {pkg}@{version}; this host runs {pkg} {range}", version = .0, pkg = WIT_PACKAGE, range = supported_range())]
    Unsupported(Version),
}

/// Checks a component's targeted version (`None`: it exports no `hostbill:provisioning` module).
pub fn check(targeted: Option<&str>) -> Result<Version, CompatError> {
    let raw = targeted.ok_or(CompatError::NoModule)?;
    let version =
        Version::parse(raw).map_err(|e| CompatError::NotSemver { raw: raw.to_string(), reason: e.to_string() })?;
    if supported().matches(&version) { Ok(version) } else { Err(CompatError::Unsupported(version)) }
}

#[cfg(test)]
mod tests {
    /// The frozen contract folders: every `wit/since_vX.Y.Z/` declares that version, and the
    /// newest is the one this host implements (and binds).
    #[test]
    fn the_newest_frozen_contract_is_the_hosts() {
        let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let mut versions = Vec::new();
        for entry in std::fs::read_dir(&wit).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let Some(version) = name.strip_prefix("since_v") else { continue };
            let text = std::fs::read_to_string(wit.join(&name).join("hosting-module.wit")).unwrap();
            assert!(text.contains(&format!("package {WIT_PACKAGE}@{version};")), "{name} declares another version");
            versions.push(Version::parse(version).unwrap());
        }
        assert_eq!(versions.into_iter().max(), Some(host_version()));
    }

    use super::*;

    #[test]
    fn same_major_and_no_newer_minor() {
        assert!(check(Some("2.0.0")).is_ok());
        assert!(check(Some("2.0.7")).is_ok());
        assert!(check(Some("2.1.0")).is_ok());
        assert!(check(Some("2.2.0")).is_ok());
        assert!(check(Some("2.3.0")).is_ok());
        assert!(check(Some("2.4.0")).is_ok());
        assert!(check(Some("2.4.2")).is_ok());
        let newer = check(Some("2.5.0")).unwrap_err();
        assert_eq!(newer, CompatError::Unsupported(Version::new(2, 5, 0)));
        assert_eq!(
            newer.to_string(),
            "it targets hostbill:provisioning@2.5.0; this host runs hostbill:provisioning >=2.0.0, <2.5.0"
        );
        assert_eq!(check(Some("3.0.0")), Err(CompatError::Unsupported(Version::new(3, 0, 0))));
        // 1.x had App fields field3..field5, which HostBill's App table does not have.
        assert_eq!(check(Some("1.0.0")), Err(CompatError::Unsupported(Version::new(1, 0, 0))));
        assert_eq!(check(Some("0.9.0")), Err(CompatError::Unsupported(Version::new(0, 9, 0))));
        assert!(matches!(check(Some("2.0.0-rc1")), Err(CompatError::Unsupported(v)) if v.pre.as_str() == "rc1"));
        assert!(matches!(check(Some("x")), Err(CompatError::NotSemver { raw, .. }) if raw == "x"));
        assert!(
            check(Some("x"))
                .unwrap_err()
                .to_string()
                .starts_with("it targets hostbill:provisioning@x, which is not a semver version (")
        );
        assert_eq!(check(None), Err(CompatError::NoModule));
        assert!(
            check(None).unwrap_err().to_string().starts_with("it exports no hostbill:provisioning/module interface")
        );
    }
}
