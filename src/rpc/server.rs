//! The server: a thread that sets clients up as they connect, and the request ring they share.

use std::collections::HashMap;
use std::io::IoSlice;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{RpcOptions, HELLO, REQUEST_HEADER, RESPONSE_HEADER};
use crate::error::{Error, Result, Role};
use crate::mpmc;
use crate::os::seqpacket;
use crate::os::{Host, Kernel, Watched, HOST};
use crate::spsc;
use crate::sync::{AtomicU32, Ordering};
use crate::wait::Limit;

/// How often the setting-up thread looks whether the server has gone.
const ACCEPT_SLICE: Duration = Duration::from_millis(50);

/// The serving end: requests from every client, one at a time, each answered (or not) through
/// its [`Request`].
///
/// Dropping the server stops it: its socket path is removed, and its clients' waits for
/// responses end with [`Error::PeerGone`].
pub struct Server {
    requests: mpmc::Consumer,
    clients: HashMap<u32, Entry>,
    joins: mpsc::Receiver<(u32, Entry)>,
    stop: Arc<AtomicU32>,
    acceptor: Option<JoinHandle<()>>,
    path: String,
}

/// A client as the server knows it.
struct Entry {
    responses: spsc::Producer,
    /// Set by the hang-up notice on its socket.
    gone: Arc<AtomicU32>,
    /// Its end of the connection: the hang-up notice watches it.
    socket: OwnedFd,
    /// None where the kernel cannot watch the socket: then it is asked at each request.
    watch: Option<<Host as Kernel>::Watch>,
}

impl Entry {
    fn gone(&self) -> bool {
        // Relaxed: a flag; what the client published before it went is in the rings.
        self.gone.load(Ordering::Relaxed) != 0
            || (self.watch.is_none() && seqpacket::peer_hung_up(self.socket.as_fd()))
    }
}

impl Server {
    pub(super) fn listen(options: &RpcOptions, path: &str) -> Result<Server> {
        let (ring, ring_fd) = options.requests().create_memfd()?;
        let listener = seqpacket::listen(path)?;
        let (tx, joins) = mpsc::channel();
        let stop = Arc::new(AtomicU32::new(0));
        let acceptor = {
            let (options, stop) = (options.clone(), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("ringport-rpc-accept".into())
                .spawn(move || accept_loop(&options, &listener, &ring_fd, &tx, &stop))
                .map_err(|e| crate::os::io_error("spawn the accepting thread", &e))?
        };
        Ok(Server {
            requests: ring.consumer(),
            clients: HashMap::new(),
            joins,
            stop,
            acceptor: Some(acceptor),
            path: path.to_owned(),
        })
    }

    /// The next request, or [`Error::Empty`] at once.
    ///
    /// # Errors
    /// [`Error::Empty`]; [`Error::Corrupted`] if the request ring breaks its rules.
    pub fn try_recv(&mut self) -> Result<Request<'_>> {
        self.next(None)
    }

    /// The next request, waiting as long as it takes.
    ///
    /// # Errors
    /// [`Error::Corrupted`].
    pub fn recv(&mut self) -> Result<Request<'_>> {
        self.next(Some(Limit::Forever))
    }

    /// The next request, waiting up to `timeout` (each request skipped, from a client that
    /// has gone, starts the wait again).
    ///
    /// # Errors
    /// [`Error::Timeout`]; [`Error::Corrupted`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Request<'_>> {
        self.next(Some(Limit::After(timeout)))
    }

    /// Answers request `id` of client `client` later than its [`Request`] (which
    /// [`Request::defer`] gives up): responses may go out in any order.
    ///
    /// # Errors
    /// As [`Request::respond`]; [`Error::PeerGone`] for a client that has gone or never was.
    pub fn respond(&mut self, client: u32, id: u64, bytes: &[u8]) -> Result<()> {
        admit(&self.joins, &mut self.clients);
        match self.clients.get_mut(&client) {
            Some(entry) => respond(entry, id, bytes),
            None => Err(Error::PeerGone(Role::Consumer)),
        }
    }

    /// Clients connected now (those whose hang-up has not been seen).
    pub fn clients(&mut self) -> usize {
        admit(&self.joins, &mut self.clients);
        self.clients.retain(|_, entry| !entry.gone());
        self.clients.len()
    }

    /// The next request from a client still there: the requests of one that has gone are
    /// cancelled (released unanswered), and so is the client.
    fn next(&mut self, wait: Option<Limit>) -> Result<Request<'_>> {
        let Server {
            requests,
            clients,
            joins,
            ..
        } = self;
        let grant = requests.recv_kept(wait, |request| {
            // A request's client was set up before it sent: look for newcomers first.
            admit(joins, clients);
            let Some((client, _)) = header(request) else {
                // Too short for its header: not a ringport client's.
                return false;
            };
            let live = clients.get(&client).is_some_and(|entry| !entry.gone());
            if !live {
                clients.retain(|_, entry| !entry.gone());
            }
            live
        })?;
        let (client, id) = header(&grant).expect("kept above");
        Ok(Request {
            grant,
            entry: clients.get_mut(&client).expect("kept above"),
            client,
            id,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Relaxed: the thread looks at it every slice; the join orders the rest.
        self.stop.store(1, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        if !self.path.starts_with('@') {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("path", &self.path)
            .field("clients", &self.clients.len())
            .finish_non_exhaustive()
    }
}

/// The client's number and the request's id at the head of a request.
fn header(request: &[u8]) -> Option<(u32, u64)> {
    let client = u32::from_le_bytes(request.get(..4)?.try_into().ok()?);
    let id = u64::from_le_bytes(request.get(8..REQUEST_HEADER)?.try_into().ok()?);
    Some((client, id))
}

/// Takes in the clients set up since the last look.
fn admit(joins: &mpsc::Receiver<(u32, Entry)>, clients: &mut HashMap<u32, Entry>) {
    while let Ok((id, entry)) = joins.try_recv() {
        clients.insert(id, entry);
    }
}

/// The setting-up thread: accepts connections until the server goes, and sets each client up.
fn accept_loop(
    options: &RpcOptions,
    listener: &OwnedFd,
    ring_fd: &OwnedFd,
    joins: &mpsc::Sender<(u32, Entry)>,
    stop: &AtomicU32,
) {
    let mut next = 0u32;
    // Relaxed: see `Server::drop`.
    while stop.load(Ordering::Relaxed) == 0 {
        let socket = match seqpacket::accept(listener.as_fd(), Some(Instant::now() + ACCEPT_SLICE))
        {
            Ok(socket) => socket,
            Err(Error::Timeout) => continue,
            // Out of descriptors, or the like: wait a slice, and go on.
            Err(_) => {
                std::thread::sleep(ACCEPT_SLICE);
                continue;
            }
        };
        // A client that fails its set-up is dropped; the others are not affected.
        if set_up(options, socket, ring_fd, next, joins).is_ok() {
            next = next.wrapping_add(1);
        }
    }
}

/// Sets a connected client up: checks that it runs as our user, makes its response ring, and
/// sends it the request ring and its own, with its number and the sizes. The server has the
/// client before the client has its last packet, and so before its first request.
fn set_up(
    options: &RpcOptions,
    socket: OwnedFd,
    ring_fd: &OwnedFd,
    id: u32,
    joins: &mpsc::Sender<(u32, Entry)>,
) -> Result<()> {
    let peer = seqpacket::peer_credentials(socket.as_fd())?;
    let me = nix::unistd::geteuid().as_raw();
    if peer.uid != me && me != 0 {
        return Err(Error::PeerRefused {
            pid: peer.pid,
            uid: peer.uid,
        });
    }
    let (responses, response_fd) = options.responses().create_producer_memfd()?;
    let max_response = (responses.max_frame() - RESPONSE_HEADER) as u32;
    let hello = [
        HELLO.to_le_bytes(),
        id.to_le_bytes(),
        (options.max_request as u32).to_le_bytes(),
        max_response.to_le_bytes(),
    ]
    .concat();
    let deadline = Some(Instant::now() + Duration::from_secs(1));
    seqpacket::send(
        socket.as_fd(),
        &[IoSlice::new(&hello)],
        Some(ring_fd.as_fd()),
        deadline,
    )?;
    let gone = Arc::new(AtomicU32::new(0));
    let notice = {
        let gone = Arc::clone(&gone);
        // Relaxed: a flag; what the client sent before it went is in the rings.
        Arc::new(move || gone.store(1, Ordering::Relaxed))
    };
    let watch = match HOST.watch_hangup(socket.as_fd(), notice) {
        Watched::Watching(watch) => Some(watch),
        Watched::Already => {
            // Relaxed: as the notice's store.
            gone.store(1, Ordering::Relaxed);
            None
        }
        Watched::Unwatchable => None,
    };
    let last = socket
        .try_clone()
        .map_err(|e| crate::os::io_error("dup a client's socket", &e))?;
    let entry = Entry {
        responses,
        gone,
        socket,
        watch,
    };
    joins
        .send((id, entry))
        .map_err(|_| Error::PeerGone(Role::Consumer))?;
    seqpacket::send(
        last.as_fd(),
        &[IoSlice::new(&HELLO.to_le_bytes())],
        Some(response_fd.as_fd()),
        deadline,
    )
}

/// A request in hand, read in place. Derefs to its payload.
///
/// [`respond`](Self::respond) answers it; dropping it unanswered leaves the client waiting
/// (until its own timeout).
#[must_use = "a request is answered with respond, or dropped unanswered"]
pub struct Request<'a> {
    grant: mpmc::ReadGrant<'a>,
    entry: &'a mut Entry,
    client: u32,
    id: u64,
}

impl Request<'_> {
    /// The client's number on this server.
    #[must_use]
    pub fn client(&self) -> u32 {
        self.client
    }

    /// The id the client gave the request.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Answers the request with a copy of `bytes`, waiting while the client's response ring is
    /// full (the client must read its responses).
    ///
    /// # Errors
    /// [`Error::InvalidLength`] if `bytes` is longer than the largest response;
    /// [`Error::PeerGone`] if the client has gone (its request is then cancelled).
    pub fn respond(self, bytes: &[u8]) -> Result<()> {
        respond(self.entry, self.id, bytes)
    }

    /// Lets the request go unanswered for now, to be answered with [`Server::respond`] and
    /// the client and id returned (its payload must have been copied out first).
    #[must_use]
    pub fn defer(self) -> (u32, u64) {
        (self.client, self.id)
    }
}

/// Sends a copy of `bytes` to `entry` as the response to request `id`.
fn respond(entry: &mut Entry, id: u64, bytes: &[u8]) -> Result<()> {
    if entry.gone() {
        return Err(Error::PeerGone(Role::Consumer));
    }
    let mut grant = entry
        .responses
        .reserve(RESPONSE_HEADER + bytes.len())
        .map_err(|e| match e {
            Error::InvalidLength { len, max } => Error::InvalidLength {
                len: len - RESPONSE_HEADER,
                max: max - RESPONSE_HEADER,
            },
            e => e,
        })?;
    grant[..RESPONSE_HEADER].copy_from_slice(&id.to_le_bytes());
    grant[RESPONSE_HEADER..].copy_from_slice(bytes);
    grant.commit();
    Ok(())
}

impl std::ops::Deref for Request<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.grant[REQUEST_HEADER..]
    }
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("client", &self.client)
            .field("id", &self.id)
            .field("len", &self.len())
            .finish()
    }
}
