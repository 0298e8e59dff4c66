//! `help` and `help COMMAND`.

const OVERVIEW: &str = "\
serve    local services: serve open|close|new|run|delete NAME [key=value...]
use      mappings of remote serves: use open|close|new|run|delete NAME [key=value...]
show     show serve|use|serves|vnet|vnets [json]
ping     round trip to the route
reload   reload [FILE]: apply the config's changes, leave the rest running
unserve  ask another vnet for a grant to a service it has not registered
exit     deregister, close everything and exit (also Ctrl-C, Ctrl-D)
help     help COMMAND for details";

const SERVE: &str = "\
serve open NAME     activate and register an inactive serve
serve close NAME    deregister (open connections close) and mark inactive
serve new NAME      create an inactive serve
serve run NAME      create a serve and register it
serve delete NAME   deregister and forget
keys for new/run (as in [serve.NAME]): ip=127.0.0.1 port=REQUIRED serveid=000 \
name=NAME info= type=tcp
example: serve run ssh port=22 serveid=700 info=home";

const USE: &str = "\
use open NAME     start listening
use close NAME    stop listening (open connections close) and mark inactive
use new NAME      create an inactive use
use run NAME      create a use and start listening
use delete NAME   stop and forget
keys for new/run (as in [use.NAME]): serveid=REQUIRED ip=127.0.0.1 port=(the serve's port)
example: use run ssh serveid=700 port=1122";

const SHOW: &str = "\
show serve    this vnet's serves: id, state, connections, bytes
show use      this vnet's uses: serve id, listen address, state, connections, bytes
show serves   the group's serves, from the route
show vnet     this vnet's settings
show vnets    the group's vnets, from the route
add json for one JSON document, e.g. show serves json";

const UNSERVE: &str = "\
unserve [vnetid=ID] [ip=127.0.0.1] [port=PORT] [local_ip=127.0.0.1] [local_port=PORT]
asks vnet ID (see show vnets) for its unregistered service ip:port; if it grants
(allow_unserve=true, loopback unless unserve_remote=true, fewer than unserve_num
grants), maps the granted serve onto local_ip:local_port here. Grants are
withdrawn when unused (unserve_expire, 3 min) or after the last connection
(unserve_linger, 1 min), and the mapping with them.
example: unserve vnetid=01 ip=127.0.0.1 port=8888 local_port=18888";

/// The help for `topic`, or the overview.
///
/// # Errors
/// Unknown topic.
pub fn text(topic: Option<&str>) -> Result<String, String> {
    Ok(match topic {
        None => OVERVIEW,
        Some("serve") => SERVE,
        Some("use") => USE,
        Some("show") => SHOW,
        Some("unserve") => UNSERVE,
        Some("ping") => {
            "ping: round trip to the route over the control connection, in milliseconds"
        }
        Some("reload") => {
            "reload [FILE]: read FILE (default: the config in use) and apply only what changed; \
             a config with errors changes nothing"
        }
        Some("exit") => "exit: deregister, close listeners and connections, and exit with status 0",
        Some("help") => "help [COMMAND]",
        Some(other) => {
            let commands = super::command::COMMANDS.join(", ");
            return Err(format!("no help for {other:?}; commands: {commands}"));
        }
    }
    .to_string())
}
