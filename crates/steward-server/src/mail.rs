//! The two mailers: SMTP (lettre, rustls) when configured, else an outbox folder in the data
//! directory, one `.eml` file per message, for the operator to inspect or hand to their mailer.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use steward_core::mail::{Mail, MailError, Mailer};

/// The message as it goes out: `Date`, a `Message-ID` in the sender's domain and
/// `MIME-Version: 1.0` (RFC 5322, RFC 2045 — large providers refuse mail without a
/// Message-ID), the text as one UTF-8 plain-text part, the recipient's domain in its ASCII
/// form so any SMTP server takes it, and the mail's own headers (RFC 8058's among them).
fn message(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    let to: Mailbox = steward_core::identity::smtp_address(&mail.to)
        .parse()
        .map_err(|_| MailError("the recipient's address is not a valid e-mail address".into()))?;
    let mut id = [0u8; 16];
    steward_crypto::random_bytes(&mut id)
        .map_err(|e| MailError(format!("no randomness for a Message-ID: {e}")))?;
    let domain = steward_core::identity::smtp_address(from.email.as_ref())
        .rsplit_once('@')
        .map_or_else(|| "localhost".to_owned(), |(_, d)| d.to_owned());
    let mut message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .message_id(Some(format!(
            "<{}@{domain}>",
            steward_core::audit::hex(&id)
        )))
        .singlepart(SinglePart::plain(mail.text.clone()))
        .map_err(|e| MailError(format!("the message could not be built: {e}")))?;
    for (name, value) in &mail.headers {
        let name = HeaderName::new_from_ascii(name.clone())
            .map_err(|_| MailError(format!("`{name}` is not a valid header name")))?;
        message
            .headers_mut()
            .insert_raw(HeaderValue::new(name, value.clone()));
    }
    Ok(message)
}

/// Sends over SMTP.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.write_str("SmtpMailer(<configured>)")
    }
}

impl SmtpMailer {
    /// A mailer for `url` (`smtps://user:pass@host:465` for TLS, `smtp://host:587?tls=required`
    /// for STARTTLS, `smtp://127.0.0.1:2525` for a plain local relay), sending from `from`.
    pub fn new(url: &str, from: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| {
                MailError(format!(
                    "--smtp-url is not a usable SMTP address ({e}); write smtps://USER:PASSWORD@HOST:465 or smtp://HOST:587?tls=required"
                ))
            })?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from = from.parse().map_err(|_| {
            MailError("--mail-from is not an e-mail address; write for example privacy@example.com or \"Example Privacy <privacy@example.com>\"".into())
        })?;
        Ok(Self { transport, from })
    }
}

impl Mailer for SmtpMailer {
    fn send<'a>(
        &'a self,
        mail: &'a Mail,
    ) -> Pin<Box<dyn Future<Output = Result<(), MailError>> + Send + 'a>> {
        Box::pin(async move {
            let message = message(&self.from, mail).inspect_err(|_| {
                crate::telemetry::delivered("mail", "failed");
            })?;
            let sent = self.transport.send(message).await.map(|_| ()).map_err(|e| {
                // A refusal with a status, a connection or TLS handshake that failed: the
                // server does not have the message. Anything else (the link broke, the
                // answer never came) may have come after the server took it.
                let refused = e.is_permanent()
                    || e.is_transient()
                    || e.is_tls()
                    || e.is_client()
                    || format!("{e:?}").contains("kind: Connection");
                if refused {
                    MailError(smtp_failure(&e))
                } else {
                    MailError::maybe_delivered(smtp_failure(&e))
                }
            });
            crate::telemetry::delivered("mail", if sent.is_ok() { "sent" } else { "failed" });
            sent
        })
    }
}

/// What an SMTP failure says without the server's reply text, which often repeats the
/// recipient's address (`550 5.1.1 <ana@example.com>: Recipient address rejected`): the
/// status code and whether it is permanent, or the kind of failure.
fn smtp_failure(e: &lettre::transport::smtp::Error) -> String {
    let kind = if e.is_permanent() {
        "refused it for good"
    } else if e.is_transient() {
        "refused it for now"
    } else if e.is_timeout() {
        "did not answer in time"
    } else if e.is_tls() {
        "could not be reached over TLS"
    } else {
        "could not be reached or failed"
    };
    match e.status() {
        Some(code) => format!("the SMTP server {kind} (status {code})"),
        None => format!("the SMTP server {kind}"),
    }
}

/// Writes each message to a folder.
#[derive(Debug)]
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    /// An outbox in `dir` (created when the first message is written).
    pub fn new(dir: PathBuf, from: &str) -> Result<Self, MailError> {
        let from = from
            .parse()
            .map_err(|_| MailError("--mail-from is not an e-mail address".into()))?;
        Ok(Self { dir, from })
    }

    /// The folder.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Mailer for OutboxMailer {
    fn send<'a>(
        &'a self,
        mail: &'a Mail,
    ) -> Pin<Box<dyn Future<Output = Result<(), MailError>> + Send + 'a>> {
        Box::pin(async move {
            let message = message(&self.from, mail).inspect_err(|_| {
                crate::telemetry::delivered("mail", "failed");
            })?;
            // Named in the order written (a UUIDv7 is time-ordered), across restarts.
            let name = format!(
                "{}-{}.eml",
                uuid::Uuid::now_v7().simple(),
                mail.kind.replace('.', "-")
            );
            let failed = |e: std::io::Error| {
                MailError(format!(
                    "cannot write to the outbox {}: {e}",
                    self.dir.display()
                ))
            };
            // The messages hold live verification and download links: owner-only.
            let dir = self.dir.clone();
            let bytes = message.formatted();
            let sent = tokio::task::spawn_blocking(move || {
                steward_core::files::private_dir(&dir)?;
                let tmp = dir.join(format!(".{name}.tmp"));
                steward_core::files::write_private(&tmp, &bytes)?;
                std::fs::rename(&tmp, dir.join(&name))
            })
            .await
            .map_err(|e| failed(std::io::Error::other(e)))
            .and_then(|written| written.map_err(failed));
            crate::telemetry::delivered("mail", if sent.is_ok() { "written" } else { "failed" });
            sent
        })
    }
}
