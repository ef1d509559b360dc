//! Cost by a key of the trace (`simulate --by`): a terminal table with the variants side by
//! side, rows for the HTML report, and a CSV that a spreadsheet or FinOps tool takes as it is.

use crate::sim::VariantResult;
use crate::sim::attribution::KeyCost;

/// One variant's figures for a row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cell {
    pub cost_usd: f64,
    pub busy_usd: f64,
    pub idle_usd: f64,
    /// None where a p95 cannot be had (the "other" row).
    pub wait_p95_s: Option<f64>,
}

/// A row: a key (or "other (N keys)", or "total"), its jobs, and one cell per variant.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub key: String,
    pub jobs: u64,
    pub cells: Vec<Cell>,
}

/// One column group of the table: a variant's keys (or a journal's).
#[derive(Clone, Copy, Debug)]
pub struct Column<'a> {
    pub name: &'a str,
    pub keys: &'a [KeyCost],
    /// Dollars no key carries (counted in the total).
    pub unattributed_usd: f64,
    /// The p95 wait of all its jobs, for the total row.
    pub wait_p95_s: f64,
    pub jobs: u64,
}

/// A variant's column (empty when it has no breakdown).
pub fn column(v: &VariantResult) -> Column<'_> {
    Column {
        name: &v.name,
        keys: v.by.as_ref().map_or(&[][..], |b| &b.keys),
        unattributed_usd: v.by.as_ref().map_or(0.0, |b| b.unattributed_usd),
        wait_p95_s: v.wait_s.p95,
        jobs: v.jobs,
    }
}

/// The keys of every column, in the first's order (costliest first), then any key only a
/// later column has.
fn key_order(cs: &[Column]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for c in cs {
        for k in c.keys {
            if seen.insert(k.key.clone()) {
                order.push(k.key.clone());
            }
        }
    }
    order
}

fn cell(k: &KeyCost) -> Cell {
    Cell {
        cost_usd: k.cost_usd,
        busy_usd: k.busy_usd,
        idle_usd: k.idle_usd,
        wait_p95_s: Some(k.wait_p95_s),
    }
}

/// The rows: the top `top` keys (all when None), then "other" for the rest, then "total"
/// (whose cost is each column's cost, unattributed dollars included).
pub fn lines(cs: &[Column], top: Option<usize>) -> Vec<Line> {
    let order = key_order(cs);
    let index: Vec<std::collections::HashMap<&str, &KeyCost>> = cs
        .iter()
        .map(|c| c.keys.iter().map(|k| (k.key.as_str(), k)).collect())
        .collect();
    // A key's jobs are the same in every variant (one trace, one window).
    let jobs_of = |key: &str| {
        index
            .iter()
            .find_map(|m| m.get(key).map(|k| k.jobs))
            .unwrap_or(0)
    };
    let shown = top.unwrap_or(order.len()).min(order.len());
    let mut out: Vec<Line> = order[..shown]
        .iter()
        .map(|key| Line {
            key: key.clone(),
            jobs: jobs_of(key),
            cells: index
                .iter()
                .map(|m| m.get(key.as_str()).map_or_else(Cell::default, |k| cell(k)))
                .collect(),
        })
        .collect();
    if shown < order.len() {
        let rest = &order[shown..];
        let jobs = rest.iter().map(|k| jobs_of(k)).sum();
        let cells = index
            .iter()
            .map(|m| {
                let mut c = Cell::default();
                for k in rest.iter().filter_map(|key| m.get(key.as_str())) {
                    c.cost_usd += k.cost_usd;
                    c.busy_usd += k.busy_usd;
                    c.idle_usd += k.idle_usd;
                }
                c.wait_p95_s = None;
                c
            })
            .collect();
        out.push(Line {
            key: format!("other ({} keys)", rest.len()),
            jobs,
            cells,
        });
    }
    out.push(Line {
        key: "total".into(),
        jobs: cs.first().map_or(0, |c| c.jobs),
        cells: cs
            .iter()
            .map(|c| Cell {
                cost_usd: c.keys.iter().map(|k| k.cost_usd).sum::<f64>() + c.unattributed_usd,
                busy_usd: c.keys.iter().map(|k| k.busy_usd).sum(),
                idle_usd: c.keys.iter().map(|k| k.idle_usd).sum::<f64>() + c.unattributed_usd,
                wait_p95_s: Some(c.wait_p95_s),
            })
            .collect(),
    });
    out
}

fn share(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.0}%", 100.0 * part / whole)
    } else {
        "-".into()
    }
}

fn secs(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(x) if x < 60.0 => format!("{x:.1}s"),
        Some(x) if x < 3600.0 => format!("{:.1}m", x / 60.0),
        Some(x) => format!("{:.1}h", x / 3600.0),
    }
}

/// The text of one cell's four columns: cost, busy share, idle share, p95 wait.
pub fn cell_texts(c: &Cell) -> [String; 4] {
    [
        format!("${:.2}", c.cost_usd),
        share(c.busy_usd, c.cost_usd),
        share(c.idle_usd, c.cost_usd),
        secs(c.wait_p95_s),
    ]
}

/// The terminal table of the variants' breakdowns.
pub fn render(vs: &[VariantResult], top: Option<usize>) -> String {
    let by = vs
        .iter()
        .find_map(|v| v.by.as_ref())
        .map_or("key", |b| b.by.as_str());
    let rule = vs
        .iter()
        .find_map(|v| v.by.as_ref())
        .map_or("", |b| b.rule.as_str());
    let cs: Vec<Column> = vs.iter().map(column).collect();
    render_columns(by, rule, &cs, top)
}

/// The terminal table: a key column, jobs, then cost, busy and idle share and p95 wait for
/// each column, side by side.
pub fn render_columns(by: &str, rule: &str, cs: &[Column], top: Option<usize>) -> String {
    let lines = lines(cs, top);
    let head = format!("cost by {by}");
    let key_w = lines
        .iter()
        .map(|l| l.key.chars().count())
        .chain([head.len()])
        .max()
        .unwrap_or(0)
        .min(48);
    let jobs_w = lines
        .iter()
        .map(|l| l.jobs.to_string().len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let texts: Vec<Vec<[String; 4]>> = lines
        .iter()
        .map(|l| l.cells.iter().map(cell_texts).collect())
        .collect();
    let sub = ["cost", "busy", "idle", "p95 wait"];
    // Each column as wide as its widest text; a variant's group as wide as its name.
    let mut widths: Vec<[usize; 4]> = (0..cs.len())
        .map(|i| {
            let mut w = [0usize; 4];
            for (c, s) in sub.iter().enumerate() {
                w[c] = texts
                    .iter()
                    .map(|row| row[i][c].len())
                    .chain([s.len()])
                    .max()
                    .unwrap_or(0);
            }
            w
        })
        .collect();
    for (c, w) in cs.iter().zip(&mut widths) {
        let group: usize = w.iter().sum::<usize>() + 6;
        let name = c.name.chars().count();
        if name > group {
            w[0] += name - group;
        }
    }
    let cut = |s: &str| -> String {
        if s.chars().count() > key_w {
            let mut t: String = s.chars().take(key_w - 1).collect();
            t.push('…');
            t
        } else {
            s.to_string()
        }
    };
    let mut out = format!("{:key_w$}  {:>jobs_w$}", "", "");
    for (c, w) in cs.iter().zip(&widths) {
        let group = w.iter().sum::<usize>() + 6;
        out.push_str(&format!("  │ {:>group$}", c.name));
    }
    out.push('\n');
    out.push_str(&format!("{head:key_w$}  {:>jobs_w$}", "jobs"));
    for w in &widths {
        out.push_str("  │");
        for (c, s) in sub.iter().enumerate() {
            out.push_str(&format!("  {s:>0$}", w[c]));
        }
    }
    out.push('\n');
    for (l, row) in lines.iter().zip(&texts) {
        if l.key == "total" {
            let width = out.lines().last().map_or(0, |x| x.chars().count());
            out.push_str(&"─".repeat(width));
            out.push('\n');
        }
        out.push_str(&format!("{:key_w$}  {:>jobs_w$}", cut(&l.key), l.jobs));
        for (cells, w) in row.iter().zip(&widths) {
            out.push_str("  │");
            for (c, t) in cells.iter().enumerate() {
                out.push_str(&format!("  {t:>0$}", w[c]));
            }
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "busy: spent while the key's jobs ran; idle: booting, idle and removal time charged to \
         it (rule {rule}, docs/attribution.md)\n"
    ));
    out
}

/// Every key of every variant, one row per variant and key, for spreadsheets.
pub fn csv(vs: &[VariantResult]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "variant",
        "by",
        "key",
        "jobs",
        "cost_usd",
        "busy_usd",
        "idle_usd",
        "busy_share",
        "idle_share",
        "wait_p95_s",
    ])?;
    for v in vs {
        let Some(b) = &v.by else { continue };
        let rows = b.keys.iter().map(|k| {
            (
                k.key.clone(),
                k.jobs,
                k.cost_usd,
                k.busy_usd,
                k.idle_usd,
                Some(k.wait_p95_s),
            )
        });
        let extra = (b.unattributed_usd > 0.0).then(|| {
            (
                "(unattributed)".to_string(),
                0,
                b.unattributed_usd,
                0.0,
                b.unattributed_usd,
                None,
            )
        });
        for (key, jobs, cost, busy, idle, p95) in rows.chain(extra) {
            let ratio = |x: f64| {
                if cost > 0.0 {
                    format!("{:.6}", x / cost)
                } else {
                    String::new()
                }
            };
            w.write_record([
                v.name.clone(),
                b.by.clone(),
                key,
                jobs.to_string(),
                format!("{cost:.6}"),
                format!("{busy:.6}"),
                format!("{idle:.6}"),
                ratio(busy),
                ratio(idle),
                p95.map_or(String::new(), |p| format!("{p:.3}")),
            ])?;
        }
    }
    w.into_inner().map_err(|e| e.into_error().into())
}
