//! The `ringport` command.

mod bench;
mod demo;
mod harness;
mod segments;
mod stat;

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
    /// Run a fuzzing target (built on `ringport::harness`) over cases, a verdict per case; exits
    /// with 2 if any case crashed or hung the target.
    Harness(harness::HarnessArgs),
    /// A demo target for `harness`: answers each case with its length, aborts on cases that
    /// start with "crash", hangs on "hang".
    HarnessTarget,
    /// List the segments in /dev/shm and System V: kind, size, fill, role holders and whether
    /// they live.
    Ls(segments::LsArgs),
    /// A ring's traffic, fill and waits from its segment's counters (rates with --watch).
    Stat(stat::StatArgs),
    /// Remove named segments (refuses one in use unless --force).
    Rm(segments::RmArgs),
    /// Remove the stale segments: ringport's, that no process maps or holds, with no live
    /// holder.
    Gc(segments::GcArgs),
    /// Send frames from standard input into a named SPSC ring (a line each, or length-prefixed).
    Send(segments::SendArgs),
    /// Receive frames from a named SPSC ring to standard output, until its producer has gone.
    Recv(segments::RecvArgs),
    /// The second process of `demo` (started by it).
    #[command(hide = true)]
    DemoPeer(demo::PeerArgs),
    /// The second process of `bench` (started by it).
    #[command(hide = true)]
    BenchPeer(bench::PeerArgs),
    /// The second process of `bench --setup` (started by it).
    #[command(hide = true)]
    BenchSetupPeer(bench::SetupPeerArgs),
    /// A subscriber process of `bench --pubsub` (started by it).
    #[command(hide = true)]
    BenchFanoutPeer(bench::FanoutPeerArgs),
    /// The server process of `bench --rpc` (started by it).
    #[command(hide = true)]
    BenchRpcPeer(bench::RpcPeerArgs),
}

fn main() {
    // A child of the crash-notice measurement plays its part and never returns.
    bench::child_if_asked();
    bench::harness_child_if_asked();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::DemoPeer(args) => demo::peer(&args),
        Command::Bench(args) => bench::run(&args).map_err(|e| e as Box<dyn std::error::Error>),
        Command::Harness(args) => harness::run(&args),
        Command::HarnessTarget => harness::demo_target(),
        Command::Ls(args) => segments::ls(&args),
        Command::Stat(args) => stat::run(&args),
        Command::Rm(args) => segments::rm(&args),
        Command::Gc(args) => segments::gc(&args),
        Command::Send(args) => segments::send(&args),
        Command::Recv(args) => segments::recv(&args),
        Command::BenchPeer(args) => bench::peer(&args).map_err(|e| e as Box<dyn std::error::Error>),
        Command::BenchRpcPeer(args) => {
            bench::rpc_peer(&args).map_err(|e| e as Box<dyn std::error::Error>)
        }
        Command::BenchFanoutPeer(args) => {
            bench::fanout_peer(&args).map_err(|e| e as Box<dyn std::error::Error>)
        }
        Command::BenchSetupPeer(args) => {
            bench::setup_peer(&args).map_err(|e| e as Box<dyn std::error::Error>)
        }
    };
    if let Err(e) = result {
        eprintln!("ringport: {e}");
        std::process::exit(1);
    }
}
