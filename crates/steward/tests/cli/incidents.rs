//! Breach notices through a real SMTP exchange from the command line: a run killed midway and
//! run again tells every affected person exactly once; a mail server that is down leaves the
//! notices queued, and they go out once it is back.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::{example, run, stderr, stdout, steward};

/// A real SMTP server on loopback, on its own threads: every message it accepts is sent, as
/// its envelope recipient, on the channel.
fn sink() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(socket) = socket else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut write = socket.try_clone().unwrap();
                let mut lines = BufReader::new(socket).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n");
                let mut in_data = false;
                let mut to = String::new();
                while let Some(Ok(line)) = lines.next() {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            let _ = tx.send(std::mem::take(&mut to));
                            let _ = write.write_all(b"250 2.0.0 queued\r\n");
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    if verb == "RCPT" {
                        to = line.split(['<', '>']).nth(1).unwrap_or_default().to_owned();
                    }
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n");
                            return;
                        }
                        _ => b"250 2.0.0 ok\r\n",
                    };
                    if write.write_all(reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}

/// A vault of `n` people with e-mail addresses under seed 004, and incident 1 over their
/// addresses, its people found and its risk assessed high.
fn breach(dir: &Path, n: usize) {
    let mut csv = String::from("email,user.name\n");
    for i in 0..n {
        csv.push_str(&format!("person{i}@example.com,Person {i}\n"));
    }
    std::fs::write(dir.join("people.csv"), csv).unwrap();
    for args in [
        &["import", "--purpose", "account", "people.csv"][..],
        &[
            "incident",
            "open",
            "--title",
            "Support inbox exposed",
            "--categories",
            "user.contact.email",
        ],
        &["incident", "affected", "1", "--categories"],
        &[
            "incident",
            "assess",
            "1",
            "--risk",
            "high",
            "--reason",
            "addresses readable by anyone with the link",
            "--consequences",
            "phishing",
            "--measures",
            "link revoked",
        ],
    ] {
        let out = run(dir, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
}

fn notify(dir: &Path, smtp: &str, rate: &str) -> std::process::Command {
    let mut cmd = steward();
    cmd.current_dir(dir).args([
        "incident",
        "notify",
        "1",
        "--audience",
        "subjects",
        "--smtp-url",
        smtp,
        "--rate",
        rate,
    ]);
    cmd
}

/// `(state, count)` of incident 1's e-mail notices.
fn email_states(dir: &Path) -> Vec<(String, u64)> {
    let out = run(dir, &["incident", "show", "1", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "email")
        .map(|d| {
            (
                d["state"].as_str().unwrap().to_owned(),
                d["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_notification_killed_midway_and_run_again_tells_everyone_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(example("004-mailpro.toml"), dir.path().join("privacy.toml")).unwrap();
    breach(dir.path(), 40);
    let (port, received) = sink();
    let smtp = format!("smtp://127.0.0.1:{port}");
    let mut first = notify(dir.path(), &smtp, "8").spawn().unwrap();
    let mut to = Vec::new();
    while to.len() < 10 {
        to.push(received.recv_timeout(Duration::from_secs(30)).unwrap());
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let out = notify(dir.path(), &smtp, "1000").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    while let Ok(address) = received.recv_timeout(Duration::from_secs(2)) {
        to.push(address);
    }
    let states = email_states(dir.path());
    let count = |state: &str| {
        states
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n)
    };
    // At most the one message in flight at the kill is uncertain; it is never sent again.
    let uncertain = count("uncertain");
    assert!(uncertain <= 1, "{states:?}");
    assert_eq!(count("sent") + uncertain, 40, "{states:?}");
    let mut unique = to.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), to.len(), "nobody twice: {to:?}");
    assert!(
        to.len() as u64 >= count("sent") && to.len() as u64 <= 40,
        "every sent notice reached the server: {} of {states:?}",
        to.len()
    );
    // Nothing is left to send, and a third run says so.
    let again = notify(dir.path(), &smtp, "1000").output().unwrap();
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("nobody is notified twice"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn a_mail_server_that_is_down_leaves_the_notices_queued_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(example("004-mailpro.toml"), dir.path().join("privacy.toml")).unwrap();
    breach(dir.path(), 5);
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("smtp://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let out = notify(dir.path(), &down, "1000").output().unwrap();
    assert!(
        stderr(&out).contains("could not be reached"),
        "{}",
        stderr(&out)
    );
    assert_eq!(email_states(dir.path()), vec![("queued".to_owned(), 5)]);
    assert!(
        !stdout(&run(dir.path(), &["incident", "show", "1"])).contains("@"),
        "no address in the register's view"
    );
    // Back: the operator runs it again, and each is told once.
    let (port, received) = sink();
    let out = notify(dir.path(), &format!("smtp://127.0.0.1:{port}"), "1000")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut to: Vec<String> = received.try_iter().collect();
    to.sort();
    assert_eq!(
        to,
        (0..5)
            .map(|i| format!("person{i}@example.com"))
            .collect::<Vec<_>>()
    );
    assert_eq!(email_states(dir.path()), vec![("sent".to_owned(), 5)]);
}

#[test]
fn a_breach_of_the_operators_own_database_finds_its_people_in_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("app.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection as _;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite:{}?mode=rwc", db.display()))
            .await
            .unwrap();
        for statement in [
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT)",
            "INSERT INTO users VALUES (1, 'ana@example.com', 'Ana'), (2, 'ben@example.com', 'Ben'), (3, 'only-here@example.com', 'Oz')",
        ] {
            sqlx::query(statement).execute(&mut c).await.unwrap();
        }
    });
    std::fs::write(d.join("app-url"), format!("sqlite:{}", db.display())).unwrap();
    std::fs::write(
        d.join("app.toml"),
        format!(
            "[dataset]\nname = \"app\"\nurl_file = \"{}\"\n\n[[tables]]\nname = \"users\"\npurpose = \"account\"\nprimary_key = [\"id\"]\nerase = \"delete\"\nfields = [\n  {{ name = \"email\", category = \"user.contact.email\", identity = \"email\" }},\n  {{ name = \"name\", category = \"user.name\" }},\n]\n",
            d.join("app-url").display()
        ),
    )
    .unwrap();
    let declaration = std::fs::read_to_string(example("004-mailpro.toml")).unwrap()
        + "\n[[datasets]]\nid = \"app\"\nmanifest = \"app.toml\"\n";
    std::fs::write(d.join("privacy.toml"), declaration).unwrap();
    std::fs::write(
        d.join("people.csv"),
        "email,user.name\nana@example.com,Ana\nben@example.com,Ben\ncarl@example.com,Carl\n",
    )
    .unwrap();
    for args in [
        &["import", "--purpose", "account", "people.csv"][..],
        &[
            "incident",
            "open",
            "--title",
            "Application database copied",
            "--categories",
            "user.name",
        ],
    ] {
        let out = run(d, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let out = run(
        d,
        &[
            "incident",
            "affected",
            "1",
            "--datasets",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["affected"]["by_source"],
        serde_json::json!([["dataset", 2]]),
        "{v}"
    );
    assert_eq!(
        v["datasets"],
        serde_json::json!({ "rows": 3, "outside_vault": 1 }),
        "the third is known only to the application's database: {v}"
    );
    let report = stdout(&run(d, &["incident", "report", "1"]));
    assert!(
        report.contains("about 1 more known only to the controller's own databases")
            && report.contains("3 rows in the controller's own databases"),
        "{report}"
    );
}
