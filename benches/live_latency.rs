//! Live mode's latency from a job's `prepare` on the executor socket to the RunInstances call
//! being sent, against moto: the daemon runs in this process on EC2 (moto), behind a cloud port
//! that notes the instant each create starts; a client thread sends `prepare` for a new job
//! (IdleCount = 0, so each job needs a machine made for it), then `cleanup` (MaxBuilds = 1
//! retires the machine). Prints the median and p99 over the runs.
//!
//! `bash scripts/test-services.sh start` first (moto), then
//! `cargo bench --features live --bench live_latency`.

use scalecast::config::ConfigFile;
use scalecast::live::cloud::{Cloud, CloudError, CreateRequest, Instance};
use scalecast::live::daemon::{Options, serve};
use scalecast::live::ec2::Ec2Cloud;
use scalecast::live::protocol::{Request, Response, call};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A cloud that notes when each create starts, then asks the real one.
struct Timed<C> {
    inner: C,
    starts: Arc<Mutex<Vec<Instant>>>,
}

impl<C: Cloud> Cloud for Timed<C> {
    async fn create(&self, req: &CreateRequest) -> Result<Instance, CloudError> {
        self.starts.lock().unwrap().push(Instant::now());
        self.inner.create(req).await
    }
    async fn terminate(&self, id: &str) -> Result<(), CloudError> {
        self.inner.terminate(id).await
    }
    async fn list(&self, manager: &str) -> Result<Vec<Instance>, CloudError> {
        self.inner.list(manager).await
    }
}

fn main() {
    let runs: usize = std::env::var("SCALECAST_LATENCY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let moto = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/test-services/moto.url"
    ))
    .expect("moto is not running: start it with `bash scripts/test-services.sh start`");
    let moto = moto.trim().to_string();
    let dir = std::env::temp_dir().join(format!("scalecast-latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        "concurrent = 4\n[[runners]]\nname = \"r\"\nexecutor = \"docker+machine\"\nlimit = 100\n[runners.machine]\nIdleCount = 0\nIdleTime = 0\nMaxBuilds = 1\nMachineName = \"runner-%s\"\nMachineOptions = [\"amazonec2-region=eu-central-1\", \"amazonec2-instance-type=m5.large\", \"amazonec2-request-spot-instance=true\", \"amazonec2-access-key=moto\", \"amazonec2-secret-key=moto\"]\n",
    )
    .unwrap();
    let state = dir.join("state");
    // Readiness is looked for every 50 ms, so the runs go quickly; it does not enter the
    // latency measured.
    let opts = Options {
        ready_poll: Duration::from_millis(50),
        ..Options::new(config.clone(), None, state.clone())
    };
    let starts = Arc::new(Mutex::new(Vec::new()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = {
        let starts = starts.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(tokio::task::LocalSet::new().run_until(async move {
                let cfg = ConfigFile::load(&opts.config).unwrap();
                let runner = cfg.runner(None).unwrap();
                let ec2 = &runner.machine.as_ref().unwrap().ec2;
                let inner = Ec2Cloud::connect_at(ec2, Some(&moto)).await.unwrap();
                serve(&opts, Timed { inner, starts }, async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
            }));
        })
    };
    let patience = Duration::from_secs(30);
    let retry = Duration::from_millis(20);
    let mut latencies = Vec::with_capacity(runs);
    for job in 1..=runs as u64 {
        let before = starts.lock().unwrap().len();
        let sent = Instant::now();
        match call(
            &state,
            &Request::Prepare {
                job,
                keys: Default::default(),
            },
            patience,
            retry,
        )
        .unwrap()
        {
            Response::Started { .. } => {}
            other => panic!("job {job}: {other:?}"),
        }
        let s = starts.lock().unwrap();
        assert_eq!(s.len(), before + 1, "one create per job");
        // The first job also waits for the daemon to start; not counted.
        if job > 1 {
            latencies.push(s[before].duration_since(sent));
        }
        drop(s);
        call(&state, &Request::Cleanup { job }, patience, retry).unwrap();
    }
    let _ = stop_tx.send(());
    daemon.join().unwrap();
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "live_latency: prepare on the socket -> RunInstances sent, {} jobs: median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(*latencies.last().unwrap())
    );
    let _ = std::fs::remove_dir_all(&dir);
}
