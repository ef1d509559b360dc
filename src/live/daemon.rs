//! The daemon's loop, first cut: it keeps the runner's fleet on EC2 as the engine decides,
//! from the journal in its state directory. Every fact becomes an event fed through the one
//! driver with the journal as its log (each flushed before it is applied); every action is
//! carried out by the cloud port: creates (with capacity fallbacks) and removals. A machine
//! is ready when its instance runs. Reconcile runs on start and every five minutes. SIGTERM
//! or Ctrl-C stops it cleanly: the machines stay for the next start to adopt.
//!
//! Jobs do not reach it yet (the executor socket comes next): this keeps the idle pool.

use crate::config::ConfigFile;
use crate::core::{Action, ActionKind, EngineKind, Event, EventKind, MachineId, Time};
use crate::journal::{Header, Journal, JournalError};
use crate::live::breaker::Breaker;
use crate::live::cloud::{Cloud, CloudError, CreateRequest, InstanceState};
use crate::live::ec2::Ec2Cloud;
use crate::live::fallback::{Fallbacks, create_with_fallback};
use crate::live::reconcile::reconcile;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often the daemon looks at its instances for readiness while some are being created.
const READY_POLL: Duration = Duration::from_secs(2);
/// How often it reconciles with the cloud.
const RECONCILE_EVERY_MS: i64 = 5 * 60_000;

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
}

/// What the daemon is started with.
pub struct Options {
    pub config: PathBuf,
    pub runner: Option<String>,
    pub state: PathBuf,
    /// Time zone for autoscaling entries whose Timezone is empty or `Local`.
    pub host_tz: chrono_tz::Tz,
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

/// The daemon: its driver (journal first), its cloud, and what it knows of its instances.
struct Daemon<C: Cloud> {
    journal: Journal,
    cloud: C,
    manager: String,
    machine_name: String,
    fallbacks: Fallbacks,
    breaker: Breaker,
    instances: BTreeMap<MachineId, String>,
    pending: Vec<Action>,
}

impl<C: Cloud> Daemon<C> {
    /// Feed one fact at the clock's time (never before the engine's own), journaled first.
    fn feed(&mut self, kind: EventKind) -> Result<(), DaemonError> {
        let at = now().max(self.journal.engine().now());
        match self.journal.handle(&Event::new(at, kind)) {
            Ok(()) => {}
            Err(crate::drive::DriveError::Log(e)) => return Err(e.into()),
            // A fact that no longer fits (the machine went meanwhile): journaled, state kept.
            Err(crate::drive::DriveError::Refused { error, .. }) => {
                eprintln!("scalecast live: event refused: {error}");
            }
        }
        self.pending.extend(self.journal.drain_actions());
        Ok(())
    }

    /// Carry out every action decided so far.
    async fn act(&mut self) -> Result<(), DaemonError> {
        while !self.pending.is_empty() {
            let actions = std::mem::take(&mut self.pending);
            for a in actions {
                eprintln!("{}", serde_json::to_string(&a).unwrap_or_default());
                match a.kind {
                    ActionKind::CreateMachine { machine, .. } => self.create(machine).await?,
                    ActionKind::RemoveMachine { machine, .. } => self.remove(machine).await?,
                    // Jobs reach the daemon through the executor socket (not built yet).
                    ActionKind::StartJob { .. } | ActionKind::RequeueJob { .. } => {}
                }
            }
        }
        Ok(())
    }

    async fn create(&mut self, machine: MachineId) -> Result<(), DaemonError> {
        if let Err(until) = self.breaker.allow(now()) {
            tokio::time::sleep(Duration::from_millis(until.since(now()).max(0) as u64)).await;
        }
        let req = CreateRequest {
            manager: self.manager.clone(),
            machine,
            name: CreateRequest::name_from(&self.machine_name, &self.manager, machine),
            ..Default::default()
        };
        let (made, fell) = create_with_fallback(&self.cloud, &req, &self.fallbacks).await;
        for f in fell {
            eprintln!("scalecast live: machine {machine}: fell back: {}", f.error);
        }
        match made {
            Ok(i) => {
                self.breaker.success();
                self.instances.insert(machine, i.id);
                Ok(())
            }
            Err(e) => {
                if matches!(e, CloudError::Throttled { .. } | CloudError::Unreachable(_)) {
                    self.breaker.failure(now());
                }
                eprintln!("scalecast live: machine {machine}: {e}");
                self.feed(EventKind::MachineFailed { machine })
            }
        }
    }

    async fn remove(&mut self, machine: MachineId) -> Result<(), DaemonError> {
        match self.instances.get(&machine).cloned() {
            Some(id) => match self.cloud.terminate(&id).await {
                Ok(()) => {
                    self.instances.remove(&machine);
                    self.feed(EventKind::MachineGone { machine })
                }
                // Left for reconcile, which terminates what the engine is removing.
                Err(e) => {
                    eprintln!("scalecast live: terminating {id}: {e}");
                    Ok(())
                }
            },
            None => self.feed(EventKind::MachineGone { machine }),
        }
    }

    /// Machines being created whose instance now runs become ready.
    async fn check_ready(&mut self) -> Result<(), DaemonError> {
        let creating: Vec<MachineId> = self
            .journal
            .engine()
            .fleet()
            .iter()
            .filter(|m| m.state == crate::core::fleet::MachineState::Creating)
            .map(|m| m.id)
            .filter(|m| self.instances.contains_key(m))
            .collect();
        if creating.is_empty() {
            return Ok(());
        }
        let listed = self.cloud.list(&self.manager).await?;
        for m in creating {
            let running = listed
                .iter()
                .any(|i| i.machine == Some(m) && i.state == InstanceState::Running);
            if running {
                self.feed(EventKind::MachineReady { machine: m })?;
            }
        }
        Ok(())
    }

    async fn reconcile(&mut self) -> Result<(), DaemonError> {
        let out = reconcile(
            &self.cloud,
            &mut self.journal,
            &self.manager,
            &self.machine_name,
            now(),
        )
        .await
        .map_err(|e| match e {
            crate::live::reconcile::ReconcileError::List(c) => DaemonError::Cloud(c),
            crate::live::reconcile::ReconcileError::Drive(crate::drive::DriveError::Log(j)) => {
                DaemonError::Journal(j)
            }
            crate::live::reconcile::ReconcileError::Drive(other) => {
                DaemonError::Io("reconcile".into(), std::io::Error::other(other.to_string()))
            }
        })?;
        for (m, id) in out.plan.adopt.iter().chain(&out.created) {
            self.instances.insert(*m, id.clone());
        }
        for (what, e) in &out.failed {
            eprintln!("scalecast live: reconcile: {what}: {e}");
        }
        self.pending.extend(out.actions);
        Ok(())
    }
}

/// Run until SIGTERM or Ctrl-C.
pub async fn run(opts: &Options) -> Result<(), DaemonError> {
    let cfg = ConfigFile::load(&opts.config)?;
    let runner = cfg.runner(opts.runner.as_deref())?;
    let machine = runner.machine.as_ref().ok_or(DaemonError::NoMachine)?;
    let settings = cfg.settings(runner, opts.host_tz);
    std::fs::create_dir_all(&opts.state)
        .map_err(|e| DaemonError::Io(opts.state.display().to_string(), e))?;
    let manager = manager_id(&opts.state)?;
    let dir = opts.state.join("journal");
    let journal = if crate::journal::store::is_store(&dir) {
        let (j, rec) = Journal::open(&dir)?;
        eprintln!("scalecast live: recovered: {rec}");
        j
    } else {
        Journal::create(
            &dir,
            Header::new(EngineKind::Scalecast, settings.clone(), now(), None),
        )?
    };
    let fallbacks = Fallbacks::load(
        &opts
            .config
            .parent()
            .unwrap_or(Path::new("."))
            .join("scalecast.toml"),
    )?;
    let cloud = Ec2Cloud::connect(&machine.ec2).await?;
    let mut d = Daemon {
        journal,
        cloud,
        manager: manager.clone(),
        machine_name: machine.machine_name.clone(),
        fallbacks,
        breaker: Breaker::for_cloud(crate::journal::fnv1a(manager.as_bytes())),
        instances: BTreeMap::new(),
        pending: Vec::new(),
    };
    eprintln!(
        "scalecast live: manager {manager}, state {}",
        opts.state.display()
    );
    if d.journal.engine().settings() != &settings {
        d.feed(EventKind::ConfigReloaded {
            settings: Box::new(settings),
        })?;
    }
    d.reconcile().await?;
    d.feed(EventKind::Tick)?;
    d.act().await?;
    let mut next_reconcile = now().plus_millis(RECONCILE_EVERY_MS);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| DaemonError::Io("SIGTERM".into(), e))?;
    loop {
        let deadline = d.journal.poll_timeout();
        let until_deadline = deadline.map_or(READY_POLL, |t| {
            Duration::from_millis(t.since(now()).clamp(0, READY_POLL.as_millis() as i64) as u64)
        });
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(until_deadline) => {}
        }
        if deadline.is_some_and(|t| now() >= t) {
            d.feed(EventKind::Tick)?;
        }
        d.check_ready().await?;
        if now() >= next_reconcile {
            d.reconcile().await?;
            next_reconcile = now().plus_millis(RECONCILE_EVERY_MS);
        }
        d.act().await?;
    }
    eprintln!("scalecast live: stopping; the machines stay for the next start");
    Ok(())
}
