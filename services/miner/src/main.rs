use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    uwl_runtime::init_tracing();
    let settings = uwl_miner::Settings::parse();
    uwl_miner::run(settings, uwl_runtime::shutdown_on_signal()).await
}
