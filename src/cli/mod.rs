//! The command line's shared pieces: why a command failed (input, exit 2; or the run, exit 1),
//! the host's time zone, and the small parsers every command uses. One file per command
//! beside this one: each calls into the library, prints, and sets the exit code.

pub mod calibrate;
pub mod check;
pub mod journal;
#[cfg(feature = "live")]
pub mod live;
pub mod periods;
pub mod replay;
pub mod simulate;
pub mod sweep;
pub mod trace;

use chrono_tz::Tz;
use scalecast::config::InputError;
use scalecast::core::Time;

/// Why the command failed: the input (exit 2) or the run (exit 1).
/// Why the command failed: the input (exit 2) or the run (exit 1).
pub enum Failure {
    Input(String),
    Runtime(anyhow::Error),
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        Failure::Input(e.to_string())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Runtime(e.into())
    }
}

/// The host's time zone, for autoscaling entries with an empty or `Local` Timezone:
/// `TZ` when set to an IANA name, else the system's, else UTC.
pub fn host_tz() -> Tz {
    if let Ok(name) = std::env::var("TZ")
        && let Ok(tz) = name.trim_start_matches(':').parse::<Tz>()
    {
        return tz;
    }
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(Tz::UTC)
}

pub fn parse_time(flag: &str, s: &str) -> Result<Time, Failure> {
    Time::parse_rfc3339(s).map_err(|e| Failure::Input(format!("--{flag}: {e}")))
}

/// `--set KEY=VALUE` arguments.
pub fn parse_sets(
    sets: &[String],
) -> Result<Vec<(String, scalecast::config::overrides::SetValue)>, Failure> {
    sets.iter()
        .map(|s| {
            scalecast::config::overrides::parse_assignment(s)
                .map_err(|e| Failure::Input(format!("--set {e}")))
        })
        .collect()
}
