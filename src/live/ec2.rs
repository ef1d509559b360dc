//! The cloud port on AWS EC2 (aws-sdk-ec2), from the runner's `amazonec2-*` MachineOptions as
//! docker-machine's amazonec2 driver reads them: region, zone, VPC, subnet, security groups by
//! name, instance type, AMI, root volume, IAM instance profile, private address, tags, spot
//! request and price.
//!
//! Credentials come from the SDK's default chain (the manager's instance profile, the
//! environment), or from `amazonec2-access-key` / `amazonec2-secret-key` when the config sets
//! them, as docker-machine does. `AWS_ENDPOINT_URL` is honoured (the tests run against moto).
//! No secret is ever part of a message this module makes.

use crate::config::machine_options::Ec2Options;
use crate::live::cloud::{
    Cloud, CloudError, CreateRequest, Instance, InstanceState, MACHINE_TAG, MANAGER_TAG,
};
use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, HttpTokensState, IamInstanceProfileSpecification,
    InstanceInterruptionBehavior, InstanceLifecycleType, InstanceMarketOptionsRequest,
    InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceNetworkInterfaceSpecification, InstanceStateName, InstanceType, MarketType, Placement,
    ResourceType, SpotInstanceType, SpotMarketOptions, Tag, TagSpecification, VolumeType,
};

/// Canonical's account: where docker-machine's default Ubuntu images come from.
const CANONICAL: &str = "099720109477";
/// docker-machine's default bid when a spot instance is requested without a price, $/h.
const DEFAULT_SPOT_PRICE: f64 = 0.50;

/// EC2 for one runner's MachineOptions.
pub struct Ec2Cloud {
    client: Client,
    opts: Ec2Options,
    /// The AMI to launch: `amazonec2-ami`, or the newest Ubuntu server image of the region.
    ami: String,
    /// `amazonec2-security-group` names, resolved to ids (in the VPC when one is set).
    security_group_ids: Vec<String>,
}

impl std::fmt::Debug for Ec2Cloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2Cloud")
            .field("region", &self.opts.region)
            .field("ami", &self.ami)
            .field("security_group_ids", &self.security_group_ids)
            .finish_non_exhaustive()
    }
}

/// An SDK error, sorted: a service error by its code, anything else as unreachable.
fn cloud_error<E, R>(e: aws_sdk_ec2::error::SdkError<E, R>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.code() {
        Some(code) => CloudError::from_code(code, e.message().unwrap_or("")),
        None => CloudError::Unreachable(DisplayErrorContext(&e).to_string()),
    }
}

fn state_of(name: Option<&InstanceStateName>) -> InstanceState {
    match name {
        Some(InstanceStateName::Pending) => InstanceState::Pending,
        Some(InstanceStateName::Running) => InstanceState::Running,
        Some(InstanceStateName::ShuttingDown) => InstanceState::ShuttingDown,
        Some(InstanceStateName::Terminated) => InstanceState::Terminated,
        Some(InstanceStateName::Stopping) => InstanceState::Stopping,
        Some(InstanceStateName::Stopped) => InstanceState::Stopped,
        _ => InstanceState::Unknown,
    }
}

fn instance_of(i: &aws_sdk_ec2::types::Instance, private: bool) -> Instance {
    let tag = |k: &str| {
        i.tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
    };
    Instance {
        id: i.instance_id().unwrap_or_default().to_string(),
        machine: tag(MACHINE_TAG).and_then(|v| v.parse().ok()),
        state: state_of(i.state().and_then(|s| s.name())),
        spot: i.instance_lifecycle() == Some(&InstanceLifecycleType::Spot),
        instance_type: i
            .instance_type()
            .map_or(String::new(), |t| t.as_str().to_string()),
        notice: false,
        // docker-machine's amazonec2 driver: the public address unless told to use the
        // private one (or the machine has no public one).
        address: if private {
            i.private_ip_address()
        } else {
            i.public_ip_address().or(i.private_ip_address())
        }
        .map(str::to_string),
    }
}

/// The spot request status codes that announce an interruption (AWS's "spot request status"
/// table): the instance is about to be terminated, stopped or hibernated.
pub fn is_interruption(status_code: &str) -> bool {
    matches!(
        status_code,
        "marked-for-termination"
            | "marked-for-stop"
            | "marked-for-hibernation"
            | "instance-terminated-by-price"
            | "instance-terminated-no-capacity"
            | "instance-terminated-capacity-oversubscribed"
    )
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

impl Ec2Cloud {
    /// Connect in the options' region with the default credential chain (or the options' own
    /// keys), then resolve the AMI and the security groups once.
    pub async fn connect(opts: &Ec2Options) -> Result<Self, CloudError> {
        Self::connect_at(opts, None).await
    }

    /// As [`Ec2Cloud::connect`], against `endpoint` when given (else `AWS_ENDPOINT_URL` or AWS).
    pub async fn connect_at(opts: &Ec2Options, endpoint: Option<&str>) -> Result<Self, CloudError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(opts.region.clone()));
        if !opts.access_key.is_empty() {
            loader = loader.credentials_provider(Credentials::new(
                opts.access_key.expose(),
                opts.secret_key.expose(),
                None,
                None,
                "amazonec2 MachineOptions",
            ));
        }
        if let Some(url) = endpoint {
            loader = loader.endpoint_url(url);
        }
        let client = Client::new(&loader.load().await);
        let ami = if opts.ami.is_empty() {
            newest_ubuntu(&client, &opts.region).await?
        } else {
            opts.ami.clone()
        };
        let security_group_ids = security_groups(&client, opts).await?;
        Ok(Ec2Cloud {
            client,
            opts: opts.clone(),
            ami,
            security_group_ids,
        })
    }

    fn private(&self) -> bool {
        self.opts.use_private_address || self.opts.private_address_only
    }

    pub fn ami(&self) -> &str {
        &self.ami
    }

    pub fn security_group_ids(&self) -> &[String] {
        &self.security_group_ids
    }
}

/// The newest Ubuntu server image from Canonical in the region.
async fn newest_ubuntu(client: &Client, region: &str) -> Result<String, CloudError> {
    let out = client
        .describe_images()
        .owners(CANONICAL)
        .filters(
            Filter::builder()
                .name("name")
                .values("ubuntu/images/hvm-ssd*/ubuntu-*-amd64-server-*")
                .build(),
        )
        .send()
        .await
        .map_err(cloud_error)?;
    out.images()
        .iter()
        .filter_map(|i| Some((i.creation_date().unwrap_or(""), i.image_id()?)))
        .max()
        .map(|(_, id)| id.to_string())
        .ok_or_else(|| CloudError::Refused {
            code: "NoDefaultImage".into(),
            message: format!(
                "no Ubuntu server image from Canonical in {region}: set amazonec2-ami in MachineOptions"
            ),
        })
}

/// `amazonec2-security-group` names as ids; every name must exist (in the VPC when set).
async fn security_groups(client: &Client, o: &Ec2Options) -> Result<Vec<String>, CloudError> {
    if o.security_group.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = client.describe_security_groups().filters(
        Filter::builder()
            .name("group-name")
            .set_values(Some(o.security_group.clone()))
            .build(),
    );
    if !o.vpc_id.is_empty() {
        q = q.filters(Filter::builder().name("vpc-id").values(&o.vpc_id).build());
    }
    let out = q.send().await.map_err(cloud_error)?;
    let mut ids = Vec::new();
    for name in &o.security_group {
        let found = out
            .security_groups()
            .iter()
            .find(|g| g.group_name() == Some(name.as_str()))
            .and_then(|g| g.group_id());
        match found {
            Some(id) => ids.push(id.to_string()),
            None => {
                return Err(CloudError::Refused {
                    code: "InvalidGroup.NotFound".into(),
                    message: format!(
                        "security group {name:?} (amazonec2-security-group) does not exist{}",
                        if o.vpc_id.is_empty() {
                            String::new()
                        } else {
                            format!(" in {}", o.vpc_id)
                        }
                    ),
                });
            }
        }
    }
    Ok(ids)
}

impl Cloud for Ec2Cloud {
    async fn reconfigure(&self, opts: &Ec2Options) -> Result<Self, CloudError> {
        if opts.region != self.opts.region
            || opts.access_key != self.opts.access_key
            || opts.secret_key != self.opts.secret_key
        {
            return Err(CloudError::Refused {
                code: "RestartNeeded".into(),
                message: format!(
                    "amazonec2-region or the access keys changed ({} -> {}): the instances made so far would be out of sight; restart scalecast live to use them",
                    self.opts.region, opts.region
                ),
            });
        }
        // The image and the security groups are resolved again only when their options
        // changed (an unchanged empty amazonec2-ami keeps the image found at start).
        let ami = if opts.ami == self.opts.ami {
            self.ami.clone()
        } else if opts.ami.is_empty() {
            newest_ubuntu(&self.client, &opts.region).await?
        } else {
            opts.ami.clone()
        };
        let security_group_ids =
            if opts.security_group == self.opts.security_group && opts.vpc_id == self.opts.vpc_id {
                self.security_group_ids.clone()
            } else {
                security_groups(&self.client, opts).await?
            };
        Ok(Ec2Cloud {
            client: self.client.clone(),
            opts: opts.clone(),
            ami,
            security_group_ids,
        })
    }

    async fn create(&self, req: &CreateRequest) -> Result<Instance, CloudError> {
        let o = &self.opts;
        let mut tags = vec![
            tag("Name", &req.name),
            tag(MANAGER_TAG, &req.manager),
            tag(MACHINE_TAG, &req.machine.to_string()),
        ];
        tags.extend(o.tags.iter().map(|(k, v)| tag(k, v)));
        let mut run = self
            .client
            .run_instances()
            .image_id(&self.ami)
            .instance_type(InstanceType::from(
                req.instance_type.as_deref().unwrap_or(&o.instance_type),
            ))
            .min_count(1)
            .max_count(1)
            // IMDSv2 only, one hop: a job's container cannot read the instance's metadata or
            // its user data (which carries the machine's Docker key).
            .metadata_options(
                InstanceMetadataOptionsRequest::builder()
                    .http_tokens(HttpTokensState::Required)
                    .http_put_response_hop_limit(1)
                    .http_endpoint(InstanceMetadataEndpointState::Enabled)
                    .build(),
            )
            .client_token(req.client_token())
            .placement(
                Placement::builder()
                    .availability_zone(format!("{}{}", o.region, o.zone))
                    .build(),
            )
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name("/dev/sda1")
                    .ebs(
                        EbsBlockDevice::builder()
                            .volume_size(o.root_size as i32)
                            .volume_type(VolumeType::from(o.volume_type.as_str()))
                            .delete_on_termination(true)
                            .build(),
                    )
                    .build(),
            )
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .set_tags(Some(tags))
                    .build(),
            );
        if !o.iam_instance_profile.is_empty() {
            run = run.iam_instance_profile(
                IamInstanceProfileSpecification::builder()
                    .name(&o.iam_instance_profile)
                    .build(),
            );
        }
        if o.private_address_only && !o.subnet_id.is_empty() {
            run = run.network_interfaces(
                InstanceNetworkInterfaceSpecification::builder()
                    .device_index(0)
                    .subnet_id(&o.subnet_id)
                    .associate_public_ip_address(false)
                    .set_groups(Some(self.security_group_ids.clone()))
                    .build(),
            );
        } else {
            if !o.subnet_id.is_empty() {
                run = run.subnet_id(&o.subnet_id);
            }
            if !self.security_group_ids.is_empty() {
                run = run.set_security_group_ids(Some(self.security_group_ids.clone()));
            }
        }
        if o.request_spot_instance && !req.on_demand {
            run = run.instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .spot_options(
                        SpotMarketOptions::builder()
                            .max_price(format!("{:.4}", o.spot_price.unwrap_or(DEFAULT_SPOT_PRICE)))
                            .spot_instance_type(SpotInstanceType::OneTime)
                            .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                            .build(),
                    )
                    .build(),
            );
        }
        if let Some(ud) = &req.user_data {
            use base64::Engine;
            run = run.user_data(base64::engine::general_purpose::STANDARD.encode(ud));
        }
        let out = run.send().await.map_err(cloud_error)?;
        out.instances()
            .first()
            .map(|i| instance_of(i, self.private()))
            .ok_or_else(|| CloudError::Unreachable("RunInstances returned no instance".into()))
    }

    async fn terminate(&self, instance_id: &str) -> Result<(), CloudError> {
        match self
            .client
            .terminate_instances()
            .instance_ids(instance_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => Ok(()),
            Err(e) => Err(cloud_error(e)),
        }
    }

    async fn list(&self, manager: &str) -> Result<Vec<Instance>, CloudError> {
        let mut out = Vec::new();
        let mut requests: Vec<(String, String)> = Vec::new();
        let mut pages = self
            .client
            .describe_instances()
            .filters(
                Filter::builder()
                    .name(format!("tag:{MANAGER_TAG}"))
                    .values(manager)
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(cloud_error)?;
            for r in page.reservations() {
                for i in r.instances() {
                    let inst = instance_of(i, self.private());
                    if !inst.state.alive() {
                        continue;
                    }
                    if let Some(req) = i.spot_instance_request_id() {
                        requests.push((req.to_string(), inst.id.clone()));
                    }
                    out.push(inst);
                }
            }
        }
        // Interruption notices, from the spot requests' status (one call for all of them).
        if !requests.is_empty() {
            let ids: Vec<String> = requests.iter().map(|(r, _)| r.clone()).collect();
            let answer = self
                .client
                .describe_spot_instance_requests()
                .set_spot_instance_request_ids(Some(ids))
                .send()
                .await
                .map_err(cloud_error)?;
            for r in answer.spot_instance_requests() {
                let code = r.status().and_then(|s| s.code()).unwrap_or("");
                if is_interruption(code)
                    && let Some(id) = r.instance_id()
                    && let Some(i) = out.iter_mut().find(|i| i.id == id)
                {
                    i.notice = true;
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}
