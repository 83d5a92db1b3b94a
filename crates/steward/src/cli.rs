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
#[derive(Debug, Clone, Args)]
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
    /// Read the master key from this file (a mounted secret) instead of DATA_DIR/master.key
    #[arg(
        long,
        global = true,
        env = "STEWARD_MASTER_KEY_FILE",
        value_name = "FILE"
    )]
    pub master_key_file: Option<PathBuf>,
    /// The configuration file for `serve` and these options (default: ./steward.toml if there
    /// is one); flags and STEWARD_* variables override it
    #[arg(long, global = true, env = "STEWARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
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

    /// Serve the privacy notice, the consent banner, the API and people's requests over HTTP, and run the background jobs
    #[command(
        after_help = "Examples:\n  steward serve                                   serves ./privacy.toml on 127.0.0.1:8080\n  steward serve -d examples/004-mailpro.toml --listen 0.0.0.0:8080\n\nServes: /privacy (the privacy centre: the notice, choices, request forms, My data),\n/privacy.md (Markdown), /admin (the admin console), /consent.js, /requests (request links), /v1/… (the API, described at /openapi.json), /healthz (alive),\n/readyz (the store answers), /metrics (Prometheus, with an audit-reading key or on\n--metrics-listen).\nRuns beside them: mail, Art. 19 notices, delayed erasure, expiry of unverified requests.\nRate limits count across every process that shares the database.\n\nA changed declaration is taken up without a restart on SIGHUP, or as soon as it is saved\nwith --watch:\n  kill -HUP $(pgrep -f \"steward serve\")\n  steward serve --watch\nIt is checked first (as `steward check` does, against the data too); one with errors is\nrefused and the one in force stays, with the reasons printed.\nStop with Ctrl-C; requests in flight are finished first."
    )]
    Serve(Box<ServeArgs>),

    /// Import people from a CSV (with a header row) or JSON Lines file into the vault
    #[command(
        after_help = "Columns (CSV header or JSON keys) are identity kinds (email, phone, username) or\ndeclared data categories (user.name, user.contact.address …). Every value is sealed.\n\nExamples:\n  steward import --purpose accounts customers.csv\n  steward import --purpose newsletter subscribers.jsonl\n\nThe whole file is checked first: if any line is bad, the bad lines are listed by number and\nnothing is written. Lines whose identity is already in the vault are skipped and counted, so\na run that was interrupted can simply be repeated; with --update their values are written for\nthe person already there instead (each an audited correction):\n  steward import --purpose accounts customers.csv --update"
    )]
    Import(ImportArgs),

    /// Find, show or correct people in the vault
    #[command(subcommand)]
    Subject(SubjectCommand),

    /// Data-subject requests: take one in, list, show, approve, deny, extend
    #[command(subcommand)]
    Request(RequestCommand),

    /// Recipients told of corrections, erasures and restrictions (GDPR Art. 19): who they are
    /// and their webhook signing secrets
    #[command(subcommand)]
    Recipient(RecipientCommand),

    /// The breach register (GDPR Art. 33, 34): open an incident, assess its risk, find the
    /// people it affects, notify the authority and the people, close it
    #[command(
        subcommand,
        after_help = "Examples:\n  steward incident open --title \"Support inbox exposed\" --categories user.contact.email --from 2026-11-20 --to 2026-11-29\n  steward incident affected 1 --categories\n  steward incident assess 1 --risk high --reason \"addresses readable by anyone with the link\"\n  steward incident notify 1 --audience authority\n  steward incident notify 1 --audience subjects\n  steward incident list --due\n\nSee docs/incidents.md."
    )]
    Incident(IncidentCommand),

    /// The disclosure log: personal data shared with partners, processors and authorities,
    /// and whether the people may be told
    #[command(subcommand)]
    Disclosure(DisclosureCommand),

    /// Counts of people by purpose, category, month, consent or country, every group smaller
    /// than the declared k suppressed; shared, it is logged as a disclosure
    #[command(
        after_help = "Examples:\n  steward aggregate --by purpose,month\n  steward aggregate --by consent,purpose --format csv\n  steward aggregate --by category --share-with partners --reference \"Q4 report\"\n\nNo subject id or value ever appears; a group of fewer than k people ([aggregates] k,\ndefault 10) is left out, and no total is given that would reveal it."
    )]
    Aggregate(AggregateArgs),

    /// The operator's own databases (the declaration's datasets): write a manifest, check it,
    /// find or erase a person in them
    #[command(subcommand)]
    Datasets(DatasetsCommand),

    /// Retention: the rules the declaration's periods make, what a sweep would remove, and
    /// the sweep itself (which `steward serve` also runs on the declared schedule)
    #[command(
        subcommand,
        after_help = "Examples:\n  steward retention rules                     what the declaration keeps, and for how long\n  steward retention plan --as-of 2027-06-01   what would go by then (changes nothing)\n  steward retention run                       remove what is due now\n\nSee docs/retention.md."
    )]
    Retention(RetentionCommand),

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
    /// Look the person up for this declared purpose: it finds them by an identity collected
    /// for it (or a purpose it may use), and a legal hold's purpose finds an erased person
    /// whose data it keeps
    #[arg(long)]
    pub purpose: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SubjectCommand {
    /// Print the subject id an identity belongs to
    #[command(
        after_help = "Examples:\n  steward subject find --email alice@example.com\n  steward subject find --phone '+41 79 123 45 67'\n  steward subject find --email alice@example.com --purpose invoicing   also after an erasure, if invoices are held"
    )]
    Find(IdentityArgs),
    /// Show what a declared purpose may see of a subject
    #[command(
        after_help = "Examples:\n  steward subject show 0193b6c8-… --purpose accounts\n  steward subject show 0193b6c8-… --purpose newsletter --format text"
    )]
    Show(ShowArgs),
    /// Correct a subject's data for a purpose (GDPR Art. 16); an e-mail, phone or username
    /// changes the identity they are found by
    #[command(
        after_help = "Examples:\n  steward subject correct 0193b6c8-… --purpose accounts --set user.name='Ana López'\n  steward subject correct 0193b6c8-… --purpose accounts --set user.contact.email=ana@new.example\n\nA corrected e-mail address, phone number or username is the identity from then on: the old\none no longer finds the person, and one that belongs to someone else is refused. Where the\ndeclaration sets `rights.notify_identity_change`, the person is told at both addresses.\nCategories in `rights.immutable` are refused. Each change is audited (never its value)."
    )]
    Correct(CorrectArgs),
}

#[derive(Debug, Args)]
pub struct CorrectArgs {
    /// The subject id (from `steward subject find`)
    pub id: String,
    /// The declared purpose the data is held for
    #[arg(long)]
    pub purpose: String,
    /// CATEGORY=VALUE, the new value (repeat for more)
    #[arg(long = "set", value_name = "CATEGORY=VALUE", required = true)]
    pub changes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The subject id (from `steward subject find`)
    pub id: String,
    /// The declared purpose you are reading for: what it may use is shown (its categories,
    /// collected for it or a purpose it names in `compatible_with`, or all it declares once the
    /// person consented to it)
    #[arg(long)]
    pub purpose: String,
    /// Output format
    #[arg(long, value_enum, default_value = "json")]
    pub format: ViewFormat,
}

/// How a subject is shown.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ViewFormat {
    /// JSON, as the API answers
    Json,
    /// Lines for people to read
    Text,
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
    /// For people already in the vault, write this file's values (each an audited correction)
    /// instead of skipping them
    #[arg(long)]
    pub update: bool,
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
        after_help = "Examples:\n  steward apikey create --role service --name shop-backend\n  steward apikey create --role support --name helpdesk --purpose account --expires-in-days 90\n  steward apikey create --role service --name mailer --purpose newsletter \\\n      --operation read --category user.contact.email\n  steward apikey create --role dpo --name shop-closures --operation request --operation erase\n  steward apikey create --role auditor --name external-audit --expires-in-days 30\n\nRoles (the most a key may ever do):\n  admin    everything: personal data, erasure, keys, staff, the audit\n  dpo      personal data, exports, erasure, requests, the audit, the breach register,\n           disclosures and aggregates; no keys or staff\n  support  look up, read, correct, consent, permits, take in requests; each call names a\n           ticket (Steward-Reason) and is flagged in the audit; never for marketing\n           purposes unless --purpose names them\n  service  the application: create, look up, read for a purpose, correct, consent,\n           permits, take in requests, record disclosures, read breach notices\n  auditor  the audit trail and its verification; no personal data\n\nOperations: create, lookup, read, rectify, erase, export, audit, keys, staff, consent\n(record consent events), permit (ask permits), request (take in data-subject requests),\ndecide (list, show, approve, deny and extend them), disclose (record a disclosure),\nincident (the breach register, the disclosure log, aggregates).\n--purpose, --category and --operation narrow the role further (repeat them). A request\nmade on someone's behalf does only what the key may do directly.\nUse the key as `Authorization: Bearer <key>`."
    )]
    Create(ApiKeyCreateArgs),
    /// List keys: prefix, role, scope, expiry, revocation (never the keys)
    #[command(after_help = "Example:\n  steward apikey list")]
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
    /// Only these operations: create, lookup, read, rectify, erase, export, audit, keys, staff, consent, permit, request, decide, disclose, incident
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
    #[command(after_help = "Example:\n  steward admin list")]
    List,
    /// Unlock an account locked after repeated failures
    #[command(after_help = "Example:\n  steward admin unlock alice")]
    Unlock(AdminNameArgs),
    /// Disable an account and end its sessions
    #[command(
        after_help = "Example:\n  steward admin disable alice\n\nThe account can no longer sign in, and its open sessions end at once."
    )]
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
    #[value(alias = "markdown")]
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
    #[arg(long, env = "STEWARD_LOOKUP_RATE_IP", default_value = "600/min", value_name = "RATE", value_parser = rate)]
    pub lookup_rate_ip: (u32, time::Duration),
    /// Look-ups allowed per identity (e-mail, phone …)
    #[arg(long, env = "STEWARD_LOOKUP_RATE_IDENTITY", default_value = "30/min", value_name = "RATE", value_parser = rate)]
    pub lookup_rate_identity: (u32, time::Duration),
    /// Staff sign-in attempts allowed per client address
    #[arg(long, env = "STEWARD_SIGNIN_RATE_IP", default_value = "30/min", value_name = "RATE", value_parser = rate)]
    pub signin_rate_ip: (u32, time::Duration),
    /// Staff sign-in attempts allowed per username
    #[arg(long, env = "STEWARD_SIGNIN_RATE_USER", default_value = "10/min", value_name = "RATE", value_parser = rate)]
    pub signin_rate_user: (u32, time::Duration),
    /// Consent-banner submissions, and views and downloads of "My data", allowed per client address
    #[arg(long, env = "STEWARD_CONSENT_RATE_IP", default_value = "120/min", value_name = "RATE", value_parser = rate)]
    pub consent_rate_ip: (u32, time::Duration),
    /// Public data-subject requests, changes made in "My data" and verification codes allowed per client address
    #[arg(long, env = "STEWARD_REQUEST_RATE_IP", default_value = "20/min", value_name = "RATE", value_parser = rate)]
    pub request_rate_ip: (u32, time::Duration),
    /// Public data-subject requests, and changes made in "My data", allowed per e-mail address
    #[arg(long, env = "STEWARD_REQUEST_RATE_EMAIL", default_value = "5/hour", value_name = "RATE", value_parser = rate)]
    pub request_rate_email: (u32, time::Duration),
    /// Calls refused for a missing, unknown, revoked or expired key or session, per client address (past it: 429, and the refusals are summarised in the audit rather than written one by one)
    #[arg(long, env = "STEWARD_AUTH_FAILURE_RATE_IP", default_value = "60/min", value_name = "RATE", value_parser = rate)]
    pub auth_failure_rate_ip: (u32, time::Duration),
    /// Connections served at once; more wait until one closes
    #[arg(long, env = "STEWARD_MAX_CONNECTIONS", default_value_t = 1024, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Seconds a client has to send a request's headers (and the most a kept-alive connection idles)
    #[arg(long, env = "STEWARD_HEADER_TIMEOUT", default_value_t = 10, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,
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
    /// Trust only the CA certificates in this PEM file for recipients' webhooks (a private
    /// CA), instead of the public roots; e.g. --webhook-ca /etc/steward/recipients-ca.pem
    #[arg(long, env = "STEWARD_WEBHOOK_CA", value_name = "FILE")]
    pub webhook_ca: Option<PathBuf>,
    /// An address for mailto: unsubscribes in List-Unsubscribe (optional)
    #[arg(long, env = "STEWARD_UNSUBSCRIBE_MAILTO", value_name = "ADDRESS")]
    pub unsubscribe_mailto: Option<String>,
    /// Reload the declaration when its file changes (checked every second), as on SIGHUP
    #[arg(long, env = "STEWARD_WATCH")]
    pub watch: bool,
    /// Print every setting serve would use and where it came from (flag, environment,
    /// configuration file, default; secrets masked), then exit
    #[arg(long)]
    pub print_config: bool,
    /// How log lines are written to standard error: pretty (a line per event) or json; levels
    /// from RUST_LOG (default info, e.g. RUST_LOG=steward=debug)
    #[arg(
        long,
        env = "STEWARD_LOG_FORMAT",
        default_value = "pretty",
        value_name = "FORMAT"
    )]
    pub log_format: steward_server::telemetry::LogFormat,
    /// Also serve /metrics without a key on this address (only where scrapers alone can reach
    /// it); on the main address /metrics needs a key that may read the audit
    #[arg(long, env = "STEWARD_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
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
        after_help = "Examples:\n  steward request list                       every open request\n  steward request list --overdue\n  steward request list --status awaiting-approval --kind erasure\n  steward request list --due-before 2026-12-31T00:00:00Z\n  REQUEST=$(steward request list --kind access --ids | head -n 1)"
    )]
    List(RequestListArgs),
    /// Show one request: status, due date, history, outcome, queued mail and notices
    #[command(
        after_help = "Example:\n  steward request show 0193b6c8-…      (the id from `steward request list`)"
    )]
    Show(RequestIdArgs),
    /// Approve a request waiting for approval; it is carried out at once
    #[command(
        after_help = "Example:\n  steward request approve 0193b6c8-…\n\nOnly requests in awaiting-approval (a vouched request beyond the key that took it in)."
    )]
    Approve(RequestIdArgs),
    /// Deny a request; the person is told the reason
    #[command(
        after_help = "Example:\n  steward request deny 0193b6c8-… --reason \"We could not confirm that the address is yours.\""
    )]
    Deny(RequestReasonArgs),
    /// Extend a request's deadline by the declared extension, once; the person is told why
    #[command(
        after_help = "Example:\n  steward request extend 0193b6c8-… --reason \"Your data is spread over several archived systems.\""
    )]
    Extend(RequestReasonArgs),
}

/// `steward datasets …`.
#[derive(Debug, Subcommand)]
pub enum DatasetsCommand {
    /// Write a dataset manifest for a known application's tables
    #[command(
        after_help = "Examples:\n  steward datasets template wordpress -o wordpress.toml\n  steward datasets template wordpress --prefix wp2_ --erase-comments delete\n\nThen name it in the declaration and check it:\n  [[datasets]]\n  id = \"wordpress\"\n  manifest = \"wordpress.toml\"\n  steward datasets check"
    )]
    Template(DatasetsTemplateArgs),
    /// Check each dataset's manifest against the declaration and, when its database can be
    /// reached, against the live schema
    #[command(
        after_help = "Examples:\n  steward datasets check\n  WORDPRESS_DATABASE_URL=mysql://steward@127.0.0.1/wordpress steward datasets check\n\nExits 1 when a manifest has errors: each names its place and the fix."
    )]
    Check,
    /// Show what the datasets hold on a person (as an access package would), or with --erase
    /// erase it there as the manifests say (--dry-run: only show the statements)
    #[command(
        after_help = "Examples:\n  steward datasets find --email ana@example.com\n  steward datasets find --email ana@example.com --erase --dry-run\n  steward datasets find --email ana@example.com --erase\n\nAn erasure runs in one transaction per database, owned rows first; it is complete only\nwhen every targeted field was changed or is reported kept with its reason."
    )]
    Find(DatasetsFindArgs),
    /// Read a Fides dataset file (YAML) into a Steward manifest, saying what could not be mapped
    #[command(
        name = "import-fides",
        after_help = "Examples:\n  steward datasets import-fides postgres_example_dataset.yml --purpose orders -o shop.toml\n  SHOP_DATABASE_URL=postgres://steward@127.0.0.1/shop steward datasets import-fides dataset.yml --purpose orders --url-env SHOP_DATABASE_URL -o shop.toml\n\nWhen the --url-env variable is set, the live schema is read too: a collection with no\nprimary key in the file takes the table's, and NULL is not written where it may not stand.\nWhat Fides's default erasure skips (fields with no data_type) Steward erases; every\nmapping by a guess is listed on standard error and at the top of the manifest."
    )]
    ImportFides(DatasetsImportFidesArgs),
    /// Read a live database's schema and propose a manifest: tables, keys, references, and
    /// data categories guessed from column names, each guess marked for review
    #[command(
        after_help = "Examples:\n  SHOP_DATABASE_URL=postgres://steward@127.0.0.1/shop steward datasets scan --url-env SHOP_DATABASE_URL --purpose orders -o shop.toml\n  steward datasets scan sqlite:site.db --purpose accounts\n\nA URL given on the command line is visible to other users of this machine (ps): with a\npassword in it, prefer --url-env. The URL is never written into the manifest."
    )]
    Scan(DatasetsScanArgs),
}

/// `steward datasets scan`.
#[derive(Debug, clap::Args)]
pub struct DatasetsScanArgs {
    /// The connection URL (postgres://…, mysql://…, sqlite:PATH); or give --url-env
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// The variable holding the connection URL (and written into the manifest)
    #[arg(long, value_name = "VARIABLE")]
    pub url_env: Option<String>,
    /// The declared purpose the tables serve (edit per table after)
    #[arg(long)]
    pub purpose: String,
    /// The dataset's name in the manifest (default: the database's)
    #[arg(long)]
    pub name: Option<String>,
    /// Write to this file instead of standard output (never over an existing one)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `steward datasets import-fides`.
#[derive(Debug, clap::Args)]
pub struct DatasetsImportFidesArgs {
    /// The Fides dataset file (YAML)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The declared purpose the dataset's tables serve (edit per table after)
    #[arg(long)]
    pub purpose: String,
    /// The variable that will hold the connection URL (default: the dataset's key in capitals
    /// with _DATABASE_URL); when it is set, the live schema is read as well
    #[arg(long, value_name = "VARIABLE")]
    pub url_env: Option<String>,
    /// The dataset to import, when the file holds several (its fides_key)
    #[arg(long, value_name = "KEY")]
    pub dataset: Option<String>,
    /// Write to this file instead of standard output (never over an existing one)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `steward datasets template`.
#[derive(Debug, clap::Args)]
pub struct DatasetsTemplateArgs {
    /// The application: wordpress
    pub application: String,
    /// The table prefix
    #[arg(long, default_value = "wp_")]
    pub prefix: String,
    /// The declared purpose the accounts serve
    #[arg(long, default_value = "accounts")]
    pub accounts: String,
    /// The declared purpose comments serve
    #[arg(long, default_value = "comments")]
    pub comments: String,
    /// What erasure does to comments: anonymise (WordPress's way: the text stays) or delete
    #[arg(long, default_value = "anonymise")]
    pub erase_comments: String,
    /// The variable that will hold the connection URL
    #[arg(long, default_value = "WORDPRESS_DATABASE_URL")]
    pub url_env: String,
    /// Write to this file instead of standard output (never over an existing one)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `steward datasets find`.
#[derive(Debug, clap::Args)]
pub struct DatasetsFindArgs {
    /// The person's e-mail address
    #[arg(long)]
    pub email: Option<String>,
    /// The person's username
    #[arg(long)]
    pub username: Option<String>,
    /// The person's phone number
    #[arg(long)]
    pub phone: Option<String>,
    /// Only this dataset (its id in the declaration)
    #[arg(long)]
    pub dataset: Option<String>,
    /// Erase what is found, as the manifests say
    #[arg(long)]
    pub erase: bool,
    /// With --erase: print the statements and row counts, change nothing
    #[arg(long, requires = "erase")]
    pub dry_run: bool,
}

/// `steward recipient …`.
#[derive(Debug, Subcommand)]
pub enum RecipientCommand {
    /// List the declared recipients: what each receives, how it is told, its secret's generation
    #[command(after_help = "Example:\n  steward recipient list")]
    List,
    /// Show a recipient's webhook signing secret, once; --rotate makes and shows a new one
    #[command(
        after_help = "Examples:\n  steward recipient secret zendesk              shown once: hand it to the recipient\n  steward recipient secret zendesk --rotate     a new one; the old one signs beside it for a day\n\nEach recipient has its own secret. A webhook carries\n  Steward-Signature: t=<unix seconds>,v1=<hex>\nwhere <hex> is the HMAC-SHA256 of \"<unix seconds>.<body>\" keyed with the secret's 32 bytes\n(decode its 64 hex digits first). After a rotation a second v1= is signed with the old\nsecret for 24 hours; accept either. Reject a t= far from your clock (say 5 minutes): a\nretried notice is signed anew. The body's `acknowledge` link is the recipient's alone:\nPOST to it once the change is applied."
    )]
    Secret(RecipientSecretArgs),
}

/// `steward recipient secret`.
#[derive(Debug, clap::Args)]
pub struct RecipientSecretArgs {
    /// The recipient's id in the declaration (`[[processors]] id`)
    pub id: String,
    /// Make a new secret (the old one keeps signing beside it for 24 hours)
    #[arg(long)]
    pub rotate: bool,
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
    /// Only their ids, one per line, soonest due first (for scripts)
    #[arg(long)]
    pub ids: bool,
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

/// `steward retention`.
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Print the retention rules derived from the declaration, each beside the line it comes from
    #[command(
        after_help = "Examples:\n  steward retention rules\n  steward retention rules -d examples/004-mailpro.toml\n  steward retention rules --format json | jq '.[] | select(.swept)'"
    )]
    Rules(RetentionRulesArgs),

    /// Dry run: per rule, how many records a sweep would remove, the earliest and latest, and what legal holds keep back
    #[command(
        after_help = "Examples:\n  steward retention plan                       as of now\n  steward retention plan --as-of 2027-06-01    what will have come due by then\n  steward retention plan --format json\n\nNothing is changed. The plan is audited (who looked, as of which date)."
    )]
    Plan(RetentionPlanArgs),

    /// Sweep: remove what the declared periods say is due, in audited batches, with a progress bar
    #[command(
        after_help = "Examples:\n  steward retention run\n  steward retention run --as-of 2026-12-01     a date in the past (never later than now)\n\nEach batch is removed in one transaction with its audit entry: a run cut off midway (a\ncrash, Ctrl-C) is simply run again, and nothing is counted twice. People left with no\nidentity and no field are erased (their key destroyed; what a legal hold keeps is kept). Only one sweep\nruns at a time across every process sharing the store, `steward serve`'s scheduled one too."
    )]
    Run(RetentionRunArgs),
}

/// `steward retention rules`.
#[derive(Debug, Args)]
pub struct RetentionRulesArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = ViewFormat::Text)]
    pub format: ViewFormat,
}

/// `steward retention plan`.
#[derive(Debug, Args)]
pub struct RetentionPlanArgs {
    /// The date (YYYY-MM-DD, midnight UTC) or instant (RFC 3339) to plan as of [default: now]
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = ViewFormat::Text)]
    pub format: ViewFormat,
}

/// `steward retention run`.
#[derive(Debug, Args)]
pub struct RetentionRunArgs {
    /// The date (YYYY-MM-DD, midnight UTC) or instant (RFC 3339) to sweep as of, never later than now [default: now]
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = ViewFormat::Text)]
    pub format: ViewFormat,
}

/// `steward incident`.
#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Open an incident: what happened, when it was detected and when you became aware
    #[command(
        after_help = "Examples:\n  steward incident open --title \"Support inbox exposed\" --categories user.contact.email,user.name --from 2026-11-20 --to 2026-11-29\n  steward incident open --title \"API key leaked\" --categories user --systems \"api key stw_1a2b3c4d\" --detected 2026-11-30T09:00:00Z --aware 2026-11-30T11:30:00Z\n\nThe clocks ([breach] in the declaration) count from --aware (default: --detected, default:\nnow). Write no personal data into the title or description."
    )]
    Open(IncidentOpenArgs),
    /// Assess the risk to people (Art. 33(1), 34): unlikely, risk or high, with the reason
    #[command(
        after_help = "Examples:\n  steward incident assess 1 --risk high --reason \"e-mail addresses readable by anyone\" --consequences \"phishing\" --measures \"link revoked\"\n  steward incident assess 2 --risk high --reason \"database copied\" --only-sealed\n\n--only-sealed says only Steward's sealed data store was exposed (not keys.db, not the master\nkey): the data taken are ciphertext, which exempts telling people (Art. 34(3)(a))."
    )]
    Assess(IncidentAssessArgs),
    /// Find the people an incident affects: by its categories, by a key or account's acts in the window, or a list
    #[command(
        after_help = "Examples:\n  steward incident affected 1 --categories\n  steward incident affected 2 --key stw_1a2b3c4d --from 2026-11-28 --to 2026-11-30\n  steward incident affected 3 --subjects ids.txt      one subject id per line\n  steward incident affected 4 --datasets              your own databases (e.g. WordPress)"
    )]
    Affected(IncidentAffectedArgs),
    /// Notify the authority (records it; the report is `incident report`) or queue and send the people's notices
    #[command(
        after_help = "Examples:\n  steward incident report 1 --format html -o report.html && steward incident notify 1 --audience authority --reference CASE-123\n  steward incident notify 1 --audience authority --phase follow-up\n  steward incident notify 1 --audience subjects --smtp-url smtps://USER:PASS@mail.example.com:465 --rate 20\n  steward incident notify 1 --audience subjects --reset-passwords     queued: `steward serve` sends\n\nWithout --smtp-url (or STEWARD_SMTP_URL) the notices are queued and `steward serve` sends\nthem with its own mail settings; --outbox writes them to DATA_DIR/outbox from here.\nPeople are told once each, per channel: run it again after a stop and it goes on where it\nwas. A notice a stopped run was sending is marked uncertain and not sent again; check the\nmail server's log, then --resend-uncertain."
    )]
    Notify(IncidentNotifyArgs),
    /// The authority's report (Art. 33(3)) as Markdown, HTML or JSON
    #[command(
        after_help = "Examples:\n  steward incident report 1\n  steward incident report 1 --format html -o breach-1.html"
    )]
    Report(IncidentReportArgs),
    /// Close an incident, with the reason
    #[command(
        after_help = "Examples:\n  steward incident close 1 --reason \"contained; authority and people notified\""
    )]
    Close(IncidentCloseArgs),
    /// Show an incident: its clocks, affected people and notices
    #[command(
        after_help = "Examples:\n  steward incident show 1\n  steward incident show 1 --format json"
    )]
    Show(IncidentShowArgs),
    /// List incidents, the newest first; --due lists the clocks due soon or overdue
    #[command(
        after_help = "Examples:\n  steward incident list\n  steward incident list --open\n  steward incident list --due"
    )]
    List(IncidentListArgs),
}

/// `steward incident open`.
#[derive(Debug, Args)]
pub struct IncidentOpenArgs {
    /// A short title (no personal data)
    #[arg(long)]
    pub title: String,
    /// What happened (no personal data)
    #[arg(long, default_value = "")]
    pub description: String,
    /// The data categories concerned, comma-separated
    #[arg(long, value_delimiter = ',', required = true)]
    pub categories: Vec<String>,
    /// The systems involved, comma-separated
    #[arg(long, value_delimiter = ',')]
    pub systems: Vec<String>,
    /// When it was detected (YYYY-MM-DD or RFC 3339) [default: now]
    #[arg(long, value_name = "TIME")]
    pub detected: Option<String>,
    /// When you became aware it concerns personal data [default: --detected]
    #[arg(long, value_name = "TIME")]
    pub aware: Option<String>,
    /// When the breach began
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// When it ended
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Approximately how many records
    #[arg(long)]
    pub records: Option<u64>,
    /// Output format
    #[arg(long, value_enum, default_value_t = ViewFormat::Text)]
    pub format: ViewFormat,
}

/// `steward incident assess`.
#[derive(Debug, Args)]
pub struct IncidentAssessArgs {
    /// The incident's number
    pub incident: String,
    /// unlikely, risk or high
    #[arg(long)]
    pub risk: String,
    /// Why
    #[arg(long)]
    pub reason: String,
    /// The likely consequences for people
    #[arg(long, default_value = "")]
    pub consequences: String,
    /// The measures taken or proposed
    #[arg(long, default_value = "")]
    pub measures: String,
    /// Art. 34(3) exemptions: encrypted, mitigated, public-communication
    #[arg(long, value_delimiter = ',')]
    pub exempt: Vec<String>,
    /// Only Steward's sealed data store was exposed, not the key store or the master key
    #[arg(long)]
    pub only_sealed: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = ViewFormat::Text)]
    pub format: ViewFormat,
}

/// `steward incident affected`.
#[derive(Debug, Args)]
pub struct IncidentAffectedArgs {
    /// The incident's number
    pub incident: String,
    /// Everyone holding the incident's categories (collected by the window's end)
    #[arg(long)]
    pub categories: bool,
    /// Everyone this API key touched in the window (its prefix, `stw_1a2b3c4d`)
    #[arg(long, value_name = "PREFIX")]
    pub key: Option<String>,
    /// Everyone this actor touched in the window, as the audit names them (`staff:alice`)
    #[arg(long, conflicts_with = "key")]
    pub actor: Option<String>,
    /// The window's start [default: the incident's]
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// The window's end [default: the incident's, or now]
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// A file of subject ids, one per line (found in your own systems)
    #[arg(long, value_name = "FILE")]
    pub subjects: Option<std::path::PathBuf>,
    /// Everyone whose rows in your own databases (the declaration's datasets) hold the incident's categories
    #[arg(long)]
    pub datasets: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = ViewFormat::Text)]
    pub format: ViewFormat,
}

/// Who is notified.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Audience {
    /// The supervisory authority
    Authority,
    /// The affected people
    Subjects,
}

/// `steward incident notify`.
#[derive(Debug, Args)]
pub struct IncidentNotifyArgs {
    /// The incident's number
    pub incident: String,
    /// Who is notified
    #[arg(long, value_enum)]
    pub audience: Audience,
    /// The authority's phase: initial, follow-up or final (Art. 33(4))
    #[arg(long, default_value = "initial")]
    pub phase: String,
    /// The authority's case reference
    #[arg(long)]
    pub reference: Option<String>,
    /// Why the notification comes after the deadline (Art. 33(1))
    #[arg(long)]
    pub late_reason: Option<String>,
    /// Also post a signed password-reset webhook for every affected person ([breach] password_reset)
    #[arg(long)]
    pub reset_passwords: bool,
    /// Queue the people's notices only; `steward serve` sends them
    #[arg(long)]
    pub no_send: bool,
    /// Send the e-mails from here through this SMTP server (smtps://USER:PASS@HOST:465); without it they are queued for `steward serve`, which sends them with its own mail settings
    #[arg(
        long,
        env = "STEWARD_SMTP_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub smtp_url: Option<String>,
    /// The sender of the e-mails (default: the declaration's controller e-mail)
    #[arg(long, env = "STEWARD_MAIL_FROM", value_name = "ADDRESS")]
    pub mail_from: Option<String>,
    /// Write the e-mails to DATA_DIR/outbox from here instead (a test run, or a site with no mail server)
    #[arg(long, conflicts_with_all = ["smtp_url", "no_send"])]
    pub outbox: bool,
    /// At most this many messages a second
    #[arg(long, default_value_t = 20)]
    pub rate: u32,
    /// Queue again the notices a stopped run left uncertain (after checking they did not go out)
    #[arg(long)]
    pub resend_uncertain: bool,
    /// Print the message people would be sent, and change nothing
    #[arg(long)]
    pub preview: bool,
}

/// The report's format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    /// Markdown
    Md,
    /// A standalone HTML page
    Html,
    /// JSON
    Json,
}

/// `steward incident report`.
#[derive(Debug, Args)]
pub struct IncidentReportArgs {
    /// The incident's number
    pub incident: String,
    /// Format
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
    /// Write it here instead of standard output
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
}

/// `steward incident close`.
#[derive(Debug, Args)]
pub struct IncidentCloseArgs {
    /// The incident's number
    pub incident: String,
    /// Why it is closed
    #[arg(long)]
    pub reason: String,
}

/// `steward incident show`.
#[derive(Debug, Args)]
pub struct IncidentShowArgs {
    /// The incident's number
    pub incident: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = ViewFormat::Text)]
    pub format: ViewFormat,
}

/// `steward incident list`.
#[derive(Debug, Args)]
pub struct IncidentListArgs {
    /// Only those not closed
    #[arg(long)]
    pub open: bool,
    /// Only the clocks due soon or overdue, the soonest first
    #[arg(long)]
    pub due: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = ViewFormat::Text)]
    pub format: ViewFormat,
}

/// `steward disclosure`.
#[derive(Debug, Subcommand)]
pub enum DisclosureCommand {
    /// Record data shared with a partner, processor or authority
    #[command(
        after_help = "Examples:\n  steward disclosure record --to authorities --basis legal-obligation --categories user.contact.email,user.name --subject 0193… --reference \"Court order 2026/117\" --gag-until 2027-06-01\n  steward disclosure record --to partners --purpose partner-introductions --categories user.name,user.contact.email --subject 0193… --counterpart 0194…\n\nA purpose based on consent needs every person's consent, the counterpart's too; a share\nwithout it is refused and the refusal audited. A gagged disclosure stays out of the person's\naccess package until --gag-until (never with --do-not-tell)."
    )]
    Record(DisclosureRecordArgs),
    /// Lift, move or make indefinite a disclosure's gag
    #[command(
        after_help = "Examples:\n  steward disclosure gag 0193… --lift                 the people may see it from now on\n  steward disclosure gag 0193… --until 2027-09-01     a court extended the order\n  steward disclosure gag 0193… --do-not-tell          held back until lifted"
    )]
    Gag(DisclosureGagArgs),
    /// List disclosures, the newest first
    #[command(
        after_help = "Examples:\n  steward disclosure list\n  steward disclosure list --to authorities --format json"
    )]
    List(DisclosureListArgs),
}

/// `steward disclosure record`.
#[derive(Debug, Args)]
pub struct DisclosureRecordArgs {
    /// The recipient: a declared [[processors]] id
    #[arg(long)]
    pub to: String,
    /// The categories shared, comma-separated
    #[arg(long, value_delimiter = ',', required = true)]
    pub categories: Vec<String>,
    /// A person whose data were shared (repeat it)
    #[arg(long = "subject")]
    pub subjects: Vec<String>,
    /// A file of subject ids, one per line
    #[arg(long, value_name = "FILE")]
    pub subjects_file: Option<std::path::PathBuf>,
    /// Another person who must also have consented (the partner of an introduction)
    #[arg(long = "counterpart")]
    pub counterparts: Vec<String>,
    /// The declared purpose it serves
    #[arg(long)]
    pub purpose: Option<String>,
    /// The lawful basis, without a purpose (legal-obligation for a court order)
    #[arg(long)]
    pub basis: Option<String>,
    /// The reference: a court order's number, a contract
    #[arg(long)]
    pub reference: Option<String>,
    /// The people may not be told before this date (YYYY-MM-DD or RFC 3339)
    #[arg(long, value_name = "DATE")]
    pub gag_until: Option<String>,
    /// The people may not be told at all (the law forbids it)
    #[arg(long, conflicts_with = "gag_until")]
    pub do_not_tell: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = ViewFormat::Text)]
    pub format: ViewFormat,
}

/// `steward disclosure list`.
#[derive(Debug, Args)]
pub struct DisclosureListArgs {
    /// Only those concerning this subject
    #[arg(long)]
    pub subject: Option<String>,
    /// Only those to this recipient
    #[arg(long)]
    pub to: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = ViewFormat::Text)]
    pub format: ViewFormat,
}

/// The aggregate's format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AggregateFormat {
    /// Lines for people to read
    Text,
    /// JSON
    Json,
    /// CSV
    Csv,
}

/// `steward aggregate`.
#[derive(Debug, Args)]
pub struct AggregateArgs {
    /// The dimensions: purpose, category, month, consent, country (comma-separated)
    #[arg(long, value_delimiter = ',', required = true)]
    pub by: Vec<String>,
    /// Only fields of these categories
    #[arg(long, value_delimiter = ',')]
    pub categories: Vec<String>,
    /// Share it with this recipient (a declared id, or `public`): logged as a disclosure
    #[arg(long, value_name = "RECIPIENT")]
    pub share_with: Option<String>,
    /// The share's reference
    #[arg(long)]
    pub reference: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = AggregateFormat::Text)]
    pub format: AggregateFormat,
}

/// `steward disclosure gag`.
#[derive(Debug, Args)]
pub struct DisclosureGagArgs {
    /// The disclosure's id (from `steward disclosure list`)
    pub id: String,
    /// End the gag now
    #[arg(long, conflicts_with_all = ["until", "do_not_tell"])]
    pub lift: bool,
    /// Hold it back until this date (YYYY-MM-DD or RFC 3339)
    #[arg(long, value_name = "DATE", conflicts_with = "do_not_tell")]
    pub until: Option<String>,
    /// Hold it back until lifted
    #[arg(long)]
    pub do_not_tell: bool,
}
