//! A private certificate authority for one test, made with the real
//! `openssl` command: a root, optionally an intermediate, and certificates
//! for servers (`localhost` and `127.0.0.1`) and clients, in a temporary
//! directory that lives as long as the value. EC P-256 keys (PKCS#8), which
//! every party of the tests (rustls, nats-server, ClickHouse's OpenSSL,
//! rsyslog's GnuTLS) accepts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

pub struct Pki {
    dir: Arc<tempfile::TempDir>,
    /// The CA's files' stem in `dir` (`root`, `root-intermediate`).
    name: String,
    /// The chain above this CA's certificates, for a leaf's chain file: the
    /// intermediate itself when this is one.
    chain_above: Vec<PathBuf>,
}

/// A certificate (its chain file: the certificate, then the CAs between it
/// and the root) and its key.
#[derive(Clone, Debug)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Identity {
    pub fn cert_str(&self) -> &str {
        self.cert.to_str().expect("utf-8 path")
    }

    pub fn key_str(&self) -> &str {
        self.key.to_str().expect("utf-8 path")
    }

    /// The DER of the first certificate in the chain file.
    pub fn leaf_der(&self) -> Vec<u8> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_file(&self.cert)
            .expect("a certificate")
            .to_vec()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl is installed");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

const KEY_ARGS: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

impl Pki {
    /// A self-signed root CA named `common_name`.
    pub fn new(common_name: &str) -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut args = vec!["req", "-x509"];
        args.extend_from_slice(KEY_ARGS);
        let subject = format!("/CN={common_name}");
        args.extend_from_slice(&[
            "-nodes",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-days",
            "3",
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(dir.path(), &args);
        Pki {
            dir: Arc::new(dir),
            name: "root".into(),
            chain_above: Vec::new(),
        }
    }

    /// This CA's certificate (a root's is what clients trust).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join(format!("{}.pem", self.name))
    }

    pub fn ca_str(&self) -> String {
        self.ca().to_str().expect("utf-8 path").to_string()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self) -> Pki {
        let name = format!("{}-intermediate", self.name);
        self.sign(
            &name,
            "Test Intermediate CA",
            "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
        );
        let mut chain_above = vec![self.dir.path().join(format!("{name}.pem"))];
        chain_above.extend(self.chain_above.iter().cloned());
        Pki {
            dir: Arc::clone(&self.dir),
            name,
            chain_above,
        }
    }

    /// A server certificate for `localhost` and `127.0.0.1` (usable as a
    /// client certificate too), named `name` in the directory.
    pub fn server(&self, name: &str) -> Identity {
        self.leaf(
            name,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
    }

    /// A client certificate (`CN=name`).
    pub fn client(&self, name: &str) -> Identity {
        self.leaf(
            name,
            &format!("subjectAltName=DNS:{name}\nextendedKeyUsage=clientAuth\n"),
        )
    }

    fn leaf(&self, name: &str, extensions: &str) -> Identity {
        let extensions = format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n{extensions}"
        );
        self.sign(name, name, &extensions);
        // The chain file: the certificate, then every CA but the root.
        let dir = self.dir.path();
        let mut chain = std::fs::read_to_string(dir.join(format!("{name}.pem"))).expect("cert");
        for above in &self.chain_above {
            chain.push_str(&std::fs::read_to_string(above).expect("intermediate"));
        }
        let cert = dir.join(format!("{name}-chain.pem"));
        std::fs::write(&cert, chain).expect("chain file");
        Identity {
            cert,
            key: dir.join(format!("{name}.key")),
        }
    }

    /// `name.key` and `name.pem`, signed by this CA with `extensions`.
    fn sign(&self, name: &str, common_name: &str, extensions: &str) {
        let dir = self.dir.path();
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let subject = format!("/CN={common_name}");
        let mut args = vec!["req"];
        args.extend_from_slice(KEY_ARGS);
        args.extend_from_slice(&["-nodes", "-keyout", &key, "-out", &csr, "-subj", &subject]);
        openssl(dir, &args);
        let extfile = format!("{name}.ext");
        std::fs::write(dir.join(&extfile), extensions).expect("extensions");
        let ca = format!("{}.pem", self.name);
        let ca_key = format!("{}.key", self.name);
        let out = format!("{name}.pem");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-set_serial",
                &serial(),
                "-days",
                "2",
                "-extfile",
                &extfile,
                "-out",
                &out,
            ],
        );
    }
}

/// A random serial, so a renewed certificate differs from the one before.
fn serial() -> String {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut bytes))
        .expect("/dev/urandom");
    // A leading 1 keeps it positive and of full length.
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x1{hex}")
}

/// A rustls client configuration trusting `ca`, presenting `identity`.
pub fn client_config(ca: &Path, identity: Option<&Identity>) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca).expect("ca file") {
        roots.add(certificate.expect("ca")).expect("a CA");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots);
    match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let chain = CertificateDer::pem_file_iter(&identity.cert)
                .expect("chain")
                .collect::<Result<Vec<_>, _>>()
                .expect("certificates");
            let key = PrivateKeyDer::from_pem_file(&identity.key).expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate")
        }
    }
}
