use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    uwl_runtime::init_tracing();
    let settings = uwl_sync::Settings::parse();
    uwl_sync::run(settings, uwl_runtime::shutdown_on_signal()).await
}
