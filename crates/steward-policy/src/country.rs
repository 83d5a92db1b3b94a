//! Countries: ISO 3166-1 alpha-2 codes, the European Economic Area, and adequacy decisions.

/// Every ISO 3166-1 alpha-2 code.
const CODES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Names for the countries privacy notices name most; others are shown by code.
const NAMES: [(&str, &str); 59] = [
    ("AD", "Andorra"),
    ("AE", "United Arab Emirates"),
    ("AR", "Argentina"),
    ("AT", "Austria"),
    ("AU", "Australia"),
    ("BE", "Belgium"),
    ("BG", "Bulgaria"),
    ("BR", "Brazil"),
    ("CA", "Canada"),
    ("CH", "Switzerland"),
    ("CN", "China"),
    ("CY", "Cyprus"),
    ("CZ", "Czechia"),
    ("DE", "Germany"),
    ("DK", "Denmark"),
    ("EE", "Estonia"),
    ("ES", "Spain"),
    ("FI", "Finland"),
    ("FO", "Faroe Islands"),
    ("FR", "France"),
    ("GB", "United Kingdom"),
    ("GG", "Guernsey"),
    ("GR", "Greece"),
    ("HK", "Hong Kong"),
    ("HR", "Croatia"),
    ("HU", "Hungary"),
    ("IE", "Ireland"),
    ("IL", "Israel"),
    ("IM", "Isle of Man"),
    ("IN", "India"),
    ("IS", "Iceland"),
    ("IT", "Italy"),
    ("JE", "Jersey"),
    ("JP", "Japan"),
    ("KR", "Republic of Korea"),
    ("LI", "Liechtenstein"),
    ("LT", "Lithuania"),
    ("LU", "Luxembourg"),
    ("LV", "Latvia"),
    ("MC", "Monaco"),
    ("MT", "Malta"),
    ("MX", "Mexico"),
    ("NL", "Netherlands"),
    ("NO", "Norway"),
    ("NZ", "New Zealand"),
    ("PH", "Philippines"),
    ("PL", "Poland"),
    ("PT", "Portugal"),
    ("RO", "Romania"),
    ("RU", "Russia"),
    ("SE", "Sweden"),
    ("SG", "Singapore"),
    ("SI", "Slovenia"),
    ("SK", "Slovakia"),
    ("TR", "Türkiye"),
    ("UA", "Ukraine"),
    ("US", "United States"),
    ("UY", "Uruguay"),
    ("ZA", "South Africa"),
];
/// Members of the European Economic Area, inside which GDPR transfers need no safeguard.
const EEA: [&str; 30] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS",
    "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// Countries with a European Commission adequacy decision covering commercial transfers
/// (the United States only for companies certified under the Data Privacy Framework:
/// declare that as the `dpf` safeguard instead).
const EU_ADEQUATE: [&str; 14] = [
    "AD", "AR", "CA", "CH", "FO", "GB", "GG", "IL", "IM", "JE", "JP", "KR", "NZ", "UY",
];

/// Whether `code` is an ISO 3166-1 alpha-2 country code (upper case).
pub fn is_code(code: &str) -> bool {
    CODES.contains(&code)
}

/// Countries whose English name takes "the" inside a sentence.
const WITH_ARTICLE: [&str; 8] = ["AE", "FO", "GB", "IM", "KR", "NL", "PH", "US"];

/// The country's name as a label (`United States`), or its code when Steward has no name.
pub fn name(code: &str) -> &str {
    NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(code, |(_, n)| n)
}

/// The country's name inside a sentence (`the United States`).
pub fn in_sentence(code: &str) -> String {
    if WITH_ARTICLE.contains(&code) {
        format!("the {}", name(code))
    } else {
        name(code).to_owned()
    }
}

/// Whether the country is in the European Economic Area.
pub fn in_eea(code: &str) -> bool {
    EEA.contains(&code)
}

/// Whether data may flow from `from` to `to` with no transfer safeguard: the same country,
/// or both inside the EEA.
pub fn same_zone(from: &str, to: &str) -> bool {
    from == to || (in_eea(from) && in_eea(to))
}

/// Whether the European Commission has found `code` adequate (EEA members need no finding).
pub fn eu_adequate(code: &str) -> bool {
    in_eea(code) || EU_ADEQUATE.contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_codes_names_and_zones() {
        assert!(is_code("CH") && is_code("US") && !is_code("XX") && !is_code("ch"));
        assert_eq!(name("CH"), "Switzerland");
        assert_eq!(name("BT"), "BT");
        assert_eq!(name("US"), "United States");
        assert_eq!(in_sentence("US"), "the United States");
        assert_eq!(in_sentence("CH"), "Switzerland");
        assert!(same_zone("DE", "FR"));
        assert!(!same_zone("CH", "DE"));
        assert!(eu_adequate("CH") && !eu_adequate("US"));
    }
}
