//! Sealed cookies and CSRF tokens from `auth.session_secret`, with ring.
//!
//! One secret, several keys: HKDF-SHA256 derives a separate AES-256-GCM key
//! per cookie kind (a login-state cookie can never be opened as a session)
//! and an HMAC key for CSRF tokens. A sealed value is
//! `base64url(nonce ‖ ciphertext ‖ tag)` with a random 96-bit nonce and the
//! kind's name as associated data, so it is secret, and any change to it,
//! or its use as another kind, makes it fail to open.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};

/// What a sealed value is for; each has its own key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The session cookie.
    Session,
    /// The short-lived cookie holding a sign-in's state, nonce and PKCE verifier.
    Login,
}

impl Kind {
    fn label(self) -> &'static [u8] {
        match self {
            Kind::Session => b"oglogstream session v1",
            Kind::Login => b"oglogstream login v1",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the system's random number generator failed")]
pub struct RandomFailed;

pub struct Sealer {
    session: LessSafeKey,
    login: LessSafeKey,
    csrf: hmac::Key,
    random: SystemRandom,
}

impl Sealer {
    pub fn new(secret: &str) -> Sealer {
        let prk =
            hkdf::Salt::new(hkdf::HKDF_SHA256, b"oglogstream auth").extract(secret.as_bytes());
        let aead_key = |kind: Kind| {
            let info = [kind.label()];
            let okm = prk
                .expand(&info, &AES_256_GCM)
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            LessSafeKey::new(UnboundKey::from(okm))
        };
        let csrf_info: [&[u8]; 1] = [b"oglogstream csrf v1"];
        let csrf = hmac::Key::from(
            prk.expand(&csrf_info, hmac::HMAC_SHA256)
                .expect("32 bytes is a valid HKDF-SHA256 output length"),
        );
        Sealer {
            session: aead_key(Kind::Session),
            login: aead_key(Kind::Login),
            csrf,
            random: SystemRandom::new(),
        }
    }

    fn key(&self, kind: Kind) -> &LessSafeKey {
        match kind {
            Kind::Session => &self.session,
            Kind::Login => &self.login,
        }
    }

    pub fn seal(&self, kind: Kind, plaintext: &[u8]) -> Result<String, RandomFailed> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| RandomFailed)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let (head, body) = sealed.split_at_mut(NONCE_LEN);
        let tag = self
            .key(kind)
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kind.label()),
                body,
            )
            .map_err(|_| RandomFailed)?;
        let _ = head;
        sealed.extend_from_slice(tag.as_ref());
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The plaintext, or `None` for anything we did not seal as `kind`.
    pub fn open(&self, kind: Kind, sealed: &str) -> Option<Vec<u8>> {
        // Cookies are small; refuse to decode anything that is not one.
        if sealed.len() > 8192 {
            return None;
        }
        let mut bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN + 16 {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&bytes[..NONCE_LEN]).ok()?;
        let plaintext = self
            .key(kind)
            .open_in_place(nonce, Aad::from(kind.label()), &mut bytes[NONCE_LEN..])
            .ok()?;
        Some(plaintext.to_vec())
    }

    /// The CSRF token of a session: a MAC of its id, so any instance can
    /// check it and nothing needs storing.
    pub fn csrf_token(&self, session_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.csrf, session_id.as_bytes()))
    }

    /// Compared in constant time.
    pub fn csrf_token_is_valid(&self, session_id: &str, token: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(token.trim()) else {
            return false;
        };
        hmac::verify(&self.csrf, session_id.as_bytes(), &tag).is_ok()
    }

    /// `bytes` random bytes as base64url text: session ids, states, nonces,
    /// PKCE verifiers.
    pub fn random_text(&self, bytes: usize) -> Result<String, RandomFailed> {
        let mut buffer = vec![0u8; bytes];
        self.random.fill(&mut buffer).map_err(|_| RandomFailed)?;
        Ok(URL_SAFE_NO_PAD.encode(buffer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn sealed_values_open_only_with_their_kind_and_secret() {
        let sealer = Sealer::new(SECRET);
        let sealed = sealer.seal(Kind::Session, b"{\"sid\":\"a\"}").unwrap();
        assert!(!sealed.contains("sid"), "secret: {sealed}");
        assert_eq!(
            sealer.open(Kind::Session, &sealed).as_deref(),
            Some(&b"{\"sid\":\"a\"}"[..])
        );
        assert_ne!(
            sealed,
            sealer.seal(Kind::Session, b"{\"sid\":\"a\"}").unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(sealer.open(Kind::Login, &sealed), None, "another kind");
        let other = Sealer::new("another secret of thirty-two characters!");
        assert_eq!(other.open(Kind::Session, &sealed), None, "another secret");
        // Any changed byte fails the tag.
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        for index in [0, NONCE_LEN, bytes.len() - 1] {
            bytes[index] ^= 1;
            assert_eq!(
                sealer.open(Kind::Session, &URL_SAFE_NO_PAD.encode(&bytes)),
                None
            );
            bytes[index] ^= 1;
        }
        for junk in ["", "!!!", "AAAA", &"A".repeat(9000)] {
            assert_eq!(sealer.open(Kind::Session, junk), None, "{junk:.10}");
        }
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let sealer = Sealer::new(SECRET);
        let token = sealer.csrf_token("session-1");
        assert!(sealer.csrf_token_is_valid("session-1", &token));
        assert!(!sealer.csrf_token_is_valid("session-2", &token));
        assert!(!sealer.csrf_token_is_valid("session-1", ""));
        assert!(!sealer.csrf_token_is_valid("session-1", "not base64!"));
        assert!(
            !Sealer::new("another secret of thirty-two characters!")
                .csrf_token_is_valid("session-1", &token)
        );
        let a = sealer.random_text(16).unwrap();
        assert_eq!(a.len(), 22);
        assert_ne!(a, sealer.random_text(16).unwrap());
    }
}
