//! `KEY=VALUE` overrides of runner and machine settings, as scenario variants (`set = {...}`),
//! `--set` on the command line and sweep grids write them. Keys are GitLab's names, matched
//! case-insensitively; `autoscaling.N.Key` reaches into the N-th autoscaling entry.

use crate::core::{EngineKind, Settings};

/// The keys `apply` understands, for messages.
pub const KEYS: &str = "IdleCount, IdleCountMin, IdleScaleFactor, IdleTime, MaxBuilds, MaxGrowthRate, limit, concurrent, check_interval, engine, autoscaling.N.IdleCount (and the other three idle keys)";

/// A value as written: TOML gives typed values, the command line gives text.
#[derive(Clone, Debug, PartialEq)]
pub enum SetValue {
    Int(i64),
    Float(f64),
    Text(String),
}

impl SetValue {
    pub fn from_toml(v: &toml::Value) -> Option<Self> {
        match v {
            toml::Value::Integer(i) => Some(SetValue::Int(*i)),
            toml::Value::Float(f) => Some(SetValue::Float(*f)),
            toml::Value::String(s) => Some(SetValue::Text(s.clone())),
            _ => None,
        }
    }

    fn count(&self, key: &str) -> Result<u32, OverrideError> {
        let bad = |value: String| OverrideError::BadValue {
            key: key.to_string(),
            value,
            expected: "a whole number >= 0",
        };
        let n = match self {
            SetValue::Int(i) => *i,
            SetValue::Float(f) if f.fract() == 0.0 => *f as i64,
            SetValue::Text(s) => s.trim().parse().map_err(|_| bad(format!("{s:?}")))?,
            SetValue::Float(f) => return Err(bad(f.to_string())),
        };
        u32::try_from(n).map_err(|_| bad(n.to_string()))
    }

    fn factor(&self, key: &str) -> Result<f64, OverrideError> {
        let bad = |value: String| OverrideError::BadValue {
            key: key.to_string(),
            value,
            expected: "a number >= 0",
        };
        let f = match self {
            SetValue::Int(i) => *i as f64,
            SetValue::Float(f) => *f,
            SetValue::Text(s) => s.trim().parse().map_err(|_| bad(format!("{s:?}")))?,
        };
        if f.is_finite() && f >= 0.0 {
            Ok(f)
        } else {
            Err(bad(f.to_string()))
        }
    }
}

impl std::fmt::Display for SetValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetValue::Int(i) => write!(f, "{i}"),
            SetValue::Float(x) => write!(f, "{x}"),
            SetValue::Text(s) => write!(f, "{s}"),
        }
    }
}

/// Why an override was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OverrideError {
    #[error("{0:?}: expected KEY=VALUE")]
    NotAssignment(String),
    #[error("{key} = {value}: expected {expected}")]
    BadValue {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("{key}: {why}")]
    BadKey { key: String, why: String },
    #[error("unknown setting {0:?} (known: {KEYS})")]
    Unknown(String),
}

/// Split `KEY=VALUE` from the command line.
pub fn parse_assignment(s: &str) -> Result<(String, SetValue), OverrideError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| OverrideError::NotAssignment(s.to_string()))?;
    Ok((k.trim().to_string(), SetValue::Text(v.trim().to_string())))
}

fn apply_idle(
    idle: &mut crate::core::IdleSettings,
    field: &str,
    key: &str,
    v: &SetValue,
) -> Result<bool, OverrideError> {
    match field {
        "idlecount" => idle.idle_count = v.count(key)?,
        "idlecountmin" => idle.idle_count_min = v.count(key)?,
        "idlescalefactor" => idle.idle_scale_factor = v.factor(key)?,
        "idletime" => idle.idle_time = v.count(key)? as u64,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Apply one override. Unknown keys and bad values are errors naming the key.
pub fn apply(
    settings: &mut Settings,
    engine: &mut EngineKind,
    key: &str,
    v: &SetValue,
) -> Result<(), OverrideError> {
    let k = key.trim().to_ascii_lowercase();
    let bad_key = |why: String| OverrideError::BadKey {
        key: key.to_string(),
        why,
    };
    if let Some(rest) = k.strip_prefix("autoscaling.") {
        let (n, field) = rest
            .split_once('.')
            .ok_or_else(|| bad_key("expected autoscaling.N.Key".into()))?;
        let n: usize = n
            .parse()
            .map_err(|_| bad_key(format!("{n:?} is not an entry number")))?;
        let count = settings.autoscaling.len();
        let entry = settings.autoscaling.get_mut(n).ok_or_else(|| {
            bad_key(format!(
                "there is no autoscaling entry {n} (the config has {count})"
            ))
        })?;
        if !apply_idle(&mut entry.idle, field, key, v)? {
            return Err(bad_key(
                "an autoscaling entry has IdleCount, IdleCountMin, IdleScaleFactor and IdleTime"
                    .into(),
            ));
        }
        return Ok(());
    }
    if apply_idle(&mut settings.idle, &k, key, v)? {
        return Ok(());
    }
    match k.as_str() {
        "maxbuilds" => settings.max_builds = v.count(key)?,
        "maxgrowthrate" => settings.max_growth_rate = v.count(key)?,
        "limit" => settings.limit = v.count(key)?,
        "concurrent" => settings.concurrent = v.count(key)?,
        "check_interval" => settings.check_interval = v.count(key)?.max(1),
        "engine" => {
            *engine = v
                .to_string()
                .parse()
                .map_err(|e: crate::core::UnknownEngine| bad_key(e.to_string()))?
        }
        _ => return Err(OverrideError::Unknown(key.to_string())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_and_reach_entries() {
        let mut s = Settings::default();
        s.autoscaling.push(crate::core::AutoscalingEntry {
            periods: vec![],
            timezone: chrono_tz::Tz::UTC,
            idle: Default::default(),
        });
        let mut e = EngineKind::Scalecast;
        apply(&mut s, &mut e, "idlecount", &SetValue::Int(5)).unwrap();
        apply(
            &mut s,
            &mut e,
            "autoscaling.0.IdleTime",
            &SetValue::Text("60".into()),
        )
        .unwrap();
        apply(
            &mut s,
            &mut e,
            "engine",
            &SetValue::Text("docker-machine".into()),
        )
        .unwrap();
        assert_eq!(
            (s.idle.idle_count, s.autoscaling[0].idle.idle_time),
            (5, 60)
        );
        assert_eq!(e, EngineKind::DockerMachine);
        assert!(matches!(
            apply(&mut s, &mut e, "autoscaling.3.IdleCount", &SetValue::Int(1)),
            Err(OverrideError::BadKey { .. })
        ));
        let neg = apply(&mut s, &mut e, "IdleCount", &SetValue::Int(-1)).unwrap_err();
        assert_eq!(
            neg.to_string(),
            "IdleCount = -1: expected a whole number >= 0"
        );
        assert_eq!(
            apply(&mut s, &mut e, "Colour", &SetValue::Int(1)),
            Err(OverrideError::Unknown("Colour".into()))
        );
        assert_eq!(
            parse_assignment("IdleCount"),
            Err(OverrideError::NotAssignment("IdleCount".into()))
        );
    }
}
