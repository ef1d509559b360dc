//! Each machine's story from a journal: why the engine made it, what the cloud made for it,
//! what it ran, and why and when it went. The journal holds the facts (events); the engine's
//! actions, each with its reason, are its answers to them, so replaying the events through
//! the engine gives exactly the actions the writer carried out, reasons included.

use crate::core::{
    ActionKind, CreateReason, Engine, EventKind, Launch, MachineId, RemoveReason, Time,
};
use crate::drive::Driver;
use crate::journal::{Dropped, JournalResult, Reader};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One machine, from the decision to make it to its end.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Story {
    pub machine: MachineId,
    pub created_at: Time,
    /// Why the engine made it.
    pub created: CreateReason,
    /// What the cloud made for it (live journals; a simulated run has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
    pub ready_at: Option<Time>,
    /// Jobs started on it (a requeued job counts each time it starts).
    pub jobs: u32,
    /// When a spot interruption notice came for it.
    pub notice_at: Option<Time>,
    /// When the engine decided to remove it, and why.
    pub removed_at: Option<Time>,
    pub removed: Option<RemoveReason>,
    /// When it ended: gone (removed, reclaimed or lost) or failed (never made).
    pub ended_at: Option<Time>,
    pub ended: Option<End>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    Gone,
    Failed,
}

/// Every machine the journal's events made, in creation order, and the torn tail left out.
pub fn stories(r: &Reader) -> JournalResult<(Vec<Story>, Option<Dropped>)> {
    let h = &r.header;
    let mut driver = Driver::unlogged(Engine::new(h.engine, h.settings.clone(), h.start));
    let mut out: BTreeMap<MachineId, Story> = BTreeMap::new();
    let dropped = r.events(|_, ev| {
        let at = ev.at;
        match &ev.kind {
            EventKind::MachineLaunched { machine, launch } => {
                if let Some(s) = out.get_mut(machine) {
                    s.launch = Some((**launch).clone());
                }
            }
            EventKind::MachineReady { machine } => {
                if let Some(s) = out.get_mut(machine) {
                    s.ready_at.get_or_insert(at);
                }
            }
            EventKind::SpotNotice { machine } => {
                if let Some(s) = out.get_mut(machine) {
                    s.notice_at.get_or_insert(at);
                }
            }
            EventKind::MachineGone { machine } => ended(&mut out, *machine, End::Gone, at),
            EventKind::MachineFailed { machine } => ended(&mut out, *machine, End::Failed, at),
            _ => {}
        }
        // A refused event changed nothing for the writer either.
        let _ = driver.handle(&ev);
        for a in driver.drain_actions() {
            match a.kind {
                ActionKind::CreateMachine { machine, reason } => {
                    out.insert(
                        machine,
                        Story {
                            machine,
                            created_at: a.at,
                            created: reason,
                            launch: None,
                            ready_at: None,
                            jobs: 0,
                            notice_at: None,
                            removed_at: None,
                            removed: None,
                            ended_at: None,
                            ended: None,
                        },
                    );
                }
                ActionKind::StartJob { machine, .. } => {
                    if let Some(s) = out.get_mut(&machine) {
                        s.jobs += 1;
                    }
                }
                ActionKind::RemoveMachine { machine, reason } => {
                    if let Some(s) = out.get_mut(&machine)
                        && s.removed.is_none()
                    {
                        s.removed = Some(reason);
                        s.removed_at = Some(a.at);
                    }
                }
                ActionKind::RequeueJob { .. } => {}
            }
        }
    })?;
    Ok((out.into_values().collect(), dropped))
}

/// Machine `m` ended at `at`, as `end` says (the first end counts).
fn ended(out: &mut BTreeMap<MachineId, Story>, m: MachineId, end: End, at: Time) {
    if let Some(s) = out.get_mut(&m)
        && s.ended.is_none()
    {
        s.ended = Some(end);
        s.ended_at = Some(at);
    }
}

/// Why a machine was made, in words.
pub fn created_because(r: &CreateReason) -> String {
    match *r {
        CreateReason::IdlePool {
            available,
            target,
            entry,
        } => format!(
            "for the idle pool: {available} available against a target of {target} ({})",
            match entry {
                Some(e) => format!("autoscaling entry {e}"),
                None => "[runners.machine]'s own settings".into(),
            }
        ),
        CreateReason::OnDemand { waiting, creating } => format!(
            "for waiting jobs: {waiting} waiting, {creating} machine(s) being created for them"
        ),
    }
}

/// Why a machine was removed, in words.
pub fn removed_because(r: &RemoveReason) -> String {
    match *r {
        RemoveReason::TooManyIdleMachines {
            idle_s,
            idle_time,
            available,
            target,
        } => format!(
            "idle {idle_s} s, past IdleTime ({idle_time} s), with {available} available against a target of {target}"
        ),
        RemoveReason::TooManyBuilds { uses, max_builds } => {
            format!("it ran {uses} jobs (MaxBuilds = {max_builds})")
        }
        RemoveReason::TooManyMachines { total, limit } => {
            format!("{total} machines, more than limit = {limit}")
        }
        RemoveReason::SpotNotice => "a spot interruption notice".into(),
    }
}

impl Story {
    /// The story as a few lines of text.
    pub fn describe(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "machine {}: made at {}, {}",
            self.machine,
            self.created_at,
            created_because(&self.created)
        );
        if let Some(l) = &self.launch {
            let market = |spot: bool| if spot { "spot" } else { "on-demand" };
            let _ = write!(
                o,
                "  launched {} as {} {}",
                l.instance,
                l.instance_type,
                market(l.spot)
            );
            for a in &l.fell_back {
                let _ = write!(
                    o,
                    "; before it {} {} found no capacity: {}",
                    a.instance_type,
                    market(a.spot),
                    a.error
                );
            }
            o.push('\n');
        }
        match self.ready_at {
            Some(t) => {
                let _ = writeln!(o, "  ready at {t}; {} job(s) started on it", self.jobs);
            }
            None => {
                let _ = writeln!(o, "  never ready");
            }
        }
        if let Some(t) = self.notice_at {
            let _ = writeln!(o, "  spot interruption notice at {t}");
        }
        if let (Some(t), Some(r)) = (self.removed_at, &self.removed) {
            let _ = writeln!(o, "  removal decided at {t}: {}", removed_because(r));
        }
        match (self.ended, self.ended_at) {
            (Some(End::Gone), Some(t)) => {
                let how = if self.removed.is_some() {
                    "gone"
                } else {
                    "gone without being removed (reclaimed or lost)"
                };
                let _ = writeln!(o, "  {how} at {t}");
            }
            (Some(End::Failed), Some(t)) => {
                let _ = writeln!(o, "  creation failed at {t}");
            }
            _ => {
                let _ = writeln!(o, "  still there at the journal's end");
            }
        }
        o
    }
}
