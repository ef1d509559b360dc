//! Results for people and programs: terminal tables and JSON files. Reads results; runs
//! nothing.

pub mod output;
pub mod table;
