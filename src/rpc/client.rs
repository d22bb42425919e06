//! A client: its requests into the server's ring, its responses from a ring of its own.

use std::collections::{HashSet, VecDeque};
use std::io::IoSliceMut;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use super::{RpcOptions, HELLO, REQUEST_HEADER, RESPONSE_HEADER};
use crate::error::{Error, Result, Role};
use crate::mpmc;
use crate::os::seqpacket::{self, Packet};
use crate::role::PeerStatus;
use crate::spsc;

/// A request's id, as its response carries it back.
pub type RequestId = u64;

/// How long a client waits for the server's set-up.
const SET_UP: Duration = Duration::from_secs(1);

/// One client of a server: requests go out with ids, responses come back with them, in any
/// order. Several may be outstanding; [`call`](Self::call) is one request and its response.
///
/// Dropping the client hangs up: the server cancels the requests it has not answered.
pub struct Client {
    requests: mpmc::Producer,
    responses: spsc::Consumer,
    /// Held for the server's hang-up notice.
    _socket: OwnedFd,
    number: u32,
    max_request: usize,
    max_response: usize,
    next_id: u64,
    pending: HashSet<RequestId>,
    /// Responses that came while `call` waited for another.
    stash: VecDeque<(RequestId, Vec<u8>)>,
    liveness_interval: Duration,
}

impl Client {
    pub(super) fn connect(options: &RpcOptions, path: &str) -> Result<Client> {
        let socket = seqpacket::connect(path)?;
        let deadline = Some(Instant::now() + SET_UP);
        let mut hello = [0u8; 16];
        let ring_fd = receive(&socket, &mut hello, deadline)?;
        let mut tag = [0u8; 4];
        let response_fd = receive(&socket, &mut tag, deadline)?;
        let word = |i: usize| u32::from_le_bytes(hello[4 * i..4 * i + 4].try_into().expect("4"));
        if word(0) != HELLO || tag != HELLO.to_le_bytes() {
            return Err(Error::Protocol("not a ringport request-response server"));
        }
        let requests = mpmc::MpmcOptions::new()
            .spin(options.spin)
            .liveness_interval(options.liveness_interval)
            .open_fd(ring_fd)?;
        let responses = options.responses().open_consumer_fd(response_fd)?;
        let max_request = (word(2) as usize).min(requests.slot_size() - REQUEST_HEADER);
        Ok(Client {
            requests: requests.producer(),
            max_response: (word(3) as usize).min(responses.max_frame() - RESPONSE_HEADER),
            responses,
            _socket: socket,
            number: word(1),
            max_request,
            next_id: 0,
            pending: HashSet::new(),
            stash: VecDeque::new(),
            liveness_interval: options.liveness_interval,
        })
    }

    /// Sends a request with a copy of `payload`, waiting while the server's ring is full;
    /// returns its id. Its response comes from [`recv`](Self::recv).
    ///
    /// # Errors
    /// [`Error::InvalidLength`] if the payload is longer than the server takes;
    /// [`Error::PeerGone`] if the server has gone.
    pub fn send(&mut self, payload: &[u8]) -> Result<RequestId> {
        self.send_until(payload, None)
    }

    /// As [`send`](Self::send), giving up after `timeout`.
    ///
    /// # Errors
    /// As [`send`](Self::send), and [`Error::Timeout`].
    pub fn send_timeout(&mut self, payload: &[u8], timeout: Duration) -> Result<RequestId> {
        self.send_until(payload, Some(Instant::now() + timeout))
    }

    fn send_until(&mut self, payload: &[u8], deadline: Option<Instant>) -> Result<RequestId> {
        if payload.len() > self.max_request {
            return Err(Error::InvalidLength {
                len: payload.len(),
                max: self.max_request,
            });
        }
        let id = self.next_id;
        let len = REQUEST_HEADER + payload.len();
        // The request ring has no peer to hear of: wait a liveness interval at a time, and ask
        // our response ring whether the server is still there.
        let mut grant = loop {
            let slice = match deadline {
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .min(self.liveness_interval),
                None => self.liveness_interval,
            };
            match self.requests.reserve_timeout(len, slice) {
                Ok(grant) => break grant,
                Err(Error::Timeout) => {
                    if self.responses.peer_status() == PeerStatus::Gone {
                        return Err(Error::PeerGone(Role::Producer));
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(Error::Timeout);
                    }
                }
                Err(e) => return Err(e),
            }
        };
        grant[..4].copy_from_slice(&self.number.to_le_bytes());
        grant[4..8].fill(0);
        grant[8..REQUEST_HEADER].copy_from_slice(&id.to_le_bytes());
        grant[REQUEST_HEADER..].copy_from_slice(payload);
        grant.commit();
        self.next_id += 1;
        self.pending.insert(id);
        Ok(id)
    }

    /// The next response to a pending request, waiting as long as it takes.
    ///
    /// # Errors
    /// [`Error::PeerGone`] once the server has gone and every response it sent has been read;
    /// [`Error::Corrupted`].
    pub fn recv(&mut self) -> Result<Response<'_>> {
        self.recv_until(None)
    }

    /// As [`recv`](Self::recv), giving up after `timeout` (the requests stay pending).
    ///
    /// # Errors
    /// As [`recv`](Self::recv), and [`Error::Timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Response<'_>> {
        self.recv_until(Some(Instant::now() + timeout))
    }

    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<Response<'_>> {
        if let Some((id, bytes)) = self.stash.pop_front() {
            return Ok(Response {
                id,
                body: Body::Copied(bytes),
            });
        }
        let pending = &mut self.pending;
        let frame = self.responses.recv_kept(deadline, |frame| {
            // A response to a request given up on is dropped.
            response_id(frame).is_some_and(|id| pending.remove(&id))
        })?;
        let id = response_id(&frame).expect("kept above");
        Ok(Response {
            id,
            body: Body::InPlace(frame),
        })
    }

    /// Sends a request and waits up to `timeout` for its response, which it returns copied.
    /// Responses to other pending requests that come meanwhile are kept for
    /// [`recv`](Self::recv). On a timeout the request is given up on: its response, if it
    /// comes, is dropped.
    ///
    /// # Errors
    /// As [`send`](Self::send) and [`recv`](Self::recv), and [`Error::Timeout`].
    pub fn call(&mut self, payload: &[u8], timeout: Duration) -> Result<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let id = self.send_until(payload, Some(deadline))?;
        // Its response can only be in the ring: the stash holds other requests' responses.
        loop {
            let pending = &mut self.pending;
            let frame = match self.responses.recv_kept(Some(deadline), |frame| {
                response_id(frame).is_some_and(|id| pending.remove(&id))
            }) {
                Ok(frame) => frame,
                Err(e) => {
                    self.pending.remove(&id);
                    return Err(e);
                }
            };
            let got = response_id(&frame).expect("kept above");
            let bytes = frame[RESPONSE_HEADER..].to_vec();
            drop(frame);
            if got == id {
                return Ok(bytes);
            }
            self.stash.push_back((got, bytes));
        }
    }

    /// Gives up on request `id`: its response, if it comes, is dropped. Returns whether it was
    /// pending.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        self.pending.remove(&id)
    }

    /// Requests sent and not yet answered (nor given up on).
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// This client's number on its server ([`Request::client`](super::Request::client)).
    #[must_use]
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The largest request payload the server takes.
    #[must_use]
    pub fn max_request(&self) -> usize {
        self.max_request
    }

    /// The largest response payload the server can send.
    #[must_use]
    pub fn max_response(&self) -> usize {
        self.max_response
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("number", &self.number)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

fn response_id(frame: &[u8]) -> Option<RequestId> {
    Some(u64::from_le_bytes(
        frame.get(..RESPONSE_HEADER)?.try_into().ok()?,
    ))
}

/// Receives one set-up packet into `buf`, with the descriptor that must come with it.
fn receive(socket: &OwnedFd, buf: &mut [u8], deadline: Option<Instant>) -> Result<OwnedFd> {
    match seqpacket::recv(socket.as_fd(), &mut [IoSliceMut::new(buf)], deadline)? {
        Packet::Data {
            len,
            passed: Some(fd),
        } if len == buf.len() => Ok(fd),
        Packet::Closed => Err(Error::PeerGone(Role::Producer)),
        Packet::Data { .. } => Err(Error::Protocol("set-up packet of the wrong shape")),
    }
}

/// A response, read in place (or copied, if it came while [`Client::call`] waited for
/// another). Derefs to its payload.
pub struct Response<'a> {
    id: RequestId,
    body: Body<'a>,
}

enum Body<'a> {
    InPlace(spsc::ReadGrant<'a>),
    Copied(Vec<u8>),
}

impl Response<'_> {
    /// The id of the request it answers.
    #[must_use]
    pub fn id(&self) -> RequestId {
        self.id
    }
}

impl std::ops::Deref for Response<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.body {
            Body::InPlace(frame) => &frame[RESPONSE_HEADER..],
            Body::Copied(bytes) => bytes,
        }
    }
}

impl std::fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("id", &self.id)
            .field("len", &self.len())
            .finish()
    }
}
