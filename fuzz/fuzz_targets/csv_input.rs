//! guardianctl's CSV reader on any bytes: it never panics; every row and refused line it reports
//! names a line that exists, in file order; every kept row has both values, trimmed.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The reader lives in the guardianctl binary, not the library: compile its one file here.
#[path = "../../src/bin/guardianctl/csv_input.rs"]
#[allow(dead_code)]
mod csv_input;

fuzz_target!(|bytes: &[u8]| {
    let Ok(input) = csv_input::parse(bytes) else {
        return;
    };
    // Lines end at LF, CRLF or a lone CR.
    let breaks = bytes
        .iter()
        .enumerate()
        .filter(|&(i, b)| *b == b'\n' || (*b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count();
    let lines = breaks as u64 + 1;
    let mut previous = 0;
    for row in &input.rows {
        assert!(
            row.line >= 2 && row.line <= lines,
            "row line {} of {lines}",
            row.line
        );
        assert!(row.line > previous, "rows out of order");
        previous = row.line;
        assert!(!row.student.is_empty() && !row.guardian.is_empty());
        assert_eq!(row.student.trim(), row.student);
        assert_eq!(row.guardian.trim(), row.guardian);
    }
    for bad in &input.bad {
        assert!(bad.line <= lines, "bad line {} of {lines}", bad.line);
    }
});
