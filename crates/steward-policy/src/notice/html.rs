//! The notice as one self-contained, accessible, printable HTML page.

use std::fmt::Write as _;

use super::{Block, Inline, Notice, Table};

/// The page's only stylesheet, inlined so the page needs no other file.
pub const STYLE: &str = r#"
:root { color-scheme: light dark; --fg: #1b1b1b; --bg: #ffffff; --muted: #555; --line: #d0d0d0; --accent: #0b57a4; --head: #f3f5f8; }
@media (prefers-color-scheme: dark) { :root { --fg: #e8e8e8; --bg: #16181b; --muted: #b0b0b0; --line: #3a3d42; --accent: #8ab8f0; --head: #22252a; } }
* { box-sizing: border-box; }
body { margin: 0; font: 1rem/1.6 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: 1rem; background: var(--bg); padding: .5rem; outline: 3px solid var(--accent); }
header, main, footer { max-width: 52rem; margin: 0 auto; padding: 0 1.25rem; }
header { padding-top: 2rem; }
h1 { font-size: 1.9rem; line-height: 1.25; margin: 0 0 .5rem; }
h2 { font-size: 1.35rem; margin: 2.5rem 0 .75rem; padding-top: .5rem; border-top: 1px solid var(--line); }
h3 { font-size: 1.1rem; margin: 1.75rem 0 .5rem; }
.meta { color: var(--muted); margin: .25rem 0; }
a { color: var(--accent); }
a:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
nav ol { columns: 2; padding-left: 1.25rem; }
dl { display: grid; grid-template-columns: minmax(9rem, max-content) 1fr; gap: .25rem 1rem; margin: .75rem 0; }
dt { font-weight: 600; }
dd { margin: 0; }
.table { overflow-x: auto; margin: 1rem 0; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
caption { text-align: left; font-weight: 600; padding-bottom: .4rem; }
th, td { border: 1px solid var(--line); padding: .4rem .55rem; text-align: left; vertical-align: top; }
thead th { background: var(--head); }
tbody th { font-weight: 600; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; overflow-wrap: anywhere; }
footer { color: var(--muted); font-size: .9rem; padding: 2rem 1.25rem 3rem; }
@media (max-width: 40rem) { nav ol { columns: 1; } dl { grid-template-columns: 1fr; } dt { margin-top: .5rem; } }
@media print {
  :root { --fg: #000; --bg: #fff; --muted: #333; --line: #999; --accent: #000; --head: #eee; }
  body { font-size: 10.5pt; }
  nav, .skip { display: none; }
  header, main, footer { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  h3 { break-after: avoid; }
  tr, dl { break-inside: avoid; }
  a[href^="http"]::after { content: " <" attr(href) ">"; font-size: .85em; overflow-wrap: anywhere; }
}
"#;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn inline(out: &mut String, runs: &[Inline]) {
    for run in runs {
        match run {
            Inline::Text(t) => out.push_str(&escape(t)),
            Inline::Strong(t) => {
                let _ = write!(out, "<strong>{}</strong>", escape(t));
            }
            Inline::Code(t) => {
                let _ = write!(out, "<code>{}</code>", escape(t));
            }
            Inline::Link { text, href } => {
                let external = href.starts_with("http");
                let _ = write!(
                    out,
                    "<a href=\"{}\"{}>{}</a>",
                    escape(href),
                    if external {
                        " rel=\"noopener noreferrer\""
                    } else {
                        ""
                    },
                    escape(text)
                );
            }
        }
    }
}

fn table(out: &mut String, t: &Table) {
    out.push_str("<div class=\"table\"><table>\n");
    let _ = writeln!(out, "<caption>{}</caption>", escape(&t.caption));
    out.push_str("<thead><tr>");
    for h in &t.headers {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            if i == 0 {
                out.push_str("<th scope=\"row\">");
                inline(out, cell);
                out.push_str("</th>");
            } else {
                out.push_str("<td>");
                inline(out, cell);
                out.push_str("</td>");
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

/// Renders the whole page.
pub fn render(notice: &Notice) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <a class=\"skip\" href=\"#content\">Skip to the notice</a>\n<header>\n<h1>{title}</h1>\n",
        lang = escape(&notice.lang),
        title = escape(&notice.title),
    );
    let (intro, sections) = parts(notice, "Contents");
    out.push_str(&intro);
    out.push_str("</header>\n<main id=\"content\">\n");
    out.push_str(&sections);
    out.push_str("</main>\n<footer>\n<p>This notice is generated by Steward from the operator's privacy declaration.</p>\n</footer>\n</body>\n</html>\n");
    out
}

/// The notice's intro with its table of contents (headed `contents`), and its sections: for
/// a page that has its own head, title and footer (the privacy centre).
pub fn parts(notice: &Notice, contents: &str) -> (String, String) {
    let mut out = String::with_capacity(32 * 1024);
    for line in &notice.intro {
        out.push_str("<p class=\"meta\">");
        inline(&mut out, line);
        out.push_str("</p>\n");
    }
    let _ = write!(
        out,
        "<nav aria-label=\"{c}\">\n<h2 id=\"contents\">{c}</h2>\n<ol>\n",
        c = escape(contents)
    );
    for s in &notice.sections {
        let _ = writeln!(
            out,
            "<li><a href=\"#{}\">{}</a></li>",
            s.id,
            escape(&s.heading)
        );
    }
    out.push_str("</ol>\n</nav>\n");
    let intro = std::mem::take(&mut out);
    for s in &notice.sections {
        let _ = writeln!(
            out,
            "<section aria-labelledby=\"{id}\">\n<h2 id=\"{id}\">{}</h2>",
            escape(&s.heading),
            id = s.id
        );
        for block in &s.blocks {
            match block {
                Block::Heading(h) => {
                    let _ = writeln!(out, "<h3>{}</h3>", escape(h));
                }
                Block::Para(runs) => {
                    out.push_str("<p>");
                    inline(&mut out, runs);
                    out.push_str("</p>\n");
                }
                Block::List(items) => {
                    out.push_str("<ul>\n");
                    for item in items {
                        out.push_str("<li>");
                        inline(&mut out, item);
                        out.push_str("</li>\n");
                    }
                    out.push_str("</ul>\n");
                }
                Block::Facts(facts) => {
                    out.push_str("<dl>\n");
                    for (term, value) in facts {
                        let _ = write!(out, "<dt>{}</dt><dd>", escape(term));
                        inline(&mut out, value);
                        out.push_str("</dd>\n");
                    }
                    out.push_str("</dl>\n");
                }
                Block::Table(t) => table(&mut out, t),
            }
        }
        out.push_str("</section>\n");
    }
    (intro, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_in_text_and_attributes() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
