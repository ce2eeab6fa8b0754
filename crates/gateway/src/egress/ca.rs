//! The interception CA: Airlock's own certificate authority. For each host listed in
//! `egress.intercept` it issues a certificate on the fly, so that an agent trusting the CA
//! sees a valid TLS server where Airlock ends its connection. The CA key is read from
//! `egress.ca.key` into this process and goes nowhere else: no log line, no API answer.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use airlock_core::config::egress::CaFiles;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

/// A CA that has just been made: its certificate and key, PEM.
pub struct NewCa {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Makes a CA (ECDSA P-256, ten years) that may sign server certificates only: path length
/// 0, so a leaf it issued cannot sign further.
pub fn generate(name: &str) -> Result<NewCa, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Airlock");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    let cert = params.self_signed(&key)?;
    Ok(NewCa {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A loaded CA and the TLS server configs it has issued, one per host.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    /// Per host: the TLS config with its leaf, and when the leaf expires.
    leaves: Mutex<HashMap<String, (OffsetDateTime, Arc<ServerConfig>)>>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authority(***)")
    }
}

/// Leaves live a month: long for a process, short for a leaked one. Their clock starts a
/// day back so a client whose clock lags still accepts them.
const LEAF_DAYS: i64 = 30;
/// A leaf this close to expiring is replaced before it is served again.
const RENEW_DAYS: i64 = 7;

impl Authority {
    /// The CA in `files`, made there first when neither file exists (the key readable by
    /// this user only). Says whether it was made.
    pub fn open(files: &CaFiles) -> Result<(Authority, bool), String> {
        let (cert, key) = (Path::new(&files.cert), Path::new(&files.key));
        let made = match (cert.exists(), key.exists()) {
            (true, true) => false,
            (false, false) => {
                let ca = generate("Airlock interception CA").map_err(|e| e.to_string())?;
                write(key, &ca.key_pem, 0o600)?;
                write(cert, &ca.cert_pem, 0o644)?;
                true
            }
            _ => {
                return Err(format!(
                    "only one of the CA files {} and {} exists: restore the other, or remove both to make a new CA",
                    files.cert, files.key
                ));
            }
        };
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        Ok((Authority::load(&read(cert)?, &read(key)?)?, made))
    }

    /// Reads a CA certificate and its key (PEM, PKCS#8 or SEC1).
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Authority, String> {
        let key =
            KeyPair::from_pem(key_pem).map_err(|e| format!("the CA key is not usable: {e}"))?;
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| format!("the CA certificate is not PEM: {e}"))?;
        let issuer = Issuer::from_ca_cert_der(&cert, key)
            .map_err(|e| format!("the CA certificate is not usable: {e}"))?;
        Ok(Authority {
            issuer,
            cert,
            leaves: Mutex::new(HashMap::new()),
        })
    }

    /// The TLS server config for `host`: a leaf for it signed by the CA, then the CA, and
    /// ALPN for HTTP/2 and HTTP/1.1. Issued once per host and kept (the hosts are the few
    /// listed in `egress.intercept`), and issued again a week before it expires.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, String> {
        let now = OffsetDateTime::now_utc();
        let mut leaves = self.leaves.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((expires, config)) = leaves.get(host)
            && *expires - now > Duration::days(RENEW_DAYS)
        {
            return Ok(config.clone());
        }
        let (expires, config) = self.issue(host, now)?;
        let config = Arc::new(config);
        leaves.insert(host.to_owned(), (expires, config.clone()));
        Ok(config)
    }

    fn issue(
        &self,
        host: &str,
        now: OffsetDateTime,
    ) -> Result<(OffsetDateTime, ServerConfig), String> {
        let fail = |e: &dyn std::fmt::Display| format!("no certificate for `{host}`: {e}");
        let key = KeyPair::generate().map_err(|e| fail(&e))?;
        // A name or an address, as the agent asked for it.
        let mut params = CertificateParams::new(vec![host.to_owned()]).map_err(|e| fail(&e))?;
        params.distinguished_name.push(DnType::CommonName, host);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(LEAF_DAYS);
        let leaf = params.signed_by(&key, &self.issuer).map_err(|e| fail(&e))?;
        let chain = vec![leaf.der().clone(), self.cert.clone()];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| fail(&e))?
                .with_no_client_auth()
                .with_single_cert(chain, private)
                .map_err(|e| fail(&e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok((params.not_after, config))
    }
}

/// Writes a new file (never over an existing one) with `mode` permissions.
fn write(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)
}

#[cfg(test)]
mod tests;
