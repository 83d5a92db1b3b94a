//! Requests from the command line: `steward request create|list|show|approve|deny|extend`
//! and `steward export`, on the starter declaration, as an operator answering a letter.

use std::io::Read as _;
use std::path::Path;

use super::{code, run, stderr, stdout};

fn json(out: &std::process::Output) -> serde_json::Value {
    assert_eq!(code(out), 0, "{}", stderr(out));
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

fn people(d: &Path) {
    assert_eq!(code(&run(d, &["init"])), 0);
    std::fs::write(
        d.join("people.csv"),
        "email,user.account.username\nada@example.com,ada-lovelace\nbob@example.com,bob-builder\n",
    )
    .unwrap();
    let import = run(d, &["import", "--purpose", "accounts", "people.csv"]);
    assert_eq!(code(&import), 0, "{}", stderr(&import));
}

#[test]
fn an_operator_takes_in_lists_shows_denies_and_extends_requests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    people(d);

    // Vouching is a verification method the declaration must offer (the starter does).
    let starter = std::fs::read_to_string(d.join("privacy.toml")).unwrap();
    let offered = "verification = [\"email-link\", \"account\"]";
    assert!(starter.contains(offered));
    std::fs::write(
        d.join("privacy.toml"),
        starter.replace(offered, "verification = [\"email-link\"]"),
    )
    .unwrap();
    let refused = run(
        d,
        &[
            "request",
            "create",
            "--kind",
            "access",
            "--email",
            "ada@example.com",
            "--vouch",
        ],
    );
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("verification by `account` is not offered")
            && stderr(&refused).contains("add \"account\" to `verification` in [rights]"),
        "{}",
        stderr(&refused)
    );
    let declaration = std::fs::read_to_string(d.join("privacy.toml")).unwrap();
    std::fs::write(
        d.join("privacy.toml"),
        declaration.replace(
            "verification = [\"email-link\"]",
            "verification = [\"account\", \"email-link\"]",
        ),
    )
    .unwrap();
    // A letter from Ada, whom the operator verified on the phone.
    let access = json(&run(
        d,
        &[
            "request",
            "create",
            "--kind",
            "access",
            "--email",
            "ada@example.com",
            "--vouch",
        ],
    ));
    assert_eq!(access["kind"], "access");
    assert_eq!(access["status"], "executing", "{access}");
    assert!(access["subject"].is_string(), "Ada is known: {access}");
    assert!(
        access["verification"]["vouched_by"] == "cli",
        "the vouching is recorded: {access}"
    );
    // One month on the starter's GDPR calendar.
    let received = access["received_at"].as_str().unwrap();
    let due = access["due_at"].as_str().unwrap();
    assert!(due > received, "{access}");

    // An erasure by e-mail from someone unverified: waits for the link `steward serve` sends.
    let erasure = json(&run(
        d,
        &[
            "request",
            "create",
            "--kind",
            "erasure",
            "--email",
            "bob@example.com",
        ],
    ));
    assert_eq!(erasure["status"], "awaiting-verification", "{erasure}");
    let erasure_id = erasure["id"].as_str().unwrap().to_owned();
    assert!(
        !stdout(&run(d, &["request", "show", &erasure_id])).contains("bob@example.com"),
        "the address is sealed, never shown"
    );

    let list = run(d, &["request", "list"]);
    assert_eq!(code(&list), 0, "{}", stderr(&list));
    let text = stdout(&list);
    assert!(text.contains(access["id"].as_str().unwrap()), "{text}");
    assert!(
        text.contains(&erasure_id) && text.contains("2 requests"),
        "{text}"
    );
    let only = stdout(&run(d, &["request", "list", "--kind", "erasure"]));
    assert!(
        only.contains(&erasure_id) && only.contains("1 request\n"),
        "{only}"
    );
    let overdue = stdout(&run(d, &["request", "list", "--overdue"]));
    assert!(
        overdue.contains("0 requests"),
        "nothing is overdue yet: {overdue}"
    );

    // Extended once, with the reason; a second extension is refused.
    let extended = json(&run(
        d,
        &[
            "request",
            "extend",
            &erasure_id,
            "--reason",
            "backups must be checked by hand",
        ],
    ));
    assert_eq!(
        extended["extension"]["reason"],
        "backups must be checked by hand"
    );
    assert!(
        extended["due_at"].as_str().unwrap() > erasure["due_at"].as_str().unwrap(),
        "{extended}"
    );
    let again = run(d, &["request", "extend", &erasure_id, "--reason", "again"]);
    assert_eq!(code(&again), 1, "{}", stdout(&again));
    assert!(
        stderr(&again).contains("already-extended"),
        "{}",
        stderr(&again)
    );

    // Approval only for a request awaiting it; denial once, with a reason.
    let approve = run(d, &["request", "approve", &erasure_id]);
    assert_eq!(code(&approve), 1);
    assert!(
        stderr(&approve).contains("wrong-state"),
        "{}",
        stderr(&approve)
    );
    let no_reason = run(d, &["request", "deny", &erasure_id, "--reason", " "]);
    assert_eq!(code(&no_reason), 1);
    assert!(
        stderr(&no_reason).contains("give a reason"),
        "{}",
        stderr(&no_reason)
    );
    let denied = json(&run(
        d,
        &[
            "request",
            "deny",
            &erasure_id,
            "--reason",
            "we could not confirm the address",
        ],
    ));
    assert_eq!(denied["status"], "denied");
    let twice = run(d, &["request", "deny", &erasure_id, "--reason", "again"]);
    assert_eq!(code(&twice), 1);
    assert!(stderr(&twice).contains("wrong-state"), "{}", stderr(&twice));
    let history: Vec<&str> = denied["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["received", "awaiting-verification", "denied"]);
    let closed = stdout(&run(d, &["request", "list", "--status", "denied"]));
    assert!(closed.contains(&erasure_id), "{closed}");
}

#[test]
fn request_commands_refuse_bad_input_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    people(d);
    for (args, needle) in [
        (
            &[
                "request",
                "create",
                "--kind",
                "teleport",
                "--email",
                "ada@example.com",
            ][..],
            "`teleport` is not a kind of request",
        ),
        (
            &[
                "request",
                "create",
                "--kind",
                "access",
                "--email",
                "not-an-address",
            ][..],
            "not a valid e-mail address",
        ),
        (
            &[
                "request",
                "create",
                "--kind",
                "rectification",
                "--email",
                "ada@example.com",
                "--change",
                "user.name",
            ][..],
            "CATEGORY=VALUE",
        ),
        (
            &[
                "request",
                "create",
                "--kind",
                "rectification",
                "--email",
                "ada@example.com",
                "--change",
                "user.account.username=ada2",
            ][..],
            "can never be changed",
        ),
        (&["request", "list", "--status", "sleeping"][..], "sleeping"),
        (
            &["request", "list", "--due-before", "tomorrow"][..],
            "RFC 3339",
        ),
        (&["request", "show", "42"][..], "not a request id"),
        (
            &["request", "show", "01a20000-0000-7000-8000-000000000000"][..],
            "no request has this id",
        ),
    ] {
        let out = run(d, args);
        assert_eq!(code(&out), 1, "{args:?}: {}", stdout(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("ada@example.com"),
            "no address in errors: {}",
            stderr(&out)
        );
    }
    assert!(
        stdout(&run(d, &["request", "list"])).contains("0 requests"),
        "nothing was taken in"
    );
}

#[test]
fn export_writes_one_persons_package_and_nothing_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    people(d);
    let out = run(
        d,
        &["export", "--email", "ada@example.com", "-o", "ada.zip"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("wrote ada.zip"), "{}", stderr(&out));
    let file = std::fs::File::open(d.join("ada.zip")).unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    for name in ["index.html", "data.json"] {
        assert!(names.iter().any(|n| n == name), "{names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with("csv/")), "{names:?}");
    let mut data = String::new();
    zip.by_name("data.json")
        .unwrap()
        .read_to_string(&mut data)
        .unwrap();
    assert!(data.contains("ada-lovelace"), "{data}");
    assert!(!data.contains("bob"), "nobody else's data: {data}");
    let mut index = String::new();
    zip.by_name("index.html")
        .unwrap()
        .read_to_string(&mut index)
        .unwrap();
    assert!(
        index.contains("ada-lovelace"),
        "the readable page shows the data"
    );

    // Someone unknown: an error, and no file (not even a partial one).
    let unknown = run(
        d,
        &["export", "--email", "zoe@example.com", "-o", "zoe.zip"],
    );
    assert_eq!(code(&unknown), 1);
    assert!(stderr(&unknown).contains("no subject has this e-mail address"));
    assert!(!d.join("zoe.zip").exists() && !d.join("zoe.zip.partial").exists());
    // A folder that does not exist: an error naming the file; nothing left behind.
    let nowhere = run(
        d,
        &[
            "export",
            "--email",
            "ada@example.com",
            "-o",
            "missing/ada.zip",
        ],
    );
    assert_eq!(code(&nowhere), 2);
    assert!(
        stderr(&nowhere).contains("cannot write missing/ada.zip"),
        "{}",
        stderr(&nowhere)
    );
    assert!(!d.join("missing").exists());
}
