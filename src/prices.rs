//! The price and interruption tables shipped with the project (`data/`), compiled in.

use std::collections::BTreeMap;
use std::sync::OnceLock;

const ONDEMAND_CSV: &str = include_str!("../data/ondemand-prices-us-east-1.csv");
const ADVISOR_CSV: &str = include_str!("../data/spot-advisor-linux.csv");

/// The region the on-demand table covers.
pub const ONDEMAND_REGION: &str = "us-east-1";

/// Midpoint of each Spot Instance Advisor bucket, as a share of instances reclaimed a month.
pub const BUCKET_MIDPOINTS: [f64; 5] = [0.025, 0.075, 0.125, 0.175, 0.225];
pub const BUCKET_LABELS: [&str; 5] = ["<5%", "5-10%", "10-15%", "15-20%", ">20%"];
/// Hours in an average month.
pub const HOURS_PER_MONTH: f64 = 730.0;

struct Tables {
    ondemand: BTreeMap<String, f64>,
    advisor: BTreeMap<(String, String), (f64, usize)>,
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let ondemand = ONDEMAND_CSV
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split(',');
                let (_region, ty, price) = (f.next()?, f.next()?, f.next()?);
                Some((ty.to_string(), price.trim().parse().ok()?))
            })
            .collect();
        let advisor = ADVISOR_CSV
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split(',');
                let (region, ty, s, r) = (f.next()?, f.next()?, f.next()?, f.next()?);
                let bucket: usize = r.trim().parse().ok()?;
                Some((
                    (region.to_string(), ty.to_string()),
                    (s.trim().parse().ok()?, bucket.min(4)),
                ))
            })
            .collect();
        Tables { ondemand, advisor }
    })
}

/// On-demand $/h of an instance type (us-east-1 prices).
pub fn ondemand_usd_per_hour(instance_type: &str) -> Option<f64> {
    tables().ondemand.get(instance_type).copied()
}

/// Spot savings percent and interruption bucket for a region and type.
pub fn advisor(region: &str, instance_type: &str) -> Option<(f64, usize)> {
    tables()
        .advisor
        .get(&(region.to_string(), instance_type.to_string()))
        .copied()
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
