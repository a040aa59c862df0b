//! Which components may run: a component is compiled or loaded from the cache only after its
//! detached signature (`<file>.sig`, see the `component-signing` crate) verifies against a
//! public key the operator trusts (`--trusted-keys`), unless the operator opted out
//! (`--allow-unsigned`, for development). This is checked in the loading path, beside the
//! contract-version check, before anything of the component is compiled.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use component_signing::{TrustedKeys, VerifyError, signature_path};
use rustix::fs::{Mode, OFlags};

/// Largest `.sig` file read (a real one is about 300 bytes).
pub const MAX_SIGNATURE_BYTES: u64 = 64 * 1024;
/// Largest key file read (a PEM public key is about 113 bytes; a file may hold a few).
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Why a trusted-keys file or folder cannot be relied on.
#[derive(Debug, thiserror::Error)]
pub enum KeyPathError {
    #[error("cannot read {}: {error}", path.display())]
    Unreadable { path: PathBuf, error: std::io::Error },
    #[error("{} belongs to uid {owner}, neither root nor this user (uid {me}): it could hold anyone's key", path.display())]
    ForeignOwner { path: PathBuf, owner: u32, me: u32 },
    #[error("{} is writable by other users (mode {mode:04o}): anyone could add a key to it", path.display())]
    WritableByOthers { path: PathBuf, mode: u32 },
    #[error(
        "{} (a folder above the trusted keys) belongs to uid {owner}, neither root nor this user (uid {me}): its owner could replace the keys", path.display()
    )]
    ForeignParent { path: PathBuf, owner: u32, me: u32 },
    #[error(
        "{} (a folder above the trusted keys) is writable by other users (mode {mode:04o}) without the sticky bit: anyone could replace the keys", path.display()
    )]
    WritableParent { path: PathBuf, mode: u32 },
    #[error("{} is a link: trusted keys are read without following links", path.display())]
    Link { path: PathBuf },
    #[error("{} is not a regular file or folder ({kind})", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{} is larger than {} KiB: not a key file", path.display(), MAX_KEY_FILE_BYTES / 1024)]
    TooLarge { path: PathBuf },
    #[error("{}: {error}", path.display())]
    Keys { path: PathBuf, error: component_signing::KeyError },
    #[error("{} holds no public key", path.display())]
    NoKeys { path: PathBuf },
}

/// Reads the trusted keys at `path` (a PEM file, or a folder whose `*.pem` and `*.pub` files are
/// read), walking the path once: each folder from `/` down is opened without following a link
/// (the path is first made canonical, so a link the operator chose is resolved once, at the
/// start) and checked on the open descriptor (`fstat`), and the keys are read from the
/// descriptors that were checked. Every folder above the keys, the keys file or folder and every
/// key file must belong to root or to the user running the host; none may be writable by other
/// users, except a folder above with the sticky bit (`/tmp`: nobody else can rename or replace an
/// entry there). Key files must be regular files of at most [`MAX_KEY_FILE_BYTES`]. A key another
/// local user could add or replace would let them sign their own component (docs/signing.md).
pub fn load_keys(path: &Path) -> Result<TrustedKeys, KeyPathError> {
    let me = rustix::process::geteuid().as_raw();
    let unreadable = |p: &Path| {
        let p = p.to_path_buf();
        move |error: std::io::Error| KeyPathError::Unreadable { path: p, error }
    };
    let canonical = std::fs::canonicalize(path).map_err(unreadable(path))?;
    let mut shown = PathBuf::from("/");
    let mut dir: OwnedFd = rustix::fs::open("/", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| unreadable(&shown)(e.into()))?;
    check_parent(&shown, &File::from(dir.try_clone().map_err(unreadable(&shown))?), me)?;
    let names: Vec<&std::ffi::OsStr> =
        canonical.components().filter_map(|c| if let Component::Normal(n) = c { Some(n) } else { None }).collect();
    let Some((last, parents)) = names.split_last() else {
        return Err(KeyPathError::NotRegular { path: canonical, kind: "the root folder" });
    };
    for name in parents {
        shown.push(name);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        dir = rustix::fs::openat(&dir, *name, flags, Mode::empty()).map_err(|e| unreadable(&shown)(e.into()))?;
        check_parent(&shown, &File::from(dir.try_clone().map_err(unreadable(&shown))?), me)?;
    }
    shown.push(last);
    let (keys_file, meta) = open_no_follow(&dir, Path::new(last), &shown)?;
    check_owner_and_mode(&shown, &meta, me)?;
    let mut trusted_text = String::new();
    if meta.is_dir() {
        let mut names: Vec<std::ffi::OsString> = Vec::new();
        let entries = rustix::fs::Dir::read_from(keys_file.as_fd()).map_err(|e| unreadable(&shown)(e.into()))?;
        for entry in entries {
            let entry = entry.map_err(|e| unreadable(&shown)(e.into()))?;
            let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(entry.file_name().to_bytes())
                .to_os_string();
            if Path::new(&name).extension().is_some_and(|x| x == "pem" || x == "pub") {
                names.push(name);
            }
        }
        names.sort();
        for name in names {
            let file_path = shown.join(&name);
            let (file, meta) = open_no_follow(&keys_file, Path::new(&name), &file_path)?;
            check_owner_and_mode(&file_path, &meta, me)?;
            trusted_text.push_str(&read_key_file(file, &meta, &file_path)?);
            trusted_text.push('\n');
        }
    } else {
        trusted_text = read_key_file(keys_file, &meta, &shown)?;
    }
    if !trusted_text.contains("-----BEGIN PUBLIC KEY-----") {
        return Err(KeyPathError::NoKeys { path: shown });
    }
    TrustedKeys::from_pem(&trusted_text).map_err(|error| KeyPathError::Keys { path: shown, error })
}

/// A folder above the keys: root's or this user's, and not writable by others unless sticky.
fn check_parent(path: &Path, dir: &File, me: u32) -> Result<(), KeyPathError> {
    let meta = dir.metadata().map_err(|error| KeyPathError::Unreadable { path: path.to_path_buf(), error })?;
    if meta.uid() != 0 && meta.uid() != me {
        return Err(KeyPathError::ForeignParent { path: path.to_path_buf(), owner: meta.uid(), me });
    }
    let sticky = meta.mode() & 0o1000 != 0;
    if meta.mode() & 0o022 != 0 && !sticky {
        return Err(KeyPathError::WritableParent { path: path.to_path_buf(), mode: meta.mode() & 0o7777 });
    }
    Ok(())
}

/// The keys file or folder, or a key file: root's or this user's, and writable by nobody else.
fn check_owner_and_mode(path: &Path, meta: &std::fs::Metadata, me: u32) -> Result<(), KeyPathError> {
    if meta.uid() != 0 && meta.uid() != me {
        return Err(KeyPathError::ForeignOwner { path: path.to_path_buf(), owner: meta.uid(), me });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(KeyPathError::WritableByOthers { path: path.to_path_buf(), mode: meta.mode() & 0o7777 });
    }
    Ok(())
}

/// Opens `name` in `dir` without following a link or waiting on a FIFO, with its metadata read
/// from the open descriptor.
fn open_no_follow(dir: impl AsFd, name: &Path, shown: &Path) -> Result<(File, std::fs::Metadata), KeyPathError> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| match e {
        rustix::io::Errno::LOOP => KeyPathError::Link { path: shown.to_path_buf() },
        e => KeyPathError::Unreadable { path: shown.to_path_buf(), error: e.into() },
    })?;
    let file = File::from(fd);
    let meta = file.metadata().map_err(|error| KeyPathError::Unreadable { path: shown.to_path_buf(), error })?;
    Ok((file, meta))
}

/// A key file's text, checked to parse (an error names the file).
fn read_key_file(file: File, meta: &std::fs::Metadata, path: &Path) -> Result<String, KeyPathError> {
    if !meta.is_file() {
        return Err(KeyPathError::NotRegular { path: path.to_path_buf(), kind: file_kind(meta) });
    }
    let bytes = read_bounded(file, MAX_KEY_FILE_BYTES)
        .map_err(|error| KeyPathError::Unreadable { path: path.to_path_buf(), error })?
        .ok_or_else(|| KeyPathError::TooLarge { path: path.to_path_buf() })?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    TrustedKeys::from_pem(&text).map_err(|error| KeyPathError::Keys { path: path.to_path_buf(), error })?;
    Ok(text)
}

/// At most `max` bytes of `file`; `None` if it holds more.
fn read_bounded(file: File, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

/// What a non-regular file is, for an error.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_symlink() {
        "a link"
    } else {
        "not a regular file"
    }
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
    #[error("its signature file {} is not a regular file ({kind})", path.display())]
    SignatureNotRegular { path: PathBuf, kind: &'static str },
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

/// A record of earlier verifications (the compile cache keeps one per component: `cache.rs`).
pub trait Vouch {
    /// The id of the key under which exactly the component just read and its `.sig` text
    /// `signature` verified before, if `keys` still trusts that key with the same bytes.
    fn vouched(&self, signature: &str, keys: &TrustedKeys) -> Option<String>;
    /// Remembers that they verified under `key_id`.
    fn remember(&self, signature: &str, key_id: &str, keys: &TrustedKeys);
}

impl<V: Vouch> Vouch for Option<V> {
    fn vouched(&self, signature: &str, keys: &TrustedKeys) -> Option<String> {
        self.as_ref()?.vouched(signature, keys)
    }

    fn remember(&self, signature: &str, key_id: &str, keys: &TrustedKeys) {
        if let Some(record) = self {
            record.remember(signature, key_id, keys);
        }
    }
}

impl TrustPolicy {
    /// Reads the component at `path` with its signature ([`ComponentFiles::read`]), runs
    /// `beside` on them (the cache lookup: it hashes the component and reads its verification
    /// record), and checks them ([`TrustPolicy::check`]) unless that record vouches that this
    /// install verified exactly these bytes and this `.sig` under a key still trusted (a check
    /// that passes is then recorded). A pair that does not verify is read and checked once more
    /// if either file changed meanwhile (an install replacing the pair while its folder's lock
    /// could not be had); the error is an admin's sentence.
    pub fn load<T: Vouch>(
        &self,
        path: &Path,
        beside: impl Fn(&ComponentFiles) -> T,
    ) -> Result<(ComponentFiles, Verification, T), String> {
        let attempt = |files: &ComponentFiles| {
            let other = beside(files);
            if let (Some(keys), Some(signature)) = (&self.keys, files.signature())
                && let Some(key_id) = other.vouched(signature, keys)
            {
                tracing::debug!("{}: verified before by this install (key {key_id})", path.display());
                return (Ok(Verification::Verified { key_id }), other);
            }
            let checked = self.check(path, files);
            if let (Ok(Verification::Verified { key_id }), Some(keys), Some(signature)) =
                (&checked, &self.keys, files.signature())
            {
                other.remember(signature, key_id, keys);
            }
            (checked, other)
        };
        let files = ComponentFiles::read(path)?;
        match attempt(&files) {
            (Ok(verification), other) => Ok((files, verification, other)),
            (Err(_), _) if files.changed(path) => {
                tracing::debug!("{} changed while it was read: reading it again", path.display());
                let files = ComponentFiles::read(path)?;
                let (checked, other) = attempt(&files);
                let verification = checked.map_err(|refused| refused.to_string())?;
                Ok((files, verification, other))
            }
            (Err(refused), _) => Err(refused.to_string()),
        }
    }

    /// Checks the component read in `files` (from `path`). The error says which of: unsigned,
    /// signed by another key, modified after signing, no keys configured.
    pub fn check(&self, path: &Path, files: &ComponentFiles) -> Result<Verification, Refused> {
        match self.verify(files) {
            Ok(key_id) => Ok(Verification::Verified { key_id }),
            Err(why) if self.allow_unsigned => {
                tracing::warn!("{} runs unverified (--allow-unsigned): {why}", path.display());
                Ok(Verification::Unverified { why: why.to_string() })
            }
            Err(why) => Err(Refused { path: path.to_path_buf(), why }),
        }
    }

    fn verify(&self, files: &ComponentFiles) -> Result<String, Unverified> {
        let keys = self.keys.as_ref().ok_or(Unverified::NoKeys)?;
        let signature = files.signature.as_ref().map_err(Unverified::again)?;
        keys.verify(&files.bytes, signature).map_err(Unverified::Rejected)
    }
}

impl Unverified {
    /// The same reason once more (an I/O error is not `Clone`: its text is kept).
    fn again(&self) -> Unverified {
        match self {
            Unverified::NoKeys => Unverified::NoKeys,
            Unverified::SignatureTooLarge(p) => Unverified::SignatureTooLarge(p.clone()),
            Unverified::SignatureNotRegular { path, kind } => {
                Unverified::SignatureNotRegular { path: path.clone(), kind }
            }
            Unverified::Unsigned(p) => Unverified::Unsigned(p.clone()),
            Unverified::SignatureUnreadable { path, error } => Unverified::SignatureUnreadable {
                path: path.clone(),
                error: std::io::Error::new(error.kind(), error.to_string()),
            },
            Unverified::Rejected(e) => Unverified::Rejected(e.clone()),
        }
    }
}

/// Longest wait for the lock on a component's folder (an install holds it for a few renames).
pub const FOLDER_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A component file and its detached signature, read as one pair.
#[derive(Debug)]
pub struct ComponentFiles {
    /// The component, as read.
    pub bytes: Vec<u8>,
    /// The signature file's text, or why there is none to check.
    signature: Result<String, Unverified>,
    /// Identity of each file read (device, inode, size, change time), to tell whether it changed.
    identity: [Option<FileIdentity>; 2],
}

type FileIdentity = (u64, u64, u64, i64, i64);

fn identity(meta: &std::fs::Metadata) -> FileIdentity {
    (meta.dev(), meta.ino(), meta.size(), meta.ctime(), meta.ctime_nsec())
}

impl ComponentFiles {
    /// Reads the component at `path` and its `<path>.sig` while holding a shared lock on their
    /// folder: `install` and `rollback` replace the pair under an exclusive one (`install.rs`),
    /// so what is read is the old pair or the new one, never half of each. The lock is waited
    /// for at most [`FOLDER_LOCK_WAIT`] (a folder that cannot be locked is read unlocked; see
    /// [`TrustPolicy::load`] for the second reading). Each file is opened without waiting on a
    /// FIFO and checked on the open descriptor to be a regular file; the signature is read only
    /// up to [`MAX_SIGNATURE_BYTES`].
    pub fn read(path: &Path) -> Result<ComponentFiles, String> {
        let _lock = lock_folder_of(path, false, FOLDER_LOCK_WAIT).ok().flatten();
        Self::read_unlocked(path)
    }

    /// [`ComponentFiles::read`] without the lock (for `install`, which holds the exclusive one).
    pub fn read_unlocked(path: &Path) -> Result<ComponentFiles, String> {
        let shown = path.display();
        let (file, meta) = open_nonblocking(path).map_err(|e| format!("cannot read the component {shown}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("cannot read the component {shown}: it is not a regular file ({})", file_kind(&meta)));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        (&file).read_to_end(&mut bytes).map_err(|e| format!("cannot read the component {shown}: {e}"))?;
        let sig_path = signature_path(path);
        let mut sig_identity = None;
        let signature = match open_nonblocking(&sig_path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Unverified::Unsigned(sig_path)),
            Err(error) => Err(Unverified::SignatureUnreadable { path: sig_path, error }),
            Ok((_, meta)) if !meta.is_file() => {
                Err(Unverified::SignatureNotRegular { path: sig_path, kind: file_kind(&meta) })
            }
            Ok((file, meta)) => {
                sig_identity = Some(identity(&meta));
                match read_bounded(file, MAX_SIGNATURE_BYTES) {
                    Ok(Some(data)) => Ok(String::from_utf8_lossy(&data).into_owned()),
                    Ok(None) => Err(Unverified::SignatureTooLarge(sig_path)),
                    Err(error) => Err(Unverified::SignatureUnreadable { path: sig_path, error }),
                }
            }
        };
        Ok(ComponentFiles { bytes, signature, identity: [Some(identity(&meta)), sig_identity] })
    }

    /// The signature file's text, if it was read.
    pub fn signature(&self) -> Option<&str> {
        self.signature.as_deref().ok()
    }

    /// Whether the component or its signature at `path` is no longer the file that was read.
    fn changed(&self, path: &Path) -> bool {
        let now = |p: &Path| std::fs::metadata(p).ok().map(|m| identity(&m));
        now(path) != self.identity[0] || now(&signature_path(path)) != self.identity[1]
    }
}

/// Opens `path` for reading without waiting on a FIFO; its metadata from the open descriptor.
fn open_nonblocking(path: &Path) -> std::io::Result<(File, std::fs::Metadata)> {
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty())?;
    let file = File::from(fd);
    let meta = file.metadata()?;
    Ok((file, meta))
}

/// Locks the folder holding `file` (shared, or `exclusive`), waiting at most `wait`: the lock
/// (released when the returned descriptor is dropped), or `None` if another process held it all
/// that time.
pub fn lock_folder_of(file: &Path, exclusive: bool, wait: std::time::Duration) -> std::io::Result<Option<OwnedFd>> {
    use rustix::fs::FlockOperation;
    let folder = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fd = rustix::fs::open(folder, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let operation =
        if exclusive { FlockOperation::NonBlockingLockExclusive } else { FlockOperation::NonBlockingLockShared };
    let until = std::time::Instant::now() + wait;
    loop {
        match rustix::fs::flock(&fd, operation) {
            Ok(()) => return Ok(Some(fd)),
            Err(rustix::io::Errno::WOULDBLOCK) if std::time::Instant::now() < until => {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("trust-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn public_key() -> String {
        component_signing::generate_key_pair().unwrap().1
    }

    #[test]
    fn a_fifo_or_oversized_signature_is_refused_at_once() {
        let dir = scratch("sig");
        let component = dir.join("m.wasm");
        std::fs::write(&component, "wasm").unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, signature_path(&component), Mode::from_raw_mode(0o644)).unwrap();
        let started = Instant::now();
        let files = ComponentFiles::read(&component).unwrap();
        assert!(started.elapsed() < Duration::from_secs(1), "reading waited {:?}", started.elapsed());
        let policy = TrustPolicy { keys: Some(TrustedKeys::from_pem(&public_key()).unwrap()), allow_unsigned: false };
        let refused = policy.check(&component, &files).unwrap_err().to_string();
        assert!(refused.ends_with("m.wasm.sig is not a regular file (a FIFO)"), "{refused}");
        std::fs::remove_file(signature_path(&component)).unwrap();
        std::fs::write(signature_path(&component), vec![b'x'; 64 * 1024 + 1]).unwrap();
        let refused = policy.check(&component, &ComponentFiles::read(&component).unwrap()).unwrap_err().to_string();
        assert!(refused.ends_with("is larger than 64 KiB"), "{refused}");
        // A component that is a FIFO is refused too, without waiting.
        let fifo = dir.join("fifo.wasm");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, Mode::from_raw_mode(0o644)).unwrap();
        let error = ComponentFiles::read(&fifo).unwrap_err();
        assert!(error.ends_with("it is not a regular file (a FIFO)"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_folders_above_the_keys_are_checked_too() {
        let dir = scratch("parents");
        let keys = dir.join("open/keys");
        std::fs::create_dir_all(&keys).unwrap();
        std::fs::write(keys.join("vendor.pub"), public_key()).unwrap();
        for folder in [dir.join("open"), keys.clone()] {
            std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        assert!(load_keys(&keys).is_ok());
        // Anyone could rename the keys folder away and put their own in its place.
        std::fs::set_permissions(dir.join("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = load_keys(&keys).unwrap_err().to_string();
        assert!(
            error.contains("open (a folder above the trusted keys) is writable by other users (mode 0777)"),
            "{error}"
        );
        // With the sticky bit (as /tmp), nobody else can rename or replace what is in it.
        std::fs::set_permissions(dir.join("open"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(load_keys(&keys).is_ok(), "a sticky folder above the keys is accepted");
        std::fs::set_permissions(dir.join("open"), std::fs::Permissions::from_mode(0o755)).unwrap();
        if rustix::process::geteuid().is_root() {
            rustix::fs::chown(dir.join("open"), Some(rustix::process::Uid::from_raw(12345)), None).unwrap();
            let error = load_keys(&keys).unwrap_err().to_string();
            assert!(error.contains("open (a folder above the trusted keys) belongs to uid 12345"), "{error}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn key_files_are_regular_bounded_and_not_links() {
        let dir = scratch("files");
        let keys = dir.join("keys");
        std::fs::create_dir(&keys).unwrap();
        std::fs::write(keys.join("vendor.pub"), public_key()).unwrap();
        std::os::unix::fs::symlink(keys.join("vendor.pub"), keys.join("link.pem")).unwrap();
        let error = load_keys(&keys).unwrap_err().to_string();
        assert!(error.contains("link.pem is a link"), "{error}");
        std::fs::remove_file(keys.join("link.pem")).unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, keys.join("fifo.pem"), Mode::from_raw_mode(0o644)).unwrap();
        let started = Instant::now();
        let error = load_keys(&keys).unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(1), "waited {:?}", started.elapsed());
        assert!(error.contains("fifo.pem is not a regular file or folder (a FIFO)"), "{error}");
        std::fs::remove_file(keys.join("fifo.pem")).unwrap();
        std::fs::write(keys.join("huge.pem"), vec![b'k'; 64 * 1024 + 1]).unwrap();
        let error = load_keys(&keys).unwrap_err().to_string();
        assert!(error.contains("huge.pem is larger than 64 KiB"), "{error}");
        std::fs::remove_file(keys.join("huge.pem")).unwrap();
        std::fs::write(keys.join("junk.pem"), "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").unwrap();
        let error = load_keys(&keys).unwrap_err().to_string();
        assert!(error.contains("junk.pem: not an ed25519 public key"), "{error}");
        std::fs::remove_file(keys.join("junk.pem")).unwrap();
        assert!(load_keys(&keys).is_ok());
        assert!(load_keys(&keys.join("vendor.pub")).is_ok(), "a single key file");
        let empty = dir.join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(load_keys(&empty).unwrap_err().to_string().ends_with("empty holds no public key"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
