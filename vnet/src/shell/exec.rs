//! Running a parsed command against the vnet.
//!
//! Missing arguments are asked for through [`Io`]: a terminal prompts with
//! the default shown (`ip(127.0.0.1): `), a pipe answers nothing, so
//! defaults apply and a missing required argument is an error. A command
//! that fails changes nothing: what it created on the way is removed.
use proto::{ServeId, VnetId};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::command::{Action, Cmd, Pairs, Topic};
use super::show;
use crate::config::{ServeConfig, UseConfig, VnetConfig};
use crate::error::VnetError;
use crate::handle::VnetHandle;
use crate::uses::UseOpened;

/// How the shell talks to its user.
pub trait Io {
    /// Asks for a value; `None` when nobody can answer (not a terminal).
    /// An empty answer means "take the default".
    fn ask(&mut self, prompt: &str) -> Option<String>;
    /// Shows a line of progress before the command's result.
    fn say(&mut self, text: &str);
}

/// What a command asks of the loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Print this (may be empty) and read the next command.
    Text(String),
    /// Stop the vnet.
    Exit,
}

/// The shell's view of the vnet.
pub struct Shell {
    /// The running vnet.
    pub handle: VnetHandle,
    /// Runtime the vnet runs on; the shell thread blocks on it.
    pub rt: tokio::runtime::Handle,
    /// The config file in use, for `reload` without a file.
    pub config_path: PathBuf,
}

fn has(pairs: &Pairs, key: &str) -> bool {
    pairs.iter().any(|(k, _)| k == key)
}

/// Asks for `key` if it was not given; an empty answer keeps the default.
fn fill(io: &mut dyn Io, pairs: &mut Pairs, key: &str, default: &str) {
    if has(pairs, key) {
        return;
    }
    if let Some(answer) = io.ask(&format!("    {key}({default}): ")) {
        let answer = answer.trim();
        if !answer.is_empty() {
            pairs.push((key.to_string(), answer.to_string()));
        }
    }
}

fn take(pairs: &Pairs, key: &str) -> Option<String> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

fn need_name(io: &mut dyn Io, name: Option<String>, usage: &str) -> Result<String, String> {
    if let Some(name) = name {
        return Ok(name);
    }
    match io.ask("    name: ").map(|n| n.trim().to_string()) {
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(format!("missing NAME: {usage}")),
    }
}

fn opened_text(key: &str, serve_id: Option<ServeId>, opened: &UseOpened) -> String {
    let target = serve_id.map_or_else(String::new, |id| format!(" -> serve {id}"));
    match opened {
        UseOpened::Listening { local, open: true } => {
            format!("use {key} listening on {local}{target} (open)")
        }
        UseOpened::Listening { local, open: false } => {
            format!(
                "use {key} listening on {local}{target} (standby until the serve is registered)"
            )
        }
        UseOpened::WaitingForServe => {
            format!("use {key}{target}: waiting for the serve to learn its port")
        }
    }
}

impl Shell {
    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Runs one command.
    ///
    /// # Errors
    /// One line saying what was wrong; nothing was changed.
    pub fn execute(&self, cmd: Cmd, io: &mut dyn Io) -> Result<Reply, String> {
        let text = match cmd {
            Cmd::Help(topic) => super::help::text(topic.as_deref())?,
            Cmd::Serve(action, name, pairs) => self.serve(action, name, pairs, io)?,
            Cmd::Use(action, name, pairs) => self.use_(action, name, pairs, io)?,
            Cmd::Show(topic, json) => self.show(topic, json)?,
            Cmd::Ping => {
                let rtt = self.block(self.handle.ping()).map_err(|e| e.to_string())?;
                format!(
                    "pong from the route in {:.3} ms",
                    rtt.as_secs_f64() * 1000.0
                )
            }
            Cmd::Reload(file) => self.reload(file.as_deref().map(Path::new))?,
            Cmd::Unserve(pairs) => self.unserve(pairs, io)?,
            Cmd::Exit => return Ok(Reply::Exit),
        };
        Ok(Reply::Text(text))
    }

    fn serve(
        &self,
        action: Action,
        name: Option<String>,
        mut pairs: Pairs,
        io: &mut dyn Io,
    ) -> Result<String, String> {
        let key = need_name(io, name, "serve open|close|new|run|delete NAME")?;
        let h = &self.handle;
        match action {
            Action::Open => {
                let id = self
                    .block(h.serve_open(&key))
                    .map_err(|e| format!("serve {key}: {e}"))?;
                Ok(format!("serve {key} registered as {id}"))
            }
            Action::Close => {
                self.block(h.serve_close(&key)).map_err(|e| e.to_string())?;
                Ok(format!("serve {key} closed (inactive)"))
            }
            Action::Delete => {
                self.block(h.serve_delete(&key))
                    .map_err(|e| e.to_string())?;
                Ok(format!("serve {key} deleted"))
            }
            Action::New | Action::Run => {
                if self.handle.status().serves.contains_key(&key) {
                    return Err(format!("a serve named {key:?} exists already"));
                }
                fill(io, &mut pairs, "ip", "127.0.0.1");
                fill(io, &mut pairs, "port", "required");
                fill(io, &mut pairs, "serveid", "000");
                fill(io, &mut pairs, "info", "");
                let run = action == Action::Run;
                pairs.retain(|(k, _)| k != "active");
                pairs.push(("active".into(), run.to_string()));
                let source = if run { "serve run" } else { "serve new" };
                let config =
                    ServeConfig::from_pairs(source, &key, &pairs).map_err(|e| e.to_string())?;
                match self.block(h.serve_add(config)) {
                    Ok(Some(id)) => Ok(format!("serve {key} registered as {id}")),
                    Ok(None) => Ok(format!(
                        "serve {key} created (inactive); `serve open {key}` registers it"
                    )),
                    Err(VnetError::NotConnected) => Ok(format!(
                        "serve {key} added; it registers when the route is back"
                    )),
                    Err(err) => {
                        let _ = self.block(h.serve_delete(&key));
                        Err(format!("serve {key}: {err}"))
                    }
                }
            }
        }
    }

    fn use_(
        &self,
        action: Action,
        name: Option<String>,
        mut pairs: Pairs,
        io: &mut dyn Io,
    ) -> Result<String, String> {
        let key = need_name(io, name, "use open|close|new|run|delete NAME")?;
        let h = &self.handle;
        match action {
            Action::Open => {
                let opened = self
                    .block(h.use_open(&key))
                    .map_err(|e| format!("use {key}: {e}"))?;
                let serve_id = h.status().uses.get(&key).and_then(|u| u.config.serve_id);
                Ok(opened_text(&key, serve_id, &opened))
            }
            Action::Close => {
                self.block(h.use_close(&key)).map_err(|e| e.to_string())?;
                Ok(format!("use {key} closed (not listening)"))
            }
            Action::Delete => {
                self.block(h.use_delete(&key)).map_err(|e| e.to_string())?;
                Ok(format!("use {key} deleted"))
            }
            Action::New | Action::Run => {
                if h.status().uses.contains_key(&key) {
                    return Err(format!("a use named {key:?} exists already"));
                }
                fill(io, &mut pairs, "serveid", "required");
                fill(io, &mut pairs, "ip", "127.0.0.1");
                fill(io, &mut pairs, "port", "the serve's port");
                let run = action == Action::Run;
                pairs.retain(|(k, _)| k != "active");
                pairs.push(("active".into(), run.to_string()));
                let source = if run { "use run" } else { "use new" };
                let config =
                    UseConfig::from_pairs(source, &key, &pairs).map_err(|e| e.to_string())?;
                let Some(serve_id) = config.serve_id else {
                    return Err(format!(
                        "{source}: [use.{key}] serveid: is required (1-999)"
                    ));
                };
                match self.block(h.use_add(config)) {
                    Ok(Some(opened)) => Ok(opened_text(&key, Some(serve_id), &opened)),
                    Ok(None) => Ok(format!(
                        "use {key} created (inactive); `use open {key}` starts it"
                    )),
                    Err(err) => {
                        let _ = self.block(h.use_delete(&key));
                        Err(format!("use {key}: {err}"))
                    }
                }
            }
        }
    }

    fn show(&self, topic: Topic, json: bool) -> Result<String, String> {
        let h = &self.handle;
        Ok(match topic {
            Topic::Serves => {
                show::serves(&self.block(h.serves()).map_err(|e| e.to_string())?, json)
            }
            Topic::Vnets => show::vnets(&self.block(h.vnets()).map_err(|e| e.to_string())?, json),
            Topic::Serve => show::local_serves(&h.status(), json),
            Topic::Use => show::local_uses(&h.status(), json),
            Topic::Vnet => {
                let (settings, route) = h.settings();
                show::vnet(&h.status(), &settings, &route, json)
            }
        })
    }

    fn reload(&self, file: Option<&Path>) -> Result<String, String> {
        let path = file.unwrap_or(&self.config_path);
        let config = VnetConfig::load(path).map_err(|e| format!("{e}; nothing changed"))?;
        let summary = self.block(self.handle.reload(config));
        let list = |keys: &[String]| {
            if keys.is_empty() {
                "none".to_string()
            } else {
                keys.join(", ")
            }
        };
        Ok(format!(
            "reloaded {}: added {}; removed {}; changed {}{}",
            path.display(),
            list(&summary.added),
            list(&summary.removed),
            list(&summary.changed),
            if summary.reconnected {
                "; reconnected to the route"
            } else {
                ""
            }
        ))
    }

    fn unserve(&self, mut pairs: Pairs, io: &mut dyn Io) -> Result<String, String> {
        const KEYS: &[&str] = &["vnetid", "ip", "port", "local_ip", "local_port"];
        if let Some((key, _)) = pairs.iter().find(|(k, _)| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "unserve: unknown key {key} (known: {})",
                KEYS.join(", ")
            ));
        }
        fill(io, &mut pairs, "vnetid", "required");
        fill(io, &mut pairs, "ip", "127.0.0.1");
        fill(io, &mut pairs, "port", "required");
        let vnet_id =
            take(&pairs, "vnetid").ok_or("unserve: vnetid is required (see show vnets)")?;
        let vnet_id = vnet_id
            .parse::<u16>()
            .map(VnetId)
            .map_err(|_| format!("unserve: vnetid {vnet_id:?} is not a number"))?;
        let ip = take(&pairs, "ip").unwrap_or_else(|| "127.0.0.1".into());
        let port = take(&pairs, "port").ok_or("unserve: port is required")?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or(format!("unserve: port {port:?} is not in 1-65535"))?;

        io.say(&format!(
            "asking vnet {vnet_id} for its unregistered service {ip}:{port} ..."
        ));
        let serve_id = self
            .block(self.handle.unserve(vnet_id, &ip, port))
            .map_err(|e| format!("unserve refused: {e}"))?;
        io.say(&format!(
            "vnet {vnet_id} granted it as serve {serve_id}; the grant is withdrawn when unused \
             (3 min by default) and after its last connection (1 min)"
        ));

        let local_port_default = port.to_string();
        fill(io, &mut pairs, "local_ip", "127.0.0.1");
        fill(io, &mut pairs, "local_port", &local_port_default);
        let local_ip = take(&pairs, "local_ip").unwrap_or_else(|| "127.0.0.1".into());
        let local_ip: IpAddr = local_ip
            .parse()
            .map_err(|_| format!("unserve: local_ip {local_ip:?} is not an IP address"))?;
        let local_port = take(&pairs, "local_port").unwrap_or(local_port_default);
        let local_port: u16 = local_port
            .parse()
            .map_err(|_| format!("unserve: local_port {local_port:?} is not in 0-65535"))?;
        let (key, opened) = self
            .block(
                self.handle
                    .unserve_use(serve_id, vnet_id, local_ip, local_port),
            )
            .map_err(|e| format!("serve {serve_id} granted, but the local mapping failed: {e}"))?;
        Ok(opened_text(&key, Some(serve_id), &opened))
    }
}
