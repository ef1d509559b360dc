//! The daemon on an in-process fake cloud, for what moto cannot be made to do on demand: a spot
//! interruption notice, an instance that vanishes under a running job, a cloud that throttles
//! every call. The daemon runs in a thread of this test; the test talks to it through the
//! executor socket, as GitLab Runner would.
#![cfg(feature = "live")]

mod common;

use scalecast::live::cloud::{Cloud, CloudError, CreateRequest, Instance, InstanceState};
use scalecast::live::daemon::{Options, serve};
use scalecast::live::protocol::{Request, Response, Status, call};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct World {
    instances: Vec<Instance>,
    next: u32,
    /// Every create call is throttled while set.
    throttle: bool,
    creates: u32,
    /// Every list call hangs (never answers) while set.
    hang_list: bool,
    /// Every list call takes its list when called, then answers only once this is unset
    /// (an answer that other calls overtake).
    hold_list: bool,
    lists: u32,
    /// The instance type and market EC2 gives (a capacity fallback made elsewhere), instead
    /// of the configured m5.large on spot.
    gives: Option<(String, bool)>,
    /// This many create calls find no capacity before one is answered; an answered one
    /// then gives the type and market it asked for.
    short: u32,
    /// Every terminate call hangs (never answers) while set.
    hang_terminate: bool,
    terminates: u32,
    /// Every create call hangs (never answers) while set.
    hang_create: bool,
    /// This many list calls fail (the cloud unreachable) before one is answered.
    fail_lists: u32,
    /// The instances made while set are not listed until it is unset (EC2's list lagging
    /// a launch).
    hide: bool,
    hidden: Vec<String>,
    /// Every answered create's client token, user data and instance, in order: a create with
    /// a token seen before answers as EC2 does, with the same instance when it asks the same,
    /// and `IdempotentParameterMismatch` when it asks something else.
    made: Vec<(String, Option<String>, Instance)>,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<World>>);

impl Fake {
    fn alive(&self) -> Vec<Instance> {
        let w = self.0.lock().unwrap();
        w.instances
            .iter()
            .filter(|i| i.state.alive())
            .cloned()
            .collect()
    }
    /// Wait (every 20 ms, at most `secs` seconds) until the fake's world is as `f` asks.
    fn until(&self, secs: u64, what: &str, f: impl Fn(&World) -> bool) {
        until(
            secs,
            || what.to_string(),
            || f(&self.0.lock().unwrap()).then_some(()),
        );
    }
    fn set(&self, id: &str, f: impl FnOnce(&mut Instance)) {
        let mut w = self.0.lock().unwrap();
        f(w.instances.iter_mut().find(|i| i.id == id).unwrap());
    }
}

impl Cloud for Fake {
    async fn create(&self, req: &CreateRequest) -> Result<Instance, CloudError> {
        let hang = {
            let mut w = self.0.lock().unwrap();
            w.creates += 1;
            w.hang_create
        };
        if hang {
            std::future::pending::<()>().await;
        }
        let mut w = self.0.lock().unwrap();
        if w.throttle {
            return Err(CloudError::from_code("RequestLimitExceeded", "slow down"));
        }
        if w.short > 0 {
            w.short -= 1;
            return Err(CloudError::from_code(
                "InsufficientInstanceCapacity",
                "no capacity in eu-central-1a",
            ));
        }
        let token = req.client_token();
        if let Some((_, user_data, i)) = w.made.iter().find(|m| m.0 == token) {
            return if *user_data == req.user_data {
                Ok(i.clone())
            } else {
                Err(CloudError::from_code(
                    "IdempotentParameterMismatch",
                    "the client token was used for another request",
                ))
            };
        }
        w.next += 1;
        let asked = (
            req.instance_type.clone().unwrap_or("m5.large".into()),
            !req.on_demand,
        );
        let (instance_type, spot) = w.gives.clone().unwrap_or(asked);
        let i = Instance {
            id: format!("i-{:04}", w.next),
            machine: Some(req.machine),
            state: InstanceState::Running,
            spot,
            instance_type,
            notice: false,
            address: None,
        };
        w.instances.push(i.clone());
        if w.hide {
            w.hidden.push(i.id.clone());
        }
        w.made.push((token, req.user_data.clone(), i.clone()));
        Ok(i)
    }
    async fn terminate(&self, id: &str) -> Result<(), CloudError> {
        let hang = {
            let mut w = self.0.lock().unwrap();
            w.terminates += 1;
            w.hang_terminate
        };
        if hang {
            std::future::pending::<()>().await;
        }
        let mut w = self.0.lock().unwrap();
        if let Some(i) = w.instances.iter_mut().find(|i| i.id == id) {
            i.state = InstanceState::Terminated;
        }
        Ok(())
    }
    async fn list(&self, _manager: &str) -> Result<Vec<Instance>, CloudError> {
        let (hang, hold) = {
            let mut w = self.0.lock().unwrap();
            w.lists += 1;
            if w.fail_lists > 0 {
                w.fail_lists -= 1;
                return Err(CloudError::Unreachable("connection reset".into()));
            }
            (w.hang_list, w.hold_list)
        };
        if hang {
            std::future::pending::<()>().await;
        }
        let hidden = self.0.lock().unwrap().hidden.clone();
        let mut listed = self.alive();
        listed.retain(|i| !hidden.contains(&i.id));
        if hold {
            while self.0.lock().unwrap().hold_list {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        Ok(listed)
    }
}

struct Running {
    state: PathBuf,
    /// Where its `/metrics` answers.
    metrics: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Its directory goes when it is dropped (not when a later start reuses it).
    owns_dir: bool,
}

impl Running {
    /// Stop the daemon (its journal closed) and keep its state for a look.
    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(self.state.parent().unwrap());
        }
    }
}

/// An empty directory for the test `name`.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = common::tmp().join(format!("fake-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The daemon with every cloud call given 300 ms (`call_timeout`).
fn impatient_daemon(name: &str, machine: &str, fake: Fake) -> Running {
    start_with(&fresh_dir(name), machine, fake, |o| {
        o.call_timeout = Duration::from_millis(300);
    })
}

fn daemon(name: &str, machine: &str, fake: Fake) -> Running {
    let dir = fresh_dir(name);
    start_in(&dir, machine, fake)
}

/// The daemon on `fake` in `dir` as it stands (its state kept from an earlier start).
fn start_in(dir: &Path, machine: &str, fake: Fake) -> Running {
    start_with(dir, machine, fake, |_| {})
}

/// [`start_in`] with its options changed by `tune`.
fn start_with(dir: &Path, machine: &str, fake: Fake, tune: impl FnOnce(&mut Options)) -> Running {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "concurrent = 4\n[[runners]]\nname = \"r\"\nexecutor = \"custom\"\nlimit = 4\n[runners.machine]\n{machine}\nMachineName = \"runner-%s\"\nMachineOptions = [\"amazonec2-region=eu-central-1\", \"amazonec2-instance-type=m5.large\", \"amazonec2-request-spot-instance=true\"]\n"
        ),
    )
    .unwrap();
    let state = dir.join("state");
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut opts = Options {
        ready_poll: Duration::from_millis(50),
        spot_poll: Duration::from_millis(100),
        metrics: Some(metrics),
        ..Options::new(config, None, state.clone())
    };
    tune(&mut opts);
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(tokio::task::LocalSet::new().run_until(async move {
            serve(&opts, fake, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        }));
    });
    Running {
        state,
        metrics,
        stop: Some(stop),
        thread: Some(thread),
        owns_dir: true,
    }
}

/// One request to the daemon, as the executor makes it.
fn ask(state: &Path, req: Request) -> Response {
    call(
        state,
        &req,
        Duration::from_secs(10),
        Duration::from_millis(20),
    )
    .unwrap()
}

/// A job's `prepare` with no keys, as the executor asks it; the daemon's answer.
fn prepare(state: &Path, job: u64) -> Response {
    ask(
        state,
        Request::Prepare {
            job,
            keys: Default::default(),
        },
    )
}

fn status(state: &Path) -> Status {
    match ask(state, Request::Status) {
        Response::Status(s) => *s,
        other => panic!("{other:?}"),
    }
}

/// Ask `f` every 20 ms until it has an answer, for at most `secs` seconds.
fn until<T>(secs: u64, what: impl Fn() -> String, mut f: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "timed out: {}",
            what()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The instance of the pool's one machine, once it is idle.
fn idle_instance(state: &Path) -> String {
    let s = wait_for(state, "an idle machine", |s| {
        s.machines.len() == 1 && s.machines[0].state == "idle"
    });
    s.machines[0].instance.clone().unwrap()
}

/// Every event in the journal of the daemon whose state directory is `state` (stopped).
fn journal_events(state: &Path) -> Vec<scalecast::core::Event> {
    let mut events = Vec::new();
    scalecast::journal::Reader::open(&state.join("journal"))
        .unwrap()
        .events(|_, e| events.push(e))
        .unwrap();
    events
}

/// The charges a stopped daemon journaled, in order, with their jobs.
fn journal_charges(state: &Path) -> Vec<(u64, Box<scalecast::core::Charge>)> {
    journal_events(state)
        .into_iter()
        .filter_map(|e| match e.kind {
            scalecast::core::EventKind::JobCharged { job, charge } => Some((job, charge)),
            _ => None,
        })
        .collect()
}

/// Ask the daemon to prepare `job` with `keys`; it must start at once (a machine is idle).
fn prepare_started(state: &Path, job: u64, keys: &scalecast::core::JobKeys) {
    let r = ask(
        state,
        Request::Prepare {
            job,
            keys: keys.clone(),
        },
    );
    assert!(matches!(r, Response::Started { .. }), "{r:?}");
}

/// The pool the restart tests keep: one idle machine.
const ONE_IDLE: &str = "IdleCount = 1\nIdleTime = 600";

/// A first start in a fresh directory `name` with [`ONE_IDLE`], once its machine is idle:
/// the fake, the directory (a later start reuses it), the daemon and the machine's instance.
fn first_idle_start(name: &str) -> (Fake, PathBuf, Running, String) {
    let fake = Fake::default();
    let dir = fresh_dir(name);
    let first = first_start(&dir, ONE_IDLE, fake.clone());
    let instance = idle_instance(&first.state);
    (fake, dir, first, instance)
}

/// A first start in `dir`, which a later start reuses: its directory stays when it is dropped.
fn first_start(dir: &Path, machine: &str, fake: Fake) -> Running {
    let mut r = start_in(dir, machine, fake);
    r.owns_dir = false;
    r
}

fn wait_for(state: &Path, what: &str, f: impl Fn(&Status) -> bool) -> Status {
    let last = std::cell::RefCell::new(None);
    until(
        20,
        || format!("waiting for {what}: {:#?}", last.borrow()),
        || {
            let s = status(state);
            let ok = f(&s);
            *last.borrow_mut() = Some(s.clone());
            ok.then_some(s)
        },
    )
}

#[test]
fn a_spot_notice_on_an_idle_machine_replaces_it() {
    let fake = Fake::default();
    let d = daemon("notice", ONE_IDLE, fake.clone());
    let first = idle_instance(&d.state);
    fake.set(&first, |i| i.notice = true);
    let s = wait_for(&d.state, "the replacement", |s| {
        s.machines.len() == 1 && s.machines[0].machine == 2 && s.machines[0].state == "idle"
    });
    assert_ne!(s.machines[0].instance.as_deref(), Some(first.as_str()));
    let alive: Vec<String> = fake.alive().into_iter().map(|i| i.id).collect();
    assert_eq!(
        alive,
        vec![s.machines[0].instance.clone().unwrap()],
        "the noticed one is terminated"
    );
}

/// A create that falls back on capacity is journaled with what it made (the fallback type, on
/// spot) and the attempt that found no capacity; `journal export` shows it.
#[test]
fn a_capacity_fallback_is_journaled_with_the_instance_it_made() {
    use scalecast::core::{Attempt, EventKind, Launch};
    let fake = Fake::default();
    fake.0.lock().unwrap().short = 1;
    let dir = fresh_dir("fallback");
    std::fs::write(
        dir.join("scalecast.toml"),
        "[capacity]\ninstance_types = [\"m5a.large\"]\n",
    )
    .unwrap();
    let mut d = start_in(&dir, "IdleCount = 0\nIdleTime = 600", fake.clone());
    let started = prepare(&d.state, 5);
    let Response::Started {
        machine,
        instance: Some(instance),
        ..
    } = started
    else {
        panic!("{started:?}")
    };
    assert_eq!(
        fake.0.lock().unwrap().creates,
        2,
        "one attempt, one fallback"
    );
    // The status says what the machine got.
    let s = status(&d.state);
    assert_eq!(s.machines[0].instance_type.as_deref(), Some("m5a.large"));
    assert_eq!(s.machines[0].spot, Some(true));
    d.stop();
    let launches: Vec<_> = journal_events(&d.state)
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::MachineLaunched { machine, launch } => Some((machine, *launch)),
            _ => None,
        })
        .collect();
    assert_eq!(
        launches,
        vec![(
            machine,
            Launch {
                instance,
                instance_type: "m5a.large".into(),
                spot: true,
                fell_back: vec![Attempt {
                    instance_type: "m5.large".into(),
                    spot: true,
                    error: CloudError::from_code(
                        "InsufficientInstanceCapacity",
                        "no capacity in eu-central-1a"
                    )
                    .to_string(),
                }],
            }
        )]
    );
    // `journal export` writes it as documented (docs/events.md).
    let journal = d.state.join("journal");
    let text = scalecast_ok(&["journal".as_ref(), "export".as_ref(), journal.as_os_str()]);
    let line = text
        .lines()
        .find(|l| l.contains("machine_launched"))
        .unwrap_or_else(|| panic!("{text}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["launch"]["instance_type"], "m5a.large", "{v}");
    assert_eq!(
        v["launch"]["fell_back"][0]["instance_type"], "m5.large",
        "{v}"
    );
    // And the machine's story tells it.
    let story = scalecast_ok(&[
        "journal".as_ref(),
        "machines".as_ref(),
        journal.as_os_str(),
        "--machine".as_ref(),
        machine.to_string().as_ref(),
    ]);
    assert!(
        story.contains(&format!(
            "launched {} as m5a.large spot; before it m5.large spot found no capacity",
            v["launch"]["instance"].as_str().unwrap()
        )),
        "{story}"
    );
}

/// The daemon with the periodic reconcile every 300 ms and the other lists rare (15 s), so the
/// next list call after start-up is the reconcile's.
fn reconciling_daemon(name: &str, fake: Fake) -> Running {
    let dir = fresh_dir(name);
    start_with(&dir, "IdleCount = 0\nIdleTime = 600", fake, |o| {
        o.reconcile_every = Duration::from_millis(300);
        o.spot_poll = Duration::from_secs(15);
    })
}

/// Once the daemon answers, set the fake's lists up with `set` and wait for the next list
/// call (the periodic reconcile's, with [`reconciling_daemon`]).
fn next_list_call(d: &Running, fake: &Fake, set: impl FnOnce(&mut World)) {
    status(&d.state);
    let before = {
        let mut w = fake.0.lock().unwrap();
        set(&mut w);
        w.lists
    };
    fake.until(20, "the periodic reconcile's list call", |w| {
        w.lists > before
    });
}

/// `f`'s answer, from another thread, within `secs` seconds (a call that blocks fails the test
/// rather than hanging it).
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("no answer within {secs} s: {what}"))
}

/// The periodic reconcile lists in the background: while its list call hangs, the daemon
/// still answers the executor and its metrics, and a job's prepare gets its machine created.
#[test]
fn a_hung_periodic_reconcile_holds_nothing_back() {
    let fake = Fake::default();
    let d = reconciling_daemon("reconcile-hung", fake.clone());
    next_list_call(&d, &fake, |w| w.hang_list = true);
    // Neither would answer if the loop waited on the list.
    let state = d.state.clone();
    let s = within(
        10,
        "the status while the reconcile's list hangs",
        move || status(&state),
    );
    assert!(s.machines.is_empty(), "{s:#?}");
    let addr = d.metrics;
    let m = within(
        10,
        "the metrics while the reconcile's list hangs",
        move || metrics(addr),
    );
    assert!(m.contains("scalecast_machines"), "{m}");
    let _waiting = prepare_aside(&d.state, 41, Default::default());
    fake.until(
        10,
        "the prepare's create while the reconcile's list hangs",
        |w| w.creates == 1,
    );
    let s = status(&d.state);
    assert_eq!(s.machines.len(), 1, "{s:#?}");
    // Unstick the list so the daemon can stop.
    fake.0.lock().unwrap().hang_list = false;
}

/// A start-up whose list fails adopts the journal's machines at a reconcile soon after, not
/// five minutes later: until then their instances are unknown.
#[test]
fn a_failed_start_up_list_is_reconciled_again_soon() {
    let fake = Fake::default();
    let dir = fresh_dir("start-up-list");
    let mut first = first_start(&dir, ONE_IDLE, fake.clone());
    let instance = idle_instance(&first.state);
    first.stop();
    fake.0.lock().unwrap().fail_lists = 1;
    let again = start_in(&dir, ONE_IDLE, fake.clone());
    let s = wait_for(
        &again.state,
        "the machine adopted after the failed list",
        |s| s.machines.len() == 1 && s.machines[0].instance.as_deref() == Some(instance.as_str()),
    );
    assert_eq!(s.machines[0].state, "idle", "{s:#?}");
    assert_eq!(fake.alive().len(), 1, "nothing leaked or doubled");
}

/// A list the cloud never answers counts as failed after `call_timeout`, and the instances
/// are listed again: a silent endpoint does not stop readiness and reconcile for good.
#[test]
fn a_list_that_never_answers_times_out_and_is_asked_again() {
    let fake = Fake::default();
    let d = impatient_daemon(
        "list-timeout",
        "IdleCount = 0\nIdleTime = 600",
        fake.clone(),
    );
    next_list_call(&d, &fake, |w| w.hang_list = true);
    let first = fake.0.lock().unwrap().lists;
    fake.until(10, "another list call after the hung one timed out", |w| {
        w.lists > first
    });
    // Once the cloud answers again, a job gets its machine.
    fake.0.lock().unwrap().hang_list = false;
    let started = prepare(&d.state, 3);
    assert!(matches!(started, Response::Started { .. }), "{started:?}");
}

/// A create the cloud never answers counts as failed after `call_timeout`: its machine fails,
/// and the pool is filled by another once the cloud answers again.
#[test]
fn a_create_that_never_answers_times_out_and_the_pool_is_filled_again() {
    let fake = Fake::default();
    fake.0.lock().unwrap().hang_create = true;
    let d = impatient_daemon("create-timeout", ONE_IDLE, fake.clone());
    fake.until(10, "the hung create call", |w| w.creates >= 1);
    fake.0.lock().unwrap().hang_create = false;
    let s = wait_for(
        &d.state,
        "an idle machine made after the hung create",
        |s| s.machines.len() == 1 && s.machines[0].state == "idle" && s.machines[0].machine > 1,
    );
    assert_eq!(fake.alive().len(), 1, "{s:#?}");
}

/// A terminate the cloud never answers counts as failed after `call_timeout` and is tried
/// again (after the back-off): the machine goes, rather than staying "removing" for good.
#[test]
fn a_terminate_that_never_answers_times_out_and_is_tried_again() {
    let fake = Fake::default();
    let d = impatient_daemon("terminate-timeout", ONE_IDLE, fake.clone());
    let first = idle_instance(&d.state);
    fake.0.lock().unwrap().hang_terminate = true;
    // A spot notice: the idle machine is removed (and replaced).
    fake.set(&first, |i| i.notice = true);
    fake.until(10, "the hung terminate call", |w| w.terminates >= 1);
    fake.0.lock().unwrap().hang_terminate = false;
    until(
        20,
        || format!("the terminate tried again: {:?}", fake.alive()),
        || (!fake.alive().iter().any(|i| i.id == first)).then_some(()),
    );
    let s = wait_for(&d.state, "the first machine gone", |s| {
        s.machines
            .iter()
            .all(|m| m.instance.as_deref() != Some(first.as_str()))
    });
    assert!(s.terminating_calls == 0, "{s:#?}");
}

/// A periodic reconcile's list that a create overtook (asked before the create, answered
/// after it: the new instance is not on it) is not trusted: the machine is neither created
/// again nor declared gone; the next list adopts its instance, and the job runs on it.
#[test]
fn a_reconcile_list_overtaken_by_a_create_is_listed_again() {
    let fake = Fake::default();
    let d = reconciling_daemon("reconcile-overtaken", fake.clone());
    next_list_call(&d, &fake, |w| w.hold_list = true);
    let waiting = prepare_aside(&d.state, 42, Default::default());
    fake.until(
        10,
        "the prepare's create while the reconcile's list is held",
        |w| w.creates == 1,
    );
    // Give the create's answer time to reach the daemon, then let the stale list answer.
    std::thread::sleep(Duration::from_millis(200));
    fake.0.lock().unwrap().hold_list = false;
    let started = waiting.join().unwrap();
    let Response::Started {
        instance: Some(instance),
        ..
    } = started
    else {
        panic!("{started:?}")
    };
    // Reconciles go on meanwhile (every 300 ms): none of them doubles the machine.
    std::thread::sleep(Duration::from_millis(800));
    let alive: Vec<String> = fake.alive().into_iter().map(|i| i.id).collect();
    assert_eq!(
        alive,
        vec![instance.clone()],
        "nothing doubled or terminated"
    );
    assert_eq!(
        fake.0.lock().unwrap().creates,
        1,
        "the machine was created once"
    );
    let s = status(&d.state);
    assert_eq!(s.machines.len(), 1, "{s:#?}");
    assert_eq!(s.machines[0].instance.as_deref(), Some(instance.as_str()));
}

/// The daemon holds its journal's lock while it runs; the `journal` commands read it all the
/// same (the daemon hands the records out over its socket), and leave no copy behind.
#[test]
fn the_journal_commands_read_a_running_daemons_journal() {
    let fake = Fake::default();
    let d = daemon("journal-live", ONE_IDLE, fake.clone());
    idle_instance(&d.state);
    let journal = d.state.join("journal");
    let copies = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy()
                    .starts_with("scalecast-journal-copy-")
            })
            .count()
    };
    let before = copies();
    let inspect = || {
        json_of(&[
            "journal".as_ref(),
            "inspect".as_ref(),
            journal.as_os_str(),
            "--json".as_ref(),
        ])
    };
    let v = inspect();
    let events = v["events"].as_u64().unwrap();
    assert!(events >= 3, "{v}");
    assert_eq!(v["by_kind"]["machine_ready"], 1, "{v}");
    // It keeps running and writing meanwhile: a later read sees more.
    let started = prepare(&d.state, 11);
    assert!(matches!(started, Response::Started { .. }), "{started:?}");
    scalecast_ok(&["journal".as_ref(), "verify".as_ref(), journal.as_os_str()]);
    let v = inspect();
    assert!(v["events"].as_u64().unwrap() > events, "{v}");
    // A forecast replays the running fleet's own jobs (`[trace] journal`).
    let cleaned = ask(&d.state, Request::Cleanup { job: 11 });
    assert!(matches!(cleaned, Response::Cleaned { .. }), "{cleaned:?}");
    let dir = d.state.parent().unwrap();
    let scenario = dir.join("scenario.toml");
    std::fs::write(
        &scenario,
        format!(
            "[runner]\nconfig = \"config.toml\"\n[trace]\njournal = \"{}\"\n",
            journal.display()
        ),
    )
    .unwrap();
    let v = json_of(&[
        "simulate".as_ref(),
        scenario.as_os_str(),
        "--json".as_ref(),
        "-".as_ref(),
        "--quiet".as_ref(),
    ]);
    assert_eq!(v["variants"][0]["jobs"], 1, "{v}");
    assert_eq!(copies(), before, "no copy left behind");
}

/// The reconcile's own calls are tasks of their own: an orphan's terminate that never answers
/// (at start-up, where the reconcile once waited on it) holds neither the executor socket nor
/// a job's machine.
#[test]
fn an_orphans_hung_terminate_at_reconcile_holds_nothing_back() {
    let fake = Fake::default();
    {
        let mut w = fake.0.lock().unwrap();
        w.instances.push(Instance {
            id: "i-orphan".into(),
            machine: Some(99),
            state: InstanceState::Running,
            spot: true,
            instance_type: "m5.large".into(),
            notice: false,
            address: None,
        });
        w.hang_terminate = true;
    }
    let d = daemon("orphan-hung", "IdleCount = 0\nIdleTime = 600", fake.clone());
    fake.until(20, "the orphan's terminate call", |w| w.terminates >= 1);
    let state = d.state.clone();
    let s = within(
        10,
        "the status while the orphan's terminate hangs",
        move || status(&state),
    );
    assert!(s.machines.is_empty(), "{s:#?}");
    let state = d.state.clone();
    let started = within(
        10,
        "a prepare while the orphan's terminate hangs",
        move || prepare(&state, 7),
    );
    assert!(matches!(started, Response::Started { .. }), "{started:?}");
}

/// A machine the journal has as being created, whose create never reached the cloud (the
/// daemon stopped first), is created again at the next start's reconcile as any machine is:
/// with the capacity fallbacks, and its launch journaled.
#[test]
fn a_machine_created_again_at_reconcile_falls_back_and_is_journaled() {
    use scalecast::core::EventKind;
    let fake = Fake::default();
    fake.0.lock().unwrap().hang_create = true;
    let dir = fresh_dir("recreate");
    std::fs::write(
        dir.join("scalecast.toml"),
        "[capacity]\ninstance_types = [\"m5a.large\"]\n",
    )
    .unwrap();
    let machine = ONE_IDLE;
    let mut first = first_start(&dir, machine, fake.clone());
    fake.until(20, "the first create call", |w| w.creates == 1);
    first.stop();
    {
        let mut w = fake.0.lock().unwrap();
        w.hang_create = false;
        w.short = 1;
    }
    let mut again = start_in(&dir, machine, fake.clone());
    let s = wait_for(&again.state, "the machine created again", |s| {
        s.machines.len() == 1 && s.machines[0].state == "idle"
    });
    assert_eq!(s.machines[0].machine, 1, "the same machine: {s:#?}");
    assert_eq!(s.machines[0].instance_type.as_deref(), Some("m5a.large"));
    assert_eq!(fake.alive().len(), 1, "one instance");
    again.stop();
    let launches: Vec<_> = journal_events(&again.state)
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::MachineLaunched { machine, launch } => {
                Some((machine, launch.instance_type, launch.fell_back.len()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(launches, vec![(1, "m5a.large".to_string(), 1)]);
}

/// A machine created again after a restart (the list did not show the instance its first
/// create made yet) sends the first create's user data, Docker's certificate included, so EC2
/// answers with that instance for the same client token instead of refusing the call as
/// another request; the machine keeps its instance and nothing is made twice. Its kept pair
/// goes with it.
#[test]
fn a_machine_created_again_sends_the_same_user_data_and_keeps_its_instance() {
    use scalecast::live::daemon::DockerOptions;
    let fake = Fake::default();
    fake.0.lock().unwrap().hide = true;
    let dir = fresh_dir("same-user-data");
    let machine = ONE_IDLE;
    let docker = |o: &mut Options| o.docker = Some(DockerOptions::default());
    let mut first = start_with(&dir, machine, fake.clone(), docker);
    first.owns_dir = false;
    fake.until(20, "the first create answered", |w| w.made.len() == 1);
    first.stop();
    let mut again = start_with(&dir, machine, fake.clone(), docker);
    fake.until(20, "the machine created again", |w| w.creates >= 2);
    let s = wait_for(&again.state, "machine 1 on its first instance", |s| {
        s.machines
            .iter()
            .any(|m| m.instance.as_deref() == Some("i-0001"))
    });
    assert_eq!(s.machines.len(), 1, "{s:#?}");
    assert_eq!(s.machines[0].machine, 1, "{s:#?}");
    {
        let w = fake.0.lock().unwrap();
        assert_eq!(w.made.len(), 1, "one instance made");
        assert!(
            w.made[0]
                .1
                .as_deref()
                .is_some_and(|u| u.contains("BEGIN CERTIFICATE"))
        );
    }
    let kept = again.state.join("ca").join("machines");
    assert!(kept.join("m1.pem").exists() && kept.join("m1-key.pem").exists());
    // The machine fails (its instance shut down while booting): its pair goes too.
    fake.0.lock().unwrap().hidden.clear();
    fake.set("i-0001", |i| i.state = InstanceState::ShuttingDown);
    wait_for(&again.state, "machine 1 gone", |s| {
        s.machines.iter().all(|m| m.machine != 1)
    });
    assert!(!kept.join("m1.pem").exists() && !kept.join("m1-key.pem").exists());
    again.stop();
}

/// A machine the journal has as being removed, whose instance is still there after a restart
/// (its terminate never answered), goes as soon as the reconcile's terminate answers, not at
/// a reconcile five minutes later.
#[test]
fn a_removed_machines_instance_found_at_reconcile_is_terminated_and_the_machine_goes() {
    let (fake, dir, mut first, noticed) = first_idle_start("reconcile-removing");
    let machine = ONE_IDLE;
    fake.0.lock().unwrap().hang_terminate = true;
    fake.set(&noticed, |i| i.notice = true);
    fake.until(20, "the noticed machine's terminate call", |w| {
        w.terminates >= 1
    });
    first.stop();
    fake.0.lock().unwrap().hang_terminate = false;
    let again = start_in(&dir, machine, fake.clone());
    let s = wait_for(&again.state, "the removed machine gone", |s| {
        s.machines.iter().all(|m| m.machine != 1)
    });
    assert!(
        !fake.alive().iter().any(|i| i.id == noticed),
        "its instance terminated: {s:#?}"
    );
}

/// A stop while the start-up reconcile waits on a cloud that does not answer ends the daemon
/// cleanly (it does not wait for the cloud); the next start adopts the machine it had, with no
/// instance leaked or doubled.
#[test]
fn a_stop_during_a_hung_start_up_reconcile_ends_the_daemon_and_the_next_start_adopts() {
    let fake = Fake::default();
    let machine = ONE_IDLE;
    let mut first = daemon("hung-reconcile", machine, fake.clone());
    let s = wait_for(&first.state, "the pool's machine", |s| {
        s.machines.len() == 1 && s.machines[0].state == "idle"
    });
    let instance = s.machines[0].instance.clone().unwrap();
    first.stop();
    first.owns_dir = false;
    let dir = first.state.parent().unwrap().to_path_buf();

    let listed = {
        let mut w = fake.0.lock().unwrap();
        w.hang_list = true;
        w.lists
    };
    let mut hung = start_in(&dir, machine, fake.clone());
    hung.owns_dir = false;
    fake.until(20, "the start-up reconcile's list call", |w| {
        w.lists > listed
    });
    let _ = hung.stop.take().unwrap().send(());
    let thread = hung.thread.take().unwrap();
    until(
        60,
        || "the daemon to stop while its reconcile hangs".into(),
        || thread.is_finished().then_some(()),
    );
    thread.join().expect("serve returned Ok");

    fake.0.lock().unwrap().hang_list = false;
    let again = start_in(&dir, machine, fake.clone());
    let s = wait_for(&again.state, "the machine adopted", |s| {
        s.machines.len() == 1 && s.machines[0].state == "idle"
    });
    assert_eq!(s.machines[0].instance.as_deref(), Some(instance.as_str()));
    let alive: Vec<String> = fake.alive().into_iter().map(|i| i.id).collect();
    assert_eq!(alive, vec![instance], "nothing leaked or doubled");
}

#[test]
fn a_running_jobs_vanished_machine_requeues_it_onto_another() {
    let fake = Fake::default();
    let d = daemon("vanish", "IdleCount = 0\nIdleTime = 600", fake.clone());
    let started = prepare(&d.state, 7);
    let Response::Started {
        machine, instance, ..
    } = started
    else {
        panic!("{started:?}")
    };
    assert_eq!(machine, 1);
    fake.set(&instance.unwrap(), |i| i.state = InstanceState::Terminated);
    // The machine is gone; the engine requeues the job and makes a machine for it.
    let s = wait_for(&d.state, "the job on a new machine", |s| {
        s.machines
            .iter()
            .any(|m| m.job == Some(7) && m.machine != 1)
    });
    assert!(s.machines.iter().all(|m| m.machine != 1), "{s:#?}");
    // Its cleanup then finishes it where it runs now.
    let done = ask(&d.state, Request::Cleanup { job: 7 });
    assert_eq!(
        done,
        Response::Cleaned {
            job: 7,
            was: "running".into()
        }
    );
}

#[test]
fn a_throttling_cloud_is_called_a_few_times_not_in_a_loop_and_a_waiting_job_can_be_cancelled() {
    let fake = Fake::default();
    fake.0.lock().unwrap().throttle = true;
    let d = daemon("throttle", "IdleCount = 0\nIdleTime = 600", fake.clone());
    // A job waits while every create is throttled.
    let waiting = prepare_aside(&d.state, 9, Default::default());
    let s = wait_for(&d.state, "backing off", |s| s.backing_off_until.is_some());
    assert_eq!(s.waiting, vec![9]);
    std::thread::sleep(Duration::from_secs(4));
    let creates = fake.0.lock().unwrap().creates;
    // 1 s, then 2 s, then 4 s (half to all of each, jittered): at most four calls in ~4 s.
    assert!((1..=4).contains(&creates), "{creates} create calls");
    // GitLab gives up on the job: cleanup cancels it and its prepare is told.
    cancel_waiting(&d.state, 9);
    match waiting.join().unwrap() {
        Response::Failed { job: 9, reason } => assert!(reason.contains("cleaned up"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(status(&d.state).waiting.is_empty());
}

#[test]
fn a_spot_notice_during_jobs_lets_one_finish_and_ends_the_other_and_the_journal_says_which() {
    use scalecast::core::EventKind;
    let fake = Fake::default();
    let mut d = daemon("noticejob", "IdleCount = 0\nIdleTime = 600", fake.clone());
    let instance_of = |r: Response| match r {
        Response::Started {
            machine, instance, ..
        } => (machine, instance.unwrap()),
        other => panic!("{other:?}"),
    };
    let (m1, i1) = instance_of(prepare(&d.state, 1));
    let (m2, i2) = instance_of(prepare(&d.state, 2));
    assert_ne!(m1, m2);
    fake.set(&i1, |i| i.notice = true);
    fake.set(&i2, |i| i.notice = true);
    wait_for(&d.state, "both notices", |s| {
        s.machines.iter().filter(|m| m.notice).count() == 2
    });
    // A noticed machine gets no new job: job 3 gets a machine of its own.
    let (m3, _) = instance_of(prepare(&d.state, 3));
    assert!(m3 != m1 && m3 != m2);
    // Job 1 finishes within the notice; its machine then goes.
    assert_eq!(
        ask(&d.state, Request::Cleanup { job: 1 }),
        Response::Cleaned {
            job: 1,
            was: "running".into()
        }
    );
    wait_for(&d.state, "machine 1 removed", |s| {
        s.machines.iter().all(|m| m.machine != m1)
    });
    // Job 2's machine is interrupted first: its stage learns the job lost its machine.
    fake.set(&i2, |i| i.state = InstanceState::Terminated);
    wait_for(&d.state, "machine 2 gone", |s| {
        s.machines.iter().all(|m| m.machine != m2)
    });
    match ask(&d.state, Request::Locate { job: 2 }) {
        Response::Started { machine, .. } => assert_ne!(machine, m2, "started again elsewhere"),
        Response::Failed { reason, .. } => {
            assert!(reason.contains("no longer has its machine"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    d.stop();
    let events: Vec<EventKind> = journal_events(&d.state)
        .into_iter()
        .map(|e| e.kind)
        .collect();
    let at = |k: EventKind| events.iter().position(|e| *e == k);
    let finished1 = at(EventKind::JobFinished { job: 1 }).expect("job 1 finished");
    let notice1 = at(EventKind::SpotNotice { machine: m1 }).expect("machine 1's notice");
    assert!(notice1 < finished1, "job 1 finished within its notice");
    let gone2 = at(EventKind::MachineGone { machine: m2 }).expect("machine 2 went");
    assert!(at(EventKind::SpotNotice { machine: m2 }).unwrap() < gone2);
    assert!(
        at(EventKind::JobFinished { job: 2 }).is_none_or(|f| f > gone2),
        "job 2 did not finish on machine 2"
    );
}

/// A prepare that may wait, asked from a thread of its own.
fn prepare_aside(
    state: &Path,
    job: u64,
    keys: scalecast::core::JobKeys,
) -> std::thread::JoinHandle<Response> {
    let state = state.to_path_buf();
    std::thread::spawn(move || ask(&state, Request::Prepare { job, keys }))
}

/// Cleanup of a job that is still waiting: it is cancelled.
fn cancel_waiting(state: &Path, job: u64) {
    assert_eq!(
        ask(state, Request::Cleanup { job }),
        Response::Cleaned {
            job,
            was: "waiting".into()
        }
    );
}

/// The binary run with `args`, which must succeed and print JSON.
/// `scalecast ARGS...`, which must succeed: its standard output.
fn scalecast_ok(args: &[&std::ffi::OsStr]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scalecast"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scalecast {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_of(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    serde_json::from_str(&scalecast_ok(args)).unwrap()
}

/// The entry of a breakdown's `keys` named `name`.
fn key_in(keys: &serde_json::Value, name: &str) -> Option<serde_json::Value> {
    keys.as_array()?.iter().find(|k| k["key"] == name).cloned()
}

/// `GET /metrics` from the daemon.
fn metrics(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    until(
        10,
        || format!("no /metrics at {addr}"),
        || {
            let mut c = std::net::TcpStream::connect(addr).ok()?;
            c.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut body = String::new();
            c.read_to_string(&mut body).unwrap();
            Some(body)
        },
    )
}

#[test]
fn finished_jobs_are_charged_by_project_in_the_journal_and_the_metrics() {
    use scalecast::core::{EventKind, JobKeys};
    let fake = Fake::default();
    let mut d = daemon("charged", "IdleCount = 0\nIdleTime = 600", fake);
    let keys = |project: Option<&str>, stage: &str| JobKeys {
        project: project.map(String::from),
        stage: Some(stage.into()),
        ..Default::default()
    };
    let jobs = [
        (1, keys(Some("group/app"), "test")),
        (2, keys(Some("group/app"), "build")),
        (3, keys(Some("group/web"), "test")),
        (4, keys(None, "test")),
    ];
    for (job, k) in &jobs {
        let r = ask(
            &d.state,
            Request::Prepare {
                job: *job,
                keys: k.clone(),
            },
        );
        assert!(matches!(r, Response::Started { .. }), "{r:?}");
    }
    // At `limit = 4`, a fifth job waits; cancelled before it started, it is not charged.
    let waiting = prepare_aside(&d.state, 9, keys(Some("group/app"), "test"));
    wait_for(&d.state, "job 9 waiting", |s| s.waiting.contains(&9));
    cancel_waiting(&d.state, 9);
    assert!(matches!(waiting.join().unwrap(), Response::Failed { .. }));
    std::thread::sleep(Duration::from_millis(300));
    for (job, _) in &jobs {
        ask(&d.state, Request::Cleanup { job: *job });
    }
    let text = metrics(d.metrics);
    assert!(
        text.contains("scalecast_jobs_charged_total{project=\"group/app\"} 2"),
        "{text}"
    );
    assert!(text.contains("scalecast_jobs_charged_total{project=\"(no project)\"} 1"));
    d.stop();
    // Each job's charge is journaled right after it finished, with its keys.
    let events = journal_events(&d.state);
    let journal = d.state.join("journal");
    let mut charged = std::collections::BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if let EventKind::JobCharged { job, charge } = &e.kind {
            assert_eq!(
                events[i - 1].kind,
                EventKind::JobFinished { job: *job },
                "the charge follows its job's end"
            );
            assert!(
                charge.busy_usd > 0.0 && charge.idle_usd >= 0.0,
                "{charge:?}"
            );
            assert!((charge.usd - charge.busy_usd - charge.idle_usd).abs() < 1e-12);
            assert!(charge.usd_per_hour > 0.0 && charge.price == "table");
            charged.insert(*job, (charge.usd, charge.keys.project.clone()));
        }
    }
    assert_eq!(charged.keys().copied().collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(charged[&4].1, None);
    // `journal costs` sums them by project.
    let j = journal.as_os_str();
    let v = json_of(&[
        "journal".as_ref(),
        "costs".as_ref(),
        j,
        "--by".as_ref(),
        "project".as_ref(),
        "--since".as_ref(),
        "7d".as_ref(),
        "--json".as_ref(),
        "-".as_ref(),
    ]);
    assert_eq!(v["jobs"], 4);
    let key = |name: &str| key_in(&v["keys"], name).unwrap_or_else(|| panic!("{name} in {v}"));
    let app = key("group/app");
    assert_eq!(app["jobs"], 2);
    let want = charged[&1].0 + charged[&2].0;
    assert!(
        (app["cost_usd"].as_f64().unwrap() - want).abs() < 1e-9,
        "{app}"
    );
    assert_eq!(key("(no project)")["jobs"], 1);
    let total: f64 = charged.values().map(|c| c.0).sum();
    assert!((v["cost_usd"].as_f64().unwrap() - total).abs() < 1e-9);
    // The table, by stage; a window after the jobs holds none; tags are not recorded.
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_scalecast"))
            .args(["journal", "costs"])
            .arg(&journal)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--by", "stage"]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        table.contains("cost by stage") && table.contains("4 jobs ended"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("test ") && l.contains(" 3 ")),
        "{table}"
    );
    let out = run(&["--since", "2100-01-01T00:00:00Z"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no job was charged"));
    let out = run(&["--by", "tags"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["--since", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
    // The journal as a trace: a forecast of this fleet's own jobs, split by the projects the
    // daemon recorded.
    let dir = d.state.parent().unwrap();
    let scenario = dir.join("replay.toml");
    std::fs::write(
        &scenario,
        format!(
            "[runner]\nconfig = \"config.toml\"\n[trace]\njournal = {:?}\n[machine]\nboot_seconds = 30\n",
            journal.display().to_string()
        ),
    )
    .unwrap();
    let v = json_of(&[
        "simulate".as_ref(),
        scenario.as_os_str(),
        "--by".as_ref(),
        "project".as_ref(),
        "--json".as_ref(),
        "-".as_ref(),
        "--quiet".as_ref(),
    ]);
    let by = &v["variants"][0]["by"]["keys"];
    let jobs = |name: &str| key_in(by, name).map(|k| k["jobs"].clone());
    assert_eq!(jobs("group/app"), Some(2.into()), "{by}");
    assert_eq!(jobs("group/web"), Some(1.into()));
    assert_eq!(jobs("(no project)"), Some(1.into()));
}

/// A job running when the daemon restarts is charged when it ends, as any other: who it was
/// for, its wait, its run and the time its machine stood free before it, from the books the
/// first daemon kept in `STATE/books/`; the book goes once charged.
#[test]
fn a_job_running_across_a_restart_is_charged_when_it_ends() {
    use scalecast::core::JobKeys;
    let (fake, dir, mut first, _) = first_idle_start("books");
    let machine = ONE_IDLE;
    std::thread::sleep(Duration::from_millis(200)); // the machine stands idle a while
    let keys = JobKeys {
        project: Some("group/app".into()),
        stage: Some("test".into()),
        ..JobKeys::default()
    };
    prepare_started(&first.state, 5, &keys);
    let book = first.state.join("books").join("5.json");
    assert!(book.exists(), "the book is kept on disk");
    first.stop();
    let mut again = start_in(&dir, machine, fake.clone());
    std::thread::sleep(Duration::from_millis(100));
    let cleaned = ask(&again.state, Request::Cleanup { job: 5 });
    assert!(matches!(cleaned, Response::Cleaned { .. }), "{cleaned:?}");
    assert!(!book.exists(), "the book goes once charged");
    again.stop();
    let charges = journal_charges(&again.state);
    assert_eq!(charges.len(), 1, "{charges:?}");
    let (job, c) = &charges[0];
    assert_eq!(*job, 5);
    assert_eq!(c.keys, keys);
    assert_eq!(c.machine, 1);
    // Its run spans the restart (at least the 100 ms after it), and the machine's boot and
    // idle time before it (at least the 200 ms it stood idle) is charged to it.
    let seconds = |usd: f64| usd / c.usd_per_hour * 3600.0;
    assert!(seconds(c.busy_usd) >= 0.1, "{c:?}");
    assert!(seconds(c.idle_usd) >= 0.2, "{c:?}");
    assert!(
        c.wait_s < 1.0,
        "it started at once on the idle machine: {c:?}"
    );
}

/// The daemon journals a job's start before it writes the start in the job's book: stopped
/// in between, it leaves a book with the job's keys and arrival and no start. The daemon
/// started again takes the start from the fleet it recovered, and the job is charged for its
/// run when it ends (not for the machine's idle time before it, which nothing recorded).
#[test]
fn a_job_whose_start_its_book_missed_is_charged_when_it_ends() {
    use scalecast::core::JobKeys;
    let (fake, dir, mut first, _) = first_idle_start("book-missed-start");
    let keys = JobKeys {
        project: Some("group/app".into()),
        ..JobKeys::default()
    };
    prepare_started(&first.state, 7, &keys);
    std::thread::sleep(Duration::from_millis(100)); // it runs a while before the stop
    first.stop();
    // The book as the moment between the journal and the book leaves it.
    let file = first.state.join("books").join("7.json");
    let mut book: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let fields = book.as_object_mut().unwrap();
    assert!(fields.remove("started").is_some(), "{fields:?}");
    fields.remove("free_from");
    std::fs::write(&file, serde_json::to_vec(&book).unwrap()).unwrap();
    let mut again = start_in(&dir, ONE_IDLE, fake.clone());
    let cleaned = ask(&again.state, Request::Cleanup { job: 7 });
    assert!(matches!(cleaned, Response::Cleaned { .. }), "{cleaned:?}");
    again.stop();
    let charges = journal_charges(&again.state);
    assert_eq!(charges.len(), 1, "{charges:?}");
    let (job, c) = &charges[0];
    assert_eq!((*job, c.machine, &c.keys), (7, 1, &keys));
    let seconds = |usd: f64| usd / c.usd_per_hour * 3600.0;
    assert!(
        seconds(c.busy_usd) >= 0.1,
        "its run before the stop counts: {c:?}"
    );
    assert_eq!(c.idle_usd, 0.0, "{c:?}");
    assert!(!file.exists(), "the book goes once charged");
}

/// A job is charged at the price of the instance its machine got (here EC2 gave c5.large
/// on-demand for a configured m5.large on spot, as a capacity fallback does), not at the
/// configured one's.
#[test]
fn a_job_is_charged_at_its_machines_own_instance_price() {
    use scalecast::core::JobKeys;
    let fake = Fake::default();
    fake.0.lock().unwrap().gives = Some(("c5.large".into(), false));
    let mut d = daemon("own-price", "IdleCount = 0\nIdleTime = 600", fake);
    let r = ask(
        &d.state,
        Request::Prepare {
            job: 1,
            keys: JobKeys::default(),
        },
    );
    assert!(matches!(r, Response::Started { .. }), "{r:?}");
    std::thread::sleep(Duration::from_millis(100));
    ask(&d.state, Request::Cleanup { job: 1 });
    d.stop();
    let charges: Vec<_> = journal_charges(&d.state)
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    assert_eq!(charges.len(), 1, "{charges:?}");
    let storage =
        16.0 * scalecast::prices::GP3_USD_PER_GB_MONTH / scalecast::prices::HOURS_PER_MONTH;
    let c5 = scalecast::prices::ondemand_usd_per_hour("c5.large").unwrap();
    let m5 = scalecast::prices::ondemand_usd_per_hour("m5.large").unwrap();
    assert!((c5 - m5).abs() > 1e-6, "the two types cost differently");
    assert!(
        (charges[0].usd_per_hour - (c5 + storage)).abs() < 1e-9,
        "{} against c5.large on-demand {}",
        charges[0].usd_per_hour,
        c5 + storage
    );
}

/// A job on a machine EC2 gave another type (c5.large on-demand for a configured m5.large on
/// spot), running across a restart whose lists all fail: the daemon started again knows the
/// machine's type from its journal, so `live status` shows it and the job is charged at its
/// price, not at the configured type's.
#[test]
fn a_restart_whose_lists_fail_prices_a_job_at_its_machines_journaled_type() {
    use scalecast::core::JobKeys;
    let fake = Fake::default();
    fake.0.lock().unwrap().gives = Some(("c5.large".into(), false));
    let dir = fresh_dir("journaled-type");
    let machine = "IdleCount = 0\nIdleTime = 600";
    let mut first = first_start(&dir, machine, fake.clone());
    prepare_started(&first.state, 3, &JobKeys::default());
    first.stop();
    fake.0.lock().unwrap().fail_lists = u32::MAX;
    let mut again = start_in(&dir, machine, fake.clone());
    let s = status(&again.state);
    assert_eq!(s.machines.len(), 1, "{s:#?}");
    assert_eq!(s.machines[0].instance_type.as_deref(), Some("c5.large"));
    let cleaned = ask(&again.state, Request::Cleanup { job: 3 });
    assert!(matches!(cleaned, Response::Cleaned { .. }), "{cleaned:?}");
    again.stop();
    assert!(
        fake.0.lock().unwrap().lists >= 1,
        "the restart asked for a list, which failed"
    );
    let charges = journal_charges(&again.state);
    assert_eq!(charges.len(), 1, "{charges:?}");
    let storage =
        16.0 * scalecast::prices::GP3_USD_PER_GB_MONTH / scalecast::prices::HOURS_PER_MONTH;
    let c5 = scalecast::prices::ondemand_usd_per_hour("c5.large").unwrap();
    assert!(
        (charges[0].1.usd_per_hour - (c5 + storage)).abs() < 1e-9,
        "{} against c5.large on-demand {}",
        charges[0].1.usd_per_hour,
        c5 + storage
    );
}

/// A journal record before the newest snapshot that cannot be read (recovery does not read
/// there) does not stop a restart that looks for its machines' launches: the daemon starts,
/// and the machine's type waits for a list.
#[test]
fn an_unreadable_launch_record_does_not_stop_a_restart() {
    use scalecast::journal::store::{SledStore, Store};
    let (fake, dir, mut first, _) = first_idle_start("unreadable-launch");
    first.stop();
    let launched = journal_events(&first.state)
        .iter()
        .position(|e| matches!(e.kind, scalecast::core::EventKind::MachineLaunched { .. }))
        .expect("the launch was journaled") as u64
        + 1;
    {
        let mut s = SledStore::open(&first.state.join("journal")).unwrap();
        s.append(launched, &[b"garbage".to_vec()]).unwrap();
        s.flush().unwrap();
    }
    fake.0.lock().unwrap().fail_lists = u32::MAX;
    let again = start_in(&dir, ONE_IDLE, fake.clone());
    let s = status(&again.state);
    assert_eq!(s.machines.len(), 1, "{s:#?}");
    assert_eq!(s.machines[0].instance_type, None, "{s:#?}");
}
