//! Writes each target's seeds into `<DIR>/<target>/seed-<i>`, the corpora
//! cargo-fuzz starts from (`tests/fuzz/run`).

fn main() -> std::io::Result<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    for t in uwl_decoders::TARGETS {
        let d = dir.join(t.name);
        std::fs::create_dir_all(&d)?;
        for (i, seed) in (t.seeds)().iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i}")), seed)?;
        }
    }
    Ok(())
}
