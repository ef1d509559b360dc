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
/// (later rows win, as they would in a map built from the table). A lookup scans the text:
/// each runs once or twice per run, so no table is built (a map of 15,000 rows cost a few
/// milliseconds at every start), and only the lines holding the needle are split.
fn last_row<T>(csv: &str, needle: &str, pick: impl Fn(&[&str]) -> Option<T>) -> Option<T> {
    let mut found = None;
    for line in csv.lines().skip(1).filter(|l| l.contains(needle)) {
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

    #[test]
    fn spec_prices_are_in_the_table() {
        assert_eq!(ondemand_usd_per_hour("m4.2xlarge"), Some(0.4));
        assert_eq!(ondemand_usd_per_hour("c5.large"), Some(0.085));
        assert_eq!(advisor("eu-central-1", "m4.2xlarge"), Some((55.0, 4)));
        assert_eq!(advisor("us-east-1", "m4.2xlarge"), Some((55.0, 3)));
    }
}
