//! A journal as a trace: the jobs a fleet actually ran become arrivals, so a live fleet's own
//! history can be replayed under other settings. Arrival = its `job_arrived`; runtime = from
//! its last start (the engine's `start_job`, found by replaying) to its `job_finished`.

use crate::core::{ActionKind, Engine, EventKind, Time};
use crate::drive::Driver;
use crate::journal::JournalResult;
use crate::trace::TraceJob;
use std::collections::BTreeMap;
use std::path::Path;

pub fn arrivals(dir: &Path) -> JournalResult<Vec<TraceJob>> {
    let opened = crate::journal::remote::open(dir)?;
    let r = &opened.reader;
    let h = &r.header;
    let mut driver = Driver::unlogged(Engine::new(h.engine, h.settings.clone(), h.start));
    let mut arrived: BTreeMap<u64, Time> = BTreeMap::new();
    let mut started: BTreeMap<u64, Time> = BTreeMap::new();
    let mut out = Vec::new();
    r.events(|_, ev| {
        match ev.kind {
            EventKind::JobArrived { job } => {
                arrived.insert(job, ev.at);
            }
            EventKind::JobFinished { job } => {
                if let (Some(a), Some(s)) = (arrived.remove(&job), started.remove(&job)) {
                    out.push(TraceJob {
                        id: job,
                        arrival: a,
                        duration_ms: ev.at.since(s).max(0),
                        // The wait the fleet gave it: from its arrival to its last start.
                        queued_ms: Some(s.since(a).clamp(0, u32::MAX as i64) as u32),
                    });
                }
            }
            _ => {}
        }
        // A refused event changed nothing for the writer either.
        let _ = driver.handle(&ev);
        for a in driver.drain_actions() {
            if let ActionKind::StartJob { job, .. } = a.kind {
                started.insert(job, a.at);
            }
        }
    })?;
    out.sort_by_key(|j| (j.arrival, j.id));
    Ok(out)
}
