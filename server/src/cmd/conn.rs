//! Connection and server commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT,
//! CONFIG, INFO, COMMAND, TIME, SHUTDOWN, the transaction commands (MULTI, EXEC, DISCARD,
//! WATCH, UNWATCH), FUNCTION FLUSH, LASTSAVE. They need the client's state, so the
//! connection runs them.

use std::rc::Rc;

use super::table::{Cmd, Spec, TABLE};
use super::Flow;
use crate::config;
use crate::connection::Client;
use crate::db::committer::{submit, Job};
use crate::db::Txn;
use crate::protocol::{Args, Reply};
use crate::server::Shared;

/// The version Redis clients are told (`redis_version`, HELLO's `version`): the Redis
/// release whose commands and replies this server follows.
pub(crate) const REDIS_VERSION: &str = "7.0.15";

/// True for the connection commands MULTI may queue (the rest are refused when queued).
pub(crate) fn allowed_in_multi(cmd: Cmd) -> bool {
    matches!(
        cmd,
        Cmd::Ping | Cmd::Echo | Cmd::Time | Cmd::Select | Cmd::Lastsave
    )
}

/// Runs a connection command queued in MULTI, inside EXEC.
pub(crate) fn in_exec(_txn: &mut Txn<'_>, cmd: Cmd, a: &Args<'_>, _now: u64) -> Reply {
    match cmd {
        Cmd::Ping => ping(a),
        Cmd::Echo => Reply::bulk(a.get(1)),
        Cmd::Time => time(),
        Cmd::Select => select(a.get(1)),
        Cmd::Lastsave => lastsave(),
        _ => Reply::err("Command not allowed inside a transaction"),
    }
}

fn ping(a: &Args<'_>) -> Reply {
    match a.len() {
        1 => Reply::Status("PONG"),
        2 => Reply::bulk(a.get(1)),
        _ => Reply::wrong_args(a.get(0)),
    }
}

fn time() -> Reply {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Reply::Array(vec![
        Reply::Bulk(Some(d.as_secs().to_string().into_bytes())),
        Reply::Bulk(Some(d.subsec_micros().to_string().into_bytes())),
    ])
}

fn lastsave() -> Reply {
    // Every acknowledged write is durable: the last "save" is now.
    Reply::Int(crate::db::now_ms() as i64 / 1000)
}

fn select(index: &[u8]) -> Reply {
    match super::int(index) {
        Some(0) => Reply::OK,
        Some(_) => Reply::err("DB index is out of range"),
        None => Reply::not_integer(),
    }
}

fn unknown_sub(a: &Args<'_>) -> Reply {
    Reply::err(format!(
        "unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(a.get(1)),
        String::from_utf8_lossy(a.get(0)).to_uppercase()
    ))
}

/// Runs a connection command.
pub(crate) async fn execute(
    shared: &Rc<Shared>,
    client: &mut Client,
    spec: &Spec,
    a: &Args<'_>,
) -> (Reply, Flow) {
    let reply = match spec.cmd {
        Cmd::Ping => ping(a),
        Cmd::Echo => Reply::bulk(a.get(1)),
        Cmd::Time => time(),
        Cmd::Lastsave => lastsave(),
        Cmd::Select => select(a.get(1)),
        Cmd::Hello => hello(shared, client, a),
        Cmd::Auth => auth(shared, client, a),
        Cmd::Quit => return (Reply::OK, Flow::Close),
        Cmd::Reset => {
            discard(shared, client);
            client.resp3 = false;
            client.info.resp.set(2);
            client.info.name.borrow_mut().clear();
            client.authed = shared.config.borrow().requirepass.is_none();
            Reply::Status("RESET")
        }
        Cmd::Shutdown => {
            // Every acknowledged write is already durable: stop accepting and exit.
            shared.shut_down();
            return (Reply::OK, Flow::Close);
        }
        Cmd::Client => return client_cmd(shared, client, a),
        Cmd::Config => config_cmd(shared, a),
        Cmd::Info => {
            let sections: Vec<&[u8]> = a.iter_from(1).collect();
            Reply::Verbatim("txt", crate::info::render(shared, &sections).into_bytes())
        }
        Cmd::Command => command(a),
        Cmd::Function => match a.get(1).to_ascii_uppercase().as_slice() {
            b"FLUSH" => Reply::OK,
            b"LIST" => Reply::Array(Vec::new()),
            _ => unknown_sub(a),
        },
        Cmd::Multi => {
            if client.multi.is_some() {
                Reply::err("MULTI calls can not be nested")
            } else {
                client.multi = Some(Vec::new());
                client.info.multi.set(0);
                Reply::OK
            }
        }
        Cmd::Discard => {
            if client.multi.is_none() {
                Reply::err("DISCARD without MULTI")
            } else {
                discard(shared, client);
                Reply::OK
            }
        }
        Cmd::Exec => match client.multi.take() {
            None => Reply::err("EXEC without MULTI"),
            Some(queue) => {
                let failed = client.multi_failed;
                client.end_multi();
                if failed {
                    shared.watches.unwatch(&client.watch);
                    Reply::Error(
                        "EXECABORT Transaction discarded because of previous errors.".into(),
                    )
                } else {
                    let watch = client.watch.clone();
                    submit(shared, Job::Exec { queue, watch }).await
                }
            }
        },
        Cmd::Watch => {
            if client.multi.is_some() {
                Reply::err("WATCH inside MULTI is not allowed")
            } else {
                let job = Job::Watch {
                    args: a.to_owned(),
                    watch: client.watch.clone(),
                };
                submit(shared, job).await
            }
        }
        Cmd::Unwatch => {
            shared.watches.unwatch(&client.watch);
            Reply::OK
        }
        _ => Reply::err("not a connection command"),
    };
    (reply, Flow::Continue)
}

/// Leaves MULTI and forgets WATCHed keys.
fn discard(shared: &Shared, client: &mut Client) {
    client.end_multi();
    shared.watches.unwatch(&client.watch);
}

fn check_password(shared: &Shared, user: &[u8], pass: &[u8]) -> bool {
    let c = shared.config.borrow();
    user == b"default"
        && c.requirepass
            .as_deref()
            .is_some_and(|p| p.as_bytes() == pass)
}

fn auth(shared: &Shared, client: &mut Client, a: &Args<'_>) -> Reply {
    if a.len() > 3 {
        return Reply::syntax();
    }
    if shared.config.borrow().requirepass.is_none() {
        return Reply::err(
            "AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        );
    }
    let (user, pass) = if a.len() == 3 {
        (a.get(1), a.get(2))
    } else {
        (&b"default"[..], a.get(1))
    };
    if check_password(shared, user, pass) {
        client.authed = true;
        Reply::OK
    } else {
        Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into())
    }
}

fn hello(shared: &Shared, client: &mut Client, a: &Args<'_>) -> Reply {
    let mut version = None;
    let mut i = 1;
    if a.len() >= 2 {
        match super::int(a.get(1)) {
            Some(v @ 2..=3) => version = Some(v),
            Some(_) => return Reply::Error("NOPROTO unsupported protocol version".into()),
            None => return Reply::err("Protocol version is not an integer or out of range"),
        }
        i = 2;
    }
    let mut name = None;
    while i < a.len() {
        let opt = a.get(i).to_ascii_uppercase();
        let left = a.len() - i - 1;
        match opt.as_slice() {
            b"AUTH" if left >= 2 => {
                if !check_password(shared, a.get(i + 1), a.get(i + 2)) {
                    return Reply::Error(
                        "WRONGPASS invalid username-password pair or user is disabled.".into(),
                    );
                }
                client.authed = true;
                i += 3;
            }
            b"SETNAME" if left >= 1 => {
                let n = a.get(i + 1);
                if n.iter().any(|&b| b <= b' ' || b > b'~') {
                    return Reply::err(
                        "Client names cannot contain spaces, newlines or special characters.",
                    );
                }
                name = Some(n.to_vec());
                i += 2;
            }
            _ => {
                return Reply::err(format!(
                    "Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(a.get(i))
                ))
            }
        }
    }
    if !client.authed {
        return Reply::Error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time"
                .into(),
        );
    }
    if let Some(n) = name {
        *client.info.name.borrow_mut() = n;
    }
    if let Some(v) = version {
        client.resp3 = v == 3;
        client.info.resp.set(v as u8);
    }
    let s = |t: &str| Reply::Bulk(Some(t.as_bytes().to_vec()));
    Reply::Map(vec![
        (s("server"), s("redis")),
        (s("version"), s(REDIS_VERSION)),
        (s("proto"), Reply::Int(if client.resp3 { 3 } else { 2 })),
        (s("id"), Reply::Int(client.info.id as i64)),
        (s("mode"), s("standalone")),
        (s("role"), s("master")),
        (s("modules"), Reply::Array(Vec::new())),
    ])
}

fn client_cmd(shared: &Rc<Shared>, client: &mut Client, a: &Args<'_>) -> (Reply, Flow) {
    let sub = a.get(1).to_ascii_uppercase();
    let info = &client.info;
    let reply = match (sub.as_slice(), a.len()) {
        (b"ID", 2) => Reply::Int(info.id as i64),
        (b"GETNAME", 2) => {
            let n = info.name.borrow();
            if n.is_empty() {
                Reply::Null
            } else {
                Reply::bulk(&n)
            }
        }
        (b"SETNAME", 3) => {
            let n = a.get(2);
            if n.iter().any(|&b| b <= b' ' || b > b'~') {
                Reply::err("Client names cannot contain spaces, newlines or special characters.")
            } else {
                *info.name.borrow_mut() = n.to_vec();
                Reply::OK
            }
        }
        (b"SETINFO", 4) => match a.get(2).to_ascii_uppercase().as_slice() {
            b"LIB-NAME" => {
                *info.lib_name.borrow_mut() = a.get(3).to_vec();
                Reply::OK
            }
            b"LIB-VER" => {
                *info.lib_ver.borrow_mut() = a.get(3).to_vec();
                Reply::OK
            }
            _ => Reply::err(format!(
                "Unrecognized option '{}'",
                String::from_utf8_lossy(a.get(2))
            )),
        },
        (b"INFO", 2) => Reply::Verbatim("txt", format!("{}\n", info.line()).into_bytes()),
        (b"LIST", _) => {
            let ids: Option<Vec<u64>> = match a.len() {
                2 => None,
                n if n >= 4 && a.get(2).eq_ignore_ascii_case(b"ID") => {
                    match a
                        .iter_from(3)
                        .map(|x| super::int(x).map(|v| v as u64))
                        .collect()
                    {
                        Some(v) => Some(v),
                        None => return (Reply::err("Invalid client ID"), Flow::Continue),
                    }
                }
                4 if a.get(2).eq_ignore_ascii_case(b"TYPE") => None,
                _ => return (Reply::syntax(), Flow::Continue),
            };
            let text: String = shared
                .clients
                .borrow()
                .values()
                .filter(|c| ids.as_ref().is_none_or(|ids| ids.contains(&c.id)))
                .map(|c| format!("{}\n", c.line()))
                .collect();
            Reply::Verbatim("txt", text.into_bytes())
        }
        (b"KILL", n) if n >= 3 => return client_kill(shared, client, a),
        (b"NO-EVICT" | b"NO-TOUCH", 3) => Reply::OK,
        (b"HELP", 2) => Reply::Array(
            [
                "CLIENT <subcommand>",
                "ID",
                "INFO",
                "LIST [ID id ...]",
                "KILL <ip:port> | ID <id> | ADDR <ip:port> | LADDR <ip:port> | SKIPME yes|no",
                "GETNAME",
                "SETNAME <name>",
                "SETINFO LIB-NAME|LIB-VER <value>",
            ]
            .iter()
            .map(|s| Reply::Simple(s.to_string()))
            .collect(),
        ),
        _ => Reply::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(a.get(1))
        )),
    };
    (reply, Flow::Continue)
}

fn client_kill(shared: &Rc<Shared>, client: &mut Client, a: &Args<'_>) -> (Reply, Flow) {
    let old_style = a.len() == 3;
    let (mut id, mut addr, mut laddr, mut skipme) = (None, None, None, true);
    if old_style {
        addr = Some(a.get(2).to_vec());
    } else {
        let mut i = 2;
        while i + 1 < a.len() {
            let v = a.get(i + 1);
            match a.get(i).to_ascii_uppercase().as_slice() {
                b"ID" => match super::int(v) {
                    Some(n) if n > 0 => id = Some(n as u64),
                    _ => {
                        return (
                            Reply::err("client-id should be greater than 0"),
                            Flow::Continue,
                        )
                    }
                },
                b"ADDR" => addr = Some(v.to_vec()),
                b"LADDR" => laddr = Some(v.to_vec()),
                b"SKIPME" => match v.to_ascii_lowercase().as_slice() {
                    b"yes" => skipme = true,
                    b"no" => skipme = false,
                    _ => return (Reply::syntax(), Flow::Continue),
                },
                b"TYPE" | b"USER" | b"MAXAGE" => {}
                _ => return (Reply::syntax(), Flow::Continue),
            }
            i += 2;
        }
        if i != a.len() {
            return (Reply::syntax(), Flow::Continue);
        }
    }
    let me = client.info.id;
    let targets: Vec<Rc<crate::connection::ClientInfo>> = shared
        .clients
        .borrow()
        .values()
        .filter(|c| id.is_none_or(|i| c.id == i))
        .filter(|c| {
            addr.as_ref()
                .is_none_or(|x| c.addr.as_bytes() == x.as_slice())
        })
        .filter(|c| {
            laddr
                .as_ref()
                .is_none_or(|x| c.laddr.as_bytes() == x.as_slice())
        })
        .filter(|c| old_style || !(skipme && c.id == me))
        .cloned()
        .collect();
    let mut close_self = false;
    for t in &targets {
        if t.id == me {
            close_self = true;
        } else {
            crate::connection::kill(t);
        }
    }
    let flow = if close_self {
        Flow::Close
    } else {
        Flow::Continue
    };
    if old_style {
        if targets.is_empty() {
            (Reply::err("No such client"), Flow::Continue)
        } else {
            (Reply::OK, flow)
        }
    } else {
        (Reply::Int(targets.len() as i64), flow)
    }
}

fn config_cmd(shared: &Shared, a: &Args<'_>) -> Reply {
    match a.get(1).to_ascii_uppercase().as_slice() {
        b"GET" if a.len() >= 3 => {
            let patterns: Vec<&[u8]> = a.iter_from(2).collect();
            let pairs = config::get(&shared.config.borrow(), &shared.options, &patterns);
            Reply::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            Reply::Bulk(Some(k.into_bytes())),
                            Reply::Bulk(Some(v.into_bytes())),
                        )
                    })
                    .collect(),
            )
        }
        b"SET" if a.len() >= 4 && a.len() % 2 == 0 => {
            // All or nothing, as Redis 7: apply to a copy, then keep it.
            let mut c = shared.config.borrow().clone();
            let mut i = 2;
            while i + 1 < a.len() {
                if let Err(why) = config::set(&mut c, a.get(i), a.get(i + 1)) {
                    return Reply::err(why);
                }
                i += 2;
            }
            *shared.config.borrow_mut() = c;
            Reply::OK
        }
        b"RESETSTAT" if a.len() == 2 => {
            let s = &shared.stats;
            s.per_command.borrow_mut().clear();
            s.errors.borrow_mut().clear();
            s.expired_keys.set(0);
            s.keyspace_hits.set(0);
            s.keyspace_misses.set(0);
            Reply::OK
        }
        b"REWRITE" => Reply::err("The server is running without a config file"),
        b"HELP" => Reply::Array(
            [
                "CONFIG <subcommand>",
                "GET <pattern>",
                "SET <parameter> <value>",
                "RESETSTAT",
            ]
            .iter()
            .map(|s| Reply::Simple(s.to_string()))
            .collect(),
        ),
        _ => Reply::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(a.get(1))
        )),
    }
}

fn flags_reply(spec: &Spec) -> Reply {
    Reply::Set(
        spec.flags
            .iter()
            .map(|f| Reply::Simple(f.to_string()))
            .collect(),
    )
}

fn command_info(spec: &Spec) -> Reply {
    let (f, l, s) = spec.keys;
    Reply::Array(vec![
        Reply::bulk(spec.name.as_bytes()),
        Reply::Int(spec.arity as i64),
        flags_reply(spec),
        Reply::Int(f as i64),
        Reply::Int(l as i64),
        Reply::Int(s as i64),
        Reply::Set(vec![Reply::Simple(format!("@{}", spec.group))]),
        Reply::Set(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
    ])
}

fn command_docs(spec: &Spec) -> Reply {
    let s = |t: &str| Reply::Bulk(Some(t.as_bytes().to_vec()));
    Reply::Map(vec![
        (s("summary"), s(spec.summary)),
        (s("since"), s("1.0.0")),
        (s("group"), s(spec.group)),
    ])
}

/// COMMAND, COMMAND COUNT/INFO/DOCS/LIST/GETKEYS, from the table.
fn command(a: &Args<'_>) -> Reply {
    if a.len() == 1 {
        return Reply::Array(TABLE.iter().map(command_info).collect());
    }
    let named = |f: fn(&Spec) -> Reply| -> Vec<Reply> {
        a.iter_from(2)
            .map(|n| super::lookup(n).map_or(Reply::Null, f))
            .collect()
    };
    match a.get(1).to_ascii_uppercase().as_slice() {
        b"COUNT" => Reply::Int(TABLE.len() as i64),
        b"INFO" if a.len() == 2 => Reply::Array(TABLE.iter().map(command_info).collect()),
        b"INFO" => Reply::Array(named(command_info)),
        b"DOCS" => {
            let specs: Vec<&Spec> = if a.len() == 2 {
                TABLE.iter().collect()
            } else {
                a.iter_from(2).filter_map(super::lookup).collect()
            };
            Reply::Map(
                specs
                    .into_iter()
                    .map(|s| (Reply::bulk(s.name.as_bytes()), command_docs(s)))
                    .collect(),
            )
        }
        b"LIST" => Reply::Array(
            TABLE
                .iter()
                .map(|s| Reply::bulk(s.name.as_bytes()))
                .collect(),
        ),
        b"GETKEYS" if a.len() >= 3 => {
            let inner: Vec<&[u8]> = a.iter_from(2).collect();
            match super::lookup(inner[0]) {
                None => Reply::err("Invalid command specified"),
                Some(spec) if !spec.arity_ok(inner.len()) => {
                    Reply::err("Invalid number of arguments specified for command")
                }
                Some(spec) => {
                    let keys: Vec<Reply> = spec
                        .key_positions(inner.len())
                        .map(|i| Reply::bulk(inner[i]))
                        .collect();
                    if keys.is_empty() {
                        Reply::err("The command has no key arguments")
                    } else {
                        Reply::Array(keys)
                    }
                }
            }
        }
        b"HELP" => Reply::Array(
            [
                "COMMAND <subcommand>",
                "COUNT",
                "INFO [<command-name> ...]",
                "DOCS [<command-name> ...]",
                "LIST",
                "GETKEYS <full-command>",
            ]
            .iter()
            .map(|s| Reply::Simple(s.to_string()))
            .collect(),
        ),
        _ => unknown_sub(a),
    }
}
