//! Rules of spec section 2 (period expressions, cronexpr semantics) and the period parts of
//! section 1 (last entry wins, no per-field fallback, entries without Periods).

mod common;
use chrono::NaiveDate;
use chrono_tz::Tz;
use common::*;
use scalecast::core::cron::CronExpr;

fn e(s: &str) -> CronExpr {
    CronExpr::parse(s).unwrap()
}

fn active(expr: &str, t: &str) -> bool {
    e(expr).active_at(Tz::UTC, at(t))
}

/// Does the expression match the whole local day `y-m-d` at noon (seconds all `*`)?
fn day(expr: &str, y: i32, m: u32, d: u32) -> bool {
    let n = NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap();
    e(expr).matches_local(n)
}

#[test]
fn window_starts_one_second_early() {
    let p = "* * 9-17 * * * *";
    assert!(active(p, "2026-11-25T08:59:59Z"));
    assert!(active(p, "2026-11-25T08:59:59.999Z"));
    assert!(!active(p, "2026-11-25T08:59:58.999Z"));
}

#[test]
fn window_last_second_is_outside() {
    let p = "* * 9-17 * * * *";
    assert!(active(p, "2026-11-25T17:59:58Z"));
    assert!(!active(p, "2026-11-25T17:59:59Z"));
}

#[test]
fn five_field_expression_is_active_one_second_a_minute() {
    let p = "* 9-17 * * mon-fri";
    assert!(
        active(p, "2026-11-25T10:00:59Z"),
        "floor + 1 s = 10:01:00, second 0"
    );
    assert!(!active(p, "2026-11-25T10:00:30Z"));
    assert!(e(p).seconds_restricted());
    assert!(!e("* * 9-17 * * mon-fri *").seconds_restricted());
}

#[test]
fn six_field_expression_is_minute_first_with_a_year() {
    let p = e("* 9-17 * * * 2027");
    assert_eq!(p.field_count(), 6);
    assert!(p.seconds_restricted());
    assert!(active("* 9-17 * * * 2027", "2027-03-01T10:00:59Z"));
    assert!(!active("* 9-17 * * * 2027", "2026-03-01T10:00:59Z"));
}

#[test]
fn day_of_week_zero_and_seven_are_sunday() {
    // 2026-11-22 is a Sunday.
    assert!(day("* * * * * 0 *", 2026, 11, 22));
    assert!(day("* * * * * 7 *", 2026, 11, 22));
    assert!(!day("* * * * * 7 *", 2026, 11, 23));
}

#[test]
fn reversed_ranges_are_empty() {
    for p in [
        "* * * * * sat-sun *",
        "* * * * * mon-sun *",
        "* * * * * 5-7 *",
    ] {
        let x = e(p);
        assert!(x.is_never(), "{p}");
        assert!(!x.reversed_ranges().is_empty());
        for d in 22..=28 {
            assert!(!day(p, 2026, 11, d), "{p} on {d}");
        }
    }
    assert!(!e("* * * * * sat,sun *").is_never());
}

#[test]
fn restricted_dom_and_dow_match_either() {
    let p = "* * * 1 * mon *";
    assert!(day(p, 2026, 12, 1), "the 1st (a Tuesday)");
    assert!(day(p, 2026, 12, 7), "a Monday");
    assert!(!day(p, 2026, 12, 8));
    // Only dom restricted: dow `*` does not widen it.
    assert!(!day("* * * 1 * * *", 2026, 12, 7));
    // `?` is as unrestricted as `*`.
    assert!(!day("* * * 1 * ? *", 2026, 12, 7));
}

#[test]
fn dom_last_day_of_month() {
    let p = "* * * L * * *";
    assert!(day(p, 2028, 2, 29));
    assert!(!day(p, 2028, 2, 28));
    assert!(day(p, 2026, 4, 30));
}

#[test]
fn dom_last_weekday_of_month() {
    // 2026-05-31 is a Sunday, so the last weekday is Friday the 29th.
    assert!(day("* * * LW * * *", 2026, 5, 29));
    assert!(!day("* * * LW * * *", 2026, 5, 31));
}

#[test]
fn dom_nearest_weekday_stays_in_month() {
    // 2026-11-15 is a Sunday: 15W is Monday the 16th.
    assert!(day("* * * 15W * * *", 2026, 11, 16));
    assert!(!day("* * * 15W * * *", 2026, 11, 15));
    // 2026-08-01 is a Saturday: 1W moves forward to Monday the 3rd, not back into July.
    assert!(day("* * * 1W * * *", 2026, 8, 3));
}

#[test]
fn dow_nth_weekday_of_month() {
    // Third Friday of November 2026 is the 20th.
    assert!(day("* * * * * 5#3 *", 2026, 11, 20));
    assert!(!day("* * * * * 5#3 *", 2026, 11, 13));
}

#[test]
fn dow_last_weekday_of_month() {
    // Last Friday of November 2026 is the 27th.
    assert!(day("* * * * * 5L *", 2026, 11, 27));
    assert!(!day("* * * * * 5L *", 2026, 11, 20));
}

#[test]
fn names_are_case_insensitive_and_full_names_accepted() {
    assert!(day("* * * * DEC Monday *", 2026, 12, 7));
    assert!(day("* * * * december MON *", 2026, 12, 7));
    assert!(!day("* * * * Jan mon *", 2026, 12, 7));
}

#[test]
fn steps_on_wildcards_values_and_ranges() {
    assert!(active("* */15 * * * * *", "2026-11-25T10:29:59Z"));
    assert!(!active("* */15 * * * * *", "2026-11-25T10:31:00Z"));
    assert!(active("* * 10-20/5 * * * *", "2026-11-25T15:30:00Z"));
    assert!(!active("* * 10-20/5 * * * *", "2026-11-25T16:30:00Z"));
    assert!(active("* 5/20 * * * * *", "2026-11-25T10:45:30Z"));
    assert!(!active("* 5/20 * * * * *", "2026-11-25T10:50:30Z"));
}

#[test]
fn bad_expressions_are_refused_naming_the_expression() {
    for bad in [
        "* * *",
        "* * 25 * * * *",
        "* */0 * * * * *",
        "* * * * * 8 *",
        "* * * 32 * * *",
        "* * * * * * 1969",
        "* * 9-17 * * mon-fri-sat *",
        "* * * * * 5#6 *",
        "nonsense at all in here",
    ] {
        let err = CronExpr::parse(bad).unwrap_err();
        assert!(err.to_string().contains(bad), "{err}");
    }
}

#[test]
fn fields_past_the_seventh_are_ignored() {
    assert!(CronExpr::parse("* * * * * * * extra").is_ok());
}

#[test]
fn active_entry_replaces_all_four_idle_settings() {
    let m = "IdleCount = 10\nIdleTime = 1800\nIdleCountMin = 3\nIdleScaleFactor = 0.5\n[[runners.machine.autoscaling]]\nPeriods = [\"* * * * * * *\"]\nIdleCount = 5\nTimezone = \"UTC\"\n";
    let s = settings("", "", m);
    let eff = s.effective_at(t0());
    assert_eq!(eff.entry, Some(0));
    assert_eq!(eff.idle.idle_count, 5);
    assert_eq!(
        eff.idle.idle_time, 0,
        "no fallback to [runners.machine] IdleTime"
    );
    assert_eq!(eff.idle.idle_count_min, 0);
    assert_eq!(eff.idle.idle_scale_factor, 0.0);
}

#[test]
fn entry_without_periods_is_never_active() {
    let m = "IdleCount = 2\n[[runners.machine.autoscaling]]\nIdleCount = 9\nTimezone = \"UTC\"\n";
    let s = settings("", "", m);
    assert_eq!(s.effective_at(t0()).entry, None);
    assert_eq!(s.effective_at(t0()).idle.idle_count, 2);
}

#[test]
fn next_change_follows_dst_in_the_entry_time_zone() {
    let m = "[[runners.machine.autoscaling]]\nPeriods = [\"* * 9-17 * * * *\"]\nIdleCount = 4\nTimezone = \"Europe/Berlin\"\n";
    let s = settings("", "", m);
    // Sat 2026-03-28 is CET (+1), Sun 2026-03-29 is CEST (+2) from 01:00Z.
    let ch = s.changes(at("2026-03-28T00:00:00Z"), at("2026-03-30T00:00:00Z"));
    let times: Vec<String> = ch.iter().map(|(t, _)| t.to_rfc3339()).collect();
    assert_eq!(
        times,
        vec![
            "2026-03-28T07:59:59.000Z",
            "2026-03-28T16:59:59.000Z",
            "2026-03-29T06:59:59.000Z",
            "2026-03-29T15:59:59.000Z",
        ]
    );
}

#[test]
fn next_change_over_a_year_finds_every_weekday_boundary() {
    let m = "IdleCount = 1\n[[runners.machine.autoscaling]]\nPeriods = [\"* * 9-17 * * mon-fri *\"]\nIdleCount = 50\nTimezone = \"America/New_York\"\n";
    let s = settings("", "", m);
    let ch = s.changes(at("2027-01-01T00:00:00Z"), at("2028-01-01T00:00:00Z"));
    // 2027 has 261 weekdays: each opens and closes a window.
    assert_eq!(ch.len(), 2 * 261);
    assert!(ch.iter().step_by(2).all(|(_, e)| e.entry == Some(0)));
    assert!(ch.iter().skip(1).step_by(2).all(|(_, e)| e.entry.is_none()));
}

#[test]
fn next_change_is_the_first_instant_the_entry_differs() {
    let s = settings("", "", common_tutorial_machine());
    let from = at("2026-11-25T12:00:00Z");
    let c = s.next_change(from, at("2026-12-25T00:00:00Z")).unwrap();
    assert_eq!(c, at("2026-11-25T17:59:59Z"));
    assert_eq!(s.effective_at(c).entry, None);
    assert_eq!(s.effective_at(c.plus_millis(-1)).entry, Some(0));
    assert_eq!(
        s.next_change(from, at("2026-11-25T17:00:00Z")),
        None,
        "beyond the horizon"
    );
}

#[test]
fn empty_or_local_time_zone_is_the_host_zone() {
    for tz in ["", "Local"] {
        let m = format!(
            "[[runners.machine.autoscaling]]\nPeriods = [\"* * 9-17 * * * *\"]\nIdleCount = 4\nTimezone = \"{tz}\"\n"
        );
        let cfg = config("", "", &m);
        let r = cfg.runner(None).unwrap();
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        let s = cfg.settings(r, tokyo);
        // 01:00Z is 10:00 in Tokyo.
        assert_eq!(
            s.effective_at(at("2026-11-25T01:00:00Z")).entry,
            Some(0),
            "{tz:?}"
        );
        assert_eq!(
            s.effective_at(at("2026-11-25T12:00:00Z")).entry,
            None,
            "{tz:?}"
        );
    }
}

fn common_tutorial_machine() -> &'static str {
    "IdleCount = 1\nIdleTime = 1800\n[[runners.machine.autoscaling]]\nPeriods = [\"* * 9-17 * * mon-fri *\"]\nIdleCount = 50\nIdleTime = 3600\nTimezone = \"UTC\"\n[[runners.machine.autoscaling]]\nPeriods = [\"* * * * * sat,sun *\"]\nIdleCount = 5\nIdleTime = 60\nTimezone = \"UTC\"\n"
}
