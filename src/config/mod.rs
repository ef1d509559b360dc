//! Inputs as users write them: GitLab Runner's config.toml and its validation.

pub mod check;
pub mod machine_options;
pub mod migrate;
pub mod overrides;
pub mod runner;
pub mod scenario;
pub mod secret;
pub mod toml_util;

pub use runner::{ConfigFile, Runner, Secret};
pub use toml_util::InputError;
