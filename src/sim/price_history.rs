//! Spot price history in the shape of EC2 DescribeSpotPriceHistory: its JSON output
//! (`{"SpotPriceHistory":[{"AvailabilityZone","InstanceType","SpotPrice","Timestamp"}]}` or the
//! bare array), or CSV/TSV with columns timestamp, instance type, zone, price.

use crate::core::Time;
use crate::trace::{TraceError, parse_gitlab_time};
use std::path::Path;

/// One price point.
#[derive(Clone, Debug, PartialEq)]
pub struct PricePoint {
    pub at: Time,
    pub instance_type: String,
    pub zone: String,
    pub usd_per_hour: f64,
}

fn err(path: &Path, place: String, message: String) -> TraceError {
    TraceError {
        file: path.display().to_string(),
        place,
        message,
    }
}

fn key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

pub fn read(path: &Path) -> Result<Vec<PricePoint>, TraceError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(path, String::new(), format!("cannot read: {e}")))?;
    if text.trim_start().starts_with('{') || text.trim_start().starts_with('[') {
        read_json(path, &text)
    } else {
        read_csv(path, &text)
    }
}

fn read_json(path: &Path, text: &str) -> Result<Vec<PricePoint>, TraceError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        err(
            path,
            format!("line {}", e.line()),
            format!("malformed JSON: {e}"),
        )
    })?;
    let items = match &v {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(o) => o
            .get("SpotPriceHistory")
            .and_then(|h| h.as_array())
            .ok_or_else(|| {
                err(
                    path,
                    String::new(),
                    "expected a SpotPriceHistory array".into(),
                )
            })?,
        _ => {
            return Err(err(
                path,
                String::new(),
                "expected an array of prices".into(),
            ));
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let place = format!("record {}", i + 1);
        let field = |names: &[&str]| -> Option<String> {
            let o = item.as_object()?;
            o.iter()
                .find(|(k, _)| names.contains(&key(k).as_str()))
                .and_then(|(_, v)| match v {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
        };
        out.push(point(path, place, &field)?);
    }
    Ok(out)
}

fn point(
    path: &Path,
    place: String,
    field: &dyn Fn(&[&str]) -> Option<String>,
) -> Result<PricePoint, TraceError> {
    let ts = field(&["timestamp", "time"])
        .ok_or_else(|| err(path, place.clone(), "no Timestamp".into()))?;
    let at = parse_gitlab_time(&ts).ok_or_else(|| {
        err(
            path,
            place.clone(),
            format!("Timestamp {ts:?} is not a time"),
        )
    })?;
    let price = field(&["spotprice", "price"])
        .ok_or_else(|| err(path, place.clone(), "no SpotPrice".into()))?;
    let usd_per_hour: f64 = price
        .trim()
        .parse()
        .ok()
        .filter(|p: &f64| p.is_finite() && *p >= 0.0)
        .ok_or_else(|| {
            err(
                path,
                place.clone(),
                format!("SpotPrice {price:?} is not a price"),
            )
        })?;
    Ok(PricePoint {
        at,
        instance_type: field(&["instancetype", "type"]).unwrap_or_default(),
        zone: field(&["availabilityzone", "zone"]).unwrap_or_default(),
        usd_per_hour,
    })
}

fn read_csv(path: &Path, text: &str) -> Result<Vec<PricePoint>, TraceError> {
    let first = text.lines().next().unwrap_or("");
    let delimiter = if first.matches('\t').count() > first.matches(',').count() {
        b'\t'
    } else {
        b','
    };
    let mut r = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = r
        .headers()
        .map_err(|e| {
            err(
                path,
                "line 1".into(),
                format!("cannot read the header: {e}"),
            )
        })?
        .iter()
        .map(key)
        .collect();
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            err(path, format!("line {line}"), format!("malformed CSV: {e}"))
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let field = |names: &[&str]| -> Option<String> {
            headers
                .iter()
                .position(|h| names.contains(&h.as_str()))
                .and_then(|i| rec.get(i))
                .map(|s| s.to_string())
        };
        out.push(point(path, format!("line {line}"), &field)?);
    }
    Ok(out)
}

/// The points for one instance type, preferring the machine's own zone (`region` + letter).
pub fn select(points: &[PricePoint], instance_type: &str, zone: &str) -> Vec<(Time, f64)> {
    let of_type: Vec<&PricePoint> = points
        .iter()
        .filter(|p| p.instance_type.is_empty() || p.instance_type == instance_type)
        .collect();
    let in_zone: Vec<&PricePoint> = of_type.iter().copied().filter(|p| p.zone == zone).collect();
    let chosen = if in_zone.is_empty() { of_type } else { in_zone };
    chosen.iter().map(|p| (p.at, p.usd_per_hour)).collect()
}
