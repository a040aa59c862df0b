//! The on-disk cache of compiled components, so a warm start skips compilation (~75 ms in a
//! release host) and only maps the artifact (~1 ms).
//!
//! - Key: SHA-256 of the component file and the engine's compatibility hash (wasmtime version and
//!   settings), so another component or another host build never loads a stale artifact.
//! - Each entry is `MAGIC`, the SHA-256 of the artifact, then the artifact; it is checked before
//!   wasmtime sees it, and a corrupt, truncated or foreign entry is recompiled and replaced.
//! - Entries are written to a temporary file in the cache folder and renamed into place, so a
//!   reader sees a whole entry or none, and two hosts starting at once both succeed.
//! - The folder is created private (0700). Without write access the host compiles in memory.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// First bytes of every cache entry.
const MAGIC: &[u8; 8] = b"HBMCACH1";

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
}

/// The default cache folder: `$XDG_CACHE_HOME/hostbill-module-host`, else
/// `~/.cache/hostbill-module-host`, else a folder in the system temp dir.
pub fn default_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("hostbill-module-host")
}

impl Cache {
    pub fn new(dir: PathBuf) -> Self {
        Cache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry path for a component with these bytes, in this engine.
    pub fn entry(&self, engine: &Engine, component: &[u8]) -> PathBuf {
        let mut compat = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut compat);
        let digest = Sha256::digest(component);
        self.dir.join(format!("{}-{:016x}.cwasm", hex(&digest[..16]), compat.finish()))
    }

    /// The compiled component: from the cache when a valid entry exists, otherwise compiled and
    /// (if possible) stored. Compile errors are returned; cache problems only degrade to memory.
    pub fn load_or_compile(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<(Component, Source)> {
        let entry = self.entry(engine, bytes);
        if let Some(component) = self.load(engine, &entry) {
            return Ok((component, Source::Cache));
        }
        let component = Component::from_binary(engine, bytes)?;
        let source = match component.serialize().map_err(|e| e.to_string()).and_then(|a| self.store(&entry, &a)) {
            Ok(()) => Source::CompiledAndStored,
            Err(e) => {
                tracing::warn!("compiled component not cached in {}: {e}", self.dir.display());
                Source::CompiledOnly
            }
        };
        Ok((component, source))
    }

    /// Loads a valid entry, or `None` (missing, corrupt, or built by another wasmtime).
    fn load(&self, engine: &Engine, entry: &Path) -> Option<Component> {
        let data = fs::read(entry).ok()?;
        let Some(artifact) = verified(&data) else {
            tracing::warn!("cache entry {} is corrupt; recompiling", entry.display());
            return None;
        };
        // SAFETY: the artifact was written by this host (checked against its SHA-256 above, in a
        // private folder) for an engine with the same compatibility hash (part of the file name);
        // wasmtime re-checks the version and settings and errors on a mismatch.
        match unsafe { Component::deserialize(engine, artifact) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!("cache entry {} not loadable ({e}); recompiling", entry.display());
                None
            }
        }
    }

    /// Writes an entry atomically (temporary file, then rename).
    fn store(&self, entry: &Path, artifact: &[u8]) -> Result<(), String> {
        create_private_dir(&self.dir).map_err(|e| format!("cannot create the folder: {e}"))?;
        let temp = self.dir.join(format!(".tmp-{}-{:x}", std::process::id(), nanos()));
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&temp)?;
            file.write_all(MAGIC)?;
            file.write_all(&Sha256::digest(artifact))?;
            file.write_all(artifact)?;
            file.sync_all()?;
            fs::rename(&temp, entry)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&temp);
            e.to_string()
        })
    }
}

/// The artifact inside an entry, if the entry is whole and its checksum matches.
fn verified(data: &[u8]) -> Option<&[u8]> {
    let rest = data.strip_prefix(MAGIC.as_slice())?;
    if rest.len() < 32 {
        return None;
    }
    let (sum, artifact) = rest.split_at(32);
    (Sha256::digest(artifact).as_slice() == sum).then_some(artifact)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
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
    fn entries_are_checked_before_use() {
        let artifact = b"artifact bytes".to_vec();
        let mut entry = MAGIC.to_vec();
        entry.extend_from_slice(&Sha256::digest(&artifact));
        entry.extend_from_slice(&artifact);
        assert_eq!(verified(&entry), Some(artifact.as_slice()));
        let mut flipped = entry.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(verified(&flipped), None);
        assert_eq!(verified(&entry[..entry.len() - 1]), None);
        assert_eq!(verified(&entry[..20]), None);
        assert_eq!(verified(b"garbage"), None);
    }
}
