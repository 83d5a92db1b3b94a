//! The two mailers: SMTP (lettre, rustls) when configured, else an outbox folder in the data
//! directory, one `.eml` file per message, for the operator to inspect or hand to their mailer.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use steward_core::mail::{Mail, MailError, Mailer};

fn message(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|_| MailError("the recipient's address is not a valid e-mail address".into()))?;
    let mut message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(mail.text.clone())
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
            let message = message(&self.from, mail)?;
            self.transport
                .send(message)
                .await
                .map(|_| ())
                // lettre's errors name the server's reply, never the message.
                .map_err(|e| MailError(format!("the SMTP server refused or failed: {e}")))
        })
    }
}

/// Writes each message to a folder.
#[derive(Debug)]
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
    counter: AtomicU64,
}

impl OutboxMailer {
    /// An outbox in `dir` (created when the first message is written).
    pub fn new(dir: PathBuf, from: &str) -> Result<Self, MailError> {
        let from = from
            .parse()
            .map_err(|_| MailError("--mail-from is not an e-mail address".into()))?;
        Ok(Self {
            dir,
            from,
            counter: AtomicU64::new(0),
        })
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
            let message = message(&self.from, mail)?;
            let mut id = [0u8; 8];
            steward_crypto::random_bytes(&mut id)
                .map_err(|e| MailError(format!("no randomness for a file name: {e}")))?;
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let name = format!(
                "{n:06}-{}-{}.eml",
                mail.kind.replace('.', "-"),
                steward_core::audit::hex(&id)
            );
            let failed = |e: std::io::Error| {
                MailError(format!(
                    "cannot write to the outbox {}: {e}",
                    self.dir.display()
                ))
            };
            tokio::fs::create_dir_all(&self.dir).await.map_err(failed)?;
            let tmp = self.dir.join(format!(".{name}.tmp"));
            tokio::fs::write(&tmp, message.formatted())
                .await
                .map_err(failed)?;
            tokio::fs::rename(&tmp, self.dir.join(&name))
                .await
                .map_err(failed)
        })
    }
}
