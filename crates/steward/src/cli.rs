//! The command line: every verb with its help text and an example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Steward makes a privacy policy's promises true.
///
/// It reads the operator's declaration (privacy.toml): what is collected and why, how long it
/// is kept, who receives it, which cookies are set, what rights people have. From it Steward
/// publishes the privacy notice and the record of processing, and enforces what it says.
#[derive(Debug, Parser)]
#[command(name = "steward", version, propagate_version = true)]
#[command(
    after_help = "Start here:\n  steward init            write a commented starter privacy.toml\n  steward check           find mistakes in it\n  steward serve           publish the notice on http://127.0.0.1:8080/privacy\n  steward notice -o privacy.html\n  steward ropa --format xlsx -o record.xlsx\n\nExit codes: 0 success, 1 the declaration has errors, 2 a file could not be read, parsed or written."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The declaration to read
    #[arg(
        long,
        short = 'd',
        global = true,
        env = "STEWARD_DECLARATION",
        default_value = "privacy.toml",
        value_name = "FILE"
    )]
    pub declaration: PathBuf,
    /// Where Steward keeps its data (SQLite files, the master key) by default
    #[arg(
        long,
        global = true,
        env = "STEWARD_DATA_DIR",
        default_value = "steward-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
    /// Use PostgreSQL instead of SQLite: postgres://user@host/database
    #[arg(
        long,
        global = true,
        env = "STEWARD_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter privacy.toml (a small website: accounts, comments, newsletter, analytics)
    #[command(
        after_help = "Examples:\n  steward init              writes ./privacy.toml\n  steward init site/        writes site/privacy.toml\n  steward init --force      overwrites an existing privacy.toml"
    )]
    Init(InitArgs),

    /// Check the declaration: every problem with its file:line:column and how to fix it
    #[command(
        after_help = "Examples:\n  steward check\n  steward check -d examples/004-mailpro.toml\n  steward check --format json | jq '.diagnostics[] | select(.severity == \"error\")'\n\nExit codes: 0 no errors (warnings allowed), 1 errors found, 2 the file cannot be read or parsed."
    )]
    Check(CheckArgs),

    /// Generate the privacy notice (HTML or Markdown) from the declaration
    #[command(
        after_help = "Examples:\n  steward notice -o privacy.html\n  steward notice --format md > PRIVACY.md\n\nThe HTML page is self-contained (no external assets), accessible and printable.\nA declaration with errors is refused (exit 1): run `steward check` first."
    )]
    Notice(NoticeArgs),

    /// List the taxonomy keys (data categories, uses, subjects), optionally only those matching a word
    #[command(
        after_help = "Examples:\n  steward taxonomy email             keys whose key, name or description mentions e-mail\n  steward taxonomy --kind uses marketing\n  steward taxonomy --kind subjects"
    )]
    Taxonomy(TaxonomyArgs),

    /// Serve the privacy notice over HTTP (the API and privacy centre arrive here as they are built)
    #[command(
        after_help = "Examples:\n  steward serve                                   serves ./privacy.toml on 127.0.0.1:8080\n  steward serve -d examples/004-mailpro.toml --listen 0.0.0.0:8080\n\nPages: /privacy (HTML), /privacy.md (Markdown), /healthz.\nStop with Ctrl-C; requests in flight are finished first."
    )]
    Serve(ServeArgs),

    /// Import people from a CSV (with a header row) or JSON Lines file into the vault
    #[command(
        after_help = "Columns (CSV header or JSON keys) are identity kinds (email, phone, username) or\ndeclared data categories (user.name, user.contact.address …). Every value is sealed.\n\nExamples:\n  steward import --purpose accounts customers.csv\n  steward import --purpose newsletter subscribers.jsonl\n\nThe whole file is checked first: if any line is bad, the bad lines are listed by number and\nnothing is written. Lines whose identity is already in the vault are skipped, so a run that\nwas interrupted can simply be repeated."
    )]
    Import(ImportArgs),

    /// Find, show or correct people in the vault
    #[command(subcommand)]
    Subject(SubjectCommand),

    /// Data-subject requests: take one in, list, show, approve, deny, extend
    #[command(subcommand)]
    Request(RequestCommand),

    /// Write everything held on one person to an access package (ZIP: HTML, JSON, CSV, XLSX)
    #[command(
        after_help = "Examples:\n  steward export --email ana@example.com -o ana.zip\n\nThe package is what a person receives for an access request: a readable index.html with the\nGDPR Art. 15 information, data.json, one CSV per group and data.xlsx. It holds personal data:\nhand it over on a secure channel. The export is audited."
    )]
    Export(ExportArgs),

    /// Erase a person: their key is destroyed, their data deleted, legal holds kept and reported
    #[command(
        after_help = "Examples:\n  steward erase --email alice@example.com --dry-run     what would be removed and kept\n  steward erase --email alice@example.com\n  steward erase --subject 0193…                        by subject id\n\nPrints the erasure receipt (no personal data): categories removed, categories kept and why."
    )]
    Erase(EraseArgs),

    /// Master-key operations
    #[command(subcommand)]
    Keys(KeysCommand),

    /// Create, list or revoke API keys for the HTTP API
    #[command(subcommand)]
    Apikey(ApiKeyCommand),

    /// Verify or export the audit trail (who accessed what, for which purpose)
    #[command(subcommand)]
    Audit(AuditCommand),

    /// Staff accounts for the admin console (sign-in with password and optional TOTP)
    #[command(subcommand)]
    Admin(AdminCommand),

    /// Generate the record of processing activities (GDPR Art. 30(1)): one row per purpose
    #[command(
        after_help = "Examples:\n  steward ropa --format xlsx -o record-of-processing.xlsx\n  steward ropa --format csv > ropa.csv\n  steward ropa --format json | jq '.activities[].purpose'"
    )]
    Ropa(RopaArgs),
}

/// One identity, given on the command line.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct IdentityArgs {
    /// An e-mail address
    #[arg(long, value_name = "ADDRESS")]
    pub email: Option<String>,
    /// A phone number with its country code (+41 79 123 45 67)
    #[arg(long, value_name = "NUMBER")]
    pub phone: Option<String>,
    /// A username
    #[arg(long, value_name = "NAME")]
    pub username: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SubjectCommand {
    /// Print the subject id an identity belongs to
    #[command(
        after_help = "Examples:\n  steward subject find --email alice@example.com\n  steward subject find --phone '+41 79 123 45 67'"
    )]
    Find(IdentityArgs),
    /// Show what a declared purpose may see of a subject
    #[command(
        after_help = "Examples:\n  steward subject show 0193b6c8-… --purpose accounts\n  steward subject show 0193b6c8-… --purpose newsletter --format text"
    )]
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The subject id (from `steward subject find`)
    pub id: String,
    /// The declared purpose you are reading for: only its categories are shown
    #[arg(long)]
    pub purpose: String,
    /// Output format
    #[arg(long, value_enum, default_value = "json")]
    pub format: CheckFormat,
}

#[derive(Debug, Args)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("who").required(true).multiple(false).args(["email", "phone", "username", "subject"])))]
pub struct EraseArgs {
    /// An e-mail address
    #[arg(long, value_name = "ADDRESS")]
    pub email: Option<String>,
    /// A phone number with its country code
    #[arg(long, value_name = "NUMBER")]
    pub phone: Option<String>,
    /// A username
    #[arg(long, value_name = "NAME")]
    pub username: Option<String>,
    /// The subject id
    #[arg(long, value_name = "ID")]
    pub subject: Option<String>,
    /// Show what would be removed and kept, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportFormat {
    /// Comma-separated values with a header row
    Csv,
    /// One JSON object per line
    Jsonl,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The declared purpose the data was collected for
    #[arg(long)]
    pub purpose: String,
    /// The file (.csv, .jsonl or .ndjson)
    pub file: PathBuf,
    /// The file's format (default: from its extension)
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// Subjects written per transaction
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-wrap every subject key under a new master key, without rewriting any data
    #[command(
        after_help = "Example:\n  steward keys rotate\n\nStop `steward serve` first. The new key is written to <data-dir>/master.key.next; if the\nrotation is interrupted, run the same command again and it resumes with that key. When it\nfinishes, master.key.next replaces master.key (the old key is destroyed; with\nSTEWARD_MASTER_KEY, set it to the new key as told). Destroy every copy of the old key:\nonly key-store backups older than the rotation still need it."
    )]
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Keys re-wrapped per transaction
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key; it is printed once and only its hash is kept
    #[command(
        after_help = "Examples:\n  steward apikey create --role service --name shop-backend\n  steward apikey create --role support --name helpdesk --purpose account --expires-in-days 90\n  steward apikey create --role service --name mailer --purpose newsletter --operation read --category user.contact.email\n  steward apikey create --role auditor --name external-audit --expires-in-days 30\n\nRoles (the most a key may ever do):\n  admin    everything: personal data, erasure, keys, staff, the audit\n  dpo      personal data, exports, erasure and the audit; no keys or staff\n  support  look up, read, correct; each call names a ticket (Steward-Reason) and is\n           flagged in the audit; never for marketing purposes unless --purpose names them\n  service  the application: create, look up, read for a purpose, correct\n  auditor  the audit trail and its verification; no personal data\n\n--purpose, --category and --operation narrow the role further (repeat them).\nUse the key as `Authorization: Bearer <key>`."
    )]
    Create(ApiKeyCreateArgs),
    /// List keys: prefix, role, scope, expiry, revocation (never the keys)
    List,
    /// Revoke a key at once, by its prefix (stw_1a2b3c4d)
    #[command(after_help = "Example:\n  steward apikey revoke stw_1a2b3c4d")]
    Revoke(ApiKeyRevokeArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Everything: personal data, erasure, keys, staff, the audit
    Admin,
    /// Personal data, exports, erasure and the audit; no keys or staff
    Dpo,
    /// Look up, read and correct, each for a ticket, flagged in the audit
    Support,
    /// The operator's application: create, look up, read, rectify
    Service,
    /// The audit trail only
    Auditor,
}

impl RoleArg {
    /// The domain's role.
    pub fn role(self) -> steward_core::Role {
        match self {
            Self::Admin => steward_core::Role::Admin,
            Self::Dpo => steward_core::Role::Dpo,
            Self::Support => steward_core::Role::Support,
            Self::Service => steward_core::Role::Service,
            Self::Auditor => steward_core::Role::Auditor,
        }
    }
}

#[derive(Debug, Args)]
pub struct ApiKeyCreateArgs {
    /// What the key may do at most
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// A label to recognise it by
    #[arg(long, default_value = "api key")]
    pub name: String,
    /// Only for this declared purpose (repeat for more)
    #[arg(long = "purpose", value_name = "PURPOSE")]
    pub purposes: Vec<String>,
    /// Only these data categories, and the categories under them (repeat for more)
    #[arg(long = "category", value_name = "KEY")]
    pub categories: Vec<String>,
    /// Only these operations: create, lookup, read, rectify, erase, export, audit, keys, staff
    #[arg(long = "operation", value_name = "OP")]
    pub operations: Vec<String>,
    /// The key stops working after this many days
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ApiKeyRevokeArgs {
    /// The key's prefix, as printed when it was created
    pub prefix: String,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit chain: every hash, checkpoint and the sealed head
    #[command(
        after_help = "Example:\n  steward audit verify\n\nExit codes: 0 intact; 1 broken (the first broken entry is named: modified, deleted,\ninserted, reordered, or the chain rewritten after a checkpoint); 2 cannot be read.\nKeep the printed head hash somewhere else (a ticket, a log): a later run that finds\nfewer entries than that head shows the trail was cut."
    )]
    Verify,
    /// Export audit entries as JSON Lines or CSV, optionally filtered
    #[command(
        after_help = "Examples:\n  steward audit export > audit.jsonl\n  steward audit export --format csv --since 2026-11-01T00:00:00Z -o november.csv\n  steward audit export --subject 0193a6e0-… \n  steward audit export --actor key:stw_1a2b3c4d --purpose newsletter"
    )]
    Export(AuditExportArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuditFormat {
    /// One JSON object per line
    Jsonl,
    /// Comma-separated values with a header row
    Csv,
}

#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: AuditFormat,
    /// Only entries about this subject id
    #[arg(long, value_name = "ID")]
    pub subject: Option<String>,
    /// Only entries by this actor (key:stw_…, staff:NAME, cli)
    #[arg(long)]
    pub actor: Option<String>,
    /// Only entries naming this purpose
    #[arg(long)]
    pub purpose: Option<String>,
    /// Only entries at or after this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only entries before this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Write to this file instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a staff account (the password is read from the terminal, or from
    /// STEWARD_ADMIN_PASSWORD, or the first line of standard input when it is not a terminal)
    #[command(
        after_help = "Examples:\n  steward admin create alice --role admin --totp\n  steward admin create sam.support --role support\n  printf '%s\\n' \"$PASSWORD\" | steward admin create ci-bot --role auditor\n\nWith --totp, the secret is printed once as an otpauth:// URI for an authenticator app;\nsign-in then also needs the 6-digit code. Five failures in a row lock the account for\n15 minutes."
    )]
    Create(AdminCreateArgs),
    /// List staff accounts: role, TOTP, locked, disabled
    List,
    /// Unlock an account locked after repeated failures
    Unlock(AdminNameArgs),
    /// Disable an account and end its sessions
    Disable(AdminNameArgs),
}

#[derive(Debug, Args)]
pub struct AdminCreateArgs {
    /// The sign-in name (lower-case letters, digits, `._-`)
    pub username: String,
    /// The account's role
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// Require a TOTP code at sign-in (prints the secret once)
    #[arg(long)]
    pub totp: bool,
}

#[derive(Debug, Args)]
pub struct AdminNameArgs {
    /// The sign-in name
    pub username: String,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to write privacy.toml into
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// Overwrite an existing privacy.toml
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CheckFormat {
    /// Messages for people, like a compiler's
    Text,
    /// One JSON object, for editors and CI
    Json,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: CheckFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NoticeFormat {
    /// One self-contained HTML page
    Html,
    /// Markdown
    Md,
}

#[derive(Debug, Args)]
pub struct NoticeArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "html")]
    pub format: NoticeFormat,
    /// Write to this file instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TaxonomyKind {
    /// Data categories (`user.contact.email`)
    Categories,
    /// Data uses (`marketing.communications.email`)
    Uses,
    /// Data subjects (`customer`)
    Subjects,
}

#[derive(Debug, Args)]
pub struct TaxonomyArgs {
    /// Show only keys whose key, name or description contains this (case-insensitive)
    pub search: Option<String>,
    /// Which vocabulary (default: all three)
    #[arg(long, value_enum)]
    pub kind: Option<TaxonomyKind>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on
    #[arg(
        long,
        env = "STEWARD_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub listen: std::net::SocketAddr,
    /// Take the client address from the last X-Forwarded-For hop (only behind your own proxy)
    #[arg(long, env = "STEWARD_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// Look-ups allowed per client address
    #[arg(long, default_value = "600/min", value_name = "RATE", value_parser = rate)]
    pub lookup_rate_ip: (u32, time::Duration),
    /// Look-ups allowed per identity (e-mail, phone …)
    #[arg(long, default_value = "30/min", value_name = "RATE", value_parser = rate)]
    pub lookup_rate_identity: (u32, time::Duration),
    /// Staff sign-in attempts allowed per client address
    #[arg(long, default_value = "30/min", value_name = "RATE", value_parser = rate)]
    pub signin_rate_ip: (u32, time::Duration),
    /// Staff sign-in attempts allowed per username
    #[arg(long, default_value = "10/min", value_name = "RATE", value_parser = rate)]
    pub signin_rate_user: (u32, time::Duration),
    /// Consent-banner submissions allowed per client address
    #[arg(long, default_value = "120/min", value_name = "RATE", value_parser = rate)]
    pub consent_rate_ip: (u32, time::Duration),
    /// The address people reach Steward at, for links in mail (default: http://LISTEN)
    #[arg(long, env = "STEWARD_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Send mail through this SMTP server (smtps://USER:PASS@HOST:465, smtp://HOST:587?tls=required); without it, mail is written to DATA_DIR/outbox
    #[arg(
        long,
        env = "STEWARD_SMTP_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub smtp_url: Option<String>,
    /// The sender of Steward's mail (default: the declaration's controller e-mail)
    #[arg(long, env = "STEWARD_MAIL_FROM", value_name = "ADDRESS")]
    pub mail_from: Option<String>,
    /// An address for mailto: unsubscribes in List-Unsubscribe (optional)
    #[arg(long, value_name = "ADDRESS")]
    pub unsubscribe_mailto: Option<String>,
}

fn rate(text: &str) -> Result<(u32, time::Duration), String> {
    steward_core::rate_limit::parse_rate(text)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RopaFormat {
    /// Comma-separated values with a header row
    Csv,
    /// An Excel workbook
    Xlsx,
    /// Structured JSON
    Json,
}

#[derive(Debug, Args)]
pub struct RopaArgs {
    /// Output format
    #[arg(long, value_enum)]
    pub format: RopaFormat,
    /// Write to this file instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `steward request …`.
#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Take in a request received by post, phone or e-mail
    #[command(
        after_help = "Examples:\n  steward request create --kind access --email ana@example.com\n  steward request create --kind rectification --email ana@example.com --change user.name='Ana López'\n  steward request create --kind erasure --email ana@example.com --close-account --vouch\n\nWithout --vouch the person is sent a verification link (or code) by `steward serve`;\nwith --vouch you state that you verified them yourself."
    )]
    Create(RequestCreateArgs),
    /// List requests, the soonest due first
    #[command(
        after_help = "Examples:\n  steward request list                       every open request\n  steward request list --overdue\n  steward request list --status awaiting-approval --kind erasure\n  steward request list --due-before 2026-12-31T00:00:00Z"
    )]
    List(RequestListArgs),
    /// Show one request: status, due date, history, outcome, queued mail and notices
    Show(RequestIdArgs),
    /// Approve a request waiting for approval; it is carried out at once
    Approve(RequestIdArgs),
    /// Deny a request; the person is told the reason
    Deny(RequestReasonArgs),
    /// Extend a request's deadline by the declared extension, once; the person is told why
    Extend(RequestReasonArgs),
}

/// `steward request create`.
#[derive(Debug, clap::Args)]
pub struct RequestCreateArgs {
    /// access, portability, rectification, erasure, restriction, objection, opt-out-sale-share, withdraw-consent
    #[arg(long)]
    pub kind: String,
    /// The person's e-mail address
    #[arg(long)]
    pub email: String,
    /// The purpose (restriction, objection, withdraw-consent)
    #[arg(long)]
    pub purpose: Option<String>,
    /// A new value, CATEGORY=VALUE (rectification; repeat for more)
    #[arg(long = "change")]
    pub changes: Vec<String>,
    /// Erase by closing the account, after the declared delay
    #[arg(long)]
    pub close_account: bool,
    /// You verified the person yourself
    #[arg(long)]
    pub vouch: bool,
    /// email-link or email-code
    #[arg(long)]
    pub verification: Option<String>,
    /// The address links in mail point to
    #[arg(
        long,
        env = "STEWARD_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,
}

/// `steward request list`.
#[derive(Debug, clap::Args)]
pub struct RequestListArgs {
    /// Statuses, comma-separated (default: every open one)
    #[arg(long)]
    pub status: Option<String>,
    /// Only this kind
    #[arg(long)]
    pub kind: Option<String>,
    /// Only those open and past due
    #[arg(long)]
    pub overdue: bool,
    /// Only those due before this RFC 3339 time
    #[arg(long)]
    pub due_before: Option<String>,
}

/// A request id.
#[derive(Debug, clap::Args)]
pub struct RequestIdArgs {
    /// The request's id
    pub id: String,
}

/// A request id and a reason.
#[derive(Debug, clap::Args)]
pub struct RequestReasonArgs {
    /// The request's id
    pub id: String,
    /// Why, as told to the person
    #[arg(long)]
    pub reason: String,
}

/// `steward export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The person's e-mail address
    #[arg(long)]
    pub email: String,
    /// Where to write the ZIP
    #[arg(short, long)]
    pub output: std::path::PathBuf,
}
