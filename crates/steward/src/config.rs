//! The configuration file (issue 16): `steward.toml` in the working folder, or `--config FILE`
//! (`STEWARD_CONFIG`), for everything `steward serve` and the global options take.
//!
//! Precedence, highest first: a flag on the command line, its `STEWARD_*` variable, the file,
//! the built-in default. The file is read before the command line is parsed, and each of its
//! settings that no flag and no variable gives becomes a flag, so clap checks every value the
//! same way wherever it came from. A secret can come from a file of its own (`smtp_url_file`,
//! `database_url_file`, `master_key_file`, or the variables `STEWARD_SMTP_URL_FILE`, …), as
//! container secrets are mounted. A key the file does not know is refused with the nearest
//! one, as the declaration's are.
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! database_url_file = "/run/secrets/steward-database-url"
//! smtp_url_file = "/run/secrets/steward-smtp-url"
//! public_url = "https://privacy.example.com"
//! log_format = "json"
//! metrics_listen = "10.0.0.5:9464"
//! request_rate_email = "5/hour"
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where a setting came from, for `steward serve --print-config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The command line.
    Flag,
    /// A `STEWARD_*` variable.
    Environment,
    /// The configuration file.
    File,
    /// A file named by a `*_file` setting or a `*_FILE` variable.
    SecretFile,
    /// Steward's default.
    Default,
}

impl Source {
    /// How `--print-config` names it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Flag => "command line",
            Self::Environment => "environment",
            Self::File => "configuration file",
            Self::SecretFile => "secret file",
            Self::Default => "default",
        }
    }
}

/// One setting the file may hold: its key, the flag it becomes, the variable that overrides
/// it, whether it belongs to `serve` (else to every command), and whether it is secret.
struct Setting {
    key: &'static str,
    variable: Option<&'static str>,
    serve_only: bool,
    secret: bool,
    /// Its short flag (`-d`), if it has one.
    short: Option<&'static str>,
}

const fn global(key: &'static str, variable: &'static str) -> Setting {
    Setting {
        key,
        variable: Some(variable),
        serve_only: false,
        secret: false,
        short: None,
    }
}

const fn serve(key: &'static str, variable: Option<&'static str>) -> Setting {
    Setting {
        key,
        variable,
        serve_only: true,
        secret: false,
        short: None,
    }
}

/// Every setting, by its key (the flag without `--`, `-` as `_`).
const SETTINGS: &[Setting] = &[
    Setting {
        key: "declaration",
        variable: Some("STEWARD_DECLARATION"),
        serve_only: false,
        secret: false,
        short: Some("-d"),
    },
    global("data_dir", "STEWARD_DATA_DIR"),
    Setting {
        key: "database_url",
        variable: Some("STEWARD_DATABASE_URL"),
        serve_only: false,
        secret: true,
        short: None,
    },
    Setting {
        key: "master_key_file",
        variable: Some("STEWARD_MASTER_KEY_FILE"),
        serve_only: false,
        secret: false,
        short: None,
    },
    serve("listen", Some("STEWARD_LISTEN")),
    serve("trust_forwarded_for", Some("STEWARD_TRUST_FORWARDED_FOR")),
    serve("lookup_rate_ip", Some("STEWARD_LOOKUP_RATE_IP")),
    serve("lookup_rate_identity", Some("STEWARD_LOOKUP_RATE_IDENTITY")),
    serve("signin_rate_ip", Some("STEWARD_SIGNIN_RATE_IP")),
    serve("signin_rate_user", Some("STEWARD_SIGNIN_RATE_USER")),
    serve("consent_rate_ip", Some("STEWARD_CONSENT_RATE_IP")),
    serve("request_rate_ip", Some("STEWARD_REQUEST_RATE_IP")),
    serve("request_rate_email", Some("STEWARD_REQUEST_RATE_EMAIL")),
    serve("auth_failure_rate_ip", Some("STEWARD_AUTH_FAILURE_RATE_IP")),
    serve("max_connections", Some("STEWARD_MAX_CONNECTIONS")),
    serve("header_timeout", Some("STEWARD_HEADER_TIMEOUT")),
    serve("public_url", Some("STEWARD_PUBLIC_URL")),
    Setting {
        key: "smtp_url",
        variable: Some("STEWARD_SMTP_URL"),
        serve_only: true,
        secret: true,
        short: None,
    },
    serve("mail_from", Some("STEWARD_MAIL_FROM")),
    serve("unsubscribe_mailto", Some("STEWARD_UNSUBSCRIBE_MAILTO")),
    serve("webhook_ca", Some("STEWARD_WEBHOOK_CA")),
    serve("watch", Some("STEWARD_WATCH")),
    serve("log_format", Some("STEWARD_LOG_FORMAT")),
    serve("metrics_listen", Some("STEWARD_METRICS_LISTEN")),
];

/// The settings that are switches (`true` or `false`).
const BOOLEANS: &[&str] = &["watch", "trust_forwarded_for"];

/// The secrets that can be read from a file of their own.
const SECRET_FILES: &[(&str, &str)] = &[
    ("database_url", "STEWARD_DATABASE_URL_FILE"),
    ("smtp_url", "STEWARD_SMTP_URL_FILE"),
];

/// The command line with the configuration file folded in, and where each setting came from.
#[derive(Debug, Default)]
pub struct Expanded {
    /// The arguments to parse.
    pub args: Vec<OsString>,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// Settings given by the file or a secret file, by key.
    pub from: Vec<(&'static str, Source)>,
}

fn flag(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// Whether `args` give `--name` (as `--name`, `--name=…`).
fn given(args: &[OsString], name: &str) -> bool {
    args.iter().any(|a| {
        a.to_str()
            .is_some_and(|a| a == name || a.strip_prefix(name).is_some_and(|r| r.starts_with('=')))
    })
}

/// Whether a flag or a variable already gives `key`'s value (or it does not apply to this
/// command), so that the file's value — or a secret file — is not needed.
fn overridden(args: &[OsString], key: &str, serving: bool) -> bool {
    SETTINGS.iter().find(|s| s.key == key).is_none_or(|s| {
        given(args, &flag(key))
            || s.short.is_some_and(|short| given(args, short))
            || set(s.variable)
            || (s.serve_only && !serving)
    })
}

fn set(variable: Option<&str>) -> bool {
    variable.is_some_and(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

/// Folds the configuration file (and secret files) into `args`.
///
/// # Errors
/// A file named but unreadable, not TOML, a key it does not know (with the nearest known one),
/// or a value that is neither a string, a number nor a boolean — each naming the file.
pub fn expand(args: Vec<OsString>) -> Result<Expanded, String> {
    let mut out = Expanded {
        args,
        ..Expanded::default()
    };
    let named = value_of(&out.args, "--config")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("STEWARD_CONFIG").map(PathBuf::from));
    let path = match named {
        Some(p) => Some(p),
        None => Some(PathBuf::from("steward.toml")).filter(|p| p.is_file()),
    };
    // Whether the command is `serve`: its settings go after it.
    let serving = subcommand(&out.args) == Some("serve");
    let mut globals: Vec<OsString> = Vec::new();
    let mut served: Vec<OsString> = Vec::new();
    let mut add = |out: &mut Expanded, key: &'static str, value: String, source: Source| {
        let Some(setting) = SETTINGS.iter().find(|s| s.key == key) else {
            return;
        };
        // A stronger source came first (a secret file named by a variable beats the file).
        if overridden(&out.args, key, serving) || out.from.iter().any(|(k, _)| *k == key) {
            return;
        }
        let target = if setting.serve_only {
            &mut served
        } else {
            &mut globals
        };
        if BOOLEANS.contains(&key) {
            // A switch: `true` turns it on, anything else leaves it off.
            if value == "true" {
                target.push(flag(key).into());
            }
        } else {
            target.push(format!("{}={value}", flag(key)).into());
        }
        out.from.push((key, source));
    };
    // Secrets from files named by variables, as container secrets are mounted: a variable
    // beats the configuration file, so these come first.
    for (key, variable) in SECRET_FILES {
        if overridden(&out.args, key, serving) {
            continue;
        }
        if let Some(file) = std::env::var_os(variable).filter(|v| !v.is_empty()) {
            let read = read_secret(Path::new(&file)).map_err(|e| format!("{variable}: {e}"))?;
            add(&mut out, key, read, Source::SecretFile);
        }
    }
    if let Some(path) = path {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the configuration file {}: {e}", path.display()))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| format!("{}: not valid TOML: {e}", path.display()))?;
        for (secret, _) in SECRET_FILES {
            if table.contains_key(*secret) && table.contains_key(&format!("{secret}_file")) {
                return Err(format!(
                    "{}: both `{secret}` and `{secret}_file` are set: keep one (the file, to keep the secret out of the configuration)",
                    path.display()
                ));
            }
        }
        for (key, value) in &table {
            let value = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "{}: `{key}` is a {}, where a string, a number or true/false is expected",
                        path.display(),
                        other.type_str()
                    ));
                }
            };
            if let Some((secret, _)) = SECRET_FILES
                .iter()
                .find(|(s, _)| key.strip_suffix("_file") == Some(s))
            {
                // Read only when nothing stronger gives the value.
                if !overridden(&out.args, secret, serving)
                    && !out.from.iter().any(|(k, _)| k == secret)
                {
                    let read = read_secret(Path::new(&value))
                        .map_err(|e| format!("{}: `{key}`: {e}", path.display()))?;
                    add(&mut out, secret, read, Source::SecretFile);
                }
                continue;
            }
            if BOOLEANS.contains(&key.as_str()) && !matches!(value.as_str(), "true" | "false") {
                return Err(format!(
                    "{}: `{key}` is a switch: write `{key} = true` or `{key} = false`",
                    path.display()
                ));
            }
            let Some(setting) = SETTINGS.iter().find(|s| s.key == key) else {
                let files: Vec<String> = SECRET_FILES
                    .iter()
                    .map(|(s, _)| format!("{s}_file"))
                    .collect();
                let candidates: Vec<&str> = SETTINGS
                    .iter()
                    .map(|s| s.key)
                    .chain(files.iter().map(String::as_str))
                    .collect();
                let hint = steward_policy::suggest::nearest(key, candidates.iter().copied())
                    .map(|n| format!(" — did you mean `{n}`?"))
                    .unwrap_or_default();
                return Err(format!(
                    "{}: `{key}` is not a setting{hint} (settings: {})",
                    path.display(),
                    candidates.join(", ")
                ));
            };
            add(&mut out, setting.key, value, Source::File);
        }
        out.file = Some(path);
    }
    // Global flags right after the program's name, serve's at the end.
    let mut args = Vec::with_capacity(out.args.len() + globals.len() + served.len());
    let mut rest = std::mem::take(&mut out.args).into_iter();
    args.extend(rest.next());
    args.extend(globals);
    args.extend(rest);
    args.extend(served);
    out.args = args;
    Ok(out)
}

/// When clap refuses a value the configuration file (or a secret file) gave, the same refusal
/// told in the file's words: its path and key instead of a flag the operator never typed.
pub fn blame(expanded: &Expanded, error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let flag = arg.split_whitespace().next()?;
    let key = flag.strip_prefix("--")?.replace('-', "_");
    let (key, source) = expanded.from.iter().find(|(k, _)| *k == key)?;
    let place = match (source, &expanded.file) {
        (Source::File, Some(file)) => format!("{}: `{key}`", file.display()),
        _ => format!("the secret file for `{key}`"),
    };
    let rendered = error.render().to_string();
    let mut lines = rendered
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("For more information"))
        .map(|l| {
            l.trim_start_matches("error: ")
                .replace(&format!("for '{arg}'"), "here")
        });
    let first = lines.next()?;
    let rest: Vec<String> = lines.collect();
    Some(format!(
        "{place}: {first}{}",
        if rest.is_empty() {
            String::new()
        } else {
            format!("\n{}", rest.join("\n"))
        }
    ))
}

/// The command named (`serve`, `check` …): the first word that is neither a flag nor the
/// value of a global flag before it (`-d FILE serve`), so that `--purpose serve` is not it.
fn subcommand(args: &[OsString]) -> Option<&str> {
    const TAKES_VALUE: &[&str] = &[
        "-d",
        "--declaration",
        "--data-dir",
        "--database-url",
        "--master-key-file",
        "--config",
    ];
    let mut words = args.iter().skip(1).filter_map(|a| a.to_str());
    while let Some(word) = words.next() {
        if TAKES_VALUE.contains(&word) {
            words.next();
        } else if !word.starts_with('-') {
            return Some(word);
        }
    }
    None
}

/// The value of `--name VALUE` or `--name=VALUE` in `args`.
fn value_of(args: &[OsString], name: &str) -> Option<OsString> {
    let mut iter = args.iter();
    while let Some(a) = iter.next() {
        let Some(text) = a.to_str() else { continue };
        if text == name {
            return iter.next().cloned();
        }
        if let Some(v) = text.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return Some(v.into());
        }
    }
    None
}

/// A secret file's one line, without the line break editors leave at its end. Only a regular
/// file of at most [`MAX_SECRET_FILE`] bytes is read: a device or a pipe could never end.
///
/// # Errors
/// Not a regular file, unreadable, too large, empty, or more than one line — named.
pub fn read_secret(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SECRET_FILE + 1).read_to_string(&mut text))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.len() as u64 > MAX_SECRET_FILE {
        return Err(format!(
            "{} is larger than {MAX_SECRET_FILE} bytes: it holds one secret",
            path.display()
        ));
    }
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    if value.contains(['\n', '\r']) {
        return Err(format!(
            "{} has more than one line: it holds one secret",
            path.display()
        ));
    }
    Ok(value.to_owned())
}

/// The largest secret file read, in bytes.
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

/// A URL with its credentials hidden: everything before the host's `@` and any query become
/// `****` (`postgres://****@db/steward?****`), since a user name can be a token and a query can
/// carry a password. Anything that is not a `scheme://` URL is `****` whole.
pub fn mask(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else {
        return "****".to_owned();
    };
    // The credentials end at the last `@` (a typed password may hold `/`, `?` or `@`); hiding
    // too much is safe, showing a secret is not.
    let (credentials, after) = match rest.rsplit_once('@') {
        Some((_, after)) => ("****@", after),
        None => ("", rest),
    };
    let (host_and_path, query) = match after.split_once('?') {
        Some((host, _)) => (host, "?****"),
        None => (after, ""),
    };
    format!("{scheme}://{credentials}{host_and_path}{query}")
}

/// Whether `key` names a secret (masked when printed).
pub fn is_secret(key: &str) -> bool {
    SETTINGS.iter().any(|s| s.key == key && s.secret)
}

#[cfg(test)]
mod tests {
    use super::{mask, subcommand};

    #[test]
    fn the_command_is_the_first_word_no_flag_takes() {
        let args = |words: &[&str]| -> Vec<std::ffi::OsString> {
            words.iter().map(std::ffi::OsString::from).collect()
        };
        assert_eq!(
            subcommand(&args(&["steward", "-d", "p.toml", "serve"])),
            Some("serve")
        );
        assert_eq!(
            subcommand(&args(&["steward", "import", "--purpose", "serve", "f.csv"])),
            Some("import")
        );
        assert_eq!(subcommand(&args(&["steward", "--help"])), None);
    }

    #[test]
    fn a_masked_url_shows_no_credentials_and_no_query() {
        for (url, shown) in [
            (
                "postgres://app:s3cret@db/steward",
                "postgres://****@db/steward",
            ),
            (
                "postgres://app@db.example:5432?password=X",
                "postgres://****@db.example:5432?****",
            ),
            (
                "smtp://mail.example:587?password=Q&tls=required",
                "smtp://mail.example:587?****",
            ),
            ("smtps://user:pa/ss@host:465", "smtps://****@host:465"),
            ("smtps://u:pa?ss@host", "smtps://****@host"),
            ("smtps://TOKEN@host", "smtps://****@host"),
            ("host=db password=x", "****"),
        ] {
            assert_eq!(mask(url), shown, "{url}");
        }
    }
}
