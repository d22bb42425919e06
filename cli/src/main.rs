//! The `ringport` command.

mod bench;
mod demo;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ringport",
    version,
    about = "Zero-copy IPC over shared-memory rings"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream messages to a second process of this program through a ring, and report the rate.
    Demo(demo::DemoArgs),
    /// Measure IPC mechanisms side by side (latency and throughput), against the hardware limit.
    Bench(bench::BenchArgs),
    /// The second process of `demo` (started by it).
    #[command(hide = true)]
    DemoPeer(demo::PeerArgs),
    /// The second process of `bench` (started by it).
    #[command(hide = true)]
    BenchPeer(bench::PeerArgs),
}

fn main() {
    // A child of the crash-notice measurement plays its part and never returns.
    bench::child_if_asked();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::DemoPeer(args) => demo::peer(&args),
        Command::Bench(args) => bench::run(&args).map_err(|e| e as Box<dyn std::error::Error>),
        Command::BenchPeer(args) => bench::peer(&args).map_err(|e| e as Box<dyn std::error::Error>),
    };
    if let Err(e) = result {
        eprintln!("ringport: {e}");
        std::process::exit(1);
    }
}
