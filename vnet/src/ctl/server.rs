//! The vnet's side of `vnet ctl`: a Unix socket beside the config, one
//! command per connection, run by the shell's executor.
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{answer, trusted, MAX_COMMAND, READ_TIMEOUT};
use crate::shell::ask::{Asked, Io};
use crate::shell::exec::{Reply, Shell};

/// Commands that may run at once; more wait their turn.
const AT_ONCE: usize = 4;

/// Connections that may be open at once (waiting, running or being
/// answered); more are closed at once.
const OPEN_AT_MOST: usize = 64;

/// How long a client has to take its answer.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The listening socket; removes its file when dropped.
#[derive(Debug)]
pub struct CtlServer {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for CtlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Why the socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another vnet already runs with this config (its socket {0} answers)")]
    InUse(PathBuf),
    #[error("cannot listen on {path}: {err}")]
    Io { path: PathBuf, err: io::Error },
}

impl CtlServer {
    /// Listens on `path`, readable and writable by this user only. A file
    /// left there by a vnet that died is replaced; a live one is not. When
    /// `path` is a symbolic link, the socket is made where it points (so a
    /// service with a read-only config directory can keep its socket in a
    /// runtime directory).
    pub async fn bind(path: &Path) -> Result<Self, BindError> {
        let target = followed_link(path)?;
        let path = target.as_deref().unwrap_or(path);
        let io_err = |err| BindError::Io {
            path: path.to_path_buf(),
            err,
        };
        match std::fs::symlink_metadata(path) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(io_err(err)),
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(io_err(io::Error::other(
                    "something other than a socket is there",
                )))
            }
            // A socket: stale only if nobody listens on it any more.
            Ok(_) => match UnixStream::connect(path).await {
                Ok(_) => return Err(BindError::InUse(path.to_path_buf())),
                Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(io_err)?;
                }
                Err(err) => return Err(io_err(err)),
            },
        }
        let listener = UnixListener::bind(path).map_err(io_err)?;
        let server = CtlServer {
            listener,
            path: path.to_path_buf(),
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
        Ok(server)
    }

    /// Answers commands until `shutdown`; `exit` from a client cancels
    /// `stop` (the vnet then stops as from its own shell).
    pub async fn run(
        self,
        shell: Arc<Shell>,
        stop: CancellationToken,
        shutdown: CancellationToken,
    ) {
        info!(socket = %self.path.display(), "vnet ctl listening");
        let slots = Arc::new(Semaphore::new(AT_ONCE));
        let open = Arc::new(Semaphore::new(OPEN_AT_MOST));
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = self.listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    warn!(%err, "vnet ctl: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            if !same_user(&stream) {
                warn!("vnet ctl: refused a connection from another user");
                continue;
            }
            let Ok(held) = open.clone().try_acquire_owned() else {
                warn!("vnet ctl: too many connections at once; closed one");
                continue;
            };
            let (shell, stop, slots) = (shell.clone(), stop.clone(), slots.clone());
            tokio::spawn(async move {
                let _held = held;
                if let Err(err) = serve_one(stream, shell, stop, slots).await {
                    debug!(%err, "vnet ctl: connection ended early");
                }
            });
        }
    }
}

/// Where a symbolic link at `path` points, if there is one; only a link
/// of this user's or root's is followed, so nobody else can aim the socket
/// (and the removal of a stale one) elsewhere.
fn followed_link(path: &Path) -> Result<Option<PathBuf>, BindError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(None);
    };
    if !meta.file_type().is_symlink() {
        return Ok(None);
    }
    if !trusted(meta.uid()) {
        return Err(BindError::Io {
            path: path.to_path_buf(),
            err: io::Error::other("a link owned by another user; not following it"),
        });
    }
    let to = std::fs::read_link(path).map_err(|err| BindError::Io {
        path: path.to_path_buf(),
        err,
    })?;
    Ok(Some(path.parent().unwrap_or(Path::new("")).join(to)))
}

/// The peer runs as this process's user, or as root.
fn same_user(stream: &UnixStream) -> bool {
    stream.peer_cred().is_ok_and(|cred| trusted(cred.uid()))
}

async fn serve_one(
    mut stream: UnixStream,
    shell: Arc<Shell>,
    stop: CancellationToken,
    slots: Arc<Semaphore>,
) -> io::Result<()> {
    let read = tokio::time::timeout(READ_TIMEOUT, read_line(&mut stream)).await;
    let text = match read {
        Err(_) => answer(false, "no command within 5 s"),
        Ok(Err(err)) => return Err(err),
        Ok(Ok(None)) => answer(
            false,
            &format!("a command is at most {MAX_COMMAND} bytes of UTF-8"),
        ),
        Ok(Ok(Some(line))) => {
            debug!(command = %proto::text::escape(&line), "vnet ctl");
            let Ok(_slot) = slots.acquire_owned().await else {
                return Ok(());
            };
            let (ok, text, exit) = tokio::task::spawn_blocking(move || run(&shell, &line))
                .await
                .unwrap_or_else(|_| (false, "the command failed unexpectedly".into(), false));
            if exit {
                info!("vnet ctl: exit; stopping");
                stop.cancel();
            }
            answer(ok, &text)
        }
    };
    let answered = async {
        stream.write_all(text.as_bytes()).await?;
        stream.shutdown().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, answered)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// The command line, up to its newline or the end; `None` when too long
/// or not UTF-8.
async fn read_line(stream: &mut UnixStream) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let mut limited = stream.take(MAX_COMMAND as u64 + 1);
    loop {
        let mut chunk = [0u8; 512];
        let n = limited.read(&mut chunk).await?;
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            buf.truncate(end);
            break;
        }
        if n == 0 {
            break;
        }
    }
    if buf.len() > MAX_COMMAND {
        return Ok(None);
    }
    Ok(String::from_utf8(buf).ok())
}

/// Collects what the command says; asks nobody (missing required keys are
/// errors, as from a pipe).
#[derive(Default)]
struct Collected(Vec<String>);

impl Io for Collected {
    fn ask(&mut self, _prompt: &str) -> Asked {
        Asked::Nobody
    }

    fn say(&mut self, text: &str) {
        self.0.push(text.to_string());
    }
}

/// Runs one line: (succeeded, text, the vnet should stop).
fn run(shell: &Shell, line: &str) -> (bool, String, bool) {
    let mut io = Collected::default();
    let cmd = match crate::shell::command::parse(line) {
        Ok(Some(cmd)) => cmd,
        Ok(None) => return (false, "error: no command given".into(), false),
        Err(err) => return (false, format!("error: {err}"), false),
    };
    let (ok, last, exit) = match shell.execute(cmd, &mut io) {
        Ok(Reply::Text(text)) => (true, text, false),
        Ok(Reply::Exit) => (true, "stopping the vnet".to_string(), true),
        Err(err) => (false, format!("error: {err}"), false),
    };
    if !last.is_empty() {
        io.0.push(last);
    }
    (ok, io.0.join("\n"), exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vnet-ctl-bind-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_one_kept() {
        let dir = scratch("stale");
        let path = dir.join("config.ini.ctl");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let first = CtlServer::bind(&path)
            .await
            .expect("a stale socket is replaced");
        let second = CtlServer::bind(&path).await;
        assert!(matches!(second, Err(BindError::InUse(_))), "{second:?}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(first);
        assert!(!path.exists(), "the socket goes with its server");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn anything_but_a_socket_is_left_alone() {
        let dir = scratch("file");
        let config = dir.join("config.ini");
        std::fs::write(&config, "[route]\n").unwrap();
        let path = dir.join("config.ini.ctl");
        std::fs::write(&path, "mine").unwrap();
        assert!(CtlServer::bind(&path).await.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
        // A link that points at a file (a slip of `ln -s`) removes nothing.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&config, &path).unwrap();
        assert!(CtlServer::bind(&path).await.is_err());
        assert_eq!(std::fs::read_to_string(&config).unwrap(), "[route]\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
