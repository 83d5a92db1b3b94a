//! `steward datasets scan`: a live schema read into a proposed manifest — its tables, primary
//! keys, foreign keys (and columns named like one, `customer_id`) as references, and data
//! categories guessed from column names (`email` → `user.contact.email`), every guess marked
//! for review.
//!
//! Who owns whom: a table with an identity column (an e-mail address, a phone number, a
//! username) holds people; a row that refers to such a table belongs to that person (the
//! person owns their orders), and a row referred to from a person's row belongs to them too
//! (their order's address, its products).

use std::collections::{BTreeMap, BTreeSet};

use crate::manifest::{Dataset, Field, Manifest, Owns, Table, TableErase, plain_identifier};
use crate::render::{Remarks, one_line, render};
use crate::source::{Column, ForeignKey, Source};

/// What a scan is told besides the database.
#[derive(Debug, Clone)]
pub struct Options {
    /// The dataset's name in the manifest.
    pub name: String,
    /// The declared purpose every table serves (edit per table after).
    pub purpose: String,
    /// The variable that will hold the connection URL.
    pub url_env: String,
}

/// A proposed manifest.
#[derive(Debug, Clone)]
pub struct Scanned {
    /// Its TOML text, guesses marked `# review`.
    pub text: String,
    /// The manifest.
    pub manifest: Manifest,
    /// What a person should look at: tables left out, references guessed.
    pub notes: Vec<String>,
}

/// Why a scan proposed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// No column looks like an identity.
    #[error(
        "no column of the {0} tables looks like an e-mail address, a phone number or a username, so no person could be found by the manifest: write it by hand (docs/datasets.md)"
    )]
    NoIdentity(usize),
    /// What was proposed does not hold together.
    #[error("the proposed manifest does not hold together:\n{0}")]
    Manifest(String),
}

/// Whether data of `category` is someone's wherever it is (an order's address, a login's IP
/// address), unlike a name, a password or a birthday, which in a table that holds no people
/// are a product's, a post's, a shop's.
fn anywhere(category: &str) -> bool {
    [
        "user.contact",
        "user.device",
        "user.financial",
        "user.location",
    ]
    .iter()
    .any(|p| category.starts_with(p))
}

/// A column guessed personal: its name, category, and identity kind if it is one.
type Guess<'a> = (&'a str, &'static str, Option<&'static str>);

/// A guessed category, and the identity kind the column holds if it is one.
fn guess(column: &str, kind: &Column) -> Option<(&'static str, Option<&'static str>)> {
    let name = column.to_ascii_lowercase();
    let text = is_text(kind);
    let tokens: Vec<&str> = name.split('_').collect();
    let has = |words: &[&str]| tokens.iter().any(|t| words.contains(t));
    let is = |words: &[&str]| words.contains(&name.as_str());
    if text && (has(&["email", "mail", "emailaddress"]) || name.ends_with("email")) {
        return Some(("user.contact.email", Some("email")));
    }
    if has(&["phone", "mobile", "telephone", "cellphone", "msisdn"]) || is(&["tel", "cell"]) {
        return Some(("user.contact.phone_number", text.then_some("phone")));
    }
    if text && (is(&["username", "user_name", "user_login", "login", "handle"])) {
        return Some(("user.account.username", Some("username")));
    }
    let found = if is(&["first_name", "firstname", "given_name"]) {
        "user.name.first"
    } else if is(&["last_name", "lastname", "surname", "family_name"]) {
        "user.name.last"
    } else if is(&["name", "full_name", "fullname", "display_name", "nickname"]) {
        "user.name"
    } else if has(&["street", "house"]) || name.starts_with("address_line") || is(&["address"]) {
        "user.contact.address.street"
    } else if is(&["city", "town"]) {
        "user.contact.address.city"
    } else if has(&["zip", "zipcode", "postcode", "postal"]) {
        "user.contact.address.postal_code"
    } else if is(&["state", "region", "province"]) {
        "user.contact.address.state"
    } else if is(&["country"]) {
        "user.contact.address.country"
    } else if has(&["ip"]) || is(&["ip_address", "remote_addr"]) {
        "user.device.ip_address"
    } else if is(&["user_agent", "agent", "useragent"]) {
        "user.device.telemetry"
    } else if is(&[
        "birthday",
        "birthdate",
        "dob",
        "date_of_birth",
        "birth_date",
    ]) {
        "user.demographic.date_of_birth"
    } else if is(&["gender", "sex"]) {
        "user.demographic.gender"
    } else if has(&["password", "passwd", "pwd"]) || is(&["pass", "user_pass"]) {
        "user.authorization.password"
    } else if is(&["ccn", "card_number", "cc_number", "pan"]) {
        "user.financial.credit_card"
    } else if is(&["iban", "account_number", "bank_account"]) {
        "user.financial.bank_account"
    } else if is(&["lat", "latitude", "lon", "lng", "longitude"]) {
        "user.location.precise"
    } else {
        return None;
    };
    Some((found, None))
}

fn is_text(column: &Column) -> bool {
    let k = column.kind.as_str();
    k.contains("char") || k.contains("text") || k == "citext" || k.is_empty()
}

/// Proposes a manifest for the database `source` is connected to.
///
/// # Errors
/// [`ScanError::NoIdentity`] when no column looks like an identity; [`ScanError::Manifest`]
/// should what is proposed not hold together.
pub fn scan(source: &Source, options: &Options) -> Result<Scanned, ScanError> {
    let mut notes = Vec::new();
    let mut remarks = Remarks::default();
    // Guessed personal columns, per table.
    let mut guessed: BTreeMap<&str, Vec<Guess<'_>>> = BTreeMap::new();
    // A name Steward would not write into a statement is left out, and said (escaped).
    for (table, columns) in &source.schema {
        if !plain_identifier(table) {
            notes.push(format!(
                "table `{}`: not a plain name (letters, digits, _); left out",
                one_line(table)
            ));
            continue;
        }
        for column in columns.keys().filter(|c| !plain_identifier(c)) {
            notes.push(format!(
                "`{table}.{}`: not a plain name (letters, digits, _); left out",
                one_line(column)
            ));
        }
    }
    for (table, columns) in source.schema.iter().filter(|(t, _)| plain_identifier(t)) {
        for (column, kind) in columns.iter().filter(|(c, _)| plain_identifier(c)) {
            if let Some((category, identity)) = guess(column, kind) {
                guessed
                    .entry(table)
                    .or_default()
                    .push((column, category, identity));
            }
        }
    }
    let people: BTreeSet<&str> = guessed
        .iter()
        .filter(|(_, cols)| cols.iter().any(|(_, _, i)| i.is_some()))
        .map(|(t, _)| *t)
        .collect();
    if people.is_empty() {
        return Err(ScanError::NoIdentity(source.schema.len()));
    }
    let references = references(source, &mut notes);
    // Tables whose rows are someone's wherever they are: an address, a device, a card.
    let personal: BTreeSet<&str> = guessed
        .iter()
        .filter(|(_, cols)| cols.iter().any(|(_, category, _)| anywhere(category)))
        .map(|(t, _)| *t)
        .collect();
    let owns = ownership(&references, &people, &personal, &mut notes);
    let linked: BTreeSet<(&str, &str)> = references
        .iter()
        .flat_map(|fk| {
            [
                (fk.table.as_str(), fk.column.as_str()),
                (fk.to_table.as_str(), fk.to_column.as_str()),
            ]
        })
        .collect();
    let mut tables = Vec::new();
    for (name, columns) in source.schema.iter().filter(|(t, _)| plain_identifier(t)) {
        let mut table = Table {
            name: name.clone(),
            table: None,
            purpose: options.purpose.clone(),
            primary_key: source.primary_keys.get(name).cloned().unwrap_or_default(),
            erase: TableErase::Fields,
            only: None,
            fields: Vec::new(),
            context: Vec::new(),
            owns: owns.get(name.as_str()).cloned().unwrap_or_default(),
            hold: None,
            retention: None,
        };
        if table.primary_key.is_empty() {
            table.primary_key = columns
                .keys()
                .filter(|c| plain_identifier(c))
                .cloned()
                .collect();
            remarks.tables.entry(name.clone()).or_default().push(
                "REVIEW: the table has no primary key; all its columns stand in — name the ones that identify a row".to_owned(),
            );
        }
        let person = people.contains(name.as_str());
        for (column, category, identity) in guessed.get(name.as_str()).into_iter().flatten() {
            let kind = &columns[*column];
            let is_key = table.primary_key.iter().any(|k| k == column)
                || linked.contains(&(name.as_str(), *column));
            if (is_key && identity.is_none()) || (!person && !anywhere(category)) {
                continue;
            }
            let erase =
                if identity.is_some() && is_text(kind) && kind.max_length.is_none_or(|m| m >= 64) {
                    Some("hash".to_owned())
                } else if kind.nullable {
                    None
                } else if is_text(kind) {
                    Some("replace:".to_owned())
                } else {
                    Some("replace:0".to_owned())
                };
            table.fields.push(Field {
                name: (*column).to_owned(),
                category: (*category).to_owned(),
                identity: identity.map(str::to_owned),
                erase,
            });
            remarks.fields.insert(
                (name.clone(), (*column).to_owned()),
                "review: guessed from its name".to_owned(),
            );
        }
        for column in columns.keys().filter(|c| plain_identifier(c)) {
            if !table.primary_key.contains(column)
                && !table.fields.iter().any(|f| &f.name == column)
                && !linked.contains(&(name.as_str(), column.as_str()))
            {
                table.context.push(column.clone());
            }
        }
        tables.push(table);
    }
    let mut manifest = Manifest {
        dataset: Dataset {
            name: options.name.clone(),
            url_env: Some(options.url_env.clone()),
            url_file: None,
            max_rows: None,
            description: String::new(),
        },
        tables,
    };
    for t in manifest.drop_unreachable() {
        if t.fields.is_empty() {
            notes.push(format!(
                "table `{}`: no person's row leads to it and no column looks personal; left out",
                t.name
            ));
        } else {
            let columns: Vec<&str> = t.fields.iter().map(|f| f.name.as_str()).collect();
            notes.push(format!(
                "table `{}`: its columns {} look personal, but no identity leads to it; left out — add a reference from a person's table (owns) if it is theirs",
                t.name,
                columns.join(", ")
            ));
        }
    }
    remarks.header = vec![
        format!(
            "Proposed by `steward datasets scan` from the live schema ({} tables read, {} kept).",
            source.schema.len(),
            manifest.tables.len()
        ),
        "Categories are guessed from column names (marked `review`), references from foreign keys and".to_owned(),
        "columns named like one (customer_id). Review every line, set each table's purpose and erasure".to_owned(),
        "(delete the row, or erase field by field), then: steward datasets check".to_owned(),
    ];
    if !notes.is_empty() {
        remarks.header.push(String::new());
        remarks
            .header
            .extend(notes.iter().map(|n| format!("- {n}")));
    }
    let text = render(&manifest, &remarks);
    let manifest = Manifest::parse(&text)
        .map_err(|crate::manifest::ManifestError(r)| ScanError::Manifest(r.join("\n")))?;
    Ok(Scanned {
        text,
        manifest,
        notes,
    })
}

/// Which table's rows own which, from the references, walking out from the people's tables:
/// a person's table owns the rows that refer to it (their orders); a row already reached owns
/// the rows that refer to it (an order's items), unless those hold people; and a row reached
/// owns what it refers to (an order's address, an item's product), unless that holds people.
/// No table that holds people is ever owned by one that does not: an address never leads to
/// the other people who live there.
fn ownership<'a>(
    references: &'a [ForeignKey],
    people: &BTreeSet<&'a str>,
    personal: &BTreeSet<&'a str>,
    notes: &mut Vec<String>,
) -> BTreeMap<&'a str, Vec<Owns>> {
    let mut owns: BTreeMap<&str, Vec<Owns>> = BTreeMap::new();
    let mut reached: BTreeSet<&str> = people.clone();
    // A table's reference to itself (an employee's manager) leads to another person.
    let mut left: Vec<&ForeignKey> = Vec::new();
    // A table that refers to people in two tables (an order's customer and its sales rep):
    // whose its rows are cannot be guessed, so neither reference is followed, and it is said.
    let mut people_referred: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for fk in references.iter().filter(|fk| fk.table != fk.to_table) {
        if people.contains(fk.to_table.as_str()) {
            people_referred
                .entry(fk.table.as_str())
                .or_default()
                .insert(fk.to_table.as_str());
        }
    }
    for fk in references {
        let ambiguous = people_referred
            .get(fk.table.as_str())
            .is_some_and(|p| p.len() > 1 && p.contains(fk.to_table.as_str()));
        if fk.table == fk.to_table {
            notes.push(format!(
                "`{}.{}` refers to its own table: not followed (its rows are other people's)",
                fk.table, fk.column
            ));
        } else if ambiguous {
            notes.push(format!(
                "REVIEW: `{}.{}` → `{}`: `{}` refers to people in {} tables, so whose its rows are is not guessed; add `owns` on the right one",
                fk.table,
                fk.column,
                fk.to_table,
                fk.table,
                people_referred.get(fk.table.as_str()).map_or(0, BTreeSet::len)
            ));
        } else {
            left.push(fk);
        }
    }
    loop {
        let before = left.len();
        // The rules in order of preference; one rule's matches per round.
        for rule in 0..3 {
            let mut assigned = Vec::new();
            for (i, fk) in left.iter().enumerate() {
                let (child, parent) = (fk.table.as_str(), fk.to_table.as_str());
                let parent_owns = match rule {
                    0 => people.contains(parent),
                    1 => {
                        reached.contains(parent)
                            && !reached.contains(child)
                            && !people.contains(child)
                    }
                    _ => false,
                };
                // A row owns what it refers to only where that looks personal (an order's
                // address), never a post or a product that others' rows lead to as well.
                let child_owns = rule == 2
                    && reached.contains(child)
                    && !people.contains(parent)
                    && personal.contains(parent);
                if parent_owns {
                    owns.entry(parent).or_default().push(Owns {
                        column: fk.to_column.clone(),
                        table: fk.table.clone(),
                        to: fk.column.clone(),
                        same_person: false,
                    });
                    assigned.push((i, child));
                } else if child_owns {
                    owns.entry(child).or_default().push(Owns {
                        column: fk.column.clone(),
                        table: fk.to_table.clone(),
                        to: fk.to_column.clone(),
                        same_person: false,
                    });
                    assigned.push((i, parent));
                }
            }
            if !assigned.is_empty() {
                for (i, table) in assigned.iter().rev() {
                    left.remove(*i);
                    reached.insert(table);
                }
                break;
            }
        }
        if left.len() == before {
            break;
        }
    }
    for fk in left {
        notes.push(format!(
            "`{}.{}` → `{}.{}`: no person's row leads either way; not followed",
            fk.table, fk.column, fk.to_table, fk.to_column
        ));
    }
    owns
}

/// The schema's foreign keys, and columns named like one (`customer_id`, `shipping_address_id`
/// → `address.id`, `order_id` → `orders.id`) where the database declares none.
fn references(source: &Source, notes: &mut Vec<String>) -> Vec<ForeignKey> {
    let mut out: Vec<ForeignKey> = source.foreign_keys.clone();
    // A prefix every table shares (WordPress's `wp_`) is not part of what a column names.
    let prefix = shared_prefix(source.schema.keys().map(String::as_str));
    out.retain(|fk| {
        [&fk.table, &fk.column, &fk.to_table, &fk.to_column]
            .iter()
            .all(|n| plain_identifier(n))
    });
    for (table, columns) in source.schema.iter().filter(|(t, _)| plain_identifier(t)) {
        for column in columns.keys().filter(|c| plain_identifier(c)) {
            let lower = column.to_ascii_lowercase();
            let Some(stem) = lower.strip_suffix("_id") else {
                continue;
            };
            if out
                .iter()
                .any(|fk| &fk.table == table && &fk.column == column)
            {
                continue;
            }
            // The longest table name the stem ends with, singular or plural.
            let target = source
                .schema
                .keys()
                .filter(|t| *t != table && plain_identifier(t))
                .filter(|t| {
                    let t = t.to_ascii_lowercase();
                    let t = t.strip_prefix(&prefix).unwrap_or(&t).to_owned();
                    let singular = t.strip_suffix('s').unwrap_or(&t).to_owned();
                    stem == t
                        || stem == singular
                        || stem.ends_with(&format!("_{t}"))
                        || stem.ends_with(&format!("_{singular}"))
                })
                .max_by_key(|t| t.len());
            let Some(target) = target else { continue };
            let Some(key) = source.primary_keys.get(target).filter(|k| k.len() == 1) else {
                continue;
            };
            notes.push(format!(
                "`{table}.{column}` read as a reference to `{target}.{}` by its name (the database declares no foreign key): review",
                key[0]
            ));
            out.push(ForeignKey {
                table: table.clone(),
                column: column.clone(),
                to_table: target.clone(),
                to_column: key[0].clone(),
            });
        }
    }
    out
}

/// The longest prefix ending in `_` that every name shares (`wp_`), lower-cased; empty when
/// there is none or only one name.
fn shared_prefix<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.map(str::to_ascii_lowercase).collect();
    let Some(first) = names.first() else {
        return String::new();
    };
    if names.len() < 2 {
        return String::new();
    }
    let mut prefix = first.as_str();
    for n in &names[1..] {
        let common = prefix
            .bytes()
            .zip(n.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        prefix = &prefix[..common];
    }
    match prefix.rfind('_') {
        Some(i) => prefix[..=i].to_owned(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_all_tables_share_is_found() {
        assert_eq!(
            shared_prefix(["wp_users", "wp_usermeta", "wp_comments"].into_iter()),
            "wp_"
        );
        assert_eq!(shared_prefix(["customer", "orders"].into_iter()), "");
        assert_eq!(shared_prefix(["app_user"].into_iter()), "");
    }
}
