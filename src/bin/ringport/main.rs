//! The `ringport` command.

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
    /// The second process of `demo` (started by it).
    #[command(hide = true)]
    DemoPeer(demo::PeerArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::DemoPeer(args) => demo::peer(&args),
    };
    if let Err(e) = result {
        eprintln!("ringport: {e}");
        std::process::exit(1);
    }
}
