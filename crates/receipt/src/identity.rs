//! Ed25519 identities for providers and the coordinator.
//!
//! Private keys live in PKCS#8 PEM files created with mode 0600; loading a key
//! file that group or others can read is refused, as ssh does. Public keys and
//! signatures travel as `ed25519:<hex>` and plain lowercase hex.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Errors from loading, parsing or checking keys and signatures.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The key file is readable by group or others.
    #[error(
        "key file {path} has mode {mode:o}; it must not be readable by group or others (chmod 600)"
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file is not a PKCS#8 Ed25519 private key.
    #[error("key file {path} is not a PKCS#8 PEM Ed25519 private key")]
    BadKeyFile {
        /// The key file.
        path: PathBuf,
    },
    /// A public key string is malformed.
    #[error("public key {value:?} is malformed: {reason}")]
    BadPublicKey {
        /// The offending text.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A signature string is malformed.
    #[error("signature is malformed: {reason}")]
    BadSignature {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The signature does not verify under the key.
    #[error("signature does not verify under {key}")]
    SignatureMismatch {
        /// The key it was checked against.
        key: String,
    },
}

/// An Ed25519 public key, written `ed25519:<64 lowercase hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicKey {
    text: String,
    key: VerifyingKey,
}

impl PublicKey {
    /// The textual form.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Parses `ed25519:<hex>`.
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        let bad = |reason| IdentityError::BadPublicKey {
            value: s.to_string(),
            reason,
        };
        let h = s
            .strip_prefix("ed25519:")
            .ok_or_else(|| bad("missing \"ed25519:\" prefix"))?;
        if h.len() != 64 || !h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("expected 64 lowercase hex digits"));
        }
        let mut raw = [0u8; 32];
        hex::decode_to_slice(h, &mut raw).map_err(|_| bad("not hex"))?;
        let key = VerifyingKey::from_bytes(&raw).map_err(|_| bad("not a valid curve point"))?;
        Ok(PublicKey {
            text: s.to_string(),
            key,
        })
    }

    /// Raw 32 key bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Checks a signature over `msg` with strict (non-malleable) verification.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), IdentityError> {
        let s = ed25519_dalek::Signature::from_bytes(&sig.0);
        self.key
            .verify_strict(msg, &s)
            .map_err(|_| IdentityError::SignatureMismatch {
                key: self.text.clone(),
            })
    }
}

impl TryFrom<String> for PublicKey {
    type Error = IdentityError;
    fn try_from(s: String) -> Result<Self, IdentityError> {
        PublicKey::parse(&s)
    }
}

impl From<PublicKey> for String {
    fn from(p: PublicKey) -> String {
        p.text
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// A 64-byte Ed25519 signature, written as 128 lowercase hex digits.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Signature(pub [u8; 64]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

impl Signature {
    /// Parses 128 lowercase hex digits.
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        if s.len() != 128 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(IdentityError::BadSignature {
                reason: "expected 128 lowercase hex digits",
            });
        }
        let mut raw = [0u8; 64];
        hex::decode_to_slice(s, &mut raw)
            .map_err(|_| IdentityError::BadSignature { reason: "not hex" })?;
        Ok(Signature(raw))
    }
}

impl TryFrom<String> for Signature {
    type Error = IdentityError;
    fn try_from(s: String) -> Result<Self, IdentityError> {
        Signature::parse(&s)
    }
}

impl From<Signature> for String {
    fn from(s: Signature) -> String {
        hex::encode(s.0)
    }
}

/// A signing identity: a provider's or the coordinator's Ed25519 key pair.
pub struct Identity {
    key: SigningKey,
    public: PublicKey,
}

impl std::fmt::Debug for Identity {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public.text)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A fresh random identity (not persisted).
    pub fn generate() -> Self {
        let key = SigningKey::generate(&mut rand_core::OsRng);
        Self::from_signing_key(key)
    }

    /// An identity from a 32-byte seed; for tests and derived keys.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self::from_signing_key(SigningKey::from_bytes(&seed))
    }

    fn from_signing_key(key: SigningKey) -> Self {
        let vk = key.verifying_key();
        let public = PublicKey {
            text: format!("ed25519:{}", hex::encode(vk.to_bytes())),
            key: vk,
        };
        Identity { key, public }
    }

    /// The 32-byte Ed25519 seed, for building signers of other formats
    /// from the same key file (the log's C2SP signed-note checkpoint key).
    /// Secret: never log or serialize it.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.key.sign(msg).to_bytes())
    }

    /// Loads the key at `path`, or creates it (mode 0600) if absent.
    pub fn load_or_create(path: &Path) -> Result<Self, IdentityError> {
        if path.exists() {
            return Self::load(path);
        }
        let id = Self::generate();
        id.save(path)?;
        Ok(id)
    }

    /// Loads a PKCS#8 PEM key, refusing files readable by group or others.
    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        let io = |source| IdentityError::Io {
            path: path.to_path_buf(),
            source,
        };
        check_mode(path)?;
        let pem = fs::read_to_string(path).map_err(io)?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|_| IdentityError::BadKeyFile {
            path: path.to_path_buf(),
        })?;
        Ok(Self::from_signing_key(key))
    }

    /// Writes the key as PKCS#8 PEM with mode 0600, never overwriting a file.
    pub fn save(&self, path: &Path) -> Result<(), IdentityError> {
        let io = |source| IdentityError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                fs::create_dir_all(dir).map_err(io)?;
            }
        }
        let pem =
            self.key
                .to_pkcs8_pem(Default::default())
                .map_err(|_| IdentityError::BadKeyFile {
                    path: path.to_path_buf(),
                })?;
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(io)?;
        f.write_all(pem.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)
    }
}

#[cfg(unix)]
fn check_mode(path: &Path) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path) -> Result<(), IdentityError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 §7.1, TEST 1 (empty message).
    #[test]
    fn rfc8032_test_vector_1() {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            &mut seed,
        )
        .unwrap();
        let id = Identity::from_seed(seed);
        assert_eq!(
            id.public().as_str(),
            "ed25519:d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = id.sign(b"");
        assert_eq!(
            String::from(sig.clone()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        id.public().verify(b"", &sig).unwrap();
    }

    #[test]
    fn sign_verify_roundtrip_and_tamper() {
        let id = Identity::from_seed([7; 32]);
        let sig = id.sign(b"hello");
        id.public().verify(b"hello", &sig).unwrap();
        assert!(id.public().verify(b"hellp", &sig).is_err());
    }

    #[test]
    fn key_file_is_0600_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let a = Identity::load_or_create(&path).unwrap();
        let b = Identity::load_or_create(&path).unwrap();
        assert_eq!(a.public(), b.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let err = Identity::load(&path).unwrap_err();
            assert!(
                matches!(err, IdentityError::InsecurePermissions { .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn garbage_key_file_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        opts.open(&path).unwrap().write_all(b"not a key").unwrap();
        assert!(matches!(
            Identity::load(&path),
            Err(IdentityError::BadKeyFile { .. })
        ));
    }

    #[test]
    fn public_key_parsing_is_strict() {
        let id = Identity::from_seed([1; 32]);
        let s = id.public().as_str().to_string();
        assert!(PublicKey::parse(&s).is_ok());
        assert!(PublicKey::parse(&s.to_uppercase()).is_err());
        assert!(PublicKey::parse(&s[8..]).is_err());
        assert!(PublicKey::parse("ed25519:00").is_err());
    }

    #[test]
    fn debug_does_not_leak_private_key() {
        let id = Identity::from_seed([9; 32]);
        let dbg = format!("{id:?}");
        assert!(!dbg.contains(&hex::encode([9u8; 32])));
    }
}
