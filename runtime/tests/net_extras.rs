//! Socket control: std conversions and raw fds, the `TcpSocket` builder and its options,
//! owned halves (a reader task and a writer task on one connection), `localhost` binds.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};

use faultless_runtime::net::{TcpListener, TcpSocket, TcpStream, UdpSocket, UnixStream};
use faultless_runtime::time::timeout;
use faultless_runtime::{spawn, Runtime};

#[test]
fn std_conversions_and_raw_fds_round_trip() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        // A std listener (blocking mode) taken over by the runtime: accept must not block.
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = TcpListener::from_std(std_listener).unwrap();
        let pending = spawn(async move {
            let r = timeout(Duration::from_millis(30), listener.accept()).await;
            assert!(r.is_err(), "no client yet: accept waits in the ring");
            listener
        });
        let listener = pending.await.unwrap();

        // A std stream in non-blocking mode taken over: recv must wait, not fail EAGAIN.
        let client = std::net::TcpStream::connect(addr).unwrap();
        client.set_nonblocking(true).unwrap();
        let client = TcpStream::from_std(client).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let echo = spawn(async move {
            let (n, buf) = server.recv(Vec::with_capacity(64)).await;
            let n = n.unwrap();
            server.send_all(buf[..n].to_vec()).await.0.unwrap();
            server
        });
        faultless_runtime::time::sleep(Duration::from_millis(10)).await;
        client.send_all(b"ping".to_vec()).await.0.unwrap();
        let (n, buf) = client.recv(Vec::with_capacity(64)).await;
        assert_eq!(&buf[..n.unwrap()], b"ping");
        let server = echo.await.unwrap();

        // Back to std (blocking mode) and on with std I/O.
        let mut std_client = client.into_std().unwrap();
        std_client.write_all(b"std").unwrap();
        let (n, buf) = server.recv(Vec::with_capacity(8)).await;
        assert_eq!(&buf[..n.unwrap()], b"std");
        server.send_all(b"back".to_vec()).await.0.unwrap();
        let mut back = [0u8; 4];
        std_client.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"back");

        // Raw fds: out and in again, the same socket.
        let raw = server.into_raw_fd();
        // SAFETY: `raw` was just released by `into_raw_fd`; nothing else owns it.
        let server = unsafe { TcpStream::from_raw_fd(raw) };
        assert_eq!(server.as_raw_fd(), raw);
        std_client.write_all(b"raw").unwrap();
        let (n, buf) = server.recv(Vec::with_capacity(8)).await;
        assert_eq!(&buf[..n.unwrap()], b"raw");

        let udp = UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let udp_addr = udp.local_addr().unwrap();
        let std_udp = udp.into_std().unwrap();
        assert_eq!(std_udp.local_addr().unwrap(), udp_addr);
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = UnixStream::from_std(a).unwrap();
        (&b).write_all(b"unix").unwrap();
        let (n, buf) = a.recv(Vec::with_capacity(8)).await;
        assert_eq!(&buf[..n.unwrap()], b"unix");
    });
}

#[test]
fn tcp_socket_options_and_reuseport() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let a = TcpSocket::new_v4().unwrap();
        a.set_reuseaddr(true).unwrap();
        a.set_reuseport(true).unwrap();
        a.set_keepalive(true).unwrap();
        a.set_nodelay(true).unwrap();
        a.set_recv_buffer_size(256 * 1024).unwrap();
        a.set_send_buffer_size(128 * 1024).unwrap();
        assert!(a.reuseaddr().unwrap() && a.reuseport().unwrap());
        assert!(a.keepalive().unwrap() && a.nodelay().unwrap());
        assert!(a.recv_buffer_size().unwrap() >= 256 * 1024);
        assert!(a.send_buffer_size().unwrap() >= 128 * 1024);
        a.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = a.local_addr().unwrap();
        let la = a.listen(64).unwrap();
        // Without SO_REUSEPORT a second bind fails; with it, it succeeds.
        let c = TcpSocket::new_v4().unwrap();
        assert!(c.bind(addr).is_err());
        let b = TcpSocket::new_v4().unwrap();
        b.set_reuseport(true).unwrap();
        b.bind(addr).unwrap();
        let lb = b.listen(64).unwrap();
        // Connections spread over both listeners; count them.
        let mut conns = Vec::new();
        for _ in 0..64 {
            conns.push(TcpSocket::new_v4().unwrap().connect(addr).await.unwrap());
        }
        let (mut na, mut nb) = (0, 0);
        for (l, n) in [(&la, &mut na), (&lb, &mut nb)] {
            while let Ok(Ok(_)) = timeout(Duration::from_millis(20), l.accept()).await {
                *n += 1;
            }
        }
        assert_eq!(na + nb, 64);
        assert!(
            na > 0 && nb > 0,
            "the kernel spread connections: {na} + {nb}"
        );
    });
}

#[test]
fn owned_halves_run_in_separate_tasks_and_reunite() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = spawn(async move {
            let s = std::net::TcpStream::connect(addr).unwrap();
            s.set_nonblocking(false).unwrap();
            s
        });
        let (server, _) = listener.accept().await.unwrap();
        let mut client = client.await.unwrap();
        let (mut read, mut write) = server.into_split();
        // The writer sends 4 MiB while the reader reads 4 MiB the client echoes: both
        // directions at once, in two tasks.
        const N: usize = 4 << 20;
        let echo = std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut done = 0;
            while done < N {
                let n = client.read(&mut buf).unwrap();
                client.write_all(&buf[..n]).unwrap();
                done += n;
            }
            client
        });
        let writer = spawn(async move {
            let data: Vec<u8> = (0..N).map(|i| (i % 251) as u8).collect();
            write.write_all(&data).await.unwrap();
            write.flush().await.unwrap();
            write
        });
        let reader = spawn(async move {
            let mut got = vec![0u8; N];
            read.read_exact(&mut got).await.unwrap();
            assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
            read
        });
        let (read, write) = (reader.await.unwrap(), writer.await.unwrap());
        let _client = echo.join().unwrap();
        let stream = read.reunite(write).unwrap();
        assert!(stream.peer_addr().is_ok());

        // Halves of different streams do not reunite; a dropped write half shuts down.
        let a = TcpStream::connect(addr).await.unwrap();
        let (sa, _) = listener.accept().await.unwrap();
        let b = TcpStream::connect(addr).await.unwrap();
        let (ra, wa) = a.into_split();
        let (_rb, wb) = b.into_split();
        let err = ra.reunite(wb).unwrap_err();
        drop(err);
        let (sr, _sw) = sa.into_split();
        let still_open = timeout(Duration::from_millis(20), sr.recv(Vec::with_capacity(8))).await;
        assert!(
            still_open.is_err(),
            "a's write half is alive: no end of stream yet"
        );
        drop(wa);
        let (n, _) = sr.recv(Vec::with_capacity(8)).await;
        assert_eq!(
            n.unwrap(),
            0,
            "dropping a's write half shut its direction down"
        );
    });
}
