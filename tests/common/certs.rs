//! Test certificates made with rcgen: a CA and the leaf certificates it signs, in PEM. Included
//! with `#[path = "common/certs.rs"] mod certs;` by the TLS tests (it needs nothing else from
//! `common`, so it builds on every platform).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rp::transport::{TlsClientOptions, TlsServerOptions};

/// A CA that signs leaf certificates.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate chain and its key, in PEM.
pub struct Leaf {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl Ca {
    /// A self-signed CA with the common name `name`.
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Ca { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
    }

    /// The CA's certificate, PEM.
    pub fn pem(&self) -> Vec<u8> {
        self.issuer.pem().into_bytes()
    }

    /// A leaf with subject `CN=<cn>,O=librp tests` and the names `sans` (DNS names or IP
    /// addresses), after `edit` has changed its parameters.
    pub fn leaf_with(&self, cn: &str, sans: &[&str], edit: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.distinguished_name.push(DnType::OrganizationName, "librp tests");
        edit(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert_pem: cert.pem().into_bytes(), key_pem: key.serialize_pem().into_bytes() }
    }

    /// A leaf with subject `CN=<cn>,O=librp tests` and the names `sans`.
    pub fn leaf(&self, cn: &str, sans: &[&str]) -> Leaf {
        self.leaf_with(cn, sans, |_| {})
    }

    /// A server certificate for `localhost` and the loopback address.
    pub fn server_leaf(&self) -> Leaf {
        self.leaf("test server", &["localhost", "127.0.0.1"])
    }

    /// Server options presenting a fresh [`Ca::server_leaf`].
    pub fn server_options(&self) -> TlsServerOptions {
        self.server_leaf().server_options()
    }

    /// Client options that trust this CA only.
    pub fn trusting(&self) -> TlsClientOptions {
        TlsClientOptions { ca_pem: self.pem(), ..TlsClientOptions::default() }
    }
}

impl Leaf {
    /// Server options presenting this certificate.
    pub fn server_options(&self) -> TlsServerOptions {
        TlsServerOptions { cert_chain_pem: self.cert_pem.clone(), key_pem: self.key_pem.clone(), ..TlsServerOptions::default() }
    }

    /// Client options that trust `ca` and present this certificate (mutual TLS).
    pub fn client_options(&self, ca: &Ca) -> TlsClientOptions {
        TlsClientOptions { cert_chain_pem: self.cert_pem.clone(), key_pem: self.key_pem.clone(), ..ca.trusting() }
    }

    /// Writes the chain and the key to `<dir>/<name>.pem` and `<dir>/<name>.key`.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}
