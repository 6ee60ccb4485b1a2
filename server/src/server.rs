//! The listener, the accept loop, and [`Shared`], the state every connection sees.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use faultless_runtime::mem::Backend;
use faultless_runtime::net::TcpListener;
use faultless_store::{Store, StoreOptions};
use futures::channel::oneshot;

use crate::memory::RequestMemory;
use crate::options::Options;
use crate::stats::{bump, Stats};

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) options: Options,
    /// The port actually bound (differs from the options' when that was 0).
    pub(crate) port: u16,
    pub(crate) shutdown: Cell<bool>,
    wake_acceptor: RefCell<Option<oneshot::Sender<()>>>,
    /// The server's counters.
    pub(crate) stats: Stats,
    /// The budget for request buffers, shared by all connections.
    pub(crate) request_memory: RequestMemory,
}

impl Shared {
    /// Stops accepting connections; [`Server::run`] returns. Every acknowledged write is
    /// already durable, so nothing else needs doing.
    pub(crate) fn shut_down(&self) {
        self.shutdown.set(true);
        if let Some(tx) = self.wake_acceptor.borrow_mut().take() {
            let _ = tx.send(());
        }
    }
}

/// A server bound to its address with its store open, ready to [`run`](Server::run).
pub struct Server {
    shared: Rc<Shared>,
    listener: TcpListener,
    addr: SocketAddr,
    stop: oneshot::Receiver<()>,
}

impl Server {
    /// Opens the store and binds the listener. Must be called inside a faultless runtime.
    pub async fn bind(options: Options) -> io::Result<Server> {
        options.validate()?;
        let backend: Backend = options.backend.parse()?;
        let store = Store::open(&options.data, StoreOptions::new().backend(backend)).await?;
        let listener = TcpListener::bind((options.bind.as_str(), options.port))?;
        let addr = listener.local_addr()?;
        let (tx, stop) = oneshot::channel();
        let shared = Rc::new(Shared {
            store,
            port: addr.port(),
            shutdown: Cell::new(false),
            wake_acceptor: RefCell::new(Some(tx)),
            stats: Stats::default(),
            request_memory: RequestMemory::new(options.max_request_memory),
            options,
        });
        Ok(Server {
            shared,
            listener,
            addr,
            stop,
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The store the server serves.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Accepts and serves connections until a client sends `SHUTDOWN`.
    pub async fn run(self) -> io::Result<()> {
        let Server {
            shared,
            listener,
            mut stop,
            ..
        } = self;
        while !shared.shutdown.get() {
            let accepted = {
                let accept = std::pin::pin!(listener.accept());
                match futures::future::select(accept, &mut stop).await {
                    futures::future::Either::Left((r, _)) => r,
                    futures::future::Either::Right(_) => break,
                }
            };
            let (stream, _) = match accepted {
                Ok(c) => c,
                // Out of fds or a connection reset before accept: keep serving others.
                Err(e) => {
                    eprintln!("accept: {e}");
                    faultless_runtime::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let shared = shared.clone();
            bump(&shared.stats.accepted);
            bump(&shared.stats.connected);
            faultless_runtime::spawn(async move {
                crate::connection::serve(shared.clone(), stream).await;
                let connected = &shared.stats.connected;
                connected.set(connected.get() - 1);
            })
            .detach();
        }
        Ok(())
    }
}

/// Runs the server on a runtime of its own until `SHUTDOWN`: opens the store, binds, prints
/// `faultless serve: listening on ADDR (data PATH, N keys)` on stdout, and serves.
pub fn serve(options: Options) -> io::Result<()> {
    let rt = faultless_runtime::Runtime::new()?;
    rt.block_on(async {
        let data = options.data.clone();
        let server = Server::bind(options).await?;
        println!(
            "faultless serve: listening on {} (data {}, {} keys)",
            server.local_addr(),
            data.display(),
            server.store().len()
        );
        server.run().await?;
        println!("faultless serve: shutting down");
        Ok(())
    })
}
