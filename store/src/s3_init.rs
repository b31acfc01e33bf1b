//! `skiff s3 init`: makes a bucket ready for Skiff. Creates it when it is missing, and adds a
//! lifecycle rule that aborts multipart uploads left incomplete (an agent or compactor that dies
//! mid-upload leaves parts that are billed as storage until aborted). Existing lifecycle rules are
//! kept: S3 replaces a bucket's whole lifecycle configuration on every PUT, so the current rules
//! are read first and ours is added to them.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint,
    CreateBucketConfiguration, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
};

use crate::open::S3Settings;

/// The id of the rule `init` adds; finding it means the rule is there already.
pub const ABORT_RULE_ID: &str = "skiff-abort-incomplete-multipart-uploads";
/// Days after which an incomplete multipart upload is aborted.
pub const ABORT_AFTER_DAYS: i32 = 1;

#[derive(Debug, thiserror::Error)]
#[error("{step}: {message}")]
pub struct InitError {
    step: &'static str,
    message: String,
}

fn failed<E: ProvideErrorMetadata + std::fmt::Display>(
    step: &'static str,
) -> impl Fn(E) -> InitError {
    move |e| InitError {
        step,
        message: match (e.code(), e.message()) {
            (Some(code), Some(msg)) => format!("{code}: {msg}"),
            (Some(code), None) => code.to_string(),
            _ => e.to_string(),
        },
    }
}

/// Makes `bucket` ready; returns one line per thing it found or did.
pub async fn init_bucket(bucket: &str, settings: &S3Settings) -> Result<Vec<String>, InitError> {
    let sdk = crate::aws::sdk_config(settings).await;
    let config = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(settings.path_style)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(config);
    let region = sdk
        .region()
        .map_or_else(|| "us-east-1".to_string(), |r| r.to_string());
    let mut report = Vec::new();

    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => report.push(format!("bucket {bucket}: exists")),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {
            let mut create = s3.create_bucket().bucket(bucket);
            // us-east-1 is the one region that takes no location constraint.
            if region != "us-east-1" {
                create = create.create_bucket_configuration(
                    CreateBucketConfiguration::builder()
                        .location_constraint(BucketLocationConstraint::from(region.as_str()))
                        .build(),
                );
            }
            create
                .send()
                .await
                .map_err(|e| failed("creating the bucket")(e.into_service_error()))?;
            report.push(format!("bucket {bucket}: created in {region}"));
        }
        Err(e) => return Err(failed("looking for the bucket")(e.into_service_error())),
    }

    let mut rules = match s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(current) => current.rules.unwrap_or_default(),
        // A bucket with no lifecycle configuration answers with this error code.
        Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Vec::new(),
        Err(e) => {
            return Err(failed("reading the lifecycle rules")(
                e.into_service_error(),
            ))
        }
    };
    if rules.iter().any(|r| r.id() == Some(ABORT_RULE_ID)) {
        report.push(format!("lifecycle rule {ABORT_RULE_ID}: already there"));
        return Ok(report);
    }
    let kept = rules.len();
    let rule = LifecycleRule::builder()
        .id(ABORT_RULE_ID)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(ABORT_AFTER_DAYS)
                .build(),
        )
        .build()
        .map_err(|e| InitError {
            step: "building the lifecycle rule",
            message: e.to_string(),
        })?;
    rules.push(rule);
    let configuration = BucketLifecycleConfiguration::builder()
        .set_rules(Some(rules))
        .build()
        .map_err(|e| InitError {
            step: "building the lifecycle configuration",
            message: e.to_string(),
        })?;
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(configuration)
        .send()
        .await
        .map_err(|e| failed("setting the lifecycle rules")(e.into_service_error()))?;
    report.push(format!(
        "lifecycle rule {ABORT_RULE_ID}: added (aborts multipart uploads still incomplete after {ABORT_AFTER_DAYS} day; {kept} existing rule(s) kept)"
    ));
    Ok(report)
}
