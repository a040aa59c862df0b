//! Installing a component over the active one, and rolling back.
//!
//! The active component is the file HostBill's side passes as `--component` (the bundle's
//! `cloudpe.wasm`). `install NEW` first loads NEW like any operation would (signature, contract
//! version, compilation) and runs its `info`; only then the active file (and its `.sig`) is kept as
//! `<active>.previous` and NEW takes its place. `rollback` swaps the two, after the same checks of
//! the previous one, so a second rollback rolls forward again.
//!
//! What is written is what was verified: the bytes and signature the host read once, when it
//! loaded the component (`trust::ComponentFiles`), never the upload read a second time. Each file
//! is written to a temporary of an unpredictable name in the active file's folder, created with
//! `O_EXCL | O_NOFOLLOW` (a planted file or link is never written through) at a fixed mode
//! ([`FILE_MODE`], whatever the upload's), flushed, then renamed into place relative to that
//! folder's descriptor. The pair is replaced while holding an exclusive lock on the folder; every
//! operation reads the component and its `.sig` under a shared one (`trust::ComponentFiles::read`),
//! so it sees the old pair or the new pair, never one file of each.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use component_signing::signature_path;
use rustix::fs::{Mode, OFlags};

use crate::trust::ComponentFiles;

/// The mode of every file an install or rollback writes: the owner may write it, everyone may read
/// it (the web server's user runs the host), nobody else may change it.
pub const FILE_MODE: u32 = 0o644;

/// Longest wait for the lock on the component's folder (operations hold it while they read two
/// files).
pub const INSTALL_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a component could not be switched; the active file is left as it was where it can be.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot write {}: {source}", to.display())]
    Write { to: PathBuf, source: std::io::Error },
    #[error("cannot read {}: {why}", path.display())]
    Read { path: PathBuf, why: String },
    #[error("cannot remove {}: {source}", path.display())]
    Remove { path: PathBuf, source: std::io::Error },
    #[error("cannot open the folder of {}: {source}", path.display())]
    Folder { path: PathBuf, source: std::io::Error },
    #[error(
        "the folder of {} stayed locked for {} s (another install or rollback is running?): nothing was changed",
        path.display(), INSTALL_LOCK_WAIT.as_secs()
    )]
    Locked { path: PathBuf },
}

/// Where the component an install replaced is kept.
pub fn previous_path(active: &Path) -> PathBuf {
    let mut name = active.as_os_str().to_os_string();
    name.push(".previous");
    PathBuf::from(name)
}

/// Makes `new` (the component and signature read and verified from the uploaded file) the active
/// component, keeping the active one (and its signature) as the previous one.
pub fn install(active: &Path, new: &ComponentFiles) -> Result<(), InstallError> {
    let folder = Folder::lock(active)?;
    let previous = previous_path(active);
    if active.exists() {
        let current = ComponentFiles::read_unlocked(active)
            .map_err(|why| InstallError::Read { path: active.to_path_buf(), why })?;
        folder.put_pair(&previous, &current)?;
    }
    folder.put_pair(active, new)
}

/// Makes `previous` (the component and signature read and verified from `<active>.previous`) the
/// active component, and the active one the previous one.
pub fn rollback(active: &Path, previous: &ComponentFiles) -> Result<(), InstallError> {
    let folder = Folder::lock(active)?;
    let previous_file = previous_path(active);
    let current = if active.exists() {
        Some(
            ComponentFiles::read_unlocked(active)
                .map_err(|why| InstallError::Read { path: active.to_path_buf(), why })?,
        )
    } else {
        None
    };
    folder.put_pair(active, previous)?;
    match current {
        Some(current) => folder.put_pair(&previous_file, &current),
        None => {
            folder.remove(&signature_path(&previous_file))?;
            folder.remove(&previous_file)
        }
    }
}

/// The active component's folder, opened once and locked exclusively; files are written relative
/// to its descriptor.
struct Folder {
    fd: OwnedFd,
}

impl Folder {
    fn lock(active: &Path) -> Result<Folder, InstallError> {
        let folder_error = |source| InstallError::Folder { path: active.to_path_buf(), source };
        match crate::trust::lock_folder_of(active, true, INSTALL_LOCK_WAIT).map_err(folder_error)? {
            Some(fd) => Ok(Folder { fd }),
            None => Err(InstallError::Locked { path: active.to_path_buf() }),
        }
    }

    /// Writes `files` as `to` and its signature (or removes `to`'s signature if `files` has none):
    /// the signature first, then the component, each replaced in one rename.
    fn put_pair(&self, to: &Path, files: &ComponentFiles) -> Result<(), InstallError> {
        let sig = signature_path(to);
        match files.signature() {
            Some(text) => self.put(&sig, text.as_bytes())?,
            None => self.remove(&sig)?,
        }
        self.put(to, &files.bytes)
    }

    /// Writes `bytes` as `to` (in this folder) through a new temporary file and a rename.
    fn put(&self, to: &Path, bytes: &[u8]) -> Result<(), InstallError> {
        let write_error = |source| InstallError::Write { to: to.to_path_buf(), source };
        let name = file_name(to);
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|e| write_error(std::io::Error::other(e.to_string())))?;
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let temp = format!(".{}.{hex}.tmp", name.to_string_lossy());
        let create = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, temp.as_str(), create, Mode::from_raw_mode(FILE_MODE))
            .map_err(|e| write_error(e.into()))?;
        let written = (|| {
            // The creation mode passed the process's umask; the mode is set exactly.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(FILE_MODE))?;
            let mut file = std::fs::File::from(fd);
            file.write_all(bytes)?;
            file.sync_all()?;
            rustix::fs::renameat(&self.fd, temp.as_str(), &self.fd, name)?;
            Ok::<_, std::io::Error>(())
        })();
        written.map_err(|source| {
            let _ = rustix::fs::unlinkat(&self.fd, temp.as_str(), rustix::fs::AtFlags::empty());
            write_error(source)
        })
    }

    fn remove(&self, path: &Path) -> Result<(), InstallError> {
        match rustix::fs::unlinkat(self.fd.as_fd(), file_name(path), rustix::fs::AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(InstallError::Remove { path: path.to_path_buf(), source: e.into() }),
        }
    }
}

/// The last component of `path` (the active file and the ones beside it are in the same folder).
fn file_name(path: &Path) -> &std::ffi::OsStr {
    path.file_name().unwrap_or(path.as_os_str())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("install-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn read_files(path: &Path) -> ComponentFiles {
        ComponentFiles::read(path).unwrap()
    }

    #[test]
    fn install_keeps_the_previous_and_rollback_swaps_back_and_forth() {
        let dir = scratch("swap");
        let active = dir.join("m.wasm");
        let new = dir.join("new.wasm");
        std::fs::write(&active, "v1").unwrap();
        std::fs::write(signature_path(&active), "sig1").unwrap();
        std::fs::write(&new, "v2").unwrap();
        install(&active, &read_files(&new)).unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        assert_eq!(read(&active).as_deref(), Some("v2"));
        assert_eq!(read(&signature_path(&active)), None, "the new file is unsigned: no stale signature");
        assert_eq!(read(&previous_path(&active)).as_deref(), Some("v1"));
        assert_eq!(read(&signature_path(&previous_path(&active))).as_deref(), Some("sig1"));
        rollback(&active, &read_files(&previous_path(&active))).unwrap();
        assert_eq!(read(&active).as_deref(), Some("v1"));
        assert_eq!(read(&signature_path(&active)).as_deref(), Some("sig1"));
        assert_eq!(read(&previous_path(&active)).as_deref(), Some("v2"));
        assert_eq!(read(&signature_path(&previous_path(&active))), None);
        rollback(&active, &read_files(&previous_path(&active))).unwrap();
        assert_eq!(read(&active).as_deref(), Some("v2"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_install_writes_what_was_verified_at_fixed_modes_through_fresh_temporaries() {
        let dir = scratch("safe");
        let active = dir.join("m.wasm");
        let new = dir.join("new.wasm");
        std::fs::write(&active, "v1").unwrap();
        for (file, text) in [(&new, "v2"), (&signature_path(&new), "sig2")] {
            std::fs::write(file, text).unwrap();
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        let verified = read_files(&new);
        // The upload changes after it was verified: the verified bytes are installed.
        std::fs::write(&new, "evil").unwrap();
        // Links planted where a temporary file could be (the old names were predictable).
        let victim = dir.join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        for name in ["m.wasm", "m.wasm.sig", "m.wasm.previous"] {
            let planted = dir.join(format!("{name}.tmp-{}", std::process::id()));
            std::os::unix::fs::symlink(&victim, planted).unwrap();
        }
        install(&active, &verified).unwrap();
        assert_eq!(std::fs::read_to_string(&active).unwrap(), "v2");
        assert_eq!(std::fs::read_to_string(signature_path(&active)).unwrap(), "sig2");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        for file in [active.clone(), signature_path(&active), previous_path(&active)] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, FILE_MODE, "{} has mode {mode:04o}", file.display());
        }
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_reader_sees_the_old_pair_or_the_new_pair_never_one_of_each() {
        let dir = scratch("pair");
        let active = dir.join("m.wasm");
        std::fs::write(&active, "old").unwrap();
        std::fs::write(signature_path(&active), "old-sig").unwrap();
        // An install caught between its two renames (the lock held, one file replaced).
        let lock = crate::trust::lock_folder_of(&active, true, INSTALL_LOCK_WAIT).unwrap().expect("the lock");
        std::fs::write(signature_path(&active), "new-sig").unwrap();
        let reader = std::thread::spawn({
            let active = active.clone();
            move || ComponentFiles::read(&active).unwrap()
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        std::fs::write(&active, "new").unwrap();
        drop(lock);
        let seen = reader.join().unwrap();
        assert_eq!((seen.bytes.as_slice(), seen.signature()), (&b"new"[..], Some("new-sig")));
        // A second install waits for a reader's shared lock in the same way, and then succeeds.
        std::fs::write(dir.join("v3.wasm"), "v3").unwrap();
        install(&active, &read_files(&dir.join("v3.wasm"))).unwrap();
        assert_eq!(std::fs::read_to_string(&active).unwrap(), "v3");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
