//! The price and interruption tables shipped with the project (`data/`), compiled in.

const ONDEMAND_CSV: &str = include_str!("../data/ondemand-prices-us-east-1.csv");
const ADVISOR_CSV: &str = include_str!("../data/spot-advisor-linux.csv");

/// The region the on-demand table covers.
pub const ONDEMAND_REGION: &str = "us-east-1";

/// Midpoint of each Spot Instance Advisor bucket, as a share of instances reclaimed a month.
pub const BUCKET_MIDPOINTS: [f64; 5] = [0.025, 0.075, 0.125, 0.175, 0.225];
pub const BUCKET_LABELS: [&str; 5] = ["<5%", "5-10%", "10-15%", "15-20%", ">20%"];
/// Hours in an average month.
pub const HOURS_PER_MONTH: f64 = 730.0;
/// gp3 in us-east-1, $/GB-month (the root volume's price; the simulator and the daemon's
/// estimates both use it).
pub const GP3_USD_PER_GB_MONTH: f64 = 0.08;

/// The last row of a compiled-in table that holds `needle` and whose fields `pick` accepts
/// (later rows win, as they would in a map built from the table). A lookup searches the text
/// for the needle at once (`memchr::memmem`) and splits only the lines it is found on: each
/// runs once or twice per run, before the run can start, so no table is built (a map of
/// 15,000 rows cost a few milliseconds at every start).
fn last_row<T>(csv: &str, needle: &str, pick: impl Fn(&[&str]) -> Option<T>) -> Option<T> {
    // Past the header line.
    let body = csv.split_once('\n').map_or("", |(_, rest)| rest);
    let mut found = None;
    // Where the line after the last one read starts: more hits on a line are skipped.
    let mut next = 0;
    for hit in memchr::memmem::find_iter(body.as_bytes(), needle.as_bytes()) {
        if hit < next {
            continue;
        }
        let start = body[..hit].rfind('\n').map_or(0, |i| i + 1);
        let end = body[hit..].find('\n').map_or(body.len(), |i| hit + i);
        next = end + 1;
        let line = &body[start..end];
        let line = line.strip_suffix('\r').unwrap_or(line);
        let fields: Vec<&str> = line.splitn(5, ',').collect();
        if let Some(v) = pick(&fields) {
            found = Some(v);
        }
    }
    found
}

/// On-demand $/h of an instance type (us-east-1 prices).
pub fn ondemand_usd_per_hour(instance_type: &str) -> Option<f64> {
    last_row(ONDEMAND_CSV, instance_type, |f| match f {
        [_region, ty, price, ..] if *ty == instance_type => price.trim().parse().ok(),
        _ => None,
    })
}

/// Spot savings percent and interruption bucket for a region and type.
pub fn advisor(region: &str, instance_type: &str) -> Option<(f64, usize)> {
    last_row(ADVISOR_CSV, instance_type, |f| match f {
        [r, ty, savings, bucket, ..] if *r == region && *ty == instance_type => {
            let bucket: usize = bucket.trim().parse().ok()?;
            Some((savings.trim().parse().ok()?, bucket.min(4)))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines `last_row` reads are those a line-by-line scan finds, for instance types
    /// across both tables, parts of names that many lines hold, and needles found nowhere.
    #[test]
    fn the_search_finds_what_a_scan_of_every_line_finds() {
        fn scan<T>(csv: &str, needle: &str, pick: impl Fn(&[&str]) -> Option<T>) -> Option<T> {
            let mut found = None;
            for line in csv.lines().skip(1).filter(|l| l.contains(needle)) {
                let fields: Vec<&str> = line.splitn(5, ',').collect();
                if let Some(v) = pick(&fields) {
                    found = Some(v);
                }
            }
            found
        }
        let types: Vec<&str> = ADVISOR_CSV
            .lines()
            .skip(1)
            .step_by(97)
            .filter_map(|l| l.split(',').nth(1))
            .chain([
                "xlarge",
                "1",
                ",",
                "m5.large",
                "us-east-1",
                "no-such-type",
                "region",
            ])
            .collect();
        assert!(types.len() > 50);
        let row = |f: &[&str]| Some(f.join("|"));
        for csv in [ONDEMAND_CSV, ADVISOR_CSV, "h\na,b\r\nab,a\n\nb", "h"] {
            for t in &types {
                assert_eq!(last_row(csv, t, row), scan(csv, t, row), "{t}");
                // A pick that refuses the last lines: an earlier one is the answer.
                let odd = |f: &[&str]| (f.len() % 2 == 1).then(|| f.join("|"));
                assert_eq!(last_row(csv, t, odd), scan(csv, t, odd), "{t}");
            }
        }
    }

    #[test]
    fn spec_prices_are_in_the_table() {
        assert_eq!(ondemand_usd_per_hour("m4.2xlarge"), Some(0.4));
        assert_eq!(ondemand_usd_per_hour("c5.large"), Some(0.085));
        assert_eq!(advisor("eu-central-1", "m4.2xlarge"), Some((55.0, 4)));
        assert_eq!(advisor("us-east-1", "m4.2xlarge"), Some((55.0, 3)));
    }
}
