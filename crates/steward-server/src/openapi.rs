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
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Steward API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Personal records sealed per subject: create, look up, read for a declared purpose, rectify, export, erase; the audit trail and its verification; the consent ledger and permits; staff sessions. The public consent endpoints (`/consent.js`, `/consent/choices`, the confirm, unsubscribe and accept links, `/.well-known/gpc.json`) are described in docs/consent.md. Identities travel only in request bodies, never in URLs. Every call, allowed or refused, is written to the hash-chained audit trail; every response carries a `Steward-Request-Id` header naming its audit entries."
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
                    "digest": { "type": "string", "description": "SHA-256 over the receipt's fields." } } }
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
