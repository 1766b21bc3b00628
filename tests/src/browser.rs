//! A headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`): the dashboard's and the monitoring's browser tests.
//! Screenshots go to `target/screenshots/`.

use crate::wait_for;
use fantoccini::{Client as Browser, ClientBuilder};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// chromedriver on a free port, killed on drop.
#[derive(Debug)]
pub struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn chromedriver() -> anyhow::Result<Driver> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("chromedriver not found ({e}): install chromium and chromium-driver (deploy/test does)"))?;
    Ok(Driver(child, port))
}

/// A browser session of `driver` (headless, 1280 x 1000).
pub async fn browser(driver: &Driver) -> anyhow::Result<Browser> {
    let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "goog:chromeOptions": {
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]
        }
    }))?;
    let url = format!("http://127.0.0.1:{}", driver.1);
    wait_for("chromedriver", Duration::from_secs(20), || async {
        Ok(ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await
            .ok())
    })
    .await
}

/// Where the browser tests put their screenshots.
pub fn screenshots() -> PathBuf {
    crate::repo().join("target/screenshots")
}
