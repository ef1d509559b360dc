//! Reconcile under what moto cannot be made to do: throttled terminates, no capacity for a
//! create, instances that vanish. An in-process fake of the cloud port stands in for EC2.
#![cfg(feature = "live")]

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
        let id = self.launch(&req.manager, Some(req.machine));
        Ok(self
            .instances
            .borrow()
            .iter()
            .find(|(_, i)| i.id == id)
            .unwrap()
            .1
            .clone())
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
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
