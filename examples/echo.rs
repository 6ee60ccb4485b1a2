//! A TCP echo server on faultless.
//!
//! ```text
//! cargo run --release --example echo -- 127.0.0.1:7000
//! ```
//!
//! Every connection is a task. Each task owns one buffer, which moves into the kernel for
//! each receive and send (io_uring operations own their buffers until they complete) and comes
//! back with the result. Try it with `nc 127.0.0.1 7000`.

use std::io;

use faultless::runtime::net::{TcpListener, TcpStream};

/// Echoes everything received on `stream` until the peer closes or an error occurs.
async fn echo(stream: TcpStream) -> io::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        // `recv` fills the buffer from its start and returns it with the byte count.
        let (n, b) = stream.recv(buf).await;
        if n? == 0 {
            return Ok(()); // the peer closed its side
        }
        // `send_all` sends the buffer's initialised bytes, resubmitting after partial sends.
        let (res, b) = stream.send_all(b).await;
        res?;
        buf = b;
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".to_string());
    let rt = faultless::Runtime::new()?;
    rt.block_on(async {
        let listener = TcpListener::bind(&addr)?;
        println!("echo server listening on {}", listener.local_addr()?);
        loop {
            let (stream, peer) = listener.accept().await?;
            stream.set_nodelay(true)?;
            faultless::spawn(async move {
                if let Err(e) = echo(stream).await {
                    eprintln!("{peer}: {e}");
                }
            })
            .detach();
        }
    })
}
