//! `ringport bench --rpc`: a request and its response between a client (the bench) and a server
//! process pinned to the other core, the response as long as the request. Contenders,
//! interleaved in each round:
//!
//! - `ringport-rpc`: `rpc::Client::send` and `recv` (the response read in place) against an
//!   `rpc::Server`;
//! - `channel`: the same bytes each way over a ringport `Channel` (a ping-pong: what a
//!   request-response layer over a channel cannot beat);
//! - `iceoryx2` (with its feature): iceoryx2's request-response, and in the blocking form an
//!   event service each way, notified after every send.
//!
//! Busy: the calls spin (ringport's spin set longer than any wait; iceoryx2 polled). Blocking:
//! no spin, so that the figure is the futex path's.

use std::process::Command;
use std::time::{Duration, Instant};

use ringport::rpc::RpcOptions;
use ringport::{Channel, ChannelOptions, Policy, SpscOptions};

use super::fanout::{json_doc, median, ratios_json, ratios_text, Sub};
use super::links::look_at;
use super::measure::message;
use super::plan::{show_size, Mode};
use super::report::{json_string, show_nanos};
use super::BoxError;

/// What carries the requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Carrier {
    RingportRpc,
    Channel,
    #[cfg(feature = "iceoryx2")]
    Iceoryx2,
}

impl Carrier {
    pub fn name(self) -> &'static str {
        match self {
            Carrier::RingportRpc => "ringport-rpc",
            Carrier::Channel => "channel",
            #[cfg(feature = "iceoryx2")]
            Carrier::Iceoryx2 => "iceoryx2",
        }
    }

    fn all() -> Vec<Carrier> {
        vec![
            Carrier::RingportRpc,
            Carrier::Channel,
            #[cfg(feature = "iceoryx2")]
            Carrier::Iceoryx2,
        ]
    }
}

/// A busy wait that outlasts any sample.
const BUSY: Duration = Duration::from_secs(30);
/// How long a call may take before the sample fails.
const PATIENCE: Duration = Duration::from_secs(10);

fn spin(mode: Mode) -> Duration {
    match mode {
        Mode::Spin => BUSY,
        Mode::Block => Duration::ZERO,
    }
}

fn rpc_options(mode: Mode, size: usize) -> RpcOptions {
    let frame = 8 + (size + 8).next_multiple_of(8);
    RpcOptions::new()
        .max_request(size)
        .request_slots(if size > 64 << 10 { 4 } else { 64 })
        .response_capacity((4 * (frame + 8)).max(64 << 10).next_power_of_two())
        .spin(spin(mode))
}

fn channel_options(mode: Mode, size: usize) -> ChannelOptions {
    let frame = 8 + size.next_multiple_of(8);
    ChannelOptions::new()
        .policy(Policy::Ring)
        .max_message(u32::try_from(size.max(8)).unwrap_or(u32::MAX))
        .ring(
            SpscOptions::new()
                .capacity((4 * (frame + 8)).max(64 << 10).next_power_of_two())
                .spin(spin(mode)),
        )
}

/// The server process's arguments (`ringport bench-rpc-peer`).
#[derive(clap::Args, Debug)]
pub struct PeerArgs {
    #[arg(long, value_enum)]
    contender: Carrier,
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long)]
    size: usize,
    #[arg(long)]
    path: String,
    #[arg(long)]
    cpu: Option<usize>,
}

/// The server: serves at `path`, says `ready`, answers every request with a message of its
/// size carrying the request's sequence number, until the stop tag or its input closes.
pub fn peer(args: &PeerArgs) -> Result<(), BoxError> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    if let Some(cpu) = args.cpu {
        ringport_measure::pin::pin_to(cpu)?;
    }
    let (mode, size) = (args.mode, args.size.max(8));
    let mut answer = message(size);
    match args.contender {
        Carrier::RingportRpc => {
            let mut server = rpc_options(mode, size).serve(&args.path)?;
            println!("ready");
            loop {
                let request = server.recv_timeout(PATIENCE)?;
                let seq = look_at(&request)?;
                if seq == u64::MAX {
                    return Ok(());
                }
                answer[..8].copy_from_slice(&seq.to_le_bytes());
                request.respond(&answer)?;
            }
        }
        Carrier::Channel => {
            let listener = channel_options(mode, size).bind(&args.path)?;
            println!("ready");
            let mut channel = listener.accept_timeout(PATIENCE)?;
            let mut buf = Vec::new();
            loop {
                channel.recv_timeout(&mut buf, PATIENCE)?;
                let seq = look_at(&buf)?;
                if seq == u64::MAX {
                    return Ok(());
                }
                answer[..8].copy_from_slice(&seq.to_le_bytes());
                channel.send(&answer)?;
            }
        }
        #[cfg(feature = "iceoryx2")]
        Carrier::Iceoryx2 => iox::serve(mode, size, &args.path, &mut answer),
    }
}

/// The client's end of a sample. (One per sample, never moved on the timed path: the sizes of
/// the variants do not matter.)
#[allow(clippy::large_enum_variant)]
enum Caller {
    Rpc(ringport::rpc::Client),
    Channel(Channel, Vec<u8>),
    #[cfg(feature = "iceoryx2")]
    Iox(iox::Caller),
}

impl Caller {
    /// One request and its response; returns the response's sequence number.
    fn call(&mut self, msg: &[u8]) -> Result<u64, BoxError> {
        match self {
            // In place, as iceoryx2's (`call` would copy the response out).
            Caller::Rpc(client) => {
                client.send(msg)?;
                look_at(&client.recv_timeout(PATIENCE)?)
            }
            Caller::Channel(channel, buf) => {
                channel.send(msg)?;
                channel.recv_timeout(buf, PATIENCE)?;
                look_at(buf)
            }
            #[cfg(feature = "iceoryx2")]
            Caller::Iox(caller) => caller.call(msg),
        }
    }

    /// Tells the server to stop.
    fn stop(&mut self, msg: &mut [u8]) -> Result<(), BoxError> {
        msg[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        match self {
            Caller::Rpc(client) => drop(client.send(msg)?),
            Caller::Channel(channel, _) => channel.send(msg)?,
            #[cfg(feature = "iceoryx2")]
            Caller::Iox(caller) => caller.send(msg)?,
        }
        Ok(())
    }
}

/// One case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Case {
    pub size: usize,
    pub mode: Mode,
    pub contender: Carrier,
}

/// The median round trip of one sample, in nanoseconds.
fn sample(case: Case, budget: Duration, cpu: Option<usize>) -> Result<f64, BoxError> {
    let path = format!("@{}", super::unique_name("rpc"));
    let mut command = Command::new(std::env::current_exe()?);
    let name = |value: &dyn Fn() -> Option<clap::builder::PossibleValue>| {
        value().map(|v| v.get_name().to_owned()).unwrap_or_default()
    };
    command
        .arg("bench-rpc-peer")
        .args([
            "--contender",
            &name(&|| clap::ValueEnum::to_possible_value(&case.contender)),
        ])
        .args([
            "--mode",
            &name(&|| clap::ValueEnum::to_possible_value(&case.mode)),
        ])
        .args(["--size", &case.size.to_string()])
        .args(["--path", &path]);
    if let Some(cpu) = cpu {
        command.args(["--cpu", &cpu.to_string()]);
    }
    let mut server = Sub::spawn(command)?;
    server.ready()?;
    let (mode, size) = (case.mode, case.size.max(8));
    let mut caller = match case.contender {
        Carrier::RingportRpc => Caller::Rpc(rpc_options(mode, size).connect(&path)?),
        Carrier::Channel => {
            Caller::Channel(channel_options(mode, size).connect(&path)?, Vec::new())
        }
        #[cfg(feature = "iceoryx2")]
        Carrier::Iceoryx2 => Caller::Iox(iox::Caller::open(mode, size, &path)?),
    };
    let mut msg = message(size);
    let mut times = Vec::new();
    let started = Instant::now();
    let mut seq = 0u64;
    while started.elapsed() < budget || times.len() < 10 {
        msg[..8].copy_from_slice(&seq.to_le_bytes());
        let t0 = Instant::now();
        let got = caller.call(&msg)?;
        let elapsed = t0.elapsed().as_nanos() as f64;
        if got != seq {
            return Err(format!("response {got} came when {seq} was due").into());
        }
        if started.elapsed() > budget / 10 {
            times.push(elapsed);
        }
        seq += 1;
    }
    caller.stop(&mut msg)?;
    drop(caller);
    server.finish()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// A case's median over the rounds, and its ratios to the others in the same rounds.
pub struct Row {
    pub case: Case,
    pub median: f64,
    pub vs: Vec<(Carrier, f64)>,
}

/// Runs every case `rounds` times, contenders interleaved (their order rotating each round).
pub fn run(
    sizes: &[usize],
    modes: &[Mode],
    rounds: usize,
    budget: Duration,
    cpu: Option<usize>,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<Row>, BoxError> {
    let contenders = Carrier::all();
    progress.set_length((sizes.len() * modes.len() * contenders.len() * rounds) as u64);
    let mut values: std::collections::BTreeMap<Case, Vec<f64>> = Default::default();
    for round in 0..rounds {
        for &size in sizes {
            for &mode in modes {
                let mut order = contenders.clone();
                let turn = round % order.len();
                order.rotate_left(turn);
                for contender in order {
                    let case = Case {
                        size,
                        mode,
                        contender,
                    };
                    let value = sample(case, budget, cpu)
                        .map_err(|e| format!("{} {}: {e}", contender.name(), show_size(size)))?;
                    values.entry(case).or_default().push(value);
                    progress.inc(1);
                }
            }
        }
    }
    Ok(values
        .iter()
        .map(|(&case, samples)| {
            let vs = contenders
                .iter()
                .filter(|&&other| other != case.contender)
                .map(|&other| {
                    let theirs = &values[&Case {
                        contender: other,
                        ..case
                    }];
                    let ratios = samples.iter().zip(theirs).map(|(a, b)| a / b).collect();
                    (other, median(ratios))
                })
                .collect();
            Row {
                case,
                median: median(samples.clone()),
                vs,
            }
        })
        .collect())
}

/// The table: the median round trip per case, with ratios.
pub fn table(rows: &[Row], header: &str) -> String {
    let mut out = format!("{header}\n\n");
    out += &format!(
        "{:>7} {:<6} {:<14} {:>11}  ratios (same rounds)\n",
        "size", "wait", "contender", "round trip"
    );
    for row in rows {
        let c = row.case;
        let ratios = ratios_text(row.vs.iter().map(|(other, r)| (other.name(), *r)));
        out += &format!(
            "{:>7} {:<6} {:<14} {:>11}  {}\n",
            show_size(c.size),
            c.mode.name(),
            c.contender.name(),
            show_nanos(row.median as u64),
            ratios
        );
    }
    out
}

/// The rows as JSON, with the machine's description.
pub fn json(rows: &[Row], machine: &str) -> String {
    let rows: Vec<String> = rows
        .iter()
        .map(|row| {
            let c = row.case;
            let vs = ratios_json(row.vs.iter().map(|(other, r)| (other.name(), *r)));
            format!(
                "{{\"size\": {}, \"mode\": {}, \"contender\": {}, \"round_trip_ns\": {:.1}, \"ratio_to\": {{{}}}}}",
                c.size,
                json_string(c.mode.name()),
                json_string(c.contender.name()),
                row.median,
                vs
            )
        })
        .collect();
    json_doc(machine, &rows)
}

#[cfg(feature = "iceoryx2")]
mod iox {
    //! iceoryx2's request-response: a client and a server on one service of byte slices; in the
    //! blocking form an event service each way.

    use std::time::Duration;

    use iceoryx2::port::client::Client;
    use iceoryx2::port::listener::Listener;
    use iceoryx2::port::notifier::Notifier;
    use iceoryx2::prelude::*;

    use super::super::links::{look_at, Patience, STALL};
    use super::super::plan::Mode;
    use super::super::BoxError;

    type Service = ipc::Service;
    const SLICE: Duration = Duration::from_millis(100);

    fn node() -> Result<Node<Service>, BoxError> {
        set_log_level(LogLevel::Error);
        Ok(NodeBuilder::new()
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<Service>()?)
    }

    type Factory =
        iceoryx2::service::port_factory::request_response::PortFactory<Service, [u8], (), [u8], ()>;

    fn service(node: &Node<Service>, path: &str) -> Result<Factory, BoxError> {
        let name = path.trim_start_matches('@').replace('/', "-");
        Ok(node
            .service_builder(&ServiceName::new(&name)?)
            .request_response::<[u8], [u8]>()
            .max_active_requests_per_client(2)
            .open_or_create()?)
    }

    fn events(
        node: &Node<Service>,
        path: &str,
        server: bool,
    ) -> Result<(Notifier<Service>, Listener<Service>), BoxError> {
        let name = path.trim_start_matches('@').replace('/', "-");
        let event = |direction: &str| -> Result<_, BoxError> {
            Ok(node
                .service_builder(&ServiceName::new(&format!("{name}-{direction}"))?)
                .event()
                .open_or_create()?)
        };
        let (out, back) = if server {
            ("responses", "requests")
        } else {
            ("requests", "responses")
        };
        Ok((
            event(out)?.notifier_builder().create()?,
            event(back)?.listener_builder().create()?,
        ))
    }

    fn wait(
        listener: Option<&Listener<Service>>,
        patience: &mut Patience,
        slices: &mut u32,
    ) -> Result<(), BoxError> {
        match listener {
            Some(listener) => {
                listener.timed_wait(|_| {}, SLICE)?;
                *slices += 1;
                if SLICE * *slices > STALL {
                    return Err("iceoryx2: no progress".into());
                }
                Ok(())
            }
            None => patience.spin(),
        }
    }

    pub fn serve(mode: Mode, size: usize, path: &str, answer: &mut [u8]) -> Result<(), BoxError> {
        let node = node()?;
        let server = service(&node, path)?
            .server_builder()
            .initial_max_slice_len(size)
            .create()?;
        let events = match mode {
            Mode::Block => Some(events(&node, path, true)?),
            Mode::Spin => None,
        };
        println!("ready");
        let mut patience = Patience::new();
        let mut slices = 0;
        loop {
            let Some(request) = server.receive()? else {
                wait(events.as_ref().map(|(_, l)| l), &mut patience, &mut slices)?;
                continue;
            };
            // The stall is counted from the last request.
            (patience, slices) = (Patience::new(), 0);
            let seq = look_at(request.payload())?;
            if seq == u64::MAX {
                return Ok(());
            }
            answer[..8].copy_from_slice(&seq.to_le_bytes());
            let response = request.loan_slice_uninit(answer.len())?;
            response.write_from_slice(answer).send()?;
            if let Some((notifier, _)) = &events {
                notifier.notify()?;
            }
        }
    }

    pub struct Caller {
        client: Client<Service, [u8], (), [u8], ()>,
        events: Option<(Notifier<Service>, Listener<Service>)>,
        _node: Node<Service>,
    }

    impl Caller {
        pub fn open(mode: Mode, size: usize, path: &str) -> Result<Caller, BoxError> {
            let node = node()?;
            let client = service(&node, path)?
                .client_builder()
                .initial_max_slice_len(size)
                .create()?;
            let events = match mode {
                Mode::Block => Some(events(&node, path, false)?),
                Mode::Spin => None,
            };
            Ok(Caller {
                client,
                events,
                _node: node,
            })
        }

        pub fn send(&mut self, msg: &[u8]) -> Result<(), BoxError> {
            let request = self.client.loan_slice_uninit(msg.len())?;
            drop(request.write_from_slice(msg).send()?);
            if let Some((notifier, _)) = &self.events {
                notifier.notify()?;
            }
            Ok(())
        }

        pub fn call(&mut self, msg: &[u8]) -> Result<u64, BoxError> {
            let request = self.client.loan_slice_uninit(msg.len())?;
            let pending = request.write_from_slice(msg).send()?;
            if let Some((notifier, _)) = &self.events {
                notifier.notify()?;
            }
            let mut patience = Patience::new();
            let mut slices = 0;
            loop {
                if let Some(response) = pending.receive()? {
                    return look_at(response.payload());
                }
                wait(
                    self.events.as_ref().map(|(_, l)| l),
                    &mut patience,
                    &mut slices,
                )?;
            }
        }
    }
}
