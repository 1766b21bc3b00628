//! Canonical encoding and the fixed-size byte strings (hashes, signatures)
//! that travel as lowercase hex.

use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash32(pub [u8; 32]);

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature64(pub [u8; 64]);

impl Hash32 {
    /// SHA-256 of `parts`, concatenated.
    pub fn digest(parts: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Self(h.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Self(out))
    }

    /// The first 8 bytes read as a big-endian `u64` (leader selection).
    pub fn prefix_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(b)
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Signature64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sig:{}", &hex::encode(self.0)[..16])
    }
}

fn de_hex<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    let mut out = [0u8; N];
    hex::decode_to_slice(s.as_ref(), &mut out).map_err(D::Error::custom)?;
    Ok(out)
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}
impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_hex(d).map(Self)
    }
}
impl Serialize for Signature64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}
impl<'de> Deserialize<'de> for Signature64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_hex(d).map(Self)
    }
}

/// Canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace,
/// numbers and strings as `serde_json` writes them. Independent of map
/// ordering, of `serde_json` features and of the input's whitespace, so every
/// node hashes the same value to the same bytes.
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Hashed values are our own types and JSON values: string map keys
    // only, so this cannot fail; if a new type broke that, hashing it as
    // anything else (null) would split consensus silently: fail loudly.
    #[allow(clippy::expect_used)]
    let v = serde_json::to_value(value).expect("a hashed value serializes to JSON (string map keys only)");
    let mut out = Vec::with_capacity(256);
    write_canonical(&v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                write_canonical(&map[k], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(v: &Value, out: &mut Vec<u8>) {
    // A Value's Display is its compact JSON (the same bytes serde_json writes).
    out.extend_from_slice(v.to_string().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_ignores_key_order_and_whitespace() {
        let a: Value = serde_json::from_str(r#"{"b": [1, {"y":2,"x":1}], "a": "é\n"}"#).unwrap();
        let b: Value = serde_json::from_str("{\"a\":\"é\\n\",\n \"b\":[1,{\"x\":1,  \"y\":2}]}").unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(String::from_utf8(canonical_json(&a)).unwrap(), "{\"a\":\"é\\n\",\"b\":[1,{\"x\":1,\"y\":2}]}");
    }

    #[test]
    fn hex_round_trip_and_rejects_bad_length() {
        let h = Hash32::digest(&[b"abc"]);
        assert_eq!(h.to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Hash32>(&json).unwrap(), h);
        assert!(serde_json::from_str::<Hash32>("\"abcd\"").is_err());
        assert_eq!(h.prefix_u64(), 0xba7816bf8f01cfea);
    }
}
