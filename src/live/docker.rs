//! Docker on a machine, over mutual TLS: what `scalecast executor prepare|run|cleanup` do to
//! run a GitLab job there, the way GitLab Runner's docker executor does.
//!
//! A job owns, on its machine: a builds volume (`scalecast-job-J-builds`, mounted at
//! `builds_dir`), a network when it has services, its service containers, and one container
//! per stage it is running. Every one is labelled `scalecast.job=J`, so cleanup finds them all
//! (also after a restart of anything). The user's stages run in the job's image; the stages
//! that need git and the runner's helper binary run in the helper image, on the same volume.
//! Cache volumes (`volumes = ["/path"]`, and `cache_dir` unless `disable_cache`) stay on the
//! machine across its jobs, as docker+machine kept them.

use crate::live::tls::ClientFiles;
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest};
use bollard::query_parameters as q;
use futures_util::StreamExt;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

/// The Docker Engine API version spoken (Debian 12's dockerd speaks 1.41; newer ones accept it).
pub const API_VERSION: bollard::ClientVersion = bollard::ClientVersion {
    major_version: 1,
    minor_version: 41,
};
/// The port machines' Docker listens on, with TLS.
pub const PORT: u16 = 2376;
/// GitLab's helper image, when `[runners.docker] helper_image` is not set.
pub const DEFAULT_HELPER_IMAGE: &str =
    "registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper:x86_64-latest";
const LABEL: &str = "scalecast.job";

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("TLS set-up: {0}")]
    Tls(String),
    #[error("Docker at {endpoint}: {}", chain(error))]
    Api {
        endpoint: String,
        error: bollard::errors::Error,
    },
    #[error("{0}")]
    Job(String),
}

/// An error with its causes ("client error (Connect): invalid peer certificate: ..."): the
/// TLS reason of a refused handshake is three sources down.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        let t = c.to_string();
        if !s.contains(&t) {
            s = format!("{s}: {t}");
        }
        next = c.source();
    }
    s
}

/// Where a job's machine's Docker is, and what the runner's `[runners.docker]` asks for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobTarget {
    /// `HOST:PORT` to dial.
    pub endpoint: String,
    /// The name its certificate must carry.
    pub server_name: String,
    pub settings: Settings,
}

/// The runner's settings for job containers (from config.toml).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// `[runners.docker] image`: for jobs that name none.
    pub image: String,
    pub helper_image: String,
    pub privileged: bool,
    pub volumes: Vec<String>,
    pub disable_cache: bool,
    pub shm_size: i64,
    pub pull_policy: Vec<String>,
    pub network_mode: String,
    pub builds_dir: String,
    pub cache_dir: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            image: String::new(),
            helper_image: DEFAULT_HELPER_IMAGE.into(),
            privileged: false,
            volumes: Vec::new(),
            disable_cache: false,
            shm_size: 0,
            pull_policy: vec!["always".into()],
            network_mode: String::new(),
            builds_dir: "/builds".into(),
            cache_dir: "/cache".into(),
        }
    }
}

impl Settings {
    /// From a runner entry of config.toml.
    pub fn of(runner: &crate::config::Runner) -> Settings {
        let mut s = Settings::default();
        if let Some(d) = &runner.docker {
            s.image = d.image.clone();
            if !d.helper_image.is_empty() {
                s.helper_image = d.helper_image.clone();
            }
            s.privileged = d.privileged;
            s.volumes = d.volumes.clone();
            s.disable_cache = d.disable_cache;
            s.shm_size = d.shm_size;
            if !d.pull_policy.is_empty() {
                s.pull_policy = d.pull_policy.clone();
            }
            s.network_mode = d.network_mode.clone();
        }
        if !runner.builds_dir.is_empty() {
            s.builds_dir = runner.builds_dir.clone();
        }
        if !runner.cache_dir.is_empty() {
            s.cache_dir = runner.cache_dir.clone();
        }
        s
    }
}

/// Checks a machine's certificate against our CA and the machine's own name, whatever address
/// was dialled (the certificate is made before the machine has an address).
#[derive(Debug)]
struct MachineName {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for MachineName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _dialled: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn tls_config(files: &ClientFiles, server_name: &str) -> Result<rustls::ClientConfig, DockerError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| DockerError::Tls(format!("{what}: {e}"));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(files.ca_pem.as_bytes()) {
        roots
            .add(c.map_err(|e| bad("ca.pem", &e))?)
            .map_err(|e| bad("ca.pem", &e))?;
    }
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| bad("verifier", &e))?;
    let name =
        ServerName::try_from(server_name.to_string()).map_err(|e| bad("machine name", &e))?;
    let chain = CertificateDer::pem_slice_iter(files.client.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("client.pem", &e))?;
    let key = PrivateKeyDer::from_pem_slice(files.client.key_pem.as_bytes())
        .map_err(|e| bad("client-key.pem", &e))?;
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("protocols", &e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(MachineName { inner, name }))
        .with_client_auth_cert(chain, key)
        .map_err(|e| bad("client certificate", &e))
}

/// A Docker client for the machine at `endpoint` (`HOST:PORT`) whose certificate names
/// `server_name`, authenticated by the manager's client certificate.
pub fn connect(
    endpoint: &str,
    server_name: &str,
    files: &ClientFiles,
    timeout_s: u64,
) -> Result<Docker, DockerError> {
    let config = tls_config(files, server_name)?;
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(std::time::Duration::from_secs(10)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    let client = Arc::new(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(https),
    );
    Docker::connect_with_custom_transport(
        move |req: bollard::BollardRequest| {
            let client = client.clone();
            async move {
                client
                    .request(req)
                    .await
                    .map_err(bollard::errors::Error::from)
            }
        },
        Some(format!("https://{endpoint}")),
        timeout_s,
        &API_VERSION,
    )
    .map_err(|error| DockerError::Api {
        endpoint: endpoint.into(),
        error,
    })
}

/// The job's side of its environment: what GitLab Runner passes in `CUSTOM_ENV_*`.
#[derive(Clone, Debug, Default)]
pub struct JobEnv {
    pub job: u64,
    /// `CUSTOM_ENV_CI_JOB_IMAGE` (empty: the runner's image).
    pub image: String,
    /// `CUSTOM_ENV_CI_JOB_SERVICES` (a JSON array of names or {name, alias, entrypoint,
    /// command, variables}).
    pub services: Vec<Service>,
    /// `CUSTOM_ENV_CI_REGISTRY`, with the job's credentials for it.
    pub registry: Option<(String, String, String)>,
    /// Who the job is for (`CUSTOM_ENV_CI_PROJECT_PATH`, ...), for its cost.
    pub keys: crate::core::JobKeys,
}

/// One of the job's `services:` (GitLab's JSON form: an object, or just the image's name).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(from = "ServiceForm")]
pub struct Service {
    pub name: String,
    pub alias: String,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    /// The service's own `variables:`.
    pub variables: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ServiceForm {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        alias: Option<String>,
        #[serde(default)]
        entrypoint: Option<Vec<String>>,
        #[serde(default)]
        command: Option<Vec<String>>,
        #[serde(default)]
        variables: Option<ServiceVariables>,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ServiceVariables {
    Map(std::collections::BTreeMap<String, String>),
    List(Vec<KeyValue>),
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    value: String,
}

impl From<ServiceForm> for Service {
    fn from(f: ServiceForm) -> Service {
        match f {
            ServiceForm::Name(name) => Service {
                name,
                ..Default::default()
            },
            ServiceForm::Full {
                name,
                alias,
                entrypoint,
                command,
                variables,
            } => Service {
                name,
                alias: alias.unwrap_or_default(),
                entrypoint,
                command,
                variables: match variables {
                    None => Vec::new(),
                    Some(ServiceVariables::Map(m)) => m.into_iter().collect(),
                    Some(ServiceVariables::List(l)) => {
                        l.into_iter().map(|kv| (kv.key, kv.value)).collect()
                    }
                },
            },
        }
    }
}

impl JobEnv {
    /// Read from the variables GitLab Runner sets (`get` is `std::env::var` outside tests).
    pub fn from_vars(
        job: u64,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<JobEnv, DockerError> {
        let services = match get("CUSTOM_ENV_CI_JOB_SERVICES") {
            Some(s) if !s.trim().is_empty() => serde_json::from_str(&s).map_err(|e| {
                DockerError::Job(format!(
                    "CUSTOM_ENV_CI_JOB_SERVICES is not a list of services: {e}"
                ))
            })?,
            _ => Vec::new(),
        };
        let registry = match (
            get("CUSTOM_ENV_CI_REGISTRY"),
            get("CUSTOM_ENV_CI_REGISTRY_USER"),
            get("CUSTOM_ENV_CI_REGISTRY_PASSWORD"),
        ) {
            (Some(r), Some(u), Some(p)) if !r.is_empty() => Some((r, u, p)),
            _ => None,
        };
        let key = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let keys = crate::core::JobKeys {
            project: key("CUSTOM_ENV_CI_PROJECT_PATH"),
            pipeline: key("CUSTOM_ENV_CI_PIPELINE_ID"),
            git_ref: key("CUSTOM_ENV_CI_COMMIT_REF_NAME"),
            stage: key("CUSTOM_ENV_CI_JOB_STAGE"),
            name: key("CUSTOM_ENV_CI_JOB_NAME"),
            user: key("CUSTOM_ENV_GITLAB_USER_LOGIN"),
        };
        Ok(JobEnv {
            job,
            image: get("CUSTOM_ENV_CI_JOB_IMAGE").unwrap_or_default(),
            services,
            registry,
            keys,
        })
    }

    fn image<'a>(&'a self, s: &'a Settings) -> Result<&'a str, DockerError> {
        match (self.image.as_str(), s.image.as_str()) {
            ("", "") => Err(DockerError::Job(
                "the job names no image and [runners.docker] has no image".into(),
            )),
            ("", i) | (i, _) => Ok(i),
        }
    }
}

/// Where a stage runs: the stages that need git and the runner's helper binary run in the
/// helper image (as GitLab's docker executor does); the user's own in the job's image.
pub fn runs_in_helper(stage: &str) -> bool {
    matches!(
        stage,
        "get_sources" | "restore_cache" | "download_artifacts" | "cleanup_file_variables"
    ) || stage.starts_with("archive_cache")
        || stage.starts_with("upload_artifacts")
}

fn names(job: u64) -> (String, String) {
    (
        format!("scalecast-job-{job}-builds"),
        format!("scalecast-job-{job}"),
    )
}

/// A volume name for a cache path (kept on the machine across jobs).
fn cache_volume(path: &str) -> String {
    let clean: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!(
        "scalecast-cache{}-{:08x}",
        clean.trim_end_matches('-'),
        crate::journal::fnv1a(path.as_bytes()) as u32
    )
}

/// The volumes and binds of every stage container of `job`: the builds volume; the cache
/// volume at `cache_dir` and one per `volumes = ["/path"]` entry, kept on the machine across
/// its jobs (with `disable_cache`, the path entries get volumes of the job's own instead, and
/// there is no cache volume); `HOST:CONTAINER[:ro]` entries as binds.
fn mounts(s: &Settings, job: u64) -> Vec<String> {
    let (builds, _) = names(job);
    let mut binds = vec![format!("{builds}:{}", s.builds_dir)];
    if !s.disable_cache {
        binds.push(format!("{}:{}", cache_volume(&s.cache_dir), s.cache_dir));
    }
    for (i, v) in s.volumes.iter().enumerate() {
        if v.contains(':') {
            binds.push(v.clone());
        } else if s.disable_cache {
            binds.push(format!("scalecast-job-{job}-volume-{i}:{v}"));
        } else {
            binds.push(format!("{}:{v}", cache_volume(v)));
        }
    }
    binds
}

/// A stage container's host settings from `[runners.docker]` (the job's network, when it has
/// services, over `network_mode`).
fn host_config(s: &Settings, job: u64, network: Option<&str>) -> HostConfig {
    HostConfig {
        binds: Some(mounts(s, job)),
        privileged: Some(s.privileged),
        shm_size: (s.shm_size > 0).then_some(s.shm_size),
        network_mode: network
            .map(str::to_string)
            .or_else(|| (!s.network_mode.is_empty()).then(|| s.network_mode.clone())),
        ..Default::default()
    }
}

/// One job on one machine.
pub struct JobDocker<'a> {
    pub docker: &'a Docker,
    pub endpoint: &'a str,
    pub settings: &'a Settings,
    pub env: &'a JobEnv,
}

impl JobDocker<'_> {
    fn api(&self, error: bollard::errors::Error) -> DockerError {
        DockerError::Api {
            endpoint: self.endpoint.into(),
            error,
        }
    }

    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([(LABEL.to_string(), self.env.job.to_string())])
    }

    /// Make sure `image` is on the machine, by the pull policies in order.
    async fn ensure_image(&self, image: &str, out: &mut impl Write) -> Result<(), DockerError> {
        let mut last = None;
        for policy in &self.settings.pull_policy {
            let present = self.docker.inspect_image(image).await.is_ok();
            match policy.as_str() {
                "never" | "if-not-present" if present => return Ok(()),
                "never" => {
                    last = Some(DockerError::Job(format!(
                        "image {image} is not on the machine and pull_policy is never"
                    )));
                    continue;
                }
                _ => {}
            }
            let _ = writeln!(out, "scalecast: pulling {image} (pull_policy {policy})");
            match self.pull(image).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let _ = writeln!(out, "scalecast: pulling {image} failed: {e}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| DockerError::Job(format!("image {image}: no pull policy"))))
    }

    async fn pull(&self, image: &str) -> Result<(), DockerError> {
        let credentials = self.env.registry.as_ref().and_then(|(reg, user, pass)| {
            image
                .starts_with(reg.as_str())
                .then(|| bollard::auth::DockerCredentials {
                    username: Some(user.clone()),
                    password: Some(pass.clone()),
                    serveraddress: Some(reg.clone()),
                    ..Default::default()
                })
        });
        let opts = q::CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        };
        let mut s = self.docker.create_image(Some(opts), None, credentials);
        while let Some(r) = s.next().await {
            r.map_err(|e| self.api(e))?;
        }
        Ok(())
    }

    /// prepare: the images, the builds volume, and the services (on a network of the job's).
    pub async fn prepare(&self, out: &mut impl Write) -> Result<(), DockerError> {
        let image = self.env.image(self.settings)?.to_string();
        self.ensure_image(&image, out).await?;
        self.ensure_image(&self.settings.helper_image, out).await?;
        let (builds, network) = names(self.env.job);
        self.docker
            .create_volume(bollard::models::VolumeCreateRequest {
                name: Some(builds),
                labels: Some(self.labels()),
                ..Default::default()
            })
            .await
            .map_err(|e| self.api(e))?;
        if self.env.services.is_empty() {
            return Ok(());
        }
        if let Err(e) = self
            .docker
            .create_network(NetworkCreateRequest {
                name: network.clone(),
                labels: Some(self.labels()),
                ..Default::default()
            })
            .await
        {
            // Already made by an earlier try of this prepare.
            if !matches!(
                &e,
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 409,
                    ..
                }
            ) {
                return Err(self.api(e));
            }
        }
        for (i, svc) in self.env.services.iter().enumerate() {
            self.ensure_image(&svc.name, out).await?;
            let alias = if svc.alias.is_empty() {
                svc.name
                    .rsplit('/')
                    .next()
                    .unwrap_or(&svc.name)
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            } else {
                svc.alias.clone()
            };
            let name = format!("scalecast-job-{}-service-{i}", self.env.job);
            let body = ContainerCreateBody {
                image: Some(svc.name.clone()),
                env: Some(
                    svc.variables
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect(),
                ),
                entrypoint: svc.entrypoint.clone(),
                cmd: svc.command.clone(),
                labels: Some(self.labels()),
                host_config: Some(HostConfig {
                    network_mode: Some(network.clone()),
                    privileged: Some(self.settings.privileged),
                    ..Default::default()
                }),
                networking_config: Some(bollard::models::NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(
                        network.clone(),
                        bollard::models::EndpointSettings {
                            aliases: Some(vec![alias]),
                            ..Default::default()
                        },
                    )])),
                }),
                ..Default::default()
            };
            let opts = q::CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            };
            match self.docker.create_container(Some(opts), body).await {
                Ok(_) => {}
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                }) => {}
                Err(e) => return Err(self.api(e)),
            }
            self.docker
                .start_container(&name, None::<q::StartContainerOptions>)
                .await
                .map_err(|e| self.api(e))?;
        }
        Ok(())
    }

    /// run: `script` as stage `stage`, its output streamed to `stdout`/`stderr` as it comes.
    /// Returns the script's exit code.
    pub async fn run(
        &self,
        script: &[u8],
        stage: &str,
        stdout: &mut impl Write,
        stderr: &mut impl Write,
    ) -> Result<i64, DockerError> {
        let helper = runs_in_helper(stage);
        let image = if helper {
            self.settings.helper_image.clone()
        } else {
            self.env.image(self.settings)?.to_string()
        };
        let safe: String = stage
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let name = format!("scalecast-job-{}-{safe}", self.env.job);
        // A container left by an earlier, killed try of this stage.
        self.force_remove(&name).await;
        let (_, network) = names(self.env.job);
        let net = (!self.env.services.is_empty()).then_some(network.as_str());
        let body = ContainerCreateBody {
            image: Some(image),
            entrypoint: Some(vec![]),
            cmd: Some(vec!["sh".into(), "-c".into(), stage_command(helper)]),
            labels: Some(self.labels()),
            host_config: Some(host_config(self.settings, self.env.job, net)),
            ..Default::default()
        };
        let opts = q::CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        self.docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| self.api(e))?;
        let ran = self.start_and_stream(&name, script, stdout, stderr).await;
        // Gone whatever happened: a stage container lives only as long as its stage.
        self.force_remove(&name).await;
        ran
    }

    /// Copy the script in, start the container, stream its output, and return its exit code.
    async fn start_and_stream(
        &self,
        name: &str,
        script: &[u8],
        stdout: &mut impl Write,
        stderr: &mut impl Write,
    ) -> Result<i64, DockerError> {
        let tar = tar_one("scalecast-script", 0o700, script);
        self.docker
            .upload_to_container(
                name,
                Some(q::UploadToContainerOptions {
                    path: "/".into(),
                    ..Default::default()
                }),
                bollard::body_full(tar.into()),
            )
            .await
            .map_err(|e| self.api(e))?;
        self.docker
            .start_container(name, None::<q::StartContainerOptions>)
            .await
            .map_err(|e| self.api(e))?;
        let mut logs = self.docker.logs(
            name,
            Some(q::LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        );
        while let Some(chunk) = logs.next().await {
            match chunk.map_err(|e| self.api(e))? {
                bollard::container::LogOutput::StdErr { message } => {
                    let _ = stderr.write_all(&message);
                    let _ = stderr.flush();
                }
                other => {
                    let _ = stdout.write_all(other.as_ref());
                    let _ = stdout.flush();
                }
            }
        }
        let mut wait = self
            .docker
            .wait_container(name, None::<q::WaitContainerOptions>);
        match wait.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(self.api(e)),
            None => Err(DockerError::Job(format!("{name}: no exit status"))),
        }
    }

    /// Remove a container, running or not; one already gone is no error.
    async fn force_remove(&self, name: &str) {
        let opts = q::RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        let _ = self.docker.remove_container(name, Some(opts)).await;
    }

    /// Stop the stage containers of the job now (its run was told to stop).
    pub async fn kill(&self) {
        let _ = self.remove_all(false).await;
    }

    /// cleanup: every container of the job, its network and its builds volume. Returns how
    /// many objects it removed.
    pub async fn cleanup(&self) -> Result<usize, DockerError> {
        self.remove_all(true).await
    }

    async fn remove_all(&self, everything: bool) -> Result<usize, DockerError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL}={}", self.env.job)],
        )]);
        let containers = self
            .docker
            .list_containers(Some(q::ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| self.api(e))?;
        let mut removed = 0;
        for c in containers {
            let Some(id) = c.id else { continue };
            self.docker
                .remove_container(
                    &id,
                    Some(q::RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await
                .map_err(|e| self.api(e))?;
            removed += 1;
        }
        if !everything {
            return Ok(removed);
        }
        let (builds, network) = names(self.env.job);
        let gone = |e: &bollard::errors::Error| {
            matches!(
                e,
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                }
            )
        };
        match self.docker.remove_network(&network).await {
            Ok(()) => removed += 1,
            Err(e) if gone(&e) => {}
            Err(e) => return Err(self.api(e)),
        }
        // The builds volume, and the job's own volumes (`volumes` with `disable_cache`).
        let prefix = format!("scalecast-job-{}-", self.env.job);
        let listed = self
            .docker
            .list_volumes(Some(q::ListVolumesOptions {
                filters: Some(HashMap::from([("name".to_string(), vec![prefix.clone()])])),
            }))
            .await
            .map_err(|e| self.api(e))?;
        let mut volumes: Vec<String> = listed
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .filter(|n| n.starts_with(&prefix))
            .collect();
        if !volumes.contains(&builds) {
            volumes.push(builds);
        }
        for v in volumes {
            match self
                .docker
                .remove_volume(&v, None::<q::RemoveVolumeOptions>)
                .await
            {
                Ok(()) => removed += 1,
                Err(e) if gone(&e) => {}
                Err(e) => return Err(self.api(e)),
            }
        }
        Ok(removed)
    }
}

/// The shell line a stage's container runs: the script with bash when the image has it, else
/// sh. In the helper image, GitLab's scripts call `gitlab-runner` (for caches and artifacts)
/// where the image has `gitlab-runner-helper`: a link on the PATH bridges the two.
fn stage_command(helper: bool) -> String {
    let shim = if helper {
        "if ! command -v gitlab-runner >/dev/null 2>&1 && command -v gitlab-runner-helper >/dev/null 2>&1; then \
         mkdir -p /tmp/.scalecast-bin && ln -sf \"$(command -v gitlab-runner-helper)\" /tmp/.scalecast-bin/gitlab-runner && \
         PATH=\"/tmp/.scalecast-bin:$PATH\" && export PATH; fi; "
    } else {
        ""
    };
    format!(
        "{shim}if command -v bash >/dev/null 2>&1; then exec bash /scalecast-script; else exec sh /scalecast-script; fi"
    )
}

/// A tar archive of one file (POSIX ustar), for Docker's archive upload.
pub fn tar_one(name: &str, mode: u32, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, len: usize, s: &[u8]| {
        h[at..at + s.len().min(len)].copy_from_slice(&s[..s.len().min(len)]);
    };
    put(&mut h, 0, 100, name.as_bytes());
    put(&mut h, 100, 8, format!("{mode:07o}\0").as_bytes());
    put(&mut h, 108, 8, b"0000000\0");
    put(&mut h, 116, 8, b"0000000\0");
    put(&mut h, 124, 12, format!("{:011o}\0", data.len()).as_bytes());
    put(&mut h, 136, 12, b"00000000000\0");
    put(&mut h, 148, 8, b"        ");
    h[156] = b'0';
    put(&mut h, 257, 8, b"ustar\x0000");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    put(&mut h, 148, 8, format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_that_need_git_and_the_helper_run_in_the_helper_image() {
        for s in [
            "get_sources",
            "restore_cache",
            "download_artifacts",
            "archive_cache",
            "archive_cache_on_failure",
            "upload_artifacts_on_success",
            "upload_artifacts_on_failure",
            "cleanup_file_variables",
        ] {
            assert!(runs_in_helper(s), "{s}");
        }
        for s in [
            "prepare_script",
            "step_script",
            "build_script",
            "step_release",
            "after_script",
        ] {
            assert!(!runs_in_helper(s), "{s}");
        }
    }

    #[test]
    fn runners_docker_settings_make_the_stage_containers_host_config() {
        let s = Settings {
            privileged: true,
            shm_size: 64 << 20,
            volumes: vec!["/srv/data:/data:ro".into(), "/keep".into()],
            network_mode: "none".into(),
            ..Default::default()
        };
        let h = host_config(&s, 9, None);
        assert_eq!(h.privileged, Some(true));
        assert_eq!(h.shm_size, Some(64 << 20));
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        let binds = h.binds.unwrap();
        assert_eq!(binds[0], "scalecast-job-9-builds:/builds");
        assert!(binds[1].starts_with("scalecast-cache") && binds[1].ends_with(":/cache"));
        assert_eq!(binds[2], "/srv/data:/data:ro");
        assert!(binds[3].starts_with("scalecast-cache") && binds[3].ends_with(":/keep"));
        // The job's services' network wins over network_mode.
        let h = host_config(&s, 9, Some("scalecast-job-9"));
        assert_eq!(h.network_mode.as_deref(), Some("scalecast-job-9"));
        // disable_cache: no cache volume, and path entries get volumes of the job's own.
        let off = Settings {
            disable_cache: true,
            ..s
        };
        let binds = host_config(&off, 9, None).binds.unwrap();
        assert_eq!(
            binds,
            [
                "scalecast-job-9-builds:/builds",
                "/srv/data:/data:ro",
                "scalecast-job-9-volume-1:/keep"
            ]
        );
        assert_eq!(
            host_config(&Settings::default(), 9, None).privileged,
            Some(false)
        );
    }

    #[test]
    fn a_tar_of_one_file_reads_back_with_tar() {
        let dir = crate::testing::scratch("tar");
        std::fs::create_dir_all(&dir).unwrap();
        let data = b"echo hello\nexit 3\n".repeat(40);
        std::fs::write(dir.join("a.tar"), tar_one("scalecast-script", 0o700, &data)).unwrap();
        let ok = std::process::Command::new("tar")
            .args(["-xf", "a.tar"])
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(ok.success());
        assert_eq!(std::fs::read(dir.join("scalecast-script")).unwrap(), data);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("scalecast-script"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn job_env_reads_gitlabs_variables() {
        let vars = HashMap::from([
            ("CUSTOM_ENV_CI_JOB_IMAGE", "alpine:3"),
            (
                "CUSTOM_ENV_CI_JOB_SERVICES",
                r#"[{"name":"postgres:16","alias":"db","variables":[{"key":"POSTGRES_DB","value":"ci"}]},"redis:7"]"#,
            ),
            ("CUSTOM_ENV_CI_REGISTRY", "registry.example.com"),
            ("CUSTOM_ENV_CI_REGISTRY_USER", "gitlab-ci-token"),
            ("CUSTOM_ENV_CI_REGISTRY_PASSWORD", "secret"),
            ("CUSTOM_ENV_CI_PROJECT_PATH", "group/app"),
            ("CUSTOM_ENV_CI_JOB_STAGE", "test"),
            ("CUSTOM_ENV_CI_COMMIT_REF_NAME", " "),
        ]);
        let env = JobEnv::from_vars(7, |k| vars.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(env.image, "alpine:3");
        assert_eq!(env.keys.project.as_deref(), Some("group/app"));
        assert_eq!(env.keys.stage.as_deref(), Some("test"));
        assert_eq!(env.keys.git_ref, None, "blank is absent, not a key");
        assert_eq!(env.services[0].alias, "db");
        assert_eq!(
            env.services[0].variables,
            [("POSTGRES_DB".into(), "ci".into())]
        );
        assert_eq!(env.services[1].name, "redis:7");
        assert_eq!(env.registry.as_ref().unwrap().0, "registry.example.com");
        let settings = Settings {
            image: "debian".into(),
            ..Default::default()
        };
        assert_eq!(env.image(&settings).unwrap(), "alpine:3");
        let bare = JobEnv::from_vars(8, |_| None).unwrap();
        assert_eq!(bare.image(&settings).unwrap(), "debian");
        assert!(bare.image(&Settings::default()).is_err());
        let bad = JobEnv::from_vars(9, |k| {
            (k == "CUSTOM_ENV_CI_JOB_SERVICES").then(|| "{".to_string())
        });
        assert!(bad.is_err());
    }
}
