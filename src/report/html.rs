//! `index.html`: one self-contained page (plots embedded, no network) with the summary of
//! every variant, to open from disk or attach to a merge request.

use crate::sim::VariantResult;
use std::fmt::Write as _;
use std::path::Path;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Standard base64, for embedding the PNGs.
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Keys listed in the page's cost-by-key table; the rest are one "other" row.
const HTML_TOP_KEYS: usize = 15;

/// The page, with each plot read from `dir` and embedded.
pub fn index(
    dir: &Path,
    title: &str,
    results: &[VariantResult],
    plots: &[(&str, &str)],
    notes: &[String],
) -> std::io::Result<String> {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>\nbody {{ font-family: sans-serif; margin: 2em; color: #222; }}\ntable {{ border-collapse: collapse; margin: 1em 0; }}\nth, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}\nth:first-child, td:first-child {{ text-align: left; }}\nimg {{ max-width: 100%; border: 1px solid #ddd; }}\nfigure {{ margin: 2em 0; }}\n</style>\n</head>\n<body>\n<h1>{t}</h1>\n",
        t = escape(title)
    );
    // The same rows as the terminal's table, one column per variant.
    let calibration = crate::sim::calibration::of_baseline(results);
    h.push_str("<h2>Summary</h2>\n<table>\n<tr><th></th>");
    for name in crate::report::table::names(results, calibration.is_some()) {
        let _ = write!(h, "<th>{}</th>", escape(&name));
    }
    h.push_str("</tr>\n");
    for (label, cells) in crate::report::table::rows_observed(results, calibration.map(|c| c.0)) {
        let _ = write!(h, "<tr><td>{}</td>", escape(label.trim()));
        for c in cells {
            let _ = write!(h, "<td>{}</td>", escape(&c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    if let (Some((o, c)), Some(r)) = (calibration, results.first()) {
        let _ = writeln!(
            h,
            "<p>{}</p>",
            escape(&crate::sim::calibration::line(&r.name, &c))
        );
        if let Some(v) = c.verdict(o) {
            let _ = writeln!(h, "<p><strong>Far off:</strong> {}</p>", escape(&v));
        }
    }
    if let Some(b) = results.iter().find_map(|r| r.by.as_ref()) {
        let _ = write!(
            h,
            "<h2>Cost by {}</h2>\n<p>Attribution rule {} (docs/attribution.md): busy is spent while the key's jobs ran, idle is booting, idle and removal time charged to it.</p>\n<table>\n<tr><th>{}</th><th>jobs</th>",
            escape(&b.by),
            escape(&b.rule),
            escape(&b.by)
        );
        for r in results {
            let n = escape(&r.name);
            let _ = write!(
                h,
                "<th>{n}: cost</th><th>busy</th><th>idle</th><th>p95 wait</th>"
            );
        }
        h.push_str("</tr>\n");
        for line in crate::report::breakdown::lines(
            &results
                .iter()
                .map(crate::report::breakdown::column)
                .collect::<Vec<_>>(),
            Some(HTML_TOP_KEYS),
        ) {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td>",
                escape(&line.key),
                line.jobs
            );
            for c in &line.cells {
                for t in crate::report::breakdown::cell_texts(c) {
                    let _ = write!(h, "<td>{}</td>", escape(&t));
                }
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }
    if let Some(r) = results.first() {
        let _ = writeln!(
            h,
            "<p>Window: {} to {} ({:.1} days).</p>",
            escape(&r.start.to_rfc3339()),
            escape(&r.end.to_rfc3339()),
            r.days
        );
    }
    let variant_notes = results
        .iter()
        .flat_map(|r| &r.notes)
        .filter(|n| !notes.contains(n));
    let all: Vec<&String> = notes.iter().chain(variant_notes).collect();
    if !all.is_empty() {
        h.push_str("<ul>\n");
        for n in all {
            let _ = writeln!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul>\n");
    }
    for (file, caption) in plots {
        let bytes = std::fs::read(dir.join(file))?;
        let _ = write!(
            h,
            "<figure id=\"{f}\">\n<figcaption><a href=\"{f}\">{f}</a>: {c}</figcaption>\n<img alt=\"{f}\" src=\"data:image/png;base64,{b}\">\n</figure>\n",
            f = escape(file),
            c = escape(caption),
            b = base64(&bytes)
        );
    }
    h.push_str("<p>Made by scalecast.</p>\n</body>\n</html>\n");
    Ok(h)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_of_known_strings() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }
}
