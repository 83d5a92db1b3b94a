//! Privacy-centre sessions: a person who verified a request (by link or code) may, for
//! [`PERSON_SESSION`], see what is held on them and make further requests (correct a field,
//! withdraw a consent, restrict or object, close the account) without verifying again — the
//! address was proved minutes ago. The session is a signed token naming the verifying request
//! and its expiry; nothing is stored, so every server process sharing the store accepts it,
//! and each use re-reads the request and the vault (an erased person sees only what the law keeps).

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{
    AccessData, Intake, RequestError, RequestFilter, RequestStore, RequestView, Requests, Vouch,
    holder, person,
};
use crate::consent::TokenError;
use crate::identity::{Identity, IdentityKind};
use crate::request::{Request, Status};
use crate::subject::SubjectId;

/// How long a privacy-centre session lasts from verification: 30 minutes.
pub const PERSON_SESSION: Duration = Duration::minutes(30);

/// The token kind of a session (1: verification link, 2: download link).
const SESSION_TOKEN: u8 = 4;

/// A person's privacy-centre session, as read from its token.
#[derive(Debug, Clone)]
pub struct PersonSession {
    /// The request whose verification opened it.
    pub request: Uuid,
    /// The person the verified request was made for, or (for an address unknown then) the one
    /// holding it now; none when nobody does. An erased person's id stays: what the law keeps
    /// of them is all they see.
    pub subject: Option<SubjectId>,
    /// When it ends.
    pub expires_at: OffsetDateTime,
    /// The verified address, as an identity for the operator's own databases.
    verified: Vec<(String, String)>,
    email: String,
}

impl PersonSession {
    /// The verified address (shown to the person, who proved it; never logged).
    pub fn email(&self) -> &str {
        &self.email
    }
}

impl<S: RequestStore> Requests<S> {
    /// Opens a session for the person who verified request `id`: a token (for an `HttpOnly`
    /// cookie) and its expiry. Audited (`person.session`) without the address.
    ///
    /// # Errors
    /// [`RequestError::NotFound`]; [`RequestError::WrongState`] when the request was never
    /// verified.
    pub async fn open_session(&self, id: Uuid) -> Result<(String, OffsetDateTime), RequestError> {
        let access = person();
        let result = async {
            let mut req = self.load(id).await?;
            verified(&req)?;
            let expires = self.now() + PERSON_SESSION;
            // The newest session of a verification is the one that works; signing out ends it.
            let nonce = super::random_u64()?.max(1);
            req.details.verification.session = nonce;
            req.updated_at = self.now();
            self.save(&mut req, &[]).await?;
            self.audit(&access, "person.session", Some(&req), id.to_string(), None)
                .await?;
            Ok((self.token(SESSION_TOKEN, id, expires, nonce), expires))
        }
        .await;
        self.finish(&access, "person.session", id.to_string(), result)
            .await
    }

    /// Reads a session token: the verifying request must still exist and be verified, and
    /// the token must not have expired.
    ///
    /// # Errors
    /// [`RequestError::Token`] for a token that is forged, of another kind or expired.
    pub async fn session(&self, token: &str) -> Result<PersonSession, RequestError> {
        let (id, expires, nonce) = self.read_token(SESSION_TOKEN, token)?;
        if self.now().unix_timestamp() >= expires {
            return Err(TokenError::Expired.into());
        }
        let req = self.load(id).await?;
        verified(&req)?;
        if req.details.verification.session != nonce {
            return Err(RequestError::UsedToken);
        }
        let verified = self.verified_identity(&req)?;
        let email = verified.first().map(|(_, v)| v.clone()).unwrap_or_default();
        let identity =
            Identity::parse(IdentityKind::Email, &email).map_err(|_| RequestError::BadEmail)?;
        // The person the request was made for, even after their address changed; for an
        // address not known then, whoever holds it now.
        let subject = match req.subject {
            Some(s) => Some(s),
            None => self.ledger.vault().find(&identity).await?,
        };
        Ok(PersonSession {
            request: id,
            subject,
            expires_at: OffsetDateTime::from_unix_timestamp(expires)
                .map_err(|_| TokenError::Malformed)?,
            verified,
            email,
        })
    }

    /// Ends the session of `token` for every process (its verification opens no other until
    /// verified again). Audited (`person.sign-out`). A token that no longer works is
    /// already ended: `Ok`.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn close_session(&self, token: &str) -> Result<(), RequestError> {
        let Ok((id, _, nonce)) = self.read_token(SESSION_TOKEN, token) else {
            return Ok(());
        };
        let access = person();
        let result = async {
            let mut req = self.load(id).await?;
            if req.details.verification.session != nonce || nonce == 0 {
                return Ok(());
            }
            req.details.verification.session = 0;
            req.updated_at = self.now();
            self.save(&mut req, &[]).await?;
            self.audit(&access, "person.sign-out", Some(&req), id.to_string(), None)
                .await
        }
        .await;
        self.finish(&access, "person.sign-out", id.to_string(), result)
            .await
    }

    /// Makes a request for the person of `session`, for their own verified address: it
    /// counts as verified (method `session`) and is carried out as a verified request is.
    /// `intake.email` and `intake.verification` are ignored.
    ///
    /// # Errors
    /// As [`Requests::create`].
    pub async fn create_in_session(
        &self,
        session: &PersonSession,
        mut intake: Intake,
    ) -> Result<RequestView, RequestError> {
        let access = person();
        intake.email.clone_from(&session.email);
        intake.verification = None;
        let result = self
            .create_inner(&access, intake, Vouch::Session(session.request))
            .await;
        self.finish(&access, "request.create", "refused".to_owned(), result)
            .await
    }

    /// The person's requests, newest first: those on their record and the one that opened the
    /// session (the person's own view: no subject id).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn my_requests(
        &self,
        session: &PersonSession,
    ) -> Result<Vec<RequestView>, RequestError> {
        let now = self.now();
        let mut views = Vec::new();
        if let Some(subject) = session.subject {
            let filter = RequestFilter {
                subject: Some(subject),
                ..RequestFilter::default()
            };
            for r in self
                .ledger
                .vault()
                .store()
                .list_requests(&filter, 200)
                .await?
            {
                views.push(Request::from_record(r)?.view(now).without_subject());
            }
        }
        if !views.iter().any(|v| v.id == session.request) {
            views.push(
                self.load(session.request)
                    .await?
                    .view(now)
                    .without_subject(),
            );
        }
        views.sort_by_key(|v| std::cmp::Reverse(v.received_at));
        Ok(views)
    }

    /// Everything held on the person of `session` (their access package's content but the
    /// audit trail, which the package's download carries), read as the person (audited as
    /// their export).
    ///
    /// # Errors
    /// As [`Requests::gather`].
    pub async fn my_data(&self, session: &PersonSession) -> Result<AccessData, RequestError> {
        self.gather_parts(&holder(), None, session.subject, &session.verified, false)
            .await
    }
}

/// Whether `req` was verified (its person proved the address).
fn verified(req: &Request) -> Result<(), RequestError> {
    if req.details.verification.verified_at.is_none()
        || matches!(req.status, Status::AwaitingVerification | Status::Expired)
    {
        return Err(RequestError::WrongState {
            status: req.status,
            action: "used to open a session",
        });
    }
    Ok(())
}
