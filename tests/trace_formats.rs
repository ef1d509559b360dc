//! The trace formats read the same jobs: Jobs API JSON (array, pages, NDJSON), webhook
//! payloads, CSV and TSV; jobs that never ran are skipped; bad records are named.

mod common;
use scalecast::core::Time;
use scalecast::trace::{TraceFile, TraceJob, read_file};
use std::path::PathBuf;

fn write(name: &str, content: &str) -> PathBuf {
    let d = common::tmp().join("traces");
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn jobs(p: &std::path::Path) -> Vec<TraceJob> {
    read_file(p).unwrap().map(|j| j.unwrap()).collect()
}

const A: &str = r#"{"id": 11, "name": "build", "status": "success", "created_at": "2026-11-02T09:00:00.000Z", "started_at": "2026-11-02T09:00:05.500Z", "finished_at": "2026-11-02T09:01:05.500Z", "duration": 60.0, "queued_duration": 1.5, "pipeline": {"id": 5}, "tag_list": ["docker"]}"#;
const B: &str = r#"{"id": 12, "name": "test {x}", "status": "canceled", "started_at": "2026-11-02T09:02:00Z", "duration": 30.25, "queued_duration": 0}"#;
const SKIPPED: &str = r#"{"id": 13, "status": "skipped", "started_at": null, "duration": null}"#;

fn expected() -> Vec<TraceJob> {
    vec![
        TraceJob {
            id: 11,
            arrival: Time::parse_rfc3339("2026-11-02T09:00:04Z").unwrap(),
            duration_ms: 60_000,
            queued_ms: Some(1_500),
        },
        TraceJob {
            id: 12,
            arrival: Time::parse_rfc3339("2026-11-02T09:02:00Z").unwrap(),
            duration_ms: 30_250,
            queued_ms: Some(0),
        },
    ]
}

#[test]
fn json_array_pages_and_ndjson_read_alike() {
    let array = write("a.json", &format!("[{A},\n{SKIPPED},\n{B}]"));
    let pages = write("b.json", &format!("[{A}]\n[{SKIPPED}, {B}]\n"));
    let nd = write("c.ndjson", &format!("{A}\n{SKIPPED}\n{B}\n"));
    for p in [array, pages, nd] {
        assert_eq!(jobs(&p), expected(), "{}", p.display());
    }
}

#[test]
fn webhook_payloads_are_read() {
    let hook = r#"{"object_kind": "build", "build_id": 12, "build_status": "success", "build_started_at": "2026-11-02 09:02:00 UTC", "build_duration": 30.25, "build_queued_duration": 0.0, "runner": {"id": 1}}"#;
    let p = write("hook.json", hook);
    assert_eq!(jobs(&p), vec![expected()[1]]);
}

#[test]
fn csv_and_tsv_with_api_columns_in_any_order() {
    let csv = write(
        "t.csv",
        "pipeline_id,job_id,status,duration,queued_duration,started_at\n5,11,success,60.0,1.5,2026-11-02T09:00:05.500Z\n5,13,skipped,,,\n5,12,canceled,30.25,0,2026-11-02T09:02:00Z\n",
    );
    assert_eq!(jobs(&csv), expected());
    let tsv = write(
        "t.tsv",
        "id\tstarted_at\tduration\tqueued_duration\n11\t2026-11-02T09:00:05.5Z\t60\t1.5\n12\t2026-11-02T09:02:00Z\t30.25\t\n",
    );
    // A blank queued_duration records no wait (the arrival is then the start).
    let mut want = expected();
    want[1].queued_ms = None;
    assert_eq!(jobs(&tsv), want);
}

#[test]
fn bad_records_are_named_by_line() {
    let p = write(
        "bad.json",
        &format!("[{A},\n{{\"id\": 3, \"started_at\": \"soon\", \"duration\": 1}}]"),
    );
    let e = read_file(&p).unwrap().find_map(|j| j.err()).unwrap();
    assert_eq!(e.place, "line 2");
    assert!(e.message.contains("soon"));
    let p = write("trunc.json", &format!("[{A},\n{{\"id\": 3,"));
    let e = read_file(&p).unwrap().find_map(|j| j.err()).unwrap();
    assert_eq!(e.place, "line 2");
    let p = write("nohdr.csv", "a,b\n1,2\n");
    assert!(read_file(&p).is_err());
}

#[test]
fn unsorted_trace_is_replayed_in_arrival_order() {
    // The Jobs API lists newest first.
    let p = write("newest-first.json", &format!("[{B}, {A}]"));
    let t = TraceFile::scan(&p).unwrap();
    assert!(!t.summary.sorted);
    let order: Vec<u64> = t.arrivals().unwrap().map(|j| j.unwrap().id).collect();
    assert_eq!(order, vec![11, 12]);
}

#[test]
fn the_real_export_has_the_jobs_that_ran() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("traces/gitlab-datadog-2026-01-13.csv");
    let t = TraceFile::scan(&p).unwrap();
    assert_eq!(t.summary.jobs, 5406);
    assert_eq!(
        t.summary.first_arrival.unwrap().to_rfc3339(),
        "2026-01-13T01:13:41.017Z"
    );
}
