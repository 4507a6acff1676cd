//! ID tokens: compact JWS verified against a JWK set with ring, then the
//! OpenID Connect claim checks. Pure: no I/O (the key set is fetched by
//! `jwks.rs`), no clock (the caller passes `now`).
//!
//! Deliberately small: only signed tokens (never `none`, never HMAC, which
//! would make the client secret a signing key), only the algorithms below,
//! keys only from the provider's JWKS (a token's own `jwk`, `jku` or `x5u`
//! headers are ignored), and a header naming extensions (`crit`) is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};
use std::fmt;

/// Longest token accepted.
const MAX_TOKEN_BYTES: usize = 32 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Algorithm {
    pub const ALL: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    pub fn parse(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// Whether a key of this shape can check this algorithm's signatures.
    fn fits(self, key: &PublicKey) -> bool {
        matches!(
            (self, key),
            (
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512,
                PublicKey::Rsa { .. },
            ) | (
                Algorithm::ES256,
                PublicKey::Ec {
                    curve: Curve::P256,
                    ..
                }
            ) | (
                Algorithm::ES384,
                PublicKey::Ec {
                    curve: Curve::P384,
                    ..
                }
            ) | (Algorithm::EdDSA, PublicKey::Ed25519(_))
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

#[derive(Clone, PartialEq, Eq)]
enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed point, `04 ‖ x ‖ y`.
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

/// One signing key of the provider.
#[derive(Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The one algorithm the key may be used with, when the JWK says.
    pub alg: Option<String>,
    key: PublicKey,
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The provider's signing keys (`jwks_uri`). Keys that are not for
/// signatures, or of a kind we do not verify with, are left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("unsupported signing algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// No key of the set fits the token: the provider may have rotated its
    /// keys, so the set is worth fetching again (once in a while).
    #[error("no key of the provider's JWKS verifies this token (kid {0:?})")]
    UnknownKey(Option<String>),
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("claim {claim}: {problem}")]
    Claim {
        claim: &'static str,
        problem: String,
    },
    #[error("malformed JWKS: {0}")]
    MalformedKeySet(String),
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JoseError::Malformed(format!("{what} is not base64url")))
}

impl JwkSet {
    pub fn parse(json: &[u8]) -> Result<JwkSet, JoseError> {
        let value: Value = serde_json::from_slice(json)
            .map_err(|e| JoseError::MalformedKeySet(format!("not JSON: {e}")))?;
        let keys = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| JoseError::MalformedKeySet("no \"keys\" array".into()))?;
        Ok(JwkSet {
            keys: keys.iter().filter_map(parse_jwk).collect(),
        })
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }
}

/// A signing key we can use, or `None` (another kind, or malformed).
fn parse_jwk(value: &Value) -> Option<Jwk> {
    let text = |name: &str| value.get(name).and_then(Value::as_str);
    let bytes = |name: &str| text(name).and_then(|t| URL_SAFE_NO_PAD.decode(t).ok());
    if text("use").is_some_and(|usage| usage != "sig") {
        return None;
    }
    let key = match (text("kty")?, text("crv")) {
        ("RSA", _) => PublicKey::Rsa {
            n: bytes("n")?,
            e: bytes("e")?,
        },
        ("EC", Some(crv)) => {
            let (curve, size) = match crv {
                "P-256" => (Curve::P256, 32),
                "P-384" => (Curve::P384, 48),
                _ => return None,
            };
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != size || y.len() != size {
                return None;
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            PublicKey::Ec { curve, point }
        }
        ("OKP", Some("Ed25519")) => PublicKey::Ed25519(bytes("x")?),
        _ => return None,
    };
    Some(Jwk {
        kid: text("kid").map(str::to_string),
        alg: text("alg").map(str::to_string),
        key,
    })
}

/// A token split and decoded, not yet verified.
struct Parts<'t> {
    algorithm: Algorithm,
    kid: Option<String>,
    signing_input: &'t str,
    claims: Map<String, Value>,
    signature: Vec<u8>,
}

fn split<'t>(token: &'t str, allowed: &[Algorithm]) -> Result<Parts<'t>, JoseError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JoseError::Malformed("longer than 32 KiB".into()));
    }
    let mut pieces = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (pieces.next(), pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(JoseError::Malformed(
            "not three dot-separated parts (a signed JWT)".into(),
        ));
    };
    let header: Map<String, Value> = serde_json::from_slice(&b64(header, "the header")?)
        .map_err(|_| JoseError::Malformed("the header is not a JSON object".into()))?;
    if header.contains_key("crit") {
        return Err(JoseError::Malformed(
            "the header names critical extensions (crit), which we do not implement".into(),
        ));
    }
    let name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| JoseError::Malformed("the header has no alg".into()))?;
    let algorithm = Algorithm::parse(name)
        .filter(|alg| allowed.contains(alg))
        .ok_or_else(|| JoseError::UnsupportedAlgorithm(name.to_string()))?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(JoseError::Malformed("kid is not a string".into())),
    };
    let claims: Map<String, Value> = serde_json::from_slice(&b64(payload, "the payload")?)
        .map_err(|_| JoseError::Malformed("the payload is not a JSON object".into()))?;
    let signing_input = &token[..header_and_payload_len(token)];
    Ok(Parts {
        algorithm,
        kid,
        signing_input,
        claims,
        signature: b64(signature, "the signature")?,
    })
}

fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn check_signature(
    algorithm: Algorithm,
    key: &PublicKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    use signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256,
        RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512, RSA_PSS_2048_8192_SHA256,
        RSA_PSS_2048_8192_SHA384, RSA_PSS_2048_8192_SHA512,
    };
    match key {
        PublicKey::Rsa { n, e } => {
            let parameters = match algorithm {
                Algorithm::RS256 => &RSA_PKCS1_2048_8192_SHA256,
                Algorithm::RS384 => &RSA_PKCS1_2048_8192_SHA384,
                Algorithm::RS512 => &RSA_PKCS1_2048_8192_SHA512,
                Algorithm::PS256 => &RSA_PSS_2048_8192_SHA256,
                Algorithm::PS384 => &RSA_PSS_2048_8192_SHA384,
                Algorithm::PS512 => &RSA_PSS_2048_8192_SHA512,
                _ => return false,
            };
            RsaPublicKeyComponents { n, e }
                .verify(parameters, message, signature)
                .is_ok()
        }
        PublicKey::Ec { curve, point } => {
            let verification: &dyn signature::VerificationAlgorithm = match curve {
                Curve::P256 => &ECDSA_P256_SHA256_FIXED,
                Curve::P384 => &ECDSA_P384_SHA384_FIXED,
            };
            UnparsedPublicKey::new(verification, point)
                .verify(message, signature)
                .is_ok()
        }
        PublicKey::Ed25519(x) => UnparsedPublicKey::new(&ED25519, x)
            .verify(message, signature)
            .is_ok(),
    }
}

/// Verifies the signature with the set's keys and returns the claims.
/// `UnknownKey` when no key fits (by `kid`, or without one by shape):
/// fetching the set again may help; `BadSignature` when the key that fits
/// refuses it.
pub fn verify(
    token: &str,
    keys: &JwkSet,
    allowed: &[Algorithm],
) -> Result<Map<String, Value>, JoseError> {
    let parts = split(token, allowed)?;
    let fitting: Vec<&Jwk> = keys
        .keys
        .iter()
        .filter(|key| match &parts.kid {
            Some(kid) => key.kid.as_deref() == Some(kid.as_str()),
            None => true,
        })
        .filter(|key| {
            key.alg
                .as_deref()
                .is_none_or(|alg| alg == parts.algorithm.name())
                && parts.algorithm.fits(&key.key)
        })
        .collect();
    if fitting.is_empty() {
        return Err(JoseError::UnknownKey(parts.kid));
    }
    let verified = fitting.iter().any(|key| {
        check_signature(
            parts.algorithm,
            &key.key,
            parts.signing_input.as_bytes(),
            &parts.signature,
        )
    });
    if !verified {
        return Err(JoseError::BadSignature);
    }
    Ok(parts.claims)
}

/// What an ID token's claims must say (OpenID Connect Core 3.1.3.7).
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Seconds since the epoch.
    pub now: i64,
    /// Clock skew tolerated, in seconds.
    pub leeway: i64,
}

fn claim_error(claim: &'static str, problem: impl Into<String>) -> JoseError {
    JoseError::Claim {
        claim,
        problem: problem.into(),
    }
}

fn numeric_date(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<i64>, JoseError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(value) => value
            .as_i64()
            .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| claim_error(claim, "is not a number of seconds")),
    }
}

pub fn check_claims(claims: &Map<String, Value>, expected: &Expected<'_>) -> Result<(), JoseError> {
    let text = |claim: &'static str| claims.get(claim).and_then(Value::as_str);
    match text("iss") {
        Some(issuer) if issuer == expected.issuer => {}
        Some(issuer) => {
            return Err(claim_error(
                "iss",
                format!(
                    "{issuer:?} is not the configured issuer {:?}",
                    expected.issuer
                ),
            ));
        }
        None => return Err(claim_error("iss", "missing")),
    }
    if text("sub").is_none_or(str::is_empty) {
        return Err(claim_error("sub", "missing"));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(audience)) => vec![audience.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(claim_error("aud", "missing")),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(claim_error("aud", "the token is not for this client"));
    }
    match text("azp") {
        Some(party) if party != expected.client_id => {
            return Err(claim_error("azp", "the token was issued to another client"));
        }
        None if audiences.len() > 1 => {
            return Err(claim_error(
                "azp",
                "missing while the token has several audiences",
            ));
        }
        _ => {}
    }
    let expires = numeric_date(claims, "exp")?.ok_or_else(|| claim_error("exp", "missing"))?;
    if expected.now >= expires.saturating_add(expected.leeway) {
        return Err(claim_error("exp", "the token has expired"));
    }
    let issued = numeric_date(claims, "iat")?.ok_or_else(|| claim_error("iat", "missing"))?;
    if issued > expected.now.saturating_add(expected.leeway) {
        return Err(claim_error("iat", "the token was issued in the future"));
    }
    if let Some(not_before) = numeric_date(claims, "nbf")?
        && not_before > expected.now.saturating_add(expected.leeway)
    {
        return Err(claim_error("nbf", "the token is not valid yet"));
    }
    match text("nonce") {
        Some(nonce) if constant_time_eq(nonce.as_bytes(), expected.nonce.as_bytes()) => Ok(()),
        Some(_) => Err(claim_error("nonce", "does not match this sign-in's")),
        None => Err(claim_error("nonce", "missing")),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
pub(crate) mod testing {
    //! Signing keys and tokens for tests, with ring's signing side.

    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, RsaKeyPair};

    pub const RSA_DER: &[u8] = include_bytes!("testdata/rsa2048.der");
    /// A second RSA key, for tokens signed by a key the provider does not hold.
    pub const OTHER_RSA_DER: &[u8] = include_bytes!("testdata/rsa2048-other.der");

    pub enum Signer {
        Rsa(RsaKeyPair),
        Ec(EcdsaKeyPair),
    }

    impl Signer {
        pub fn rsa() -> Signer {
            Signer::Rsa(RsaKeyPair::from_der(RSA_DER).expect("the test key"))
        }

        pub fn other_rsa() -> Signer {
            Signer::Rsa(RsaKeyPair::from_der(OTHER_RSA_DER).expect("the other test key"))
        }

        pub fn ec() -> Signer {
            let random = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &random)
                    .unwrap();
            Signer::Ec(
                EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8.as_ref(),
                    &random,
                )
                .unwrap(),
            )
        }

        pub fn alg(&self) -> &'static str {
            match self {
                Signer::Rsa(_) => "RS256",
                Signer::Ec(_) => "ES256",
            }
        }

        /// The public key as a JWK.
        pub fn jwk(&self, kid: &str) -> Value {
            match self {
                Signer::Rsa(pair) => {
                    let components: signature::RsaPublicKeyComponents<Vec<u8>> =
                        pair.public().into();
                    serde_json::json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                        "n": URL_SAFE_NO_PAD.encode(&components.n),
                        "e": URL_SAFE_NO_PAD.encode(&components.e)})
                }
                Signer::Ec(pair) => {
                    let point = pair.public_key().as_ref();
                    serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid,
                        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                        "y": URL_SAFE_NO_PAD.encode(&point[33..65])})
                }
            }
        }

        pub fn sign(&self, header: &Value, claims: &Value) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let random = SystemRandom::new();
            let signature = match self {
                Signer::Rsa(pair) => {
                    let mut out = vec![0; pair.public().modulus_len()];
                    pair.sign(
                        &signature::RSA_PKCS1_SHA256,
                        &random,
                        input.as_bytes(),
                        &mut out,
                    )
                    .unwrap();
                    out
                }
                Signer::Ec(pair) => pair
                    .sign(&random, input.as_bytes())
                    .unwrap()
                    .as_ref()
                    .to_vec(),
            };
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
        }

        pub fn token(&self, kid: &str, claims: &Value) -> String {
            self.sign(
                &serde_json::json!({"alg": self.alg(), "kid": kid, "typ": "JWT"}),
                claims,
            )
        }
    }

    pub fn set(keys: &[Value]) -> JwkSet {
        JwkSet::parse(serde_json::json!({ "keys": keys }).to_string().as_bytes()).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Signer, set};
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_750_000_000;

    fn claims() -> Value {
        json!({"iss": "https://id.example.com", "sub": "u1", "aud": "ogl", "exp": NOW + 300,
               "iat": NOW - 5, "nonce": "n-123", "groups": ["sre"]})
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://id.example.com",
            client_id: "ogl",
            nonce: "n-123",
            now: NOW,
            leeway: 60,
        }
    }

    fn verified(token: &str, keys: &JwkSet) -> Result<Map<String, Value>, JoseError> {
        let claims = verify(token, keys, &Algorithm::ALL)?;
        check_claims(&claims, &expected())?;
        Ok(claims)
    }

    #[test]
    fn rs256_and_es256_tokens_verify_against_their_keys() {
        for signer in [Signer::rsa(), Signer::ec()] {
            let keys = set(&[signer.jwk("k1")]);
            let verified_claims = verified(&signer.token("k1", &claims()), &keys).unwrap();
            assert_eq!(verified_claims["groups"], json!(["sre"]));
            // Without a kid, a key of the right shape is found.
            let no_kid = signer.sign(&json!({"alg": signer.alg()}), &claims());
            assert!(verified(&no_kid, &keys).is_ok());
        }
    }

    #[test]
    fn forged_and_tampered_tokens_are_refused() {
        let signer = Signer::rsa();
        let keys = set(&[signer.jwk("k1")]);
        let token = signer.token("k1", &claims());
        // Another payload under the same signature.
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut forged_claims = claims();
        forged_claims["groups"] = json!(["platform"]);
        let forged_payload = URL_SAFE_NO_PAD.encode(forged_claims.to_string());
        parts[1] = &forged_payload;
        assert_eq!(
            verified(&parts.join("."), &keys),
            Err(JoseError::BadSignature)
        );
        // Signed by a key the set does not hold, under a kid it does.
        let impostor = Signer::other_rsa().token("k1", &claims());
        assert_eq!(verified(&impostor, &keys), Err(JoseError::BadSignature));
        // A kid the set does not hold: worth a fresh JWKS.
        assert_eq!(
            verified(&signer.token("k2", &claims()), &keys),
            Err(JoseError::UnknownKey(Some("k2".into())))
        );
        // alg none and HS256 (the client secret as a key) are never accepted.
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string());
        let body = URL_SAFE_NO_PAD.encode(claims().to_string());
        assert_eq!(
            verified(&format!("{header}.{body}."), &keys),
            Err(JoseError::UnsupportedAlgorithm("none".into()))
        );
        let hs = signer.sign(&json!({"alg": "HS256", "kid": "k1"}), &claims());
        assert_eq!(
            verified(&hs, &keys),
            Err(JoseError::UnsupportedAlgorithm("HS256".into()))
        );
        // An algorithm that does not fit the key's kind (ES256 on an RSA key).
        let es = Signer::ec();
        let confused = es.sign(&json!({"alg": "ES256", "kid": "k1"}), &claims());
        assert_eq!(
            verified(&confused, &keys),
            Err(JoseError::UnknownKey(Some("k1".into())))
        );
        // Only the algorithms allowed.
        assert_eq!(
            verify(&token, &keys, &[Algorithm::ES256]).unwrap_err(),
            JoseError::UnsupportedAlgorithm("RS256".into())
        );
        let crit = signer.sign(
            &json!({"alg": "RS256", "kid": "k1", "crit": ["exp"]}),
            &claims(),
        );
        assert!(matches!(
            verified(&crit, &keys),
            Err(JoseError::Malformed(_))
        ));
        for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!", &"a".repeat(40_000)] {
            assert!(
                matches!(verified(junk, &keys), Err(JoseError::Malformed(_))),
                "{junk:.20}"
            );
        }
    }

    #[test]
    fn claims_are_checked() {
        let signer = Signer::ec();
        let keys = set(&[signer.jwk("k")]);
        let refused = |change: &dyn Fn(&mut Value)| {
            let mut c = claims();
            change(&mut c);
            match verified(&signer.token("k", &c), &keys) {
                Err(JoseError::Claim { claim, .. }) => claim,
                other => panic!("expected a claim error, got {other:?}"),
            }
        };
        assert_eq!(refused(&|c| c["exp"] = json!(NOW - 61)), "exp");
        assert_eq!(refused(&|c| c["nonce"] = json!("n-124")), "nonce");
        assert_eq!(
            refused(&|c| {
                c.as_object_mut().unwrap().remove("nonce");
            }),
            "nonce"
        );
        assert_eq!(
            refused(&|c| c["iss"] = json!("https://evil.example.com")),
            "iss"
        );
        assert_eq!(refused(&|c| c["aud"] = json!("other-client")), "aud");
        assert_eq!(refused(&|c| c["aud"] = json!(["ogl", "other"])), "azp");
        assert_eq!(refused(&|c| c["azp"] = json!("other")), "azp");
        assert_eq!(refused(&|c| c["iat"] = json!(NOW + 600)), "iat");
        assert_eq!(refused(&|c| c["nbf"] = json!(NOW + 600)), "nbf");
        assert_eq!(refused(&|c| c["exp"] = json!("tomorrow")), "exp");
        assert_eq!(refused(&|c| c["sub"] = json!("")), "sub");
        // Within the leeway, and with several audiences naming us as azp.
        let mut c = claims();
        c["exp"] = json!(NOW - 30);
        c["aud"] = json!(["ogl", "other"]);
        c["azp"] = json!("ogl");
        assert!(verified(&signer.token("k", &c), &keys).is_ok());
    }

    #[test]
    fn key_sets_keep_only_signing_keys_they_can_use() {
        let signer = Signer::ec();
        let mut encryption = Signer::rsa().jwk("enc");
        encryption["use"] = json!("enc");
        let keys = set(&[
            signer.jwk("a"),
            encryption,
            json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}),
            json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA", "kid": "p521"}),
            json!({"kty": "RSA", "kid": "broken"}),
        ]);
        assert_eq!(keys.keys.len(), 1);
        assert!(keys.has_kid("a") && !keys.has_kid("enc"));
        assert!(JwkSet::parse(b"{}").is_err());
        assert!(JwkSet::parse(b"not json").is_err());
    }
}
