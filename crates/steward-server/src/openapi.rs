//! The API's OpenAPI 3.1 document, served at `/openapi.json` and checked into the repository
//! as `openapi.json`; a test fails when the two drift, and another calls every operation it
//! lists to prove it is routed.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

/// The document.
pub fn document() -> Value {
    let auth = json!([{ "apiKey": [] }]);
    let id_param = json!({ "name": "id", "in": "path", "required": true, "description": "The subject id (a UUIDv7).", "schema": { "type": "string", "format": "uuid" } });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Steward API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Personal records sealed per subject: create, look up, read for a declared purpose, rectify, erase. Identities travel only in request bodies, never in URLs."
        },
        "components": {
            "securitySchemes": { "apiKey": { "type": "http", "scheme": "bearer", "description": "An API key from `steward apikey create`: `Authorization: Bearer stw_…`." } },
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
                    "400": error_response("The body is not JSON of this schema."), "401": error_response("No valid API key."),
                    "409": error_response("An identity already belongs to another subject."), "413": error_response("A value is over 64 KiB."),
                    "422": error_response("An invalid identity, an undeclared purpose or category, or a category the purpose may not collect.") } } },
            "/v1/subjects/lookup": { "post": {
                "operationId": "lookupSubject", "summary": "Find the subject an identity belongs to (by its blind index).", "security": auth,
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Identity" } } } },
                "responses": { "200": { "description": "Found.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SubjectId" } } } },
                    "401": error_response("No valid API key."), "404": error_response("No subject has this identity."), "422": error_response("Not a valid identity.") } } },
            "/v1/subjects/{id}": {
                "get": {
                    "operationId": "readSubject", "summary": "Read what a declared purpose may see of a subject.", "security": auth,
                    "parameters": [id_param, { "name": "Steward-Purpose", "in": "header", "required": true, "description": "The declared purpose you read for: only its categories are returned.", "schema": { "type": "string" } }],
                    "responses": { "200": { "description": "The subject, limited to the purpose's categories.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Subject" } } } },
                        "400": error_response("No purpose named."), "401": error_response("No valid API key."), "404": error_response("No such subject."), "422": error_response("Not a declared purpose.") } },
                "delete": {
                    "operationId": "eraseSubject", "summary": "Erase a subject: destroy its key, delete its data, keep legal holds; returns a receipt without personal data.", "security": auth,
                    "parameters": [id_param],
                    "responses": { "200": { "description": "Erased.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErasureReceipt" } } } },
                        "401": error_response("No valid API key."), "403": error_response("Not an admin key."), "404": error_response("No such subject.") } } },
            "/v1/subjects/{id}/fields": { "patch": {
                "operationId": "rectifyField", "summary": "Correct (or add) the value of a category.", "security": auth,
                "parameters": [id_param],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Rectify" } } } },
                "responses": { "204": { "description": "Corrected." }, "401": error_response("No valid API key."), "404": error_response("No such subject."),
                    "409": error_response("The category is immutable (the declaration's [rights] immutable)."), "422": error_response("The purpose may not collect the category.") } } }
        }
    })
}
