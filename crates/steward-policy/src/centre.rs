//! The privacy centre's look and words (`[centre]`): the name and accent colour it shows,
//! its logo, the languages it speaks, and the operator's own wording for any string.
//!
//! ```toml
//! [centre]
//! name = "MailPro"                 # default: the controller's name
//! accent = "#0b57a4"               # links and buttons; needs 4.5:1 contrast on white (WCAG 1.4.3)
//! logo = "logo.svg"                # SVG or PNG, beside the declaration; served by Steward
//! languages = ["en", "de", "fr"]   # chosen from the browser's Accept-Language [all shipped]
//!
//! [centre.strings.en]
//! "nav.request" = "Ask us something"
//! ```
//!
//! English, German and French are shipped (`centre/en.toml`, `de.toml`, `fr.toml`); another
//! language is spoken only with every string given under `[centre.strings.<language>]`.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// The shipped languages and their strings (TOML tables of key = text).
pub const SHIPPED: [(&str, &str); 3] = [
    ("en", include_str!("centre/en.toml")),
    ("de", include_str!("centre/de.toml")),
    ("fr", include_str!("centre/fr.toml")),
];

/// How the privacy centre looks and speaks (`[centre]`).
#[derive(Debug, Clone, Serialize)]
pub struct Centre {
    /// The name shown in the header [the controller's name].
    pub name: String,
    /// The accent colour, `#rrggbb` [`#0b57a4`].
    pub accent: String,
    /// The logo's path as written (relative to the declaration); `steward serve` reads it.
    pub logo: Option<String>,
    /// The languages offered, in order of preference; the first is the fallback.
    pub languages: Vec<String>,
    /// The operator's strings by language, then key.
    pub strings: BTreeMap<String, BTreeMap<String, String>>,
}

impl Centre {
    /// The defaults for a controller named `name`.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            accent: "#0b57a4".to_owned(),
            logo: None,
            languages: SHIPPED.iter().map(|(l, _)| (*l).to_owned()).collect(),
            strings: BTreeMap::new(),
        }
    }

    /// The words in `language`: English, then the shipped language, then the operator's.
    /// A regional tag (`de-CH`) speaks its language's shipped strings (`de`) and then its own.
    pub fn words(&self, language: &str) -> Words {
        let own = |map: &mut HashMap<String, String>, lang: &str| {
            if let Some(strings) = self.strings.get(lang) {
                map.extend(strings.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        };
        // English fills any gap; the operator's English only where the language has no word.
        let mut map = shipped("en");
        own(&mut map, "en");
        let primary = language.split('-').next().unwrap_or(language);
        if language != "en" {
            map.extend(shipped(language));
            if primary != language {
                own(&mut map, primary);
            }
            own(&mut map, language);
        }
        Words {
            language: language.to_owned(),
            map,
        }
    }

    /// The language to answer in for an `Accept-Language` header (RFC 9110 §12.5.4): the
    /// offered language with the highest weight, else the first offered.
    pub fn negotiate(&self, accept_language: Option<&str>) -> &str {
        let fallback = self.languages.first().map_or("en", String::as_str);
        let Some(header) = accept_language else {
            return fallback;
        };
        let mut best: Option<(f32, &str)> = None;
        for part in header.split(',').take(32) {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let weight = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if weight <= 0.0 {
                continue;
            }
            let primary = tag.split('-').next().unwrap_or("");
            let found = self
                .languages
                .iter()
                .find(|l| l.eq_ignore_ascii_case(&tag) || l.eq_ignore_ascii_case(primary));
            if let Some(lang) = found
                && best.is_none_or(|(w, _)| weight > w)
            {
                best = Some((weight, lang.as_str()));
            }
        }
        best.map_or(fallback, |(_, l)| l)
    }
}

/// The strings of a shipped language, or of a regional tag's language (`de-CH`: `de`);
/// empty for another.
fn shipped(language: &str) -> HashMap<String, String> {
    let primary = language.split('-').next().unwrap_or(language);
    SHIPPED
        .iter()
        .find(|(l, _)| *l == language || *l == primary)
        .and_then(|(_, text)| toml::from_str::<HashMap<String, String>>(text).ok())
        .unwrap_or_default()
}

/// Whether `language` (or a regional tag's language: `de-CH`) is shipped.
pub fn is_shipped(language: &str) -> bool {
    let primary = language.split('-').next().unwrap_or(language);
    SHIPPED.iter().any(|(l, _)| *l == language || *l == primary)
}

/// Every string key (English's), sorted.
pub fn keys() -> Vec<String> {
    let mut keys: Vec<String> = shipped("en").into_keys().collect();
    keys.sort();
    keys
}

/// The privacy centre's words in one language.
#[derive(Debug, Clone)]
pub struct Words {
    /// The language (BCP 47).
    pub language: String,
    map: HashMap<String, String>,
}

impl Words {
    /// The string for `key` (the key itself when none is known, so a gap shows on the page
    /// rather than an empty label).
    pub fn s<'a>(&'a self, key: &'a str) -> &'a str {
        self.map.get(key).map_or(key, String::as_str)
    }

    /// The string for `key` with each `{name}` replaced by its value.
    pub fn f(&self, key: &str, values: &[(&str, &str)]) -> String {
        let mut text = self.s(key).to_owned();
        for (name, value) in values {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }
}

impl Words {
    /// A duration in these words (`1 Monat`, `24 heures`).
    pub fn duration(&self, d: &crate::duration::Duration) -> String {
        use crate::duration::Unit;
        let unit = match d.unit {
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::BusinessDay => "business-day",
            Unit::Week => "week",
            Unit::Month => "month",
            Unit::Year => "year",
        };
        let count = if d.amount == 1 { "one" } else { "many" };
        format!("{} {}", d.amount, self.s(&format!("unit.{unit}.{count}")))
    }

    /// Where a field came from, in these words (`form`, `import`, `api`, `staff`,
    /// `third-party:<id>`; another source is shown as stored).
    pub fn source(&self, stored: &str) -> String {
        let kind = stored.split(':').next().unwrap_or(stored);
        let key = format!("source.{kind}");
        let text = self.s(&key);
        if text == key {
            stored.to_owned()
        } else {
            text.to_owned()
        }
    }
}

/// The contrast ratio of two `#rrggbb` colours (WCAG 2.2 §1.4.3's relative luminance), or
/// `None` for a colour not written so.
pub fn contrast(a: &str, b: &str) -> Option<f64> {
    let la = luminance(a)?;
    let lb = luminance(b)?;
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    Some((hi + 0.05) / (lo + 0.05))
}

fn luminance(hex: &str) -> Option<f64> {
    let hex = hex.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| -> Option<f64> {
        let v = f64::from(u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()?) / 255.0;
        Some(if v <= 0.039_28 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        })
    };
    Some(0.2126 * channel(0)? + 0.7152 * channel(2)? + 0.0722 * channel(4)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_language_has_every_english_key_and_no_other() {
        let english = keys();
        for (lang, _) in SHIPPED {
            let mut theirs: Vec<String> = shipped(lang).into_keys().collect();
            theirs.sort();
            assert_eq!(theirs, english, "{lang} differs from en");
        }
    }

    #[test]
    fn the_browser_language_is_chosen_among_the_offered_ones_by_weight() {
        let c = Centre::named("X");
        assert_eq!(c.negotiate(Some("de-CH, fr;q=0.9, en;q=0.8")), "de");
        assert_eq!(c.negotiate(Some("it, fr;q=0.5")), "fr");
        assert_eq!(c.negotiate(Some("it")), "en");
        assert_eq!(c.negotiate(Some("de;q=0")), "en");
        assert_eq!(c.negotiate(None), "en");
    }

    #[test]
    fn the_operators_strings_override_the_shipped_ones_and_english_fills_gaps() {
        let mut c = Centre::named("X");
        c.strings.insert(
            "de".to_owned(),
            BTreeMap::from([("nav.request".to_owned(), "Anliegen".to_owned())]),
        );
        let de = c.words("de");
        assert_eq!(de.s("nav.request"), "Anliegen");
        assert_ne!(de.s("nav.me"), c.words("en").s("nav.me"));
        assert_eq!(de.s("no.such.key"), "no.such.key");
        // The operator's English does not cover a German word; a Swiss page speaks German.
        c.strings.insert(
            "en".to_owned(),
            BTreeMap::from([("nav.me".to_owned(), "Your account".to_owned())]),
        );
        assert_eq!(c.words("en").s("nav.me"), "Your account");
        assert_eq!(c.words("de").s("nav.me"), shipped("de")["nav.me"]);
        assert_eq!(c.words("de-CH").s("nav.request"), "Anliegen");
        assert_eq!(
            c.words("fr-CH").s("nav.request"),
            shipped("fr")["nav.request"]
        );
        assert!(is_shipped("fr-CH") && !is_shipped("it"));
        assert_eq!(
            c.words("en").f("footer", &[("name", "Acme")]),
            "This privacy centre is run by Steward for Acme."
        );
    }

    #[test]
    fn durations_and_sources_are_said_in_the_pages_language() {
        let c = Centre::named("X");
        let month = crate::duration::Duration {
            amount: 1,
            unit: crate::duration::Unit::Month,
        };
        let hours = crate::duration::Duration {
            amount: 24,
            unit: crate::duration::Unit::Hour,
        };
        assert_eq!(c.words("en").duration(&month), "1 month");
        assert_eq!(c.words("de").duration(&month), "1 Monat");
        assert_eq!(c.words("fr").duration(&hours), "24 heures");
        assert_eq!(c.words("en").source("third-party:zendesk"), "a partner");
        assert_eq!(c.words("en").source("something-else"), "something-else");
    }

    #[test]
    fn contrast_follows_wcag() {
        let white_black = contrast("#ffffff", "#000000").unwrap_or(0.0);
        assert!((white_black - 21.0).abs() < 0.01);
        assert!(contrast("#0b57a4", "#ffffff").unwrap_or(0.0) > 4.5);
        assert!(contrast("#ffff00", "#ffffff").unwrap_or(9.0) < 4.5);
        assert_eq!(contrast("blue", "#ffffff"), None);
    }
}
