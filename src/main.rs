use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = synmon::cli::Cli::parse();
    synmon::cli::init_tracing("synmon=info,warn", cli.log_format == "json");
    let code = synmon::cli::run(cli).await;
    std::process::exit(code);
}
