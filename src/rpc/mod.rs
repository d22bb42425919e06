//! Request-response: a server and its clients, in any processes, over rings.
//!
//! The server listens on a Unix socket; a client connects, and the socket serves only to set it
//! up and to tell the server when the client's process is gone. Requests from every client go
//! into one multi-producer ring of fixed-size slots (the server's one place to wait), each
//! with its client's number and a correlation id the client chose; each response goes into an
//! SPSC ring of the client's own, with the id of the request it answers. A client may have many
//! requests outstanding, and responses may come in any order.
//!
//! A client that dies (or hangs up) cancels its pending requests: the server skips them, and
//! a response to one fails with [`Error::PeerGone`]. A server that dies ends its clients' waits
//! with `PeerGone`. A client's `_timeout` calls give up on a request, whose late response is
//! then dropped.
//!
//! ```no_run
//! use std::time::Duration;
//! use ringport::rpc::RpcOptions;
//!
//! # fn main() -> Result<(), ringport::Error> {
//! // The server's process.
//! let mut server = RpcOptions::new().serve("/tmp/my-service.sock")?;
//! std::thread::spawn(move || -> Result<(), ringport::Error> {
//!     loop {
//!         let request = server.recv()?;
//!         let answer = request.len().to_le_bytes();
//!         request.respond(&answer)?;
//!     }
//! });
//!
//! // A client's process.
//! let mut client = RpcOptions::new().connect("/tmp/my-service.sock")?;
//! let answer = client.call(b"how long is this?", Duration::from_secs(1))?;
//! assert_eq!(answer, 17usize.to_le_bytes());
//! # Ok(()) }
//! ```

mod client;
mod server;

use std::time::Duration;

pub use client::{Client, RequestId, Response};
pub use server::{Request, Server};

use crate::error::{Error, Result};
use crate::mpmc::MpmcOptions;
use crate::spsc::SpscOptions;

/// Bytes before a request's payload in its slot: the client's number (u32, and 4 spare), then
/// the request's id (u64).
const REQUEST_HEADER: usize = 16;
/// Bytes before a response's payload in its frame: the id of the request it answers.
const RESPONSE_HEADER: usize = 8;
/// The first word of the set-up packet: "RPRC" and a version.
const HELLO: u32 = u32::from_le_bytes(*b"RPR1");

/// How to serve or reach a request-response service, and how its ends wait.
#[derive(Debug, Clone)]
pub struct RpcOptions {
    max_request: usize,
    slots: usize,
    response_capacity: usize,
    spin: Duration,
    liveness_interval: Duration,
}

impl Default for RpcOptions {
    fn default() -> Self {
        RpcOptions {
            max_request: 4096 - REQUEST_HEADER,
            slots: 256,
            response_capacity: 1 << 20,
            spin: Duration::from_micros(20),
            liveness_interval: Duration::from_millis(20),
        }
    }
}

impl RpcOptions {
    /// The defaults: requests up to 4080 bytes in a ring of 256 of them shared by every
    /// client, 1 MiB of responses per client (each up to half of it, less 24 bytes), spin 20 us
    /// before sleeping.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Largest request payload (the server's setting; a client learns it when it connects).
    #[must_use]
    pub fn max_request(mut self, bytes: usize) -> Self {
        self.max_request = bytes;
        self
    }

    /// Request slots, shared by all clients: a power of two (the server's setting).
    #[must_use]
    pub fn request_slots(mut self, slots: usize) -> Self {
        self.slots = slots;
        self
    }

    /// Bytes of ring for each client's responses: a power of two; the largest response is half
    /// of it, less 24 bytes (the server's setting).
    #[must_use]
    pub fn response_capacity(mut self, bytes: usize) -> Self {
        self.response_capacity = bytes;
        self
    }

    /// How long a blocking call spins before it sleeps.
    #[must_use]
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// How often a sleeper checks that the process it waits on lives, where the kernel cannot
    /// tell it of the death.
    #[must_use]
    pub fn liveness_interval(mut self, interval: Duration) -> Self {
        self.liveness_interval = interval;
        self
    }

    fn requests(&self) -> MpmcOptions {
        MpmcOptions::new()
            .slots(self.slots)
            .slot_size(self.max_request + REQUEST_HEADER)
            .spin(self.spin)
            .liveness_interval(self.liveness_interval)
    }

    fn responses(&self) -> SpscOptions {
        SpscOptions::new()
            .capacity(self.response_capacity)
            .spin(self.spin)
            .liveness_interval(self.liveness_interval)
    }

    /// Listens at `path` (a socket file, or `@name` in the abstract namespace) and serves
    /// requests there.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a geometry out of bounds; [`Error::AlreadyExists`] if the
    /// path is taken; [`Error::InvalidName`]; [`Error::Os`].
    pub fn serve(&self, path: &str) -> Result<Server> {
        if self.max_request == 0 || self.max_request > u32::MAX as usize - REQUEST_HEADER {
            return Err(Error::InvalidConfig(
                "max request must be from 1 byte to 4 GiB",
            ));
        }
        Server::listen(self, path)
    }

    /// Connects to the server at `path`.
    ///
    /// # Errors
    /// [`Error::NotFound`] if nobody listens there; [`Error::Protocol`] if what answers is not
    /// a ringport server; [`Error::Timeout`] if it does not answer within a second; the
    /// errors of opening rings ([`Error::Corrupted`], [`Error::Unsealed`]...).
    pub fn connect(&self, path: &str) -> Result<Client> {
        Client::connect(self, path)
    }
}
