//! Messages about a declaration: what is wrong, where, and how to fix it.

use std::fmt::Write as _;

use serde::Serialize;

use crate::source::{Position, Source, Span};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The declaration cannot be enforced or published as written.
    Error,
    /// Allowed, but probably not what the operator means, or weak practice.
    Warning,
}

/// One finding, located in the declaration's text.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable, kebab-case identifier of the check (`unknown-category`).
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The path of the value in the declaration (`purposes[2].retention`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Where it starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<Position>,
    /// Where it ends (exclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<Position>,
}

impl Diagnostic {
    /// A finding at a byte span of `source`.
    pub fn new(
        severity: Severity,
        code: &'static str,
        message: impl Into<String>,
        source: &Source,
        span: Option<Span>,
    ) -> Self {
        let (start, end) = match span {
            Some(span) => (
                Some(source.position(span.start)),
                Some(source.position(span.end.max(span.start))),
            ),
            None => (None, None),
        };
        Self {
            severity,
            code,
            message: message.into(),
            help: None,
            path: None,
            start,
            end,
        }
    }

    /// Adds how to fix it.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Records the value's path.
    #[must_use]
    pub fn with_path(mut self, path: &impl std::fmt::Display) -> Self {
        let path = path.to_string();
        if !path.is_empty() {
            self.path = Some(path);
        }
        self
    }

    /// Whether this is an error (as opposed to a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the finding like a compiler message: location, the line, a caret, the fix.
    pub fn render(&self, source: &Source) -> String {
        let mut out = String::new();
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{label}[{}]: {}", self.code, self.message);
        match self.start {
            Some(start) => {
                let _ = writeln!(
                    out,
                    "  --> {}:{}:{}",
                    source.name(),
                    start.line,
                    start.column
                );
                let line = source.line_text(start.line);
                let gutter = start.line.to_string().len();
                let _ = writeln!(out, "{:gutter$} |", "");
                let _ = writeln!(out, "{} | {}", start.line, line);
                let width = match self.end {
                    Some(end) if end.line == start.line && end.column > start.column => {
                        end.column - start.column
                    }
                    _ => line.chars().count().saturating_sub(start.column - 1).max(1),
                };
                let _ = writeln!(
                    out,
                    "{:gutter$} | {}{}",
                    "",
                    " ".repeat(start.column - 1),
                    "^".repeat(width)
                );
            }
            None => {
                let _ = writeln!(out, "  --> {}", source.name());
            }
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        out
    }
}

/// Orders findings by place in the file, errors before warnings at the same place.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        let key = |d: &Diagnostic| d.start.map(|p| (p.line, p.column));
        key(a)
            .cmp(&key(b))
            .then(a.severity.cmp(&b.severity))
            .then(a.code.cmp(b.code))
    });
}
