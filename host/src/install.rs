//! Installing a component over the active one, and rolling back.
//!
//! The active component is the file HostBill's side passes as `--component` (the bundle's
//! `cloudpe.wasm`). `install NEW` first loads NEW like any operation would (signature, contract
//! version, compilation) and runs its `info`; only then the active file (and its `.sig`) is kept as
//! `<active>.previous` and NEW takes its place. `rollback` swaps the two, after the same checks of
//! the previous one, so a second rollback rolls forward again. Each file is replaced by a rename,
//! so an operation starting meanwhile reads a whole file.

use std::path::{Path, PathBuf};

use component_signing::signature_path;

/// Why a component could not be switched; the active file is left as it was where it can be.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot copy {} to {}: {source}", from.display(), to.display())]
    Copy { from: PathBuf, to: PathBuf, source: std::io::Error },
    #[error("cannot remove {}: {source}", path.display())]
    Remove { path: PathBuf, source: std::io::Error },
    /// Renaming the replaced component (or its signature) into place as the previous one.
    #[error("cannot keep the replaced component{}: {source}", if *signature { "'s signature" } else { "" })]
    Keep { signature: bool, source: std::io::Error },
}

/// Where the component an install replaced is kept.
pub fn previous_path(active: &Path) -> PathBuf {
    let mut name = active.as_os_str().to_os_string();
    name.push(".previous");
    PathBuf::from(name)
}

/// Makes `new` (and its signature, if any) the active component, keeping the active one (and its
/// signature) as the previous one.
pub fn install(active: &Path, new: &Path) -> Result<(), InstallError> {
    let previous = previous_path(active);
    if active.exists() {
        copy_into_place(active, &previous)?;
        copy_signature(active, &previous)?;
    }
    copy_signature(new, active)?;
    copy_into_place(new, active)
}

/// Swaps the active and the previous component (each with its signature).
pub fn rollback(active: &Path) -> Result<(), InstallError> {
    let previous = previous_path(active);
    let parked = {
        let mut name = active.as_os_str().to_os_string();
        name.push(".rollback-tmp");
        PathBuf::from(name)
    };
    copy_into_place(active, &parked)?;
    copy_signature(active, &parked)?;
    copy_signature(&previous, active)?;
    copy_into_place(&previous, active)?;
    std::fs::rename(&parked, &previous).map_err(|source| InstallError::Keep { signature: false, source })?;
    let parked_sig = signature_path(&parked);
    if parked_sig.exists() {
        std::fs::rename(&parked_sig, signature_path(&previous))
            .map_err(|source| InstallError::Keep { signature: true, source })?;
    } else {
        remove_if_present(&signature_path(&previous))?;
    }
    Ok(())
}

/// Copies `from` to `to` through a temporary file in `to`'s folder and a rename.
fn copy_into_place(from: &Path, to: &Path) -> Result<(), InstallError> {
    let mut temp_name = to.as_os_str().to_os_string();
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp = PathBuf::from(temp_name);
    std::fs::copy(from, &temp).and_then(|_| std::fs::rename(&temp, to)).map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        InstallError::Copy { from: from.to_path_buf(), to: to.to_path_buf(), source }
    })
}

/// Gives `to` the signature of `from`, or none if `from` has none.
fn copy_signature(from: &Path, to: &Path) -> Result<(), InstallError> {
    let (from_sig, to_sig) = (signature_path(from), signature_path(to));
    if from_sig.exists() { copy_into_place(&from_sig, &to_sig) } else { remove_if_present(&to_sig) }
}

fn remove_if_present(path: &Path) -> Result<(), InstallError> {
    match std::fs::remove_file(path) {
        Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
            Err(InstallError::Remove { path: path.to_path_buf(), source })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_keeps_the_previous_and_rollback_swaps_back_and_forth() {
        let dir = std::env::temp_dir().join(format!("install-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let active = dir.join("m.wasm");
        let new = dir.join("new.wasm");
        std::fs::write(&active, "v1").unwrap();
        std::fs::write(signature_path(&active), "sig1").unwrap();
        std::fs::write(&new, "v2").unwrap();
        install(&active, &new).unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        assert_eq!(read(&active).as_deref(), Some("v2"));
        assert_eq!(read(&signature_path(&active)), None, "the new file is unsigned: no stale signature");
        assert_eq!(read(&previous_path(&active)).as_deref(), Some("v1"));
        assert_eq!(read(&signature_path(&previous_path(&active))).as_deref(), Some("sig1"));
        rollback(&active).unwrap();
        assert_eq!(read(&active).as_deref(), Some("v1"));
        assert_eq!(read(&signature_path(&active)).as_deref(), Some("sig1"));
        assert_eq!(read(&previous_path(&active)).as_deref(), Some("v2"));
        assert_eq!(read(&signature_path(&previous_path(&active))), None);
        rollback(&active).unwrap();
        assert_eq!(read(&active).as_deref(), Some("v2"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
