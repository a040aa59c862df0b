//! Detached ed25519 signatures of module components, shared by the host (which verifies) and
//! `cargo xtask` (which signs).
//!
//! - Keys are PEM files in the standard forms OpenSSL also reads and writes: a private key is
//!   PKCS#8 (`-----BEGIN PRIVATE KEY-----`, e.g. `openssl genpkey -algorithm ed25519`), a public
//!   key is SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`, `openssl pkey -pubout`).
//! - A key's id is the first 16 hex digits of the SHA-256 of its 32 raw public-key bytes.
//! - The signature of `cloudpe.wasm` is `cloudpe.wasm.sig`, a JSON object
//!   `{"algorithm": "ed25519", "key_id": "…", "signature": "<128 hex digits>"}` over the exact
//!   bytes of the component file.
//!
//! ```
//! let (private_pem, public_pem) = component_signing::generate_key_pair().unwrap();
//! let signer = component_signing::Signer::from_pem(&private_pem).unwrap();
//! let signature = signer.sign(b"component bytes");
//! let trusted = component_signing::TrustedKeys::from_pem(&public_pem).unwrap();
//! assert_eq!(trusted.verify(b"component bytes", &signature.to_json()).unwrap(), signer.key_id());
//! ```

use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The only algorithm this format knows.
pub const ALGORITHM: &str = "ed25519";

/// The signature file of `component`: its path with `.sig` appended.
pub fn signature_path(component: &Path) -> PathBuf {
    let mut name = component.as_os_str().to_os_string();
    name.push(".sig");
    PathBuf::from(name)
}

/// Why a component's signature is not accepted. Each case names what the operator must do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("it is not signed (no signature file)")]
    Unsigned,
    #[error("its signature file is not valid: {0}")]
    Malformed(String),
    #[error("it is signed by key {signer}, which this host does not trust (trusted: {trusted})")]
    UnknownKey { signer: String, trusted: String },
    #[error("it was modified after it was signed by key {0} (the signature does not match its bytes)")]
    Modified(String),
}

/// A key or key file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

/// The content of a `.sig` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    pub algorithm: String,
    pub key_id: String,
    pub signature: String,
}

impl SignatureFile {
    /// The file's JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain strings serialise") + "\n"
    }
}

/// The id of a public key.
pub fn key_id(key: &VerifyingKey) -> String {
    hex(&Sha256::digest(key.as_bytes())[..8])
}

/// A private key that signs components.
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    /// Reads a PKCS#8 PEM private key.
    pub fn from_pem(pem: &str) -> Result<Signer, KeyError> {
        SigningKey::from_pkcs8_pem(pem)
            .map(|key| Signer { key })
            .map_err(|e| KeyError(format!("not an ed25519 private key in PKCS#8 PEM form: {e}")))
    }

    /// The id of the matching public key.
    pub fn key_id(&self) -> String {
        key_id(&self.key.verifying_key())
    }

    /// The matching public key, in PEM.
    pub fn public_pem(&self) -> String {
        self.key.verifying_key().to_public_key_pem(Default::default()).expect("a public key encodes")
    }

    /// The signature of `component` (the file's exact bytes).
    pub fn sign(&self, component: &[u8]) -> SignatureFile {
        use ed25519_dalek::Signer as _;
        let signature = self.key.sign(component);
        SignatureFile { algorithm: ALGORITHM.into(), key_id: self.key_id(), signature: hex(&signature.to_bytes()) }
    }
}

/// A new key pair: (private key PEM, public key PEM).
pub fn generate_key_pair() -> Result<(String, String), KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError(format!("no randomness for a key: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    let private = key.to_pkcs8_pem(Default::default()).map_err(|e| KeyError(e.to_string()))?;
    let public = key.verifying_key().to_public_key_pem(Default::default()).map_err(|e| KeyError(e.to_string()))?;
    Ok((private.to_string(), public))
}

/// The public keys a host trusts, by id.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<(String, VerifyingKey)>,
}

impl TrustedKeys {
    /// Every `PUBLIC KEY` block of a PEM text (a file may hold several).
    pub fn from_pem(text: &str) -> Result<TrustedKeys, KeyError> {
        let mut trusted = TrustedKeys::default();
        trusted.add_pem(text)?;
        Ok(trusted)
    }

    /// Reads `path`: a PEM file, or a folder whose `*.pem` and `*.pub` files are read.
    pub fn from_path(path: &Path) -> Result<TrustedKeys, KeyError> {
        let read = |file: &Path| {
            std::fs::read_to_string(file).map_err(|e| KeyError(format!("cannot read {}: {e}", file.display())))
        };
        let mut trusted = TrustedKeys::default();
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| KeyError(format!("cannot read {}: {e}", path.display())))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "pem" || x == "pub"))
                .collect();
            files.sort();
            for file in files {
                trusted.add_pem(&read(&file)?).map_err(|e| KeyError(format!("{}: {e}", file.display())))?;
            }
        } else {
            trusted.add_pem(&read(path)?).map_err(|e| KeyError(format!("{}: {e}", path.display())))?;
        }
        if trusted.keys.is_empty() {
            return Err(KeyError(format!("{} holds no public key", path.display())));
        }
        Ok(trusted)
    }

    fn add_pem(&mut self, text: &str) -> Result<(), KeyError> {
        const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
        const END: &str = "-----END PUBLIC KEY-----";
        let mut rest = text;
        while let Some(start) = rest.find(BEGIN) {
            let end = rest[start..]
                .find(END)
                .map(|e| start + e + END.len())
                .ok_or_else(|| KeyError("a PUBLIC KEY block has no end line".into()))?;
            let key = VerifyingKey::from_public_key_pem(&rest[start..end])
                .map_err(|e| KeyError(format!("not an ed25519 public key: {e}")))?;
            let id = key_id(&key);
            if !self.keys.iter().any(|(known, _)| *known == id) {
                self.keys.push((id, key));
            }
            rest = &rest[end..];
        }
        Ok(())
    }

    /// The ids of the trusted keys.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// The raw 32 bytes of the trusted key with this id, if it is trusted.
    pub fn public_key(&self, id: &str) -> Option<[u8; 32]> {
        self.keys.iter().find(|(known, _)| known == id).map(|(_, key)| key.to_bytes())
    }

    /// Checks `signature_json` (a `.sig` file's text) over `component`; the signer's key id.
    pub fn verify(&self, component: &[u8], signature_json: &str) -> Result<String, VerifyError> {
        let file: SignatureFile =
            serde_json::from_str(signature_json).map_err(|e| VerifyError::Malformed(e.to_string()))?;
        if file.algorithm != ALGORITHM {
            return Err(VerifyError::Malformed(format!("algorithm {:?}, expected {ALGORITHM:?}", file.algorithm)));
        }
        let bytes = unhex(&file.signature)
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .ok_or_else(|| VerifyError::Malformed("the signature is not 128 hex digits".into()))?;
        let Some((id, key)) = self.keys.iter().find(|(id, _)| *id == file.key_id) else {
            return Err(VerifyError::UnknownKey {
                signer: file.key_id.chars().take(64).collect(),
                trusted: if self.keys.is_empty() { "none".into() } else { self.ids().join(", ") },
            });
        };
        key.verify(component, &Signature::from_bytes(&bytes)).map_err(|_| VerifyError::Modified(id.clone()))?;
        Ok(id.clone())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_bytes_and_key() {
        let (private, public) = generate_key_pair().unwrap();
        let signer = Signer::from_pem(&private).unwrap();
        assert_eq!(signer.public_pem(), public);
        let sig = signer.sign(b"component").to_json();
        let trusted = TrustedKeys::from_pem(&public).unwrap();
        assert_eq!(trusted.verify(b"component", &sig), Ok(signer.key_id()));

        assert_eq!(trusted.verify(b"componenT", &sig), Err(VerifyError::Modified(signer.key_id())));

        let (_, other_public) = generate_key_pair().unwrap();
        let others = TrustedKeys::from_pem(&other_public).unwrap();
        let err = others.verify(b"component", &sig).unwrap_err();
        assert!(matches!(&err, VerifyError::UnknownKey { signer: s, .. } if *s == signer.key_id()), "{err}");

        for bad in ["", "{}", r#"{"algorithm":"rsa","key_id":"x","signature":"00"}"#] {
            assert!(matches!(trusted.verify(b"component", bad), Err(VerifyError::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn several_keys_in_one_file_are_all_trusted() {
        let (_, a) = generate_key_pair().unwrap();
        let (private_b, b) = generate_key_pair().unwrap();
        let trusted = TrustedKeys::from_pem(&format!("{a}\n{b}")).unwrap();
        assert_eq!(trusted.ids().len(), 2);
        let signer = Signer::from_pem(&private_b).unwrap();
        assert!(trusted.verify(b"x", &signer.sign(b"x").to_json()).is_ok());
        assert!(TrustedKeys::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err());
    }
}
