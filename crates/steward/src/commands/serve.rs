//! `steward serve`: publish the notice over HTTP until interrupted.

use crate::Outcome;
use crate::cli::{Global, ServeArgs};
use crate::output;

pub fn run(global: &Global, args: &ServeArgs) -> Outcome {
    if let Err(e) = steward_server::telemetry::init_logging(args.log_format) {
        output::stderr(&format!("error: {e}"));
        return Outcome::Invalid;
    }
    let (_, declaration) = match super::valid_declaration(&global.declaration) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    // Settings are checked before anything is created (the data folder, a master key).
    if let Err(e) = read_logo(&global.declaration, &declaration) {
        output::stderr(&format!("error: {e}"));
        return Outcome::Unreadable;
    }
    let webhooks = match &args.webhook_ca {
        Some(path) => match steward_server::requests::HttpNotifier::from_ca_file(path) {
            Ok(n) => n,
            Err(e) => {
                output::stderr(&format!(
                    "error: {e}\n  = help: --webhook-ca (or STEWARD_WEBHOOK_CA, or webhook_ca in the configuration file) names a PEM file of CA certificates"
                ));
                return Outcome::Unreadable;
            }
        },
        None => steward_server::requests::HttpNotifier::new(),
    };
    let webhooks = std::sync::Arc::new(webhooks);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            output::stderr(&format!("error: cannot start the server runtime: {e}"));
            return Outcome::Unreadable;
        }
    };
    runtime.block_on(async {
        let sources = match super::datasets::connectors(global, &declaration, true).await {
            Ok(s) => s,
            Err(outcome) => return outcome,
        };
        crate::vault::with_vault!(global, declaration.clone(), |vault| serve_with(
            vault,
            &declaration,
            global,
            args,
            std::sync::Arc::clone(&webhooks),
            sources.clone()
        )
        .await)
    })
}

/// The mailer `serve` was told to use: SMTP, or the outbox folder.
pub fn mailer(
    global: &Global,
    declaration: &steward_policy::Declaration,
    smtp_url: Option<&str>,
    mail_from: Option<&str>,
) -> Result<(std::sync::Arc<dyn steward_core::mail::Mailer>, String), String> {
    let from = mail_from.unwrap_or(&declaration.controller.email);
    match smtp_url {
        Some(url) => steward_server::mail::SmtpMailer::new(url, from)
            .map(|m| {
                (
                    std::sync::Arc::new(m) as std::sync::Arc<dyn steward_core::mail::Mailer>,
                    "over SMTP".to_owned(),
                )
            })
            .map_err(|e| e.0),
        None => {
            let dir = global.data_dir.join("outbox");
            let shown = format!("to {} (no --smtp-url)", dir.display());
            steward_server::mail::OutboxMailer::new(dir, from)
                .map(|m| {
                    (
                        std::sync::Arc::new(m) as std::sync::Arc<dyn steward_core::mail::Mailer>,
                        shown,
                    )
                })
                .map_err(|e| e.0)
        }
    }
}

/// The privacy centre's logo (`[centre] logo`), read from beside the declaration: its bytes
/// and type. At most 512 KiB.
pub(crate) fn read_logo(
    declaration_path: &std::path::Path,
    declaration: &steward_policy::Declaration,
) -> Result<Option<(Vec<u8>, &'static str)>, String> {
    let Some(logo) = &declaration.centre.logo else {
        return Ok(None);
    };
    let path = declaration_path
        .parent()
        .unwrap_or_else(|| std::path::Path::new("."))
        .join(logo);
    let bytes = std::fs::read(&path).map_err(|e| {
        format!(
            "cannot read the logo {} ([centre] logo in the declaration): {e}; put the file there or fix the path",
            path.display()
        )
    })?;
    if bytes.len() > 512 * 1024 {
        return Err(format!(
            "the logo {} is {} KiB; a logo of at most 512 KiB keeps the privacy centre fast",
            path.display(),
            bytes.len() / 1024
        ));
    }
    let kind = if logo.to_ascii_lowercase().ends_with(".svg") {
        "image/svg+xml"
    } else {
        "image/png"
    };
    Ok(Some((bytes, kind)))
}

async fn serve_with<S: steward_core::Store>(
    vault: steward_core::Vault<S>,
    declaration: &steward_policy::Declaration,
    global: &Global,
    args: &ServeArgs,
    webhooks: std::sync::Arc<steward_server::requests::HttpNotifier>,
    sources: Vec<std::sync::Arc<dyn steward_core::retention::Dataset>>,
) -> Outcome {
    {
        // Taken before anything is served, so a save from the first moment on is a change.
        let declared_at = std::fs::metadata(&global.declaration)
            .and_then(|m| m.modified())
            .ok();
        let (mailer, mail_route) = match mailer(
            global,
            declaration,
            args.smtp_url.as_deref(),
            args.mail_from.as_deref(),
        ) {
            Ok(m) => m,
            Err(e) => {
                output::stderr(&format!("error: {e}"));
                return Outcome::Unreadable;
            }
        };
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                output::stderr(&format!(
                    "error: cannot listen on {}: {e}\n  = help: pass another address, e.g. --listen 127.0.0.1:8081",
                    args.listen
                ));
                return Outcome::Unreadable;
            }
        };
        // The address bound (`--listen 127.0.0.1:0` takes any free port): links point there.
        let address = listener
            .local_addr()
            .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
        let public_url = args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}"))
            .trim_end_matches('/')
            .to_owned();
        if !(public_url.starts_with("https://") || public_url.starts_with("http://")) {
            output::stderr(
                "error: --public-url must start with https:// (or http:// for a local test)",
            );
            return Outcome::Unreadable;
        }
        let options = steward_core::ledger::LedgerOptions {
            public_url: public_url.clone(),
            unsubscribe_mailto: args.unsubscribe_mailto.clone(),
        };
        let store = vault.store().clone();
        let closing = store.clone();
        let progress = crate::output::progress_bar(0, "loading the consent ledger");
        let ledger = match steward_core::ledger::Ledger::open(
            std::sync::Arc::new(vault),
            mailer,
            options.clone(),
            |seq| progress.set_position(seq),
        )
        .await
        {
            Ok(l) => l,
            Err(e) => {
                progress.finish_and_clear();
                output::stderr(&format!("error: {e}"));
                return Outcome::Unreadable;
            }
        };
        progress.finish_and_clear();
        // The metrics address too, before anything says the server is serving.
        if let Some(metrics) = args.metrics_listen
            && let Err(e) = std::net::TcpListener::bind(metrics)
        {
            output::stderr(&format!(
                "error: cannot listen on {metrics} for /metrics: {e}\n  = help: pass another address to --metrics-listen (or STEWARD_METRICS_LISTEN, or metrics_listen in the configuration file)"
            ));
            return Outcome::Unreadable;
        }
        if args.log_format == steward_server::telemetry::LogFormat::Json {
            // One JSON object per line, the start included.
            tracing::info!(target: "steward::serve", address = %address, version = %declaration.policy.version, consent_events = ledger.seq(), mail = %mail_route, public_url = %public_url, watch = args.watch, "serving");
        } else {
            output::stderr(&format!(
                "Steward is serving {} (declaration version {}):\n  http://{address}/privacy        the privacy centre: notice, choices, requests, My data\n  http://{address}/admin          the admin console (accounts from `steward admin create`)\n  http://{address}/consent.js     the consent banner for your pages\n  http://{address}/v1/…           the API (see /openapi.json; keys from `steward apikey create`)\nConsent ledger: {} event{}. Mail goes {mail_route}; links point to {public_url}.\n{}Press Ctrl-C to stop.",
                declaration.controller.name,
                declaration.policy.version,
                ledger.seq(),
                if ledger.seq() == 1 { "" } else { "s" },
                if args.watch {
                    "The declaration is reloaded when its file changes (or on SIGHUP).\n"
                } else {
                    "Send SIGHUP (or serve with --watch) to reload a changed declaration.\n"
                }
            ));
        }
        let (reload, reloads) = tokio::sync::mpsc::channel(1);
        let watcher = tokio::spawn(watch_declaration(
            Watch {
                global: global.clone(),
                poll: args.watch,
                smtp_url: args.smtp_url.clone(),
                mail_from: args.mail_from.clone(),
                options,
                serving: declaration.policy.version.clone(),
                seen: declared_at,
            },
            store,
            reload,
        ));
        // Ctrl-C, or SIGTERM from systemd, Docker or kill: requests in flight finish first.
        let shutdown = async {
            #[cfg(unix)]
            {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        };
        let logo = match read_logo(&global.declaration, declaration) {
            Ok(l) => l,
            Err(e) => {
                output::stderr(&format!("error: {e}"));
                return Outcome::Unreadable;
            }
        };
        let config = steward_server::ServerConfig {
            logo,
            webhooks,
            sources,
            outbox: args
                .smtp_url
                .is_none()
                .then(|| global.data_dir.join("outbox")),
            rates: steward_server::api::Rates {
                lookup_ip: args.lookup_rate_ip,
                lookup_identity: args.lookup_rate_identity,
                signin_ip: args.signin_rate_ip,
                signin_user: args.signin_rate_user,
                consent_ip: args.consent_rate_ip,
                request_ip: args.request_rate_ip,
                request_identity: args.request_rate_email,
                auth_failure_ip: args.auth_failure_rate_ip,
            },
            trust_forwarded: args.trust_forwarded_for,
            metrics_listen: args.metrics_listen,
            connections: steward_server::Connections {
                max: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
                header_timeout: std::time::Duration::from_secs(args.header_timeout),
                ..steward_server::Connections::default()
            },
        };
        let served = steward_server::serve_reloading(
            listener,
            declaration,
            std::sync::Arc::new(ledger),
            &config,
            shutdown,
            reloads,
        )
        .await;
        watcher.abort();
        // The write-ahead logs folded back: the data folder is whole on its own once stopped.
        closing.shut_down().await;
        match served {
            Ok(()) => {
                if args.log_format == steward_server::telemetry::LogFormat::Json {
                    tracing::info!(target: "steward::serve", "stopped");
                } else {
                    output::stderr("stopped");
                }
                Outcome::Ok
            }
            Err(e) => {
                output::stderr(&format!("error: the server stopped: {e}"));
                Outcome::Unreadable
            }
        }
    }
}

/// What a reload needs besides the store.
struct Watch {
    global: Global,
    /// Also look at the file every second (`--watch`).
    poll: bool,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    options: steward_core::ledger::LedgerOptions,
    /// The declaration version in force.
    serving: String,
    /// The file's modification time when it was read at start: a save made before the watcher
    /// first looks is still seen.
    seen: Option<std::time::SystemTime>,
}

/// Waits for SIGHUP (and with `--watch` for the file to change), then checks the declaration
/// as `steward check` would — its own errors, then against the data (a purpose's terms changed
/// under a version already served) — and hands the server the new one, or says why the one
/// in force stays.
async fn watch_declaration<S: steward_core::Store>(
    mut watch: Watch,
    store: S,
    reload: tokio::sync::mpsc::Sender<steward_server::Reload<S>>,
) {
    let path = watch.global.declaration.clone();
    let modified = |path: &std::path::Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut seen = watch.seen;
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        #[cfg(unix)]
        let signalled = async {
            match hangup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<Option<()>>();
        let why = tokio::select! {
            Some(()) = signalled => "SIGHUP",
            _ = tick.tick(), if watch.poll => {
                let now = modified(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                "the file changed"
            }
        };
        output::stderr(&format!("reloading {} ({why})", path.display()));
        let kept = |serving: &str| {
            output::stderr(&format!(
                "kept declaration version {serving}: the new one was refused for the reasons above"
            ));
        };
        let Ok((_, declaration)) = super::valid_declaration(&path) else {
            kept(&watch.serving);
            continue;
        };
        match open_over(&watch, &store, &declaration).await {
            Ok(ledger) => {
                let version = declaration.policy.version.clone();
                let (applied, done) = tokio::sync::oneshot::channel();
                if reload
                    .send(steward_server::Reload {
                        declaration,
                        ledger: std::sync::Arc::new(ledger),
                        applied: Some(applied),
                    })
                    .await
                    .is_err()
                    || done.await.is_err()
                {
                    return;
                }
                output::stderr(&format!(
                    "now serving declaration version {version} (was {})",
                    watch.serving
                ));
                watch.serving = version;
            }
            Err(e) => {
                output::stderr(&format!("error: {e}"));
                kept(&watch.serving);
            }
        }
    }
}

/// A vault and ledger over `store` for `declaration`, as `steward serve` opens them at start.
async fn open_over<S: steward_core::Store>(
    watch: &Watch,
    store: &S,
    declaration: &steward_policy::Declaration,
) -> Result<steward_core::ledger::Ledger<S>, String> {
    let master = crate::vault::load_master_key(store, &watch.global)
        .await
        .map_err(|_| "the master key could not be read".to_owned())?;
    let (mailer, _) = mailer(
        &watch.global,
        declaration,
        watch.smtp_url.as_deref(),
        watch.mail_from.as_deref(),
    )?;
    let vault = steward_core::Vault::open(
        store.clone(),
        &master,
        std::sync::Arc::new(declaration.clone()),
        std::sync::Arc::new(steward_core::SystemClock),
    )
    .await
    .map_err(|e| e.to_string())?;
    steward_core::ledger::Ledger::open(
        std::sync::Arc::new(vault),
        mailer,
        watch.options.clone(),
        |_| {},
    )
    .await
    .map_err(|e| e.to_string())
}

/// `steward serve --print-config`: every setting serve would use, where it came from, secrets
/// masked.
pub fn print_config(expanded: &crate::config::Expanded, matches: &clap::ArgMatches) -> Outcome {
    use crate::config::Source;
    let Some(serve) = matches.subcommand_matches("serve") else {
        return Outcome::Invalid;
    };
    let command = <crate::cli::Cli as clap::CommandFactory>::command();
    let Some(definition) = command.find_subcommand("serve") else {
        return Outcome::Invalid;
    };
    let mut out = String::new();
    if let Some(file) = &expanded.file {
        out.push_str(&format!("configuration file: {}\n", file.display()));
    } else {
        out.push_str("configuration file: none (./steward.toml, --config or STEWARD_CONFIG)\n");
    }
    let skip = ["help", "version", "print_config", "config"];
    let mut arguments: Vec<&clap::Arg> = command
        .get_arguments()
        .chain(definition.get_arguments())
        .filter(|a| !skip.contains(&a.get_id().as_str()))
        .collect();
    arguments.dedup_by_key(|a| a.get_id().as_str().to_owned());
    for arg in arguments {
        let id = arg.get_id().as_str();
        let value: Vec<String> = serve
            .get_raw(id)
            .map(|v| v.map(|x| x.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let value = match (value.as_slice(), crate::config::is_secret(id)) {
            ([], _) => {
                if serve.get_flag_safe(id) {
                    "true".to_owned()
                } else {
                    "(not set)".to_owned()
                }
            }
            (v, true) => v
                .iter()
                .map(|x| crate::config::mask(x))
                .collect::<Vec<_>>()
                .join(", "),
            (v, false) => v.join(", "),
        };
        let source = expanded
            .from
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, s)| *s)
            .or_else(|| match serve.value_source(id) {
                Some(clap::parser::ValueSource::CommandLine) => Some(Source::Flag),
                Some(clap::parser::ValueSource::EnvVariable) => Some(Source::Environment),
                Some(clap::parser::ValueSource::DefaultValue) => Some(Source::Default),
                _ => None,
            });
        out.push_str(&format!(
            "{:<22} {:<40} {}\n",
            id,
            value,
            source.map_or("", Source::describe)
        ));
    }
    match output::stdout(out.as_bytes()) {
        Ok(()) => Outcome::Ok,
        Err(_) => Outcome::Unreadable,
    }
}

/// A switch's value, false when the argument is not a switch.
trait FlagSafe {
    fn get_flag_safe(&self, id: &str) -> bool;
}

impl FlagSafe for clap::ArgMatches {
    fn get_flag_safe(&self, id: &str) -> bool {
        self.try_get_one::<bool>(id)
            .ok()
            .flatten()
            .copied()
            .unwrap_or(false)
    }
}
