//! The API's OpenAPI 3.1 document.
//!
//! [`document`] without a declaration is the generic description, checked into the repository
//! as `openapi.json` (a test fails when they drift). `/openapi.json` serves it with the
//! declaration's own vocabulary — its purposes, the categories each purpose may collect, the
//! rights it offers, its verification methods and recipients — as enums, so that a client (or
//! a fuzzer such as schemathesis) knows exactly which requests are valid. Every operation
//! lists every status it can answer: the common ones (a body that is not JSON, too large or of
//! another type, a missing or refused key, a rate limit, limits that cannot be checked) are
//! added to each operation by [`complete`].

use serde_json::{Map, Value, json};
use steward_policy::Declaration;
use steward_policy::declaration::{LawfulBasis, Right, Verification};
use steward_policy::taxonomy::{Kind, covers};

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

/// An optional field the server reads as absent when it is `null`.
#[allow(clippy::needless_pass_by_value)] // built in place where it is called
fn nullable(schema: Value) -> Value {
    json!({ "anyOf": [schema, { "type": "null" }] })
}

fn html_response(description: &str) -> Value {
    json!({ "description": description, "content": { "text/html": { "schema": { "type": "string" } } } })
}

/// A string that is one of `values`, or any non-empty string when the document is generic.
fn one_of(values: Option<Vec<String>>, description: &str) -> Value {
    match values {
        Some(v) if !v.is_empty() => {
            json!({ "type": "string", "enum": v, "description": description })
        }
        Some(_) => {
            json!({ "type": "string", "enum": ["(none declared)"], "description": description })
        }
        None => json!({ "type": "string", "minLength": 1, "description": description }),
    }
}

/// A link token of `bytes` bytes, as base64url without padding: its exact shape.
fn token_schema(bytes: usize, description: &str) -> Value {
    let chars = (bytes * 4).div_ceil(3);
    // The last character carries the leftover bits, the rest of it zero.
    let last = match bytes % 3 {
        1 => "[AQgw]",
        2 => "[AEIMQUYcgkosw048]",
        _ => "[A-Za-z0-9_-]",
    };
    json!({ "type": "string", "pattern": format!("^[A-Za-z0-9_-]{{{}}}{last}$", chars - 1), "description": description })
}

/// The signed token in a request's verification or download link (33 bytes and a 16-byte tag).
fn request_token() -> Value {
    token_schema(
        33 + 16,
        "The token from the link as it was mailed. A well-formed token that was not issued here is `403 forged-token`.",
    )
}

/// A device id from consent.js: `dv1.` and 16 bytes with a 10-byte tag, base64url.
fn device_schema() -> Value {
    let mut s = token_schema(26, "A device id issued by consent.js.");
    let pattern = s["pattern"]
        .as_str()
        .unwrap_or_default()
        .replacen('^', "^dv1\\.", 1);
    s["pattern"] = json!(pattern);
    s
}

/// What the declaration lets the API take, or `None` for the generic document.
struct Vocabulary<'a> {
    declaration: Option<&'a Declaration>,
}

impl Vocabulary<'_> {
    fn purposes(
        &self,
        keep: impl Fn(&steward_policy::declaration::Purpose) -> bool,
    ) -> Option<Vec<String>> {
        self.declaration.map(|d| {
            d.purposes
                .iter()
                .filter(|p| keep(p))
                .map(|p| p.id.clone())
                .collect()
        })
    }

    /// Every data category the declaration knows (the taxonomy's and its own keys).
    fn categories(&self) -> Option<Vec<String>> {
        self.declaration.map(|d| {
            let mut keys: Vec<String> =
                d.taxonomy.keys(Kind::Category).map(str::to_owned).collect();
            keys.sort();
            keys
        })
    }

    /// The taxonomy keys a purpose's categories cover (what it may collect).
    fn collected_by(
        &self,
        d: &Declaration,
        purpose: &steward_policy::declaration::Purpose,
    ) -> Vec<String> {
        let mut keys: Vec<String> = d
            .taxonomy
            .keys(Kind::Category)
            .filter(|k| purpose.categories.iter().any(|c| covers(c, k)))
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    /// The value an identity of `kind` (`email`, `phone`, `username`, or any other for a custom
    /// kind) takes: what the server accepts, so that a client and the fuzzer generate only that.
    fn identity_value(kind: &str) -> Value {
        match kind {
            "email" => {
                json!({ "type": "string", "format": "email", "maxLength": 320, "description": "Normalised: trimmed, NFC, lower case, the domain through IDNA (UTS #46)." })
            }
            "phone" => {
                json!({ "type": "string", "pattern": "^(\\+|00)[ .()\\u00a0-]*[1-9](?:[ .()\\u00a0-]*[0-9]){6,14}[ .()\\u00a0-]*$", "description": "International, with the country code (`+41 79 123 45 67` is stored as `+41791234567`, E.164)." })
            }
            // 1 to 320 characters, no control characters; white space at either end (a line
            // break too) is trimmed, as the server does.
            other => {
                let mut text = json!({ "type": "string", "maxLength": 320, "pattern": "^\\s*[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?\\s*$", "description": "Trimmed of white space at either end." });
                if other == "username" {
                    text["description"] =
                        json!("Trimmed of white space at either end; compared in lower case.");
                }
                text
            }
        }
    }

    fn identity(&self, kinds: Option<&[&str]>) -> Value {
        let wants = |k: &str| kinds.is_none_or(|ks| ks.contains(&k));
        let mut variants = Vec::new();
        for kind in ["email", "phone", "username"] {
            if wants(kind) {
                variants.push(json!({ "type": "object", "required": ["kind", "value"], "additionalProperties": false, "properties": {
                    "kind": { "const": kind }, "value": Self::identity_value(kind) } }));
            }
        }
        let text = Self::identity_value("custom");
        if wants("custom") {
            variants.push(json!({ "type": "object", "required": ["kind", "value"], "additionalProperties": false, "properties": {
                "kind": { "type": "string", "pattern": "^[a-z][a-z0-9_-]{0,31}$", "not": { "enum": ["email", "phone", "username"] }, "description": "A kind of your own, such as `customer-number` (data category `user.unique_id`)." },
                "value": text } }));
        }
        json!({ "oneOf": variants })
    }

    fn source(&self) -> Value {
        let mut sources: Vec<String> = ["form", "import", "api"].map(str::to_owned).to_vec();
        match self.declaration {
            Some(d) => {
                sources.extend(d.processors.iter().map(|p| format!("third-party:{}", p.id)));
                json!({ "type": "string", "enum": sources, "description": "Where the data came from (default `api`)." })
            }
            None => {
                json!({ "type": "string", "pattern": "^(form|import|api|third-party:[a-z0-9][a-z0-9_-]*)$", "description": "`form`, `import`, `api` (default) or `third-party:<processor id>`." })
            }
        }
    }

    /// The identity kinds a purpose may collect.
    fn kinds_of(&self, purpose: &steward_policy::declaration::Purpose) -> Vec<&'static str> {
        [
            ("email", "user.contact.email"),
            ("phone", "user.contact.phone_number"),
            ("username", "user.account.username"),
            ("custom", "user.unique_id"),
        ]
        .into_iter()
        .filter(|(_, category)| purpose.categories.iter().any(|c| covers(c, category)))
        .map(|(k, _)| k)
        .collect()
    }

    fn create_subject(&self) -> Value {
        let value = json!({ "type": "string", "maxLength": 65536 });
        let Some(d) = self.declaration else {
            return json!({ "type": "object", "required": ["purpose", "identities"], "additionalProperties": false, "properties": {
                "purpose": { "type": "string", "minLength": 1, "description": "The declared purpose the data is collected for; it must collect every category sent." },
                "source": nullable(self.source()),
                "identities": { "type": "array", "minItems": 1, "items": self.identity(None) },
                "fields": { "type": "object", "description": "Values by data category key (`user.name`).", "additionalProperties": value } } });
        };
        let variants: Vec<Value> = d
            .purposes
            .iter()
            .filter(|p| p.stored)
            .filter_map(|p| {
                let kinds = self.kinds_of(p);
                (!kinds.is_empty()).then(|| json!({ "type": "object", "required": ["purpose", "identities"], "additionalProperties": false, "properties": {
                    "purpose": { "const": p.id },
                    "source": nullable(self.source()),
                    "identities": { "type": "array", "minItems": 1, "items": self.identity(Some(&kinds)) },
                    "fields": { "type": "object", "propertyNames": { "enum": self.collected_by(d, p) }, "additionalProperties": value } } }))
            })
            .collect();
        json!({ "oneOf": variants, "description": "One declared purpose, the identities and fields it may collect." })
    }

    fn rectify(&self) -> Value {
        let value = json!({ "type": "string", "maxLength": 65536 });
        let Some(d) = self.declaration else {
            return json!({ "type": "object", "required": ["purpose", "category", "value"], "additionalProperties": false, "properties": {
                "purpose": { "type": "string", "minLength": 1 }, "category": { "type": "string", "minLength": 1 }, "value": value, "source": nullable(self.source()) } });
        };
        // An e-mail address, phone number or username is an identity: its value is checked as one.
        let identities = [
            ("user.contact.email", "email"),
            ("user.contact.phone_number", "phone"),
            ("user.account.username", "username"),
        ];
        let mut variants = Vec::new();
        for p in d.purposes.iter().filter(|p| p.stored) {
            let (identity, fields): (Vec<String>, Vec<String>) = self
                .collected_by(d, p)
                .into_iter()
                .partition(|c| identities.iter().any(|(category, _)| c == category));
            let mut variant = |category: Value, value: Value| {
                variants.push(json!({ "type": "object", "required": ["purpose", "category", "value"], "additionalProperties": false, "properties": {
                    "purpose": { "const": p.id }, "category": category, "value": value, "source": nullable(self.source()) } }));
            };
            if !fields.is_empty() {
                variant(json!({ "enum": fields }), value.clone());
            }
            for category in identity {
                let kind = identities
                    .iter()
                    .find(|(c, _)| *c == category)
                    .map_or("custom", |(_, k)| k);
                variant(json!({ "const": category }), Self::identity_value(kind));
            }
        }
        json!({ "oneOf": variants })
    }

    /// A consent event: one variant per action, with what the action takes. `subject` or
    /// `device` names the party (exactly one).
    fn consent_event(&self) -> Value {
        let all = || self.purposes(|_| true);
        let consent = |device: bool| {
            self.purposes(move |p| {
                p.basis == LawfulBasis::Consent
                    && !(device
                        && p.consent == Some(steward_policy::declaration::ConsentMode::DoubleOptIn))
            })
        };
        let objectable = || {
            self.purposes(|p| {
                matches!(
                    p.basis,
                    LawfulBasis::Consent
                        | LawfulBasis::LegitimateInterest
                        | LawfulBasis::PublicTask
                ) || covers("marketing", &p.data_use)
            })
        };
        let evidence = json!({
            "method": nullable(json!({ "type": "string", "enum": ["form", "banner", "api", "email-link", "unsubscribe", "signal", "staff"] })),
            "notice": nullable(json!({ "type": "string", "maxLength": 64, "description": "The notice revision the person saw." })),
            "user_agent": nullable(json!({ "type": "string", "maxLength": 512 })),
            "ip": nullable(json!({ "anyOf": [{ "type": "string", "format": "ipv4" }, { "type": "string", "format": "ipv6" }], "description": "The person's address, kept only as a keyed hash." })),
        });
        let subject = json!({ "type": "string", "format": "uuid" });
        // (action, purpose: None = none taken, Some((list, required)), party: subject/device/either, extra)
        let variant = |action: &str,
                       purpose: Option<(Option<Vec<String>>, bool)>,
                       party: &str,
                       extra: Value| {
            let mut properties = evidence.clone();
            let mut required = vec![json!("action")];
            properties["action"] = json!({ "const": action });
            match party {
                "subject" => {
                    properties["subject"] = subject.clone();
                    required.push(json!("subject"));
                }
                "device" => {
                    properties["device"] = device_schema();
                    required.push(json!("device"));
                }
                _ => {}
            }
            if let Some((list, needed)) = purpose {
                properties["purpose"] = if needed {
                    one_of(list, "A declared purpose.")
                } else {
                    nullable(one_of(
                        list,
                        "A declared purpose; every purpose when absent.",
                    ))
                };
                if needed {
                    required.push(json!("purpose"));
                }
            }
            if let (Some(p), Some(e)) = (properties.as_object_mut(), extra.as_object()) {
                p.extend(e.clone());
                for key in e.keys() {
                    if !matches!(key.as_str(), "version") {
                        required.push(json!(key));
                    }
                }
            }
            json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties })
        };
        let none = json!({});
        let version = match self.declaration {
            Some(d) => nullable(
                json!({ "type": "string", "enum": [d.policy.version], "description": "The policy version accepted (default: the current one)." }),
            ),
            None => nullable(
                json!({ "type": "string", "description": "The policy version accepted (default: the current one)." }),
            ),
        };
        let mut variants = Vec::new();
        for party in ["subject", "device"] {
            variants.push(variant(
                "grant",
                Some((consent(party == "device"), true)),
                party,
                none.clone(),
            ));
            // `confirm` is never recorded through the API: the person opens the mailed link.
            variants.push(variant(
                "withdraw",
                Some((consent(false), true)),
                party,
                none.clone(),
            ));
            variants.push(variant(
                "object",
                Some((objectable(), false)),
                party,
                none.clone(),
            ));
            for action in ["restrict", "lift"] {
                variants.push(variant(action, Some((all(), false)), party, none.clone()));
            }
            variants.push(variant(
                "signal",
                None,
                party,
                json!({ "signal": { "type": "string", "enum": ["gpc", "dnt"] } }),
            ));
            variants.push(variant(
                "accept",
                None,
                party,
                json!({ "version": version }),
            ));
        }
        variants.push(variant("link", None, "device", json!({ "link": { "type": "string", "format": "uuid", "description": "The subject the browser belongs to." } })));
        for action in ["close", "reopen"] {
            variants.push(variant(action, None, "subject", none.clone()));
        }
        json!({ "oneOf": variants })
    }

    /// A data-subject request as taken in; `public` for the form people use (no `vouch`).
    fn intake(&self, public: bool) -> Value {
        let email = json!({ "type": "string", "format": "email", "maxLength": 320, "description": "The person's address: where the verification and the answer go. Sealed; never in logs or the audit." });
        let verification = match self.declaration {
            Some(d) => {
                let mut methods: Vec<String> = d
                    .rights
                    .verification
                    .iter()
                    .filter(|m| **m != Verification::Account)
                    .map(|m| m.as_str().to_owned())
                    .collect();
                if d.rights.verification.is_empty() {
                    methods.push("email-link".to_owned());
                }
                json!({ "type": "string", "enum": methods })
            }
            None => json!({ "type": "string", "enum": ["email-link", "email-code"] }),
        };
        let vouch_offered = self
            .declaration
            .is_none_or(|d| d.rights.verification.contains(&Verification::Account));
        let vouch = if public {
            json!({ "const": false, "description": "Only the operator's application (an API key) can vouch." })
        } else if vouch_offered {
            json!({ "type": "boolean", "description": "The operator's application vouches that a signed-in person made the request, so it skips e-mail verification (the declaration must offer `account`). It does only what the key may do directly; anything more waits for approval." })
        } else {
            json!({ "const": false, "description": "The declaration does not offer `account` verification." })
        };
        let base = |kind: Value, extra: Map<String, Value>| {
            let mut properties = json!({ "kind": kind, "email": email, "verification": nullable(verification.clone()), "vouch": vouch });
            if let Some(p) = properties.as_object_mut() {
                p.extend(extra);
            }
            json!({ "type": "object", "required": ["kind", "email"], "additionalProperties": false, "properties": properties })
        };
        let Some(d) = self.declaration else {
            let mut extra = Map::new();
            extra.insert("purpose".into(), nullable(json!({ "type": "string", "description": "For restriction, objection and withdraw-consent: the declared purpose." })));
            extra.insert("changes".into(), json!({ "type": "object", "minProperties": 1, "maxProperties": 50, "additionalProperties": { "type": "string", "minLength": 1, "maxLength": 4096 }, "description": "For rectification: new values by category." }));
            extra.insert("close_account".into(), json!({ "type": "boolean", "description": "For erasure: close the account now and erase after the declared delay." }));
            return base(
                json!({ "type": "string", "enum": Right::ALL.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>() }),
                extra,
            );
        };
        let offered = &d.rights.available;
        let mut variants = Vec::new();
        for (right, _) in Right::ALL {
            if !offered.contains(right) {
                continue;
            }
            let mut extra = Map::new();
            match right {
                Right::Rectification => {
                    let mut categories: Vec<String> = d
                        .purposes
                        .iter()
                        .flat_map(|p| self.collected_by(d, p))
                        .filter(|c| !d.rights.immutable.iter().any(|i| covers(i, c)))
                        .collect();
                    categories.sort();
                    categories.dedup();
                    extra.insert("changes".into(), json!({ "type": "object", "minProperties": 1, "maxProperties": 50, "propertyNames": { "enum": categories }, "additionalProperties": { "type": "string", "minLength": 1, "maxLength": 4096 } }));
                }
                Right::Erasure => {
                    extra.insert("close_account".into(), json!({ "type": "boolean" }));
                }
                Right::Restriction | Right::Objection | Right::WithdrawConsent => {
                    let purposes = self.purposes(|p| match right {
                        Right::Objection => {
                            p.basis == LawfulBasis::Consent
                                || p.basis == LawfulBasis::LegitimateInterest
                                || p.basis == LawfulBasis::PublicTask
                                || covers("marketing", &p.data_use)
                        }
                        Right::WithdrawConsent => p.basis == LawfulBasis::Consent,
                        _ => true,
                    });
                    extra.insert(
                        "purpose".into(),
                        nullable(one_of(purposes, "All that apply when absent.")),
                    );
                }
                _ => {}
            }
            let mut variant = base(json!({ "const": right.as_str() }), extra);
            if *right == Right::Rectification {
                variant["required"] = json!(["kind", "email", "changes"]);
            }
            if *right == Right::OptOutSaleShare {
                // Needs no verification, so it names none, and vouching for it needs no
                // `account` method either.
                if let Some(p) = variant["properties"].as_object_mut() {
                    p.remove("verification");
                }
                if !public {
                    variant["properties"]["vouch"] = json!({ "type": "boolean" });
                }
            }
            variants.push(variant);
        }
        json!({ "oneOf": variants })
    }
}

/// The document, generic (`None`, as checked in) or with `declaration`'s vocabulary.
pub fn document(declaration: Option<&Declaration>) -> Value {
    let v = Vocabulary { declaration };
    let auth = json!([{ "apiKey": [] }, { "session": [] }]);
    let reason = json!({ "name": "Steward-Reason", "in": "header", "required": false, "description": "The ticket a support-role caller works on (e.g. `ZD-4821`): required of support, recorded and flagged in the audit.", "schema": { "type": "string", "pattern": "^[A-Za-z0-9_.:#/-]{1,64}$" } });
    let purpose_header = |required: bool| json!({ "name": "Steward-Purpose", "in": "header", "required": required, "description": "The declared purpose you act for: only its categories (within the key's scope) are returned.", "schema": one_of(v.purposes(|_| true), "A declared purpose.") });
    let denied = error_response(
        "The role or scope does not allow this (`operation-not-allowed`, `purpose-out-of-scope`, `category-out-of-scope`, `scope-too-narrow`, `marketing-purpose`, `ticket-required`, `invalid-csrf`, `cross-origin`). Audited.",
    );
    let id_param = json!({ "name": "id", "in": "path", "required": true, "description": "The subject id (a UUIDv7).", "schema": { "type": "string", "format": "uuid" } });
    let request_param = json!({ "name": "id", "in": "path", "required": true, "description": "The request id, as returned when the request was made.", "schema": { "type": "string", "format": "uuid" } });
    let incident_param = json!({ "name": "id", "in": "path", "required": true, "description": "The incident's number (1, 2 …) or id.", "schema": { "type": "string", "pattern": "^([1-9][0-9]{0,17}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$" } });
    let request_view = json!({ "description": "The request.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Request" } } } });
    let reason_body = json!({ "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["reason"], "additionalProperties": false, "properties": { "reason": { "type": "string", "minLength": 1, "maxLength": 1000, "pattern": "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]", "description": "Told to the person; something other than white space (Unicode White_Space)." } } } } } });
    let recipients = v
        .declaration
        .map(|d| d.processors.iter().map(|p| p.id.clone()).collect());
    let status_list = "^(open|received|awaiting-verification|verified|awaiting-approval|executing|completed|denied|expired)(,(open|received|awaiting-verification|verified|awaiting-approval|executing|completed|denied|expired))*$";
    let kinds: Vec<&str> = match v.declaration {
        Some(d) => d.rights.available.iter().map(|r| r.as_str()).collect(),
        None => Right::ALL.iter().map(|(r, _)| r.as_str()).collect(),
    };
    // Exactly one of `subject` and `device`, as a value (null counts as absent).
    let question_party = json!({ "oneOf": [
        { "required": ["subject"], "properties": { "subject": { "type": "string" } } },
        { "required": ["device"], "properties": { "device": { "type": "string" } } }] });
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Steward API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Personal records sealed per subject: create, look up, read for a declared purpose, rectify, export, erase; the audit trail and its verification; the consent ledger and permits; data-subject requests (staff: `/v1/requests`; the person: `/requests`, see docs/requests.md); staff sessions. The public consent endpoints (`/consent.js`, `/consent/choices`, the confirm, unsubscribe and accept links, `/.well-known/gpc.json`) are described in docs/consent.md. Identities travel only in request bodies, never in URLs. Every call, allowed or refused, is written to the hash-chained audit trail; every response carries a `Steward-Request-Id` header naming its audit entries. The document served at `/openapi.json` lists the declaration's own purposes, categories, rights and recipients."
        },
        "components": {
            "securitySchemes": {
                "apiKey": { "type": "http", "scheme": "bearer", "description": "An API key from `steward apikey create`: `Authorization: Bearer stw_…`. Its role (admin, dpo, support, service, auditor) and scope bound what it may do." },
                "session": { "type": "apiKey", "in": "cookie", "name": "__Host-steward-session", "description": "A staff session from POST /v1/session. Calls other than GET also need the session's CSRF token in `X-CSRF-Token`." } },
            "schemas": {
                "Error": { "type": "object", "required": ["error", "message"], "properties": {
                    "error": { "type": "string", "description": "A stable code, e.g. `duplicate-identity`." },
                    "message": { "type": "string", "description": "What is wrong and how to fix it. Never holds personal data." } } },
                "Identity": v.identity(None),
                "CreateSubject": v.create_subject(),
                "SubjectId": { "type": "object", "required": ["id"], "properties": { "id": { "type": "string", "format": "uuid" } } },
                "Field": { "type": "object", "required": ["id", "category", "purpose", "source", "collected_at", "value"], "properties": {
                    "id": { "type": "string", "format": "uuid" }, "category": { "type": "string" }, "purpose": { "type": "string" },
                    "source": { "type": "string" }, "collected_at": { "type": "string", "format": "date-time" }, "value": { "type": "string" } } },
                "Subject": { "type": "object", "required": ["id", "identities", "fields"], "properties": {
                    "id": { "type": "string", "format": "uuid" },
                    "identities": { "type": "array", "items": { "type": "array", "prefixItems": [{ "type": "string" }, { "type": "string" }], "description": "[kind, value]" } },
                    "fields": { "type": "array", "items": { "$ref": "#/components/schemas/Field" } } } },
                "Rectify": v.rectify(),
                "ErasureReceipt": { "type": "object", "required": ["subject", "erased_at", "removed", "retained", "digest"], "properties": {
                    "subject": { "type": "string", "format": "uuid" }, "erased_at": { "type": "string", "format": "date-time" },
                    "removed": { "type": "array", "items": { "type": "string" }, "description": "Categories removed." },
                    "retained": { "type": "array", "items": { "type": "object", "required": ["category", "purpose", "reason"], "properties": {
                        "category": { "type": "string" }, "purpose": { "type": "string" }, "reason": { "type": "string" },
                        "until": { "type": ["string", "null"], "format": "date-time" } } } },
                    "digest": { "type": "string", "description": "SHA-256 over the receipt's fields." } } },
                "RequestIntake": v.intake(false),
                "PublicIntake": v.intake(true),
                "Request": { "type": "object", "required": ["id", "kind", "status", "received_at", "due_at", "updated_at", "overdue"], "properties": {
                    "id": { "type": "string", "format": "uuid" },
                    "kind": { "type": "string" },
                    "status": { "type": "string", "enum": ["received", "awaiting-verification", "verified", "awaiting-approval", "executing", "completed", "denied", "expired"] },
                    "subject": { "type": ["string", "null"], "format": "uuid", "description": "The subject, when the address belongs to one — shown only to callers who may look people up." },
                    "received_at": { "type": "string", "format": "date-time" },
                    "due_at": { "type": "string", "format": "date-time", "description": "From the declared deadline and calendar (a calendar month clamped to the month's end, N days, or N business days without the declared holidays), moved by an extension." },
                    "updated_at": { "type": "string", "format": "date-time" },
                    "overdue": { "type": "boolean" },
                    "purpose": { "type": "string" }, "categories": { "type": "array", "items": { "type": "string" } },
                    "close_account": { "type": "boolean" },
                    "verification": { "type": "object", "description": "Method, expiry, attempts, when verified, who vouched, and why approval is needed (never the code or the link)." },
                    "due_original": { "type": "string", "format": "date-time" },
                    "acknowledge_by": { "type": ["string", "null"], "format": "date-time", "description": "Where the declaration asks for an acknowledgement (CCPA: 10 business days)." },
                    "acknowledged_at": { "type": ["string", "null"], "format": "date-time" },
                    "extension": { "type": "object", "description": "`{at, by, reason}`." },
                    "approval": { "type": "object" }, "denial": { "type": "object", "description": "`{at, by, reason}`; the reason was mailed to the person." },
                    "outcome": { "type": "object", "description": "What was done — shown only to callers who may look people up: found, categories removed, retained (with the legal reason and until when), changed, not_changed (`[category, code]`: a correction refused, e.g. `duplicate-identity`), purposes written to the ledger, the erasure date of a closed account, the receipt digest." },
                    "notifications": { "type": "array", "description": "GDPR Art. 19 notices to recipients of the affected categories: `{recipient, channel, categories, status, delivered_at, acknowledged_at, attempts, last_error}`; `last_error` names the cause of the last failed delivery (`webhook-unreachable`, `webhook-status-503`, `mail-failed`).", "items": { "type": "object" } },
                    "history": { "type": "array", "description": "Every transition `{at, from, to, actor, reason}`.", "items": { "type": "object" } } } }
            }
        },
        "paths": {
            "/healthz": { "get": { "operationId": "health", "summary": "Is Steward up?", "responses": { "200": { "description": "Up, with the declaration's version.", "content": { "application/json": { "schema": { "type": "object" } } } } } } },
            "/v1/subjects": { "post": {
                "operationId": "createSubject", "summary": "Create a subject: identities and fields, sealed under a new subject key.", "security": auth,
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/CreateSubject" } } } },
                "responses": { "201": { "description": "Created.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SubjectId" } } } },
                    "403": denied, "409": error_response("An identity already belongs to another subject (`duplicate-identity`)."),
                    "422": error_response("An invalid identity, an undeclared purpose or category, a category the purpose may not collect, or a value over 64 KiB (`value-too-large`).") } } },
            "/v1/subjects/lookup": { "post": {
                "operationId": "lookupSubject", "summary": "Find the subject an identity belongs to (by its blind index). For a purpose (`Steward-Purpose`; support must name one, a key narrowed to purposes looks for those), only a person whose identity was collected for it or a purpose it names in `compatible_with` is found — a consent purpose finds anyone, to record their consent — and a legal hold's purpose also finds an erased person whose data it keeps.", "security": auth,
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Identity" } } } },
                "responses": { "200": { "description": "Found.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SubjectId" } } } },
                    "400": error_response("A body that is not an identity (`invalid-body`), or an empty `Steward-Purpose` (`invalid-purpose`)."),
                    "403": denied, "404": error_response("No subject has this identity."), "422": error_response("Not a valid identity, or an undeclared purpose."),
                    "429": error_response("Too many look-ups from this address or for this identity; `Retry-After` says when to come back.") },
                "parameters": [purpose_header(false), reason] } },
            "/v1/subjects/{id}": {
                "get": {
                    "operationId": "readSubject", "summary": "Read what a declared purpose may see of a subject.", "security": auth,
                    "parameters": [id_param, purpose_header(true), reason,
                        { "name": "categories", "in": "query", "required": false, "description": "Only these categories (comma-separated keys); each must be covered by the purpose and the key's scope (`403 purpose-does-not-cover`).", "schema": { "type": "string", "pattern": "^[a-z0-9_.]+(,[a-z0-9_.]+)*$" } }],
                    "responses": { "200": { "description": "The subject, limited to the purpose's categories.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Subject" } } } },
                        "400": error_response("No `Steward-Purpose` (`missing-purpose`), an empty one (`invalid-purpose`), or another query parameter (`invalid-query`)."),
                        "403": denied, "404": error_response("No such subject."), "422": error_response("Not a declared purpose.") } },
                "delete": {
                    "operationId": "eraseSubject", "summary": "Erase a subject: destroy its key, delete its data, keep legal holds; returns a receipt without personal data.", "security": auth,
                    "parameters": [id_param],
                    "responses": { "200": { "description": "Erased.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErasureReceipt" } } } },
                        "403": denied, "404": error_response("No such subject.") } } },
            "/v1/subjects/{id}/fields": { "patch": {
                "operationId": "rectifyField", "summary": "Correct (or add) the value of a category.", "security": auth,
                "parameters": [id_param, reason],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Rectify" } } } },
                "responses": { "204": { "description": "Corrected." }, "403": denied, "404": error_response("No such subject."),
                    "409": error_response("The category is immutable (the declaration's [rights] immutable)."), "422": error_response("The purpose may not collect the category, or the value is over 64 KiB (`value-too-large`).") } } },
            "/v1/subjects/{id}/activity": { "post": {
                "operationId": "recordActivity", "summary": "The person was active now (a sign-in, a purchase): every \"… after last activity\" period starts again. `{\"contract\": \"ended\"}` also starts the \"… after the end of the contract\" periods; `{\"contract\": \"running\"}` stops them. Writing the person's data counts as activity by itself.", "security": auth,
                "parameters": [id_param],
                "requestBody": { "required": false, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false, "properties": {
                    "contract": { "type": "string", "enum": ["ended", "running"] } } } } } },
                "responses": { "204": { "description": "Recorded." }, "403": denied, "404": error_response("No such subject."),
                    "422": error_response("`contract` is neither `ended` nor `running`.") } } },
            "/v1/subjects/{id}/export": { "get": {
                "operationId": "exportSubject", "summary": "Everything held on a subject, for every purpose, with provenance, legal holds and their audit trail (admin and dpo only, without a purpose or category scope).", "security": auth,
                "parameters": [id_param],
                "responses": { "200": { "description": "The subject's data and trail.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "403": denied, "404": error_response("No such subject.") } } },
            "/v1/audit": { "get": {
                "operationId": "listAudit", "summary": "Audit entries, oldest first, filtered and paged (admin, dpo, auditor).", "security": auth,
                "parameters": [
                    { "name": "subject", "in": "query", "schema": { "type": "string", "format": "uuid" } },
                    { "name": "actor", "in": "query", "schema": { "type": "string" }, "description": "`key:stw_…`, `staff:NAME`, `cli`." },
                    { "name": "purpose", "in": "query", "schema": { "type": "string" } },
                    { "name": "since", "in": "query", "schema": { "type": "string", "format": "date-time" } },
                    { "name": "until", "in": "query", "schema": { "type": "string", "format": "date-time" } },
                    { "name": "after", "in": "query", "schema": { "type": "integer", "minimum": 0, "maximum": 9_223_372_036_854_775_807_i64 }, "description": "Entries after this sequence number (from `next_after`)." },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }],
                "responses": { "200": { "description": "`{entries: [...], next_after}`: each entry with seq, at, request, actor, role, action, purpose, subject, categories, outcome, code, ticket, flagged, detail, prev, hash.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "403": denied } } },
            "/v1/audit/verify": { "get": {
                "operationId": "verifyAudit", "summary": "Verify the whole chain: hashes, checkpoints, the sealed head (admin, dpo, auditor).", "security": auth,
                "responses": { "200": { "description": "`{intact: true, entries, checkpoints, head}` or `{intact: false, break}` naming the first broken entry.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "403": denied } } },
            "/v1/consent": { "post": {
                "operationId": "recordConsent", "summary": "Record a consent event for a subject or a browser: grant, withdraw, object, restrict, lift, signal (gpc, dnt), accept (a policy version), link (a browser to a subject), close, reopen. Checked against the declaration, chained on the ledger, audited (refusals too). A grant for a double opt-in purpose mails the confirmation link; the confirmation itself is recorded only when the person opens it, never through this endpoint. Which fields an action takes is in docs/consent.md; a combination the declaration does not allow is `422`.", "security": auth,
                "requestBody": { "required": true, "content": { "application/json": { "schema": v.consent_event() } } },
                "responses": { "201": { "description": "`{seq, permit, confirmation}`.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "403": denied, "404": error_response("No such subject."),
                    "422": error_response("`unknown-purpose`, `not-consent-based`, `not-objectable`, `invalid-event`, `needs-email`, `unknown-version`, `evidence-too-large`."),
                    "502": error_response("The event is recorded but the confirmation mail failed (`mail-failed`).") } } },
            "/v1/consent/verify": { "get": {
                "operationId": "verifyConsent", "summary": "Verify the whole consent ledger against its sealed head (admin, dpo, auditor).", "security": auth,
                "responses": { "200": { "description": "`{intact: true, events}` or `{intact: false, break}`.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "403": denied } } },
            "/v1/permits": {
                "get": {
                    "operationId": "permit", "summary": "May this purpose use this person's (or browser's) data now? Answered from memory, with a reason code. Name exactly one of `subject` and `device`.", "security": auth,
                    "parameters": [
                        { "name": "subject", "in": "query", "schema": { "type": "string", "format": "uuid" } },
                        { "name": "device", "in": "query", "schema": device_schema() },
                        { "name": "purpose", "in": "query", "required": true, "schema": one_of(v.purposes(|_| true), "A declared purpose.") }],
                    "responses": { "200": { "description": "`{purpose, allowed, reason}`; reason is one of consent-given, allowed-by-basis, allowed-by-opt-out, legal-hold, no-consent, withdrawn, not-confirmed, terms-changed, objected, restricted, account-closed, erased, gpc-opt-out, dnt, policy-not-accepted.", "content": { "application/json": { "schema": { "type": "object" } } } },
                        "403": denied, "422": error_response("`unknown-purpose`.") } },
                "post": {
                    "operationId": "permits", "summary": "Up to 1,000 permit questions at once, answered in order.", "security": auth,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["questions"], "additionalProperties": false, "properties": {
                        "questions": { "type": "array", "maxItems": 1000, "items": { "type": "object", "required": ["purpose"], "additionalProperties": false, "oneOf": question_party["oneOf"], "properties": {
                            "subject": nullable(json!({ "type": "string", "format": "uuid" })), "device": nullable(device_schema()), "purpose": one_of(v.purposes(|_| true), "A declared purpose.") } } } } } } } },
                    "responses": { "200": { "description": "`{answers: [{purpose, allowed, reason}]}`.", "content": { "application/json": { "schema": { "type": "object" } } } },
                        "403": denied, "422": error_response("`unknown-purpose`, `batch-too-large`.") } } },
            "/v1/subjects/{id}/consent": { "get": {
                "operationId": "consentHistory", "summary": "A subject's consent now (per purpose) and every event behind it, including those of linked browsers.", "security": auth,
                "parameters": [id_param],
                "responses": { "200": { "description": "`{subject, policy, policy_accepted, purposes, events}`.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "403": denied } } },
            "/v1/subjects/{id}/consent/proof": { "get": {
                "operationId": "consentProof", "summary": "The proof-of-consent export for an auditor: the history with each event's chain hashes, the ledger's head, and the terms of every policy version (admin, dpo, auditor).", "security": auth,
                "parameters": [id_param],
                "responses": { "200": { "description": "A `steward-consent-proof/1` JSON document.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "403": denied } } },
            "/v1/subjects/{id}/unsubscribe": { "get": {
                "operationId": "unsubscribeHeaders", "summary": "The one-click unsubscribe link and the RFC 8058 `List-Unsubscribe` / `List-Unsubscribe-Post` values for a marketing message to this subject.", "security": auth,
                "parameters": [id_param, { "name": "purpose", "in": "query", "required": true, "schema": one_of(v.purposes(|p| p.basis == LawfulBasis::Consent), "A consent-based purpose.") }],
                "responses": { "200": { "description": "`{url, list_unsubscribe, list_unsubscribe_post}`.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "403": denied, "404": error_response("No such subject."), "422": error_response("`unknown-purpose`, `not-consent-based`.") } } },
            "/v1/requests": {
                "post": {
                    "operationId": "createRequest", "summary": "Take in a data-subject request for a person: verification is mailed unless the key vouches for a signed-in person. A vouched request does only what the key may do directly; anything more waits for approval.", "security": auth,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RequestIntake" } } } },
                    "responses": { "201": { "description": "Taken in.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Request" } } } },
                        "403": denied,
                        "422": error_response("A right the declaration does not offer (`right-not-offered`), a purpose that does not fit the kind, a verification method not offered, or an immutable category (`immutable`)."),
                        "429": error_response("Too many look-ups (a caller who may look people up learns the subject, so the look-up limits apply).") } },
                "get": {
                    "operationId": "listRequests", "summary": "Requests, soonest due first, filtered by status, kind and due date; `overdue=true` for those open past their due date.", "security": auth,
                    "parameters": [
                        { "name": "status", "in": "query", "schema": { "type": "string", "pattern": status_list }, "description": "Comma-separated statuses, or `open` for every status not final." },
                        { "name": "kind", "in": "query", "schema": { "type": "string", "enum": kinds } },
                        { "name": "due_before", "in": "query", "schema": { "type": "string", "format": "date-time" }, "description": "Due before this instant: the due-soon list." },
                        { "name": "overdue", "in": "query", "schema": { "type": "boolean" } },
                        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }],
                    "responses": { "200": { "description": "`{requests: [...]}`.", "content": { "application/json": { "schema": { "type": "object", "properties": { "requests": { "type": "array", "items": { "$ref": "#/components/schemas/Request" } } } } } } },
                        "403": denied } } },
            "/v1/requests/{id}": { "get": {
                "operationId": "showRequest", "summary": "One request with its history, outcome, notices, and its queued work (mail, webhooks, delayed erasure) with attempts and last error.", "security": auth,
                "parameters": [request_param],
                "responses": { "200": { "description": "The request and `jobs: [{kind, recipient, attempts, run_at, done, last_error}]`; `last_error` names the cause (`webhook-unreachable`, `webhook-status-503`, `mail-failed`).", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Request" } } } },
                    "403": denied, "404": error_response("No request has this id (`unknown-request`).") } } },
            "/v1/requests/{id}/approve": { "post": {
                "operationId": "approveRequest", "summary": "Approve a verified request awaiting approval: it executes at once. Who approves must be allowed to do what the request does (dpo, admin).", "security": auth,
                "parameters": [request_param],
                "responses": { "200": request_view, "403": denied, "404": error_response("No request has this id (`unknown-request`)."),
                    "409": error_response("Not awaiting approval, e.g. approved already (`wrong-state`).") } } },
            "/v1/requests/{id}/deny": { "post": {
                "operationId": "denyRequest", "summary": "Deny an open request with a reason, which is mailed to the person (dpo, admin).", "security": auth,
                "parameters": [request_param], "requestBody": reason_body,
                "responses": { "200": request_view, "403": denied, "404": error_response("No request has this id (`unknown-request`)."),
                    "409": error_response("Already final (`wrong-state`).") } } },
            "/v1/requests/{id}/extend": { "post": {
                "operationId": "extendRequest", "summary": "Extend the deadline once, by the declared extension (GDPR: two more months; CCPA: 45 more days); the reason is mailed to the person (dpo, admin).", "security": auth,
                "parameters": [request_param], "requestBody": reason_body,
                "responses": { "200": request_view, "403": denied, "404": error_response("No request has this id (`unknown-request`)."),
                    "409": error_response("Already extended (`already-extended`) or final (`wrong-state`)."), "422": error_response("The declaration allows no extension (`no-extension`).") } } },
            "/v1/requests/{id}/notifications/{recipient}/ack": { "post": {
                "operationId": "recordAcknowledgement", "summary": "Staff record that a recipient acted on the GDPR Art. 19 notice it was sent, when it confirmed some other way (dpo, admin: `decide`). Recipients acknowledge themselves with the link in their notice.", "security": auth,
                "parameters": [request_param, { "name": "recipient", "in": "path", "required": true, "description": "The processor id from the declaration.", "schema": one_of(recipients.clone(), "A declared processor.") }],
                "responses": { "200": request_view, "403": denied, "404": error_response("No request has this id (`unknown-request`), or it sent no notice to this recipient (`unknown-recipient`).") } } },
            "/v1/incidents": {
                "get": {
                    "operationId": "listIncidents", "summary": "The breach register, the newest first, each with its clocks (one per audience the declaration's [breach] names), affected people and notices (admin, dpo). `open=true`: only those not closed; `due=true`: `{due: [{incident, clock}]}`, the clocks due soon or overdue, the soonest first.", "security": auth,
                    "parameters": [
                        { "name": "open", "in": "query", "schema": { "type": "boolean" } },
                        { "name": "due", "in": "query", "schema": { "type": "boolean" } }],
                    "responses": { "200": { "description": "`{incidents: [...]}` or `{due: [...]}`.", "content": { "application/json": { "schema": { "type": "object" } } } }, "403": denied } },
                "post": {
                    "operationId": "openIncident", "summary": "Open an incident (admin, dpo; audited). The clocks count from `aware_at` (default `detected_at`, default now), never before detection. Write no personal data into its text.", "security": auth,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false, "required": ["title", "categories"], "properties": {
                        "title": { "type": "string", "minLength": 1, "maxLength": 200 },
                        "description": nullable(json!({ "type": "string", "maxLength": 10000 })),
                        "categories": { "type": "array", "minItems": 1, "maxItems": 100, "items": one_of(v.categories(), "A data category.") },
                        "systems": nullable(json!({ "type": "array", "maxItems": 100, "items": { "type": "string", "maxLength": 200 } })),
                        "detected_at": nullable(json!({ "type": "string", "format": "date-time" })),
                        "aware_at": nullable(json!({ "type": "string", "format": "date-time" })),
                        "occurred_from": nullable(json!({ "type": "string", "format": "date-time" })),
                        "occurred_to": nullable(json!({ "type": "string", "format": "date-time" })),
                        "estimated_records": nullable(json!({ "type": "integer", "minimum": 0, "maximum": 9_007_199_254_740_991_i64 })) } } } } },
                    "responses": { "201": { "description": "The incident, with its number, clocks and counts.", "content": { "application/json": { "schema": { "type": "object" } } } }, "403": denied,
                        "422": error_response("`invalid-incident`: awareness before detection, a time in the future or out of range, a window that ends before it starts, an unknown category, an empty title.") } } },
            "/v1/incidents/{id}": { "get": {
                "operationId": "showIncident", "summary": "An incident with its clocks, affected people (counts by source) and notices (counts by channel and state) (admin, dpo).", "security": auth,
                "parameters": [incident_param],
                "responses": { "200": { "description": "The incident.", "content": { "application/json": { "schema": { "type": "object" } } } }, "403": denied, "404": error_response("No such incident.") } } },
            "/v1/incidents/{id}/assess": { "post": {
                "operationId": "assessIncident", "summary": "Assess (or reassess) the risk to people: `unlikely` (the register keeps it; the authority need not be told), `risk`, `high` (people are told), with the reason, the likely consequences and the measures (Art. 33(3)(c), (d)); Art. 34(3) exemptions for a high risk; `sealed_only` when only Steward's sealed data store was exposed (admin, dpo; audited).", "security": auth,
                "parameters": [incident_param],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false, "required": ["risk", "reason"], "properties": {
                    "risk": { "type": "string", "enum": ["unlikely", "risk", "high"] },
                    "reason": { "type": "string", "minLength": 1, "maxLength": 10000 },
                    "consequences": nullable(json!({ "type": "string", "maxLength": 10000 })),
                    "measures": nullable(json!({ "type": "string", "maxLength": 10000 })),
                    "exemptions": nullable(json!({ "type": "array", "items": { "type": "string", "enum": ["encrypted", "mitigated", "public-communication"] } })),
                    "sealed_only": nullable(json!({ "type": "boolean" })) } } } } },
                "responses": { "200": { "description": "The incident.", "content": { "application/json": { "schema": { "type": "object" } } } }, "403": denied, "404": error_response("No such incident."),
                    "409": error_response("The incident is closed (`incident-conflict`)."), "422": error_response("No reason, an exemption without a high risk, or an unknown risk or exemption.") } } },
            "/v1/incidents/{id}/affected": { "post": {
                "operationId": "findAffected", "summary": "Find the people an incident affects and add them to it (the set only grows): `categories: true`, everyone holding its categories (collected by the window's end); `actor` (`key:stw_…`, `staff:NAME`), everyone the audit trail shows it acted on within `from`–`to` (default the incident's window); `datasets: true`, everyone the operator's own databases hold the categories of; `subjects`, ids found elsewhere (admin, dpo; audited with the counts).", "security": auth,
                "parameters": [incident_param],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false, "properties": {
                    "categories": nullable(json!({ "type": "boolean" })),
                    "actor": nullable(json!({ "type": "string", "pattern": "^[!-~]{1,100}$" })),
                    "from": nullable(json!({ "type": "string", "format": "date-time" })),
                    "to": nullable(json!({ "type": "string", "format": "date-time" })),
                    "subjects": nullable(json!({ "type": "array", "maxItems": 100000, "items": { "type": "string", "format": "uuid" } })),
                    "datasets": nullable(json!({ "type": "boolean", "description": "Everyone whose rows in the declaration's own databases hold the incident's categories, matched to the vault by their identities." })) } } } } },
                "responses": { "200": { "description": "The incident, with the people found by source.", "content": { "application/json": { "schema": { "type": "object" } } } }, "403": denied, "404": error_response("No such incident."),
                    "409": error_response("The incident is closed."), "422": error_response("Nothing asked, an actor without a window or in another shape than the audit's, a time out of range, or datasets when none is declared."),
                    "502": error_response("One of the operator's own databases could not be read (`dataset-failed`); nothing was added from it.") } } },
            "/v1/incidents/{id}/notify": { "post": {
                "operationId": "notifyIncident", "summary": "`audience: authority` records the authority's notification in its phase (`initial`, `follow-up`, `final`, Art. 33(4)); past the deadline it needs `late_reason` (Art. 33(1)). `audience: subjects` queues one notice per affected person and declared channel (e-mail, in-app; `reset_passwords` adds a signed webhook to [breach] password_reset); the server sends them, each once. Admin, dpo; audited.", "security": auth,
                "parameters": [incident_param],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false, "required": ["audience"], "properties": {
                    "audience": { "type": "string", "enum": ["authority", "subjects"] },
                    "phase": nullable(json!({ "type": "string", "enum": ["initial", "follow-up", "final"] })),
                    "reference": nullable(json!({ "type": "string", "maxLength": 200 })),
                    "late_reason": nullable(json!({ "type": "string", "maxLength": 10000 })),
                    "reset_passwords": nullable(json!({ "type": "boolean" })) } } } } },
                "responses": { "200": { "description": "The incident (authority), or `{incident, queued}` (subjects).", "content": { "application/json": { "schema": { "type": "object" } } } }, "403": denied, "404": error_response("No such incident."),
                    "409": error_response("Notified already (nobody is told twice), a phase out of order, not yet assessed, no affected people, or closed (`incident-conflict`)."),
                    "422": error_response("Late without `late_reason`, password resets without [breach] password_reset, or an unknown audience or phase.") } } },
            "/v1/incidents/{id}/close": { "post": {
                "operationId": "closeIncident", "summary": "Close an incident with the reason, once every required clock is met (admin, dpo; audited).", "security": auth,
                "parameters": [incident_param],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false, "required": ["reason"], "properties": {
                    "reason": { "type": "string", "minLength": 1, "maxLength": 10000 } } } } } },
                "responses": { "200": { "description": "The incident.", "content": { "application/json": { "schema": { "type": "object" } } } }, "403": denied, "404": error_response("No such incident."),
                    "409": error_response("Not assessed, an audience still to notify, or closed already."), "422": error_response("No reason.") } } },
            "/v1/incidents/{id}/report": { "get": {
                "operationId": "incidentReport", "summary": "The authority's report: every GDPR Art. 33(3) item (nature, categories and approximate numbers of people and records; the contact point; likely consequences; measures), the clocks and the phase, as JSON, Markdown or HTML (admin, dpo; audited).", "security": auth,
                "parameters": [incident_param, { "name": "format", "in": "query", "schema": { "type": "string", "enum": ["json", "md", "html"] } }],
                "responses": { "200": { "description": "The report.", "content": { "application/json": { "schema": { "type": "object" } }, "text/markdown": { "schema": { "type": "string" } }, "text/html": { "schema": { "type": "string" } } } }, "403": denied, "404": error_response("No such incident.") } } },
            "/v1/incidents/{id}/password-resets": { "post": {
                "operationId": "acknowledgePasswordResets", "summary": "Your application acknowledges that it reset these people's passwords, after the signed `steward.breach.password-reset` webhook named them (a key with the `request` operation, e.g. service; audited with the count).", "security": auth,
                "parameters": [{ "name": "id", "in": "path", "required": true, "description": "The incident id the webhook named.", "schema": { "type": "string", "format": "uuid" } }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false, "required": ["subjects"], "properties": {
                    "subjects": { "type": "array", "maxItems": 10000, "items": { "type": "string", "format": "uuid" } } } } } } },
                "responses": { "200": { "description": "`{acknowledged}`: how many were not acknowledged before.", "content": { "application/json": { "schema": { "type": "object" } } } }, "403": denied, "404": error_response("Not an incident id."), "422": error_response("Over 10,000 subjects.") } } },
            "/v1/subjects/{id}/notices": { "get": {
                "operationId": "listNotices", "summary": "A person's in-app breach notices, for your application to show: `{notices: [{incident, title, message, posted_at, read_at}]}` (a key with the `request` operation; audited).", "security": auth,
                "parameters": [id_param],
                "responses": { "200": { "description": "The notices, the newest first.", "content": { "application/json": { "schema": { "type": "object" } } } }, "403": denied } } },
            "/v1/subjects/{id}/notices/{incident}/read": { "post": {
                "operationId": "readNotice", "summary": "The person read the in-app notice of this incident (audited).", "security": auth,
                "parameters": [id_param, { "name": "incident", "in": "path", "required": true, "description": "The incident id the notice gives.", "schema": { "type": "string", "format": "uuid" } }],
                "responses": { "204": { "description": "Marked read." }, "403": denied, "404": error_response("No unread notice of this incident for this person.") } } },
            "/v1/disclosures": {
                "get": {
                    "operationId": "listDisclosures", "summary": "The disclosure log, the newest first (admin, dpo; audited): to whom, which categories, on which basis, the reference, how many people, and whether and when they may be told.", "security": auth,
                    "parameters": [
                        { "name": "subject", "in": "query", "schema": { "type": "string", "format": "uuid" } },
                        { "name": "recipient", "in": "query", "schema": { "type": "string", "maxLength": 200 } }],
                    "responses": { "200": { "description": "`{disclosures: [...]}`.", "content": { "application/json": { "schema": { "type": "object" } } } }, "403": denied } },
                "post": {
                    "operationId": "recordDisclosure", "summary": "Record personal data shared with a declared recipient (admin, dpo, service; audited without naming anyone). With a purpose its basis, recipients and categories apply, and a consent purpose needs every person's and every counterpart's consent: without it the share is refused (`409 consent-missing`, audited). `gag_until` keeps it out of the people's access packages until then; `tell: false`, always.", "security": auth,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false, "required": ["recipient", "categories"], "properties": {
                        "recipient": one_of(recipients, "A declared processor, third party or authority."),
                        "categories": { "type": "array", "minItems": 1, "maxItems": 100, "items": one_of(v.categories(), "A data category.") },
                        "subjects": nullable(json!({ "type": "array", "maxItems": 100000, "items": { "type": "string", "format": "uuid" } })),
                        "counterparts": nullable(json!({ "type": "array", "maxItems": 1000, "items": { "type": "string", "format": "uuid" } })),
                        "purpose": nullable(one_of(v.purposes(|_| true), "A declared purpose.")),
                        "basis": nullable(json!({ "type": "string", "enum": LawfulBasis::ALL.iter().map(|b| b.0.as_str()).collect::<Vec<_>>() })),
                        "reference": nullable(json!({ "type": "string", "maxLength": 200 })),
                        "gag_until": nullable(json!({ "type": "string", "format": "date-time" })),
                        "tell": nullable(json!({ "type": "boolean" })) } } } } },
                    "responses": { "201": { "description": "The disclosure.", "content": { "application/json": { "schema": { "type": "object" } } } }, "403": denied,
                        "409": error_response("A required consent is missing (`consent-missing`); nothing was recorded."),
                        "422": error_response("An undeclared recipient or purpose, an unknown category, a purpose that does not name the recipient or collect the category, no basis, a gag in the past, an unknown subject.") } } },
            "/v1/aggregates": { "post": {
                "operationId": "aggregate", "summary": "Counts of distinct people by `purpose`, `category`, `month` (the vault), `consent` (the ledger) or `country` (alone), every group under the declared k suppressed, no total, never an id or value (admin, dpo; audited). `share_with` logs it as a disclosure.", "security": auth,
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false, "required": ["by"], "properties": {
                    "by": { "type": "array", "minItems": 1, "maxItems": 5, "items": { "type": "string", "enum": ["purpose", "category", "month", "consent", "country"] } },
                    "categories": nullable(json!({ "type": "array", "maxItems": 100, "items": one_of(v.categories(), "A data category.") })),
                    "share_with": nullable(json!({ "type": "string", "maxLength": 200 })),
                    "reference": nullable(json!({ "type": "string", "maxLength": 200 })) } } } } },
                "responses": { "200": { "description": "`{by, k, groups: [{values, count}], suppressed, disclosure}`.", "content": { "application/json": { "schema": { "type": "object" } } } }, "403": denied,
                    "422": error_response("No dimension, a combination the sources cannot count, an unknown category or recipient.") } } },
            "/requests/{id}/notifications/{recipient}/ack": {
                "get": {
                    "operationId": "acknowledgementPage", "summary": "Public: the page behind the acknowledgement link an e-mailed recipient was sent. It shows a button and changes nothing.",
                    "parameters": [request_param, { "name": "recipient", "in": "path", "required": true, "schema": { "type": "string" } }, { "name": "token", "in": "query", "required": true, "schema": { "type": "string", "pattern": "^[0-9a-f]{64}$" } }],
                    "responses": { "200": html_response("An HTML page with a form."), "404": html_response("Not this recipient's link for this request (`unknown-notice`).") } },
                "post": {
                    "operationId": "acknowledgeNotice", "summary": "Public: a recipient acknowledges the GDPR Art. 19 notice it was sent, with the link from the notice: the token is bound to the request and to that recipient, so no one else can. `Accept: application/json` answers JSON, else a page.",
                    "parameters": [request_param, { "name": "recipient", "in": "path", "required": true, "schema": { "type": "string" } }, { "name": "token", "in": "query", "required": false, "description": "Or as the `token` field of a form.", "schema": { "type": "string", "pattern": "^[0-9a-f]{64}$" } }],
                    "responses": { "200": { "description": "`{request, recipient, acknowledged_at}`.", "content": { "application/json": { "schema": { "type": "object" } }, "text/html": { "schema": { "type": "string" } } } },
                        "404": { "description": "Not this recipient's link for this request, or no such request (`unknown-notice`): the same answer for each, as JSON or a page like the answer.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } }, "text/html": { "schema": { "type": "string" } } } } } } },
            "/requests": { "post": {
                "operationId": "makeRequest", "summary": "Public: a person makes a request. The answer, and its cost, are the same whether or not the address is known; rate-limited per client address (20/min) and per e-mail address (5/h).",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/PublicIntake" } } } },
                "responses": { "202": { "description": "`{id, kind, status, due_at, next}`: what happens next (check your e-mail).", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "403": denied,
                    "422": error_response("A right not offered, a purpose that does not fit, an immutable category."),
                    "429": error_response("Too many requests from this address or for this e-mail; `Retry-After` says when to come back.") } } },
            "/requests/verify": {
                "get": {
                    "operationId": "verifyPage", "summary": "Public: the page behind the e-mailed link. It shows a button and changes nothing, so mail scanners that follow links do not verify.",
                    "parameters": [{ "name": "token", "in": "query", "required": true, "schema": request_token() }],
                    "responses": { "200": html_response("An HTML page with a form."), "400": html_response("The link is incomplete or malformed."),
                        "403": html_response("A link not issued here."), "404": html_response("No such request."),
                        "409": html_response("The link was used already or replaced by a newer one."), "410": html_response("The link expired.") } },
                "post": {
                    "operationId": "verifyLink", "summary": "Public: verify the request with the e-mailed link's token (the form field `token`, or the query); valid 24 hours, once. Answers JSON when asked for it (`Accept: application/json`), else a page.",
                    "parameters": [{ "name": "token", "in": "query", "required": false, "schema": request_token() }],
                    "requestBody": { "required": true, "content": { "application/x-www-form-urlencoded": { "schema": { "type": "object", "required": ["token"], "properties": { "token": request_token() } } } } },
                    "responses": { "200": { "description": "The request is verified.", "content": { "text/html": { "schema": { "type": "string" } }, "application/json": { "schema": { "type": "object" } } } },
                        "400": { "description": "A malformed token.", "content": { "text/html": { "schema": { "type": "string" } }, "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                        "403": { "description": "A token not issued here (`forged-token`).", "content": { "text/html": { "schema": { "type": "string" } }, "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                        "404": { "description": "No such request.", "content": { "text/html": { "schema": { "type": "string" } }, "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                        "409": { "description": "Used already or replaced by a newer link (`used-token`).", "content": { "text/html": { "schema": { "type": "string" } }, "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                        "410": { "description": "Expired.", "content": { "text/html": { "schema": { "type": "string" } }, "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                        "429": error_response("Too many attempts from this address (the limit of `POST /requests`); `Retry-After` says when to come back.") } } },
            "/requests/{id}/verify": { "post": {
                "operationId": "verifyCode", "summary": "Public: verify the request with the 6-digit code mailed to the person; five wrong codes end it.",
                "parameters": [request_param],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["code"], "additionalProperties": false, "properties": { "code": { "type": "string", "pattern": "^[0-9]{6}$" } } } } } },
                "responses": { "200": { "description": "`{id, status}`.", "content": { "application/json": { "schema": { "type": "object" } } } }, "400": error_response("A wrong code (`wrong-code`, with the attempts left) or a bad id."),
                    "404": error_response("No such request."), "409": error_response("Not awaiting verification."), "410": error_response("The code expired."),
                    "429": error_response("Too many attempts (`too-many-attempts`) or too many from this address.") } } },
            "/requests/{id}/package": { "get": {
                "operationId": "downloadPackage", "summary": "Public: the access package, streamed as a ZIP (index.html with the Art. 15 information, data.json, csv/<group>.csv, data.xlsx), through the link mailed to the person: bound to this request, valid 3 days.",
                "parameters": [request_param, { "name": "token", "in": "query", "required": true, "schema": request_token() }],
                "responses": { "200": { "description": "The ZIP.", "content": { "application/zip": { "schema": { "type": "string", "format": "binary" } } } },
                    "400": error_response("A malformed link."), "403": error_response("A link not issued here (`forged-token`), or for another request (`wrong-request`)."),
                    "404": error_response("No such request."), "409": error_response("The link was replaced by a newer one, or the request has no package (`used-token`)."), "410": error_response("The link expired."),
                    "429": error_response("Too many attempts from this address (the limit of `POST /requests`); `Retry-After` says when to come back.") } } },
            "/v1/session": {
                "post": {
                    "operationId": "signIn", "summary": "Staff sign-in: sets the session cookie (Secure, HttpOnly, SameSite=Strict) and returns the CSRF token. Every failure answers the same; five in a row lock the account for 15 minutes.",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["username", "password"], "additionalProperties": false, "properties": {
                        "username": { "type": "string" }, "password": { "type": "string" }, "code": nullable(json!({ "type": "string", "description": "The 6-digit TOTP code, when the account has TOTP." })) } } } } },
                    "responses": { "200": { "description": "Signed in: username, role, csrf_token, expires_at.", "content": { "application/json": { "schema": { "type": "object" } } } },
                        "401": error_response("`sign-in-failed`, the same for every cause."), "403": error_response("A cross-site request."), "429": error_response("Too many attempts from this address or for this username."),
                        "503": error_response("Too many sign-ins at once (`busy`); `Retry-After` says when to come back.") } },
                "get": {
                    "operationId": "currentSession", "summary": "Who is signed in, and the session's CSRF token.", "security": [{ "session": [] }],
                    "responses": { "200": { "description": "actor, role, csrf_token.", "content": { "application/json": { "schema": { "type": "object" } } } }, "404": error_response("The call was made with an API key, not a session (`no-session`).") } },
                "delete": {
                    "operationId": "signOut", "summary": "End the session (needs the CSRF token).", "security": [{ "session": [] }],
                    "responses": { "204": { "description": "Signed out; the cookie is cleared." }, "403": denied, "404": error_response("The call was made with an API key, not a session (`no-session`).") } } }
        }
    });
    complete(&mut doc);
    doc
}

/// Adds to every operation the answers every operation of its kind can give: `400` for a bad
/// body, id or query, `413` for a body over 2 MiB, `415` for a body that is not JSON, and for
/// authenticated ones `401` (no valid key or session; audited), `403`, `429` (too many refused
/// keys from one address) and `503` (rate limits that cannot be checked).
fn complete(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        for op in operations.values_mut() {
            let secured = op.get("security").is_some();
            let takes_input = op.get("requestBody").is_some() || op.get("parameters").is_some();
            let json_body = op["requestBody"]["content"]
                .get("application/json")
                .is_some();
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            let mut add = |status: &str, text: &str| {
                if !responses.contains_key(status) {
                    responses.insert(status.to_owned(), error_response(text));
                }
            };
            if takes_input {
                add(
                    "400",
                    "The body is not JSON of this schema (`invalid-body`), an id is not a UUID (`invalid-id`), or a query or header is not of its schema.",
                );
            }
            if json_body {
                add("413", "The body is over 2 MiB (`body-too-large`).");
                add(
                    "415",
                    "The body is not sent as `application/json` (`invalid-body`).",
                );
            }
            if secured {
                add(
                    "401",
                    "No valid API key or session (`unauthorized`, `invalid-key`, `revoked-key`, `expired-key`, `invalid-session`, `expired-session`). Audited.",
                );
                add("403", "Not allowed.");
                add(
                    "429",
                    "Too many refused keys or sessions from this address (`rate-limited`); `Retry-After` says when to come back.",
                );
                add(
                    "503",
                    "The rate limits cannot be checked just now (`limits-unavailable`); `Retry-After` says when to come back.",
                );
            }
        }
    }
}
