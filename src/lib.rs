//! scalecast: GitLab Runner autoscaling on EC2, decided by one pure event-sourced engine, and
//! forecast before anyone changes a setting.

pub mod config;
pub mod core;
pub mod replay;
