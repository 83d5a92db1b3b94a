//! The API's OpenAPI 3.1 document, served at `/openapi.json` and checked into the repository
//! as `openapi.json`; a test fails when the two drift, and another calls every operation it
//! lists to prove it is routed.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

/// The document.
pub fn document() -> Value {
    let auth = json!([{ "apiKey": [] }, { "session": [] }]);
    let reason = json!({ "name": "Steward-Reason", "in": "header", "required": false, "description": "The ticket a support-role caller works on (e.g. `ZD-4821`): required of support, recorded and flagged in the audit. 1–64 letters, digits or `-_.:#/`.", "schema": { "type": "string", "maxLength": 64 } });
    let denied = error_response(
        "The role or scope does not allow this (`operation-not-allowed`, `purpose-out-of-scope`, `category-out-of-scope`, `marketing-purpose`, `ticket-required`, `invalid-csrf`, `cross-origin`). Audited.",
    );
    let unauthorized = error_response(
        "No valid API key or session (`unauthorized`, `invalid-key`, `revoked-key`, `expired-key`, `invalid-session`, `expired-session`). Audited.",
    );
    let id_param = json!({ "name": "id", "in": "path", "required": true, "description": "The subject id (a UUIDv7).", "schema": { "type": "string", "format": "uuid" } });
    let request_param = json!({ "name": "id", "in": "path", "required": true, "description": "The request id, as returned when the request was made.", "schema": { "type": "string", "format": "uuid" } });
    let request_view = json!({ "description": "The request.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Request" } } } });
    let request_errors = |extra: &[(&str, &str)]| {
        let mut texts = std::collections::BTreeMap::from([
            (
                "400",
                "Not a request id (`invalid-id`) or not JSON of this schema.".to_owned(),
            ),
            (
                "404",
                "No request has this id (`unknown-request`).".to_owned(),
            ),
        ]);
        for (status, text) in extra {
            let t = texts.entry(status).or_default();
            *t = if t.is_empty() {
                (*text).to_owned()
            } else {
                format!("{t} {text}")
            };
        }
        let mut r: serde_json::Map<String, Value> = texts
            .into_iter()
            .map(|(status, text)| (status.to_owned(), error_response(&text)))
            .collect();
        r.insert("401".into(), unauthorized.clone());
        r.insert("403".into(), denied.clone());
        Value::Object(r)
    };
    let with = |mut base: Value, ok: (&str, Value)| {
        base[ok.0] = ok.1;
        base
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Steward API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Personal records sealed per subject: create, look up, read for a declared purpose, rectify, export, erase; the audit trail and its verification; the consent ledger and permits; data-subject requests (staff: `/v1/requests`; the person: `/requests`, see docs/requests.md); staff sessions. The public consent endpoints (`/consent.js`, `/consent/choices`, the confirm, unsubscribe and accept links, `/.well-known/gpc.json`) are described in docs/consent.md. Identities travel only in request bodies, never in URLs. Every call, allowed or refused, is written to the hash-chained audit trail; every response carries a `Steward-Request-Id` header naming its audit entries."
        },
        "components": {
            "securitySchemes": {
                "apiKey": { "type": "http", "scheme": "bearer", "description": "An API key from `steward apikey create`: `Authorization: Bearer stw_…`. Its role (admin, dpo, support, service, auditor) and scope bound what it may do." },
                "session": { "type": "apiKey", "in": "cookie", "name": "__Host-steward-session", "description": "A staff session from POST /v1/session. Calls other than GET also need the session's CSRF token in `X-CSRF-Token`." } },
            "schemas": {
                "Error": { "type": "object", "required": ["error", "message"], "properties": {
                    "error": { "type": "string", "description": "A stable code, e.g. `duplicate-identity`." },
                    "message": { "type": "string", "description": "What is wrong and how to fix it. Never holds personal data." } } },
                "Identity": { "type": "object", "required": ["kind", "value"], "additionalProperties": false, "properties": {
                    "kind": { "type": "string", "description": "`email`, `phone`, `username`, or a custom kind such as `customer-number`." },
                    "value": { "type": "string", "maxLength": 320 } } },
                "CreateSubject": { "type": "object", "required": ["purpose", "identities"], "additionalProperties": false, "properties": {
                    "purpose": { "type": "string", "description": "The declared purpose the data is collected for; it must collect every category sent." },
                    "source": { "type": "string", "description": "`form`, `import`, `api` (default) or `third-party:<processor id>`." },
                    "identities": { "type": "array", "minItems": 1, "items": { "$ref": "#/components/schemas/Identity" } },
                    "fields": { "type": "object", "description": "Values by data category key (`user.name`).", "additionalProperties": { "type": "string", "maxLength": 65536 } } } },
                "SubjectId": { "type": "object", "required": ["id"], "properties": { "id": { "type": "string", "format": "uuid" } } },
                "Field": { "type": "object", "required": ["id", "category", "purpose", "source", "collected_at", "value"], "properties": {
                    "id": { "type": "string", "format": "uuid" }, "category": { "type": "string" }, "purpose": { "type": "string" },
                    "source": { "type": "string" }, "collected_at": { "type": "string", "format": "date-time" }, "value": { "type": "string" } } },
                "Subject": { "type": "object", "required": ["id", "identities", "fields"], "properties": {
                    "id": { "type": "string", "format": "uuid" },
                    "identities": { "type": "array", "items": { "type": "array", "prefixItems": [{ "type": "string" }, { "type": "string" }], "description": "[kind, value]" } },
                    "fields": { "type": "array", "items": { "$ref": "#/components/schemas/Field" } } } },
                "Rectify": { "type": "object", "required": ["purpose", "category", "value"], "additionalProperties": false, "properties": {
                    "purpose": { "type": "string" }, "category": { "type": "string" }, "value": { "type": "string", "maxLength": 65536 }, "source": { "type": "string" } } },
                "ErasureReceipt": { "type": "object", "required": ["subject", "erased_at", "removed", "retained", "digest"], "properties": {
                    "subject": { "type": "string", "format": "uuid" }, "erased_at": { "type": "string", "format": "date-time" },
                    "removed": { "type": "array", "items": { "type": "string" }, "description": "Categories removed." },
                    "retained": { "type": "array", "items": { "type": "object", "required": ["category", "purpose", "reason"], "properties": {
                        "category": { "type": "string" }, "purpose": { "type": "string" }, "reason": { "type": "string" },
                        "until": { "type": ["string", "null"], "format": "date-time" } } } },
                    "digest": { "type": "string", "description": "SHA-256 over the receipt's fields." } } },
                "RequestIntake": { "type": "object", "required": ["kind", "email"], "additionalProperties": false, "properties": {
                    "kind": { "type": "string", "enum": ["access", "portability", "rectification", "erasure", "restriction", "objection", "opt-out-sale-share", "withdraw-consent"], "description": "A right the declaration offers (`[rights] offered`)." },
                    "email": { "type": "string", "maxLength": 320, "description": "The person's address: where the verification and the answer go. Sealed; never in logs or the audit." },
                    "purpose": { "type": "string", "description": "For restriction, objection and withdraw-consent: the declared purpose (objection: one whose basis is legitimate interests or public task; withdrawal: a consent-based one)." },
                    "changes": { "type": "object", "additionalProperties": { "type": "string", "maxLength": 65536 }, "description": "For rectification: new values by category. Categories the declaration makes immutable are refused." },
                    "close_account": { "type": "boolean", "description": "For erasure: close the account now and erase after the declared delay (`[rights] erasure_delay`, seed 004: 45 days)." },
                    "verification": { "type": "string", "enum": ["email-link", "email-code"], "description": "How the person proves the address is theirs (default: the declaration's first method). Opt-outs need none." },
                    "vouch": { "type": "boolean", "description": "The operator's application vouches that a signed-in person made the request, so it skips e-mail verification. API keys only; audited with the key." } } },
                "Request": { "type": "object", "required": ["id", "kind", "status", "received_at", "due_at", "updated_at", "overdue"], "properties": {
                    "id": { "type": "string", "format": "uuid" },
                    "kind": { "type": "string" },
                    "status": { "type": "string", "enum": ["received", "awaiting-verification", "verified", "awaiting-approval", "executing", "completed", "denied", "expired"] },
                    "subject": { "type": ["string", "null"], "format": "uuid", "description": "The subject, when the address belongs to one." },
                    "received_at": { "type": "string", "format": "date-time" },
                    "due_at": { "type": "string", "format": "date-time", "description": "From the declared deadline and calendar (a calendar month clamped to the month's end, N days, or N business days without the declared holidays), moved by an extension." },
                    "updated_at": { "type": "string", "format": "date-time" },
                    "overdue": { "type": "boolean" },
                    "purpose": { "type": "string" }, "categories": { "type": "array", "items": { "type": "string" } },
                    "close_account": { "type": "boolean" },
                    "verification": { "type": "object", "description": "Method, expiry, attempts, when verified or who vouched (never the code)." },
                    "due_original": { "type": "string", "format": "date-time" },
                    "acknowledge_by": { "type": "string", "format": "date-time", "description": "Where the declaration asks for an acknowledgement (CCPA: 10 business days)." },
                    "acknowledged_at": { "type": "string", "format": "date-time" },
                    "extension": { "type": "object", "description": "`{at, by, reason, from, to}`." },
                    "approval": { "type": "object" }, "denial": { "type": "object", "description": "`{at, by, reason}`; the reason was mailed to the person." },
                    "outcome": { "type": "object", "description": "What was done: categories found, removed, retained (with the legal reason and until when), changed, purposes written to the ledger, the erasure date of a closed account, the receipt digest." },
                    "notifications": { "type": "array", "description": "GDPR Art. 19 notices to recipients of the affected categories: `{recipient, channel, delivered_at, acknowledged_at, attempts, last_error}`.", "items": { "type": "object" } },
                    "history": { "type": "array", "description": "Every transition `{at, from, to, actor, reason}`.", "items": { "type": "object" } } } }
            }
        },
        "paths": {
            "/healthz": { "get": { "operationId": "health", "summary": "Is Steward up?", "responses": { "200": { "description": "Up, with the declaration's version." } } } },
            "/v1/subjects": { "post": {
                "operationId": "createSubject", "summary": "Create a subject: identities and fields, sealed under a new subject key.", "security": auth,
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/CreateSubject" } } } },
                "responses": { "201": { "description": "Created.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SubjectId" } } } },
                    "400": error_response("The body is not JSON of this schema."), "401": unauthorized, "403": denied,
                    "409": error_response("An identity already belongs to another subject."), "413": error_response("A value is over 64 KiB."),
                    "422": error_response("An invalid identity, an undeclared purpose or category, or a category the purpose may not collect.") } } },
            "/v1/subjects/lookup": { "post": {
                "operationId": "lookupSubject", "summary": "Find the subject an identity belongs to (by its blind index).", "security": auth,
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Identity" } } } },
                "responses": { "200": { "description": "Found.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SubjectId" } } } },
                    "401": unauthorized, "403": denied, "404": error_response("No subject has this identity."), "422": error_response("Not a valid identity."),
                    "429": error_response("Too many look-ups from this address or for this identity; `Retry-After` says when to come back. Audited.") },
                "parameters": [{ "name": "Steward-Purpose", "in": "header", "required": false, "description": "The purpose of the look-up (recorded in the audit).", "schema": { "type": "string" } }, reason] } },
            "/v1/subjects/{id}": {
                "get": {
                    "operationId": "readSubject", "summary": "Read what a declared purpose may see of a subject.", "security": auth,
                    "parameters": [id_param, { "name": "Steward-Purpose", "in": "header", "required": true, "description": "The declared purpose you read for: only its categories (within the key's scope) are returned.", "schema": { "type": "string" } }, reason,
                        { "name": "categories", "in": "query", "required": false, "description": "Only these categories (comma-separated keys); each must be covered by the purpose and the key's scope.", "schema": { "type": "string" } }],
                    "responses": { "200": { "description": "The subject, limited to the purpose's categories.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Subject" } } } },
                        "400": error_response("No purpose named."), "401": unauthorized, "403": denied, "404": error_response("No such subject."), "422": error_response("Not a declared purpose.") } },
                "delete": {
                    "operationId": "eraseSubject", "summary": "Erase a subject: destroy its key, delete its data, keep legal holds; returns a receipt without personal data.", "security": auth,
                    "parameters": [id_param],
                    "responses": { "200": { "description": "Erased.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErasureReceipt" } } } },
                        "401": unauthorized, "403": denied, "404": error_response("No such subject.") } } },
            "/v1/subjects/{id}/fields": { "patch": {
                "operationId": "rectifyField", "summary": "Correct (or add) the value of a category.", "security": auth,
                "parameters": [id_param, reason],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Rectify" } } } },
                "responses": { "204": { "description": "Corrected." }, "401": unauthorized, "403": denied, "404": error_response("No such subject."),
                    "409": error_response("The category is immutable (the declaration's [rights] immutable)."), "422": error_response("The purpose may not collect the category.") } } },
            "/v1/subjects/{id}/export": { "get": {
                "operationId": "exportSubject", "summary": "Everything held on a subject, for every purpose, with provenance, legal holds and their audit trail (admin and dpo only).", "security": auth,
                "parameters": [id_param],
                "responses": { "200": { "description": "The subject's data and trail.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "401": unauthorized, "403": denied, "404": error_response("No such subject.") } } },
            "/v1/audit": { "get": {
                "operationId": "listAudit", "summary": "Audit entries, oldest first, filtered and paged (admin, dpo, auditor).", "security": auth,
                "parameters": [
                    { "name": "subject", "in": "query", "schema": { "type": "string", "format": "uuid" } },
                    { "name": "actor", "in": "query", "schema": { "type": "string" }, "description": "`key:stw_…`, `staff:NAME`, `cli`." },
                    { "name": "purpose", "in": "query", "schema": { "type": "string" } },
                    { "name": "since", "in": "query", "schema": { "type": "string", "format": "date-time" } },
                    { "name": "until", "in": "query", "schema": { "type": "string", "format": "date-time" } },
                    { "name": "after", "in": "query", "schema": { "type": "integer" }, "description": "Entries after this sequence number (from `next_after`)." },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "maximum": 1000 } }],
                "responses": { "200": { "description": "`{entries: [...], next_after}`: each entry with seq, at, request, actor, role, action, purpose, subject, categories, outcome, code, ticket, flagged, detail, prev, hash.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "400": error_response("A bad filter."), "401": unauthorized, "403": denied } } },
            "/v1/audit/verify": { "get": {
                "operationId": "verifyAudit", "summary": "Verify the whole chain: hashes, checkpoints, the sealed head (admin, dpo, auditor).", "security": auth,
                "responses": { "200": { "description": "`{intact: true, entries, checkpoints, head}` or `{intact: false, break}` naming the first broken entry.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "401": unauthorized, "403": denied } } },
            "/v1/consent": { "post": {
                "operationId": "recordConsent", "summary": "Record a consent event for a subject or a browser: grant, confirm, withdraw, object, restrict, lift, signal (gpc, dnt), accept (a policy version), link (a browser to a subject), close, reopen. Checked against the declaration, chained on the ledger, audited (refusals too). A grant for a double opt-in purpose mails the confirmation link.", "security": auth,
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["action"], "additionalProperties": false, "properties": {
                    "subject": { "type": "string", "format": "uuid" }, "device": { "type": "string", "description": "A device id issued by consent.js (`dv1.…`)." },
                    "action": { "type": "string", "enum": ["grant", "confirm", "withdraw", "object", "restrict", "lift", "signal", "accept", "link", "close", "reopen"] },
                    "purpose": { "type": "string" }, "signal": { "type": "string", "enum": ["gpc", "dnt"] },
                    "link": { "type": "string", "format": "uuid", "description": "For `link`: the subject the browser belongs to." },
                    "version": { "type": "string", "description": "For `accept`: the policy version accepted (default: the current one)." },
                    "method": { "type": "string", "enum": ["form", "banner", "api", "email-link", "unsubscribe", "signal", "staff"] },
                    "notice": { "type": "string", "maxLength": 64, "description": "The notice revision the person saw." },
                    "user_agent": { "type": "string", "maxLength": 512 }, "ip": { "type": "string", "description": "The person's address, kept only as a keyed hash." } } } } } },
                "responses": { "201": { "description": "`{seq, permit, confirmation}`.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "400": error_response("Not JSON of this schema, or a device id that is malformed or not issued here (`malformed-token`, `forged-token`)."), "401": unauthorized, "403": denied,
                    "404": error_response("No such subject."), "413": error_response("`evidence-too-large`."),
                    "422": error_response("`unknown-purpose`, `not-consent-based`, `not-objectable`, `invalid-event`, `needs-email`, `unknown-version`."),
                    "502": error_response("The event is recorded but the confirmation mail failed (`mail-failed`).") } } },
            "/v1/consent/verify": { "get": {
                "operationId": "verifyConsent", "summary": "Verify the whole consent ledger against its sealed head (admin, dpo, auditor).", "security": auth,
                "responses": { "200": { "description": "`{intact: true, events}` or `{intact: false, break}`.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "401": unauthorized, "403": denied } } },
            "/v1/permits": {
                "get": {
                    "operationId": "permit", "summary": "May this purpose use this person's (or browser's) data now? Answered from memory, with a reason code.", "security": auth,
                    "parameters": [
                        { "name": "subject", "in": "query", "schema": { "type": "string", "format": "uuid" } },
                        { "name": "device", "in": "query", "schema": { "type": "string" } },
                        { "name": "purpose", "in": "query", "required": true, "schema": { "type": "string" } }],
                    "responses": { "200": { "description": "`{purpose, allowed, reason}`; reason is one of consent-given, allowed-by-basis, allowed-by-opt-out, legal-hold, no-consent, withdrawn, not-confirmed, terms-changed, objected, restricted, account-closed, gpc-opt-out, dnt, policy-not-accepted.", "content": { "application/json": { "schema": { "type": "object" } } } },
                        "400": error_response("Neither or both of subject and device, or a bad device id."), "401": unauthorized, "403": denied, "422": error_response("`unknown-purpose`.") } },
                "post": {
                    "operationId": "permits", "summary": "Up to 1,000 permit questions at once, answered in order.", "security": auth,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["questions"], "additionalProperties": false, "properties": {
                        "questions": { "type": "array", "maxItems": 1000, "items": { "type": "object", "required": ["purpose"], "properties": {
                            "subject": { "type": "string", "format": "uuid" }, "device": { "type": "string" }, "purpose": { "type": "string" } } } } } } } } },
                    "responses": { "200": { "description": "`{answers: [{purpose, allowed, reason}]}`.", "content": { "application/json": { "schema": { "type": "object" } } } },
                        "400": error_response("A bad question (its index is named)."), "401": unauthorized, "403": denied, "413": error_response("`batch-too-large`."), "422": error_response("`unknown-purpose`.") } } },
            "/v1/subjects/{id}/consent": { "get": {
                "operationId": "consentHistory", "summary": "A subject's consent now (per purpose) and every event behind it, including those of linked browsers.", "security": auth,
                "parameters": [id_param],
                "responses": { "200": { "description": "`{subject, policy, policy_accepted, purposes, events}`.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "401": unauthorized, "403": denied } } },
            "/v1/subjects/{id}/consent/proof": { "get": {
                "operationId": "consentProof", "summary": "The proof-of-consent export for an auditor: the history with each event's chain hashes, the ledger's head, and the terms of every policy version (admin, dpo, auditor).", "security": auth,
                "parameters": [id_param],
                "responses": { "200": { "description": "A `steward-consent-proof/1` JSON document.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "401": unauthorized, "403": denied } } },
            "/v1/subjects/{id}/unsubscribe": { "get": {
                "operationId": "unsubscribeHeaders", "summary": "The one-click unsubscribe link and the RFC 8058 `List-Unsubscribe` / `List-Unsubscribe-Post` values for a marketing message to this subject.", "security": auth,
                "parameters": [id_param, { "name": "purpose", "in": "query", "required": true, "schema": { "type": "string" } }],
                "responses": { "200": { "description": "`{url, list_unsubscribe, list_unsubscribe_post}`.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "401": unauthorized, "403": denied, "404": error_response("No such subject."), "422": error_response("`unknown-purpose`, `not-consent-based`.") } } },
            "/v1/requests": {
                "post": {
                    "operationId": "createRequest", "summary": "Take in a data-subject request for a person (service, support, dpo, admin): verification is mailed unless the key vouches for a signed-in person.", "security": auth,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RequestIntake" } } } },
                    "responses": { "201": { "description": "Taken in.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Request" } } } },
                        "400": error_response("Not JSON of this schema, an unknown kind (`unknown-kind`), a bad address (`invalid-email`), an unknown purpose or category."), "401": unauthorized, "403": denied,
                        "422": error_response("A right the declaration does not offer (`right-not-offered`), a purpose that does not fit the kind, a verification method not offered, or an immutable category (`immutable`).") } },
                "get": {
                    "operationId": "listRequests", "summary": "Requests, soonest due first, filtered by status, kind and due date; `overdue=true` for those open past their due date.", "security": auth,
                    "parameters": [
                        { "name": "status", "in": "query", "schema": { "type": "string" }, "description": "Comma-separated statuses, or `open` for every status not final." },
                        { "name": "kind", "in": "query", "schema": { "type": "string" } },
                        { "name": "due_before", "in": "query", "schema": { "type": "string", "format": "date-time" }, "description": "Due before this instant: the due-soon list." },
                        { "name": "overdue", "in": "query", "schema": { "type": "boolean" } },
                        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }],
                    "responses": { "200": { "description": "`{requests: [...]}`.", "content": { "application/json": { "schema": { "type": "object", "properties": { "requests": { "type": "array", "items": { "$ref": "#/components/schemas/Request" } } } } } } },
                        "400": error_response("A bad filter (`invalid-query`)."), "401": unauthorized, "403": denied } } },
            "/v1/requests/{id}": { "get": {
                "operationId": "showRequest", "summary": "One request with its history, outcome, notices, and its queued work (mail, webhooks, delayed erasure) with attempts and last error.", "security": auth,
                "parameters": [request_param],
                "responses": with(request_errors(&[]), ("200", json!({ "description": "The request and `jobs: [{kind, attempts, run_at, done, last_error}]`.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Request" } } } })))} },
            "/v1/requests/{id}/approve": { "post": {
                "operationId": "approveRequest", "summary": "Approve a verified request awaiting approval (dpo, admin): it executes at once.", "security": auth,
                "parameters": [request_param],
                "responses": with(request_errors(&[("409", "Not awaiting approval, e.g. approved already (`wrong-state`).")]), ("200", request_view.clone())) } },
            "/v1/requests/{id}/deny": { "post": {
                "operationId": "denyRequest", "summary": "Deny an open request with a reason, which is mailed to the person (dpo, admin).", "security": auth,
                "parameters": [request_param],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["reason"], "additionalProperties": false, "properties": { "reason": { "type": "string", "maxLength": 1000 } } } } } },
                "responses": with(request_errors(&[("409", "Already final (`wrong-state`)."), ("400", "Or no reason, or one over 1,000 characters (`reason-required`).")]), ("200", request_view.clone())) } },
            "/v1/requests/{id}/extend": { "post": {
                "operationId": "extendRequest", "summary": "Extend the deadline once, by the declared extension (GDPR: two more months; CCPA: 45 more days); the reason is mailed to the person (dpo, admin).", "security": auth,
                "parameters": [request_param],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["reason"], "additionalProperties": false, "properties": { "reason": { "type": "string", "maxLength": 1000 } } } } } },
                "responses": with(request_errors(&[("409", "Already extended (`already-extended`) or final (`wrong-state`)."), ("422", "The declaration allows no extension (`no-extension`)."), ("400", "Or no reason, or one over 1,000 characters (`reason-required`).")]), ("200", request_view.clone())) } },
            "/v1/requests/{id}/notifications/{recipient}/ack": { "post": {
                "operationId": "acknowledgeNotification", "summary": "A recipient acknowledges the GDPR Art. 19 notice it was sent about this request (the webhook body carries this address).", "security": auth,
                "parameters": [request_param, { "name": "recipient", "in": "path", "required": true, "description": "The processor id from the declaration.", "schema": { "type": "string" } }],
                "responses": with(request_errors(&[("404", "Or it sent no notice to this recipient (`unknown-recipient`).")]), ("200", request_view)) } },
            "/requests": { "post": {
                "operationId": "makeRequest", "summary": "Public: a person makes a request. The answer is the same whether or not the address is known; rate-limited per client address (20/min) and per e-mail address (5/h). `vouch` is refused here.",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RequestIntake" } } } },
                "responses": { "202": { "description": "`{id, kind, status, due_at, next}`: what happens next (check your e-mail)." },
                    "400": error_response("Not JSON of this schema, an unknown kind, a bad address."), "403": denied,
                    "422": error_response("A right not offered, a purpose that does not fit, an immutable category."),
                    "429": error_response("Too many requests from this address or for this e-mail; `Retry-After` says when to come back.") } } },
            "/requests/verify": {
                "get": {
                    "operationId": "verifyPage", "summary": "Public: the page behind the e-mailed link. It shows a button and changes nothing, so mail scanners that follow links do not verify.",
                    "parameters": [{ "name": "token", "in": "query", "required": true, "schema": { "type": "string" } }],
                    "responses": { "200": { "description": "An HTML page with a form." } } },
                "post": {
                    "operationId": "verifyLink", "summary": "Public: verify the request with the e-mailed link's token (query or form field `token`); valid 24 hours, once.",
                    "parameters": [{ "name": "token", "in": "query", "required": false, "schema": { "type": "string" } }],
                    "responses": { "200": { "description": "An HTML page saying the request is verified." },
                        "400": error_response("A malformed or forged token."), "409": error_response("Used already or replaced by a newer link (`used-token`)."), "410": error_response("Expired.") } } },
            "/requests/{id}/verify": { "post": {
                "operationId": "verifyCode", "summary": "Public: verify the request with the 6-digit code mailed to the person; five wrong codes end it.",
                "parameters": [request_param],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["code"], "additionalProperties": false, "properties": { "code": { "type": "string", "pattern": "^[0-9]{6}$" } } } } } },
                "responses": { "200": { "description": "`{id, status}`." }, "400": error_response("A wrong code (`wrong-code`, with the attempts left) or a bad id."),
                    "404": error_response("No such request."), "409": error_response("Not awaiting verification."), "410": error_response("The code expired."),
                    "429": error_response("Too many attempts (`too-many-attempts`) or too many from this address.") } } },
            "/requests/{id}/package": { "get": {
                "operationId": "downloadPackage", "summary": "Public: the access package, streamed as a ZIP (index.html with the Art. 15 information, data.json, csv/<group>.csv, data.xlsx), through the link mailed to the person: bound to this request, valid 3 days.",
                "parameters": [request_param, { "name": "token", "in": "query", "required": true, "schema": { "type": "string" } }],
                "responses": { "200": { "description": "The ZIP.", "content": { "application/zip": {} } },
                    "400": error_response("A malformed or forged link."), "403": error_response("A link for another request (`wrong-request`)."),
                    "404": error_response("No such request."), "409": error_response("The link was replaced by a newer one, or the request has no package (`used-token`)."), "410": error_response("The link expired.") } } },
            "/v1/session": {
                "post": {
                    "operationId": "signIn", "summary": "Staff sign-in: sets the session cookie (Secure, HttpOnly, SameSite=Strict) and returns the CSRF token. Every failure answers the same; five in a row lock the account for 15 minutes.",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["username", "password"], "additionalProperties": false, "properties": {
                        "username": { "type": "string" }, "password": { "type": "string" }, "code": { "type": "string", "description": "The 6-digit TOTP code, when the account has TOTP." } } } } } },
                    "responses": { "200": { "description": "Signed in: username, role, csrf_token, expires_at." }, "400": error_response("Not JSON of this schema."),
                        "401": error_response("`sign-in-failed`, the same for every cause."), "403": error_response("A cross-site request."), "429": error_response("Too many attempts from this address or for this username.") } },
                "get": {
                    "operationId": "currentSession", "summary": "Who is signed in, and the session's CSRF token.", "security": [{ "session": [] }],
                    "responses": { "200": { "description": "actor, role, csrf_token." }, "401": unauthorized } },
                "delete": {
                    "operationId": "signOut", "summary": "End the session (needs the CSRF token).", "security": [{ "session": [] }],
                    "responses": { "204": { "description": "Signed out; the cookie is cleared." }, "401": unauthorized, "403": denied } } }
        }
    })
}
