//! The demo: a stand-in Atlas on loopback with a few export jobs (one of them failed, one moving
//! from Queued to Successful over a few minutes), and the exporter pointed at it with digest auth.
//!
//! ```text
//! cargo run --example demo                    # exporter on 127.0.0.1:9947
//! cargo run --example demo -- 127.0.0.1:9000  # somewhere else
//! ```
//! Ctrl-C stops both.

use anyhow::Context;
use atlas_backup_exporter::logging::{self, LogFormat, LogLevel};
use atlas_backup_exporter::{Options, config, web};
use fake_atlas::{
    DEMO_GROUP_ID, DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, DEMO_TOOLING_GROUP_ID, FakeAtlas,
};
use tokio::sync::watch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    logging::init(LogLevel::Info, LogFormat::Logfmt);
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9947".into());

    let (stop, stopped) = watch::channel(false);
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };

    let fake = FakeAtlas::new().with_api_key(DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY);
    let _demo = fake.seed_demo(time::OffsetDateTime::now_utc());
    // The address comes from the bound listener, before anything serves.
    let atlas = fake.bind("127.0.0.1:0").await?;
    let base_url = atlas.base_url();
    let atlas = tokio::spawn(atlas.serve(until_stopped(stopped.clone())));

    // The same path a user's config takes: YAML through the real parser. The second project's
    // cluster is exported by the team's own tooling every day, as its entry declares.
    let yaml = format!(
        "atlas:\n  base_url: {base_url}\n  auth:\n    api_key:\n      public_key: {DEMO_PUBLIC_KEY}\n      private_key: {DEMO_PRIVATE_KEY}\n\
         targets:\n  - group_id: {DEMO_GROUP_ID}\n    labels: {{env: demo}}\n\
         \x20 - group_id: {DEMO_TOOLING_GROUP_ID}\n    labels: {{env: demo}}\n    clusters:\n      - name: Reports\n        expect_export_every: 1d\n\
         export_jobs:\n  max_age: 30d\n\
         metadata:\n  cluster_tags: [team, environment]\n"
    );
    let config = config::parse(&yaml, "demo config")?;
    let credentials = config::resolve_credentials(config.atlas.auth.as_ref(), |_| None)?;
    let app = atlas_backup_exporter::build(&config, credentials.credentials, Options::default())?;
    let listener = web::bind(&address)
        .await
        .with_context(|| {
            format!("listening on {address} (give another address: cargo run --example demo -- 127.0.0.1:9000)")
        })?;
    let local = listener.local_addr()?;
    // Ctrl-C is handled from here on, before the address is printed.
    let shutdown = web::shutdown_signal();

    println!();
    println!("  Stand-in Atlas:  {base_url}");
    println!("  Exporter:        http://{local}/");
    println!("  Metrics:         http://{local}/metrics");
    println!();
    println!(
        "  Try: curl -s http://{local}/metrics | grep -v '^#' | grep 'atlas_backup_export_job_state.* 1$'"
    );
    println!("  Ctrl-C stops both.");
    println!();

    let exporter = tokio::spawn(app.serve(listener, until_stopped(stopped.clone())));
    shutdown.await;
    let _ = stop.send(true);
    exporter.await??;
    atlas.await??;
    Ok(())
}
