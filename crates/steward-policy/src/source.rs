//! Where things are in the declaration: byte spans, line/column locations, and an index from
//! a value's path (`purposes[2].retention`) to the span it was written at, so that every
//! diagnostic, including those found after parsing, points at the exact place in the file.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A byte range in the declaration's text.
pub type Span = Range<usize>;

/// The text of a declaration and the name it is reported under.
#[derive(Debug, Clone)]
pub struct Source {
    name: String,
    text: String,
    line_starts: Vec<usize>,
}

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Source {
    /// Wraps a declaration's text, reported under `name` (usually its path).
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// The name the file is reported under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The line and column of a byte offset (clamped to the text).
    pub fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self
            .line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Position { line, column }
    }

    /// The text of a 1-based line, without its line break.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches(['\n', '\r'])
    }
}

/// One step in a path into the declaration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A path to a value in the declaration, such as `purposes[2].retention`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(Vec<Seg>);

impl Path {
    /// The document root.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path extended by a table key.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Self(segs)
    }

    /// This path extended by an array index.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }

    /// The path one step up, or `None` at the root.
    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(Self(rest.to_vec()))
    }

    /// The steps of this path.
    pub fn segments(&self) -> &[Seg] {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Where a key and its value were written.
#[derive(Debug, Clone)]
struct Entry {
    key: Option<Span>,
    value: Span,
}

/// Maps every path in a parsed document to the spans of its key and value.
#[derive(Debug, Default)]
pub struct SpanIndex {
    entries: BTreeMap<Path, Entry>,
}

impl SpanIndex {
    /// Indexes every table entry and array element of a parsed document.
    pub fn build(root: &Spanned<DeTable<'_>>) -> Self {
        let mut index = Self::default();
        index.entries.insert(
            Path::root(),
            Entry {
                key: None,
                value: root.span(),
            },
        );
        index.walk_table(&Path::root(), root.get_ref());
        index
    }

    fn walk_table(&mut self, at: &Path, table: &DeTable<'_>) {
        for (key, value) in table {
            let path = at.key(key.get_ref());
            self.entries.insert(
                path.clone(),
                Entry {
                    key: Some(key.span()),
                    value: value.span(),
                },
            );
            self.walk_value(&path, value.get_ref());
        }
    }

    fn walk_value(&mut self, at: &Path, value: &DeValue<'_>) {
        match value {
            DeValue::Table(table) => self.walk_table(at, table),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let path = at.index(i);
                    self.entries.insert(
                        path.clone(),
                        Entry {
                            key: None,
                            value: item.span(),
                        },
                    );
                    self.walk_value(&path, item.get_ref());
                }
            }
            _ => {}
        }
    }

    /// The span of the value at `path`, or of the nearest ancestor that was written.
    pub fn value(&self, path: &Path) -> Option<Span> {
        self.nearest(path).map(|e| e.value.clone())
    }

    /// The span of the key at `path` (falling back to its value), or of the nearest ancestor.
    pub fn key(&self, path: &Path) -> Option<Span> {
        self.nearest(path)
            .map(|e| e.key.clone().unwrap_or_else(|| e.value.clone()))
    }

    /// Whether `path` was written in the file.
    pub fn contains(&self, path: &Path) -> bool {
        self.entries.contains_key(path)
    }

    fn nearest(&self, path: &Path) -> Option<&Entry> {
        let mut at = Some(path.clone());
        while let Some(p) = at {
            if let Some(entry) = self.entries.get(&p) {
                return Some(entry);
            }
            at = p.parent();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters_from_one() {
        let src = Source::new("t.toml", "a = 1\nnamé = \"x\"\n");
        assert_eq!(src.position(0), Position { line: 1, column: 1 });
        assert_eq!(src.position(6), Position { line: 2, column: 1 });
        // `=` after the 4-character, 5-byte key `namé ` sits at column 6.
        let eq = src.text().rfind('=').unwrap();
        assert_eq!(src.position(eq), Position { line: 2, column: 6 });
        assert_eq!(src.line_text(2), "namé = \"x\"");
    }

    #[test]
    fn index_finds_nested_array_values_and_falls_back_to_parents() {
        let text =
            "[[purposes]]\nid = \"a\"\n[[purposes]]\nid = \"b\"\ncategories = [\"x\", \"y\"]\n";
        let doc = DeTable::parse(text).unwrap();
        let index = SpanIndex::build(&doc);
        let p = Path::root()
            .key("purposes")
            .index(1)
            .key("categories")
            .index(1);
        let span = index.value(&p).unwrap();
        assert_eq!(&text[span], "\"y\"");
        let missing = Path::root().key("purposes").index(1).key("retention");
        let span = index.value(&missing).unwrap();
        // A table in an array of tables is located at its `[[purposes]]` header.
        let src = Source::new("t.toml", text);
        assert_eq!(src.position(span.start).line, 3, "{:?}", &text[span]);
        assert_eq!(p.to_string(), "purposes[1].categories[1]");
        assert_eq!(
            Path::root().key("retain").key("user.financial").to_string(),
            "retain.\"user.financial\""
        );
    }
}
