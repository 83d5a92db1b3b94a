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

    /// Generate the record of processing activities (GDPR Art. 30(1)): one row per purpose
    #[command(
        after_help = "Examples:\n  steward ropa --format xlsx -o record-of-processing.xlsx\n  steward ropa --format csv > ropa.csv\n  steward ropa --format json | jq '.activities[].purpose'"
    )]
    Ropa(RopaArgs),
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
