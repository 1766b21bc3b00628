use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    uwl_runtime::init_tracing();
    let settings = uwl_ingest::Settings::parse();
    uwl_ingest::run(settings, uwl_runtime::shutdown_on_signal()).await
}
