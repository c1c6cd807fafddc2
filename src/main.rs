use clap::Parser;

#[tokio::main]
async fn main() {
    synmon::cli::init_tracing("synmon=info,warn");
    let cli = synmon::cli::Cli::parse();
    let code = synmon::cli::run(cli).await;
    std::process::exit(code);
}
