//! The world model: how long machines take to boot, how often creation fails, what they cost,
//! how often spot reclaims them. All draws come from the simulator's seeded streams.

pub use crate::config::scenario::{Boot, WorldOverrides};
use crate::core::Time;
use crate::sim::prices;

/// $/h over time: a constant, or a spot price history (a step function).
#[derive(Clone, Debug, PartialEq)]
pub enum PriceCurve {
    Fixed(f64),
    History(PriceHistory),
}

#[derive(Clone, Debug, PartialEq)]
pub struct PriceHistory {
    times: Vec<Time>,
    prices: Vec<f64>,
    /// Dollars accrued from `times[0]` to `times[i]`.
    cum: Vec<f64>,
}

impl PriceHistory {
    /// From (time, $/h) points in any order; before the first point its price applies.
    pub fn new(mut points: Vec<(Time, f64)>) -> Option<Self> {
        if points.is_empty() {
            return None;
        }
        points.sort_by_key(|p| p.0);
        let times: Vec<Time> = points.iter().map(|p| p.0).collect();
        let prices: Vec<f64> = points.iter().map(|p| p.1).collect();
        let mut cum = vec![0.0; times.len()];
        for i in 1..times.len() {
            cum[i] = cum[i - 1] + prices[i - 1] * times[i].since(times[i - 1]) as f64 / 3.6e6;
        }
        Some(PriceHistory { times, prices, cum })
    }

    /// Dollars accrued from `times[0]` to `t` (negative before it).
    fn accrued(&self, t: Time) -> f64 {
        let i = self.times.partition_point(|&x| x <= t);
        if i == 0 {
            return -(self.prices[0] * self.times[0].since(t) as f64 / 3.6e6);
        }
        let i = i - 1;
        self.cum[i] + self.prices[i] * t.since(self.times[i]) as f64 / 3.6e6
    }

    pub fn price_at(&self, t: Time) -> f64 {
        let i = self.times.partition_point(|&x| x <= t);
        self.prices[i.saturating_sub(1)]
    }

    pub fn mean_price(&self) -> f64 {
        self.prices.iter().sum::<f64>() / self.prices.len() as f64
    }
}

impl PriceCurve {
    /// Dollars for running from `from` to `to`.
    pub fn cost(&self, from: Time, to: Time) -> f64 {
        if to <= from {
            return 0.0;
        }
        match self {
            PriceCurve::Fixed(p) => p * to.since(from) as f64 / 3.6e6,
            PriceCurve::History(h) => h.accrued(to) - h.accrued(from),
        }
    }

    pub fn price_at(&self, t: Time) -> f64 {
        match self {
            PriceCurve::Fixed(p) => *p,
            PriceCurve::History(h) => h.price_at(t),
        }
    }
}

/// Everything the simulator needs to turn actions into future events and dollars.
#[derive(Clone, Debug, PartialEq)]
pub struct WorldModel {
    pub instance_type: String,
    pub region: String,
    pub spot: bool,
    pub boot: Boot,
    pub create_failure_probability: f64,
    pub create_retry_seconds: f64,
    pub remove_seconds: f64,
    /// The compute price actually paid.
    pub price: PriceCurve,
    pub ondemand_usd_per_hour: f64,
    /// Spot interruptions per machine-hour (0 for on-demand).
    pub interruptions_per_hour: f64,
    pub root_size_gb: f64,
    pub ebs_usd_per_gb_month: f64,
    /// How long a job waits before the runner sees it (GitLab Runner asks for jobs every
    /// `check_interval`, and the request takes its time), seconds.
    pub pickup_seconds: f64,
    /// How the figures were chosen, for the report.
    pub notes: Vec<String>,
}

/// EC2 bills at least this long from launch.
pub const MIN_BILLED_MS: i64 = 60_000;
/// The spot interruption notice comes this long before the reclaim.
pub const NOTICE_MS: i64 = 120_000;
pub use crate::prices::GP3_USD_PER_GB_MONTH;

impl WorldModel {
    /// Resolve the model from the config's MachineOptions (`instance_type`, `region`, `spot`,
    /// root size) and the scenario's overrides. Errors when no price can be found.
    pub fn resolve(
        instance_type: &str,
        region: &str,
        spot: bool,
        root_size_gb: f64,
        o: &WorldOverrides,
    ) -> Result<Self, String> {
        let instance_type = o.instance_type.clone().unwrap_or(instance_type.to_string());
        let region = o.region.clone().unwrap_or(region.to_string());
        let spot = o.spot.unwrap_or(spot);
        let mut notes = Vec::new();
        let ondemand = prices::ondemand_usd_per_hour(&instance_type);
        if ondemand.is_some() && region != prices::ONDEMAND_REGION {
            notes.push(format!(
                "on-demand price of {instance_type} taken from {} (the shipped table has no {region})",
                prices::ONDEMAND_REGION
            ));
        }
        let advisor = prices::advisor(&region, &instance_type);
        let price = if let Some(p) = o.price_per_hour {
            notes.push(format!("price fixed by the scenario: ${p}/h"));
            PriceCurve::Fixed(p)
        } else if !spot {
            let p = ondemand.ok_or_else(|| {
                format!("no on-demand price for {instance_type:?}: set machine.price_per_hour")
            })?;
            PriceCurve::Fixed(p)
        } else if let Some(points) = &o.spot_price_history {
            let h = PriceHistory::new(points.clone())
                .ok_or("the spot price history has no price for this instance type")?;
            notes.push(format!(
                "spot price from the history ({} points, mean ${:.4}/h)",
                points.len(),
                h.mean_price()
            ));
            PriceCurve::History(h)
        } else {
            let od = ondemand.ok_or_else(|| {
                format!(
                    "no on-demand price for {instance_type:?} to derive a spot price: set machine.price_per_hour"
                )
            })?;
            let fraction = match (o.spot_price_fraction, advisor) {
                (Some(f), _) => f,
                (None, Some((savings, _))) => {
                    notes.push(format!(
                        "spot price = on-demand x {:.2} (Spot Instance Advisor: {savings}% savings in {region})",
                        1.0 - savings / 100.0
                    ));
                    1.0 - savings / 100.0
                }
                (None, None) => {
                    notes.push(format!(
                        "no Spot Instance Advisor entry for {instance_type} in {region}: spot price = on-demand x 0.35"
                    ));
                    0.35
                }
            };
            PriceCurve::Fixed(od * fraction)
        };
        let interruptions_per_hour = if !spot {
            0.0
        } else if let Some(r) = o.interruptions_per_hour {
            r
        } else if let Some((_, bucket)) = advisor {
            notes.push(format!(
                "interruptions: advisor bucket {} in {region}, midpoint {:.1}% a month = {:.6} per machine-hour",
                prices::BUCKET_LABELS[bucket],
                prices::BUCKET_MIDPOINTS[bucket] * 100.0,
                prices::BUCKET_MIDPOINTS[bucket] / prices::HOURS_PER_MONTH
            ));
            prices::BUCKET_MIDPOINTS[bucket] / prices::HOURS_PER_MONTH
        } else {
            notes.push("interruptions: no advisor entry, none simulated".into());
            0.0
        };
        Ok(WorldModel {
            instance_type,
            region,
            spot,
            boot: o.boot.clone().unwrap_or(Boot::Fixed(60.0)),
            create_failure_probability: o.create_failure_probability.unwrap_or(0.0),
            create_retry_seconds: o.create_retry_seconds.unwrap_or(30.0),
            remove_seconds: o.remove_seconds.unwrap_or(0.0),
            price,
            ondemand_usd_per_hour: ondemand.unwrap_or(0.0),
            interruptions_per_hour,
            root_size_gb: o.root_size_gb.unwrap_or(root_size_gb),
            ebs_usd_per_gb_month: o.ebs_usd_per_gb_month.unwrap_or(GP3_USD_PER_GB_MONTH),
            pickup_seconds: o.pickup_seconds.unwrap_or(0.0),
            notes,
        })
    }

    /// Storage dollars for a volume alive from `from` to `to`.
    pub fn storage_cost(&self, from: Time, to: Time) -> f64 {
        let ms = to.since(from).max(0) as f64;
        self.root_size_gb * self.ebs_usd_per_gb_month * ms / (prices::HOURS_PER_MONTH * 3.6e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_integrates_piecewise() {
        let t = |s: i64| Time::from_secs(s);
        let h = PriceHistory::new(vec![(t(3600), 2.0), (t(0), 1.0)]).unwrap();
        let c = PriceCurve::History(h);
        assert!((c.cost(t(0), t(7200)) - 3.0).abs() < 1e-9);
        assert!((c.cost(t(1800), t(5400)) - 1.5).abs() < 1e-9);
        assert!(
            (c.cost(t(-3600), t(0)) - 1.0).abs() < 1e-9,
            "before the first point"
        );
    }

    #[test]
    fn spot_price_from_the_advisor() {
        let w = WorldModel::resolve(
            "m4.2xlarge",
            "eu-central-1",
            true,
            16.0,
            &WorldOverrides::default(),
        )
        .unwrap();
        assert!((w.price.price_at(Time(0)) - 0.18).abs() < 1e-12);
        assert!((w.interruptions_per_hour - 0.225 / 730.0).abs() < 1e-12);
        assert!(w.notes.iter().any(|n| n.contains("us-east-1")));
        let od = WorldModel::resolve(
            "m4.2xlarge",
            "us-east-1",
            false,
            16.0,
            &WorldOverrides::default(),
        )
        .unwrap();
        assert_eq!(od.price, PriceCurve::Fixed(0.4));
        assert_eq!(od.interruptions_per_hour, 0.0);
    }
}
