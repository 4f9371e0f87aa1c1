//! A cutover [`Outcome`] as the operator and machines read it: the terminal checklist (✓/✗,
//! one evidence line each), the JSON summary, JUnit XML for CI systems, and one self-contained
//! HTML page (no external assets) with the checklist and the reconciliation table. The outcome
//! is already scrubbed of secrets; these only lay it out.

use std::fmt::Write as _;

use super::{Outcome, Severity, Status, Verdict};

fn mark(status: Status) -> &'static str {
    match status {
        Status::Pass => "✓",
        Status::Fail => "✗",
        Status::Skipped => "-",
    }
}

fn verdict_text(o: &Outcome) -> &'static str {
    match o.verdict {
        Verdict::Go => "GO",
        Verdict::NoGo => "NO-GO",
    }
}

/// The terminal checklist.
pub fn terminal(o: &Outcome) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "cutover {} → {}", o.source, o.target);
    if let Some(s) = &o.sync {
        let _ = writeln!(
            out,
            "final pass: {}: {} rows, {} failed, {} files in {:.1} s",
            s.how, s.rows, s.failed_rows, s.files, s.elapsed_s
        );
    }
    for c in &o.checks {
        let _ = writeln!(
            out,
            "{} {} ({}, {}): {}",
            mark(c.status),
            c.name,
            c.kind,
            c.severity.as_str(),
            if c.status == Status::Skipped {
                format!("skipped: {}", c.evidence)
            } else {
                c.evidence.clone()
            }
        );
    }
    for name in &o.excluded {
        let _ = writeln!(out, "  {name}: left out (--only/--skip)");
    }
    if o.checks.iter().any(|c| c.kind == "rollback") {
        let _ = writeln!(out, "rollback steps:");
        for s in &o.rollback_steps {
            let _ = writeln!(out, "  {s}");
        }
    }
    let (failed, skipped) = count(o);
    let _ = write!(
        out,
        "{}: {} checks, {failed} failed, {skipped} skipped in {:.1} s",
        verdict_text(o),
        o.checks.len(),
        o.elapsed_s
    );
    if let Some(w) = o.window_s {
        let _ = write!(out, "; cutover window {w:.1} s");
    }
    if o.unreachable {
        out.push_str(" (a service could not be reached)");
    }
    out.push('\n');
    out
}

fn count(o: &Outcome) -> (usize, usize) {
    let n = |s| o.checks.iter().filter(|c| c.status == s).count();
    (n(Status::Fail), n(Status::Skipped))
}

/// The JSON summary.
pub fn json(o: &Outcome) -> String {
    serde_json::to_string_pretty(o).unwrap_or_default()
}

/// One line per check --only/--skip left out, `line` given the check's escaped name.
fn left_out(o: &Outcome, line: impl Fn(&str) -> String) -> String {
    o.excluded.iter().map(|name| line(&esc(name))).collect()
}

/// Text safe in XML (and HTML) content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one test suite, one test case per check (`failure` for a failed check,
/// `skipped` for a skipped or left-out one).
pub fn junit(o: &Outcome) -> String {
    let (failed, skipped) = count(o);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"ferry cutover\" tests=\"{}\" failures=\"{failed}\" time=\"{:.3}\">",
        o.checks.len() + o.excluded.len(),
        o.elapsed_s
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"cutover {}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        esc(verdict_text(o)),
        o.checks.len() + o.excluded.len(),
        skipped + o.excluded.len(),
        o.elapsed_s
    );
    for c in &o.checks {
        let _ = write!(
            out,
            "    <testcase classname=\"cutover.{}\" name=\"{}\" time=\"{:.3}\">",
            esc(&c.kind),
            esc(&c.name),
            c.duration_s
        );
        let body = std::iter::once(c.evidence.as_str())
            .chain(c.details.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("\n");
        match c.status {
            Status::Pass => {
                let _ = write!(out, "<system-out>{}</system-out>", esc(&body));
            }
            Status::Fail => {
                let _ = write!(
                    out,
                    "<failure message=\"{}\" type=\"{}\">{}</failure>",
                    esc(&c.evidence),
                    c.severity.as_str(),
                    esc(&body)
                );
            }
            Status::Skipped => {
                let _ = write!(out, "<skipped message=\"{}\"/>", esc(&c.evidence));
            }
        }
        out.push_str("</testcase>\n");
    }
    out.push_str(&left_out(o, |name| {
        format!("    <testcase classname=\"cutover\" name=\"{name}\" time=\"0\"><skipped message=\"left out with --only/--skip\"/></testcase>\n")
    }));
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// One HTML page, no external assets, well-formed XHTML (it parses as XML).
pub fn html(o: &Outcome) -> String {
    let verdict = verdict_text(o);
    let colour = if o.verdict == Verdict::Go {
        "#1a7f37"
    } else {
        "#cf222e"
    };
    let mut out = String::from(
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n",
    );
    let _ = writeln!(out, "<title>ferry cutover: {verdict}</title>");
    out.push_str(
        "<style>body{font-family:system-ui,sans-serif;margin:2em;color:#1f2328}\
         table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}\
         .pass{color:#1a7f37}.fail{color:#cf222e}.skipped{color:#9a6700}.verdict{font-size:2em;font-weight:bold}\
         ul{margin:.2em 0}</style>\n</head>\n<body>\n",
    );
    let _ = writeln!(
        out,
        "<h1>ferry cutover</h1>\n<p class=\"verdict\" style=\"color:{colour}\" id=\"verdict\">{verdict}</p>"
    );
    let (failed, skipped) = count(o);
    let _ = writeln!(
        out,
        "<p>{} → {}<br/>{} checks, {failed} failed, {skipped} skipped in {:.1} s{}</p>",
        esc(&o.source),
        esc(&o.target),
        o.checks.len(),
        o.elapsed_s,
        o.window_s
            .map(|w| format!("; cutover window {w:.1} s"))
            .unwrap_or_default()
    );
    if let Some(s) = &o.sync {
        let _ = writeln!(
            out,
            "<p>Final pass: {}: {} rows, {} failed, {} files in {:.1} s</p>",
            esc(&s.how),
            s.rows,
            s.failed_rows,
            s.files,
            s.elapsed_s
        );
    }
    out.push_str("<h2>Checklist</h2>\n<table id=\"checklist\">\n<tr><th></th><th>check</th><th>kind</th><th>severity</th><th>status</th><th>evidence</th><th>time</th></tr>\n");
    for c in &o.checks {
        let status = match c.status {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skipped => "skipped",
        };
        let mut evidence = esc(&c.evidence);
        if !c.details.is_empty() {
            evidence.push_str("<ul>");
            for d in &c.details {
                let _ = write!(evidence, "<li>{}</li>", esc(d));
            }
            evidence.push_str("</ul>");
        }
        let _ = writeln!(
            out,
            "<tr class=\"{status}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{status}</td><td>{evidence}</td><td>{:.2} s</td></tr>",
            mark(c.status),
            esc(&c.name),
            esc(&c.kind),
            if c.severity == Severity::Blocker {
                "blocker"
            } else {
                "warning"
            },
            c.duration_s
        );
    }
    out.push_str(&left_out(o, |name| {
        format!("<tr class=\"skipped\"><td>-</td><td>{name}</td><td></td><td></td><td>left out</td><td>--only/--skip</td><td></td></tr>\n")
    }));
    out.push_str("</table>\n");
    if !o.reconciliation.is_empty() {
        out.push_str("<h2>Reconciliation</h2>\n<table id=\"reconciliation\">\n<tr><th>check</th><th>what</th><th>source</th><th>target</th><th>match</th><th>how</th></tr>\n");
        for (check, rows) in &o.reconciliation {
            for r in rows {
                let _ = writeln!(
                    out,
                    "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    if r.matched { "pass" } else { "fail" },
                    esc(check),
                    esc(&r.name),
                    r.source,
                    r.target,
                    if r.matched { "✓" } else { "✗" },
                    esc(&r.note)
                );
            }
        }
        out.push_str("</table>\n");
    }
    out.push_str("<h2>Rollback</h2>\n<ol>\n");
    for s in &o.rollback_steps {
        let text = s.split_once(". ").map_or(s.as_str(), |(_, t)| t);
        let _ = writeln!(out, "<li>{}</li>", esc(text));
    }
    out.push_str("</ol>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(esc("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot; ");
    }
}
