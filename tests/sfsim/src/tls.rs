//! TLS: a CA generated with rcgen (or reused from the CA directory) and a leaf certificate for
//! `localhost`, `127.0.0.1`, `::1` and the Salesforce host names the simulator stands in for.

use crate::error::SimError;
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The generated material.
pub struct Tls {
    /// Server config for the HTTPS listener.
    pub server: Arc<rustls::ServerConfig>,
    /// CA certificate (PEM).
    pub ca_pem: String,
    /// Where the CA PEM was written.
    pub ca_path: PathBuf,
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "sfsim local CA");
    dn.push(DnType::OrganizationName, "sfsim");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p
}

fn err(e: impl std::fmt::Display) -> SimError {
    SimError::Tls(e.to_string())
}

/// Creates (or loads from `dir`) the CA, writes `dir/ca.pem`, and issues the leaf.
pub fn setup(dir: &Path) -> Result<Tls, SimError> {
    std::fs::create_dir_all(dir)?;
    let ca_path = dir.join("ca.pem");
    let key_path = dir.join("ca-key.pem");
    let params = ca_params();
    let (ca_key, ca_pem) = match (std::fs::read_to_string(&key_path), std::fs::read_to_string(&ca_path)) {
        (Ok(k), Ok(c)) if c.contains("BEGIN CERTIFICATE") => (KeyPair::from_pem(&k).map_err(err)?, c),
        _ => {
            let key = KeyPair::generate().map_err(err)?;
            let cert = params.self_signed(&key).map_err(err)?;
            let pem = cert.pem();
            std::fs::write(&key_path, key.serialize_pem())?;
            std::fs::write(&ca_path, &pem)?;
            (key, pem)
        }
    };
    let issuer = Issuer::new(params, ca_key);
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".into(),
        "::1".into(),
        "login.salesforce.com".into(),
        "test.salesforce.com".into(),
        "*.my.salesforce.com".into(),
        "*.sandbox.my.salesforce.com".into(),
        "*.lightning.force.com".into(),
    ];
    let mut leaf = CertificateParams::new(names).map_err(err)?;
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(err)?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(err)?;
    let chain = vec![leaf_cert.der().clone()];
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).map_err(err)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(err)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(err)?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls { server: Arc::new(server), ca_pem, ca_path })
}
