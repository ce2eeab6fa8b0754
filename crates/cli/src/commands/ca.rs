//! `airlock ca init`: the interception CA, and how agents come to trust it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airlock_core::config::egress::{CaFiles, DEFAULT_CA};
use airlock_gateway::ca::Authority;
use anyhow::{Context, anyhow};

use super::load_config;

/// Where Debian, Fedora and Alpine keep the system's trusted CAs, first found wins.
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

pub fn init(
    config: Option<&Path>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let configured = match config {
        Some(_) => load_config(config)?.egress.ca,
        None => None,
    };
    let pick = |given: Option<PathBuf>, from_config: Option<&String>, default: &str| {
        given.unwrap_or_else(|| PathBuf::from(from_config.map_or(default, String::as_str)))
    };
    let cert = pick(cert, configured.as_ref().map(|c| &c.cert), DEFAULT_CA.0);
    let key = pick(key, configured.as_ref().map(|c| &c.key), DEFAULT_CA.1);
    let files = CaFiles {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
    };
    let (_, made) = Authority::open(&files).map_err(|e| anyhow!(e))?;
    let cert =
        std::fs::canonicalize(&cert).with_context(|| format!("cannot find {}", cert.display()))?;
    let key =
        std::fs::canonicalize(&key).with_context(|| format!("cannot find {}", key.display()))?;
    let bundle = cert.with_file_name(format!(
        "{}-bundle.pem",
        cert.file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("airlock-ca")
    ));
    let system = SYSTEM_BUNDLES.iter().find(|p| Path::new(p).exists());
    let mut text = match system {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("cannot read {p}"))?,
        None => String::new(),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&std::fs::read_to_string(&cert)?);
    std::fs::write(&bundle, text).with_context(|| format!("cannot write {}", bundle.display()))?;

    let (cert, key, bundle) = (cert.display(), key.display(), bundle.display());
    println!(
        "{} Airlock's interception CA: {cert}\n  key: {key} (keep it private: it never leaves this machine)\n",
        if made { "Made" } else { "Kept" }
    );
    println!(
        "Trust bundle (the system CAs{} plus Airlock's): {bundle}\n",
        system.map_or(" — none found —".to_owned(), |p| format!(" from {p}"))
    );
    println!("Make agents trust it and use the proxy:");
    println!("  export HTTPS_PROXY=http://AGENT:AIRLOCK_KEY@127.0.0.1:4001");
    println!(
        "  # Python (openai, anthropic, httpx, requests): the bundle replaces their trust store"
    );
    println!("  export SSL_CERT_FILE={bundle}");
    println!("  export REQUESTS_CA_BUNDLE={bundle}");
    println!("  # Node.js: added to its own CAs");
    println!("  export NODE_EXTRA_CA_CERTS={cert}");
    println!("  # curl: --cacert {bundle}  (or CURL_CA_BUNDLE)");
    println!("  # the system store (Debian/Ubuntu):");
    println!(
        "  #   sudo cp {cert} /usr/local/share/ca-certificates/airlock-ca.crt && sudo update-ca-certificates"
    );
    Ok(ExitCode::SUCCESS)
}
