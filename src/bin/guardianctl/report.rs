//! The per-row report (`--report FILE`, CSV) and the progress display: a bar on a terminal,
//! plain lines otherwise.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;

/// One line of the report.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The input line; `None` for actions that come from no line, such as a sync's removals.
    pub line: Option<u64>,
    /// Student as given.
    pub student: String,
    /// Guardian as given.
    pub guardian: String,
    /// OK, PLANNED (a dry run's OK), FAILED, UNKNOWN (the request failed midway: re-run) or
    /// NOT_ATTEMPTED; for syncs after the action (`INVITE OK`).
    pub outcome: String,
    /// Why it failed.
    pub reason: String,
}

impl Entry {
    /// Whether this row failed.
    pub(crate) fn failed(&self) -> bool {
        self.outcome.contains("FAILED")
    }

    /// Whether this row's fate is open: it may or may not have been applied (UNKNOWN), or it
    /// was not attempted. Running the same file again settles it.
    pub(crate) fn unsettled(&self) -> bool {
        self.outcome.contains("UNKNOWN") || self.outcome.contains("NOT_ATTEMPTED")
    }
}

/// Writes the report as CSV.
pub(crate) fn write(path: &Path, entries: &[Entry]) -> Result<(), String> {
    let mut out = csv::Writer::from_path(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    // File order; actions that come from no line last.
    sorted.sort_by_key(|e| (e.line.is_none(), e.line));
    out.write_record(["line", "student", "guardian", "outcome", "reason"])
        .map_err(|e| e.to_string())?;
    for e in sorted {
        out.write_record([
            e.line.map(|l| l.to_string()).unwrap_or_default(),
            e.student.clone(),
            e.guardian.clone(),
            e.outcome.clone(),
            e.reason.clone(),
        ])
        .map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

impl std::fmt::Display for Entry {
    /// One line for the terminal: where, who, why; empty parts left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}:")?,
            None => f.write_str("(not in the file):")?,
        }
        for part in [&self.student, &self.guardian, &self.outcome] {
            if !part.is_empty() {
                write!(f, " {part}")?;
            }
        }
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        Ok(())
    }
}

/// Progress of an import.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    last_line: u64,
}

impl Progress {
    /// Progress over `total` rows.
    pub(crate) fn new(total: u64, what: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:40}] {pos}/{len} rows {per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(what.to_owned());
            bar
        });
        Self {
            bar,
            total,
            done: 0,
            last_line: 0,
        }
    }

    /// `n` more rows are done.
    pub(crate) fn advance(&mut self, n: u64) {
        self.done += n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None => {
                // A line every tenth of the way, and at the end.
                let step = (self.total / 10).max(1);
                if self.done / step > self.last_line / step || self.done == self.total {
                    eprintln!("progress: {}/{} rows", self.done, self.total);
                }
                self.last_line = self.done;
            }
        }
    }

    /// Done.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
