use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cfg = uwl_admin::Init::parse();
    let g = uwl_admin::init(&cfg)?;
    println!(
        "genesis {} with validators {}",
        g.digest(),
        g.validators.iter().map(|v| v.node_id.as_str()).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}
