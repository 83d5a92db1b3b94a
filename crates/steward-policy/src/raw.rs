//! The declaration exactly as written in `privacy.toml`, before validation.
//!
//! Every field is optional here so that one pass of [`crate::validate`] can report every
//! missing or wrong value at once, each at its place in the file. Keys not listed here are
//! reported as unknown (with the nearest known key) rather than silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
pub struct RawDeclaration {
    pub policy: Option<RawPolicy>,
    pub controller: Option<RawController>,
    pub taxonomy: Option<RawTaxonomy>,
    #[serde(default)]
    pub purposes: Vec<RawPurpose>,
    #[serde(default)]
    pub processors: Vec<RawProcessor>,
    #[serde(default)]
    pub cookies: Vec<RawCookie>,
    #[serde(default)]
    pub embeds: Vec<RawEmbed>,
    pub rights: Option<RawRights>,
    pub breach: Option<RawBreach>,
    pub signals: Option<RawSignals>,
    pub security: Option<RawSecurity>,
    #[serde(default)]
    pub datasets: Vec<RawDataset>,
    pub retention: Option<RawRetention>,
    pub aggregates: Option<RawAggregates>,
    pub centre: Option<RawCentre>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawPolicy {
    pub version: Option<String>,
    pub effective: Option<toml::Value>,
    pub must_accept: Option<bool>,
    pub language: Option<String>,
    pub url: Option<String>,
    #[serde(default)]
    pub notify_changes: Vec<String>,
    #[serde(default)]
    pub changelog: Vec<RawChange>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawChange {
    pub version: Option<String>,
    pub date: Option<toml::Value>,
    pub summary: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawController {
    pub name: Option<String>,
    pub legal_name: Option<String>,
    #[serde(default)]
    pub trade_names: Vec<String>,
    pub address: Option<String>,
    pub country: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub website: Option<String>,
    #[serde(default)]
    pub data_location: Vec<String>,
    pub dpo: Option<RawContact>,
    pub representative: Option<RawContact>,
    pub authority: Option<RawAuthority>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawContact {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAuthority {
    pub name: Option<String>,
    pub country: Option<String>,
    pub website: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTaxonomy {
    #[serde(default)]
    pub categories: Vec<RawTerm>,
    #[serde(default)]
    pub uses: Vec<RawTerm>,
    #[serde(default)]
    pub subjects: Vec<RawTerm>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTerm {
    pub key: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawPurpose {
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(rename = "use")]
    pub data_use: Option<String>,
    pub basis: Option<String>,
    pub legitimate_interest: Option<String>,
    pub consent: Option<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub subjects: Vec<String>,
    pub source: Option<String>,
    pub retention: Option<String>,
    #[serde(default)]
    pub retain: BTreeMap<String, String>,
    #[serde(default)]
    pub recipients: Vec<String>,
    #[serde(default)]
    pub transfers: Vec<RawTransfer>,
    pub sale: Option<bool>,
    pub share: Option<bool>,
    pub legal_hold: Option<bool>,
    pub hold_reason: Option<String>,
    pub stored: Option<bool>,
    pub automated_decisions: Option<String>,
    pub required: Option<bool>,
    /// `None` when not written: `steward check` then names purposes sharing categories.
    pub compatible_with: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTransfer {
    pub country: Option<String>,
    pub safeguard: Option<String>,
    pub recipient: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawProcessor {
    pub id: Option<String>,
    pub name: Option<String>,
    pub role: Option<String>,
    pub service: Option<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    pub country: Option<String>,
    pub safeguard: Option<String>,
    pub dpa: Option<bool>,
    pub privacy_policy: Option<String>,
    pub opt_out: Option<String>,
    pub contact: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawCookie {
    pub name: Option<String>,
    pub provider: Option<String>,
    pub category: Option<String>,
    pub purpose: Option<String>,
    pub description: Option<String>,
    pub lifetime: Option<String>,
    pub extended: Option<RawExtended>,
    pub personal_data: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawExtended {
    pub lifetime: Option<String>,
    pub when: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawEmbed {
    pub id: Option<String>,
    pub name: Option<String>,
    pub content: Option<String>,
    pub privacy_policy: Option<String>,
    pub purpose: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRights {
    pub available: Option<Vec<String>>,
    pub deadline: Option<String>,
    pub extension: Option<String>,
    pub acknowledge: Option<String>,
    pub opt_out_deadline: Option<String>,
    #[serde(default)]
    pub holidays: Vec<toml::Value>,
    #[serde(default)]
    pub verification: Vec<String>,
    pub verification_expires: Option<String>,
    pub unverified_expire: Option<String>,
    pub approval: Option<bool>,
    pub notify_identity_change: Option<bool>,
    #[serde(default)]
    pub immutable: Vec<String>,
    #[serde(default)]
    pub languages: Vec<String>,
    pub contact: Option<String>,
    pub url: Option<String>,
    #[serde(default)]
    pub export_formats: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawBreach {
    pub authority: Option<RawBreachClock>,
    pub subjects: Option<RawBreachClock>,
    pub contact: Option<String>,
    pub password_reset: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawCentre {
    pub name: Option<String>,
    pub accent: Option<String>,
    pub logo: Option<String>,
    pub languages: Option<Vec<String>>,
    #[serde(default)]
    pub strings: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAggregates {
    pub k: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawBreachClock {
    pub within: Option<String>,
    #[serde(default)]
    pub channels: Vec<String>,
    pub when: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSignals {
    pub gpc: Option<bool>,
    pub dnt: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRetention {
    pub schedule: Option<String>,
    pub consent_proof: Option<String>,
    pub request_contact: Option<String>,
    pub requests: Option<String>,
    pub mail: Option<String>,
    pub audit: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSecurity {
    #[serde(default)]
    pub measures: Vec<String>,
    pub access: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawDataset {
    pub id: Option<String>,
    pub description: Option<String>,
    pub manifest: Option<String>,
}
