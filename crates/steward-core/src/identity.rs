//! Identities people are looked up by, normalised so that one person is one subject:
//! e-mail addresses (trimmed, Unicode NFC, lower case), phone numbers (E.164), usernames and
//! custom kinds. Errors say what is wrong without repeating the value (no personal data in
//! error messages).

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// The longest identity Steward accepts, in characters (after trimming and NFC).
pub const MAX_IDENTITY_CHARS: usize = 320;

/// What kind of identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityKind {
    /// An e-mail address.
    Email,
    /// A phone number, in E.164.
    Phone,
    /// A username.
    Username,
    /// An operator-defined kind (`customer-number`).
    Custom(String),
}

impl IdentityKind {
    /// Reads a kind's name (`email`, `phone`, `username`, or a custom name).
    pub fn parse(name: &str) -> Result<Self, IdentityError> {
        Ok(match name {
            "email" => Self::Email,
            "phone" => Self::Phone,
            "username" => Self::Username,
            other => {
                let mut chars = other.chars();
                let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                    && other.len() <= 32
                    && chars.all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                    });
                if !ok {
                    return Err(IdentityError::BadKind(other.chars().take(40).collect()));
                }
                Self::Custom(other.to_owned())
            }
        })
    }

    /// The kind's name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Username => "username",
            Self::Custom(name) => name,
        }
    }

    /// The data category the identity belongs to, for purpose checks.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Email => "user.contact.email",
            Self::Phone => "user.contact.phone_number",
            Self::Username => "user.account.username",
            Self::Custom(_) => "user.unique_id",
        }
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an identity was refused. Never contains the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not an e-mail address.
    #[error("the e-mail address is not valid: {0}")]
    Email(&'static str),
    /// Not a phone number Steward can normalise.
    #[error("the phone number is not valid: {0}")]
    Phone(&'static str),
    /// An unusable username or custom identity.
    #[error("the {kind} is not valid: {reason}")]
    Other {
        /// The kind.
        kind: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An identity kind name that is not allowed.
    #[error(
        "`{0}` is not an identity kind: use email, phone, username, or a lower-case name such as customer-number"
    )]
    BadKind(String),
}

/// A normalised identity. Its value is personal data: it is only ever stored sealed, and
/// looked up through its blind index.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    kind: IdentityKind,
    value: String,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({}, <redacted>)", self.kind)
    }
}

impl Identity {
    /// Normalises and checks `raw` as an identity of `kind`.
    pub fn parse(kind: IdentityKind, raw: &str) -> Result<Self, IdentityError> {
        let trimmed: String = raw.trim().nfc().collect();
        let too_long = trimmed.chars().count() > MAX_IDENTITY_CHARS;
        let value = match &kind {
            IdentityKind::Email => {
                if too_long {
                    return Err(IdentityError::Email("it is longer than 320 characters"));
                }
                normalise_email(&trimmed)?
            }
            IdentityKind::Phone => normalise_phone(&trimmed)?,
            IdentityKind::Username | IdentityKind::Custom(_) => {
                let reason = if trimmed.is_empty() {
                    Some("it is empty")
                } else if too_long {
                    Some("it is longer than 320 characters")
                } else if trimmed.chars().any(char::is_control) {
                    Some("it contains control characters")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    return Err(IdentityError::Other {
                        kind: kind.as_str().to_owned(),
                        reason,
                    });
                }
                if kind == IdentityKind::Username {
                    fold(&trimmed)
                } else {
                    trimmed
                }
            }
        };
        Ok(Self { kind, value })
    }

    /// The kind.
    pub fn kind(&self) -> &IdentityKind {
        &self.kind
    }

    /// The normalised value (personal data: never log it).
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// `text` without regard to case, the way an address or a username is compared: ASCII letters
/// folded, any other letter folded only to another non-ASCII letter, so that a sign that
/// lower-cases to an ASCII letter (the Kelvin sign K → k, the Ångström sign) never makes one
/// person's address another's.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            let lower: Vec<char> = c.to_lowercase().collect();
            if lower.iter().any(char::is_ascii) {
                out.push(c);
            } else {
                out.extend(lower);
            }
        }
    }
    out
}

/// An e-mail address in one form whatever way it was written: the local part in lower case
/// (NFC), the domain through IDNA (UTS #46, with the STD3 rules for host names) and back to
/// Unicode, so `jose@BÜCHER.example` and `jose@xn--bcher-kva.example` are one address.
fn normalise_email(text: &str) -> Result<String, IdentityError> {
    let lower = fold(text);
    let (local, domain) = lower
        .rsplit_once('@')
        .ok_or(IdentityError::Email("it has no @"))?;
    if local.is_empty() {
        return Err(IdentityError::Email("nothing comes before the @"));
    }
    if local.contains('@') {
        return Err(IdentityError::Email("it has more than one @"));
    }
    if lower
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'))
    {
        return Err(IdentityError::Email(
            "it contains spaces or characters an address cannot have",
        ));
    }
    let not_a_domain = IdentityError::Email("the part after the @ is not a domain name");
    // Host-name rules (letters, digits, hyphens, not first or last in a label), lengths as DNS
    // has them; hyphens in the third and fourth place stay allowed, as real domains have them.
    let ascii = idna::uts46::Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            idna::uts46::AsciiDenyList::STD3,
            idna::uts46::Hyphens::CheckFirstLast,
            idna::uts46::DnsLength::Verify,
        )
        .map_err(|_| not_a_domain.clone())?;
    if !ascii.contains('.')
        || ascii.starts_with('.')
        || ascii.ends_with('.')
        || ascii.contains("..")
    {
        return Err(not_a_domain);
    }
    let (unicode, checked) = idna::domain_to_unicode(&ascii);
    checked.map_err(|_| not_a_domain)?;
    Ok(format!("{local}@{unicode}"))
}

/// The form of a normalised address an SMTP server takes without SMTPUTF8: the domain in
/// its ASCII (`xn--`) form. The local part is left as it is.
pub fn smtp_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => match idna::domain_to_ascii(domain) {
            Ok(ascii) => format!("{local}@{ascii}"),
            Err(_) => address.to_owned(),
        },
        None => address.to_owned(),
    }
}

fn normalise_phone(text: &str) -> Result<String, IdentityError> {
    // "+41 (0)79 …": the bracketed trunk zero is dialled only inside the country.
    let text = text.replace("(0)", "");
    let compact: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
        .collect();
    let digits = if let Some(rest) = compact.strip_prefix('+') {
        rest
    } else if let Some(rest) = compact.strip_prefix("00") {
        rest
    } else {
        return Err(IdentityError::Phone(
            "include the country code, e.g. +41 or 0041",
        ));
    };
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(IdentityError::Phone(
            "it may contain only digits, spaces, dashes, dots and brackets",
        ));
    }
    if digits.starts_with('0') {
        return Err(IdentityError::Phone("a country code never starts with 0"));
    }
    if !(7..=15).contains(&digits.len()) {
        return Err(IdentityError::Phone(
            "an international number has 7 to 15 digits",
        ));
    }
    Ok(format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn norm(kind: IdentityKind, raw: &str) -> Result<String, IdentityError> {
        Identity::parse(kind, raw).map(|i| i.value().to_owned())
    }

    #[test]
    fn emails_are_trimmed_lowercased_and_composed() {
        assert_eq!(
            norm(IdentityKind::Email, "  Alice@Example.COM\n").unwrap(),
            "alice@example.com"
        );
        // "é" written as e + combining accent equals the precomposed "é".
        assert_eq!(
            norm(IdentityKind::Email, "rene\u{301}@example.ch").unwrap(),
            norm(IdentityKind::Email, "ren\u{e9}@example.ch").unwrap()
        );
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@example.com",
            "a@b@example.com",
            "a@.com",
            "a@example..com",
        ] {
            assert!(norm(IdentityKind::Email, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_internationalised_domain_is_one_address_however_it_is_written() {
        let unicode = norm(IdentityKind::Email, "jose@bücher.example").unwrap();
        assert_eq!(unicode, "jose@bücher.example");
        for same in [
            "jose@xn--bcher-kva.example",
            "Jose@BÜCHER.example",
            "jose@XN--BCHER-KVA.EXAMPLE",
            "jose@bu\u{308}cher.example",
        ] {
            assert_eq!(norm(IdentityKind::Email, same).unwrap(), unicode, "{same}");
        }
        assert_eq!(smtp_address(&unicode), "jose@xn--bcher-kva.example");
        assert_eq!(smtp_address("ana@example.com"), "ana@example.com");
        for bad in [
            "jose@bü_cher.example",
            "jose@-bücher.example",
            "jose@xn--zz.example",
        ] {
            assert!(norm(IdentityKind::Email, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn phones_become_e164() {
        assert_eq!(
            norm(IdentityKind::Phone, "+41 (0)79 123 45 67").unwrap(),
            "+41791234567",
            "the trunk zero is dropped"
        );
        assert_eq!(
            norm(IdentityKind::Phone, "+41 79 123 45 67").unwrap(),
            "+41791234567"
        );
        assert_eq!(
            norm(IdentityKind::Phone, "0041-79-123-45-67").unwrap(),
            "+41791234567"
        );
        assert_eq!(
            norm(IdentityKind::Phone, "+1 (415) 555.0100").unwrap(),
            "+14155550100"
        );
        assert!(
            norm(IdentityKind::Phone, "079 123 45 67")
                .unwrap_err()
                .to_string()
                .contains("country code")
        );
        assert!(norm(IdentityKind::Phone, "+41 79 ABC").is_err());
        assert!(norm(IdentityKind::Phone, "+12").is_err());
    }

    #[test]
    fn errors_never_repeat_the_value() {
        let secret = "very.private.person@@example.com";
        let err = Identity::parse(IdentityKind::Email, secret)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("very.private"), "{err}");
        let err = Identity::parse(IdentityKind::Phone, "+41 79 secret")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
        assert_eq!(
            format!(
                "{:?}",
                Identity::parse(IdentityKind::Email, "a@b.ch").unwrap()
            ),
            "Identity(email, <redacted>)"
        );
    }

    #[test]
    fn kinds_are_named_and_custom_ones_checked() {
        assert_eq!(
            IdentityKind::parse("customer-number").unwrap(),
            IdentityKind::Custom("customer-number".into())
        );
        assert!(IdentityKind::parse("Customer Number").is_err());
        assert_eq!(
            IdentityKind::parse("email").unwrap().category(),
            "user.contact.email"
        );
    }

    #[test]
    fn addresses_are_compared_as_unicode_says_they_are_equal_and_no_further() {
        // The Kelvin sign is canonically the letter K (NFC): one address.
        let kelvin = norm(IdentityKind::Email, "\u{212A}en@example.com").unwrap();
        assert_eq!(kelvin, "ken@example.com");
        // A dotted capital I lower-cases to i and a dot: never the plain i.
        assert_ne!(fold("\u{130}"), fold("i"));
        assert_ne!(
            fold("\u{212A}"),
            "k",
            "folding alone never makes a sign a letter"
        );
        assert_eq!(
            norm(IdentityKind::Email, "Ken@Example.com").unwrap(),
            "ken@example.com"
        );
        assert_eq!(
            norm(IdentityKind::Email, "ÄNNE@example.com").unwrap(),
            "änne@example.com"
        );
    }

    proptest! {
        #[test]
        fn normalising_twice_changes_nothing(local in "[A-Za-z0-9._%+-]{1,20}", domain in "[A-Za-z0-9]([A-Za-z0-9-]{0,18}[A-Za-z0-9])?\\.[A-Za-z]{2,6}", pad in " {0,3}") {
            let once = norm(IdentityKind::Email, &format!("{pad}{local}@{domain}{pad}")).unwrap();
            prop_assert_eq!(norm(IdentityKind::Email, &once).unwrap(), once.as_str());
            prop_assert_eq!(once.clone(), once.to_lowercase());
        }

        #[test]
        fn phone_normalisation_is_idempotent(cc in "[1-9][0-9]{0,2}", rest in "[0-9]{6,11}") {
            let once = norm(IdentityKind::Phone, &format!("+{cc} {rest}")).unwrap();
            prop_assert_eq!(norm(IdentityKind::Phone, &once).unwrap(), once);
        }

        #[test]
        fn any_text_is_either_refused_or_normalised_without_panicking(text in "\\PC{0,60}") {
            for kind in [IdentityKind::Email, IdentityKind::Phone, IdentityKind::Username] {
                let _ = Identity::parse(kind, &text);
            }
        }
    }
}
