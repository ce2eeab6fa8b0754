use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};

use super::*;

fn authority() -> (Authority, String) {
    let ca = generate("Airlock test CA").unwrap();
    (
        Authority::load(&ca.cert_pem, &ca.key_pem).unwrap(),
        ca.cert_pem,
    )
}

/// A full TLS handshake in memory: a client trusting only `ca_pem` connects to `name`
/// served with `config`. Chain, host name and validity dates are all checked by rustls.
fn handshake(config: Arc<ServerConfig>, ca_pem: &str, name: &str) -> Result<(), rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let client_config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let mut client = ClientConnection::new(Arc::new(client_config), server_name).unwrap();
    let mut server = ServerConnection::new(config).unwrap();
    for _ in 0..10 {
        let mut wire = Vec::new();
        client.write_tls(&mut wire).unwrap();
        server.read_tls(&mut wire.as_slice()).unwrap();
        server.process_new_packets()?;
        let mut wire = Vec::new();
        server.write_tls(&mut wire).unwrap();
        client.read_tls(&mut wire.as_slice()).unwrap();
        client.process_new_packets()?;
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    panic!("the handshake did not finish");
}

#[test]
fn a_leaf_is_valid_for_its_host_and_chains_to_the_ca() {
    let (ca, pem) = authority();
    handshake(
        ca.server_config("api.openai.test").unwrap(),
        &pem,
        "api.openai.test",
    )
    .unwrap();
    handshake(ca.server_config("127.0.0.1").unwrap(), &pem, "127.0.0.1").unwrap();
}

#[test]
fn a_leaf_is_refused_for_another_host_or_by_another_ca() {
    let (ca, pem) = authority();
    let config = ca.server_config("api.openai.test").unwrap();
    assert!(handshake(config.clone(), &pem, "api.anthropic.test").is_err());
    let (_, other_pem) = authority();
    assert!(handshake(config, &other_pem, "api.openai.test").is_err());
}

#[test]
fn leaves_are_issued_once_per_host() {
    let (ca, _) = authority();
    let first = ca.server_config("api.openai.test").unwrap();
    assert!(Arc::ptr_eq(
        &first,
        &ca.server_config("api.openai.test").unwrap()
    ));
    assert!(!Arc::ptr_eq(
        &first,
        &ca.server_config("api.anthropic.test").unwrap()
    ));
    assert_eq!(first.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
}

#[test]
fn a_leaf_near_its_end_is_issued_again() {
    let (ca, pem) = authority();
    let first = ca.server_config("api.openai.test").unwrap();
    // As if the leaf had been issued 25 days ago: 5 days left, under the renewal margin.
    ca.leaves
        .lock()
        .unwrap()
        .get_mut("api.openai.test")
        .unwrap()
        .0 = OffsetDateTime::now_utc() + Duration::days(5);
    let renewed = ca.server_config("api.openai.test").unwrap();
    assert!(!Arc::ptr_eq(&first, &renewed));
    handshake(renewed, &pem, "api.openai.test").unwrap();
}

#[test]
fn broken_ca_files_are_clear_errors() {
    let ca = generate("x").unwrap();
    assert!(
        Authority::load("not a pem", &ca.key_pem)
            .unwrap_err()
            .contains("certificate")
    );
    assert!(
        Authority::load(&ca.cert_pem, "garbage")
            .unwrap_err()
            .contains("key")
    );
    assert!(
        !format!("{:?}", Authority::load(&ca.cert_pem, &ca.key_pem).unwrap()).contains("BEGIN"),
        "Debug never shows the key"
    );
}
