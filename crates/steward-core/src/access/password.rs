//! Staff passwords: Argon2id (RFC 9106) with OWASP's parameters — 19 MiB, 2 passes, 1 lane —
//! run on a fixed pool of [`WORKERS`] threads, each reusing one memory buffer.
//!
//! Each check needs 19 MiB for as long as it runs. Were every sign-in to allocate its own (and
//! run on any of tokio's up to 512 blocking threads), a burst of anonymous sign-ins would make
//! the server hold hundreds of MiB, and the allocator would keep much of it afterwards. Here at
//! most [`WORKERS`] checks run at once, at most [`QUEUE`] wait, the rest are refused at once
//! ([`PasswordError::Busy`]); each worker keeps its buffer while busy and frees it after a
//! minute without work, so memory returns to the idle figure after a burst.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use zeroize::Zeroizing;

/// Checks run at once.
pub const WORKERS: usize = 2;
/// Checks that may wait for a worker; one more is refused as busy.
pub const QUEUE: usize = 64;
/// A worker frees its memory after this long without work.
const IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// Why a password could not be hashed or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Every worker is busy and the queue is full.
    #[error(
        "too many sign-ins at once: try again in a few seconds (at most {WORKERS} passwords are checked at a time)"
    )]
    Busy,
    /// The hash could not be made.
    #[error("the password could not be hashed: {0}")]
    Failed(String),
}

/// OWASP's Argon2id recommendation: 19 MiB, 2 passes, 1 lane, a 32-byte hash.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, Some(32)).unwrap_or_default()
}

enum Task {
    Hash(Zeroizing<String>),
    Verify {
        hash: String,
        password: Zeroizing<String>,
    },
}

enum Answer {
    Hashed(Result<String, String>),
    Verified(bool),
}

struct Job {
    task: Task,
    reply: tokio::sync::oneshot::Sender<Answer>,
}

fn workers() -> Option<&'static SyncSender<Job>> {
    static QUEUE_IN: OnceLock<Option<SyncSender<Job>>> = OnceLock::new();
    QUEUE_IN
        .get_or_init(|| {
            let (tx, rx) = sync_channel::<Job>(QUEUE);
            let rx = Arc::new(Mutex::new(rx));
            let mut started = 0;
            for n in 0..WORKERS {
                let rx = Arc::clone(&rx);
                if std::thread::Builder::new()
                    .name(format!("steward-argon2-{n}"))
                    .spawn(move || work(&rx))
                    .is_ok()
                {
                    started += 1;
                }
            }
            (started > 0).then_some(tx)
        })
        .as_ref()
}

/// A worker: takes jobs one at a time, with one buffer kept between them.
fn work(queue: &Mutex<Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let next = match queue.lock() {
            Ok(rx) => rx.recv_timeout(IDLE),
            Err(_) => return,
        };
        let job = match next {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                // Idle: hand the 19 MiB back.
                memory = Vec::new();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let answer = match &job.task {
            Task::Hash(password) => Answer::Hashed(hash_with(password, &mut memory)),
            Task::Verify { hash, password } => {
                Answer::Verified(verify_with(hash, password, &mut memory))
            }
        };
        let _ = job.reply.send(answer);
    }
}

/// Argon2id of `password` and `salt` into `out`, with `params`, in `memory` (resized to fit).
fn argon2id(
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), argon2::Error> {
    let blocks = params.block_count();
    if memory.len() != blocks {
        *memory = vec![Block::default(); blocks];
    }
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password_into_with_memory(
        password,
        salt,
        out,
        memory.as_mut_slice(),
    )
}

fn hash_with(password: &str, memory: &mut Vec<Block>) -> Result<String, String> {
    let mut salt = [0u8; 16];
    steward_crypto::random_bytes(&mut salt).map_err(|e| e.to_string())?;
    let params = params();
    let mut out = [0u8; 32];
    argon2id(params.clone(), password.as_bytes(), &salt, &mut out, memory)
        .map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(Salt::new(&salt).map_err(|e| e.to_string())?),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `hash` (compared in constant time).
fn verify_with(hash: &str, password: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(phc) = PasswordHash::new(hash) else {
        return false;
    };
    if phc.algorithm != ARGON2ID_IDENT {
        return false;
    }
    let (Some(salt), Some(expected), Ok(params)) = (&phc.salt, &phc.hash, Params::try_from(&phc))
    else {
        return false;
    };
    let mut out = Zeroizing::new(vec![0u8; expected.len()]);
    argon2id(params, password.as_bytes(), salt, &mut out, memory).is_ok()
        && steward_crypto::constant_time_eq(&out, expected.as_ref())
}

async fn submit(task: Task) -> Result<Answer, PasswordError> {
    let queue =
        workers().ok_or_else(|| PasswordError::Failed("no password worker could start".into()))?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    match queue.try_send(Job { task, reply }) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return Err(PasswordError::Busy),
        Err(TrySendError::Disconnected(_)) => {
            return Err(PasswordError::Failed("the password workers stopped".into()));
        }
    }
    answer
        .await
        .map_err(|_| PasswordError::Failed("a password worker stopped".into()))
}

/// Hashes `password` with Argon2id and a random 16-byte salt: a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub async fn hash(password: &str) -> Result<String, PasswordError> {
    match submit(Task::Hash(Zeroizing::new(password.to_owned()))).await? {
        Answer::Hashed(h) => h.map_err(PasswordError::Failed),
        Answer::Verified(_) => Err(PasswordError::Failed(
            "a worker answered the wrong job".into(),
        )),
    }
}

/// Whether `password` matches the PHC string `hash`. Takes as long for a malformed or dummy
/// hash as for a real one of the same parameters.
pub async fn verify(hash: &str, password: &str) -> Result<bool, PasswordError> {
    let task = Task::Verify {
        hash: hash.to_owned(),
        password: Zeroizing::new(password.to_owned()),
    };
    match submit(task).await? {
        Answer::Verified(ok) => Ok(ok),
        Answer::Hashed(_) => Err(PasswordError::Failed(
            "a worker answered the wrong job".into(),
        )),
    }
}

/// A valid hash of a password nobody knows, checked when a sign-in names no account so that
/// it takes as long as one that does.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c3Rld2FyZC1kdW1teS1zYWx0$5jzUrzYtJ5I7Gfk0rEl8F8A3U3FoVBbZ0kI3Z7fUuTk";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The workers and their queue are one per process: a test that fills them on purpose
    /// runs alone, or another test's hash would be refused as busy.
    static POOL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    #[tokio::test]
    async fn passwords_are_hashed_with_argon2id_and_checked() {
        let _alone = POOL.lock().await;
        let hash = hash("correct horse battery").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify(&hash, "correct horse battery").await.unwrap());
        assert!(!verify(&hash, "correct horse battery!").await.unwrap());
        assert!(!verify("not a hash", "x").await.unwrap());
        // The library's own verifier agrees with the hashes the workers make.
        use argon2::password_hash::PasswordVerifier as _;
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        // The dummy hash is a real one of the same parameters, so checking it costs the same.
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(Params::try_from(&dummy).unwrap().m_cost(), 19 * 1024);
        assert!(!verify(DUMMY_HASH, "steward").await.unwrap());
    }

    #[tokio::test]
    async fn a_burst_beyond_the_queue_is_refused_as_busy_not_queued_without_end() {
        let _alone = POOL.lock().await;
        let total = WORKERS + QUEUE + 20;
        let mut pending = Vec::new();
        for n in 0..total {
            pending.push(tokio::spawn(async move {
                verify(DUMMY_HASH, &format!("guess {n}")).await
            }));
        }
        let mut busy = 0;
        for p in pending {
            if p.await.unwrap() == Err(PasswordError::Busy) {
                busy += 1;
            }
        }
        assert!(busy >= 1, "some of the burst is refused");
        // (Another test may hold a worker meanwhile.)
        assert!(total - busy >= QUEUE, "the queue takes its {QUEUE}");
    }
}
