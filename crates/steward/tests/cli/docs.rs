//! Every command block in README.md and docs/*.md runs as written (issue 15), so the docs
//! cannot drift from the binary. Each file's ```sh blocks run in order, in a fresh folder
//! holding a copy of `examples/`, through bash with `set -eo pipefail`; variables a command
//! sets (`ID=$(steward subject find …)`) are there for the next, as in one terminal. What a
//! reader does by hand the runner does the same way, and nothing else:
//!
//! - `steward serve` (or `cargo run -- serve`) runs in the background, as in a second
//!   terminal, on a free port that replaces `127.0.0.1:8080` in the commands after it; a new
//!   `serve` line replaces the running one, and `steward keys rotate` stops it first (the
//!   README says to: rotation refuses to run beside a server).
//! - `curl` gets `--fail`, so an answer of 4xx or 5xx fails the block.
//! - What asks for a password reads one from standard input.
//! - Building, installing, editing and the developer's own commands (`cargo …`, `$EDITOR`,
//!   `bash .ci/run`, the fuzzing block) are not run; they are listed in [`NOT_RUN`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Lines a reader runs by hand that need a toolchain, an editor or minutes: never run here.
const NOT_RUN: &[&str] = &[
    "cargo install ",
    "cargo test",
    "cargo fmt ",
    "cargo +nightly ",
    "STEWARD_TEST_POSTGRES=",
    "bash .ci/run",
    "$EDITOR ",
    "mkdir -p fuzz/",
    "cd fuzz ",
];

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The commands of each ```sh block of `file`: (line of the fence, commands), a command being
/// a line with its `\` continuations, blank lines and comment lines left out.
fn blocks(file: &Path) -> Vec<(usize, Vec<String>)> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    let mut current: Option<(usize, Vec<String>)> = None;
    let mut pending = String::new();
    for (n, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim_start() == "```sh" => current = Some((n + 1, Vec::new())),
            None => {}
            Some(_) if line.trim_start().starts_with("```") => {
                out.extend(current.take());
            }
            Some((_, commands)) => {
                let trimmed = line.trim();
                if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
                    continue;
                }
                if let Some(head) = line.strip_suffix('\\') {
                    pending.push_str(head);
                    continue;
                }
                pending.push_str(line);
                commands.push(std::mem::take(&mut pending));
            }
        }
    }
    out
}

/// The port a `steward serve` start line names: `  http://127.0.0.1:PORT/privacy …`, or the
/// JSON `serving` event's `"address":"127.0.0.1:PORT"`.
fn bound_port(line: &str) -> Option<u16> {
    let after = if let Some(rest) = line.trim().strip_prefix("http://127.0.0.1:") {
        rest
    } else if line.contains("\"message\":\"serving\"") {
        line.split("\"address\":\"127.0.0.1:").nth(1)?
    } else {
        return None;
    };
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// `command` without its trailing `# comment` (a `#` outside quotes, after a space).
fn without_comment(command: &str) -> &str {
    let (mut single, mut double, mut previous) = (false, false, ' ');
    for (i, c) in command.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && previous.is_whitespace() => {
                return command[..i].trim_end();
            }
            _ => {}
        }
        previous = c;
    }
    command.trim_end()
}

/// A `steward serve` in the background.
struct Background {
    child: super::Running,
    port: u16,
}

struct Reader {
    dir: tempfile::TempDir,
    file: String,
    server: Option<Background>,
    ran: usize,
}

impl Reader {
    fn new(file: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The examples, with their folders (the WordPress seeds' manifests).
        fn copy(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let path = entry.unwrap().path();
                let target = to.join(path.file_name().unwrap());
                if path.is_dir() {
                    copy(&path, &target);
                } else {
                    std::fs::copy(&path, target).unwrap();
                }
            }
        }
        copy(&repository().join("examples"), &dir.path().join("examples"));
        std::fs::write(
            dir.path().join(".password"),
            "correct horse battery staple\ncorrect horse battery staple\n",
        )
        .unwrap();
        Self {
            dir,
            file: file.to_owned(),
            server: None,
            ran: 0,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// bash, in the folder, with steward on the PATH and the variables set so far.
    fn bash(&self, script: &str) -> Command {
        let bin = Path::new(env!("CARGO_BIN_EXE_steward")).parent().unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new("bash");
        command
            .current_dir(self.path())
            .env("PATH", path)
            .env_remove("STEWARD_DECLARATION")
            .env_remove("STEWARD_DATA_DIR")
            .env_remove("STEWARD_DATABASE_URL")
            .env_remove("STEWARD_MASTER_KEY")
            .env_remove("STEWARD_LISTEN")
            .arg("-c")
            .arg(format!(
                "set -eo pipefail; set -a; if [ -f .env ]; then . ./.env; fi\n{script}"
            ));
        command
    }

    fn with_port(&self, command: &str) -> String {
        match &self.server {
            Some(s) => command.replace("127.0.0.1:8080", &format!("127.0.0.1:{}", s.port)),
            None => command.to_owned(),
        }
    }

    fn serve(&mut self, line: usize, command: &str) {
        self.server = None;
        let command = without_comment(command).replacen("cargo run -- ", "steward ", 1);
        // Any free port, taken by the server itself (never released and taken again, which
        // another process could take in between): read back from what it prints.
        let mut child = self
            .bash(&format!("exec {command} --listen 127.0.0.1:0"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let child = super::Running(child);
        let mut seen = Vec::new();
        let mut lines = BufReader::new(stderr).lines();
        for l in lines.by_ref().map_while(Result::ok) {
            // Started: its URL lines, or with --log-format json its `serving` event.
            let port = bound_port(&l);
            if let Some(port) = port {
                // Its log goes on being read, as a terminal would show it.
                std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
                self.server = Some(Background { child, port });
                self.ran += 1;
                return;
            }
            seen.push(l);
        }
        panic!(
            "{}:{line}: `{command}` did not start:\n{}",
            self.file,
            seen.join("\n")
        );
    }

    fn run(&mut self, line: usize, command: &str) {
        if command.contains("steward keys rotate") {
            self.server = None;
        }
        let mut text = self.with_port(command);
        if let Some(rest) = text.strip_prefix("curl ") {
            assert!(
                self.server.is_some(),
                "{}:{line}: `{command}` calls the server, but no `steward serve` runs before it",
                self.file
            );
            text = format!("curl --fail-with-body {rest}");
        }
        let out = self
            .bash(&format!("{text}\nexport -p > .env"))
            .stdin(std::fs::File::open(self.path().join(".password")).unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}:{line}: `{command}` failed ({}):\n{}\n{}",
            self.file,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.ran += 1;
    }
}

/// Runs every block of `file` (relative to the repository) as a reader would; returns how many
/// commands ran.
fn read_and_run(file: &str) -> usize {
    let mut reader = Reader::new(file);
    for (line, commands) in blocks(&repository().join(file)) {
        for command in commands {
            let trimmed = command.trim();
            if NOT_RUN.iter().any(|p| trimmed.starts_with(p)) {
                continue;
            }
            let serve =
                trimmed.starts_with("steward serve") || trimmed.starts_with("cargo run -- serve");
            if serve {
                reader.serve(line, trimmed);
            } else {
                reader.run(line, trimmed);
            }
        }
    }
    let _ = reader.server.take().map(|s| s.child);
    reader.ran
}

/// The files this suite reads; every Markdown file with a ```sh block must be one of them.
const DOCUMENTS: &[&str] = &[
    "README.md",
    "docs/access.md",
    "docs/centre.md",
    "docs/consent.md",
    "docs/datasets.md",
    "docs/declaration.md",
    "docs/requests.md",
    "docs/retention.md",
];

#[test]
fn every_document_with_commands_is_run() {
    let mut files = vec!["README.md".to_owned()];
    for entry in std::fs::read_dir(repository().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(format!(
                "docs/{}",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    for file in files {
        if !blocks(&repository().join(&file)).is_empty() {
            assert!(
                DOCUMENTS.contains(&file.as_str()),
                "{file} has command blocks: add it to DOCUMENTS and a test that runs it"
            );
        }
    }
    // A line the runner skips must be one a reader runs by hand, not a new command.
    for file in DOCUMENTS {
        for (line, commands) in blocks(&repository().join(file)) {
            for command in commands {
                let c = command.trim();
                assert!(
                    c.starts_with("steward ")
                        || c.starts_with("curl ")
                        || c.starts_with("cargo run -- ")
                        || NOT_RUN.iter().any(|p| c.starts_with(p))
                        || c.split_once('=').is_some_and(|(name, value)| {
                            name.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_')
                                && value.starts_with("$(")
                        })
                        || c.starts_with("export STEWARD_"),
                    "{file}:{line}: `{c}` is neither a steward or curl command nor a variable set from one"
                );
            }
        }
    }
}

#[test]
fn the_readme_runs_as_written() {
    assert!(read_and_run("README.md") >= 25);
}

#[test]
fn docs_access_runs_as_written() {
    assert!(read_and_run("docs/access.md") >= 5);
}

#[test]
fn docs_centre_runs_as_written() {
    assert!(read_and_run("docs/centre.md") >= 3);
}

#[test]
fn docs_consent_runs_as_written() {
    assert!(read_and_run("docs/consent.md") >= 5);
}

#[test]
fn docs_datasets_runs_as_written() {
    assert!(read_and_run("docs/datasets.md") >= 2);
}

#[test]
fn docs_declaration_runs_as_written() {
    assert!(read_and_run("docs/declaration.md") >= 6);
}

#[test]
fn docs_requests_runs_as_written() {
    assert!(read_and_run("docs/requests.md") >= 3);
}

#[test]
fn docs_retention_runs_as_written() {
    assert!(read_and_run("docs/retention.md") >= 6);
}
