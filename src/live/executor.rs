//! GitLab Runner's custom executor, stage by stage: `scalecast executor config|prepare|run|
//! cleanup` (GitLab Runner starts one process per stage, with the job's variables as
//! `CUSTOM_ENV_*`). Each stage asks the daemon over its socket where the job is, then talks to
//! that machine's Docker over mutual TLS itself, so a job's output never passes through the
//! daemon's loop.
//!
//! Outcomes map onto GitLab's exit codes: a script's non-zero exit is a build failure
//! (`BUILD_FAILURE_EXIT_CODE`); anything scalecast or the machine failed at (no daemon, no
//! machine, Docker unreachable, the machine lost or interrupted mid-script) is a system
//! failure (`SYSTEM_FAILURE_EXIT_CODE`), so `retry: when: runner_system_failure` applies.

use crate::core::{JobId, MachineId};
use crate::live::docker::{JobDocker, JobEnv, JobTarget, connect};
use crate::live::protocol::{Request, Response, call};
use crate::live::tls::client_files;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How a stage ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The job's script failed with this exit code.
    BuildFailure(i64),
    /// scalecast, the daemon or the machine failed; the message says what.
    SystemFailure(String),
}

/// What every stage is called with.
#[derive(Clone, Debug)]
pub struct Stage {
    pub state: PathBuf,
    pub job: JobId,
    /// How long to keep asking while no daemon answers (a restart).
    pub patience: Duration,
    /// How often `run` checks that the job still has its machine.
    pub watch_every: Duration,
}

fn ask(st: &Stage, req: &Request, patience: Duration) -> Result<Response, String> {
    call(&st.state, req, patience, Duration::from_millis(250)).map_err(|e| e.to_string())
}

/// Where the job runs now (its machine, and that machine's Docker), without waiting for a
/// machine.
fn locate(st: &Stage, patience: Duration) -> Result<(MachineId, JobTarget), String> {
    let start = Instant::now();
    loop {
        match ask(st, &Request::Locate { job: st.job }, patience)? {
            Response::Started {
                machine,
                docker: Some(t),
                ..
            } => return Ok((machine, t)),
            // Its address comes with the daemon's next list of instances.
            Response::Started { docker: None, .. } if start.elapsed() < patience => {
                std::thread::sleep(Duration::from_millis(500));
            }
            Response::Started { machine, .. } => {
                return Err(format!(
                    "the daemon does not know how to reach machine {machine}'s Docker"
                ));
            }
            Response::Failed { reason, .. } => return Err(reason),
            other => return Err(format!("unexpected answer from the daemon: {other:?}")),
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))
}

/// A client for the job's machine's Docker, with the manager's client certificate.
fn docker_for(st: &Stage, target: &JobTarget, timeout_s: u64) -> Result<bollard::Docker, String> {
    let files = client_files(&st.state).map_err(|e| e.to_string())?;
    connect(&target.endpoint, &target.server_name, &files, timeout_s).map_err(|e| e.to_string())
}

fn job_docker<'a>(
    docker: &'a bollard::Docker,
    target: &'a JobTarget,
    env: &'a JobEnv,
) -> JobDocker<'a> {
    JobDocker {
        docker,
        endpoint: &target.endpoint,
        settings: &target.settings,
        env,
    }
}

/// config_exec: the JSON GitLab Runner reads (builds and cache directories as the daemon's
/// runner settings say, so they agree with the volumes `prepare` mounts).
pub fn config(st: &Stage) -> Result<String, String> {
    let Response::Settings { manager, settings } = ask(st, &Request::Settings, st.patience)? else {
        return Err("unexpected answer from the daemon to a settings request".into());
    };
    let v = serde_json::json!({
        "builds_dir": settings.builds_dir,
        "cache_dir": settings.cache_dir,
        "builds_dir_is_shared": false,
        "hostname": format!("scalecast-{manager}"),
        "driver": {"name": "scalecast", "version": env!("CARGO_PKG_VERSION")},
        "job_env": {"SCALECAST_MANAGER": manager},
    });
    Ok(serde_json::to_string_pretty(&v).expect("JSON encodes"))
}

/// prepare_exec: a machine for the job (waiting for one as long as it takes the engine), then
/// its images, builds volume and services there.
pub fn prepare(st: &Stage, env: &JobEnv, out: &mut impl Write) -> Outcome {
    let req = Request::Prepare {
        job: st.job,
        keys: env.keys.clone(),
    };
    let started = match ask(st, &req, st.patience) {
        Ok(Response::Started {
            machine,
            instance,
            name,
            ..
        }) => (machine, instance, name),
        Ok(Response::Failed { reason, .. }) => return Outcome::SystemFailure(reason),
        Ok(other) => {
            return Outcome::SystemFailure(format!("unexpected answer from the daemon: {other:?}"));
        }
        Err(e) => return Outcome::SystemFailure(e),
    };
    let _ = writeln!(
        out,
        "scalecast: job {} runs on machine {} ({}, instance {})",
        st.job,
        started.0,
        started.2,
        started.1.as_deref().unwrap_or("unknown")
    );
    let target = match locate(st, st.patience) {
        Ok((_, t)) => t,
        Err(e) => return Outcome::SystemFailure(e),
    };
    let result = runtime().and_then(|rt| {
        rt.block_on(async {
            let docker = docker_for(st, &target, 600)?;
            job_docker(&docker, &target, env)
                .prepare(out)
                .await
                .map_err(|e| e.to_string())
        })
    });
    match result {
        Ok(()) => Outcome::Ok,
        Err(e) => Outcome::SystemFailure(e),
    }
}

/// run_exec SCRIPT STAGE: the script in the stage's container, its output streamed as it
/// comes. The job's machine is checked all along: once the daemon says the job lost it, the
/// stage ends as a system failure at once (an interrupted machine's connection may hang).
/// SIGTERM or SIGINT (GitLab's timeout or cancel) stop the container.
pub fn run(
    st: &Stage,
    env: &JobEnv,
    script: &Path,
    stage: &str,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> Outcome {
    let body = match std::fs::read(script) {
        Ok(b) => b,
        Err(e) => return Outcome::SystemFailure(format!("{}: {e}", script.display())),
    };
    let (machine, target) = match locate(st, st.patience) {
        Ok(t) => t,
        Err(e) => return Outcome::SystemFailure(e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return Outcome::SystemFailure(e),
    };
    rt.block_on(async {
        // A stage may stream for as long as the job's own timeout allows.
        let docker = match docker_for(st, &target, 24 * 3600) {
            Ok(d) => d,
            Err(e) => return Outcome::SystemFailure(e),
        };
        let jd = job_docker(&docker, &target, env);
        let watch = {
            let st = st.clone();
            async move {
                loop {
                    tokio::time::sleep(st.watch_every).await;
                    let st2 = st.clone();
                    let r = tokio::task::spawn_blocking(move || {
                        locate(&st2, st2.patience).map(|(m, _)| m)
                    })
                    .await;
                    match r {
                        Ok(Ok(m)) if m == machine => {}
                        Ok(Ok(m)) => {
                            return format!(
                                "job {} no longer has its machine: machine {machine} was lost and the job was started again on machine {m} (GitLab may retry the job)",
                                st.job
                            );
                        }
                        Ok(Err(e)) => return e,
                        Err(e) => return e.to_string(),
                    }
                }
            }
        };
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            Ok(t) => t,
            Err(e) => return Outcome::SystemFailure(format!("SIGTERM handler: {e}")),
        };
        let (outcome, lost) = tokio::select! {
            r = jd.run(&body, stage, stdout, stderr) => match r {
                Ok(0) => return Outcome::Ok,
                Ok(code) => return Outcome::BuildFailure(code),
                Err(e) => (Outcome::SystemFailure(e.to_string()), false),
            },
            why = watch => (Outcome::SystemFailure(why), true),
            _ = term.recv() => (Outcome::SystemFailure("stopped by SIGTERM (timeout or cancel)".into()), false),
            _ = tokio::signal::ctrl_c() => (Outcome::SystemFailure("stopped by SIGINT".into()), false),
        };
        if lost {
            // The job will not come back to this machine, and cleanup will not find it: remove
            // whatever of the job can still be reached there.
            let _ = jd.cleanup().await;
        } else {
            // The stage did not finish: stop its container now rather than at cleanup.
            jd.kill().await;
        }
        outcome
    })
}

/// cleanup_exec: the job's containers, network and builds volume go, then the daemon hears
/// the job is over (the engine counts the use toward MaxBuilds). A machine already lost has
/// nothing to clean; the daemon is told all the same.
pub fn cleanup(st: &Stage, env: &JobEnv, out: &mut impl Write) -> Outcome {
    let mut problem = None;
    match locate(st, Duration::from_secs(5).min(st.patience)) {
        Ok((_, target)) => {
            let r = runtime().and_then(|rt| {
                rt.block_on(async {
                    let docker = docker_for(st, &target, 120)?;
                    job_docker(&docker, &target, env)
                        .cleanup()
                        .await
                        .map_err(|e| e.to_string())
                })
            });
            match r {
                Ok(n) => {
                    let _ = writeln!(
                        out,
                        "scalecast: removed {n} containers, networks and volumes of job {}",
                        st.job
                    );
                }
                Err(e) => problem = Some(e),
            }
        }
        Err(e) => {
            let _ = writeln!(out, "scalecast: nothing to remove on a machine: {e}");
        }
    }
    match ask(st, &Request::Cleanup { job: st.job }, st.patience) {
        Ok(Response::Cleaned { was, .. }) => {
            let _ = writeln!(out, "scalecast: job {} cleaned up (it was {was})", st.job);
        }
        Ok(other) => {
            return Outcome::SystemFailure(format!("unexpected answer from the daemon: {other:?}"));
        }
        Err(e) => return Outcome::SystemFailure(e),
    }
    match problem {
        Some(e) => Outcome::SystemFailure(format!("removing the job's containers: {e}")),
        None => Outcome::Ok,
    }
}
