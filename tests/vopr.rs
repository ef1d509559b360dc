//! A randomized whole-system test in the spirit of TigerBeetle's VOPR: one seed derives a
//! config (limits, periods, idle settings, MaxBuilds, MaxGrowthRate, either engine), a trace
//! (bursty, quiet, overlapping jobs) and a world (boot times, creation failures, frequent
//! interruptions, removal delays); the simulator runs it and every invariant is checked.
//!
//! Every run also splits its cost over its jobs (`--by job`, either attribution rule): the
//! per-job costs are non-negative and add up to the run's cost, and attributing changes no
//! other figure.
//!
//! `cargo test` runs 300 seeds. More: `SCALECAST_FUZZ_SEEDS=100000 cargo test --release
//! --test vopr` (from seed `SCALECAST_FUZZ_FROM`, 0 unless given). One seed:
//! `SCALECAST_FUZZ_SEED=N cargo test --test vopr`. A failure names its seed, and that seed
//! reproduces it.

use scalecast::config::ConfigFile;
use scalecast::core::{Action, ActionKind, Engine, EngineKind, Event, EventKind, Settings, Time};
use scalecast::drive::EventLog;
use scalecast::rng::Rng;
use scalecast::sim::attribution::{AttributionSpec, Rule};
use scalecast::sim::{
    Boot, NoObserver, Observer, SimConfig, VariantResult, WorldModel, WorldOverrides,
};
use scalecast::trace::keys::{KeyKind, Keys};
use scalecast::trace::{TraceJob, TraceResult};
use std::collections::BTreeMap;
use std::path::Path;

const PERIODS: [&str; 6] = [
    "* * 9-17 * * mon-fri *",
    "* * * * * sat,sun *",
    "* */2 * * * * *",
    "* 0-29 * * * * *",
    "* * 0-5 * * * *",
    "* * * * * 1-5 *",
];

struct Case {
    settings: Settings,
    engine: EngineKind,
    world: WorldModel,
    jobs: Vec<TraceJob>,
    end: Option<Time>,
    config: String,
}

fn pick<'a>(r: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[r.below(xs.len() as u64) as usize]
}

/// Everything of one run, derived from its seed.
fn case(seed: u64) -> Case {
    let mut r = Rng::derive(seed, "vopr config");
    let concurrent = 1 + r.below(12);
    let limit = [0, 0, 1 + r.below(15)][r.below(3) as usize];
    let mut machine = format!(
        "IdleCount = {}\nIdleTime = {}\nMaxBuilds = {}\nMaxGrowthRate = {}\n",
        [0, 0, 1, 2, 5, 10][r.below(6) as usize],
        [0, 1, 30, 300, 1800][r.below(5) as usize],
        [0, 0, 1, 2, 5][r.below(5) as usize],
        [0, 0, 1, 3][r.below(4) as usize],
    );
    if r.below(3) == 0 {
        machine.push_str(&format!(
            "IdleCountMin = {}\nIdleScaleFactor = {:.1}\n",
            r.below(4),
            r.below(20) as f64 / 10.0
        ));
    }
    for _ in 0..r.below(3) {
        machine.push_str(&format!(
            "[[runners.machine.autoscaling]]\nPeriods = [{:?}]\nTimezone = {:?}\nIdleCount = {}\nIdleTime = {}\n",
            pick(&mut r, &PERIODS),
            pick(&mut r, &["UTC", "Europe/Berlin", "America/New_York"]),
            r.below(8),
            [0, 60, 600][r.below(3) as usize],
        ));
    }
    let config = format!(
        "concurrent = {concurrent}\ncheck_interval = {}\n[[runners]]\nname = \"r\"\nexecutor = \"docker+machine\"\nlimit = {limit}\n[runners.machine]\n{machine}",
        [0, 1, 3, 10][r.below(4) as usize]
    );
    let cfg = ConfigFile::parse(Path::new("vopr.toml"), &config)
        .unwrap_or_else(|e| panic!("seed {seed}: generated config does not parse: {e}\n{config}"));
    let settings = cfg.settings(cfg.runner(None).unwrap(), chrono_tz::Tz::UTC);
    let engine = if r.below(2) == 0 {
        EngineKind::Scalecast
    } else {
        EngineKind::DockerMachine
    };

    let mut w = Rng::derive(seed, "vopr world");
    let o = WorldOverrides {
        boot: Some(match w.below(3) {
            0 => Boot::Fixed(w.below(200) as f64),
            1 => Boot::LogNormal {
                median: 60.0,
                p95: 240.0,
            },
            _ => Boot::Samples(vec![0.0, 5.0, 90.0, 600.0]),
        }),
        price_per_hour: Some(0.1 + w.below(10) as f64 / 10.0),
        interruptions_per_hour: Some([0.0, 0.05, 0.5, 3.0][w.below(4) as usize]),
        create_failure_probability: Some([0.0, 0.1, 0.5][w.below(3) as usize]),
        create_retry_seconds: Some(w.below(120) as f64),
        remove_seconds: Some([0.0, 10.0, 300.0][w.below(3) as usize]),
        ..Default::default()
    };
    let world = WorldModel::resolve("m5.large", "us-east-1", true, 16.0, &o).unwrap();

    let mut t = Rng::derive(seed, "vopr trace");
    let start = Time::parse_rfc3339("2026-11-06T18:00:00Z").unwrap();
    let n = 1 + t.below(250);
    let mut jobs = Vec::new();
    let mut at = start;
    for id in 0..n {
        // Bursts (many at one instant), quiet stretches, and long jobs that overlap.
        let gap_s = match t.below(10) {
            0..=3 => 0,
            4..=7 => t.below(120) as i64,
            8 => t.below(3600) as i64,
            _ => t.below(6 * 3600) as i64,
        };
        at = at.plus_secs(gap_s);
        let duration_ms = match t.below(4) {
            0 => t.below(5_000) as i64,
            1 | 2 => 1_000 * t.below(900) as i64,
            _ => 1_000 * t.below(4 * 3600) as i64,
        };
        jobs.push(TraceJob {
            id: 1000 + id,
            arrival: at,
            duration_ms,
            queued_ms: None,
        });
    }
    let end = (t.below(2) == 0).then(|| at.plus_secs(t.below(4 * 3600) as i64));
    Case {
        settings,
        engine,
        world,
        jobs,
        end,
        config,
    }
}

/// Records what the simulator did and checks the engine's caps after every instant.
#[derive(Default)]
struct Watch {
    events: Vec<Event>,
    actions: Vec<Action>,
    done: BTreeMap<u64, u32>,
    /// machine -> (created, gone)
    life: BTreeMap<u64, (Time, Option<Time>)>,
    violations: Vec<String>,
    caps: (u32, u32, u32, u32),
}

impl Observer for Watch {
    fn job_done(&mut self, id: u64, _a: Time, _s: Time, _e: Time, _w: i64) {
        *self.done.entry(id).or_default() += 1;
    }
    fn event(&mut self, e: &Event) {
        if let EventKind::MachineGone { machine } | EventKind::MachineFailed { machine } = e.kind
            && let Some(l) = self.life.get_mut(&machine)
        {
            l.1 = Some(e.at);
        }
        self.events.push(e.clone());
    }
    fn action(&mut self, a: &Action) {
        if let ActionKind::CreateMachine { machine, .. } = a.kind {
            self.life.insert(machine, (a.at, None));
        }
        self.actions.push(a.clone());
    }
    fn state(&mut self, at: Time, e: &Engine) {
        let (concurrent, limit, growth, cap) = self.caps;
        let c = e.fleet().counts();
        let j = e.jobs();
        let mut bad = |what: String| {
            if self.violations.len() < 5 {
                self.violations.push(format!("at {at}: {what}"));
            }
        };
        if j.in_flight() > concurrent {
            bad(format!(
                "{} jobs in flight > concurrent {concurrent}",
                j.in_flight()
            ));
        }
        if j.running() > cap {
            bad(format!("{} jobs running > cap {cap}", j.running()));
        }
        if limit > 0 && c.total() > limit {
            bad(format!("{} machines > limit {limit}", c.total()));
        }
        if growth > 0 && c.creating > growth {
            bad(format!("{} creating > MaxGrowthRate {growth}", c.creating));
        }
    }
}

/// An event log that keeps what it is given, to check the driver writes every event first.
#[derive(Default)]
struct Kept {
    events: Vec<Event>,
    closed: bool,
}

impl EventLog for Kept {
    type Error = std::convert::Infallible;
    fn append(&mut self, events: &[Event]) -> Result<(), Self::Error> {
        self.events.extend_from_slice(events);
        Ok(())
    }
    fn close(&mut self, _engine: &Engine) -> Result<(), Self::Error> {
        self.closed = true;
        Ok(())
    }
}

/// Every job its own key.
fn per_job(seed: u64, c: &Case) -> AttributionSpec {
    let mut keys = Keys::new(KeyKind::Job);
    for j in &c.jobs {
        keys.insert(j.id, Some(&j.id.to_string()));
    }
    AttributionSpec {
        keys: std::sync::Arc::new(keys),
        rule: if seed.is_multiple_of(2) {
            Rule::NextJob
        } else {
            Rule::Spread
        },
    }
}

fn run(seed: u64, c: &Case) -> (VariantResult, Watch) {
    run_with(seed, c, Some(per_job(seed, c)))
}

fn sim_config(seed: u64, c: &Case, attribution: Option<AttributionSpec>) -> SimConfig {
    SimConfig {
        name: format!("seed {seed}"),
        settings: c.settings.clone(),
        engine: c.engine,
        world: c.world.clone(),
        seed,
        start: None,
        end: c.end,
        tz: chrono_tz::Tz::UTC,
        attribution,
    }
}

fn run_with(seed: u64, c: &Case, attribution: Option<AttributionSpec>) -> (VariantResult, Watch) {
    let cfg = sim_config(seed, c, attribution);
    let s = &c.settings;
    let mut watch = Watch {
        caps: (s.concurrent, s.limit, s.max_growth_rate, s.job_cap()),
        ..Default::default()
    };
    let mut arrivals = c.jobs.iter().copied().map(Ok::<_, _>);
    let arrivals: &mut dyn Iterator<Item = TraceResult<TraceJob>> = &mut arrivals;
    let mut kept = Kept::default();
    let r =
        scalecast::sim::run::simulate_logged(&cfg, arrivals, &mut watch, &mut |_| {}, &mut kept)
            .unwrap_or_else(|e| fail(seed, c, &format!("the run aborted: {e}")));
    if kept.events != watch.events || !kept.closed {
        fail(
            seed,
            c,
            "the log did not get exactly the events the engine applied",
        );
    }
    (r, watch)
}

fn fail(seed: u64, c: &Case, what: &str) -> ! {
    panic!(
        "seed {seed}: {what}\n  engine {:?}, {} jobs, end {:?}\n  config:\n{}\n  reproduce: SCALECAST_FUZZ_SEED={seed} cargo test --test vopr",
        c.engine,
        c.jobs.len(),
        c.end,
        c.config
    )
}

/// The recorded events again, through a fresh engine, with extra ticks in between: the
/// actions must be exactly the same. (Extra ticks fall between instants: a tick placed at an
/// instant before that instant's other events would let a poll see half of them.)
fn replay_with_extra_ticks(seed: u64, c: &Case, w: &Watch) {
    let Some(first) = w.events.first() else {
        return;
    };
    let mut r = Rng::derive(seed, "vopr ticks");
    let mut e = Engine::new(c.engine, c.settings.clone(), first.at);
    let mut actions = Vec::new();
    let mut prev = first.at;
    for ev in &w.events {
        // A tick at `t` comes after every other event at `t` (the driver's contract), so it
        // lands anywhere from the previous instant, after its events, to just before this one.
        if ev.at > prev && r.below(3) == 0 {
            let span = ev.at.since(prev) as u64;
            let t = prev.plus_millis(r.below(span) as i64);
            e.handle(&Event::new(t, EventKind::Tick))
                .unwrap_or_else(|err| fail(seed, c, &format!("extra tick refused: {err}")));
            actions.extend(e.drain_actions());
        }
        e.handle(ev)
            .unwrap_or_else(|err| fail(seed, c, &format!("replayed event refused: {err}")));
        actions.extend(e.drain_actions());
        prev = ev.at;
    }
    if actions != w.actions {
        let i = actions
            .iter()
            .zip(&w.actions)
            .position(|(a, b)| a != b)
            .unwrap_or(actions.len().min(w.actions.len()));
        fail(
            seed,
            c,
            &format!(
                "extra ticks changed action {i}: {:?} instead of {:?}",
                actions.get(i),
                w.actions.get(i)
            ),
        );
    }
}

fn check(seed: u64) {
    let c = case(seed);
    let (r, w) = run(seed, &c);
    if let Some(v) = w.violations.first() {
        fail(seed, &c, v);
    }
    // Every job finished exactly once, or is reported unfinished.
    if let Some((id, n)) = w.done.iter().find(|(_, n)| **n > 1) {
        fail(seed, &c, &format!("job {id} finished {n} times"));
    }
    if w.done.len() as u64 + r.jobs_unfinished != r.jobs {
        fail(
            seed,
            &c,
            &format!(
                "{} finished + {} unfinished != {} jobs",
                w.done.len(),
                r.jobs_unfinished,
                r.jobs
            ),
        );
    }
    if c.end.is_none() && r.jobs != c.jobs.len() as u64 {
        fail(
            seed,
            &c,
            &format!("{} of {} jobs simulated", r.jobs, c.jobs.len()),
        );
    }
    // Billed machine-time is the sum of every machine's lifetime.
    let end = r.end;
    let lived_ms: i64 = w
        .life
        .values()
        .map(|(from, to)| to.unwrap_or(end).min(end).since(*from).max(0))
        .sum();
    let h = &r.machine_hours;
    let billed_ms = (h.booting + h.idle + h.busy + h.removing) * 3.6e6;
    if (billed_ms - lived_ms as f64).abs() > 1e-6 * (lived_ms as f64).max(1.0) {
        fail(
            seed,
            &c,
            &format!("billed {billed_ms} ms of machine time, machines lived {lived_ms} ms"),
        );
    }
    // Every dollar is some job's: none negative, the sum the run's cost to the cent.
    let by =
        r.by.as_ref()
            .unwrap_or_else(|| fail(seed, &c, "no breakdown"));
    if let Some(k) = by.keys.iter().find(|k| k.cost_usd < -1e-12) {
        fail(seed, &c, &format!("job {} costs {}", k.key, k.cost_usd));
    }
    if (by.total() - r.cost_usd).abs() > 0.005 || by.keys.len() as u64 > r.jobs {
        fail(
            seed,
            &c,
            &format!(
                "per-job costs sum to {} over {} jobs, the run cost {} over {}",
                by.total(),
                by.keys.len(),
                r.cost_usd,
                r.jobs
            ),
        );
    }
    if by.unattributed_usd > 0.0 && r.jobs > 0 {
        fail(seed, &c, "dollars left unattributed though jobs arrived");
    }
    // Attributing changes no other figure.
    if seed.is_multiple_of(5) {
        let (plain, _) = run_with(seed, &c, None);
        let mut r2 = r.clone();
        r2.by = None;
        if serde_json::to_vec(&plain).unwrap() != serde_json::to_vec(&r2).unwrap() {
            fail(seed, &c, "attributing the cost changed the run");
        }
    }
    // Unwatched and unlogged, the simulator handles a quiet engine's ticks at once: the
    // results are byte-identical to handing it every tick.
    let unwatched = {
        let cfg = sim_config(seed, &c, Some(per_job(seed, &c)));
        let mut arrivals = c.jobs.iter().copied().map(Ok::<_, _>);
        scalecast::sim::run::simulate(&cfg, &mut arrivals, &mut NoObserver, &mut |_| {})
            .unwrap_or_else(|e| fail(seed, &c, &format!("the unwatched run aborted: {e}")))
    };
    if serde_json::to_vec(&unwatched).unwrap() != serde_json::to_vec(&r).unwrap() {
        fail(seed, &c, "handling quiet ticks at once changed the run");
    }
    // The same seed gives byte-identical results.
    let (again, _) = run(seed, &c);
    if serde_json::to_vec(&again).unwrap() != serde_json::to_vec(&r).unwrap() {
        fail(seed, &c, "a second run of the same seed differs");
    }
    replay_with_extra_ticks(seed, &c, &w);
}

#[test]
fn randomized_whole_system_runs_keep_every_invariant() {
    if let Ok(one) = std::env::var("SCALECAST_FUZZ_SEED") {
        check(one.parse().expect("SCALECAST_FUZZ_SEED is a number"));
        return;
    }
    let seeds: u64 = std::env::var("SCALECAST_FUZZ_SEEDS")
        .ok()
        .map(|s| s.parse().expect("SCALECAST_FUZZ_SEEDS is a number"))
        .unwrap_or(300);
    // Where the range starts, to try seeds no run has tried yet.
    let from: u64 = std::env::var("SCALECAST_FUZZ_FROM")
        .ok()
        .map(|s| s.parse().expect("SCALECAST_FUZZ_FROM is a number"))
        .unwrap_or(0);
    for seed in from..from + seeds {
        check(seed);
    }
}
