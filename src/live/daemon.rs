//! The daemon: the runner's fleet on a cloud, as the engine decides, from the journal in its
//! state directory.
//!
//! One loop owns the driver (journal first) and everything the daemon knows. Every fact
//! becomes an event fed through the driver, flushed to the journal before it is applied;
//! every action is carried out by a port: creates (with capacity fallbacks) and terminates go
//! to the cloud as tasks of their own, whose answers come back to the loop as messages, so a
//! slow call never holds up a job; `start_job` answers the executor waiting on the socket.
//!
//! Inputs of the loop: requests on the executor socket (`prepare`, `cleanup`, `status`), the
//! cloud's answers, a list of the instances every few seconds (readiness, spot notices,
//! interrupted instances), the engine's deadline, reconcile every five minutes, SIGHUP
//! (config reloaded) and SIGTERM (stop: journal closed, machines left for the next start).
//! Calls to the cloud go through a circuit breaker: after throttling or no answer, the next
//! waits (1 s doubling to 60 s), and the work waits with it.

use crate::config::ConfigFile;
use crate::config::machine_options::Ec2Options;
use crate::core::fleet::MachineState;
use crate::core::jobs::JobState;
use crate::core::{Action, ActionKind, EngineKind, Event, EventKind, JobId, MachineId, Time};
use crate::drive::{DriveError, EventLog};
use crate::journal::{Header, Journal, JournalError};
use crate::live::books::{Books, JobBook};
use crate::live::breaker::Breaker;
use crate::live::cloud::{Cloud, CloudError, CreateRequest, Instance, InstanceState};
use crate::live::docker::{JobTarget, Settings};
use crate::live::fallback::{Fallbacks, FellBack, create_with_fallback};
use crate::live::metrics::Counters;
use crate::live::protocol::{MachineStatus, Request, Response, Status, Stored, socket_path};
use crate::live::reconcile::{Orphan, settle};
use crate::live::ship::{ShipError, Shipped, Shipper, Target};
use crate::live::tls::{Ca, ClientFiles, TlsError, server_name};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

/// How long new MachineOptions may take to resolve (their image, their security groups).
const RECONFIGURE_TIMEOUT: Duration = Duration::from_secs(60);
/// Periodic reconciles in a row whose list other cloud calls overtook, before the next one
/// waits for nothing else (as the start-up reconcile does).
const MAX_RECONCILE_MISSES: u32 = 3;
/// How many cleaned-up job ids it remembers, so a repeated cleanup or a late prepare is known.
const REMEMBER_CLEANED: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(#[from] crate::config::InputError),
    #[error("the runner has no [runners.machine]: nothing to drive")]
    NoMachine,
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("the journal: {0}")]
    Journal(#[from] JournalError),
    #[error("the cloud: {0}")]
    Cloud(#[from] CloudError),
    #[error("the journal on S3: {0}")]
    Ship(#[from] ShipError),
    #[error("the machines' CA: {0}")]
    Tls(#[from] TlsError),
}

/// How the daemon reaches the machines' Docker.
#[derive(Clone, Debug)]
pub struct DockerOptions {
    /// Dial this `HOST:PORT` for every machine instead of its own address on port 2376 (a
    /// tunnel, or the tests' one dockerd). The machine's name is checked all the same.
    pub endpoint: Option<String>,
    /// How long a running instance has for its Docker to answer over TLS before it is removed
    /// and replaced (`machine_failed`).
    pub ready_timeout: Duration,
    /// How often it tries meanwhile.
    pub probe_every: Duration,
}

impl Default for DockerOptions {
    fn default() -> Self {
        DockerOptions {
            endpoint: None,
            ready_timeout: Duration::from_secs(600),
            probe_every: Duration::from_secs(2),
        }
    }
}

/// What the daemon is started with.
#[derive(Clone, Debug)]
pub struct Options {
    pub config: PathBuf,
    pub runner: Option<String>,
    pub state: PathBuf,
    /// Time zone for autoscaling entries whose Timezone is empty or `Local`.
    pub host_tz: chrono_tz::Tz,
    /// Serve Prometheus text at `http://ADDR/metrics`.
    pub metrics: Option<std::net::SocketAddr>,
    /// How often it lists its instances while one is being created (readiness).
    pub ready_poll: Duration,
    /// How often it lists them otherwise (spot notices, interruptions); at most 15 s.
    pub spot_poll: Duration,
    /// How often it reconciles with the cloud (five minutes).
    pub reconcile_every: Duration,
    /// How long a cloud call (a list of the instances, a create with its fallbacks, a
    /// terminate) may take before it counts as failed (one minute): a cloud that takes the
    /// connection and never answers would otherwise hold that machine, or every later list
    /// (readiness, spot notices, reconcile), for good.
    pub call_timeout: Duration,
    /// Ship the journal to S3 as it grows.
    pub ship: Option<Target>,
    /// Rebuild the state directory from a shipped journal before starting.
    pub restore: Option<Target>,
    /// How often it ships.
    pub ship_every: Duration,
    /// The machines' Docker (what `scalecast live` always uses). None: a machine is ready as
    /// soon as its instance runs, and jobs get no Docker target (the cloud side alone, as the
    /// fake-cloud tests drive it).
    pub docker: Option<DockerOptions>,
}

impl Options {
    pub fn new(config: PathBuf, runner: Option<String>, state: PathBuf) -> Self {
        Options {
            config,
            runner,
            state,
            host_tz: chrono_tz::Tz::UTC,
            metrics: None,
            ready_poll: Duration::from_secs(2),
            spot_poll: Duration::from_secs(15),
            reconcile_every: Duration::from_secs(5 * 60),
            call_timeout: Duration::from_secs(60),
            ship: None,
            restore: None,
            ship_every: Duration::from_secs(5),
            docker: None,
        }
    }
}

/// The manager's instances, or an error when the cloud does not answer within `limit`.
async fn list_within<C: Cloud>(
    cloud: &C,
    manager: &str,
    limit: Duration,
) -> Result<Vec<Instance>, CloudError> {
    within(limit, "the instance list", cloud.list(manager)).await
}

/// `call`'s answer, or an error when it has none within `limit`.
async fn within<T>(
    limit: Duration,
    what: &str,
    call: impl Future<Output = Result<T, CloudError>>,
) -> Result<T, CloudError> {
    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
        Err(CloudError::Unreachable(format!(
            "{what} did not answer within {} s",
            limit.as_secs_f64()
        )))
    })
}

/// The one place the daemon reads the clock.
fn now() -> Time {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Time(ms)
}

/// This state directory's manager id: made once, kept in `DIR/manager-id`.
pub fn manager_id(state: &Path) -> Result<String, DaemonError> {
    let file = state.join("manager-id");
    let io = |e| DaemonError::Io(file.display().to_string(), e);
    match std::fs::read_to_string(&file) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let seed = format!("{}:{}:{}", state.display(), now().0, std::process::id());
    let id = format!("{:016x}", crate::journal::fnv1a(seed.as_bytes()));
    crate::report::output::write_atomic(&file, id.as_bytes()).map_err(io)?;
    Ok(id)
}

/// What reaches the loop.
enum Msg {
    Client(Request, oneshot::Sender<Response>),
    Created {
        machine: MachineId,
        made: Result<Instance, CloudError>,
        fell: Vec<FellBack>,
    },
    Terminated {
        machine: MachineId,
        instance: String,
        result: Result<(), CloudError>,
    },
    /// An orphan's terminate (reconcile) answered.
    OrphanTerminated {
        instance: String,
        result: Result<(), CloudError>,
    },
    Listed(Result<Vec<Instance>, CloudError>),
    /// The periodic reconcile's list.
    Reconciling(Result<Vec<Instance>, CloudError>),
    Metrics(oneshot::Sender<String>),
    Claimed(Result<(u64, u64), ShipError>),
    Shipped(Result<Shipped, ShipError>),
    /// A machine's Docker answered over TLS, or never did within the timeout.
    Probed {
        machine: MachineId,
        result: Result<(), String>,
    },
}

/// The daemon's side of the machines' Docker.
struct DockerSide {
    opts: DockerOptions,
    ca: Ca,
    files: ClientFiles,
    settings: Settings,
    /// Each machine's address, from the instance list.
    addresses: BTreeMap<MachineId, String>,
    /// Machines whose Docker is being waited for.
    probing: BTreeSet<MachineId>,
}

impl DockerSide {
    fn endpoint(&self, machine: MachineId) -> Option<String> {
        self.opts.endpoint.clone().or_else(|| {
            self.addresses
                .get(&machine)
                .map(|a| format!("{a}:{}", crate::live::docker::PORT))
        })
    }
}

/// Shipping the journal to S3.
struct Shipping {
    shipper: Rc<Shipper>,
    /// The last event and snapshot on S3, once the prefix is claimed.
    claimed: Option<(u64, u64)>,
    in_flight: bool,
    /// Another manager owns the prefix: shipping stopped.
    stopped: bool,
    next: Time,
}

/// Cloud work waiting for the breaker to close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deferred {
    Create(MachineId),
    Remove(MachineId),
}

/// Everything the loop owns.
struct Daemon<C: Cloud + 'static> {
    journal: Journal,
    cloud: Rc<C>,
    tx: mpsc::UnboundedSender<Msg>,
    opts: Options,
    manager: String,
    machine_name: String,
    /// The MachineOptions the cloud creates machines with.
    ec2: Ec2Options,
    fallbacks: Rc<Fallbacks>,
    breaker: Breaker,
    /// The instance of each machine whose create answered.
    instances: BTreeMap<MachineId, String>,
    /// Machines whose create call is in flight.
    creating: BTreeSet<MachineId>,
    /// Machines whose terminate call is in flight.
    terminating: BTreeSet<MachineId>,
    /// Orphan instances (no machine's) whose terminate call is in flight.
    orphans: BTreeSet<String>,
    deferred: VecDeque<Deferred>,
    listing: bool,
    /// When the instances are next listed.
    next_list: Time,
    /// Bumped whenever a call that makes, ends or lists instances starts or answers: the
    /// periodic reconcile's list is trusted only if nothing of the kind happened meanwhile.
    cloud_calls: u64,
    /// The periodic reconcile's list is in flight; `cloud_calls` when it was asked.
    reconciling: Option<u64>,
    /// Periodic reconciles in a row whose list was overtaken.
    reconcile_misses: u32,
    /// When it next reconciles.
    next_reconcile: Time,
    pending: VecDeque<Action>,
    /// Executors waiting in `prepare`, by job.
    waiters: HashMap<JobId, Vec<oneshot::Sender<Response>>>,
    cleaned: (VecDeque<JobId>, HashSet<JobId>),
    counters: Counters,
    /// The configured instance's estimated $/h (spot discount applied), when the price table
    /// knows its type.
    price_per_hour: Option<f64>,
    /// Each machine's instance type and market once they are known (a capacity fallback, or
    /// MachineOptions reloaded since it was made, give it others than the configured ones),
    /// with its own estimated $/h.
    got: HashMap<MachineId, Got>,
    /// The root volume's storage, $/h.
    storage_per_hour: f64,
    /// What each job's charge needs: who it is for, when it arrived and started (kept in
    /// `STATE/books/` too, so a job running across a restart is charged).
    books: Books,
    /// When each machine last became free (created, or its last job ended).
    free_since: HashMap<MachineId, Time>,
    shipping: Option<Shipping>,
    docker: Option<DockerSide>,
}

/// What a machine's instance is: its type and market, and its estimated $/h from them; None
/// when the price table does not know its type (its jobs are then not charged, as with a
/// configured type the table does not know).
struct Got {
    instance_type: String,
    spot: bool,
    rate: Option<f64>,
}

impl<C: Cloud + 'static> Daemon<C> {
    /// What to ship now: the events after the shipped mark and a newer snapshot.
    fn unshipped(&self, marks: (u64, u64)) -> Result<ShipBatch, DaemonError> {
        let log = self.journal.log();
        let records = log.records_from(marks.0 + 1)?;
        let snapshot = log
            .newest_snapshot_record()?
            .filter(|(seq, _)| *seq > marks.1);
        Ok((records, snapshot))
    }

    /// Every few seconds: claim the prefix, then ship what is new, one call at a time.
    fn ship_tick(&mut self) -> Result<(), DaemonError> {
        let Some(sh) = &self.shipping else {
            return Ok(());
        };
        if sh.stopped || sh.in_flight || now() < sh.next {
            return Ok(());
        }
        let shipper = sh.shipper.clone();
        let tx = self.tx.clone();
        match sh.claimed {
            None => {
                let header = self.journal.log().header_record()?;
                let manager = self.manager.clone();
                tokio::task::spawn_local(async move {
                    let _ = tx.send(Msg::Claimed(shipper.claim(header, &manager).await));
                });
            }
            Some(marks) => {
                let (records, snapshot) = self.unshipped(marks)?;
                if records.is_empty() && snapshot.is_none() {
                    self.schedule_ship();
                    return Ok(());
                }
                self.counters.call("ship");
                tokio::task::spawn_local(async move {
                    let _ = tx.send(Msg::Shipped(shipper.ship(records, snapshot).await));
                });
            }
        }
        if let Some(sh) = &mut self.shipping {
            sh.in_flight = true;
        }
        Ok(())
    }

    fn schedule_ship(&mut self) {
        let every = self.opts.ship_every.as_millis() as i64;
        if let Some(sh) = &mut self.shipping {
            sh.in_flight = false;
            sh.next = now().plus_millis(every);
        }
    }

    fn on_ship(
        &mut self,
        claimed: Option<Result<(u64, u64), ShipError>>,
        shipped: Option<Result<Shipped, ShipError>>,
    ) {
        self.schedule_ship();
        let Some(sh) = &mut self.shipping else {
            return;
        };
        let err = match (claimed, shipped) {
            (Some(Ok(marks)), _) => {
                info!(target = %sh.shipper.target(), events = marks.0, snapshot = marks.1, "journal shipping: prefix claimed");
                sh.claimed = Some(marks);
                return;
            }
            (_, Some(Ok((events, snap)))) => {
                if let Some(m) = &mut sh.claimed {
                    m.0 = events.unwrap_or(m.0);
                    m.1 = snap.unwrap_or(m.1);
                    self.counters.shipped = Some(m.0);
                }
                return;
            }
            (Some(Err(e)), _) | (_, Some(Err(e))) => e,
            (None, None) => return,
        };
        if matches!(err, ShipError::Exists(_)) {
            sh.stopped = true;
            error!(error = %err, "journal shipping stopped: this prefix belongs to another journal or manager");
        } else {
            self.counters.ship_errors += 1;
            warn!(error = %err, "journal shipping failed; trying again");
        }
    }

    /// Feed one fact at the clock's time (never before the engine's own), journaled first.
    fn feed(&mut self, kind: EventKind) -> Result<(), DaemonError> {
        let at = now().max(self.journal.engine().now());
        // A machine gone was billed from its creation; a failed create made no instance.
        if let EventKind::MachineGone { machine } = kind
            && let (Some(m), Some(p)) = (
                self.journal.engine().fleet().get(machine),
                self.rate(machine),
            )
        {
            self.counters.cost_usd += p * at.since(m.created_at).max(0) as f64 / 3_600_000.0;
        }
        match kind {
            EventKind::MachineGone { machine } | EventKind::MachineFailed { machine } => {
                self.free_since.remove(&machine);
                self.got.remove(&machine);
                if let Some(d) = &self.docker {
                    d.ca.forget_machine(machine);
                }
            }
            EventKind::JobCancelled { job } => {
                self.books.close(job);
            }
            _ => {}
        }
        self.counters.event(crate::journal::kind_name(&kind));
        match self.journal.handle(&Event::new(at, kind)) {
            Ok(()) => {}
            Err(DriveError::Log(e)) => return Err(e.into()),
            // A fact that no longer fits (the machine went meanwhile): state kept.
            Err(DriveError::Refused { error, .. }) => warn!(%error, "event refused"),
        }
        self.pending.extend(self.journal.drain_actions());
        Ok(())
    }

    /// Carry out every action decided so far. Cloud calls run as tasks of their own.
    fn act(&mut self) -> Result<(), DaemonError> {
        while let Some(a) = self.pending.pop_front() {
            let json = serde_json::to_string(&a).unwrap_or_default();
            let (kind, reason) = self.counters.action(&a);
            info!(target: "scalecast::action", kind, reason, action = %json, "action");
            match a.kind {
                ActionKind::CreateMachine { machine, .. } => {
                    self.free_since.insert(machine, a.at);
                    self.create(machine)?
                }
                ActionKind::RemoveMachine { machine, .. } => self.remove(machine)?,
                ActionKind::StartJob { job, machine } => {
                    let free_from = self.free_since.get(&machine).copied();
                    self.books.started(job, machine, a.at, free_from);
                    self.started(job, machine)
                }
                // The job waits again; its executor learns of it when the job's stage fails.
                ActionKind::RequeueJob { .. } => {}
            }
        }
        Ok(())
    }

    fn create(&mut self, machine: MachineId) -> Result<(), DaemonError> {
        if self.creating.contains(&machine) {
            return Ok(()); // on its way already (a reconcile asks again only for lost ones)
        }
        if self.breaker.allow(now()).is_err() {
            if !self.deferred.contains(&Deferred::Create(machine)) {
                self.deferred.push_back(Deferred::Create(machine));
            }
            return Ok(());
        }
        // Its Docker's certificate, made here (the CA key stays here) and handed over in the
        // user data with the script that sets Docker up.
        let user_data = match &self.docker {
            Some(d) => {
                let pair = d.ca.machine_pair(machine)?;
                Some(crate::live::userdata::script(
                    d.ca.cert_pem(),
                    &pair,
                    crate::live::docker::PORT,
                ))
            }
            None => None,
        };
        self.creating.insert(machine);
        self.cloud_calls += 1;
        self.counters.call("create");
        let req = CreateRequest {
            manager: self.manager.clone(),
            machine,
            name: CreateRequest::name_from(&self.machine_name, &self.manager, machine),
            user_data,
            ..Default::default()
        };
        let (cloud, fallbacks, tx) = (self.cloud.clone(), self.fallbacks.clone(), self.tx.clone());
        let limit = self.opts.call_timeout;
        tokio::task::spawn_local(async move {
            // A create that took too long fails its machine; if the instance was made all the
            // same, it is an orphan the next reconcile terminates.
            let (made, fell) =
                match tokio::time::timeout(limit, create_with_fallback(&*cloud, &req, &fallbacks))
                    .await
                {
                    Ok(answer) => answer,
                    Err(_) => (
                        Err(CloudError::Unreachable(format!(
                            "the create did not answer within {} s",
                            limit.as_secs_f64()
                        ))),
                        Vec::new(),
                    ),
                };
            let _ = tx.send(Msg::Created {
                machine,
                made,
                fell,
            });
        });
        Ok(())
    }

    /// Wait for a machine's Docker to answer over TLS (a task of its own), up to the timeout.
    fn probe(&mut self, machine: MachineId) {
        let Some(d) = &mut self.docker else { return };
        if d.probing.contains(&machine) {
            return;
        }
        // Its address comes with the next list.
        let Some(endpoint) = d.endpoint(machine) else {
            return;
        };
        d.probing.insert(machine);
        let (files, opts, tx) = (d.files.clone(), d.opts.clone(), self.tx.clone());
        tokio::task::spawn_local(async move {
            let started = std::time::Instant::now();
            let name = server_name(machine);
            let result = loop {
                let tried = match crate::live::docker::connect(&endpoint, &name, &files, 10) {
                    Ok(docker) => docker
                        .ping()
                        .await
                        .map(|_| ())
                        .map_err(|e| crate::live::docker::chain(&e)),
                    Err(e) => Err(e.to_string()),
                };
                match tried {
                    Ok(()) => break Ok(()),
                    Err(e) if started.elapsed() >= opts.ready_timeout => {
                        break Err(format!(
                            "Docker at {endpoint} did not answer over TLS within {} s: {e}",
                            opts.ready_timeout.as_secs()
                        ));
                    }
                    Err(_) => tokio::time::sleep(opts.probe_every).await,
                }
            };
            let _ = tx.send(Msg::Probed { machine, result });
        });
    }

    fn on_probed(
        &mut self,
        machine: MachineId,
        result: Result<(), String>,
    ) -> Result<(), DaemonError> {
        if let Some(d) = &mut self.docker {
            d.probing.remove(&machine);
        }
        let state = self.journal.engine().fleet().get(machine).map(|m| m.state);
        if state != Some(MachineState::Creating) {
            return Ok(());
        }
        match result {
            Ok(()) => {
                info!(machine, "machine's Docker answers over TLS: ready");
                self.feed(EventKind::MachineReady { machine })
            }
            Err(e) => {
                warn!(machine, error = %e, "machine failed: its Docker never answered; removing it");
                self.feed(EventKind::MachineFailed { machine })?;
                if let Some(id) = self.instances.remove(&machine) {
                    self.terminate(machine, id);
                }
                Ok(())
            }
        }
    }

    fn remove(&mut self, machine: MachineId) -> Result<(), DaemonError> {
        if self.creating.contains(&machine) || self.terminating.contains(&machine) {
            return Ok(()); // its create's answer, or the terminate's, finishes the removal
        }
        let Some(id) = self.instances.get(&machine).cloned() else {
            return self.feed(EventKind::MachineGone { machine });
        };
        if self.breaker.allow(now()).is_err() {
            self.deferred.push_back(Deferred::Remove(machine));
            return Ok(());
        }
        self.terminate(machine, id);
        Ok(())
    }

    fn terminate(&mut self, machine: MachineId, instance: String) {
        self.terminating.insert(machine);
        self.spawn_terminate(instance, move |instance, result| Msg::Terminated {
            machine,
            instance,
            result,
        });
    }

    /// Terminate `instance` in a task of its own, within `call_timeout`; `answer` makes the
    /// message its result comes back to the loop as.
    fn spawn_terminate(
        &mut self,
        instance: String,
        answer: impl FnOnce(String, Result<(), CloudError>) -> Msg + 'static,
    ) {
        self.cloud_calls += 1;
        self.counters.call("terminate");
        let (cloud, tx) = (self.cloud.clone(), self.tx.clone());
        let limit = self.opts.call_timeout;
        tokio::task::spawn_local(async move {
            // Terminating twice is harmless: one that took too long is tried again.
            let result = within(limit, "the terminate", cloud.terminate(&instance)).await;
            let _ = tx.send(answer(instance, result));
        });
    }

    fn failed_call(&mut self, call: &'static str, e: &CloudError) {
        self.counters.error(call, e);
        if matches!(e, CloudError::Throttled { .. } | CloudError::Unreachable(_)) {
            let until = self.breaker.failure(now());
            warn!(call, error = %e, until = %until, "cloud call failed; backing off");
        } else {
            warn!(call, error = %e, "cloud call failed");
        }
    }

    fn on_created(
        &mut self,
        machine: MachineId,
        made: Result<Instance, CloudError>,
        fell: Vec<FellBack>,
    ) -> Result<(), DaemonError> {
        self.creating.remove(&machine);
        self.cloud_calls += 1;
        for f in &fell {
            self.counters.fallbacks += 1;
            info!(
                target: "scalecast::fallback",
                machine,
                error = %f.error,
                instance_type = f.instance_type.as_deref().unwrap_or("(configured)"),
                on_demand = f.on_demand,
                "capacity fallback: next attempt"
            );
        }
        let state = self.journal.engine().fleet().get(machine).map(|m| m.state);
        match made {
            Ok(i) => {
                self.breaker.success();
                info!(machine, instance = %i.id, instance_type = %i.instance_type, spot = i.spot, "instance launched");
                // What was made, and the attempts that found no capacity first, for the
                // journal (an attempt without a type of its own tried the configured one).
                let launch = crate::core::Launch {
                    instance: i.id.clone(),
                    instance_type: i.instance_type.clone(),
                    spot: i.spot,
                    fell_back: fell
                        .iter()
                        .map(|f| crate::core::Attempt {
                            instance_type: f
                                .instance_type
                                .clone()
                                .unwrap_or_else(|| self.ec2.instance_type.clone()),
                            spot: !f.on_demand && self.ec2.request_spot_instance,
                            error: f.error.to_string(),
                        })
                        .collect(),
                };
                self.feed(EventKind::MachineLaunched {
                    machine,
                    launch: Box::new(launch),
                })?;
                self.learn(machine, &i);
                self.instances.insert(machine, i.id.clone());
                // Look for it soon: it becomes ready when the list shows it running.
                let soon = now().plus_millis(self.opts.ready_poll.as_millis() as i64);
                self.next_list = self.next_list.min(soon);
                match state {
                    Some(MachineState::Removing) => self.remove(machine)?,
                    // The engine no longer has it (it failed or went meanwhile): not ours.
                    None => self.terminate(machine, i.id),
                    _ => {}
                }
            }
            Err(e) => {
                self.failed_call("create", &e);
                match state {
                    Some(MachineState::Creating) => {
                        self.feed(EventKind::MachineFailed { machine })?
                    }
                    Some(MachineState::Removing) => {
                        self.feed(EventKind::MachineGone { machine })?
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn on_terminated(
        &mut self,
        machine: MachineId,
        instance: String,
        result: Result<(), CloudError>,
    ) -> Result<(), DaemonError> {
        self.terminating.remove(&machine);
        self.cloud_calls += 1;
        match result {
            Ok(()) => {
                self.breaker.success();
                info!(machine, %instance, "instance terminated");
                if self.instances.get(&machine) == Some(&instance) {
                    self.instances.remove(&machine);
                    if let Some(d) = &mut self.docker {
                        d.addresses.remove(&machine);
                    }
                }
                if self.journal.engine().fleet().get(machine).is_some() {
                    self.feed(EventKind::MachineGone { machine })?;
                }
            }
            Err(e) => {
                self.failed_call("terminate", &e);
                // Tried again once the breaker allows; a refused call is left to reconcile.
                if !matches!(e, CloudError::Refused { .. }) {
                    self.deferred.push_back(Deferred::Remove(machine));
                }
            }
        }
        Ok(())
    }

    /// Machine `m`'s estimated $/h: its own, else the configured instance's.
    fn rate(&self, m: MachineId) -> Option<f64> {
        match self.got.get(&m) {
            Some(g) => g.rate,
            None => self.price_per_hour,
        }
    }

    /// Machine `m` runs on instance `i`: its type and market, and its $/h from them.
    fn learn(&mut self, m: MachineId, i: &Instance) {
        self.learn_type(m, &i.instance_type, i.spot);
    }

    /// Machine `m` runs on an instance of type `instance_type`, spot or on-demand.
    fn learn_type(&mut self, m: MachineId, instance_type: &str, spot: bool) {
        let rate = hourly_price(&self.ec2.region, instance_type, spot);
        self.got.insert(
            m,
            Got {
                instance_type: instance_type.to_string(),
                spot,
                rate,
            },
        );
    }

    /// What the journal says each machine of the recovered fleet got when its create
    /// answered (its instance's type and market): a restart prices their jobs, and shows
    /// their types, before the cloud answers a list (a list that fails at start-up would
    /// leave the configured type's price on a capacity fallback's jobs). A journal record
    /// there that cannot be read (recovery reads only from the newest snapshot on) does not
    /// stop the start: the types are then learned from the first list that answers.
    fn learn_from_journal(&mut self) {
        let fleet = self.journal.engine().fleet();
        let Some(since) = fleet.iter().map(|m| m.created_at).min() else {
            return;
        };
        match self
            .journal
            .log()
            .launches_since(since, |m| fleet.get(m).is_some())
        {
            Ok(launches) => {
                for (m, l) in launches {
                    self.learn_type(m, &l.instance_type, l.spot);
                }
            }
            Err(error) => {
                warn!(%error, "the machines' launches could not be read from the journal; their types come with the next list")
            }
        }
    }

    /// What the list says: creating machines whose instance runs are ready; a machine under a
    /// spot notice gets `spot_notice`; a ready machine whose instance is gone or going (not by
    /// our hand) is gone, and its job requeued by the engine.
    fn on_listed(&mut self, listed: Result<Vec<Instance>, CloudError>) -> Result<(), DaemonError> {
        self.listing = false;
        self.cloud_calls += 1;
        let listed = match listed {
            Ok(l) => l,
            Err(e) => {
                self.failed_call("list", &e);
                return Ok(());
            }
        };
        for i in &listed {
            if let Some(m) = i.machine
                && i.state.alive()
                && !self.got.contains_key(&m)
                && self.journal.engine().fleet().get(m).is_some()
            {
                // Adopted after a restart: its rate comes from the instance as listed.
                self.learn(m, i);
            }
        }
        let by_id: HashMap<&str, &Instance> = listed.iter().map(|i| (i.id.as_str(), i)).collect();
        if let Some(d) = &mut self.docker {
            for i in &listed {
                if let (Some(m), Some(a)) = (i.machine, &i.address)
                    && i.state.alive()
                {
                    d.addresses.insert(m, a.clone());
                }
            }
        }
        let mut facts = Vec::new();
        let mut probe = Vec::new();
        for m in self.journal.engine().fleet().iter() {
            let Some(id) = self.instances.get(&m.id) else {
                continue;
            };
            if self.terminating.contains(&m.id) {
                continue;
            }
            let inst = by_id.get(id.as_str());
            // Listed as going or gone; or, once it was seen running, missing from the list.
            // A just-made instance may not be listed yet (the list may have been asked before
            // the create answered, and EC2's lists lag behind its launches).
            let missing = inst.is_none() && m.state != MachineState::Creating;
            let down = missing
                || inst.is_some_and(|i| {
                    matches!(
                        i.state,
                        InstanceState::ShuttingDown
                            | InstanceState::Stopping
                            | InstanceState::Stopped
                            | InstanceState::Terminated
                    )
                });
            match m.state {
                MachineState::Creating if down => {
                    facts.push(EventKind::MachineFailed { machine: m.id })
                }
                MachineState::Creating => {
                    if inst.is_some_and(|i| i.state == InstanceState::Running) {
                        if self.docker.is_some() {
                            // Ready once its Docker answers over TLS.
                            probe.push(m.id);
                        } else {
                            facts.push(EventKind::MachineReady { machine: m.id });
                        }
                    }
                }
                MachineState::Idle | MachineState::Used if down => {
                    warn!(machine = m.id, instance = %id, "instance gone without being asked (interrupted?)");
                    facts.push(EventKind::MachineGone { machine: m.id });
                }
                MachineState::Idle | MachineState::Used => {
                    if inst.is_some_and(|i| i.notice) && !m.notice {
                        warn!(machine = m.id, instance = %id, "spot interruption notice");
                        facts.push(EventKind::SpotNotice { machine: m.id });
                    }
                }
                MachineState::Removing => {}
            }
        }
        for m in probe {
            self.probe(m);
        }
        for f in facts {
            if let EventKind::MachineGone { machine } | EventKind::MachineFailed { machine } = f {
                self.instances.remove(&machine);
                if let Some(d) = &mut self.docker {
                    d.addresses.remove(&machine);
                }
            }
            self.feed(f)?;
        }
        Ok(())
    }

    fn list(&mut self) {
        self.listing = true;
        self.cloud_calls += 1;
        self.counters.call("list");
        let (cloud, tx, manager) = (self.cloud.clone(), self.tx.clone(), self.manager.clone());
        let limit = self.opts.call_timeout;
        tokio::task::spawn_local(async move {
            let _ = tx.send(Msg::Listed(list_within(&*cloud, &manager, limit).await));
        });
    }

    /// List the instances and reconcile, waiting for both (at start-up, and when the
    /// periodic reconcile's list was overtaken too often). False when the list failed.
    async fn reconcile(&mut self) -> Result<bool, DaemonError> {
        self.counters.call("list");
        match list_within(&*self.cloud, &self.manager, self.opts.call_timeout).await {
            Ok(listed) => self.reconcile_with(&listed).map(|()| true),
            Err(e) => {
                self.failed_call("list", &e);
                Ok(false)
            }
        }
    }

    /// The periodic reconcile's list, asked in the background: requests, answers and the
    /// metrics are served while it is on its way.
    fn ask_reconcile(&mut self) {
        self.reconciling = Some(self.cloud_calls);
        self.counters.call("list");
        let (cloud, tx, manager) = (self.cloud.clone(), self.tx.clone(), self.manager.clone());
        let limit = self.opts.call_timeout;
        tokio::task::spawn_local(async move {
            let _ = tx.send(Msg::Reconciling(
                list_within(&*cloud, &manager, limit).await,
            ));
        });
    }

    /// The periodic reconcile's list came: the list to reconcile with, or None when it failed,
    /// or when a create, terminate or list started or answered meanwhile (the list may not
    /// show an instance the fleet knows of: it is asked again soon, and after
    /// MAX_RECONCILE_MISSES such lists in a row the next reconcile waits for nothing else).
    fn on_reconcile_list(
        &mut self,
        listed: Result<Vec<Instance>, CloudError>,
    ) -> Option<Vec<Instance>> {
        let asked = self.reconciling.take();
        match listed {
            Err(e) => {
                self.failed_call("list", &e);
                None
            }
            Ok(l) if asked == Some(self.cloud_calls) => {
                self.reconcile_misses = 0;
                Some(l)
            }
            Ok(_) => {
                self.reconcile_misses += 1;
                info!(
                    misses = self.reconcile_misses,
                    "reconcile: other cloud calls overtook its list; listing again soon"
                );
                self.next_reconcile = now().plus_millis(self.opts.ready_poll.as_millis() as i64);
                None
            }
        }
    }

    /// Reconcile the fleet with `listed`, a list no older than any create or terminate: the
    /// `machine_gone` events are fed at once; the plan's cloud calls (terminating orphans,
    /// creating again) are tasks of their own like every other create and terminate, so a
    /// slow or throttled one holds nothing up, and a machine created again gets what any
    /// create gets (its Docker's certificate, the capacity fallbacks, `call_timeout`, its
    /// launch journaled).
    fn reconcile_with(&mut self, listed: &[Instance]) -> Result<(), DaemonError> {
        let out = match settle(&mut self.journal, now(), listed) {
            Ok(o) => o,
            Err(DriveError::Log(j)) => return Err(j.into()),
            Err(other) => {
                warn!(error = %other, "reconcile: event refused");
                return Ok(());
            }
        };
        for (m, id) in &out.plan.adopt {
            self.instances.insert(*m, id.clone());
        }
        for m in &out.plan.gone {
            info!(machine = m, "reconcile: machine has no instance; gone");
            self.instances.remove(m);
        }
        self.pending.extend(out.actions);
        for (id, why) in out.plan.terminate {
            match why {
                // The engine is removing it: its terminate's answer is the machine's end.
                Orphan::Removing(m)
                    if !self.instances.contains_key(&m)
                        && !self.creating.contains(&m)
                        && !self.terminating.contains(&m) =>
                {
                    info!(machine = m, instance = %id, "reconcile: terminating a removed machine's instance");
                    self.instances.insert(m, id);
                    self.remove(m)?;
                }
                why => self.terminate_orphan(id, why),
            }
        }
        for m in out.plan.create {
            if !self.creating.contains(&m) {
                info!(
                    machine = m,
                    "reconcile: a machine being created has no instance; creating it again"
                );
                self.create(m)?;
            }
        }
        Ok(())
    }

    /// Terminate an instance that is no machine's (a task of its own); a failure is left to
    /// the next reconcile, as is an orphan found while the breaker is open.
    fn terminate_orphan(&mut self, instance: String, why: Orphan) {
        if self.orphans.contains(&instance) {
            return;
        }
        if self.breaker.allow(now()).is_err() {
            info!(%instance, why = ?why, "reconcile: orphan left for the next reconcile (backing off)");
            return;
        }
        info!(%instance, why = ?why, "reconcile: terminating an orphan");
        self.orphans.insert(instance.clone());
        self.spawn_terminate(instance, |instance, result| Msg::OrphanTerminated {
            instance,
            result,
        });
    }

    fn on_orphan_terminated(&mut self, instance: String, result: Result<(), CloudError>) {
        self.orphans.remove(&instance);
        self.cloud_calls += 1;
        match result {
            Ok(()) => {
                self.breaker.success();
                info!(%instance, "reconcile: orphan terminated");
            }
            Err(e) => {
                self.failed_call("terminate", &e);
                warn!(%instance, error = %e, "reconcile: an orphan's terminate failed; the next reconcile tries again");
            }
        }
    }

    /// Retry cloud work that waited for the breaker.
    fn retry_deferred(&mut self) -> Result<(), DaemonError> {
        while self.breaker.allow(now()).is_ok() {
            let Some(d) = self.deferred.pop_front() else {
                break;
            };
            let state = |s: &Self, m| s.journal.engine().fleet().get(m).map(|x| x.state);
            match d {
                Deferred::Create(m) if state(self, m) == Some(MachineState::Creating) => {
                    self.create(m)?
                }
                Deferred::Create(m) if state(self, m) == Some(MachineState::Removing) => {
                    self.feed(EventKind::MachineGone { machine: m })?
                }
                Deferred::Remove(m) if state(self, m).is_some() => self.remove(m)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Journal what a finished job cost: its run on `machine`, and the time the machine
    /// booted or stood idle before it (the `next-job` rule of docs/attribution.md), at the
    /// price table's price. Nothing without a price, or for a job whose start these books
    /// did not see (it started before a restart).
    fn charge(&mut self, job: JobId, machine: MachineId) -> Result<(), DaemonError> {
        let Some(book) = self.books.close(job) else {
            return Ok(());
        };
        let end = self.journal.engine().now();
        let Some(((m, started), price)) = book
            .started
            .filter(|(m, _)| *m == machine)
            .and_then(|s| Some(s).zip(self.rate(s.0)))
        else {
            return Ok(());
        };
        let per_hour = price + self.storage_per_hour;
        self.free_since.insert(m, end);
        let from = book.free_from.unwrap_or(started).min(started);
        let hours = |a: Time, b: Time| b.since(a).max(0) as f64 / 3_600_000.0;
        let (busy, idle) = (
            per_hour * hours(started, end),
            per_hour * hours(from, started),
        );
        self.counters
            .charged(book.keys.project.as_deref(), busy + idle);
        let charge = crate::core::Charge {
            machine: m,
            usd: busy + idle,
            busy_usd: busy,
            idle_usd: idle,
            wait_s: started.since(book.arrived).max(0) as f64 / 1000.0,
            usd_per_hour: per_hour,
            price: "table".into(),
            keys: book.keys,
        };
        self.feed(EventKind::JobCharged {
            job,
            charge: Box::new(charge),
        })
    }

    fn started(&mut self, job: JobId, machine: MachineId) {
        if let Some(ws) = self.waiters.remove(&job) {
            let answer = self.started_answer(job, machine);
            for w in ws {
                let _ = w.send(answer.clone());
            }
        }
    }

    fn started_answer(&self, job: JobId, machine: MachineId) -> Response {
        Response::Started {
            job,
            machine,
            instance: self.instances.get(&machine).cloned(),
            name: CreateRequest::name_from(&self.machine_name, &self.manager, machine),
            docker: self.docker.as_ref().and_then(|d| {
                d.endpoint(machine).map(|endpoint| JobTarget {
                    endpoint,
                    server_name: server_name(machine),
                    settings: d.settings.clone(),
                })
            }),
        }
    }

    fn remember_cleaned(&mut self, job: JobId) {
        if self.cleaned.1.insert(job) {
            self.cleaned.0.push_back(job);
            if self.cleaned.0.len() > REMEMBER_CLEANED
                && let Some(old) = self.cleaned.0.pop_front()
            {
                self.cleaned.1.remove(&old);
            }
        }
    }

    /// A request from the socket. Every one is idempotent: a repeat is the same request.
    fn on_request(
        &mut self,
        req: Request,
        reply: oneshot::Sender<Response>,
    ) -> Result<(), DaemonError> {
        match req {
            Request::Prepare { job, keys } => match self.journal.engine().jobs().state(job) {
                Some(JobState::Running(m)) => {
                    let _ = reply.send(self.started_answer(job, m));
                }
                Some(_) => {
                    // Asked again (a restarted daemon forgot its books): from now on.
                    let arrived = now();
                    self.books.open(
                        job,
                        JobBook {
                            keys,
                            arrived,
                            started: None,
                            free_from: None,
                        },
                    );
                    self.waiters.entry(job).or_default().push(reply)
                }
                None if self.cleaned.1.contains(&job) => {
                    let _ = reply.send(Response::Failed {
                        job,
                        reason: format!("job {job} was cleaned up already"),
                    });
                }
                None => {
                    info!(job, "job arrived (prepare)");
                    self.waiters.entry(job).or_default().push(reply);
                    self.books.open(
                        job,
                        JobBook {
                            keys,
                            arrived: now().max(self.journal.engine().now()),
                            started: None,
                            free_from: None,
                        },
                    );
                    self.feed(EventKind::JobArrived { job })?;
                }
            },
            Request::Cleanup { job } => {
                let was = match self.journal.engine().jobs().state(job) {
                    Some(JobState::Running(m)) => {
                        self.feed(EventKind::JobFinished { job })?;
                        self.charge(job, m)?;
                        "running"
                    }
                    Some(_) => {
                        self.feed(EventKind::JobCancelled { job })?;
                        for w in self.waiters.remove(&job).unwrap_or_default() {
                            let _ = w.send(Response::Failed {
                                job,
                                reason: format!("job {job} was cleaned up before it got a machine"),
                            });
                        }
                        "waiting"
                    }
                    None => "unknown",
                };
                info!(job, was, "job cleaned up");
                self.remember_cleaned(job);
                let _ = reply.send(Response::Cleaned {
                    job,
                    was: was.into(),
                });
            }
            Request::Locate { job } => {
                let answer = match self.journal.engine().jobs().state(job) {
                    Some(JobState::Running(m)) => self.started_answer(job, m),
                    Some(_) => Response::Failed {
                        job,
                        reason: format!(
                            "job {job} no longer has its machine (the machine was lost; GitLab may retry the job)"
                        ),
                    },
                    None if self.cleaned.1.contains(&job) => Response::Failed {
                        job,
                        reason: format!("job {job} was cleaned up already"),
                    },
                    None => Response::Failed {
                        job,
                        reason: format!("job {job} is not known to the daemon (no prepare?)"),
                    },
                };
                let _ = reply.send(answer);
            }
            Request::Settings => {
                let _ = reply.send(Response::Settings {
                    manager: self.manager.clone(),
                    settings: self
                        .docker
                        .as_ref()
                        .map_or_else(Settings::default, |d| d.settings.clone()),
                });
            }
            Request::Status => {
                let _ = reply.send(Response::Status(Box::new(self.status())));
            }
            Request::JournalRecords { from, max } => {
                let _ = reply.send(self.journal_records(from, max));
            }
            Request::JournalSnapshots => {
                let log = self.journal.log();
                let answer = match log.snapshot_records() {
                    Ok(v) => Response::Journal {
                        header: String::new(),
                        records: v.iter().map(|(s, b)| Stored::new(*s, b)).collect(),
                    },
                    Err(e) => Response::Error {
                        message: e.to_string(),
                    },
                };
                let _ = reply.send(answer);
            }
        }
        Ok(())
    }

    /// A page of the journal for a `journal` command (at most 20,000 records, so the loop is
    /// held for milliseconds at a time).
    fn journal_records(&self, from: u64, max: u32) -> Response {
        let log = self.journal.log();
        let page = log
            .header_record()
            .and_then(|h| Ok((h, log.records_page(from.max(1), max.min(20_000) as usize)?)));
        match page {
            Ok((header, records)) => Response::Journal {
                header: crate::live::protocol::hex(&header),
                records: records.iter().map(|(s, b)| Stored::new(*s, b)).collect(),
            },
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        }
    }

    fn status(&self) -> Status {
        let e = self.journal.engine();
        let eff = e.effective();
        let counts = e.fleet().counts();
        let machines = e
            .fleet()
            .iter()
            .map(|m| MachineStatus {
                machine: m.id,
                instance: self.instances.get(&m.id).cloned(),
                instance_type: self.got.get(&m.id).map(|g| g.instance_type.clone()),
                spot: self.got.get(&m.id).map(|g| g.spot),
                state: format!("{:?}", m.state).to_lowercase(),
                uses: m.uses,
                job: m.job,
                idle_since: (m.state == MachineState::Idle).then(|| m.last_used.to_rfc3339()),
                notice: m.notice,
                created_at: m.created_at.to_rfc3339(),
            })
            .collect();
        Status {
            manager: self.manager.clone(),
            now: now().to_rfc3339(),
            engine: e.kind().name().into(),
            period: eff.entry,
            idle_count: eff.idle.idle_count,
            idle_time_s: eff.idle.idle_time,
            idle_target: eff.idle.target(counts.total()),
            machines,
            waiting: e.jobs().queue().collect(),
            running: e.jobs().running(),
            creating_calls: self.creating.len(),
            terminating_calls: self.terminating.len(),
            backing_off_until: self.breaker.allow(now()).err().map(|t| t.to_rfc3339()),
        }
    }

    fn metrics(&self) -> String {
        let s = self.status();
        let priced = self.price_per_hour.is_some() || self.got.values().any(|g| g.rate.is_some());
        let fleet = self.journal.engine().fleet();
        let alive = priced.then(|| {
            crate::live::metrics::alive_usd(
                now(),
                fleet.iter().map(|m| (m.id, m.created_at)),
                |m| self.rate(m),
            )
        });
        self.counters.render(&fleet.counts(), &s, alive)
    }

    /// SIGHUP: config.toml (and scalecast.toml) read again, an invalid file refused and the
    /// settings in force kept. The engine's settings apply at once (a journaled
    /// event), as do the container settings and MachineName; new MachineOptions come back to
    /// be applied to the cloud ([`Daemon::reconfigured`]), which may call it.
    fn reload(&mut self) -> Result<Option<Ec2Options>, DaemonError> {
        let loaded = ConfigFile::load(&self.opts.config).and_then(|cfg| {
            let runner = cfg.runner(self.opts.runner.as_deref())?;
            let machine = runner
                .machine
                .as_ref()
                .ok_or_else(|| crate::config::InputError {
                    file: self.opts.config.display().to_string(),
                    line: 0,
                    message: format!("runner {:?} has no [runners.machine]", runner.name),
                })?;
            Ok((
                cfg.settings(runner, self.opts.host_tz),
                Settings::of(runner),
                machine.ec2.clone(),
                machine.machine_name.clone(),
            ))
        });
        let mut new_ec2 = None;
        let loaded = loaded.map(|(s, docker, ec2, name)| {
            if let Some(d) = &mut self.docker {
                d.settings = docker;
            }
            if name != self.machine_name {
                info!(from = %self.machine_name, to = %name, "MachineName changed: new machines take it");
                self.machine_name = name;
            }
            if ec2 != self.ec2 {
                new_ec2 = Some(ec2);
            }
            s
        });
        match loaded {
            Err(e) => error!(error = %e, "config reload refused; the settings in force are kept"),
            Ok(s) if &s == self.journal.engine().settings() => {
                info!("config reloaded: the engine's settings are unchanged")
            }
            Ok(s) => {
                info!("config reloaded: new settings");
                self.feed(EventKind::ConfigReloaded {
                    settings: Box::new(s),
                })?;
            }
        }
        match Fallbacks::load(&fallbacks_path(&self.opts.config)) {
            Ok(f) => self.fallbacks = Rc::new(f),
            Err(e) => error!(error = %e, "scalecast.toml refused; the fallbacks in force are kept"),
        }
        Ok(new_ec2)
    }

    /// The cloud's answer to new MachineOptions (or that it gave none in time): taken for the
    /// machines created from now on, or refused with the options in force kept (a later
    /// SIGHUP tries again).
    fn reconfigured(
        &mut self,
        ec2: Ec2Options,
        answer: Result<Result<C, CloudError>, tokio::time::error::Elapsed>,
    ) {
        match answer {
            Ok(Ok(cloud)) => {
                info!(
                    instance_type = %ec2.instance_type,
                    spot = ec2.request_spot_instance,
                    "MachineOptions reloaded: new machines use them; the machines already made stay as they are"
                );
                (self.price_per_hour, self.storage_per_hour) = machine_prices(&ec2);
                self.cloud = Rc::new(cloud);
                self.ec2 = ec2;
            }
            Ok(Err(e)) => {
                error!(error = %e, "MachineOptions not applied; the options in force are kept")
            }
            Err(_) => error!(
                seconds = RECONFIGURE_TIMEOUT.as_secs(),
                "MachineOptions not applied: EC2 did not answer in time; the options in force are kept"
            ),
        }
    }

    /// When the loop next has something to do by the clock.
    fn next_wake(&self) -> Time {
        // While a list is in flight its answer wakes the loop; its due time would spin it.
        let mut t = if self.listing || self.reconciling.is_some() {
            self.next_reconcile
        } else {
            self.next_list.min(self.next_reconcile)
        };
        if let Some(d) = self.journal.poll_timeout() {
            t = t.min(d);
        }
        if !self.deferred.is_empty() {
            t = t.min(self.breaker.allow(now()).err().unwrap_or(now()));
        }
        if let Some(sh) = &self.shipping
            && !sh.stopped
            && !sh.in_flight
        {
            t = t.min(sh.next);
        }
        t
    }

    fn list_interval(&self) -> Duration {
        let creating = self
            .journal
            .engine()
            .fleet()
            .iter()
            .any(|m| m.state == MachineState::Creating && self.instances.contains_key(&m.id));
        if creating {
            self.opts.ready_poll
        } else {
            self.opts.spot_poll.min(Duration::from_secs(15))
        }
    }
}

fn fallbacks_path(config: &Path) -> PathBuf {
    config
        .parent()
        .unwrap_or(Path::new("."))
        .join("scalecast.toml")
}

/// Serve one executor connection: a request per line, an answer per line.
async fn serve_client(stream: tokio::net::UnixStream, tx: mpsc::UnboundedSender<Msg>) {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let (otx, orx) = oneshot::channel();
                if tx.send(Msg::Client(req, otx)).is_err() {
                    return;
                }
                match orx.await {
                    Ok(a) => a,
                    Err(_) => return, // the daemon stopped: the client will try again
                }
            }
            Err(e) => Response::Error {
                message: format!("not a request: {e}"),
            },
        };
        let mut out = serde_json::to_string(&answer).expect("answers encode");
        out.push('\n');
        if w.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Serve `GET /metrics` as Prometheus text.
async fn serve_metrics(mut stream: tokio::net::TcpStream, tx: mpsc::UnboundedSender<Msg>) {
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..got]);
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = if head.starts_with("GET ") && (path == "/metrics" || path == "/") {
        let (otx, orx) = oneshot::channel();
        if tx.send(Msg::Metrics(otx)).is_err() {
            return;
        }
        ("200 OK", orx.await.unwrap_or_default())
    } else {
        ("404 Not Found", "only GET /metrics is served\n".to_string())
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
}

/// What `unshipped` returns: the event records and a snapshot record to ship.
type ShipBatch = (Vec<(u64, Vec<u8>)>, Option<(u64, Vec<u8>)>);

/// The configured region (for S3 as for EC2).
fn region_of(opts: &Options) -> Result<String, DaemonError> {
    let cfg = ConfigFile::load(&opts.config)?;
    let runner = cfg.runner(opts.runner.as_deref())?;
    Ok(runner
        .machine
        .as_ref()
        .ok_or(DaemonError::NoMachine)?
        .ec2
        .region
        .clone())
}

/// Open or create the journal of `state`, and the settings `config` gives.
fn open_state(
    opts: &Options,
) -> Result<
    (
        Journal,
        crate::core::Settings,
        crate::config::machine_options::Ec2Options,
        String,
    ),
    DaemonError,
> {
    let cfg = ConfigFile::load(&opts.config)?;
    let runner = cfg.runner(opts.runner.as_deref())?;
    let machine = runner.machine.as_ref().ok_or(DaemonError::NoMachine)?;
    let settings = cfg.settings(runner, opts.host_tz);
    if !opts.state.exists() {
        std::fs::create_dir_all(&opts.state)
            .map_err(|e| DaemonError::Io(opts.state.display().to_string(), e))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&opts.state, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| DaemonError::Io(opts.state.display().to_string(), e))?;
    }
    let dir = opts.state.join("journal");
    let journal = if crate::journal::store::is_store(&dir) {
        let (j, rec) = Journal::open(&dir)?;
        info!(recovery = %rec, "journal recovered");
        j
    } else {
        Journal::create(
            &dir,
            Header::new(EngineKind::Scalecast, settings.clone(), now(), None),
        )?
    };
    Ok((
        journal,
        settings,
        machine.ec2.clone(),
        machine.machine_name.clone(),
    ))
}

/// A machine of these MachineOptions: its estimated $/h (the spot discount applied) when the
/// price table knows its type, and its root volume's storage, $/h.
fn machine_prices(ec2: &Ec2Options) -> (Option<f64>, f64) {
    let price = hourly_price(&ec2.region, &ec2.instance_type, ec2.request_spot_instance);
    let storage =
        ec2.root_size as f64 * crate::prices::GP3_USD_PER_GB_MONTH / crate::prices::HOURS_PER_MONTH;
    (price, storage)
}

/// An instance's estimated $/h from the price table: on-demand, less the advisor's average
/// saving for spot. None when the table does not know the type.
fn hourly_price(region: &str, instance_type: &str, spot: bool) -> Option<f64> {
    crate::prices::ondemand_usd_per_hour(instance_type).map(|p| {
        match crate::prices::advisor(region, instance_type) {
            Some((savings, _)) if spot => p * (1.0 - savings / 100.0),
            _ => p,
        }
    })
}

/// Run on EC2 until SIGTERM or Ctrl-C.
pub async fn run(opts: &Options) -> Result<(), DaemonError> {
    // Listened for before anything else: a SIGTERM that comes while the daemon starts (the
    // cloud connected, the journal recovered, the fleet reconciled) is kept and stops it
    // cleanly once it has started, rather than killing it midway (the default action, until
    // a handler is installed).
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let cfg = ConfigFile::load(&opts.config)?;
    let runner = cfg.runner(opts.runner.as_deref())?;
    let machine = runner.machine.as_ref().ok_or(DaemonError::NoMachine)?;
    let stop = async move {
        match term {
            Some(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);
    // Connecting resolves the image and the security groups (EC2 calls that may hang): a stop
    // meanwhile ends it, nothing yet started.
    let cloud = tokio::select! {
        biased;
        _ = &mut stop => {
            info!("stopped while connecting to EC2; nothing was started");
            return Ok(());
        }
        cloud = crate::live::ec2::Ec2Cloud::connect(&machine.ec2) => cloud?,
    };
    tokio::task::LocalSet::new()
        .run_until(serve(opts, cloud, stop))
        .await
}

/// The daemon on `cloud` until `stop` completes. Must run inside a `LocalSet` (cloud calls
/// are local tasks, so a cloud need not be `Send`).
pub async fn serve<C: Cloud + 'static>(
    opts: &Options,
    cloud: C,
    stop: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    if let Some(target) = &opts.restore {
        let region = region_of(opts)?;
        let shipper = Shipper::connect(target.clone(), &region).await;
        let r = crate::live::ship::restore(&shipper, &opts.state).await?;
        info!(from = %target, manager = %r.manager, events = r.events, segments = r.segments, checked_snapshot = ?r.checked_snapshot, "state restored");
    }
    let (journal, settings, ec2, machine_name) = open_state(opts)?;
    let manager = manager_id(&opts.state)?;
    let fallbacks = Fallbacks::load(&fallbacks_path(&opts.config))?;
    let (price_per_hour, storage_per_hour) = machine_prices(&ec2);
    let (tx, mut rx) = mpsc::unbounded_channel();
    // The books of jobs that were running or waiting when the daemon stopped, and since when
    // each machine has stood free (created, or its last job ended), from the state recovered.
    let mut books = Books::load(&opts.state, |j| journal.engine().jobs().state(j).is_some());
    // A start the daemon journaled but did not live to write in its book: the fleet knows it
    // (a running job's machine was last used when it started).
    let fleet = journal.engine().fleet();
    for (job, state) in journal.engine().jobs().iter() {
        if let JobState::Running(m) = state
            && let Some(machine) = fleet.get(m)
        {
            books.recovered_start(job, m, machine.last_used);
        }
    }
    let free_since: HashMap<MachineId, Time> = journal
        .engine()
        .fleet()
        .iter()
        .filter(|m| m.job.is_none())
        .map(|m| {
            (
                m.id,
                if m.uses == 0 {
                    m.created_at
                } else {
                    m.last_used
                },
            )
        })
        .collect();
    let mut d = Daemon {
        journal,
        cloud: Rc::new(cloud),
        tx: tx.clone(),
        opts: opts.clone(),
        manager: manager.clone(),
        machine_name,
        ec2,
        fallbacks: Rc::new(fallbacks),
        breaker: Breaker::for_cloud(crate::journal::fnv1a(manager.as_bytes())),
        instances: BTreeMap::new(),
        creating: BTreeSet::new(),
        terminating: BTreeSet::new(),
        orphans: BTreeSet::new(),
        deferred: VecDeque::new(),
        listing: false,
        next_list: now(),
        cloud_calls: 0,
        reconciling: None,
        reconcile_misses: 0,
        next_reconcile: now(),
        pending: VecDeque::new(),
        waiters: HashMap::new(),
        cleaned: (VecDeque::new(), HashSet::new()),
        counters: Counters::default(),
        price_per_hour,
        got: HashMap::new(),
        storage_per_hour,
        books,
        free_since,
        shipping: None,
        docker: None,
    };
    d.learn_from_journal();
    if let Some(o) = &opts.docker {
        let cfg = ConfigFile::load(&opts.config)?;
        let runner = cfg.runner(opts.runner.as_deref())?;
        let ca = Ca::open(&opts.state)?;
        // Pairs kept for machines that went while no daemon ran.
        let fleet = d.journal.engine().fleet();
        ca.keep_machines(|m| fleet.get(m).is_some());
        d.docker = Some(DockerSide {
            opts: o.clone(),
            ca,
            files: crate::live::tls::client_files(&opts.state)?,
            settings: Settings::of(runner),
            addresses: BTreeMap::new(),
            probing: BTreeSet::new(),
        });
    }
    if let Some(target) = &opts.ship {
        d.shipping = Some(Shipping {
            shipper: Rc::new(Shipper::connect(target.clone(), &d.ec2.region).await),
            claimed: None,
            in_flight: false,
            stopped: false,
            next: now(),
        });
    }
    info!(%manager, state = %opts.state.display(), "scalecast live starting");
    if d.journal.engine().settings() != &settings {
        d.feed(EventKind::ConfigReloaded {
            settings: Box::new(settings),
        })?;
    }
    // A reconcile waits on the cloud for its list (its terminates and creates are tasks of
    // their own, like every other): a stop meanwhile drops it, at start-up as in the loop. That
    // is as safe as a SIGKILL there, which the daemon survives by design: every event it fed
    // is journaled, and the next start's reconcile lists again and finishes what this left.
    tokio::pin!(stop);
    let sock = socket_path(&opts.state);
    let result: Result<(), DaemonError> = 'run: {
        let reconciled = tokio::select! {
            biased;
            _ = &mut stop => {
                info!("stopped during the start-up reconcile");
                break 'run Ok(());
            }
            r = d.reconcile() => r?,
        };
        d.feed(EventKind::Tick)?;
        d.act()?;

        // The executor socket: the journal's lock says no other daemon owns this directory, so a
        // socket file left by a killed one is stale.
        let _ = std::fs::remove_file(&sock);
        let listener = tokio::net::UnixListener::bind(&sock)
            .map_err(|e| DaemonError::Io(sock.display().to_string(), e))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| DaemonError::Io(sock.display().to_string(), e))?;
        }
        let metrics = match opts.metrics {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| DaemonError::Io(format!("--metrics {addr}"), e))?,
            ),
            None => None,
        };
        info!(socket = %sock.display(), metrics = ?opts.metrics, "ready");

        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| DaemonError::Io("SIGHUP".into(), e))?;
        let every = |d: &Daemon<C>| now().plus_millis(d.opts.reconcile_every.as_millis() as i64);
        d.next_reconcile = every(&d);
        if !reconciled {
            // The journal's machines are not adopted yet (their instances unknown): soon, not
            // in five minutes.
            d.next_reconcile = now().plus_millis(d.opts.ready_poll.as_millis() as i64);
            warn!("the start-up reconcile could not list the instances; reconciling again soon");
        }
        loop {
            let wake = d.next_wake();
            let sleep = Duration::from_millis(wake.since(now()).max(0) as u64);
            let mut new_ec2 = None;
            let mut reconcile_list = None;
            let step: Result<(), DaemonError> = tokio::select! {
                _ = &mut stop => break Ok(()),
                _ = hup.recv() => d.reload().map(|n| new_ec2 = n),
                Some(msg) = rx.recv() => match msg {
                    Msg::Client(req, reply) => d.on_request(req, reply),
                    Msg::Created { machine, made, fell } => d.on_created(machine, made, fell),
                    Msg::Terminated { machine, instance, result } => d.on_terminated(machine, instance, result),
                    Msg::OrphanTerminated { instance, result } => { d.on_orphan_terminated(instance, result); Ok(()) }
                    Msg::Listed(l) => d.on_listed(l),
                    Msg::Reconciling(l) => {
                        reconcile_list = d.on_reconcile_list(l);
                        Ok(())
                    }
                    Msg::Metrics(reply) => { let _ = reply.send(d.metrics()); Ok(()) }
                    Msg::Claimed(r) => { d.on_ship(Some(r), None); Ok(()) }
                    Msg::Shipped(r) => { d.on_ship(None, Some(r)); Ok(()) }
                    Msg::Probed { machine, result } => d.on_probed(machine, result),
                },
                Ok((stream, _)) = listener.accept() => {
                    tokio::task::spawn_local(serve_client(stream, tx.clone()));
                    Ok(())
                }
                Ok((stream, _)) = async { match &metrics { Some(l) => l.accept().await, None => std::future::pending().await } } => {
                    tokio::task::spawn_local(serve_metrics(stream, tx.clone()));
                    Ok(())
                }
                _ = tokio::time::sleep(sleep) => Ok(()),
            };
            if let Some(listed) = reconcile_list {
                // Nothing changed in the cloud since it was listed: reconcile with it at once,
                // before anything else can start a call.
                if let Err(e) = d.reconcile_with(&listed).and_then(|()| d.act()) {
                    break Err(e);
                }
            }
            if let Some(ec2) = new_ec2 {
                // New MachineOptions resolve their image and security groups on EC2 first.
                let answer = tokio::select! {
                    biased;
                    _ = &mut stop => break Ok(()),
                    a = tokio::time::timeout(RECONFIGURE_TIMEOUT, d.cloud.reconfigure(&ec2)) => a,
                };
                d.reconfigured(ec2, answer);
            }
            if let Err(e) = step.and_then(|()| {
                if d.journal.poll_timeout().is_some_and(|t| now() >= t) {
                    d.feed(EventKind::Tick)?;
                }
                d.retry_deferred()?;
                d.act()?;
                d.ship_tick()
            }) {
                break Err(e);
            }
            if now() >= d.next_list && !d.listing && d.reconciling.is_none() {
                d.list();
                d.next_list = now().plus_millis(d.list_interval().as_millis() as i64);
            }
            if now() >= d.next_reconcile && d.reconciling.is_none() {
                if !(d.creating.is_empty()
                    && d.terminating.is_empty()
                    && d.orphans.is_empty()
                    && !d.listing)
                {
                    d.next_reconcile = now().plus_millis(d.opts.ready_poll.as_millis() as i64);
                } else if d.reconcile_misses >= MAX_RECONCILE_MISSES {
                    // Overtaken too often (a busy fleet): this one holds everything else back.
                    d.reconcile_misses = 0;
                    let reconciled = tokio::select! {
                        biased;
                        _ = &mut stop => break Ok(()),
                        r = d.reconcile() => r.map(|_| ()),
                    };
                    if let Err(e) = reconciled.and_then(|()| d.act()) {
                        break Err(e);
                    }
                    d.next_reconcile = every(&d);
                } else {
                    d.ask_reconcile();
                    d.next_reconcile = every(&d);
                }
            }
        }
    };
    let _ = std::fs::remove_file(&sock);
    let (engine, log) = d.journal.parts_mut();
    let closed = log.close(engine);
    // The last events and the closing snapshot go to S3 too (at most ten seconds).
    if let Some(sh) = &d.shipping
        && let (Some(marks), false) = (sh.claimed, sh.stopped)
        && closed.is_ok()
    {
        let shipper = sh.shipper.clone();
        match d.unshipped(marks) {
            Ok((records, snapshot)) => {
                match tokio::time::timeout(Duration::from_secs(10), shipper.ship(records, snapshot))
                    .await
                {
                    Ok(Ok(_)) => info!("journal shipped"),
                    Ok(Err(e)) => warn!(error = %e, "the last journal shipping failed"),
                    Err(_) => warn!("the last journal shipping timed out"),
                }
            }
            Err(e) => warn!(error = %e, "the last journal shipping failed"),
        }
    }
    match result {
        Ok(()) => {
            closed?;
            info!("stopped; the machines stay for the next start to adopt");
            Ok(())
        }
        Err(e) => Err(e),
    }
}
