//! Signing keys, the fixed test-only keys and public JWK sets.

use std::fmt;
use std::str::FromStr;

use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::DecodePrivateKey;
use rand::Rng;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

use crate::b64url;

/// A JWS algorithm the demo IdP can sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
}

impl Alg {
    /// Every supported algorithm.
    pub const ALL: [Alg; 8] =
        [Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256, Alg::PS384, Alg::PS512, Alg::ES256, Alg::ES384];

    /// The JOSE name, e.g. `"RS256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
        }
    }

    /// `true` for RS* and PS*.
    pub fn is_rsa(self) -> bool {
        !matches!(self, Alg::ES256 | Alg::ES384)
    }

    /// The fixed key used by [`SigningKey::fixed`] for this algorithm.
    pub fn default_fixed_key(self) -> FixedKey {
        match self {
            Alg::ES256 => FixedKey::P256A,
            Alg::ES384 => FixedKey::P384A,
            _ => FixedKey::Rsa2048A,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Alg {
    type Err = String;

    /// Parses a JOSE name, ASCII case-insensitively (`"es256"` works).
    fn from_str(s: &str) -> Result<Alg, String> {
        Alg::ALL.iter().copied().find(|a| a.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            format!("unsupported alg {s:?} (supported: RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384)")
        })
    }
}

/// The committed TEST-ONLY private keys (`tools/idp/keys/`). Never use them for anything real.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FixedKey {
    Rsa2048A,
    Rsa2048B,
    Rsa3072,
    Rsa4096,
    P256A,
    P256B,
    P384A,
    P384B,
}

impl FixedKey {
    pub const ALL: [FixedKey; 8] = [
        FixedKey::Rsa2048A,
        FixedKey::Rsa2048B,
        FixedKey::Rsa3072,
        FixedKey::Rsa4096,
        FixedKey::P256A,
        FixedKey::P256B,
        FixedKey::P384A,
        FixedKey::P384B,
    ];

    /// Short name used in kids, e.g. `"rsa2048-a"`.
    pub fn name(self) -> &'static str {
        match self {
            FixedKey::Rsa2048A => "rsa2048-a",
            FixedKey::Rsa2048B => "rsa2048-b",
            FixedKey::Rsa3072 => "rsa3072",
            FixedKey::Rsa4096 => "rsa4096",
            FixedKey::P256A => "p256-a",
            FixedKey::P256B => "p256-b",
            FixedKey::P384A => "p384-a",
            FixedKey::P384B => "p384-b",
        }
    }

    /// The PKCS#8 PEM text of the private key.
    pub fn pem(self) -> &'static str {
        match self {
            FixedKey::Rsa2048A => include_str!("../keys/test-only-rsa2048-a.pem"),
            FixedKey::Rsa2048B => include_str!("../keys/test-only-rsa2048-b.pem"),
            FixedKey::Rsa3072 => include_str!("../keys/test-only-rsa3072.pem"),
            FixedKey::Rsa4096 => include_str!("../keys/test-only-rsa4096.pem"),
            FixedKey::P256A => include_str!("../keys/test-only-p256-a.pem"),
            FixedKey::P256B => include_str!("../keys/test-only-p256-b.pem"),
            FixedKey::P384A => include_str!("../keys/test-only-p384-a.pem"),
            FixedKey::P384B => include_str!("../keys/test-only-p384-b.pem"),
        }
    }

    /// Whether this key can sign with `alg`.
    pub fn supports(self, alg: Alg) -> bool {
        match self {
            FixedKey::P256A | FixedKey::P256B => alg == Alg::ES256,
            FixedKey::P384A | FixedKey::P384B => alg == Alg::ES384,
            _ => alg.is_rsa(),
        }
    }
}

#[derive(Clone)]
enum Material {
    Rsa(Box<RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

/// A private key bound to one algorithm and one `kid`.
#[derive(Clone)]
pub struct SigningKey {
    alg: Alg,
    kid: String,
    material: Material,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("alg", &self.alg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// The default fixed test key for `alg` (RSA 2048 "a", P-256 "a" or P-384 "a"), with kid
    /// `"<alg lowercase>-<key name>"`, e.g. `"rs256-rsa2048-a"`. Fast and deterministic.
    pub fn fixed(alg: Alg) -> SigningKey {
        SigningKey::fixed_key(alg.default_fixed_key(), alg)
    }

    /// A specific fixed test key used with `alg`; kid `"<alg lowercase>-<key name>"`.
    ///
    /// # Panics
    /// If the key type does not fit the algorithm (e.g. `FixedKey::P256A` with `Alg::RS256`).
    pub fn fixed_key(key: FixedKey, alg: Alg) -> SigningKey {
        assert!(key.supports(alg), "fixed key {} cannot sign {alg}", key.name());
        let kid = format!("{}-{}", alg.as_str().to_ascii_lowercase(), key.name());
        match SigningKey::from_pkcs8_pem(alg, &kid, key.pem()) {
            Ok(k) => k,
            Err(e) => panic!("embedded test key {} does not load: {e}", key.name()),
        }
    }

    /// A fresh random key for `alg` (RSA 2048 for RS*/PS*) with a random kid `"gen-<alg>-<hex>"`.
    /// RSA generation takes a noticeable time (around a second in debug builds).
    pub fn generate(alg: Alg) -> SigningKey {
        SigningKey::generate_rsa_bits(alg, 2048)
    }

    /// Like [`SigningKey::generate`], with the RSA modulus size (`bits` is ignored for EC).
    pub fn generate_rsa_bits(alg: Alg, bits: usize) -> SigningKey {
        let mut rng = rand::rngs::OsRng;
        let suffix: u32 = rng.gen();
        let kid = format!("gen-{}-{suffix:08x}", alg.as_str().to_ascii_lowercase());
        let material = match alg {
            Alg::ES256 => Material::P256(p256::ecdsa::SigningKey::random(&mut rng)),
            Alg::ES384 => Material::P384(p384::ecdsa::SigningKey::random(&mut rng)),
            _ => match RsaPrivateKey::new(&mut rng, bits) {
                Ok(k) => Material::Rsa(Box::new(k)),
                Err(e) => panic!("RSA key generation ({bits} bits) failed: {e}"),
            },
        };
        SigningKey { alg, kid, material }
    }

    /// Loads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`) for `alg`.
    pub fn from_pkcs8_pem(alg: Alg, kid: &str, pem: &str) -> Result<SigningKey, String> {
        let material = match alg {
            Alg::ES256 => Material::P256(
                p256::ecdsa::SigningKey::from_pkcs8_pem(pem).map_err(|e| format!("not a P-256 PKCS#8 key: {e}"))?,
            ),
            Alg::ES384 => Material::P384(
                p384::ecdsa::SigningKey::from_pkcs8_pem(pem).map_err(|e| format!("not a P-384 PKCS#8 key: {e}"))?,
            ),
            _ => Material::Rsa(Box::new(
                RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| format!("not an RSA PKCS#8 key: {e}"))?,
            )),
        };
        Ok(SigningKey { alg, kid: kid.to_string(), material })
    }

    /// The same key material under another kid.
    pub fn with_kid(mut self, kid: &str) -> SigningKey {
        self.kid = kid.to_string();
        self
    }

    /// The same key material used with another algorithm of the same family (e.g. an RSA key
    /// as PS256 instead of RS256). Keeps the kid.
    pub fn with_alg(mut self, alg: Alg) -> Result<SigningKey, String> {
        let fits = match self.material {
            Material::Rsa(_) => alg.is_rsa(),
            Material::P256(_) => alg == Alg::ES256,
            Material::P384(_) => alg == Alg::ES384,
        };
        if !fits {
            return Err(format!("a {} key cannot sign {alg}", self.alg));
        }
        self.alg = alg;
        Ok(self)
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The RSA modulus size in bits, `None` for EC keys.
    pub fn rsa_bits(&self) -> Option<usize> {
        match &self.material {
            Material::Rsa(k) => Some(k.size() * 8),
            _ => None,
        }
    }

    /// The public RSA key (for independent verification in tests), `None` for EC keys.
    pub fn rsa_public_key(&self) -> Option<rsa::RsaPublicKey> {
        match &self.material {
            Material::Rsa(k) => Some(k.to_public_key()),
            _ => None,
        }
    }

    /// The public P-256 verifying key, `None` for other keys.
    pub fn p256_verifying_key(&self) -> Option<p256::ecdsa::VerifyingKey> {
        match &self.material {
            Material::P256(k) => Some(*k.verifying_key()),
            _ => None,
        }
    }

    /// The public P-384 verifying key, `None` for other keys.
    pub fn p384_verifying_key(&self) -> Option<p384::ecdsa::VerifyingKey> {
        match &self.material {
            Material::P384(k) => Some(*k.verifying_key()),
            _ => None,
        }
    }

    /// The public JWK: `{kty, kid, alg, use: "sig", n, e}` or `{kty: "EC", kid, alg, use, crv, x, y}`.
    pub fn public_jwk(&self) -> Value {
        match &self.material {
            Material::Rsa(k) => json!({
                "kty": "RSA",
                "kid": self.kid,
                "alg": self.alg.as_str(),
                "use": "sig",
                "n": b64url(&k.n().to_bytes_be()),
                "e": b64url(&k.e().to_bytes_be()),
            }),
            Material::P256(k) => {
                let point = k.verifying_key().as_affine().to_encoded_point(false);
                ec_jwk(&self.kid, self.alg, "P-256", point.x().map(|x| &x[..]), point.y().map(|y| &y[..]))
            }
            Material::P384(k) => {
                let point = k.verifying_key().as_affine().to_encoded_point(false);
                ec_jwk(&self.kid, self.alg, "P-384", point.x().map(|x| &x[..]), point.y().map(|y| &y[..]))
            }
        }
    }

    /// The JWS signature of `signing_input` (RSASSA-PKCS1-v1_5, RSASSA-PSS with salt length =
    /// hash length, or ECDSA in IEEE P1363 `r || s` form).
    pub fn sign(&self, signing_input: &[u8]) -> Vec<u8> {
        use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
        match (&self.material, self.alg) {
            (Material::Rsa(k), Alg::RS256) => {
                rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((**k).clone()).sign(signing_input).to_vec()
            }
            (Material::Rsa(k), Alg::RS384) => {
                rsa::pkcs1v15::SigningKey::<sha2::Sha384>::new((**k).clone()).sign(signing_input).to_vec()
            }
            (Material::Rsa(k), Alg::RS512) => {
                rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new((**k).clone()).sign(signing_input).to_vec()
            }
            (Material::Rsa(k), Alg::PS256) => rsa::pss::SigningKey::<sha2::Sha256>::new((**k).clone())
                .sign_with_rng(&mut rand::rngs::OsRng, signing_input)
                .to_vec(),
            (Material::Rsa(k), Alg::PS384) => rsa::pss::SigningKey::<sha2::Sha384>::new((**k).clone())
                .sign_with_rng(&mut rand::rngs::OsRng, signing_input)
                .to_vec(),
            (Material::Rsa(k), Alg::PS512) => rsa::pss::SigningKey::<sha2::Sha512>::new((**k).clone())
                .sign_with_rng(&mut rand::rngs::OsRng, signing_input)
                .to_vec(),
            (Material::P256(k), _) => {
                let sig: p256::ecdsa::Signature = k.sign(signing_input);
                sig.to_bytes().to_vec()
            }
            (Material::P384(k), _) => {
                let sig: p384::ecdsa::Signature = k.sign(signing_input);
                sig.to_bytes().to_vec()
            }
            (Material::Rsa(_), alg) => unreachable!("RSA key bound to {alg}"),
        }
    }
}

fn ec_jwk(kid: &str, alg: Alg, crv: &str, x: Option<&[u8]>, y: Option<&[u8]>) -> Value {
    json!({
        "kty": "EC",
        "kid": kid,
        "alg": alg.as_str(),
        "use": "sig",
        "crv": crv,
        "x": b64url(x.unwrap_or_default()),
        "y": b64url(y.unwrap_or_default()),
    })
}

/// The public JWK set of `keys` as JSON text: `{"keys":[...]}`.
pub fn jwks(keys: &[&SigningKey]) -> String {
    jwks_value(keys).to_string()
}

/// The public JWK set of `keys` as a JSON value.
pub fn jwks_value(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
}

/// One fixed key per algorithm (RS256 .. PS512 share RSA 2048 "a" under distinct kids).
pub fn fixed_keys_all_algs() -> Vec<SigningKey> {
    Alg::ALL.iter().map(|a| SigningKey::fixed(*a)).collect()
}
