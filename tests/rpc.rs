//! Request-response: calls, several requests outstanding, responses routed to their clients
//! and in any order, timeouts, and a client or a server that dies.

mod common;

use std::time::{Duration, Instant};

use common::{child_arg, kill9, spawn_child_ready};
use ringport::rpc::{RpcOptions, Server};
use ringport::Error;

/// A socket path in the abstract namespace, unique to this test run (nothing to remove).
fn path(tag: &str) -> String {
    format!("@ringport-test-rpc-{tag}-{}", std::process::id())
}

fn options() -> RpcOptions {
    RpcOptions::new()
        .max_request(256)
        .request_slots(16)
        .response_capacity(1 << 14)
        .liveness_interval(Duration::from_millis(20))
}

/// Answers every request with its payload reversed, and its client's number after it, until
/// `count` requests.
fn echo(mut server: Server, count: usize) -> Server {
    for _ in 0..count {
        let request = server.recv_timeout(Duration::from_secs(10)).unwrap();
        let mut answer: Vec<u8> = request.iter().rev().copied().collect();
        answer.push(request.client() as u8);
        request.respond(&answer).unwrap();
    }
    server
}

#[test]
fn a_call_gets_its_own_response() {
    let at = path("call");
    let server = options().serve(&at).unwrap();
    let handle = std::thread::spawn(move || echo(server, 1000));
    let mut client = options().connect(&at).unwrap();
    assert_eq!(client.max_request(), 256);
    for i in 0..1000u32 {
        let payload = i.to_le_bytes();
        let answer = client.call(&payload, Duration::from_secs(10)).unwrap();
        let mut expected: Vec<u8> = payload.iter().rev().copied().collect();
        expected.push(client.number() as u8);
        assert_eq!(answer, expected);
    }
    assert_eq!(client.pending(), 0);
    handle.join().unwrap();
}

#[test]
fn many_requests_outstanding_from_many_clients_each_get_theirs() {
    let at = path("many");
    let server = options().serve(&at).unwrap();
    let mut clients: Vec<_> = (0..3).map(|_| options().connect(&at).unwrap()).collect();
    let handle = std::thread::spawn(move || echo(server, 3 * 10));
    let mut sent = Vec::new();
    for round in 0..10u8 {
        for (c, client) in clients.iter_mut().enumerate() {
            let id = client.send(&[round, c as u8]).unwrap();
            sent.push((c, id, round));
        }
    }
    for (c, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.pending(), 10);
        let number = client.number() as u8;
        for round in 0..10u8 {
            let response = client.recv_timeout(Duration::from_secs(10)).unwrap();
            let id = sent
                .iter()
                .find(|&&(cc, _, r)| cc == c && r == round)
                .unwrap()
                .1;
            assert_eq!(response.id(), id);
            assert_eq!(&*response, &[c as u8, round, number]);
        }
    }
    handle.join().unwrap();
}

#[test]
fn responses_may_go_out_in_any_order() {
    let at = path("order");
    let mut server = options().serve(&at).unwrap();
    let mut client = options().connect(&at).unwrap();
    let ids: Vec<u64> = (0..4u8).map(|i| client.send(&[i]).unwrap()).collect();
    let mut held = Vec::new();
    for _ in 0..4 {
        let request = server.recv_timeout(Duration::from_secs(10)).unwrap();
        let byte = request[0];
        held.push((request.defer(), byte));
    }
    for ((who, id), byte) in held.into_iter().rev() {
        server.respond(who, id, &[byte * 10]).unwrap();
    }
    for expected in (0..4usize).rev() {
        let response = client.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(response.id(), ids[expected]);
        assert_eq!(&*response, &[expected as u8 * 10]);
    }
}

#[test]
fn a_call_that_times_out_drops_its_late_response() {
    let at = path("timeout");
    let mut server = options().serve(&at).unwrap();
    let mut client = options().connect(&at).unwrap();
    assert!(matches!(
        client.call(b"slow", Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    assert_eq!(client.pending(), 0);
    let late = server.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(&*late, b"slow");
    late.respond(b"too late").unwrap();
    let handle = std::thread::spawn(move || echo(server, 1));
    assert_eq!(
        client.call(b"ab", Duration::from_secs(10)).unwrap()[..2],
        *b"ba"
    );
    handle.join().unwrap();
}

#[test]
fn lengths_are_checked() {
    let at = path("lengths");
    let mut server = options().serve(&at).unwrap();
    let mut client = options().connect(&at).unwrap();
    assert!(matches!(
        client.send(&[0; 257]),
        Err(Error::InvalidLength { len: 257, max: 256 })
    ));
    client.send(&[]).unwrap();
    let request = server.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(request.is_empty());
    let too_long = vec![0; client.max_response() + 1];
    assert!(matches!(
        request.respond(&too_long),
        Err(Error::InvalidLength { .. })
    ));
    assert!(matches!(
        RpcOptions::new().connect(&path("nobody")),
        Err(Error::NotFound)
    ));
}

#[test]
fn a_dead_server_ends_its_clients_waits() {
    let at = path("server-gone");
    let server = options().serve(&at).unwrap();
    let mut client = options().connect(&at).unwrap();
    client.send(b"never answered").unwrap();
    drop(server);
    let started = Instant::now();
    assert!(matches!(client.recv(), Err(Error::PeerGone(_))));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
#[ignore = "child process of a_killed_client_cancels_its_requests"]
fn child_rpc_client() {
    let Some(at) = child_arg() else { return };
    let mut client = options().connect(&at).unwrap();
    for i in 0..3u8 {
        client.send(&[i]).unwrap();
    }
    println!("ready");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_killed_client_cancels_its_requests() {
    let at = path("client-killed");
    let mut server = options().serve(&at).unwrap();
    let mut child = spawn_child_ready("child_rpc_client", &at);
    let mut survivor = options().connect(&at).unwrap();
    // A client is the server's before its set-up ends.
    assert_eq!(server.clients(), 2);
    kill9(&mut child);
    survivor.send(b"mine").unwrap();
    // The dead client's three requests came first; they are skipped once its hang-up is heard.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let request = server.recv_timeout(Duration::from_secs(5)).unwrap();
        if &*request == b"mine" {
            request.respond(b"yours").unwrap();
            break;
        }
        // Served before the hang-up was heard: its response goes nowhere.
        let _ = request.respond(b"to the dead");
        assert!(
            Instant::now() < deadline,
            "the dead client's requests kept coming"
        );
    }
    assert_eq!(
        &*survivor.recv_timeout(Duration::from_secs(5)).unwrap(),
        b"yours"
    );
    // The dead client is forgotten once its hang-up notice lands, which the watcher thread
    // delivers on its own time: the requests above may all have been served before it did.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.clients() != 1 {
        assert!(
            Instant::now() < deadline,
            "the dead client was never forgotten"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(matches!(server.try_recv(), Err(Error::Empty)));
}
