//! `skiff s3 init`: prepares a bucket for Skiff (see `skiff_store::s3_init`).

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum S3Command {
    /// Create the bucket if it is missing, and add a lifecycle rule that aborts incomplete
    /// multipart uploads after a day (existing rules are kept). Prints what it found and did.
    Init(InitArgs),
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The object store the agents will use: s3://bucket/prefix (only the bucket matters here)
    #[arg(long, env = "SKIFF_OBJECT_STORE")]
    object_store: String,
    /// S3-compatible endpoint, e.g. http://127.0.0.1:9000 for MinIO [default: AWS]
    #[arg(long, env = "SKIFF_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// The bucket's region [default: AWS_REGION or the profile's, else us-east-1]
    #[arg(long, env = "SKIFF_S3_REGION")]
    s3_region: Option<String>,
    /// Path-style S3 requests (endpoint/bucket/key), as MinIO wants
    #[arg(long, env = "SKIFF_S3_PATH_STYLE", default_value_t = false)]
    s3_path_style: bool,
}

pub async fn run(cmd: S3Command) -> anyhow::Result<()> {
    match cmd {
        S3Command::Init(args) => {
            let Some(rest) = args.object_store.strip_prefix("s3://") else {
                bail!("--object-store: expected s3://bucket/prefix");
            };
            let bucket = rest.split('/').next().unwrap_or_default();
            if bucket.is_empty() {
                bail!("--object-store: no bucket in {:?}", args.object_store);
            }
            let settings = skiff_store::S3Settings {
                endpoint: args.s3_endpoint,
                region: args.s3_region,
                path_style: args.s3_path_style,
            };
            let report = skiff_store::s3_init::init_bucket(bucket, &settings)
                .await
                .with_context(|| format!("preparing bucket {bucket}"))?;
            for line in report {
                println!("{line}");
            }
            Ok(())
        }
    }
}
