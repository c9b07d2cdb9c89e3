//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): the secret is
//! `whsec_` and the base64 of its key bytes; a message is signed as
//! `HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")`, sent as `v1,<base64>` in
//! `webhook-signature`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";

/// A fresh secret: 32 random bytes (the reference libraries accept 24 to 64).
pub fn new_secret() -> SecretString {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the operating system's random source works");
    SecretString::from(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// The key bytes of a `whsec_…` secret.
fn key_of(secret: &SecretString) -> Result<Vec<u8>, String> {
    let text = secret.expose_secret();
    let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
    STANDARD.decode(encoded).map_err(|_| "the webhook secret is not whsec_ followed by base64".to_owned())
}

/// The `webhook-signature` header for a message.
pub fn sign(secret: &SecretString, message_id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = key_of(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_signs_as_published() {
        // The example of the Standard Webhooks specification.
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let signature = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_new_secret_is_random_and_signs() {
        let a = new_secret();
        let b = new_secret();
        assert!(a.expose_secret().starts_with(SECRET_PREFIX));
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(key_of(&a).unwrap().len(), 32);
        assert_ne!(sign(&a, "m", 1, b"{}").unwrap(), sign(&b, "m", 1, b"{}").unwrap());
        assert!(sign(&SecretString::from("whsec_not base64!"), "m", 1, b"{}").is_err());
    }
}
