use clap::Parser;

fn main() {
    // Before the runtime starts its threads: glibc hands arenas to threads as they allocate.
    let malloc = synmon::malloc::tune();
    let code = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
        .block_on(async {
            let cli = synmon::cli::Cli::parse();
            synmon::cli::init_tracing("synmon=info,warn", cli.log_format == "json");
            tracing::debug!(?malloc, "malloc settings");
            synmon::cli::run(cli).await
        });
    std::process::exit(code);
}
