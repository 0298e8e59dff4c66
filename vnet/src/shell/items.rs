//! `serve` and `use`: the same five actions (open, close, new, run,
//! delete) on a named item of either kind, along one path. Only the calls,
//! the prompts and a few words differ ([`Kind`]). A `new` or `run` that
//! fails removes what it added.
use proto::ServeId;
use tokio::runtime::Handle;

use super::ask::{Io, Questions};
use super::command::{Action, Pairs};
use crate::config::{ServeConfig, UseConfig};
use crate::error::VnetError;
use crate::handle::VnetHandle;
use crate::uses::UseOpened;

/// What `serve` and `use` differ in: the calls, the prompts, a few words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Serve,
    Use,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Serve => "serve",
            Kind::Use => "use",
        }
    }

    /// What `close` leaves the item as.
    fn closed(self) -> &'static str {
        match self {
            Kind::Serve => "inactive",
            Kind::Use => "not listening",
        }
    }

    /// What `open` does to an item made by `new`.
    fn next_step(self) -> &'static str {
        match self {
            Kind::Serve => "registers it",
            Kind::Use => "starts it",
        }
    }

    /// The keys `new` and `run` ask for, with the defaults shown.
    fn prompts(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Serve => &[
                ("ip", "127.0.0.1"),
                ("port", "required"),
                ("serveid", "000"),
                ("info", ""),
            ],
            Kind::Use => &[
                ("serveid", "required"),
                ("ip", "127.0.0.1"),
                ("port", "the serve's port"),
            ],
        }
    }
}

/// How `new`/`run` went once the item's keys were read.
enum Created {
    /// Added and started; the text says how.
    Started(String),
    /// Added, inactive (`new`).
    Inactive,
    /// Adding failed; what was added is to be removed.
    Failed(VnetError),
}

/// The items of a running vnet, as the shell thread changes them.
pub(super) struct Items<'a> {
    pub handle: &'a VnetHandle,
    /// The runtime the vnet runs on; the shell thread blocks on it.
    pub rt: &'a Handle,
}

/// How a use stands after `open` or `run`, for people.
pub(super) fn opened_text(key: &str, serve_id: Option<ServeId>, opened: &UseOpened) -> String {
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

impl Items<'_> {
    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Runs `ACTION NAME` on an item of `kind`.
    pub(super) fn run(
        &self,
        kind: Kind,
        action: Action,
        name: Option<String>,
        mut pairs: Pairs,
        io: &mut dyn Io,
    ) -> Result<String, String> {
        let word = kind.word();
        let mut questions = Questions::new(io, &pairs);
        let key = questions.name(name, &format!("{word} open|close|new|run|delete NAME"))?;
        match action {
            Action::Open => self
                .open(kind, &key)
                .map_err(|e| format!("{word} {key}: {e}")),
            Action::Close => {
                self.close(kind, &key).map_err(|e| e.to_string())?;
                Ok(format!("{word} {key} closed ({})", kind.closed()))
            }
            Action::Delete => {
                self.delete(kind, &key).map_err(|e| e.to_string())?;
                Ok(format!("{word} {key} deleted"))
            }
            Action::New | Action::Run => {
                if self.exists(kind, &key) {
                    return Err(format!("a {word} named {key:?} exists already"));
                }
                for (asked, default) in kind.prompts() {
                    questions.fill(&mut pairs, asked, default)?;
                }
                let run = action == Action::Run;
                pairs.retain(|(k, _)| k != "active");
                pairs.push(("active".into(), run.to_string()));
                let source = format!("{word} {}", if run { "run" } else { "new" });
                match self.create(kind, &source, &key, &pairs)? {
                    Created::Started(text) => Ok(text),
                    Created::Inactive => Ok(format!(
                        "{word} {key} created (inactive); `{word} open {key}` {}",
                        kind.next_step()
                    )),
                    Created::Failed(err) => {
                        let _ = self.delete(kind, &key);
                        Err(format!("{word} {key}: {err}"))
                    }
                }
            }
        }
    }

    fn exists(&self, kind: Kind, key: &str) -> bool {
        let status = self.handle.status();
        match kind {
            Kind::Serve => status.serves.contains_key(key),
            Kind::Use => status.uses.contains_key(key),
        }
    }

    fn open(&self, kind: Kind, key: &str) -> Result<String, VnetError> {
        let h = &self.handle;
        match kind {
            Kind::Serve => {
                let id = self.block(h.serve_open(key))?;
                Ok(format!("serve {key} registered as {id}"))
            }
            Kind::Use => {
                let opened = self.block(h.use_open(key))?;
                let serve_id = h.status().uses.get(key).and_then(|u| u.config.serve_id);
                Ok(opened_text(key, serve_id, &opened))
            }
        }
    }

    fn close(&self, kind: Kind, key: &str) -> Result<(), VnetError> {
        match kind {
            Kind::Serve => self.block(self.handle.serve_close(key)),
            Kind::Use => self.block(self.handle.use_close(key)),
        }
    }

    fn delete(&self, kind: Kind, key: &str) -> Result<(), VnetError> {
        match kind {
            Kind::Serve => self.block(self.handle.serve_delete(key)),
            Kind::Use => self.block(self.handle.use_delete(key)),
        }
    }

    /// `new`/`run` past the prompts: reads the item from `pairs` (a
    /// mistake there is `Err`, and nothing was added) and adds it.
    fn create(
        &self,
        kind: Kind,
        source: &str,
        key: &str,
        pairs: &Pairs,
    ) -> Result<Created, String> {
        let h = &self.handle;
        Ok(match kind {
            Kind::Serve => {
                let config =
                    ServeConfig::from_pairs(source, key, pairs).map_err(|e| e.to_string())?;
                match self.block(h.serve_add(config)) {
                    Ok(Some(id)) => Created::Started(format!("serve {key} registered as {id}")),
                    Ok(None) => Created::Inactive,
                    Err(VnetError::NotConnected) => Created::Started(format!(
                        "serve {key} added; it registers when the route is back"
                    )),
                    Err(err) => Created::Failed(err),
                }
            }
            Kind::Use => {
                let config =
                    UseConfig::from_pairs(source, key, pairs).map_err(|e| e.to_string())?;
                let Some(serve_id) = config.serve_id else {
                    return Err(format!(
                        "{source}: [use.{key}] serveid: is required (1-999)"
                    ));
                };
                match self.block(h.use_add(config)) {
                    Ok(Some(opened)) => Created::Started(opened_text(key, Some(serve_id), &opened)),
                    Ok(None) => Created::Inactive,
                    Err(err) => Created::Failed(err),
                }
            }
        })
    }
}
