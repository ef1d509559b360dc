//! The EC2 adapter against moto's server (started by `bash scripts/test-services.sh start`,
//! which `bash scripts/test.sh` runs): instances are made as the MachineOptions say, tagged
//! with their manager and machine, listed by manager, and terminated.
#![cfg(feature = "live")]

mod common;
use common::{moto, runtime};
use scalecast::config::machine_options::Ec2Options;
use scalecast::live::cloud::{Cloud, CloudError, CreateRequest, InstanceState};
use scalecast::live::ec2::Ec2Cloud;

fn options(extra: &[&str]) -> Ec2Options {
    let mut opts: Vec<(String, usize)> = [
        "amazonec2-access-key=AKIAMOTOTESTKEY",
        "amazonec2-secret-key=moto-test-secret-value",
        "amazonec2-region=eu-central-1",
        "amazonec2-zone=b",
        "amazonec2-instance-type=m5.large",
        "amazonec2-request-spot-instance=true",
        "amazonec2-spot-price=0.12",
        "amazonec2-tags=team,ci,cost-center,42",
        "amazonec2-security-group=default",
    ]
    .iter()
    .chain(extra)
    .enumerate()
    .map(|(i, s)| (s.to_string(), i))
    .collect();
    opts.sort_by_key(|o| o.1);
    Ec2Options::parse(&opts).unwrap()
}

/// The adapter on moto with the test's options and `extra` ones.
async fn cloud(extra: &[&str]) -> Ec2Cloud {
    Ec2Cloud::connect_at(&options(extra), Some(&moto()))
        .await
        .unwrap()
}

/// A manager id no other test uses.
fn manager(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

#[test]
fn create_list_terminate_by_manager_tag() {
    runtime().block_on(async {
        let cloud = cloud(&[]).await;
        assert!(
            !cloud.ami().is_empty(),
            "the newest Ubuntu image by default"
        );
        assert_eq!(
            cloud.security_group_ids().len(),
            1,
            "the group by name, as an id"
        );
        let me = manager("lifecycle");
        // In the order made: machine 3's instance, then machine 4's.
        let mut made = Vec::new();
        for machine in [3, 4] {
            let req = CreateRequest {
                manager: me.clone(),
                machine,
                name: CreateRequest::name_from("gitlab-docker-machine-%s", &me, machine),
                ..Default::default()
            };
            let i = cloud.create(&req).await.unwrap();
            assert_eq!(i.machine, Some(machine));
            assert!(
                i.spot,
                "amazonec2-request-spot-instance=true makes a spot instance"
            );
            assert_eq!(i.instance_type, "m5.large");
            made.push(i.id);
        }
        // Another manager's instance is never listed as ours.
        let other = manager("other");
        cloud
            .create(&CreateRequest {
                manager: other.clone(),
                machine: 3,
                name: "x".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let listed = cloud.list(&me).await.unwrap();
        let mut ids: Vec<String> = listed.iter().map(|i| i.id.clone()).collect();
        ids.sort();
        let mut expected = made.clone();
        expected.sort();
        assert_eq!(ids, expected);
        assert!(
            listed
                .iter()
                .all(|i| i.state == InstanceState::Running || i.state == InstanceState::Pending)
        );
        cloud.terminate(&made[0]).await.unwrap();
        let after: Vec<_> = cloud.list(&me).await.unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].machine, Some(4));
        // Terminating what is gone already is not an error.
        cloud.terminate(&made[0]).await.unwrap();
        cloud.terminate(&made[1]).await.unwrap();
        assert!(cloud.list(&me).await.unwrap().is_empty());
        for i in cloud.list(&other).await.unwrap() {
            cloud.terminate(&i.id).await.unwrap();
        }
    });
}

#[test]
fn an_unknown_security_group_is_refused_by_name_without_secrets() {
    runtime().block_on(async {
        let mut o = options(&[]);
        o.security_group = vec!["no-such-group".into()];
        let e = Ec2Cloud::connect_at(&o, Some(&moto())).await.unwrap_err();
        assert!(matches!(e, CloudError::Refused { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains("no-such-group"), "{text}");
        assert!(!text.contains("moto-test-secret-value") && !text.contains("AKIAMOTOTESTKEY"));
    });
}

#[test]
fn a_subnet_that_does_not_exist_is_refused_not_retried() {
    runtime().block_on(async {
        let cloud = cloud(&["amazonec2-subnet-id=subnet-00000000"]).await;
        let e = cloud
            .create(&CreateRequest {
                manager: manager("badsubnet"),
                machine: 1,
                name: "x".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        match &e {
            CloudError::Refused { code, .. } => assert_eq!(code, "InvalidSubnetID.NotFound"),
            other => panic!("{other}"),
        }
        let debug = format!("{cloud:?}");
        assert!(!debug.contains("moto-test-secret-value"), "{debug}");
        assert!(!e.to_string().contains("moto-test-secret-value"));
    });
}

#[test]
fn reconcile_adopts_recreates_terminates_orphans_and_journals_gone_machines() {
    use scalecast::core::fleet::MachineState;
    use scalecast::core::{ActionKind, EngineKind, Event, EventKind, Settings, Time};
    use scalecast::journal::{Header, Journal, Reader};
    use scalecast::live::reconcile::{Orphan, reconcile};

    let dir = common::tmp().join("reconcile");
    let _ = std::fs::remove_dir_all(&dir);
    let mut settings = Settings {
        concurrent: 4,
        ..Settings::default()
    };
    settings.idle.idle_count = 2;
    let t0 = Time::parse_rfc3339("2026-12-05T10:00:00Z").unwrap();
    let header = Header::new(EngineKind::Scalecast, settings, t0, None);
    let mut journal = Journal::create(&dir, header).unwrap();
    // The engine decides two machines; only the first got its instance before a crash.
    journal.tick(t0).unwrap();
    let created: Vec<u64> = journal
        .drain_actions()
        .filter_map(|a| match a.kind {
            ActionKind::CreateMachine { machine, .. } => Some(machine),
            _ => None,
        })
        .collect();
    assert_eq!(created, vec![1, 2]);
    let me = manager("reconcile");
    let pattern = "gitlab-docker-machine-%s";
    runtime().block_on(async {
        let cloud = cloud(&[]).await;
        let req = |machine| CreateRequest {
            manager: me.clone(),
            machine,
            name: CreateRequest::name_from(pattern, &me, machine),
            ..Default::default()
        };
        let first = cloud.create(&req(1)).await.unwrap();
        let orphan = cloud.create(&req(9)).await.unwrap();

        let out = reconcile(&cloud, &mut journal, &me, pattern, t0.plus_secs(5))
            .await
            .unwrap();
        assert_eq!(out.plan.adopt, vec![(1, first.id.clone())]);
        assert_eq!(
            out.plan.terminate,
            vec![(orphan.id.clone(), Orphan::UnknownMachine(9))]
        );
        assert_eq!(out.plan.create, vec![2]);
        assert_eq!(out.created.len(), 1);
        assert!(out.failed.is_empty(), "{:?}", out.failed);
        let mut listed: Vec<(Option<u64>, String)> = cloud
            .list(&me)
            .await
            .unwrap()
            .into_iter()
            .map(|i| (i.machine, i.id))
            .collect();
        listed.sort();
        assert_eq!(
            listed,
            vec![
                (Some(1), first.id.clone()),
                (Some(2), out.created[0].1.clone())
            ],
            "nothing leaked, one instance a machine"
        );

        // Machine 1 becomes idle, then its instance vanishes behind the engine's back.
        journal
            .handle(&Event::new(
                t0.plus_secs(10),
                EventKind::MachineReady { machine: 1 },
            ))
            .unwrap();
        journal.drain_actions().for_each(drop);
        cloud.terminate(&first.id).await.unwrap();
        let before = journal.last_seq();
        let out = reconcile(&cloud, &mut journal, &me, pattern, t0.plus_secs(20))
            .await
            .unwrap();
        assert_eq!(out.plan.gone, vec![1]);
        assert_eq!(journal.last_seq(), before + 1, "machine_gone journaled");
        assert!(journal.engine().fleet().get(1).is_none());
        assert!(
            out.actions
                .iter()
                .any(|a| matches!(a.kind, ActionKind::CreateMachine { .. })),
            "the pool is refilled: {:?}",
            out.actions
        );
        for i in cloud.list(&me).await.unwrap() {
            cloud.terminate(&i.id).await.unwrap();
        }
    });
    assert_eq!(
        journal.engine().fleet().get(2).map(|m| m.state),
        Some(MachineState::Creating)
    );
    drop(journal);
    let mut kinds = Vec::new();
    Reader::open(&dir)
        .unwrap()
        .events(|_, e| kinds.push(e.kind))
        .unwrap();
    assert!(matches!(
        kinds.last(),
        Some(EventKind::MachineGone { machine: 1 })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fallback_reaches_ec2_as_its_type_and_market() {
    runtime().block_on(async {
        let cloud = cloud(&[]).await;
        let me = manager("fallback");
        let base = CreateRequest {
            manager: me.clone(),
            machine: 1,
            name: "x".into(),
            ..Default::default()
        };
        let spot_other = cloud
            .create(&CreateRequest {
                instance_type: Some("c5.xlarge".into()),
                attempt: 1,
                ..base.clone()
            })
            .await
            .unwrap();
        assert_eq!(spot_other.instance_type, "c5.xlarge");
        assert!(spot_other.spot);
        let on_demand = cloud
            .create(&CreateRequest {
                on_demand: true,
                attempt: 2,
                machine: 2,
                ..base.clone()
            })
            .await
            .unwrap();
        assert_eq!(on_demand.instance_type, "m5.large");
        assert!(
            !on_demand.spot,
            "on-demand despite amazonec2-request-spot-instance"
        );
        for i in cloud.list(&me).await.unwrap() {
            cloud.terminate(&i.id).await.unwrap();
        }
    });
}
