//! Request-response: a server answers two clients, each with several requests outstanding;
//! each response finds its way to the client and request it answers. Threads here; the server
//! and its clients are usually processes of their own (the socket path is how they meet).
//!
//! `cargo run --release --example rpc`

use std::time::Duration;

use ringport::rpc::RpcOptions;

fn main() -> Result<(), ringport::Error> {
    let path = format!("@ringport-example-rpc-{}", std::process::id());
    let mut server = RpcOptions::new().serve(&path)?;
    let mut clients = [
        RpcOptions::new().connect(&path)?,
        RpcOptions::new().connect(&path)?,
    ];
    let serving = std::thread::spawn(move || -> Result<(), ringport::Error> {
        // Squares: a request is a u64, its response the square.
        for _ in 0..20 {
            let request = server.recv_timeout(Duration::from_secs(10))?;
            let n = u64::from_le_bytes(request[..8].try_into().expect("8 bytes"));
            request.respond(&(n * n).to_le_bytes())?;
        }
        Ok(())
    });
    // Pipelined: five requests out before the first response is read.
    for (c, client) in clients.iter_mut().enumerate() {
        for n in 0..5u64 {
            client.send(&(n + 10 * c as u64).to_le_bytes())?;
        }
    }
    for (c, client) in clients.iter_mut().enumerate() {
        for n in 0..5u64 {
            let response = client.recv_timeout(Duration::from_secs(10))?;
            let square = u64::from_le_bytes(response[..8].try_into().expect("8 bytes"));
            let asked = n + 10 * c as u64;
            assert_eq!((response.id(), square), (n, asked * asked));
        }
    }
    // And one at a time.
    for client in &mut clients {
        for n in 0..5u64 {
            let answer = client.call(&n.to_le_bytes(), Duration::from_secs(10))?;
            assert_eq!(answer, (n * n).to_le_bytes());
        }
    }
    serving.join().expect("server thread")?;
    println!("20 requests from 2 clients, each answered to its own");
    Ok(())
}

#[test]
fn runs() {
    main().unwrap();
}
