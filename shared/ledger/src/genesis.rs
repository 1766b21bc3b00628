//! The genesis file (validator set and network parameters) and node keys.

use crate::contract::TaskBounds;
use crate::hash::{canonical_json, Hash32, Signature64};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};
use std::path::Path;

/// An ed25519 public key, hex on the wire; decoding validates the point.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pk:{}", &hex::encode(self.0.as_bytes())[..16])
    }
}

impl PublicKey {
    pub fn verify(&self, msg: &[u8], sig: &Signature64) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        self.0.verify(msg, &sig).is_ok()
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0.as_bytes()))
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let mut b = [0u8; 32];
        hex::decode_to_slice(&s, &mut b).map_err(D::Error::custom)?;
        VerifyingKey::from_bytes(&b).map(Self).map_err(D::Error::custom)
    }
}

/// One block creator of the network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validator {
    pub node_id: String,
    pub public_key: PublicKey,
}

/// Parameters every node must agree on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkParams {
    /// Leader round length in ms; 0 turns rounds off (leader by tip hash only).
    pub t_round_ms: u64,
    /// A block whose timestamp is further than this ahead of the local clock
    /// is deferred (retried later), not rejected.
    pub max_future_ms: u64,
    /// At most this many pairs in one block.
    pub max_pairs_per_block: u32,
    /// What any contract may ask and pay, per task kind.
    pub tasks: TaskBounds,
}

impl Default for NetworkParams {
    fn default() -> Self {
        Self { t_round_ms: 2_000, max_future_ms: 5_000, max_pairs_per_block: 1_000, tasks: TaskBounds::default() }
    }
}

/// At most this many issuer keys in a genesis (opening a token tries each).
pub const MAX_ISSUERS: usize = 8;

/// The genesis file: every node loads the same one. Block 0 is derived from
/// it (see [`crate::Block::genesis`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub chain_id: String,
    /// Integer milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Sorted by `node_id`, unique.
    pub validators: Vec<Validator>,
    /// Keys that issue contracts and API keys: the one in use and its
    /// successors (rotation issues with a listed successor; a retired key
    /// stays listed, so what it issued stays valid).
    pub issuers: Vec<PublicKey>,
    pub params: NetworkParams,
}

#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("genesis file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("genesis file {path} is not valid JSON (or does not encode): {source}")]
    Parse { path: String, source: serde_json::Error },
    #[error("genesis file {path} was written by an earlier release (it lists no issuer keys, so blocks cannot be checked against the contracts they pay): start a new deployment (`deploy/cluster down -v`, then `up`)")]
    Outdated { path: String },
    #[error("genesis has no validators")]
    NoValidators,
    #[error("validators must be sorted by node_id and unique (at {0:?})")]
    NotSorted(String),
    #[error("max_pairs_per_block must be at least 1")]
    ZeroBlockCap,
    #[error("issuers: between 1 and {MAX_ISSUERS} distinct keys")]
    Issuers,
    #[error("task bounds: {0}")]
    TaskBounds(String),
    #[error("key file {path}: {reason}")]
    Key { path: String, reason: String },
}

impl Genesis {
    /// Builds a genesis, sorting the validators by node id.
    pub fn new(
        chain_id: &str,
        timestamp: u64,
        mut validators: Vec<Validator>,
        issuers: Vec<PublicKey>,
        params: NetworkParams,
    ) -> Result<Self, GenesisError> {
        validators.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        let g = Self { chain_id: chain_id.to_owned(), timestamp, validators, issuers, params };
        g.check()?;
        Ok(g)
    }

    fn check(&self) -> Result<(), GenesisError> {
        if self.validators.is_empty() {
            return Err(GenesisError::NoValidators);
        }
        if let Some(w) = self.validators.windows(2).find(|w| w[0].node_id >= w[1].node_id) {
            return Err(GenesisError::NotSorted(w[1].node_id.clone()));
        }
        if self.params.max_pairs_per_block == 0 {
            return Err(GenesisError::ZeroBlockCap);
        }
        let distinct: std::collections::HashSet<_> = self.issuers.iter().map(|k| k.0.to_bytes()).collect();
        if self.issuers.is_empty() || self.issuers.len() > MAX_ISSUERS || distinct.len() != self.issuers.len() {
            return Err(GenesisError::Issuers);
        }
        self.params.tasks.check().map_err(GenesisError::TaskBounds)
    }

    pub fn load(path: &Path) -> Result<Self, GenesisError> {
        let p = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| GenesisError::Io { path: p.clone(), source })?;
        let g: Self = serde_json::from_slice(&text).map_err(|source| {
            let value: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
            if value.is_object() && value.get("issuers").is_none() {
                GenesisError::Outdated { path: p.clone() }
            } else {
                GenesisError::Parse { path: p.clone(), source }
            }
        })?;
        g.check()?;
        Ok(g)
    }

    pub fn save(&self, path: &Path) -> Result<(), GenesisError> {
        let text = serde_json::to_vec_pretty(self).map_err(|source| GenesisError::Parse { path: path.display().to_string(), source })?;
        std::fs::write(path, text).map_err(|source| GenesisError::Io { path: path.display().to_string(), source })
    }

    /// Every validator but `node_id`: the peers a node pulls from and
    /// replicates to unless told otherwise.
    pub fn peers_of(&self, node_id: &str) -> Vec<String> {
        self.validators.iter().map(|v| v.node_id.clone()).filter(|n| n != node_id).collect()
    }

    pub fn validator(&self, node_id: &str) -> Option<&Validator> {
        self.validators
            .binary_search_by(|v| v.node_id.as_str().cmp(node_id))
            .ok()
            .map(|i| &self.validators[i])
    }

    /// Digest of the canonical genesis; block 0 links to it.
    pub fn digest(&self) -> Hash32 {
        Hash32::digest(&[b"uwl/genesis/v1", &canonical_json(self)])
    }
}

/// A node's signing key. Generated into the node's volume at first start,
/// never committed; the genesis file lists the public half.
pub struct NodeKey {
    pub node_id: String,
    signing: SigningKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey").field("node_id", &self.node_id).field("public", &self.public_key()).finish()
    }
}

impl NodeKey {
    pub fn generate(node_id: &str) -> Self {
        Self { node_id: node_id.to_owned(), signing: SigningKey::generate(&mut rand::rngs::OsRng) }
    }

    /// A key from fixed secret bytes (tests and simulations).
    pub fn from_secret(node_id: &str, secret: [u8; 32]) -> Self {
        Self { node_id: node_id.to_owned(), signing: SigningKey::from_bytes(&secret) }
    }

    /// Loads the hex secret at `path` (a file [`Self::save`] wrote).
    pub fn load(path: &Path, node_id: &str) -> Result<Self, GenesisError> {
        let err = |reason: String| GenesisError::Key { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut secret = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut secret).map_err(|e| err(e.to_string()))?;
        Ok(Self::from_secret(node_id, secret))
    }

    /// Loads the hex secret at `path`, or generates one and writes it there
    /// (mode 0600, created exclusively so two starters cannot race).
    pub fn load_or_generate(path: &Path, node_id: &str) -> Result<Self, GenesisError> {
        if path.exists() {
            return Self::load(path, node_id);
        }
        let key = Self::generate(node_id);
        key.save(path)?;
        Ok(key)
    }

    /// Writes the secret to `path` (mode 0600; the file must not exist yet).
    pub fn save(&self, path: &Path) -> Result<(), GenesisError> {
        write_secret(path, &hex::encode(self.signing.to_bytes()))
            .map_err(|e| GenesisError::Key { path: path.display().to_string(), reason: e.to_string() })
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    pub fn validator(&self) -> Validator {
        Validator { node_id: self.node_id.clone(), public_key: self.public_key() }
    }

    pub fn sign(&self, msg: &[u8]) -> Signature64 {
        Signature64(self.signing.sign(msg).to_bytes())
    }
}

fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, b: u8) -> NodeKey {
        NodeKey::from_secret(id, [b; 32])
    }

    #[test]
    fn genesis_sorts_validators_and_round_trips_through_a_file() {
        let issuers = vec![key("issuer", 9).public_key()];
        let g = Genesis::new("t", 1, vec![key("node-2", 2).validator(), key("node-1", 1).validator()], issuers, NetworkParams::default())
            .unwrap();
        assert_eq!(g.validators[0].node_id, "node-1");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("genesis.json");
        g.save(&p).unwrap();
        let back = Genesis::load(&p).unwrap();
        assert_eq!(back, g);
        assert_eq!(back.digest(), g.digest());
        assert!(g.validator("node-2").is_some());
        assert!(g.validator("node-3").is_none());
    }

    #[test]
    fn genesis_rejects_duplicates_and_empty_sets() {
        let issuers = || vec![key("issuer", 9).public_key()];
        let dup = Genesis::new("t", 1, vec![key("a", 1).validator(), key("a", 2).validator()], issuers(), NetworkParams::default());
        assert!(matches!(dup, Err(GenesisError::NotSorted(_))));
        assert!(matches!(Genesis::new("t", 1, vec![], issuers(), NetworkParams::default()), Err(GenesisError::NoValidators)));
        let one = || vec![key("a", 1).validator()];
        assert!(matches!(Genesis::new("t", 1, one(), vec![], NetworkParams::default()), Err(GenesisError::Issuers)));
        let twice = vec![key("i", 9).public_key(), key("i", 9).public_key()];
        assert!(matches!(Genesis::new("t", 1, one(), twice, NetworkParams::default()), Err(GenesisError::Issuers)));
        let mut params = NetworkParams::default();
        params.tasks.hash.min = params.tasks.hash.max + 1;
        assert!(matches!(Genesis::new("t", 1, one(), issuers(), params), Err(GenesisError::TaskBounds(_))));
    }

    #[test]
    fn key_file_is_generated_once_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.key");
        let k1 = NodeKey::load_or_generate(&p, "n").unwrap();
        let k2 = NodeKey::load_or_generate(&p, "n").unwrap();
        assert_eq!(k1.public_key(), k2.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let sig = k1.sign(b"m");
        assert!(k2.public_key().verify(b"m", &sig));
        assert!(!k2.public_key().verify(b"n", &sig));
    }
}
