//! The worker's credentials: given by flag, read from its credentials file,
//! or registered and kept there. The file holds an API key: it is written
//! with mode 0600 (whole, then renamed into place), and the key is never
//! printed.

use crate::Settings;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;
use tracing::{info, warn};
use uwl_api::KeyIssued;

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Credentials {
    pub(crate) client_id: String,
    api_key: String,
    /// When the key was issued and expires (ms since the epoch), as
    /// register and renew_key answer; absent for keys given by flag.
    #[serde(default)]
    issued_at: Option<u64>,
    #[serde(default)]
    pub(crate) expires_at: Option<u64>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("api_key", &"[REDACTED]")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl From<KeyIssued> for Credentials {
    fn from(k: KeyIssued) -> Self {
        Self { client_id: k.client_id, api_key: k.api_key, issued_at: Some(k.issued_at), expires_at: Some(k.expires_at) }
    }
}

impl Credentials {
    pub(crate) fn api_key(&self) -> &str {
        &self.api_key
    }

    /// Past three quarters of the key's life: time to renew it. A key
    /// whose life is unknown (given by flag, or kept by a worker from
    /// before keys expired) is due at once: renewing it tells its life.
    pub(crate) fn due_for_renewal(&self, now_ms: u64) -> bool {
        match (self.issued_at, self.expires_at) {
            (Some(i), Some(e)) => now_ms >= i + e.saturating_sub(i) / 4 * 3,
            _ => true,
        }
    }

    /// Writes the credentials to `path`, readable by this user only: into a
    /// new file of mode 0600 beside it, then renamed over it (a crash
    /// leaves the old file or the new one, never half of one).
    pub(crate) fn save(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(self)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

/// The flags' credentials, else the file's, else new ones from `/register`
/// (retried with backoff), kept in the file.
pub(crate) async fn load_or_register(s: &Settings, http: &reqwest::Client) -> anyhow::Result<Credentials> {
    if let (Some(client_id), Some(api_key)) = (&s.client_id, &s.api_key) {
        return Ok(Credentials { client_id: client_id.clone(), api_key: api_key.expose_secret().to_owned(), issued_at: None, expires_at: None });
    }
    if let Ok(text) = std::fs::read_to_string(&s.credentials_file) {
        return Ok(serde_json::from_str(&text)?);
    }
    let url = format!("{}/register", s.orchestrator_url.trim_end_matches('/'));
    let mut delay = s.backoff_base;
    let creds: Credentials = loop {
        match http.post(&url).send().await {
            Ok(r) if r.status().is_success() => break Credentials::from(r.json::<KeyIssued>().await?),
            other => {
                warn!(?other, "register failed; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    };
    creds.save(&s.credentials_file)?;
    info!(client_id = creds.client_id, file = %s.credentials_file.display(), "registered");
    Ok(creds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::os::unix::fs::PermissionsExt;

    const KEY: &str = "ak1.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl";

    fn creds() -> Credentials {
        Credentials { client_id: "c1".into(), api_key: KEY.into(), issued_at: Some(1_000), expires_at: Some(5_000) }
    }

    #[test]
    fn the_file_is_private_and_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("credentials.json");
        std::fs::write(&path, "old, world-readable").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        creds().save(&path).expect("save");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "credentials file mode {mode:o}");
        let back: Credentials = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("decode");
        assert_eq!(back.api_key(), KEY);
        assert!(!dir.path().join("credentials.tmp").exists());
    }

    #[test]
    fn the_key_never_prints() {
        assert!(!format!("{:?}", creds()).contains(KEY));
        let s = Settings::try_parse_from(["uwl-worker", "--orchestrator-url", "http://x", "--client-id", "c1", "--api-key", KEY]).expect("parses");
        assert!(!format!("{s:?}").contains(KEY), "{s:?}");
        assert_eq!(s.api_key.as_ref().map(|k| k.expose_secret().to_owned()).as_deref(), Some(KEY));
        // --help never shows the value the environment gives
        let cmd = <Settings as clap::CommandFactory>::command();
        let arg = cmd.get_arguments().find(|a| a.get_id() == "api_key").expect("API_KEY is a setting");
        assert!(arg.is_hide_env_values_set(), "API_KEY's value is hidden from --help");
    }

    #[test]
    fn renewal_is_due_past_three_quarters_of_the_life() {
        let c = creds();
        assert!(!c.due_for_renewal(3_999));
        assert!(c.due_for_renewal(4_000));
        let unknown = Credentials { issued_at: None, expires_at: None, ..creds() };
        assert!(unknown.due_for_renewal(0), "a key of unknown life is renewed at once");
        let old_file: Credentials = serde_json::from_str(&format!(r#"{{"client_id":"c1","api_key":"{KEY}"}}"#)).expect("an older file decodes");
        assert!(old_file.due_for_renewal(0));
    }
}
