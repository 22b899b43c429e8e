//! Markdown tables (printed by the benches, pasted into BENCHMARKS.md) and
//! CSV files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Result, ms};

/// A table: a header and rows of cells.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows (as many cells as the header).
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// GitHub Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| {} |", self.header.join(" | "));
        let _ = writeln!(
            out,
            "|{}",
            self.header.iter().map(|_| " --- |").collect::<String>()
        );
        for r in &self.rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
        out
    }
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes `dir/name` as CSV (creating `dir`); returns the path.
pub fn write_csv(dir: &Path, name: &str, header: &[&str], rows: &[Vec<String>]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        header
            .iter()
            .map(|h| csv_cell(h))
            .collect::<Vec<_>>()
            .join(",")
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{}",
            r.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",")
        );
    }
    let path = dir.join(name);
    std::fs::write(&path, out)?;
    Ok(path)
}

/// `ours / upstream`, formatted (`–` when either is missing or zero).
pub fn ratio(ours: Option<f64>, upstream: Option<f64>) -> String {
    match (ours, upstream) {
        (Some(o), Some(u)) if u != 0.0 && o.is_finite() && u.is_finite() => {
            let r = o / u;
            if r >= 100.0 {
                format!("{r:.0}")
            } else if r >= 0.1 {
                format!("{r:.2}")
            } else {
                format!("{r:.3}")
            }
        }
        _ => "–".into(),
    }
}

/// A CSV cell of milliseconds with two decimals; empty for `None`.
pub fn csv_ms(d: Option<std::time::Duration>) -> String {
    d.map(|d| format!("{:.2}", ms(d))).unwrap_or_default()
}

/// A number with a sensible number of digits.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
