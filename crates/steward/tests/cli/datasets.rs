//! `steward datasets` (issue 17) against WordPress 6.1's own schema on the MariaDB running here:
//! a manifest written, checked against the declaration and the live schema, a person found,
//! erased dry and for real, each audited.

use std::process::Command;

use super::{code, run, stderr, stdout};

/// A database with WordPress's schema and two members, and its URL; `None` without
/// STEWARD_TEST_MYSQL (CI sets it, and fails rather than skip).
fn wordpress(name: &str) -> Option<String> {
    let Ok(admin) = std::env::var("STEWARD_TEST_MYSQL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI sets STEWARD_TEST_MYSQL"
        );
        eprintln!("skipped: set STEWARD_TEST_MYSQL to run the datasets commands on MariaDB");
        return None;
    };
    let mariadb = |db: &str, sql: &str| {
        let status = Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-u", "root", db, "-e", sql])
            .status()
            .unwrap();
        assert!(status.success(), "{sql}");
    };
    mariadb(
        "mysql",
        &format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}"),
    );
    let schema = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../steward-connect/tests/data/wordpress-6.1-schema.sql"),
    )
    .unwrap();
    mariadb(name, &schema);
    mariadb(
        name,
        "INSERT INTO wp_users (ID, user_login, user_pass, user_nicename, user_email, user_url, user_registered, display_name) VALUES (1, 'ana', 'h', 'ana', 'ana@example.com', '', NOW(), 'Ana López'), (2, 'ben', 'h', 'ben', 'ben@example.com', '', NOW(), 'Ben Ito'); INSERT INTO wp_usermeta (user_id, meta_key, meta_value) VALUES (1, 'first_name', 'Ana'), (2, 'first_name', 'Ben');",
    );
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(b, _)| b)
        .to_owned();
    Some(format!("{base}/{name}"))
}

fn drop_database(name: &str) {
    let _ = Command::new("mariadb")
        .args([
            "-h",
            "127.0.0.1",
            "-u",
            "root",
            "-e",
            &format!("DROP DATABASE {name}"),
        ])
        .status();
}

/// The starter declaration with the categories WordPress holds beyond it declared.
fn declare_what_wordpress_holds(declaration: &str) -> String {
    declaration
        .replace(
            "categories = [\"user.account.username\", \"user.contact.email\", \"user.name\", \"user.authorization.password\"]",
            "categories = [\"user.account.username\", \"user.contact.email\", \"user.name\", \"user.authorization.password\", \"user.contact.social_url\", \"user.demographic.profile\", \"user.settings\", \"user.unique_id\"]",
        )
        .replace(
            "categories = [\"user.name\", \"user.contact.email\", \"user.content.public\", \"user.device.ip_address\"]",
            "categories = [\"user.name\", \"user.contact.email\", \"user.content.public\", \"user.device.ip_address\", \"user.contact.social_url\", \"user.device.telemetry\", \"user.unique_id\"]",
        )
}

#[test]
fn a_wordpress_site_is_checked_searched_and_erased_from_the_command_line() {
    let name = format!("steward_cli_wp_{}", std::process::id());
    let Some(url) = wordpress(&name) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    let written = run(
        d,
        &["datasets", "template", "wordpress", "-o", "wordpress.toml"],
    );
    assert_eq!(code(&written), 0, "{}", stderr(&written));
    // Never over an existing file.
    assert_eq!(
        code(&run(
            d,
            &["datasets", "template", "wordpress", "-o", "wordpress.toml"]
        )),
        1
    );
    let mut declaration = std::fs::read_to_string(d.join("privacy.toml")).unwrap();
    declaration.push_str("\n[[datasets]]\nid = \"wordpress\"\nmanifest = \"wordpress.toml\"\n");
    std::fs::write(d.join("privacy.toml"), declaration).unwrap();
    let steward = |args: &[&str]| {
        super::steward()
            .current_dir(d)
            .env("WORDPRESS_DATABASE_URL", &url)
            .args(args)
            .output()
            .unwrap()
    };

    // The starter declaration does not declare every category WordPress holds: each is named.
    let checked = steward(&["datasets", "check"]);
    assert_eq!(code(&checked), 1, "{}", stderr(&checked));
    let report = stderr(&checked);
    assert!(
        report.contains("checked against its live schema"),
        "{report}"
    );
    assert!(
        report.contains(
            "`user_url` holds user.contact.social_url, which purpose `accounts` does not collect"
        ),
        "{report}"
    );
    assert!(
        !report.contains(&url) && !report.contains("root@"),
        "no URL: {report}"
    );

    // Declared, the manifest checks clean; then an access package holds the site's rows, for
    // a person the vault does not know too.
    let fixed =
        declare_what_wordpress_holds(&std::fs::read_to_string(d.join("privacy.toml")).unwrap());
    std::fs::write(d.join("privacy.toml"), fixed).unwrap();
    let clean = steward(&["datasets", "check"]);
    assert_eq!(code(&clean), 0, "{}", stderr(&clean));
    // A server starts while the site's database cannot be reached (here: its URL not given),
    // and says that requests needing it wait.
    {
        use std::io::BufRead as _;
        let mut child = super::steward()
            .current_dir(d)
            .env_remove("WORDPRESS_DATABASE_URL")
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let _running = super::Running(child);
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let started = line.trim().starts_with("http://");
            seen.push(line);
            if started {
                break;
            }
        }
        let seen = seen.join("\n");
        assert!(
            seen.contains("serving without dataset `wordpress` connected")
                && seen.contains("WORDPRESS_DATABASE_URL")
                && seen.contains("http://"),
            "{seen}"
        );
    }
    let exported = steward(&["export", "--email", "ben@example.com", "-o", "ben.zip"]);
    assert_eq!(code(&exported), 0, "{}", stderr(&exported));
    let mut zip = zip::ZipArchive::new(std::fs::File::open(d.join("ben.zip")).unwrap()).unwrap();
    let mut json = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("data.json").unwrap(), &mut json).unwrap();
    assert!(
        json.contains("Ben Ito") && !json.contains("ana@example.com"),
        "{json}"
    );

    // Found: Ana's rows, not Ben's.
    let found = steward(&["datasets", "find", "--email", "Ana@Example.com"]);
    assert_eq!(code(&found), 0, "{}", stderr(&found));
    let text = stdout(&found);
    assert!(
        text.contains("Ana López") && text.contains("first_name"),
        "{text}"
    );
    assert!(!text.contains("Ben"), "{text}");

    // A dry run lists the statements and changes nothing; the erasure then removes her.
    let dry = steward(&[
        "datasets",
        "find",
        "--email",
        "ana@example.com",
        "--erase",
        "--dry-run",
    ]);
    assert_eq!(code(&dry), 0, "{}", stderr(&dry));
    assert!(
        stdout(&dry).contains("DELETE FROM `wp_users`"),
        "{}",
        stdout(&dry)
    );
    assert!(
        stdout(&steward(&[
            "datasets",
            "find",
            "--email",
            "ana@example.com"
        ]))
        .contains("Ana López")
    );
    let erased = steward(&["datasets", "find", "--email", "ana@example.com", "--erase"]);
    assert_eq!(code(&erased), 0, "{}", stderr(&erased));
    assert!(
        stdout(&erased).contains("wp_users: 1 rows deleted"),
        "{}",
        stdout(&erased)
    );
    let after = stdout(&steward(&[
        "datasets",
        "find",
        "--email",
        "ana@example.com",
    ]));
    assert!(
        after.contains("0 rows") && !after.contains("Ana"),
        "{after}"
    );
    assert!(
        stdout(&steward(&[
            "datasets",
            "find",
            "--email",
            "ben@example.com"
        ]))
        .contains("Ben Ito")
    );

    // An erasure request reaches the site's database too: Ben, whom the vault does not know,
    // asks (vouched for by staff) and is erased there; the request says what was done.
    // The server runs the job queue; it reads the URL from a file, as a container secret.
    std::fs::write(d.join("db-url"), format!("{url}\n")).unwrap();
    let manifest = std::fs::read_to_string(d.join("wordpress.toml"))
        .unwrap()
        .replace(
            "url_env = \"WORDPRESS_DATABASE_URL\"",
            "url_file = \"db-url\"",
        );
    std::fs::write(d.join("wordpress.toml"), manifest).unwrap();
    let _server = super::first_hour::Server::start(d, &[]);
    let requested = steward(&[
        "request",
        "create",
        "--kind",
        "erasure",
        "--email",
        "ben@example.com",
        "--vouch",
    ]);
    assert_eq!(code(&requested), 0, "{}", stderr(&requested));
    let created: serde_json::Value = serde_json::from_str(&stdout(&requested)).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let mut shown = String::new();
    for _ in 0..100 {
        shown = stdout(&steward(&["request", "show", &id]));
        if shown.contains("\"completed\"") {
            break;
        }
        std::thread::park_timeout(std::time::Duration::from_millis(200));
    }
    assert!(shown.contains("\"completed\""), "{shown}");
    assert!(shown.contains("wordpress.wp_users: 1 deleted"), "{shown}");
    let gone = stdout(&steward(&[
        "datasets",
        "find",
        "--email",
        "ben@example.com",
    ]));
    assert!(
        gone.contains("0 rows") && !gone.contains("Ben Ito"),
        "{gone}"
    );

    // Every look and every change is audited, without the address.
    let audit = stdout(&run(d, &["audit", "export"]));
    for action in ["dataset.find", "dataset.erase-plan", "dataset.erase"] {
        assert!(audit.contains(action), "{action} is audited");
    }
    assert!(
        !audit.contains("ana@example.com"),
        "no address in the audit"
    );
    drop_database(&name);
}

#[test]
fn a_fides_dataset_file_is_imported_with_every_unmapped_thing_said() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let yaml = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/fides-example-dataset.yml");
    let yaml = yaml.to_str().unwrap();
    let imported = run(
        d,
        &[
            "datasets",
            "import-fides",
            yaml,
            "--purpose",
            "orders",
            "-o",
            "shop.toml",
        ],
    );
    assert_eq!(code(&imported), 0, "{}", stderr(&imported));
    let said = stderr(&imported);
    for expected in [
        "note: `service_request.email`: Fides files it as system.operations",
        "note: collection `visit`: no primary key in the Fides file",
        "11 tables imported",
    ] {
        assert!(said.contains(expected), "missing {expected:?} in\n{said}");
    }
    let manifest = std::fs::read_to_string(d.join("shop.toml")).unwrap();
    assert!(manifest.contains("url_env = \"POSTGRES_EXAMPLE_TEST_DATASET_DATABASE_URL\""));
    steward_connect::Manifest::parse(&manifest).unwrap();
    // Never over an existing file; a file that is not a Fides dataset says what one is.
    let again = run(
        d,
        &[
            "datasets",
            "import-fides",
            yaml,
            "--purpose",
            "orders",
            "-o",
            "shop.toml",
        ],
    );
    assert_eq!(code(&again), 1);
    std::fs::write(d.join("bad.yml"), "collections: [1, 2]\n").unwrap();
    let bad = run(
        d,
        &["datasets", "import-fides", "bad.yml", "--purpose", "orders"],
    );
    assert_eq!(code(&bad), 1);
    assert!(
        stderr(&bad).contains("a Fides dataset file is `dataset:`"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn a_scan_proposes_a_manifest_and_never_echoes_the_url() {
    let name = format!("steward_cli_scan_{}", std::process::id());
    let Some(url) = wordpress(&name) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scanned = super::steward()
        .current_dir(d)
        .env("WORDPRESS_DATABASE_URL", &url)
        .args([
            "datasets",
            "scan",
            "--url-env",
            "WORDPRESS_DATABASE_URL",
            "--purpose",
            "accounts",
            "-o",
            "proposed.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&scanned), 0, "{}", stderr(&scanned));
    let text = std::fs::read_to_string(d.join("proposed.toml")).unwrap();
    assert!(
        text.contains("url_env = \"WORDPRESS_DATABASE_URL\""),
        "{text}"
    );
    assert!(text.contains("identity = \"email\""), "{text}");
    assert!(!text.contains("root@") && !stderr(&scanned).contains("root@"));
    let unset = super::steward()
        .current_dir(d)
        .env_remove("NOPE_DATABASE_URL")
        .args([
            "datasets",
            "scan",
            "--url-env",
            "NOPE_DATABASE_URL",
            "--purpose",
            "accounts",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&unset), 1);
    assert!(stderr(&unset).contains("NOPE_DATABASE_URL is not set"));
    drop_database(&name);
}

#[test]
fn the_wordpress_seed_sites_name_a_manifest_that_fits_their_declaration() {
    let live = wordpress(&format!("steward_cli_seeds_{}", std::process::id()));
    for seed in ["000-mallegro", "001-wordpress-support-portal", "003-allcot"] {
        let dir = tempfile::tempdir().unwrap();
        let declaration = super::example(&format!("{seed}.toml"));
        let mut command = super::steward();
        command
            .current_dir(dir.path())
            .env_remove("WORDPRESS_DATABASE_URL")
            .args(["datasets", "check", "-d"])
            .arg(&declaration);
        let checked = command.output().unwrap();
        assert_eq!(code(&checked), 0, "{seed}: {}", stderr(&checked));
        assert!(
            stderr(&checked).contains("WORDPRESS_DATABASE_URL"),
            "{seed}: {}",
            stderr(&checked)
        );
        // Against WordPress 6.1's own schema: every table and column is there.
        if let Some(url) = &live {
            let checked = super::steward()
                .current_dir(dir.path())
                .env("WORDPRESS_DATABASE_URL", url)
                .args(["datasets", "check", "-d"])
                .arg(&declaration)
                .output()
                .unwrap();
            assert_eq!(code(&checked), 0, "{seed}: {}", stderr(&checked));
            assert!(
                stderr(&checked).contains("checked against its live schema"),
                "{seed}: {}",
                stderr(&checked)
            );
        }
    }
    if live.is_some() {
        drop_database(&format!("steward_cli_seeds_{}", std::process::id()));
    }
}

#[test]
fn check_reads_the_manifests_the_declaration_names_as_serve_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    assert_eq!(
        code(&run(
            d,
            &["datasets", "template", "wordpress", "-o", "wordpress.toml"]
        )),
        0
    );
    let mut declaration = std::fs::read_to_string(d.join("privacy.toml")).unwrap();
    declaration.push_str("\n[[datasets]]\nid = \"wordpress\"\nmanifest = \"wordpress.toml\"\n");
    std::fs::write(d.join("privacy.toml"), &declaration).unwrap();
    let checked = run(d, &["check"]);
    assert_eq!(code(&checked), 1, "{}", stdout(&checked));
    let report = stdout(&checked);
    assert!(
        report.contains("error[dataset-manifest]: dataset `wordpress`: table `wp_users`: `user_url` holds user.contact.social_url"),
        "{report}"
    );
    // A manifest that cannot be read is named with the line that names it.
    std::fs::write(
        d.join("privacy.toml"),
        declaration.replace("wordpress.toml\"", "missing.toml\""),
    )
    .unwrap();
    let missing = run(d, &["check"]);
    assert_eq!(code(&missing), 1);
    assert!(
        stdout(&missing).contains("error[dataset-manifest-unusable]")
            && stdout(&missing).contains("manifest = \"missing.toml\""),
        "{}",
        stdout(&missing)
    );
}

#[test]
fn a_wordpress_comment_past_its_period_is_anonymised_by_the_retention_sweep() {
    let name = format!("steward_cli_wp_retention_{}", std::process::id());
    let Some(url) = wordpress(&name) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    assert_eq!(
        code(&run(
            d,
            &["datasets", "template", "wordpress", "-o", "wordpress.toml"]
        )),
        0
    );
    // The site keeps comments 2 years, and the manifest names the column dating them.
    let declaration =
        declare_what_wordpress_holds(&std::fs::read_to_string(d.join("privacy.toml")).unwrap())
            .replace(
                "retention = \"indefinite: a published comment stays with its article\"",
                "retention = \"2 years after collection\"",
            );
    std::fs::write(
        d.join("privacy.toml"),
        format!("{declaration}\n[[datasets]]\nid = \"wordpress\"\nmanifest = \"wordpress.toml\"\n"),
    )
    .unwrap();
    let manifest = std::fs::read_to_string(d.join("wordpress.toml")).unwrap();
    let steward = |args: &[&str]| {
        super::steward()
            .current_dir(d)
            .env("WORDPRESS_DATABASE_URL", &url)
            .args(args)
            .output()
            .unwrap()
    };
    // Without the column, check says the promise cannot be kept.
    let checked = steward(&["datasets", "check"]);
    assert!(
        stderr(&checked).contains("no column dates its rows"),
        "{}",
        stderr(&checked)
    );
    std::fs::write(
        d.join("wordpress.toml"),
        manifest.replacen(
            "name = \"wp_comments\"\npurpose = \"comments\"\n",
            "name = \"wp_comments\"\npurpose = \"comments\"\nretention = { column = \"comment_date_gmt\" }\n",
            1,
        ),
    )
    .unwrap();
    let mariadb = |sql: &str| {
        let out = Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-u", "root", "-N", &name, "-e", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sql}");
        String::from_utf8(out.stdout).unwrap()
    };
    mariadb(
        "INSERT INTO wp_comments (comment_ID, comment_post_ID, comment_author, comment_author_email, comment_author_IP, comment_date, comment_date_gmt, comment_content, comment_agent, user_id) VALUES (1, 1, 'Ana', 'ana@example.com', '10.0.0.1', '2020-01-01', '2020-01-01', 'Old', 'UA', 1), (2, 1, 'Ben', 'ben@example.com', '10.0.0.2', NOW(), UTC_TIMESTAMP(), 'New', 'UA', 2); INSERT INTO wp_commentmeta (comment_id, meta_key, meta_value) VALUES (1, 'akismet_result', 'false'), (2, 'akismet_result', 'false');",
    );
    let rules = steward(&["retention", "rules"]);
    assert!(
        stdout(&rules).contains("dataset:wordpress/wp_comments"),
        "{}",
        stdout(&rules)
    );
    let due = |out: &std::process::Output| -> u64 {
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", stderr(out)));
        v["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["rule"] == "dataset:wordpress/wp_comments")
            .map(|l| l["due"].as_u64().unwrap())
            .sum()
    };
    let plan = steward(&["retention", "plan", "--format", "json"]);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert_eq!(due(&plan), 1, "the 2020 comment only");
    let swept = steward(&["retention", "run", "--format", "json"]);
    assert_eq!(code(&swept), 0, "{}", stderr(&swept));
    // The comment and its meta row.
    assert_eq!(due(&swept), 2, "{}", stdout(&swept));
    assert_eq!(
        mariadb(
            "SELECT comment_ID, comment_author, comment_author_email, comment_author_IP, user_id, comment_content FROM wp_comments ORDER BY comment_ID"
        ),
        "1\tAnonymous\t\t\t0\tOld\n2\tBen\tben@example.com\t10.0.0.2\t2\tNew\n"
    );
    assert_eq!(
        mariadb("SELECT comment_id FROM wp_commentmeta ORDER BY comment_id"),
        "2\n"
    );
    // Nothing twice; the audit names the rule and the count, and still verifies.
    let again = steward(&["retention", "run", "--format", "json"]);
    assert_eq!(due(&again), 0, "{}", stdout(&again));
    let audit = steward(&["audit", "verify"]);
    assert_eq!(code(&audit), 0, "{}", stderr(&audit));
    drop_database(&name);
}
