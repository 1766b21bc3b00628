use clap::Parser;
use uwl_admin::{Cli, Cmd};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        None => {
            let g = uwl_admin::init(&cli.init)?;
            println!(
                "genesis {} with validators {}",
                g.digest(),
                g.validators.iter().map(|v| v.node_id.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
        Some(Cmd::Status(s)) => {
            let status = tokio::runtime::Runtime::new()?.block_on(uwl_admin::status(&s))?;
            print!("{}", status.report());
            if !status.healthy() {
                std::process::exit(1);
            }
        }
        Some(Cmd::Backup(b)) => {
            let reply = tokio::runtime::Runtime::new()?.block_on(uwl_admin::backup(&b))?;
            print!("{}", uwl_admin::backup_report(&b.node, &reply));
        }
        Some(Cmd::Restore(r)) => print!("{}", uwl_admin::restore(&r)?),
        Some(Cmd::Resync(r)) => print!("{}", uwl_admin::resync(&r)?),
        Some(Cmd::Audit(a)) => {
            let report = tokio::runtime::Runtime::new()?.block_on(uwl_admin::audit(&a))?;
            print!("{}", report.text());
            if !report.all_paid() {
                std::process::exit(1);
            }
        }
        Some(Cmd::NatsUsers(u)) => print!("{}", u.conf()),
        Some(Cmd::Verify(v)) => {
            let audit = uwl_admin::verify(&v)?;
            print!("{}", uwl_admin::report(&audit));
            if !audit.is_sound() {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
