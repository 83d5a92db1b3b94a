//! The notice as Markdown (CommonMark with pipe tables).

use std::fmt::Write as _;

use super::{Block, Inline, Notice};

/// Escapes characters Markdown would read as markup.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '[' | ']' | '<' | '>' | '`' | '|' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn inline(runs: &[Inline]) -> String {
    let mut out = String::new();
    for run in runs {
        match run {
            Inline::Text(t) => out.push_str(&escape(t)),
            Inline::Strong(t) => {
                let _ = write!(out, "**{}**", escape(t));
            }
            Inline::Code(t) => {
                let fence = if t.contains('`') { "`` " } else { "`" };
                let close = if t.contains('`') { " ``" } else { "`" };
                let _ = write!(out, "{fence}{t}{close}");
            }
            Inline::Link { text, href } => {
                let _ = write!(out, "[{}](<{}>)", escape(text), href.replace('>', "%3E"));
            }
        }
    }
    out
}

/// Renders the whole notice.
pub fn render(notice: &Notice) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = writeln!(out, "# {}\n", escape(&notice.title));
    for line in &notice.intro {
        let _ = writeln!(out, "{}\n", inline(line));
    }
    out.push_str("## Contents\n\n");
    for (i, s) in notice.sections.iter().enumerate() {
        let _ = writeln!(out, "{}. [{}](#{})", i + 1, escape(&s.heading), s.id);
    }
    out.push('\n');
    for s in &notice.sections {
        let _ = writeln!(out, "## {}\n", escape(&s.heading));
        for block in &s.blocks {
            match block {
                Block::Heading(h) => {
                    let _ = writeln!(out, "### {}\n", escape(h));
                }
                Block::Para(runs) => {
                    let _ = writeln!(out, "{}\n", inline(runs));
                }
                Block::List(items) => {
                    for item in items {
                        let _ = writeln!(out, "- {}", inline(item));
                    }
                    out.push('\n');
                }
                Block::Facts(facts) => {
                    for (term, value) in facts {
                        let colon = if term.ends_with('?') { "" } else { ":" };
                        let _ = writeln!(out, "- **{}{colon}** {}", escape(term), inline(value));
                    }
                    out.push('\n');
                }
                Block::Table(t) => {
                    let _ = writeln!(out, "*{}*\n", escape(&t.caption));
                    let _ = writeln!(
                        out,
                        "| {} |",
                        t.headers
                            .iter()
                            .map(|h| escape(h))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    );
                    let _ = writeln!(
                        out,
                        "|{}",
                        t.headers.iter().map(|_| " --- |").collect::<String>()
                    );
                    for row in &t.rows {
                        let cells: Vec<String> =
                            row.iter().map(|c| inline(c).replace('\n', " ")).collect();
                        let _ = writeln!(out, "| {} |", cells.join(" | "));
                    }
                    out.push('\n');
                }
            }
        }
    }
    out.push_str("---\n\nThis notice is generated from the operator's privacy declaration by Steward, so it states what the operator's systems enforce.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markdown_markup() {
        assert_eq!(
            escape("wordpress_logged_in_*"),
            "wordpress\\_logged\\_in\\_\\*"
        );
        assert_eq!(escape("a|b"), "a\\|b");
    }
}
