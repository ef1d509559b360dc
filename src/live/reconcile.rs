//! Reconcile: what the journal's fleet and the cloud's list of this manager's instances say
//! together, and what to do so they agree. [`plan`] is pure; [`settle`] plans and feeds the
//! `machine_gone` events through the driver, leaving the plan's cloud calls to its caller (the
//! daemon makes them as tasks of its own); [`reconcile`] lists, settles and makes those calls
//! one after another (terminates, creates re-issued with the same client token).
//!
//! The rules (docs/live.md):
//! - an instance whose machine the engine knows (creating, idle, used) is adopted; if several
//!   instances carry one machine id, the first listed is kept and the others terminated;
//! - an instance whose machine the engine is removing, or never heard of, or with no machine
//!   tag, is terminated (an orphan);
//! - a machine the engine has as idle, used or removing with no instance is gone;
//! - a machine the engine is creating with no instance is created again (same client token,
//!   so AWS never makes two).

use crate::core::fleet::{Fleet, MachineState};
use crate::core::{Action, Event, EventKind, MachineId, Time};
use crate::drive::{DriveError, Driver, EventLog};
use crate::live::cloud::{Cloud, CloudError, CreateRequest, Instance};
use std::collections::BTreeMap;

/// Why an instance is terminated at reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Orphan {
    /// No `scalecast:machine` tag (or not a number).
    Untagged,
    /// Its machine is not in the journal's fleet.
    UnknownMachine(MachineId),
    /// The engine decided to remove its machine.
    Removing(MachineId),
    /// A second instance for one machine id.
    Duplicate(MachineId),
}

/// What to do so the fleet and the cloud agree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Machines and the instance that is theirs.
    pub adopt: Vec<(MachineId, String)>,
    /// Instances to terminate, and why.
    pub terminate: Vec<(String, Orphan)>,
    /// Machines with no instance any more: a `machine_gone` event each.
    pub gone: Vec<MachineId>,
    /// Machines being created with no instance yet: create again.
    pub create: Vec<MachineId>,
}

pub fn plan(fleet: &Fleet, instances: &[Instance]) -> Plan {
    let mut p = Plan::default();
    let mut owner: BTreeMap<MachineId, &Instance> = BTreeMap::new();
    for i in instances.iter().filter(|i| i.state.alive()) {
        let Some(m) = i.machine else {
            p.terminate.push((i.id.clone(), Orphan::Untagged));
            continue;
        };
        match fleet.get(m).map(|x| x.state) {
            None => p.terminate.push((i.id.clone(), Orphan::UnknownMachine(m))),
            Some(MachineState::Removing) => p.terminate.push((i.id.clone(), Orphan::Removing(m))),
            Some(_) => {
                if let std::collections::btree_map::Entry::Vacant(v) = owner.entry(m) {
                    v.insert(i);
                } else {
                    p.terminate.push((i.id.clone(), Orphan::Duplicate(m)));
                }
            }
        }
    }
    let listed: std::collections::BTreeSet<MachineId> = instances
        .iter()
        .filter(|i| i.state.alive())
        .filter_map(|i| i.machine)
        .collect();
    for m in fleet.iter() {
        match (m.state, owner.get(&m.id)) {
            (_, Some(i)) => p.adopt.push((m.id, i.id.clone())),
            (MachineState::Creating, None) => p.create.push(m.id),
            // Removing with its instance still listed: terminated above; not gone yet.
            (MachineState::Removing, None) if listed.contains(&m.id) => {}
            (_, None) => p.gone.push(m.id),
        }
    }
    p
}

/// What a reconcile did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The plan it carried out.
    pub plan: Plan,
    /// Instances made for machines whose create had no instance yet.
    pub created: Vec<(MachineId, String)>,
    /// The engine's actions after the `machine_gone` events (requeued jobs, new machines):
    /// for the daemon to carry out like any others.
    pub actions: Vec<Action>,
    /// Calls that failed; the next reconcile tries again.
    pub failed: Vec<(String, CloudError)>,
}

/// Why a reconcile stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError<E: std::error::Error> {
    #[error("listing the instances: {0}")]
    List(CloudError),
    #[error(transparent)]
    Drive(#[from] DriveError<E>),
}

/// List this manager's instances, plan, and carry the plan out: terminate orphans, feed a
/// `machine_gone` for each machine without an instance (journaled first, through the driver),
/// and create again each machine whose create left no instance, with its same client token.
/// `now` is the daemon's clock, read where this is called.
pub async fn reconcile<C: Cloud, L: EventLog>(
    cloud: &C,
    driver: &mut Driver<L>,
    manager: &str,
    machine_name: &str,
    now: Time,
) -> Result<Outcome, ReconcileError<L::Error>> {
    let instances = cloud.list(manager).await.map_err(ReconcileError::List)?;
    carry_out(cloud, driver, manager, machine_name, now, &instances).await
}

/// What the fleet's side of a plan did: the plan, and the engine's actions after its
/// `machine_gone` events (requeued jobs, new machines), for the caller to carry out like any
/// others. The plan's cloud calls (terminating orphans, creating again) are the caller's.
#[derive(Debug, Default)]
pub struct Settled {
    pub plan: Plan,
    pub actions: Vec<Action>,
}

/// Plan from `instances` and the fleet as it stands, and feed a `machine_gone` for each
/// machine without an instance (journaled first, through the driver). No cloud call: the live
/// daemon makes the plan's own calls as tasks of their own, as it makes every other.
pub fn settle<L: EventLog>(
    driver: &mut Driver<L>,
    now: Time,
    instances: &[Instance],
) -> Result<Settled, DriveError<L::Error>> {
    let plan = plan(driver.engine().fleet(), instances);
    let mut actions = Vec::new();
    for &machine in &plan.gone {
        driver.handle(&Event::new(now, EventKind::MachineGone { machine }))?;
        actions.extend(driver.drain_actions());
    }
    Ok(Settled { plan, actions })
}

/// [`reconcile`] with the list already made: [`settle`], then the plan's calls one after
/// another. The list must be no older than every create and terminate the fleet knows of (a
/// list asked before a create answered would not show its instance).
pub async fn carry_out<C: Cloud, L: EventLog>(
    cloud: &C,
    driver: &mut Driver<L>,
    manager: &str,
    machine_name: &str,
    now: Time,
    instances: &[Instance],
) -> Result<Outcome, ReconcileError<L::Error>> {
    let Settled { plan, actions } = settle(driver, now, instances)?;
    let mut out = Outcome {
        actions,
        ..Outcome::default()
    };
    for (id, _) in &plan.terminate {
        if let Err(e) = cloud.terminate(id).await {
            out.failed.push((id.clone(), e));
        }
    }
    for &machine in &plan.create {
        let req = CreateRequest {
            manager: manager.to_string(),
            machine,
            name: CreateRequest::name_from(machine_name, manager, machine),
            ..Default::default()
        };
        match cloud.create(&req).await {
            Ok(i) => out.created.push((machine, i.id)),
            Err(e) => out.failed.push((format!("machine {machine}"), e)),
        }
    }
    out.plan = plan;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Engine, EngineKind, Settings, Time};
    use crate::live::cloud::InstanceState;

    fn instance(id: &str, machine: Option<MachineId>) -> Instance {
        Instance {
            id: id.into(),
            machine,
            state: InstanceState::Running,
            spot: true,
            instance_type: "m5.large".into(),
            notice: false,
            address: None,
        }
    }

    /// An engine whose fleet holds machines 1.. in these states.
    fn fleet(states: &[MachineState]) -> Engine {
        let mut e = Engine::new(EngineKind::Scalecast, Settings::default(), Time(0));
        for s in states {
            e.seed_machine(*s, 0, 0, None).unwrap();
        }
        e
    }

    #[test]
    fn known_machines_are_adopted_and_orphans_terminated() {
        use MachineState::*;
        let e = fleet(&[Idle, Used, Creating, Removing]);
        let listed = [
            instance("i-1", Some(1)),
            instance("i-2", Some(2)),
            instance("i-3", Some(3)),
            instance("i-4", Some(4)),
            instance("i-9", Some(9)),
            instance("i-x", None),
        ];
        let p = plan(e.fleet(), &listed);
        assert_eq!(
            p.adopt,
            vec![(1, "i-1".into()), (2, "i-2".into()), (3, "i-3".into())]
        );
        assert_eq!(
            p.terminate,
            vec![
                ("i-4".into(), Orphan::Removing(4)),
                ("i-9".into(), Orphan::UnknownMachine(9)),
                ("i-x".into(), Orphan::Untagged),
            ]
        );
        assert!(p.gone.is_empty() && p.create.is_empty(), "{p:?}");
    }

    #[test]
    fn machines_without_instances_are_gone_or_created_again() {
        use MachineState::*;
        let e = fleet(&[Idle, Used, Creating, Removing]);
        let p = plan(e.fleet(), &[]);
        assert_eq!(p.gone, vec![1, 2, 4]);
        assert_eq!(
            p.create,
            vec![3],
            "a decided create with no instance is made again"
        );
        assert!(p.adopt.is_empty() && p.terminate.is_empty());
    }

    #[test]
    fn a_second_instance_for_one_machine_is_terminated() {
        let e = fleet(&[MachineState::Creating]);
        let p = plan(
            e.fleet(),
            &[instance("i-a", Some(1)), instance("i-b", Some(1))],
        );
        assert_eq!(p.adopt, vec![(1, "i-a".into())]);
        assert_eq!(p.terminate, vec![("i-b".into(), Orphan::Duplicate(1))]);
    }

    #[test]
    fn terminated_instances_count_for_nothing() {
        let e = fleet(&[MachineState::Idle]);
        let mut gone = instance("i-1", Some(1));
        gone.state = InstanceState::Terminated;
        let p = plan(e.fleet(), &[gone]);
        assert_eq!(p.gone, vec![1]);
        assert!(p.terminate.is_empty());
    }

    proptest::proptest! {
        /// Whatever the two sides say: every live instance is adopted or terminated, never
        /// both; a machine has at most one instance; every machine gets exactly one verdict.
        #[test]
        fn every_instance_and_machine_gets_exactly_one_verdict(
            states in proptest::collection::vec(0u8..4, 0..12),
            listed in proptest::collection::vec((proptest::option::of(1u64..16), 0u8..3), 0..16),
        ) {
            let states: Vec<MachineState> = states.iter().map(|s| match s {
                0 => MachineState::Creating,
                1 => MachineState::Idle,
                2 => MachineState::Used,
                _ => MachineState::Removing,
            }).collect();
            let e = fleet(&states);
            let instances: Vec<Instance> = listed.iter().enumerate().map(|(n, (m, s))| {
                let mut i = instance(&format!("i-{n}"), *m);
                if *s == 0 { i.state = InstanceState::Terminated; }
                i
            }).collect();
            let p = plan(e.fleet(), &instances);
            for i in instances.iter().filter(|i| i.state.alive()) {
                let adopted = p.adopt.iter().filter(|(_, id)| *id == i.id).count();
                let ended = p.terminate.iter().filter(|(id, _)| *id == i.id).count();
                proptest::prop_assert_eq!(adopted + ended, 1, "{}", i.id);
            }
            let mut machines: Vec<MachineId> = p.adopt.iter().map(|a| a.0).collect();
            machines.sort_unstable();
            let n = machines.len();
            machines.dedup();
            proptest::prop_assert_eq!(n, machines.len(), "one instance a machine");
            for m in e.fleet().iter() {
                let verdicts = usize::from(p.adopt.iter().any(|a| a.0 == m.id))
                    + usize::from(p.gone.contains(&m.id))
                    + usize::from(p.create.contains(&m.id));
                let removing_listed = m.state == MachineState::Removing && verdicts == 0;
                proptest::prop_assert!(verdicts == 1 || removing_listed, "machine {}", m.id);
            }
        }
    }
}
