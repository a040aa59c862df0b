//! What makes a component traceable and trustworthy once built: its standard metadata sections
//! (what `wasm-tools metadata show` prints) and its detached signature (`<file>.sig`, the format of
//! the `component-signing` crate), with the keys to make and check them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use component_signing::{Signer, generate_key_pair, signature_path};
use wasm_metadata::{AddMetadata, AddMetadataField::Set, Description, Licenses, Revision, Source, Version};

/// The license of everything in this workspace (SPDX).
const LICENSE: &str = "Apache-2.0";
/// The component's name in its metadata.
const NAME: &str = "cloudpe";

/// Writes the standard metadata into `component` in place: name, `version`, the description of
/// `guest/Cargo.toml` (the one the module's `info` gives), license, and the source repository
/// and revision when git knows them.
pub fn embed_metadata(root: &Path, component: &Path, version: &str) -> Result<()> {
    let description = crate_field(&root.join("guest/Cargo.toml"), "description")?;
    let bytes = fs::read(component).with_context(|| format!("cannot read {}", component.display()))?;
    let mut add = AddMetadata::default();
    add.name = Set(NAME.to_string());
    add.version = Set(Version::new(version.to_string()));
    add.description = Set(Description::new(description));
    add.licenses = Set(Licenses::new(LICENSE)?);
    if let Some(url) = git(root, &["remote", "get-url", "origin"]).filter(|u| u.starts_with("https://"))
        && let Ok(source) = Source::new(&url)
    {
        add.source = Set(source);
    }
    if let Some(revision) = git(root, &["rev-parse", "HEAD"]) {
        add.revision = Set(Revision::new(revision));
    }
    let with_metadata = add.to_wasm(&bytes).context("cannot add the metadata sections")?;
    fs::write(component, with_metadata).with_context(|| format!("cannot write {}", component.display()))
}

/// The version in a crate's `Cargo.toml` (its `[package]` `version = "…"`).
pub fn crate_version(manifest: &Path) -> Result<String> {
    crate_field(manifest, "version")
}

/// A one-line string field of a crate's `Cargo.toml` (`key = "…"`, the first such line).
fn crate_field(manifest: &Path, key: &str) -> Result<String> {
    let text = fs::read_to_string(manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let prefix = format!("{key} = \"");
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()).and_then(|v| v.strip_suffix('"')))
        .map(str::to_string)
        .with_context(|| format!("no {key} in {}", manifest.display()))
}

/// Signs `component` with the private key in `key_file`; writes `<component>.sig` and returns
/// the key's id.
pub fn sign(component: &Path, key_file: &Path) -> Result<String> {
    let pem = fs::read_to_string(key_file).with_context(|| format!("cannot read the key {}", key_file.display()))?;
    let signer =
        Signer::from_pem(&pem).with_context(|| format!("{} is not a usable signing key", key_file.display()))?;
    let bytes = fs::read(component).with_context(|| format!("cannot read {}", component.display()))?;
    fs::write(signature_path(component), signer.sign(&bytes).to_json())?;
    Ok(signer.key_id())
}

/// The public key (PEM) of the private key in `key_file`.
pub fn public_key_of(key_file: &Path) -> Result<String> {
    let pem = fs::read_to_string(key_file).with_context(|| format!("cannot read the key {}", key_file.display()))?;
    Ok(Signer::from_pem(&pem)
        .with_context(|| format!("{} is not a usable signing key", key_file.display()))?
        .public_pem())
}

/// Makes a key pair in `dir`: `signing.key` (private, 0600) and `signing.pub`. Refuses to
/// overwrite an existing private key.
pub fn keygen(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    fs::create_dir_all(dir)?;
    let (private_path, public_path) = (dir.join("signing.key"), dir.join("signing.pub"));
    if private_path.exists() {
        bail!("{} exists: not overwriting a signing key", private_path.display());
    }
    let (private, public) = generate_key_pair()?;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&private_path)
        .and_then(|mut f| f.write_all(private.as_bytes()))
        .with_context(|| format!("cannot write {}", private_path.display()))?;
    fs::write(&public_path, public)?;
    Ok((private_path, public_path))
}

/// A key pair kept under the target folder (`name/signing.key`, `name/signing.pub`), made on
/// first use: for tests and for bundles built without a release key.
pub fn local_key(target: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
    let dir = target.join(name);
    let pair = (dir.join("signing.key"), dir.join("signing.pub"));
    if pair.0.is_file() && pair.1.is_file() { Ok(pair) } else { keygen(&dir) }
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(root).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_refuses_to_overwrite_and_signs_verifiably() {
        let dir = std::env::temp_dir().join(format!("xtask-keygen-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let (private, public) = keygen(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(keygen(&dir).unwrap_err().to_string().contains("not overwriting"));
        let file = dir.join("thing.wasm");
        fs::write(&file, b"bytes").unwrap();
        let id = sign(&file, &private).unwrap();
        let trusted = component_signing::TrustedKeys::from_path(&public).unwrap();
        let sig = fs::read_to_string(signature_path(&file)).unwrap();
        assert_eq!(trusted.verify(b"bytes", &sig).unwrap(), id);
        assert_eq!(public_key_of(&private).unwrap(), fs::read_to_string(&public).unwrap());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_guest_version_is_read_from_its_manifest() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let version = crate_version(&root.join("guest/Cargo.toml")).unwrap();
        assert!(version.split('.').count() == 3, "{version}");
        let description = crate_field(&root.join("guest/Cargo.toml"), "description").unwrap();
        assert!(description.starts_with("CloudPe"), "{description}");
    }
}
