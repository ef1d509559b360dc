//! Capacity fallbacks: when EC2 has no capacity for the configured instance type (or the spot
//! market turns the request down), try further types, then on-demand. The list lives in a
//! scalecast-only settings file, `scalecast.toml` beside config.toml, so that config.toml
//! stays exactly what GitLab Runner reads:
//!
//! ```toml
//! [capacity]
//! instance_types = ["m5a.large", "m6i.large"]   # spot, in this order, after the configured one
//! on_demand = true                              # then the configured type on-demand
//! ```

use crate::config::InputError;
use crate::live::cloud::{Cloud, CloudError, CreateRequest, Instance};
use serde::Deserialize;
use std::path::Path;

/// The fallbacks after the configured type and market.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fallbacks {
    #[serde(default)]
    pub instance_types: Vec<String>,
    #[serde(default)]
    pub on_demand: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    #[serde(default)]
    capacity: Fallbacks,
}

impl Fallbacks {
    /// Read `[capacity]` from a scalecast.toml; a missing file means no fallback.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Fallbacks::default()),
            Err(e) => {
                return Err(InputError {
                    file: path.display().to_string(),
                    line: 0,
                    message: format!("cannot read: {e}"),
                });
            }
        };
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, InputError> {
        let f: SettingsFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            });
            InputError {
                file: path.display().to_string(),
                line,
                message: e.message().to_string(),
            }
        })?;
        if let Some(t) = f
            .capacity
            .instance_types
            .iter()
            .find(|t| t.trim().is_empty())
        {
            return Err(InputError {
                file: path.display().to_string(),
                line: 0,
                message: format!("capacity.instance_types: an empty type {t:?}"),
            });
        }
        Ok(f.capacity)
    }

    /// Every attempt in order: the request as made, each fallback type, then on-demand.
    pub fn attempts(&self, base: &CreateRequest) -> Vec<CreateRequest> {
        let mut out = vec![base.clone()];
        for t in &self.instance_types {
            out.push(CreateRequest {
                instance_type: Some(t.clone()),
                attempt: out.len() as u32,
                ..base.clone()
            });
        }
        if self.on_demand {
            out.push(CreateRequest {
                on_demand: true,
                attempt: out.len() as u32,
                ..base.clone()
            });
        }
        out
    }
}

/// One attempt that found no capacity, and why: for the log and the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FellBack {
    pub instance_type: Option<String>,
    pub on_demand: bool,
    pub error: CloudError,
}

/// Create `base`, falling back on capacity errors only (a refused or throttled call is not
/// cured by another type): the instance or the last error, and every attempt that fell back.
pub async fn create_with_fallback<C: Cloud>(
    cloud: &C,
    base: &CreateRequest,
    fallbacks: &Fallbacks,
) -> (Result<Instance, CloudError>, Vec<FellBack>) {
    let mut fell = Vec::new();
    let attempts = fallbacks.attempts(base);
    let last = attempts.len() - 1;
    for (n, req) in attempts.into_iter().enumerate() {
        match cloud.create(&req).await {
            Ok(i) => return (Ok(i), fell),
            Err(e @ CloudError::Capacity { .. }) if n < last => fell.push(FellBack {
                instance_type: req.instance_type,
                on_demand: req.on_demand,
                error: e,
            }),
            Err(e) => return (Err(e), fell),
        }
    }
    unreachable!("the last attempt returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_file_is_read_and_checked() {
        let p = Path::new("scalecast.toml");
        let f = Fallbacks::parse(
            p,
            "[capacity]\ninstance_types = [\"m5a.large\", \"m6i.large\"]\non_demand = true\n",
        )
        .unwrap();
        assert_eq!(f.instance_types, vec!["m5a.large", "m6i.large"]);
        assert!(f.on_demand);
        assert_eq!(Fallbacks::parse(p, "").unwrap(), Fallbacks::default());
        let e = Fallbacks::parse(p, "[capacity]\n\non_demnd = true\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.to_string().contains("scalecast.toml"), "{e}");
        assert!(
            Fallbacks::load(Path::new("/nonexistent/scalecast.toml"))
                .unwrap()
                .instance_types
                .is_empty()
        );
    }

    #[test]
    fn attempts_are_the_request_then_each_type_then_on_demand_each_with_its_own_token() {
        let f = Fallbacks {
            instance_types: vec!["a".into(), "b".into()],
            on_demand: true,
        };
        let base = CreateRequest {
            manager: "m".into(),
            machine: 4,
            ..Default::default()
        };
        let a = f.attempts(&base);
        assert_eq!(a.len(), 4);
        assert_eq!(a[0], base);
        assert_eq!(a[1].instance_type.as_deref(), Some("a"));
        assert_eq!(a[2].instance_type.as_deref(), Some("b"));
        assert!(a[3].on_demand && a[3].instance_type.is_none());
        let mut tokens: Vec<String> = a.iter().map(|r| r.client_token()).collect();
        tokens.dedup();
        assert_eq!(tokens.len(), 4);
    }
}
