//! The breach register, the disclosure log and aggregates over HTTP (`/v1/incidents`,
//! `/v1/disclosures`, `/v1/aggregates`), and what the operator's application reads and
//! acknowledges: a person's in-app breach notices and the password resets it carried out.
//! Every handler calls the same domain as the CLI with the caller's `Access`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use steward_core::disclosures::{
    AggregateQuery, Dimension, DisclosureError, Disclosures, NewDisclosure, Tell,
};
use steward_core::incidents::{
    Derive, Exemption, IncidentError, Incidents, NewAssessment, NewIncident, Phase, Risk,
};
use steward_core::{Access, Store, SubjectId};
use time::OffsetDateTime;

use crate::error::{ApiError, body, subject_id};
use crate::state::ApiState;

impl From<IncidentError> for ApiError {
    fn from(e: IncidentError) -> Self {
        let status = match &e {
            IncidentError::Denied(_) => StatusCode::FORBIDDEN,
            IncidentError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            IncidentError::Conflict(_) => StatusCode::CONFLICT,
            IncidentError::NotFound => StatusCode::NOT_FOUND,
            IncidentError::Dataset(_) => StatusCode::BAD_GATEWAY,
            IncidentError::Store(_) | IncidentError::Vault(_) | IncidentError::Request(_) => {
                tracing::error!(target: "steward::incidents", code = e.code(), cause = %e, "the breach register failed");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the breach register failed; the operator's logs say why",
                );
            }
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<DisclosureError> for ApiError {
    fn from(e: DisclosureError) -> Self {
        let status = match &e {
            DisclosureError::Denied(_) => StatusCode::FORBIDDEN,
            DisclosureError::Invalid(_) | DisclosureError::UnknownSubject(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            DisclosureError::ConsentMissing { .. } => StatusCode::CONFLICT,
            DisclosureError::NotFound => StatusCode::NOT_FOUND,
            DisclosureError::Store(_) | DisclosureError::Vault(_) => {
                tracing::error!(target: "steward::disclosures", code = e.code(), cause = %e, "the disclosure log failed");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the disclosure log failed; the operator's logs say why",
                );
            }
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

fn register<S: Store>(state: &ApiState<S>) -> Incidents<S> {
    Incidents::new(std::sync::Arc::clone(&state.requests))
}

fn log<S: Store>(state: &ApiState<S>) -> Disclosures<S> {
    Disclosures::new(std::sync::Arc::clone(&state.ledger))
}

fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// An incident's path segment: its number or its id; anything else is no incident.
fn incident_ref(text: &str) -> Result<String, ApiError> {
    let plain = text.trim_start_matches('#');
    if plain.parse::<i64>().is_ok_and(|n| n > 0) || plain.parse::<uuid::Uuid>().is_ok() {
        Ok(plain.to_owned())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such incident: name it by its number or its id",
        ))
    }
}

fn subjects(list: &[String]) -> Result<Vec<SubjectId>, ApiError> {
    list.iter().map(|s| subject_id(s)).collect()
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    open: Option<bool>,
    due: Option<bool>,
}

/// `GET /v1/incidents`: the register, the newest first (`?open=true`: not closed;
/// `?due=true`: the clocks due soon or overdue).
pub(crate) async fn list<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "`open` and `due` are true or false",
        )
    })?;
    let reg = register(&state);
    if q.due == Some(true) {
        let due = reg.due(&access).await?;
        let items: Vec<_> = due
            .iter()
            .map(|(n, c)| serde_json::json!({ "incident": n, "clock": c }))
            .collect();
        return Ok(Json(serde_json::json!({ "due": items })).into_response());
    }
    let list = reg.list(&access, q.open == Some(true)).await?;
    Ok(Json(serde_json::json!({ "incidents": list })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenBody {
    title: String,
    #[serde(default)]
    description: Option<String>,
    categories: Vec<String>,
    #[serde(default)]
    systems: Option<Vec<String>>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    detected_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    aware_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    occurred_from: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    occurred_to: Option<OffsetDateTime>,
    #[serde(default)]
    estimated_records: Option<u64>,
}

/// `POST /v1/incidents`: open an incident.
pub(crate) async fn open<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    json: Result<Json<OpenBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let b = body(json)?;
    let systems_too_long = b
        .systems
        .as_ref()
        .is_some_and(|s| s.len() > 100 || s.iter().any(|x| x.chars().count() > 200));
    if b.estimated_records
        .is_some_and(|n| n > 9_007_199_254_740_991)
        || b.categories.len() > 100
        || systems_too_long
    {
        return Err(unprocessable(
            "invalid-incident",
            "at most 100 categories and 100 systems of 200 characters each, and `estimated_records` at most 2^53 − 1",
        ));
    }
    let new = NewIncident {
        title: b.title,
        description: b.description.unwrap_or_default(),
        detected_at: b.detected_at,
        aware_at: b.aware_at,
        occurred_from: b.occurred_from,
        occurred_to: b.occurred_to,
        systems: b.systems.unwrap_or_default(),
        categories: b.categories,
        estimated_records: b.estimated_records,
    };
    let v = register(&state).open(&access, new).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `GET /v1/incidents/{id}`: an incident with its clocks, people and notices.
pub(crate) async fn show<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let which = incident_ref(&id)?;
    Ok(Json(register(&state).find(&access, &which).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssessBody {
    risk: String,
    reason: String,
    #[serde(default)]
    consequences: Option<String>,
    #[serde(default)]
    measures: Option<String>,
    #[serde(default)]
    exemptions: Option<Vec<String>>,
    #[serde(default)]
    sealed_only: Option<bool>,
}

/// `POST /v1/incidents/{id}/assess`: assess (or reassess) the risk.
pub(crate) async fn assess<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    json: Result<Json<AssessBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let which = incident_ref(&id)?;
    let b = body(json)?;
    let risk: Risk = b.risk.parse().map_err(|e| unprocessable("bad-risk", e))?;
    let exemptions = b
        .exemptions
        .unwrap_or_default()
        .iter()
        .map(|x| x.parse::<Exemption>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unprocessable("bad-exemption", e))?;
    let new = NewAssessment {
        risk,
        reason: b.reason,
        consequences: b.consequences.unwrap_or_default(),
        measures: b.measures.unwrap_or_default(),
        exemptions,
        sealed_only: b.sealed_only.unwrap_or(false),
    };
    Ok(Json(register(&state).assess(&access, &which, new).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AffectedBody {
    #[serde(default)]
    categories: Option<bool>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    from: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    to: Option<OffsetDateTime>,
    #[serde(default)]
    subjects: Option<Vec<String>>,
    #[serde(default)]
    datasets: Option<bool>,
}

/// `POST /v1/incidents/{id}/affected`: find the people it affects.
pub(crate) async fn affected<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    json: Result<Json<AffectedBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let which = incident_ref(&id)?;
    let b = body(json)?;
    let listed = b.subjects.unwrap_or_default();
    if listed.len() > 100_000 {
        return Err(unprocessable(
            "too-many-subjects",
            "at most 100,000 subjects in one call; send the rest in another",
        ));
    }
    let derive = Derive {
        categories: b.categories.unwrap_or(false),
        actor: b.actor,
        from: b.from,
        to: b.to,
        subjects: subjects(&listed)?,
        datasets: b.datasets.unwrap_or(false),
    };
    Ok(Json(register(&state).derive(&access, &which, derive).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotifyBody {
    audience: String,
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    late_reason: Option<String>,
    #[serde(default)]
    reset_passwords: Option<bool>,
}

/// `POST /v1/incidents/{id}/notify`: record the authority's notification, or queue the
/// people's notices (the server sends them).
pub(crate) async fn notify<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    json: Result<Json<NotifyBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let which = incident_ref(&id)?;
    let b = body(json)?;
    let reg = register(&state);
    if b.late_reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 10_000)
    {
        return Err(unprocessable(
            "bad-reference",
            "`late_reason`: at most 10,000 characters",
        ));
    }
    match b.audience.as_str() {
        "authority" => {
            let phase: Phase = b
                .phase
                .as_deref()
                .unwrap_or("initial")
                .parse()
                .map_err(|e| unprocessable("bad-phase", e))?;
            if b.reference
                .as_ref()
                .is_some_and(|r| r.chars().count() > 200)
            {
                return Err(unprocessable(
                    "bad-reference",
                    "`reference`: at most 200 characters",
                ));
            }
            let v = reg
                .notify_authority(&access, &which, phase, b.reference, b.late_reason)
                .await?;
            Ok(Json(v).into_response())
        }
        "subjects" => {
            let (v, queued) = reg
                .notify_subjects(
                    &access,
                    &which,
                    b.reset_passwords.unwrap_or(false),
                    b.late_reason,
                )
                .await?;
            Ok(Json(serde_json::json!({ "incident": v, "queued": queued })).into_response())
        }
        _ => Err(unprocessable(
            "bad-audience",
            "`audience` is `authority` or `subjects`",
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloseBody {
    reason: String,
}

/// `POST /v1/incidents/{id}/close`.
pub(crate) async fn close<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    json: Result<Json<CloseBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let which = incident_ref(&id)?;
    let b = body(json)?;
    Ok(Json(register(&state).close(&access, &which, &b.reason).await?).into_response())
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportQuery {
    format: Option<String>,
}

/// `GET /v1/incidents/{id}/report?format=json|md|html`: the Art. 33(3) report.
pub(crate) async fn report<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let which = incident_ref(&id)?;
    let Query(q) = query.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "`format` is json, md or html",
        )
    })?;
    let format = q.format.unwrap_or_else(|| "json".to_owned());
    if !matches!(format.as_str(), "json" | "md" | "html") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "`format` is json, md or html",
        ));
    }
    let r = register(&state).report(&access, &which).await?;
    let (text, kind) = match format.as_str() {
        "md" => (r.markdown(), "text/markdown; charset=utf-8"),
        "html" => (r.html(), "text/html; charset=utf-8"),
        _ => return Ok(Json(r).into_response()),
    };
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetsBody {
    subjects: Vec<String>,
}

/// `POST /v1/incidents/{id}/password-resets`: the application acknowledges that these
/// people's passwords were reset (a service key).
pub(crate) async fn acknowledge_resets<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    json: Result<Json<ResetsBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let incident = id.parse::<uuid::Uuid>().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such incident: the webhook names it by its id",
        )
    })?;
    let b = body(json)?;
    if b.subjects.len() > 10_000 {
        return Err(unprocessable(
            "too-many-subjects",
            "at most 10,000 subjects in one acknowledgement",
        ));
    }
    let list = subjects(&b.subjects)?;
    let n = register(&state)
        .acknowledge_resets(&access, incident, &list)
        .await?;
    Ok(Json(serde_json::json!({ "acknowledged": n })).into_response())
}

/// `GET /v1/subjects/{id}/notices`: a person's in-app breach notices.
pub(crate) async fn notices<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let subject = subject_id(&id)?;
    let list = register(&state).notices(&access, subject).await?;
    Ok(Json(serde_json::json!({ "notices": list })).into_response())
}

/// `POST /v1/subjects/{id}/notices/{incident}/read`: the person read it.
pub(crate) async fn read_notice<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path((id, incident)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let subject = subject_id(&id)?;
    let incident = incident.parse::<uuid::Uuid>().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such notice: name the incident by the id the notice gives",
        )
    })?;
    if register(&state)
        .read_notice(&access, subject, incident)
        .await?
    {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no unread notice of this incident for this person",
        ))
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct DisclosureQuery {
    subject: Option<String>,
    recipient: Option<String>,
}

/// `GET /v1/disclosures`: the disclosure log, the newest first.
pub(crate) async fn disclosures<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    query: Result<Query<DisclosureQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "filter by `subject` (an id) and `recipient`",
        )
    })?;
    if q.recipient
        .as_ref()
        .is_some_and(|r| r.chars().count() > 200)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "`recipient` is a declared recipient's id, at most 200 characters",
        ));
    }
    let subject = q.subject.as_deref().map(subject_id).transpose()?;
    let list = log(&state)
        .list(&access, subject, q.recipient.as_deref(), 1000)
        .await?;
    Ok(Json(serde_json::json!({ "disclosures": list })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiscloseBody {
    recipient: String,
    categories: Vec<String>,
    #[serde(default)]
    subjects: Option<Vec<String>>,
    #[serde(default)]
    counterparts: Option<Vec<String>>,
    #[serde(default)]
    purpose: Option<String>,
    #[serde(default)]
    basis: Option<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    gag_until: Option<OffsetDateTime>,
    #[serde(default)]
    tell: Option<bool>,
}

/// `POST /v1/disclosures`: record data shared.
pub(crate) async fn disclose<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    json: Result<Json<DiscloseBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let b = body(json)?;
    let listed = b.subjects.unwrap_or_default();
    let counterparts = b.counterparts.unwrap_or_default();
    if listed.len() > 100_000 || counterparts.len() > 1000 || b.categories.len() > 100 {
        return Err(unprocessable(
            "too-many-subjects",
            "at most 100,000 subjects, 1,000 counterparts and 100 categories in one disclosure; record larger shares in parts",
        ));
    }
    let basis = match &b.basis {
        Some(text) => Some(
            steward_policy::declaration::LawfulBasis::parse(text).ok_or_else(|| {
                unprocessable(
                    "bad-basis",
                    "`basis` is consent, contract, legal-obligation, vital-interest, public-task or legitimate-interest",
                )
            })?,
        ),
        None => None,
    };
    let tell = match (b.tell, b.gag_until) {
        (Some(false), Some(_)) => {
            return Err(unprocessable(
                "bad-gag",
                "give `gag_until` (told after it) or `tell: false` (never told), not both",
            ));
        }
        (Some(false), None) => Some(Tell::Never),
        (_, Some(t)) => Some(Tell::After(t)),
        (_, None) => None,
    };
    let new = NewDisclosure {
        recipient: b.recipient,
        subjects: subjects(&listed)?,
        counterparts: subjects(&counterparts)?,
        categories: b.categories,
        purpose: b.purpose,
        basis,
        reference: b.reference,
        tell,
    };
    let d = log(&state).record(&access, new).await?;
    Ok((StatusCode::CREATED, Json(d)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AggregateBody {
    by: Vec<String>,
    #[serde(default)]
    categories: Option<Vec<String>>,
    #[serde(default)]
    share_with: Option<String>,
    #[serde(default)]
    reference: Option<String>,
}

/// `POST /v1/aggregates`: counts of people with every group under k suppressed.
pub(crate) async fn aggregate<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    json: Result<Json<AggregateBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let b = body(json)?;
    let too_long = |t: &Option<String>| t.as_ref().is_some_and(|t| t.chars().count() > 200);
    if b.by.len() > 5
        || b.categories.as_ref().is_some_and(|c| c.len() > 100)
        || too_long(&b.share_with)
        || too_long(&b.reference)
    {
        return Err(unprocessable(
            "bad-dimension",
            "at most 5 dimensions and 100 categories; `share_with` and `reference` at most 200 characters",
        ));
    }
    let by =
        b.by.iter()
            .map(|d| d.parse::<Dimension>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unprocessable("bad-dimension", e))?;
    let query = AggregateQuery {
        by,
        categories: b.categories.unwrap_or_default(),
        recipient: b.share_with,
        reference: b.reference,
    };
    Ok(Json(log(&state).aggregate(&access, &query).await?).into_response())
}
