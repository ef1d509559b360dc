//! Reading config.toml as users write it (spec section 1) and what `check` says about it.

mod common;
use common::*;
use scalecast::config::ConfigFile;
use scalecast::config::check::{Severity, check};
use std::path::Path;

fn tutorial() -> ConfigFile {
    ConfigFile::load(Path::new("scenarios/tutorial/config.toml")).unwrap()
}

fn codes(cfg: &ConfigFile) -> Vec<(&'static str, Option<usize>)> {
    check(cfg, None, chrono_tz::Tz::UTC)
        .unwrap()
        .into_iter()
        .map(|f| (f.code, f.line))
        .collect()
}

#[test]
fn tutorial_config_reads_every_section() {
    let cfg = tutorial();
    assert_eq!(cfg.concurrent, 10);
    assert_eq!(
        cfg.effective_check_interval(),
        3,
        "check_interval = 0 means 3 s"
    );
    let r = cfg.runner(Some("gitlab-aws-autoscaler")).unwrap();
    assert_eq!((r.executor.as_str(), r.limit), ("docker+machine", 20));
    let d = r.docker.as_ref().unwrap();
    assert_eq!(
        (d.image.as_str(), d.privileged, d.disable_cache),
        ("alpine", true, true)
    );
    let c = r.cache.as_ref().unwrap();
    assert_eq!((c.kind.as_str(), c.shared), ("s3", true));
    assert_eq!(c.s3.as_ref().unwrap().bucket_location, "us-east-1");
    let m = r.machine.as_ref().unwrap();
    assert_eq!(
        (m.idle_count.value, m.idle_time.value, m.max_builds),
        (1, 1800, 10)
    );
    assert_eq!(m.machine_name, "gitlab-docker-machine-%s");
    assert_eq!(m.autoscaling.len(), 2);
    assert_eq!(m.autoscaling[0].idle_count.value, 50);
}

#[test]
fn machine_options_become_typed_fields() {
    let cfg = tutorial();
    let ec2 = &cfg.runners[0].machine.as_ref().unwrap().ec2;
    assert_eq!(ec2.instance_type, "m4.2xlarge");
    assert_eq!(ec2.region, "eu-central-1");
    assert_eq!(ec2.zone, "a");
    assert!(ec2.request_spot_instance);
    assert!(ec2.use_private_address);
    assert_eq!(
        ec2.security_group,
        vec!["docker-machine-scaler".to_string()]
    );
    assert_eq!(ec2.tags.len(), 3);
    assert_eq!(
        ec2.tags[0],
        ("runner-manager-name".into(), "gitlab-aws-autoscaler".into())
    );
    assert_eq!(ec2.root_size, 16, "docker-machine's default");
}

#[test]
fn machine_keys_match_case_insensitively() {
    let s = settings("", "", "idlecount = 3\nIDLETIME = 600\nmaxgrowthrate = 2");
    assert_eq!(s.idle.idle_count, 3);
    assert_eq!(s.idle.idle_time, 600);
    assert_eq!(s.max_growth_rate, 2);
}

#[test]
fn unknown_keys_are_kept_and_ignored() {
    let cfg = config(
        "log_level = \"debug\"",
        "shell = \"bash\"\n[runners.custom_build_dir]\nenabled = true",
        "IdleCount = 1\nMachineFutureKey = 5",
    );
    assert!(cfg.other.iter().any(|(k, _)| k == "log_level"));
    let r = &cfg.runners[0];
    assert!(r.other.iter().any(|(k, _)| k == "shell"));
    assert!(
        r.machine
            .as_ref()
            .unwrap()
            .other
            .iter()
            .any(|(k, _)| k == "MachineFutureKey")
    );
}

#[test]
fn secrets_never_appear_in_debug_or_json() {
    let cfg = tutorial();
    let dbg = format!("{cfg:?}");
    let json = serde_json::to_string(&cfg).unwrap();
    for secret in common::TUTORIAL_SECRETS {
        assert!(!dbg.contains(secret), "{secret} in Debug");
        assert!(!json.contains(secret), "{secret} in JSON");
    }
    assert!(json.contains("[redacted]"));
    // The adapters can still reach them.
    assert_eq!(cfg.runners[0].token.expose(), "YOUR_RUNNER_TOKEN");
}

#[test]
fn broken_toml_is_an_error_with_its_line() {
    let err = ConfigFile::parse(
        Path::new("c.toml"),
        "concurrent = 1\n\n[[runners]\nname = 1\n",
    )
    .unwrap_err();
    assert_eq!(err.line, 3);
    assert!(
        err.to_string().starts_with("c.toml:3: not valid TOML"),
        "{err}"
    );
}

#[test]
fn wrong_types_are_errors_naming_key_and_line() {
    let err = ConfigFile::parse(
        Path::new("c.toml"),
        "[[runners]]\nname = \"r\"\n[runners.machine]\nIdleCount = \"five\"\n",
    )
    .unwrap_err();
    assert_eq!(err.line, 4);
    assert!(
        err.message.contains("IdleCount") && err.message.contains("integer"),
        "{err}"
    );
    let err = ConfigFile::parse(
        Path::new("c.toml"),
        "[[runners]]\nname = \"r\"\nlimit = -1\n",
    )
    .unwrap_err();
    assert_eq!(err.line, 3);
}

#[test]
fn unknown_time_zone_is_an_error_with_its_line() {
    let text = "[[runners]]\nname = \"r\"\n[runners.machine]\n[[runners.machine.autoscaling]]\nPeriods = [\"* * * * * * *\"]\nTimezone = \"Mars/Olympus\"\n";
    let err = ConfigFile::parse(Path::new("c.toml"), text).unwrap_err();
    assert_eq!(err.line, 6);
    assert!(err.message.contains("Mars/Olympus"));
}

#[test]
fn bad_period_is_an_error_with_its_line_and_text() {
    let text = "[[runners]]\nname = \"r\"\n[runners.machine]\n[[runners.machine.autoscaling]]\nPeriods = [\n  \"* * * * * * *\",\n  \"* * 99 * * * *\",\n]\n";
    let err = ConfigFile::parse(Path::new("c.toml"), text).unwrap_err();
    assert_eq!(err.line, 7);
    assert!(err.message.contains("* * 99 * * * *"));
}

#[test]
fn no_such_runner_is_an_error_listing_runners() {
    let cfg = tutorial();
    let err = cfg.runner(Some("nope")).unwrap_err();
    assert!(err.message.contains("gitlab-aws-autoscaler"));
}

#[test]
fn tutorial_has_no_errors() {
    let f = check(&tutorial(), None, chrono_tz::Tz::UTC).unwrap();
    assert!(f.iter().all(|f| f.severity == Severity::Warning));
}

#[test]
fn reversed_range_is_warned_on_its_line() {
    let m = "IdleCount = 1\n[[runners.machine.autoscaling]]\nPeriods = [\"* * * * * sat-sun *\"]\nIdleCount = 5\nTimezone = \"UTC\"\n";
    let cfg = config("", "", m);
    let c = codes(&cfg);
    // Lines: 1 top, 2 [[runners]], 3 name, 4 executor, 5 runner, 6 [runners.machine], 7 IdleCount, 8 entry, 9 Periods.
    assert!(c.contains(&("never_active", Some(9))), "{c:?}");
}

#[test]
fn seconds_field_not_star_is_warned() {
    let m = "[[runners.machine.autoscaling]]\nPeriods = [\"* 9-17 * * mon-fri\"]\nIdleCount = 5\nTimezone = \"UTC\"\n";
    assert!(
        codes(&config("", "", m))
            .iter()
            .any(|(c, _)| *c == "seconds_field")
    );
}

#[test]
fn deprecated_offpeak_keys_are_warned_and_never_applied() {
    let cfg = config(
        "",
        "",
        "IdleCount = 2\nOffPeakPeriods = [\"* * * * * * *\"]\nOffPeakIdleCount = 9\n",
    );
    assert_eq!(
        codes(&cfg)
            .iter()
            .filter(|(c, _)| *c == "deprecated_offpeak")
            .count(),
        2
    );
    let r = cfg.runner(None).unwrap();
    assert_eq!(
        cfg.settings(r, chrono_tz::Tz::UTC)
            .effective_at(t0())
            .idle
            .idle_count,
        2
    );
}

#[test]
fn integer_idle_scale_factor_is_accepted_and_warned() {
    let cfg = config("", "", "IdleCount = 10\nIdleScaleFactor = 1\n");
    assert!(
        codes(&cfg)
            .iter()
            .any(|(c, _)| *c == "integer_idle_scale_factor")
    );
    let r = cfg.runner(None).unwrap();
    assert_eq!(
        cfg.settings(r, chrono_tz::Tz::UTC).idle.idle_scale_factor,
        1.0
    );
}

#[test]
fn idle_count_min_above_idle_count_is_warned() {
    let cfg = config(
        "",
        "",
        "IdleCount = 2\nIdleCountMin = 5\nIdleScaleFactor = 0.5\n",
    );
    assert!(
        codes(&cfg)
            .iter()
            .any(|(c, _)| *c == "idle_count_min_above_idle_count")
    );
}

#[test]
fn idle_count_above_limit_is_warned() {
    let cfg = config("", "limit = 3", "IdleCount = 4\n");
    assert!(
        codes(&cfg)
            .iter()
            .any(|(c, _)| *c == "idle_count_above_limit")
    );
    let cfg = config("", "limit = 0", "IdleCount = 4\n");
    assert!(
        !codes(&cfg)
            .iter()
            .any(|(c, _)| *c == "idle_count_above_limit"),
        "0 = no limit"
    );
}

#[test]
fn entry_always_shadowed_by_a_later_entry_is_warned() {
    let b = "[[runners.machine.autoscaling]]\nPeriods = [\"* * 9-17 * * mon-fri *\"]\nIdleCount = 5\nTimezone = \"UTC\"\n";
    let a = "[[runners.machine.autoscaling]]\nPeriods = [\"* * * * * * *\"]\nIdleCount = 1\nTimezone = \"UTC\"\n";
    let shadowed = config("", "", &format!("{b}{a}"));
    assert!(codes(&shadowed).iter().any(|(c, _)| *c == "shadowed_entry"));
    let fine = config("", "", &format!("{a}{b}"));
    assert!(!codes(&fine).iter().any(|(c, _)| *c == "shadowed_entry"));
}

#[test]
fn entry_without_periods_is_warned() {
    let cfg = config("", "", "[[runners.machine.autoscaling]]\nIdleCount = 5\n");
    assert!(
        codes(&cfg)
            .iter()
            .any(|(c, _)| *c == "entry_without_periods")
    );
}
