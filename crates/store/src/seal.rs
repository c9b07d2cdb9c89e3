//! Secrets sealed at rest with AES-256-GCM.
//!
//! Format: `v1:<key id>:<base64(nonce || ciphertext)>`. The key id (first 8 hex digits of
//! SHA-256 of the key) tells which master key sealed a value, so a wrong or rotated key is
//! reported as such. The associated data binds a ciphertext to its row, so a sealed value
//! copied into another organisation's row does not open.

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

pub const MASTER_KEY_ENV: &str = "SAFEGPT_MASTER_KEY";
pub const MASTER_KEY_FILE: &str = "master.key";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "{MASTER_KEY_ENV} must be 64 hexadecimal characters (a 256-bit key); generate one with `openssl rand -hex 32`"
    )]
    BadKeyFormat,
    #[error("cannot read or create the master key file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error(
        "the stored client secret was sealed with another master key (key id {found}, current {current}); \
         restore the original master key or enter the client secret again"
    )]
    WrongKey { found: String, current: String },
    #[error("the stored client secret is damaged or was not sealed for this organisation; enter it again")]
    Corrupt,
}

pub struct Sealer {
    cipher: Aes256Gcm,
    key_id: String,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

fn parse_hex_key(hex: &str) -> Result<[u8; 32], SealError> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return Err(SealError::BadKeyFormat);
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| SealError::BadKeyFormat)?;
    }
    Ok(key)
}

impl Sealer {
    pub fn from_key(key: [u8; 32]) -> Self {
        let digest = Sha256::digest(key);
        let key_id = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Sealer { cipher: Aes256Gcm::new(&key.into()), key_id }
    }

    /// The master key from `SAFEGPT_MASTER_KEY`, or from `<data_dir>/master.key`, which is
    /// created (mode 0600) with a fresh random key when missing.
    pub fn load(env_key: Option<&str>, data_dir: &Path) -> Result<Self, SealError> {
        if let Some(hex) = env_key.filter(|k| !k.trim().is_empty()) {
            return Ok(Self::from_key(parse_hex_key(hex)?));
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        let io_err = |source| SealError::KeyFile { path: path.display().to_string(), source };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Self::from_key(parse_hex_key(&text)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::create_private_dir(data_dir).map_err(io_err)?;
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| io_err(std::io::Error::other(e.to_string())))?;
                let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(&path).map_err(io_err)?;
                file.write_all(format!("{hex}\n").as_bytes()).map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
                Ok(Self::from_key(key))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn seal(&self, secret: &SecretString, context: &str) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system provides randomness");
        let ciphertext = self
            .cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: secret.expose_secret().as_bytes(), aad: context.as_bytes() })
            .expect("AES-GCM encryption of a short value cannot fail");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        format!("v1:{}:{}", self.key_id, base64::engine::general_purpose::STANDARD.encode(blob))
    }

    pub fn unseal(&self, sealed: &str, context: &str) -> Result<SecretString, SealError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some("v1"), Some(kid), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SealError::Corrupt);
        };
        if kid != self.key_id {
            return Err(SealError::WrongKey { found: kid.to_owned(), current: self.key_id.clone() });
        }
        let blob = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| SealError::Corrupt)?;
        if blob.len() < 12 + 16 {
            return Err(SealError::Corrupt);
        }
        let (nonce, ciphertext) = blob.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SealError::Corrupt)?;
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| SealError::Corrupt)?;
        String::from_utf8(plain).map(SecretString::from).map_err(|_| SealError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let sealer = Sealer::from_key([7; 32]);
        let secret = SecretString::from("tki8Q~00Qlki5wkrf-value".to_owned());
        let sealed = sealer.seal(&secret, "org:default:client_secret");
        assert!(sealed.starts_with(&format!("v1:{}:", sealer.key_id())));
        assert!(!sealed.contains("tki8Q"));
        assert_eq!(
            sealer.unseal(&sealed, "org:default:client_secret").unwrap().expose_secret(),
            secret.expose_secret()
        );
        assert!(matches!(sealer.unseal(&sealed, "org:other:client_secret"), Err(SealError::Corrupt)));
        let other = Sealer::from_key([8; 32]);
        assert!(matches!(other.unseal(&sealed, "org:default:client_secret"), Err(SealError::WrongKey { .. })));
        assert_ne!(sealed, sealer.seal(&secret, "org:default:client_secret"), "fresh nonce each time");
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Sealer::load(None, dir.path()).unwrap();
        let b = Sealer::load(None, dir.path()).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(Sealer::load(Some("abc"), dir.path()), Err(SealError::BadKeyFormat)));
        let env = Sealer::load(Some(&"11".repeat(32)), dir.path()).unwrap();
        assert_ne!(env.key_id(), a.key_id());
    }
}
