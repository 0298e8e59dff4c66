//! A vnet's long-term key pair (Ed25519), whose public half the pairing
//! binds to its name: kept in a file beside its config (`CONFIG.key`,
//! readable by its owner only), made on first start.
use proto::e2e::pairing::PublicKey;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::io::Write;
use std::path::Path;

/// Where a config's key pair is kept.
pub fn key_path(config: &Path) -> std::path::PathBuf {
    let mut name = config.as_os_str().to_owned();
    name.push(".key");
    name.into()
}

/// The vnet's key pair.
pub struct Identity {
    pair: Ed25519KeyPair,
}

impl Identity {
    /// A key pair that lives as long as the process (tests, and vnets
    /// started from code).
    pub fn ephemeral() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .expect("the system's random source works");
        Self::from_pkcs8(pkcs8.as_ref()).expect("a key just made is valid")
    }

    /// Reads the key pair at `path`, or makes one there (mode 0600).
    ///
    /// # Errors
    /// The file cannot be read or written, is not a key pair, or others
    /// than its owner may read it; the text names the file.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), String> {
        let shown = path.display();
        match std::fs::read(path) {
            Ok(bytes) => {
                check_private(path)?;
                let identity = Self::from_pkcs8(&bytes)
                    .ok_or_else(|| format!("{shown}: not an Ed25519 key pair (PKCS#8)"))?;
                Ok((identity, false))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| format!("{shown}: no random source to make a key"))?;
                write_private(path, pkcs8.as_ref()).map_err(|err| format!("{shown}: {err}"))?;
                let identity = Self::from_pkcs8(pkcs8.as_ref()).expect("a key just made is valid");
                Ok((identity, true))
            }
            Err(err) => Err(format!("{shown}: {err}")),
        }
    }

    fn from_pkcs8(bytes: &[u8]) -> Option<Self> {
        Ed25519KeyPair::from_pkcs8(bytes)
            .ok()
            .map(|pair| Self { pair })
    }

    /// Its public half.
    pub fn public_key(&self) -> PublicKey {
        let bytes = self.pair.public_key().as_ref();
        PublicKey(bytes.try_into().expect("Ed25519 public keys are 32 bytes"))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|err| format!("{}: {err}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{}: others may read this private key (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_kept_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("vnet-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = key_path(&dir.join("office.ini"));
        let _ = std::fs::remove_file(&path);
        let (made, new) = Identity::load_or_create(&path).unwrap();
        assert!(new);
        let (read, new) = Identity::load_or_create(&path).unwrap();
        assert!(!new);
        assert_eq!(made.public_key(), read.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = Identity::load_or_create(&path).err().unwrap();
            assert!(err.contains("chmod 600"), "{err}");
        }
        std::fs::write(&path, b"not a key").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let err = Identity::load_or_create(&path).err().unwrap();
        assert!(err.contains("not an Ed25519 key pair"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_ne!(Identity::ephemeral().public_key(), made.public_key());
    }
}
