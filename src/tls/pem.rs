//! PEM files as settings name them: every failure (missing file, no
//! certificate in it, a key of a kind rustls cannot use, a CA that is not
//! one) is an [`InvalidSetting`] naming the key and the path, never a panic.

use crate::domain::settings::InvalidSetting;
use rustls::RootCertStore;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A PEM file and the setting that named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PemFile {
    pub setting: String,
    pub path: PathBuf,
}

/// What tells a rewritten file from the one read before: its modification
/// time, size and inode (a renewal that swaps a symbolic link, as certbot's
/// `live/` directory does, changes the inode even within one second).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl PemFile {
    pub fn new(setting: &str, path: impl Into<PathBuf>) -> PemFile {
        PemFile {
            setting: setting.to_string(),
            path: path.into(),
        }
    }

    /// The file a setting names; `None` when the setting is empty (off).
    pub fn optional(setting: &str, text: &str) -> Option<PemFile> {
        let text = text.trim();
        (!text.is_empty()).then(|| PemFile::new(setting, text))
    }

    pub fn invalid(&self, problem: impl std::fmt::Display) -> InvalidSetting {
        InvalidSetting::new(&self.setting, format!("{}: {problem}", self.path.display()))
    }

    fn read(&self) -> Result<Vec<u8>, InvalidSetting> {
        std::fs::read(&self.path).map_err(|error| self.invalid(format!("cannot read it: {error}")))
    }

    /// Every certificate in the file, in order (a chain: the server's own
    /// certificate first, then the intermediates).
    pub fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, InvalidSetting> {
        let bytes = self.read()?;
        let certificates = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| self.invalid(format!("not valid PEM: {error}")))?;
        if certificates.is_empty() {
            return Err(self.invalid("holds no certificate (-----BEGIN CERTIFICATE-----)"));
        }
        Ok(certificates)
    }

    /// The first private key in the file (PKCS#8, or the older RSA and EC
    /// forms OpenSSL writes).
    pub fn private_key(&self) -> Result<PrivateKeyDer<'static>, InvalidSetting> {
        let bytes = self.read()?;
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| match error {
            pem::Error::NoItemsFound => self.invalid(
                "holds no private key (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)",
            ),
            other => self.invalid(format!("not valid PEM: {other}")),
        })
    }

    /// The certificates of the file as trust anchors (a CA bundle).
    pub fn roots(&self) -> Result<RootCertStore, InvalidSetting> {
        let mut roots = RootCertStore::empty();
        for certificate in self.certificates()? {
            roots
                .add(certificate)
                .map_err(|error| self.invalid(format!("not a usable CA certificate: {error}")))?;
        }
        Ok(roots)
    }

    /// `None` when the file cannot be looked at (being replaced, say).
    pub fn stamp(&self) -> Option<FileStamp> {
        stamp_of(&self.path)
    }
}

fn stamp_of(path: &Path) -> Option<FileStamp> {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some(FileStamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        inode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, text: &str) -> PemFile {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        PemFile::new("server.tls_cert", path)
    }

    #[test]
    fn every_failure_names_the_setting_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = PemFile::new("nats.tls_ca", dir.path().join("absent.pem"));
        let error = missing.certificates().unwrap_err();
        assert_eq!(error.key, "nats.tls_ca");
        assert!(
            error.problem.contains("absent.pem: cannot read it"),
            "{error}"
        );

        let empty = file(dir.path(), "empty.pem", "not a pem file\n");
        let error = empty.certificates().unwrap_err();
        assert!(error.problem.contains("holds no certificate"), "{error}");
        let error = empty.private_key().unwrap_err();
        assert!(error.problem.contains("holds no private key"), "{error}");

        let broken = file(
            dir.path(),
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        );
        let error = broken.certificates().unwrap_err();
        assert!(error.problem.contains("not valid PEM"), "{error}");
        let cut = file(dir.path(), "cut.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n");
        assert!(cut.certificates().is_err());
    }

    #[test]
    fn an_empty_setting_is_off_and_a_rewrite_changes_the_stamp() {
        assert_eq!(PemFile::optional("server.tls_cert", "  "), None);
        let dir = tempfile::tempdir().unwrap();
        let pem = file(dir.path(), "a.pem", "one");
        let before = pem.stamp().unwrap();
        std::fs::write(&pem.path, "two, longer").unwrap();
        assert_ne!(pem.stamp().unwrap(), before);
        assert_eq!(PemFile::new("k", dir.path().join("gone")).stamp(), None);
    }
}
