use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    uwl_runtime::init_tracing();
    let settings = uwl_metrics::Settings::parse();
    uwl_metrics::run(settings, uwl_runtime::shutdown_on_signal()).await
}
