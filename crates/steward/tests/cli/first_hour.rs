//! The operator's first hour (issue 15): commands that cannot lose data, a declaration that can
//! change safely, imports that say what they skipped, a missing key that is not replaced, and
//! help that shows how.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{code, run, stderr, stdout, steward};

/// The subcommands `steward [PATH] --help` lists.
fn subcommands(path: &[&str]) -> Vec<String> {
    let mut args: Vec<&str> = path.to_vec();
    args.push("--help");
    let help = steward().args(&args).output().unwrap();
    let text = stdout(&help);
    let mut names = Vec::new();
    let mut listing = false;
    for line in text.lines() {
        if line.starts_with("Commands:") {
            listing = true;
            continue;
        }
        if listing {
            if line.trim().is_empty() {
                break;
            }
            // A command starts two spaces in; a wrapped description further in.
            let Some(name) = line
                .strip_prefix("  ")
                .filter(|l| !l.starts_with(' '))
                .and_then(|l| l.split_whitespace().next())
            else {
                continue;
            };
            if name != "help" {
                names.push(name.to_owned());
            }
        }
    }
    names
}

#[test]
fn every_command_shows_an_example_in_its_help() {
    let mut missing = Vec::new();
    let mut checked = 0;
    let mut queue: Vec<Vec<String>> = subcommands(&[]).into_iter().map(|c| vec![c]).collect();
    while let Some(path) = queue.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let nested = subcommands(&args);
        if !nested.is_empty() {
            queue.extend(nested.into_iter().map(|c| {
                let mut p = path.clone();
                p.push(c);
                p
            }));
            continue;
        }
        let mut with_help = args.clone();
        with_help.push("--help");
        let help = stdout(&steward().args(&with_help).output().unwrap());
        checked += 1;
        if !help.contains("Example") || !help.contains(&format!("steward {}", args.join(" "))) {
            missing.push(args.join(" "));
        }
    }
    assert!(checked >= 20, "only {checked} commands found");
    assert!(
        missing.is_empty(),
        "these commands' --help shows no example of themselves: {missing:?}"
    );
}

/// `steward serve` on a free port in `dir`, its stderr lines arriving on a channel.
pub(crate) struct Server {
    pub(crate) child: super::Running,
    pub(crate) base: String,
    pub(crate) lines: std::sync::mpsc::Receiver<String>,
}

impl Server {
    pub(crate) fn start(dir: &Path, extra: &[&str]) -> Self {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = steward()
            .current_dir(dir)
            .args(&args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let child = super::Running(child);
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            base: String::new(),
            lines,
        };
        // The start: a URL line, or with --log-format json the `serving` event.
        let started = server
            .wait_for(|l| l.trim().starts_with("http://") || l.contains("\"message\":\"serving\""));
        server.base = match serde_json::from_str::<serde_json::Value>(&started) {
            Ok(event) => format!("http://{}", event["address"].as_str().unwrap()),
            Err(_) => super::server_base(&mut std::iter::once(Ok(started))),
        };
        server
    }

    /// The next line for which `wanted` holds (failing when 20 s pass without a line).
    pub(crate) fn wait_for(&self, wanted: impl Fn(&str) -> bool) -> String {
        let mut seen = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(20)) {
            if wanted(&line) {
                return line;
            }
            seen.push(line);
        }
        panic!(
            "the server never printed the line wanted; it printed:\n{}",
            seen.join("\n")
        );
    }

    fn get(&self, path: &str) -> String {
        let url = format!("{}{path}", self.base);
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { crate::get(&url).await.unwrap().text().await.unwrap() })
    }

    pub(crate) fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
}

fn edit(dir: &Path, from: &str, to: &str) {
    let path = dir.join("privacy.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "privacy.toml has no `{from}`");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

fn people(dir: &Path, name: &str, csv: &str) {
    std::fs::write(dir.join(name), csv).unwrap();
}

#[test]
fn key_rotation_is_refused_while_a_server_runs_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    people(d, "first.csv", "email,user.name\nada@example.com,Ada\n");
    assert_eq!(
        code(&run(d, &["import", "--purpose", "accounts", "first.csv"])),
        0
    );
    let server = Server::start(d, &[]);

    let refused = run(d, &["keys", "rotate"]);
    assert_eq!(code(&refused), 2, "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("needs it to itself")
            && stderr(&refused).contains("nothing was changed"),
        "{}",
        stderr(&refused)
    );
    assert!(
        !d.join("steward-data/master.key.next").exists(),
        "a refused rotation writes no key"
    );
    // The server and other commands go on beside each other.
    assert!(server.get("/privacy").contains("Privacy notice"));
    people(d, "second.csv", "email,user.name\nbo@example.com,Bo\n");
    assert_eq!(
        code(&run(d, &["import", "--purpose", "accounts", "second.csv"])),
        0
    );
    drop(server);

    let rotated = run(d, &["keys", "rotate"]);
    assert_eq!(code(&rotated), 0, "{}", stderr(&rotated));
    for email in ["ada@example.com", "bo@example.com"] {
        let found = run(d, &["subject", "find", "--email", email]);
        assert_eq!(code(&found), 0, "{}", stderr(&found));
        let id = stdout(&found).trim().to_owned();
        let shown = run(d, &["subject", "show", &id, "--purpose", "accounts"]);
        assert_eq!(code(&shown), 0, "{email}: {}", stderr(&shown));
    }
    // And a server starts on the rotated store.
    let server = Server::start(d, &[]);
    assert!(server.get("/healthz").contains("ok"));
}

#[test]
fn a_missing_master_key_is_an_error_where_data_exists_and_no_new_key_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    people(d, "people.csv", "email\nada@example.com\n");
    assert_eq!(
        code(&run(d, &["import", "--purpose", "accounts", "people.csv"])),
        0
    );
    let key = d.join("steward-data/master.key");
    std::fs::remove_file(&key).unwrap();
    for args in [
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["subject", "find", "--email", "ada@example.com"][..],
        &["keys", "rotate"][..],
    ] {
        let out = run(d, args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("the master key is missing")
                && stderr(&out).contains("steward-data/master.key")
                && !stderr(&out).contains("BACK IT UP"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!key.exists(), "{args:?} wrote a new, useless key");
    }
}

#[test]
fn reimporting_counts_who_was_skipped_and_update_writes_their_new_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    // Every unusable column is named in one run.
    people(
        d,
        "bad.csv",
        "email,phone,user.nme,usrname\nada@example.com,+41 79 123 45 67,Ada,ada\n",
    );
    let bad = run(d, &["import", "--purpose", "accounts", "bad.csv"]);
    assert_eq!(code(&bad), 1);
    assert!(
        stderr(&bad).contains("column `phone`")
            && stderr(&bad).contains("did you mean `user.name`")
            && stderr(&bad).contains("column `usrname` is neither an identity kind nor a data category; did you mean `username`?"),
        "{}",
        stderr(&bad)
    );

    people(d, "v1.csv", "email,username\nada@example.com,ada\n");
    assert_eq!(
        code(&run(d, &["import", "--purpose", "accounts", "v1.csv"])),
        0
    );
    people(
        d,
        "v2.csv",
        "email,username,user.name\nada@example.com,ada,Ada Lovelace\nbo@example.com,bo,Bo\n",
    );
    let again = run(d, &["import", "--purpose", "accounts", "v2.csv"]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(
        stderr(&again).contains("imported 1 subject (1 already in the vault, skipped)")
            && stderr(&again).contains("--update"),
        "{}",
        stderr(&again)
    );
    let id = stdout(&run(d, &["subject", "find", "--email", "ada@example.com"]))
        .trim()
        .to_owned();
    let shown = stdout(&run(d, &["subject", "show", &id, "--purpose", "accounts"]));
    assert!(!shown.contains("Ada Lovelace"), "skipped means not written");

    let update = run(
        d,
        &["import", "--purpose", "accounts", "v2.csv", "--update"],
    );
    assert_eq!(code(&update), 0, "{}", stderr(&update));
    assert!(
        stderr(&update).contains("2 already in the vault, updated"),
        "{}",
        stderr(&update)
    );
    let shown = stdout(&run(d, &["subject", "show", &id, "--purpose", "accounts"]));
    assert!(shown.contains("Ada Lovelace"), "{shown}");
    let trail = run(d, &["audit", "export", "--subject", &id, "--format", "csv"]);
    assert!(
        stdout(&trail).contains("subject.rectify"),
        "each update is an audited correction: {}",
        stdout(&trail)
    );
}

#[test]
fn a_declaration_changed_under_a_served_version_is_named_by_check_and_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    // The version is served once (any command that opens the consent ledger records it).
    assert_eq!(code(&run(d, &["request", "list"])), 0);
    edit(
        d,
        r#"categories = ["user.name", "user.contact.email"]"#,
        r#"categories = ["user.name", "user.contact.email", "user.contact.phone_number"]"#,
    );
    let check = run(d, &["check"]);
    assert_eq!(code(&check), 1, "{}", stdout(&check));
    assert!(
        stdout(&check).contains("error[terms-changed-without-version]")
            && stdout(&check).contains("`remember-commenter`")
            && stdout(&check).contains("nobody consented")
            && stdout(&check).contains("raise `version` in [policy]"),
        "{}",
        stdout(&check)
    );
    let notice = run(d, &["notice", "-o", "privacy.html"]);
    assert_eq!(
        code(&notice),
        1,
        "the notice would show new terms under the old version"
    );
    assert!(!d.join("privacy.html").exists());
    let refused = run(d, &["request", "list"]);
    assert_eq!(code(&refused), 2);
    assert!(
        stderr(&refused).contains("raise `version` in [policy]")
            && !stderr(&refused).contains("people consented"),
        "{}",
        stderr(&refused)
    );
    edit(d, r#"version = "1.0""#, r#"version = "1.1""#);
    assert_eq!(code(&run(d, &["check"])), 0);
    assert_eq!(code(&run(d, &["request", "list"])), 0);
}

#[test]
fn serve_takes_up_a_changed_declaration_on_sighup_and_keeps_the_one_in_force_when_it_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    edit(d, r#"name = "Example Website""#, r#"name = "Before Ltd""#);
    let server = Server::start(d, &[]);
    assert!(server.get("/privacy").contains("Before Ltd"));

    edit(d, r#"name = "Before Ltd""#, r#"name = "After Ltd""#);
    edit(d, r#"version = "1.0""#, r#"version = "1.1""#);
    server.signal("-HUP");
    server.wait_for(|l| l.contains("now serving declaration version 1.1"));
    assert!(server.get("/privacy").contains("After Ltd"));

    // A file with an error is refused, and the declaration in force stays.
    edit(d, r#"basis = "contract""#, r#"basis = "contrakt""#);
    server.signal("-HUP");
    server.wait_for(|l| l.contains("kept declaration version 1.1"));
    assert!(server.get("/privacy").contains("After Ltd"));

    // So is a change of terms under the version in force.
    edit(d, r#"basis = "contrakt""#, r#"basis = "contract""#);
    edit(
        d,
        r#"categories = ["user.name", "user.contact.email"]"#,
        r#"categories = ["user.name", "user.contact.email", "user.contact.phone_number"]"#,
    );
    server.signal("-HUP");
    server.wait_for(|l| l.contains("raise `version` in [policy]"));
    server.wait_for(|l| l.contains("kept declaration version 1.1"));
}

#[test]
fn serve_with_watch_takes_up_the_declaration_when_it_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    let file = d.join("privacy.toml");
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    let server = Server::start(d, &["--watch"]);
    edit(d, r#"name = "Example Website""#, r#"name = "Watched Ltd""#);
    edit(d, r#"version = "1.0""#, r#"version = "1.1""#);
    // File times have a coarse grain on some file systems: saved two seconds later.
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(before + std::time::Duration::from_secs(2))
        .unwrap();
    server.wait_for(|l| l.contains("now serving declaration version 1.1"));
    assert!(server.get("/privacy").contains("Watched Ltd"));
}

#[test]
fn serve_stops_cleanly_on_sigterm_and_leaves_the_folder_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    people(d, "people.csv", "email\nada@example.com\n");
    assert_eq!(
        code(&run(d, &["import", "--purpose", "accounts", "people.csv"])),
        0
    );
    let mut server = Server::start(d, &[]);
    assert!(server.get("/readyz").contains("true"));
    server.signal("-TERM");
    server.wait_for(|l| l == "stopped");
    let status = server.child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
    for wal in ["steward.db-wal", "keys.db-wal"] {
        let path = d.join("steward-data").join(wal);
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        assert_eq!(len, 0, "{wal} is folded back into its database at the stop");
    }
}

/// A valid master key of another store, as a file's contents.
fn another_key() -> String {
    let other = tempfile::tempdir().unwrap();
    assert_eq!(code(&run(other.path(), &["init"])), 0);
    people(other.path(), "p.csv", "email\nx@example.com\n");
    assert_eq!(
        code(&run(
            other.path(),
            &["import", "--purpose", "accounts", "p.csv"]
        )),
        0
    );
    std::fs::read_to_string(other.path().join("steward-data/master.key")).unwrap()
}

#[test]
fn an_interrupted_rotation_is_finished_first_and_a_wrong_key_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    people(d, "people.csv", "email\nada@example.com\nbo@example.com\n");
    assert_eq!(
        code(&run(d, &["import", "--purpose", "accounts", "people.csv"])),
        0
    );
    let data = d.join("steward-data");

    // A wrong key is refused before a new one is written.
    let wrong = steward()
        .current_dir(d)
        .env("STEWARD_MASTER_KEY", another_key().trim())
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert_eq!(code(&wrong), 2, "{}", stderr(&wrong));
    assert!(
        stderr(&wrong).contains("Nothing was changed"),
        "{}",
        stderr(&wrong)
    );
    assert!(!data.join("master.key.next").exists());

    // A rotation that stopped after writing its new key: nothing else runs until it is done.
    std::fs::write(data.join("master.key.next"), another_key()).unwrap();
    for args in [
        &["subject", "find", "--email", "ada@example.com"][..],
        &["serve", "--listen", "127.0.0.1:0"][..],
    ] {
        let out = run(d, args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("a key rotation was interrupted")
                && stderr(&out).contains("steward keys rotate"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let finished = run(d, &["keys", "rotate"]);
    assert_eq!(code(&finished), 0, "{}", stderr(&finished));
    assert!(
        stderr(&finished).contains("resuming"),
        "{}",
        stderr(&finished)
    );
    let found = run(d, &["subject", "find", "--email", "ada@example.com"]);
    assert_eq!(code(&found), 0, "{}", stderr(&found));
}

#[test]
fn a_missing_key_store_beside_data_is_an_error_and_no_key_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    people(d, "people.csv", "email\nada@example.com\n");
    assert_eq!(
        code(&run(d, &["import", "--purpose", "accounts", "people.csv"])),
        0
    );
    let data = d.join("steward-data");
    for file in ["master.key", "keys.db", "keys.db-wal", "keys.db-shm"] {
        let _ = std::fs::remove_file(data.join(file));
    }
    let out = run(d, &["import", "--purpose", "accounts", "people.csv"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the key store is missing or empty, but the data hold 1 people"),
        "{}",
        stderr(&out)
    );
    assert!(!data.join("master.key").exists());
}

#[test]
fn an_update_that_would_change_an_immutable_category_writes_nothing_of_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    people(
        d,
        "v1.csv",
        "email,username,user.name\nada@example.com,ada,Ada\n",
    );
    assert_eq!(
        code(&run(d, &["import", "--purpose", "accounts", "v1.csv"])),
        0
    );
    people(
        d,
        "v2.csv",
        "email,username,user.name\nada@example.com,ada_new,Ada Changed\n",
    );
    let out = run(
        d,
        &["import", "--purpose", "accounts", "v2.csv", "--update"],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("v2.csv:2: not updated: `user.account.username` can never be changed"),
        "{}",
        stderr(&out)
    );
    let id = stdout(&run(d, &["subject", "find", "--email", "ada@example.com"]))
        .trim()
        .to_owned();
    let shown = stdout(&run(d, &["subject", "show", &id, "--purpose", "accounts"]));
    assert!(
        shown.contains("\"Ada\"") && !shown.contains("Ada Changed"),
        "{shown}"
    );
}

#[test]
fn a_server_whose_database_files_are_removed_says_not_ready_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    let mut server = Server::start(d, &[]);
    assert!(server.get("/readyz").contains("true"));
    for file in ["steward.db", "steward.db-wal", "steward.db-shm"] {
        let _ = std::fs::remove_file(d.join("steward-data").join(file));
    }
    server.wait_for(|l| l.contains("can no longer write to the store safely"));
    let status = server.child.0.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(2),
        "it stops rather than write into a removed file"
    );
}
