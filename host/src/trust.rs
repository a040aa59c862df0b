//! Which components may run: a component is compiled or loaded from the cache only after its
//! detached signature (`<file>.sig`, see the `component-signing` crate) verifies against a
//! public key the operator trusts (`--trusted-keys`), unless the operator opted out
//! (`--allow-unsigned`, for development). This is checked in the loading path, beside the
//! contract-version check, before anything of the component is compiled.

use std::path::Path;

use component_signing::{TrustedKeys, VerifyError, signature_path};

/// Checks that the trusted-keys file or folder (and every key file in it) belongs to root or to
/// the user running the host and that nobody else can write it: a key another local user could
/// add would let them sign their own component.
pub fn check_key_path(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    let check = |p: &Path| -> Result<(), String> {
        let meta = std::fs::metadata(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        if meta.uid() != 0 && meta.uid() != me {
            return Err(format!(
                "{} belongs to uid {}, neither root nor this user (uid {me}): it could hold anyone's key",
                p.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{} is writable by other users (mode {:04o}): anyone could add a key to it",
                p.display(),
                meta.mode() & 0o7777
            ));
        }
        Ok(())
    };
    check(path)?;
    if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for entry in entries.flatten() {
            let file = entry.path();
            if file.extension().is_some_and(|x| x == "pem" || x == "pub") {
                check(&file)?;
            }
        }
    }
    Ok(())
}

/// The operator's policy.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    /// Public keys whose signatures are accepted (`None`: none configured).
    pub keys: Option<TrustedKeys>,
    /// Run components whose signature is missing or does not verify.
    pub allow_unsigned: bool,
}

/// What the check found about a component that may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Signed by this trusted key.
    Verified { key_id: String },
    /// Not verified, run because the operator opted out; says why it is not verified.
    Unverified { why: String },
}

impl Verification {
    /// JSON for `info`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Verification::Verified { key_id } => serde_json::json!({"verified": true, "key_id": key_id}),
            Verification::Unverified { why } => {
                serde_json::json!({"verified": false, "why": why, "allowed_by": "--allow-unsigned"})
            }
        }
    }
}

impl TrustPolicy {
    /// Checks the component at `path` with content `bytes`. The error says which of: unsigned,
    /// signed by another key, modified after signing, no keys configured.
    pub fn check(&self, path: &Path, bytes: &[u8]) -> Result<Verification, String> {
        let verdict = self.verify(path, bytes);
        match verdict {
            Ok(key_id) => Ok(Verification::Verified { key_id }),
            Err(why) if self.allow_unsigned => {
                tracing::warn!("{} runs unverified (--allow-unsigned): {why}", path.display());
                Ok(Verification::Unverified { why })
            }
            Err(why) => Err(format!("{} is refused: {why}", path.display())),
        }
    }

    fn verify(&self, path: &Path, bytes: &[u8]) -> Result<String, String> {
        let Some(keys) = &self.keys else {
            return Err("no trusted keys are configured (pass --trusted-keys with the vendor's public key, \
                 or --allow-unsigned for development)"
                .to_string());
        };
        let sig_path = signature_path(path);
        let signature = match std::fs::read(&sig_path) {
            Ok(data) if data.len() > 64 * 1024 => {
                return Err(format!("its signature file {} is larger than 64 KiB", sig_path.display()));
            }
            Ok(data) => String::from_utf8_lossy(&data).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("{} (expected {})", VerifyError::Unsigned, sig_path.display()));
            }
            Err(e) => return Err(format!("cannot read its signature file {}: {e}", sig_path.display())),
        };
        keys.verify(bytes, &signature).map_err(|e| e.to_string())
    }
}
