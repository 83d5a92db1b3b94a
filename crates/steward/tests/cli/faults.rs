//! The store keeps its promises under faults (issue 16): a disk that fills and frees again.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use super::first_hour::Server;
use super::operations::{call, key};
use super::{code, run};

/// A tmpfs of `size` mounted at a folder, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` where this process may not mount (not root): the caller says it skipped,
    /// and fails instead under CI, which runs as root.
    fn mount(at: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            return Some(Self(at.to_owned()));
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must be able to mount a tmpfs at {}",
            at.display()
        );
        eprintln!(
            "skipped: the disk-full test mounts a tmpfs, which needs root (run the tests as root to include it)"
        );
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem holding `file` to within `spare` bytes of full.
fn fill(file: &Path, spare: u64) {
    let mut f = std::fs::File::create(file).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
    let written = f.metadata().unwrap().len();
    f.set_len(written.saturating_sub(spare)).unwrap();
    f.sync_all().unwrap();
}

fn person(i: usize) -> Value {
    json!({
        "purpose": "accounts",
        "identities": [{ "kind": "email", "value": format!("person{i}@example.com") }],
        "fields": { "user.name": format!("Person {i} {}", "x".repeat(1500)) },
    })
}

/// The API as the admin key calls it.
struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        call(&self.client, method, url, &self.key, body).await
    }

    async fn create(&self, i: usize) -> (u16, Value) {
        self.send(Method::POST, "/v1/subjects", Some(person(i)))
            .await
    }

    /// The status of a look-up of person `i`'s address.
    async fn lookup(&self, i: usize) -> u16 {
        self.lookup_email(&format!("person{i}@example.com")).await
    }

    /// The status of a look-up of `email`.
    async fn lookup_email(&self, email: &str) -> u16 {
        let body = json!({ "kind": "email", "value": email });
        self.send(Method::POST, "/v1/subjects/lookup", Some(body))
            .await
            .0
    }

    /// The status and text of a read of subject `id` for `accounts`.
    async fn read(&self, id: &str) -> (u16, String) {
        let answer = self
            .client
            .get(format!("{}/v1/subjects/{id}", self.base))
            .bearer_auth(&self.key)
            .header("Steward-Purpose", "accounts")
            .send()
            .await
            .unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    }
}

/// A starter site in `d` whose data folder is a 6 MiB tmpfs, served, with an admin key; `None`
/// where this process may not mount.
fn start(d: &Path) -> Option<(Tmpfs, Server, Api)> {
    let mount = Tmpfs::mount(&d.join("steward-data"), "6m")?;
    assert_eq!(code(&run(d, &["init"])), 0);
    let server = Server::start(d, &[]);
    let api = Api {
        client: crate::client(),
        base: server.base.clone(),
        key: key(d, "admin"),
    };
    Some((mount, server, api))
}

#[test]
fn a_disk_that_fills_and_frees_loses_no_created_person_and_leaves_no_half_written_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some((_mount, server, mut api)) = start(d) else {
        return;
    };
    let filler = d.join("steward-data").join("filler");
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // 1. The disk fills while people are created: some answers are 201, then failures.
    fill(&filler, 1024 * 1024);
    let (mut created, mut failed) = (Vec::new(), Vec::new());
    runtime.block_on(async {
        let mut failures_in_a_row = 0;
        for i in 0..3000 {
            let (status, body) = api.create(i).await;
            match status {
                201 => {
                    created.push((i, body["id"].as_str().unwrap().to_owned()));
                    failures_in_a_row = 0;
                }
                500..=599 => {
                    failed.push(i);
                    failures_in_a_row += 1;
                    if failures_in_a_row == 8 {
                        break;
                    }
                }
                other => panic!("person {i}: {other} {body}"),
            }
        }
    });
    assert!(!failed.is_empty(), "the disk never filled");

    // Erasures on the full disk: each is done whole or not at all.
    let erasing: Vec<(usize, String)> = created.drain(..3.min(created.len())).collect();
    let erased: Vec<u16> = runtime.block_on(async {
        let mut statuses = Vec::new();
        for (_, id) in &erasing {
            let path = format!("/v1/subjects/{id}");
            statuses.push(api.send(Method::DELETE, &path, None).await.0);
        }
        statuses
    });
    eprintln!(
        "{} created and {} failed as the disk filled; erasures on the full disk answered {erased:?}",
        created.len() + erasing.len(),
        failed.len()
    );

    // 2. Space returns: the same process writes again, and nobody whose create failed is
    // half there — not found, and created anew.
    std::fs::remove_file(&filler).unwrap();
    runtime.block_on(async {
        let (status, body) = api.create(100_000).await;
        assert_eq!(status, 201, "writes work again once space returns: {body}");
        created.push((100_000, body["id"].as_str().unwrap().to_owned()));
        for &i in &failed {
            let found = api.lookup(i).await;
            assert_eq!(found, 404, "person {i}, whose create failed, is not found");
            let (status, body) = api.create(i).await;
            assert_eq!(status, 201, "person {i} is created anew: {body}");
            created.push((i, body["id"].as_str().unwrap().to_owned()));
        }
        // An erasure that answered 200 is complete; one that failed left the person whole
        // or erased, never found but unreadable.
        for ((i, id), status) in erasing.iter().zip(&erased) {
            let (read, _) = api.read(id).await;
            let found = api.lookup(*i).await;
            match (status, read, found) {
                (200 | 500..=599, 404, 404) | (500..=599, 200, 200) => {}
                other => panic!("person {i}: erasure, read, look-up answered {other:?}"),
            }
            if read == 200 {
                created.push((*i, id.clone()));
            }
        }
    });

    // 3. After a restart every 201 is there, whole, and the audit chain verifies.
    server.signal("-TERM");
    drop(server);
    let server = Server::start(d, &[]);
    api.base.clone_from(&server.base);
    runtime.block_on(async {
        for (i, id) in &created {
            let (status, body) = api.read(id).await;
            assert_eq!(status, 200, "person {i}, answered 201, is kept: {body}");
            assert!(
                body.contains(&format!("Person {i} ")),
                "person {i} is whole: {body}"
            );
        }
        let (status, verified) = api.send(Method::GET, "/v1/audit/verify", None).await;
        assert_eq!(status, 200, "{verified}");
        assert_eq!(verified["intact"], true, "{verified}");
    });
}

#[test]
fn erasures_corrections_and_consent_on_a_nearly_full_disk_keep_their_audit_entry_and_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some((_mount, server, api)) = start(d) else {
        return;
    };
    let filler = d.join("steward-data").join("filler");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The audit entries of `action` for subject `id`.
    let entries = |id: &str, action: &str| {
        let path = format!("/v1/audit?subject={id}");
        let (status, body) = runtime.block_on(api.send(Method::GET, &path, None));
        assert_eq!(status, 200, "{body}");
        body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action && e["outcome"] == "ok")
            .count()
    };
    let mut outcomes = Vec::new();
    // From 2 to 24 pages of 4 KiB left: the failures land at every step of each write.
    for (round, pages) in (2..=24).step_by(2).enumerate() {
        let (status, body) = runtime.block_on(api.create(round));
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let (status, body) = runtime.block_on(api.create(1000 + round));
        assert_eq!(status, 201, "{body}");
        let consenting = body["id"].as_str().unwrap().to_owned();
        fill(&filler, pages * 4096);
        let (granted, _) = runtime.block_on(api.send(
            Method::POST,
            "/v1/consent",
            Some(json!({ "subject": consenting, "action": "grant", "purpose": "newsletter" })),
        ));
        let new_email = format!("moved{round}@example.com");
        let (moved, _) = runtime.block_on(api.send(
            Method::PATCH,
            &format!("/v1/subjects/{consenting}/fields"),
            Some(json!({ "purpose": "accounts", "category": "user.contact.email", "value": new_email })),
        ));
        let (corrected, _) = runtime.block_on(api.send(
            Method::PATCH,
            &format!("/v1/subjects/{id}/fields"),
            Some(json!({ "purpose": "accounts", "category": "user.name", "value": format!("Corrected {round}") })),
        ));
        let (erased, _) =
            runtime.block_on(api.send(Method::DELETE, &format!("/v1/subjects/{id}"), None));
        std::fs::remove_file(&filler).unwrap();
        // The server is still there, and ready.
        let (ready, body) = runtime.block_on(api.send(Method::GET, "/readyz", None));
        assert_eq!(ready, 200, "after {pages} pages: {body}");
        // A correction answered 204 is audited; one that failed changed nothing.
        let (read, text) = runtime.block_on(api.read(&id));
        match corrected {
            204 => assert_eq!(entries(&id, "subject.rectify"), 1, "round {round}"),
            _ => assert!(
                read == 404 || !text.contains(&format!("Corrected {round}")),
                "round {round}: a failed correction changed the value: {text}"
            ),
        }
        // An erasure answered 200 is audited; one cut off is finished (within seconds) and
        // audited then; one that failed before its keys went leaves the person whole.
        let mut done = read == 404;
        for _ in 0..40 {
            if done || erased == 200 {
                break;
            }
            runtime.block_on(async {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            });
            let (read, _) = runtime.block_on(api.read(&id));
            done = read == 404;
        }
        let found = runtime.block_on(api.lookup(round));
        if erased == 200 || done {
            assert_eq!(found, 404, "round {round}: erased, yet found");
            assert!(
                entries(&id, "subject.erase") >= 1,
                "round {round}: an erasure without its audit entry"
            );
        } else {
            assert_eq!(found, 200, "round {round}: not erased, yet not found");
        }
        // An e-mail correction moves the identity with its entry, or leaves it where it was.
        let (found_new, found_old) = runtime.block_on(async {
            (
                api.lookup_email(&new_email).await,
                api.lookup(1000 + round).await,
            )
        });
        let recorded = entries(&consenting, "subject.rectify");
        match moved {
            204 => assert_eq!(
                (found_new, found_old, recorded),
                (200, 404, 1),
                "round {round}"
            ),
            _ => assert_eq!(
                (found_new, found_old, recorded),
                (404, 200, 0),
                "round {round}: {moved}"
            ),
        }
        // Every grant on the ledger has its audit entry, and none without.
        let path = format!("/v1/subjects/{consenting}/consent");
        let (status, history) = runtime.block_on(api.send(Method::GET, &path, None));
        assert_eq!(status, 200, "{history}");
        let grants = history["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "grant")
            .count();
        assert_eq!(
            grants,
            entries(&consenting, "consent.grant"),
            "round {round}: grant {granted}: {history}"
        );
        outcomes.push((pages, granted, moved, corrected, erased));
    }
    eprintln!("pages left → consent, e-mail correction, correction, erasure: {outcomes:?}");
    let (status, verified) = runtime.block_on(api.send(Method::GET, "/v1/audit/verify", None));
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["intact"], true, "{verified}");
    drop(server);
}
