//! Which components may run: a component is compiled or loaded from the cache only after its
//! detached signature (`<file>.sig`, see the `component-signing` crate) verifies against a
//! public key the operator trusts (`--trusted-keys`), unless the operator opted out
//! (`--allow-unsigned`, for development). This is checked in the loading path, beside the
//! contract-version check, before anything of the component is compiled.

use std::path::{Path, PathBuf};

use component_signing::{TrustedKeys, VerifyError, signature_path};

/// Why a trusted-keys file or folder cannot be relied on.
#[derive(Debug, thiserror::Error)]
pub enum KeyPathError {
    #[error("cannot read {}: {error}", path.display())]
    Unreadable { path: PathBuf, error: std::io::Error },
    #[error("{} belongs to uid {owner}, neither root nor this user (uid {me}): it could hold anyone's key", path.display())]
    ForeignOwner { path: PathBuf, owner: u32, me: u32 },
    #[error("{} is writable by other users (mode {mode:04o}): anyone could add a key to it", path.display())]
    WritableByOthers { path: PathBuf, mode: u32 },
}

/// Checks that the trusted-keys file or folder (and every key file in it) belongs to root or to
/// the user running the host and that nobody else can write it: a key another local user could
/// add would let them sign their own component.
pub fn check_key_path(path: &Path) -> Result<(), KeyPathError> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    fn unreadable(path: &Path) -> impl FnOnce(std::io::Error) -> KeyPathError + '_ {
        move |error| KeyPathError::Unreadable { path: path.to_path_buf(), error }
    }
    let check = |p: &Path| -> Result<(), KeyPathError> {
        let meta = std::fs::metadata(p).map_err(unreadable(p))?;
        if meta.uid() != 0 && meta.uid() != me {
            return Err(KeyPathError::ForeignOwner { path: p.to_path_buf(), owner: meta.uid(), me });
        }
        if meta.mode() & 0o022 != 0 {
            return Err(KeyPathError::WritableByOthers { path: p.to_path_buf(), mode: meta.mode() & 0o7777 });
        }
        Ok(())
    };
    check(path)?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(unreadable(path))?.flatten() {
            let file = entry.path();
            if file.extension().is_some_and(|x| x == "pem" || x == "pub") {
                check(&file)?;
            }
        }
    }
    Ok(())
}

/// Why a component's signature does not verify.
#[derive(Debug, thiserror::Error)]
pub enum Unverified {
    #[error(
        "no trusted keys are configured (pass --trusted-keys with the vendor's public key, or --allow-unsigned for development)"
    )]
    NoKeys,
    #[error("its signature file {} is larger than 64 KiB", .0.display())]
    SignatureTooLarge(PathBuf),
    #[error("{} (expected {})", VerifyError::Unsigned, .0.display())]
    Unsigned(PathBuf),
    #[error("cannot read its signature file {}: {error}", path.display())]
    SignatureUnreadable { path: PathBuf, error: std::io::Error },
    #[error(transparent)]
    Rejected(VerifyError),
}

/// A component the policy refuses to run.
#[derive(Debug, thiserror::Error)]
#[error("{} is refused: {why}", path.display())]
pub struct Refused {
    pub path: PathBuf,
    pub why: Unverified,
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

impl TrustPolicy {
    /// Checks the component at `path` with content `bytes`. The error says which of: unsigned,
    /// signed by another key, modified after signing, no keys configured.
    pub fn check(&self, path: &Path, bytes: &[u8]) -> Result<Verification, Refused> {
        match self.verify(path, bytes) {
            Ok(key_id) => Ok(Verification::Verified { key_id }),
            Err(why) if self.allow_unsigned => {
                tracing::warn!("{} runs unverified (--allow-unsigned): {why}", path.display());
                Ok(Verification::Unverified { why: why.to_string() })
            }
            Err(why) => Err(Refused { path: path.to_path_buf(), why }),
        }
    }

    fn verify(&self, path: &Path, bytes: &[u8]) -> Result<String, Unverified> {
        let keys = self.keys.as_ref().ok_or(Unverified::NoKeys)?;
        let sig_path = signature_path(path);
        let signature = match std::fs::read(&sig_path) {
            Ok(data) if data.len() > 64 * 1024 => return Err(Unverified::SignatureTooLarge(sig_path)),
            Ok(data) => String::from_utf8_lossy(&data).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Unverified::Unsigned(sig_path)),
            Err(error) => return Err(Unverified::SignatureUnreadable { path: sig_path, error }),
        };
        keys.verify(bytes, &signature).map_err(Unverified::Rejected)
    }
}
