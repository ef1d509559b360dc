//! The cloud port: what the daemon needs from a cloud to run machines, and nothing more.
//! `ec2.rs` implements it on AWS; tests add fakes for what a real cloud cannot be made to do
//! on demand (throttling, capacity errors, instances that vanish).

use crate::config::machine_options::Ec2Options;
use crate::core::MachineId;
use std::future::Future;

/// Tag naming the manager (a stable id of its state directory) an instance belongs to.
pub const MANAGER_TAG: &str = "scalecast:manager";
/// Tag holding the engine's machine id of an instance.
pub const MACHINE_TAG: &str = "scalecast:machine";

/// One machine to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateRequest {
    /// The manager's id (its state directory's).
    pub manager: String,
    /// The engine's id of the machine.
    pub machine: MachineId,
    /// The `Name` tag: `MachineName` with `%s` filled in.
    pub name: String,
    /// Another instance type than the MachineOptions' (a capacity fallback).
    pub instance_type: Option<String>,
    /// On-demand even when the MachineOptions request spot (the last fallback).
    pub on_demand: bool,
    /// The user data the instance boots with (its Docker set-up and certificate), plain text.
    pub user_data: Option<String>,
    /// Which attempt for this machine: 0 first, then one per fallback. Each has its own
    /// client token (AWS refuses one token with other parameters); a capacity error made no
    /// instance, so a new token cannot make a second one.
    pub attempt: u32,
}

impl CreateRequest {
    /// The idempotency token of this machine's creation: the same for every retry of the same
    /// machine of the same manager, so a retried create never makes a second instance on AWS
    /// (which keeps a token for at least 24 hours; ClientToken is at most 64 ASCII characters).
    pub fn client_token(&self) -> String {
        let attempt = if self.attempt == 0 {
            String::new()
        } else {
            format!("-f{}", self.attempt)
        };
        let t = format!("scalecast-{}-{}{attempt}", self.manager, self.machine);
        if t.len() <= 64 {
            return t;
        }
        // Keep the machine id whole; shorten the manager id by a digest of it.
        let digest = crate::journal::fnv1a(self.manager.as_bytes());
        format!("scalecast-{digest:016x}-{}{attempt}", self.machine)
    }

    /// `MachineName` with its `%s` replaced by `MANAGER-MACHINE` (the whole name when it has no
    /// `%s`, suffixed so names stay unique).
    pub fn name_from(pattern: &str, manager: &str, machine: MachineId) -> String {
        let unique = format!("{manager}-{machine}");
        if pattern.contains("%s") {
            pattern.replacen("%s", &unique, 1)
        } else if pattern.is_empty() {
            format!("scalecast-{unique}")
        } else {
            format!("{pattern}-{unique}")
        }
    }
}

/// An instance's lifecycle state, as the cloud reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
    #[default]
    Unknown,
}

impl InstanceState {
    /// Still costs money or may come back: everything but terminated.
    pub fn alive(self) -> bool {
        self != InstanceState::Terminated
    }
}

/// An instance of this manager, as listed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Instance {
    pub id: String,
    /// From its `scalecast:machine` tag; None when the tag is missing or not a number.
    pub machine: Option<MachineId>,
    pub state: InstanceState,
    /// A spot instance (not on-demand).
    pub spot: bool,
    pub instance_type: String,
    /// Under a spot interruption notice: the spot request is marked for termination, stop or
    /// hibernation (the instance has about two minutes left).
    pub notice: bool,
    /// The address the manager reaches it at (private or public, as the MachineOptions say).
    pub address: Option<String>,
}

/// Why a call failed, sorted by what the daemon should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// Throttled or briefly unavailable: retry later, backing off.
    #[error("throttled by the cloud ({code}): {message}")]
    Throttled { code: String, message: String },
    /// No capacity for this type or market: fall back to another type or to on-demand.
    #[error("no capacity ({code}): {message}")]
    Capacity { code: String, message: String },
    /// The request or the settings are wrong (bad AMI, unknown security group, ...): retrying
    /// the same call will not help.
    #[error("refused ({code}): {message}")]
    Refused { code: String, message: String },
    /// The call did not get an answer (network, timeout).
    #[error("no answer from the cloud: {0}")]
    Unreachable(String),
}

impl CloudError {
    /// Sort an AWS error code into what to do about it.
    pub fn from_code(code: &str, message: &str) -> Self {
        let (code, message) = (code.to_string(), message.to_string());
        match code.as_str() {
            "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "ServiceUnavailable"
            | "Unavailable"
            | "InternalError" => CloudError::Throttled { code, message },
            "InsufficientInstanceCapacity"
            | "InsufficientHostCapacity"
            | "InsufficientReservedInstanceCapacity"
            | "InsufficientCapacity"
            | "SpotMaxPriceTooLow"
            | "MaxSpotInstanceCountExceeded"
            | "InstanceLimitExceeded"
            | "Unsupported" => CloudError::Capacity { code, message },
            _ => CloudError::Refused { code, message },
        }
    }
}

/// What the daemon asks of a cloud. Every call is one request (the SDK retries throttling
/// inside it); none blocks the engine.
pub trait Cloud {
    /// Launch one instance for `req`, tagged with its manager and machine id.
    fn create(&self, req: &CreateRequest) -> impl Future<Output = Result<Instance, CloudError>>;
    /// Terminate an instance (terminating one already gone is not an error).
    fn terminate(&self, instance_id: &str) -> impl Future<Output = Result<(), CloudError>>;
    /// Every instance of `manager` not yet terminated.
    fn list(&self, manager: &str) -> impl Future<Output = Result<Vec<Instance>, CloudError>>;
    /// This cloud with `opts`, the MachineOptions of a reloaded config, for the machines it
    /// creates from then on (as docker-machine applies them: the instances already made stay
    /// as they are). An error when they cannot apply while the daemon runs (another region or
    /// other keys would put its instances out of sight) or cannot be resolved (an image or a
    /// security group that does not exist). A cloud that cannot take new options says so.
    fn reconfigure(&self, opts: &Ec2Options) -> impl Future<Output = Result<Self, CloudError>>
    where
        Self: Sized,
    {
        let _ = opts;
        std::future::ready(Err(CloudError::Refused {
            code: "RestartNeeded".into(),
            message: "this cloud takes new MachineOptions only when scalecast live restarts".into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(manager: &str, machine: MachineId) -> CreateRequest {
        CreateRequest {
            manager: manager.into(),
            machine,
            ..Default::default()
        }
    }

    #[test]
    fn a_machine_keeps_its_client_token_across_retries_and_managers_differ() {
        assert_eq!(req("m1", 7).client_token(), req("m1", 7).client_token());
        assert_ne!(req("m1", 7).client_token(), req("m1", 8).client_token());
        assert_ne!(req("m1", 7).client_token(), req("m2", 7).client_token());
        let long = "x".repeat(80);
        let t = req(&long, u64::MAX).client_token();
        assert!(t.len() <= 64 && t.is_ascii(), "{t}");
        assert_ne!(t, req(&"y".repeat(80), u64::MAX).client_token());
        let fallback = CreateRequest {
            attempt: 2,
            ..req("m1", 7)
        };
        assert_ne!(fallback.client_token(), req("m1", 7).client_token());
        let long_fallback = CreateRequest {
            attempt: 9,
            ..req(&long, u64::MAX)
        };
        assert!(long_fallback.client_token().len() <= 64);
    }

    #[test]
    fn machine_name_fills_docker_machines_pattern() {
        assert_eq!(
            CreateRequest::name_from("gitlab-docker-machine-%s", "ab12", 9),
            "gitlab-docker-machine-ab12-9"
        );
        assert_eq!(CreateRequest::name_from("", "ab12", 9), "scalecast-ab12-9");
        assert_eq!(
            CreateRequest::name_from("runner", "ab12", 9),
            "runner-ab12-9"
        );
    }

    #[test]
    fn error_codes_sort_into_what_to_do() {
        assert!(matches!(
            CloudError::from_code("RequestLimitExceeded", ""),
            CloudError::Throttled { .. }
        ));
        assert!(matches!(
            CloudError::from_code("InsufficientInstanceCapacity", ""),
            CloudError::Capacity { .. }
        ));
        assert!(matches!(
            CloudError::from_code("InvalidAMIID.NotFound", ""),
            CloudError::Refused { .. }
        ));
    }
}
