//! Mail Steward sends to people: one [`Mailer`] for every message (double opt-in
//! confirmations, policy notices, request updates). The SMTP and outbox-folder mailers live in
//! the server crate; every message sent is also written to the audit trail, without its body.

use std::future::Future;
use std::pin::Pin;

/// One message.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// Extra headers (`List-Unsubscribe`, …).
    pub headers: Vec<(String, String)>,
    /// What kind of message it is, for the audit (`consent.confirm`, `policy.notice`).
    pub kind: &'static str,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The address and the body are personal data: never in a log line.
        f.debug_struct("Mail")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A message could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mail could not be sent: {0}")]
pub struct MailError(pub String);

impl MailError {
    /// What a failure whose message may have reached the server ends with.
    const MAYBE: &'static str = " (the message may have arrived)";

    /// A failure after the message may have reached the server: the connection broke, or
    /// the answer never came or could not be read. Sending it again may send it twice.
    pub fn maybe_delivered(text: impl Into<String>) -> Self {
        Self(format!("{}{}", text.into(), Self::MAYBE))
    }

    /// Whether the message may have reached the server despite the failure.
    pub fn may_have_arrived(&self) -> bool {
        self.0.ends_with(Self::MAYBE)
    }
}

/// Sends mail.
pub trait Mailer: Send + Sync + 'static {
    /// Sends `mail`, returning once the server (or the outbox folder) has it.
    fn send<'a>(
        &'a self,
        mail: &'a Mail,
    ) -> Pin<Box<dyn Future<Output = Result<(), MailError>> + Send + 'a>>;
}
