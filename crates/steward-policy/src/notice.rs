//! The privacy notice, generated from the declaration.
//!
//! [`build`] turns a [`Declaration`] into a [`Notice`]: a small document of sections,
//! paragraphs, lists and tables. [`Notice::to_html`] and [`Notice::to_markdown`] render the
//! same document, so the two formats always say the same thing. The sections follow the
//! seed sites and the WordPress policy guide: who we are, what we collect and why, cookies,
//! embedded content, sharing, transfers, retention, rights, security, breaches, Do Not Track
//! and Global Privacy Control, changes, contact.

mod content;
mod html;
mod markdown;

pub(crate) use content::date as content_date;
pub use content::{build, category_list};
pub use html::escape;

/// A rendered-independent privacy notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The page title.
    pub title: String,
    /// BCP 47 language of the text.
    pub lang: String,
    /// Lines under the title (version, effective date).
    pub intro: Vec<Vec<Inline>>,
    /// The sections, in order.
    pub sections: Vec<Section>,
}

/// One top-level section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// A stable anchor (`cookies`), used for links and the table of contents.
    pub id: &'static str,
    /// Its heading.
    pub heading: String,
    /// Its content.
    pub blocks: Vec<Block>,
}

/// A block of content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A sub-heading.
    Heading(String),
    /// A paragraph.
    Para(Vec<Inline>),
    /// A bulleted list.
    List(Vec<Vec<Inline>>),
    /// Term–description pairs.
    Facts(Vec<(String, Vec<Inline>)>),
    /// A table.
    Table(Table),
}

/// A table with a caption and column headers; the first cell of each row heads the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// What the table shows.
    pub caption: String,
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<Vec<Inline>>>,
}

/// A run of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    /// Plain text.
    Text(String),
    /// Emphasised text.
    Strong(String),
    /// Code or an identifier (a cookie name).
    Code(String),
    /// A link.
    Link {
        /// The link text.
        text: String,
        /// Where it goes (`https://…`, `mailto:…`, `#section`).
        href: String,
    },
}

impl Notice {
    /// Renders the notice as one self-contained HTML page (no external assets).
    pub fn to_html(&self) -> String {
        html::render(self)
    }

    /// The HTML of the notice's intro and table of contents (headed `contents`), and of its
    /// sections, for a page with its own head and title (the privacy centre).
    pub fn html_parts(&self, contents: &str) -> (String, String) {
        html::parts(self, contents)
    }

    /// Renders the notice as Markdown.
    pub fn to_markdown(&self) -> String {
        markdown::render(self)
    }

    /// The inline stylesheet of the HTML page (servers hash it for their Content-Security-Policy).
    pub fn stylesheet() -> &'static str {
        html::STYLE
    }
}
