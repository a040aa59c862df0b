//! The on-disk cache of compiled components, so a warm start skips compilation (~75 ms in a
//! release host) and only maps the artifact (~1 ms).
//!
//! A cache entry is native code that the host runs (`Component::deserialize` is `unsafe` for
//! that reason), so nothing on disk is trusted on sight. The trust rule:
//!
//! - The folder is opened without following a symbolic link (its last component) and must be a
//!   directory owned by the effective user with no group or other write bit. It is created 0700
//!   when missing. Every later access goes through that open descriptor, so a folder swapped after
//!   the check is never read.
//! - An entry is opened without following links and without blocking (a FIFO), and must be a
//!   regular file owned by the effective user, with no group or other write bit, and at most
//!   [`MAX_ENTRY_BYTES`] long.
//! - An entry is authenticated: `MAGIC`, then an HMAC-SHA256 over (the component's SHA-256, the
//!   engine's compatibility hash, the artifact) under a per-install key, then the artifact. The key
//!   (32 random bytes) lives outside the cache folder, in [`Cache::key_file`], under the same
//!   owner and mode rules (no group or other access at all). An entry copied from another
//!   component, forged, or written by another engine fails the check.
//!
//! Anything that fails these checks is ignored with a warning naming why, and the component is
//! compiled in memory (and stored afresh when the folder itself is trusted). Entries are written
//! to a temporary file and renamed into place, so a reader sees a whole entry or none (and one a
//! crash left torn fails its tag).
//!
//! A lookup ([`Cache::lookup`]: hashing the component, reading and authenticating its entry)
//! deserialises nothing, so it runs before the component's signature is checked; only
//! [`Lookup::load_or_compile`], called once the component may run, deserialises or compiles.
//!
//! The folder also keeps, per component, a verification record (`<sha>.verified`): this install
//! verified the component with this SHA-256 and a `.sig` file with this SHA-256 under the
//! trusted key with this id and these key bytes. Its HMAC is under the same key as the entries'.
//! Verification is a pure function of (bytes, `.sig`, key), so a record that authenticates for
//! the bytes and `.sig` just read and a key still trusted stands for checking the signature again
//! ([`Lookup::vouched`]): a warm start hashes the component once (SHA-256), not twice (SHA-512
//! too). It is keyed by content, never by path, inode or time, so a swapped file, an edited
//! `.sig` or a key no longer trusted finds no record and is checked in full.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rustix::fs::{self as rfs, FileType, Mode, OFlags};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// First bytes of every cache entry (version 2: authenticated entries).
const MAGIC: &[u8; 8] = b"HBMCACH2";
/// First bytes of every verification record.
const RECORD_MAGIC: &[u8; 8] = b"HBMVER01";
/// Longest verification record the host reads (a real one is about 60 bytes).
const MAX_RECORD_BYTES: u64 = 1024;
/// Length of the per-install key.
const KEY_BYTES: usize = 32;
/// Longest entry the host reads (a real one is a few MiB).
pub const MAX_ENTRY_BYTES: u64 = 128 * 1024 * 1024;

/// Where the compiled component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Loaded from a valid cache entry.
    Cache,
    /// Compiled now and stored in the cache.
    CompiledAndStored,
    /// Compiled now; the cache could not be used (see the warning).
    CompiledOnly,
}

/// A compiled-component cache in one folder.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    key_file: PathBuf,
}

/// The default cache folder: `$XDG_CACHE_HOME/hostbill-module-host`, else
/// `$HOME/.cache/hostbill-module-host`. `None` when neither is set: there is no folder known to
/// belong to this user (a shared temporary folder is not one), so the host compiles in memory.
pub fn default_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = non_empty("XDG_CACHE_HOME").or_else(|| non_empty("HOME").map(|home| home.join(".cache")))?;
    Some(base.join("hostbill-module-host"))
}

/// Why the cache (or one entry) is not used.
#[derive(Debug, thiserror::Error)]
pub enum Untrusted {
    #[error("it is a symbolic link")]
    Symlink,
    #[error("it is not a {0}")]
    WrongType(&'static str),
    #[error("it belongs to uid {owner}, not to this user (uid {me})")]
    Owner { owner: u32, me: u32 },
    #[error("its mode {mode:04o} lets {who} {what} it")]
    Mode { mode: u32, who: &'static str, what: &'static str },
    #[error("it is {0} bytes long, more than the {MAX_ENTRY_BYTES} an entry may have")]
    TooLarge(u64),
    #[error("its authentication tag does not match (another component, another engine, or not written by this host)")]
    BadTag,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<rustix::io::Errno> for Untrusted {
    fn from(e: rustix::io::Errno) -> Self {
        if e == rustix::io::Errno::LOOP { Untrusted::Symlink } else { Untrusted::Io(e.into()) }
    }
}

impl Cache {
    /// A cache in `dir`, authenticated with the key in `key_file` (default: `dir` + `.key`,
    /// beside the folder).
    pub fn new(dir: PathBuf, key_file: Option<PathBuf>) -> Self {
        let key_file = key_file.unwrap_or_else(|| {
            let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "cache".into());
            name.push(".key");
            dir.with_file_name(name)
        });
        Cache { dir, key_file }
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding the per-install authentication key.
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// The entry's file name for a component with this SHA-256, in this engine.
    fn entry_name(component_sha: &[u8], engine_hash: u64) -> String {
        format!("{}-{engine_hash:016x}.cwasm", hex(&component_sha[..16]))
    }

    /// Looks up the entry of the component `bytes` for `engine`: opens the folder and the key,
    /// hashes the component, reads the entry and checks its tag, and reads the component's
    /// verification record. Nothing is deserialised or compiled (that is
    /// [`Lookup::load_or_compile`]'s, once the component is verified); warnings wait for
    /// `load_or_compile` too.
    pub fn lookup(&self, engine: &Engine, bytes: &[u8]) -> Lookup {
        let trusted = self.open_dir().and_then(|dir| Ok((self.key()?, dir)));
        let (key, dir) = match trusted {
            Ok(opened) => opened,
            Err(why) => return Lookup { dir: self.dir.clone(), found: Found::Unusable(why) },
        };
        let component_sha: [u8; 32] = Sha256::digest(bytes).into();
        let engine_hash = compat_hash(engine);
        let name = Self::entry_name(&component_sha, engine_hash);
        let tag_key = TagKey { key, component_sha, engine_hash };
        let record = read_small(&dir, &Self::record_name(&component_sha)).ok().flatten();
        let entry = match read_entry(&dir, &name) {
            Ok(None) => Entry::Missing,
            Ok(Some(data)) => match tag_key.open(&data).map(|artifact| data.len() - artifact.len()) {
                Some(start) => Entry::Authentic { data, start },
                None => Entry::Rejected(Untrusted::BadTag),
            },
            Err(why) => Entry::Rejected(why),
        };
        Lookup { dir: self.dir.clone(), found: Found::Usable { dir, name, tag_key, entry, record } }
    }

    /// The verification record's file name for a component with this SHA-256.
    fn record_name(component_sha: &[u8]) -> String {
        format!("{}.verified", hex(&component_sha[..16]))
    }

    /// Opens the folder (creating it 0700 when missing) and checks who may write it.
    fn open_dir(&self) -> Result<OwnedFd, Untrusted> {
        match std::fs::symlink_metadata(&self.dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.dir)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("cannot create the folder: {e}")))?;
            }
            _ => {}
        }
        let fd = rfs::open(
            &self.dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| if e == rustix::io::Errno::NOTDIR { self.not_dir() } else { e.into() })?;
        check_owner_and_mode(&fd, FileType::Directory, "folder", 0o022)?;
        Ok(fd)
    }

    /// `open` with `NOFOLLOW` reports a symlink to a directory as `ENOTDIR` on some systems.
    fn not_dir(&self) -> Untrusted {
        match std::fs::symlink_metadata(&self.dir) {
            Ok(m) if m.file_type().is_symlink() => Untrusted::Symlink,
            _ => Untrusted::WrongType("folder"),
        }
    }

    /// The per-install key: read from [`Cache::key_file`], or made (32 random bytes, mode 0600)
    /// when missing. A key file anyone else could read or write is not used.
    fn key(&self) -> Result<[u8; KEY_BYTES], Untrusted> {
        let why = |e: Untrusted| match e {
            Untrusted::Io(io) => {
                Untrusted::Io(std::io::Error::new(io.kind(), format!("key file {}: {io}", self.key_file.display())))
            }
            other => Untrusted::Io(std::io::Error::other(format!("key file {}: {other}", self.key_file.display()))),
        };
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        match rfs::open(&self.key_file, flags, Mode::empty()) {
            Ok(fd) => {
                check_owner_and_mode(&fd, FileType::RegularFile, "regular file", 0o077).map_err(why)?;
                let mut key = [0u8; KEY_BYTES];
                let mut file = File::from(fd);
                file.read_exact(&mut key).map_err(|e| why(e.into()))?;
                if file.read(&mut [0u8; 1]).map_err(|e| why(e.into()))? != 0 {
                    return Err(why(Untrusted::WrongType("32-byte key")));
                }
                Ok(key)
            }
            Err(rustix::io::Errno::NOENT) => {
                let mut key = [0u8; KEY_BYTES];
                getrandom::fill(&mut key).map_err(|e| why(Untrusted::Io(std::io::Error::other(e.to_string()))))?;
                // Written whole to a temporary file, then linked into place: a host starting at the
                // same moment sees no key or a whole one, and linking never replaces one.
                let mut temp_name = self.key_file.as_os_str().to_os_string();
                temp_name.push(format!(".tmp-{}-{:x}", std::process::id(), nanos()));
                let temp = PathBuf::from(temp_name);
                let create = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let written =
                    rfs::open(&temp, create, Mode::from_raw_mode(0o600)).map_err(std::io::Error::from).and_then(|fd| {
                        let mut file = File::from(fd);
                        file.write_all(&key)?;
                        file.sync_all()
                    });
                let linked = written.and_then(|()| std::fs::hard_link(&temp, &self.key_file));
                let _ = std::fs::remove_file(&temp);
                match linked {
                    Ok(()) => Ok(key),
                    // Another host made it at the same moment: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.key(),
                    Err(e) => Err(why(e.into())),
                }
            }
            Err(e) => Err(why(e.into())),
        }
    }
}

/// What [`Cache::lookup`] found for one component.
pub struct Lookup {
    /// The cache folder, for warnings.
    dir: PathBuf,
    found: Found,
}

enum Found {
    /// The folder or the key cannot be trusted: compile in memory.
    Unusable(Untrusted),
    /// The folder is trusted; its entry for the component is `entry`, and `record` its
    /// verification record's bytes (unauthenticated yet), if there is one.
    Usable { dir: OwnedFd, name: String, tag_key: TagKey, entry: Entry, record: Option<Vec<u8>> },
}

enum Entry {
    Missing,
    /// A whole entry whose tag is authentic; its artifact starts at `start`.
    Authentic {
        data: Vec<u8>,
        start: usize,
    },
    /// An entry that fails the trust rule, and why.
    Rejected(Untrusted),
}

impl Lookup {
    /// The id of the key under which this install verified the component and its `.sig` file
    /// text `signature` (both exactly as read now), if the component's verification record says
    /// so, its tag is authentic, and `public_key` still trusts that key id with the same key
    /// bytes. `None` means: check the signature.
    pub fn vouched(&self, signature: &str, public_key: impl Fn(&str) -> Option<[u8; 32]>) -> Option<String> {
        let Found::Usable { tag_key, record: Some(record), .. } = &self.found else {
            return None;
        };
        let rest = record.strip_prefix(RECORD_MAGIC.as_slice())?;
        let (&len, rest) = rest.split_first()?;
        let (key_id, tag) = rest.split_at_checked(usize::from(len))?;
        let key_id = std::str::from_utf8(key_id).ok()?;
        let key = public_key(key_id)?;
        tag_key.record_mac(signature, key_id, &key).verify_slice(tag).ok()?;
        Some(key_id.to_string())
    }

    /// Records that the component and its `.sig` text `signature` verified under the trusted key
    /// `key_id` (`key`: its bytes), so the next start need not check the signature again. Only
    /// for a trusted folder; a failure to write is only logged (the next start checks in full).
    pub fn remember_verified(&self, signature: &str, key_id: &str, key: &[u8; 32]) {
        let Found::Usable { dir, tag_key, .. } = &self.found else {
            return;
        };
        let Ok(len) = u8::try_from(key_id.len()) else {
            return;
        };
        let mut record = RECORD_MAGIC.to_vec();
        record.push(len);
        record.extend_from_slice(key_id.as_bytes());
        record.extend_from_slice(&tag_key.record_mac(signature, key_id, key).finalize().into_bytes());
        if let Err(e) = store_file(dir, &Cache::record_name(&tag_key.component_sha), &[&record]) {
            tracing::debug!("verification record not written in {}: {e}", self.dir.display());
        }
    }

    /// The compiled component: deserialised from an authentic entry, otherwise compiled and (if
    /// the folder is trusted) stored. Compile errors are returned; cache problems only degrade to
    /// compiling in memory, with a warning. Call it only for a component that may run.
    pub fn load_or_compile(self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<(Component, Source)> {
        let (dir, name, tag_key, entry) = match self.found {
            Found::Usable { dir, name, tag_key, entry, .. } => (dir, name, tag_key, entry),
            Found::Unusable(why) => {
                tracing::warn!("compiled-component cache {} not used: {why}; compiling in memory", self.dir.display());
                return Ok((Component::from_binary(engine, bytes)?, Source::CompiledOnly));
            }
        };
        match entry {
            Entry::Missing => {}
            Entry::Authentic { data, start } => {
                let artifact = &data[start..];
                // SAFETY: the artifact is authenticated (HMAC under this install's private key)
                // as written by this host for this component and this engine's compatibility
                // hash, read from a folder and file only this user can write; wasmtime
                // re-checks the version and settings and errors on a mismatch.
                match unsafe { Component::deserialize(engine, artifact) } {
                    Ok(component) => return Ok((component, Source::Cache)),
                    Err(e) => tracing::warn!("cache entry {name} not loadable ({e}); recompiling"),
                }
            }
            Entry::Rejected(why) => tracing::warn!("cache entry {name} not used: {why}; recompiling"),
        }
        let component = Component::from_binary(engine, bytes)?;
        let stored = component.serialize().map_err(|e| Untrusted::Io(std::io::Error::other(e.to_string()))).and_then(
            |artifact| store_file(&dir, &name, &[MAGIC, &tag_key.seal(&artifact), &artifact]).map_err(Untrusted::Io),
        );
        let source = match stored {
            Ok(()) => Source::CompiledAndStored,
            Err(e) => {
                tracing::warn!("compiled component not cached in {}: {e}", self.dir.display());
                Source::CompiledOnly
            }
        };
        Ok((component, source))
    }
}

/// Checks an open file's type, owner (the effective user) and that none of `forbidden` mode bits
/// is set.
fn check_owner_and_mode(
    fd: impl AsFd,
    kind: FileType,
    kind_name: &'static str,
    forbidden: u32,
) -> Result<(), Untrusted> {
    let stat = rfs::fstat(fd)?;
    if FileType::from_raw_mode(stat.st_mode) != kind {
        return Err(Untrusted::WrongType(kind_name));
    }
    let me = rustix::process::geteuid().as_raw();
    if stat.st_uid != me {
        return Err(Untrusted::Owner { owner: stat.st_uid, me });
    }
    let mode = stat.st_mode & 0o7777;
    if mode & forbidden != 0 {
        let who = if mode & forbidden & 0o070 != 0 { "its group" } else { "other users" };
        let what = if forbidden & 0o044 != 0 { "read or write" } else { "write" };
        return Err(Untrusted::Mode { mode, who, what });
    }
    Ok(())
}

/// Reads entry `name` of the open folder: `None` when it does not exist.
fn read_entry(dir: &OwnedFd, name: &str) -> Result<Option<Vec<u8>>, Untrusted> {
    read_bounded(dir, name, MAX_ENTRY_BYTES)
}

/// Reads verification record `name` of the open folder: `None` when it does not exist.
fn read_small(dir: &OwnedFd, name: &str) -> Result<Option<Vec<u8>>, Untrusted> {
    read_bounded(dir, name, MAX_RECORD_BYTES)
}

/// Reads file `name` of the open folder (by the entries' rule: not a link, a regular file of this
/// user's that others cannot write, at most `max` bytes): `None` when it does not exist.
fn read_bounded(dir: &OwnedFd, name: &str, max: u64) -> Result<Option<Vec<u8>>, Untrusted> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rfs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    check_owner_and_mode(&fd, FileType::RegularFile, "regular file", 0o022)?;
    let size = rfs::fstat(&fd)?.st_size as u64;
    if size > max {
        return Err(Untrusted::TooLarge(size));
    }
    let mut data = Vec::with_capacity(size as usize);
    // `take`: the file may grow after the check.
    File::from(fd).take(max + 1).read_to_end(&mut data)?;
    if data.len() as u64 > max {
        return Err(Untrusted::TooLarge(data.len() as u64));
    }
    Ok(Some(data))
}

/// Writes an entry or a record (`parts`, one after another) atomically in the open folder (a new
/// temporary file, then rename). It is not
/// synced to disk: an entry a crash leaves torn or empty fails its tag and is compiled again, and
/// a sync of a few MiB took a large share of the first run after a swap on a busy disk.
fn store_file(dir: &OwnedFd, name: &str, parts: &[&[u8]]) -> std::io::Result<()> {
    let temp = format!(".tmp-{}-{:x}", std::process::id(), nanos());
    let create = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rfs::openat(dir, temp.as_str(), create, Mode::from_raw_mode(0o600))?;
    let write = || -> std::io::Result<()> {
        let mut file = File::from(fd);
        for part in parts {
            file.write_all(part)?;
        }
        rfs::renameat(dir, temp.as_str(), dir, name)?;
        Ok(())
    };
    write().inspect_err(|_| {
        let _ = rfs::unlinkat(dir, temp.as_str(), rfs::AtFlags::empty());
    })
}

/// What an entry's tag binds: the install's key, the component and the engine.
struct TagKey {
    key: [u8; KEY_BYTES],
    component_sha: [u8; 32],
    engine_hash: u64,
}

impl TagKey {
    fn mac(&self, artifact: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(MAGIC);
        mac.update(&self.component_sha);
        mac.update(&self.engine_hash.to_le_bytes());
        mac.update(artifact);
        mac
    }

    /// The tag of `artifact`.
    fn seal(&self, artifact: &[u8]) -> Vec<u8> {
        self.mac(artifact).finalize().into_bytes().to_vec()
    }

    /// The tag of a verification record: this install verified the component and the `.sig`
    /// text `signature` under key `key_id` with bytes `key`.
    fn record_mac(&self, signature: &str, key_id: &str, key: &[u8; 32]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(RECORD_MAGIC);
        mac.update(&self.component_sha);
        mac.update(&Sha256::digest(signature.as_bytes()));
        mac.update(&[u8::try_from(key_id.len()).unwrap_or(u8::MAX)]);
        mac.update(key_id.as_bytes());
        mac.update(key);
        mac
    }

    /// The artifact inside an entry, if the entry is whole and its tag is authentic.
    fn open<'d>(&self, data: &'d [u8]) -> Option<&'d [u8]> {
        let rest = data.strip_prefix(MAGIC.as_slice())?;
        if rest.len() < 32 {
            return None;
        }
        let (tag, artifact) = rest.split_at(32);
        self.mac(artifact).verify_slice(tag).ok().map(|()| artifact)
    }
}

/// The engine's compatibility hash (wasmtime version and settings) as a number.
fn compat_hash(engine: &Engine) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_authenticated_for_one_key_component_and_engine() {
        let key = [7u8; KEY_BYTES];
        let sha: [u8; 32] = Sha256::digest(b"component a").into();
        let tags = TagKey { key, component_sha: sha, engine_hash: 1 };
        let artifact = b"artifact bytes".to_vec();
        let mut entry = MAGIC.to_vec();
        entry.extend_from_slice(&tags.seal(&artifact));
        entry.extend_from_slice(&artifact);
        assert_eq!(tags.open(&entry), Some(artifact.as_slice()));

        let mut flipped = entry.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(tags.open(&flipped), None);
        assert_eq!(tags.open(&entry[..entry.len() - 1]), None);
        assert_eq!(tags.open(&entry[..20]), None);
        assert_eq!(tags.open(b"garbage"), None);

        let other_sha: [u8; 32] = Sha256::digest(b"component b").into();
        let other_component = TagKey { key, component_sha: other_sha, engine_hash: 1 };
        assert_eq!(other_component.open(&entry), None, "an entry copied from another component");
        let other_engine = TagKey { key, component_sha: sha, engine_hash: 2 };
        assert_eq!(other_engine.open(&entry), None, "an entry of another engine");
        let other_key = [8u8; KEY_BYTES];
        let other_install = TagKey { key: other_key, component_sha: sha, engine_hash: 1 };
        assert_eq!(other_install.open(&entry), None, "an entry forged without this install's key");
    }

    #[test]
    fn a_verification_record_vouches_only_for_its_component_signature_and_key() {
        let sha: [u8; 32] = Sha256::digest(b"component a").into();
        let lookup_with = |key: [u8; KEY_BYTES], component_sha: [u8; 32], record: Option<Vec<u8>>| {
            let dir = rfs::open(".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap();
            let tag_key = TagKey { key, component_sha, engine_hash: 1 };
            Lookup {
                dir: PathBuf::from("."),
                found: Found::Usable { dir, name: String::new(), tag_key, entry: Entry::Missing, record },
            }
        };
        let signing_key = [5u8; 32];
        let trusted = |id: &str| (id == "k1").then_some(signing_key);
        let tags = TagKey { key: [7u8; KEY_BYTES], component_sha: sha, engine_hash: 1 };
        let mut record = RECORD_MAGIC.to_vec();
        record.push(2);
        record.extend_from_slice(b"k1");
        record.extend_from_slice(&tags.record_mac("sig text", "k1", &signing_key).finalize().into_bytes());

        let found = lookup_with([7u8; KEY_BYTES], sha, Some(record.clone()));
        assert_eq!(found.vouched("sig text", trusted), Some("k1".to_string()));
        assert_eq!(found.vouched("sig text ", trusted), None, "another .sig text");
        assert_eq!(found.vouched("sig text", |_| None), None, "a key no longer trusted");
        assert_eq!(found.vouched("sig text", |_| Some([6u8; 32])), None, "other key bytes under that id");
        let other_sha: [u8; 32] = Sha256::digest(b"component b").into();
        assert_eq!(lookup_with([7u8; KEY_BYTES], other_sha, Some(record.clone())).vouched("sig text", trusted), None);
        assert_eq!(lookup_with([8u8; KEY_BYTES], sha, Some(record.clone())).vouched("sig text", trusted), None);
        let mut flipped = record.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(lookup_with([7u8; KEY_BYTES], sha, Some(flipped)).vouched("sig text", trusted), None);
        assert_eq!(lookup_with([7u8; KEY_BYTES], sha, Some(record[..20].to_vec())).vouched("sig text", trusted), None);
        assert_eq!(lookup_with([7u8; KEY_BYTES], sha, None).vouched("sig text", trusted), None);
    }

    #[test]
    fn the_key_lives_beside_the_folder() {
        let cache = Cache::new(PathBuf::from("/srv/hb/modules/cloudpe/cache"), None);
        assert_eq!(cache.key_file(), Path::new("/srv/hb/modules/cloudpe/cache.key"));
        let cache = Cache::new(PathBuf::from("/c"), Some(PathBuf::from("/k")));
        assert_eq!(cache.key_file(), Path::new("/k"));
    }
}
