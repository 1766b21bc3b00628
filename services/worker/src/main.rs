use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    uwl_runtime::init_tracing();
    let settings = uwl_worker::Settings::parse();
    let tally = uwl_worker::run(settings, uwl_runtime::shutdown_on_signal()).await?;
    println!("in block {}, queued {}, failed {}, resubmitted {}", tally.in_block, tally.queued, tally.failed, tally.resubmitted);
    Ok(())
}
