//! The `tokio-io` feature: tokio's `AsyncRead`/`AsyncWrite` on the stream sockets and their
//! halves, driven by tokio's own extension methods (no tokio runtime anywhere).
#![cfg(feature = "tokio-io")]

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use faultless_runtime::net::{TcpListener, TcpStream, UnixStream};
use faultless_runtime::{spawn, Runtime};

#[test]
fn tokio_traits_move_bytes_both_ways() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        const N: usize = 3 << 20;
        let data: Vec<u8> = (0..N).map(|i| (i * 31 % 256) as u8).collect();
        let expected = data.clone();
        let writer = spawn(async move {
            a.write_all(&data).await.unwrap();
            // Vectored: gathered into one send.
            let bufs = [std::io::IoSlice::new(b"ab"), std::io::IoSlice::new(b"cd")];
            let n = a.write_vectored(&bufs).await.unwrap();
            assert_eq!(n, 4);
            AsyncWriteExt::shutdown(&mut a).await.unwrap();
            a
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), N + 4);
        assert!(got[..N] == expected[..] && &got[N..] == b"abcd");
        writer.await.unwrap();

        // Line-oriented reading through tokio's BufReader, over TCP halves.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = spawn(async move {
            let s = TcpStream::connect(addr).await.unwrap();
            let (r, mut w) = s.into_split();
            w.write_all(b"one\ntwo\nthree\n").await.unwrap();
            w.flush().await.unwrap();
            drop(w);
            let mut reply = String::new();
            BufReader::new(r).read_line(&mut reply).await.unwrap();
            reply
        });
        let (server, _) = listener.accept().await.unwrap();
        let (r, mut w) = server.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut count = 0;
        while let Some(line) = lines.next_line().await.unwrap() {
            assert!(["one", "two", "three"].contains(&line.as_str()));
            count += 1;
        }
        assert_eq!(count, 3);
        w.write_all(b"3 lines\n").await.unwrap();
        w.flush().await.unwrap();
        assert_eq!(client.await.unwrap(), "3 lines\n");
    });
}
