//! `steward init`: write a commented starter declaration.

use crate::Outcome;
use crate::cli::InitArgs;
use crate::{clock, output};

const STARTER: &str = include_str!("../starter.toml");

/// The starter declaration, effective on `date`.
pub fn starter(date: time::Date) -> String {
    STARTER.replace("{{EFFECTIVE}}", &date.to_string())
}

pub fn run(args: &InitArgs) -> Outcome {
    let path = args.dir.join("privacy.toml");
    if path.exists() && !args.force {
        output::stderr(&format!(
            "error: {} already exists; nothing was written\n  = help: edit it, or run `steward init --force` to replace it with the starter",
            path.display()
        ));
        return Outcome::Invalid;
    }
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        output::stderr(&format!("error: cannot create {}: {e}", args.dir.display()));
        return Outcome::Unreadable;
    }
    if let Err(e) = crate::output::write_atomically(&path, starter(clock::today()).as_bytes()) {
        output::stderr(&format!("error: cannot write {}: {e}", path.display()));
        return Outcome::Unreadable;
    }
    let default = args.dir == std::path::Path::new(".");
    let shown = if default {
        "privacy.toml".to_owned()
    } else {
        path.display().to_string()
    };
    let flag = if default {
        String::new()
    } else {
        format!(" -d {shown}")
    };
    output::stderr(&format!(
        "wrote {shown}: a small website with accounts, comments, a newsletter and analytics.\n\n\
         Next:\n  1. edit it to describe your site (each section is commented)\n  \
         2. steward check{flag}\n  3. steward notice{flag} -o privacy.html\n  \
         4. steward ropa{flag} --format xlsx -o record-of-processing.xlsx\n  \
         5. steward serve{flag}   (the privacy notice on http://127.0.0.1:8080/privacy)"
    ));
    Outcome::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_declaration_passes_check_without_warnings() {
        let text = starter(time::macros::date!(2026 - 01 - 15));
        let source = steward_policy::Source::new("privacy.toml", text);
        let checked = steward_policy::check(&source).expect("readable");
        let rendered: Vec<String> = checked
            .diagnostics
            .iter()
            .map(|d| d.render(&source))
            .collect();
        assert!(checked.diagnostics.is_empty(), "{}", rendered.join("\n"));
        assert!(checked.declaration.is_some());
    }
}
