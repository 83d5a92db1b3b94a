//! The taxonomy of data categories, data uses and data subjects.
//!
//! Keys are fideslang-compatible (`user.contact.email`, `marketing.communications.email`,
//! `customer`) and hierarchical: a rule on `user.contact` covers `user.contact.email`.
//! The declaration may extend it with keys under an existing parent.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::suggest;

/// Which of the three vocabularies a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// What kind of personal data (`user.contact.email`).
    Category,
    /// What the data is used for (`marketing.communications.email`).
    Use,
    /// Whose data it is (`customer`).
    Subject,
}

impl Kind {
    /// The singular noun for messages (`data category`).
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Category => "data category",
            Kind::Use => "data use",
            Kind::Subject => "data subject",
        }
    }
}

/// One entry of the taxonomy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The dotted key.
    pub key: String,
    /// A short human name.
    pub name: String,
    /// What it means.
    pub description: String,
    /// Set on deprecated fideslang keys: the key to use instead.
    pub replaced_by: Option<String>,
    /// Whether the declaration added it.
    pub custom: bool,
}

/// What looking a key up found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// A current key.
    Known(&'a Term),
    /// A deprecated key and the one that replaces it.
    Deprecated {
        /// The replacement key.
        replaced_by: &'a str,
    },
    /// Not a key; perhaps a typo of the suggested one.
    Unknown {
        /// The nearest known key, if any is close.
        suggestion: Option<&'a str>,
    },
}

/// The three vocabularies.
#[derive(Debug, Clone, Default)]
pub struct Taxonomy {
    terms: BTreeMap<(Kind, String), Term>,
}

#[derive(Deserialize)]
struct DataFile {
    category: Vec<DataTerm>,
    #[serde(rename = "use")]
    uses: Vec<DataTerm>,
    subject: Vec<DataTerm>,
}

#[derive(Deserialize)]
struct DataTerm {
    key: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    replaced_by: Option<String>,
}

/// Why a custom term cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtendError {
    /// The key is already in the taxonomy.
    #[error("`{0}` is already a key of the standard taxonomy")]
    Exists(String),
    /// The key's parent is not a known key.
    #[error("`{key}` extends `{parent}`, which is not a known key")]
    NoParent {
        /// The key being added.
        key: String,
        /// Its missing parent.
        parent: String,
    },
    /// Categories and uses must extend a parent (a new root would match nothing).
    #[error("`{0}` has no parent; custom keys extend an existing key, e.g. `user.content.comment`")]
    Root(String),
}

impl Taxonomy {
    /// The standard taxonomy shipped with Steward.
    pub fn standard() -> &'static Taxonomy {
        static STANDARD: OnceLock<Taxonomy> = OnceLock::new();
        STANDARD.get_or_init(|| {
            let file: Result<DataFile, _> = toml::from_str(include_str!("../data/taxonomy.toml"));
            let mut taxonomy = Taxonomy::default();
            // The data file is part of the build and tested; an unreadable one yields an
            // empty taxonomy that every test would catch.
            if let Ok(file) = file {
                for (kind, terms) in [
                    (Kind::Category, file.category),
                    (Kind::Use, file.uses),
                    (Kind::Subject, file.subject),
                ] {
                    for t in terms {
                        taxonomy.terms.insert(
                            (kind, t.key.clone()),
                            Term {
                                key: t.key,
                                name: t.name,
                                description: t.description,
                                replaced_by: t.replaced_by,
                                custom: false,
                            },
                        );
                    }
                }
            }
            taxonomy
        })
    }

    /// Adds a custom key under an existing parent (subjects may be new roots).
    pub fn extend(
        &mut self,
        kind: Kind,
        key: &str,
        name: &str,
        description: &str,
    ) -> Result<(), ExtendError> {
        if self.terms.contains_key(&(kind, key.to_owned())) {
            return Err(ExtendError::Exists(key.to_owned()));
        }
        match key.rsplit_once('.') {
            Some((parent, _)) if !matches!(self.lookup(kind, parent), Lookup::Known(_)) => {
                return Err(ExtendError::NoParent {
                    key: key.to_owned(),
                    parent: parent.to_owned(),
                });
            }
            Some(_) => {}
            None if kind != Kind::Subject => return Err(ExtendError::Root(key.to_owned())),
            None => {}
        }
        self.terms.insert(
            (kind, key.to_owned()),
            Term {
                key: key.to_owned(),
                name: name.to_owned(),
                description: description.to_owned(),
                replaced_by: None,
                custom: true,
            },
        );
        Ok(())
    }

    /// Looks a key up, suggesting the nearest current key when it is unknown.
    pub fn lookup(&self, kind: Kind, key: &str) -> Lookup<'_> {
        match self.terms.get(&(kind, key.to_owned())) {
            Some(term) => match &term.replaced_by {
                Some(by) => Lookup::Deprecated { replaced_by: by },
                None => Lookup::Known(term),
            },
            None => Lookup::Unknown {
                suggestion: suggest::nearest(key, self.keys(kind)),
            },
        }
    }

    /// The term for a current key.
    pub fn get(&self, kind: Kind, key: &str) -> Option<&Term> {
        match self.lookup(kind, key) {
            Lookup::Known(term) => Some(term),
            _ => None,
        }
    }

    /// A human name for a key: its own name, or the key itself when unknown.
    pub fn name<'a>(&'a self, kind: Kind, key: &'a str) -> &'a str {
        self.get(kind, key).map_or(key, |t| t.name.as_str())
    }

    /// The current (non-deprecated) keys of one vocabulary, in order.
    pub fn keys(&self, kind: Kind) -> impl Iterator<Item = &str> {
        self.terms
            .iter()
            .filter(move |((k, _), t)| *k == kind && t.replaced_by.is_none())
            .map(|((_, key), _)| key.as_str())
    }

    /// The current terms of one vocabulary, in key order.
    pub fn terms(&self, kind: Kind) -> impl Iterator<Item = &Term> {
        self.terms
            .iter()
            .filter(move |((k, _), t)| *k == kind && t.replaced_by.is_none())
            .map(|(_, t)| t)
    }
}

/// Whether a rule written for `rule` applies to `key`: the same key or a descendant.
pub fn covers(rule: &str, key: &str) -> bool {
    key == rule
        || (key.len() > rule.len() && key.starts_with(rule) && key.as_bytes()[rule.len()] == b'.')
}

impl Taxonomy {
    /// The standard taxonomy as a Markdown reference (docs/taxonomy.md is generated from it).
    pub fn to_markdown(&self) -> String {
        let mut out = String::from(
            "# Taxonomy\n\n\
             Steward's vocabulary for the declaration. Keys are those of \
             [fideslang](https://github.com/ethyca/fideslang) (taxonomy CC BY 4.0), so a Fides \
             taxonomy or dataset maps onto Steward as is; names and descriptions are Steward's own.\n\n\
             Keys are hierarchical: a rule on `user.contact` covers `user.contact.email`. Add your \
             own keys under an existing parent with `[[taxonomy.categories]]`, `[[taxonomy.uses]]` \
             or `[[taxonomy.subjects]]` (see [declaration.md](declaration.md#taxonomy)). \
             Deprecated fideslang keys are accepted with a warning and replaced by their successor.\n\n\
             Search it from the command line: `steward taxonomy email`.\n\n\
             This file is generated from `crates/steward-policy/data/taxonomy.toml`; a test fails \
             when they differ.\n",
        );
        for (kind, title) in [
            (Kind::Category, "Data categories"),
            (Kind::Use, "Data uses"),
            (Kind::Subject, "Data subjects"),
        ] {
            out.push_str(&format!(
                "\n## {title}\n\n| Key | Name | Description |\n| --- | --- | --- |\n"
            ));
            for t in self.terms(kind) {
                out.push_str(&format!(
                    "| `{}` | {} | {} |\n",
                    t.key, t.name, t.description
                ));
            }
            let deprecated: Vec<&Term> = self
                .terms
                .iter()
                .filter(|((k, _), t)| *k == kind && t.replaced_by.is_some())
                .map(|(_, t)| t)
                .collect();
            if !deprecated.is_empty() {
                out.push_str("\nDeprecated keys and their replacements: ");
                let pairs: Vec<String> = deprecated
                    .iter()
                    .map(|t| format!("`{}` → `{}`", t.key, t.replaced_by.as_deref().unwrap_or("")))
                    .collect();
                out.push_str(&pairs.join(", "));
                out.push_str(".\n");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_taxonomy_has_the_fideslang_keys() {
        let t = Taxonomy::standard();
        for key in [
            "user.contact.email",
            "user.financial",
            "user.account.username",
            "user.device.ip_address",
        ] {
            assert!(t.get(Kind::Category, key).is_some(), "{key}");
        }
        for key in [
            "marketing.communications.email",
            "essential.service.payment_processing",
            "analytics.reporting",
        ] {
            assert!(t.get(Kind::Use, key).is_some(), "{key}");
        }
        assert!(t.get(Kind::Subject, "customer").is_some());
        assert!(t.keys(Kind::Category).count() > 90);
        assert!(t.terms(Kind::Use).all(|term| !term.description.is_empty()));
    }

    #[test]
    fn a_rule_on_a_parent_covers_its_children_only() {
        assert!(covers("user.contact", "user.contact.email"));
        assert!(covers("user.contact", "user.contact"));
        assert!(!covers("user.contact", "user.contacts"));
        assert!(!covers("user.contact.email", "user.contact"));
    }

    #[test]
    fn typos_get_the_nearest_key_and_deprecated_keys_their_replacement() {
        let t = Taxonomy::standard();
        assert_eq!(
            t.lookup(Kind::Category, "user.contact.emial"),
            Lookup::Unknown {
                suggestion: Some("user.contact.email")
            }
        );
        assert_eq!(
            t.lookup(Kind::Category, "user.childrens"),
            Lookup::Deprecated {
                replaced_by: "user.children"
            }
        );
    }

    #[test]
    fn the_declaration_can_extend_under_an_existing_parent() {
        let mut t = Taxonomy::standard().clone();
        t.extend(
            Kind::Category,
            "user.content.public.comment",
            "Comment",
            "A comment",
        )
        .unwrap();
        assert!(
            t.get(Kind::Category, "user.content.public.comment")
                .unwrap()
                .custom
        );
        assert_eq!(
            t.extend(Kind::Category, "user.nope.thing", "x", "y"),
            Err(ExtendError::NoParent {
                key: "user.nope.thing".into(),
                parent: "user.nope".into()
            })
        );
        assert!(matches!(
            t.extend(Kind::Category, "orders", "x", "y"),
            Err(ExtendError::Root(_))
        ));
        assert!(
            t.extend(Kind::Subject, "commenter", "Commenter", "Leaves comments")
                .is_ok()
        );
    }
}
