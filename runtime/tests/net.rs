//! Sockets: echo round trips with many connections, UDP, Unix sockets, errors.

use std::net::SocketAddr;
use std::time::Duration;

use faultless_runtime::net::{
    Shutdown, TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream,
};
use faultless_runtime::{spawn, time, Runtime};
use futures::io::{AsyncReadExt, AsyncWriteExt};

async fn echo_server(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        spawn(async move {
            let mut buf = Vec::with_capacity(4096);
            loop {
                let (n, b) = stream.recv(buf).await;
                match n {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let (res, b) = stream.send_all(b).await;
                if res.is_err() {
                    return;
                }
                buf = b;
            }
        })
        .detach();
    }
}

#[test]
fn echo_round_trip_with_hundreds_of_connections() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(echo_server(listener));
        let mut clients = Vec::new();
        for c in 0..300u32 {
            clients.push(spawn(async move {
                let stream = TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                assert!(stream.nodelay().unwrap());
                assert_eq!(stream.peer_addr().unwrap(), addr);
                for round in 0..5u32 {
                    let msg = format!(
                        "client {c} round {round} {}",
                        "x".repeat((c * 37 % 3000) as usize)
                    );
                    let (res, _) = stream.send_all(msg.clone().into_bytes()).await;
                    res.unwrap();
                    let mut got = Vec::new();
                    while got.len() < msg.len() {
                        let (n, buf) = stream.recv(Vec::with_capacity(8192)).await;
                        let n = n.unwrap();
                        assert!(n > 0, "server closed early");
                        got.extend_from_slice(&buf[..n]);
                    }
                    assert_eq!(got, msg.as_bytes());
                }
                stream.shutdown(Shutdown::Write).await.unwrap();
                let (n, _) = stream.recv(Vec::with_capacity(16)).await;
                assert_eq!(n.unwrap(), 0, "server closes after our shutdown");
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
        server.abort();
    });
}

#[test]
fn async_read_write_traits_work_with_futures_combinators() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(async move {
            let (mut s, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, s.peer_addr().unwrap());
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            s.write_all(&all).await.unwrap();
            s.close().await.unwrap();
            all.len()
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        c.write_all(&payload).await.unwrap();
        c.close().await.unwrap(); // flush + shutdown(write)
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back.len(), payload.len());
        assert!(back == payload);
        assert_eq!(server.await.unwrap(), payload.len());
    });
}

#[test]
fn udp_send_to_recv_from_and_connected() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a_addr = a.local_addr().unwrap();
        let b_addr = b.local_addr().unwrap();
        let (n, _) = a.send_to(b"hello".to_vec(), b_addr).await;
        assert_eq!(n.unwrap(), 5);
        let (res, buf) = b.recv_from(Vec::with_capacity(64)).await;
        let (n, from) = res.unwrap();
        assert_eq!((&buf[..n], from), (&b"hello"[..], a_addr));
        b.connect(a_addr).unwrap();
        assert_eq!(b.peer_addr().unwrap(), a_addr);
        let (n, _) = b.send(&b"back"[..]).await;
        assert_eq!(n.unwrap(), 4);
        let (n, buf) = a.recv(Vec::with_capacity(64)).await;
        assert_eq!(&buf[..n.unwrap()], b"back");
    });
}

#[test]
fn unix_listener_and_stream() {
    let rt = Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!("faultless-unix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    rt.block_on(async {
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(
            listener.local_path().unwrap().as_deref(),
            Some(path.as_path())
        );
        let p = path.clone();
        let client = spawn(async move {
            let mut s = UnixStream::connect(&p).await.unwrap();
            s.write_all(b"over unix").await.unwrap();
            s.flush().await.unwrap();
            let mut reply = [0u8; 2];
            s.read_exact(&mut reply).await.unwrap();
            reply
        });
        let server = listener.accept().await.unwrap();
        let (n, buf) = server.recv(Vec::with_capacity(64)).await;
        assert_eq!(&buf[..n.unwrap()], b"over unix");
        let (res, _) = server.send_all("ok").await;
        res.unwrap();
        assert_eq!(&client.await.unwrap(), b"ok");
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn connection_refused_surfaces_as_error() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        // Bind then drop to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = TcpStream::connect(("127.0.0.1", port)).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        let err = UnixStream::connect("/nonexistent/faultless.sock")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    });
}

#[test]
fn bad_addresses_surface_as_errors() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let err = TcpListener::bind("not an address").err().unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let err = TcpStream::connect("127.0.0.1:notaport").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        // A port already in use.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken: SocketAddr = l.local_addr().unwrap();
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let err = TcpListener::bind(std_l.local_addr().unwrap())
            .err()
            .unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        let _ = taken;
        // An address this machine does not have.
        let err = UdpSocket::bind("192.0.2.1:0").err().unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrNotAvailable);
    });
}

#[test]
fn accept_with_timeout_and_no_clients_times_out() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let r = time::timeout(Duration::from_millis(20), l.accept()).await;
        assert!(r.is_err());
        // The listener still works after the cancelled accept.
        let addr = l.local_addr().unwrap();
        let c = spawn(async move { TcpStream::connect(addr).await.map(|_| ()) });
        l.accept().await.unwrap();
        c.await.unwrap().unwrap();
    });
}

/// A tiny submission queue must be flushed and refilled, never overflow or panic.
#[test]
fn more_ops_in_flight_than_ring_entries() {
    let rt = faultless_runtime::Builder::new()
        .ring_entries(4)
        .build()
        .unwrap();
    rt.block_on(async {
        let pairs: Vec<_> = (0..200).map(|_| UnixStream::pair().unwrap()).collect();
        let readers: Vec<_> = pairs
            .iter()
            .map(|(a, _)| a.recv(Vec::with_capacity(8)))
            .collect();
        let all = futures::future::join_all(readers);
        let writers = async {
            time::sleep(Duration::from_millis(5)).await;
            for (i, (_, b)) in pairs.iter().enumerate() {
                let (r, _) = b.send_all(format!("{i:03}").into_bytes()).await;
                r.unwrap();
            }
        };
        let (results, ()) = futures::join!(all, writers);
        for (i, (n, buf)) in results.into_iter().enumerate() {
            assert_eq!(n.unwrap(), 3);
            assert_eq!(buf, format!("{i:03}").into_bytes());
        }
    });
    assert!(rt.stats().ops_submitted >= 400);
}
