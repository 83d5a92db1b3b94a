//! `steward taxonomy`: find the key for a kind of data, a use or a data subject.

use steward_policy::Taxonomy;
use steward_policy::taxonomy::Kind;

use crate::Outcome;
use crate::cli::{TaxonomyArgs, TaxonomyKind};
use crate::output;

pub fn run(args: &TaxonomyArgs) -> Outcome {
    let taxonomy = Taxonomy::standard();
    let kinds: &[(Kind, &str)] = match args.kind {
        Some(TaxonomyKind::Categories) => &[(Kind::Category, "Data categories")],
        Some(TaxonomyKind::Uses) => &[(Kind::Use, "Data uses")],
        Some(TaxonomyKind::Subjects) => &[(Kind::Subject, "Data subjects")],
        None => &[
            (Kind::Category, "Data categories"),
            (Kind::Use, "Data uses"),
            (Kind::Subject, "Data subjects"),
        ],
    };
    let needle = args.search.as_deref().map(str::to_lowercase);
    let mut out = String::new();
    let mut found = 0;
    for (kind, title) in kinds {
        let terms: Vec<_> = taxonomy
            .terms(*kind)
            .filter(|t| {
                needle.as_deref().is_none_or(|n| {
                    let n = n.replace("e-mail", "email");
                    [&t.key, &t.name, &t.description]
                        .iter()
                        .any(|field| field.to_lowercase().replace("e-mail", "email").contains(&n))
                })
            })
            .collect();
        if terms.is_empty() {
            continue;
        }
        let width = terms.iter().map(|t| t.key.len()).max().unwrap_or(0);
        out.push_str(&format!("{title}:\n"));
        for t in terms {
            out.push_str(&format!(
                "  {:width$}  {}: {}\n",
                t.key, t.name, t.description
            ));
            found += 1;
        }
        out.push('\n');
    }
    if found == 0 {
        output::stderr(&format!(
            "no key matches `{}`; run `steward taxonomy` to list them all, or add your own under [[taxonomy.categories]]",
            args.search.as_deref().unwrap_or("")
        ));
        return Outcome::Invalid;
    }
    match output::stdout(out.as_bytes()) {
        Ok(()) => Outcome::Ok,
        Err(e) => {
            output::stderr(&format!("error: cannot write to standard output: {e}"));
            Outcome::Unreadable
        }
    }
}
