//! CONFIG GET/SET: the server's parameters under Redis's names.
//!
//! Each parameter is a row of [`PARAMS`]: its names (Redis's, and aliases such as
//! `hash-max-ziplist-entries`), how to read it, and how to set it if it can be set while the
//! server runs. Options fixed at start (port, bind, the store file) read as they are and refuse
//! `CONFIG SET` as Redis does for immutable parameters.

use crate::glob::Pattern;
use crate::options::Options;

/// The parameters that can change while the server runs (the rest are the [`Options`]).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) timeout: u64,
    pub(crate) maxclients: usize,
    pub(crate) requirepass: Option<String>,
    pub(crate) protected_mode: bool,
    pub(crate) hash_max_listpack_entries: usize,
    pub(crate) hash_max_listpack_value: usize,
    pub(crate) set_max_intset_entries: usize,
    pub(crate) zset_max_listpack_entries: usize,
    pub(crate) hz: u64,
}

impl Config {
    /// The run-time parameters as the options set them at start.
    pub(crate) fn new(o: &Options, maxclients: usize) -> Config {
        Config {
            timeout: o.timeout,
            maxclients,
            requirepass: o.requirepass.clone().filter(|p| !p.is_empty()),
            protected_mode: o.protected_mode == "yes",
            hash_max_listpack_entries: 128,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            hz: 10,
        }
    }
}

type Getter = fn(&Config, &Options) -> String;
type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// One parameter: its names (the first is canonical), how to read it, how to set it.
pub(crate) struct Param {
    names: &'static [&'static str],
    get: Getter,
    set: Option<Setter>,
}

fn number<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| "argument couldn't be parsed into an integer".to_string())
}

fn yes_no(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

macro_rules! param {
    ([$($n:literal),*], |$c:ident, $o:ident| $get:expr) => {
        Param { names: &[$($n),*], get: |$c, $o| { let _ = (&$c, &$o); $get }, set: None }
    };
    ([$($n:literal),*], |$c:ident, $o:ident| $get:expr, |$sc:ident, $v:ident| $set:expr) => {
        Param {
            names: &[$($n),*],
            get: |$c, $o| { let _ = (&$c, &$o); $get },
            set: Some(|$sc, $v| { $set; Ok(()) }),
        }
    };
}

/// Every parameter CONFIG knows.
pub(crate) const PARAMS: &[Param] = &[
    param!(["port"], |c, o| o.port.to_string()),
    param!(["bind"], |c, o| o.bind.clone()),
    param!(["dir"], |c, o| o
        .data
        .parent()
        .map_or(".".into(), |p| p.display().to_string())),
    param!(["dbfilename"], |c, o| o
        .data
        .file_name()
        .map_or(String::new(), |f| f.to_string_lossy().into_owned())),
    param!(["appendfsync"], |c, o| o.appendfsync().to_string()),
    param!(["appendonly"], |c, o| "no".into()),
    param!(["save"], |c, o| String::new()),
    param!(["databases"], |c, o| "1".into()),
    param!(["maxmemory"], |c, o| "0".into()),
    param!(["maxmemory-policy"], |c, o| "noeviction".into()),
    param!(["proto-max-bulk-len"], |c, o| o.max_request.to_string()),
    param!(["client-query-buffer-limit"], |c, o| o
        .max_request
        .to_string()),
    param!(["timeout"], |c, o| c.timeout.to_string(), |c, v| c
        .timeout =
        number(v)?),
    param!(["maxclients"], |c, o| c.maxclients.to_string(), |c, v| {
        let n: usize = number(v)?;
        if n == 0 {
            return Err("argument must be between 1 and 4294967295 inclusive".into());
        }
        c.maxclients = n;
    }),
    param!(
        ["requirepass"],
        |c, o| c.requirepass.clone().unwrap_or_default(),
        |c, v| {
            c.requirepass = (!v.is_empty()).then(|| v.to_string());
        }
    ),
    param!(["protected-mode"], |c, o| yes(c.protected_mode), |c, v| c
        .protected_mode =
        yes_no(v)?),
    param!(
        ["hash-max-listpack-entries", "hash-max-ziplist-entries"],
        |c, o| c.hash_max_listpack_entries.to_string(),
        |c, v| c.hash_max_listpack_entries = number(v)?
    ),
    param!(
        ["hash-max-listpack-value", "hash-max-ziplist-value"],
        |c, o| c.hash_max_listpack_value.to_string(),
        |c, v| c.hash_max_listpack_value = number(v)?
    ),
    param!(
        ["set-max-intset-entries"],
        |c, o| c.set_max_intset_entries.to_string(),
        |c, v| c.set_max_intset_entries = number(v)?
    ),
    param!(
        ["zset-max-listpack-entries", "zset-max-ziplist-entries"],
        |c, o| c.zset_max_listpack_entries.to_string(),
        |c, v| c.zset_max_listpack_entries = number(v)?
    ),
    param!(["hz"], |c, o| c.hz.to_string(), |c, v| c.hz = number(v)?),
    param!(["lazyfree-lazy-user-del"], |c, o| "no".into()),
    param!(["sanitize-dump-payload"], |c, o| "no".into()),
];

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// Every parameter whose canonical name or alias matches one of `patterns`, with its value
/// (each once, under the name that matched).
pub(crate) fn get(config: &Config, options: &Options, patterns: &[&[u8]]) -> Vec<(String, String)> {
    let compiled: Vec<(Pattern, bool)> = patterns
        .iter()
        .map(|p| {
            (
                Pattern::new(&p.to_ascii_lowercase(), 64),
                !p.iter().any(|b| b"*?[".contains(b)),
            )
        })
        .collect();
    let mut out: Vec<(String, String)> = Vec::new();
    for p in PARAMS {
        for name in p.names {
            let mut steps = 0;
            if compiled
                .iter()
                .any(|(pat, _)| pat.matches(name.as_bytes(), &mut steps))
                && !out.iter().any(|(n, _)| n == name)
            {
                out.push((name.to_string(), (p.get)(config, options)));
                // A glob names a parameter once, by its canonical name.
                if compiled.iter().all(|(_, exact)| !exact) {
                    break;
                }
            }
        }
    }
    out
}

/// Sets parameter `name` to `value`, or says why not (Redis's wording).
pub(crate) fn set(config: &mut Config, name: &[u8], value: &[u8]) -> Result<(), String> {
    let lname = String::from_utf8_lossy(name).to_ascii_lowercase();
    let Some(p) = PARAMS.iter().find(|p| p.names.contains(&lname.as_str())) else {
        return Err(format!(
            "Unknown option or number of arguments for CONFIG SET - '{lname}'"
        ));
    };
    let Some(setter) = p.set else {
        return Err(format!(
            "CONFIG SET failed (possibly related to argument '{lname}') - can't set immutable config"
        ));
    };
    let value = String::from_utf8_lossy(value);
    setter(config, &value).map_err(|why| {
        format!("CONFIG SET failed (possibly related to argument '{lname}') - {why}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_and_set_by_redis_names() {
        let o = Options::default();
        let mut c = Config::new(&o, 100);
        assert_eq!(
            get(&c, &o, &[b"port"]),
            [("port".to_string(), "6380".to_string())]
        );
        assert_eq!(get(&c, &o, &[b"appendfsync"])[0].1, o.appendfsync());
        assert!(get(&c, &o, &[b"nosuch"]).is_empty());
        assert!(get(&c, &o, &[b"*"]).len() >= PARAMS.len());
        set(&mut c, b"hash-max-ziplist-entries", b"7").unwrap();
        assert_eq!(get(&c, &o, &[b"hash-max-listpack-entries"])[0].1, "7");
        assert_eq!(get(&c, &o, &[b"hash-max-ziplist-entries"])[0].1, "7");
        set(&mut c, b"TIMEOUT", b"5").unwrap();
        assert_eq!(c.timeout, 5);
        assert!(set(&mut c, b"port", b"1")
            .unwrap_err()
            .contains("immutable"));
        assert!(set(&mut c, b"nosuch", b"1")
            .unwrap_err()
            .contains("Unknown option"));
        assert!(set(&mut c, b"timeout", b"x").is_err());
        set(&mut c, b"requirepass", b"secret").unwrap();
        assert_eq!(c.requirepass.as_deref(), Some("secret"));
    }
}
