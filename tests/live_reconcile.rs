//! Reconcile under what moto cannot be made to do: throttled terminates, no capacity for a
//! create, instances that vanish. An in-process fake of the cloud port stands in for EC2.
#![cfg(feature = "live")]

mod common;
use common::runtime;
use scalecast::core::fleet::MachineState;
use scalecast::core::{ActionKind, Engine, EngineKind, Settings, Time};
use scalecast::drive::Driver;
use scalecast::live::cloud::{Cloud, CloudError, CreateRequest, Instance, InstanceState};
use scalecast::live::reconcile::{Orphan, reconcile};
use std::cell::{Cell, RefCell};

/// A cloud in memory, told when to fail.
#[derive(Default)]
struct FakeCloud {
    instances: RefCell<Vec<(String, Instance)>>,
    next_id: Cell<u32>,
    /// The next N terminate calls are throttled.
    throttle_terminates: Cell<u32>,
    /// The next N create calls find no capacity.
    no_capacity: Cell<u32>,
    /// Types (spot) with no capacity at all.
    no_spot_capacity_for: RefCell<Vec<String>>,
    calls: Cell<u32>,
}

impl FakeCloud {
    fn launch(&self, manager: &str, machine: Option<u64>) -> String {
        self.next_id.set(self.next_id.get() + 1);
        let id = format!("i-{:04}", self.next_id.get());
        self.instances.borrow_mut().push((
            manager.to_string(),
            Instance {
                id: id.clone(),
                machine,
                state: InstanceState::Running,
                spot: true,
                instance_type: "m5.large".into(),
                notice: false,
                address: None,
            },
        ));
        id
    }

    fn ids(&self, manager: &str) -> Vec<(Option<u64>, String)> {
        let mut v: Vec<_> = self
            .instances
            .borrow()
            .iter()
            .filter(|(m, i)| m == manager && i.state.alive())
            .map(|(_, i)| (i.machine, i.id.clone()))
            .collect();
        v.sort();
        v
    }

    fn vanish(&self, id: &str) {
        for (_, i) in self.instances.borrow_mut().iter_mut() {
            if i.id == id {
                i.state = InstanceState::Terminated;
            }
        }
    }
}

fn take(c: &Cell<u32>) -> bool {
    let n = c.get();
    if n > 0 {
        c.set(n - 1);
    }
    n > 0
}

impl Cloud for FakeCloud {
    async fn create(&self, req: &CreateRequest) -> Result<Instance, CloudError> {
        self.calls.set(self.calls.get() + 1);
        if take(&self.no_capacity) {
            return Err(CloudError::from_code(
                "InsufficientInstanceCapacity",
                "no m5.large in eu-central-1b",
            ));
        }
        let ty = req.instance_type.clone().unwrap_or("m5.large".into());
        if !req.on_demand && self.no_spot_capacity_for.borrow().contains(&ty) {
            return Err(CloudError::from_code(
                "InsufficientInstanceCapacity",
                &format!("no spot {ty}"),
            ));
        }
        let id = self.launch(&req.manager, Some(req.machine));
        let mut instances = self.instances.borrow_mut();
        let i = &mut instances.iter_mut().find(|(_, i)| i.id == id).unwrap().1;
        i.instance_type = ty;
        i.spot = !req.on_demand;
        Ok(i.clone())
    }

    async fn terminate(&self, instance_id: &str) -> Result<(), CloudError> {
        self.calls.set(self.calls.get() + 1);
        if take(&self.throttle_terminates) {
            return Err(CloudError::from_code("RequestLimitExceeded", "slow down"));
        }
        self.vanish(instance_id);
        Ok(())
    }

    async fn list(&self, manager: &str) -> Result<Vec<Instance>, CloudError> {
        self.calls.set(self.calls.get() + 1);
        Ok(self
            .instances
            .borrow()
            .iter()
            .filter(|(m, i)| m == manager && i.state.alive())
            .map(|(_, i)| i.clone())
            .collect())
    }
}

/// A driver whose engine decided `n` idle machines at t0 (all still being created).
fn driver(n: u32) -> (Driver, Time) {
    let mut s = Settings {
        concurrent: 4,
        ..Settings::default()
    };
    s.idle.idle_count = n;
    let t0 = Time::parse_rfc3339("2026-12-05T10:00:00Z").unwrap();
    let mut d = Driver::unlogged(Engine::new(EngineKind::Scalecast, s, t0));
    d.tick(t0).unwrap();
    let made = d
        .drain_actions()
        .filter(|a| matches!(a.kind, ActionKind::CreateMachine { .. }))
        .count();
    assert_eq!(made, n as usize);
    (d, t0)
}

#[test]
fn a_throttled_terminate_is_reported_and_done_by_the_next_reconcile() {
    runtime().block_on(async {
        let cloud = FakeCloud::default();
        let (mut d, t0) = driver(1);
        let mine = cloud.launch("m", Some(1));
        let orphan = cloud.launch("m", Some(7));
        let untagged = cloud.launch("m", None);
        cloud.launch("someone-else", Some(7));
        cloud.throttle_terminates.set(1);
        let out = reconcile(&cloud, &mut d, "m", "%s", t0).await.unwrap();
        assert_eq!(out.plan.adopt, vec![(1, mine.clone())]);
        assert_eq!(
            out.plan.terminate,
            vec![
                (orphan.clone(), Orphan::UnknownMachine(7)),
                (untagged.clone(), Orphan::Untagged),
            ]
        );
        assert_eq!(out.failed.len(), 1);
        assert!(matches!(out.failed[0].1, CloudError::Throttled { .. }));
        assert_eq!(cloud.ids("m").len(), 2, "one orphan left for next time");
        let out = reconcile(&cloud, &mut d, "m", "%s", t0.plus_secs(60))
            .await
            .unwrap();
        assert!(out.failed.is_empty());
        assert_eq!(cloud.ids("m"), vec![(Some(1), mine)]);
        assert_eq!(
            cloud.ids("someone-else").len(),
            1,
            "never another manager's"
        );
    });
}

#[test]
fn no_capacity_leaves_the_machine_to_create_again_and_never_twice() {
    runtime().block_on(async {
        let cloud = FakeCloud::default();
        let (mut d, t0) = driver(2);
        cloud.no_capacity.set(2);
        let out = reconcile(&cloud, &mut d, "m", "%s", t0).await.unwrap();
        assert_eq!(out.plan.create, vec![1, 2]);
        assert!(out.created.is_empty());
        assert!(
            out.failed
                .iter()
                .all(|(_, e)| matches!(e, CloudError::Capacity { .. }))
        );
        for round in 1..4 {
            reconcile(&cloud, &mut d, "m", "%s", t0.plus_secs(60 * round))
                .await
                .unwrap();
            let ids = cloud.ids("m");
            assert_eq!(
                ids.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
                vec![Some(1), Some(2)],
                "round {round}: one instance a machine"
            );
        }
        assert_eq!(
            d.engine().fleet().get(1).map(|m| m.state),
            Some(MachineState::Creating)
        );
    });
}

#[test]
fn an_instance_that_vanished_requeues_its_job() {
    runtime().block_on(async {
        use scalecast::core::{Event, EventKind};
        let cloud = FakeCloud::default();
        let (mut d, t0) = driver(1);
        let id = cloud.launch("m", Some(1));
        d.handle(&Event::new(
            t0.plus_secs(30),
            EventKind::MachineReady { machine: 1 },
        ))
        .unwrap();
        d.drain_actions().for_each(drop);
        d.handle(&Event::new(
            t0.plus_secs(40),
            EventKind::JobArrived { job: 55 },
        ))
        .unwrap();
        let started: Vec<_> = d.drain_actions().collect();
        assert!(started.iter().any(|a| a.kind
            == ActionKind::StartJob {
                job: 55,
                machine: 1
            }));
        cloud.vanish(&id);
        let out = reconcile(&cloud, &mut d, "m", "%s", t0.plus_secs(90))
            .await
            .unwrap();
        assert_eq!(out.plan.gone, vec![1]);
        assert!(
            out.actions.iter().any(|a| a.kind
                == ActionKind::RequeueJob {
                    job: 55,
                    machine: 1
                }),
            "{:?}",
            out.actions
        );
    });
}

#[test]
fn no_capacity_falls_back_to_the_next_type_then_on_demand_and_says_why() {
    use scalecast::live::fallback::{Fallbacks, create_with_fallback};
    runtime().block_on(async {
        let cloud = FakeCloud::default();
        *cloud.no_spot_capacity_for.borrow_mut() =
            vec!["m5.large".into(), "m5a.large".into(), "m6i.large".into()];
        let f = Fallbacks {
            instance_types: vec!["m5a.large".into(), "m6i.large".into()],
            on_demand: true,
        };
        let base = CreateRequest {
            manager: "m".into(),
            machine: 1,
            ..Default::default()
        };
        let (made, fell) = create_with_fallback(&cloud, &base, &f).await;
        let made = made.unwrap();
        assert!(!made.spot, "on-demand at last: {made:?} after {fell:?}");
        assert_eq!(made.instance_type, "m5.large");
        let tried: Vec<Option<String>> = fell.iter().map(|x| x.instance_type.clone()).collect();
        assert_eq!(
            tried,
            vec![None, Some("m5a.large".into()), Some("m6i.large".into())]
        );
        assert!(
            fell.iter()
                .all(|x| matches!(x.error, CloudError::Capacity { .. }))
        );
        assert_eq!(cloud.ids("m").len(), 1, "one instance for the machine");

        // Spot capacity for the second type: it stops there.
        cloud
            .no_spot_capacity_for
            .borrow_mut()
            .retain(|t| t != "m6i.large");
        let base2 = CreateRequest {
            machine: 2,
            ..base.clone()
        };
        let (made, fell) = create_with_fallback(&cloud, &base2, &f).await;
        let made = made.unwrap();
        assert!(made.spot);
        assert_eq!(made.instance_type, "m6i.large");
        assert_eq!(fell.len(), 2);

        // With no fallback configured, a capacity error comes back as it is, after one call.
        let calls = cloud.calls.get();
        let none = Fallbacks::default();
        cloud.no_capacity.set(1);
        let (made, fell) = create_with_fallback(&cloud, &base2, &none).await;
        assert!(matches!(made, Err(CloudError::Capacity { .. })));
        assert!(fell.is_empty(), "nothing left to fall back to");
        assert_eq!(cloud.calls.get(), calls + 1);
    });
}
