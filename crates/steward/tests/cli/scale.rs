//! Several `steward serve` on one store (one SQLite data folder; one PostgreSQL when
//! `STEWARD_TEST_POSTGRES` is set): a consent withdrawn through one process is answered by
//! another within a second, even while that one's job queue hangs on a mail server.

use std::io::Read as _;
use std::time::Duration;

use super::limits::{PgDatabase, serve};
use super::{code, example, stderr, steward};

/// A mail server that takes every connection and never says a word: whatever sends mail to
/// it waits (here, a server's job queue). Returns its URL and a count of the
/// connections it took.
fn silent_smtp() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&taken);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(stream);
        }
        // Never reached: the streams stay open, unanswered, until the test ends.
        for mut s in held {
            let _ = s.read(&mut [0; 1]);
        }
    });
    (url, taken)
}

fn permits_follow_another_process_while_the_jobs_hang(database: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let decl = example("004-mailpro.toml");
    let mut create = steward();
    create.current_dir(d).args([
        "apikey",
        "create",
        "--role",
        "service",
        "-d",
        decl.to_str().unwrap(),
    ]);
    if let Some(url) = database {
        create.env("STEWARD_DATABASE_URL", url);
    }
    let out = create.output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (smtp, taken) = silent_smtp();
    let (_a, a) = serve(d, database, &["--smtp-url", &smtp]);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = crate::client();
        let post = |base: &str, path: &str, body: serde_json::Value| {
            client
                .post(format!("{base}{path}"))
                .bearer_auth(&key)
                .json(&body)
                .send()
        };
        let created = post(
            &a,
            "/v1/subjects",
            serde_json::json!({
                "purpose": "account",
                "identities": [{ "kind": "email", "value": "ada@example.com" }],
            }),
        )
        .await
        .unwrap();
        assert_eq!(created.status(), 201);
        let id = created.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let consent = |base: String, action: &'static str| {
            post(
                &base,
                "/v1/consent",
                serde_json::json!({
                    "subject": id, "action": action, "purpose": "advertising",
                    "method": "form", "notice": "2019-02-05",
                }),
            )
        };
        assert!(
            consent(a.clone(), "grant")
                .await
                .unwrap()
                .status()
                .is_success()
        );
        let permit = |base: String| {
            let url = format!("{base}/v1/permits?subject={id}&purpose=advertising");
            let request = client.get(url).bearer_auth(&key);
            async move {
                let body: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
                body["allowed"].as_bool().unwrap()
            }
        };
        // A's job queue takes the verification mail of an access request and hangs on the
        // mail server that never answers.
        let intake = post(
            &a,
            "/v1/requests",
            serde_json::json!({
                "kind": "access", "email": "ada@example.com",
            }),
        )
        .await
        .unwrap();
        assert!(
            intake.status().is_success(),
            "{}",
            intake.text().await.unwrap()
        );
        let mut waited = 0;
        while taken.load(std::sync::atomic::Ordering::SeqCst) < 1 {
            waited += 1;
            assert!(waited < 500, "A's job queue never tried to send the mail");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // B, started now, learns of A's grant.
        let (_b, b) = serve(d, database, &["--smtp-url", &smtp]);
        let mut waited = 0;
        while !permit(b.clone()).await {
            waited += 1;
            assert!(waited < 100, "B never saw the grant");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Withdrawn through B while A's queue hangs: A answers it within a second.
        assert!(
            consent(b.clone(), "withdraw")
                .await
                .unwrap()
                .status()
                .is_success()
        );
        let withdrawn = tokio::time::Instant::now();
        while permit(a.clone()).await {
            assert!(
                withdrawn.elapsed() < Duration::from_secs(1),
                "A still permits a second after the withdrawal through B"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}

#[test]
fn a_withdrawal_through_one_server_reaches_another_on_one_sqlite_folder_within_a_second_while_its_jobs_hang()
 {
    permits_follow_another_process_while_the_jobs_hang(None);
}

#[test]
fn a_withdrawal_through_one_server_reaches_another_on_one_postgresql_within_a_second_while_its_jobs_hang()
 {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    permits_follow_another_process_while_the_jobs_hang(Some(&db.url));
}
