//! Running a parsed command against the vnet: `serve` and `use` go to
//! [`items`](super::items), the others are here. Missing arguments are
//! asked for through [`Io`] (see [`ask`](super::ask)). A command that
//! fails changes nothing: what it created on the way is removed.
use proto::VnetId;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::ask::{take, Io, Questions};
use super::command::{Action, Cmd, Pairs, Topic};
use super::items::{opened_text, Items, Kind};
use super::show;
use crate::config::VnetConfig;
use crate::handle::VnetHandle;

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
            Cmd::Serve(action, name, pairs) => self.item(Kind::Serve, action, name, pairs, io)?,
            Cmd::Use(action, name, pairs) => self.item(Kind::Use, action, name, pairs, io)?,
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

    fn item(
        &self,
        kind: Kind,
        action: Action,
        name: Option<String>,
        pairs: Pairs,
        io: &mut dyn Io,
    ) -> Result<String, String> {
        let items = Items {
            handle: &self.handle,
            rt: &self.rt,
        };
        items.run(kind, action, name, pairs, io)
    }

    fn show(&self, topic: Topic, json: bool) -> Result<String, String> {
        let h = &self.handle;
        Ok(match topic {
            Topic::Serves => {
                show::serves(&self.block(h.serves()).map_err(|e| e.to_string())?, json)
            }
            Topic::Vnets => {
                let list = self.block(h.vnets()).map_err(|e| e.to_string())?;
                let rows: Vec<_> = list
                    .into_iter()
                    .map(|entry| show::VnetRow {
                        e2e: h.end_to_end(entry.vnet_id),
                        direct: h.direct_with(entry.vnet_id),
                        entry,
                    })
                    .collect();
                show::vnets(&rows, json)
            }
            Topic::Serve => show::local_serves(&h.status(), json),
            Topic::Use => show::local_uses(&h.status(), &h.use_paths(), json),
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
        let mut text = format!(
            "reloaded {}: added {}; removed {}; changed {}",
            path.display(),
            list(&summary.added),
            list(&summary.removed),
            list(&summary.changed),
        );
        if !summary.kept.is_empty() {
            text += &format!("; kept (made in the shell) {}", summary.kept.join(", "));
        }
        if !summary.replaced.is_empty() {
            let replaced = summary.replaced.join(", ");
            text += &format!("; the file's version replaced (made in the shell) {replaced}");
        }
        if summary.reconnected {
            text += "; reconnected to the route";
        }
        Ok(text)
    }

    fn unserve(&self, mut pairs: Pairs, io: &mut dyn Io) -> Result<String, String> {
        const KEYS: &[&str] = &["vnetid", "ip", "port", "local_ip", "local_port"];
        if let Some((key, _)) = pairs.iter().find(|(k, _)| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "unserve: unknown key {key} (known: {})",
                KEYS.join(", ")
            ));
        }
        let mut questions = Questions::new(io, &pairs);
        questions.fill(&mut pairs, "vnetid", "required")?;
        questions.fill(&mut pairs, "ip", "127.0.0.1")?;
        questions.fill(&mut pairs, "port", "required")?;
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

        questions.say(&format!(
            "asking vnet {vnet_id} for its unregistered service {ip}:{port} ..."
        ));
        let serve_id = self
            .block(self.handle.unserve(vnet_id, &ip, port))
            .map_err(|e| format!("unserve refused: {e}"))?;
        questions.say(&format!(
            "vnet {vnet_id} granted it as serve {serve_id}; the grant is withdrawn when unused \
             (3 min by default) and after its last connection (1 min)"
        ));

        let local_port_default = port.to_string();
        let not_mapped = |_| {
            format!("cancelled; serve {serve_id} is not mapped here (the grant expires unused)")
        };
        questions
            .fill(&mut pairs, "local_ip", "127.0.0.1")
            .map_err(not_mapped)?;
        questions
            .fill(&mut pairs, "local_port", &local_port_default)
            .map_err(not_mapped)?;
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
